//! `Semaphore`: a count of permits that tasks acquire and give back.
//!
//! How it works: a thin layer over [`sem`](super::sem), which holds the
//! permits in one word and the waiters in a FIFO queue. A permit is a guard
//! that gives its permits back when dropped (or [`forget`s](SemaphorePermit::forget) them).

use std::fmt;
use std::rc::Rc;
use std::sync::Arc;

use super::flavor::{Flavor, Local, Shared};
use super::sem::{Acquire, MAX_PERMITS, Sem, TryFail};

/// A count of permits: [`acquire`](Self::acquire) waits until one is free.
///
/// Bounds how many tasks do something at once (connections, requests in
/// flight). Waiters are served in FIFO order; one that asks for many
/// permits ([`acquire_many`](Self::acquire_many)) holds back those behind
/// it until its permits are free, so it is never starved.
///
/// ```
/// use std::rc::Rc;
///
/// use corio::sync::Semaphore;
///
/// corio::run(async {
///     let limit = Rc::new(Semaphore::new(2)); // two at a time
///     let tasks: Vec<_> = (0..5)
///         .map(|i| {
///             let limit = limit.clone();
///             corio::spawn(async move {
///                 let _permit = limit.acquire().await.unwrap();
///                 corio::time::sleep(std::time::Duration::from_millis(1)).await;
///                 i
///             })
///         })
///         .collect();
///     for t in tasks {
///         t.await.unwrap();
///     }
///     assert_eq!(limit.available_permits(), 2);
/// });
/// ```
pub struct Semaphore<F: Flavor> {
    sem: Sem<F>,
}

/// The semaphore was closed ([`Semaphore::close`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AcquireError(());

impl fmt::Display for AcquireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("semaphore closed")
    }
}

impl std::error::Error for AcquireError {}

/// Why a `try_acquire` got no permit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TryAcquireError {
    /// The semaphore was closed.
    Closed,
    /// Not enough permits free now, or others wait for them.
    NoPermits,
}

impl fmt::Display for TryAcquireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TryAcquireError::Closed => f.write_str("semaphore closed"),
            TryAcquireError::NoPermits => f.write_str("no permits available"),
        }
    }
}

impl std::error::Error for TryAcquireError {}

impl From<TryFail> for TryAcquireError {
    fn from(e: TryFail) -> Self {
        match e {
            TryFail::Closed => TryAcquireError::Closed,
            TryFail::NoPermits => TryAcquireError::NoPermits,
        }
    }
}

impl<F: Flavor> Semaphore<F> {
    /// The most permits a semaphore holds (`usize::MAX >> 3`).
    pub const MAX_PERMITS: usize = MAX_PERMITS;

    /// A semaphore with `permits` permits.
    ///
    /// # Panics
    ///
    /// Panics if `permits` exceeds [`MAX_PERMITS`](Self::MAX_PERMITS).
    pub fn new(permits: usize) -> Self {
        Semaphore {
            sem: Sem::new(permits),
        }
    }

    /// Permits free now.
    pub fn available_permits(&self) -> usize {
        self.sem.available()
    }

    /// Adds `n` permits, waking the waiters they serve.
    ///
    /// # Panics
    ///
    /// Panics if the total would exceed [`MAX_PERMITS`](Self::MAX_PERMITS).
    pub fn add_permits(&self, n: usize) {
        self.sem.add_permits(n);
    }

    /// Removes up to `n` free permits for good; returns how many.
    pub fn forget_permits(&self, n: usize) -> usize {
        self.sem.forget(n)
    }

    /// Closes the semaphore: waiting and later acquires fail with
    /// [`AcquireError`]. Permits already held stay valid.
    pub fn close(&self) {
        self.sem.close();
    }

    /// True once [`close`](Self::close) was called.
    pub fn is_closed(&self) -> bool {
        self.sem.is_closed()
    }

    /// Acquires one permit, waiting until it is free.
    ///
    /// Cancel-safe: a dropped `acquire()` leaves the queue, and permits
    /// handed to it just before go to the next waiter.
    pub async fn acquire(&self) -> Result<SemaphorePermit<'_, F>, AcquireError> {
        self.acquire_many(1).await
    }

    /// Acquires `n` permits at once, waiting until they are all free.
    /// Cancel-safe, as [`acquire`](Self::acquire).
    pub async fn acquire_many(&self, n: u32) -> Result<SemaphorePermit<'_, F>, AcquireError> {
        if Acquire::new(&self.sem, n as usize).await {
            Ok(SemaphorePermit {
                sem: self,
                permits: n,
            })
        } else {
            Err(AcquireError(()))
        }
    }

    /// Takes one permit if one is free and nobody waits.
    pub fn try_acquire(&self) -> Result<SemaphorePermit<'_, F>, TryAcquireError> {
        self.try_acquire_many(1)
    }

    /// Takes `n` permits if they are free and nobody waits.
    pub fn try_acquire_many(&self, n: u32) -> Result<SemaphorePermit<'_, F>, TryAcquireError> {
        self.sem.try_acquire(n as usize)?;
        Ok(SemaphorePermit {
            sem: self,
            permits: n,
        })
    }

    async fn acquire_owned_inner(
        this: F::Ptr<Self>,
        n: u32,
    ) -> Result<OwnedSemaphorePermit<F>, AcquireError> {
        if Acquire::new(&this.sem, n as usize).await {
            Ok(OwnedSemaphorePermit {
                sem: this,
                permits: n,
            })
        } else {
            Err(AcquireError(()))
        }
    }

    fn try_acquire_owned_inner(
        this: F::Ptr<Self>,
        n: u32,
    ) -> Result<OwnedSemaphorePermit<F>, TryAcquireError> {
        this.sem.try_acquire(n as usize)?;
        Ok(OwnedSemaphorePermit {
            sem: this,
            permits: n,
        })
    }
}

