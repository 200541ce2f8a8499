//! The state shared by the handles of one mpsc channel, bounded or not.
//!
//! How it works: one `Mutex` guards the message queue, the sender count, the
//! closed flag, the receiver's waker and two [`Waiters`] lists (senders
//! waiting for a slot, futures waiting in `closed()`). An unbounded channel
//! is a bounded one whose capacity is `usize::MAX`.
//!
//! Slots of a bounded channel: `free = cap - queued - reserved`. When a slot
//! frees (a message is received, or a sender gives back a slot it was handed)
//! and a sender waits, the slot is handed to the oldest waiting sender
//! (`reserved += 1`) and only that sender is woken; it pushes its value when
//! it next runs. A new sender can only take a free slot, and no slot is free
//! while senders wait, so waiting senders are served in FIFO order. A send
//! future dropped while holding a handed slot gives it to the next waiter:
//! cancelling a send never steals another sender's wake-up or leaks a slot.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll, Waker};

use super::error::{SendError, TryRecvError, TrySendError};
use crate::sync::waiters::{Waiters, WakeList};
use crate::sync::{charge_budget, lock, poll_budget, set_waker};

pub(super) struct Chan<T> {
    cap: usize,
    state: Mutex<State<T>>,
}

struct State<T> {
    queue: VecDeque<T>,
    /// Slots handed to woken senders that have not pushed yet.
    reserved: usize,
    /// Live `Sender`s (or `UnboundedSender`s).
    senders: usize,
    /// The receiver was closed or dropped: sends fail.
    closed: bool,
    rx_waker: Option<Waker>,
    send_waiters: Waiters,
    closed_waiters: Waiters,
}

impl<T> State<T> {
    fn free(&self, cap: usize) -> usize {
        cap.saturating_sub(self.queue.len() + self.reserved)
    }

    /// Hands one free slot to the oldest waiting sender; returns its waker.
    fn grant_one(&mut self, cap: usize) -> Option<Waker> {
        if self.closed || self.free(cap) == 0 {
            return None;
        }
        let w = self.send_waiters.grant_front();
        if w.is_some() {
            self.reserved += 1;
        }
        w
    }

    /// Queues `value` and takes the receiver's waker (to wake after unlocking).
    fn push(&mut self, value: T) -> Option<Waker> {
        self.queue.push_back(value);
        self.rx_waker.take()
    }
}

fn wake(w: Option<Waker>) {
    if let Some(w) = w {
        w.wake();
    }
}

impl<T> Chan<T> {
    /// A channel for `cap` messages (`usize::MAX`: unbounded), with one sender.
    pub(super) fn new(cap: usize) -> Chan<T> {
        Chan {
            cap,
            state: Mutex::new(State {
                queue: VecDeque::new(),
                reserved: 0,
                senders: 1,
                closed: false,
                rx_waker: None,
                send_waiters: Waiters::default(),
                closed_waiters: Waiters::default(),
            }),
        }
    }

    pub(super) fn max_capacity(&self) -> usize {
        self.cap
    }

    /// Slots a send could take right now.
    pub(super) fn capacity(&self) -> usize {
        lock(&self.state).free(self.cap)
    }

    pub(super) fn len(&self) -> usize {
        lock(&self.state).queue.len()
    }

    /// The receiver was closed or dropped.
    pub(super) fn is_closed(&self) -> bool {
        lock(&self.state).closed
    }

    /// Nothing more can ever be received beyond what is queued.
    pub(super) fn is_rx_closed(&self) -> bool {
        let st = lock(&self.state);
        st.closed || st.senders == 0
    }

    pub(super) fn add_sender(&self) {
        lock(&self.state).senders += 1;
    }

    pub(super) fn drop_sender(&self) {
        let mut st = lock(&self.state);
        st.senders -= 1;
        let w = if st.senders == 0 {
            st.rx_waker.take()
        } else {
            None
        };
        drop(st);
        wake(w);
    }

    /// Sends without waiting.
    pub(super) fn try_send(&self, value: T) -> Result<(), TrySendError<T>> {
        let mut st = lock(&self.state);
        if st.closed {
            return Err(TrySendError::Closed(value));
        }
        if st.free(self.cap) == 0 {
            return Err(TrySendError::Full(value));
        }
        let w = st.push(value);
        drop(st);
        wake(w);
        Ok(())
    }

