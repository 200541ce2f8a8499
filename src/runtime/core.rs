//! The per-runtime state shared by the executor, ops and timers.
//!
//! How it works: a [`Core`] lives on the runtime's thread (`Rc`) and holds the
//! local run queue, the driver, the timer store and the registry of live tasks.
//! The [`Shared`] part (`Arc`) is what other threads may touch: the remote run
//! queue and the unpark signal. The types a core holds that other files act
//! on (the task scheduler handle, the shard set) are defined here too, so this file
//! imports nothing above it; scheduling a woken task (`Shared::schedule`)
//! is in `context.rs`, as it looks at the thread's current runtime.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::ops::Deref;
use std::rc::{Rc, Weak};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::Waker;
use std::time::Duration;

use concurrent_queue::ConcurrentQueue;
use slab::Slab;

use super::meta::{Origin, Track};
use super::observe::Watch;
use super::run_queue::RunQueue;
use super::stats::{RingFlags, Stats};
use super::timers::TimerStore;
use crate::driver::stats::Counters;
use crate::driver::{BlockingPool, Driver, DriverKind, Unparker};

/// The task handle type the executor queues.
pub(crate) type Runnable = super::raw::Runnable<SchedRef>;

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
    /// Units of `shared`'s task count this core keeps beyond its own,
    /// given back by tasks freed on its thread, for the next spawns
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
    /// Wakers of every waiting task, so shutdown can reach tasks nobody
    /// queued, and their origins (moved here from the task's wrapper, which
    /// keeps the key), for task dumps and the observer.
    pub(crate) tasks: RefCell<Slab<(Waker, Origin)>>,
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
    /// What keeps this `Shared` alive for its tasks (see [`SchedRef`]).
    pub(crate) tasks: TaskUnits,
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

    /// Registers a waiting task's waker and origin (its future
    /// unregisters as it drops); returns its key in the registry.
    pub(crate) fn register_task(&self, waker: Waker, origin: Origin) -> usize {
        self.tasks.borrow_mut().insert((waker, origin))
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

// A task's hold on its runtime: [`SchedRef`], one unit of the runtime's
// task count ([`TaskUnits`]), which the runtime's thread takes and gives
// back in batches.
//
// How it works: every task's header must keep its runtime's `Shared`
// alive (a wake-up from another thread reaches the remote queue through
// it), and a task may outlive its runtime (a handle or a waker kept on
// another thread). A strong count of the `Arc` per task would be two
// locked instructions per task (about 13 ns on this project's VM), and
// `Arc` has no way to take or give back many counts in one step. So the
// `Shared` keeps a count of its own, `TaskUnits::count`, and one `Arc` of
// itself (the anchor) for as long as that count is above zero: the core
// holds one unit while it lives, each task one, and the core keeps the
// units of tasks freed on its thread (`Core::kept`) for the next spawns.
// When it has none, a spawn takes [`UNIT_BATCH`] in one addition; when it
// keeps more than twice that, it gives a batch back in one subtraction. A
// task freed anywhere else gives its unit back alone; whoever brings the
// count to zero (the core's drop gives back its own unit and the kept
// ones) drops the anchor. A task made from an `Arc` when the count is
// already zero (spawned from another thread onto a runtime whose core is
// gone) holds a strong count of the `Arc` instead.

/// Units a core takes at once when it has none; it gives a batch back when
/// it keeps more than two.
pub(crate) const UNIT_BATCH: usize = 1024;

/// The count of a runtime's holders that keep its `Shared` through the
/// anchor (see above).
pub(crate) struct TaskUnits {
    count: std::sync::atomic::AtomicUsize,
    anchor: std::sync::Mutex<Option<Arc<Shared>>>,
}

// Not derived: the anchor is the `Shared` this is in (its `Debug` would
// print itself for ever).
impl fmt::Debug for TaskUnits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskUnits")
            .field("count", &self.count)
            .finish_non_exhaustive()
    }
}

