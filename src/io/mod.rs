//! Byte streams with owned buffers: the [`OwnedRead`] and [`OwnedWrite`]
//! traits, buffered readers and writers, and copying between streams.
//!
//! - [`OwnedRead`] / [`OwnedWrite`]: what every corio byte stream offers
//!   (TCP streams and their halves, TLS streams, ...), so generic code
//!   works over any of them. Like the streams' own methods they take a
//!   buffer by value and give it back with the result.
//! - [`BufReader`]: lines and delimited records ([`read_line`](BufReader::read_line),
//!   [`read_until`](BufReader::read_until), [`lines`](BufReader::lines) as a
//!   [`Stream`](crate::stream::Stream)), [`fill_buf`](BufReader::fill_buf) and
//!   [`consume`](BufReader::consume), with a bound on line length (asyncio's
//!   `limit`: 64 KiB unless set) so a peer cannot make it buffer without end.
//! - [`BufWriter`]: gathers small writes into one.
//! - [`copy`] and [`copy_bidirectional`]: move bytes until end of stream,
//!   returning the counts.
//!
//! How it works: the traits' methods return futures (`impl Future`), as
//! the streams' inherent async methods do, so a trait call costs what the
//! method costs. The buffered types keep their bytes in buffers they own
//! and move a separate buffer in and out of the stream's `read`, so a
//! future dropped mid-read (a lost `select!` branch, a timeout) never takes
//! buffered data with it. Each method says whether it is cancel-safe.
//!
//! ```no_run
//! use corio::io::BufReader;
//! use corio::net::TcpStream;
//!
//! corio::run(async {
//!     let stream = TcpStream::connect("127.0.0.1:9000").await?;
//!     let mut reader = BufReader::new(stream).with_max_line_length(1024);
//!     let mut line = String::new();
//!     while reader.read_line(&mut line).await? != 0 {
//!         print!("{line}");
//!         line.clear();
//!     }
//!     Ok::<_, std::io::Error>(())
//! })
//! .unwrap();
//! ```

mod buf_reader;
mod buf_writer;
mod copy;
mod impls;
mod lines;

use std::future::Future;
use std::io;

pub use buf_reader::BufReader;
pub use buf_writer::BufWriter;
pub use copy::{copy, copy_bidirectional};
pub use lines::Lines;

use crate::buf::{BufResult, IoBuf, IoBufMut};

/// A byte stream read with owned buffers, like
/// [`TcpStream::read`](crate::net::TcpStream::read).
///
/// Implemented for [`TcpStream`](crate::net::TcpStream) (and `&TcpStream`),
/// [`OwnedReadHalf`](crate::net::OwnedReadHalf), `TlsStream` (feature `tls`),
/// on Linux [`UnixStream`](crate::net::UnixStream) (and `&UnixStream`), its
/// read half and a child's stdout and stderr, and for [`BufReader`] and
/// [`BufWriter`] over any of them. An implementation should be cancel-safe
/// the way corio's streams are (bytes that arrive for a dropped read are
/// returned by the next one): [`BufReader`] is cancel-safe as far as its
/// stream is.
///
/// Generic code takes `impl OwnedRead` (or `&mut R`) and works over all of
/// them:
///
/// ```
/// use corio::io::OwnedRead;
/// use corio::net::UnixStream;
///
/// /// Reads a 2-byte big-endian length, then that many bytes.
/// async fn read_frame(r: &mut impl OwnedRead) -> std::io::Result<Vec<u8>> {
///     let (res, len) = r.read_exact(Vec::with_capacity(2)).await;
///     res?;
///     let len = u16::from_be_bytes([len[0], len[1]]) as usize;
///     let (res, body) = r.read_exact(Vec::with_capacity(len)).await;
///     res.map(|()| body)
/// }
///
/// corio::run(async {
///     let (a, mut b) = UnixStream::pair()?;
///     a.write_all(b"\x00\x05hello".as_slice()).await.0?;
///     assert_eq!(read_frame(&mut b).await?, b"hello");
///     Ok::<_, std::io::Error>(())
/// })
/// .unwrap();
/// ```
pub trait OwnedRead {
    /// Reads into `buf` from its start, up to its capacity; `Ok(0)` at end
    /// of stream. The buffer's initialised length becomes at least the
    /// count read.
    fn read<B: IoBufMut>(&mut self, buf: B) -> impl Future<Output = BufResult<usize, B>>;

