//! The seam between the compat layer and corio's ops: poll-level receive,
//! send and shutdown on a socket.
//!
//! How it works: the op layer offers async fns and `Op<T>` futures; the
//! `poll_*` traits of other crates need functions that can be polled again
//! and again, keeping their state between calls. This file is the only place
//! that builds that state from today's ops, so a later poll-level op API can
//! replace it without touching the rest of `compat`:
//!
//! - [`RecvState`] keeps one pooled receive op (on a pipe, a read into an
//!   owned buffer) across calls; [`poll_read_pooled`] polls it. A receive
//!   dropped mid-way (the whole `Compat` dropped) loses nothing: both are
//!   cancel-safe.
//! - [`WriteState`] owns at most one send in flight (an `Op<Send>` over an
//!   owned `Vec`, stored and polled directly: no boxing). Bytes are copied into
//!   that buffer, the op is submitted, and the caller is told they were taken;
//!   a short send is resubmitted for the rest. Errors are sticky: after a lost
//!   send nothing more is sent, so the peer never sees a stream with a hole.
//!   Dropped with a send still unfinished, the state finishes it in a
//!   detached task (bounded by [`LINGER`]).
//! - [`unread`] gives bytes back to the socket's read queue, in front.

use std::fmt;
use std::future::Future;
use std::io;
use std::net::Shutdown as How;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use crate::buf::{IoBuf, PooledBuf, Slice};
use crate::fd::SharedFd;
use crate::op::Op;
use crate::op::net::{Send, Shutdown};
use crate::op::pipe::{PipeRead, PipeWrite};
use crate::op::pooled::RecvPooled;
use crate::runtime::context;

/// Largest buffer one send carries; a bigger write is taken in parts.
pub(crate) const MAX_SEND: usize = 64 * 1024;
/// A send buffer up to this capacity is kept for the next write.
const KEEP_CAPACITY: usize = 16 * 1024;
/// How long a send left unfinished by a dropped stream may still take.
pub(crate) const LINGER: Duration = Duration::from_secs(30);

/// A receive kept across polls: a pooled receive on a socket, or a read
/// into an owned buffer on a pipe.
#[derive(Default)]
pub(crate) enum RecvState {
    #[default]
    Idle,
    Pooled(Op<RecvPooled>),
    Pipe(Op<PipeRead<Vec<u8>>>),
}

impl fmt::Debug for RecvState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecvState")
            .field("waiting", &!matches!(self, RecvState::Idle))
            .finish()
    }
}

/// How much one pipe read asks for.
const PIPE_READ: usize = 16 * 1024;

/// Receives into a buffer of the runtime's pool (a socket), or into an
/// owned buffer (a pipe): `Ok(None)` at the end of the stream. Pending until
/// data arrives; the receive started by an earlier call goes on where it
/// was (the op is kept in `st`, no allocation).
pub(crate) fn poll_read_pooled(
    st: &mut RecvState,
    fd: &SharedFd,
    pipe: bool,
    cx: &mut Context<'_>,
) -> Poll<io::Result<Option<PooledBuf>>> {
    if let RecvState::Idle = st {
        *st = if pipe {
            RecvState::Pipe(Op::new(PipeRead::new(fd, Vec::with_capacity(PIPE_READ))))
        } else {
            RecvState::Pooled(crate::op::pooled::recv_op(fd, false)?)
        };
    }
    let res = match st {
        RecvState::Pooled(op) => ready!(Pin::new(op).poll(cx)),
        RecvState::Pipe(op) => {
            let (res, buf) = ready!(Pin::new(op).poll(cx));
            res.map(|n| (n > 0).then(|| PooledBuf::owned(buf)))
        }
        RecvState::Idle => unreachable!("set above"),
    };
    *st = RecvState::Idle;
    Poll::Ready(res)
}

/// Puts `bytes` back in front of the socket's read queue: the next read of
/// the socket returns them first.
pub(crate) fn unread(fd: &SharedFd, bytes: &[u8]) {
    if !bytes.is_empty() {
        fd.kept().unread_front(bytes);
    }
}

