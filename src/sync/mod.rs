//! Channels that work across shards, from plain threads and inside one runtime.
//!
//! - [`oneshot`]: one value, one sender, one receiver.
//! - [`mpsc`]: many senders, one receiver; bounded (with back-pressure) or
//!   unbounded.
//!
//! How it works: each channel is a small state block behind a `Mutex`, shared
//! by its handles through an `Arc`. A side that must wait stores its task's
//! waker in the state and re-checks under the same lock, so a wake-up is never
//! lost; the other side takes that waker under the lock and wakes it after
//! unlocking. corio wakers are `Send + Sync`: waking a task that runs on
//! another shard queues it there and unparks that thread, so the same channel
//! connects tasks on different runtimes. The `blocking_*` methods drive the
//! same futures on a plain thread, parking it between polls.
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

pub mod mpsc;
pub mod oneshot;

use std::future::Future;
use std::pin::pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread};

use crate::runtime::context;

/// Locks `m`, ignoring poisoning: no user code runs while a channel lock is
/// held (values are dropped and wakers woken after unlocking), so the state
/// is consistent even if a panic happened elsewhere on that thread.
fn lock<S>(m: &Mutex<S>) -> MutexGuard<'_, S> {
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
