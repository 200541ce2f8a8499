//! Where a task came from: [`Origin`], one word in the task's future
//! wrapper.
//!
//! How it works: the word holds a pointer with two flag bits below it
//! (what it points at is 8-aligned): both clear, it is the task's spawn
//! location (recorded by `#[track_caller]`, free); `TRACKED`, a boxed
//! [`Track`] (`Builder::track_tasks`: id, spawn time, last poll, the op the
//! task waits on, and the spawn location). It lives in the wrapper, not in
//! the task's header, because only a live future needs it and every header
//! byte costs every spawn: the `async {}` task's block is 56 bytes, a
//! 64-byte allocator chunk, where 16 bytes more measured +9 ns per
//! spawn-many. A task that waits moves its origin into its runtime's
//! registry of waiting tasks and keeps the entry's key in the word instead
//! (`REGISTERED`, the key above the flags): one word for both, where a key
//! of its own cost 8 bytes per task (16 for a connection's task, whose
//! block then went up an allocator size class).

use std::cell::Cell;
use std::panic::Location;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

const TRACKED: usize = 1;
const REGISTERED: usize = 2;
/// Where a registry key starts in the word.
const KEY_SHIFT: u32 = 2;

/// Where a task was spawned, or its `Track`; or, once it is in its
/// runtime's registry, the key of its entry there (which holds the rest).
#[derive(Debug)]
pub(crate) struct Origin {
    /// A pointer (not an integer: it keeps its provenance), tagged.
    word: *const (),
}

// SAFETY: an `Origin` is a `&'static Location` (`Send`) or a `Box<Track>`
// (`Send`: its cells move with it), either one with a tag bit.
unsafe impl Send for Origin {}

impl Origin {
    #[inline(always)]
    pub(crate) fn new(location: &'static Location<'static>, track: bool) -> Origin {
        let word = if track {
            Box::into_raw(Track::new(location))
                .cast::<()>()
                .cast_const()
                .map_addr(|a| a | TRACKED)
        } else {
            let word = (location as *const Location<'static>).cast::<()>();
            debug_assert_eq!(word.addr() & TRACKED, 0, "corio: a misaligned location");
            word
        };
        Origin { word }
    }

    /// The word of a task registered under `key` (its origin moved to the
    /// registry's entry).
    #[inline(always)]
    pub(crate) fn registered(key: usize) -> Origin {
        debug_assert!(
            key < usize::MAX >> KEY_SHIFT,
            "corio: a registry key too big"
        );
        Origin {
            word: std::ptr::without_provenance((key << KEY_SHIFT) | REGISTERED),
        }
    }

    /// The registry key, once the task is registered.
    #[inline(always)]
    pub(crate) fn key(&self) -> Option<usize> {
        let a = self.word.addr();
        (a & REGISTERED != 0).then_some(a >> KEY_SHIFT)
    }

    /// True when dropping this word has something to do: free a `Track`,
    /// or (the wrapper's business) leave the registry.
    #[inline(always)]
    pub(crate) fn owns_something(&self) -> bool {
        self.word.addr() & (TRACKED | REGISTERED) != 0
    }

    /// Where the task was spawned (not for a registry key).
    pub(crate) fn location(&self) -> &'static Location<'static> {
        debug_assert!(
            self.key().is_none(),
            "corio: the location of a registry key"
        );
        match self.track() {
            Some(t) => t.location,
            None => {
                let p = self.word.cast::<Location<'static>>();
                // SAFETY: without `TRACKED` the word holds the address of a
                // `&'static Location` (set in `new`, never changed).
                unsafe { &*p }
            }
        }
    }

    /// True when the word holds a `Track` (which dropping frees).
    #[inline(always)]
    pub(crate) fn tracked(&self) -> bool {
        self.word.addr() & TRACKED != 0
    }

    /// The task's tracking state, with `Builder::track_tasks` (not for a
    /// registry key).
    #[inline]
    pub(crate) fn track(&self) -> Option<&Track> {
        if !self.tracked() {
            return None;
        }
        // SAFETY: with `TRACKED` the word holds a `Box<Track>` made in
        // `new` and freed only when the origin is dropped.
        Some(unsafe { &*self.track_ptr() })
    }

    /// The word without its tag, as the `Box<Track>` it holds (when
    /// `tracked`).
    fn track_ptr(&self) -> *mut Track {
        self.word
            .map_addr(|a| a & !TRACKED)
            .cast::<Track>()
            .cast_mut()
    }
}

impl Drop for Origin {
    fn drop(&mut self) {
        if self.tracked() {
            // SAFETY: the box made in `new`, dropped once, here.
            drop(unsafe { Box::from_raw(self.track_ptr()) });
        }
    }
}

/// The origin word of the task whose future starts at `future` (what
/// `Runnable::future` returns): its origin, or its registry key.
///
/// # Safety
///
/// `future` is the live future of a task whose future starts with an
/// `Origin`, as every runtime task's does (`task.rs`: `TaskFuture` is
/// `repr(C)` with the origin first, checked by its test), and the word is
/// used only while the future lives.
pub(crate) unsafe fn origin_of<'a>(future: std::ptr::NonNull<()>) -> &'a Origin {
    // SAFETY: per the contract (`ManuallyDrop<Origin>` is transparent).
    unsafe { future.cast::<Origin>().as_ref() }
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
    fn a_registry_key_is_the_word_too() {
        for key in [0, 1, 77, usize::MAX >> 3] {
            let o = Origin::registered(key);
            assert_eq!(o.key(), Some(key));
            assert!(o.owns_something());
            assert!(!o.tracked());
        }
        let here = Location::caller();
        assert_eq!(Origin::new(here, false).key(), None);
        assert!(!Origin::new(here, false).owns_something());
        assert_eq!(Origin::new(here, true).key(), None);
        assert!(Origin::new(here, true).owns_something());
    }

    #[test]
    fn one_word_holding_location_or_track() {
        assert_eq!(std::mem::size_of::<Origin>(), std::mem::size_of::<usize>());
        let here = Location::caller();
        for track in [false, true] {
            let o = Origin::new(here, track);
            assert_eq!(o.location(), here);
            assert_eq!(o.track().is_some(), track);
            if let Some(t) = o.track() {
                assert_eq!(t.location, here);
                assert!(t.id > 0);
            }
        }
    }
}
