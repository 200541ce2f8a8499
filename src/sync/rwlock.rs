//! `RwLock`: an async reader-writer lock, many readers or one writer.
//!
//! How it works: a semaphore with `max_readers` permits
//! ([`sem`](super::sem)). A reader takes one permit, a writer all of them.
//! Waiters are served in FIFO order, so a waiting writer holds back readers
//! that come after it: writers are never starved.

use std::cell::UnsafeCell;
use std::fmt;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::rc::Rc;
use std::sync::Arc;

use super::flavor::{Flavor, Local, Shared};
use super::mutex::TryLockError;
use super::sem::{Acquire, Sem};

/// Readers an [`RwLock`] admits at once by default.
const MAX_READS: usize = (u32::MAX >> 3) as usize;

/// An async reader-writer lock: any number of [`read`](Self::read) guards
/// or one [`write`](Self::write) guard at a time, held across `.await` if
/// need be.
///
/// Fair: the lock is granted in the order it was asked for, so a writer
/// waits only for the guards that came before it, and readers that come
/// after a waiting writer wait for it.
///
/// ```
/// use corio::sync::RwLock;
///
/// corio::run(async {
///     let lock = RwLock::new(vec![1, 2]);
///     {
///         let a = lock.read().await;
///         let b = lock.read().await; // many readers at once
///         assert_eq!(a.len() + b.len(), 4);
///     }
///     lock.write().await.push(3);
///     assert_eq!(*lock.read().await, [1, 2, 3]);
/// });
/// ```
pub struct RwLock<T: ?Sized, F: Flavor> {
    sem: Sem<F>,
    max_readers: usize,
    data: UnsafeCell<T>,
}

// SAFETY: the semaphore admits either shared readers (`&T` on several
// threads: `T: Sync`) or one writer (the value used, and maybe replaced,
// on the writer's thread: `T: Send`).
unsafe impl<T: ?Sized + Send + Sync> Sync for RwLock<T, Shared> {}

impl<T, F: Flavor> RwLock<T, F> {
    /// A new, unlocked lock holding `value`.
    pub fn new(value: T) -> Self {
        Self::with_max_readers(value, MAX_READS)
    }

    /// A lock that admits at most `max_readers` readers at once.
    ///
    /// # Panics
    ///
    /// Panics if `max_readers` is 0 or above `u32::MAX >> 3`.
    pub fn with_max_readers(value: T, max_readers: usize) -> Self {
        assert!(
            (1..=MAX_READS).contains(&max_readers),
            "max_readers must be between 1 and {MAX_READS}, not {max_readers}"
        );
        RwLock {
            sem: Sem::new(max_readers),
            max_readers,
            data: UnsafeCell::new(value),
        }
    }

    /// Consumes the lock and returns the value.
    pub fn into_inner(self) -> T {
        self.data.into_inner()
    }
}

