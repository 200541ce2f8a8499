//! `Mutex`: an async mutual-exclusion lock whose guard may be held across
//! `.await`.
//!
//! How it works: a semaphore with one permit ([`sem`](super::sem)). Locking
//! without contention is one compare-and-swap, unlocking one `fetch_add`;
//! waiters queue in FIFO order and an unlock hands the lock to the oldest.

use std::cell::UnsafeCell;
use std::fmt;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::rc::Rc;
use std::sync::Arc;

use super::flavor::{Flavor, Local, Shared};
use super::sem::{Acquire, Sem};

/// An async mutex: [`lock`](Self::lock) waits (without blocking the
/// thread) until the value is free, and the guard may be held across
/// `.await`.
///
/// Waiting tasks get the lock in the order they asked for it (FIFO). Use
/// it through [`corio::sync::Mutex`](crate::sync::Mutex) (thread-safe) or
/// [`corio::sync::local::Mutex`](crate::sync::local::Mutex) (one thread, no
/// atomics); `F` is that choice.
///
/// A plain `std::sync::Mutex` is the better choice for data that is never
/// locked across an `.await`: it costs less and never makes a task wait.
///
/// ```
/// use std::sync::Arc;
///
/// use corio::sync::Mutex;
///
/// corio::run(async {
///     let count = Arc::new(Mutex::new(0));
///     let tasks: Vec<_> = (0..10)
///         .map(|_| {
///             let count = count.clone();
///             corio::spawn(async move {
///                 let mut n = count.lock().await;
///                 corio::yield_now().await; // held across an await
///                 *n += 1;
///             })
///         })
///         .collect();
///     for t in tasks {
///         t.await.unwrap();
///     }
///     assert_eq!(*count.lock().await, 10);
/// });
/// ```
pub struct Mutex<T: ?Sized, F: Flavor> {
    sem: Sem<F>,
    data: UnsafeCell<T>,
}

// SAFETY: the semaphore lets one guard at a time reach `data`, and the
// shared flavor's semaphore is itself `Sync`; `T: Send` because the value
// is used (and may be replaced) from whichever thread holds the lock.
unsafe impl<T: ?Sized + Send> Sync for Mutex<T, Shared> {}

/// The lock was held: [`Mutex::try_lock`] and the `RwLock`'s `try_*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TryLockError(pub(crate) ());

impl fmt::Display for TryLockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("operation would block")
    }
}

impl std::error::Error for TryLockError {}

impl<T, F: Flavor> Mutex<T, F> {
    /// A new, unlocked mutex holding `value`.
    pub fn new(value: T) -> Self {
        Mutex {
            sem: Sem::new(1),
            data: UnsafeCell::new(value),
        }
    }

    /// Consumes the mutex and returns the value.
    pub fn into_inner(self) -> T {
        self.data.into_inner()
    }
}

impl<T: ?Sized, F: Flavor> Mutex<T, F> {
    /// Locks, waiting while another guard exists.
    ///
    /// Cancel-safe: a `lock()` dropped before it completes (a lost
    /// `select!` branch, a `timeout`) leaves the queue, and if the lock
    /// was just handed to it, passes it to the next waiter.
    pub async fn lock(&self) -> MutexGuard<'_, T, F> {
        let got = Acquire::new(&self.sem, 1).await;
        debug_assert!(got, "a mutex is never closed");
        MutexGuard {
            lock: self,
            _marker: PhantomData,
        }
    }

    /// Locks if the mutex is free and nobody waits for it.
    pub fn try_lock(&self) -> Result<MutexGuard<'_, T, F>, TryLockError> {
        match self.sem.try_acquire(1) {
            Ok(()) => Ok(MutexGuard {
                lock: self,
                _marker: PhantomData,
            }),
            Err(_) => Err(TryLockError(())),
        }
    }

    /// The value, through a unique borrow (no locking needed).
    pub fn get_mut(&mut self) -> &mut T {
        self.data.get_mut()
    }

    async fn lock_owned_inner(this: F::Ptr<Self>) -> OwnedMutexGuard<T, F> {
        let got = Acquire::new(&this.sem, 1).await;
        debug_assert!(got, "a mutex is never closed");
        OwnedMutexGuard {
            lock: this,
            _marker: PhantomData,
        }
    }

    fn try_lock_owned_inner(this: F::Ptr<Self>) -> Result<OwnedMutexGuard<T, F>, TryLockError> {
        match this.sem.try_acquire(1) {
            Ok(()) => Ok(OwnedMutexGuard {
                lock: this,
                _marker: PhantomData,
            }),
            Err(_) => Err(TryLockError(())),
        }
    }
}

