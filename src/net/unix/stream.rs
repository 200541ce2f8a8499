//! `UnixStream`: a connected Unix stream socket with owned-buffer I/O.

use std::future::Future;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::path::Path;

use socket2::{Domain, SockRef, Socket, Type};

use super::cred::{UCred, peer_cred};
use super::split::{OwnedReadHalf, OwnedWriteHalf};
use super::{SocketAddr, fds};
use crate::buf::{BufResult, IoBuf, IoBufMut, PooledBuf};
use crate::fd::SharedFd;
use crate::net::stream_io;
use crate::net::tcp::busy;
use crate::op::Op;
use crate::op::net::Connect;

/// A Unix stream connection: the same owned-buffer, cancel-safe API as
/// [`TcpStream`](crate::net::TcpStream), plus passing fds
/// ([`send_with_fds`](Self::send_with_fds), [`recv_with_fds`](Self::recv_with_fds))
/// and the peer's credentials ([`peer_cred`](Self::peer_cred)).
///
/// ```
/// use corio::net::{UnixListener, UnixStream};
///
/// corio::run(async {
///     let path = std::env::temp_dir().join(format!("corio-doc-{}.sock", std::process::id()));
///     let listener = UnixListener::bind(&path)?;
///     corio::spawn(async move {
///         let (peer, _) = listener.accept().await?;
///         peer.write_all(b"pong".as_slice()).await.0
///     });
///
///     let stream = UnixStream::connect(&path).await?;
///     let (res, buf) = stream.read(Vec::with_capacity(1024)).await;
///     assert_eq!(&buf[..res?], b"pong");
///     // Which process is at the other end (here: this one).
///     assert_eq!(stream.peer_cred()?.pid(), std::process::id() as i32);
///     std::fs::remove_file(&path) // corio never removes a socket file itself
/// })
/// .unwrap();
/// ```
#[derive(Debug)]
pub struct UnixStream {
    pub(crate) fd: SharedFd,
}

impl UnixStream {
    pub(crate) fn from_fd(fd: SharedFd) -> UnixStream {
        // A read stops after bytes that carried fds: a short read does not
        // show the socket drained.
        fd.set_reads_stop_short();
        UnixStream { fd }
    }

    /// Connects to the socket file at `path`.
    ///
    /// `InvalidInput` for a path too long for `sun_path`, `NotFound` when
    /// nothing is at `path`, `ConnectionRefused` when no socket listens
    /// there (a stale socket file, or a file that is not a socket).
    pub async fn connect(path: impl AsRef<Path>) -> io::Result<UnixStream> {
        UnixStream::connect_addr(SocketAddr::from_pathname(path)?).await
    }

    /// Connects to `addr`: a path or a Linux abstract name (std's addresses
    /// convert). An abstract name nobody listens on gives
    /// `ConnectionRefused`.
    pub async fn connect_addr(addr: impl Into<SocketAddr>) -> io::Result<UnixStream> {
        let addr = addr.into();
        let fd = SharedFd::new(OwnedFd::from(Socket::new(
            Domain::UNIX,
            Type::STREAM,
            None,
        )?));
        Op::new(Connect::new(&fd, addr.as_sock().clone())).await?;
        Ok(UnixStream::from_fd(fd))
    }

    /// Two streams connected to each other, like socketpair(2).
    ///
    /// ```
    /// corio::run(async {
    ///     let (a, b) = corio::net::UnixStream::pair()?;
    ///     a.write_all(b"hi".as_slice()).await.0?;
    ///     let (res, buf) = b.read(vec![0u8; 8]).await;
    ///     assert_eq!(&buf[..res?], b"hi");
    ///     Ok::<_, std::io::Error>(())
    /// })
    /// .unwrap();
    /// ```
    pub fn pair() -> io::Result<(UnixStream, UnixStream)> {
        let (a, b) = std::os::unix::net::UnixStream::pair()?;
        Ok((UnixStream::from_std(a), UnixStream::from_std(b)))
    }

    /// Reads into `buf` from its start, up to its capacity, like recv(2);
    /// `Ok(0)` means the peer closed its side. Cancel-safe, as
    /// [`TcpStream::read`](crate::net::TcpStream::read).
    ///
    /// Fds the peer sent with these bytes are closed by the kernel: on a
    /// socket that receives fds, read with [`recv_with_fds`](Self::recv_with_fds).
    pub fn read<B: IoBufMut>(&self, buf: B) -> impl Future<Output = BufResult<usize, B>> {
        stream_io::read(&self.fd, buf)
    }

