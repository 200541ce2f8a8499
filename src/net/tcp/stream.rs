//! `TcpStream`: a connected TCP socket with owned-buffer I/O.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::time::Duration;

use socket2::{SockRef, Type};

use super::listener::{busy, sock_addr};
use super::{OwnedReadHalf, OwnedWriteHalf};
use crate::buf::{BufResult, IoBuf, IoBufMut, PooledBuf, Slice};
use crate::fd::SharedFd;
use crate::fs::FixedBuf;
use crate::net::ToSocketAddrs;
use crate::net::lookup::resolve;
use crate::net::socket::connect;
use crate::net::stream_io;

/// A TCP connection.
///
/// I/O methods take `&self`, so one task may read and write at once (e.g. by
/// joining the two futures); [`into_split`](Self::into_split) gives halves
/// for two tasks. Every method that moves data takes an owned buffer and
/// returns it with the result.
///
/// ```
/// use corio::net::{TcpListener, TcpStream};
///
/// corio::run(async {
///     let listener = TcpListener::bind("127.0.0.1:0")?;
///     let addr = listener.local_addr()?;
///     corio::spawn(async move {
///         // The other end: answers "pong".
///         let (peer, _) = listener.accept().await?;
///         let (res, _) = peer.read(Vec::with_capacity(64)).await;
///         res?;
///         peer.write_all(b"pong".as_slice()).await.0
///     });
///
///     let stream = TcpStream::connect(addr).await?;
///     let (res, _) = stream.write_all(b"ping".as_slice()).await;
///     res?;
///     // The buffer goes in by value and comes back with the count.
///     let (res, buf) = stream.read(Vec::with_capacity(1024)).await;
///     assert_eq!(&buf[..res?], b"pong");
///     Ok::<_, std::io::Error>(())
/// })
/// .unwrap();
/// ```
#[derive(Debug)]
pub struct TcpStream {
    pub(crate) fd: SharedFd,
}

impl TcpStream {
    pub(crate) fn from_fd(fd: SharedFd) -> TcpStream {
        TcpStream { fd }
    }

    /// A connection a listener accepted: also installed in the runtime's
    /// registered-file table, when it has one (`Builder::registered_files`).
    pub(crate) fn accepted(fd: OwnedFd) -> TcpStream {
        let fd = SharedFd::new(fd);
        crate::op::install_file(&fd);
        TcpStream { fd }
    }

    /// Opens a connection to `addr`, trying each resolved address in turn;
    /// the error is the last address's.
    ///
    /// A closed port gives `ErrorKind::ConnectionRefused`. A host name is
    /// resolved on the blocking pool (see
    /// [`lookup_host`](crate::net::lookup_host)), never on the runtime's
    /// thread; a literal address needs no lookup.
    ///
    /// Not cancel-safe: a dropped `connect` abandons the connection attempt.
    pub async fn connect(addr: impl ToSocketAddrs) -> io::Result<TcpStream> {
        let addrs = resolve(&addr).await?;
        Ok(TcpStream {
            fd: connect(&addrs, Type::STREAM, None).await?,
        })
    }

    /// Like [`connect`](Self::connect), giving each address at most
    /// `per_attempt` to accept: an attempt that takes longer is dropped
    /// (its socket closed) with `ErrorKind::TimedOut`, and the next address
    /// is tried. The name lookup itself is not bounded by it (wrap the call
    /// in [`timeout`](crate::time::timeout) to bound everything).
    ///
    /// ```no_run
    /// use std::time::Duration;
    ///
    /// # corio::run(async {
    /// // "localhost" may resolve to ::1 and 127.0.0.1: each gets 250 ms.
    /// let stream = corio::net::TcpStream::connect_timeout(
    ///     "localhost:8000",
    ///     Duration::from_millis(250),
    /// )
    /// .await?;
    /// stream.set_nodelay(true)?;
    /// # Ok::<_, std::io::Error>(()) }).unwrap();
    /// ```
    pub async fn connect_timeout(
        addr: impl ToSocketAddrs,
        per_attempt: Duration,
    ) -> io::Result<TcpStream> {
        let addrs = resolve(&addr).await?;
        Ok(TcpStream {
            fd: connect(&addrs, Type::STREAM, Some(per_attempt)).await?,
        })
    }

