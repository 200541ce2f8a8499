//! Multi-producer, single-consumer channels: bounded and unbounded.
//!
//! [`channel`] buffers up to a fixed number of messages; [`Sender::send`]
//! waits while the buffer is full (back-pressure). [`unbounded_channel`]
//! queues without limit; [`UnboundedSender::send`] never waits. Senders are
//! `Clone`; both ends may live on different shards or plain threads (see the
//! `blocking_*` methods).
//!
//! Closing: when every sender is dropped, the receiver gets the queued
//! messages and then `None`. When the receiver is dropped or
//! [closed](Receiver::close), sends fail and hand the message back in
//! [`SendError`](error::SendError); senders waiting for room wake with that
//! error. A message whose send returned `Ok` before the close is still
//! received.
//!
//! How it works: see `chan.rs`. One lock guards the queue; waiting senders
//! form a FIFO list and each freed slot wakes exactly one of them.
//!
//! A bounded channel between two tasks:
//!
//! ```
//! use corio::sync::mpsc;
//!
//! corio::run(async {
//!     let (tx, mut rx) = mpsc::channel(2);
//!     let producer = corio::spawn(async move {
//!         for i in 0..5 {
//!             tx.send(i).await.unwrap(); // waits while 2 are queued
//!         }
//!     });
//!     let mut got = Vec::new();
//!     while let Some(v) = rx.recv().await {
//!         got.push(v);
//!     }
//!     producer.await.unwrap();
//!     assert_eq!(got, [0, 1, 2, 3, 4]);
//! });
//! ```
//!
//! An unbounded channel fed by a plain thread:
//!
//! ```
//! use corio::sync::mpsc;
//!
//! let (tx, mut rx) = mpsc::unbounded_channel();
//! let t = std::thread::spawn(move || {
//!     for i in 0..3 {
//!         tx.send(i).unwrap();
//!     }
//! });
//! corio::run(async move {
//!     let mut sum = 0;
//!     while let Some(v) = rx.recv().await {
//!         sum += v;
//!     }
//!     assert_eq!(sum, 3);
//! });
//! t.join().unwrap();
//! ```

mod bounded;
mod chan;
pub mod error;
mod unbounded;

pub use bounded::{Receiver, Sender, channel};
pub use unbounded::{UnboundedReceiver, UnboundedSender, unbounded_channel};
