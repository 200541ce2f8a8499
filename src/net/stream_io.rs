//! The byte-stream I/O shared by `TcpStream` and its owned halves.
//!
//! How it works: `read` first waits for earlier reads on the socket to settle,
//! then returns bytes kept by abandoned reads before asking the kernel, so a
//! read dropped mid-flight (say by a timeout) loses nothing. `read_exact` and
//! `write_all` loop over sub-slices of the same owned buffer.

use std::io;

use super::fd::{SharedFd, copy_into};
use crate::buf::PooledBuf;
use crate::buf::{BufResult, IoBuf, IoBufMut};
use crate::op::Op;
use crate::op::net::{Recv, Send, SendMsg, Shutdown};
use crate::op::pooled;
use crate::runtime::coop;

pub(crate) async fn read<B: IoBufMut>(fd: &SharedFd, mut buf: B) -> BufResult<usize, B> {
    if fd.multi_recv().is_some() {
        // Pooled receives armed a multishot receive on this socket: take
        // bytes from it too, so nothing is read out of order.
        return match pooled::recv(fd, false).await {
            Ok(Some(lease)) => {
                let n = copy_into(&lease, &mut buf);
                fd.unstash_front(&lease[n..]);
                (Ok(n), buf)
            }
            Ok(None) => (Ok(0), buf),
            Err(e) => (Err(e), buf),
        };
    }
    let guard = fd.begin_read().await;
    coop::yield_if_spent().await;
    if let Some(res) = fd.take_stashed(&mut buf) {
        drop(guard);
        coop::charge();
        return (res, buf);
    }
    Op::new(Recv {
        guard,
        buf,
        datagram: false,
    })
    .await
}

pub(crate) async fn write<B: IoBuf>(fd: &SharedFd, buf: B) -> BufResult<usize, B> {
    Op::new(Send {
        fd: fd.clone(),
        buf,
    })
    .await
}

pub(crate) async fn writev<B: IoBuf>(fd: &SharedFd, bufs: Vec<B>) -> BufResult<usize, Vec<B>> {
    Op::new(SendMsg::new(fd.clone(), bufs, None)).await
}

pub(crate) async fn read_exact<B: IoBufMut>(fd: &SharedFd, mut buf: B) -> BufResult<(), B> {
    let total = buf.bytes_total();
    let mut done = 0;
    while done < total {
        let (res, slice) = read(fd, buf.slice(done..total)).await;
        buf = slice.into_inner();
        match res {
            Ok(0) => {
                let e = io::Error::new(io::ErrorKind::UnexpectedEof, "failed to fill whole buffer");
                return (Err(e), buf);
            }
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return (Err(e), buf),
        }
    }
    (Ok(()), buf)
}

pub(crate) async fn write_all<B: IoBuf>(fd: &SharedFd, mut buf: B) -> BufResult<(), B> {
    let total = buf.bytes_init();
    let mut done = 0;
    while done < total {
        let (res, slice) = write(fd, buf.slice(done..total)).await;
        buf = slice.into_inner();
        match res {
            Ok(0) => {
                let e = io::Error::new(io::ErrorKind::WriteZero, "failed to write whole buffer");
                return (Err(e), buf);
            }
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return (Err(e), buf),
        }
    }
    (Ok(()), buf)
}

pub(crate) async fn shutdown(fd: &SharedFd, how: std::net::Shutdown) -> io::Result<()> {
    Op::new(Shutdown {
        fd: fd.clone(),
        how,
    })
    .await
}

pub(crate) async fn recv_pooled(fd: &SharedFd) -> io::Result<Option<PooledBuf>> {
    pooled::recv(fd, false).await
}
