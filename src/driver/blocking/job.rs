//! Running an op's syscall on the blocking pool (the poll driver's file ops,
//! and io_uring ops on opcodes the kernel lacks).
//!
//! How it works: the op value moves into a shared [`Job`]; a pool thread
//! runs its `attempt` and stores the result under the job's lock, waking the
//! task. The op value is only ever dropped on the runtime's thread: by the
//! future when it takes the result, or — if the future was dropped first —
//! by the driver, which keeps the job (through the release queue) until its
//! syscall has returned (the buffer stays valid while the kernel uses it),
//! and hands the result to the op's `release` (an fd opened for nobody is
//! closed).

use std::cell::UnsafeCell;
use std::io;
use std::sync::{Arc, Mutex};
use std::task::{Context, Waker};

use super::pool::BlockingPool;
use crate::driver::op::OpCode;
use crate::driver::{OpState, Progress};
use crate::release::{Orphan, Release};

#[derive(Default)]
struct Progression {
    done: bool,
    res: Option<io::Result<u32>>,
    waker: Option<Waker>,
}

/// An op value handed to the blocking pool.
pub(crate) struct Job<T> {
    data: UnsafeCell<Option<T>>,
    progress: Mutex<Progression>,
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

impl<T: OpCode> Orphan for Arc<Job<T>> {
    fn is_done(&self) -> bool {
        self.progress.lock().unwrap_or_else(|e| e.into_inner()).done
    }

    fn release(self: Box<Self>) {
        let res = self
            .progress
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .res
            .take();
        match (self.take_data(), res) {
            // The syscall ran: let the op release what it produced (the fd
            // of an open nobody awaits).
            (Some(mut op), Some(res)) => op.release(res, 0),
            // Never ran (the pool shut down first): just drop the value.
            (op, _) => drop(op),
        }
    }
}

/// Runs (or keeps waiting for) `data`'s syscall on the blocking pool.
pub(crate) fn poll<T: OpCode>(
    state: &mut OpState<T>,
    data: &mut Option<T>,
    cx: &mut Context<'_>,
    pool: &BlockingPool,
) -> Progress {
    if let OpState::Blocking(job) = state {
        let res = {
            let mut p = job.progress.lock().unwrap_or_else(|e| e.into_inner());
            if !p.done {
                if !p.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                    p.waker = Some(cx.waker().clone());
                }
                return Progress::Pending;
            }
            p.res.take().expect("a done job has a result")
        };
        *data = job.take_data();
        return Progress::Ready(res, 0);
    }
    let job = Arc::new(Job {
        data: UnsafeCell::new(data.take()),
        progress: Mutex::new(Progression {
            waker: Some(cx.waker().clone()),
            ..Progression::default()
        }),
    });
    let send = SendJob(job.clone());
    pool.execute(Box::new(move || {
        let job = send;
        job.0.run();
    }));
    *state = OpState::Blocking(job);
    Progress::Pending
}

/// The future of a blocking op went away: its value waits (through the
/// release queue, for the driver `owner`) until the pool thread is done.
pub(crate) fn abandon<T: OpCode>(owner: &std::rc::Weak<()>, job: Arc<Job<T>>) {
    let job: Box<dyn Orphan> = Box::new(job);
    if job.is_done() {
        job.release();
    } else {
        crate::release::push(owner, Release::Job(job));
    }
}

/// Blocking jobs whose futures went away, waiting for their syscalls.
#[derive(Default)]
pub(crate) struct Orphans(Vec<Box<dyn Orphan>>);

impl std::fmt::Debug for Orphans {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Orphans({})", self.0.len())
    }
}

impl Orphans {
    pub(crate) fn push(&mut self, job: Box<dyn Orphan>) {
        self.0.push(job);
    }

    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    /// No job is waiting for its syscall to return.
    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Releases the jobs whose syscalls have returned; with `all`, every job
    /// (the pool has shut down, so none is in use).
    #[inline]
    pub(crate) fn release_done(&mut self, all: bool) {
        if self.0.is_empty() {
            return;
        }
        let (done, kept): (Vec<_>, Vec<_>) = self.0.drain(..).partition(|o| all || o.is_done());
        self.0 = kept;
        for o in done {
            o.release();
        }
    }
}
