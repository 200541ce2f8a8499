//! Files and directories on io_uring: [`File`] with positional owned-buffer
//! I/O, [`OpenOptions`], metadata through statx, directory operations,
//! [`AlignedBuf`] for `O_DIRECT`, and registered buffers ([`FixedBufPool`]).
//!
//! How it works: every call is one op (`op/fs`): on io_uring its own opcode
//! (`OPENAT`, `READ`, `WRITEV`, `FSYNC`, `STATX`, `RENAMEAT`, ...); on the
//! poll driver, where regular files have no readiness, the same syscall on
//! the runtime's blocking pool. The thread running the runtime never waits
//! for the disk (one exception: on the poll driver, a dropped `File` is
//! closed with close(2) on that thread, as sockets are; use
//! [`File::close`] to close on the pool). Directory listings, which
//! io_uring cannot do, run on the blocking pool on both drivers. Paths are
//! relative to the working directory.
//!
//! Cancel safety: dropping a file call's future never frees memory the
//! kernel writes to, and an `open` dropped after the kernel opened the
//! file closes it; but the call's effect is not undone: a dropped write
//! may have written, a dropped read's bytes go with its buffer. Only
//! [`ReadDir::next_entry`] is cancel-safe in the sense of `select!` (no
//! entry lost).
//!
//! ```
//! use corio::fs;
//!
//! corio::run(async {
//!     let dir = std::env::temp_dir().join(format!("corio-demo-{}", std::process::id()));
//!     fs::create_dir_all(dir.join("a/b")).await?;
//!     fs::write(dir.join("a/b/hello.txt"), b"hello".as_slice()).await?;
//!     assert_eq!(fs::read(dir.join("a/b/hello.txt")).await?, b"hello");
//!
//!     fs::copy(dir.join("a/b/hello.txt"), dir.join("a/copy.txt")).await?;
//!     fs::rename(dir.join("a/copy.txt"), dir.join("a/moved.txt")).await?;
//!     assert_eq!(fs::metadata(dir.join("a/moved.txt")).await?.len(), 5);
//!
//!     let mut entries = fs::read_dir(dir.join("a")).await?;
//!     let mut names = Vec::new();
//!     while let Some(entry) = entries.next_entry().await? {
//!         names.push(entry.file_name());
//!     }
//!     names.sort();
//!     assert_eq!(names, ["b", "moved.txt"]);
//!
//!     fs::remove_file(dir.join("a/b/hello.txt")).await?;
//!     fs::remove_file(dir.join("a/moved.txt")).await?;
//!     fs::remove_dir(dir.join("a/b")).await?;
//!     fs::remove_dir(dir.join("a")).await?;
//!     fs::remove_dir(&dir).await
//! })
//! .unwrap();
//! ```

mod aligned;
mod dir;
mod file;
mod fixed;
mod metadata;
mod open_options;
mod region;

use std::io;
use std::path::Path;

pub use aligned::AlignedBuf;
pub use dir::{DirEntry, ReadDir, create_dir, create_dir_all, read_dir, remove_dir};
pub use file::File;
pub use fixed::{FixedBuf, FixedBufPool};
pub use metadata::{FileType, Metadata, Permissions};
pub use open_options::OpenOptions;

use crate::buf::IoBuf;
use crate::op::Op;
use crate::op::fs::{Link, Rename, Statx, StatxTarget, Symlink, Unlink, c_path};

/// Chunk size of [`copy`].
const COPY_CHUNK: usize = 256 * 1024;

/// Reads a whole file into a `Vec`, like `std::fs::read`.
pub async fn read(path: impl AsRef<Path>) -> io::Result<Vec<u8>> {
    let file = File::open(path).await?;
    let hint = file.metadata().await.map_or(0, |m| m.len() as usize);
    // One byte more than the size, so the end shows without a second grow.
    let mut buf = Vec::with_capacity(hint.saturating_add(1));
    loop {
        if buf.len() == buf.capacity() {
            buf.reserve(buf.capacity().max(8192));
        }
        let len = buf.len();
        let (res, slice) = file.read_at(buf.slice(len..), len as u64).await;
        buf = slice.into_inner();
        match res {
            Ok(0) => return Ok(buf),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Writes `contents` (its initialised bytes) as the whole file, creating or
/// truncating it, like `std::fs::write`. Takes any owned buffer: a
/// `Vec<u8>`, `&'static [u8]`, `Bytes`, ...
pub async fn write<B: IoBuf>(path: impl AsRef<Path>, contents: B) -> io::Result<()> {
    let file = File::create(path).await?;
    let (res, _) = file.write_all_at(contents, 0).await;
    res
}

/// Copies the contents of `from` to `to` (created with `from`'s permission
/// bits, or truncated), returning the number of bytes copied.
pub async fn copy(from: impl AsRef<Path>, to: impl AsRef<Path>) -> io::Result<u64> {
    let src = File::open(from).await?;
    let meta = src.metadata().await?;
    if !meta.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "corio: the source of a copy is not a regular file",
        ));
    }
    let dst = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(meta.permissions().mode())
        .open(to)
        .await?;
    let mut buf = Vec::with_capacity(COPY_CHUNK);
    let mut pos = 0u64;
    loop {
        buf.clear();
        let (res, b) = src.read_at(buf, pos).await;
        buf = b;
        match res {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
        let (res, b) = dst.write_all_at(buf, pos).await;
        buf = b;
        res?;
        pos += buf.len() as u64;
    }
    dst.close().await?;
    Ok(pos)
}

/// The metadata of the file `path` names, following symbolic links, like
/// statx(2).
pub async fn metadata(path: impl AsRef<Path>) -> io::Result<Metadata> {
    let path = c_path(path.as_ref())?;
    let st = Op::new(Statx::new(StatxTarget::Path { path, follow: true })).await?;
    Ok(Metadata::from_statx(&st))
}

/// The metadata of `path` itself, not following a symbolic link.
pub async fn symlink_metadata(path: impl AsRef<Path>) -> io::Result<Metadata> {
    let path = c_path(path.as_ref())?;
    let st = Op::new(Statx::new(StatxTarget::Path {
        path,
        follow: false,
    }))
    .await?;
    Ok(Metadata::from_statx(&st))
}

/// Renames `from` to `to`, replacing `to` if it exists, like rename(2).
pub async fn rename(from: impl AsRef<Path>, to: impl AsRef<Path>) -> io::Result<()> {
    let from = c_path(from.as_ref())?;
    let to = c_path(to.as_ref())?;
    Op::new(Rename { from, to }).await
}

/// Removes a file (or a symbolic link), like unlink(2).
pub async fn remove_file(path: impl AsRef<Path>) -> io::Result<()> {
    let path = c_path(path.as_ref())?;
    Op::new(Unlink { path, dir: false }).await
}

/// Makes `link` a new name (hard link) for the file `original`, like link(2).
pub async fn hard_link(original: impl AsRef<Path>, link: impl AsRef<Path>) -> io::Result<()> {
    let from = c_path(original.as_ref())?;
    let to = c_path(link.as_ref())?;
    Op::new(Link { from, to }).await
}

/// Makes `link` a symbolic link to `original`, like symlink(2). `original`
/// is stored as given (a relative target is relative to `link`'s directory).
pub async fn symlink(original: impl AsRef<Path>, link: impl AsRef<Path>) -> io::Result<()> {
    let target = c_path(original.as_ref())?;
    let link = c_path(link.as_ref())?;
    Op::new(Symlink { target, link }).await
}
