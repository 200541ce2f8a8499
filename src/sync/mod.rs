//! Synchronisation for tasks: locks, semaphores, notifications and channels
//! that work across shards, from plain threads and inside one runtime.
//!
//! | Type | What it does |
//! |---|---|
//! | [`Mutex`] | one task at a time; the guard may be held across `.await` |
//! | [`RwLock`] | many readers or one writer |
//! | [`Semaphore`] | a count of permits (`acquire`, `acquire_many`, owned permits, `close`) |
//! | [`Notify`] | wake one waiting task, or all of them |
//! | [`Event`] | asyncio's event: `set`, `clear`, `is_set`, `wait` |
//! | [`Barrier`] | `n` tasks wait for each other |
//! | [`oneshot`] | one value, one sender, one receiver |
//! | [`mpsc`] | many senders, one receiver; bounded (back-pressure) or unbounded |
//! | [`broadcast`] | every receiver gets every value; a lagging receiver is told how many it missed |
//! | [`watch`] | one value that receivers watch for changes |
//!
//! Every type here is `Send + Sync` when its contents are, and wakes tasks
//! on other shards through their wakers (waking a task of another shard
//! queues it there). [`local`] has the same types (but channels `oneshot`
//! and `mpsc`) for the tasks of one shard, without atomics.
//!
//! Waiters are served in FIFO order. Waiting is cancel-safe: a `lock()`,
//! `acquire()`, `notified()` or `recv()` future dropped before it completes
//! never takes a lock, a permit, a notification or a value away from
//! another waiter: what was handed to it passes on.
//!
//! How it works: the locks and the semaphore share one semaphore core
//! (`sem.rs`: permits in one word, a compare-and-swap when uncontended);
//! everything that waits queues in one FIFO waiter list (`waiters.rs`: a
//! slab of wakers linked in order, each node removable in O(1) when its
//! future is dropped). Each primitive is written once, generic over a
//! [`Flavor`](generic::Flavor) ([`generic`]); `corio::sync` and
//! [`local`] are aliases. The channels: each is a small state block behind a
//! lock, shared by its handles. A side that must wait stores its task's
//! waker in the state and re-checks under the same lock, so a wake-up is
//! never lost; wakers are woken after unlocking. The `blocking_*` methods
//! drive the same futures on a plain thread, parking it between polls.
//!
//! ```
//! use corio::sync::{mpsc, oneshot};
//!
//! let (tx, mut rx) = mpsc::channel::<u32>(8);
//! let (done_tx, done_rx) = oneshot::channel();
//! // Another shard: a thread running its own corio runtime.
//! let shard = std::thread::spawn(move || {
//!     corio::run(async move {
//!         let mut sum = 0;
//!         while let Some(v) = rx.recv().await {
//!             sum += v;
//!         }
//!         done_tx.send(sum).unwrap();
//!     })
//! });
//! corio::run(async move {
//!     for i in 1..=10 {
//!         tx.send(i).await.unwrap();
//!     }
//!     drop(tx); // the receiver sees `None` once the buffer is drained
//!     assert_eq!(done_rx.await, Ok(55));
//! });
//! shard.join().unwrap();
//! ```

mod barrier;
pub mod broadcast;
mod event;
mod flavor;
pub mod generic;
pub mod local;
pub mod mpsc;
mod mutex;
mod notify;
pub mod oneshot;
mod rwlock;
mod sem;
mod semaphore;
pub(crate) mod waiters;
pub mod watch;

pub use barrier::BarrierWaitResult;
pub use mutex::TryLockError;
pub use semaphore::{AcquireError, TryAcquireError};

