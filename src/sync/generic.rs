//! The primitives of [`corio::sync`](crate::sync) written once, generic over
//! their [`Flavor`]: [`Shared`] (what `corio::sync` names) or [`Local`]
//! (what [`corio::sync::local`](crate::sync::local) names).
//!
//! How it works: see `flavor.rs`. Use the aliases in `corio::sync` and
//! `corio::sync::local`; name these types only in code that works with
//! both flavors:
//!
//! ```
//! use corio::sync::generic::{Flavor, Mutex};
//!
//! async fn bump<F: Flavor>(m: &Mutex<u32, F>) -> u32 {
//!     let mut n = m.lock().await;
//!     *n += 1;
//!     *n
//! }
//!
//! corio::run(async {
//!     assert_eq!(bump(&corio::sync::Mutex::new(1)).await, 2);
//!     assert_eq!(bump(&corio::sync::local::Mutex::new(1)).await, 2);
//! });
//! ```

pub use super::barrier::Barrier;
pub use super::event::{Event, EventWait};
pub use super::flavor::{Flavor, Local, Shared};
pub use super::mutex::{Mutex, MutexGuard, OwnedMutexGuard};
pub use super::notify::{Notified, Notify};
pub use super::rwlock::{
    OwnedRwLockReadGuard, OwnedRwLockWriteGuard, RwLock, RwLockReadGuard, RwLockWriteGuard,
};
pub use super::semaphore::{OwnedSemaphorePermit, Semaphore, SemaphorePermit};

/// The broadcast channel, generic over its flavor.
pub mod broadcast {
    pub use crate::sync::broadcast::generic::{Receiver, Sender, channel};
}

/// The watch channel, generic over its flavor.
pub mod watch {
    pub use crate::sync::watch::generic::{Receiver, Ref, Sender, channel};
}
