//! Pipe operations: read and write at the current position (pipes have no
//! offsets), as a child process's stdin, stdout and stderr use them.
//!
//! How it works: io_uring `READ`/`WRITE` with offset -1 ("the file's
//! position", which a pipe ignores); on the poll driver the pipe's readiness
//! and read(2)/write(2). A read carries the pipe's `ReadGuard` and, when its
//! future was dropped, leaves what it read on the pipe's `SharedFd` for the
//! next read, as a socket's receive does.

use std::io;
use std::os::fd::RawFd;

#[cfg(corio_uring)]
use io_uring::{opcode, squeue, types};

use super::{Interest, OpCode, syscall_result};
use crate::buf::{BufResult, IoBuf, IoBufMut};
use crate::net::fd::{ReadGuard, SharedFd};

/// The most one read or write moves (what read(2) would cut it to anyway).
const MAX_RW: usize = 0x7fff_f000;

/// Reads from a pipe into a buffer, like read(2).
pub(crate) struct PipeRead<B> {
    pub(crate) guard: ReadGuard,
    pub(crate) buf: B,
}

// SAFETY: the buffer's memory is stable and owned by the op (`IoBufMut`).
unsafe impl<B: IoBufMut> OpCode for PipeRead<B> {
    type Output = BufResult<usize, B>;

    #[cfg(corio_uring)]
    fn sqe(&mut self) -> squeue::Entry {
        let len = self.buf.bytes_total().min(MAX_RW) as u32;
        let fd = types::Fd(self.guard.fd().raw());
        opcode::Read::new(fd, self.buf.stable_mut_ptr(), len)
            .offset(u64::MAX)
            .build()
    }

    fn readiness(&self) -> Option<(RawFd, Interest)> {
        Some((self.guard.fd().raw(), Interest::Readable))
    }

    fn attempt(&mut self) -> io::Result<u32> {
        let (ptr, len) = (
            self.buf.stable_mut_ptr(),
            self.buf.bytes_total().min(MAX_RW),
        );
        // SAFETY: the buffer is owned by the op and `len` bytes long.
        syscall_result(unsafe { libc::read(self.guard.fd().raw(), ptr.cast(), len) })
    }

    fn drained(&self, n: u32) -> bool {
        super::drained_by_read(false, n as usize, self.buf.bytes_total())
    }

    fn complete(mut self, res: io::Result<u32>, _flags: u32) -> Self::Output {
        let res = res.map(|n| {
            // SAFETY: the kernel wrote `n` bytes at the start of the buffer.
            unsafe { self.buf.set_init(n as usize) };
            n as usize
        });
        (res, self.buf)
    }

    fn abandoned(self, res: io::Result<u32>, _flags: u32) {
        let fd = self.guard.fd();
        match res {
            Ok(0) => fd.stash_read_end(Ok(())),
            Ok(n) => {
                // SAFETY: the kernel wrote `n` bytes at the buffer's start.
                let data = unsafe { std::slice::from_raw_parts(self.buf.stable_ptr(), n as usize) };
                fd.stash_bytes(data);
            }
            Err(e) if e.raw_os_error() == Some(libc::ECANCELED) => {}
            Err(e) => fd.stash_read_end(Err(e)),
        }
    }
}

/// Writes a buffer into a pipe, like write(2).
pub(crate) struct PipeWrite<B> {
    pub(crate) fd: SharedFd,
    pub(crate) buf: B,
}

// SAFETY: the buffer's memory is stable and owned by the op (`IoBuf`).
unsafe impl<B: IoBuf> OpCode for PipeWrite<B> {
    type Output = BufResult<usize, B>;

    #[cfg(corio_uring)]
    fn sqe(&mut self) -> squeue::Entry {
        let len = self.buf.bytes_init().min(MAX_RW) as u32;
        opcode::Write::new(types::Fd(self.fd.raw()), self.buf.stable_ptr(), len)
            .offset(u64::MAX)
            .build()
    }

    fn readiness(&self) -> Option<(RawFd, Interest)> {
        Some((self.fd.raw(), Interest::Writable))
    }

    fn attempt(&mut self) -> io::Result<u32> {
        let (ptr, len) = (self.buf.stable_ptr(), self.buf.bytes_init().min(MAX_RW));
        // SAFETY: the buffer is owned by the op and has `len` initialised bytes.
        syscall_result(unsafe { libc::write(self.fd.raw(), ptr.cast(), len) })
    }

    fn drained(&self, n: u32) -> bool {
        // A short write filled the pipe.
        (n as usize) < self.buf.bytes_init()
    }

    fn complete(self, res: io::Result<u32>, _flags: u32) -> Self::Output {
        (res.map(|n| n as usize), self.buf)
    }
}
