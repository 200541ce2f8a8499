//! Operations: one type per operation, and the [`Op`] future that runs it.
//!
//! How it works: an op type (say [`net::Recv`]) holds the fd, the buffer and
//! the arguments, and implements [`OpCode`]: how to build its SQE, which
//! readiness it needs when the kernel answers `EAGAIN` (a socket handed in with
//! `O_NONBLOCK`), and how the raw result becomes the user's value. [`Op`]
//! submits it on first poll and holds the op value while the future lives; the
//! kernel only ever sees heap addresses the value owns, so moving the value is
//! harmless. If the future is dropped before the completion, the value moves
//! into the driver's slot (`Abandoned`), a cancel is submitted for ops that
//! could wait forever, and [`OpCode::abandoned`] decides what happens to the
//! result nobody awaits (keep received data or an accepted fd for the next op
//! on that socket; close an fd nobody can take).

pub(crate) mod net;

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use io_uring::{opcode, squeue, types};

use crate::driver::{Abandoned, Lifecycle};
use crate::runtime::context;
use crate::runtime::core::Core;

/// Readiness an op waits for when its fd answers `EAGAIN`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Interest {
    Readable,
    Writable,
}

/// One kind of operation.
///
/// # Safety
///
/// Every address the SQE built by [`sqe`](OpCode::sqe) passes to the kernel
/// must point into memory owned by `self` that does not move when `self` is
/// moved (heap allocations, buffers satisfying `IoBuf`), or into `'static`
/// memory, and must stay valid until the op's completion. The driver keeps
/// the value alive (even when its future is dropped) until then.
pub(crate) unsafe trait OpCode: 'static {
    /// What the op's future returns.
    type Output;

    /// The io_uring submission entry (its `user_data` is set by the driver).
    fn sqe(&mut self) -> squeue::Entry;

    /// The fd and readiness to wait for when the kernel answers `EAGAIN`
    /// (socket in `O_NONBLOCK` mode); `None` when `EAGAIN` is a real result.
    fn readiness(&self) -> Option<(i32, Interest)> {
        None
    }

    /// Turns the raw result (`>= 0` value or `-errno`) into the output.
    fn complete(self, res: io::Result<u32>, flags: u32) -> Self::Output;

    /// The future was dropped and the op finished anyway: keep or release
    /// what the result carries. Must not touch the driver.
    fn abandoned(self, res: io::Result<u32>, flags: u32)
    where
        Self: Sized,
    {
        let _ = (res, flags);
    }
}

/// Converts a CQE result to `io::Result`, keeping the kernel's errno.
#[inline]
pub(crate) fn cqe_result(res: i32) -> io::Result<u32> {
    if res < 0 {
        Err(io::Error::from_raw_os_error(-res))
    } else {
        Ok(res as u32)
    }
}

impl<T: OpCode> Abandoned for T {
    fn complete(self: Box<Self>, res: i32, flags: u32) {
        (*self).abandoned(cqe_result(res), flags)
    }
}

enum State {
    Unsubmitted,
    /// The op itself is in the kernel.
    InFlight(usize),
    /// A readiness poll is in flight before the op is retried.
    Polling(usize),
    Done,
}

/// Future of one submitted operation.
pub(crate) struct Op<T: OpCode> {
    core: Rc<Core>,
    data: Option<T>,
    state: State,
}

impl<T: OpCode> Op<T> {
    /// An op on the current runtime; submitted when first polled.
    ///
    /// # Panics
    ///
    /// Panics outside a corio runtime.
    #[track_caller]
    pub(crate) fn new(data: T) -> Op<T> {
        Op {
            core: context::current("an I/O operation"),
            data: Some(data),
            state: State::Unsubmitted,
        }
    }
}

// The op value is never pinned: the kernel only sees heap memory it owns.
impl<T: OpCode> Unpin for Op<T> {}

