//! `Event`: asyncio's event, a flag that tasks wait to see set.
//!
//! How it works: the flag lives in a word that [`Event::is_set`] and a
//! set event's [`Event::wait`] read without locking; waiters queue under a
//! lock, and [`Event::set`] raises the flag and wakes (grants) them all
//! under that lock, so a waiter either sees the flag or is in the queue
//! when it is raised. A waiter woken by `set` completes even if `clear`
//! came before it ran, as in asyncio.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::flavor::{Flavor, Lock, Word};
use super::waiters::{Waiters, WakeList};

/// asyncio's `Event`: [`set`](Self::set) raises a flag and wakes every task
/// in [`wait`](Self::wait); [`clear`](Self::clear) lowers it; `wait` on a
/// set event returns at once.
///
/// ```
/// use std::rc::Rc;
///
/// use corio::sync::Event;
///
/// corio::run(async {
///     let ready = Rc::new(Event::new());
///     let waiters: Vec<_> = (0..3)
///         .map(|i| {
///             let ready = ready.clone();
///             corio::spawn(async move {
///                 ready.wait().await;
///                 i
///             })
///         })
///         .collect();
///     corio::yield_now().await;
///     assert!(!ready.is_set());
///     ready.set();
///     for w in waiters {
///         w.await.unwrap();
///     }
///     ready.wait().await; // set: returns at once
/// });
/// ```
pub struct Event<F: Flavor> {
    /// 1 while set.
    flag: F::Word,
    waiters: F::Lock<Waiters>,
}

impl<F: Flavor> Event<F> {
    /// An event that is not set.
    pub fn new() -> Self {
        Event {
            flag: F::Word::new(0),
            waiters: F::Lock::new(Waiters::default()),
        }
    }

    /// True while the event is set.
    pub fn is_set(&self) -> bool {
        self.flag.load() != 0
    }

    /// Sets the event: every task in `wait` wakes, and `wait` returns at
    /// once until [`clear`](Self::clear).
    pub fn set(&self) {
        if self.is_set() {
            return;
        }
        let mut wakers = WakeList::default();
        let mut w = self.waiters.lock();
        self.flag.fetch_or(1);
        w.grant_all(&mut wakers);
        drop(w);
        wakers.wake();
    }

    /// Clears the event: `wait` waits again until the next `set`.
    pub fn clear(&self) {
        self.flag.fetch_and(0);
    }

    /// Waits until the event is set; returns at once if it is.
    ///
    /// Cancel-safe: dropping the future only leaves the queue.
    pub fn wait(&self) -> EventWait<'_, F> {
        EventWait {
            event: self,
            key: None,
        }
    }
}

impl<F: Flavor> Default for Event<F> {
    fn default() -> Self {
        Event::new()
    }
}

impl<F: Flavor> fmt::Debug for Event<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Event")
            .field("is_set", &self.is_set())
            .finish()
    }
}

/// Waits for an [`Event`] to be set; from [`Event::wait`].
#[must_use = "futures do nothing unless polled"]
pub struct EventWait<'a, F: Flavor> {
    event: &'a Event<F>,
    key: Option<usize>,
}

impl<F: Flavor> Future for EventWait<'_, F> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        if this.key.is_none() && this.event.is_set() {
            return Poll::Ready(());
        }
        let mut w = this.event.waiters.lock();
        match this.key {
            Some(k) if w.is_waiting(k) => {
                w.update(k, cx.waker());
                Poll::Pending
            }
            Some(k) => {
                // Woken by `set`, even if cleared since.
                w.remove(k);
                this.key = None;
                Poll::Ready(())
            }
            None if this.event.is_set() => Poll::Ready(()),
            None => {
                this.key = Some(w.push(cx.waker(), 1));
                Poll::Pending
            }
        }
    }
}

impl<F: Flavor> Drop for EventWait<'_, F> {
    fn drop(&mut self) {
        if let Some(k) = self.key.take() {
            self.event.waiters.lock().remove(k);
        }
    }
}

impl<F: Flavor> fmt::Debug for EventWait<'_, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventWait")
            .field("waiting", &self.key.is_some())
            .finish()
    }
}
