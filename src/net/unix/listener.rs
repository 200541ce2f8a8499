//! `UnixListener`: accepts connections on a Unix stream socket.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::path::Path;

use socket2::{Domain, SockRef, Socket, Type};

use super::{SocketAddr, UnixStream};
use crate::fd::SharedFd;
use crate::net::backoff::AcceptBackoff;
use crate::net::tcp::busy;
use crate::op::Op;
use crate::op::net::Accept;
use crate::runtime::refuse;

/// A Unix stream socket server, listening for connections on a path or a
/// Linux abstract name.
///
/// Binding creates the socket file; dropping the listener does not remove
/// it (as with std). A file left by a listener that is gone (a *stale*
/// socket file) makes the next `bind` fail with `AddrInUse`, as a live one
/// does: corio never removes a file behind your back. Remove it yourself
/// once you know it is stale — for example when connecting to it fails
/// with `ConnectionRefused` (see `examples/unix_echo.rs`).
///
/// ```
/// use corio::net::UnixListener;
///
/// corio::run(async {
///     let path = std::env::temp_dir().join(format!("corio-doc-l-{}.sock", std::process::id()));
///     let listener = UnixListener::bind(&path)?;
///     # let client = corio::spawn(corio::net::UnixStream::connect(path.clone()));
///     let (stream, _peer) = listener.accept().await?;
///     stream.write_all(b"hello\n".as_slice()).await.0?;
///     # let (res, buf) = client.await??.read(Vec::with_capacity(8)).await;
///     # assert_eq!(&buf[..res?], b"hello\n");
///     drop(listener);
///     std::fs::remove_file(&path) // the file outlives the listener
/// })
/// .unwrap();
/// ```
#[derive(Debug)]
pub struct UnixListener {
    fd: SharedFd,
    /// Set while accepts fail for lack of fds (`net/backoff.rs`).
    backoff: AcceptBackoff,
}

impl UnixListener {
    /// Creates the socket file `path` and listens on it with a backlog of
    /// 1024.
    ///
    /// `InvalidInput` for a path too long for `sun_path` (107 bytes),
    /// `AddrInUse` when the file exists (a live socket, a stale one, or any
    /// other file), `NotFound` when its directory does not.
    pub fn bind(path: impl AsRef<Path>) -> io::Result<UnixListener> {
        UnixListener::bind_addr(SocketAddr::from_pathname(path)?)
    }

    /// Listens on `addr`: a path, or a Linux abstract name (std's
    /// addresses convert):
    ///
    /// ```
    /// use std::os::linux::net::SocketAddrExt;
    ///
    /// corio::run(async {
    ///     let name = format!("corio-doc-{}", std::process::id());
    ///     let addr = std::os::unix::net::SocketAddr::from_abstract_name(&name)?;
    ///     let listener = corio::net::UnixListener::bind_addr(&addr)?;
    ///     let local = listener.local_addr()?;
    ///     assert_eq!(local.as_abstract_name(), Some(name.as_bytes()));
    ///     Ok::<_, std::io::Error>(())
    /// })
    /// .unwrap();
    /// ```
    pub fn bind_addr(addr: impl Into<SocketAddr>) -> io::Result<UnixListener> {
        let addr = addr.into();
        let s = Socket::new(Domain::UNIX, Type::STREAM, None)?;
        s.bind(addr.as_sock())?;
        s.listen(1024)?;
        Ok(UnixListener::from_fd(SharedFd::new(OwnedFd::from(s))))
    }

    /// Accepts a new connection, like accept4(2), with the client's address
    /// (most clients are unnamed).
    ///
    /// Cancel-safe: a connection accepted for a dropped `accept` is returned
    /// by the next one on this listener (or closed with the listener).
    /// Errors are returned as they are; after `EMFILE`, `ENFILE`, `ENOBUFS`
    /// or `ENOMEM` the next accept backs off as
    /// [`TcpListener::accept`](crate::net::TcpListener::accept) describes.
    pub async fn accept(&self) -> io::Result<(UnixStream, SocketAddr)> {
        let (fd, peer) = self.accept_op(false).await?;
        let stream = UnixStream::from_fd(SharedFd::new(fd));
        let peer = match peer {
            Some(p) => SocketAddr::from_sock(p)?,
            // A connection kept for a dropped accept: ask the socket.
            None => stream.peer_addr()?,
        };
        Ok((stream, peer))
    }

    /// A stream of accepted connections, on one multishot accept (io_uring)
    /// that stays armed while the [`Incoming`] lives; see
    /// [`TcpListener::incoming`](crate::net::TcpListener::incoming).
    pub fn incoming(&self) -> Incoming<'_> {
        Incoming { listener: self }
    }

    /// One accept after the back-off, if any; records its result.
    async fn accept_op(&self, multishot: bool) -> io::Result<(OwnedFd, Option<socket2::SockAddr>)> {
        let res = {
            // The back-off wait (no more than 100 ms) comes before the
            // shutdown check, in its own state: the future stays the size
            // of the accept op.
            self.backoff.wait().await;
            refuse::accept(Op::new(Accept::new(&self.fd, multishot))).await
        };
        self.backoff.record(&res);
        res
    }

    /// The address this listener is bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        SocketAddr::from_sock(SockRef::from(self).local_addr()?)
    }

    /// Wraps a listening std socket (blocking or not).
    pub fn from_std(listener: std::os::unix::net::UnixListener) -> UnixListener {
        UnixListener::from_fd(SharedFd::new(OwnedFd::from(listener)))
    }

    fn from_fd(fd: SharedFd) -> UnixListener {
        UnixListener {
            fd,
            backoff: AcceptBackoff::default(),
        }
    }

    /// Returns the std listener; `ResourceBusy` if an operation (say an
    /// accept whose cancellation has not completed) still uses the socket.
    pub fn into_std(self) -> io::Result<std::os::unix::net::UnixListener> {
        self.fd
            .try_release()
            .map(std::os::unix::net::UnixListener::from)
            .map_err(|_| busy())
    }
}

/// Connections accepted by a [`UnixListener`]; see
/// [`UnixListener::incoming`].
pub struct Incoming<'a> {
    listener: &'a UnixListener,
}

impl Incoming<'_> {
    /// The next connection.
    pub async fn next(&mut self) -> io::Result<UnixStream> {
        let (fd, _) = self.listener.accept_op(true).await?;
        Ok(UnixStream::from_fd(SharedFd::new(fd)))
    }
}

impl std::fmt::Debug for Incoming<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Incoming").finish_non_exhaustive()
    }
}

impl AsRawFd for UnixListener {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.raw()
    }
}

impl AsFd for UnixListener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}
