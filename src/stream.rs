//! Streams: the `Stream` trait of `futures-core`, and `next()` to await
//! the next item.
//!
//! How it works: [`Stream`] is the poll-based trait the ecosystem shares
//! (`futures`, `tokio-stream` and others extend it), re-exported so corio's
//! streams work with their adapters. corio's receivers
//! ([`mpsc`](crate::sync::mpsc), [`broadcast`](crate::sync::broadcast),
//! [`watch`](crate::sync::watch)), [`TcpListener::incoming`](crate::net::TcpListener::incoming)
//! and [`BufReader::lines`](crate::io::BufReader::lines) implement it.
//! [`StreamExt::next`] is the one adapter corio carries itself; for more
//! (`map`, `filter`, ...) use `futures-util`'s `StreamExt` instead (import
//! one of the two: both name their method `next`).
//!
//! ```
//! use corio::stream::StreamExt;
//! use corio::sync::mpsc;
//!
//! corio::run(async {
//!     let (tx, mut rx) = mpsc::unbounded_channel();
//!     tx.send(1).unwrap();
//!     drop(tx);
//!     assert_eq!(rx.next().await, Some(1));
//!     assert_eq!(rx.next().await, None);
//! });
//! ```

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

pub use futures_core::Stream;

/// `next()` for any [`Stream`].
pub trait StreamExt: Stream {
    /// The next item, or `None` when the stream has ended. Cancel-safe
    /// whenever the stream's `poll_next` is (corio's are).
    fn next(&mut self) -> Next<'_, Self>
    where
        Self: Unpin,
    {
        Next { stream: self }
    }
}

impl<S: Stream + ?Sized> StreamExt for S {}

/// The future of [`StreamExt::next`].
#[derive(Debug)]
#[must_use = "futures do nothing unless polled"]
pub struct Next<'a, S: ?Sized> {
    stream: &'a mut S,
}

impl<S: Stream + Unpin + ?Sized> Future for Next<'_, S> {
    type Output = Option<S::Item>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut *self.stream).poll_next(cx)
    }
}
