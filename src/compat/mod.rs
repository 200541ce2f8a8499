//! Compatibility with the tokio ecosystem: corio's streams as
//! `tokio::io`, `futures-io` and hyper I/O objects, so crates written
//! against those traits (hyper, axum, tungstenite, codecs, ...) run on corio.
//!
//! How it works: [`Compat<S>`] wraps a stream (a [`TcpStream`], an
//! [`OwnedReadHalf`] or [`OwnedWriteHalf`], a [`TlsStream`]) and keeps
//! what a `poll_*` interface needs between calls:
//!
//! - **Reads** receive into the runtime's buffer pool (a multishot receive
//!   into provided buffers on io_uring, see
//!   [`TcpStream::recv_pooled`](crate::net::TcpStream::recv_pooled)) and copy
//!   from that lease into the caller's buffer: one copy, as a readiness
//!   runtime's `recv` makes. What the caller's buffer cannot take stays in
//!   the lease for the next read ([`poll_fill_buf`](Compat::poll_fill_buf)
//!   hands the lease's bytes out with no copy at all: `AsyncBufRead`).
//! - **Writes** copy the caller's bytes (up to 64 KiB, all slices of a
//!   vectored write together) into an owned buffer and submit one send;
//!   `poll_write` is ready once that is done. One send is in flight at a
//!   time: the next write waits for it. `poll_flush` waits for the send in
//!   flight, `poll_shutdown` too and then sends FIN. A failed send fails
//!   every later write: the peer never sees a stream with a hole in it.
//! - **Cancel safety**: a read or write future dropped mid-way (say by a
//!   `timeout`) loses and duplicates nothing. The receive and the send live
//!   in the `Compat`, not in the caller's future, and the next call goes on
//!   with them. Bytes a write took are sent even if the `Compat` is dropped
//!   without a flush (a detached task finishes the send, for at most 30 s).
//! - **TLS**: a `Compat<TlsStream<S>>` drives the rustls session itself over
//!   the same receive and send: ciphertext leases go to rustls, plaintext is
//!   copied out of it; writes are encrypted straight into the send buffer.
//!
//! The trait implementations come with cargo features, all off by default:
//!
//! | feature | implements for `Compat<S>` |
//! |---|---|
//! | `tokio-io` | `tokio::io::{AsyncRead, AsyncBufRead, AsyncWrite}` (tokio without its runtime) |
//! | `futures-io` | `futures_io::{AsyncRead, AsyncBufRead, AsyncWrite}` |
#![cfg_attr(
    feature = "hyper",
    doc = "| `hyper` | `hyper::rt::{Read, Write}`, plus [`hyper::CorioExecutor`] and [`hyper::CorioTimer`] |"
)]
#![cfg_attr(
    not(feature = "hyper"),
    doc = "| `hyper` | `hyper::rt::{Read, Write}`, plus `hyper::CorioExecutor` and `hyper::CorioTimer` |"
)]
//!
//! Without any of them, the `poll_*` methods below are the whole interface
//! (enough to write an adapter for another trait family). Everything runs on
//! both drivers. Like every corio I/O object, a `Compat` is not `Send`: it
//! lives on its shard, in a task started with [`spawn`](crate::spawn).
//!
//! ```no_run
//! use std::future::poll_fn;
//!
//! use corio::compat::Compat;
//! use corio::net::TcpStream;
//!
//! corio::run(async {
//!     let mut io = Compat::new(TcpStream::connect("127.0.0.1:7000").await?);
//!     // What `AsyncWriteExt::write_all` and `flush` do, by hand.
//!     let mut data: &[u8] = b"ping";
//!     while !data.is_empty() {
//!         let n = poll_fn(|cx| io.poll_write(cx, data)).await?;
//!         data = &data[n..];
//!     }
//!     poll_fn(|cx| io.poll_flush(cx)).await?;
//!     let mut buf = [0u8; 64];
//!     let n = poll_fn(|cx| io.poll_read(cx, &mut buf)).await?;
//!     println!("got {:?}", &buf[..n]);
//!     Ok::<_, std::io::Error>(())
//! })
//! .unwrap();
//! ```
//!
//! [`TcpStream`]: crate::net::TcpStream
//! [`OwnedReadHalf`]: crate::net::OwnedReadHalf
//! [`OwnedWriteHalf`]: crate::net::OwnedWriteHalf
//! [`TlsStream`]: https://docs.rs/corio/latest/corio/tls/struct.TlsStream.html

