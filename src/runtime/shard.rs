//! Thread per core: shards, `spawn_on` and `shard::current`.
//!
//! How it works: [`Builder::run`](crate::Builder::run) starts one thread per
//! shard (see `run.rs`); each builds its own runtime (its own executor and
//! driver, so its own io_uring instance) and runs the entry closure with its
//! [`ShardId`]. Every shard's core knows the set (`ShardSet`: each shard's
//! shared part). [`spawn_on`] creates a task whose schedule function targets
//! another shard's remote queue: the `Send` future travels there and runs on
//! that shard's thread; waking a parked shard goes through its ring (an
//! eventfd read kept in flight, or MSG_RING), never a busy poll.

use std::future::Future;

pub use super::core::ShardId;
pub use super::run::{RunError, Shards};
use super::task::spawn_onto;
use super::{JoinHandle, context};

/// Which shard the current task runs on, and how many there are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    id: ShardId,
    count: usize,
}

impl Shard {
    /// This shard's id.
    pub fn id(&self) -> ShardId {
        self.id
    }

    /// How many shards the runtime has (1 for a plain runtime).
    pub fn count(&self) -> usize {
        self.count
    }
}

/// The shard the calling task runs on.
///
/// # Panics
///
/// Panics outside a corio runtime.
///
/// ```
/// corio::run(async {
///     let me = corio::shard::current();
///     assert_eq!((me.id().index(), me.count()), (0, 1));
/// });
/// ```
#[track_caller]
pub fn current() -> Shard {
    let core = context::current("corio::shard::current");
    match core.shard.get() {
        Some(ctx) => Shard {
            id: ShardId(ctx.id),
            count: ctx.set.shards.len(),
        },
        None => Shard {
            id: ShardId(0),
            count: 1,
        },
    }
}

/// Runs `future` as a task on another shard and returns its handle, which
/// may be awaited on any shard or thread.
///
/// On a plain (unsharded) runtime, shard 0 is the runtime itself. If the
/// target shard has already shut down, the handle yields a cancelled
/// [`JoinError`](crate::JoinError).
///
/// # Panics
///
/// Panics outside a corio runtime, or when `shard` does not exist.
///
/// ```
/// use corio::shard::ShardId;
///
/// let out = corio::Builder::new()
///     .shards(2)
///     .run(|shard| async move {
///         if shard.index() == 0 {
///             let h = corio::spawn_on(ShardId::new(1), async { corio::shard::current().id() });
///             assert_eq!(h.await.unwrap(), ShardId::new(1));
///         }
///         shard.index()
///     })
///     .unwrap();
/// assert_eq!(out, vec![0, 1]);
/// ```
#[track_caller]
pub fn spawn_on<F>(shard: ShardId, future: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let core = context::current("corio::spawn_on");
    let target = match core.shard.get() {
        Some(ctx) => ctx.set.shards.get(shard.0).cloned(),
        None if shard.0 == 0 => Some(core.shared.clone()),
        None => None,
    };
    let Some(target) = target else {
        panic!("corio::spawn_on: there is no {shard} in this runtime");
    };
    // SAFETY: `F` is `Send`, so it may be polled and dropped on any thread,
    // and the task carries no context variables of this thread (`None`).
    unsafe { spawn_onto(target.into(), future, None, std::panic::Location::caller()) }
}
