//! A channel holding one value that receivers watch for changes: [`channel`].
//!
//! The [`Sender`] replaces (or modifies) the value; each [`Receiver`] can
//! [`borrow`](crate::sync::generic::watch::Receiver::borrow) the latest value at any time and
//! [`changed`](crate::sync::generic::watch::Receiver::changed) waits until a value it has not
//! seen is there. Receivers see the latest value only, not every one sent:
//! for configuration, state, shutdown signals.
//!
//! How it works: the value sits in a reader-writer cell; a version word
//! counts sends (and carries a "sender gone" bit). Each receiver remembers
//! the version it saw; receivers waiting in `changed` queue in a
//! `Waiters` list (`sync/waiters.rs`) that each send wakes.
//!
//! ```
//! use corio::sync::watch;
//!
//! corio::run(async {
//!     let (tx, mut rx) = watch::channel("starting");
//!     let task = corio::spawn(async move {
//!         rx.changed().await.unwrap();
//!         *rx.borrow_and_update()
//!     });
//!     corio::yield_now().await;
//!     tx.send("running").unwrap();
//!     assert_eq!(task.await.unwrap(), "running");
//! });
//! ```

pub mod error;
pub(crate) mod generic;

use self::generic as g;
use super::flavor::Shared;

/// Sends new values; see [`generic::watch::Sender`](crate::sync::generic::watch::Sender).
pub type Sender<T> = g::Sender<T, Shared>;
/// Watches the value; see [`generic::watch::Receiver`](crate::sync::generic::watch::Receiver).
pub type Receiver<T> = g::Receiver<T, Shared>;
/// A borrow of the value; see [`generic::watch::Ref`](crate::sync::generic::watch::Ref).
pub type Ref<'a, T> = g::Ref<'a, T, Shared>;

/// Creates a watch channel holding `init`. The receiver has seen `init`:
/// its first `changed()` waits for a send.
pub fn channel<T>(init: T) -> (Sender<T>, Receiver<T>) {
    g::channel(init)
}
