//! Polling an op on the readiness driver.
//!
//! How it works: the op's non-blocking syscall is attempted at once when the
//! driver believes the fd ready; `WouldBlock` clears that belief and parks the
//! task's waker on the fd until the driver sees an edge, then the op tries
//! again. A result that shows the fd drained (a short stream read or write,
//! see `OpCode::drained`) clears the belief too, saving that `EAGAIN`. Ops
//! that never wait run their syscall directly; blocking ones (files) run on
//! the blocking pool. A pooled receive (an op of a multishot role) waits for
//! a free pool buffer before it tries.

use std::io;
use std::rc::Rc;
use std::task::Context;

use super::Poller;
use crate::buf::pool::Pool;
use crate::driver::blocking::{self, BlockingPool};
use crate::driver::op::{OpCode, Wait, op_data};
use crate::driver::{OpState, Progress};

impl Poller {
    pub(crate) fn poll_op<T: OpCode>(
        &mut self,
        state: &mut OpState<T>,
        data: &mut Option<T>,
        cx: &mut Context<'_>,
        blocking: &BlockingPool,
        pool: Option<&Rc<Pool>>,
    ) -> Progress {
        if let OpState::Blocking(_) = state {
            return blocking::poll(state, data, cx, blocking);
        }
        let op = op_data(data);
        let (fd, interest) = match op.wait() {
            Wait::Blocking => return blocking::poll(state, data, cx, blocking),
            Wait::Never => {
                let res = op.attempt();
                if self.timed() {
                    self.record_latency(T::kind_name(), None);
                }
                return Progress::Ready(res, 0);
            }
            Wait::Ready(fd, interest) => (fd.clone(), interest),
        };
        let pooled = op.role().is_some_and(|r| r.multishot);
        loop {
            if !self.poll_ready(&fd, interest, cx.waker()) {
                return Progress::Pending;
            }
            if pooled
                && let Some(pool) = pool
                && !pool.has_free()
            {
                self.stats.enobufs();
                pool.wait_for_free(cx.waker());
                return Progress::Pending;
            }
            let res = op.attempt();
            // The fd is not ready any more: it said so, or the result shows it.
            let would_block = matches!(&res, Err(e) if e.kind() == io::ErrorKind::WouldBlock);
            if would_block || matches!(res, Ok(n) if op.drained(n)) {
                self.clear_ready(fd.raw(), interest, would_block);
            }
            match res {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.stats.would_block(),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                res => {
                    if self.timed() {
                        self.record_latency(T::kind_name(), Some((fd.raw(), interest)));
                    }
                    return Progress::Ready(res, 0);
                }
            }
        }
    }
}
