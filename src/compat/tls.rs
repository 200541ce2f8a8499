//! The compat engine of [`TlsStream`]: the rustls session driven over the
//! transport's pooled receive and owned send.
//!
//! How it works: a read first takes plaintext rustls already holds
//! (returned without a copy by `poll_fill_buf`, copied once into the
//! caller's buffer by `poll_read`); when there is none it hands rustls the
//! rest of the current ciphertext lease, or waits for the next lease. A
//! write encrypts up to 64 KiB of plaintext and has rustls write its records
//! straight into the buffer of the next send. `close_notify` goes out with
//! the shutdown, before FIN. The reader never waits on a send: records
//! rustls wants to send while reading (an alert about bad input) are sent
//! only when no send is in flight, else with the next write or flush.

use std::io::{self, IoSlice, Write as _};
use std::task::{Context, Poll, ready};

use rustls::Connection;

use super::fd::FdStream;
use super::raw::{self, MAX_SEND};
use super::sealed;
use super::state::State;
use crate::tls::stream::{send_broken, tls_error};
use crate::tls::{TlsStream, Transport};

impl<T: Transport + FdStream + Unpin> sealed::Stream for TlsStream<T> {
    fn wrapped(&mut self, _st: &mut State) {
        // Ciphertext the stream read but rustls has not seen goes back in
        // front of the socket's read queue, where the compat reads start.
        let rest = self.take_unread_ciphertext();
        raw::unread(self.get_ref().shared_fd(), &rest);
    }

    fn unwrapped(&mut self, st: &mut State) {
        st.read.unread(self.get_ref().shared_fd());
        if st.write.has_failed() {
            self.set_send_broken();
        }
    }
}

/// Whether rustls holds plaintext (or knows the session's end) right now.
enum Plain {
    /// Some bytes, or the clean end (`close_notify`).
    Ready,
    /// Nothing before more ciphertext.
    Wanted,
}

fn plaintext(conn: &mut Connection) -> io::Result<Plain> {
    match conn.reader().into_first_chunk() {
        Ok(_) => Ok(Plain::Ready),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(Plain::Wanted),
        // The transport ended without `close_notify`: UnexpectedEof.
        Err(e) => Err(e),
    }
}

/// Moves the records rustls has queued into the send buffer and sends them,
/// if no send is in flight.
fn send_queued(
    io: &impl FdStream,
    conn: &mut Connection,
    st: &mut State,
    cx: &mut Context<'_>,
) -> io::Result<()> {
    if !st.write.is_idle() || st.write.has_failed() {
        return Ok(());
    }
    let out = st.write.buffer();
    while conn.wants_write() {
        conn.write_tls(out)?;
    }
    st.write.start(io.shared_fd(), cx)
}

impl<T: Transport + FdStream + Unpin> sealed::Read for TlsStream<T> {
    fn poll_fill_buf<'a>(
        &'a mut self,
        st: &'a mut State,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<&'a [u8]>> {
        let (io, conn) = self.parts_mut();
        let mut ended = false;
        loop {
            if let Plain::Ready = plaintext(conn)? {
                break;
            }
            if ended {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the transport ended inside the TLS session",
                )));
            }
            let rest = st.read.rest();
            if !rest.is_empty() {
                let n = conn.read_tls(&mut &rest[..])?;
                // rustls takes nothing after `close_notify`: drop the rest.
                st.read.consume(if n == 0 { rest.len() } else { n });
                if let Err(e) = conn.process_new_packets() {
                    // Tell the peer why (rustls queued an alert).
                    let _ = send_queued(io, conn, st, cx);
                    return Poll::Ready(Err(tls_error(e)));
                }
                continue;
            }
            match ready!(raw::poll_read_pooled(
                &mut st.read.recv,
                io.shared_fd(),
                false,
                cx
            ))? {
                Some(lease) => st.read.set(lease),
                None => {
                    ended = true;
                    conn.read_tls(&mut io::empty())?;
                    conn.process_new_packets().map_err(tls_error)?;
                }
            }
        }
        Poll::Ready(conn.reader().into_first_chunk())
    }

    fn consume(&mut self, _st: &mut State, n: usize) {
        use std::io::BufRead as _;
        self.parts_mut().1.reader().consume(n);
    }
}

impl<T: Transport + FdStream + Unpin> sealed::Write for TlsStream<T> {
    fn poll_write(
        &mut self,
        st: &mut State,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if self.is_send_broken() {
            return Poll::Ready(Err(send_broken()));
        }
        let (io, conn) = self.parts_mut();
        ready!(st.write.poll_idle(io.shared_fd(), cx))?;
        if st.closing {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "write after the TLS session was shut down",
            )));
        }
        let mut taken = 0;
        let mut writer = conn.writer();
        for b in bufs {
            let part = &b[..b.len().min(MAX_SEND - taken)];
            if part.is_empty() {
                continue;
            }
            let n = writer.write(part)?;
            taken += n;
            if n < part.len() || taken == MAX_SEND {
                break;
            }
        }
        send_queued(io, conn, st, cx)?;
        Poll::Ready(Ok(taken))
    }

    fn poll_flush(&mut self, st: &mut State, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.is_send_broken() {
            return Poll::Ready(Err(send_broken()));
        }
        let (io, conn) = self.parts_mut();
        loop {
            ready!(st.write.poll_idle(io.shared_fd(), cx))?;
            if !conn.wants_write() {
                return Poll::Ready(Ok(()));
            }
            send_queued(io, conn, st, cx)?;
        }
    }

    fn poll_shutdown(&mut self, st: &mut State, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if !st.closing {
            self.parts_mut().1.send_close_notify();
            st.closing = true;
        }
        ready!(sealed::Write::poll_flush(self, st, cx))?;
        st.write.poll_shutdown(self.get_ref().shared_fd(), cx)
    }
}
