//! The compat engine of plain byte streams on a socket fd: `TcpStream`, its
//! owned halves (and Unix streams and pipes when they come).
//!
//! How it works: reads hand out the bytes of a pooled-receive lease
//! ([`ReadSide`](super::state::ReadSide)); writes copy the caller's bytes
//! into the buffer of one owned send ([`WriteState`](super::raw::WriteState))
//! and submit it. A new stream type plugs in with one line:
//! `fd_stream!(Type, read, write)` for a type with a `fd: SharedFd` field.

use std::io::{self, IoSlice};
use std::task::{Context, Poll, ready};

use super::raw::MAX_SEND;
use super::sealed;
use super::state::State;
use crate::fd::SharedFd;
use crate::net::{OwnedReadHalf, OwnedWriteHalf, TcpStream};

/// A stream over one socket fd; what [`TlsStream`](crate::tls::TlsStream)'s
/// compat engine needs of its transport.
#[cfg_attr(not(feature = "tls"), allow(dead_code))] // TLS's engine uses it
pub(crate) trait FdStream {
    fn shared_fd(&self) -> &SharedFd;
}

pub(super) fn poll_fill_buf<'a>(
    fd: &SharedFd,
    st: &'a mut State,
    cx: &mut Context<'_>,
) -> Poll<io::Result<&'a [u8]>> {
    st.read.poll_fill(fd, cx)
}

/// Copies as much of `bufs` as one send carries into its buffer and
/// submits it, once the send before has finished.
pub(super) fn poll_write(
    fd: &SharedFd,
    st: &mut State,
    cx: &mut Context<'_>,
    bufs: &[IoSlice<'_>],
) -> Poll<io::Result<usize>> {
    ready!(st.write.poll_idle(fd, cx))?;
    st.write.check_open()?;
    let out = st.write.buffer();
    for b in bufs {
        let room = MAX_SEND - out.len();
        if room == 0 {
            break;
        }
        out.extend_from_slice(&b[..b.len().min(room)]);
    }
    let n = out.len();
    st.write.start(fd, cx)?;
    Poll::Ready(Ok(n))
}

/// Implements the compat engine for a stream type with a `fd: SharedFd`
/// field: `fd_stream!(Type, read)`, `(Type, write)` or `(Type, read, write)`.
macro_rules! fd_stream {
    ($t:ty $(, $side:ident)+) => {
        impl FdStream for $t {
            fn shared_fd(&self) -> &SharedFd {
                &self.fd
            }
        }

        impl sealed::Stream for $t {
            fn unwrapped(&mut self, st: &mut State) {
                st.read.unread(&self.fd);
            }
        }

        $(fd_stream!(@ $side $t);)+
    };
    (@ read $t:ty) => {
        impl sealed::Read for $t {
            fn poll_fill_buf<'a>(
                &'a mut self,
                st: &'a mut State,
                cx: &mut Context<'_>,
            ) -> Poll<io::Result<&'a [u8]>> {
                poll_fill_buf(&self.fd, st, cx)
            }

            fn consume(&mut self, st: &mut State, n: usize) {
                st.read.consume(n);
            }
        }
    };
    (@ write $t:ty) => {
        impl sealed::Write for $t {
            fn poll_write(
                &mut self,
                st: &mut State,
                cx: &mut Context<'_>,
                bufs: &[IoSlice<'_>],
            ) -> Poll<io::Result<usize>> {
                poll_write(&self.fd, st, cx, bufs)
            }

            fn poll_flush(&mut self, st: &mut State, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                st.write.poll_idle(&self.fd, cx)
            }

            fn poll_shutdown(
                &mut self,
                st: &mut State,
                cx: &mut Context<'_>,
            ) -> Poll<io::Result<()>> {
                st.write.poll_shutdown(&self.fd, cx)
            }
        }
    };
}

fd_stream!(TcpStream, read, write);
fd_stream!(OwnedReadHalf, read);
fd_stream!(OwnedWriteHalf, write);
