//! [`File`]: an open file with positional, owned-buffer I/O.
//!
//! How it works: a `File` holds its fd in a `SharedFd`, which every op on the
//! file clones, so the fd is closed — through the driver, never blocking the
//! shard on io_uring — only after the last op on it has completed, even
//! when the futures of those ops were dropped. Each method builds one op
//! (`op/fs`) and awaits it; the loops (`read_exact_at`, `write_all_at`) go
//! over sub-slices of the same owned buffer.

use std::future::Future;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::path::Path;
use std::time::Duration;

use super::{FixedBuf, Metadata, OpenOptions};
use crate::buf::{BufResult, IoBuf, IoBufMut};
use crate::fd::SharedFd;
use crate::op::fs::{
    Close, Fallocate, Fsync, Read, Readv, Statx, StatxTarget, SyncRange, Truncate, Write, Writev,
};
use crate::op::{Checked, Op, OpCode};

/// An open file. Every I/O method takes an owned buffer and a file position
/// and returns the buffer with the result; there is no cursor.
///
/// Dropping a `File` closes it once no op on it is in flight; [`close`]
/// closes it now and reports the error.
///
/// [`close`]: File::close
///
/// ```
/// use corio::fs::{self, File};
///
/// corio::run(async {
///     let path = std::env::temp_dir().join(format!("corio-doc-file-{}", std::process::id()));
///     let file = File::create_new(&path).await?; // read and write
///     let (res, _) = file.write_all_at(b"hello, world".as_slice(), 0).await;
///     res?;
///     file.sync_all().await?;
///
///     // No cursor: every read and write names its position.
///     let (res, buf) = file.read_at(Vec::with_capacity(5), 7).await;
///     assert_eq!(&buf[..res?], b"world");
///     file.close().await?; // or drop it: closed once no op uses it
///     fs::remove_file(&path).await
/// })
/// .unwrap();
/// ```
#[derive(Debug)]
pub struct File {
    fd: SharedFd,
}

/// Positions past `i64::MAX` are refused: io_uring reads `u64::MAX` as "the
/// current position", and the syscalls take a signed offset.
fn check_pos(pos: u64) -> io::Result<u64> {
    if pos > i64::MAX as u64 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "corio: file position beyond i64::MAX",
        ));
    }
    Ok(pos)
}

/// The op `make(buf, pos)` when `pos` passes [`check_pos`]; otherwise its
/// error at once, with `buf` given back (nothing is submitted).
#[inline]
fn checked_at<B, R, T>(pos: u64, buf: B, make: impl FnOnce(B, u64) -> T) -> Checked<T>
where
    T: OpCode<Output = BufResult<R, B>>,
{
    match check_pos(pos) {
        Ok(pos) => Checked::Op(Op::new(make(buf, pos))),
        Err(e) => Checked::Failed(Some((Err(e), buf))),
    }
}

impl File {
    /// Opens a file for reading, like `std::fs::File::open`.
    pub async fn open(path: impl AsRef<Path>) -> io::Result<File> {
        OpenOptions::new().read(true).open(path).await
    }

    /// Opens a file for writing, creating it or truncating it, like
    /// `std::fs::File::create`.
    pub async fn create(path: impl AsRef<Path>) -> io::Result<File> {
        OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
            .await
    }

    /// Creates a new file for reading and writing; `AlreadyExists` if it
    /// exists.
    pub async fn create_new(path: impl AsRef<Path>) -> io::Result<File> {
        OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(path)
            .await
    }

    /// Options for opening a file; see [`OpenOptions`].
    pub fn options() -> OpenOptions {
        OpenOptions::new()
    }

