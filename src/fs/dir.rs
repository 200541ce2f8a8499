//! Directories: create, remove, and list them.
//!
//! How it works: creating and removing are io_uring ops (mkdirat, unlinkat
//! with `AT_REMOVEDIR`). io_uring has no getdents, so [`read_dir`] lists on
//! the blocking pool (`spawn_blocking`), a batch of entries per job; the
//! pending job lives in the [`ReadDir`], not in the `next_entry` future, so
//! dropping that future loses no entry.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::future::{Future, poll_fn};
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll};

use super::{FileType, Metadata, symlink_metadata};
use crate::JoinHandle;
use crate::op::Op;
use crate::op::fs::{MkDir, Unlink, c_path};

/// Entries listed per blocking job.
const BATCH: usize = 64;

/// Creates a directory (mode `0o777` before the umask), like mkdir(2);
/// `AlreadyExists` if the path exists, `NotFound` if its parent does not.
pub async fn create_dir(path: impl AsRef<Path>) -> io::Result<()> {
    let path = c_path(path.as_ref())?;
    Op::new(MkDir { path, mode: 0o777 }).await
}

/// Creates a directory and every missing parent, like `std::fs::create_dir_all`;
/// succeeds if the directory already exists.
pub async fn create_dir_all(path: impl AsRef<Path>) -> io::Result<()> {
    let path = path.as_ref();
    if path.as_os_str().is_empty() {
        return Ok(());
    }
    // Walk up until a directory can be made (or exists), then back down.
    let mut missing = Vec::new();
    let mut cur = path;
    loop {
        match create_dir(cur).await {
            Ok(()) => break,
            Err(e) if e.kind() == io::ErrorKind::NotFound => match cur.parent() {
                Some(parent) if !parent.as_os_str().is_empty() => {
                    missing.push(cur);
                    cur = parent;
                }
                _ => return Err(e),
            },
            Err(_) if is_dir(cur).await => break,
            Err(e) => return Err(e),
        }
    }
    while let Some(dir) = missing.pop() {
        match create_dir(dir).await {
            Ok(()) => {}
            // Made meanwhile by someone else: fine.
            Err(_) if is_dir(dir).await => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

async fn is_dir(path: &Path) -> bool {
    super::metadata(path).await.is_ok_and(|m| m.is_dir())
}

/// Removes an empty directory, like rmdir(2).
pub async fn remove_dir(path: impl AsRef<Path>) -> io::Result<()> {
    let path = c_path(path.as_ref())?;
    Op::new(Unlink { path, dir: true }).await
}

/// Lists a directory: the entries other than `.` and `..`, in the order the
/// filesystem gives them.
///
/// ```no_run
/// corio::run(async {
///     let mut dir = corio::fs::read_dir("/tmp").await?;
///     while let Some(entry) = dir.next_entry().await? {
///         println!("{}", entry.path().display());
///     }
///     Ok::<_, std::io::Error>(())
/// })
/// .unwrap();
/// ```
pub async fn read_dir(path: impl AsRef<Path>) -> io::Result<ReadDir> {
    let path = path.as_ref().to_path_buf();
    let job = crate::spawn_blocking(move || {
        let dir = std::fs::read_dir(path)?;
        Ok::<_, io::Error>(read_batch(dir))
    });
    let (dir, entries) = join_err(job.await)??;
    Ok(ReadDir {
        entries,
        state: State::Idle(dir),
    })
}

fn join_err<T>(res: Result<T, crate::JoinError>) -> io::Result<T> {
    res.map_err(|e| io::Error::other(format!("corio: directory listing failed: {e}")))
}

type Batch = (Option<std::fs::ReadDir>, VecDeque<io::Result<DirEntry>>);

/// Reads up to `BATCH` entries (on a blocking thread); the directory comes
/// back unless it is exhausted.
fn read_batch(mut dir: std::fs::ReadDir) -> Batch {
    let mut out = VecDeque::with_capacity(BATCH);
    while out.len() < BATCH {
        match dir.next() {
            Some(entry) => out.push_back(entry.map(DirEntry::from_std)),
            None => return (None, out),
        }
    }
    (Some(dir), out)
}

/// The entries of a directory, from [`read_dir`].
#[derive(Debug)]
pub struct ReadDir {
    entries: VecDeque<io::Result<DirEntry>>,
    state: State,
}

#[derive(Debug)]
enum State {
    /// No job running; `None` once the directory is exhausted.
    Idle(Option<std::fs::ReadDir>),
    /// A blocking job reads the next batch.
    Pending(JoinHandle<Batch>),
}

impl ReadDir {
    /// The next entry, or `None` at the end. Cancel-safe: a dropped call
    /// loses no entry.
    pub async fn next_entry(&mut self) -> io::Result<Option<DirEntry>> {
        poll_fn(|cx| self.poll_next_entry(cx)).await
    }

    /// Polls for the next entry (for use in a hand-written future or stream).
    pub fn poll_next_entry(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Option<DirEntry>>> {
        loop {
            if let Some(entry) = self.entries.pop_front() {
                return Poll::Ready(entry.map(Some));
            }
            match &mut self.state {
                State::Idle(None) => return Poll::Ready(Ok(None)),
                State::Idle(dir) => {
                    let dir = dir.take().expect("checked above");
                    self.state = State::Pending(crate::spawn_blocking(move || read_batch(dir)));
                }
                State::Pending(job) => {
                    let res = match Pin::new(job).poll(cx) {
                        Poll::Ready(res) => res,
                        Poll::Pending => return Poll::Pending,
                    };
                    self.state = State::Idle(None);
                    let (dir, entries) = join_err(res)?;
                    self.entries = entries;
                    self.state = State::Idle(dir);
                }
            }
        }
    }
}

/// One entry of a directory listing.
#[derive(Debug)]
pub struct DirEntry {
    path: PathBuf,
    name: OsString,
    ino: u64,
    file_type: Result<FileType, io::ErrorKind>,
}

impl DirEntry {
    fn from_std(e: std::fs::DirEntry) -> DirEntry {
        use std::os::unix::fs::DirEntryExt;
        DirEntry {
            path: e.path(),
            name: e.file_name(),
            ino: e.ino(),
            // From the listing itself, or an lstat on this blocking thread.
            file_type: e.file_type().map(FileType::from_std).map_err(|e| e.kind()),
        }
    }

    /// The entry's full path (the listed directory joined with the name).
    pub fn path(&self) -> PathBuf {
        self.path.clone()
    }

    /// The entry's name within its directory.
    pub fn file_name(&self) -> OsString {
        self.name.clone()
    }

    /// The entry's inode number.
    pub fn ino(&self) -> u64 {
        self.ino
    }

    /// The entry's type (a symbolic link is reported as one, not followed).
    pub fn file_type(&self) -> io::Result<FileType> {
        self.file_type.map_err(io::Error::from)
    }

    /// The entry's metadata, without following a symbolic link, like
    /// [`symlink_metadata`].
    pub async fn metadata(&self) -> io::Result<Metadata> {
        symlink_metadata(&self.path).await
    }
}
