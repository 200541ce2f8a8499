//! `Notify`: wakes one waiting task, or all of them, without data.
//!
//! How it works: a lock guards a FIFO [`Waiters`] queue and one stored
//! permit. [`Notify::notify_one`] hands the notification to the oldest
//! waiter (a grant), or stores the permit when nobody waits.
//! [`Notify::notify_waiters`] bumps a generation counter and wakes every
//! waiter; a [`Notified`] future remembers the generation it was created
//! in, so it completes even if it was created but not yet polled when the
//! call came. A `Notified` dropped after `notify_one` granted it passes the
//! notification on (to the next waiter, or back to the permit): dropping
//! one never swallows a wake-up.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::flavor::{Flavor, Lock, Word};
use super::waiters::{Waiters, WakeList};

/// Wakes waiting tasks: [`notified`](Self::notified) waits,
/// [`notify_one`](Self::notify_one) and
/// [`notify_waiters`](Self::notify_waiters) wake.
///
/// `notify_one` with nobody waiting stores one permit (several calls still
/// store one), which the next `notified().await` takes without waiting.
/// Waiters are woken in FIFO order.
///
/// ```
/// use std::rc::Rc;
///
/// use corio::sync::Notify;
///
/// corio::run(async {
///     let notify = Rc::new(Notify::new());
///     let n = notify.clone();
///     let waiter = corio::spawn(async move {
///         n.notified().await;
///         "woken"
///     });
///     corio::yield_now().await;
///     notify.notify_one();
///     assert_eq!(waiter.await.unwrap(), "woken");
/// });
/// ```
pub struct Notify<F: Flavor> {
    /// Incremented by every `notify_waiters` (under the lock).
    generation: F::Word,
    state: F::Lock<State>,
}

#[derive(Debug, Default)]
struct State {
    waiters: Waiters,
    permit: bool,
}

impl<F: Flavor> Notify<F> {
    /// A `Notify` with no stored permit.
    pub fn new() -> Self {
        Notify {
            generation: F::Word::new(0),
            state: F::Lock::new(State::default()),
        }
    }

    /// A future that completes on the next notification: a `notify_one`
    /// that picks it (or a stored permit), or any `notify_waiters` called
    /// after this future was created.
    ///
    /// Cancel-safe: if a `notify_one` already picked this future when it
    /// is dropped, the notification goes to the next waiter (or is stored).
    pub fn notified(&self) -> Notified<'_, F> {
        Notified {
            notify: self,
            generation: self.generation.load(),
            key: None,
            done: false,
        }
    }

    /// Wakes the oldest waiting task, or stores a permit for the next
    /// `notified()` if none waits.
    pub fn notify_one(&self) {
        let mut st = self.state.lock();
        let waker = Self::grant_one(&mut st);
        drop(st);
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// Wakes every task waiting now (and every `Notified` created before
    /// this call); stores no permit.
    pub fn notify_waiters(&self) {
        let mut wakers = WakeList::default();
        let mut st = self.state.lock();
        self.generation.fetch_add(1);
        st.waiters.wake_all(&mut wakers);
        drop(st);
        wakers.wake();
    }

    fn grant_one(st: &mut State) -> Option<std::task::Waker> {
        let w = st.waiters.grant_front();
        if w.is_none() {
            st.permit = true;
        }
        w
    }
}

impl<F: Flavor> Default for Notify<F> {
    fn default() -> Self {
        Notify::new()
    }
}

impl<F: Flavor> fmt::Debug for Notify<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = self.state.lock();
        f.debug_struct("Notify")
            .field("waiters", &st.waiters.len())
            .field("permit", &st.permit)
            .finish()
    }
}

/// Waits for a notification; from [`Notify::notified`].
#[must_use = "futures do nothing unless polled"]
pub struct Notified<'a, F: Flavor> {
    notify: &'a Notify<F>,
    generation: usize,
    key: Option<usize>,
    done: bool,
}

impl<F: Flavor> Future for Notified<'_, F> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        if this.done {
            return Poll::Ready(());
        }
        let notify = this.notify;
        let mut st = notify.state.lock();
        if let Some(k) = this.key {
            if st.waiters.is_waiting(k) {
                st.waiters.update(k, cx.waker());
                return Poll::Pending;
            }
            // Woken by notify_one (granted) or notify_waiters.
            st.waiters.remove(k);
            this.key = None;
        } else if notify.generation.load() == this.generation && !std::mem::take(&mut st.permit) {
            this.key = Some(st.waiters.push(cx.waker(), 1));
            return Poll::Pending;
        }
        this.done = true;
        Poll::Ready(())
    }
}

impl<F: Flavor> Drop for Notified<'_, F> {
    fn drop(&mut self) {
        let Some(k) = self.key.take() else { return };
        let mut st = self.notify.state.lock();
        let waker = if st.waiters.remove(k) {
            // Granted by notify_one but never used: pass it on.
            Notify::<F>::grant_one(&mut st)
        } else {
            None
        };
        drop(st);
        if let Some(w) = waker {
            w.wake();
        }
    }
}

impl<F: Flavor> fmt::Debug for Notified<'_, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Notified")
            .field("waiting", &self.key.is_some())
            .finish()
    }
}
