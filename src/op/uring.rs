//! Running an op on the io_uring driver.
//!
//! How it works: the first poll submits the SQE into a driver slot holding
//! the task's waker. A completion moves the slot to `Completed`; the next poll
//! takes the result. `EAGAIN` from a socket in `O_NONBLOCK` mode is not a
//! result: a `POLL_ADD` for the op's readiness is submitted, and the op is
//! retried when it fires. Dropping the future while the op is in the kernel
//! hands the op value (buffers, fds) to the slot and submits `ASYNC_CANCEL`.

use std::io;
use std::task::{Context, Poll};

use io_uring::{opcode, types};

use super::{Interest, Op, OpCode, State};
use crate::driver::{Abandoned, Lifecycle};

/// Converts a CQE result to `io::Result`, keeping the kernel's errno.
#[inline]
pub(crate) fn cqe_result(res: i32) -> io::Result<u32> {
    if res < 0 {
        Err(io::Error::from_raw_os_error(-res))
    } else {
        Ok(res as u32)
    }
}

fn shut_down() -> io::Error {
    io::Error::other("corio: the runtime has shut down")
}

impl<T: OpCode> Abandoned for T {
    fn complete(self: Box<Self>, res: i32, flags: u32) {
        (*self).abandoned(cqe_result(res), flags)
    }
}

impl<T: OpCode> Op<T> {
    pub(super) fn poll_uring(&mut self, cx: &mut Context<'_>) -> Poll<T::Output> {
        loop {
            match self.state {
                State::Unsubmitted => {
                    let data = self.data.as_mut().expect("op data");
                    if let Some(code) = data.optional_opcode()
                        && !self.core.driver.borrow_mut().uring().supports(code)
                    {
                        // The kernel lacks the opcode: run the syscall on
                        // the blocking pool, as the poll driver does.
                        return self.poll_blocking(cx);
                    }
                    let sqe = data.sqe();
                    let submitted = self
                        .core
                        .driver
                        .borrow_mut()
                        .uring()
                        .submit(sqe, cx.waker());
                    match submitted {
                        Some(idx) => {
                            self.state = State::InFlight(idx);
                            return Poll::Pending;
                        }
                        None => return self.finish(Err(shut_down()), 0),
                    }
                }
                State::InFlight(idx) | State::Polling(idx) => {
                    let (res, flags) = {
                        let mut driver = self.core.driver.borrow_mut();
                        let driver = driver.uring();
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
                            Lifecycle::Abandoned(_) | Lifecycle::Multi(_) => {
                                unreachable!("corio: live op marked abandoned")
                            }
                        }
                    };
                    if let State::Polling(_) = self.state {
                        // Readiness arrived (or the poll failed): retry the op,
                        // which reports any socket error itself.
                        self.state = State::Unsubmitted;
                        continue;
                    }
                    let data = self.data.as_ref().expect("op data");
                    if res == -libc::EAGAIN
                        && let Some((fd, interest)) = data.readiness()
                    {
                        self.core.counters.would_block();
                        let mask = match interest {
                            Interest::Readable => libc::POLLIN,
                            Interest::Writable => libc::POLLOUT,
                        };
                        let sqe = opcode::PollAdd::new(types::Fd(fd), mask as u32).build();
                        let submitted = self
                            .core
                            .driver
                            .borrow_mut()
                            .uring()
                            .submit(sqe, cx.waker());
                        if let Some(idx) = submitted {
                            self.state = State::Polling(idx);
                            return Poll::Pending;
                        }
                    }
                    return self.finish(cqe_result(res), flags);
                }
                State::Blocking(_) => return self.poll_blocking(cx),
                State::Done => unreachable!("corio: Op polled after completion"),
            }
        }
    }

    pub(super) fn drop_uring(&mut self) {
        let (idx, polling) = match self.state {
            State::InFlight(idx) => (idx, false),
            State::Polling(idx) => (idx, true),
            State::Unsubmitted | State::Done | State::Blocking(_) => return,
        };
        let mut guard = self.core.driver.borrow_mut();
        let driver = guard.uring();
        let slot = driver.slot(idx);
        if let Lifecycle::Completed(res, flags) = *slot {
            driver.remove(idx);
            drop(guard);
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
        // When polling, the op value is dropped with `self`, after the borrow.
    }
}
