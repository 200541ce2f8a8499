//! What a task carries in its allocation: [`TaskMeta`].
//!
//! How it works: the metadata sits in the task's header (`raw.rs`), and a
//! bigger header costs every spawn (measured: 16 more bytes moved spawn +
//! join into another allocator size class, +25 % instructions), so the
//! metadata is two words. The first holds a pointer and two flag bits
//! below it (what it points at is 8-aligned): bit 0 is the abort flag, bit 1
//! says the pointer is a boxed [`Track`] (`Builder::track_tasks`: id, spawn
//! time, last poll, the op the task waits on, and the spawn location) rather
//! than the task's spawn location itself (recorded by `#[track_caller]`,
//! free). The second is the handle of the scheduler the task belongs to
//! (the runtime's `Arc<Shared>`; generic here so this file imports nothing
//! of the runtime): a wake-up reads it from the header to find the queue.

use std::cell::Cell;
use std::panic::Location;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

const ABORTED: usize = 1;
const TRACKED: usize = 2;
const FLAGS: usize = ABORTED | TRACKED;

/// Per-task metadata stored in the task allocation: a pointer to the
/// spawn location or to a `Track`, the abort flag, and the scheduler `S`
/// the task's runnable goes to when it is woken.
#[derive(Debug)]
pub(crate) struct TaskMeta<S> {
    word: AtomicUsize,
    scheduler: S,
}

impl<S> TaskMeta<S> {
    #[inline(always)]
    pub(crate) fn new(
        location: &'static Location<'static>,
        track: bool,
        scheduler: S,
    ) -> TaskMeta<S> {
        let word = if track {
            Box::into_raw(Track::new(location)) as usize | TRACKED
        } else {
            location as *const Location<'static> as usize
        };
        debug_assert_eq!(word & ABORTED, 0, "corio: a misaligned task location");
        TaskMeta {
            word: AtomicUsize::new(word),
            scheduler,
        }
    }

    /// The scheduler the task belongs to.
    #[inline(always)]
    pub(crate) fn scheduler(&self) -> &S {
        &self.scheduler
    }

    /// Asks the task to stop (any thread).
    #[inline]
    pub(crate) fn abort(&self) {
        self.word.fetch_or(ABORTED, Ordering::Release);
    }

    /// True once [`abort`](Self::abort) was called.
    #[inline]
    pub(crate) fn aborted(&self) -> bool {
        self.word.load(Ordering::Acquire) & ABORTED != 0
    }

    /// Where the task was spawned.
    pub(crate) fn location(&self) -> &'static Location<'static> {
        match self.track() {
            Some(t) => t.location,
            None => {
                let p = (self.word.load(Ordering::Relaxed) & !FLAGS) as *const Location<'static>;
                // SAFETY: without `TRACKED` the word holds the address of a
                // `&'static Location` (set in `new`, never changed but for
                // the abort bit).
                unsafe { &*p }
            }
        }
    }

    /// The task's tracking state, with `Builder::track_tasks`.
    #[inline]
    pub(crate) fn track(&self) -> Option<&Track> {
        let w = self.word.load(Ordering::Relaxed);
        if w & TRACKED == 0 {
            return None;
        }
        // SAFETY: with `TRACKED` the word holds a `Box<Track>` made in
        // `new` and freed only when the metadata is dropped.
        Some(unsafe { &*((w & !FLAGS) as *const Track) })
    }
}

impl<S> Drop for TaskMeta<S> {
    fn drop(&mut self) {
        let w = *self.word.get_mut();
        if w & TRACKED != 0 {
            // SAFETY: the box made in `new`, dropped once, here.
            drop(unsafe { Box::from_raw((w & !FLAGS) as *mut Track) });
        }
    }
}

/// What task tracking records about a task.
#[derive(Debug)]
pub(crate) struct Track {
    /// Unique in the process.
    pub(crate) id: u64,
    pub(crate) location: &'static Location<'static>,
    pub(crate) spawned: Instant,
    /// When its last poll started.
    pub(crate) last_poll: Cell<Option<Instant>>,
    /// The kind of the op that returned `Pending` last in its last poll.
    pub(crate) waiting: Cell<Option<&'static str>>,
}

// SAFETY: the cells are read and written only on the thread of the runtime
// the task belongs to (where it is polled, and where `task_dump` reads its
// registry); other threads reach a task's metadata only for the abort flag
// (an atomic), through `JoinHandle::abort`, and never touch the `Track`.
unsafe impl Sync for Track {}

impl Track {
    #[cold]
    fn new(location: &'static Location<'static>) -> Box<Track> {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        Box::new(Track {
            id: NEXT.fetch_add(1, Ordering::Relaxed),
            location,
            spawned: Instant::now(),
            last_poll: Cell::new(None),
            waiting: Cell::new(None),
        })
    }

    /// A poll of the task starts at `now`: it waits on nothing until an op
    /// says otherwise.
    #[inline]
    pub(crate) fn polled(&self, now: Instant) {
        self.last_poll.set(Some(now));
        self.waiting.set(None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_words_holding_location_track_abort_flag_and_scheduler() {
        assert_eq!(
            std::mem::size_of::<TaskMeta<std::sync::Arc<u8>>>(),
            2 * std::mem::size_of::<usize>()
        );
        let here = Location::caller();
        for track in [false, true] {
            let m = TaskMeta::new(here, track, 7u8);
            assert_eq!(*m.scheduler(), 7);
            assert_eq!(m.location(), here);
            assert_eq!(m.track().is_some(), track);
            assert!(!m.aborted());
            m.abort();
            assert!(m.aborted());
            assert_eq!(m.location(), here);
            assert_eq!(m.track().is_some(), track);
        }
    }
}