impl TaskUnits {
    /// No unit and no anchor: [`anchor`](Self::anchor) starts them.
    pub(crate) fn new() -> TaskUnits {
        TaskUnits {
            count: std::sync::atomic::AtomicUsize::new(0),
            anchor: std::sync::Mutex::new(None),
        }
    }

    /// Makes `shared` keep itself with one unit, the core's.
    pub(crate) fn anchor(shared: &Arc<Shared>) {
        *shared
            .tasks
            .anchor
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(shared.clone());
        shared.tasks.count.store(1, Ordering::Release);
    }

    /// Units held now (for tests).
    #[cfg(test)]
    pub(crate) fn count(&self) -> usize {
        self.count.load(Ordering::Acquire)
    }

    /// Takes `n` more units; the caller holds one (the count is above zero).
    #[inline]
    fn take(&self, n: usize) {
        self.count.fetch_add(n, Ordering::Relaxed);
    }

    /// Takes one unit if the count is above zero.
    fn try_take_one(&self) -> bool {
        let mut n = self.count.load(Ordering::Relaxed);
        while n > 0 {
            match self
                .count
                .compare_exchange_weak(n, n + 1, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return true,
                Err(now) => n = now,
            }
        }
        false
    }

    /// Gives back `n` units the caller holds; the last drops the anchor
    /// (which may free the `Shared` these units live in).
    ///
    /// # Safety
    ///
    /// `units` is the `tasks` of a live `Shared`, and the caller holds `n`
    /// of its units and uses nothing of the `Shared` after the call.
    pub(crate) unsafe fn give_back(units: *const TaskUnits, n: usize) {
        // SAFETY: per the contract, alive until the last unit goes.
        let units = unsafe { &*units };
        if units.count.fetch_sub(n, Ordering::Release) != n {
            return;
        }
        std::sync::atomic::fence(Ordering::Acquire);
        let anchor = units
            .anchor
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        // The guard is gone: dropping the anchor may free `units`.
        drop(anchor);
    }
}

/// A task's hold on its runtime's `Shared`: a unit of its [`TaskUnits`]
/// (the low bit clear), or a strong count of its `Arc` (the bit set).
#[derive(Debug)]
pub(crate) struct SchedRef(std::ptr::NonNull<Shared>);

/// The tag of a `SchedRef` holding a strong count (`Shared` is 8-aligned).
const STRONG: usize = 1;

impl SchedRef {
    /// A unit of `core`'s runtime: a kept one if the core has one, else
    /// one of a batch taken now.
    #[inline]
    pub(crate) fn of(core: &Core) -> SchedRef {
        let mut kept = core.kept.get();
        if kept == 0 {
            // The core holds a unit: the count is above zero.
            core.shared.tasks.take(UNIT_BATCH);
            kept = UNIT_BATCH;
        }
        core.kept.set(kept - 1);
        SchedRef(std::ptr::NonNull::from(&*core.shared))
    }

    /// The runtime's `Shared`, without the tag.
    #[inline(always)]
    pub(crate) fn as_ptr(&self) -> *const Shared {
        self.0.as_ptr().map_addr(|a| a & !STRONG)
    }

    /// True when this holds a unit (not a strong count).
    #[inline(always)]
    pub(crate) fn is_unit(&self) -> bool {
        self.0.as_ptr().addr() & STRONG == 0
    }

    /// A new `Arc` of the runtime's `Shared` (one more strong count).
    pub(crate) fn arc(&self) -> Arc<Shared> {
        let p = self.as_ptr();
        // SAFETY: this reference keeps the `Shared` alive (a unit keeps the
        // anchor, an `Arc`, which a strong count is); one more count makes
        // a new owned `Arc`.
        unsafe {
            Arc::increment_strong_count(p);
            Arc::from_raw(p)
        }
    }

