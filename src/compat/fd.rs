//! The compat engine of plain byte streams on an fd: TCP and Unix streams,
//! their owned halves, and a child's stdin, stdout and stderr.
//!
//! How it works: reads hand out the bytes of a pooled-receive lease
//! ([`ReadSide`](super::state::ReadSide); on a pipe, of an owned buffer
//! read(2) filled); writes copy the caller's bytes into the buffer of one
//! owned send ([`WriteState`](super::raw::WriteState); write(2) on a pipe)
//! and submit it. A new stream type plugs in with one line:
//! `fd_stream!(Type, read, write)` for a type with a `fd: SharedFd` field.
//! Shutting a child's stdin down closes the pipe (pipes have no shutdown).

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
    pipe: bool,
    st: &'a mut State,
    cx: &mut Context<'_>,
) -> Poll<io::Result<&'a [u8]>> {
    st.read.poll_fill(fd, pipe, cx)
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
    (pipe $t:ty $(, $side:ident)+) => {
        fd_stream!(@impl $t, true $(, $side)+);
    };
    (@impl $t:ty, $pipe:literal $(, $side:ident)+) => {
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

        $(fd_stream!(@ $side $t, $pipe);)+
    };
    ($t:ty $(, $side:ident)+) => {
        fd_stream!(@impl $t, false $(, $side)+);
    };
    (@ read $t:ty, $pipe:literal) => {
        impl sealed::Read for $t {
            fn poll_fill_buf<'a>(
                &'a mut self,
                st: &'a mut State,
                cx: &mut Context<'_>,
            ) -> Poll<io::Result<&'a [u8]>> {
                poll_fill_buf(&self.fd, $pipe, st, cx)
            }

            fn consume(&mut self, st: &mut State, n: usize) {
                st.read.consume(n);
            }
        }
    };
    (@ write $t:ty, $pipe:literal) => {
        impl sealed::Write for $t {
            fn poll_write(
                &mut self,
                st: &mut State,
                cx: &mut Context<'_>,
                bufs: &[IoSlice<'_>],
            ) -> Poll<io::Result<usize>> {
                st.write.pipe = $pipe;
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

#[cfg(target_os = "linux")]
mod linux {
    use super::*;
    use crate::net::UnixStream;
    use crate::net::unix::{OwnedReadHalf as UnixReadHalf, OwnedWriteHalf as UnixWriteHalf};
    use crate::process::{ChildStderr, ChildStdin, ChildStdout};

    fd_stream!(UnixStream, read, write);
    fd_stream!(UnixReadHalf, read);
    fd_stream!(UnixWriteHalf, write);
    fd_stream!(pipe ChildStdout, read);
    fd_stream!(pipe ChildStderr, read);

    /// A child's stdin: write(2) on the pipe; shutting down closes it.
    impl sealed::Stream for ChildStdin {
        fn unwrapped(&mut self, _st: &mut State) {}
    }

    impl sealed::Write for ChildStdin {
        fn poll_write(
            &mut self,
            st: &mut State,
            cx: &mut Context<'_>,
            bufs: &[IoSlice<'_>],
        ) -> Poll<io::Result<usize>> {
            let Some(fd) = self.shared_fd() else {
                return Poll::Ready(Err(io::Error::from(io::ErrorKind::BrokenPipe)));
            };
            st.write.pipe = true;
            poll_write(fd, st, cx, bufs)
        }

        fn poll_flush(&mut self, st: &mut State, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            match self.shared_fd() {
                Some(fd) => st.write.poll_idle(fd, cx),
                None => Poll::Ready(Ok(())),
            }
        }

        fn poll_shutdown(&mut self, st: &mut State, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            if let Some(fd) = self.shared_fd() {
                ready!(st.write.poll_idle(fd, cx))?;
            }
            self.close();
            Poll::Ready(Ok(()))
        }
    }
}
