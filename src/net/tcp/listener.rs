//! `TcpListener`: accepts connections with io_uring's accept op.

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

use socket2::{SockRef, Type};

use super::{Incoming, TcpStream};
use crate::fd::SharedFd;
use crate::net::backoff::AcceptBackoff;
use crate::net::socket::{each_addr, new_socket, resolve};
use crate::op::Op;
use crate::op::net::Accept;
use crate::runtime::refuse;

/// A TCP socket server, listening for connections.
///
/// ```
/// use corio::net::TcpListener;
///
/// corio::run(async {
///     let listener = TcpListener::bind("127.0.0.1:0")?; // port 0: any free port
///     let addr = listener.local_addr()?;
///     # let client = corio::spawn(corio::net::TcpStream::connect(addr));
///     let (stream, peer) = listener.accept().await?;
///     println!("connection from {peer} to {addr}");
///     stream.write_all(b"hello\n".as_slice()).await.0?;
///     # let (res, buf) = client.await??.read(Vec::with_capacity(8)).await;
///     # assert_eq!(&buf[..res?], b"hello\n");
///     Ok::<_, std::io::Error>(())
/// })
/// .unwrap();
/// ```
#[derive(Debug)]
pub struct TcpListener {
    pub(super) fd: SharedFd,
    /// Set while accepts fail for lack of fds (`net/backoff.rs`).
    pub(super) backoff: AcceptBackoff,
}

impl TcpListener {
    /// Binds to `addr` (with `SO_REUSEADDR`) and listens with a backlog of 1024.
    ///
    /// Tries each resolved address in turn, like std.
    pub fn bind(addr: impl ToSocketAddrs) -> io::Result<TcpListener> {
        Self::bind_with(addr, false)
    }

    /// Like [`bind`](Self::bind), with `SO_REUSEPORT` as well: every shard
    /// of a [`Builder::run`](crate::Builder::run) binds its own listener to
    /// the same port and the kernel spreads incoming connections over them.
    ///
    /// ```no_run
    /// use corio::net::TcpListener;
    ///
    /// corio::Builder::new()
    ///     .shards(2)
    ///     .run(|_shard| async {
    ///         let listener = TcpListener::bind_reuseport("127.0.0.1:8000").unwrap();
    ///         let (_conn, _peer) = listener.accept().await.unwrap();
    ///     })
    ///     .unwrap();
    /// ```
    pub fn bind_reuseport(addr: impl ToSocketAddrs) -> io::Result<TcpListener> {
        Self::bind_with(addr, true)
    }

    fn bind_with(addr: impl ToSocketAddrs, reuse_port: bool) -> io::Result<TcpListener> {
        let addrs = resolve(addr)?;
        each_addr(&addrs, |a| {
            let s = new_socket(a, Type::STREAM)?;
            s.set_reuse_address(true)?;
            if reuse_port {
                s.set_reuse_port(true)?;
            }
            s.bind(&(*a).into())?;
            s.listen(1024)?;
            Ok(TcpListener::from_fd(SharedFd::new(OwnedFd::from(s))))
        })
    }

    /// Accepts a new connection, like accept4(2).
    ///
    /// Cancel-safe: if this future is dropped after the kernel accepted a
    /// connection, the connection is returned by the next `accept` on this
    /// listener (or closed when the listener is dropped).
    ///
    /// Errors are returned as they are. After one that means the process is
    /// out of fds or memory (`EMFILE`, `ENFILE`, `ENOBUFS`, `ENOMEM`), the
    /// listener's next accept first waits until the runtime closes an fd or
    /// a short back-off passes (1 ms, doubling with each such error in a row,
    /// at most 100 ms), so a loop that retries at once does not spin.
    ///
    /// Once the runtime is shutting down ([`Handle::shutdown`]), `accept`
    /// fails at once, also when it was already waiting, and
    /// [`is_shutting_down`] is true: stop accepting then, and drop the
    /// listener, so new connections are refused.
    ///
    /// [`Handle::shutdown`]: crate::runtime::Handle::shutdown
    /// [`is_shutting_down`]: crate::runtime::is_shutting_down
    pub async fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let res = {
            // The back-off wait (no more than 100 ms) comes before the
            // shutdown check, in its own state: the future stays the size
            // of the accept op.
            self.backoff.wait().await;
            refuse::accept(Op::new(Accept::new(&self.fd, false))).await
        };
        self.backoff.record(&res);
        let (fd, peer) = res?;
        let stream = TcpStream::accepted(fd);
        let peer = match peer.and_then(|p| p.as_socket()) {
            Some(p) => p,
            None => stream.peer_addr()?,
        };
        Ok((stream, peer))
    }

    /// A stream of accepted connections, on one multishot accept (io_uring)
    /// that stays armed while the [`Incoming`] lives.
    ///
    /// Errors (e.g. `EMFILE`) are returned by [`Incoming::next`] and end the
    /// multishot op; the next call re-arms it, after the same back-off as
    /// [`accept`](Self::accept)'s.
    /// [`Incoming`] is also a [`Stream`](crate::stream::Stream) (that never
    /// ends). Connections
    /// accepted after the `Incoming` is dropped go to the listener's next
    /// `accept` or `incoming`. Once the runtime is shutting down, `next`
    /// fails as [`accept`](Self::accept) does.
    ///
    /// ```no_run
    /// # async fn serve() -> std::io::Result<()> {
    /// let listener = corio::net::TcpListener::bind("127.0.0.1:9000")?;
    /// let mut incoming = listener.incoming();
    /// loop {
    ///     let stream = incoming.next().await?;
    ///     corio::spawn(async move { drop(stream) });
    /// }
    /// # }
    /// # corio::run(serve()).unwrap();
    /// ```
    pub fn incoming(&self) -> Incoming<'_> {
        Incoming::new(self)
    }

    /// The local address this listener is bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        sock_addr(SockRef::from(self).local_addr()?)
    }

    /// Wraps a listening std socket (blocking or not).
    pub fn from_std(listener: std::net::TcpListener) -> TcpListener {
        TcpListener::from_fd(SharedFd::new(OwnedFd::from(listener)))
    }

    fn from_fd(fd: SharedFd) -> TcpListener {
        TcpListener {
            fd,
            backoff: AcceptBackoff::default(),
        }
    }

    /// Returns the std listener, failing if an operation (say an accept
    /// whose future was dropped and whose cancellation has not completed yet)
    /// still uses the socket.
    pub fn into_std(self) -> io::Result<std::net::TcpListener> {
        self.fd
            .try_release()
            .map(std::net::TcpListener::from)
            .map_err(|_| busy())
    }
}

pub(crate) fn busy() -> io::Error {
    io::Error::new(
        io::ErrorKind::ResourceBusy,
        "corio: the socket still has operations in flight",
    )
}

pub(crate) fn sock_addr(a: socket2::SockAddr) -> io::Result<SocketAddr> {
    a.as_socket()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "not an IP socket address"))
}

impl AsRawFd for TcpListener {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.raw()
    }
}

impl AsFd for TcpListener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        // SAFETY: the fd stays open at least as long as `self`.
        unsafe { BorrowedFd::borrow_raw(self.fd.raw()) }
    }
}
