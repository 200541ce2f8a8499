//! The byte-stream I/O shared by `TcpStream` and its owned halves.
//!
//! How it works: each method is one op (or a loop of them, for `read_exact`
//! and `write_all`, over sub-slices of the same owned buffer). Cancel
//! recovery — bytes kept by dropped reads, a multishot receive armed by
//! pooled receives — is the driver's, so a read dropped mid-flight (say by a
//! timeout) loses nothing, whichever read method comes next.

use std::future::Future;

use crate::buf::{BufResult, IoBuf, IoBufMut};
use crate::fd::SharedFd;
use crate::op::Op;
use crate::op::net::{Recv, Send, SendMsg, SendZc, Shutdown};
use crate::op::pooled;

// The single ops are plain functions returning the op's future: the
// public `async fn`s that await them add the only state machine.

pub(crate) fn read<B: IoBufMut>(fd: &SharedFd, buf: B) -> Op<Recv<B>> {
    Op::new(Recv::new(fd, buf, false))
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
    crate::buf::loops::write_all(buf, |b| send_zc(fd, b))
}

pub(crate) fn writev<B: IoBuf>(fd: &SharedFd, bufs: Vec<B>) -> Op<SendMsg<B>> {
    Op::new(SendMsg::new(fd, bufs, None))
}

pub(crate) fn read_exact<B: IoBufMut>(
    fd: &SharedFd,
    buf: B,
) -> impl Future<Output = BufResult<(), B>> + '_ {
    crate::buf::loops::read_exact(buf, |b| read(fd, b))
}

pub(crate) fn write_all<B: IoBuf>(
    fd: &SharedFd,
    buf: B,
) -> impl Future<Output = BufResult<(), B>> + '_ {
    crate::buf::loops::write_all(buf, |b| write(fd, b))
}

pub(crate) fn shutdown(fd: &SharedFd, how: std::net::Shutdown) -> Op<Shutdown> {
    Op::new(Shutdown::new(fd, how))
}

pub(crate) fn recv_pooled(fd: &SharedFd) -> pooled::PooledRecv {
    pooled::recv(fd, false)
}
