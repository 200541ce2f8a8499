//! The per-runtime state shared by the executor, ops and timers.
//!
//! How it works: a [`Core`] lives on the runtime's thread (`Rc`) and holds the
//! local run queue, the driver, the timer store and the registry of live tasks.
//! The [`Shared`] part (`Arc`) is what other threads may touch: the remote run
//! queue and the unpark signal. The types a core holds that other files act
//! on (task metadata, the shard set) are defined here too, so this file
//! imports nothing above it; scheduling a woken task (`Shared::schedule`)
//! is in `context.rs`, as it looks at the thread's current runtime.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::mem::ManuallyDrop;
use std::ops::Deref;
use std::rc::{Rc, Weak};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::Waker;
use std::time::Duration;

use concurrent_queue::ConcurrentQueue;
use slab::Slab;

use super::meta::Track;
use super::observe::Watch;
use super::run_queue::RunQueue;
use super::stats::{RingFlags, Stats};
use super::timers::TimerStore;
use crate::driver::stats::Counters;
use crate::driver::{BlockingPool, Driver, DriverKind, Unparker};

/// The task handle type the executor queues.
pub(crate) type Runnable = super::raw::Runnable<SchedRef>;

/// A task's metadata: its scheduler is the runtime it belongs to.
pub(crate) type TaskMeta = super::meta::TaskMeta<SchedRef>;

/// The index of a shard in a sharded runtime (0 for a plain runtime).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ShardId(pub(crate) usize);

impl ShardId {
    /// The shard with this index.
    pub fn new(index: usize) -> ShardId {
        ShardId(index)
    }

    /// This shard's index, `0..count`.
    pub fn index(self) -> usize {
        self.0
    }
}

impl fmt::Display for ShardId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "shard {}", self.0)
    }
}

/// The shards of one `Builder::run`, as each shard's core sees them.
#[derive(Debug)]
pub(crate) struct ShardSet {
    pub(crate) shards: Vec<Arc<Shared>>,
}

/// Where a core sits in its shard set.
#[derive(Debug)]
pub(crate) struct ShardCtx {
    pub(crate) id: usize,
    pub(crate) set: Arc<ShardSet>,
}

/// State of one runtime, owned by its thread.
pub(crate) struct Core {
    pub(crate) queue: RunQueue<Runnable>,
    pub(crate) shared: Arc<Shared>,
    /// Strong counts of `shared` this core owns beyond its own `Arc`, given
    /// back by tasks freed on its thread for the next spawns
    /// ([`SchedRef`]).
    pub(crate) kept: Cell<usize>,
    pub(crate) driver: RefCell<Driver>,
    /// The driver's kind, readable without borrowing it.
    pub(crate) kind: DriverKind,
    /// The driver's token: dropped ops queue their releases under it.
    pub(crate) owner: Weak<()>,
    /// Why `Auto` fell back to the poll driver.
    pub(crate) fallback: Option<String>,
    pub(crate) timers: RefCell<TimerStore>,
    /// Wakers of every live task, so shutdown can reach tasks nobody queued,
    /// and their metadata, for task dumps (valid while registered).
    pub(crate) tasks: RefCell<Slab<(Waker, *const TaskMeta)>>,
    /// Ready results a task may still take before it must yield (rule 8).
    pub(crate) budget: Cell<u32>,
    pub(crate) budget_max: u32,
    /// This runtime's place among the shards of a `Builder::run`.
    pub(crate) shard: std::cell::OnceCell<ShardCtx>,
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
    /// Stall detection and task tracking, when either is on.
    pub(crate) watch: Option<Box<Watch>>,
    /// The tracked task being polled (set by `Watch::run`); null when none
    /// is or tracking is off. Here rather than in a thread-local: an op
    /// already holds its core, so its `Pending` path checks a field it has.
    pub(crate) tracked: Cell<*const Track>,
}

impl Drop for Core {
    fn drop(&mut self) {
        release_kept(self);
    }
}

impl std::fmt::Debug for Core {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Core")
            .field("queued", &self.queue.len())
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
    /// Tasks spawned here get a `Track` (`Builder::track_tasks`).
    pub(crate) track_tasks: bool,
    /// Graceful shutdown (`Handle::shutdown`), startable from any thread:
    /// see `drain.rs`. [system helper]
    pub(crate) drain: super::drain::Drain,
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

    /// Registers a live task's waker and metadata; returns its key in the
    /// registry.
    pub(crate) fn register_task(&self, waker: Waker, meta: *const TaskMeta) -> usize {
        self.tasks.borrow_mut().insert((waker, meta))
    }

