//! `Builder`: the knobs of a runtime, then `build()`.
//!
//! How it works: the builder only records settings; `build()` sets up the
//! io_uring instance (trying `SINGLE_ISSUER | DEFER_TASKRUN` first and falling
//! back flag by flag) and the executor. A runtime is tied to the thread that
//! built it: io_uring's single-issuer mode and the `!Send` tasks both need that.

use std::io;

use super::Runtime;
use crate::driver::DriverKind;

/// Configures and builds a [`Runtime`].
///
/// ```
/// let rt = corio::Builder::new().entries(256).build().unwrap();
/// assert_eq!(rt.block_on(async { 1 + 1 }), 2);
/// ```
#[derive(Debug, Clone)]
pub struct Builder {
    pub(crate) entries: u32,
    pub(crate) cq_entries: Option<u32>,
    pub(crate) tick_tasks: usize,
    pub(crate) task_budget: u32,
    pub(crate) driver: DriverKind,
    pub(crate) max_blocking_threads: usize,
    pub(crate) shards: Option<usize>,
    pub(crate) pin_cpus: bool,
    pub(crate) pool: (u16, usize),
}

impl Default for Builder {
    fn default() -> Self {
        Self::new()
    }
}

impl Builder {
    /// Default settings: 1024 submission entries, a completion queue twice as large.
    pub fn new() -> Self {
        Builder {
            entries: 1024,
            cq_entries: None,
            tick_tasks: 256,
            task_budget: 128,
            driver: DriverKind::Auto,
            max_blocking_threads: 64,
            shards: None,
            pin_cpus: false,
            pool: (1024, 4096),
        }
    }

    /// Submission queue size (rounded up to a power of two by the kernel).
    ///
    /// A small queue costs more `io_uring_enter` calls when many ops are
    /// submitted in one tick (a full queue is submitted and refilled), never
    /// a lost op. Default 1024.
    pub fn entries(mut self, entries: u32) -> Self {
        self.entries = entries;
        self
    }

    /// Completion queue size. Default: twice the submission queue.
    ///
    /// When more completions arrive than fit, the kernel keeps them
    /// (`IORING_FEAT_NODROP`) and the driver flushes them; a small queue costs
    /// extra syscalls, never a completion.
    pub fn cq_entries(mut self, entries: u32) -> Self {
        self.cq_entries = Some(entries);
        self
    }

    /// How many tasks run before the driver is polled again (default 256).
    ///
    /// Lower values reap completions sooner under load; higher ones batch more
    /// work per `io_uring_enter`.
    pub fn tick_tasks(mut self, n: usize) -> Self {
        self.tick_tasks = n.max(1);
        self
    }

    /// How many already-complete results a task may take in one poll before
    /// it is made to yield (default 128), so that a task whose I/O keeps
    /// completing at once cannot starve the others.
    pub fn task_budget(mut self, n: u32) -> Self {
        self.task_budget = n.max(1);
        self
    }

    /// Which driver to run (default [`DriverKind::Auto`]: io_uring where the
    /// kernel allows it, else the poll driver). The environment variable
    /// `CORIO_DRIVER=uring|poll|auto` overrides this setting.
    ///
    /// Asking for [`DriverKind::Uring`] where io_uring is unavailable makes
    /// [`build`](Self::build) fail with the reason.
    pub fn driver(mut self, kind: DriverKind) -> Self {
        self.driver = kind;
        self
    }

    /// Most threads the blocking pool (for `spawn_blocking`, and file I/O on
    /// the poll driver) runs at once (default 64); further jobs queue.
    pub fn max_blocking_threads(mut self, n: usize) -> Self {
        self.max_blocking_threads = n.max(1);
        self
    }

    /// How many shards [`run`](Self::run) starts (default: the number of
    /// CPUs this process may use). Each shard is a thread with its own
    /// executor and driver.
    ///
    /// # Panics
    ///
    /// Panics if `n` is zero.
    pub fn shards(mut self, n: usize) -> Self {
        assert!(n > 0, "corio: a runtime needs at least one shard");
        self.shards = Some(n);
        self
    }

    /// Pins shard `i` to the `i`-th CPU this process may use
    /// (`sched_setaffinity`). [`run`](Self::run) fails with a clear error
    /// when there are fewer allowed CPUs than shards.
    pub fn pin_cpus(mut self, pin: bool) -> Self {
        self.pin_cpus = pin;
        self
    }

    /// The receive pool used by pooled receives (`recv_pooled`): `count`
    /// buffers (a power of two, at most 32768) of `size` bytes each, made on
    /// first use (default 1024 × 4 KiB).
    ///
    /// On io_uring the buffers form a provided-buffer ring: the kernel picks
    /// one only when data arrives, so idle connections hold none. More
    /// buffers let more unread data wait in user space; when every buffer is
    /// leased out, receives pause (no error) until a lease is dropped. Bigger
    /// buffers mean fewer completions per byte for bulk transfers.
    pub fn buffer_pool(mut self, count: u16, size: usize) -> Self {
        self.pool = (count, size);
        self
    }

    /// Builds the runtime on the calling thread.
    ///
    /// Fails when the requested driver cannot be set up (for `Uring`: the
    /// kernel's error, e.g. ENOSYS, or EPERM under seccomp or
    /// `kernel.io_uring_disabled`), when a size is invalid, or when
    /// `CORIO_DRIVER` holds an unknown value.
    pub fn build(self) -> io::Result<Runtime> {
        Runtime::from_builder(self)
    }
}
