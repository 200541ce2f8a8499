//! The thread-local "current runtime" pointer.
//!
//! How it works: `block_on` (and runtime shutdown) install the runtime's
//! [`Core`] in a thread-local slot for their duration; `spawn`, ops and timers
//! find their runtime through it. Nesting is refused: a second `block_on` on a
//! thread that is already inside one panics with a message that says so.
//! A second thread-local keeps a plain pointer to the same core: it has no
//! destructor, so reading it (on every wake-up and every op) is a load, not
//! a borrow behind a liveness check.
//!
//! Scheduling lives here too, since it asks "is this the thread's own
//! runtime?": a task woken on its runtime's thread goes straight to the
//! local queue; woken elsewhere it goes to the remote queue, and the thread
//! is signalled only if it is parked in the kernel (by a MSG_RING from the
//! waking thread's own ring when it has one, else an eventfd write).

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::RawWakerVTable;

use super::core::{Core, Runnable, SchedRef, Shared};
use super::stats::{RingFlags, Stats};
use crate::driver::DriverKind;

thread_local! {
    /// Owns the current core (keeps it alive while installed).
    static CURRENT: RefCell<Option<Rc<Core>>> = const { RefCell::new(None) };
    /// The same core as a plain pointer (null when none is installed).
    static FAST: Cell<*const Core> = const { Cell::new(std::ptr::null()) };
}

fn set_fast(core: Option<&Rc<Core>>) {
    FAST.with(|f| f.set(core.map_or(std::ptr::null(), Rc::as_ptr)));
}

/// Restores the previous context when dropped.
#[derive(Debug)]
pub(crate) struct EnterGuard {
    prev: Option<Rc<Core>>,
    /// Whether the previous runtime closed fds on its ring.
    ring_closes: bool,
}

/// Installs `core` as the current runtime.
///
/// # Panics
///
/// Panics if this thread is already running a corio runtime (`block_on`
/// inside `block_on`).
pub(crate) fn enter(core: Rc<Core>) -> EnterGuard {
    CURRENT.with(|c| {
        let mut c = c.borrow_mut();
        if c.is_some() {
            panic!(
                "corio: cannot start a runtime (block_on/run) from inside a corio runtime: \
                 this thread is already driving one. Spawn the future with corio::spawn \
                 and await its JoinHandle instead."
            );
        }
        let ring = core.kind == crate::driver::DriverKind::Uring;
        set_fast(Some(&core));
        *c = Some(core);
        EnterGuard {
            prev: None,
            ring_closes: crate::release::set_ring_closes(ring),
        }
    })
}

/// Installs `core` as the current runtime for a while (shutdown), even
/// inside another runtime; the guard restores the previous one.
pub(crate) fn swap(core: Rc<Core>) -> EnterGuard {
    let ring_closes =
        crate::release::set_ring_closes(core.kind == crate::driver::DriverKind::Uring);
    set_fast(Some(&core));
    EnterGuard {
        prev: CURRENT.with(|c| c.borrow_mut().replace(core)),
        ring_closes,
    }
}

impl Drop for EnterGuard {
    fn drop(&mut self) {
        let prev = self.prev.take();
        crate::release::set_ring_closes(self.ring_closes);
        set_fast(prev.as_ref());
        // Take the value out first so its drop runs without the borrow held.
        let old = CURRENT.with(|c| std::mem::replace(&mut *c.borrow_mut(), prev));
        drop(old);
    }
}

/// Runs `f` with the current runtime, if this thread is inside one.
#[inline]
pub(crate) fn with_core<R>(f: impl FnOnce(Option<&Core>) -> R) -> R {
    let p = FAST.with(Cell::get);
    // SAFETY: `FAST` is non-null only while `CURRENT` holds an `Rc` of
    // that very core (set and reset together above), so it points at a live
    // `Core`; the reference does not outlive this call.
    f(unsafe { p.as_ref() })
}

/// Runs `f` with the current runtime if it is the one owning `shared`
/// (this thread runs its tasks now), else with `None`.
#[inline(always)]
fn with_own_core<R>(shared: *const Shared, f: impl FnOnce(Option<&Core>) -> R) -> R {
    with_core(|core| f(core.filter(|core| std::ptr::eq(Arc::as_ptr(&core.shared), shared))))
}

/// The current runtime.
///
/// # Panics
///
/// Panics with a message naming `what` when called outside a runtime.
#[inline]
#[track_caller]
pub(crate) fn current(what: &str) -> Rc<Core> {
    let p = FAST.with(Cell::get);
    if p.is_null() {
        outside_runtime(what);
    }
    // SAFETY: as in `with_core`, `p` is the `Rc::as_ptr` of the core
    // `CURRENT` owns: one more strong count makes a new, owned `Rc`.
    unsafe {
        Rc::increment_strong_count(p);
        Rc::from_raw(p)
    }
}

/// The panic of a call that needs a runtime (named `what`) made outside one.
#[cold]
#[inline(never)]
#[track_caller]
pub(crate) fn outside_runtime(what: &str) -> ! {
    panic!(
        "corio: {what} must be called from inside a corio runtime; \
         wrap the code in corio::run(async {{ ... }}) or Runtime::block_on"
    );
}