type SendOut = crate::buf::BufResult<usize, Slice<Vec<u8>>>;

/// A send that was submitted: in the kernel, or already done.
enum Sending {
    Op(Op<Send<Slice<Vec<u8>>>>),
    Pipe(Op<PipeWrite<Slice<Vec<u8>>>>),
    /// The first poll finished it (the poll driver tries at once).
    Done(SendOut),
}

/// The write side: one send in flight at most, and a sticky error.
#[derive(Default)]
pub(crate) struct WriteState {
    /// The send in flight: the whole buffer, or its unsent rest.
    inflight: Option<Sending>,
    /// The buffer the next send carries: filled through
    /// [`buffer`](Self::buffer), kept (emptied) after a send for reuse.
    next: Vec<u8>,
    shutdown: Option<Op<Shutdown>>,
    /// The write side was shut down.
    shut: bool,
    /// A send failed: the kind and text of its error.
    failed: Option<(io::ErrorKind, String)>,
    /// The socket, kept from the first send for [`Drop`] to finish one.
    fd: Option<SharedFd>,
    /// The fd is a pipe: writes are write(2), not send(2).
    pub(crate) pipe: bool,
}

impl fmt::Debug for WriteState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WriteState")
            .field("in_flight", &self.inflight.is_some())
            .field("shut", &self.shut)
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}

impl WriteState {
    /// Drives the send in flight to its end (resubmitting the rest of a
    /// short send): ready when none is left, with the error of one that
    /// failed (then and on every later call).
    pub(crate) fn poll_idle(
        &mut self,
        fd: &SharedFd,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            if let Some((kind, msg)) = &self.failed {
                return Poll::Ready(Err(io::Error::new(*kind, msg.clone())));
            }
            let (res, slice) = match self.inflight.take() {
                None => return Poll::Ready(Ok(())),
                Some(Sending::Done(out)) => out,
                Some(Sending::Op(mut op)) => match Pin::new(&mut op).poll(cx) {
                    Poll::Ready(out) => out,
                    Poll::Pending => {
                        self.inflight = Some(Sending::Op(op));
                        return Poll::Pending;
                    }
                },
                Some(Sending::Pipe(mut op)) => match Pin::new(&mut op).poll(cx) {
                    Poll::Ready(out) => out,
                    Poll::Pending => {
                        self.inflight = Some(Sending::Pipe(op));
                        return Poll::Pending;
                    }
                },
            };
            let n = match res {
                Ok(0) => Err(io::Error::new(
                    io::ErrorKind::WriteZero,
                    "the socket took no bytes",
                )),
                Ok(n) => Ok(n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(0),
                Err(e) => Err(e),
            };
            match n {
                Err(e) => {
                    self.fail(&e);
                    return Poll::Ready(Err(e));
                }
                Ok(n) if slice.begin() + n < slice.end() => {
                    // A short send: the rest goes next, before anything else.
                    let (begin, end) = (slice.begin() + n, slice.end());
                    self.submit(fd, slice.into_inner().slice(begin..end), cx);
                }
                Ok(_) => {
                    let mut buf = slice.into_inner();
                    if buf.capacity() <= KEEP_CAPACITY && self.next.is_empty() {
                        buf.clear();
                        self.next = buf;
                    }
                }
            }
        }
    }

