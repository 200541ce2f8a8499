//! `BufReader`: buffered reading of lines and delimited records from an
//! [`OwnedRead`] stream.
//!
//! How it works: unconsumed bytes live in `data[pos..]`, a buffer that is
//! never handed to the stream. Reads go into a second buffer (`spare`),
//! moved into the stream's `read` and back: when `data` is empty the two
//! swap (no copy); when a line spans reads, the new bytes are appended to
//! `data` (the only copy, bounded by the line limit). A read dropped
//! mid-flight loses only `spare` (a new one is made next time), never
//! buffered bytes, and corio's streams keep the bytes that arrive for a
//! dropped read: so every reading method here is cancel-safe.
//!
//! `read_until` finds the delimiter before it consumes anything, so a line
//! is taken whole or not at all.

use std::fmt;
use std::future::Future;
use std::io;

use super::{Lines, OwnedRead, OwnedWrite};
use crate::buf::copy::put;
use crate::buf::{BufResult, IoBuf, IoBufMut};

/// Default capacity of a read (8 KiB).
const DEFAULT_CAPACITY: usize = 8 * 1024;
/// Default line limit, asyncio's `StreamReader` default (64 KiB).
const DEFAULT_MAX_LINE: usize = 64 * 1024;

/// Reads lines and records from a stream through a buffer.
///
/// Over a [`TcpStream`](crate::net::TcpStream), an
/// [`OwnedReadHalf`](crate::net::OwnedReadHalf), a TLS stream or any
/// [`OwnedRead`]. A line (with its delimiter) longer than
/// [`max_line_length`](Self::with_max_line_length) (64 KiB unless set) is
/// refused with `InvalidData` rather than buffered without end.
///
/// Every reading method is cancel-safe: dropping its future (a lost
/// `select!` branch, a `timeout`) loses no byte; the next call starts where
/// the dropped one was. The `BufReader` is also an [`OwnedWrite`] when its
/// stream is, so one value can read lines and write replies.
///
/// ```
/// use corio::io::{BufReader, OwnedWrite};
/// use corio::net::TcpListener;
///
/// corio::run(async {
///     let listener = TcpListener::bind("127.0.0.1:0")?;
///     # let addr = listener.local_addr()?;
///     # let client = corio::spawn(async move {
///     #     let s = corio::net::TcpStream::connect(addr).await?;
///     #     s.write_all(b"hello\nworld\n".as_slice()).await.0?;
///     #     s.shutdown(std::net::Shutdown::Write).await?;
///     #     let (res, buf) = s.read_exact(vec![0u8; 12]).await;
///     #     res.map(|()| buf)
///     # });
///     let (stream, _) = listener.accept().await?;
///     let mut conn = BufReader::new(stream);
///     let mut line = String::new();
///     // Upper-cases each line back to the client until it closes.
///     while conn.read_line(&mut line).await? != 0 {
///         let reply = line.to_uppercase().into_bytes();
///         conn.write_all(reply).await.0?;
///         line.clear();
///     }
///     # assert_eq!(client.await??, b"HELLO\nWORLD\n");
///     Ok::<_, std::io::Error>(())
/// })
/// .unwrap();
/// ```
pub struct BufReader<R> {
    inner: R,
    /// Bytes read and not consumed: `data[pos..]`. Never given to `inner`.
    data: Vec<u8>,
    pos: usize,
    /// The buffer reads go into; `None` while a read holds it or after a
    /// read was dropped.
    spare: Option<Vec<u8>>,
    capacity: usize,
    max_line: usize,
}

impl<R> BufReader<R> {
    /// A reader over `inner` that reads up to 8 KiB at a time.
    pub fn new(inner: R) -> Self {
        Self::with_capacity(DEFAULT_CAPACITY, inner)
    }

    /// A reader that reads up to `capacity` bytes at a time.
    ///
    /// # Panics
    ///
    /// Panics if `capacity` is 0.
    pub fn with_capacity(capacity: usize, inner: R) -> Self {
        assert!(capacity > 0, "BufReader capacity must be at least 1");
        BufReader {
            inner,
            data: Vec::new(),
            pos: 0,
            spare: None,
            capacity,
            max_line: DEFAULT_MAX_LINE,
        }
    }

