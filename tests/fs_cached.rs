//! Positional reads the page cache answers at once (`Builder::cached_reads`):
//! they finish on their first poll, with no SQE, and read the same bytes;
//! ends of files, fixed buffers (vectored reads do not try), files that
//! cannot try (a FIFO, `O_DIRECT`), the switch, busy rings, a read that
//! misses the cache and one the cache holds in part.

mod fs_util;
mod support;

use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::pin::pin;
use std::task::Poll;

use corio::fs::{File, FixedBufPool, OpenOptions};
use fs_util::{TempDir, pattern_vec, poll_once};

const LEN: usize = 64 * 1024;

/// A file of `LEN` pattern bytes, written through the page cache (so it is
/// cached).
fn cached_file(dir: &TempDir) -> std::path::PathBuf {
    let path = dir.join("cached");
    std::fs::write(&path, pattern_vec(0, LEN)).unwrap();
    path
}

both_drivers! {
fn a_cached_read_finishes_on_its_first_poll_without_the_ring() {
    let dir = TempDir::new("cached-first");
    let path = cached_file(&dir);
    support::run(async {
        let file = File::open(&path).await.unwrap();
        let before = corio::runtime::stats();
        let mut fut = pin!(file.read_at(vec![0u8; 4096], 8192));
        let Poll::Ready((res, buf)) = poll_once(fut.as_mut()).await else {
            panic!("a cached read waited");
        };
        assert_eq!(res.unwrap(), 4096);
        assert!(buf == pattern_vec(8192, 4096));
        let d = corio::runtime::stats().since(&before);
        assert_eq!(d.cached_reads, 1, "{d}");
        assert_eq!(d.sqes_submitted, 0, "the read went to the ring: {d}");
    });
}
}

/// `tasks` tasks each reading 16 blocks of the cached file; the reads the
/// page cache answered on their first poll.
fn concurrent_reads(path: &std::path::Path, tasks: usize) -> u64 {
    support::run(async {
        let file = std::rc::Rc::new(File::open(path).await.unwrap());
        let before = corio::runtime::stats();
        let handles: Vec<_> = (0..tasks)
            .map(|t| {
                let file = file.clone();
                corio::spawn(async move {
                    let mut buf = vec![0u8; 512];
                    for i in 0..16u64 {
                        let pos = (t as u64 * 16 + i) * 512 % LEN as u64;
                        let (res, b) = file.read_at(buf, pos).await;
                        assert_eq!(res.unwrap(), 512);
                        assert!(b == pattern_vec(pos, 512));
                        buf = b;
                    }
                })
            })
            .collect();
        for h in handles {
            h.await.unwrap();
        }
        corio::runtime::stats().since(&before).cached_reads
    })
}

both_drivers! {
fn busy_rings_keep_batching_reads() {
    // On io_uring a read tries the page cache only when at most one other
    // op could share its submission: two readers try, sixteen batch in the
    // ring. The poll driver always tries (its other way is the blocking
    // pool).
    let dir = TempDir::new("cached-busy");
    let path = cached_file(&dir);
    assert_eq!(concurrent_reads(&path, 2), 32);
    let many = concurrent_reads(&path, 16);
    if support::driver() == corio::DriverKind::Uring {
        assert!(many < 16 * 16 / 2, "{many} of 256 reads skipped the ring");
    } else {
        assert_eq!(many, 256);
    }
}
}

both_drivers! {
fn cached_reads_stop_at_the_end_of_the_file() {
    let dir = TempDir::new("cached-eof");
    let path = cached_file(&dir);
    support::run(async {
        let file = File::open(&path).await.unwrap();
        let before = corio::runtime::stats();
        let (res, buf) = file.read_at(Vec::with_capacity(4096), (LEN - 100) as u64).await;
        assert_eq!(res.unwrap(), 100);
        assert!(buf == pattern_vec((LEN - 100) as u64, 100));
        let (res, buf) = file.read_at(Vec::with_capacity(16), LEN as u64).await;
        assert_eq!(res.unwrap(), 0);
        assert!(buf.is_empty());
        let (res, _) = file.read_at(vec![0u8; 16], 10 * LEN as u64).await;
        assert_eq!(res.unwrap(), 0);
        // Whole-file reads are cached reads too.
        let (res, buf) = file.read_exact_at(vec![0u8; LEN], 0).await;
        res.unwrap();
        assert!(buf == pattern_vec(0, LEN));
        let d = corio::runtime::stats().since(&before);
        assert_eq!(d.cached_reads, 4, "{d}");
        // A position past i64::MAX is refused before any try.
        let (res, _) = file.read_at(vec![0u8; 16], u64::MAX).await;
        assert_eq!(res.unwrap_err().kind(), std::io::ErrorKind::InvalidInput);
        assert_eq!(corio::runtime::stats().since(&before).cached_reads, 4);
    });
}
}