/// An async mutex; see [`generic::Mutex`].
pub type Mutex<T> = mutex::Mutex<T, Shared>;
/// Access to a [`Mutex`]'s value; see [`generic::MutexGuard`].
pub type MutexGuard<'a, T> = mutex::MutexGuard<'a, T, Shared>;
/// A mutex guard owning an `Arc` of its mutex; see [`generic::OwnedMutexGuard`].
pub type OwnedMutexGuard<T> = mutex::OwnedMutexGuard<T, Shared>;
/// An async reader-writer lock; see [`generic::RwLock`].
pub type RwLock<T> = rwlock::RwLock<T, Shared>;
/// Shared access to an [`RwLock`]'s value.
pub type RwLockReadGuard<'a, T> = rwlock::RwLockReadGuard<'a, T, Shared>;
/// Unique access to an [`RwLock`]'s value.
pub type RwLockWriteGuard<'a, T> = rwlock::RwLockWriteGuard<'a, T, Shared>;
/// A read guard owning an `Arc` of its lock.
pub type OwnedRwLockReadGuard<T> = rwlock::OwnedRwLockReadGuard<T, Shared>;
/// A write guard owning an `Arc` of its lock.
pub type OwnedRwLockWriteGuard<T> = rwlock::OwnedRwLockWriteGuard<T, Shared>;
/// A count of permits; see [`generic::Semaphore`].
pub type Semaphore = semaphore::Semaphore<Shared>;
/// Permits of a [`Semaphore`].
pub type SemaphorePermit<'a> = semaphore::SemaphorePermit<'a, Shared>;
/// Permits owning an `Arc` of their semaphore.
pub type OwnedSemaphorePermit = semaphore::OwnedSemaphorePermit<Shared>;
/// Wakes waiting tasks; see [`generic::Notify`].
pub type Notify = notify::Notify<Shared>;
/// Waits for a [`Notify`].
pub type Notified<'a> = notify::Notified<'a, Shared>;
/// asyncio's event; see [`generic::Event`].
pub type Event = event::Event<Shared>;
/// Waits for an [`Event`].
pub type EventWait<'a> = event::EventWait<'a, Shared>;
/// `n` tasks wait for each other; see [`generic::Barrier`].
pub type Barrier = barrier::Barrier<Shared>;

use std::future::Future;
use std::pin::pin;
use std::sync::{Arc, Mutex as StdMutex, MutexGuard as StdMutexGuard, PoisonError};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread};

use crate::runtime::context;
use flavor::Shared;

/// Locks `m`, ignoring poisoning: no user code runs while a channel lock is
/// held (values are dropped and wakers woken after unlocking), so the state
/// is consistent even if a panic happened elsewhere on that thread.
fn lock<S>(m: &StdMutex<S>) -> StdMutexGuard<'_, S> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Stores `waker` in `slot` unless the one already there wakes the same task.
fn set_waker(slot: &mut Option<Waker>, waker: &Waker) {
    match slot {
        Some(w) if w.will_wake(waker) => {}
        _ => *slot = Some(waker.clone()),
    }
}

/// Cooperative budget for poll-style receives (design rule 8): when the
/// current task's budget is spent, asks to be polled again later and returns
/// `Pending` before taking anything, so a receiver that always finds a message
/// waiting still lets the other tasks of its shard run. Outside a runtime (a
/// plain thread in `blocking_recv`) there is no budget.
fn poll_budget(cx: &mut Context<'_>) -> Poll<()> {
    let spent = context::with_core(|c| c.is_some_and(|c| c.budget.get() == 0));
    if spent {
        cx.waker().wake_by_ref();
        Poll::Pending
    } else {
        Poll::Ready(())
    }
}

/// Takes one unit of the current task's budget after a receive succeeded.
fn charge_budget() {
    context::with_core(|c| c.map(|c| c.take_budget()));
}

/// Wakes a thread parked in [`block_on`].
struct ThreadWaker(Thread);

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

/// Runs `future` on the calling plain thread, parking it between polls.
///
/// # Panics
///
/// Panics when called on a thread that is running a corio runtime: parking
/// would stall every task of that shard. `what` names the method for the
/// message.
#[track_caller]
fn block_on<F: Future>(what: &str, future: F) -> F::Output {
    if context::with_core(|c| c.is_some()) {
        panic!(
            "corio: {what} blocks the thread and cannot be called from inside a corio \
             runtime; await the async method instead"
        );
    }
    let waker = Waker::from(Arc::new(ThreadWaker(thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = pin!(future);
    loop {
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
        // An unpark that came before this park leaves a token: not lost.
        thread::park();
    }
}