    /// This core's shard index (0 for a plain runtime).
    pub(crate) fn shard_index(&self) -> usize {
        self.shard.get().map_or(0, |s| s.id)
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

// A task's hold on its runtime: [`SchedRef`], a strong reference of the
// runtime's `Arc<Shared>` that the runtime's thread keeps between tasks.
//
// How it works: every task's metadata holds a strong reference of its
// runtime's `Shared` (a wake-up from another thread reaches the remote
// queue through it). Taking one at each spawn and giving it back at each
// free would be two locked instructions per task (about 13 ns on this
// project's VM). Instead, a task freed on its runtime's thread (the usual
// case) gives its reference to the core (`Core::kept`, at most
// [`KEPT_MAX`]), and the next spawn there takes it back: no atomic in
// steady state. The count the `Arc` holds is always at least the number of
// holders, kept ones included; the core gives the kept ones back when it
// is dropped. A task freed anywhere else (its last waker dropped on another
// thread, or after its runtime is gone) drops its reference as usual.

/// Kept references a core holds at most (beyond it they are dropped).
pub(crate) const KEPT_MAX: usize = 4096;

/// A strong reference of a runtime's `Shared`, given back to the runtime's
/// core when dropped on its thread.
#[derive(Debug)]
pub(crate) struct SchedRef(ManuallyDrop<Arc<Shared>>);

impl SchedRef {
    /// A reference of `core`'s runtime: a kept one if the core has one.
    #[inline]
    pub(crate) fn of(core: &Core) -> SchedRef {
        let kept = core.kept.get();
        if kept == 0 {
            return SchedRef(ManuallyDrop::new(core.shared.clone()));
        }
        core.kept.set(kept - 1);
        // SAFETY: the core owns `kept` strong counts of its `Shared` beyond
        // its own `Arc` (given to it by `SchedRef`'s `Drop`, in
        // `context.rs`); one of them becomes
        // this `Arc`.
        SchedRef(ManuallyDrop::new(unsafe {
            Arc::from_raw(Arc::as_ptr(&core.shared))
        }))
    }

    /// Gives the reference back to the `Arc` (its `Drop` does, when the
    /// core does not keep it).
    ///
    /// # Safety
    ///
    /// Called once, from `Drop`: the value is not used after.
    pub(crate) unsafe fn release(&mut self) {
        // SAFETY: per the contract, taken once.
        drop(unsafe { ManuallyDrop::take(&mut self.0) });
    }
}

impl From<Arc<Shared>> for SchedRef {
    fn from(shared: Arc<Shared>) -> SchedRef {
        SchedRef(ManuallyDrop::new(shared))
    }
}

impl Deref for SchedRef {
    type Target = Arc<Shared>;

    #[inline(always)]
    fn deref(&self) -> &Arc<Shared> {
        &self.0
    }
}

/// Gives back the references `core` kept (when it is dropped).
fn release_kept(core: &Core) {
    let ptr = Arc::as_ptr(&core.shared);
    for _ in 0..core.kept.replace(0) {
        // SAFETY: each kept count was a strong count a `SchedRef` gave the
        // core; the core's own `Arc` keeps one more, so none of these
        // decrements frees the `Shared`.
        unsafe { Arc::decrement_strong_count(ptr) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::context;

    #[test]
    fn kept_references_are_reused_capped_and_given_back() {
        let rt = crate::Runtime::new().unwrap();
        let weak = rt.block_on(async {
            let core = context::current("the test");
            let base = Arc::strong_count(&core.shared);
            crate::spawn(async {}).await.unwrap();
            // The task's reference went back to the core, not to the `Arc`.
            assert_eq!(core.kept.get(), 1);
            assert_eq!(Arc::strong_count(&core.shared), base + 1);
            for _ in 0..100 {
                crate::spawn(async {}).await.unwrap();
            }
            assert_eq!(core.kept.get(), 1, "a spawn did not take the kept one");
            assert_eq!(Arc::strong_count(&core.shared), base + 1);
            // More tasks alive at once than the core keeps: the rest drop.
            let all: Vec<_> = (0..KEPT_MAX + 100)
                .map(|_| crate::spawn(async {}))
                .collect();
            for h in all {
                h.await.unwrap();
            }
            assert_eq!(core.kept.get(), KEPT_MAX);
            assert_eq!(Arc::strong_count(&core.shared), base + KEPT_MAX);
            Arc::downgrade(&core.shared)
        });
        drop(rt);
        assert!(
            weak.upgrade().is_none(),
            "kept references outlived the runtime"
        );
    }
}
