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
use std::os::fd::RawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::Waker;
use std::time::Duration;

use concurrent_queue::ConcurrentQueue;
use std::rc::Rc;

use crate::buf::pool::Pool;
use slab::Slab;

use super::context;
use super::stats::{Counters, RingFlags, Stats};
use crate::driver::blocking::BlockingPool;
use crate::driver::{Driver, DriverKind, Unparker};
use crate::time::store::TimerStore;

/// The task handle type the executor queues.
pub(crate) type Runnable = async_task::Runnable<super::task::TaskMeta>;

/// State of one runtime, owned by its thread.
pub(crate) struct Core {
    pub(crate) queue: RefCell<VecDeque<Runnable>>,
    pub(crate) shared: Arc<Shared>,
    pub(crate) driver: RefCell<Driver>,
    /// The driver's kind, readable without borrowing it.
    pub(crate) kind: DriverKind,
    /// Why `Auto` fell back to the poll driver.
    pub(crate) fallback: Option<String>,
    pub(crate) timers: RefCell<TimerStore>,
    /// Wakers of every live task, so shutdown can reach tasks nobody queued.
    pub(crate) tasks: RefCell<Slab<Waker>>,
    /// Fds whose last handle was dropped; the driver closes them with an op.
    pub(crate) pending_close: RefCell<Vec<RawFd>>,
    /// Ready results a task may still take before it must yield (rule 8).
    pub(crate) budget: Cell<u32>,
    pub(crate) budget_max: u32,
    /// Blocking ops whose futures were dropped before their syscall returned.
    pub(crate) orphans: RefCell<Vec<Box<dyn crate::op::Orphan>>>,
    /// This runtime's place among the shards of a `Builder::run`.
    pub(crate) shard: std::cell::OnceCell<super::shard::ShardCtx>,
    /// The receive pool, made on first use: (buffer count, buffer size).
    pub(crate) pool: RefCell<Option<Rc<Pool>>>,
    pub(crate) pool_config: (u16, usize),
    /// Multishot ops orphaned while the driver was busy; handed to it at its
    /// next submit.
    #[cfg(corio_uring)]
    pub(crate) pending_orphans: RefCell<Vec<(usize, Box<dyn crate::driver::MultiOrphan>)>>,
    /// Threads for blocking work.
    pub(crate) blocking: BlockingPool,
    /// Tasks run per tick before the driver is polled again.
    pub(crate) tick_tasks: usize,
    /// Counters bumped by the executor and the driver.
    pub(crate) counters: std::rc::Rc<Counters>,
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

    /// Queues a MSG_RING wake-up on the current thread's runtime, if it has
    /// one that can send it (and it is not this runtime, nor busy inside its
    /// driver).
    fn wake_from_current_ring(&self) -> bool {
        context::with_core(|core| {
            let Some(core) = core else { return false };
            if std::ptr::eq(Arc::as_ptr(&core.shared), self) {
                return false;
            }
            match core.driver.try_borrow_mut() {
                Ok(mut driver) => driver.send_wake(&self.unparker),
                Err(_) => false,
            }
        })
    }
}

impl Core {
    /// A snapshot of this runtime's counters.
    pub(crate) fn stats(&self) -> Stats {
        let remote = self.shared.remote_wakeups.load(Ordering::Relaxed);
        self.counters.snapshot(remote)
    }

    /// The runtime's receive pool, made (and registered with the ring) on
    /// first use.
    pub(crate) fn pool(&self) -> std::io::Result<Rc<Pool>> {
        if let Some(p) = &*self.pool.borrow() {
            return Ok(p.clone());
        }
        let ring = self.kind == DriverKind::Uring;
        let (count, size) = self.pool_config;
        let pool = Pool::new(count, size, ring)?;
        #[cfg(corio_uring)]
        if ring {
            self.driver.borrow_mut().uring().register_pool(&pool)?;
        }
        *self.pool.borrow_mut() = Some(pool.clone());
        Ok(pool)
    }

    /// True when ops run on io_uring.
    #[cfg(corio_uring)]
    #[inline]
    pub(crate) fn is_uring(&self) -> bool {
        self.kind == DriverKind::Uring
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

/// Closes `fd` through the current runtime's driver: with a close op on
/// io_uring (queued for the next submit), at once on the poll driver (unless
/// the driver is busy, then at its next turn), or with close(2) when this
/// thread runs no runtime.
pub(crate) fn close_fd(fd: RawFd) {
    let queued = context::with_core(|core| match core {
        Some(core) => {
            if core.kind == DriverKind::Poll
                && let Ok(mut driver) = core.driver.try_borrow_mut()
            {
                driver.poll().close(fd);
            } else {
                core.pending_close.borrow_mut().push(fd);
            }
            true
        }
        None => false,
    });
    if !queued {
        // SAFETY: the caller owns `fd` and no op uses it any more.
        unsafe { libc::close(fd) };
    }
}