    /// Reads into `buf` from its start, up to its capacity, like recv(2);
    /// `Ok(0)` means the peer closed its side.
    ///
    /// The buffer's initialised length becomes at least the count read. Use
    /// [`IoBuf::slice`] to read into a part of a buffer. Cancel-safe: bytes
    /// that arrive for a dropped read are returned by the next one.
    pub fn read<B: IoBufMut>(&self, buf: B) -> impl Future<Output = BufResult<usize, B>> {
        stream_io::read(&self.fd, buf)
    }

    /// Like [`read`](Self::read), but gives up after `timeout` with
    /// `ErrorKind::TimedOut` (and the buffer back).
    ///
    /// On io_uring the deadline is the kernel's: the receive and an
    /// `IORING_OP_LINK_TIMEOUT` go in as one linked SQE pair, with no
    /// user-space timer. Elsewhere (the poll driver, kernels without
    /// LINK_TIMEOUT, [`Builder::disable_opcodes`](crate::Builder::disable_opcodes)`(["LINK_TIMEOUT"])`)
    /// a timer races the read. Either way data that arrives at the deadline
    /// is never lost: if the read got it, that result wins; otherwise the
    /// socket still holds it for the next read. A timed-out socket stays
    /// usable.
    ///
    /// ```no_run
    /// use std::io::ErrorKind;
    /// use std::time::Duration;
    ///
    /// # corio::run(async {
    /// let stream = corio::net::TcpStream::connect("127.0.0.1:9000").await?;
    /// let (res, buf) = stream.read_timeout(Vec::with_capacity(4096), Duration::from_secs(5)).await;
    /// match res {
    ///     Ok(n) => println!("{:?}", &buf[..n]),
    ///     Err(e) if e.kind() == ErrorKind::TimedOut => println!("idle for 5 s"),
    ///     Err(e) => return Err(e),
    /// }
    /// # Ok::<_, std::io::Error>(()) }).unwrap();
    /// ```
    ///
    /// Cancel-safe, as [`read`](Self::read).
    pub async fn read_timeout<B: IoBufMut>(
        &self,
        buf: B,
        timeout: Duration,
    ) -> BufResult<usize, B> {
        stream_io::read_timeout(&self.fd, buf, timeout).await
    }

    /// Receives into a buffer of the runtime's pool and returns it as a
    /// lease; `Ok(None)` once the peer has closed its side.
    ///
    /// On io_uring the first call arms a multishot receive that stays armed
    /// for the life of the socket, and the kernel picks a pool buffer only
    /// when data arrives: an idle connection holds no buffer. Dropping the
    /// lease gives the buffer back. Cancel-safe: data that arrives while no
    /// call waits (say after a `timeout` dropped one) is returned by the
    /// next call. When every pool buffer is leased out the receive waits for
    /// one to come back (see [`Builder::buffer_pool`](crate::Builder::buffer_pool)).
    ///
    /// ```no_run
    /// # corio::run(async {
    /// let stream = corio::net::TcpStream::connect("127.0.0.1:9000").await?;
    /// while let Some(data) = stream.recv_pooled().await? {
    ///     stream.write_all(data.to_vec()).await.0?;
    /// }
    /// # Ok::<_, std::io::Error>(()) }).unwrap();
    /// ```
    pub fn recv_pooled(&self) -> impl Future<Output = io::Result<Option<PooledBuf>>> {
        stream_io::recv_pooled(&self.fd)
    }