    /// Gives the hold back (its `Drop` does, when the core does not keep
    /// it).
    ///
    /// # Safety
    ///
    /// Called once, from `Drop`: the value is not used after.
    pub(crate) unsafe fn release(&mut self) {
        let p = self.as_ptr();
        if self.is_unit() {
            // SAFETY: this reference holds one unit of a live `Shared`;
            // nothing of it is used after (`Drop`).
            unsafe { TaskUnits::give_back(&raw const (*p).tasks, 1) };
        } else {
            // SAFETY: made from an `Arc` (`From` below), given back once.
            drop(unsafe { Arc::from_raw(p) });
        }
    }
}

impl From<Arc<Shared>> for SchedRef {
    /// A unit when the runtime's core still lives (it holds a unit), else
    /// the `Arc`'s strong count itself.
    fn from(shared: Arc<Shared>) -> SchedRef {
        if shared.tasks.try_take_one() {
            return SchedRef(std::ptr::NonNull::from(&*shared));
        }
        let p = Arc::into_raw(shared).cast_mut();
        // SAFETY: from `Arc::into_raw`, so non-null; `Shared` is 8-aligned,
        // so the tag bit is free.
        SchedRef(unsafe { std::ptr::NonNull::new_unchecked(p.map_addr(|a| a | STRONG)) })
    }
}

impl Deref for SchedRef {
    type Target = Shared;

    #[inline(always)]
    fn deref(&self) -> &Shared {
        // SAFETY: this reference keeps the `Shared` alive.
        unsafe { &*self.as_ptr() }
    }
}

// SAFETY: a `SchedRef` is a counted reference of a `Shared`, which is
// `Send` and `Sync`; its counts are atomic.
unsafe impl Send for SchedRef {}
// SAFETY: as above; `&SchedRef` only reads the `Shared`.
unsafe impl Sync for SchedRef {}

impl Core {
    /// Keeps the unit of a task freed on this thread for the next spawn
    /// ([`SchedRef::of`] takes it), giving a batch back to the count when
    /// more than two are kept.
    #[inline]
    pub(crate) fn keep_unit(&self) {
        let kept = self.kept.get() + 1;
        if kept > 2 * UNIT_BATCH {
            // SAFETY: the core holds its own unit besides these: the count
            // stays above zero, the `Shared` alive.
            unsafe { TaskUnits::give_back(&raw const self.shared.tasks, UNIT_BATCH) };
            self.kept.set(kept - UNIT_BATCH);
        } else {
            self.kept.set(kept);
        }
    }
}

