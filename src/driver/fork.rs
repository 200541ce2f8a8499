//! Fork detection: a forked child never touches its parent's ring or epoll set.
//!
//! How it works: an io_uring's queues are memory shared with the kernel, and
//! a forked child shares them (and the epoll set of the poll driver) with its
//! parent: a child that submitted through its copy of the parent's runtime
//! would write SQEs into the parent's queue. So the first driver built
//! registers a `pthread_atfork` handler that bumps a process-wide fork
//! generation in each child, and every driver remembers the generation it
//! was built in. The driver's entry points (an op's poll, submit, reap,
//! park, pool and buffer registration) compare the two — one relaxed load
//! of a value no thread writes — and in a forked child panic with a message
//! that says what to do, before touching anything shared. Shutting down or
//! dropping such a runtime in the child leaves the ring, the epoll set and
//! the blocking pool (whose threads do not exist in the child) alone: the
//! child's copies are simply freed.
//!
//! `std::process::Command` forks (or vforks) and execs: its child never
//! runs corio code, so none of this concerns it.

use std::sync::Once;
use std::sync::atomic::{AtomicU32, Ordering};

/// How many forks lie between this process and the one that counted 0
/// (each child starts from its parent's count, plus one).
static FORKS: AtomicU32 = AtomicU32::new(0);
static REGISTER: Once = Once::new();

extern "C" fn in_child() {
    // Only an atomic add: async-signal-safe, as a fork handler must be.
    FORKS.fetch_add(1, Ordering::Relaxed);
}

/// The current fork generation (registering the handler the first time).
pub(crate) fn generation() -> u32 {
    REGISTER.call_once(|| {
        // SAFETY: registers a child handler that only does an atomic add;
        // no prepare or parent handler.
        let rc = unsafe { libc::pthread_atfork(None, None, Some(in_child)) };
        debug_assert_eq!(rc, 0, "corio: pthread_atfork failed");
    });
    FORKS.load(Ordering::Relaxed)
}

/// True in a process forked after the driver of generation `built_in` was
/// built.
#[inline]
pub(crate) fn forked(built_in: u32) -> bool {
    FORKS.load(Ordering::Relaxed) != built_in
}

/// The panic of a forked child that uses its parent's runtime.
#[cold]
#[inline(never)]
#[track_caller]
pub(crate) fn refuse() -> ! {
    panic!(
        "corio: this runtime was built before the process forked, and this process \
         ({}) is the forked child: a child cannot use its parent's runtime (its io_uring \
         queues and epoll set are shared with the parent). Build a new runtime in the \
         child, or exec",
        std::process::id()
    )
}
