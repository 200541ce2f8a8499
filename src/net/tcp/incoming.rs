//! `Incoming`: the connections of a listener, from the multishot accept the
//! driver keeps armed on it, as an async `next()` and as a `Stream`.
//!
//! How it works: each connection is one `Accept` op in multishot mode (the
//! driver arms the multishot accept on the listener's fd and hands each op
//! the next connection). `next()` awaits such an op; the [`Stream`] impl
//! keeps the op it is waiting on in the `Incoming` between polls, and
//! `next()` finishes that op first if one is pending, so mixing the two
//! loses nothing. Dropping a pending op is cancel-safe: a connection it
//! would have taken goes to the listener's next accept.

use std::fmt;
use std::future::Future;
use std::io;
use std::os::fd::OwnedFd;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_core::Stream;
use socket2::SockAddr;

use super::{TcpListener, TcpStream};
use crate::op::Op;
use crate::op::net::Accept;
use crate::runtime::refuse::refuse_accept;
use crate::time::Sleep;

/// Connections accepted by a listener; see [`TcpListener::incoming`].
///
/// Await [`next`](Self::next), or use it as a
/// [`Stream`](crate::stream::Stream) of `io::Result<TcpStream>` (it never
/// ends):
///
/// ```no_run
/// use corio::stream::StreamExt;
///
/// # corio::run(async {
/// let listener = corio::net::TcpListener::bind("127.0.0.1:9000")?;
/// let mut incoming = listener.incoming();
/// while let Some(stream) = StreamExt::next(&mut incoming).await {
///     corio::spawn(async move { drop(stream) });
/// }
/// # Ok::<_, std::io::Error>(()) }).unwrap();
/// ```
pub struct Incoming<'a> {
    listener: &'a TcpListener,
    /// The accept `poll_next` waits on, kept between polls.
    pending: Option<Op<Accept>>,
    /// The listener's back-off timer, while `poll_next` waits on it.
    sleep: Option<Box<Sleep>>,
}

impl<'a> Incoming<'a> {
    pub(super) fn new(listener: &'a TcpListener) -> Self {
        Incoming {
            listener,
            pending: None,
            sleep: None,
        }
    }

    /// The next connection; an error once the runtime is shutting down
    /// (see [`Handle::shutdown`](crate::runtime::Handle::shutdown)).
    ///
    /// Cancel-safe: a connection accepted for a dropped call is returned by
    /// the next one.
    pub async fn next(&mut self) -> io::Result<TcpStream> {
        std::future::poll_fn(|cx| Pin::new(&mut *self).poll_next(cx))
            .await
            .expect("Incoming never ends")
    }
}

fn stream((fd, _peer): (OwnedFd, Option<SockAddr>)) -> TcpStream {
    TcpStream::accepted(fd)
}

impl Stream for Incoming<'_> {
    type Item = io::Result<TcpStream>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        // A shutdown starting meanwhile wakes every task.
        if let Err(e) = refuse_accept() {
            return Poll::Ready(Some(Err(e)));
        }
        let listener = this.listener;
        if this.pending.is_none() {
            std::task::ready!(listener.backoff.poll_wait(cx, &mut this.sleep));
        }
        let op = this
            .pending
            .get_or_insert_with(|| Op::new(Accept::new(&listener.fd, true)));
        let res = std::task::ready!(Pin::new(op).poll(cx));
        this.pending = None;
        listener.backoff.record(&res);
        Poll::Ready(Some(res.map(stream)))
    }
}

impl fmt::Debug for Incoming<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Incoming").finish_non_exhaustive()
    }
}
