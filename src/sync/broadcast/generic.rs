//! The broadcast channel, generic over its [`Flavor`].
//!
//! How it works: see the module docs one level up.

use std::fmt;
use std::future::poll_fn;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::error::{RecvError, SendError, TryRecvError};
use crate::sync::flavor::{Flavor, Lock, Shared};
use crate::sync::waiters::{Waiters, WakeList};
use crate::sync::{block_on, charge_budget, poll_budget};

struct Slot<T> {
    /// Sequence number of the value in `value` (or last held).
    seq: u64,
    /// Receivers that have yet to read it.
    rem: usize,
    value: Option<T>,
}

struct State<T> {
    slots: Box<[Slot<T>]>,
    /// Sequence number of the next value sent.
    tail: u64,
    receivers: usize,
    senders: usize,
    /// Receivers waiting for a value.
    waiters: Waiters,
}

struct Chan<T, F: Flavor> {
    mask: u64,
    state: F::Lock<State<T>>,
}

/// Creates a channel; see [`corio::sync::broadcast::channel`](crate::sync::broadcast::channel).
///
/// # Panics
///
/// Panics if `capacity` is 0 or larger than `usize::MAX / 2`.
pub fn channel<T: Clone, F: Flavor>(capacity: usize) -> (Sender<T, F>, Receiver<T, F>) {
    assert!(
        capacity > 0,
        "broadcast channel capacity must be at least 1"
    );
    assert!(
        capacity <= usize::MAX / 2,
        "broadcast channel capacity too large"
    );
    let cap = capacity.next_power_of_two();
    let slots = (0..cap)
        .map(|_| Slot {
            seq: u64::MAX,
            rem: 0,
            value: None,
        })
        .collect();
    let chan = F::ptr(Chan {
        mask: cap as u64 - 1,
        state: F::Lock::new(State {
            slots,
            tail: 0,
            receivers: 1,
            senders: 1,
            waiters: Waiters::default(),
        }),
    });
    let rx = Receiver {
        chan: chan.clone(),
        next: 0,
        key: None,
    };
    (Sender { chan }, rx)
}

/// Sends values to every receiver; clone it for more senders.
///
/// When the last sender is dropped, receivers get the values still held
/// and then [`RecvError::Closed`].
pub struct Sender<T, F: Flavor> {
    chan: F::Ptr<Chan<T, F>>,
}

/// Receives every value sent after it was created (or subscribed).
pub struct Receiver<T, F: Flavor> {
    chan: F::Ptr<Chan<T, F>>,
    /// Sequence number of the next value to read.
    next: u64,
    /// Node in the waiting queue while a receive waits.
    key: Option<usize>,
}

impl<T, F: Flavor> Sender<T, F> {
    /// Sends `value` to every receiver; never waits. Returns how many
    /// receivers will see it, or hands it back if there are none.
    ///
    /// When the channel is full the oldest value is dropped, and receivers
    /// that had not read it get [`RecvError::Lagged`].
    pub fn send(&self, value: T) -> Result<usize, SendError<T>> {
        let mut wakers = WakeList::default();
        let mut st = self.chan.state.lock();
        if st.receivers == 0 {
            return Err(SendError(value));
        }
        let receivers = st.receivers;
        let seq = st.tail;
        let slot = &mut st.slots[(seq & self.chan.mask) as usize];
        slot.seq = seq;
        slot.rem = receivers;
        let old = slot.value.replace(value);
        st.tail += 1;
        st.waiters.grant_all(&mut wakers);
        drop(st);
        wakers.wake();
        // Dropped outside the lock: a value's drop may run any code.
        drop(old);
        Ok(receivers)
    }

    /// A new receiver that sees the values sent from now on.
    pub fn subscribe(&self) -> Receiver<T, F> {
        new_receiver(&self.chan)
    }

    /// Receivers alive now.
    pub fn receiver_count(&self) -> usize {
        self.chan.state.lock().receivers
    }

    /// True if both senders belong to the same channel.
    pub fn same_channel(&self, other: &Self) -> bool {
        F::ptr_eq(&self.chan, &other.chan)
    }
}

fn new_receiver<T, F: Flavor>(chan: &F::Ptr<Chan<T, F>>) -> Receiver<T, F> {
    let mut st = chan.state.lock();
    st.receivers += 1;
    let next = st.tail;
    drop(st);
    Receiver {
        chan: chan.clone(),
        next,
        key: None,
    }
}

impl<T, F: Flavor> Clone for Sender<T, F> {
    fn clone(&self) -> Self {
        self.chan.state.lock().senders += 1;
        Sender {
            chan: self.chan.clone(),
        }
    }
}

impl<T, F: Flavor> Drop for Sender<T, F> {
    fn drop(&mut self) {
        let mut wakers = WakeList::default();
        let mut st = self.chan.state.lock();
        st.senders -= 1;
        if st.senders == 0 {
            st.waiters.wake_all(&mut wakers);
        }
        drop(st);
        wakers.wake();
    }
}