both_drivers! {
fn fixed_reads_are_cached_reads_too() {
    let dir = TempDir::new("cached-kinds");
    let path = cached_file(&dir);
    support::run(async {
        let file = File::open(&path).await.unwrap();
        let pool = FixedBufPool::new(2, 4096).unwrap();
        let before = corio::runtime::stats();
        let (res, buf) = file.read_fixed_at(pool.get().unwrap(), 4096).await;
        assert_eq!(res.unwrap(), 4096);
        assert!(buf[..] == pattern_vec(4096, 4096)[..]);
        let (res, bufs) = file
            .readv_at(vec![vec![0u8; 10], vec![0u8; 5000]], 100)
            .await;
        assert_eq!(res.unwrap(), 5010);
        assert!(bufs[0] == pattern_vec(100, 10));
        assert!(bufs[1] == pattern_vec(110, 5000));
        let d = corio::runtime::stats().since(&before);
        // The vectored read went to the driver.
        assert_eq!(d.cached_reads, 1, "{d}");
    });
}
}

both_drivers! {
fn the_switch_turns_the_tries_off() {
    let dir = TempDir::new("cached-off");
    let path = cached_file(&dir);
    let rt = support::builder().cached_reads(false).build().unwrap();
    rt.block_on(async {
        let file = File::open(&path).await.unwrap();
        for pos in [0u64, 4096, 60_000] {
            let (res, buf) = file.read_at(vec![0u8; 1000], pos).await;
            assert_eq!(res.unwrap(), 1000);
            assert!(buf == pattern_vec(pos, 1000));
        }
        assert_eq!(corio::runtime::stats().cached_reads, 0);
    });
}
}

both_drivers! {
fn a_file_that_cannot_try_reads_as_before() {
    // A FIFO: the try fails (ESPIPE), the fd stops trying, and the read goes
    // to the driver, which answers as it does with the tries off.
    let dir = TempDir::new("cached-fifo");
    let path = dir.join("fifo");
    let c = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let answers = |rt: corio::Runtime| {
        rt.block_on(async {
            let fifo = OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NONBLOCK)
                .open(&path)
                .await
                .unwrap();
            let mut got = Vec::new();
            for _ in 0..3 {
                let (res, _) = fifo.read_at(vec![0u8; 16], 0).await;
                got.push(res.map_err(|e| e.raw_os_error()));
            }
            assert_eq!(corio::runtime::stats().cached_reads, 0);
            got
        })
    };
    let with = answers(support::runtime());
    let without = answers(support::builder().cached_reads(false).build().unwrap());
    assert_eq!(with, without);
}
}

both_drivers! {
fn o_direct_files_never_try() {
    let dir = TempDir::new("cached-direct");
    let path = cached_file(&dir);
    support::run(async {
        let file = match OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECT)
            .open(&path)
            .await
        {
            Ok(f) => f,
            Err(e) => {
                eprintln!("skipped: O_DIRECT refused here ({e})");
                return;
            }
        };
        let buf = corio::fs::AlignedBuf::new(4096, 4096);
        let (res, buf) = file.read_at(buf, 4096).await;
        assert_eq!(res.unwrap(), 4096);
        assert!(buf[..] == pattern_vec(4096, 4096)[..]);
        // Wrapped from std: the flag is read from the fd.
        let std_direct = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECT)
            .open(&path)
            .unwrap();
        let file = File::from_std(std_direct);
        let (res, _) = file.read_at(corio::fs::AlignedBuf::new(4096, 4096), 0).await;
        assert_eq!(res.unwrap(), 4096);
        assert_eq!(corio::runtime::stats().cached_reads, 0);
        // A plain file from std does try.
        let file = File::from_std(std::fs::File::open(&path).unwrap());
        let (res, buf) = file.read_at(vec![0u8; 100], 7).await;
        assert_eq!(res.unwrap(), 100);
        assert!(buf == pattern_vec(7, 100));
        assert_eq!(corio::runtime::stats().cached_reads, 1);
    });
}
}

