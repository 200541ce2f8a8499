//! `UnixDatagram`: Unix datagram sockets with owned buffers.
//!
//! How it works: as [`UdpSocket`](crate::net::UdpSocket), on the same ops:
//! `send`/`recv` are send(2)/recv(2), `send_to`/`recv_from` sendmsg(2)/
//! recvmsg(2) with a boxed address, `recv_pooled` the pooled (multishot
//! `RECVMSG`) receive; a datagram that arrives for a dropped receive is kept
//! and returned by the next one. Connecting never waits, so `connect` is a
//! plain call.

use std::future::Future;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::path::Path;

use socket2::{Domain, SockRef, Socket, Type};

use super::{SocketAddr, fds};
use crate::buf::{BufResult, IoBuf, IoBufMut, PooledBuf};
use crate::fd::SharedFd;
use crate::net::tcp::busy;
use crate::op::Op;
use crate::op::net::{Recv, RecvMsg, Send, SendMsg, Shutdown};

/// A Unix datagram socket: bound to a path or an abstract name, or
/// unbound; connected to one peer or sending to any.
///
/// ```
/// use corio::IoBuf;
/// use corio::net::UnixDatagram;
///
/// corio::run(async {
///     let dir = std::env::temp_dir().join(format!("corio-doc-dgram-{}", std::process::id()));
///     std::fs::create_dir_all(&dir)?;
///     let server = UnixDatagram::bind(dir.join("server.sock"))?;
///     let client = UnixDatagram::bind(dir.join("client.sock"))?;
///     client.send_to(b"ping".as_slice(), dir.join("server.sock")).await.0?;
///     let (res, buf) = server.recv_from(vec![0u8; 64]).await;
///     let (n, from) = res?;
///     server.send_to_addr(buf.slice(..n), &from).await.0?;
///     let (res, buf) = client.recv(vec![0u8; 64]).await;
///     assert_eq!(&buf[..res?], b"ping");
///     std::fs::remove_dir_all(&dir)
/// })
/// .unwrap();
/// ```
#[derive(Debug)]
pub struct UnixDatagram {
    fd: SharedFd,
}

fn new_socket() -> io::Result<Socket> {
    Socket::new(Domain::UNIX, Type::DGRAM, None)
}

impl UnixDatagram {
    /// A socket bound to the new socket file `path`.
    ///
    /// `InvalidInput` for a path too long for `sun_path`, `AddrInUse` when
    /// the file exists (see [`UnixListener`](crate::net::UnixListener) on
    /// stale socket files).
    pub fn bind(path: impl AsRef<Path>) -> io::Result<UnixDatagram> {
        UnixDatagram::bind_addr(SocketAddr::from_pathname(path)?)
    }

    /// A socket bound to `addr`: a path or a Linux abstract name (std's
    /// addresses convert).
    pub fn bind_addr(addr: impl Into<SocketAddr>) -> io::Result<UnixDatagram> {
        let s = new_socket()?;
        s.bind(addr.into().as_sock())?;
        Ok(UnixDatagram::from_socket(s))
    }

    /// A socket bound to no address: it can send, and receive replies only
    /// once connected (its peers see it as unnamed).
    pub fn unbound() -> io::Result<UnixDatagram> {
        Ok(UnixDatagram::from_socket(new_socket()?))
    }

    /// Two sockets connected to each other, like socketpair(2).
    pub fn pair() -> io::Result<(UnixDatagram, UnixDatagram)> {
        let (a, b) = std::os::unix::net::UnixDatagram::pair()?;
        Ok((UnixDatagram::from_std(a), UnixDatagram::from_std(b)))
    }

    fn from_socket(s: Socket) -> UnixDatagram {
        UnixDatagram {
            fd: SharedFd::new(OwnedFd::from(s)),
        }
    }

    /// Sets the default destination and receives only from it, like
    /// connect(2); returns at once (a Unix datagram connect never waits).
    ///
    /// `NotFound` when nothing is at `path`, `ConnectionRefused` when no
    /// socket is bound there.
    pub fn connect(&self, path: impl AsRef<Path>) -> io::Result<()> {
        self.connect_addr(SocketAddr::from_pathname(path)?)
    }

    /// [`connect`](Self::connect) to a path or a Linux abstract name.
    pub fn connect_addr(&self, addr: impl Into<SocketAddr>) -> io::Result<()> {
        SockRef::from(self).connect(addr.into().as_sock())
    }

    /// Sends the initialised bytes of `buf` as one datagram to the socket
    /// at `path`, like sendmsg(2).
    pub async fn send_to<B: IoBuf>(&self, buf: B, path: impl AsRef<Path>) -> BufResult<usize, B> {
        match SocketAddr::from_pathname(path) {
            Ok(addr) => self.send_to_addr(buf, &addr).await,
            Err(e) => (Err(e), buf),
        }
    }

