//! Owned read and write halves of a `TcpStream`.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};

use socket2::SockRef;

use super::TcpStream;
use super::listener::sock_addr;
use crate::buf::{BufResult, IoBuf, IoBufMut, PooledBuf};
use crate::fd::SharedFd;
use crate::net::stream_io;

/// The read half of a [`TcpStream`], from [`TcpStream::into_split`].
///
/// Each method is the stream's method of the same name, with the same
/// cancel safety (reads cancel-safe, `read_exact` not).
#[derive(Debug)]
pub struct OwnedReadHalf {
    pub(crate) fd: SharedFd,
}

/// The write half of a [`TcpStream`], from [`TcpStream::into_split`].
///
/// Each method is the stream's method of the same name, with the same
/// cancel safety (writes are not cancel-safe).
///
/// Dropping it does not shut the connection down; call
/// [`shutdown`](Self::shutdown) to send FIN.
#[derive(Debug)]
pub struct OwnedWriteHalf {
    pub(crate) fd: SharedFd,
}

impl OwnedReadHalf {
    /// See [`TcpStream::read`].
    pub fn read<B: IoBufMut>(&self, buf: B) -> impl Future<Output = BufResult<usize, B>> {
        stream_io::read(&self.fd, buf)
    }

    /// See [`TcpStream::read_timeout`].
    pub async fn read_timeout<B: IoBufMut>(
        &self,
        buf: B,
        timeout: std::time::Duration,
    ) -> BufResult<usize, B> {
        stream_io::read_timeout(&self.fd, buf, timeout).await
    }

    /// See [`TcpStream::recv_pooled`].
    pub fn recv_pooled(&self) -> impl Future<Output = io::Result<Option<PooledBuf>>> {
        stream_io::recv_pooled(&self.fd)
    }

    /// See [`TcpStream::read_exact`].
    pub fn read_exact<B: IoBufMut>(&self, buf: B) -> impl Future<Output = BufResult<(), B>> + '_ {
        stream_io::read_exact(&self.fd, buf)
    }

    /// The remote address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        sock_addr(SockRef::from(self).peer_addr()?)
    }

    /// Joins the halves back into a stream; gives both back if they come
    /// from different streams.
    pub fn reunite(self, w: OwnedWriteHalf) -> Result<TcpStream, (OwnedReadHalf, OwnedWriteHalf)> {
        if self.fd.same(&w.fd) {
            drop(w);
            Ok(TcpStream::from_fd(self.fd))
        } else {
            Err((self, w))
        }
    }
}

impl OwnedWriteHalf {
    /// See [`TcpStream::write`].
    pub fn write<B: IoBuf>(&self, buf: B) -> impl Future<Output = BufResult<usize, B>> {
        stream_io::write(&self.fd, buf)
    }

    /// See [`TcpStream::write_all`].
    pub fn write_all<B: IoBuf>(&self, buf: B) -> impl Future<Output = BufResult<(), B>> + '_ {
        stream_io::write_all(&self.fd, buf)
    }

    /// See [`TcpStream::send_file`].
    #[cfg(target_os = "linux")]
    pub async fn send_file(
        &self,
        file: &crate::fs::File,
        offset: u64,
        len: u64,
    ) -> io::Result<u64> {
        super::send_file::send_file(&self.fd, file, offset, len).await
    }

    /// See [`TcpStream::send_zc`].
    pub fn send_zc<B: IoBuf>(&self, buf: B) -> impl Future<Output = BufResult<usize, B>> {
        stream_io::send_zc(&self.fd, buf)
    }

    /// See [`TcpStream::write_all_zc`].
    pub fn write_all_zc<B: IoBuf>(&self, buf: B) -> impl Future<Output = BufResult<(), B>> + '_ {
        stream_io::write_all_zc(&self.fd, buf)
    }

    /// See [`TcpStream::writev`].
    pub fn writev<B: IoBuf>(&self, bufs: Vec<B>) -> impl Future<Output = BufResult<usize, Vec<B>>> {
        stream_io::writev(&self.fd, bufs)
    }

    /// See [`TcpStream::shutdown`].
    pub fn shutdown(&self, how: std::net::Shutdown) -> impl Future<Output = io::Result<()>> {
        stream_io::shutdown(&self.fd, how)
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        sock_addr(SockRef::from(self).local_addr()?)
    }
}

macro_rules! impl_fd {
    ($t:ty) => {
        impl AsRawFd for $t {
            fn as_raw_fd(&self) -> RawFd {
                self.fd.raw()
            }
        }

        impl AsFd for $t {
            fn as_fd(&self) -> BorrowedFd<'_> {
                // SAFETY: the fd stays open at least as long as `self`.
                unsafe { BorrowedFd::borrow_raw(self.fd.raw()) }
            }
        }
    };
}

impl_fd!(OwnedReadHalf);
impl_fd!(OwnedWriteHalf);
