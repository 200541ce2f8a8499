//! The runtime: an executor and a driver on one thread.
//!
//! How it works: [`Runtime::block_on`] polls the main future, runs queued tasks
//! (up to a per-tick limit), fires due timers, then calls the driver once: a
//! non-blocking submit-and-reap when work is runnable, or a park (one
//! `io_uring_enter` that submits and waits, bounded by the next timer) when
//! nothing is. Dropping the runtime drops every task on this thread, cancels
//! every op still in flight and waits for the kernel to give each buffer back.

mod blocking;
mod builder;
pub(crate) mod context;
pub(crate) mod coop;
pub(crate) mod core;
mod ctxvar;
pub(crate) mod drain;
mod dump;
mod env;
mod executor;
mod group;
mod handle;
mod latency;
mod meta;
pub(crate) mod observe;
mod raw;
pub(crate) mod refuse;
mod run;
mod run_queue;
pub mod shard;
mod stall;
mod stats;
mod task;
pub(crate) mod timers;

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::io;
use std::marker::PhantomData;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64};

use concurrent_queue::ConcurrentQueue;
use slab::Slab;

pub use crate::driver::DriverKind;
pub use blocking::spawn_blocking;
pub use builder::Builder;
pub use context::{pool_usage, ring_flags, stats};
pub use ctxvar::ContextVar;
pub use dump::{TaskDump, TaskInfo, task_dump};
pub use group::TaskGroup;
pub use handle::{Handle, is_shutting_down, run_until_shutdown};
pub use latency::{OpLatency, op_latency, reset_op_latency};
pub use stall::StallReport;
pub use stats::{RingFlags, Stats};
pub(crate) use task::spawn_background;
pub use task::{JoinError, JoinHandle, spawn, yield_now};

use self::core::{Core, Shared, TaskUnits};
use self::run_queue::RunQueue;
use self::timers::TimerStore;
use crate::driver::Driver;
use crate::trace;

/// A corio runtime: one thread's executor and its driver (io_uring, or the
/// poll fallback).
///
/// It is not `Send`: tasks need not be `Send`, and the ring is tied to the
/// thread that built it. Use [`run`] for the common case.
///
/// It also belongs to the process that built it. A child made by `fork(2)`
/// shares the parent's io_uring queues (and epoll set) but not its threads:
/// using the parent's runtime there (`block_on`, any I/O) panics with a
/// message saying so, before anything shared is touched, and dropping it
/// leaves the parent's queues alone. Build a new runtime in the child, or
/// `exec`. (`std::process::Command` and `corio::process` exec at once and
/// are not concerned.)
///
/// ```
/// let rt = corio::Runtime::new().unwrap();
/// let out = rt.block_on(async {
///     let h = corio::spawn(async { "hello" });
///     h.await.unwrap()
/// });
/// assert_eq!(out, "hello");
/// ```
#[derive(Debug)]
pub struct Runtime {
    core: Rc<Core>,
    _not_send: PhantomData<*const ()>,
}

impl Runtime {
    /// A runtime with default settings; see [`Builder`] for the knobs.
    pub fn new() -> io::Result<Runtime> {
        Builder::new().build()
    }

    /// Shorthand for [`Builder::new`].
    pub fn builder() -> Builder {
        Builder::new()
    }

    fn from_builder(b: Builder) -> io::Result<Runtime> {
        let spin = env::spin(b.spin_before_park)?;
        let selected = Driver::select(&b.cfg)?;
        let driver = selected.driver;
        let shared = Arc::new(Shared {
            remote: ConcurrentQueue::unbounded(),
            parked: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            unparker: selected.unparker,
            remote_wakeups: AtomicU64::new(0),
            track_tasks: b.observe.track_tasks,
            drain: drain::Drain::default(),
            tasks: TaskUnits::new(),
        });
        TaskUnits::anchor(&shared);
        let core = Rc::new(Core {
            queue: RunQueue::with_capacity(256),
            shared,
            kept: Cell::new(0),
            kind: driver.kind(),
            owner: driver.owner(),
            ring_flags: driver.ring_flags(),
            counters: driver.stats().clone(),
            blocking: driver.blocking().clone(),
            wakes: driver.wake_queue(),
            driver: RefCell::new(driver),
            fallback: selected.fallback,
            timers: RefCell::new(TimerStore::new()),
            tasks: RefCell::new(Slab::with_capacity(64)),
            budget: Cell::new(b.task_budget),
            budget_max: b.task_budget,
            shard: std::cell::OnceCell::new(),
            tick_tasks: b.tick_tasks,
            spin,
            watch: b.observe.watch(),
            tracked: std::cell::Cell::new(std::ptr::null()),
        });
        trace::runtime_built(
            &core.kind,
            core.ring_flags
                .as_ref()
                .map(|f| f as &dyn std::fmt::Display),
            core.fallback.as_deref(),
        );
        Ok(Runtime {
            core,
            _not_send: PhantomData,
        })
    }

