//! Operations: one type per operation, and the [`Op`] future that runs it.
//!
//! How it works: an op type (say [`net::Recv`]) holds the fd, the buffer and
//! the arguments, and implements the driver's [`OpCode`] once for every
//! backend (see `driver/op.rs`). [`Op`] runs it on the current runtime's
//! driver: the first poll starts it (or, for a file read the page cache
//! holds, finishes it: `fs/cached.rs`), later polls take its result; dropping
//! the future hands whatever the kernel may still touch to the driver's
//! release queue. The op value never needs pinning: the kernel only sees
//! heap memory it owns.

mod checked;
#[cfg(target_os = "linux")]
pub(crate) mod eventfd;
#[cfg(target_os = "linux")]
pub(crate) mod fs;
pub(crate) mod loops;
pub(crate) mod net;
#[cfg(target_os = "linux")]
pub(crate) mod pipe;
pub(crate) mod pooled;
pub(crate) mod pooled_layout;
#[cfg(target_os = "linux")]
pub(crate) mod process;

use std::future::Future;
use std::io;
use std::mem::ManuallyDrop;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

pub(crate) use crate::driver::{Interest, Kind, OpCode, Role, Sqe, Wait, uring};
use crate::driver::{OpState, release_op, take_op_data};
use crate::runtime::context;
use crate::runtime::core::Core;
use crate::runtime::observe;
use crate::trace;

pub(crate) use checked::Checked;

/// Future of one operation.
///
/// Making one touches no runtime: the first poll finds the current one, so
/// an op may be created outside a runtime and awaited inside.
pub(crate) struct Op<T: OpCode> {
    core: Option<Rc<Core>>,
    // `data` and `state` are dropped by hand (`Drop` below): a finished op
    // holds neither, so its drop is one test and the `Rc`'s, small enough
    // to inline where the future ends.
    data: ManuallyDrop<Option<T>>,
    state: ManuallyDrop<OpState<T>>,
    /// With the `tracing` feature, when the op was first polled (zero-sized
    /// without it).
    clock: trace::OpClock,
}

impl<T: OpCode> Op<T> {
    /// An op on the runtime it is first polled on.
    #[inline]
    pub(crate) fn new(data: T) -> Op<T> {
        Op {
            core: None,
            data: ManuallyDrop::new(Some(data)),
            state: ManuallyDrop::new(OpState::Idle),
            clock: trace::OpClock::new(),
        }
    }

    /// An op on the runtime `core` (the current one, found already).
    #[inline]
    pub(crate) fn on(core: Rc<Core>, data: T) -> Op<T> {
        Op {
            core: Some(core),
            data: ManuallyDrop::new(Some(data)),
            state: ManuallyDrop::new(OpState::Idle),
            clock: trace::OpClock::new(),
        }
    }

    /// Cancels the op in place. Returns its value when nothing of it has
    /// started (the future is then finished and must not be polled again);
    /// otherwise `None`, after asking the kernel to cancel it: the future
    /// still ends with the op's own result (the kernel's, if it came first;
    /// `ECANCELED` if the cancel won), so nothing it got is lost.
    pub(crate) fn cancel(&mut self) -> Option<T> {
        match *self.state {
            OpState::Idle => {
                *self.state = OpState::Done;
                self.data.take()
            }
            OpState::Done => None,
            _ => {
                if let Some(core) = &self.core {
                    core.driver.borrow_mut().cancel_op(&self.state);
                }
                None
            }
        }
    }

    /// True while the op runs on the blocking pool (for tests).
    #[cfg(test)]
    pub(crate) fn on_blocking_pool(&self) -> bool {
        matches!(*self.state, OpState::Blocking(_))
    }
}

// The op value is never pinned: the kernel only sees heap memory it owns.
impl<T: OpCode> Unpin for Op<T> {}

impl<T: OpCode> Future for Op<T> {
    type Output = T::Output;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T::Output> {
        let this = self.get_mut();
        let core = match &this.core {
            Some(core) => core,
            None => this.core.insert(context::current("an I/O operation")),
        };
        this.clock.start();
        // A read the page cache may answer at once weighs the other tasks
        // queued to run: their ops could share its submission
        // (`op/fs/cached.rs`). Not counted for any other op.
        let queued = if T::TRY_NOW { core.queue.len() } else { 0 };
        let polled = core.driver.borrow_mut().poll_op(
            &mut this.state,
            &mut this.data,
            cx,
            &core.budget,
            queued,
        );
        match polled {
            Poll::Ready((res, flags)) => {
                let data = take_op_data(&mut this.data);
                if trace::ON {
                    let fd = match data.wait() {
                        Wait::Ready(fd, _) => Some(fd.raw()),
                        _ => data.role().map(|r| r.fd.raw()),
                    };
                    this.clock.done(T::kind_name(), fd, &res);
                }
                Poll::Ready(data.complete(res, flags))
            }
            Poll::Pending => {
                // Task tracking: the task now waits on this op (a field of
                // the core in hand: no thread-local).
                if !core.tracked.get().is_null() {
                    note_pending::<T>(core);
                }
                Poll::Pending
            }
        }
    }
}

/// With task tracking on, records on the current task that it waits on
/// this op (out of line: the check above is all an untracked op pays).
#[cold]
#[inline(never)]
fn note_pending<T: OpCode>(core: &Core) {
    observe::note_op(&core.tracked, T::kind_name());
}

impl<T: OpCode> Drop for Op<T> {
    #[inline]
    fn drop(&mut self) {
        // Most ops end finished: nothing of theirs is left, nothing is in
        // the kernel.
        if matches!(*self.state, OpState::Done) && self.data.is_none() {
            return;
        }
        self.drop_slow();
    }
}

impl<T: OpCode> Op<T> {
    /// Drops what a future that did not finish still holds (`data` and
    /// `state` are `ManuallyDrop`: both are emptied here, nothing else
    /// drops them).
    #[cold]
    #[inline(never)]
    fn drop_slow(&mut self) {
        let state = std::mem::replace(&mut *self.state, OpState::Done);
        let data = self.data.take();
        if matches!(state, OpState::Done | OpState::Idle) {
            drop(data);
            return;
        }
        // Started, so polled on a runtime: `core` is set.
        if let Some(core) = &self.core {
            release_op(&core.owner, state, data);
        }
    }
}

/// Installs `fd` (an accepted connection, an opened file) in the current
/// runtime's registered-file table, when it has one
/// (`Builder::registered_files`); its ops then name it by slot.
pub(crate) fn install_file(fd: &crate::fd::SharedFd) {
    context::with_core(|c| {
        if let Some(c) = c {
            c.driver.borrow_mut().install_file(fd);
        }
    });
}

/// A no-op round trip through the driver (`IORING_OP_NOP` on io_uring).
#[derive(Debug)]
pub(crate) struct Nop;

// SAFETY: a NOP names no memory.
unsafe impl OpCode for Nop {
    type Output = io::Result<()>;

    fn wait(&self) -> Wait<'_> {
        Wait::Never
    }

    fn sqe(&mut self) -> Sqe {
        uring!(opcode::Nop::new().build())
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
// The op's future itself, not an `async fn` around it: no second state
// machine to poll on every round trip.
pub fn nop() -> impl Future<Output = io::Result<()>> {
    Op::new(Nop)
}