    /// Reads until `buf` is full to its capacity; `UnexpectedEof` if the
    /// stream ends first. Not cancel-safe: bytes already read into `buf`
    /// go with it when the future is dropped.
    fn read_exact<B: IoBufMut>(&mut self, mut buf: B) -> impl Future<Output = BufResult<(), B>> {
        async move {
            let total = buf.bytes_total();
            let mut done = 0;
            while done < total {
                let (res, slice) = self.read(buf.slice(done..total)).await;
                buf = slice.into_inner();
                match res {
                    Ok(0) => return (Err(eof()), buf),
                    Ok(n) => done += n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return (Err(e), buf),
                }
            }
            (Ok(()), buf)
        }
    }
}

/// A byte stream written with owned buffers, like
/// [`TcpStream::write`](crate::net::TcpStream::write).
///
/// Implemented for [`TcpStream`](crate::net::TcpStream) (and `&TcpStream`),
/// [`OwnedWriteHalf`](crate::net::OwnedWriteHalf), `TlsStream` (feature `tls`),
/// on Linux [`UnixStream`](crate::net::UnixStream) (and `&UnixStream`), its
/// write half and a child's stdin, and for [`BufWriter`] and [`BufReader`]
/// over any of them. Writes are not cancel-safe: a write dropped
/// mid-flight may have sent part of its buffer, and nobody learns how much.
///
/// ```
/// use corio::io::{BufWriter, OwnedWrite};
/// use corio::net::UnixStream;
///
/// /// Writes a 2-byte big-endian length, then the bytes.
/// async fn write_frame(w: &mut impl OwnedWrite, body: Vec<u8>) -> std::io::Result<()> {
///     let len = u16::try_from(body.len()).map_err(std::io::Error::other)?;
///     w.write_all(len.to_be_bytes().to_vec()).await.0?;
///     w.write_all(body).await.0
/// }
///
/// corio::run(async {
///     let (a, b) = UnixStream::pair()?;
///     let mut out = BufWriter::new(a); // the two writes go out as one
///     write_frame(&mut out, b"hello".to_vec()).await?;
///     out.shutdown().await?; // flushes, then ends the stream
///     let (res, got) = b.read_exact(Vec::with_capacity(7)).await;
///     res?;
///     assert_eq!(got, b"\x00\x05hello");
///     Ok::<_, std::io::Error>(())
/// })
/// .unwrap();
/// ```
pub trait OwnedWrite {
    /// Writes the initialised bytes of `buf`; may write fewer.
    fn write<B: IoBuf>(&mut self, buf: B) -> impl Future<Output = BufResult<usize, B>>;

    /// Writes all initialised bytes of `buf`, looping over short writes.
    fn write_all<B: IoBuf>(&mut self, mut buf: B) -> impl Future<Output = BufResult<(), B>> {
        async move {
            let total = buf.bytes_init();
            let mut done = 0;
            while done < total {
                let (res, slice) = self.write(buf.slice(done..total)).await;
                buf = slice.into_inner();
                match res {
                    Ok(0) => return (Err(write_zero()), buf),
                    Ok(n) => done += n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return (Err(e), buf),
                }
            }
            (Ok(()), buf)
        }
    }

    /// Sends whatever the writer buffers (a [`BufWriter`], a TLS session);
    /// streams that buffer nothing return `Ok` at once.
    fn flush(&mut self) -> impl Future<Output = io::Result<()>> {
        async { Ok(()) }
    }

    /// Flushes, then ends the write direction (for TCP, sends FIN; for TLS,
    /// `close_notify` first). The peer's reads then end with `Ok(0)`.
    fn shutdown(&mut self) -> impl Future<Output = io::Result<()>>;
}

pub(crate) fn eof() -> io::Error {
    io::Error::new(io::ErrorKind::UnexpectedEof, "failed to fill whole buffer")
}

pub(crate) fn write_zero() -> io::Error {
    io::Error::new(io::ErrorKind::WriteZero, "failed to write whole buffer")
}