impl<T: ?Sized, F: Flavor> RwLock<T, F> {
    /// Locks for reading, waiting while a writer holds or waits for the lock.
    ///
    /// Cancel-safe: a dropped `read()` leaves the queue (passing on what it
    /// was handed).
    pub async fn read(&self) -> RwLockReadGuard<'_, T, F> {
        Acquire::new(&self.sem, 1).await;
        RwLockReadGuard {
            lock: self,
            _marker: PhantomData,
        }
    }

    /// Locks for writing, waiting until no other guard exists.
    ///
    /// Cancel-safe, as [`read`](Self::read).
    pub async fn write(&self) -> RwLockWriteGuard<'_, T, F> {
        Acquire::new(&self.sem, self.max_readers).await;
        RwLockWriteGuard {
            lock: self,
            _marker: PhantomData,
        }
    }

    /// Locks for reading if that needs no wait.
    pub fn try_read(&self) -> Result<RwLockReadGuard<'_, T, F>, TryLockError> {
        self.sem.try_acquire(1).map_err(|_| TryLockError(()))?;
        Ok(RwLockReadGuard {
            lock: self,
            _marker: PhantomData,
        })
    }

    /// Locks for writing if that needs no wait.
    pub fn try_write(&self) -> Result<RwLockWriteGuard<'_, T, F>, TryLockError> {
        self.sem
            .try_acquire(self.max_readers)
            .map_err(|_| TryLockError(()))?;
        Ok(RwLockWriteGuard {
            lock: self,
            _marker: PhantomData,
        })
    }

    /// The value, through a unique borrow (no locking needed).
    pub fn get_mut(&mut self) -> &mut T {
        self.data.get_mut()
    }

    async fn read_owned_inner(this: F::Ptr<Self>) -> OwnedRwLockReadGuard<T, F> {
        Acquire::new(&this.sem, 1).await;
        OwnedRwLockReadGuard {
            lock: this,
            _marker: PhantomData,
        }
    }

    async fn write_owned_inner(this: F::Ptr<Self>) -> OwnedRwLockWriteGuard<T, F> {
        Acquire::new(&this.sem, this.max_readers).await;
        OwnedRwLockWriteGuard {
            lock: this,
            _marker: PhantomData,
        }
    }
}

impl<T: ?Sized> RwLock<T, Shared> {
    /// [`read`](Self::read) from a plain thread, blocking it.
    ///
    /// # Panics
    ///
    /// Panics when called from a thread that runs a corio runtime.
    #[track_caller]
    pub fn blocking_read(&self) -> RwLockReadGuard<'_, T, Shared> {
        super::block_on("RwLock::blocking_read", self.read())
    }

    /// [`write`](Self::write) from a plain thread, blocking it.
    ///
    /// # Panics
    ///
    /// Panics when called from a thread that runs a corio runtime.
    #[track_caller]
    pub fn blocking_write(&self) -> RwLockWriteGuard<'_, T, Shared> {
        super::block_on("RwLock::blocking_write", self.write())
    }

    /// [`read`](Self::read) with a guard that owns an `Arc` of the lock.
    pub async fn read_owned(self: Arc<Self>) -> OwnedRwLockReadGuard<T, Shared> {
        Self::read_owned_inner(self).await
    }

    /// [`write`](Self::write) with a guard that owns an `Arc` of the lock.
    pub async fn write_owned(self: Arc<Self>) -> OwnedRwLockWriteGuard<T, Shared> {
        Self::write_owned_inner(self).await
    }
}

impl<T: ?Sized> RwLock<T, Local> {
    /// [`read`](Self::read) with a guard that owns an `Rc` of the lock.
    pub async fn read_owned(self: Rc<Self>) -> OwnedRwLockReadGuard<T, Local> {
        Self::read_owned_inner(self).await
    }

    /// [`write`](Self::write) with a guard that owns an `Rc` of the lock.
    pub async fn write_owned(self: Rc<Self>) -> OwnedRwLockWriteGuard<T, Local> {
        Self::write_owned_inner(self).await
    }
}

impl<T: Default, F: Flavor> Default for RwLock<T, F> {
    fn default() -> Self {
        RwLock::new(T::default())
    }
}

impl<T: ?Sized + fmt::Debug, F: Flavor> fmt::Debug for RwLock<T, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("RwLock");
        match self.try_read() {
            Ok(guard) => d.field("data", &&*guard),
            Err(_) => d.field("data", &format_args!("<locked>")),
        };
        d.finish()
    }
}

/// Shared access to an [`RwLock`]'s value; unlocks when dropped.
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct RwLockReadGuard<'a, T: ?Sized, F: Flavor> {
    lock: &'a RwLock<T, F>,
    _marker: PhantomData<&'a T>,
}

/// Unique access to an [`RwLock`]'s value; unlocks when dropped.
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct RwLockWriteGuard<'a, T: ?Sized, F: Flavor> {
    lock: &'a RwLock<T, F>,
    _marker: PhantomData<&'a mut T>,
}