    /// The driver this runtime runs: [`DriverKind::Uring`] or
    /// [`DriverKind::Poll`] (never `Auto`).
    ///
    /// ```
    /// let rt = corio::Runtime::new().unwrap();
    /// println!("driver: {:?}", rt.driver_kind());
    /// ```
    pub fn driver_kind(&self) -> DriverKind {
        self.core.kind
    }

    /// Why [`DriverKind::Auto`] fell back to the poll driver, if it did
    /// (e.g. "io_uring unavailable: Operation not permitted (os error 1)").
    pub fn fallback_reason(&self) -> Option<&str> {
        self.core.fallback.as_deref()
    }

    /// This runtime's counters so far: syscalls, queue traffic, scheduling
    /// (see [`Stats`]). Cheap: it copies a dozen integers.
    ///
    /// ```
    /// let rt = corio::Runtime::new().unwrap();
    /// rt.block_on(async { corio::nop().await.unwrap() });
    /// let s = rt.stats();
    /// if rt.driver_kind() == corio::DriverKind::Uring {
    ///     assert!(s.cqes_reaped >= 1 && s.enters >= 1);
    /// }
    /// ```
    pub fn stats(&self) -> Stats {
        self.core.stats()
    }

    /// This runtime's op latencies (see
    /// [`corio::runtime::op_latency`](crate::runtime::op_latency)); empty
    /// unless built with [`Builder::op_latency(true)`](Builder::op_latency).
    pub fn op_latency(&self) -> Vec<OpLatency> {
        latency::summary(&self.core)
    }

    /// The io_uring setup this runtime got (flags after any fallback, queue
    /// sizes); `None` on the poll driver.
    pub fn ring_flags(&self) -> Option<RingFlags> {
        self.core.ring_flags
    }

    /// Faults injected into `io_uring_enter` so far by
    /// [`Builder::enter_faults`] (testing only): `EAGAIN`, `EBUSY`, `EINTR`
    /// and short submits.
    #[doc(hidden)]
    pub fn injected_enter_faults(&self) -> [u64; 4] {
        self.core.driver.borrow().injected_faults()
    }

    /// A [`Handle`] to this runtime: `Send + Sync`, for spawning from other
    /// threads and for a graceful [`shutdown`](Handle::shutdown).
    pub fn handle(&self) -> Handle {
        Handle::for_runtime(self)
    }

    /// Runs `future` to completion on this thread, running spawned tasks and
    /// I/O meanwhile. Tasks still pending when it returns stay in the runtime
    /// and run again at the next `block_on`.
    ///
    /// # Panics
    ///
    /// Panics when called from inside a corio runtime (`block_on` inside
    /// `block_on`); spawn the future and await its handle instead.
    #[track_caller]
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        executor::block_on(&self.core, future, std::panic::Location::caller())
    }
}

/// Dropping a runtime drops every task on this thread, cancels every op
/// still in flight and waits for the kernel to return each buffer; then the
/// driver and the blocking pool's threads go away.
///
/// On io_uring the kernel finishes tearing the ring down asynchronously and,
/// some milliseconds later, notifies the thread that used it as a signal
/// would. A blocking syscall with a timeout that this thread is in at that
/// moment (a std read after `set_read_timeout`, say) may then fail once with
/// `ErrorKind::Interrupted`; retry it, as std's `read_exact` and `write_all`
/// do.
impl Drop for Runtime {
    fn drop(&mut self) {
        executor::shutdown(&self.core);
        // No pool thread runs any more after this: every orphaned op value
        // can go.
        let _guard = context::swap(self.core.clone());
        self.core.driver.borrow_mut().shutdown_blocking();
    }
}

/// Builds a default [`Runtime`] and runs `future` on it.
///
/// # Panics
///
/// Panics when io_uring cannot be set up, or when called inside a runtime.
///
/// ```
/// let v = corio::run(async { 7 });
/// assert_eq!(v, 7);
/// ```
#[track_caller]
pub fn run<F: Future>(future: F) -> F::Output {
    let rt = Runtime::new().unwrap_or_else(|e| panic!("corio: cannot build a runtime: {e}"));
    rt.block_on(future)
}
