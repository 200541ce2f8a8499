//! Helpers shared by the `fs_*` tests: a temporary directory removed on drop,
//! data patterns, and waiting for the fd count to settle.
#![allow(dead_code)]

use std::future::{Future, poll_fn};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::Poll;
use std::time::{Duration, Instant};

/// A fresh directory under the system temp dir, removed (with its
/// contents) on drop.
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        Self::new_in(&std::env::temp_dir(), name)
    }

    pub fn new_in(parent: &Path, name: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let thread = std::thread::current()
            .name()
            .unwrap_or("t")
            .replace("::", "-");
        let path = parent.join(format!("corio-{name}-{}-{n}-{thread}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create the temp dir");
        TempDir { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// A recognisable byte for offset `i` of a file (not periodic in 256).
pub fn pattern(i: u64) -> u8 {
    (i.wrapping_mul(31) ^ (i >> 9)) as u8
}

/// `len` pattern bytes starting at file offset `from`.
pub fn pattern_vec(from: u64, len: usize) -> Vec<u8> {
    (0..len as u64).map(|i| pattern(from + i)).collect()
}

/// Inside a runtime: waits up to 5 s for the process's fd count to drop to
/// `want` (closes go through the driver); returns the last count.
pub async fn settle_fds(want: usize) -> usize {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let n = crate::support::open_fds();
        if n <= want || Instant::now() > deadline {
            return n;
        }
        corio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Outside a runtime: waits up to 5 s for the fd count to drop to `want`.
pub fn settle_fds_blocking(want: usize) -> usize {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let n = crate::support::open_fds();
        if n <= want || Instant::now() > deadline {
            return n;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Polls `fut` once: its output if it was ready.
pub async fn poll_once<F: Future>(mut fut: Pin<&mut F>) -> Poll<F::Output> {
    poll_fn(|cx| Poll::Ready(fut.as_mut().poll(cx))).await
}
