//! Pipe operations: read and write at the current position (pipes have no
//! offsets), as a child process's stdin, stdout and stderr use them.
//!
//! How it works: io_uring `READ`/`WRITE` with offset -1 ("the file's
//! position", which a pipe ignores); on the poll driver the pipe's readiness
//! and read(2)/write(2). A read is a read of its fd's role, as a socket's
//! receive is: reads are serialised, and what a read whose future was
//! dropped got is kept on the pipe's `SharedFd` for the next read.

use std::io;

use super::{Interest, Kind, OpCode, Role, Sqe, Wait, uring};
use crate::buf::{BufResult, IoBuf, IoBufMut};
use crate::driver::op::syscall_result;
use crate::fd::SharedFd;
use crate::op::net::drained_by_read;

/// The most one read or write moves (what read(2) would cut it to anyway).
const MAX_RW: usize = 0x7fff_f000;

/// Reads from a pipe into a buffer, like read(2).
pub(crate) struct PipeRead<B> {
    fd: SharedFd,
    buf: B,
}

impl<B: IoBufMut> PipeRead<B> {
    pub(crate) fn new(fd: &SharedFd, buf: B) -> PipeRead<B> {
        PipeRead {
            fd: fd.clone(),
            buf,
        }
    }
}

// SAFETY: the buffer's memory is stable and owned by the op (`IoBufMut`).
unsafe impl<B: IoBufMut> OpCode for PipeRead<B> {
    type Output = BufResult<usize, B>;

    fn wait(&self) -> Wait<'_> {
        Wait::Ready(&self.fd, Interest::Readable)
    }

    fn role(&self) -> Option<Role<'_>> {
        Some(Role {
            fd: &self.fd,
            kind: Kind::Read,
            multishot: false,
        })
    }

    fn recover(&mut self) -> Option<io::Result<u32>> {
        let mut kept = self.fd.kept();
        kept.take_bytes(&mut self.buf).map(|r| r.map(|n| n as u32))
    }

    fn sqe(&mut self) -> Sqe {
        let len = self.buf.bytes_total().min(MAX_RW) as u32;
        let ptr = self.buf.stable_mut_ptr();
        uring!(
            opcode::Read::new(types::Fd(self.fd.raw()), ptr, len)
                .offset(u64::MAX)
                .build()
        )
    }

    fn attempt(&mut self) -> io::Result<u32> {
        let (ptr, len) = (
            self.buf.stable_mut_ptr(),
            self.buf.bytes_total().min(MAX_RW),
        );
        // SAFETY: the buffer is owned by the op and `len` bytes long.
        syscall_result(unsafe { libc::read(self.fd.raw(), ptr.cast(), len) })
    }

    fn drained(&self, n: u32) -> bool {
        drained_by_read(&self.fd, false, n as usize, self.buf.bytes_total())
    }

    fn complete(mut self, res: io::Result<u32>, _flags: u32) -> Self::Output {
        let res = res.map(|n| {
            // SAFETY: the kernel wrote `n` bytes at the start of the buffer.
            unsafe { self.buf.set_init(n as usize) };
            n as usize
        });
        (res, self.buf)
    }

    fn release(&mut self, res: io::Result<u32>, _flags: u32) {
        let mut kept = self.fd.kept();
        match res {
            Ok(0) => kept.stash_end(Ok(())),
            Ok(n) => {
                // SAFETY: the kernel wrote `n` bytes at the buffer's start.
                let data = unsafe { std::slice::from_raw_parts(self.buf.stable_ptr(), n as usize) };
                kept.stash_bytes(data);
            }
            Err(e) if e.raw_os_error() == Some(libc::ECANCELED) => {}
            Err(e) => kept.stash_end(Err(e)),
        }
    }
}

/// Writes a buffer into a pipe, like write(2).
pub(crate) struct PipeWrite<B> {
    fd: SharedFd,
    buf: B,
}

impl<B: IoBuf> PipeWrite<B> {
    pub(crate) fn new(fd: &SharedFd, buf: B) -> PipeWrite<B> {
        PipeWrite {
            fd: fd.clone(),
            buf,
        }
    }
}

// SAFETY: the buffer's memory is stable and owned by the op (`IoBuf`).
unsafe impl<B: IoBuf> OpCode for PipeWrite<B> {
    type Output = BufResult<usize, B>;

    fn wait(&self) -> Wait<'_> {
        Wait::Ready(&self.fd, Interest::Writable)
    }

    fn sqe(&mut self) -> Sqe {
        let len = self.buf.bytes_init().min(MAX_RW) as u32;
        let ptr = self.buf.stable_ptr();
        uring!(
            opcode::Write::new(types::Fd(self.fd.raw()), ptr, len)
                .offset(u64::MAX)
                .build()
        )
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