impl<T: OpCode> Future for Op<T> {
    type Output = T::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T::Output> {
        // `Op` is `Unpin`: its op value lives on the heap side of any address
        // the kernel sees (see `OpCode`'s contract).
        let this = self.get_mut();
        loop {
            match this.state {
                State::Unsubmitted => {
                    let data = this
                        .data
                        .as_mut()
                        .expect("corio: Op polled after completion");
                    let sqe = data.sqe();
                    let submitted = this.core.driver.borrow_mut().submit(sqe, cx.waker());
                    match submitted {
                        Some(idx) => {
                            this.state = State::InFlight(idx);
                            return Poll::Pending;
                        }
                        None => {
                            this.state = State::Done;
                            let data = this.data.take().expect("op data");
                            return Poll::Ready(data.complete(Err(shut_down()), 0));
                        }
                    }
                }
                State::InFlight(idx) | State::Polling(idx) => {
                    let (res, flags) = {
                        let mut driver = this.core.driver.borrow_mut();
                        match driver.slot(idx) {
                            Lifecycle::Completed(res, flags) => {
                                let out = (*res, *flags);
                                driver.remove(idx);
                                out
                            }
                            Lifecycle::Waiting(w) => {
                                if !w.will_wake(cx.waker()) {
                                    *w = cx.waker().clone();
                                }
                                return Poll::Pending;
                            }
                            Lifecycle::Abandoned(_) => {
                                unreachable!("corio: live op marked abandoned")
                            }
                        }
                    };
                    if let State::Polling(_) = this.state {
                        // Readiness arrived (or the poll failed): retry the op,
                        // which reports any socket error itself.
                        this.state = State::Unsubmitted;
                        continue;
                    }
                    let data = this.data.as_ref().expect("op data");
                    if res == -libc::EAGAIN
                        && let Some((fd, interest)) = data.readiness()
                    {
                        let mask = match interest {
                            Interest::Readable => libc::POLLIN,
                            Interest::Writable => libc::POLLOUT,
                        };
                        let sqe = opcode::PollAdd::new(types::Fd(fd), mask as u32).build();
                        let submitted = this.core.driver.borrow_mut().submit(sqe, cx.waker());
                        if let Some(idx) = submitted {
                            this.state = State::Polling(idx);
                            return Poll::Pending;
                        }
                    }
                    this.state = State::Done;
                    let data = this.data.take().expect("op data");
                    return Poll::Ready(data.complete(cqe_result(res), flags));
                }
                State::Done => panic!("corio: Op polled after completion"),
            }
        }
    }
}

impl<T: OpCode> Drop for Op<T> {
    fn drop(&mut self) {
        let idx = match self.state {
            State::InFlight(idx) | State::Polling(idx) => idx,
            State::Unsubmitted | State::Done => return,
        };
        let polling = matches!(self.state, State::Polling(_));
        let mut driver = self.core.driver.borrow_mut();
        let slot = driver.slot(idx);
        if let Lifecycle::Completed(res, flags) = *slot {
            driver.remove(idx);
            drop(driver);
            if let (Some(data), false) = (self.data.take(), polling) {
                data.abandoned(cqe_result(res), flags);
            }
            return;
        }
        // Still in the kernel: the driver takes the value (and its buffer)
        // until the completion arrives. A readiness poll holds no buffer.
        let data = if polling {
            None
        } else {
            self.data.take().map(|d| Box::new(d) as Box<dyn Abandoned>)
        };
        *slot = Lifecycle::Abandoned(data);
        driver.cancel(idx);
        drop(driver);
        // When polling, the op value is dropped here, outside the borrow.
    }
}

fn shut_down() -> io::Error {
    io::Error::other("corio: the runtime has shut down")
}

/// A no-op round trip through the ring (`IORING_OP_NOP`).
#[derive(Debug)]
pub(crate) struct Nop;

// SAFETY: a NOP names no memory.
unsafe impl OpCode for Nop {
    type Output = io::Result<()>;

    fn sqe(&mut self) -> squeue::Entry {
        opcode::Nop::new().build()
    }

    fn complete(self, res: io::Result<u32>, _flags: u32) -> io::Result<()> {
        res.map(drop)
    }
}

/// Submits a no-op to the kernel and waits for its completion.
///
/// It measures the cost of one operation round trip through the runtime
/// (submit, reap, wake, poll) and is otherwise useless.
///
/// ```
/// corio::run(async { corio::nop().await.unwrap() });
/// ```
pub async fn nop() -> io::Result<()> {
    Op::new(Nop).await
}