/// A read guard owning a pointer to its lock (from `read_owned`).
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct OwnedRwLockReadGuard<T: ?Sized, F: Flavor> {
    lock: F::Ptr<RwLock<T, F>>,
    _marker: PhantomData<T>,
}

/// A write guard owning a pointer to its lock (from `write_owned`).
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct OwnedRwLockWriteGuard<T: ?Sized, F: Flavor> {
    lock: F::Ptr<RwLock<T, F>>,
    _marker: PhantomData<T>,
}

impl<'a, T: ?Sized, F: Flavor> RwLockWriteGuard<'a, T, F> {
    /// Turns the write guard into a read guard without letting another
    /// writer in between (other readers may then join).
    pub fn downgrade(this: Self) -> RwLockReadGuard<'a, T, F> {
        let lock = this.lock;
        std::mem::forget(this);
        lock.sem.release(lock.max_readers - 1);
        RwLockReadGuard {
            lock,
            _marker: PhantomData,
        }
    }
}

impl<T: ?Sized, F: Flavor> OwnedRwLockWriteGuard<T, F> {
    /// Turns the write guard into a read guard without letting another
    /// writer in between.
    pub fn downgrade(this: Self) -> OwnedRwLockReadGuard<T, F> {
        let this = std::mem::ManuallyDrop::new(this);
        // SAFETY: `this` is never used or dropped again, so the pointer is
        // moved out exactly once.
        let lock = unsafe { std::ptr::read(&this.lock) };
        lock.sem.release(lock.max_readers - 1);
        OwnedRwLockReadGuard {
            lock,
            _marker: PhantomData,
        }
    }
}

/// Deref (and DerefMut for write guards), Drop (giving back the permits)
/// and formatting for the four guards.
macro_rules! guard_impls {
    ($guard:ident $(<$a:lifetime>)?, $permits:expr, $mutable:tt) => {
        impl<$($a,)? T: ?Sized, F: Flavor> Deref for $guard<$($a,)? T, F> {
            type Target = T;

            fn deref(&self) -> &T {
                // SAFETY: this guard holds permits of the lock: one (no
                // writer exists) or all of them (no other guard exists).
                unsafe { &*self.lock.data.get() }
            }
        }

        guard_impls!(@mut $mutable, $guard $(<$a>)?);

        impl<$($a,)? T: ?Sized, F: Flavor> Drop for $guard<$($a,)? T, F> {
            fn drop(&mut self) {
                let permits: fn(&RwLock<T, F>) -> usize = $permits;
                self.lock.sem.release(permits(&self.lock));
            }
        }

        impl<$($a,)? T: ?Sized + fmt::Debug, F: Flavor> fmt::Debug for $guard<$($a,)? T, F> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&**self, f)
            }
        }

        impl<$($a,)? T: ?Sized + fmt::Display, F: Flavor> fmt::Display for $guard<$($a,)? T, F> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&**self, f)
            }
        }
    };
    (@mut read, $guard:ident $(<$a:lifetime>)?) => {};
    (@mut write, $guard:ident $(<$a:lifetime>)?) => {
        impl<$($a,)? T: ?Sized, F: Flavor> DerefMut for $guard<$($a,)? T, F> {
            fn deref_mut(&mut self) -> &mut T {
                // SAFETY: a write guard holds every permit: no other guard
                // exists, and `&mut self` makes this borrow unique.
                unsafe { &mut *self.lock.data.get() }
            }
        }
    };
}

guard_impls!(RwLockReadGuard<'a>, |_| 1, read);
guard_impls!(RwLockWriteGuard<'a>, |l| l.max_readers, write);
guard_impls!(OwnedRwLockReadGuard, |_| 1, read);
guard_impls!(OwnedRwLockWriteGuard, |l| l.max_readers, write);
