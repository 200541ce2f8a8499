//! The two flavors of every primitive: [`Shared`] (atomics and `Mutex`,
//! usable across threads) and [`Local`] (`Cell` and `RefCell`, one thread).
//!
//! How it works: each primitive is written once, generic over a
//! [`Flavor`] that supplies its state word (an `AtomicUsize` or a
//! `Cell<usize>`), its lock (`std::sync::Mutex` or `RefCell`), its
//! reader-writer cell (`std::sync::RwLock` or `RefCell`) and its shared
//! pointer (`Arc` or `Rc`). The compiler then removes what the local flavor
//! does not need: a compare-and-swap on a `Cell` is a load and a store, a
//! `RefCell` borrow is a flag check. `corio::sync` names the shared types,
//! `corio::sync::local` the local ones; both are aliases of the generic
//! types in [`corio::sync::generic`](crate::sync::generic).

use std::cell::{Cell, RefCell};
use std::ops::{Deref, DerefMut};
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, MutexGuard, PoisonError, RwLockReadGuard, RwLockWriteGuard};

mod sealed {
    pub trait Sealed {}
}

/// How a primitive shares its state: [`Shared`] (across threads) or
/// [`Local`] (one thread, no atomics). Sealed: only these two exist.
///
/// Users name it only in code generic over both flavors; the aliases in
/// [`corio::sync`](crate::sync) and [`corio::sync::local`](crate::sync::local)
/// fix it.
pub trait Flavor: sealed::Sealed + Sized + 'static {
    /// The state word of a semaphore (an atomic, or a `Cell`).
    #[doc(hidden)]
    type Word: Word;
    /// A lock for waiter lists and channel state.
    #[doc(hidden)]
    type Lock<T>: Lock<T>;
    /// A cell with shared reads and exclusive writes (`watch`'s value).
    #[doc(hidden)]
    type RwCell<T>: RwCell<T>;
    /// The pointer owned handles share (`Arc` or `Rc`).
    #[doc(hidden)]
    type Ptr<T: ?Sized>: Deref<Target = T> + Clone;

    /// Puts `value` behind a new shared pointer.
    #[doc(hidden)]
    fn ptr<T>(value: T) -> Self::Ptr<T>;

    /// True if both pointers point at the same value.
    #[doc(hidden)]
    fn ptr_eq<T: ?Sized>(a: &Self::Ptr<T>, b: &Self::Ptr<T>) -> bool;
}

/// The thread-safe flavor: primitives that work across shards and plain
/// threads (`Send + Sync` where their contents allow it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shared {}

/// The single-thread flavor: no atomics, `!Sync` (and the owned handles
/// `!Send`); for tasks of one shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Local {}

impl sealed::Sealed for Shared {}
impl sealed::Sealed for Local {}

impl Flavor for Shared {
    type Word = AtomicUsize;
    type Lock<T> = std::sync::Mutex<T>;
    type RwCell<T> = std::sync::RwLock<T>;
    type Ptr<T: ?Sized> = Arc<T>;

    fn ptr<T>(value: T) -> Arc<T> {
        Arc::new(value)
    }

    fn ptr_eq<T: ?Sized>(a: &Arc<T>, b: &Arc<T>) -> bool {
        Arc::ptr_eq(a, b)
    }
}

impl Flavor for Local {
    type Word = Cell<usize>;
    type Lock<T> = RefCell<T>;
    type RwCell<T> = RefCell<T>;
    type Ptr<T: ?Sized> = Rc<T>;

    fn ptr<T>(value: T) -> Rc<T> {
        Rc::new(value)
    }

    fn ptr_eq<T: ?Sized>(a: &Rc<T>, b: &Rc<T>) -> bool {
        Rc::ptr_eq(a, b)
    }
}

/// A word changed only by read-modify-write operations.
///
/// Every decision a primitive takes on its word is taken from the result
/// of one of these operations, so acquire/release ordering is enough: a
/// successful acquire (`cas`) synchronises with the release (`fetch_add`)
/// that made the permits available.
pub trait Word {
    /// A word holding `v`.
    fn new(v: usize) -> Self;
    /// The current value.
    fn load(&self) -> usize;
    /// Stores `new` if the value is `current`; `Err(actual)` otherwise.
    fn cas(&self, current: usize, new: usize) -> Result<usize, usize>;
    /// Adds `v`; returns the previous value.
    fn fetch_add(&self, v: usize) -> usize;
    /// Sets the bits of `v`; returns the previous value.
    fn fetch_or(&self, v: usize) -> usize;
    /// Clears the bits not in `v`; returns the previous value.
    fn fetch_and(&self, v: usize) -> usize;
}

