//! File operations: open, close, statx and the path ops (rename, unlink,
//! mkdir, link, symlink); reads and writes are in `rw.rs`, syncs, fallocate
//! and truncate in `sync.rs`.
//!
//! How it works: each op owns what the kernel reads — paths as `CString`s,
//! the statx buffer in a `Box`, the file's `SharedFd` (so the fd outlives the
//! op) — and implements `OpCode` once: its io_uring SQE, and as `attempt` the
//! plain blocking syscall, which the poll driver runs on the blocking pool
//! (their `wait()` is `Blocking`: regular files have no readiness). `attempt` reads
//! only plain fields (fd numbers, pointers, lengths) cached when the op was
//! built, as the blocking contract of `OpCode` asks. Ops on opcodes newer
//! than the driver's baseline (mkdirat, linkat, symlinkat: 5.15; ftruncate:
//! 6.9) name them in `optional_opcode`, so a kernel without them runs the
//! same syscall on the blocking pool.

mod cached;
mod rw;
mod sync;

use std::ffi::CString;
use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

pub(crate) use rw::{Read, Readv, Write, Writev};
pub(crate) use sync::{Fallocate, Fsync, SyncRange, Truncate};

use super::{OpCode, Sqe, Wait, uring};
use crate::fd::SharedFd;

/// The most bytes one read or write asks for (Linux's own cap).
pub(crate) const MAX_RW: usize = 0x7fff_f000;

/// A path as the NUL-terminated string the kernel reads.
pub(crate) fn c_path(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes()).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "corio: file name contained an unexpected NUL byte",
        )
    })
}

