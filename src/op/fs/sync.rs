//! Flushing and sizing a file: fsync/fdatasync, sync_file_range, fallocate
//! and ftruncate.
//!
//! How it works: as every file op, each names no memory but its fd (kept open
//! by its `SharedFd`) and runs its plain syscall on the poll driver's
//! blocking pool. `FTRUNCATE` arrived in Linux 6.9, so `Truncate` names it as
//! optional: an older kernel runs ftruncate(2) on the pool instead.

use std::io;
use std::os::fd::RawFd;

use super::cvt;
use crate::fd::SharedFd;
use crate::op::{OpCode, Sqe, Wait, uring};

/// Flushes a file to its device, like fsync(2), or fdatasync(2) with `data_only`.
pub(crate) struct Fsync {
    fd: SharedFd,
    raw: RawFd,
    data_only: bool,
}

impl Fsync {
    pub(crate) fn new(file: &SharedFd, data_only: bool) -> Fsync {
        Fsync {
            fd: file.clone(),
            raw: file.raw(),
            data_only,
        }
    }
}

// SAFETY: names no memory.
unsafe impl OpCode for Fsync {
    type Output = io::Result<()>;

    fn sqe(&mut self) -> Sqe {
        uring!({
            let flags = if self.data_only {
                types::FsyncFlags::DATASYNC
            } else {
                types::FsyncFlags::empty()
            };
            opcode::Fsync::new(types::Fd(self.raw)).flags(flags).build()
        })
    }

    fn wait(&self) -> Wait<'_> {
        Wait::Blocking
    }

    fn fixed_fd(&self) -> Option<&SharedFd> {
        Some(&self.fd)
    }

    fn attempt(&mut self) -> io::Result<u32> {
        let raw = self.raw;
        if self.data_only {
            // SAFETY: a plain syscall on an fd the op keeps open.
            cvt(|| unsafe { libc::fdatasync(raw) } as libc::ssize_t)
        } else {
            // SAFETY: as above.
            cvt(|| unsafe { libc::fsync(raw) } as libc::ssize_t)
        }
    }

    fn complete(self, res: io::Result<u32>, _flags: u32) -> io::Result<()> {
        res.map(drop)
    }
}

/// Writes a range of a file out, like sync_file_range(2).
pub(crate) struct SyncRange {
    fd: SharedFd,
    raw: RawFd,
    offset: u64,
    /// At most `u32::MAX` (the SQE's field); 0 means "to the end".
    len: u32,
    flags: u32,
}

impl SyncRange {
    pub(crate) fn new(file: &SharedFd, offset: u64, len: u32, flags: u32) -> SyncRange {
        SyncRange {
            fd: file.clone(),
            raw: file.raw(),
            offset,
            len,
            flags,
        }
    }
}

// SAFETY: names no memory.
unsafe impl OpCode for SyncRange {
    type Output = io::Result<()>;

    fn sqe(&mut self) -> Sqe {
        uring!({
            opcode::SyncFileRange::new(types::Fd(self.raw), self.len)
                .offset(self.offset)
                .flags(self.flags)
                .build()
        })
    }

    fn wait(&self) -> Wait<'_> {
        Wait::Blocking
    }

    fn fixed_fd(&self) -> Option<&SharedFd> {
        Some(&self.fd)
    }

    fn attempt(&mut self) -> io::Result<u32> {
        let (raw, off, len) = (
            self.raw,
            self.offset as libc::off64_t,
            self.len as libc::off64_t,
        );
        let flags = self.flags as libc::c_uint;
        // SAFETY: a plain syscall on an fd the op keeps open.
        cvt(|| unsafe { libc::sync_file_range(raw, off, len, flags) } as libc::ssize_t)
    }

    fn complete(self, res: io::Result<u32>, _flags: u32) -> io::Result<()> {
        res.map(drop)
    }
}

/// Allocates (or with a mode, punches or zeroes) a file range, like fallocate(2).
pub(crate) struct Fallocate {
    fd: SharedFd,
    raw: RawFd,
    offset: u64,
    len: u64,
    mode: i32,
}

impl Fallocate {
    pub(crate) fn new(file: &SharedFd, offset: u64, len: u64, mode: i32) -> Fallocate {
        Fallocate {
            fd: file.clone(),
            raw: file.raw(),
            offset,
            len,
            mode,
        }
    }
}

// SAFETY: names no memory.
unsafe impl OpCode for Fallocate {
    type Output = io::Result<()>;

    fn sqe(&mut self) -> Sqe {
        uring!({
            opcode::Fallocate::new(types::Fd(self.raw), self.len)
                .offset(self.offset)
                .mode(self.mode)
                .build()
        })
    }

    fn wait(&self) -> Wait<'_> {
        Wait::Blocking
    }

    fn fixed_fd(&self) -> Option<&SharedFd> {
        Some(&self.fd)
    }

    fn attempt(&mut self) -> io::Result<u32> {
        let (raw, mode) = (self.raw, self.mode);
        let (off, len) = (self.offset as libc::off_t, self.len as libc::off_t);
        // SAFETY: a plain syscall on an fd the op keeps open.
        cvt(|| unsafe { libc::fallocate(raw, mode, off, len) } as libc::ssize_t)
    }

    fn complete(self, res: io::Result<u32>, _flags: u32) -> io::Result<()> {
        res.map(drop)
    }
}

/// Sets a file's length, like ftruncate(2) (io_uring: Linux 6.9+).
pub(crate) struct Truncate {
    fd: SharedFd,
    raw: RawFd,
    len: u64,
}

impl Truncate {
    pub(crate) fn new(file: &SharedFd, len: u64) -> Truncate {
        Truncate {
            fd: file.clone(),
            raw: file.raw(),
            len,
        }
    }
}

// SAFETY: names no memory.
unsafe impl OpCode for Truncate {
    type Output = io::Result<()>;

    fn sqe(&mut self) -> Sqe {
        uring!(opcode::Ftruncate::new(types::Fd(self.raw), self.len).build())
    }

    fn wait(&self) -> Wait<'_> {
        Wait::Blocking
    }

    fn fixed_fd(&self) -> Option<&SharedFd> {
        Some(&self.fd)
    }

    fn optional_opcode(&self) -> Option<u8> {
        uring!(Some(opcode::Ftruncate::CODE))
    }

    fn attempt(&mut self) -> io::Result<u32> {
        let (raw, len) = (self.raw, self.len as libc::off_t);
        // SAFETY: a plain syscall on an fd the op keeps open.
        cvt(|| unsafe { libc::ftruncate(raw, len) } as libc::ssize_t)
    }

    fn complete(self, res: io::Result<u32>, _flags: u32) -> io::Result<()> {
        res.map(drop)
    }
}