    /// Reads until `buf` is full to its capacity; `UnexpectedEof` if the
    /// stream ends first.
    #[inline]
    pub fn read_exact<B: IoBufMut>(&self, buf: B) -> impl Future<Output = BufResult<(), B>> + '_ {
        stream_io::read_exact(&self.fd, buf)
    }

    /// Receives into a buffer of the runtime's pool; `Ok(None)` once the
    /// peer has closed its side. See
    /// [`TcpStream::recv_pooled`](crate::net::TcpStream::recv_pooled).
    pub fn recv_pooled(&self) -> impl Future<Output = io::Result<Option<PooledBuf>>> {
        stream_io::recv_pooled(&self.fd)
    }

    /// Writes the initialised bytes of `buf`, like send(2); may write fewer.
    /// Writing to a closed peer gives `BrokenPipe` (never `SIGPIPE`).
    pub fn write<B: IoBuf>(&self, buf: B) -> impl Future<Output = BufResult<usize, B>> {
        stream_io::write(&self.fd, buf)
    }

    /// Writes all initialised bytes of `buf`, looping over short writes.
    #[inline]
    pub fn write_all<B: IoBuf>(&self, buf: B) -> impl Future<Output = BufResult<(), B>> + '_ {
        stream_io::write_all(&self.fd, buf)
    }

    /// Writes several buffers with one sendmsg(2); may write fewer bytes
    /// than given.
    pub fn writev<B: IoBuf>(&self, bufs: Vec<B>) -> impl Future<Output = BufResult<usize, Vec<B>>> {
        stream_io::writev(&self.fd, bufs)
    }

    /// Sends the initialised bytes of `buf` with `fds` attached
    /// (`SCM_RIGHTS`), like sendmsg(2); may send fewer bytes (the fds go
    /// with the first one; send the rest with [`write_all`](Self::write_all)).
    ///
    /// The fds are duplicated for the send, so yours may be closed as soon
    /// as the call returns. `InvalidInput` for more than 253 fds, or fds
    /// with an empty buffer (a stream carries fds only with data).
    ///
    /// ```
    /// use std::os::fd::AsFd;
    ///
    /// corio::run(async {
    ///     let (a, b) = corio::net::UnixStream::pair()?;
    ///     let file = std::fs::File::open("/dev/null")?;
    ///     a.send_with_fds(b"f".as_slice(), &[file.as_fd()]).await.0?;
    ///     let (res, _buf) = b.recv_with_fds(vec![0u8; 16], 4).await;
    ///     let (n, fds) = res?;
    ///     assert_eq!((n, fds.len()), (1, 1));
    ///     Ok::<_, std::io::Error>(())
    /// })
    /// .unwrap();
    /// ```
    pub async fn send_with_fds<B: IoBuf>(
        &self,
        buf: B,
        fds: &[BorrowedFd<'_>],
    ) -> BufResult<usize, B> {
        fds::send_with_fds(&self.fd, buf, fds, true).await
    }

    /// Reads into `buf` (from its start) and takes up to `max_fds` fds sent
    /// with those bytes (`SCM_RIGHTS`, at most 253), like recvmsg(2); the
    /// fds are yours, close-on-exec. `Ok((0, _))` means the peer closed its
    /// side.
    ///
    /// A read stops after the bytes that carried fds, so each call returns
    /// the fds of at most one send. When more fds came than `max_fds`
    /// (`MSG_CTRUNC`; also when this process is out of fds) the call fails
    /// with `InvalidData`: the fds that arrived are closed and the bytes are
    /// kept for the next read. Cancel-safe for the bytes: if the future is
    /// dropped after the kernel received them, they are returned by the
    /// next read, and the fds that came with them are closed (never leaked).
    pub async fn recv_with_fds<B: IoBufMut>(
        &self,
        buf: B,
        max_fds: usize,
    ) -> BufResult<(usize, Vec<OwnedFd>), B> {
        fds::recv_with_fds(&self.fd, buf, max_fds, false).await
    }

    /// Shuts down the read side, the write side or both, like shutdown(2).
    pub fn shutdown(&self, how: std::net::Shutdown) -> impl Future<Output = io::Result<()>> {
        stream_io::shutdown(&self.fd, how)
    }

    /// The peer's process, user and group ids (`SO_PEERCRED`).
    pub fn peer_cred(&self) -> io::Result<UCred> {
        peer_cred(self.as_fd())
    }

    /// The local address (unnamed for most clients).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        SocketAddr::from_sock(SockRef::from(self).local_addr()?)
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        SocketAddr::from_sock(SockRef::from(self).peer_addr()?)
    }

    /// Splits into a read half and a write half that can move to two tasks.
    pub fn into_split(self) -> (OwnedReadHalf, OwnedWriteHalf) {
        let fd = self.fd;
        (OwnedReadHalf { fd: fd.clone() }, OwnedWriteHalf { fd })
    }

    /// Wraps a connected std stream (blocking or not).
    pub fn from_std(stream: std::os::unix::net::UnixStream) -> UnixStream {
        UnixStream::from_fd(SharedFd::new(OwnedFd::from(stream)))
    }

    /// Returns the std stream; `ResourceBusy` if an operation (say a dropped
    /// read whose cancellation has not completed) still uses the socket.
    /// Bytes kept from dropped reads are lost.
    pub fn into_std(self) -> io::Result<std::os::unix::net::UnixStream> {
        self.fd
            .try_release()
            .map(std::os::unix::net::UnixStream::from)
            .map_err(|_| busy())
    }
}

impl AsRawFd for UnixStream {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.raw()
    }
}

impl AsFd for UnixStream {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}
