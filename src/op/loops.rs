//! `read_exact` and `write_all` once for every stream: loops of one read or
//! write over sub-slices of the same owned buffer.
//!
//! How it works: while a step is in flight the buffer lives inside it (as a
//! `Slice` of the remaining range), so the loop's future is the step's
//! op plus the step function and two counts — hand-written rather than
//! an `async fn`, whose state machine would keep room for the buffer as
//! well: every byte here is memory an idle connection holds.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::{Op, OpCode};
use crate::buf::{BufResult, IoBuf, IoBufMut, Slice};

/// Fills a buffer (`read_exact`) or empties it (`write_all`) with steps.
pub(crate) struct Loop<B, F, T: OpCode> {
    step: F,
    /// The step in flight, or done (holding the buffer as a `Slice` of the
    /// range left while in flight); for an empty buffer, the buffer until
    /// the one poll hands it back.
    state: State<B, T>,
    /// Bytes done so far, and the total to do.
    done: usize,
    total: usize,
    /// Filling (`UnexpectedEof` on 0) rather than emptying (`WriteZero`).
    fill: bool,
}

enum State<B, T: OpCode> {
    /// Nothing to do: the buffer, taken by the first poll.
    Empty(Option<B>),
    /// The current step's op. The first is made with the loop (making an
    /// op touches no runtime), so the common case, one step, polls it
    /// straight away. After the last step it stays, finished: polled
    /// again, it panics.
    Step(Op<T>),
}

impl<B, F, T> Loop<B, F, T>
where
    B: IoBuf,
    F: FnMut(Slice<B>) -> Op<T>,
    T: OpCode<Output = BufResult<usize, Slice<B>>>,
{
    #[inline(always)]
    fn new(buf: B, total: usize, mut step: F, fill: bool) -> Self {
        let state = if total == 0 {
            State::Empty(Some(buf))
        } else {
            State::Step(step(buf.slice(0..total)))
        };
        Loop {
            step,
            state,
            done: 0,
            total,
            fill,
        }
    }
}

/// Reads with `read` until `buf` is full to its capacity; `UnexpectedEof`
/// if the stream ends first.
#[inline(always)]
pub(crate) fn read_exact<B, F, T>(buf: B, read: F) -> Loop<B, F, T>
where
    B: IoBufMut,
    F: FnMut(Slice<B>) -> Op<T>,
    T: OpCode<Output = BufResult<usize, Slice<B>>>,
{
    let total = buf.bytes_total();
    Loop::new(buf, total, read, true)
}

/// Writes every initialised byte of `buf` with `write`, looping over short
/// writes; `WriteZero` if a write takes nothing.
#[inline(always)]
pub(crate) fn write_all<B, F, T>(buf: B, write: F) -> Loop<B, F, T>
where
    B: IoBuf,
    F: FnMut(Slice<B>) -> Op<T>,
    T: OpCode<Output = BufResult<usize, Slice<B>>>,
{
    let total = buf.bytes_init();
    Loop::new(buf, total, write, false)
}

// No field is pinned: the buffer, the step function and the op (never
// pinned: the kernel sees only heap memory it owns) move freely.
impl<B, F, T: OpCode> Unpin for Loop<B, F, T> {}

impl<B, F, T> Future for Loop<B, F, T>
where
    B: IoBuf,
    F: FnMut(Slice<B>) -> Op<T>,
    T: OpCode<Output = BufResult<usize, Slice<B>>>,
{
    type Output = BufResult<(), B>;

    #[inline(always)]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        loop {
            // Poll the step in place (no move of the op it holds).
            let (res, slice) = match &mut this.state {
                State::Step(op) => match Pin::new(op).poll(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(out) => out,
                },
                State::Empty(buf) => {
                    let buf = buf
                        .take()
                        .expect("corio: a read or write loop polled after it ended");
                    return Poll::Ready((Ok(()), buf));
                }
            };
            let buf = slice.into_inner();
            match res {
                Ok(0) => {
                    let e = if this.fill {
                        io::Error::new(io::ErrorKind::UnexpectedEof, "failed to fill whole buffer")
                    } else {
                        io::Error::new(io::ErrorKind::WriteZero, "failed to write whole buffer")
                    };
                    return Poll::Ready((Err(e), buf));
                }
                Ok(n) => this.done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Poll::Ready((Err(e), buf)),
            }
            if this.done >= this.total {
                return Poll::Ready((Ok(()), buf));
            }
            // The finished op is replaced (its drop is a test: nothing of
            // it is left).
            this.state = State::Step((this.step)(buf.slice(this.done..this.total)));
        }
    }
}