    /// [`send_to`](Self::send_to) a path or a Linux abstract name.
    pub async fn send_to_addr<B: IoBuf>(
        &self,
        buf: B,
        addr: impl Into<SocketAddr>,
    ) -> BufResult<usize, B> {
        let addr = addr.into().as_sock().clone();
        let (res, mut bufs) = Op::new(SendMsg::new(&self.fd, vec![buf], Some(addr))).await;
        (res, bufs.pop().expect("one buffer in, one out"))
    }

    /// Receives one datagram into `buf` (from its start) and its source,
    /// like recvmsg(2); the source is unnamed when the sender is not bound.
    /// A datagram longer than the buffer is truncated.
    pub async fn recv_from<B: IoBufMut>(&self, buf: B) -> BufResult<(usize, SocketAddr), B> {
        let (res, buf) = Op::new(RecvMsg::new(&self.fd, buf)).await;
        let res = res.and_then(|(n, from, _)| match from {
            Some(from) => SocketAddr::from_sock(from).map(|a| (n, a)),
            // An unbound sender, or a datagram kept by a dropped `recv` of
            // a connected socket (whose peer sent it).
            None => Ok((
                n,
                self.peer_addr().unwrap_or_else(|_| SocketAddr::unnamed()),
            )),
        });
        (res, buf)
    }

    /// Sends `buf` to the connected peer, like send(2).
    pub fn send<B: IoBuf>(&self, buf: B) -> impl Future<Output = BufResult<usize, B>> {
        Op::new(Send::new(&self.fd, buf))
    }

    /// Receives one datagram into `buf` (from its start), like recv(2).
    pub fn recv<B: IoBufMut>(&self, buf: B) -> impl Future<Output = BufResult<usize, B>> {
        Op::new(Recv::new(&self.fd, buf, true))
    }

    /// Receives one datagram into a buffer of the runtime's pool (see
    /// [`TcpStream::recv_pooled`](crate::net::TcpStream::recv_pooled)); a
    /// datagram longer than the pool's buffer size less 272 bytes (its
    /// source and control messages go first) is truncated.
    pub async fn recv_pooled(&self) -> io::Result<PooledBuf> {
        let got = crate::op::pooled::recv(&self.fd, true).await?;
        Ok(got.unwrap_or_else(|| PooledBuf::owned(Vec::new())))
    }

    /// Sends `buf` as one datagram to the connected peer with `fds`
    /// attached (`SCM_RIGHTS`), like sendmsg(2); see
    /// [`UnixStream::send_with_fds`](crate::net::UnixStream::send_with_fds).
    /// An empty datagram may carry fds.
    pub async fn send_with_fds<B: IoBuf>(
        &self,
        buf: B,
        fds: &[BorrowedFd<'_>],
    ) -> BufResult<usize, B> {
        fds::send_with_fds(&self.fd, buf, fds, false).await
    }

    /// Receives one datagram into `buf` with up to `max_fds` fds sent with
    /// it; see [`UnixStream::recv_with_fds`](crate::net::UnixStream::recv_with_fds)
    /// (a datagram dropped with its future is kept, without its fds, which
    /// are closed).
    pub async fn recv_with_fds<B: IoBufMut>(
        &self,
        buf: B,
        max_fds: usize,
    ) -> BufResult<(usize, Vec<OwnedFd>), B> {
        fds::recv_with_fds(&self.fd, buf, max_fds, true).await
    }

    /// Shuts down the read side, the write side or both, like shutdown(2).
    pub async fn shutdown(&self, how: std::net::Shutdown) -> io::Result<()> {
        Op::new(Shutdown::new(&self.fd, how)).await
    }

    /// The address this socket is bound to (unnamed if none).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        SocketAddr::from_sock(SockRef::from(self).local_addr()?)
    }

    /// The connected peer's address; `NotConnected` if there is none.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        SocketAddr::from_sock(SockRef::from(self).peer_addr()?)
    }

    /// Wraps a std socket (blocking or not).
    pub fn from_std(socket: std::os::unix::net::UnixDatagram) -> UnixDatagram {
        UnixDatagram {
            fd: SharedFd::new(OwnedFd::from(socket)),
        }
    }

    /// Returns the std socket; `ResourceBusy` if an op still uses it.
    pub fn into_std(self) -> io::Result<std::os::unix::net::UnixDatagram> {
        self.fd
            .try_release()
            .map(std::os::unix::net::UnixDatagram::from)
            .map_err(|_| busy())
    }
}

impl AsRawFd for UnixDatagram {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.raw()
    }
}

impl AsFd for UnixDatagram {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}
