//! `read_exact` and `write_all` once for every stream: loops of one read or
//! write over sub-slices of the same owned buffer.
//!
//! How it works: while a step is in flight the buffer lives inside it (as a
//! `Slice` of the remaining range), so the loop's future is the step's
//! future plus the step function and two counts — hand-written rather than
//! an `async fn`, whose state machine would keep room for the buffer as
//! well: every byte here is memory an idle connection holds.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::{BufResult, IoBuf, IoBufMut, Slice};

/// Fills a buffer (`read_exact`) or empties it (`write_all`) with steps.
pub(crate) struct Loop<B, F, Fut> {
    step: F,
    /// The step in flight (holding the buffer), or the buffer between
    /// steps (only before the first).
    state: State<B, Fut>,
    /// Bytes done so far, and the total to do.
    done: usize,
    total: usize,
    /// Filling (`UnexpectedEof` on 0) rather than emptying (`WriteZero`).
    fill: bool,
}

enum State<B, Fut> {
    Start(B),
    Step(Fut),
    Finished,
}

/// Reads with `read` until `buf` is full to its capacity; `UnexpectedEof`
/// if the stream ends first.
pub(crate) fn read_exact<B, F, Fut>(buf: B, read: F) -> Loop<B, F, Fut>
where
    B: IoBufMut,
    F: FnMut(Slice<B>) -> Fut,
    Fut: Future<Output = BufResult<usize, Slice<B>>>,
{
    let total = buf.bytes_total();
    Loop {
        step: read,
        state: State::Start(buf),
        done: 0,
        total,
        fill: true,
    }
}

/// Writes every initialised byte of `buf` with `write`, looping over short
/// writes; `WriteZero` if a write takes nothing.
pub(crate) fn write_all<B, F, Fut>(buf: B, write: F) -> Loop<B, F, Fut>
where
    B: IoBuf,
    F: FnMut(Slice<B>) -> Fut,
    Fut: Future<Output = BufResult<usize, Slice<B>>>,
{
    let total = buf.bytes_init();
    Loop {
        step: write,
        state: State::Start(buf),
        done: 0,
        total,
        fill: false,
    }
}

// No field is pinned: the buffer and the step function move freely, and
// the step's future is `Unpin` (bound below).
impl<B, F, Fut: Unpin> Unpin for Loop<B, F, Fut> {}

impl<B, F, Fut> Future for Loop<B, F, Fut>
where
    B: IoBuf,
    F: FnMut(Slice<B>) -> Fut,
    Fut: Future<Output = BufResult<usize, Slice<B>>> + Unpin,
{
    type Output = BufResult<(), B>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        loop {
            // Poll the step in place (no move of the op it holds).
            let (res, slice) = match &mut this.state {
                State::Step(fut) => match Pin::new(fut).poll(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(out) => out,
                },
                State::Start(_) => {
                    let State::Start(buf) = std::mem::replace(&mut this.state, State::Finished)
                    else {
                        unreachable!()
                    };
                    if this.total == 0 {
                        return Poll::Ready((Ok(()), buf));
                    }
                    let first = State::Step((this.step)(buf.slice(0..this.total)));
                    // `Finished`, which holds nothing: no drop glue to run.
                    std::mem::forget(std::mem::replace(&mut this.state, first));
                    continue;
                }
                State::Finished => panic!("corio: a read or write loop polled after it ended"),
            };
            let buf = slice.into_inner();
            match res {
                Ok(0) => {
                    this.state = State::Finished;
                    let e = if this.fill {
                        io::Error::new(io::ErrorKind::UnexpectedEof, "failed to fill whole buffer")
                    } else {
                        io::Error::new(io::ErrorKind::WriteZero, "failed to write whole buffer")
                    };
                    return Poll::Ready((Err(e), buf));
                }
                Ok(n) => this.done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    this.state = State::Finished;
                    return Poll::Ready((Err(e), buf));
                }
            }
            if this.done >= this.total {
                this.state = State::Finished;
                return Poll::Ready((Ok(()), buf));
            }
            this.state = State::Step((this.step)(buf.slice(this.done..this.total)));
        }
    }
}