/// Gives back the units `core` kept and its own (when it is dropped).
fn release_kept(core: &Core) {
    let n = core.kept.replace(0) + 1;
    // SAFETY: the core holds its own unit and the kept ones; the `Shared`
    // is not used after (the core's own `Arc` field keeps it alive anyway
    // until the core's fields drop).
    unsafe { TaskUnits::give_back(&raw const core.shared.tasks, n) };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::context;

    /// Units held by live tasks and the core itself (not the kept ones).
    fn held(core: &Core) -> usize {
        core.shared.tasks.count() - core.kept.get()
    }

    #[test]
    fn task_units_are_taken_in_batches_kept_and_given_back() {
        let rt = crate::Runtime::new().unwrap();
        let weak = rt.block_on(async {
            let core = context::current("the test");
            let strong = Arc::strong_count(&core.shared);
            let base = held(&core);
            crate::spawn(async {}).await.unwrap();
            let units = core.shared.tasks.count();
            assert!(
                core.kept.get() >= 1,
                "the task's unit went back to the core"
            );
            for _ in 0..100 {
                crate::spawn(async {}).await.unwrap();
            }
            assert_eq!(core.shared.tasks.count(), units, "a spawn took a unit anew");
            assert_eq!(held(&core), base);
            // No strong count per task.
            let alive: Vec<_> = (0..10).map(|_| crate::spawn(async {})).collect();
            assert_eq!(Arc::strong_count(&core.shared), strong);
            assert_eq!(held(&core), base + 10);
            for h in alive {
                h.await.unwrap();
            }
            // More tasks alive at once than the core keeps: batches go back.
            let all: Vec<_> = (0..3 * UNIT_BATCH + 100)
                .map(|_| crate::spawn(async {}))
                .collect();
            assert_eq!(held(&core), base + 3 * UNIT_BATCH + 100);
            for h in all {
                h.await.unwrap();
            }
            assert!(
                core.kept.get() <= 2 * UNIT_BATCH,
                "kept {}",
                core.kept.get()
            );
            assert_eq!(held(&core), base);
            Arc::downgrade(&core.shared)
        });
        drop(rt);
        assert!(weak.upgrade().is_none(), "task units outlived the runtime");
    }

    #[test]
    fn a_task_outliving_its_runtime_keeps_the_shared_until_it_goes() {
        let rt = crate::Runtime::new().unwrap();
        let (weak, handle) = rt.block_on(async {
            let core = context::current("the test");
            let h = crate::spawn(std::future::pending::<()>());
            crate::yield_now().await;
            (Arc::downgrade(&core.shared), h)
        });
        drop(rt);
        // The task was dropped with its runtime; its handle holds the block
        // and, through the block's unit, the `Shared`.
        assert!(weak.upgrade().is_some());
        // Let go of on another thread (not the runtime's: it is gone).
        std::thread::spawn(move || drop(handle)).join().unwrap();
        assert!(weak.upgrade().is_none(), "the last unit did not free it");
    }

    #[test]
    fn a_task_spawned_onto_a_runtime_whose_core_is_gone_holds_a_strong_count() {
        let rt = crate::Runtime::new().unwrap();
        let handle = rt.handle();
        let weak = rt.block_on(async { Arc::downgrade(&context::current("the test").shared) });
        drop(rt);
        // The `Handle` keeps the `Shared`, but its task count is zero.
        let shared = weak.upgrade().expect("the handle keeps it");
        assert_eq!(shared.tasks.count(), 0);
        let strong = Arc::strong_count(&shared);
        let r = SchedRef::from(shared.clone());
        assert!(!r.is_unit());
        assert_eq!(Arc::strong_count(&shared), strong + 1);
        drop(r);
        assert_eq!(Arc::strong_count(&shared), strong);
        // And through the public path: the task is dropped unrun.
        let h = handle.spawn(async { 1 });
        assert!(
            std::thread::spawn(move || corio_block_on_cancelled(h))
                .join()
                .unwrap()
        );
        drop(shared);
        drop(handle);
        assert!(
            weak.upgrade().is_none(),
            "the strong count was not given back"
        );
    }

    #[test]
    fn a_runtime_owns_its_tasks_on_its_thread_until_it_shuts_down() {
        use super::super::raw::Schedule;
        let rt = crate::Runtime::new().unwrap();
        let other = crate::Runtime::new().unwrap();
        let stranger =
            other.block_on(async { SchedRef::from(context::current("the test").shared.clone()) });
        rt.block_on(async {
            let core = context::current("the test");
            let r = SchedRef::from(core.shared.clone());
            assert!(r.is_current() && r.owns_here());
            // Another runtime's tasks are not this thread's.
            assert!(!stranger.is_current() && !stranger.owns_here());
            // Shutting down: from then on another thread may drop a task of
            // this runtime (a `spawn_on` runnable), so a join handle here
            // must take the lock.
            core.shared.closed.store(true, Ordering::SeqCst);
            assert!(r.is_current() && !r.owns_here());
            core.shared.closed.store(false, Ordering::SeqCst);
        });
        drop(stranger);
    }

    #[test]
    fn a_shared_prints_without_its_anchor() {
        let rt = crate::Runtime::new().unwrap();
        let text = rt.block_on(async { format!("{:?}", context::current("the test").shared) });
        // Once: the anchor (the `Shared` itself) is not printed inside.
        assert_eq!(text.matches("TaskUnits { count: ").count(), 1, "{text}");
    }

    /// True when `h` resolves to a cancelled error (its runtime is gone).
    fn corio_block_on_cancelled(h: crate::JoinHandle<i32>) -> bool {
        crate::Runtime::new()
            .unwrap()
            .block_on(async move { h.await.is_err_and(|e| e.is_cancelled()) })
    }
}
