//! Sending and receiving fds (`SCM_RIGHTS`), shared by Unix streams, their
//! halves and datagram sockets.
//!
//! How it works: the checks a caller's mistake deserves a clear error for
//! (too many fds, fds with no byte to carry them on a stream) happen here;
//! the fds to send are duplicated (close-on-exec) so the op owns what the
//! kernel reads, and the op (`op/net/fds.rs`) does the rest.

use std::io;
use std::os::fd::{BorrowedFd, OwnedFd};

use crate::buf::{BufResult, IoBuf, IoBufMut};
use crate::fd::SharedFd;
use crate::op::Op;
use crate::op::net::{MAX_FDS, RecvFds, SendFds};

pub(crate) async fn send_with_fds<B: IoBuf>(
    fd: &SharedFd,
    buf: B,
    fds: &[BorrowedFd<'_>],
    stream: bool,
) -> BufResult<usize, B> {
    if fds.len() > MAX_FDS {
        let e = io::Error::new(
            io::ErrorKind::InvalidInput,
            "corio: at most 253 fds go in one message (SCM_MAX_FD)",
        );
        return (Err(e), buf);
    }
    if stream && buf.bytes_init() == 0 && !fds.is_empty() {
        let e = io::Error::new(
            io::ErrorKind::InvalidInput,
            "corio: fds sent on a stream must go with at least one byte",
        );
        return (Err(e), buf);
    }
    let owned = match fds.iter().map(|f| f.try_clone_to_owned()).collect() {
        Ok(owned) => owned,
        Err(e) => return (Err(e), buf),
    };
    Op::new(SendFds::new(fd, buf, owned)).await
}

pub(crate) async fn recv_with_fds<B: IoBufMut>(
    fd: &SharedFd,
    buf: B,
    max_fds: usize,
    datagram: bool,
) -> BufResult<(usize, Vec<OwnedFd>), B> {
    Op::new(RecvFds::new(fd, buf, max_fds.min(MAX_FDS), datagram)).await
}
