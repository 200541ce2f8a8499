//! Running an op on the readiness (poll) driver.
//!
//! How it works: the op's non-blocking syscall is attempted at once when the
//! driver believes the fd ready; `WouldBlock` clears that belief and parks the
//! task's waker on the fd until the driver sees an edge, then the op tries
//! again. A result that shows the fd drained (a short stream read or write,
//! see `OpCode::drained`) clears the belief too, saving that `EAGAIN`. Ops
//! that never wait run their syscall directly. Each result that arrives
//! without waiting takes one unit of the task's budget, so a loop
//! whose syscalls keep succeeding (or failing, like `accept` under `EMFILE`)
//! still yields to other tasks.

use std::io;
use std::task::{Context, Poll};

use super::{Op, OpCode};

impl<T: OpCode> Op<T> {
    pub(super) fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<T::Output> {
        if matches!(self.state, super::State::Unsubmitted) && !self.core.take_budget() {
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        if let super::State::Blocking(_) = self.state {
            return self.poll_blocking(cx);
        }
        let data = self.data.as_mut().expect("op data");
        if data.blocking() {
            return self.poll_blocking(cx);
        }
        let Some((fd, interest)) = data.readiness() else {
            let res = data.attempt();
            return self.finish(res, 0);
        };
        loop {
            if !self
                .core
                .driver
                .borrow_mut()
                .poll()
                .poll_ready(fd, interest, cx.waker())
            {
                return Poll::Pending;
            }
            let data = self.data.as_mut().expect("op data");
            let res = data.attempt();
            // The fd is not ready any more: it said so, or the result shows it.
            let spent = match &res {
                Err(e) => e.kind() == io::ErrorKind::WouldBlock,
                Ok(n) => data.drained(*n),
            };
            if spent {
                self.core
                    .driver
                    .borrow_mut()
                    .poll()
                    .clear_ready(fd, interest);
            }
            match res {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.core.counters.would_block(),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                res => return self.finish(res, 0),
            }
        }
    }
}
