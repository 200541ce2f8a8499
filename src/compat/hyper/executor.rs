//! [`CorioExecutor`]: hyper's tasks spawned on the current corio shard.
//!
//! How it works: `execute` is [`corio::spawn`](crate::spawn) with the join
//! handle dropped (detached). corio's tasks never leave their thread, so the
//! futures need not be `Send`.

use std::future::Future;

/// A [`hyper::rt::Executor`] that spawns on the current corio runtime.
///
/// hyper uses it for HTTP/2 (each stream of a server connection, a client
/// connection's background task). The futures need not be `Send`: they run
/// on the shard whose task calls into hyper. Use it only from inside a
/// corio runtime: `execute` panics elsewhere, as [`spawn`](crate::spawn)
/// does.
///
/// ```no_run
/// use corio::compat::hyper::{CorioExecutor, CorioTimer};
///
/// let mut http2 = hyper::server::conn::http2::Builder::new(CorioExecutor);
/// http2.timer(CorioTimer);
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct CorioExecutor;

impl<F> ::hyper::rt::Executor<F> for CorioExecutor
where
    F: Future + 'static,
    F::Output: 'static,
{
    fn execute(&self, fut: F) {
        drop(crate::spawn(fut));
    }
}