    /// Sets the longest line (delimiter included) that
    /// [`read_line`](Self::read_line), [`read_until`](Self::read_until) and
    /// [`lines`](Self::lines) accept; `usize::MAX` for no limit.
    ///
    /// # Panics
    ///
    /// Panics if `max` is 0.
    pub fn with_max_line_length(mut self, max: usize) -> Self {
        self.set_max_line_length(max);
        self
    }

    /// See [`with_max_line_length`](Self::with_max_line_length).
    ///
    /// # Panics
    ///
    /// Panics if `max` is 0.
    pub fn set_max_line_length(&mut self, max: usize) {
        assert!(max > 0, "the maximum line length must be at least 1");
        self.max_line = max;
    }

    /// The longest line accepted.
    pub fn max_line_length(&self) -> usize {
        self.max_line
    }

    /// The bytes buffered and not consumed yet.
    pub fn buffer(&self) -> &[u8] {
        &self.data[self.pos..]
    }

    /// Marks `n` buffered bytes consumed (at most what is buffered).
    pub fn consume(&mut self, n: usize) {
        self.pos = (self.pos + n).min(self.data.len());
    }

    /// How many bytes one read asks for.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The stream.
    pub fn get_ref(&self) -> &R {
        &self.inner
    }

    /// The stream. Reading from it directly skips the buffered bytes.
    pub fn get_mut(&mut self) -> &mut R {
        &mut self.inner
    }

    /// The stream; buffered bytes are lost.
    pub fn into_inner(self) -> R {
        self.inner
    }

    /// Turns the reader into a stream of lines; see [`Lines`].
    pub fn lines(self) -> Lines<R> {
        Lines::new(self)
    }

    /// The length of the line at `data[pos..]` (delimiter included) if it
    /// is complete in the buffer, searching from `from`.
    pub(super) fn find(&self, delim: u8, from: usize) -> Option<usize> {
        let avail = &self.data[self.pos..];
        avail
            .get(from..)?
            .iter()
            .position(|&b| b == delim)
            .map(|i| from + i + 1)
    }

    /// An over-long line: drops its first `drop` bytes, describes it.
    fn too_long(&mut self, drop: usize) -> io::Error {
        self.consume(drop);
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("line longer than {} bytes", self.max_line),
        )
    }
}

impl<R: OwnedRead> BufReader<R> {
    /// Reads more bytes into the buffer, after those not consumed; returns
    /// the count (0 at end of stream).
    async fn read_more(&mut self) -> io::Result<usize> {
        let mut buf = match self.spare.take() {
            // Not a huge one left from a long line.
            Some(b) if (self.capacity..=4 * self.capacity).contains(&b.capacity()) => b,
            _ => Vec::with_capacity(self.capacity),
        };
        buf.clear();
        // If this future is dropped here, `buf` goes with the read; `data`
        // is untouched.
        let (res, buf) = self.inner.read(buf).await;
        let n = match res {
            Ok(n) => n,
            Err(e) => {
                self.spare = Some(buf);
                return Err(e);
            }
        };
        if self.pos == self.data.len() {
            self.spare = Some(std::mem::replace(&mut self.data, buf));
            self.pos = 0;
        } else {
            self.data.drain(..self.pos);
            self.pos = 0;
            self.data.extend_from_slice(&buf[..n]);
            self.spare = Some(buf);
        }
        Ok(n)
    }

