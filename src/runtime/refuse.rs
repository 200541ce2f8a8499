//! What a shutting-down runtime refuses: new connections.
//!
//! How it works: listeners run their accepts through [`accept`], which
//! fails at once when the current runtime's drain has started
//! ([`Handle::shutdown`](super::Handle::shutdown)), and gives a waiting accept up when
//! the drain starts (a drain wakes every task once).

use std::io;

use super::context::with_core;

/// The error an accept returns once its runtime shuts down.
pub(crate) fn shutting_down() -> io::Error {
    io::Error::other(
        "corio: the runtime is shutting down; no new connections are accepted \
         (corio::runtime::is_shutting_down() tells this error apart)",
    )
}

/// `Err` when the current runtime is shutting down: listeners call it
/// before accepting (and when woken while an accept waits).
#[inline]
pub(crate) fn refuse_accept() -> io::Result<()> {
    if with_core(|c| c.is_some_and(|c| c.shared.drain.started())) {
        return Err(shutting_down());
    }
    Ok(())
}

/// Runs an accept unless the runtime is shutting down, and gives it up when
/// a shutdown starts while it waits (a shutdown wakes every task). What the
/// dropped accept still gets is kept for the listener, and closed with it.
pub(crate) async fn accept<T>(
    accept: impl std::future::Future<Output = io::Result<T>>,
) -> io::Result<T> {
    refuse_accept()?;
    let mut accept = std::pin::pin!(accept);
    std::future::poll_fn(|cx| {
        if let std::task::Poll::Ready(res) = accept.as_mut().poll(cx) {
            return std::task::Poll::Ready(res);
        }
        refuse_accept()?;
        std::task::Poll::Pending
    })
    .await
}
