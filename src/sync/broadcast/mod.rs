//! A multi-producer, multi-consumer channel where every receiver sees every
//! value: [`channel`].
//!
//! Each value sent reaches every receiver alive at the time, as a clone
//! (the last receiver to read a value gets it moved, not cloned). The
//! channel holds the last `capacity` values; a receiver that falls further
//! behind is told how many it missed ([`RecvError::Lagged`](error::RecvError::Lagged))
//! and goes on from the oldest value still held. Senders never wait: a slow
//! receiver can never slow the others down.
//!
//! How it works: a ring of `capacity` slots (rounded up to a power of two),
//! each with its sequence number and a count of receivers yet to read it,
//! behind one lock. Each receiver keeps the sequence number it reads next;
//! a slot whose number moved past it shows the lag. Waiting receivers are
//! in a `Waiters` queue (`sync/waiters.rs`) that each send wakes.
//!
//! ```
//! use corio::sync::broadcast;
//!
//! corio::run(async {
//!     let (tx, mut rx1) = broadcast::channel(16);
//!     let mut rx2 = tx.subscribe();
//!     tx.send("hello").unwrap();
//!     assert_eq!(rx1.recv().await, Ok("hello"));
//!     assert_eq!(rx2.recv().await, Ok("hello"));
//!
//!     // A receiver that lags is told how many values it missed.
//!     let (tx, mut rx) = broadcast::channel(2);
//!     for i in 0..5 {
//!         tx.send(i).unwrap();
//!     }
//!     assert_eq!(rx.recv().await, Err(broadcast::error::RecvError::Lagged(3)));
//!     assert_eq!(rx.recv().await, Ok(3));
//! });
//! ```

pub mod error;
pub(crate) mod generic;

use self::generic as g;
use super::flavor::Shared;

/// Sends values to every [`Receiver`]; see [`generic::broadcast::Sender`](crate::sync::generic::broadcast::Sender).
pub type Sender<T> = g::Sender<T, Shared>;
/// Receives every value sent after it was created; see
/// [`generic::broadcast::Receiver`](crate::sync::generic::broadcast::Receiver).
pub type Receiver<T> = g::Receiver<T, Shared>;

/// Creates a broadcast channel holding the last `capacity` values.
///
/// # Panics
///
/// Panics if `capacity` is 0 or larger than `usize::MAX / 2`.
pub fn channel<T: Clone>(capacity: usize) -> (Sender<T>, Receiver<T>) {
    g::channel(capacity)
}