    /// Reads until `buf` is full to its capacity; `UnexpectedEof` if the
    /// stream ends first.
    ///
    /// Not cancel-safe: bytes already read into `buf` go with it when the
    /// future is dropped.
    #[inline]
    pub fn read_exact<B: IoBufMut>(&self, buf: B) -> impl Future<Output = BufResult<(), B>> + '_ {
        stream_io::read_exact(&self.fd, buf)
    }

    /// Writes the initialised bytes of `buf`, like send(2); may write fewer.
    ///
    /// Writing to a closed peer gives `BrokenPipe` (never `SIGPIPE`).
    ///
    /// Not cancel-safe: a write dropped mid-flight may have sent some bytes.
    pub fn write<B: IoBuf>(&self, buf: B) -> impl Future<Output = BufResult<usize, B>> {
        stream_io::write(&self.fd, buf)
    }

    /// Writes all initialised bytes of `buf`, looping over short writes.
    ///
    /// Not cancel-safe: a dropped `write_all` may have sent part of `buf`.
    #[inline]
    pub fn write_all<B: IoBuf>(&self, buf: B) -> impl Future<Output = BufResult<(), B>> + '_ {
        stream_io::write_all(&self.fd, buf)
    }

    /// Writes the initialised bytes of `buf` without copying them into the
    /// kernel, like send(2) with `MSG_ZEROCOPY` (`IORING_OP_SEND_ZC`); may
    /// write fewer.
    ///
    /// The network card reads the pages of `buf` itself, so the future
    /// completes (and gives the buffer back) only once the kernel's
    /// notification says it is done with them. If the future is dropped the
    /// driver keeps the buffer until then. Zero-copy pays off for large
    /// buffers sent to a real network device; on loopback the kernel copies
    /// anyway and a plain [`write`](Self::write) costs less. Where the kernel
    /// lacks SEND_ZC (Linux < 6.0), on the poll driver, or with
    /// [`Builder::disable_opcodes`](crate::Builder::disable_opcodes)`(["SEND_ZC"])`
    /// it is a plain send.
    ///
    /// Not cancel-safe, as [`write`](Self::write).
    pub fn send_zc<B: IoBuf>(&self, buf: B) -> impl Future<Output = BufResult<usize, B>> {
        stream_io::send_zc(&self.fd, buf)
    }

    /// Writes all initialised bytes of `buf` with zero-copy sends
    /// ([`send_zc`](Self::send_zc)), looping over short ones.
    ///
    /// ```no_run
    /// # corio::run(async {
    /// let stream = corio::net::TcpStream::connect("127.0.0.1:9000").await?;
    /// let (res, _buf) = stream.write_all_zc(vec![7u8; 1 << 20]).await;
    /// res?;
    /// # Ok::<_, std::io::Error>(()) }).unwrap();
    /// ```
    ///
    /// Not cancel-safe: a dropped `write_all_zc` may have sent part of `buf`
    /// (the buffer itself is freed only once the kernel is done with it).
    pub fn write_all_zc<B: IoBuf>(&self, buf: B) -> impl Future<Output = BufResult<(), B>> + '_ {
        stream_io::write_all_zc(&self.fd, buf)
    }

    /// [`send_zc`](Self::send_zc) from part of a registered buffer (a
    /// [`FixedBuf`](crate::fs::FixedBuf) of a
    /// [`FixedBufPool`](crate::fs::FixedBufPool)): on io_uring the SEND_ZC
    /// names the buffer's index (`IORING_RECVSEND_FIXED_BUF`), so the kernel
    /// skips pinning its pages for each send. Where the pool is not
    /// registered with this runtime's ring, or SEND_ZC is missing or turned
    /// off, or on the poll driver, it sends the same bytes as `send_zc`
    /// does there. The buffer comes back only once the kernel is done with
    /// it; if the future is dropped the driver keeps it until then.
    ///
    /// ```no_run
    /// use corio::IoBuf;
    /// # corio::run(async {
    /// let pool = corio::fs::FixedBufPool::new(4, 64 << 10)?;
    /// let mut buf = pool.get().unwrap();
    /// buf.extend_from_slice(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n");
    /// let stream = corio::net::TcpStream::connect("127.0.0.1:9000").await?;
    /// let len = buf.len();
    /// let (res, buf) = stream.send_zc_fixed(buf.slice(..len)).await;
    /// let sent = res?;
    /// # drop((sent, buf)); Ok::<_, std::io::Error>(()) }).unwrap();
    /// ```
    ///
    /// Not cancel-safe, as [`write`](Self::write).
    pub fn send_zc_fixed(
        &self,
        buf: Slice<FixedBuf>,
    ) -> impl Future<Output = BufResult<usize, Slice<FixedBuf>>> {
        stream_io::send_zc_fixed(&self.fd, buf)
    }

    /// Writes all of a registered buffer's bytes with
    /// [`send_zc_fixed`](Self::send_zc_fixed), looping over short sends.
    ///
    /// Not cancel-safe: a dropped `write_all_zc_fixed` may have sent part of
    /// `buf` (the buffer itself goes back to its pool only once the kernel
    /// is done with it).
    pub fn write_all_zc_fixed(
        &self,
        buf: FixedBuf,
    ) -> impl Future<Output = BufResult<(), FixedBuf>> + '_ {
        stream_io::write_all_zc_fixed(&self.fd, buf)
    }

    /// Sends up to `len` bytes of `file` starting at `offset`, without
    /// copying them through user space; the count sent, fewer than `len`
    /// only when the file ends first (0 for an offset at or past its end).
    ///
    /// On io_uring it splices (`IORING_OP_SPLICE`, Linux 5.7) from the file
    /// into a pipe the runtime keeps for reuse and from the pipe into the
    /// socket; on the poll driver, or where the kernel lacks SPLICE (or
    /// [`Builder::disable_opcodes`](crate::Builder::disable_opcodes)`(["SPLICE"])`),
    /// it is sendfile(2) (on the blocking pool for io_uring). An offset +
    /// length past `i64::MAX` is `InvalidInput`; an error after some bytes
    /// were sent is returned as the error.
    ///
    /// ```no_run
    /// # corio::run(async {
    /// let file = corio::fs::File::open("index.html").await?;
    /// let stream = corio::net::TcpStream::connect("127.0.0.1:9000").await?;
    /// let sent = stream.send_file(&file, 0, u64::MAX >> 1).await?;
    /// println!("{sent} bytes");
    /// # Ok::<_, std::io::Error>(()) }).unwrap();
    /// ```
    ///
    /// Not cancel-safe: a dropped `send_file` may have sent part of the range.
    #[cfg(target_os = "linux")]
    pub async fn send_file(
        &self,
        file: &crate::fs::File,
        offset: u64,
        len: u64,
    ) -> io::Result<u64> {
        super::send_file::send_file(&self.fd, file, offset, len).await
    }

    /// Writes several buffers with one sendmsg(2); may write fewer bytes than given.
    ///
    /// Not cancel-safe, as [`write`](Self::write).
    pub fn writev<B: IoBuf>(&self, bufs: Vec<B>) -> impl Future<Output = BufResult<usize, Vec<B>>> {
        stream_io::writev(&self.fd, bufs)
    }

    /// Shuts down the read side, the write side or both, like shutdown(2).
    ///
    /// Cancel-safe in effect: shutdown(2) completes at once; a dropped call
    /// may or may not have shut the socket down.
    pub fn shutdown(&self, how: std::net::Shutdown) -> impl Future<Output = io::Result<()>> {
        stream_io::shutdown(&self.fd, how)
    }

    /// The remote address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        sock_addr(SockRef::from(self).peer_addr()?)
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        sock_addr(SockRef::from(self).local_addr()?)
    }

    /// Sets `TCP_NODELAY` (disables Nagle's algorithm).
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        SockRef::from(self).set_tcp_nodelay(nodelay)
    }

    /// Whether `TCP_NODELAY` is set.
    pub fn nodelay(&self) -> io::Result<bool> {
        SockRef::from(self).tcp_nodelay()
    }

    /// Splits into a read half and a write half that can move to two tasks.
    pub fn into_split(self) -> (OwnedReadHalf, OwnedWriteHalf) {
        let fd = self.fd;
        (OwnedReadHalf { fd: fd.clone() }, OwnedWriteHalf { fd })
    }

    /// Wraps a connected std stream. A stream in non-blocking mode works too.
    pub fn from_std(stream: std::net::TcpStream) -> TcpStream {
        TcpStream {
            fd: SharedFd::new(OwnedFd::from(stream)),
        }
    }

    /// Returns the std stream, failing with `ResourceBusy` if an operation
    /// (e.g. a dropped read whose cancellation has not completed) still uses
    /// the socket. Bytes kept from dropped reads are lost.
    pub fn into_std(self) -> io::Result<std::net::TcpStream> {
        self.fd
            .try_release()
            .map(std::net::TcpStream::from)
            .map_err(|_| busy())
    }
}

impl AsRawFd for TcpStream {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.raw()
    }
}

impl AsFd for TcpStream {
    fn as_fd(&self) -> BorrowedFd<'_> {
        // SAFETY: the fd stays open at least as long as `self`.
        unsafe { BorrowedFd::borrow_raw(self.fd.raw()) }
    }
}
