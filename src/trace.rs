//! `tracing` integration (feature `tracing`, off by default).
//!
//! How it works: the rest of the crate calls the functions and types here
//! unconditionally; without the feature they are empty and zero-sized, so
//! they compile to nothing (no field, no branch). With it:
//! - each task has a span `runtime.spawn` (target `tokio::task`, the names
//!   tokio-console's subscriber looks for) with `kind = "task"`, `task.id`,
//!   `loc.file`, `loc.line`, `loc.col`, and `shard` (recorded at its first
//!   poll); the span is entered for every poll;
//! - each op that completes emits a TRACE event (target `corio::op`) with
//!   its kind, fd (when the op names one), result and the time from its
//!   first poll (where it is submitted) to its result;
//! - the executor emits TRACE events `park` / `unpark` (target
//!   `corio::runtime`), and building a runtime an INFO event with the
//!   driver, the ring's setup flags and, after a fallback, its reason.

use std::io;
use std::panic::Location;
use std::time::Duration;

#[cfg(feature = "tracing")]
mod imp {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::Instant;

    /// A task's span.
    #[derive(Debug)]
    pub(crate) struct TaskSpan(tracing::Span);

    impl TaskSpan {
        pub(crate) fn new(location: &'static Location<'static>) -> TaskSpan {
            static NEXT: AtomicU64 = AtomicU64::new(1);
            let id = NEXT.fetch_add(1, Ordering::Relaxed);
            TaskSpan(tracing::trace_span!(
                target: "tokio::task",
                "runtime.spawn",
                kind = "task",
                task.id = id,
                loc.file = location.file(),
                loc.line = location.line(),
                loc.col = location.column(),
                shard = tracing::field::Empty,
            ))
        }

        /// Enters the span for one poll; the first one records the shard.
        pub(crate) fn enter(&self, first: bool, shard: impl FnOnce() -> usize) -> impl Drop + '_ {
            if first {
                self.0.record("shard", shard());
            }
            self.0.enter()
        }
    }

    /// When an op was first polled (submitted).
    #[derive(Debug)]
    pub(crate) struct OpClock(Option<Instant>);

    impl OpClock {
        #[inline]
        pub(crate) fn new() -> OpClock {
            OpClock(None)
        }

        #[inline]
        pub(crate) fn start(&mut self) {
            if self.0.is_none() && tracing::enabled!(target: "corio::op", tracing::Level::TRACE) {
                self.0 = Some(Instant::now());
            }
        }

        pub(crate) fn done(&self, kind: &'static str, fd: Option<i32>, res: &io::Result<u32>) {
            let took = self.0.map(|t| t.elapsed());
            tracing::trace!(
                target: "corio::op",
                op = kind,
                fd,
                result = ?res,
                took_us = took.map(|d| d.as_micros() as u64),
                "op completed"
            );
        }
    }

    pub(crate) fn park(timeout: Option<Duration>) {
        tracing::trace!(target: "corio::runtime", timeout = ?timeout, "park");
    }

    pub(crate) fn unpark() {
        tracing::trace!(target: "corio::runtime", "unpark");
    }

    pub(crate) fn runtime_built(
        driver: &dyn std::fmt::Debug,
        ring: Option<&dyn std::fmt::Display>,
        fallback: Option<&str>,
    ) {
        tracing::info!(
            target: "corio::runtime",
            driver = ?driver,
            ring = ring.map(tracing::field::display),
            fallback,
            "runtime built"
        );
    }
}

#[cfg(not(feature = "tracing"))]
mod imp {
    use super::*;

    /// A task's span: nothing without the feature.
    #[derive(Debug)]
    pub(crate) struct TaskSpan;

    impl TaskSpan {
        #[inline(always)]
        pub(crate) fn new(_: &'static Location<'static>) -> TaskSpan {
            TaskSpan
        }

        #[inline(always)]
        pub(crate) fn enter(&self, _: bool, _: impl FnOnce() -> usize) -> NoGuard {
            NoGuard
        }
    }

    /// What entering a span returns without the feature.
    pub(crate) struct NoGuard;

    impl Drop for NoGuard {
        #[inline(always)]
        fn drop(&mut self) {}
    }

    /// When an op was first polled: nothing without the feature.
    #[derive(Debug)]
    pub(crate) struct OpClock;

    impl OpClock {
        #[inline(always)]
        pub(crate) fn new() -> OpClock {
            OpClock
        }

        #[inline(always)]
        pub(crate) fn start(&mut self) {}

        #[inline(always)]
        pub(crate) fn done(&self, _: &'static str, _: Option<i32>, _: &io::Result<u32>) {}
    }

    #[inline(always)]
    pub(crate) fn park(_: Option<Duration>) {}

    #[inline(always)]
    pub(crate) fn unpark() {}

    #[inline(always)]
    pub(crate) fn runtime_built(
        _: &dyn std::fmt::Debug,
        _: Option<&dyn std::fmt::Display>,
        _: Option<&str>,
    ) {
    }
}

pub(crate) use imp::*;

/// True when built with the `tracing` feature.
pub(crate) const ON: bool = cfg!(feature = "tracing");
