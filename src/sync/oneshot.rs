//! A channel for one value, from one [`Sender`] to one [`Receiver`].
//!
//! How it works: both handles share a state block behind a `Mutex`: the
//! value, whether the sender is done (sent or dropped), whether the receiver
//! is closed (closed or dropped), and one waker for each side. The
//! [`Receiver`] is itself a future; it resolves to the value, or to
//! [`RecvError`] when the sender went away without sending.
//! The sender and receiver may live on different shards or plain threads.
//!
//! ```
//! use corio::sync::oneshot;
//!
//! corio::run(async {
//!     let (tx, rx) = oneshot::channel();
//!     corio::spawn(async move {
//!         tx.send("done").unwrap();
//!     });
//!     assert_eq!(rx.await, Ok("done"));
//!
//!     let (tx, rx) = oneshot::channel::<u32>();
//!     drop(tx);
//!     assert!(rx.await.is_err());
//! });
//! ```

use std::fmt;
use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use self::error::{RecvError, TryRecvError};
use super::{block_on, lock, set_waker};

/// Creates a oneshot channel.
pub fn channel<T>() -> (Sender<T>, Receiver<T>) {
    let inner = Arc::new(Mutex::new(State {
        value: None,
        complete: false,
        closed: false,
        rx_waker: None,
        tx_waker: None,
    }));
    (
        Sender {
            inner: Some(inner.clone()),
        },
        Receiver { inner: Some(inner) },
    )
}

struct State<T> {
    value: Option<T>,
    /// The sender sent its value or was dropped.
    complete: bool,
    /// The receiver was closed or dropped: sending fails.
    closed: bool,
    rx_waker: Option<Waker>,
    /// The task waiting in [`Sender::closed`].
    tx_waker: Option<Waker>,
}

/// Sends one value to the [`Receiver`]. Dropping it without sending makes
/// the receiver get [`RecvError`].
pub struct Sender<T> {
    /// `None` once the value was sent.
    inner: Option<Arc<Mutex<State<T>>>>,
}

/// Receives the value sent by the [`Sender`]; await it.
///
/// Resolves to `Ok(value)`, or to `Err(RecvError)` if the sender was dropped
/// without sending (or the receiver was [closed](Receiver::close) before a
/// value arrived). Dropping the receiver makes [`Sender::send`] fail.
pub struct Receiver<T> {
    /// `None` once the outcome was delivered.
    inner: Option<Arc<Mutex<State<T>>>>,
}

impl<T> Sender<T> {
    /// Sends `value`, consuming the sender. Never waits.
    ///
    /// Returns the value back as `Err(value)` when the receiver was dropped
    /// or closed: then nobody could ever receive it.
    pub fn send(mut self, value: T) -> Result<(), T> {
        let inner = self.inner.take().expect("oneshot sender used after send");
        let mut st = lock(&inner);
        if st.closed {
            return Err(value);
        }
        st.value = Some(value);
        st.complete = true;
        let waker = st.rx_waker.take();
        drop(st);
        if let Some(w) = waker {
            w.wake();
        }
        Ok(())
    }

    /// True once the receiver was dropped or closed; a send would then fail.
    pub fn is_closed(&self) -> bool {
        self.inner.as_ref().is_none_or(|i| lock(i).closed)
    }

    /// Waits until the receiver is dropped or closed.
    ///
    /// Useful to stop computing a value nobody wants any more. Cancel-safe.
    pub async fn closed(&mut self) {
        poll_fn(|cx| self.poll_closed(cx)).await
    }

    /// Poll form of [`closed`](Sender::closed): `Ready` once the receiver is
    /// dropped or closed; otherwise registers `cx`'s waker.
    pub fn poll_closed(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let Some(inner) = &self.inner else {
            return Poll::Ready(());
        };
        let mut st = lock(inner);
        if st.closed {
            return Poll::Ready(());
        }
        set_waker(&mut st.tx_waker, cx.waker());
        Poll::Pending
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        let Some(inner) = self.inner.take() else {
            return;
        };
        let mut st = lock(&inner);
        st.complete = true;
        let waker = st.rx_waker.take();
        drop(st);
        if let Some(w) = waker {
            w.wake();
        }
    }
}

