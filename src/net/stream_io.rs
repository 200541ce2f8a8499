//! The byte-stream I/O shared by `TcpStream` and its owned halves.
//!
//! How it works: each method is one op (or a loop of them, for `read_exact`
//! and `write_all`, over sub-slices of the same owned buffer). Cancel
//! recovery — bytes kept by dropped reads, a multishot receive armed by
//! pooled receives — is the driver's, so a read dropped mid-flight (say by a
//! timeout) loses nothing, whichever read method comes next.

use std::future::{Future, poll_fn};
use std::pin::{Pin, pin};
use std::task::Poll;
use std::time::Duration;

use crate::buf::{BufResult, IoBuf, IoBufMut, Slice};
use crate::fd::SharedFd;
use crate::fs::FixedBuf;
use crate::op::net::{
    Recv, RecvTimeout, Send, SendMsg, SendZc, Shutdown, link_timeout_opcode, timed_out,
};
use crate::op::pooled;
use crate::op::{Op, OpCode};
use crate::runtime::context;

// The single ops are plain functions returning the op's future: the
// public `async fn`s that await them add the only state machine.

pub(crate) fn read<B: IoBufMut>(fd: &SharedFd, buf: B) -> Op<Recv<B>> {
    Op::new(Recv::new(fd, buf, false))
}

/// A read bounded by `timeout`: a linked `LINK_TIMEOUT` on io_uring, else
/// a user-space timer that cancels the read (whose result, if it came
/// first, still wins).
pub(crate) async fn read_timeout<B: IoBufMut>(
    fd: &SharedFd,
    buf: B,
    timeout: Duration,
) -> BufResult<usize, B> {
    let core = context::current("a read with a timeout");
    if core.driver.borrow().supports(link_timeout_opcode()) {
        return Op::on(core, RecvTimeout::new(fd, buf, timeout)).await;
    }
    let mut op = Op::on(core, Recv::new(fd, buf, false));
    let mut sleep = pin!(crate::time::sleep(timeout));
    let mut cancelled = false;
    let (res, buf) = poll_fn(|cx| {
        if let Poll::Ready(out) = Pin::new(&mut op).poll(cx) {
            return Poll::Ready(out);
        }
        if !cancelled && sleep.as_mut().poll(cx).is_ready() {
            cancelled = true;
            if let Some(recv) = op.cancel() {
                // Not in the kernel (the poll driver waits for readiness):
                // nothing was read.
                return Poll::Ready(recv.complete(Err(timed_out()), 0));
            }
            // In the ring: the cancel's outcome (or the data) comes next.
        }
        Poll::Pending
    })
    .await;
    match res {
        Err(e) if e.raw_os_error() == Some(libc::ECANCELED) => (Err(timed_out()), buf),
        res => (res, buf),
    }
}

pub(crate) fn write<B: IoBuf>(fd: &SharedFd, buf: B) -> Op<Send<B>> {
    Op::new(Send::new(fd, buf))
}

pub(crate) fn send_zc<B: IoBuf>(fd: &SharedFd, buf: B) -> Op<SendZc<B>> {
    Op::new(SendZc::new(fd, buf))
}

pub(crate) fn write_all_zc<B: IoBuf>(
    fd: &SharedFd,
    buf: B,
) -> impl Future<Output = BufResult<(), B>> + '_ {
    crate::op::loops::write_all(buf, |b| send_zc(fd, b))
}

/// A zero-copy send from a registered buffer (by index where this runtime's
/// ring has it registered).
pub(crate) fn send_zc_fixed(fd: &SharedFd, buf: Slice<FixedBuf>) -> Op<SendZc<Slice<FixedBuf>>> {
    let index = buf.get_ref().ring_index();
    Op::new(SendZc::fixed(fd, buf, index))
}

/// All of a registered buffer's bytes, by zero-copy sends naming it.
pub(crate) fn write_all_zc_fixed(
    fd: &SharedFd,
    buf: FixedBuf,
) -> impl Future<Output = BufResult<(), FixedBuf>> + '_ {
    let index = buf.ring_index();
    crate::op::loops::write_all(buf, move |b| Op::new(SendZc::fixed(fd, b, index)))
}

pub(crate) fn writev<B: IoBuf>(fd: &SharedFd, bufs: Vec<B>) -> Op<SendMsg<B>> {
    Op::new(SendMsg::new(fd, bufs, None))
}

#[inline(always)]
pub(crate) fn read_exact<B: IoBufMut>(
    fd: &SharedFd,
    buf: B,
) -> impl Future<Output = BufResult<(), B>> + '_ {
    crate::op::loops::read_exact(buf, |b| read(fd, b))
}

#[inline(always)]
pub(crate) fn write_all<B: IoBuf>(
    fd: &SharedFd,
    buf: B,
) -> impl Future<Output = BufResult<(), B>> + '_ {
    crate::op::loops::write_all(buf, |b| write(fd, b))
}

pub(crate) fn shutdown(fd: &SharedFd, how: std::net::Shutdown) -> Op<Shutdown> {
    Op::new(Shutdown::new(fd, how))
}

pub(crate) fn recv_pooled(fd: &SharedFd) -> pooled::PooledRecv {
    pooled::recv(fd, false)
}
