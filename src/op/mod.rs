//! Operations: one type per operation, and the [`Op`] future that runs it.
//!
//! How it works: an op type (say [`net::Recv`]) holds the fd, the buffer and
//! the arguments, and implements [`OpCode`] once for both drivers: how to
//! build its io_uring SQE; which readiness it waits for and how to attempt
//! its non-blocking syscall (the poll driver, and the io_uring driver when a
//! socket in `O_NONBLOCK` mode answers `EAGAIN`); and how the raw result
//! becomes the user's value. [`Op`] runs it on whichever driver the runtime
//! has (`uring.rs`, `ready.rs`). On io_uring the kernel only ever sees heap
//! addresses the op value owns, so the value may move: if the future is
//! dropped before the completion, the value moves into the driver's slot, a
//! cancel is submitted, and [`OpCode::abandoned`] decides what happens to the
//! result nobody awaits (keep received data or an accepted fd for the next op
//! on that socket; close an fd nobody can take).

mod blocking;

pub(crate) use blocking::{Orphan, release_orphans};
#[cfg(target_os = "linux")]
pub(crate) mod eventfd;
#[cfg(target_os = "linux")]
pub(crate) mod fs;
pub(crate) mod net;
#[cfg(target_os = "linux")]
pub(crate) mod pipe;
pub(crate) mod pooled;
#[cfg(target_os = "linux")]
pub(crate) mod process;
mod ready;
#[cfg(corio_uring)]
mod uring;

use std::future::Future;
use std::io;
use std::os::fd::RawFd;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use crate::runtime::context;
use crate::runtime::core::Core;

/// Readiness an op waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Interest {
    Readable,
    Writable,
}

/// One kind of operation, written once for both drivers.
///
/// # Safety
///
/// Every address the SQE built by `sqe` passes to the kernel must point into
/// memory owned by `self` that does not move when `self` is moved (heap
/// allocations, buffers satisfying `IoBuf`), or into `'static` memory, and
/// must stay valid until the op's completion. The driver keeps the value
/// alive (even when its future is dropped) until then.
///
/// When [`blocking`](OpCode::blocking) is true, [`attempt`](OpCode::attempt)
/// runs on a blocking-pool thread while the runtime's thread leaves the value
/// alone: it must only read plain data (fd numbers, lengths, offsets) and
/// the memory its buffers own, never clone or drop `Rc`s or other
/// thread-bound state.
pub(crate) unsafe trait OpCode: 'static {
    /// What the op's future returns.
    type Output;

    /// The io_uring submission entry (its `user_data` is set by the driver).
    #[cfg(corio_uring)]
    fn sqe(&mut self) -> io_uring::squeue::Entry;

    /// The fd and readiness the syscall waits for; `None` when it never
    /// waits (it completes at once).
    fn readiness(&self) -> Option<(RawFd, Interest)>;

    /// On the poll driver, `attempt` blocks (regular files have no
    /// readiness) and runs on the blocking pool.
    fn blocking(&self) -> bool {
        false
    }

    /// The opcode `sqe` uses when it is newer than the kernels the io_uring
    /// driver requires (say `FTRUNCATE`, Linux 6.9). Where the kernel's probe
    /// lacks it, the op runs its `attempt` on the blocking pool instead, so
    /// only ops whose `attempt` is a plain blocking syscall name one.
    #[cfg(corio_uring)]
    fn optional_opcode(&self) -> Option<u8> {
        None
    }

    /// One non-blocking attempt of the syscall: `WouldBlock` means "wait for
    /// `readiness` and try again".
    fn attempt(&mut self) -> io::Result<u32>;

    /// A successful `attempt` returned `n` and that shows the fd has no more
    /// of its readiness right now (a short read of a stream socket, a short
    /// write): the poll driver then forgets the fd's readiness instead of
    /// learning it from an `EAGAIN` on the next attempt.
    fn drained(&self, n: u32) -> bool {
        let _ = n;
        false
    }

    /// Turns the result (a count or an fd, or the error) into the output.
    fn complete(self, res: io::Result<u32>, flags: u32) -> Self::Output;

    /// The future was dropped and the op finished anyway: keep or release
    /// what the result carries (say close the fd of an abandoned open).
    /// Must not touch the driver. Runs for ops abandoned in the kernel and
    /// for blocking-pool ops whose future went away before the syscall
    /// returned.
    fn abandoned(self, res: io::Result<u32>, flags: u32)
    where
        Self: Sized,
    {
        let _ = (res, flags);
    }
}

