//! Positional reads and writes: pread/pwrite (plain or on a registered
//! buffer) and preadv/pwritev.
//!
//! How it works: the op caches the buffer's pointer and length when it is
//! built (the `IoBuf` contract keeps them stable while the op owns the
//! buffer), so the blocking-pool `attempt` touches only plain data. A read
//! or write on a buffer registered with the ring carries its index and is
//! submitted as `READ_FIXED` / `WRITE_FIXED`; the syscall on the poll driver
//! is the same pread/pwrite.

use std::io;
use std::os::fd::RawFd;

use super::cached::read_cached;
use super::{MAX_RW, cvt};
use crate::buf::{BufResult, IoBuf, IoBufMut};
use crate::fd::SharedFd;
use crate::op::{OpCode, Sqe, Wait, uring};

/// Reads into a buffer from a file offset, like pread(2).
pub(crate) struct Read<B> {
    fd: SharedFd,
    raw: RawFd,
    buf: B,
    ptr: *mut u8,
    len: usize,
    pos: u64,
    /// The buffer's index in the ring's registered buffers.
    fixed: Option<u16>,
    /// Bytes the page cache gave at once (`cached.rs`): `ptr`, `len` and
    /// `pos` then describe the rest.
    done: u32,
}

impl<B: IoBufMut> Read<B> {
    /// A read filling `buf` from its start up to its capacity.
    pub(crate) fn new(file: &SharedFd, mut buf: B, pos: u64, fixed: Option<u16>) -> Read<B> {
        let ptr = buf.stable_mut_ptr();
        let len = buf.bytes_total().min(MAX_RW);
        Read {
            fd: file.clone(),
            raw: file.raw(),
            buf,
            ptr,
            len,
            pos,
            fixed,
            done: 0,
        }
    }
}

// SAFETY: the pointer and length describe the owned buffer's memory, which
// stays put while the op owns it (`IoBufMut`); a fixed index names this very
// memory in the ring's registration.
unsafe impl<B: IoBufMut> OpCode for Read<B> {
    type Output = BufResult<usize, B>;

    fn sqe(&mut self) -> Sqe {
        uring!({
            let len = self.len as u32;
            match self.fixed {
                Some(index) => opcode::ReadFixed::new(types::Fd(self.raw), self.ptr, len, index)
                    .offset(self.pos)
                    .build(),
                None => opcode::Read::new(types::Fd(self.raw), self.ptr, len)
                    .offset(self.pos)
                    .build(),
            }
        })
    }

    fn wait(&self) -> Wait<'_> {
        Wait::Blocking
    }

    fn fixed_fd(&self) -> Option<&SharedFd> {
        Some(&self.fd)
    }

    const TRY_NOW: bool = true;

    #[inline]
    fn try_now(&mut self) -> Option<u32> {
        // SAFETY: `ptr` names the owned buffer's `len` bytes.
        let (n, over) = unsafe { read_cached(&self.fd, self.ptr, self.len, self.pos) };
        if over {
            return Some(n as u32);
        }
        if n > 0 {
            // Read in part: the rest goes to the driver.
            // SAFETY: `n < len`: within the buffer.
            self.ptr = unsafe { self.ptr.add(n) };
            self.len -= n;
            self.pos += n as u64;
            self.done = n as u32;
        }
        None
    }

    fn attempt(&mut self) -> io::Result<u32> {
        let (raw, ptr, len, pos) = (self.raw, self.ptr, self.len, self.pos as libc::off_t);
        // SAFETY: the buffer is owned by the op and `len` bytes long.
        cvt(|| unsafe { libc::pread(raw, ptr.cast(), len, pos) })
    }

    fn complete(mut self, res: io::Result<u32>, _flags: u32) -> Self::Output {
        // Bytes the page cache gave before the rest was asked for count
        // too; an error on the rest then ends the read short, as pread(2)
        // does after a partial transfer.
        let res = match (res, self.done) {
            (Ok(n), done) => Ok(done + n),
            (Err(_), done) if done > 0 => Ok(done),
            (Err(e), _) => Err(e),
        };
        let res = res.map(|n| {
            // SAFETY: the kernel wrote `n` bytes at the start of the buffer.
            unsafe { self.buf.set_init(n as usize) };
            n as usize
        });
        (res, self.buf)
    }
}

/// Writes a buffer's initialised bytes at a file offset, like pwrite(2).
pub(crate) struct Write<B> {
    fd: SharedFd,
    raw: RawFd,
    buf: B,
    ptr: *const u8,
    len: usize,
    pos: u64,
    fixed: Option<u16>,
}

impl<B: IoBuf> Write<B> {
    pub(crate) fn new(file: &SharedFd, buf: B, pos: u64, fixed: Option<u16>) -> Write<B> {
        let ptr = buf.stable_ptr();
        let len = buf.bytes_init().min(MAX_RW);
        Write {
            fd: file.clone(),
            raw: file.raw(),
            buf,
            ptr,
            len,
            pos,
            fixed,
        }
    }
}

// SAFETY: as for `Read`, for reads of the buffer's initialised bytes.
unsafe impl<B: IoBuf> OpCode for Write<B> {
    type Output = BufResult<usize, B>;

