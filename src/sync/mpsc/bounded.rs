//! The bounded channel's handles: [`Sender`] (waits while full) and [`Receiver`].

use std::fmt;
use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use super::chan::{Chan, ClosedFuture};
use super::error::{SendError, TryRecvError, TrySendError};
use crate::runtime::coop;
use crate::sync::block_on;

/// Creates a channel that buffers up to `buffer` messages.
///
/// When the buffer is full, [`Sender::send`] waits for room: back-pressure.
///
/// # Panics
///
/// Panics if `buffer` is 0.
pub fn channel<T>(buffer: usize) -> (Sender<T>, Receiver<T>) {
    assert!(buffer > 0, "mpsc bounded channel requires buffer > 0");
    let chan = Arc::new(Chan::new(buffer));
    (Sender { chan: chan.clone() }, Receiver { chan })
}

/// Sends messages to a bounded channel. Clone it for more producers.
///
/// The channel stays open for receiving until every `Sender` is dropped.
pub struct Sender<T> {
    chan: Arc<Chan<T>>,
}

/// Receives the messages of a bounded channel.
///
/// Dropping it closes the channel: sends fail from then on, senders waiting
/// for room wake with an error, and queued messages are dropped.
pub struct Receiver<T> {
    chan: Arc<Chan<T>>,
}

/// A send waiting for room; leaves the queue (passing on a slot it was
/// handed) when dropped.
struct SendFuture<'a, T> {
    chan: &'a Chan<T>,
    value: Option<T>,
    key: Option<usize>,
}

// The value is never pinned: it is only moved out by `poll` and `Drop`.
impl<T> Unpin for SendFuture<'_, T> {}

impl<T> Future for SendFuture<'_, T> {
    type Output = Result<(), SendError<T>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        this.chan.poll_send(&mut this.value, &mut this.key, cx)
    }
}

impl<T> Drop for SendFuture<'_, T> {
    fn drop(&mut self) {
        if let Some(k) = self.key.take() {
            self.chan.cancel_send(k);
        }
    }
}

impl<T> Sender<T> {
    /// Sends `value`, waiting while the channel is full.
    ///
    /// Returns `Err(SendError(value))` if the receiver is dropped or closed,
    /// including while this send waits. Senders that wait are served in the
    /// order they started waiting, one per freed slot.
    ///
    /// Cancel-safe in the sense that matters: dropping the future before it
    /// completes sends nothing, and a slot that was handed to it passes on to
    /// the next waiting sender. The value is dropped with the future.
    pub async fn send(&self, value: T) -> Result<(), SendError<T>> {
        coop::yield_if_spent().await;
        let res = SendFuture {
            chan: &self.chan,
            value: Some(value),
            key: None,
        }
        .await;
        if res.is_ok() {
            coop::charge();
        }
        res
    }

    /// Sends `value` if there is room now, without waiting.
    pub fn try_send(&self, value: T) -> Result<(), TrySendError<T>> {
        self.chan.try_send(value)
    }

    /// Sends `value` from a plain thread, blocking it while the channel is full.
    ///
    /// # Panics
    ///
    /// Panics when called from a thread that runs a corio runtime.
    #[track_caller]
    pub fn blocking_send(&self, value: T) -> Result<(), SendError<T>> {
        block_on("mpsc::Sender::blocking_send", self.send(value))
    }

    /// Waits until the receiver is dropped or closed. Cancel-safe.
    pub async fn closed(&self) {
        ClosedFuture {
            chan: &self.chan,
            key: None,
        }
        .await
    }

    /// True once the receiver is dropped or closed.
    pub fn is_closed(&self) -> bool {
        self.chan.is_closed()
    }

    /// Messages that could be sent now without waiting: the buffer size
    /// minus queued messages and slots handed to waking senders.
    pub fn capacity(&self) -> usize {
        self.chan.capacity()
    }

    /// The buffer size the channel was created with.
    pub fn max_capacity(&self) -> usize {
        self.chan.max_capacity()
    }

    /// True if both senders belong to the same channel.
    pub fn same_channel(&self, other: &Sender<T>) -> bool {
        Arc::ptr_eq(&self.chan, &other.chan)
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        self.chan.add_sender();
        Sender {
            chan: self.chan.clone(),
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        self.chan.drop_sender();
    }
}

impl<T> Receiver<T> {
    /// Receives the next message, waiting while the channel is empty.
    ///
    /// Returns `None` once the buffer is drained and either every sender is
    /// dropped or the receiver was [closed](Receiver::close). Cancel-safe:
    /// dropping the future never loses a message.
    pub async fn recv(&mut self) -> Option<T> {
        poll_fn(|cx| self.chan.poll_recv(cx)).await
    }

    /// Poll form of [`recv`](Receiver::recv).
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<T>> {
        self.chan.poll_recv(cx)
    }

    /// Takes the next message if one is queued, without waiting.
    pub fn try_recv(&mut self) -> Result<T, TryRecvError> {
        self.chan.try_recv()
    }

    /// Receives from a plain thread, blocking it while the channel is empty.
    ///
    /// # Panics
    ///
    /// Panics when called from a thread that runs a corio runtime.
    #[track_caller]
    pub fn blocking_recv(&mut self) -> Option<T> {
        block_on("mpsc::Receiver::blocking_recv", self.recv())
    }

    /// Closes the channel: new sends fail and waiting senders wake with an
    /// error, but messages already sent are still received; then `recv`
    /// returns `None`.
    pub fn close(&mut self) {
        self.chan.close();
    }

    /// True once nothing more can arrive: closed, or every sender dropped.
    /// Messages may still be queued.
    pub fn is_closed(&self) -> bool {
        self.chan.is_rx_closed()
    }

    /// Messages queued now.
    pub fn len(&self) -> usize {
        self.chan.len()
    }

    /// True when no message is queued.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Free slots now (see [`Sender::capacity`]).
    pub fn capacity(&self) -> usize {
        self.chan.capacity()
    }

    /// The buffer size the channel was created with.
    pub fn max_capacity(&self) -> usize {
        self.chan.max_capacity()
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        self.chan.drop_receiver();
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (queued, capacity, senders, closed) = self.chan.debug_state();
        f.debug_struct("Sender")
            .field("queued", &queued)
            .field("capacity", &capacity)
            .field("max_capacity", &self.chan.max_capacity())
            .field("senders", &senders)
            .field("closed", &closed)
            .finish()
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (queued, capacity, senders, closed) = self.chan.debug_state();
        f.debug_struct("Receiver")
            .field("queued", &queued)
            .field("capacity", &capacity)
            .field("max_capacity", &self.chan.max_capacity())
            .field("senders", &senders)
            .field("closed", &closed)
            .finish()
    }
}

/// Yields each message; ends when the channel is closed and drained.
/// Cancel-safe.
impl<T> futures_core::Stream for Receiver<T> {
    type Item = T;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        self.get_mut().chan.poll_recv(cx)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.chan.len(), None)
    }
}
