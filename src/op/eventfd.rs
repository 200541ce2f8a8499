//! Reading an eventfd's counter: the wake-up of signal listeners.
//!
//! How it works: one op reads the 8-byte counter (io_uring `READ` at the
//! current position; readiness and read(2) on the poll driver), which also
//! resets it. The counter is shared by everyone who reads it, so a value
//! taken by an op whose future was dropped must not be lost: `abandoned`
//! hands it to the hook the op was built with.

use std::io;
use std::os::fd::RawFd;

#[cfg(corio_uring)]
use io_uring::{opcode, squeue, types};

use super::{Interest, OpCode, syscall_result};
use crate::net::fd::SharedFd;

/// Reads an eventfd's counter, like read(2) of 8 bytes.
pub(crate) struct ReadCounter {
    fd: SharedFd,
    value: Box<u64>,
    /// Called with the value an abandoned read took.
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

    #[cfg(corio_uring)]
    fn sqe(&mut self) -> squeue::Entry {
        let ptr = (&mut *self.value as *mut u64).cast::<u8>();
        opcode::Read::new(types::Fd(self.fd.raw()), ptr, 8)
            .offset(u64::MAX)
            .build()
    }

    fn readiness(&self) -> Option<(RawFd, Interest)> {
        Some((self.fd.raw(), Interest::Readable))
    }

    fn attempt(&mut self) -> io::Result<u32> {
        let ptr = (&mut *self.value as *mut u64).cast::<libc::c_void>();
        // SAFETY: the counter is owned by the op and 8 bytes long.
        syscall_result(unsafe { libc::read(self.fd.raw(), ptr, 8) })
    }

    fn complete(self, res: io::Result<u32>, _flags: u32) -> io::Result<u64> {
        res.map(|_| *self.value)
    }

    fn abandoned(self, res: io::Result<u32>, _flags: u32) {
        if res.is_ok() {
            (self.on_abandoned)(*self.value);
        }
    }
}