    /// One step of a waiting send. `value` is `Some` until the send ends;
    /// `key` is the future's node in the waiting list, if it waits.
    pub(super) fn poll_send(
        &self,
        value: &mut Option<T>,
        key: &mut Option<usize>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), SendError<T>>> {
        let mut st = lock(&self.state);
        let may_push = match *key {
            Some(k) if st.send_waiters.is_waiting(k) => {
                if !st.closed {
                    st.send_waiters.update(k, cx.waker());
                    return Poll::Pending;
                }
                st.send_waiters.remove(k);
                *key = None;
                false
            }
            Some(k) => {
                // Woken: either handed a slot, or the channel closed.
                *key = None;
                if st.send_waiters.remove(k) {
                    st.reserved -= 1;
                    !st.closed
                } else {
                    false
                }
            }
            None => {
                if st.closed {
                    false
                } else if st.free(self.cap) > 0 {
                    true
                } else {
                    *key = Some(st.send_waiters.push(cx.waker(), 1));
                    return Poll::Pending;
                }
            }
        };
        let v = value.take().expect("send polled after completion");
        if !may_push {
            return Poll::Ready(Err(SendError(v)));
        }
        let w = st.push(v);
        drop(st);
        wake(w);
        Poll::Ready(Ok(()))
    }

    /// A send future was dropped while waiting: gives back a slot it was
    /// handed to the next waiting sender.
    pub(super) fn cancel_send(&self, key: usize) {
        let mut st = lock(&self.state);
        let w = if st.send_waiters.remove(key) {
            st.reserved -= 1;
            st.grant_one(self.cap)
        } else {
            None
        };
        drop(st);
        wake(w);
    }

    /// `Ready` once the receiver is closed or dropped.
    pub(super) fn poll_closed(&self, key: &mut Option<usize>, cx: &mut Context<'_>) -> Poll<()> {
        let mut st = lock(&self.state);
        if st.closed {
            if let Some(k) = key.take() {
                st.closed_waiters.remove(k);
            }
            return Poll::Ready(());
        }
        match *key {
            Some(k) => st.closed_waiters.update(k, cx.waker()),
            None => *key = Some(st.closed_waiters.push(cx.waker(), 1)),
        }
        Poll::Pending
    }

    pub(super) fn cancel_closed(&self, key: usize) {
        lock(&self.state).closed_waiters.remove(key);
    }

    pub(super) fn poll_recv(&self, cx: &mut Context<'_>) -> Poll<Option<T>> {
        if poll_budget(cx).is_pending() {
            return Poll::Pending;
        }
        let mut st = lock(&self.state);
        if let Some(v) = st.queue.pop_front() {
            let w = st.grant_one(self.cap);
            drop(st);
            wake(w);
            charge_budget();
            return Poll::Ready(Some(v));
        }
        if st.closed || st.senders == 0 {
            return Poll::Ready(None);
        }
        set_waker(&mut st.rx_waker, cx.waker());
        Poll::Pending
    }

    pub(super) fn try_recv(&self) -> Result<T, TryRecvError> {
        let mut st = lock(&self.state);
        if let Some(v) = st.queue.pop_front() {
            let w = st.grant_one(self.cap);
            drop(st);
            wake(w);
            return Ok(v);
        }
        if st.closed || st.senders == 0 {
            Err(TryRecvError::Disconnected)
        } else {
            Err(TryRecvError::Empty)
        }
    }

    /// Closes the channel from the receiving side: sends fail from now on,
    /// waiting senders and `closed()` futures wake; queued messages stay.
    pub(super) fn close(&self) {
        let mut st = lock(&self.state);
        let wakers = Self::close_locked(&mut st);
        drop(st);
        wakers.wake();
    }

    /// The receiver was dropped: closes and drops the queued messages (after
    /// unlocking, since dropping a message may run any code).
    pub(super) fn drop_receiver(&self) {
        let mut st = lock(&self.state);
        let wakers = Self::close_locked(&mut st);
        let queue = std::mem::take(&mut st.queue);
        drop(st);
        wakers.wake();
        drop(queue);
    }

