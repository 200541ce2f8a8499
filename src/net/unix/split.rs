//! Owned read and write halves of a `UnixStream`.

use std::future::Future;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

use socket2::SockRef;

use super::cred::{UCred, peer_cred};
use super::{SocketAddr, UnixStream, fds};
use crate::buf::{BufResult, IoBuf, IoBufMut, PooledBuf};
use crate::fd::SharedFd;
use crate::net::stream_io;

/// The read half of a [`UnixStream`], from [`UnixStream::into_split`].
#[derive(Debug)]
pub struct OwnedReadHalf {
    pub(crate) fd: SharedFd,
}

/// The write half of a [`UnixStream`], from [`UnixStream::into_split`].
///
/// Dropping it does not shut the connection down; call
/// [`shutdown`](Self::shutdown) for that.
#[derive(Debug)]
pub struct OwnedWriteHalf {
    pub(crate) fd: SharedFd,
}

impl OwnedReadHalf {
    /// See [`UnixStream::read`].
    pub fn read<B: IoBufMut>(&self, buf: B) -> impl Future<Output = BufResult<usize, B>> {
        stream_io::read(&self.fd, buf)
    }

    /// See [`UnixStream::read_exact`].
    #[inline]
    pub fn read_exact<B: IoBufMut>(&self, buf: B) -> impl Future<Output = BufResult<(), B>> + '_ {
        stream_io::read_exact(&self.fd, buf)
    }

    /// See [`UnixStream::recv_pooled`].
    pub fn recv_pooled(&self) -> impl Future<Output = io::Result<Option<PooledBuf>>> {
        stream_io::recv_pooled(&self.fd)
    }

    /// See [`UnixStream::recv_with_fds`].
    pub async fn recv_with_fds<B: IoBufMut>(
        &self,
        buf: B,
        max_fds: usize,
    ) -> BufResult<(usize, Vec<OwnedFd>), B> {
        fds::recv_with_fds(&self.fd, buf, max_fds, false).await
    }

    /// See [`UnixStream::peer_cred`].
    pub fn peer_cred(&self) -> io::Result<UCred> {
        peer_cred(self.as_fd())
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        SocketAddr::from_sock(SockRef::from(self).peer_addr()?)
    }

    /// Joins the halves back into a stream; gives both back if they come
    /// from different streams.
    pub fn reunite(self, w: OwnedWriteHalf) -> Result<UnixStream, (OwnedReadHalf, OwnedWriteHalf)> {
        if self.fd.same(&w.fd) {
            drop(w);
            Ok(UnixStream::from_fd(self.fd))
        } else {
            Err((self, w))
        }
    }
}

impl OwnedWriteHalf {
    /// See [`UnixStream::write`].
    pub fn write<B: IoBuf>(&self, buf: B) -> impl Future<Output = BufResult<usize, B>> {
        stream_io::write(&self.fd, buf)
    }

    /// See [`UnixStream::write_all`].
    #[inline]
    pub fn write_all<B: IoBuf>(&self, buf: B) -> impl Future<Output = BufResult<(), B>> + '_ {
        stream_io::write_all(&self.fd, buf)
    }

    /// See [`UnixStream::writev`].
    pub fn writev<B: IoBuf>(&self, bufs: Vec<B>) -> impl Future<Output = BufResult<usize, Vec<B>>> {
        stream_io::writev(&self.fd, bufs)
    }

    /// See [`UnixStream::send_with_fds`].
    pub async fn send_with_fds<B: IoBuf>(
        &self,
        buf: B,
        fds: &[BorrowedFd<'_>],
    ) -> BufResult<usize, B> {
        fds::send_with_fds(&self.fd, buf, fds, true).await
    }

    /// See [`UnixStream::shutdown`].
    pub fn shutdown(&self, how: std::net::Shutdown) -> impl Future<Output = io::Result<()>> {
        stream_io::shutdown(&self.fd, how)
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        SocketAddr::from_sock(SockRef::from(self).local_addr()?)
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
                self.fd.as_fd()
            }
        }
    };
}

impl_fd!(OwnedReadHalf);
impl_fd!(OwnedWriteHalf);
