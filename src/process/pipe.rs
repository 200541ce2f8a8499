//! A child's stdin, stdout and stderr: pipes with the owned-buffer API.
//!
//! How it works: each handle holds the parent's end of its pipe as a
//! `SharedFd` (closed after the last op on it) and runs the pipe ops of
//! `op/pipe.rs`. Reads are serialised and cancel-safe as a socket's are:
//! bytes read for a dropped read are returned by the next one.
//! `read_exact` and `write_all` loop over sub-slices of the same buffer.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

use crate::buf::{BufResult, IoBuf, IoBufMut};
use crate::fd::SharedFd;
use crate::op::Op;
use crate::op::pipe::{PipeRead, PipeWrite};

async fn read<B: IoBufMut>(fd: &SharedFd, buf: B) -> BufResult<usize, B> {
    Op::new(PipeRead::new(fd, buf)).await
}

async fn read_exact<B: IoBufMut>(fd: &SharedFd, mut buf: B) -> BufResult<(), B> {
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

/// Reads until end of file, appending to `buf`; returns the count read.
async fn read_to_end(fd: &SharedFd, mut buf: Vec<u8>) -> BufResult<usize, Vec<u8>> {
    let start = buf.len();
    loop {
        if buf.capacity() - buf.len() < 4096 {
            buf.reserve(8192);
        }
        let len = buf.len();
        let cap = buf.capacity();
        let (res, slice) = read(fd, buf.slice(len..cap)).await;
        buf = slice.into_inner();
        match res {
            Ok(0) => return (Ok(buf.len() - start), buf),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return (Err(e), buf),
        }
    }
}

async fn write<B: IoBuf>(fd: &SharedFd, buf: B) -> BufResult<usize, B> {
    Op::new(PipeWrite::new(fd, buf)).await
}

async fn write_all<B: IoBuf>(fd: &SharedFd, mut buf: B) -> BufResult<(), B> {
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

/// The write end of a child's stdin (with [`Stdio::piped`](super::Stdio::piped)).
///
/// Dropping it (or [`shutdown`](Self::shutdown)) closes the pipe: the child
/// then reads end of file. Writing after the child closed its end fails with
/// `BrokenPipe` (Rust programs ignore `SIGPIPE`; one that does not would be
/// killed by it, as with std).
#[derive(Debug)]
pub struct ChildStdin {
    fd: SharedFd,
}

/// The read end of a child's stdout (with [`Stdio::piped`](super::Stdio::piped)).
#[derive(Debug)]
pub struct ChildStdout {
    fd: SharedFd,
}

/// The read end of a child's stderr (with [`Stdio::piped`](super::Stdio::piped)).
#[derive(Debug)]
pub struct ChildStderr {
    fd: SharedFd,
}

impl ChildStdin {
    pub(super) fn new(fd: OwnedFd) -> ChildStdin {
        ChildStdin {
            fd: SharedFd::new(fd),
        }
    }

    /// Writes the initialised bytes of `buf`, like write(2); may write fewer.
    pub async fn write<B: IoBuf>(&self, buf: B) -> BufResult<usize, B> {
        write(&self.fd, buf).await
    }

    /// Writes all initialised bytes of `buf`, looping over short writes.
    pub async fn write_all<B: IoBuf>(&self, buf: B) -> BufResult<(), B> {
        write_all(&self.fd, buf).await
    }

    /// Closes the pipe (after writes still in flight complete): the child
    /// reads end of file. The same as dropping the handle.
    pub async fn shutdown(self) -> io::Result<()> {
        drop(self);
        Ok(())
    }
}

macro_rules! reader {
    ($name:ident) => {
        impl $name {
            pub(super) fn new(fd: OwnedFd) -> $name {
                $name {
                    fd: SharedFd::new(fd),
                }
            }

            /// Reads into `buf` from its start, up to its capacity, like
            /// read(2); `Ok(0)` means end of file (the child closed it, or
            /// exited).
            ///
            /// Cancel-safe: bytes read for a dropped read are returned by the
            /// next one.
            pub async fn read<B: IoBufMut>(&self, buf: B) -> BufResult<usize, B> {
                read(&self.fd, buf).await
            }

            /// Reads until `buf` is full to its capacity; `UnexpectedEof` if
            /// the pipe ends first.
            pub async fn read_exact<B: IoBufMut>(&self, buf: B) -> BufResult<(), B> {
                read_exact(&self.fd, buf).await
            }

            /// Reads until end of file, appending to `buf`; returns the count.
            pub async fn read_to_end(&self, buf: Vec<u8>) -> BufResult<usize, Vec<u8>> {
                read_to_end(&self.fd, buf).await
            }
        }
    };
}

reader!(ChildStdout);
reader!(ChildStderr);

macro_rules! fd_traits {
    ($($name:ident)*) => {$(
        impl AsRawFd for $name {
            fn as_raw_fd(&self) -> RawFd {
                self.fd.raw()
            }
        }

        impl AsFd for $name {
            fn as_fd(&self) -> BorrowedFd<'_> {
                self.fd.as_fd()
            }
        }
    )*};
}

fd_traits!(ChildStdin ChildStdout ChildStderr);
