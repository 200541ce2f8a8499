//! Accept back-off: after a listener runs out of fds, its next accept waits.
//!
//! How it works: when an accept fails with `EMFILE`, `ENFILE`, `ENOBUFS` or
//! `ENOMEM`, the error goes to the caller as it is, and the listener starts
//! a back-off: its next accept (`accept` or `incoming`, on any task) first
//! waits until the runtime closes an fd (`freed.rs` wakes it) or a delay
//! passes — 1 ms after the first failure, doubling with each failure in a
//! row up to 100 ms. A successful accept ends the back-off. A loop that
//! retries at once on such errors therefore costs a few syscalls per
//! second instead of a core, and still serves the next client as soon as
//! an fd is free. Other errors leave the back-off as it is.

use std::cell::Cell;
use std::future::{Future, poll_fn};
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use crate::freed::Watch;
use crate::time::{Sleep, sleep_until};

/// The first delay after an accept ran out of fds.
const FIRST: Duration = Duration::from_millis(1);
/// The longest delay.
const MAX: Duration = Duration::from_millis(100);

/// True for the errors that mean "out of fds or memory": retrying at once
/// fails again until something is freed.
pub(crate) fn is_exhaustion(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}

/// One listener's back-off; empty (one null pointer) while accepts succeed.
#[derive(Default)]
pub(crate) struct AcceptBackoff(Cell<Option<Box<Episode>>>);

impl std::fmt::Debug for AcceptBackoff {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ep = self.0.take();
        let r = f.debug_tuple("AcceptBackoff").field(&ep).finish();
        self.0.set(ep);
        r
    }
}

/// A run of failed accepts.
#[derive(Debug)]
struct Episode {
    /// Sees the fds the runtime closes.
    watch: Watch,
    /// The next accept may go once an fd was freed or at this instant.
    until: Instant,
    /// The delay that set `until`.
    delay: Duration,
}

impl AcceptBackoff {
    /// Records an accept's result: an exhaustion error starts the back-off
    /// or doubles its delay, a success ends it.
    pub(crate) fn record<T>(&self, res: &io::Result<T>) {
        match res {
            Ok(_) => drop(self.0.take()),
            Err(e) if is_exhaustion(e) => {
                let now = Instant::now();
                let ep = match self.0.take() {
                    Some(mut ep) => {
                        ep.delay = (ep.delay * 2).min(MAX);
                        ep.until = now + ep.delay;
                        ep.watch.rearm();
                        ep
                    }
                    None => Box::new(Episode {
                        watch: Watch::new(),
                        until: now + FIRST,
                        delay: FIRST,
                    }),
                };
                self.0.set(Some(ep));
            }
            Err(_) => {}
        }
    }

    /// True while accepts on this listener back off.
    #[cfg(test)]
    pub(crate) fn active(&self) -> bool {
        let ep = self.0.take();
        let active = ep.is_some();
        self.0.set(ep);
        active
    }

    /// Ready when the next accept may go: no back-off, an fd was freed
    /// since the last failure, or the delay has passed. `sleep` is the
    /// caller's timer for this wait, made (boxed: a back-off is rare, and an
    /// accept future should stay small) only when the wait must sleep.
    pub(crate) fn poll_wait(
        &self,
        cx: &mut Context<'_>,
        sleep: &mut Option<Box<Sleep>>,
    ) -> Poll<()> {
        let Some(ep) = self.0.take() else {
            *sleep = None;
            return Poll::Ready(());
        };
        let mut ready = ep.watch.freed() || Instant::now() >= ep.until || ep.watch.wait(cx.waker());
        if !ready {
            let timer = sleep.get_or_insert_with(|| Box::new(sleep_until(ep.until)));
            if timer.deadline() != ep.until {
                timer.reset(ep.until);
            }
            ready = Pin::new(&mut **timer).poll(cx).is_ready();
        }
        self.0.set(Some(ep));
        if ready {
            *sleep = None;
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }

    /// Waits until the next accept may go (see [`poll_wait`](Self::poll_wait)).
    pub(crate) async fn wait(&self) {
        let mut sleep = None;
        poll_fn(|cx| self.poll_wait(cx, &mut sleep)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(code: i32) -> io::Result<()> {
        Err(io::Error::from_raw_os_error(code))
    }

    #[test]
    fn exhaustion_starts_and_doubles_and_success_ends_it() {
        let b = AcceptBackoff::default();
        b.record(&err(libc::ECONNABORTED));
        assert!(!b.active(), "other errors start nothing");
        b.record(&err(libc::EMFILE));
        assert!(b.active());
        let mut delays = Vec::new();
        for code in [
            libc::ENFILE,
            libc::ENOBUFS,
            libc::ENOMEM,
            libc::EMFILE,
            libc::EMFILE,
        ] {
            b.record(&err(code));
            let ep = b.0.take().unwrap();
            delays.push(ep.delay.as_millis());
            b.0.set(Some(ep));
        }
        b.record(&err(libc::EMFILE));
        b.record(&err(libc::EMFILE));
        let ep = b.0.take().unwrap();
        delays.push(ep.delay.as_millis());
        b.0.set(Some(ep));
        assert_eq!(delays, [2, 4, 8, 16, 32, 100]);
        b.record(&err(libc::ECONNABORTED));
        assert!(b.active(), "other errors leave it");
        b.record(&Ok(()));
        assert!(!b.active());
    }

    #[test]
    fn the_wait_is_ready_without_a_back_off_or_once_the_delay_passed() {
        let b = AcceptBackoff::default();
        let mut cx = Context::from_waker(std::task::Waker::noop());
        let mut sleep = None;
        assert!(b.poll_wait(&mut cx, &mut sleep).is_ready());
        b.record(&err(libc::EMFILE));
        let mut ep = b.0.take().unwrap();
        ep.until = Instant::now();
        b.0.set(Some(ep));
        assert!(b.poll_wait(&mut cx, &mut sleep).is_ready());
        assert!(sleep.is_none());
    }
}
