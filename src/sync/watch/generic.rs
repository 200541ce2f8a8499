//! The watch channel, generic over its [`Flavor`].
//!
//! How it works: see the module docs one level up.

use std::fmt;
use std::future::poll_fn;
use std::ops::Deref;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::error::{RecvError, SendError};
use crate::sync::flavor::{Flavor, Lock, RwCell, Shared, Word};
use crate::sync::waiters::{Waiters, WakeList};
use crate::sync::{block_on, charge_budget, poll_budget};

/// Set in `version` when the sender is gone.
const CLOSED: usize = 1;
/// Each send adds this to `version`.
const STEP: usize = 2;

struct Chan<T, F: Flavor> {
    value: F::RwCell<T>,
    /// Sends × `STEP`, plus `CLOSED`.
    version: F::Word,
    state: F::Lock<State>,
}

#[derive(Default)]
struct State {
    receivers: usize,
    /// Receivers waiting in `changed`.
    changed: Waiters,
    /// The sender waiting in `closed`.
    closed: Waiters,
}

/// Creates a channel; see [`corio::sync::watch::channel`](crate::sync::watch::channel).
pub fn channel<T, F: Flavor>(init: T) -> (Sender<T, F>, Receiver<T, F>) {
    let chan = F::ptr(Chan {
        value: F::RwCell::new(init),
        version: F::Word::new(0),
        state: F::Lock::new(State {
            receivers: 1,
            ..State::default()
        }),
    });
    let rx = Receiver {
        chan: chan.clone(),
        seen: 0,
        key: None,
    };
    (Sender { chan }, rx)
}

/// Sets the watched value. Dropping it closes the channel: receivers keep
/// the last value and their `changed` returns an error.
pub struct Sender<T, F: Flavor> {
    chan: F::Ptr<Chan<T, F>>,
}

/// Watches the value of a [`Sender`]; clone it for more watchers.
pub struct Receiver<T, F: Flavor> {
    chan: F::Ptr<Chan<T, F>>,
    /// The version this receiver has seen (without the `CLOSED` bit).
    seen: usize,
    key: Option<usize>,
}

/// A borrow of the watched value; holds a read lock on it.
///
/// Hold it briefly: the sender waits (or, for the local flavor, panics)
/// while a `Ref` exists; never hold one across an `.await`.
pub struct Ref<'a, T: 'a, F: Flavor> {
    inner: <F::RwCell<T> as RwCell<T>>::Read<'a>,
    has_changed: bool,
}

impl<T, F: Flavor> Ref<'_, T, F> {
    /// True if the value had not been seen by the receiver when it was
    /// borrowed (always false for a borrow through the sender).
    pub fn has_changed(&self) -> bool {
        self.has_changed
    }
}

impl<T, F: Flavor> Deref for Ref<'_, T, F> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.inner
    }
}

impl<T: fmt::Debug, F: Flavor> fmt::Debug for Ref<'_, T, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T, F: Flavor> Chan<T, F> {
    /// Wakes the receivers waiting for a new version. The version itself
    /// is counted by the sender while it still holds the value's write
    /// lock: a receiver reads value and version under the read lock, so it
    /// never pairs a new value with the old version (and sees it twice).
    fn notify(&self) {
        let mut wakers = WakeList::default();
        let mut st = self.state.lock();
        st.changed.grant_all(&mut wakers);
        drop(st);
        wakers.wake();
    }
}

impl<T, F: Flavor> Sender<T, F> {
    /// Replaces the value and notifies the receivers; fails, handing the
    /// value back, when no receiver is left.
    pub fn send(&self, value: T) -> Result<(), SendError<T>> {
        if self.receiver_count() == 0 {
            return Err(SendError(value));
        }
        self.send_replace(value);
        Ok(())
    }

    /// Replaces the value even with no receiver left, notifies the
    /// receivers, and returns the old value.
    pub fn send_replace(&self, value: T) -> T {
        let old = {
            let mut guard = self.chan.value.write();
            let old = std::mem::replace(&mut *guard, value);
            self.chan.version.fetch_add(STEP);
            old
        };
        self.chan.notify();
        old
    }