impl<T: ?Sized> Mutex<T, Shared> {
    /// Locks from a plain thread (not a runtime's), blocking it while
    /// another guard exists.
    ///
    /// # Panics
    ///
    /// Panics when called from a thread that runs a corio runtime: await
    /// [`lock`](Self::lock) there.
    #[track_caller]
    pub fn blocking_lock(&self) -> MutexGuard<'_, T, Shared> {
        super::block_on("Mutex::blocking_lock", self.lock())
    }

    /// Like [`lock`](Self::lock), with a guard that owns an `Arc` of the
    /// mutex (`'static`, so it can move into a spawned task).
    /// Cancel-safe.
    pub async fn lock_owned(self: Arc<Self>) -> OwnedMutexGuard<T, Shared> {
        Self::lock_owned_inner(self).await
    }

    /// Like [`try_lock`](Self::try_lock), with an owned guard.
    pub fn try_lock_owned(self: Arc<Self>) -> Result<OwnedMutexGuard<T, Shared>, TryLockError> {
        Self::try_lock_owned_inner(self)
    }
}

impl<T: ?Sized> Mutex<T, Local> {
    /// Like [`lock`](Self::lock), with a guard that owns an `Rc` of the
    /// mutex. Cancel-safe.
    pub async fn lock_owned(self: Rc<Self>) -> OwnedMutexGuard<T, Local> {
        Self::lock_owned_inner(self).await
    }

    /// Like [`try_lock`](Self::try_lock), with an owned guard.
    pub fn try_lock_owned(self: Rc<Self>) -> Result<OwnedMutexGuard<T, Local>, TryLockError> {
        Self::try_lock_owned_inner(self)
    }
}

impl<T: Default, F: Flavor> Default for Mutex<T, F> {
    fn default() -> Self {
        Mutex::new(T::default())
    }
}

impl<T, F: Flavor> From<T> for Mutex<T, F> {
    fn from(value: T) -> Self {
        Mutex::new(value)
    }
}

impl<T: ?Sized + fmt::Debug, F: Flavor> fmt::Debug for Mutex<T, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Mutex");
        match self.try_lock() {
            Ok(guard) => d.field("data", &&*guard),
            Err(_) => d.field("data", &format_args!("<locked>")),
        };
        d.finish()
    }
}

/// Access to a [`Mutex`]'s value; unlocks when dropped.
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct MutexGuard<'a, T: ?Sized, F: Flavor> {
    lock: &'a Mutex<T, F>,
    /// Send and Sync as a `&mut T` is.
    _marker: PhantomData<&'a mut T>,
}

impl<'a, T: ?Sized, F: Flavor> MutexGuard<'a, T, F> {
    /// The mutex this guard locks.
    pub fn mutex(this: &Self) -> &'a Mutex<T, F> {
        this.lock
    }
}

impl<T: ?Sized, F: Flavor> Deref for MutexGuard<'_, T, F> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: this guard holds the mutex's only permit, so no other
        // reference to the value exists until it is dropped.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T: ?Sized, F: Flavor> DerefMut for MutexGuard<'_, T, F> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`; `&mut self` makes this borrow unique.
        unsafe { &mut *self.lock.data.get() }
    }
}

impl<T: ?Sized, F: Flavor> Drop for MutexGuard<'_, T, F> {
    fn drop(&mut self) {
        self.lock.sem.release(1);
    }
}

impl<T: ?Sized + fmt::Debug, F: Flavor> fmt::Debug for MutexGuard<'_, T, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: ?Sized + fmt::Display, F: Flavor> fmt::Display for MutexGuard<'_, T, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&**self, f)
    }
}

/// A [`MutexGuard`] that owns a pointer to its mutex (`Arc`, or `Rc` for
/// the local flavor), from `lock_owned`.
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct OwnedMutexGuard<T: ?Sized, F: Flavor> {
    lock: F::Ptr<Mutex<T, F>>,
    /// Send and Sync only as far as `T` is (the pointer alone would make
    /// the guard `Sync` for any `T: Send`).
    _marker: PhantomData<T>,
}

impl<T: ?Sized, F: Flavor> OwnedMutexGuard<T, F> {
    /// The mutex this guard locks.
    pub fn mutex(this: &Self) -> &F::Ptr<Mutex<T, F>> {
        &this.lock
    }
}

impl<T: ?Sized, F: Flavor> Deref for OwnedMutexGuard<T, F> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: this guard holds the mutex's only permit.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T: ?Sized, F: Flavor> DerefMut for OwnedMutexGuard<T, F> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`; `&mut self` makes this borrow unique.
        unsafe { &mut *self.lock.data.get() }
    }
}

impl<T: ?Sized, F: Flavor> Drop for OwnedMutexGuard<T, F> {
    fn drop(&mut self) {
        self.lock.sem.release(1);
    }
}

impl<T: ?Sized + fmt::Debug, F: Flavor> fmt::Debug for OwnedMutexGuard<T, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: ?Sized + fmt::Display, F: Flavor> fmt::Display for OwnedMutexGuard<T, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&**self, f)
    }
}
