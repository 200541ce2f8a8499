//! The per-runtime state shared by the executor, ops and timers.
//!
//! How it works: a [`Core`] lives on the runtime's thread (`Rc`) and holds the
//! local run queue, the driver, the timer store and the registry of live tasks.
//! The [`Shared`] part (`Arc`) is what other threads may touch: the remote run
//! queue and the unpark signal. A task woken on its own thread goes straight to
//! the local queue; woken elsewhere it goes to the remote queue, and the thread
//! is signalled only if it is parked in the kernel.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::{Rc, Weak};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::Waker;
use std::time::Duration;

use concurrent_queue::ConcurrentQueue;
use slab::Slab;

use super::context;
use super::stats::{RingFlags, Stats};
use super::timers::TimerStore;
use crate::driver::stats::Counters;
use crate::driver::{BlockingPool, Driver, DriverKind, Unparker};

/// The task handle type the executor queues.
pub(crate) type Runnable = async_task::Runnable<super::task::TaskMeta>;

/// State of one runtime, owned by its thread.
pub(crate) struct Core {
    pub(crate) queue: RefCell<VecDeque<Runnable>>,
    pub(crate) shared: Arc<Shared>,
    pub(crate) driver: RefCell<Driver>,
    /// The driver's kind, readable without borrowing it.
    pub(crate) kind: DriverKind,
    /// The driver's token: dropped ops queue their releases under it.
    pub(crate) owner: Weak<()>,
    /// Why `Auto` fell back to the poll driver.
    pub(crate) fallback: Option<String>,
    pub(crate) timers: RefCell<TimerStore>,
    /// Wakers of every live task, so shutdown can reach tasks nobody queued.
    pub(crate) tasks: RefCell<Slab<Waker>>,
    /// Ready results a task may still take before it must yield (rule 8).
    pub(crate) budget: Cell<u32>,
    pub(crate) budget_max: u32,
    /// This runtime's place among the shards of a `Builder::run`.
    pub(crate) shard: std::cell::OnceCell<super::shard::ShardCtx>,
    /// Threads for blocking work (the driver's pool).
    pub(crate) blocking: BlockingPool,
    /// MSG_RING wake-ups for the driver to send with its next submit.
    pub(crate) wakes: Rc<RefCell<Vec<Unparker>>>,
    /// Tasks run per tick before the driver is polled again.
    pub(crate) tick_tasks: usize,
    /// Counters bumped by the executor and the driver.
    pub(crate) counters: Rc<Counters>,
    /// The io_uring setup, `None` on the poll driver.
    pub(crate) ring_flags: Option<RingFlags>,
    /// How long to look for work before parking.
    pub(crate) spin: Duration,
}

impl std::fmt::Debug for Core {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Core")
            .field("queued", &self.queue.borrow().len())
            .field("tasks", &self.tasks.borrow().len())
            .field("timers", &self.timers.borrow().len())
            .finish_non_exhaustive()
    }
}

/// The part of a runtime other threads can reach.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) remote: ConcurrentQueue<Runnable>,
    /// True while the runtime's thread waits in the kernel.
    pub(crate) parked: AtomicBool,
    /// Set once shutdown has dropped every task: from then on only `Send`
    /// tasks (from `spawn_on`) can still be scheduled here, and they are
    /// dropped at once.
    pub(crate) closed: AtomicBool,
    pub(crate) unparker: Unparker,
    /// Tasks woken from other threads (a `Stats` counter).
    pub(crate) remote_wakeups: AtomicU64,
    /// Graceful shutdown (`Handle::shutdown`), startable from any thread:
    /// see `drain.rs`. [system helper]
    pub(crate) drain: super::drain::Drain,
}

impl Shared {
    /// Queues a woken task: locally when on the runtime's own thread, else remotely.
    pub(crate) fn schedule(self: &Arc<Self>, runnable: Runnable) {
        let runnable = context::with_core(|core| match core {
            Some(core) if Arc::ptr_eq(&core.shared, self) => {
                core.queue.borrow_mut().push_back(runnable);
                None
            }
            _ => Some(runnable),
        });
        if let Some(runnable) = runnable {
            if self.closed.load(Ordering::SeqCst) {
                // SAFETY-relevant: after shutdown every task of this runtime
                // is closed and never scheduled again, so this is a `Send`
                // task from `spawn_on`; dropping it here is sound, and its
                // handle yields a cancelled JoinError.
                drop(runnable);
                return;
            }
            // The queue is never closed, so push cannot fail; if it somehow did,
            // dropping the runnable here would drop a !Send future on the wrong
            // thread, so leak it instead.
            if let Err(e) = self.remote.push(runnable) {
                std::mem::forget(e.into_inner());
            }
            self.remote_wakeups.fetch_add(1, Ordering::Relaxed);
            self.unpark();
        }
    }

    /// Wakes the runtime's thread if it is parked in the kernel: through a
    /// MSG_RING sent by the calling thread's own ring when it runs a corio
    /// io_uring runtime and the target accepts them (the SQE goes out with
    /// the caller's next submit, which it reaches at the end of its tick or
    /// when it leaves `block_on`), else with an eventfd write.
    pub(crate) fn unpark(&self) {
        if self.parked.swap(false, Ordering::SeqCst) {
            if self.unparker.by_ring() && self.wake_from_current_ring() {
                return;
            }
            self.unparker.unpark();
        }
    }

    /// Queues a MSG_RING wake-up for the current thread's runtime to send,
    /// if it is another io_uring runtime (it goes out with that runtime's
    /// next submit; sent there, or by an eventfd write when the ring cannot).
    fn wake_from_current_ring(&self) -> bool {
        context::with_core(|core| {
            let Some(core) = core else { return false };
            if core.kind != DriverKind::Uring || std::ptr::eq(Arc::as_ptr(&core.shared), self) {
                return false;
            }
            core.wakes.borrow_mut().push(self.unparker.clone());
            true
        })
    }
}

impl Core {
    /// A snapshot of this runtime's counters.
    pub(crate) fn stats(&self) -> Stats {
        let remote = self.shared.remote_wakeups.load(Ordering::Relaxed);
        self.counters.snapshot(remote)
    }

    /// Takes one unit of the current task's budget; false when it is spent.
    #[inline]
    pub(crate) fn take_budget(&self) -> bool {
        let b = self.budget.get();
        if b == 0 {
            return false;
        }
        self.budget.set(b - 1);
        true
    }

    /// Registers a live task's waker; returns its key in the registry.
    pub(crate) fn register_task(&self, waker: Waker) -> usize {
        self.tasks.borrow_mut().insert(waker)
    }

    /// Forgets a finished or dropped task.
    pub(crate) fn unregister_task(&self, key: usize) {
        let mut tasks = self.tasks.borrow_mut();
        if tasks.contains(key) {
            let w = tasks.remove(key);
            drop(tasks);
            drop(w);
        }
    }
}
