//! Telling HTTP/2 with prior knowledge from HTTP/1.1 on a plain connection:
//! read the first bytes, compare them with HTTP/2's connection preface, and
//! hand hyper a stream that replays them first.

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll};

use corio::compat::Compat;
use corio::net::TcpStream;
use hyper::rt::{Read, ReadBufCursor, Write};

/// What an HTTP/2 client sends first (RFC 9113, section 3.4).
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// A connection whose first bytes were read to pick the protocol.
pub struct Rewind {
    prefix: Vec<u8>,
    pos: usize,
    io: Compat<TcpStream>,
}

/// Reads until the bytes differ from the preface or all of it came: true
/// for HTTP/2. The bytes read are replayed by the returned stream.
pub async fn sniff(mut io: Compat<TcpStream>) -> io::Result<(bool, Rewind)> {
    let mut prefix = Vec::with_capacity(PREFACE.len());
    while prefix.len() < PREFACE.len() && PREFACE.starts_with(&prefix) {
        let mut buf = [0u8; 24];
        let want = PREFACE.len() - prefix.len();
        let n = std::future::poll_fn(|cx| io.poll_read(cx, &mut buf[..want])).await?;
        if n == 0 {
            break;
        }
        prefix.extend_from_slice(&buf[..n]);
    }
    let h2 = prefix == PREFACE;
    Ok((h2, Rewind { prefix, pos: 0, io }))
}

impl Read for Rewind {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.pos < this.prefix.len() {
            let n = (this.prefix.len() - this.pos).min(buf.remaining());
            buf.put_slice(&this.prefix[this.pos..this.pos + n]);
            this.pos += n;
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.io).poll_read(cx, buf)
    }
}

impl Write for Rewind {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}