    fn close_locked(st: &mut State<T>) -> WakeList {
        let mut wakers = WakeList::default();
        if st.closed {
            return wakers;
        }
        st.closed = true;
        st.rx_waker = None;
        st.send_waiters.wake_all(&mut wakers);
        st.closed_waiters.wake_all(&mut wakers);
        wakers
    }

    /// Numbers for `Debug`: (queued, capacity now, senders, closed).
    pub(super) fn debug_state(&self) -> (usize, usize, usize, bool) {
        let st = lock(&self.state);
        (st.queue.len(), st.free(self.cap), st.senders, st.closed)
    }

    /// Send futures that wait or hold a handed slot (for tests).
    #[cfg(test)]
    pub(super) fn waiting_senders(&self) -> usize {
        lock(&self.state).send_waiters.nodes()
    }
}

/// Waits in `closed()` until the receiver is closed or dropped; leaves the
/// waiting list when dropped.
pub(super) struct ClosedFuture<'a, T> {
    pub(super) chan: &'a Chan<T>,
    pub(super) key: Option<usize>,
}

impl<T> Future for ClosedFuture<'_, T> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        this.chan.poll_closed(&mut this.key, cx)
    }
}

impl<T> Drop for ClosedFuture<'_, T> {
    fn drop(&mut self) {
        if let Some(k) = self.key.take() {
            self.chan.cancel_closed(k);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::pin::pin;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::{Context, Poll, Wake, Waker};

    use super::Chan;

    /// Counts its wake-ups.
    struct Count(AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn counter() -> (Arc<Count>, Waker) {
        let c = Arc::new(Count(AtomicUsize::new(0)));
        (c.clone(), Waker::from(c))
    }

    #[test]
    fn a_dropped_granted_sender_passes_its_slot_on() {
        let chan = Chan::<u32>::new(1);
        chan.try_send(0).unwrap();
        let (ca, wa) = counter();
        let (cb, wb) = counter();
        let (mut va, mut ka) = (Some(1), None);
        let (mut vb, mut kb) = (Some(2), None);
        assert!(
            chan.poll_send(&mut va, &mut ka, &mut Context::from_waker(&wa))
                .is_pending()
        );
        assert!(
            chan.poll_send(&mut vb, &mut kb, &mut Context::from_waker(&wb))
                .is_pending()
        );
        assert_eq!(chan.waiting_senders(), 2);
        // One slot frees: only the oldest sender is woken and holds it.
        assert_eq!(chan.try_recv(), Ok(0));
        assert_eq!(ca.0.load(Ordering::SeqCst), 1);
        assert_eq!(cb.0.load(Ordering::SeqCst), 0);
        assert_eq!(chan.capacity(), 0);
        // It is dropped before it runs: the slot goes to the next sender.
        chan.cancel_send(ka.take().unwrap());
        assert_eq!(cb.0.load(Ordering::SeqCst), 1);
        let cx = &mut Context::from_waker(&wb);
        assert!(matches!(
            chan.poll_send(&mut vb, &mut kb, cx),
            Poll::Ready(Ok(()))
        ));
        assert_eq!(chan.waiting_senders(), 0);
        assert_eq!(chan.try_recv(), Ok(2));
        assert_eq!(chan.capacity(), 1);
    }

    #[test]
    fn close_wakes_waiting_senders_with_an_error() {
        let chan = Chan::<u32>::new(1);
        chan.try_send(0).unwrap();
        let (ca, wa) = counter();
        let (mut va, mut ka) = (Some(1), None);
        let cx = &mut Context::from_waker(&wa);
        assert!(chan.poll_send(&mut va, &mut ka, cx).is_pending());
        chan.close();
        assert_eq!(ca.0.load(Ordering::SeqCst), 1);
        match chan.poll_send(&mut va, &mut ka, cx) {
            Poll::Ready(Err(e)) => assert_eq!(e.0, 1),
            other => panic!("expected an error, got {:?}", other.is_ready()),
        }
        assert_eq!(chan.waiting_senders(), 0);
        assert_eq!(chan.try_recv(), Ok(0));
        let mut closed = pin!(super::ClosedFuture {
            chan: &chan,
            key: None,
        });
        assert!(closed.as_mut().poll(cx).is_ready());
    }
}
