//! `TlsStream`: a TLS session over a [`Transport`], with owned-buffer I/O.
//!
//! How it works: rustls does no I/O. Ciphertext read from the transport lands
//! in `rbuf`, a buffer the stream owns; [`read`](TlsStream::read) hands it to
//! rustls a piece at a time, decrypts, and copies plaintext into the caller's
//! buffer until that is full or nothing more can be decrypted without
//! waiting. [`write`](TlsStream::write) gives plaintext to rustls, gathers
//! the records it makes into `wbuf`, and sends them all before returning.
//!
//! Cancel safety: see the type's docs. The point is that each internal
//! buffer is *moved* into the socket operation and back, and that rustls only
//! ever sees ciphertext whose read has completed.

use std::fmt;
use std::io::{self, BufRead, Write};

use rustls::pki_types::CertificateDer;
use rustls::{Connection, ProtocolVersion, SupportedCipherSuite};

use super::Transport;
use crate::buf::copy::{init_bytes, put};
use crate::buf::{BufResult, IoBuf, IoBufMut};
use crate::runtime::coop;

/// Smallest capacity of the ciphertext read buffer: one full record (16 KiB
/// of plaintext plus header, tag and padding). An idle connection, or one in
/// its handshake, holds no more while its read waits.
const MIN_READ_BUF: usize = 17 * 1024;
/// Largest capacity: a bulk transfer (reads that fill the buffer) grows it to
/// this, to take a few records per socket read.
const MAX_READ_BUF: usize = 68 * 1024;

/// A TLS session over a transport `S` (a [`TcpStream`](crate::net::TcpStream)
/// by default), from [`TlsAcceptor::accept`](super::TlsAcceptor::accept) or
/// [`TlsConnector::connect`](super::TlsConnector::connect).
///
/// Its methods mirror `TcpStream`'s: each takes an owned buffer and gives it
/// back with the result. They take `&mut self`: one task reads and writes
/// in turn.
///
/// # Cancel safety
///
/// Reads are cancel-safe: a read may be dropped at any point (a `timeout`,
/// a lost `select`) and the next read goes on where it left off. A read
/// dropped while its socket read is in flight loses that internal buffer
/// (the driver keeps it until the kernel is done) but no data: corio's
/// sockets keep bytes that arrive for a dropped read and return them to the
/// next one, which starts from a fresh buffer. rustls only sees ciphertext
/// whose read has completed, and plaintext leaves rustls only when a read is
/// about to return it.
///
/// Writes are not: once a record is encrypted its sequence number is used,
/// and a write dropped mid-flight may have sent part of it. The stream then
/// refuses to send anything more (every later write and
/// [`shutdown`](Self::shutdown) fails with `BrokenPipe`; reading still
/// works) rather than send a corrupt stream. The same holds after a write
/// fails.
///
/// ```no_run
/// use std::sync::Arc;
///
/// use corio::net::TcpStream;
/// use corio::tls::{TlsConnector, rustls};
///
/// # fn config() -> rustls::ClientConfig { unimplemented!() }
/// corio::run(async {
///     let connector = TlsConnector::from(Arc::new(config()));
///     let tcp = TcpStream::connect("example.com:443").await?;
///     let mut tls = connector.connect("example.com", tcp).await?;
///     let (res, _) = tls
///         .write_all(b"GET / HTTP/1.0\r\nHost: example.com\r\n\r\n".as_slice())
///         .await;
///     res?;
///     let (res, buf) = tls.read(vec![0u8; 4096]).await;
///     println!("{}", String::from_utf8_lossy(&buf[..res?]));
///     Ok::<_, std::io::Error>(())
/// })
/// .unwrap();
/// ```
pub struct TlsStream<S> {
    io: S,
    conn: Connection,
    /// Ciphertext read from `io`; `rbuf[rpos..]` is not yet given to rustls.
    /// `None` while a socket read has it, and after that read was dropped.
    rbuf: Option<Vec<u8>>,
    rpos: usize,
    /// Capacity of the next read buffer: doubles after a read that filled
    /// the buffer, back to the minimum after a small one.
    rcap: usize,
    /// Records being sent; `None` while a socket write has it.
    wbuf: Option<Vec<u8>>,
    /// A socket write started and has not succeeded (its future was dropped,
    /// or it failed): an unknown part of a record went out.
    send_broken: bool,
}

