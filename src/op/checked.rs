//! [`Checked`]: an op, or the answer of an argument check that failed
//! before it.
//!
//! A method that checks its arguments (a file position past `i64::MAX`)
//! and then awaits one op could be an `async fn`, but that is a state
//! machine of its own wrapped around the op's future: one more poll frame,
//! one more discriminant, on every call. Returning this instead keeps the
//! op's future the one the task polls.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::{Op, OpCode};

/// Future of an op whose arguments were checked when it was made: either
/// the op, or its output already (the error, with the buffer given back).
pub(crate) enum Checked<T: OpCode> {
    Op(Op<T>),
    /// The check's error; `None` once taken.
    Failed(Option<T::Output>),
}

// Never pinned inside: `Op` is `Unpin` and a failed check's output is only
// moved out.
impl<T: OpCode> Unpin for Checked<T> {}

impl<T: OpCode> Future for Checked<T> {
    type Output = T::Output;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T::Output> {
        match self.get_mut() {
            Checked::Op(op) => Pin::new(op).poll(cx),
            Checked::Failed(out) => {
                Poll::Ready(out.take().expect("corio: Op polled after completion"))
            }
        }
    }
}