impl<T: Clone, F: Flavor> Receiver<T, F> {
    /// Receives the next value, waiting until one is sent.
    ///
    /// `Err(Lagged(n))` when `n` values were overwritten before this
    /// receiver read them (the next call returns the oldest value held);
    /// `Err(Closed)` once every sender is gone and every value was read.
    ///
    /// Cancel-safe: a dropped `recv()` takes nothing.
    pub async fn recv(&mut self) -> Result<T, RecvError> {
        poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// Poll form of [`recv`](Self::recv).
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Result<T, RecvError>> {
        if poll_budget(cx).is_pending() {
            return Poll::Pending;
        }
        let mut st = self.chan.state.lock();
        if let Some(k) = self.key.take() {
            st.waiters.remove(k);
        }
        match take(&mut self.next, self.chan.mask, &mut st) {
            Err(TryRecvError::Empty) => {
                self.key = Some(st.waiters.push(cx.waker(), 1));
                Poll::Pending
            }
            Err(TryRecvError::Closed) => Poll::Ready(Err(RecvError::Closed)),
            Err(TryRecvError::Lagged(n)) => Poll::Ready(Err(RecvError::Lagged(n))),
            Ok(v) => {
                drop(st);
                charge_budget();
                Poll::Ready(Ok(v))
            }
        }
    }

    /// Takes the next value if one was sent, without waiting.
    pub fn try_recv(&mut self) -> Result<T, TryRecvError> {
        let mut st = self.chan.state.lock();
        take(&mut self.next, self.chan.mask, &mut st)
    }
}

/// Takes the value numbered `*next` (moving it out if this is its last
/// reader), or says why not.
fn take<T: Clone>(next: &mut u64, mask: u64, st: &mut State<T>) -> Result<T, TryRecvError> {
    if *next == st.tail {
        return Err(if st.senders == 0 {
            TryRecvError::Closed
        } else {
            TryRecvError::Empty
        });
    }
    let slot = &mut st.slots[(*next & mask) as usize];
    if slot.seq != *next {
        // Overwritten: go on from the oldest value still held.
        let oldest = st.tail - (mask + 1);
        let missed = oldest - *next;
        *next = oldest;
        return Err(TryRecvError::Lagged(missed));
    }
    *next += 1;
    slot.rem -= 1;
    let value = if slot.rem == 0 {
        slot.value.take()
    } else {
        slot.value.clone()
    };
    Ok(value.expect("a slot not yet read by every receiver holds its value"))
}

impl<T, F: Flavor> Receiver<T, F> {
    /// A new receiver that sees the values sent from now on (not those
    /// this one has yet to read).
    pub fn resubscribe(&self) -> Self {
        new_receiver(&self.chan)
    }

    /// Values sent that this receiver has not read yet (some may have been
    /// overwritten: the next receive then reports the lag).
    pub fn len(&self) -> usize {
        (self.chan.state.lock().tail - self.next) as usize
    }

    /// True when nothing new was sent.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// True if both receivers belong to the same channel.
    pub fn same_channel(&self, other: &Self) -> bool {
        F::ptr_eq(&self.chan, &other.chan)
    }
}

impl<T: Clone> Receiver<T, Shared> {
    /// [`recv`](Self::recv) from a plain thread, blocking it.
    ///
    /// # Panics
    ///
    /// Panics when called from a thread that runs a corio runtime.
    #[track_caller]
    pub fn blocking_recv(&mut self) -> Result<T, RecvError> {
        block_on("broadcast::Receiver::blocking_recv", self.recv())
    }
}

impl<T, F: Flavor> Drop for Receiver<T, F> {
    fn drop(&mut self) {
        let mut st = self.chan.state.lock();
        if let Some(k) = self.key.take() {
            st.waiters.remove(k);
        }
        st.receivers -= 1;
        // Values this receiver never read no longer wait for it.
        let mut unread = Vec::new();
        for seq in self.next..st.tail {
            let slot = &mut st.slots[(seq & self.chan.mask) as usize];
            if slot.seq == seq {
                slot.rem -= 1;
                if slot.rem == 0 {
                    unread.extend(slot.value.take());
                }
            }
        }
        drop(st);
        drop(unread);
    }
}

/// Yields each value; a lag comes as `Err(RecvError::Lagged(n))`, and the
/// stream ends (`None`) when the channel is closed. Cancel-safe.
impl<T: Clone, F: Flavor> futures_core::Stream for Receiver<T, F> {
    type Item = Result<T, RecvError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match self.get_mut().poll_recv(cx) {
            Poll::Ready(Err(RecvError::Closed)) => Poll::Ready(None),
            Poll::Ready(r) => Poll::Ready(Some(r)),
            Poll::Pending => Poll::Pending,
        }
    }
}

// Receivers are polled through `&mut self` only; nothing is pinned.
impl<T, F: Flavor> Unpin for Receiver<T, F> {}

impl<T, F: Flavor> fmt::Debug for Sender<T, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = self.chan.state.lock();
        f.debug_struct("Sender")
            .field("receivers", &st.receivers)
            .field("senders", &st.senders)
            .finish()
    }
}

impl<T, F: Flavor> fmt::Debug for Receiver<T, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receiver")
            .field("next", &self.next)
            .finish()
    }
}