impl<S: Transport> TlsStream<S> {
    pub(super) fn new(io: S, conn: Connection) -> TlsStream<S> {
        TlsStream {
            io,
            conn,
            rbuf: None,
            rpos: 0,
            rcap: MIN_READ_BUF,
            wbuf: None,
            send_broken: false,
        }
    }

    /// Runs the handshake to its end; on failure, tries to tell the peer why
    /// (rustls queues an alert).
    pub(super) async fn handshake(&mut self) -> io::Result<()> {
        let res = self.drive_handshake().await;
        if res.is_err() {
            let _ = self.flush().await;
        }
        res
    }

    async fn drive_handshake(&mut self) -> io::Result<()> {
        loop {
            self.flush().await?;
            if !self.conn.is_handshaking() {
                return Ok(());
            }
            if !self.decrypt_more()? && self.fill().await? == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the peer closed the connection during the TLS handshake",
                ));
            }
        }
    }

    /// Reads decrypted bytes into `buf` from its start, up to its capacity.
    ///
    /// `Ok(0)` means the peer closed the session cleanly (`close_notify`). A
    /// transport that ends without it gives `UnexpectedEof`, once all data
    /// before it has been read: a truncation a protocol without its own
    /// framing cannot otherwise detect. A protocol error gives `InvalidData`
    /// with the [`rustls::Error`] inside (`get_ref()` and downcast).
    ///
    /// The buffer's initialised length becomes at least the count read.
    /// Cancel-safe: nothing is lost when the future is dropped.
    pub async fn read<B: IoBufMut>(&mut self, mut buf: B) -> BufResult<usize, B> {
        let res = self.read_into(&mut buf).await;
        (res, buf)
    }

    async fn read_into<B: IoBufMut>(&mut self, buf: &mut B) -> io::Result<usize> {
        if buf.bytes_total() == 0 {
            return Ok(0);
        }
        // Yield before taking anything buffered (see `coop`): a future dropped
        // during the yield has taken nothing.
        coop::yield_if_spent().await;
        let mut waited = false;
        loop {
            match self.read_buffered(buf) {
                Ok(Some(n)) => {
                    if !waited {
                        coop::charge();
                    }
                    return Ok(n);
                }
                Ok(None) => {}
                Err(e) => {
                    // Tell the peer about a protocol error (an alert is queued).
                    let _ = self.flush().await;
                    return Err(e);
                }
            }
            self.fill().await?;
            waited = true;
        }
    }

    /// Reads until `buf` is full to its capacity; `UnexpectedEof` if the
    /// session ends first. Cancel-safe only in that the stream stays usable:
    /// bytes already copied into `buf` go with it when the future is dropped.
    pub async fn read_exact<B: IoBufMut>(&mut self, mut buf: B) -> BufResult<(), B> {
        let total = buf.bytes_total();
        let mut done = 0;
        while done < total {
            let (res, slice) = self.read(buf.slice(done..total)).await;
            buf = slice.into_inner();
            match res {
                Ok(0) => {
                    let e =
                        io::Error::new(io::ErrorKind::UnexpectedEof, "failed to fill whole buffer");
                    return (Err(e), buf);
                }
                Ok(n) => done += n,
                Err(e) => return (Err(e), buf),
            }
        }
        (Ok(()), buf)
    }

    /// Encrypts the initialised bytes of `buf` (as many as rustls takes at
    /// once, up to 64 KiB) and sends them; returns how many were taken.
    ///
    /// Not cancel-safe: see the type's notes.
    pub async fn write<B: IoBuf>(&mut self, buf: B) -> BufResult<usize, B> {
        let res = self.write_some(init_bytes(&buf)).await;
        (res, buf)
    }

    /// Encrypts and sends all initialised bytes of `buf`.
    ///
    /// Not cancel-safe: see the type's notes.
    pub async fn write_all<B: IoBuf>(&mut self, buf: B) -> BufResult<(), B> {
        let res = self.write_all_from(init_bytes(&buf)).await;
        (res, buf)
    }

    async fn write_all_from(&mut self, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            match self.write_some(data).await? {
                0 => {
                    let msg = "failed to write whole buffer";
                    return Err(io::Error::new(io::ErrorKind::WriteZero, msg));
                }
                n => data = &data[n..],
            }
        }
        Ok(())
    }

    async fn write_some(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.send_broken {
            return Err(send_broken());
        }
        let n = self.conn.writer().write(data)?;
        self.flush().await?;
        Ok(n)
    }

    /// Sends `close_notify`, then shuts the transport's write side (FIN).
    ///
    /// The peer's reads then end with `Ok(0)`. Reading still works until the
    /// peer closes its side.
    ///
    /// Not cancel-safe, as writes are not.
    pub async fn shutdown(&mut self) -> io::Result<()> {
        self.conn.send_close_notify();
        self.flush().await?;
        self.io.shutdown_write().await
    }

    /// Sends every record rustls has queued.
    async fn flush(&mut self) -> io::Result<()> {
        if !self.conn.wants_write() {
            return Ok(());
        }
        if self.send_broken {
            return Err(send_broken());
        }
        let mut buf = self.wbuf.take().unwrap_or_default();
        buf.clear();
        while self.conn.wants_write() {
            // Writing into a Vec cannot fail.
            self.conn.write_tls(&mut buf)?;
        }
        self.send_broken = true;
        let (res, buf) = send_all(&self.io, buf).await;
        self.wbuf = Some(buf);
        res?;
        self.send_broken = false;
        Ok(())
    }

    /// Reads more ciphertext from the transport into `rbuf` (whose bytes
    /// have all gone to rustls); returns the count, 0 at end of stream.
    async fn fill(&mut self) -> io::Result<usize> {
        debug_assert!(
            self.rbuf.as_ref().is_none_or(|b| self.rpos >= b.len()),
            "fill with ciphertext left"
        );
        let mut buf = match self.rbuf.take() {
            Some(b) if (self.rcap..2 * self.rcap).contains(&b.capacity()) => b,
            _ => Vec::with_capacity(self.rcap),
        };
        buf.clear();
        self.rpos = 0;
        let cap = buf.capacity();
        // If this future is dropped here, `rbuf` stays `None` and the socket
        // keeps what arrives for the next read.
        let (res, buf) = self.io.read(buf).await;
        self.rbuf = Some(buf);
        let n = res?;
        if n == cap {
            self.rcap = (cap * 2).min(MAX_READ_BUF);
        } else if n < cap / 4 {
            self.rcap = MIN_READ_BUF;
        }
        if n == 0 {
            // Tell rustls the transport ended.
            self.conn.read_tls(&mut io::empty())?;
        }
        Ok(n)
    }

    /// Moves decrypted bytes into `buf` from its start, decrypting buffered
    /// ciphertext as needed, without waiting. `Ok(None)`: nothing can be
    /// returned before more bytes come from the peer.
    fn read_buffered<B: IoBufMut>(&mut self, buf: &mut B) -> io::Result<Option<usize>> {
        let total = buf.bytes_total();
        let mut filled = 0;
        loop {
            let mut reader = self.conn.reader();
            match reader.fill_buf() {
                // Closed cleanly: `Ok(0)` once everything before is read.
                Ok([]) => return Ok(Some(filled)),
                Ok(chunk) => {
                    let n = chunk.len().min(total - filled);
                    put(buf, filled, &chunk[..n]);
                    reader.consume(n);
                    filled += n;
                    if filled == total {
                        return Ok(Some(filled));
                    }
                    continue;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                // An unclean end comes with the next read.
                Err(_) if filled > 0 => return Ok(Some(filled)),
                Err(e) => return Err(e),
            }
            if !self.decrypt_more()? {
                return Ok((filled > 0).then_some(filled));
            }
        }
    }

    /// Gives rustls the next part of the buffered ciphertext and processes
    /// it; `false` when none is left.
    fn decrypt_more(&mut self) -> io::Result<bool> {
        let Some(rbuf) = self.rbuf.as_deref() else {
            return Ok(false);
        };
        let mut rest = rbuf.get(self.rpos..).unwrap_or_default();
        if rest.is_empty() {
            return Ok(false);
        }
        let n = self.conn.read_tls(&mut rest)?;
        if n == 0 {
            // rustls takes nothing after `close_notify`: drop the rest.
            self.rpos = rbuf.len();
            return Ok(false);
        }
        self.rpos += n;
        self.conn.process_new_packets().map_err(tls_error)?;
        Ok(true)
    }
}