    fn sqe(&mut self) -> Sqe {
        uring!({
            let len = self.len as u32;
            match self.fixed {
                Some(index) => opcode::WriteFixed::new(types::Fd(self.raw), self.ptr, len, index)
                    .offset(self.pos)
                    .build(),
                None => opcode::Write::new(types::Fd(self.raw), self.ptr, len)
                    .offset(self.pos)
                    .build(),
            }
        })
    }

    fn wait(&self) -> Wait<'_> {
        Wait::Blocking
    }

    fn fixed_fd(&self) -> Option<&SharedFd> {
        Some(&self.fd)
    }

    fn attempt(&mut self) -> io::Result<u32> {
        let (raw, ptr, len, pos) = (self.raw, self.ptr, self.len, self.pos as libc::off_t);
        // SAFETY: the buffer is owned by the op with `len` initialised bytes.
        cvt(|| unsafe { libc::pwrite(raw, ptr.cast(), len, pos) })
    }

    fn complete(self, res: io::Result<u32>, _flags: u32) -> Self::Output {
        (res.map(|n| n as usize), self.buf)
    }
}

/// The iovec array of a vectored op, capped at `MAX_RW` bytes in all.
fn iovecs(parts: impl Iterator<Item = (*mut u8, usize)>) -> Vec<libc::iovec> {
    let mut left = MAX_RW;
    parts
        .map(|(ptr, len)| {
            let len = len.min(left);
            left -= len;
            libc::iovec {
                iov_base: ptr.cast(),
                iov_len: len,
            }
        })
        .collect()
}

/// Reads into several buffers from a file offset, like preadv(2).
pub(crate) struct Readv<B> {
    fd: SharedFd,
    raw: RawFd,
    bufs: Vec<B>,
    /// Points into the buffers; a `Vec`'s heap array stays put.
    iovecs: Vec<libc::iovec>,
    pos: u64,
}

impl<B: IoBufMut> Readv<B> {
    pub(crate) fn new(file: &SharedFd, mut bufs: Vec<B>, pos: u64) -> Readv<B> {
        let iovecs = iovecs(
            bufs.iter_mut()
                .map(|b| (b.stable_mut_ptr(), b.bytes_total())),
        );
        Readv {
            fd: file.clone(),
            raw: file.raw(),
            bufs,
            iovecs,
            pos,
        }
    }
}

// SAFETY: the iovec array is heap memory owned by the op, and each iovec
// points into an owned buffer (`IoBufMut`).
unsafe impl<B: IoBufMut> OpCode for Readv<B> {
    type Output = BufResult<usize, Vec<B>>;

    fn sqe(&mut self) -> Sqe {
        uring!({
            opcode::Readv::new(
                types::Fd(self.raw),
                self.iovecs.as_ptr(),
                self.iovecs.len() as u32,
            )
            .offset(self.pos)
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
        let (raw, iov, n) = (self.raw, self.iovecs.as_ptr(), self.iovecs.len() as i32);
        let pos = self.pos as libc::off_t;
        // SAFETY: the iovecs and the memory they name are owned by the op.
        cvt(|| unsafe { libc::preadv(raw, iov, n, pos) })
    }

    fn complete(mut self, res: io::Result<u32>, _flags: u32) -> Self::Output {
        if let Ok(n) = res {
            let mut left = n as usize;
            for (buf, iov) in self.bufs.iter_mut().zip(&self.iovecs) {
                let filled = left.min(iov.iov_len);
                // SAFETY: the kernel filled the iovecs in order, `filled`
                // bytes at this buffer's start.
                unsafe { buf.set_init(filled) };
                left -= filled;
            }
        }
        (res.map(|n| n as usize), self.bufs)
    }
}

/// Writes several buffers at a file offset, like pwritev(2).
pub(crate) struct Writev<B> {
    fd: SharedFd,
    raw: RawFd,
    bufs: Vec<B>,
    iovecs: Vec<libc::iovec>,
    pos: u64,
}

impl<B: IoBuf> Writev<B> {
    pub(crate) fn new(file: &SharedFd, bufs: Vec<B>, pos: u64) -> Writev<B> {
        let iovecs = iovecs(
            bufs.iter()
                .map(|b| (b.stable_ptr().cast_mut(), b.bytes_init())),
        );
        Writev {
            fd: file.clone(),
            raw: file.raw(),
            bufs,
            iovecs,
            pos,
        }
    }
}

// SAFETY: as for `Readv`; the kernel only reads the buffers.
unsafe impl<B: IoBuf> OpCode for Writev<B> {
    type Output = BufResult<usize, Vec<B>>;

    fn sqe(&mut self) -> Sqe {
        uring!({
            opcode::Writev::new(
                types::Fd(self.raw),
                self.iovecs.as_ptr(),
                self.iovecs.len() as u32,
            )
            .offset(self.pos)
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
        let (raw, iov, n) = (self.raw, self.iovecs.as_ptr(), self.iovecs.len() as i32);
        let pos = self.pos as libc::off_t;
        // SAFETY: the iovecs and the memory they name are owned by the op.
        cvt(|| unsafe { libc::pwritev(raw, iov, n, pos) })
    }

    fn complete(self, res: io::Result<u32>, _flags: u32) -> Self::Output {
        (res.map(|n| n as usize), self.bufs)
    }
}
