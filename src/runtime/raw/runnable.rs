//! A task's runnable token and the notice that rides the same type.
//!
//! How it works: a runnable is the right to poll its task once, on the
//! task's thread; a notice (the pointer's low bit set) is a wake-up sent
//! from another thread, which the task's thread turns into a local one.
//! Dropping either unrun gives back what it held (see the parent module's
//! state bits).

use super::*;

/// A task's runnable token: running it polls the future once; dropping it
/// unrun drops the future (runtime shutdown). A *notice* (the pointer's
/// low bit set) is a wake-up sent from another thread instead: running it
/// wakes the task on its own thread.
pub(crate) struct Runnable<S> {
    pub(super) ptr: NonNull<()>,
    pub(super) _s: PhantomData<S>,
}

/// The tag of a notice in `Runnable::ptr` (task blocks are 8-aligned).
const NOTICE: usize = 1;

// SAFETY: a runnable crosses threads only through its runtime's remote
// queue, which only that runtime's thread drains; the futures of tasks
// spawned from other threads are `Send` (see `task::spawn_onto`).
unsafe impl<S> Send for Runnable<S> {}

impl<S> Runnable<S> {
    /// A notice for the task at `ptr`.
    pub(super) fn notice(ptr: NonNull<()>) -> Self {
        Runnable {
            ptr: ptr.map_addr(|a| a | NOTICE),
            _s: PhantomData,
        }
    }

    /// The task, without the tag; whether this is a notice.
    #[inline(always)]
    fn task(&self) -> (NonNull<()>, bool) {
        let tag = self.ptr.addr().get() & NOTICE;
        // SAFETY: a task pointer with its low bit cleared is non-null.
        let ptr = self
            .ptr
            .map_addr(|a| unsafe { std::num::NonZeroUsize::new_unchecked(a.get() & !NOTICE) });
        (ptr, tag != 0)
    }
}

impl<S: Schedule> Runnable<S> {
    /// The task's scheduler.
    #[inline(always)]
    pub(crate) fn scheduler(&self) -> &S {
        // SAFETY: the token (or the notice) keeps the task alive.
        &unsafe { header::<S>(self.task().0) }.scheduler
    }

    /// Where the task's future is, while it is there (always for a
    /// runnable token; for a notice, unless the task finished). On the
    /// task's own thread only: it reads the local word.
    pub(crate) fn future(&self) -> Option<NonNull<()>> {
        let (ptr, _) = self.task();
        // SAFETY: the token or notice keeps the task alive.
        let head = unsafe { head(ptr) };
        if head.local() & FINISHED != 0 {
            return None;
        }
        // SAFETY: as above; the vtable knows the stage's offset.
        Some(unsafe { ptr.byte_add(head.vtable().stage) })
    }

    /// Queues the task on its runtime.
    #[inline(always)]
    pub(crate) fn schedule(self) {
        S::schedule(self);
    }

    /// Polls the task once (takes the notice: wakes the task).
    #[inline(always)]
    pub(crate) fn run(self) {
        let this = ManuallyDrop::new(self);
        let (ptr, notice) = this.task();
        // SAFETY: the token or notice (moved into the call) keeps the task
        // alive, and runnables are run on their task's thread.
        unsafe {
            let vtable = head(ptr).vtable();
            if notice {
                (vtable.notice)(ptr)
            } else {
                (vtable.run)(ptr)
            }
        }
    }
}

impl<S> Drop for Runnable<S> {
    fn drop(&mut self) {
        let (ptr, notice) = self.task();
        // SAFETY: the token or notice keeps the task alive until its bit
        // is cleared below.
        let header = unsafe { header::<S>(ptr) };
        if notice {
            // Dropped unrun (shutdown): the wake-up goes, nothing else.
            if unowned(take_notice(header) & !(NOTIFIED | CHECK)) {
                // SAFETY: no owner is left.
                unsafe { (header.vtable().free)(ptr) };
            }
            return;
        }
        // The token gives this thread the stage and the local word (no run
        // is in progress; see `Runnable`'s `Send` impl for the thread).
        let fold = finish(header, SCHEDULED);
        header.shared.fetch_or(CLOSED, Ordering::AcqRel);
        // SAFETY: as above; the future is there (not finished).
        unsafe { (header.vtable().drop_future)(ptr) };
        let awaiter = take_awaiter(header, header.vtable().waker);
        if let_go(header, fold, ATTACHED) {
            // SAFETY: no owner is left.
            unsafe { (header.vtable().free)(ptr) };
        }
        if let Some(w) = awaiter {
            w.wake();
        }
    }
}