impl<S> TlsStream<S> {
    /// The transport and the rustls connection, for `corio::compat`, which
    /// drives the session itself.
    pub(crate) fn parts_mut(&mut self) -> (&S, &mut Connection) {
        (&self.io, &mut self.conn)
    }

    /// Takes the ciphertext read from the transport but not yet given to
    /// rustls (`corio::compat` hands it back to the socket's read queue).
    pub(crate) fn take_unread_ciphertext(&mut self) -> Vec<u8> {
        let rest = match self.rbuf.as_deref() {
            Some(b) if self.rpos < b.len() => b[self.rpos..].to_vec(),
            _ => Vec::new(),
        };
        self.rpos = self.rbuf.as_ref().map_or(0, Vec::len);
        rest
    }

    /// Whether a write was lost mid-record (no more may be sent).
    pub(crate) fn is_send_broken(&self) -> bool {
        self.send_broken
    }

    /// Marks the stream unable to send (a write failed mid-record).
    pub(crate) fn set_send_broken(&mut self) {
        self.send_broken = true;
    }

    /// The transport.
    pub fn get_ref(&self) -> &S {
        &self.io
    }

    /// Gives the transport back, dropping the TLS session (without
    /// `close_notify`) and any bytes it buffered.
    pub fn into_inner(self) -> S {
        self.io
    }