impl<T> Receiver<T> {
    /// Takes the value if it has arrived, without waiting.
    ///
    /// `Err(Empty)` while the sender may still send; `Err(Closed)` when it
    /// never will (dropped, or the receiver was closed) or the value was
    /// already taken.
    pub fn try_recv(&mut self) -> Result<T, TryRecvError> {
        let Some(inner) = &self.inner else {
            return Err(TryRecvError::Closed);
        };
        let mut st = lock(inner);
        if let Some(v) = st.value.take() {
            drop(st);
            self.inner = None;
            return Ok(v);
        }
        if st.complete || st.closed {
            drop(st);
            self.inner = None;
            return Err(TryRecvError::Closed);
        }
        Err(TryRecvError::Empty)
    }

    /// Stops the sender from sending: [`Sender::send`] fails from now on and
    /// [`Sender::closed`] resolves. A value sent before still arrives (via
    /// `try_recv` or by awaiting the receiver).
    pub fn close(&mut self) {
        let Some(inner) = &self.inner else { return };
        let mut st = lock(inner);
        st.closed = true;
        let waker = st.tx_waker.take();
        drop(st);
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// Waits for the value on a plain thread (not a corio runtime's).
    ///
    /// # Panics
    ///
    /// Panics when called from a thread that runs a corio runtime.
    #[track_caller]
    pub fn blocking_recv(self) -> Result<T, RecvError> {
        block_on("oneshot::Receiver::blocking_recv", self)
    }
}

impl<T> Future for Receiver<T> {
    type Output = Result<T, RecvError>;

    /// Polling again after the outcome was delivered yields `Err(RecvError)`.
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let Some(inner) = &self.inner else {
            return Poll::Ready(Err(RecvError(())));
        };
        let mut st = lock(inner);
        let out = if let Some(v) = st.value.take() {
            Ok(v)
        } else if st.complete || st.closed {
            Err(RecvError(()))
        } else {
            set_waker(&mut st.rx_waker, cx.waker());
            return Poll::Pending;
        };
        drop(st);
        self.inner = None;
        Poll::Ready(out)
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        let Some(inner) = self.inner.take() else {
            return;
        };
        let mut st = lock(&inner);
        st.closed = true;
        let value = st.value.take();
        let waker = st.tx_waker.take();
        drop(st);
        drop(value);
        if let Some(w) = waker {
            w.wake();
        }
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sender")
            .field("closed", &self.is_closed())
            .finish_non_exhaustive()
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (ready, complete) = match &self.inner {
            Some(i) => {
                let st = lock(i);
                (st.value.is_some(), st.complete)
            }
            None => (false, true),
        };
        f.debug_struct("Receiver")
            .field("value_ready", &ready)
            .field("sender_done", &complete)
            .finish()
    }
}

/// Errors of the oneshot channel.
pub mod error {
    use std::fmt;

    /// The [`Sender`](super::Sender) was dropped without sending (or the
    /// receiver was closed before a value arrived).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct RecvError(pub(super) ());

    impl fmt::Display for RecvError {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("channel closed")
        }
    }

    impl std::error::Error for RecvError {}

    /// Why [`Receiver::try_recv`](super::Receiver::try_recv) returned no value.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum TryRecvError {
        /// No value yet; the sender may still send one.
        Empty,
        /// No value will ever come: the sender was dropped, the receiver was
        /// closed, or the value was already taken.
        Closed,
    }

    impl fmt::Display for TryRecvError {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            match self {
                TryRecvError::Empty => f.write_str("channel empty"),
                TryRecvError::Closed => f.write_str("channel closed"),
            }
        }
    }

    impl std::error::Error for TryRecvError {}
}
