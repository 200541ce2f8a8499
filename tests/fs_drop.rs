//! File drop safety and leaks: reads and opens dropped mid-flight, runtime drop with file ops in flight, close, 1,000 files at once.

mod fs_util;
mod support;

use std::pin::pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::{self, ThreadId};
use std::time::{Duration, Instant};

use corio::fs::{self, File};
use corio::{IoBuf, IoBufMut};
use fs_util::{TempDir, pattern_vec, poll_once, settle_fds, settle_fds_blocking};

// Every test here counts the process's fds: each takes `support::serial()`.

/// Buffers alive, and buffers dropped on a thread other than their own.
static LIVE: AtomicUsize = AtomicUsize::new(0);
static WRONG_THREAD_DROPS: AtomicUsize = AtomicUsize::new(0);

/// A `Vec` buffer that counts itself and checks it is dropped on the
/// thread that made it (the runtime's), never on a blocking-pool thread.
struct TrackedBuf {
    vec: Vec<u8>,
    owner: ThreadId,
}

impl TrackedBuf {
    fn new(cap: usize) -> TrackedBuf {
        LIVE.fetch_add(1, Ordering::SeqCst);
        TrackedBuf {
            vec: Vec::with_capacity(cap),
            owner: thread::current().id(),
        }
    }
}

impl Drop for TrackedBuf {
    fn drop(&mut self) {
        if thread::current().id() != self.owner {
            WRONG_THREAD_DROPS.fetch_add(1, Ordering::SeqCst);
        }
        LIVE.fetch_sub(1, Ordering::SeqCst);
    }
}

// SAFETY: forwards to the inner `Vec`, whose heap memory does not move with
// the value.
unsafe impl IoBuf for TrackedBuf {
    fn stable_ptr(&self) -> *const u8 {
        self.vec.stable_ptr()
    }

    fn bytes_init(&self) -> usize {
        self.vec.bytes_init()
    }

    fn bytes_total(&self) -> usize {
        self.vec.bytes_total()
    }
}

// SAFETY: forwards to the inner `Vec`.
unsafe impl IoBufMut for TrackedBuf {
    fn stable_mut_ptr(&mut self) -> *mut u8 {
        self.vec.stable_mut_ptr()
    }

    unsafe fn set_init(&mut self, pos: usize) {
        // SAFETY: forwarded from the caller.
        unsafe { self.vec.set_init(pos) }
    }
}