    /// The rustls connection, for whatever the methods below do not show.
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// The protocol agreed through ALPN, if any.
    pub fn alpn_protocol(&self) -> Option<&[u8]> {
        self.conn.alpn_protocol()
    }

    /// On the server side, the host name the client asked for (SNI); `None`
    /// on the client side or when the client sent none.
    pub fn server_name(&self) -> Option<&str> {
        match &self.conn {
            Connection::Server(c) => c.server_name(),
            Connection::Client(_) => None,
        }
    }

    /// The peer's certificate chain, its own certificate first (on the
    /// server side, only when client authentication is on).
    pub fn peer_certificates(&self) -> Option<&[CertificateDer<'static>]> {
        self.conn.peer_certificates()
    }

    /// The TLS version in use.
    pub fn protocol_version(&self) -> Option<ProtocolVersion> {
        self.conn.protocol_version()
    }

    /// The cipher suite in use.
    pub fn negotiated_cipher_suite(&self) -> Option<SupportedCipherSuite> {
        self.conn.negotiated_cipher_suite()
    }
}

impl<S: fmt::Debug> fmt::Debug for TlsStream<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let side = match self.conn {
            Connection::Client(_) => "client",
            Connection::Server(_) => "server",
        };
        f.debug_struct("TlsStream")
            .field("io", &self.io)
            .field("side", &side)
            .field("protocol_version", &self.protocol_version())
            .field("send_broken", &self.send_broken)
            .finish_non_exhaustive()
    }
}

/// Writes all of `buf` to `io`, looping over short writes.
async fn send_all<S: Transport>(io: &S, mut buf: Vec<u8>) -> BufResult<(), Vec<u8>> {
    let total = buf.len();
    let mut done = 0;
    while done < total {
        let (res, slice) = io.write(buf.slice(done..total)).await;
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

/// A rustls error as an `io::Error` (`InvalidData`, the rustls error inside).
pub(crate) fn tls_error(e: rustls::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

pub(crate) fn send_broken() -> io::Error {
    io::Error::new(
        io::ErrorKind::BrokenPipe,
        "an earlier TLS write was dropped mid-flight or failed; the stream cannot send any more",
    )
}
