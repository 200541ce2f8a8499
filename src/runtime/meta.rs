//! What a task carries in its allocation: [`TaskMeta`].
//!
//! How it works: `async_task` stores the metadata next to the task's future.
//! Every task records its abort flag and where it was spawned (a pointer
//! `#[track_caller]` gives for free); with `Builder::track_tasks` it also
//! gets a boxed [`Track`] (id, spawn time, last poll, the op it waits on),
//! read by task dumps. Without tracking that box is `None`: spawning costs
//! one more pointer store, nothing else.

use std::cell::Cell;
use std::panic::Location;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

/// Per-task metadata stored in the task allocation.
#[derive(Debug)]
pub(crate) struct TaskMeta {
    pub(crate) aborted: AtomicBool,
    /// Where the task was spawned.
    pub(crate) location: &'static Location<'static>,
    /// Task tracking, when the runtime has it on.
    pub(crate) track: Option<Box<Track>>,
}

impl TaskMeta {
    #[inline]
    pub(crate) fn new(location: &'static Location<'static>, track: bool) -> TaskMeta {
        TaskMeta {
            aborted: AtomicBool::new(false),
            location,
            track: if track { Some(Track::new()) } else { None },
        }
    }
}

/// What task tracking records about a task.
#[derive(Debug)]
pub(crate) struct Track {
    /// Unique in the process.
    pub(crate) id: u64,
    pub(crate) spawned: Instant,
    /// When its last poll started.
    pub(crate) last_poll: Cell<Option<Instant>>,
    /// The kind of the op that returned `Pending` last in its last poll.
    pub(crate) waiting: Cell<Option<&'static str>>,
}

// SAFETY: the cells are read and written only on the thread of the runtime
// the task belongs to (where it is polled, and where `task_dump` reads its
// registry); other threads reach a task's metadata only for `aborted` (an
// atomic), through `JoinHandle::abort`, and never touch `track`.
unsafe impl Sync for Track {}

impl Track {
    #[cold]
    fn new() -> Box<Track> {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        Box::new(Track {
            id: NEXT.fetch_add(1, Ordering::Relaxed),
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