/// Runs a blocking syscall returning `-1` on error, again when a signal
/// interrupted it.
fn cvt(mut f: impl FnMut() -> libc::ssize_t) -> io::Result<u32> {
    loop {
        let res = f();
        if res >= 0 {
            return Ok(res as u32);
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

/// Opens a file, like openat(2) relative to the working directory; the flags
/// always include `O_CLOEXEC`.
pub(crate) struct Open {
    path: CString,
    flags: i32,
    mode: libc::mode_t,
}

impl Open {
    pub(crate) fn new(path: CString, flags: i32, mode: u32) -> Open {
        Open {
            path,
            flags: flags | libc::O_CLOEXEC,
            mode: mode as libc::mode_t,
        }
    }
}

// SAFETY: the path is a heap `CString` owned by the op.
unsafe impl OpCode for Open {
    type Output = io::Result<OwnedFd>;

    fn sqe(&mut self) -> Sqe {
        uring!({
            opcode::OpenAt::new(types::Fd(libc::AT_FDCWD), self.path.as_ptr())
                .flags(self.flags)
                .mode(self.mode)
                .build()
        })
    }

    fn wait(&self) -> Wait<'_> {
        Wait::Blocking
    }

    fn attempt(&mut self) -> io::Result<u32> {
        let (path, flags, mode) = (self.path.as_ptr(), self.flags, self.mode);
        // SAFETY: the path is a NUL-terminated string owned by the op.
        cvt(|| unsafe { libc::openat(libc::AT_FDCWD, path, flags, mode) } as libc::ssize_t)
    }

    fn complete(self, res: io::Result<u32>, _flags: u32) -> io::Result<OwnedFd> {
        // SAFETY: a successful open returns a new fd that we now own.
        Ok(unsafe { OwnedFd::from_raw_fd(res? as RawFd) })
    }

    fn release(&mut self, res: io::Result<u32>, _flags: u32) {
        // Nobody can take the file any more: close it through the driver.
        if let Ok(raw) = res {
            crate::release::close(raw as RawFd, None);
        }
    }
}

/// Closes an fd, like close(2), reporting its error.
pub(crate) struct Close {
    fd: RawFd,
    /// The op still owns the fd: it was neither submitted nor closed, so
    /// dropping the op closes it.
    owned: bool,
}

impl Close {
    pub(crate) fn new(fd: OwnedFd) -> Close {
        use std::os::fd::IntoRawFd;
        Close {
            fd: fd.into_raw_fd(),
            owned: true,
        }
    }
}

// SAFETY: a close names no memory.
unsafe impl OpCode for Close {
    type Output = io::Result<()>;

    fn sqe(&mut self) -> Sqe {
        // The kernel releases the fd whatever the result.
        self.owned = false;
        uring!(opcode::Close::new(types::Fd(self.fd)).build())
    }

    fn wait(&self) -> Wait<'_> {
        Wait::Blocking
    }

    fn attempt(&mut self) -> io::Result<u32> {
        self.owned = false;
        // Not retried on EINTR: Linux has released the fd by then.
        // SAFETY: the op owns the fd and nothing else uses it.
        let res = unsafe { libc::close(self.fd) };
        crate::driver::op::syscall_result(res as libc::ssize_t)
    }

    fn complete(self, res: io::Result<u32>, _flags: u32) -> io::Result<()> {
        res.map(drop)
    }
}

impl Drop for Close {
    fn drop(&mut self) {
        if self.owned {
            crate::release::close(self.fd, None);
        }
    }
}

/// What a statx looks at: a path (relative to the working directory) or an
/// open file.
pub(crate) enum StatxTarget {
    Path { path: CString, follow: bool },
    File(SharedFd),
}

/// Reads a file's metadata, like statx(2).
pub(crate) struct Statx {
    dirfd: RawFd,
    path: CString,
    flags: i32,
    buf: Box<libc::statx>,
    /// Keeps the file open while the op runs.
    _file: Option<SharedFd>,
}

impl Statx {
    pub(crate) fn new(target: StatxTarget) -> Statx {
        // SAFETY: statx is plain data; all-zero is valid.
        let buf: Box<libc::statx> = Box::new(unsafe { std::mem::zeroed() });
        match target {
            StatxTarget::Path { path, follow } => Statx {
                dirfd: libc::AT_FDCWD,
                path,
                flags: if follow { 0 } else { libc::AT_SYMLINK_NOFOLLOW },
                buf,
                _file: None,
            },
            StatxTarget::File(f) => Statx {
                dirfd: f.raw(),
                path: CString::default(),
                flags: libc::AT_EMPTY_PATH,
                buf,
                _file: Some(f),
            },
        }
    }

    const MASK: u32 = libc::STATX_BASIC_STATS | libc::STATX_BTIME;
}

// SAFETY: the path and the statx buffer are heap allocations owned by the op.
unsafe impl OpCode for Statx {
    type Output = io::Result<Box<libc::statx>>;

    fn sqe(&mut self) -> Sqe {
        uring!({
            let buf: *mut libc::statx = &mut *self.buf;
            opcode::Statx::new(types::Fd(self.dirfd), self.path.as_ptr(), buf.cast())
                .flags(self.flags)
                .mask(Self::MASK)
                .build()
        })
    }

    fn wait(&self) -> Wait<'_> {
        Wait::Blocking
    }

    fn attempt(&mut self) -> io::Result<u32> {
        let (dirfd, path, flags) = (self.dirfd, self.path.as_ptr(), self.flags);
        let buf: *mut libc::statx = &mut *self.buf;
        // SAFETY: the path and the buffer are owned by the op.
        cvt(|| unsafe { libc::statx(dirfd, path, flags, Self::MASK, buf) } as libc::ssize_t)
    }

    fn complete(self, res: io::Result<u32>, _flags: u32) -> io::Result<Box<libc::statx>> {
        res?;
        Ok(self.buf)
    }
}

