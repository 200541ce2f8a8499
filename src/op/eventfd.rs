//! Reading an eventfd's counter: the wake-up of signal listeners.
//!
//! How it works: one op reads the 8-byte counter (io_uring `READ` at the
//! current position; readiness and read(2) on the poll driver), which also
//! resets it. The counter is shared by everyone who reads it, so a value
//! taken by an op whose future was dropped must not be lost: `release`
//! hands it to the hook the op was built with.

use std::io;

use super::{Interest, OpCode, Sqe, Wait, uring};
use crate::driver::op::syscall_result;
use crate::fd::SharedFd;

/// Reads an eventfd's counter, like read(2) of 8 bytes.
pub(crate) struct ReadCounter {
    fd: SharedFd,
    value: Box<u64>,
    /// Called with the value a dropped read took.
    on_abandoned: fn(u64),
}

impl ReadCounter {
    pub(crate) fn new(fd: SharedFd, on_abandoned: fn(u64)) -> ReadCounter {
        ReadCounter {
            fd,
            value: Box::new(0),
            on_abandoned,
        }
    }
}

// SAFETY: the kernel writes into the boxed counter, owned by the op.
unsafe impl OpCode for ReadCounter {
    type Output = io::Result<u64>;

    fn wait(&self) -> Wait<'_> {
        Wait::Ready(&self.fd, Interest::Readable)
    }

    fn sqe(&mut self) -> Sqe {
        let ptr = (&mut *self.value as *mut u64).cast::<u8>();
        uring!(
            opcode::Read::new(types::Fd(self.fd.raw()), ptr, 8)
                .offset(u64::MAX)
                .build()
        )
    }

    fn attempt(&mut self) -> io::Result<u32> {
        let ptr = (&mut *self.value as *mut u64).cast::<libc::c_void>();
        // SAFETY: the counter is owned by the op and 8 bytes long.
        syscall_result(unsafe { libc::read(self.fd.raw(), ptr, 8) })
    }

    fn complete(self, res: io::Result<u32>, _flags: u32) -> io::Result<u64> {
        res.map(|_| *self.value)
    }

    fn release(&mut self, res: io::Result<u32>, _flags: u32) {
        if res.is_ok() {
            (self.on_abandoned)(*self.value);
        }
    }
}
