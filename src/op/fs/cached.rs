//! Reads answered from the page cache at once: a positional read of a
//! cached file costs one syscall and no trip through the driver.
//!
//! How it works: before a positional read (`read_at`, `read_fixed_at`,
//! `readv_at`) goes to the ring (or, on the poll driver, to the
//! blocking pool), its first poll tries `preadv2(..., RWF_NOWAIT)`: the
//! kernel copies what the page cache holds and refuses (`EAGAIN`) rather
//! than wait for the disk. That is the attempt io_uring itself makes inline
//! when it issues a read, without the submission, the completion, the
//! wake-up and the second poll around it; on the poll driver it saves the
//! trip to a blocking thread. A hit (any count, 0 at the end of the file)
//! is the op's result. A miss sends the read on its way as before, and the
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

/// Reads `iovecs` (`count` of them) of `fd` at `pos` if the page cache holds
/// the data: `Some(bytes read)`, or `None` when the read must go to the
/// driver (not this fd's turn, a miss, or an fd that cannot try).
///
/// # Safety
///
/// `iovecs` points to `count` iovecs, each naming memory the caller owns
/// and may write, for the whole call.
#[inline]
pub(crate) unsafe fn read_cached(
    fd: &SharedFd,
    iovecs: *const libc::iovec,
    count: usize,
    pos: u64,
) -> Option<u32> {
    if !fd.cached_read_turn() {
        return None;
    }
    // SAFETY: per the contract; the kernel writes only within the iovecs.
    let n = unsafe {
        libc::preadv2(
            fd.raw(),
            iovecs,
            count as libc::c_int,
            pos as libc::off_t,
            libc::RWF_NOWAIT,
        )
    };
    if n >= 0 {
        return Some(n as u32);
    }
    missed(fd, io::Error::last_os_error());
    None
}

/// A try that did not read: a miss, or an fd that cannot try.
#[cold]
fn missed(fd: &SharedFd, err: io::Error) {
    match err.raw_os_error() {
        Some(libc::EAGAIN) => fd.note_cache_miss(),
        // A signal: try again next time.
        Some(libc::EINTR) => {}
        _ => fd.stop_cached_reads(),
    }
}