/// A receive of `n` bytes into room for `len` emptied its socket: a short
/// stream read (a datagram says nothing of the next one, and 0 is the end).
/// The poll driver then forgets the socket's readability.
#[inline]
pub(crate) fn drained_by_read(datagram: bool, n: usize, len: usize) -> bool {
    !datagram && n > 0 && n < len
}

/// The result of a raw syscall returning `-1` on error.
#[inline]
pub(crate) fn syscall_result(res: libc::ssize_t) -> io::Result<u32> {
    if res < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(res as u32)
    }
}

enum State<T> {
    Unsubmitted,
    /// The op itself is in the kernel (io_uring).
    #[cfg(corio_uring)]
    InFlight(usize),
    /// A readiness poll is in flight before the op is retried (io_uring).
    #[cfg(corio_uring)]
    Polling(usize),
    /// The syscall runs on the blocking pool (poll driver); the op value
    /// lives in the job until it returns.
    Blocking(std::sync::Arc<blocking::Job<T>>),
    Done,
}

/// Future of one operation.
pub(crate) struct Op<T: OpCode> {
    core: Rc<Core>,
    data: Option<T>,
    state: State<T>,
}

impl<T: OpCode> Op<T> {
    /// An op on the current runtime; started when first polled.
    ///
    /// # Panics
    ///
    /// Panics outside a corio runtime.
    #[track_caller]
    pub(crate) fn new(data: T) -> Op<T> {
        Op {
            core: context::current("an I/O operation"),
            data: Some(data),
            state: State::Unsubmitted,
        }
    }

    fn finish(&mut self, res: io::Result<u32>, flags: u32) -> Poll<T::Output> {
        self.state = State::Done;
        let data = self.data.take().expect("corio: Op polled after completion");
        Poll::Ready(data.complete(res, flags))
    }
}

// The op value is never pinned: the kernel only sees heap memory it owns.
impl<T: OpCode> Unpin for Op<T> {}

impl<T: OpCode> Future for Op<T> {
    type Output = T::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T::Output> {
        let this = self.get_mut();
        if let State::Done = this.state {
            panic!("corio: Op polled after completion");
        }
        #[cfg(corio_uring)]
        if this.core.is_uring() {
            return this.poll_uring(cx);
        }
        this.poll_ready(cx)
    }
}

impl<T: OpCode> Drop for Op<T> {
    fn drop(&mut self) {
        match std::mem::replace(&mut self.state, State::Done) {
            State::Blocking(job) => blocking::abandon(&self.core, job),
            other => {
                self.state = other;
                #[cfg(corio_uring)]
                self.drop_uring();
            }
        }
    }
}

/// A no-op round trip through the driver (`IORING_OP_NOP` on io_uring).
#[derive(Debug)]
pub(crate) struct Nop;

// SAFETY: a NOP names no memory.
unsafe impl OpCode for Nop {
    type Output = io::Result<()>;

    #[cfg(corio_uring)]
    fn sqe(&mut self) -> io_uring::squeue::Entry {
        io_uring::opcode::Nop::new().build()
    }

    fn readiness(&self) -> Option<(RawFd, Interest)> {
        None
    }

    fn attempt(&mut self) -> io::Result<u32> {
        Ok(0)
    }

    fn complete(self, res: io::Result<u32>, _flags: u32) -> io::Result<()> {
        res.map(drop)
    }
}

/// Submits a no-op to the driver and waits for its completion.
///
/// It measures the cost of one operation round trip through the runtime
/// (submit, reap, wake, poll) and is otherwise useless.
///
/// ```
/// corio::run(async { corio::nop().await.unwrap() });
/// ```
pub async fn nop() -> io::Result<()> {
    Op::new(Nop).await
}