    /// Wraps a file opened by std.
    pub fn from_std(file: std::fs::File) -> File {
        let fd = OwnedFd::from(file);
        // SAFETY: F_GETFL reads the open file's flags; the fd is open.
        let flags = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) };
        File::from_owned(fd, flags != -1 && flags & libc::O_DIRECT == 0)
    }

    /// The file's shared fd (for ops of other families: `send_file`).
    pub(crate) fn shared_fd(&self) -> &SharedFd {
        &self.fd
    }

    /// `cached_reads`: the file was opened without `O_DIRECT`, so its
    /// positional reads may try the page cache first (`op/fs/cached.rs`).
    pub(crate) fn from_owned(fd: OwnedFd, cached_reads: bool) -> File {
        let fd = SharedFd::new(fd);
        if cached_reads {
            fd.set_cached_reads();
        }
        File { fd }
    }

    /// Reads into `buf` from file position `pos`, like pread(2): fills the
    /// buffer from its start up to its capacity and returns the count. Fewer
    /// bytes than asked is not an error (say at the end of the file); `Ok(0)`
    /// means `pos` is at or past the end.
    ///
    /// Use [`IoBuf::slice`] to read into part of a buffer.
    pub fn read_at<B: IoBufMut>(
        &self,
        buf: B,
        pos: u64,
    ) -> impl Future<Output = BufResult<usize, B>> {
        checked_at(pos, buf, |buf, pos| Read::new(&self.fd, buf, pos, None))
    }

    /// Reads until `buf` is full to its capacity; `UnexpectedEof` if the file
    /// ends first (the bytes read so far are in the buffer).
    pub async fn read_exact_at<B: IoBufMut>(&self, mut buf: B, pos: u64) -> BufResult<(), B> {
        let total = buf.bytes_total();
        let mut done = 0;
        while done < total {
            let (res, slice) = self
                .read_at(buf.slice(done..total), pos + done as u64)
                .await;
            buf = slice.into_inner();
            match res {
                Ok(0) => {
                    let e =
                        io::Error::new(io::ErrorKind::UnexpectedEof, "failed to fill whole buffer");
                    return (Err(e), buf);
                }
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return (Err(e), buf),
            }
        }
        (Ok(()), buf)
    }

    /// Writes the initialised bytes of `buf` at file position `pos`, like
    /// pwrite(2); may write fewer. With `append`, the data goes to the end.
    pub fn write_at<B: IoBuf>(
        &self,
        buf: B,
        pos: u64,
    ) -> impl Future<Output = BufResult<usize, B>> {
        checked_at(pos, buf, |buf, pos| Write::new(&self.fd, buf, pos, None))
    }

    /// Writes all initialised bytes of `buf` at `pos`, looping over short
    /// writes.
    pub async fn write_all_at<B: IoBuf>(&self, mut buf: B, pos: u64) -> BufResult<(), B> {
        let total = buf.bytes_init();
        let mut done = 0;
        while done < total {
            let (res, slice) = self
                .write_at(buf.slice(done..total), pos + done as u64)
                .await;
            buf = slice.into_inner();
            match res {
                Ok(0) => {
                    let e =
                        io::Error::new(io::ErrorKind::WriteZero, "failed to write whole buffer");
                    return (Err(e), buf);
                }
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return (Err(e), buf),
            }
        }
        (Ok(()), buf)
    }

    /// Reads into several buffers in turn from position `pos`, like
    /// preadv(2); each is filled from its start up to its capacity.
    pub fn readv_at<B: IoBufMut>(
        &self,
        bufs: Vec<B>,
        pos: u64,
    ) -> impl Future<Output = BufResult<usize, Vec<B>>> {
        checked_at(pos, bufs, |bufs, pos| Readv::new(&self.fd, bufs, pos))
    }

    /// Writes the initialised bytes of several buffers in turn at position
    /// `pos`, like pwritev(2); may write fewer.
    pub fn writev_at<B: IoBuf>(
        &self,
        bufs: Vec<B>,
        pos: u64,
    ) -> impl Future<Output = BufResult<usize, Vec<B>>> {
        checked_at(pos, bufs, |bufs, pos| Writev::new(&self.fd, bufs, pos))
    }

    /// [`read_at`](File::read_at) into a buffer of a [`FixedBufPool`]: on
    /// io_uring an `IORING_OP_READ_FIXED` on the registered buffer (no page
    /// pinning per read); elsewhere, or when the pool belongs to another
    /// runtime, a plain read into the same memory.
    ///
    /// [`FixedBufPool`]: super::FixedBufPool
    pub fn read_fixed_at(
        &self,
        buf: FixedBuf,
        pos: u64,
    ) -> impl Future<Output = BufResult<usize, FixedBuf>> {
        checked_at(pos, buf, |buf, pos| {
            let index = buf.ring_index();
            Read::new(&self.fd, buf, pos, index)
        })
    }

    /// [`write_at`](File::write_at) from a buffer of a [`FixedBufPool`]
    /// (`IORING_OP_WRITE_FIXED` on io_uring).
    ///
    /// [`FixedBufPool`]: super::FixedBufPool
    pub fn write_fixed_at(
        &self,
        buf: FixedBuf,
        pos: u64,
    ) -> impl Future<Output = BufResult<usize, FixedBuf>> {
        checked_at(pos, buf, |buf, pos| {
            let index = buf.ring_index();
            Write::new(&self.fd, buf, pos, index)
        })
    }

    /// Flushes the file's data and metadata to its device, like fsync(2).
    pub fn sync_all(&self) -> impl Future<Output = io::Result<()>> {
        Op::new(Fsync::new(&self.fd, false))
    }

    /// Flushes the file's data (and only the metadata needed to read it
    /// back), like fdatasync(2).
    pub fn sync_data(&self) -> impl Future<Output = io::Result<()>> {
        Op::new(Fsync::new(&self.fd, true))
    }

    /// Writes the dirty pages of `len` bytes from `offset` to the device and
    /// waits for them, like sync_file_range(2) with `WAIT_BEFORE | WRITE |
    /// WAIT_AFTER`. It flushes no metadata and no device cache: it is not a
    /// durability guarantee (use [`sync_data`](File::sync_data) for that).
    /// `len == 0` means "to the end of the file".
    pub async fn sync_range(&self, offset: u64, len: u64) -> io::Result<()> {
        const FLAGS: u32 = libc::SYNC_FILE_RANGE_WAIT_BEFORE
            | libc::SYNC_FILE_RANGE_WRITE
            | libc::SYNC_FILE_RANGE_WAIT_AFTER;
        // The SQE's length is 32 bits: longer ranges go in steps.
        const STEP: u64 = 1 << 31;
        let mut offset = check_pos(offset)?;
        let mut left = len;
        loop {
            let n = left.min(STEP);
            Op::new(SyncRange::new(&self.fd, offset, n as u32, FLAGS)).await?;
            left -= n;
            offset += n;
            if left == 0 {
                return Ok(());
            }
        }
    }

    /// Allocates disk space for `len` bytes from `offset`, like
    /// fallocate(2). `mode` is fallocate's: 0 allocates (and extends the
    /// file), or `libc::FALLOC_FL_KEEP_SIZE`, `FALLOC_FL_PUNCH_HOLE |
    /// FALLOC_FL_KEEP_SIZE`, `FALLOC_FL_ZERO_RANGE`, ... Filesystems that
    /// cannot give `Unsupported`.
    pub fn fallocate(
        &self,
        offset: u64,
        len: u64,
        mode: i32,
    ) -> impl Future<Output = io::Result<()>> {
        match check_pos(offset) {
            Ok(offset) => Checked::Op(Op::new(Fallocate::new(&self.fd, offset, len, mode))),
            Err(e) => Checked::Failed(Some(Err(e))),
        }
    }

    /// Truncates or extends the file to `size` bytes, like ftruncate(2)
    /// (extending adds a hole that reads as zeros).
    pub fn set_len(&self, size: u64) -> impl Future<Output = io::Result<()>> {
        match check_pos(size) {
            Ok(size) => Checked::Op(Op::new(Truncate::new(&self.fd, size))),
            Err(e) => Checked::Failed(Some(Err(e))),
        }
    }

    /// The file's metadata, like statx(2) on the open file.
    pub async fn metadata(&self) -> io::Result<Metadata> {
        let st = Op::new(Statx::new(StatxTarget::File(self.fd.clone()))).await?;
        Ok(Metadata::from_statx(&st))
    }

    /// Closes the file and reports the error close(2) gives (say a delayed
    /// write error on a network filesystem).
    ///
    /// If ops whose futures were dropped are still in flight on the file, it
    /// first waits for them: the fd is never closed under an op.
    pub async fn close(self) -> io::Result<()> {
        let mut fd = self.fd;
        let mut waits = 0u32;
        let owned = loop {
            match fd.try_release() {
                Ok(owned) => break owned,
                Err(back) => fd = back,
            }
            // Abandoned ops finish on their own; look again soon.
            if waits < 16 {
                crate::yield_now().await;
            } else {
                crate::time::sleep(Duration::from_millis(1)).await;
            }
            waits += 1;
        };
        crate::op::Op::new(Close::new(owned)).await
    }
}

impl AsRawFd for File {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.raw()
    }
}

impl AsFd for File {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}