/// Inside a runtime: waits up to 5 s for every tracked buffer to be freed.
async fn settle_live() -> usize {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let n = LIVE.load(Ordering::SeqCst);
        if n == 0 || Instant::now() > deadline {
            return n;
        }
        corio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// A small deterministic generator, so a failure can be replayed.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

const MIB: usize = 1 << 20;

both_drivers! {
fn dropping_pending_reads_leaks_nothing() {
    let _serial = support::serial();
    let dir = TempDir::new("dropread");
    let path = dir.join("big");
    std::fs::write(&path, pattern_vec(0, 8 * MIB)).unwrap();
    WRONG_THREAD_DROPS.store(0, Ordering::SeqCst);
    // The file is in the page cache: with cached reads on, every read would
    // finish on its first poll and none would be dropped in flight.
    let rt = support::builder().cached_reads(false).build().unwrap();
    rt.block_on(async {
        let base = support::open_fds();
        let live = LIVE.load(Ordering::SeqCst);
        let mut rng = Lcg(7);
        let mut kept = Vec::new();
        let mut dropped_pending = 0;
        for i in 0..1000u64 {
            let file = File::open(&path).await.unwrap();
            {
                let pos = rng.below(8) * MIB as u64;
                let mut fut = pin!(file.read_at(TrackedBuf::new(MIB), pos));
                // Drop at once, or after the runtime turned a few times.
                for _ in 0..rng.below(3) {
                    corio::yield_now().await;
                }
                match poll_once(fut.as_mut()).await {
                    std::task::Poll::Pending => dropped_pending += 1,
                    std::task::Poll::Ready((res, buf)) => {
                        let n = res.unwrap();
                        assert!(buf.vec[..n] == pattern_vec(pos, n)[..]);
                    }
                }
            }
            // Some files outlive their dropped reads, some go at once.
            if i % 4 == 0 {
                kept.push(file);
            }
            if kept.len() > 20 {
                kept.clear();
            }
        }
        drop(kept);
        assert!(dropped_pending > 0, "no read was dropped while in flight");
        assert_eq!(settle_live().await, live, "op buffers leaked");
        assert_eq!(settle_fds(base).await, base, "fds leaked");
        // The runtime still works.
        let file = File::open(&path).await.unwrap();
        let (res, buf) = file.read_exact_at(vec![0u8; 4096], 12_345).await;
        res.unwrap();
        assert_eq!(buf, pattern_vec(12_345, 4096));
    });
    assert_eq!(WRONG_THREAD_DROPS.load(Ordering::SeqCst), 0, "a buffer was dropped off its thread");
}
}

both_drivers! {
fn dropping_pending_opens_and_writes_leaks_nothing() {
    let _serial = support::serial();
    let dir = TempDir::new("dropopen");
    let path = dir.join("f");
    std::fs::write(&path, b"x").unwrap();
    support::run(async {
        let base = support::open_fds();
        let mut rng = Lcg(11);
        let mut dropped_pending = 0;
        for i in 0..1000 {
            let mut fut = pin!(File::open(&path));
            for _ in 0..rng.below(3) {
                corio::yield_now().await;
            }
            if poll_once(fut.as_mut()).await.is_pending() {
                dropped_pending += 1;
            }
            // A write dropped mid-flight: the file ends up with all of it or
            // none of it, and its buffer and fd are released.
            if i % 10 == 0 {
                let file = File::options().write(true).open(&path).await.unwrap();
                let mut w = pin!(file.write_at(vec![b'y'; 64 * 1024], 0));
                let _ = poll_once(w.as_mut()).await;
            }
        }
        assert!(dropped_pending > 0, "no open was dropped while in flight");
        assert_eq!(settle_fds(base).await, base, "fds of dropped opens leaked");
        let meta = fs::metadata(&path).await.unwrap();
        assert!(meta.len() == 1 || meta.len() == 64 * 1024, "len {}", meta.len());
    });
}
}

both_drivers! {
fn runtime_drop_with_file_ops_in_flight() {
    let _serial = support::serial();
    let dir = TempDir::new("rtdrop");
    let path = dir.join("big");
    std::fs::write(&path, pattern_vec(0, 4 * MIB)).unwrap();
    WRONG_THREAD_DROPS.store(0, Ordering::SeqCst);
    let base = support::open_fds();
    let live = LIVE.load(Ordering::SeqCst);
    let start = Instant::now();
    for round in 0..20u64 {
        let rt = support::runtime();
        rt.block_on(async {
            let file = Rc::new(File::open(&path).await.unwrap());
            for t in 0..32u64 {
                let file = file.clone();
                let path = path.clone();
                corio::spawn(async move {
                    let mut pos = (t * 131_072) % (4 * MIB as u64);
                    loop {
                        let (res, _) = file.read_at(TrackedBuf::new(256 * 1024), pos).await;
                        res.unwrap();
                        pos = (pos + 65_536) % (4 * MIB as u64);
                        // Opens in flight too.
                        let _f = File::open(&path).await.unwrap();
                    }
                });
            }
            corio::time::sleep(Duration::from_millis(1 + round % 5)).await;
        });
        // Tasks and their ops are in flight: dropping the runtime must wait
        // for the kernel / the pool, release everything and not hang.
        drop(rt);
        assert_eq!(LIVE.load(Ordering::SeqCst), live, "round {round}: op buffers leaked");
        assert_eq!(settle_fds_blocking(base), base, "round {round}: fds leaked");
    }
    assert!(start.elapsed() < Duration::from_secs(30), "runtime drops took too long");
    assert_eq!(WRONG_THREAD_DROPS.load(Ordering::SeqCst), 0, "a buffer was dropped off its thread");
}
}

both_drivers! {
fn thousand_files_open_and_read_at_once() {
    let _serial = support::serial();
    let dir = TempDir::new("many");
    const N: usize = 1000;
    for i in 0..N {
        std::fs::write(dir.join(&format!("f{i}")), pattern_vec(i as u64, 1000 + i)).unwrap();
    }
    support::run(async {
        let base = support::open_fds();
        let mut handles = Vec::new();
        let mut files = Vec::new();
        for i in 0..N {
            files.push(File::open(dir.join(&format!("f{i}"))).await.unwrap());
        }
        assert!(support::open_fds() >= base + N, "all files are open at once");
        // One task per file; all reads are submitted before any is awaited.
        for (i, file) in files.into_iter().enumerate() {
            handles.push(corio::spawn(async move {
                let (res, buf) = file.read_at(Vec::with_capacity(4096), 0).await;
                assert_eq!(res.unwrap(), 1000 + i);
                assert!(buf == pattern_vec(i as u64, 1000 + i), "file {i} differs");
                file.close().await.unwrap();
            }));
        }
        for h in handles {
            h.await.unwrap();
        }
        // And the concurrent opens path too.
        let mut handles = Vec::new();
        for i in 0..N {
            let path = dir.join(&format!("f{i}"));
            handles.push(corio::spawn(async move {
                let data = fs::read(&path).await.unwrap();
                assert_eq!(data.len(), 1000 + i);
            }));
        }
        for h in handles {
            h.await.unwrap();
        }
        let now = settle_fds(base).await;
        assert_eq!(now, base, "fds leaked");
    });
}
}

both_drivers! {
fn close_reports_and_releases_the_fd() {
    let _serial = support::serial();
    let dir = TempDir::new("close");
    let path = dir.join("c");
    std::fs::write(&path, pattern_vec(0, 1 << 20)).unwrap();
    support::run(async {
        let base = support::open_fds();
        let file = File::open(&path).await.unwrap();
        assert_eq!(support::open_fds(), base + 1);
        file.close().await.unwrap();
        assert_eq!(support::open_fds(), base, "close() closed the fd before returning");

        // close() waits for an op abandoned in flight before closing.
        for _ in 0..50 {
            let file = File::open(&path).await.unwrap();
            {
                let fut = file.read_at(vec![0u8; 1 << 20], 0);
                let mut fut = std::pin::pin!(fut);
                let _ = poll_once(fut.as_mut()).await;
            }
            file.close().await.unwrap();
        }
        assert_eq!(settle_fds(base).await, base);

        // Dropping a File closes it too.
        let file = File::open(&path).await.unwrap();
        drop(file);
        assert_eq!(settle_fds(base).await, base);
    });
}
}