impl Word for AtomicUsize {
    fn new(v: usize) -> Self {
        AtomicUsize::new(v)
    }

    #[inline]
    fn load(&self) -> usize {
        AtomicUsize::load(self, Ordering::Acquire)
    }

    #[inline]
    fn cas(&self, current: usize, new: usize) -> Result<usize, usize> {
        self.compare_exchange(current, new, Ordering::AcqRel, Ordering::Acquire)
    }

    #[inline]
    fn fetch_add(&self, v: usize) -> usize {
        AtomicUsize::fetch_add(self, v, Ordering::AcqRel)
    }

    fn fetch_or(&self, v: usize) -> usize {
        AtomicUsize::fetch_or(self, v, Ordering::AcqRel)
    }

    fn fetch_and(&self, v: usize) -> usize {
        AtomicUsize::fetch_and(self, v, Ordering::AcqRel)
    }
}

impl Word for Cell<usize> {
    fn new(v: usize) -> Self {
        Cell::new(v)
    }

    #[inline]
    fn load(&self) -> usize {
        self.get()
    }

    #[inline]
    fn cas(&self, current: usize, new: usize) -> Result<usize, usize> {
        let v = self.get();
        if v == current {
            self.set(new);
            Ok(v)
        } else {
            Err(v)
        }
    }

    #[inline]
    fn fetch_add(&self, v: usize) -> usize {
        self.replace(self.get() + v)
    }

    fn fetch_or(&self, v: usize) -> usize {
        self.replace(self.get() | v)
    }

    fn fetch_and(&self, v: usize) -> usize {
        self.replace(self.get() & v)
    }
}

/// An exclusive lock. Primitives never run user code while holding it
/// (values are dropped and wakers woken after unlocking), so a poisoned
/// `std::sync::Mutex` is still consistent and is used as is, and a
/// `RefCell` is never borrowed twice.
pub trait Lock<T> {
    /// The guard; unlocks when dropped.
    type Guard<'a>: DerefMut<Target = T>
    where
        Self: 'a;
    /// A lock holding `value`.
    fn new(value: T) -> Self;
    /// Locks.
    fn lock(&self) -> Self::Guard<'_>;
}

impl<T> Lock<T> for std::sync::Mutex<T> {
    type Guard<'a>
        = MutexGuard<'a, T>
    where
        T: 'a;

    fn new(value: T) -> Self {
        std::sync::Mutex::new(value)
    }

    #[inline]
    fn lock(&self) -> MutexGuard<'_, T> {
        std::sync::Mutex::lock(self).unwrap_or_else(PoisonError::into_inner)
    }
}

impl<T> Lock<T> for RefCell<T> {
    type Guard<'a>
        = std::cell::RefMut<'a, T>
    where
        T: 'a;

    fn new(value: T) -> Self {
        RefCell::new(value)
    }

    #[inline]
    fn lock(&self) -> std::cell::RefMut<'_, T> {
        self.borrow_mut()
    }
}

/// A cell with shared reads and exclusive writes. A `RefCell` panics where
/// an `RwLock` would deadlock (a write while a read guard is held).
pub trait RwCell<T> {
    /// A read guard.
    type Read<'a>: Deref<Target = T>
    where
        Self: 'a;
    /// A write guard.
    type Write<'a>: DerefMut<Target = T>
    where
        Self: 'a;
    /// A cell holding `value`.
    fn new(value: T) -> Self;
    /// Locks for reading.
    fn read(&self) -> Self::Read<'_>;
    /// Locks for writing.
    fn write(&self) -> Self::Write<'_>;
}

impl<T> RwCell<T> for std::sync::RwLock<T> {
    type Read<'a>
        = RwLockReadGuard<'a, T>
    where
        T: 'a;
    type Write<'a>
        = RwLockWriteGuard<'a, T>
    where
        T: 'a;

    fn new(value: T) -> Self {
        std::sync::RwLock::new(value)
    }

    fn read(&self) -> RwLockReadGuard<'_, T> {
        std::sync::RwLock::read(self).unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, T> {
        std::sync::RwLock::write(self).unwrap_or_else(PoisonError::into_inner)
    }
}

impl<T> RwCell<T> for RefCell<T> {
    type Read<'a>
        = std::cell::Ref<'a, T>
    where
        T: 'a;
    type Write<'a>
        = std::cell::RefMut<'a, T>
    where
        T: 'a;

    fn new(value: T) -> Self {
        RefCell::new(value)
    }

    fn read(&self) -> std::cell::Ref<'_, T> {
        self.borrow()
    }

    fn write(&self) -> std::cell::RefMut<'_, T> {
        self.borrow_mut()
    }
}