    /// Changes the value in place and notifies the receivers.
    pub fn send_modify(&self, modify: impl FnOnce(&mut T)) {
        self.send_if_modified(|v| {
            modify(v);
            true
        });
    }

    /// Changes the value in place; notifies the receivers only if `modify`
    /// returns true (it says whether it changed anything). Returns that.
    pub fn send_if_modified(&self, modify: impl FnOnce(&mut T) -> bool) -> bool {
        let changed = {
            let mut guard = self.chan.value.write();
            let changed = modify(&mut guard);
            if changed {
                self.chan.version.fetch_add(STEP);
            }
            changed
        };
        if changed {
            self.chan.notify();
        }
        changed
    }

    /// Borrows the current value.
    pub fn borrow(&self) -> Ref<'_, T, F> {
        Ref {
            inner: self.chan.value.read(),
            has_changed: false,
        }
    }

    /// A new receiver, which has seen the current value.
    pub fn subscribe(&self) -> Receiver<T, F> {
        self.chan.state.lock().receivers += 1;
        Receiver {
            chan: self.chan.clone(),
            seen: self.chan.version.load() & !CLOSED,
            key: None,
        }
    }

    /// Receivers alive now.
    pub fn receiver_count(&self) -> usize {
        self.chan.state.lock().receivers
    }

    /// True when no receiver is left.
    pub fn is_closed(&self) -> bool {
        self.receiver_count() == 0
    }

    /// Waits until every receiver is gone. Cancel-safe.
    pub async fn closed(&self) {
        Closed {
            chan: &*self.chan,
            key: None,
        }
        .await
    }
}

/// The sender's wait in [`Sender::closed`]; leaves the queue when dropped.
struct Closed<'a, T, F: Flavor> {
    chan: &'a Chan<T, F>,
    key: Option<usize>,
}

impl<T, F: Flavor> std::future::Future for Closed<'_, T, F> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        let mut st = this.chan.state.lock();
        if let Some(k) = this.key.take() {
            st.closed.remove(k);
        }
        if st.receivers == 0 {
            return Poll::Ready(());
        }
        this.key = Some(st.closed.push(cx.waker(), 1));
        Poll::Pending
    }
}

impl<T, F: Flavor> Drop for Closed<'_, T, F> {
    fn drop(&mut self) {
        if let Some(k) = self.key.take() {
            self.chan.state.lock().closed.remove(k);
        }
    }
}

impl<T, F: Flavor> Drop for Sender<T, F> {
    fn drop(&mut self) {
        let mut wakers = WakeList::default();
        let mut st = self.chan.state.lock();
        self.chan.version.fetch_or(CLOSED);
        st.changed.wake_all(&mut wakers);
        drop(st);
        wakers.wake();
    }
}

