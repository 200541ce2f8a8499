//! `BufWriter`: gathers small writes into one write to the stream.
//!
//! How it works: written bytes are copied into an owned buffer; when it
//! would overflow, or on [`flush`](OwnedWrite::flush), the buffer is moved
//! into the stream's `write_all` and back. A write larger than the buffer
//! goes to the stream directly (after what is buffered).

use std::fmt;
use std::future::Future;
use std::io;

use super::{OwnedRead, OwnedWrite};
use crate::buf::copy::init_bytes;
use crate::buf::{BufResult, IoBuf, IoBufMut};

const DEFAULT_CAPACITY: usize = 8 * 1024;

/// Buffers writes to a stream: many small writes become one.
///
/// Call [`flush`](OwnedWrite::flush) (or [`shutdown`](OwnedWrite::shutdown))
/// to send what is buffered: dropping a `BufWriter` loses it.
///
/// Not cancel-safe, as no write is: if a flush is dropped mid-way the
/// buffered bytes are gone and an unknown part of them was sent, so every
/// later write, flush or shutdown fails with `BrokenPipe` rather than send
/// a stream with a hole in it. The same after a write to the stream fails.
///
/// ```
/// use corio::io::{BufWriter, OwnedWrite};
/// use corio::net::{TcpListener, TcpStream};
///
/// corio::run(async {
///     let listener = TcpListener::bind("127.0.0.1:0")?;
///     let stream = TcpStream::connect(listener.local_addr()?).await?;
///     let mut out = BufWriter::new(stream);
///     for i in 0..100 {
///         out.write_all(format!("line {i}\n").into_bytes()).await.0?;
///     }
///     out.flush().await?; // one write for all 100 lines
///     out.shutdown().await?;
///
///     let (peer, _) = listener.accept().await?;
///     let mut lines = corio::io::BufReader::new(peer).lines();
///     let mut count = 0;
///     while let Some(line) = lines.next_line().await? {
///         assert_eq!(line, format!("line {count}"));
///         count += 1;
///     }
///     assert_eq!(count, 100);
///     Ok::<_, std::io::Error>(())
/// })
/// .unwrap();
/// ```
pub struct BufWriter<W> {
    inner: W,
    /// `None` while a flush holds it, and after a flush was dropped.
    buf: Option<Vec<u8>>,
    capacity: usize,
    /// A flush or write started and did not finish: the stream's state is
    /// unknown.
    broken: bool,
}

impl<W> BufWriter<W> {
    /// A writer with an 8 KiB buffer.
    pub fn new(inner: W) -> Self {
        Self::with_capacity(DEFAULT_CAPACITY, inner)
    }

    /// A writer with a `capacity`-byte buffer.
    pub fn with_capacity(capacity: usize, inner: W) -> Self {
        BufWriter {
            inner,
            buf: Some(Vec::with_capacity(capacity)),
            capacity,
            broken: false,
        }
    }

    /// The bytes buffered and not yet written.
    pub fn buffer(&self) -> &[u8] {
        self.buf.as_deref().unwrap_or_default()
    }

    /// The buffer's size.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The stream.
    pub fn get_ref(&self) -> &W {
        &self.inner
    }

    /// The stream. Writing to it directly skips the buffered bytes.
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.inner
    }

    /// The stream; buffered bytes are lost (flush first).
    pub fn into_inner(self) -> W {
        self.inner
    }

    fn check(&self) -> io::Result<()> {
        if self.broken {
            return Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "an earlier write of this BufWriter was dropped mid-way or failed; \
                 the stream cannot take more",
            ));
        }
        Ok(())
    }
}

impl<W: OwnedWrite> BufWriter<W> {
    /// Writes out what is buffered.
    async fn flush_buf(&mut self) -> io::Result<()> {
        self.check()?;
        let buf = self.buf.take().unwrap_or_default();
        if buf.is_empty() {
            self.buf = Some(buf);
            return Ok(());
        }
        self.broken = true;
        let (res, mut buf) = self.inner.write_all(buf).await;
        res?;
        self.broken = false;
        buf.clear();
        self.buf = Some(buf);
        Ok(())
    }

    async fn write_some<B: IoBuf>(&mut self, buf: B) -> BufResult<usize, B> {
        if let Err(e) = self.check() {
            return (Err(e), buf);
        }
        let len = buf.bytes_init();
        if self.buffer().len() + len > self.capacity
            && let Err(e) = self.flush_buf().await
        {
            return (Err(e), buf);
        }
        if len >= self.capacity {
            self.broken = true;
            let (res, buf) = self.inner.write(buf).await;
            self.broken = res.is_err();
            return (res, buf);
        }
        let store = self.buf.get_or_insert_with(Vec::new);
        store.extend_from_slice(init_bytes(&buf));
        (Ok(len), buf)
    }

    async fn write_all_of<B: IoBuf>(&mut self, buf: B) -> BufResult<(), B> {
        if let Err(e) = self.check() {
            return (Err(e), buf);
        }
        let len = buf.bytes_init();
        if self.buffer().len() + len > self.capacity
            && let Err(e) = self.flush_buf().await
        {
            return (Err(e), buf);
        }
        if len >= self.capacity {
            self.broken = true;
            let (res, buf) = self.inner.write_all(buf).await;
            self.broken = res.is_err();
            return (res, buf);
        }
        let store = self.buf.get_or_insert_with(Vec::new);
        store.extend_from_slice(init_bytes(&buf));
        (Ok(()), buf)
    }

    async fn flush_all(&mut self) -> io::Result<()> {
        self.flush_buf().await?;
        self.inner.flush().await
    }

    async fn shutdown_all(&mut self) -> io::Result<()> {
        self.flush_buf().await?;
        self.inner.shutdown().await
    }
}

/// Buffered writes; see the type's notes on cancel safety.
impl<W: OwnedWrite> OwnedWrite for BufWriter<W> {
    /// Buffers `buf` (writing out the buffer first if it would overflow);
    /// a buffer at least as large as the capacity goes to the stream.
    fn write<B: IoBuf>(&mut self, buf: B) -> impl Future<Output = BufResult<usize, B>> {
        self.write_some(buf)
    }

    fn write_all<B: IoBuf>(&mut self, buf: B) -> impl Future<Output = BufResult<(), B>> {
        self.write_all_of(buf)
    }

    /// Writes out the buffer, then flushes the stream.
    fn flush(&mut self) -> impl Future<Output = io::Result<()>> {
        self.flush_all()
    }

    /// Writes out the buffer, then shuts the stream's write side down.
    fn shutdown(&mut self) -> impl Future<Output = io::Result<()>> {
        self.shutdown_all()
    }
}

/// Reads go straight to the stream.
impl<W: OwnedRead> OwnedRead for BufWriter<W> {
    fn read<B: IoBufMut>(&mut self, buf: B) -> impl Future<Output = BufResult<usize, B>> {
        self.inner.read(buf)
    }
}

impl<W: fmt::Debug> fmt::Debug for BufWriter<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BufWriter")
            .field("inner", &self.inner)
            .field("buffered", &self.buffer().len())
            .field("capacity", &self.capacity)
            .finish()
    }
}