    /// The buffered bytes, reading first if none are; empty at end of
    /// stream. Cancel-safe. Follow with [`consume`](Self::consume).
    pub async fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.pos == self.data.len() {
            self.read_more().await?;
        }
        Ok(self.buffer())
    }

    /// The length of the next line (delimiter included, or the rest of the
    /// stream at its end), reading until it is whole in the buffer.
    pub(super) async fn line_len(&mut self, delim: u8) -> io::Result<usize> {
        let mut scanned = 0;
        loop {
            if let Some(len) = self.find(delim, scanned) {
                if len > self.max_line {
                    return Err(self.too_long(len));
                }
                return Ok(len);
            }
            scanned = self.data.len() - self.pos;
            if scanned > self.max_line {
                return Err(self.too_long(scanned));
            }
            if self.read_more().await? == 0 {
                return Ok(scanned);
            }
        }
    }

    /// Reads through the next `delim` (or to the end of the stream) and
    /// appends the bytes, `delim` included, to `buf`; returns how many (0
    /// at end of stream).
    ///
    /// A record longer than the line limit gives `InvalidData`; its bytes
    /// are dropped (through the delimiter if it was found, else those read
    /// so far), nothing is appended. Cancel-safe: nothing is consumed or
    /// appended until the record is whole.
    pub async fn read_until(&mut self, delim: u8, buf: &mut Vec<u8>) -> io::Result<usize> {
        let len = self.line_len(delim).await?;
        buf.extend_from_slice(&self.data[self.pos..self.pos + len]);
        self.pos += len;
        Ok(len)
    }

    /// Reads through the next `\n` (or to the end of the stream) and
    /// appends the line, `\n` (and any `\r`) included, to `buf`; returns
    /// its length in bytes (0 at end of stream).
    ///
    /// A line that is not UTF-8 gives `InvalidData` and is dropped; so is
    /// one longer than the limit. Cancel-safe: nothing is consumed or
    /// appended until the line is whole.
    pub async fn read_line(&mut self, buf: &mut String) -> io::Result<usize> {
        let len = self.line_len(b'\n').await?;
        let line = &self.data[self.pos..self.pos + len];
        let res = match std::str::from_utf8(line) {
            Ok(s) => {
                buf.push_str(s);
                Ok(len)
            }
            Err(_) => Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "stream did not contain valid UTF-8",
            )),
        };
        self.pos += len;
        res
    }

    /// Copies buffered bytes into `buf` (from its start), reading first if
    /// none are buffered; a buffer at least as large as the capacity is
    /// read into directly when nothing is buffered.
    async fn read_into<B: IoBufMut>(&mut self, mut buf: B) -> BufResult<usize, B> {
        if self.pos == self.data.len() {
            if buf.bytes_total() >= self.capacity {
                return self.inner.read(buf).await;
            }
            if let Err(e) = self.read_more().await {
                return (Err(e), buf);
            }
        }
        let avail = &self.data[self.pos..];
        let n = avail.len().min(buf.bytes_total());
        put(&mut buf, 0, &avail[..n]);
        self.pos += n;
        (Ok(n), buf)
    }
}

/// Reads through the buffer. Cancel-safe as far as the stream's `read` is.
impl<R: OwnedRead> OwnedRead for BufReader<R> {
    fn read<B: IoBufMut>(&mut self, buf: B) -> impl Future<Output = BufResult<usize, B>> {
        self.read_into(buf)
    }
}

/// Writes go straight to the stream.
impl<R: OwnedWrite> OwnedWrite for BufReader<R> {
    fn write<B: IoBuf>(&mut self, buf: B) -> impl Future<Output = BufResult<usize, B>> {
        self.inner.write(buf)
    }

    fn write_all<B: IoBuf>(&mut self, buf: B) -> impl Future<Output = BufResult<(), B>> {
        self.inner.write_all(buf)
    }

    fn flush(&mut self) -> impl Future<Output = io::Result<()>> {
        self.inner.flush()
    }

    fn shutdown(&mut self) -> impl Future<Output = io::Result<()>> {
        self.inner.shutdown()
    }
}

impl<R: fmt::Debug> fmt::Debug for BufReader<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BufReader")
            .field("inner", &self.inner)
            .field("buffered", &(self.data.len() - self.pos))
            .field("capacity", &self.capacity)
            .field("max_line_length", &self.max_line)
            .finish()
    }
}
