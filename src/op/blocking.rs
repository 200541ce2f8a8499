//! Running an op's syscall on the blocking pool (poll driver, regular files).
//!
//! How it works: the op value moves into a shared [`Job`]; a pool thread runs
//! its `attempt` and stores the result under the job's lock, waking the task.
//! The op value is only ever dropped on the runtime's thread: by the future
//! when it takes the result, or — if the future was dropped first — by the
//! driver, which keeps such jobs as orphans and releases each once its
//! syscall has returned (the buffer stays valid while the kernel uses it),
//! handing the result to `OpCode::abandoned` (an fd opened for nobody is
//! closed).

use std::cell::UnsafeCell;
use std::io;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use super::{Op, OpCode, State};
use crate::runtime::core::Core;

#[derive(Default)]
struct Progress {
    done: bool,
    res: Option<io::Result<u32>>,
    waker: Option<Waker>,
}

/// An op value handed to the blocking pool.
pub(crate) struct Job<T> {
    data: UnsafeCell<Option<T>>,
    progress: Mutex<Progress>,
}

/// Moves the job's `Arc` to a pool thread.
struct SendJob<T>(Arc<Job<T>>);

// SAFETY: the pool thread only calls `attempt` on the op value, which the
// `OpCode` contract allows off-thread for blocking ops, and touches
// `progress` under its mutex. The op value itself is never dropped there: it
// is taken out on the runtime's thread before the last `Arc` can go away on
// the pool (see `take_data` and `Orphan::release`).
unsafe impl<T> Send for SendJob<T> {}

impl<T: OpCode> Job<T> {
    fn run(&self) {
        // SAFETY: while the job is not done, only this thread touches `data`
        // (the runtime's thread waits for `done` under the lock).
        let res = match unsafe { (*self.data.get()).as_mut() } {
            Some(op) => op.attempt(),
            None => Err(io::Error::other("corio: blocking op without its value")),
        };
        let waker = {
            let mut p = self.progress.lock().unwrap_or_else(|e| e.into_inner());
            p.res = Some(res);
            p.done = true;
            p.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }

    fn take_data(&self) -> Option<T> {
        // SAFETY: called on the runtime's thread once `done` is set (or the
        // pool has shut down), so no pool thread uses `data` any more.
        unsafe { (*self.data.get()).take() }
    }
}

/// A blocking job whose future was dropped; the poll driver keeps it.
pub(crate) trait Orphan {
    /// True once the pool thread has finished with the op value.
    fn is_done(&self) -> bool;
    /// Drops the op value (on the runtime's thread).
    fn release(&self);
}

impl<T: OpCode> Orphan for Arc<Job<T>> {
    fn is_done(&self) -> bool {
        self.progress.lock().unwrap_or_else(|e| e.into_inner()).done
    }

    fn release(&self) {
        let res = self
            .progress
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .res
            .take();
        match (self.take_data(), res) {
            // The syscall ran: let the op release what it produced (the fd
            // of an open nobody awaits).
            (Some(op), Some(res)) => op.abandoned(res, 0),
            // Never ran (the pool shut down first): just drop the value.
            (op, _) => drop(op),
        }
    }
}

impl<T: OpCode> Op<T> {
    pub(super) fn poll_blocking(&mut self, cx: &mut Context<'_>) -> Poll<T::Output> {
        if let State::Blocking(job) = &self.state {
            let res = {
                let mut p = job.progress.lock().unwrap_or_else(|e| e.into_inner());
                if !p.done {
                    if !p.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                        p.waker = Some(cx.waker().clone());
                    }
                    return Poll::Pending;
                }
                p.res.take().expect("a done job has a result")
            };
            self.data = job.take_data();
            return self.finish(res, 0);
        }
        let job = Arc::new(Job {
            data: UnsafeCell::new(self.data.take()),
            progress: Mutex::new(Progress {
                waker: Some(cx.waker().clone()),
                ..Progress::default()
            }),
        });
        let send = SendJob(job.clone());
        self.core.blocking.execute(Box::new(move || {
            let job = send;
            job.0.run();
        }));
        self.state = State::Blocking(job);
        Poll::Pending
    }
}

/// The future of a blocking op was dropped: its value waits in the driver
/// until the pool thread is done with it.
pub(super) fn abandon<T: OpCode>(core: &Rc<Core>, job: Arc<Job<T>>) {
    if job.is_done() {
        job.release();
    } else {
        core.orphans.borrow_mut().push(Box::new(job));
    }
}

/// Releases the orphans whose syscalls have returned; with `all`, every
/// orphan (the pool has shut down, so none is in use).
pub(crate) fn release_orphans(core: &Core, all: bool) {
    let mut orphans = core.orphans.borrow_mut();
    if orphans.is_empty() {
        return;
    }
    let (done, kept): (Vec<_>, Vec<_>) = orphans.drain(..).partition(|o| all || o.is_done());
    *orphans = kept;
    drop(orphans);
    for o in done {
        o.release();
    }
}