/// A task's reference of its runtime, dropped on that runtime's thread,
/// goes back to the core for the next spawn (see [`SchedRef`]).
impl Drop for SchedRef {
    #[inline]
    fn drop(&mut self) {
        let kept = self.is_unit()
            && with_own_core(self.as_ptr(), |core| core.map(Core::keep_unit).is_some());
        if !kept {
            // SAFETY: once, from `Drop`; the value is not used again.
            unsafe { self.release() };
        }
        // Kept: the core holds the unit now.
    }
}

impl super::raw::Schedule for SchedRef {
    #[inline(always)]
    fn schedule(runnable: Runnable) {
        Shared::schedule(runnable)
    }

    #[inline(always)]
    fn schedule_here(runnable: Runnable) {
        with_core(|core| match core {
            Some(core) => core.queue.push_back(runnable),
            // Not reached (the caller runs on the task's runtime); the
            // general path is right anyway.
            None => Shared::schedule(runnable),
        })
    }

    #[inline(always)]
    fn is_current(&self) -> bool {
        with_own_core(self.as_ptr(), |core| core.is_some())
    }

    /// Not once the runtime's shutdown set `closed` (this thread's own
    /// store: a relaxed load sees it): from then on, a task from `spawn_on`
    /// may be dropped (closed) by the thread that sent it.
    #[inline(always)]
    fn owns_here(&self) -> bool {
        with_own_core(self.as_ptr(), |core| {
            core.is_some_and(|core| !core.shared.closed.load(Ordering::Relaxed))
        })
    }

    /// One address for every task's waker functions (a constant may have
    /// one per codegen unit): a join handle keeps an awaiting task's waker
    /// as a bare pointer only when its vtable is this one.
    const WAKERS: &'static RawWakerVTable = &TASK_WAKERS;
}

/// The waker functions of every corio task (see `Schedule::WAKERS`).
static TASK_WAKERS: RawWakerVTable = super::raw::Wakers::<SchedRef>::VTABLE;

/// Scheduling onto a runtime from this thread: the local queue when the
/// runtime is this thread's own, else its remote queue and a wake-up.
impl Shared {
    /// Queues a woken task on the runtime its header names: locally when
    /// on that runtime's own thread, else remotely.
    ///
    /// The runnable's token keeps the header alive until the runnable is
    /// queued, and not a moment longer (another thread may run and free the
    /// task as soon as it is in the remote queue).
    #[inline]
    pub(crate) fn schedule(runnable: Runnable) {
        let target: *const Shared = runnable.scheduler().as_ptr();
        let runnable = with_own_core(target, |core| match core {
            Some(core) => {
                core.queue.push_back(runnable);
                None
            }
            None => Some(runnable),
        });
        if let Some(runnable) = runnable {
            // Cloned while the runnable keeps the header alive: once it
            // is queued, the runtime's thread may run and free the task.
            let shared = runnable.scheduler().arc();
            shared.schedule_remote(runnable);
        }
    }

    /// Queues a task woken on another thread, and wakes this runtime's
    /// thread if it is parked.
    fn schedule_remote(&self, runnable: Runnable) {
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
        std::sync::atomic::fence(Ordering::SeqCst);
        if self.closed.load(Ordering::SeqCst) {
            // Shut down since the check above: its last drain may have
            // missed this push, and a notice left in the queue would keep
            // its task, and the task this runtime (a cycle). Whatever is
            // left is dropped here (notices, and `Send` tasks as above);
            // `SeqCst` on both sides: either that drain sees the push or
            // this load sees `closed` (fences on both sides: the queue's own
            // orderings are not ours to lean on).
            while let Ok(r) = self.remote.pop() {
                drop(r);
            }
            return;
        }
        self.remote_wakeups.fetch_add(1, Ordering::Relaxed);
        self.unpark();
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
        with_core(|core| {
            let Some(core) = core else { return false };
            if core.kind != DriverKind::Uring || std::ptr::eq(Arc::as_ptr(&core.shared), self) {
                return false;
            }
            core.wakes.borrow_mut().push(self.unparker.clone());
            true
        })
    }
}

/// The counters of the runtime this code runs on (in a sharded runtime,
/// this shard's).
///
/// # Panics
///
/// Panics outside a corio runtime.
///
/// ```
/// corio::run(async {
///     corio::nop().await.unwrap();
///     let s = corio::runtime::stats();
///     assert!(s.tasks_polled >= 1);
/// });
/// ```
#[track_caller]
pub fn stats() -> Stats {
    current("corio::runtime::stats").stats()
}

/// The receive pool of the runtime this code runs on (this shard's), or
/// `None` before its first pooled receive made it.
///
/// # Panics
///
/// Panics outside a corio runtime.
#[track_caller]
pub fn pool_usage() -> Option<crate::buf::PoolUsage> {
    current("corio::runtime::pool_usage")
        .driver
        .borrow()
        .pool_made()
        .map(|p| p.usage())
}

/// The io_uring setup of the runtime this code runs on; `None` on the poll
/// driver.
///
/// # Panics
///
/// Panics outside a corio runtime.
#[track_caller]
pub fn ring_flags() -> Option<RingFlags> {
    current("corio::runtime::ring_flags").ring_flags
}