/// The `*_owned` methods, for one flavor and its pointer type.
macro_rules! owned_methods {
    ($flavor:ty, $ptr:ident) => {
        impl Semaphore<$flavor> {
            /// [`acquire`](Self::acquire) with a permit that owns a pointer to
            /// the semaphore (`'static`: it can move into a spawned task).
            pub async fn acquire_owned(
                self: $ptr<Self>,
            ) -> Result<OwnedSemaphorePermit<$flavor>, AcquireError> {
                Self::acquire_owned_inner(self, 1).await
            }

            /// [`acquire_many`](Self::acquire_many) with an owned permit.
            pub async fn acquire_many_owned(
                self: $ptr<Self>,
                n: u32,
            ) -> Result<OwnedSemaphorePermit<$flavor>, AcquireError> {
                Self::acquire_owned_inner(self, n).await
            }

            /// [`try_acquire`](Self::try_acquire) with an owned permit.
            pub fn try_acquire_owned(
                self: $ptr<Self>,
            ) -> Result<OwnedSemaphorePermit<$flavor>, TryAcquireError> {
                Self::try_acquire_owned_inner(self, 1)
            }

            /// [`try_acquire_many`](Self::try_acquire_many) with an owned permit.
            pub fn try_acquire_many_owned(
                self: $ptr<Self>,
                n: u32,
            ) -> Result<OwnedSemaphorePermit<$flavor>, TryAcquireError> {
                Self::try_acquire_owned_inner(self, n)
            }
        }
    };
}

owned_methods!(Shared, Arc);
owned_methods!(Local, Rc);

impl<F: Flavor> fmt::Debug for Semaphore<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.sem, f)
    }
}

/// Permits of a [`Semaphore`], given back when dropped.
#[must_use = "the permits are given back as soon as this is dropped"]
pub struct SemaphorePermit<'a, F: Flavor> {
    sem: &'a Semaphore<F>,
    permits: u32,
}

/// Permits of a [`Semaphore`] that own a pointer to it (`Arc`, or `Rc` for
/// the local flavor); given back when dropped.
#[must_use = "the permits are given back as soon as this is dropped"]
pub struct OwnedSemaphorePermit<F: Flavor> {
    sem: F::Ptr<Semaphore<F>>,
    permits: u32,
}

impl<F: Flavor> SemaphorePermit<'_, F> {
    /// Keeps the permits out of the semaphore for good.
    pub fn forget(mut self) {
        self.permits = 0;
    }

    /// How many permits this holds.
    pub fn num_permits(&self) -> usize {
        self.permits as usize
    }

    /// Takes over the permits of `other` (of the same semaphore).
    ///
    /// # Panics
    ///
    /// Panics if `other` comes from another semaphore.
    pub fn merge(&mut self, mut other: Self) {
        assert!(
            std::ptr::eq(self.sem, other.sem),
            "merging permits of different semaphores"
        );
        self.permits += std::mem::take(&mut other.permits);
    }
}

impl<F: Flavor> OwnedSemaphorePermit<F> {
    /// Keeps the permits out of the semaphore for good.
    pub fn forget(mut self) {
        self.permits = 0;
    }

    /// How many permits this holds.
    pub fn num_permits(&self) -> usize {
        self.permits as usize
    }

    /// The semaphore these permits belong to.
    pub fn semaphore(&self) -> &F::Ptr<Semaphore<F>> {
        &self.sem
    }

    /// Takes over the permits of `other` (of the same semaphore).
    ///
    /// # Panics
    ///
    /// Panics if `other` comes from another semaphore.
    pub fn merge(&mut self, mut other: Self) {
        assert!(
            F::ptr_eq(&self.sem, &other.sem),
            "merging permits of different semaphores"
        );
        self.permits += std::mem::take(&mut other.permits);
    }
}

impl<F: Flavor> Drop for SemaphorePermit<'_, F> {
    fn drop(&mut self) {
        self.sem.sem.release(self.permits as usize);
    }
}

impl<F: Flavor> Drop for OwnedSemaphorePermit<F> {
    fn drop(&mut self) {
        self.sem.sem.release(self.permits as usize);
    }
}

impl<F: Flavor> fmt::Debug for SemaphorePermit<'_, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SemaphorePermit")
            .field("permits", &self.permits)
            .finish()
    }
}

impl<F: Flavor> fmt::Debug for OwnedSemaphorePermit<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OwnedSemaphorePermit")
            .field("permits", &self.permits)
            .finish()
    }
}
