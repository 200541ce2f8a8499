//! Reads answered from the page cache at once: a positional read of a
//! cached file costs one syscall and no trip through the driver.
//!
//! How it works: before a positional read (`read_at`, `read_fixed_at`)
//! goes to the ring (or, on the poll driver, to the
//! blocking pool), its first poll tries `preadv2(..., RWF_NOWAIT)`: the
//! kernel copies what the page cache holds and refuses (`EAGAIN`) rather
//! than wait for the disk. That is the attempt io_uring itself makes inline
//! when it issues a read, without the submission, the completion, the
//! wake-up and the second poll around it; on the poll driver it saves the
//! trip to a blocking thread. A hit (the whole read, or up to the end of
//! the file) is the op's result; a read the cache holds in part keeps what
//! it got and sends the rest on (a file read is short only at the end of
//! the file, as before). A miss sends the read on its way as before, and the
//! fd's next read skips the try (`SharedFd::cached_read_turn`): a file that
//! is never cached pays the extra syscall on half its reads at most. Any
//! other error (not a regular file, a file system without `RWF_NOWAIT`)
//! turns the tries off for the fd; the read then goes to the driver, which
//! gives the error the read would have given anyway.
//!
//! On io_uring a read tries only when its submission would be shared by
//! at most one other op (other tasks queued to run, SQEs waiting for the
//! next `io_uring_enter`; `Driver::try_now_pays`): a syscall per read costs
//! the kernel more than one enter for a batch of reads (`preadv2` imports
//! an iovec where a ring READ takes the buffer as is), so a busy runtime
//! keeps batching. The poll driver always tries.
//!
//! Only files opened without `O_DIRECT` try (`File` sets the fd's bit): a
//! direct read with `RWF_NOWAIT` would still wait for the device. A
//! runtime built with `Builder::cached_reads(false)` (or
//! `CORIO_CACHED_READS=0`) never tries.

use std::io;

use crate::fd::SharedFd;

/// Reads `len` bytes of `fd` at `pos` into `ptr` as far as the page cache
/// holds them. Returns the bytes read and whether the read is over: `true`
/// when it filled `len` bytes or met the end of the file (the count is the
/// read's result), `false` when the rest (`len` minus the count, which may
/// be 0) must go to the driver: not this fd's turn, a miss, or an fd that
/// cannot try. A read the cache holds only in part reads that part here
/// and leaves the rest to the driver, so a read of a regular file still
/// comes back short only at its end, as without the try.
///
/// # Safety
///
/// `ptr` names `len` bytes the caller owns and may write, for the whole
/// call.
#[inline]
pub(crate) unsafe fn read_cached(
    fd: &SharedFd,
    ptr: *mut u8,
    len: usize,
    pos: u64,
) -> (usize, bool) {
    if !fd.cached_read_turn() {
        return (0, false);
    }
    let mut done = 0;
    loop {
        let iov = libc::iovec {
            // SAFETY: `done <= len`: within the caller's memory.
            iov_base: unsafe { ptr.add(done) }.cast(),
            iov_len: len - done,
        };
        // SAFETY: per the contract; the kernel writes only within the iovec.
        let n = unsafe {
            libc::preadv2(
                fd.raw(),
                &iov,
                1,
                (pos + done as u64) as libc::off_t,
                libc::RWF_NOWAIT,
            )
        };
        match n {
            // The end of the file (or an empty read).
            0 => return (done, true),
            n if n > 0 => {
                done += n as usize;
                if done == len {
                    return (done, true);
                }
            }
            _ => {
                if done == 0 {
                    missed(fd, io::Error::last_os_error());
                }
                return (done, false);
            }
        }
    }
}

/// A try that read nothing: a miss, or an fd that cannot try.
#[cold]
fn missed(fd: &SharedFd, err: io::Error) {
    match err.raw_os_error() {
        Some(libc::EAGAIN) => fd.note_cache_miss(),
        // A signal: try again next time.
        Some(libc::EINTR) => {}
        _ => fd.stop_cached_reads(),
    }
}
