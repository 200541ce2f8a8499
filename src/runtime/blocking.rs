//! `spawn_blocking`: run blocking code on the runtime's thread pool.
//!
//! How it works: the closure runs on a pool thread (see `driver/blocking.rs`)
//! with a copy of its caller's context variables (those whose values are
//! `Send + Sync`, see `ctxvar.rs`), as asyncio's `to_thread` runs its function
//! in a copy of the context; its result (or panic) comes back through a
//! one-shot slot whose waker is the awaiting task's. The returned [`JoinHandle`] is that of a small task on the
//! runtime that waits for the slot, so it behaves like any other handle.

use std::future::poll_fn;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::{Arc, Mutex};
use std::task::{Poll, Waker};

use super::{JoinHandle, context, ctxvar, spawn};

type Outcome<R> = std::thread::Result<R>;

struct Slot<R> {
    value: Option<Outcome<R>>,
    waker: Option<Waker>,
    /// The job was dropped without running (runtime shut down).
    dropped: bool,
}

/// Sets `dropped` if the job is dropped before it ran.
struct Sender<R>(Arc<Mutex<Slot<R>>>);

impl<R> Drop for Sender<R> {
    fn drop(&mut self) {
        let waker = {
            let mut s = self.0.lock().unwrap_or_else(|e| e.into_inner());
            if s.value.is_none() {
                s.dropped = true;
            }
            s.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }
}

/// Runs `f` on the runtime's blocking thread pool and returns a handle to its
/// result.
///
/// Use it for work that would stall the runtime's thread: blocking syscalls,
/// long computations, libraries without async APIs. The pool is bounded
/// (`Builder::max_blocking_threads`); jobs beyond it wait in a queue. A panic
/// in `f` becomes a [`JoinError`](super::JoinError). Aborting the handle stops
/// the wait, not `f`, which runs to completion.
///
/// `f` sees the caller's [`ContextVar`](crate::ContextVar) values (of
/// variables made with `ContextVar::new`) as they were at this call, like
/// asyncio's `to_thread`; what it sets stays on the pool thread for the
/// length of the call.
///
/// # Panics
///
/// Panics when called outside a corio runtime.
///
/// ```
/// corio::run(async {
///     let sum = corio::spawn_blocking(|| (1..=10u64).sum::<u64>()).await.unwrap();
///     assert_eq!(sum, 55);
/// });
/// ```
///
/// ```
/// static USER: corio::ContextVar<String> = corio::ContextVar::new("user");
///
/// corio::run(async {
///     USER.set("ada".to_string());
///     let seen = corio::spawn_blocking(|| USER.get()).await.unwrap();
///     assert_eq!(seen.as_deref(), Some("ada"));
/// });
/// ```
#[track_caller]
pub fn spawn_blocking<F, R>(f: F) -> JoinHandle<R>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    let core = context::current("corio::spawn_blocking");
    let slot = Arc::new(Mutex::new(Slot {
        value: None,
        waker: None,
        dropped: false,
    }));
    let tx = Sender(slot.clone());
    let ctx = ctxvar::capture_send();
    core.blocking.execute(Box::new(move || {
        let out = match ctx {
            Some(ctx) => ctx.run(|| catch_unwind(AssertUnwindSafe(f))),
            None => catch_unwind(AssertUnwindSafe(f)),
        };
        tx.0.lock().unwrap_or_else(|e| e.into_inner()).value = Some(out);
        drop(tx);
    }));
    spawn(async move {
        let out = poll_fn(|cx| {
            let mut s = slot.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(v) = s.value.take() {
                return Poll::Ready(Some(v));
            }
            if s.dropped {
                return Poll::Ready(None);
            }
            s.waker = Some(cx.waker().clone());
            Poll::Pending
        })
        .await;
        match out {
            Some(Ok(v)) => v,
            Some(Err(payload)) => resume_unwind(payload),
            None => panic!("corio: the blocking job was dropped by runtime shutdown"),
        }
    })
}
