//! Graceful shutdown of one runtime: the drain that [`Handle::shutdown`]
//! starts.
//!
//! How it works: each runtime's [`Shared`](super::core::Shared) part holds a
//! [`Drain`], so any thread can start it. Starting it records the deadline,
//! flips the state to draining (accepts then fail: see [`refuse_accept`]) and
//! wakes whoever waits for that. The runtime's own thread notices at its next
//! tick (the handle unparks it): it wakes every task once, so tasks that look
//! at [`is_shutting_down`](super::is_shutting_down) see it, and from then on
//! checks after each tick whether any task is left (background tasks, such
//! as reapers of dropped children, do not count). When none is, or when the
//! deadline passes (the executor then drops every task left, closing their
//! fds, and parks no longer than the deadline), the drain is finished and its
//! waiters are woken. The deadline still holds after a drain finished early:
//! what runs then (a shard's entry future, tasks spawned since) is dropped.
//! A runtime that is dropped finishes its drain too.
//!
//! [`Handle::shutdown`]: super::Handle::shutdown

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::task::Waker;
use std::time::Instant;

use slab::Slab;

const RUNNING: u8 = 0;
const DRAINING: u8 = 1;
/// The deadline passed: the tasks left were dropped.
const CANCELLED: u8 = 2;

/// The shutdown state of one runtime.
#[derive(Debug, Default)]
pub(crate) struct Drain {
    state: AtomicU8,
    deadline: Mutex<Option<Instant>>,
    /// The runtime's thread has woken its tasks for the drain.
    noticed: AtomicBool,
    /// No task is left (or the rest were dropped), or the runtime is gone.
    finished: AtomicBool,
    /// Tasks of the runtime's own that do not hold a drain up.
    background: AtomicUsize,
    /// Futures waiting for the drain to start.
    started_waiters: WaitList,
    /// Futures waiting for it to finish.
    finished_waiters: WaitList,
}

impl Drain {
    /// Starts the drain (or moves its deadline closer).
    pub(crate) fn begin(&self, deadline: Instant) {
        {
            let mut d = self.deadline.lock().unwrap_or_else(|e| e.into_inner());
            *d = Some(d.map_or(deadline, |old| old.min(deadline)));
        }
        let _ = self
            .state
            .compare_exchange(RUNNING, DRAINING, Ordering::SeqCst, Ordering::SeqCst);
        self.started_waiters.wake_all();
    }

    /// True once a drain was started.
    #[inline]
    pub(crate) fn started(&self) -> bool {
        self.state.load(Ordering::Relaxed) != RUNNING
    }

    /// True once the deadline passed and the tasks left were dropped.
    pub(crate) fn cancelled(&self) -> bool {
        self.state.load(Ordering::SeqCst) == CANCELLED
    }

    /// True once the drain is over (or the runtime gone).
    pub(crate) fn finished(&self) -> bool {
        self.finished.load(Ordering::SeqCst)
    }

    /// The deadline, until it has passed. (A drain that finished early
    /// still has one: what runs at the deadline, a shard's entry future or
    /// tasks spawned since, is dropped then.)
    pub(crate) fn deadline(&self) -> Option<Instant> {
        if self.state.load(Ordering::SeqCst) != DRAINING {
            return None;
        }
        *self.deadline.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Marks the drain over and wakes its waiters.
    pub(crate) fn finish(&self) {
        self.finished.store(true, Ordering::SeqCst);
        self.finished_waiters.wake_all();
    }

    /// A background task starts (true) or ends (false).
    pub(crate) fn background(&self, starts: bool) {
        if starts {
            self.background.fetch_add(1, Ordering::SeqCst);
        } else {
            self.background.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// Runs at the end of each executor tick while a drain is on; true
    /// when the main future must be polled (the drain started, was
    /// cancelled or ended). The runtime lends what the drain looks at:
    /// waking every task once, dropping them all at the deadline, how many
    /// live, and whether its queues are empty.
    pub(crate) fn step(
        &self,
        wake_tasks: impl FnOnce(),
        drop_tasks: impl FnOnce(),
        live_tasks: impl FnOnce() -> usize,
        queues_empty: impl FnOnce() -> bool,
    ) -> bool {
        if self.cancelled() {
            return false;
        }
        let mut wake_main = false;
        if !self.noticed.swap(true, Ordering::SeqCst) {
            // Every task sees the drain once (accepts fail, loops look at
            // `is_shutting_down`); pending ops just stay pending.
            wake_tasks();
            wake_main = true;
        }
        if self.deadline().is_some_and(|d| Instant::now() >= d) {
            drop_tasks();
            self.state.store(CANCELLED, Ordering::SeqCst);
            self.finish();
            return true;
        }
        if self.finished() {
            return wake_main;
        }
        if live_tasks() <= self.background.load(Ordering::SeqCst) && queues_empty() {
            self.finish();
            return true;
        }
        wake_main
    }

    pub(crate) fn started_waiters(&self) -> &WaitList {
        &self.started_waiters
    }

    pub(crate) fn finished_waiters(&self) -> &WaitList {
        &self.finished_waiters
    }
}

/// Wakers of futures waiting for a drain event, each removed when its
/// future goes (so a long-lived server does not collect stale ones).
#[derive(Debug, Default)]
pub(crate) struct WaitList(Mutex<Slab<Waker>>);

impl WaitList {
    /// Stores `waker` under `key` (a new key the first time).
    pub(crate) fn register(&self, key: &mut Option<usize>, waker: &Waker) {
        let mut list = self.0.lock().unwrap_or_else(|e| e.into_inner());
        match key.and_then(|k| list.get_mut(k)) {
            Some(w) if w.will_wake(waker) => {}
            Some(w) => *w = waker.clone(),
            None => *key = Some(list.insert(waker.clone())),
        }
    }

    /// Forgets the waker under `key`.
    pub(crate) fn remove(&self, key: Option<usize>) {
        if let Some(k) = key {
            self.0
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .try_remove(k);
        }
    }

    fn wake_all(&self) {
        let wakers: Vec<Waker> = self
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(_, w)| w.clone())
            .collect();
        for w in wakers {
            w.wake();
        }
    }
}