/// Writes `len` pattern bytes to `path`, writes them back and drops
/// `[drop_from, len)` from the page cache; false (with a message) where
/// pages cannot be dropped (tmpfs).
fn cold_file(dir: &TempDir, path: &std::path::Path, len: usize, drop_from: usize) -> bool {
    std::fs::write(path, pattern_vec(0, len)).unwrap();
    if on_tmpfs(dir.path()) {
        eprintln!("skipped: tmpfs keeps every page cached");
        return false;
    }
    let f = std::fs::File::open(path).unwrap();
    f.sync_all().unwrap();
    let (from, n) = (drop_from as libc::off_t, (len - drop_from) as libc::off_t);
    // SAFETY: advice on an open fd; no memory is named.
    let rc = unsafe { libc::posix_fadvise(f.as_raw_fd(), from, n, libc::POSIX_FADV_DONTNEED) };
    assert_eq!(rc, 0);
    true
}

/// True when `path` is on tmpfs (whose pages cannot be dropped).
fn on_tmpfs(path: &std::path::Path) -> bool {
    let c = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
    // SAFETY: a zeroed statfs is a valid out-parameter.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: a valid path and out-parameter.
    let rc = unsafe { libc::statfs(c.as_ptr(), &mut st) };
    rc == 0 && st.f_type == libc::TMPFS_MAGIC
}

both_drivers! {
fn a_read_that_misses_the_cache_goes_to_the_driver() {
    let dir = TempDir::new("cached-miss");
    let path = dir.join("cold");
    if !cold_file(&dir, &path, LEN, 0) {
        return;
    }
    support::run(async {
        let file = File::open(&path).await.unwrap();
        let before = corio::runtime::stats();
        // Missed: read by the driver (the bytes are right all the same).
        let (res, buf) = file.read_at(vec![0u8; 4096], 0).await;
        assert_eq!(res.unwrap(), 4096);
        assert!(buf == pattern_vec(0, 4096));
        let d = corio::runtime::stats().since(&before);
        if d.cached_reads == 1 {
            eprintln!("skipped: the page stayed cached (the advice was not taken)");
            return;
        }
        assert_eq!(d.cached_reads, 0, "{d}");
        // The read after a miss skips the try, though the page is cached now.
        let (res, _) = file.read_at(vec![0u8; 4096], 0).await;
        assert_eq!(res.unwrap(), 4096);
        assert_eq!(corio::runtime::stats().since(&before).cached_reads, 0);
        // The next one tries again and hits.
        let (res, buf) = file.read_at(vec![0u8; 4096], 0).await;
        assert_eq!(res.unwrap(), 4096);
        assert!(buf == pattern_vec(0, 4096));
        assert_eq!(corio::runtime::stats().since(&before).cached_reads, 1);
    });
}
}

both_drivers! {
fn a_read_the_cache_holds_in_part_is_not_cut_short() {
    // The first half is cached, the second is not (8 MiB: a file's pages
    // come in folios, which are dropped whole): the try reads the first
    // half and the driver the rest; the read is whole, as without the try.
    const BIG: usize = 8 << 20;
    let dir = TempDir::new("cached-part");
    let path = dir.join("half");
    if !cold_file(&dir, &path, BIG, BIG / 2) {
        return;
    }
    let want = pattern_vec(0, BIG);
    support::run(async {
        let file = File::open(&path).await.unwrap();
        let before = corio::runtime::stats();
        let (res, buf) = file.read_at(Vec::with_capacity(BIG), 0).await;
        assert_eq!(res.unwrap(), BIG);
        assert!(buf == want);
        if corio::runtime::stats().since(&before).cached_reads == 1 {
            eprintln!("note: the whole read came from the cache (the advice was not taken)");
        }
        // Fixed buffers too, over the same boundary (dropped again).
        drop(file);
        if !cold_file(&dir, &path, BIG, BIG / 2) {
            return;
        }
        let file = File::open(&path).await.unwrap();
        let pool = FixedBufPool::new(1, 1 << 20).unwrap();
        let at = BIG / 2 - (1 << 19);
        let (res, buf) = file.read_fixed_at(pool.get().unwrap(), at as u64).await;
        assert_eq!(res.unwrap(), 1 << 20);
        assert!(buf[..] == want[at..at + (1 << 20)]);
    });
}
}