    /// Fails once the write side is shut down (as send(2) would, `EPIPE`).
    pub(crate) fn check_open(&self) -> io::Result<()> {
        if self.shut || self.shutdown.is_some() {
            return Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "write after the stream's write side was shut down",
            ));
        }
        Ok(())
    }

    /// The buffer of the next send, empty; fill it (up to [`MAX_SEND`]
    /// bytes), then [`start`](Self::start) it. Only while idle.
    pub(crate) fn buffer(&mut self) -> &mut Vec<u8> {
        debug_assert!(self.inflight.is_none(), "buffer() with a send in flight");
        &mut self.next
    }

    /// Sends what [`buffer`](Self::buffer) holds, if anything: submits the
    /// send (polling it once with `cx`). An error that comes at once (the
    /// poll driver tries the syscall right away) is returned, and sticks.
    pub(crate) fn start(&mut self, fd: &SharedFd, cx: &mut Context<'_>) -> io::Result<()> {
        if self.next.is_empty() {
            return Ok(());
        }
        let buf = std::mem::take(&mut self.next);
        let len = buf.len();
        self.submit(fd, buf.slice(0..len), cx);
        if let Some(Sending::Done(_)) = self.inflight {
            // Finished at once: take the result now (a short send goes on).
            if let Poll::Ready(Err(e)) = self.poll_idle(fd, cx) {
                return Err(e);
            }
        }
        Ok(())
    }

    fn submit(&mut self, fd: &SharedFd, buf: Slice<Vec<u8>>, cx: &mut Context<'_>) {
        if self.fd.is_none() {
            self.fd = Some(fd.clone());
        }
        // The first poll submits it; its result is taken by `poll_idle`.
        self.inflight = Some(if self.pipe {
            let mut op = Op::new(PipeWrite::new(fd, buf));
            match Pin::new(&mut op).poll(cx) {
                Poll::Pending => Sending::Pipe(op),
                Poll::Ready(out) => Sending::Done(out),
            }
        } else {
            let mut op = Op::new(Send::new(fd, buf));
            match Pin::new(&mut op).poll(cx) {
                Poll::Pending => Sending::Op(op),
                Poll::Ready(out) => Sending::Done(out),
            }
        });
    }

    /// No send is in flight.
    #[cfg_attr(not(feature = "tls"), allow(dead_code))] // TLS's engine uses it
    pub(crate) fn is_idle(&self) -> bool {
        self.inflight.is_none()
    }

    fn fail(&mut self, e: &io::Error) {
        self.next = Vec::new();
        self.failed = Some((
            e.kind(),
            format!("an earlier write on this stream failed ({e}): nothing more is sent"),
        ));
    }

    /// A send failed earlier: nothing more may be sent.
    #[cfg_attr(not(feature = "tls"), allow(dead_code))] // TLS's engine uses it
    pub(crate) fn has_failed(&self) -> bool {
        self.failed.is_some()
    }

    /// Waits for the send in flight, then shuts the socket's write side
    /// down (FIN) once; later calls are ready at once.
    pub(crate) fn poll_shutdown(
        &mut self,
        fd: &SharedFd,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<()>> {
        ready!(self.poll_idle(fd, cx))?;
        if self.shut {
            return Poll::Ready(Ok(()));
        }
        let op = self
            .shutdown
            .get_or_insert_with(|| Op::new(Shutdown::new(fd, How::Write)));
        let res = ready!(Pin::new(op).poll(cx));
        self.shutdown = None;
        match res {
            Ok(()) => {
                self.shut = true;
                Poll::Ready(Ok(()))
            }
            // Already closed by the peer: the write side is down anyway.
            Err(e) if e.kind() == io::ErrorKind::NotConnected => {
                self.shut = true;
                Poll::Ready(Ok(()))
            }
            Err(e) => Poll::Ready(Err(e)),
        }
    }
}

impl Drop for WriteState {
    /// A send still unfinished goes on in a detached task on the current
    /// runtime, for at most [`LINGER`]: bytes a writer was told were taken
    /// are sent even when the stream is dropped without a flush (as the
    /// kernel would for a plain socket). Outside a runtime it is dropped.
    fn drop(&mut self) {
        let Some(fd) = self.fd.take() else { return };
        if self.inflight.is_none() || self.failed.is_some() {
            return;
        }
        if !context::with_core(|c| c.is_some()) {
            return;
        }
        // `rest` has no fd: its own drop (timed out, or at runtime
        // shutdown) lets the send go.
        let mut rest = WriteState {
            inflight: self.inflight.take(),
            next: Vec::new(),
            shutdown: None,
            shut: false,
            failed: None,
            fd: None,
            pipe: self.pipe,
        };
        let finish = std::future::poll_fn(move |cx| rest.poll_idle(&fd, cx));
        drop(crate::spawn(async move {
            let _ = crate::time::timeout(LINGER, finish).await;
        }));
    }
}
