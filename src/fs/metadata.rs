//! [`Metadata`], [`FileType`] and [`Permissions`]: what statx(2) reports.
//!
//! How it works: the statx op fills a `struct statx`; [`Metadata`] copies the
//! fields corio exposes out of it. Times the filesystem did not report (the
//! creation time on some filesystems) give `ErrorKind::Unsupported`.

use std::io;
use std::time::{Duration, SystemTime};

/// Metadata of a file, from statx(2): length, type, permissions, times,
/// inode and block size.
///
/// ```no_run
/// corio::run(async {
///     let meta = corio::fs::metadata("Cargo.toml").await?;
///     println!("{} bytes, file: {}", meta.len(), meta.is_file());
///     Ok::<_, std::io::Error>(())
/// })
/// .unwrap();
/// ```
#[derive(Clone, Debug)]
pub struct Metadata {
    mask: u32,
    mode: u32,
    len: u64,
    ino: u64,
    blksize: u32,
    blocks: u64,
    nlink: u32,
    uid: u32,
    gid: u32,
    dev: (u32, u32),
    atime: (i64, u32),
    btime: (i64, u32),
    mtime: (i64, u32),
    ctime: (i64, u32),
}

impl Metadata {
    pub(crate) fn from_statx(st: &libc::statx) -> Metadata {
        let ts = |t: &libc::statx_timestamp| (t.tv_sec, t.tv_nsec);
        Metadata {
            mask: st.stx_mask,
            mode: u32::from(st.stx_mode),
            len: st.stx_size,
            ino: st.stx_ino,
            blksize: st.stx_blksize,
            blocks: st.stx_blocks,
            nlink: st.stx_nlink,
            uid: st.stx_uid,
            gid: st.stx_gid,
            dev: (st.stx_dev_major, st.stx_dev_minor),
            atime: ts(&st.stx_atime),
            btime: ts(&st.stx_btime),
            mtime: ts(&st.stx_mtime),
            ctime: ts(&st.stx_ctime),
        }
    }

    /// The size of the file in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True when the file is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The type of the file.
    pub fn file_type(&self) -> FileType {
        FileType {
            mode: self.mode & libc::S_IFMT,
        }
    }

    /// True for a regular file.
    pub fn is_file(&self) -> bool {
        self.file_type().is_file()
    }

    /// True for a directory.
    pub fn is_dir(&self) -> bool {
        self.file_type().is_dir()
    }

    /// True for a symbolic link (only from [`symlink_metadata`](super::symlink_metadata)).
    pub fn is_symlink(&self) -> bool {
        self.file_type().is_symlink()
    }

    /// The permission bits.
    pub fn permissions(&self) -> Permissions {
        Permissions {
            mode: self.mode & 0o7777,
        }
    }

    /// The full `st_mode`: type and permission bits.
    pub fn mode(&self) -> u32 {
        self.mode
    }

    /// The last modification time.
    pub fn modified(&self) -> io::Result<SystemTime> {
        self.time(libc::STATX_MTIME, self.mtime)
    }

    /// The last access time.
    pub fn accessed(&self) -> io::Result<SystemTime> {
        self.time(libc::STATX_ATIME, self.atime)
    }

    /// The creation (birth) time; `Unsupported` where the filesystem does
    /// not record it.
    pub fn created(&self) -> io::Result<SystemTime> {
        self.time(libc::STATX_BTIME, self.btime)
    }

    /// The last status change time.
    pub fn changed(&self) -> io::Result<SystemTime> {
        self.time(libc::STATX_CTIME, self.ctime)
    }

    /// The inode number.
    pub fn ino(&self) -> u64 {
        self.ino
    }

    /// The preferred block size for I/O.
    pub fn blksize(&self) -> u64 {
        u64::from(self.blksize)
    }

    /// The number of 512-byte blocks allocated (less than the length for a
    /// sparse file).
    pub fn blocks(&self) -> u64 {
        self.blocks
    }

    /// The number of hard links.
    pub fn nlink(&self) -> u64 {
        u64::from(self.nlink)
    }

    /// The owner's user id.
    pub fn uid(&self) -> u32 {
        self.uid
    }

    /// The owner's group id.
    pub fn gid(&self) -> u32 {
        self.gid
    }

    /// The device holding the file, as `makedev(major, minor)`.
    pub fn dev(&self) -> u64 {
        libc::makedev(self.dev.0, self.dev.1)
    }

    /// The alignment `O_DIRECT` I/O on this file needs for buffers, offsets
    /// and lengths: the block size, at least 512. Use it with
    /// [`AlignedBuf::new`](super::AlignedBuf::new).
    pub fn direct_io_align(&self) -> usize {
        (self.blksize as usize).max(512)
    }

    fn time(&self, bit: u32, (sec, nsec): (i64, u32)) -> io::Result<SystemTime> {
        if self.mask & bit == 0 {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "corio: this time is not available on this filesystem",
            ));
        }
        let nanos = Duration::from_nanos(u64::from(nsec));
        let t = if sec >= 0 {
            SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(sec as u64) + nanos)
        } else {
            SystemTime::UNIX_EPOCH
                .checked_sub(Duration::from_secs(sec.unsigned_abs()))
                .and_then(|t| t.checked_add(nanos))
        };
        t.ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "corio: time out of range"))
    }
}

/// The type of a file: regular file, directory, symbolic link, or another.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FileType {
    /// The `S_IFMT` bits of the mode.
    mode: u32,
}

impl FileType {
    pub(crate) fn from_std(t: std::fs::FileType) -> FileType {
        use std::os::unix::fs::FileTypeExt;
        let mode = if t.is_file() {
            libc::S_IFREG
        } else if t.is_dir() {
            libc::S_IFDIR
        } else if t.is_symlink() {
            libc::S_IFLNK
        } else if t.is_fifo() {
            libc::S_IFIFO
        } else if t.is_socket() {
            libc::S_IFSOCK
        } else if t.is_block_device() {
            libc::S_IFBLK
        } else if t.is_char_device() {
            libc::S_IFCHR
        } else {
            0
        };
        FileType { mode }
    }

    /// A regular file.
    pub fn is_file(&self) -> bool {
        self.mode == libc::S_IFREG
    }

    /// A directory.
    pub fn is_dir(&self) -> bool {
        self.mode == libc::S_IFDIR
    }

    /// A symbolic link.
    pub fn is_symlink(&self) -> bool {
        self.mode == libc::S_IFLNK
    }

    /// A named pipe.
    pub fn is_fifo(&self) -> bool {
        self.mode == libc::S_IFIFO
    }

    /// A Unix socket.
    pub fn is_socket(&self) -> bool {
        self.mode == libc::S_IFSOCK
    }

    /// A block device.
    pub fn is_block_device(&self) -> bool {
        self.mode == libc::S_IFBLK
    }

    /// A character device.
    pub fn is_char_device(&self) -> bool {
        self.mode == libc::S_IFCHR
    }
}

/// A file's permission bits (`mode & 0o7777`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Permissions {
    mode: u32,
}

impl Permissions {
    /// Permissions with these mode bits.
    pub fn from_mode(mode: u32) -> Permissions {
        Permissions {
            mode: mode & 0o7777,
        }
    }

    /// The mode bits, e.g. `0o644`.
    pub fn mode(&self) -> u32 {
        self.mode
    }

    /// True when nobody may write the file (no write bit set; root may
    /// still write it).
    pub fn readonly(&self) -> bool {
        self.mode & 0o222 == 0
    }
}
