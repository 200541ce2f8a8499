//! Fds freed by the runtime: the signal a listener out of fds waits for.
//!
//! How it works: a listener whose accept failed with `EMFILE` (or `ENFILE`,
//! `ENOBUFS`, `ENOMEM`) holds a [`Watch`] until an accept succeeds again;
//! while any watch lives, every fd the runtime closes (the last handle of a
//! socket or file going away, on any thread, on either driver) bumps a
//! process-wide generation and wakes the accepts that wait. With no watch
//! alive — the normal case — a close pays one relaxed load of a counter
//! that is never written and one predictable branch ([`note_closed`]).
//!
//! Fds freed behind the runtime's back (a `std::fs::File` dropped by user
//! code, another process) are not seen here: the listener's back-off timer
//! (`net/backoff.rs`) covers them.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::Waker;

/// Watches alive (listeners in a back-off).
static WATCHING: AtomicUsize = AtomicUsize::new(0);
/// Fds closed while some watch was alive.
static FREED: AtomicU64 = AtomicU64::new(0);
/// Accepts waiting for the next close.
static WAITERS: Mutex<Vec<Waker>> = Mutex::new(Vec::new());

/// The runtime has just closed an fd (or queued its close ahead of any op
/// submitted from now on). Cheap unless a listener is out of fds.
#[inline]
pub(crate) fn note_closed() {
    if WATCHING.load(Ordering::Relaxed) != 0 {
        freed();
    }
}

#[cold]
fn freed() {
    FREED.fetch_add(1, Ordering::SeqCst);
    let waiters = std::mem::take(&mut *WAITERS.lock().unwrap_or_else(|e| e.into_inner()));
    for w in waiters {
        w.wake();
    }
}

/// Watches for closes while it lives (one per listener in a back-off).
#[derive(Debug)]
pub(crate) struct Watch {
    seen: u64,
}

impl Watch {
    /// Starts watching: closes from now on count.
    pub(crate) fn new() -> Watch {
        WATCHING.fetch_add(1, Ordering::SeqCst);
        Watch {
            seen: FREED.load(Ordering::SeqCst),
        }
    }

    /// True when an fd was closed since the watch started or was last
    /// [`rearm`](Self::rearm)ed.
    pub(crate) fn freed(&self) -> bool {
        FREED.load(Ordering::SeqCst) != self.seen
    }

    /// Counts closes from now on only.
    pub(crate) fn rearm(&mut self) {
        self.seen = FREED.load(Ordering::SeqCst);
    }

    /// Wakes `waker` at the next close; true when one came meanwhile (the
    /// caller goes on without waiting).
    pub(crate) fn wait(&self, waker: &Waker) -> bool {
        {
            let mut list = WAITERS.lock().unwrap_or_else(|e| e.into_inner());
            if !list.iter().any(|w| w.will_wake(waker)) {
                list.push(waker.clone());
            }
        }
        // A close between the caller's check and the push woke nobody.
        self.freed()
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        if WATCHING.fetch_sub(1, Ordering::SeqCst) == 1 {
            // Nobody watches: forget the wakers of waits that ended.
            WAITERS.lock().unwrap_or_else(|e| e.into_inner()).clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::AtomicBool;
    use std::task::Wake;

    use super::*;

    struct Flag(AtomicBool);

    impl Wake for Flag {
        fn wake(self: Arc<Self>) {
            self.0.store(true, Ordering::SeqCst);
        }
    }

    #[test]
    fn a_close_wakes_a_waiting_watch() {
        // Other tests of this binary may close fds meanwhile: every
        // assertion holds whoever closed.
        let mut watch = Watch::new();
        watch.rearm();
        let flag = Arc::new(Flag(AtomicBool::new(false)));
        let already = watch.wait(&Waker::from(flag.clone()));
        note_closed();
        assert!(watch.freed(), "a close while watching is seen");
        assert!(
            already || flag.0.load(Ordering::SeqCst),
            "the waiter was woken"
        );
    }
}
