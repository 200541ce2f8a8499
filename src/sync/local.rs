//! The primitives of [`corio::sync`](crate::sync) for the tasks of one
//! shard: the same API, without atomics.
//!
//! How it works: each type here is the generic one of
//! [`corio::sync::generic`](crate::sync::generic) with the [`Local`]
//! flavor: the semaphore word is a `Cell`, locks are `RefCell`s, owned
//! guards and channel handles share an `Rc`. They are `!Sync` (owned
//! handles `!Send`), so the compiler keeps them on one thread; in return
//! an uncontended lock and unlock is a few plain loads and stores.
//! Fairness (FIFO) and cancel safety are the same as the shared types'.
//!
//! ```
//! use std::rc::Rc;
//!
//! use corio::sync::local::{Mutex, broadcast};
//!
//! corio::run(async {
//!     let total = Rc::new(Mutex::new(0));
//!     let (tx, mut rx) = broadcast::channel(8);
//!     let t = total.clone();
//!     let task = corio::spawn(async move {
//!         while let Ok(v) = rx.recv().await {
//!             *t.lock().await += v;
//!         }
//!     });
//!     for v in 1..=3 {
//!         tx.send(v).unwrap();
//!     }
//!     drop(tx);
//!     task.await.unwrap();
//!     assert_eq!(*total.lock().await, 6);
//! });
//! ```
//!
//! They cannot be shared with another thread:
//!
//! ```compile_fail
//! fn needs_sync<T: Sync>(_: &T) {}
//! needs_sync(&corio::sync::local::Mutex::new(0));
//! ```

use super::flavor::Local;
use super::{barrier, event, mutex, notify, rwlock, semaphore};

pub use super::barrier::BarrierWaitResult;
pub use super::mutex::TryLockError;
pub use super::semaphore::{AcquireError, TryAcquireError};

/// See [`corio::sync::Mutex`](crate::sync::Mutex).
pub type Mutex<T> = mutex::Mutex<T, Local>;
/// See [`corio::sync::MutexGuard`](crate::sync::MutexGuard).
pub type MutexGuard<'a, T> = mutex::MutexGuard<'a, T, Local>;
/// A guard owning an `Rc` of its mutex.
pub type OwnedMutexGuard<T> = mutex::OwnedMutexGuard<T, Local>;
/// See [`corio::sync::RwLock`](crate::sync::RwLock).
pub type RwLock<T> = rwlock::RwLock<T, Local>;
/// Shared access to an [`RwLock`]'s value.
pub type RwLockReadGuard<'a, T> = rwlock::RwLockReadGuard<'a, T, Local>;
/// Unique access to an [`RwLock`]'s value.
pub type RwLockWriteGuard<'a, T> = rwlock::RwLockWriteGuard<'a, T, Local>;
/// A read guard owning an `Rc` of its lock.
pub type OwnedRwLockReadGuard<T> = rwlock::OwnedRwLockReadGuard<T, Local>;
/// A write guard owning an `Rc` of its lock.
pub type OwnedRwLockWriteGuard<T> = rwlock::OwnedRwLockWriteGuard<T, Local>;
/// See [`corio::sync::Semaphore`](crate::sync::Semaphore).
pub type Semaphore = semaphore::Semaphore<Local>;
/// Permits of a [`Semaphore`].
pub type SemaphorePermit<'a> = semaphore::SemaphorePermit<'a, Local>;
/// Permits owning an `Rc` of their semaphore.
pub type OwnedSemaphorePermit = semaphore::OwnedSemaphorePermit<Local>;
/// See [`corio::sync::Notify`](crate::sync::Notify).
pub type Notify = notify::Notify<Local>;
/// Waits for a [`Notify`].
pub type Notified<'a> = notify::Notified<'a, Local>;
/// See [`corio::sync::Event`](crate::sync::Event).
pub type Event = event::Event<Local>;
/// Waits for an [`Event`].
pub type EventWait<'a> = event::EventWait<'a, Local>;
/// See [`corio::sync::Barrier`](crate::sync::Barrier).
pub type Barrier = barrier::Barrier<Local>;

/// See [`corio::sync::broadcast`](crate::sync::broadcast).
pub mod broadcast {
    use crate::sync::broadcast::generic as g;
    use crate::sync::flavor::Local;

    pub use crate::sync::broadcast::error;

    /// Sends values to every [`Receiver`].
    pub type Sender<T> = g::Sender<T, Local>;
    /// Receives every value sent after it was created.
    pub type Receiver<T> = g::Receiver<T, Local>;

    /// Creates a broadcast channel holding the last `capacity` values.
    ///
    /// # Panics
    ///
    /// Panics if `capacity` is 0 or larger than `usize::MAX / 2`.
    pub fn channel<T: Clone>(capacity: usize) -> (Sender<T>, Receiver<T>) {
        g::channel(capacity)
    }
}

/// See [`corio::sync::watch`](crate::sync::watch).
pub mod watch {
    use crate::sync::flavor::Local;
    use crate::sync::watch::generic as g;

    pub use crate::sync::watch::error;

    /// Sets the watched value.
    pub type Sender<T> = g::Sender<T, Local>;
    /// Watches the value of a [`Sender`].
    pub type Receiver<T> = g::Receiver<T, Local>;
    /// A borrow of the value.
    pub type Ref<'a, T> = g::Ref<'a, T, Local>;

    /// Creates a watch channel holding `init`.
    pub fn channel<T>(init: T) -> (Sender<T>, Receiver<T>) {
        g::channel(init)
    }
}