mod fd;
#[cfg(feature = "futures-io")]
mod futures_io;
#[cfg(feature = "hyper")]
pub mod hyper;
mod raw;
mod state;
#[cfg(feature = "tls")]
mod tls;
#[cfg(feature = "tokio-io")]
mod tokio_io;

use std::fmt;
use std::io::{self, IoSlice};
use std::task::{Context, Poll, ready};

use state::State;

/// The traits a stream type implements to be wrapped; sealed: corio's own
/// stream types implement them.
mod sealed {
    use std::io::{self, IoSlice};
    use std::task::{Context, Poll};

    pub(super) use super::state::State;

    pub trait Stream: Sized + Unpin {
        /// `Compat::new` took the stream.
        fn wrapped(&mut self, st: &mut State) {
            let _ = st;
        }

        /// `Compat::into_inner` gives the stream back: return what was taken
        /// from the transport and not handed out.
        fn unwrapped(&mut self, st: &mut State);
    }

    pub trait Read: Stream {
        fn poll_fill_buf<'a>(
            &'a mut self,
            st: &'a mut State,
            cx: &mut Context<'_>,
        ) -> Poll<io::Result<&'a [u8]>>;

        fn consume(&mut self, st: &mut State, n: usize);
    }

    pub trait Write: Stream {
        fn poll_write(
            &mut self,
            st: &mut State,
            cx: &mut Context<'_>,
            bufs: &[IoSlice<'_>],
        ) -> Poll<io::Result<usize>>;

        fn poll_flush(&mut self, st: &mut State, cx: &mut Context<'_>) -> Poll<io::Result<()>>;

        fn poll_shutdown(&mut self, st: &mut State, cx: &mut Context<'_>) -> Poll<io::Result<()>>;
    }
}

/// A stream [`Compat`] can wrap: [`TcpStream`](crate::net::TcpStream), its
/// owned halves, and `TlsStream<TcpStream>` (feature `tls`). Sealed.
pub trait CompatStream: sealed::Stream {}
impl<T: sealed::Stream> CompatStream for T {}

/// A [`CompatStream`] that reads: `Compat<S>` then implements the read
/// traits. Sealed.
pub trait CompatRead: CompatStream + sealed::Read {}
impl<T: sealed::Read> CompatRead for T {}

/// A [`CompatStream`] that writes: `Compat<S>` then implements the write
/// traits. Sealed.
pub trait CompatWrite: CompatStream + sealed::Write {}
impl<T: sealed::Write> CompatWrite for T {}

/// A corio stream with `poll_*` I/O: the `tokio::io`, `futures-io` and
/// hyper traits (with the features of those names), or the methods below.
///
/// See the [module docs](self) for how reads and writes are done and what
/// they copy.
///
/// ```
/// use std::future::poll_fn;
///
/// use corio::compat::Compat;
/// use corio::net::{TcpListener, TcpStream};
///
/// corio::run(async {
///     let listener = TcpListener::bind("127.0.0.1:0")?;
///     let client = TcpStream::connect(listener.local_addr()?).await?;
///     let (stream, _) = listener.accept().await?;
///     // Hand `io` to hyper, tungstenite, a tokio codec, ... (features
///     // `hyper`, `tokio-io`, `futures-io`); by hand, it is polled:
///     let mut io = Compat::new(stream);
///     client.write_all(b"hello".as_slice()).await.0?;
///     let mut buf = [0u8; 16];
///     let n = poll_fn(|cx| io.poll_read(cx, &mut buf)).await?;
///     assert_eq!(&buf[..n], b"hello");
///     let n = poll_fn(|cx| io.poll_write(cx, b"world")).await?;
///     poll_fn(|cx| io.poll_flush(cx)).await?; // the send is done
///     let (res, reply) = client.read(Vec::with_capacity(16)).await;
///     assert_eq!(&reply[..res?], &b"world"[..n]);
///     // The stream comes back, with any bytes received and not read yet.
///     let _stream: TcpStream = io.into_inner();
///     Ok::<_, std::io::Error>(())
/// })
/// .unwrap();
/// ```
pub struct Compat<S> {
    io: S,
    state: State,
}

impl<S: CompatStream> Compat<S> {
    /// Wraps `io`.
    pub fn new(mut io: S) -> Compat<S> {
        let mut state = State::default();
        io.wrapped(&mut state);
        Compat { io, state }
    }

    /// Gives the stream back. Bytes received and not read yet go back to
    /// the stream (its next read returns them first).
    ///
    /// Flush first: a send still in flight is finished by a detached task,
    /// so bytes written to the returned stream at once could overtake it.
    pub fn into_inner(mut self) -> S {
        self.io.unwrapped(&mut self.state);
        self.io
    }
}

impl<S> Compat<S> {
    /// The wrapped stream.
    pub fn get_ref(&self) -> &S {
        &self.io
    }
}

impl<S: CompatRead> Compat<S> {
    /// Waits for received bytes and returns them without taking them (an
    /// empty slice at the end of the stream); [`consume`](Self::consume)
    /// takes them. No copy: the bytes are in the receive's pool buffer.
    pub fn poll_fill_buf(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<&[u8]>> {
        self.io.poll_fill_buf(&mut self.state, cx)
    }

    /// Takes `n` bytes of those [`poll_fill_buf`](Self::poll_fill_buf)
    /// returned.
    pub fn consume(&mut self, n: usize) {
        self.io.consume(&mut self.state, n)
    }

    /// Reads into `buf`: `Ok(0)` at the end of the stream (or for an empty
    /// `buf`). Cancel-safe.
    pub fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        self.poll_copy_out(cx, buf.len(), |src| buf[..src.len()].copy_from_slice(src))
    }

    /// Waits for bytes, hands up to `room` of them to `put`, takes them and
    /// returns the count.
    pub(crate) fn poll_copy_out(
        &mut self,
        cx: &mut Context<'_>,
        room: usize,
        put: impl FnOnce(&[u8]),
    ) -> Poll<io::Result<usize>> {
        if room == 0 {
            return Poll::Ready(Ok(0));
        }
        let chunk = ready!(self.poll_fill_buf(cx))?;
        let n = chunk.len().min(room);
        put(&chunk[..n]);
        self.consume(n);
        Poll::Ready(Ok(n))
    }
}

impl<S: CompatWrite> Compat<S> {
    /// Takes bytes from `buf` (up to 64 KiB) for a send; ready once the
    /// send is submitted. Waits while the previous send is in flight.
    pub fn poll_write(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.io
            .poll_write(&mut self.state, cx, &[IoSlice::new(buf)])
    }

    /// As [`poll_write`](Self::poll_write), gathering the slices into one send.
    pub fn poll_write_vectored(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.io.poll_write(&mut self.state, cx, bufs)
    }

    /// Waits until every byte taken has been sent.
    pub fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.io.poll_flush(&mut self.state, cx)
    }

    /// Flushes, then ends the write direction: FIN for TCP (after
    /// `close_notify` for TLS). Reading still works.
    pub fn poll_shutdown(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.io.poll_shutdown(&mut self.state, cx)
    }
}

impl<S: fmt::Debug> fmt::Debug for Compat<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Compat")
            .field("io", &self.io)
            .field("state", &self.state)
            .finish()
    }
}
