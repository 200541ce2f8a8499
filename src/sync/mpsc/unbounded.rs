//! The unbounded channel's handles: [`UnboundedSender`] (never waits) and
//! [`UnboundedReceiver`].

use std::fmt;
use std::future::poll_fn;
use std::sync::Arc;
use std::task::{Context, Poll};

use super::chan::{Chan, ClosedFuture};
use super::error::{SendError, TryRecvError, TrySendError};
use crate::sync::block_on;

/// Creates a channel with no bound on queued messages.
///
/// Sending never waits; nothing slows a producer that outpaces the consumer,
/// so prefer [`channel`](super::channel) unless the producer is bounded by
/// other means.
pub fn unbounded_channel<T>() -> (UnboundedSender<T>, UnboundedReceiver<T>) {
    let chan = Arc::new(Chan::new(usize::MAX));
    (
        UnboundedSender { chan: chan.clone() },
        UnboundedReceiver { chan },
    )
}

/// Sends messages to an unbounded channel. Clone it for more producers.
pub struct UnboundedSender<T> {
    chan: Arc<Chan<T>>,
}

/// Receives the messages of an unbounded channel.
///
/// Dropping it closes the channel: sends fail from then on and queued
/// messages are dropped.
pub struct UnboundedReceiver<T> {
    chan: Arc<Chan<T>>,
}

impl<T> UnboundedSender<T> {
    /// Queues `value` without waiting; callable from any thread, inside or
    /// outside a runtime.
    ///
    /// Returns `Err(SendError(value))` if the receiver is dropped or closed.
    pub fn send(&self, value: T) -> Result<(), SendError<T>> {
        self.chan.try_send(value).map_err(|e| match e {
            TrySendError::Closed(v) | TrySendError::Full(v) => SendError(v),
        })
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

    /// True if both senders belong to the same channel.
    pub fn same_channel(&self, other: &UnboundedSender<T>) -> bool {
        Arc::ptr_eq(&self.chan, &other.chan)
    }
}

impl<T> Clone for UnboundedSender<T> {
    fn clone(&self) -> Self {
        self.chan.add_sender();
        UnboundedSender {
            chan: self.chan.clone(),
        }
    }
}

impl<T> Drop for UnboundedSender<T> {
    fn drop(&mut self) {
        self.chan.drop_sender();
    }
}

impl<T> UnboundedReceiver<T> {
    /// Receives the next message, waiting while the channel is empty.
    ///
    /// Returns `None` once the queue is drained and either every sender is
    /// dropped or the receiver was [closed](UnboundedReceiver::close).
    /// Cancel-safe: dropping the future never loses a message.
    pub async fn recv(&mut self) -> Option<T> {
        poll_fn(|cx| self.chan.poll_recv(cx)).await
    }

    /// Poll form of [`recv`](UnboundedReceiver::recv).
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
        block_on("mpsc::UnboundedReceiver::blocking_recv", self.recv())
    }

    /// Closes the channel: new sends fail, but messages already sent are
    /// still received; then `recv` returns `None`.
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
}

impl<T> Drop for UnboundedReceiver<T> {
    fn drop(&mut self) {
        self.chan.drop_receiver();
    }
}

impl<T> fmt::Debug for UnboundedSender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (queued, _, senders, closed) = self.chan.debug_state();
        f.debug_struct("UnboundedSender")
            .field("queued", &queued)
            .field("senders", &senders)
            .field("closed", &closed)
            .finish()
    }
}

impl<T> fmt::Debug for UnboundedReceiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (queued, _, senders, closed) = self.chan.debug_state();
        f.debug_struct("UnboundedReceiver")
            .field("queued", &queued)
            .field("senders", &senders)
            .field("closed", &closed)
            .finish()
    }
}

/// Yields each message; ends when the channel is closed and drained.
/// Cancel-safe.
impl<T> futures_core::Stream for UnboundedReceiver<T> {
    type Item = T;

    fn poll_next(self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        self.get_mut().chan.poll_recv(cx)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.chan.len(), None)
    }
}