/// Defines an op on one or two paths whose result is `io::Result<()>`.
macro_rules! path_op {
    (
        $(#[$doc:meta])*
        $name:ident { $($field:ident: $ty:ty),* }
        optional: $optional:expr,
        sqe: |$s:ident| $sqe:expr,
        attempt: |$a:ident| $attempt:expr $(,)?
    ) => {
        $(#[$doc])*
        pub(crate) struct $name {
            $(pub(crate) $field: $ty),*
        }

        // SAFETY: every path is a heap `CString` owned by the op.
        unsafe impl OpCode for $name {
            type Output = io::Result<()>;

            fn sqe(&mut self) -> Sqe {
                let $s = &*self;
                uring!($sqe)
            }

            fn wait(&self) -> Wait<'_> {
                Wait::Blocking
            }

            fn optional_opcode(&self) -> Option<u8> {
                uring!($optional)
            }

            fn attempt(&mut self) -> io::Result<u32> {
                let $a = &*self;
                // SAFETY: the paths are NUL-terminated strings owned by the op.
                cvt(|| unsafe { $attempt } as libc::ssize_t)
            }

            fn complete(self, res: io::Result<u32>, _flags: u32) -> io::Result<()> {
                res.map(drop)
            }
        }
    };
}

path_op! {
    /// Renames a file or directory, like renameat(2).
    Rename { from: CString, to: CString }
    optional: None,
    sqe: |s| opcode::RenameAt::new(
        types::Fd(libc::AT_FDCWD), s.from.as_ptr(), types::Fd(libc::AT_FDCWD), s.to.as_ptr(),
    ).build(),
    attempt: |s| libc::renameat(libc::AT_FDCWD, s.from.as_ptr(), libc::AT_FDCWD, s.to.as_ptr()),
}

path_op! {
    /// Removes a file, or with `dir` an empty directory, like unlinkat(2).
    Unlink { path: CString, dir: bool }
    optional: None,
    sqe: |s| opcode::UnlinkAt::new(types::Fd(libc::AT_FDCWD), s.path.as_ptr())
        .flags(if s.dir { libc::AT_REMOVEDIR } else { 0 })
        .build(),
    attempt: |s| libc::unlinkat(
        libc::AT_FDCWD, s.path.as_ptr(), if s.dir { libc::AT_REMOVEDIR } else { 0 },
    ),
}

path_op! {
    /// Creates a directory, like mkdirat(2) (io_uring: Linux 5.15+).
    MkDir { path: CString, mode: u32 }
    optional: Some(opcode::MkDirAt::CODE),
    sqe: |s| opcode::MkDirAt::new(types::Fd(libc::AT_FDCWD), s.path.as_ptr())
        .mode(s.mode as libc::mode_t)
        .build(),
    attempt: |s| libc::mkdirat(libc::AT_FDCWD, s.path.as_ptr(), s.mode as libc::mode_t),
}

path_op! {
    /// Makes a hard link `to` for `from`, like linkat(2) (io_uring: 5.15+).
    Link { from: CString, to: CString }
    optional: Some(opcode::LinkAt::CODE),
    sqe: |s| opcode::LinkAt::new(
        types::Fd(libc::AT_FDCWD), s.from.as_ptr(), types::Fd(libc::AT_FDCWD), s.to.as_ptr(),
    ).build(),
    attempt: |s| libc::linkat(libc::AT_FDCWD, s.from.as_ptr(), libc::AT_FDCWD, s.to.as_ptr(), 0),
}

path_op! {
    /// Makes a symbolic link `link` pointing at `target`, like symlinkat(2)
    /// (io_uring: 5.15+).
    Symlink { target: CString, link: CString }
    optional: Some(opcode::SymlinkAt::CODE),
    sqe: |s| opcode::SymlinkAt::new(types::Fd(libc::AT_FDCWD), s.target.as_ptr(), s.link.as_ptr())
        .build(),
    attempt: |s| libc::symlinkat(s.target.as_ptr(), libc::AT_FDCWD, s.link.as_ptr()),
}

#[cfg(test)]
mod tests {
    use std::future::poll_fn;
    use std::task::Poll;
    use std::time::{Duration, Instant};

    use super::*;
    use crate::op::Op;
    use crate::runtime::context;

    /// On a kernel whose probe lacks an optional opcode, the op runs its
    /// syscall on the blocking pool, and an abandoned one is released by the
    /// io_uring driver. The probe is edited to pretend the kernel is old.
    #[test]
    fn ops_on_opcodes_the_kernel_lacks_run_on_the_blocking_pool() {
        // (`CORIO_DRIVER=poll` makes it a poll runtime: skipped too.)
        let Some(rt) = crate::Builder::new()
            .driver(crate::DriverKind::Uring)
            .max_blocking_threads(1)
            .build()
            .ok()
            .filter(|rt| rt.driver_kind() == crate::DriverKind::Uring)
        else {
            eprintln!("skipped: io_uring is not available here");
            return;
        };
        let dir = std::env::temp_dir().join(format!("corio-fallback-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).unwrap();
        /// Removes the directory, also when the test fails.
        struct Cleanup(std::path::PathBuf);
        impl Drop for Cleanup {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
        let _cleanup = Cleanup(dir.clone());
        let path = dir.join("f");
        std::fs::write(&path, vec![7u8; 10_000]).unwrap();
        rt.block_on(async {
            let core = context::current("test");
            {
                let mut driver = core.driver.borrow_mut();
                let codes: [u8; 4] = uring!([
                    opcode::Ftruncate::CODE,
                    opcode::MkDirAt::CODE,
                    opcode::LinkAt::CODE,
                    opcode::SymlinkAt::CODE,
                ]);
                for code in codes {
                    driver.forget_opcode(code);
                    assert!(!driver.supports(code));
                }
                assert!(driver.supports(uring!(opcode::Read::CODE)));
            }
            let std_file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
            let fd = SharedFd::new(std_file.into());

            // The op goes to the pool (not the ring), and completes.
            let mut op = Op::new(Truncate::new(&fd, 1234));
            let first = poll_fn(|cx| Poll::Ready(std::pin::Pin::new(&mut op).poll(cx))).await;
            assert!(first.is_pending());
            assert!(op.on_blocking_pool(), "not on the blocking pool");
            op.await.unwrap();
            assert_eq!(std::fs::metadata(&path).unwrap().len(), 1234);

            let c = |p: &Path| c_path(p).unwrap();
            Op::new(MkDir {
                path: c(&dir.join("d")),
                mode: 0o755,
            })
            .await
            .unwrap();
            assert!(dir.join("d").is_dir());
            Op::new(Link {
                from: c(&path),
                to: c(&dir.join("hard")),
            })
            .await
            .unwrap();
            Op::new(Symlink {
                target: c(Path::new("f")),
                link: c(&dir.join("soft")),
            })
            .await
            .unwrap();
            assert_eq!(std::fs::read(dir.join("soft")).unwrap().len(), 1234);
            assert_eq!(std::fs::read(dir.join("hard")).unwrap().len(), 1234);

            // Fallback ops dropped in flight are orphans; the io_uring
            // driver releases them once their syscall returns. The pool's
            // one thread is held meanwhile, so every op is still queued
            // when dropped (on a loaded machine a free pool thread could
            // finish each truncate before its drop: no orphan at all).
            let (open_gate, gate) = std::sync::mpsc::channel::<()>();
            let blocker = crate::spawn_blocking(move || {
                let _ = gate.recv();
            });
            for i in 0..200 {
                let mut op = Op::new(Truncate::new(&fd, i));
                let _ = poll_fn(|cx| Poll::Ready(std::pin::Pin::new(&mut op).poll(cx))).await;
            }
            let pending = || !crate::release::is_empty() || core.driver.borrow().orphans() > 0;
            assert!(pending(), "no op was dropped in flight");
            open_gate.send(()).unwrap();
            blocker.await.unwrap();
            let deadline = Instant::now() + Duration::from_secs(5);
            while pending() {
                assert!(Instant::now() < deadline, "orphans never released");
                crate::time::sleep(Duration::from_millis(1)).await;
            }
        });
        drop(rt);
    }
}