impl<T, F: Flavor> Receiver<T, F> {
    /// Borrows the latest value, without marking it seen.
    pub fn borrow(&self) -> Ref<'_, T, F> {
        let version = self.chan.version.load() & !CLOSED;
        Ref {
            inner: self.chan.value.read(),
            has_changed: version != self.seen,
        }
    }

    /// Borrows the latest value and marks it seen.
    pub fn borrow_and_update(&mut self) -> Ref<'_, T, F> {
        let inner = self.chan.value.read();
        // Read under the value's lock: a send cannot slip in between.
        let version = self.chan.version.load() & !CLOSED;
        let has_changed = version != self.seen;
        self.seen = version;
        Ref { inner, has_changed }
    }

    /// True if a value this receiver has not seen is there;
    /// `Err` once the sender is gone.
    pub fn has_changed(&self) -> Result<bool, RecvError> {
        let v = self.chan.version.load();
        if v & CLOSED != 0 {
            return Err(RecvError(()));
        }
        Ok(v != self.seen)
    }

    /// Marks the current value unseen: the next `changed()` returns at once.
    pub fn mark_changed(&mut self) {
        self.seen = (self.chan.version.load() & !CLOSED).wrapping_sub(STEP);
    }

    /// Marks the current value seen.
    pub fn mark_unchanged(&mut self) {
        self.seen = self.chan.version.load() & !CLOSED;
    }

    /// Waits for a value this receiver has not seen, and marks it seen.
    /// `Err` when the sender is gone and no unseen value is left.
    ///
    /// Cancel-safe: a dropped `changed()` marks nothing seen.
    pub async fn changed(&mut self) -> Result<(), RecvError> {
        poll_fn(|cx| self.poll_changed(cx)).await
    }

    /// Poll form of [`changed`](Self::changed).
    pub fn poll_changed(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), RecvError>> {
        if poll_budget(cx).is_pending() {
            return Poll::Pending;
        }
        let mut st = self.chan.state.lock();
        if let Some(k) = self.key.take() {
            st.changed.remove(k);
        }
        let v = self.chan.version.load();
        if v & !CLOSED != self.seen {
            self.seen = v & !CLOSED;
            drop(st);
            charge_budget();
            return Poll::Ready(Ok(()));
        }
        if v & CLOSED != 0 {
            return Poll::Ready(Err(RecvError(())));
        }
        self.key = Some(st.changed.push(cx.waker(), 1));
        Poll::Pending
    }

    /// Waits until the value satisfies `pred` (checking the current one
    /// first), marks it seen and returns a borrow of it. `Err` when the
    /// sender is gone first.
    pub async fn wait_for(
        &mut self,
        mut pred: impl FnMut(&T) -> bool,
    ) -> Result<Ref<'_, T, F>, RecvError> {
        loop {
            if pred(&self.borrow_and_update()) {
                break;
            }
            self.changed().await?;
        }
        Ok(self.borrow_and_update())
    }

    /// True if both receivers watch the same channel.
    pub fn same_channel(&self, other: &Self) -> bool {
        F::ptr_eq(&self.chan, &other.chan)
    }
}

impl<T> Receiver<T, Shared> {
    /// [`changed`](Self::changed) from a plain thread, blocking it.
    ///
    /// # Panics
    ///
    /// Panics when called from a thread that runs a corio runtime.
    #[track_caller]
    pub fn blocking_changed(&mut self) -> Result<(), RecvError> {
        block_on("watch::Receiver::blocking_changed", self.changed())
    }
}

impl<T, F: Flavor> Clone for Receiver<T, F> {
    fn clone(&self) -> Self {
        self.chan.state.lock().receivers += 1;
        Receiver {
            chan: self.chan.clone(),
            seen: self.seen,
            key: None,
        }
    }
}

impl<T, F: Flavor> Drop for Receiver<T, F> {
    fn drop(&mut self) {
        let mut wakers = WakeList::default();
        let mut st = self.chan.state.lock();
        if let Some(k) = self.key.take() {
            st.changed.remove(k);
        }
        st.receivers -= 1;
        if st.receivers == 0 {
            st.closed.grant_all(&mut wakers);
        }
        drop(st);
        wakers.wake();
    }
}

/// Yields a clone of the value each time it changes (not the value seen
/// when the receiver was made: call [`Receiver::mark_changed`] first for
/// that); ends when the sender is gone. Cancel-safe.
impl<T: Clone, F: Flavor> futures_core::Stream for Receiver<T, F> {
    type Item = T;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let this = self.get_mut();
        match this.poll_changed(cx) {
            Poll::Ready(Ok(())) => Poll::Ready(Some(this.borrow_and_update().clone())),
            Poll::Ready(Err(_)) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }
}

// Polled through `&mut self` only; nothing is pinned.
impl<T, F: Flavor> Unpin for Receiver<T, F> {}

impl<T: fmt::Debug, F: Flavor> fmt::Debug for Sender<T, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sender")
            .field("value", &*self.borrow())
            .finish()
    }
}

impl<T: fmt::Debug, F: Flavor> fmt::Debug for Receiver<T, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receiver")
            .field("value", &*self.borrow())
            .field("seen", &self.seen)
            .finish()
    }
}
