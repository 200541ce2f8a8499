//! Opt-in observation of a runtime's tasks: stall detection and task tracking.
//!
//! How it works: the builder's settings become a [`Watch`] only when one of
//! them is on; a core without one pays a single branch per task poll
//! (`core.watch` is `None`) and per op poll. With a `Watch`, the executor
//! runs each task through [`Watch::run`]: it notes the poll's start (for
//! the stall check and, with tracking, the task's "last polled" time) and,
//! for a tracked task, puts its `Track` in its core (`Core::tracked`), so an
//! op that returns `Pending` can record on that task what it waits for
//! ([`note_op`]); an op pays one load from the core it already holds for the
//! check. Everything here runs on the runtime's own thread.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::panic::Location;
use std::task::Waker;
use std::time::{Duration, Instant};

use slab::Slab;

use super::meta::{self, Origin, Track};
use super::raw::{Runnable, Schedule};
use super::stall::{self, Stall, StallHook};

/// What the builder asks to observe (shared by the shards of a `run`).
#[derive(Clone, Default)]
pub(crate) struct ObserveConfig {
    pub(crate) stall_threshold: Option<Duration>,
    pub(crate) on_stall: Option<StallHook>,
    pub(crate) track_tasks: bool,
}

impl fmt::Debug for ObserveConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ObserveConfig")
            .field("stall_threshold", &self.stall_threshold)
            .field("on_stall", &self.on_stall.is_some())
            .field("track_tasks", &self.track_tasks)
            .finish()
    }
}

impl ObserveConfig {
    /// The per-core state, `None` when nothing is observed.
    /// `CORIO_STALL_MS` overrides the stall threshold.
    pub(crate) fn watch(&self) -> Option<Box<Watch>> {
        let threshold = stall::env_threshold().unwrap_or(self.stall_threshold);
        let stall = threshold.map(|threshold| Stall {
            threshold,
            hook: self.on_stall.clone(),
        });
        if stall.is_none() && !self.track_tasks {
            return None;
        }
        Some(Box::new(Watch {
            stall,
            track: self.track_tasks,
        }))
    }
}

/// A core's observation state (only when something is observed).
pub(crate) struct Watch {
    stall: Option<Stall>,
    /// Task tracking (`Builder::track_tasks`) is on.
    pub(crate) track: bool,
}

impl fmt::Debug for Watch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Watch")
            .field("stall", &self.stall.as_ref().map(|s| s.threshold))
            .field("track", &self.track)
            .finish_non_exhaustive()
    }
}

/// Forgets the tracked task when its poll ends, even by unwinding.
struct Current<'a>(&'a Cell<*const Track>);

impl Drop for Current<'_> {
    fn drop(&mut self) {
        self.0.set(std::ptr::null());
    }
}

impl Watch {
    /// Runs one task poll, timed, with the task noted as the current one.
    #[inline(never)]
    pub(crate) fn run<S: Schedule>(
        &self,
        runnable: Runnable<S>,
        shard: usize,
        current: &Cell<*const Track>,
        registry: &RefCell<Slab<(Waker, Origin)>>,
    ) {
        let Some(future) = runnable.future() else {
            // A notice for a finished task: it only lets go of the block.
            return runnable.run();
        };
        // SAFETY: every task of a runtime is made by `task::make_task`, and
        // its future (holding the word) lives until the run below: the
        // word is used before it.
        let word = unsafe { meta::origin_of(future) };
        // A waiting task's origin is in the registry (the entry lives, and
        // its `Track` box with it, until the future drops: not before the
        // poll below starts).
        let found = match word.key() {
            None => Some((word.location(), origin_track(word))),
            Some(key) => (registry.borrow().get(key))
                .map(|(_, origin)| (origin.location(), origin_track(origin))),
        };
        let Some((location, track)) = found else {
            // Not reached (a key names a live entry); run it unobserved.
            return runnable.run();
        };
        let start = Instant::now();
        if !track.is_null() {
            // SAFETY: as just said, the box is alive until this poll ends.
            unsafe { &*track }.polled(start);
        }
        {
            current.set(track);
            let _current = Current(current);
            runnable.run();
        }
        if let Some(stall) = &self.stall {
            stall.check(location, start.elapsed(), shard);
        }
    }

    /// Runs `poll` (a poll of `block_on`'s future) timed.
    #[inline(never)]
    pub(crate) fn run_main<R>(
        &self,
        location: &'static Location<'static>,
        shard: usize,
        poll: impl FnOnce() -> R,
    ) -> R {
        let start = Instant::now();
        let out = poll();
        if let Some(stall) = &self.stall {
            stall.check(location, start.elapsed(), shard);
        }
        out
    }
}

/// An op of the task being polled returned `Pending`: it now waits on `kind`.
#[cold]
pub(crate) fn note_op(current: &Cell<*const Track>, kind: &'static str) {
    let p = current.get();
    // SAFETY: `Core::tracked` is non-null only inside `Watch::run`, and an
    // op returns `Pending` only inside the task's poll, while its future
    // lives: the `Track` (in the future's origin word or in its registry
    // entry, both freed only as the future drops) is alive; ops are polled
    // on this thread only.
    if let Some(track) = unsafe { p.as_ref() } {
        track.waiting.set(Some(kind));
    }
}

/// The `Track` an origin holds, or null.
fn origin_track(origin: &Origin) -> *const Track {
    origin.track().map_or(std::ptr::null(), |t| t)
}
