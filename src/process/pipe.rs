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

fn read<B: IoBufMut>(fd: &SharedFd, buf: B) -> Op<PipeRead<B>> {
    Op::new(PipeRead::new(fd, buf))
}

async fn read_exact<B: IoBufMut>(fd: &SharedFd, buf: B) -> BufResult<(), B> {
    crate::op::loops::read_exact(buf, |b| read(fd, b)).await
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

fn write<B: IoBuf>(fd: &SharedFd, buf: B) -> Op<PipeWrite<B>> {
    Op::new(PipeWrite::new(fd, buf))
}

async fn write_all<B: IoBuf>(fd: &SharedFd, buf: B) -> BufResult<(), B> {
    crate::op::loops::write_all(buf, |b| write(fd, b)).await
}

/// The write end of a child's stdin (with [`Stdio::piped`](super::Stdio::piped)).
///
/// Dropping it (or [`shutdown`](Self::shutdown)) closes the pipe: the child
/// then reads end of file. Writing after the child closed its end fails with
/// `BrokenPipe` (Rust programs ignore `SIGPIPE`; one that does not would be
/// killed by it, as with std).
#[derive(Debug)]
pub struct ChildStdin {
    /// `None` once [`shutdown`](Self::shutdown) closed it.
    fd: Option<SharedFd>,
}

/// The read end of a child's stdout (with [`Stdio::piped`](super::Stdio::piped)).
#[derive(Debug)]
pub struct ChildStdout {
    pub(crate) fd: SharedFd,
}

/// The read end of a child's stderr (with [`Stdio::piped`](super::Stdio::piped)).
#[derive(Debug)]
pub struct ChildStderr {
    pub(crate) fd: SharedFd,
}

impl ChildStdin {
    pub(super) fn new(fd: OwnedFd) -> ChildStdin {
        ChildStdin {
            fd: Some(SharedFd::new(fd)),
        }
    }

    /// Writes the initialised bytes of `buf`, like write(2); may write fewer.
    /// `BrokenPipe` after [`shutdown`](Self::shutdown).
    pub async fn write<B: IoBuf>(&self, buf: B) -> BufResult<usize, B> {
        match &self.fd {
            Some(fd) => write(fd, buf).await,
            None => (Err(closed()), buf),
        }
    }

    /// Writes all initialised bytes of `buf`, looping over short writes.
    pub async fn write_all<B: IoBuf>(&self, buf: B) -> BufResult<(), B> {
        match &self.fd {
            Some(fd) => write_all(fd, buf).await,
            None => (Err(closed()), buf),
        }
    }

    /// Closes the pipe (once writes still in flight complete): the child
    /// reads end of file. Dropping the handle does the same; later writes
    /// fail with `BrokenPipe`.
    pub async fn shutdown(&mut self) -> io::Result<()> {
        self.close();
        Ok(())
    }

    pub(crate) fn shared_fd(&self) -> Option<&SharedFd> {
        self.fd.as_ref()
    }

    /// Closes the pipe now (what `shutdown` does).
    pub(crate) fn close(&mut self) {
        self.fd = None;
    }
}

fn closed() -> io::Error {
    io::Error::new(
        io::ErrorKind::BrokenPipe,
        "corio: the child's stdin was shut down",
    )
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

fd_traits!(ChildStdout ChildStderr);

/// The raw fd of a child's stdin; -1 once it was shut down.
impl AsRawFd for ChildStdin {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_ref().map_or(-1, SharedFd::raw)
    }
}
