//! `FixedBufPool`: fixed-buffer reads and writes, the one-pool-per-runtime rule, and drop orders of pools, leases, ops and runtimes.

mod fs_util;
mod support;

use std::io;
use std::pin::pin;
use std::time::{Duration, Instant};

use corio::fs::{File, FixedBufPool, OpenOptions};
use corio::{DriverKind, IoBuf};
use fs_util::{TempDir, pattern_vec, poll_once};

const KIB: usize = 1024;

both_drivers! {
fn fixed_reads_and_writes() {
    let dir = TempDir::new("fixed");
    let path = dir.join("f");
    std::fs::write(&path, pattern_vec(0, 1 << 20)).unwrap();
    support::run(async {
        let pool = FixedBufPool::new(4, 64 * KIB).unwrap();
        let uring = support::driver() == DriverKind::Uring;
        assert_eq!(pool.is_registered(), uring, "registered exactly on io_uring");
        assert_eq!((pool.count(), pool.buf_size(), pool.available()), (4, 64 * KIB, 4));
        let file = OpenOptions::new().read(true).write(true).open(&path).await.unwrap();

        let buf = pool.get().unwrap();
        assert_eq!((buf.len(), buf.capacity()), (0, 64 * KIB));
        assert_eq!(buf.as_ptr() as usize % 4096, 0, "buffers are page-aligned");
        let (res, buf) = file.read_fixed_at(buf, 100_000).await;
        assert_eq!(res.unwrap(), 64 * KIB);
        assert!(buf[..] == pattern_vec(100_000, 64 * KIB)[..]);

        // A short read at the end of the file.
        let (res, mut buf) = file.read_fixed_at(buf, (1 << 20) - 10).await;
        assert_eq!(res.unwrap(), 10);
        assert_eq!(buf.len(), 64 * KIB, "the length never shrinks on a read");
        buf.clear();
        buf.extend_from_slice(b"fixed write");
        let (res, buf) = file.write_fixed_at(buf, 5).await;
        assert_eq!(res.unwrap(), 11);
        let (res, b) = file.read_at(vec![0u8; 11], 5).await;
        res.unwrap();
        assert_eq!(b, b"fixed write");

        // Fixed buffers work with the plain methods too, and as slices.
        let (res, buf) = file.read_at(buf.slice(..100), 0).await;
        assert_eq!(res.unwrap(), 100);
        let buf = buf.into_inner();
        assert_eq!(&buf[5..16], b"fixed write");

        // A position past i64::MAX is refused before anything is
        // submitted, and the lease comes back with the error.
        let (res, buf) = file.read_fixed_at(buf, u64::MAX).await;
        assert_eq!(res.unwrap_err().kind(), io::ErrorKind::InvalidInput);
        let (res, buf) = file.write_fixed_at(buf, 1 << 63).await;
        assert_eq!(res.unwrap_err().kind(), io::ErrorKind::InvalidInput);
        assert_eq!(pool.available(), 3, "the lease is still held, not lost");

        // Leases run out, and come back on drop.
        let all: Vec<_> = std::iter::from_fn(|| pool.get()).collect();
        assert_eq!(all.len(), 3);
        assert!(pool.get().is_none());
        drop(all);
        drop(buf);
        assert_eq!(pool.available(), 4);

        // Many fixed reads in flight at once, each into its own buffer.
        let mut handles = Vec::new();
        let file = std::rc::Rc::new(file);
        for i in 0..4u64 {
            let (file, buf) = (file.clone(), pool.get().unwrap());
            handles.push(corio::spawn(async move {
                let mut buf = buf;
                for j in 0..50u64 {
                    let pos = (i * 50 + j) * 4096 + 17;
                    let (res, b) = file.read_fixed_at(buf, pos).await;
                    let n = res.unwrap();
                    assert!(b[..n] == pattern_vec(pos, n)[..], "read at {pos} differs");
                    buf = b;
                }
            }));
        }
        for h in handles {
            h.await.unwrap();
        }
    });
}
}

both_drivers! {
fn bad_pool_sizes_are_refused() {
    support::run(async {
        for (count, size) in [(0, 4096), (1, 0), (16_385, 4096), (1, (1 << 30) + 1)] {
            let err = FixedBufPool::new(count, size).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "({count}, {size})");
        }
        // A failed pool leaves room for a good one.
        let pool = FixedBufPool::new(16_384, 512).unwrap();
        assert_eq!(pool.count(), 16_384);
    });
}
}

both_drivers! {
fn one_pool_per_runtime_at_a_time() {
    support::run(async {
        let pool = FixedBufPool::new(2, 4096).unwrap();
        let err = FixedBufPool::new(2, 4096).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ResourceBusy, "{err}");
        // A lease keeps the pool (and its registration) alive.
        let buf = pool.get().unwrap();
        let clone = pool.clone();
        drop(pool);
        assert!(FixedBufPool::new(2, 4096).is_err());
        drop(clone);
        assert_eq!(FixedBufPool::new(2, 4096).unwrap_err().kind(), io::ErrorKind::ResourceBusy);
        drop(buf);
        // Gone: a new pool can register.
        let pool = FixedBufPool::new(3, 8192).unwrap();
        assert_eq!(pool.is_registered(), support::driver() == DriverKind::Uring);
        drop(pool);
        // Over and over.
        for i in 0..50 {
            let pool = FixedBufPool::new(1 + i % 7, 4096 * (1 + i % 3)).unwrap();
            let _buf = pool.get().unwrap();
        }
    });
    // Another runtime on this thread has its own ring: its own pool.
    let rt1 = support::runtime();
    let rt2 = support::runtime();
    let p1 = rt1.block_on(async { FixedBufPool::new(1, 4096).unwrap() });
    let p2 = rt2.block_on(async { FixedBufPool::new(1, 4096).unwrap() });
    drop((p1, p2));
}
}

both_drivers! {
fn pool_buffers_used_on_another_runtime_fall_back_to_plain_reads() {
    let dir = TempDir::new("fixed-other");
    let path = dir.join("f");
    std::fs::write(&path, pattern_vec(0, 64 * KIB)).unwrap();
    let rt1 = support::runtime();
    let rt2 = support::runtime();
    let pool = rt1.block_on(async { FixedBufPool::new(2, 8192).unwrap() });
    // rt2 registers its own pool: index 0 there names different memory.
    let pool2 = rt2.block_on(async { FixedBufPool::new(2, 8192).unwrap() });
    let other = pool2.get().unwrap();
    rt2.block_on(async {
        assert!(!pool.is_registered(), "rt1's pool is not rt2's registration");
        let file = File::open(&path).await.unwrap();
        let buf = pool.get().unwrap();
        let (res, buf) = file.read_fixed_at(buf, 4096).await;
        assert_eq!(res.unwrap(), 8192);
        assert!(buf[..] == pattern_vec(4096, 8192)[..], "read into the wrong memory");
    });
    // rt2's buffer with the same index was not written.
    assert!(other.iter().all(|&b| b == 0));
    assert!(other.is_empty());
}
}

both_drivers! {
fn drop_orders_of_pool_leases_ops_and_runtime() {
    let _serial = support::serial();
    let dir = TempDir::new("fixed-drop");
    let path = dir.join("f");
    std::fs::write(&path, pattern_vec(0, 1 << 20)).unwrap();

    // 1. The pool goes first, a lease keeps the memory: reads still work.
    support::run(async {
        let file = File::open(&path).await.unwrap();
        let pool = FixedBufPool::new(2, 64 * KIB).unwrap();
        let buf = pool.get().unwrap();
        drop(pool);
        let (res, buf) = file.read_fixed_at(buf, 0).await;
        assert_eq!(res.unwrap(), 64 * KIB);
        assert!(buf[..] == pattern_vec(0, 64 * KIB)[..]);
    });

    // 2. The last lease is in an op dropped mid-flight, after the pool:
    // the driver releases it when the read completes (on io_uring inside
    // the driver, so the unregister is deferred), and a new pool registers.
    support::run(async {
        let file = File::open(&path).await.unwrap();
        let mut dropped_pending = 0;
        for i in 0..200u64 {
            let pool = FixedBufPool::new(4, 256 * KIB).unwrap();
            let buf = pool.get().unwrap();
            drop(pool);
            {
                let mut fut = pin!(file.read_fixed_at(buf, (i % 4) * 256 * KIB as u64));
                if poll_once(fut.as_mut()).await.is_pending() {
                    dropped_pending += 1;
                }
            }
            // Until the read completes the pool lives: wait for a new one.
            let deadline = Instant::now() + Duration::from_secs(5);
            let pool = loop {
                match FixedBufPool::new(4, 256 * KIB) {
                    Ok(p) => break p,
                    Err(e) if e.kind() == io::ErrorKind::ResourceBusy => {
                        assert!(Instant::now() < deadline, "the old pool never went away");
                        corio::time::sleep(Duration::from_millis(1)).await;
                    }
                    Err(e) => panic!("new pool: {e}"),
                }
            };
            assert_eq!(pool.is_registered(), support::driver() == DriverKind::Uring);
            let (res, b) = file.read_fixed_at(pool.get().unwrap(), 4096).await;
            assert_eq!(res.unwrap(), 256 * KIB);
            assert!(b[..] == pattern_vec(4096, 256 * KIB)[..]);
        }
        assert!(dropped_pending > 0, "no fixed read was dropped in flight");
    });

    // 3. The runtime goes first: the pool and a lease outlive it.
    for _ in 0..20 {
        let rt = support::runtime();
        let (pool, buf) = rt.block_on(async {
            let pool = FixedBufPool::new(2, 4096).unwrap();
            let file = File::open(&path).await.unwrap();
            let buf = pool.get().unwrap();
            let (res, buf) = file.read_fixed_at(buf, 0).await;
            res.unwrap();
            (pool, buf)
        });
        drop(rt);
        assert!(buf[..] == pattern_vec(0, 4096)[..]);
        let second = pool.get().unwrap();
        drop(pool);
        drop(buf);
        drop(second);
    }

    // 4. Runtime dropped with fixed reads in flight in its tasks.
    for round in 0..20u64 {
        let rt = support::runtime();
        let file_path = path.clone();
        rt.block_on(async move {
            let pool = FixedBufPool::new(8, 64 * KIB).unwrap();
            let file = std::rc::Rc::new(File::open(&file_path).await.unwrap());
            for t in 0..8u64 {
                let (file, mut buf) = (file.clone(), pool.get().unwrap());
                corio::spawn(async move {
                    let mut pos = t * 4096;
                    loop {
                        let (res, b) = file.read_fixed_at(buf, pos).await;
                        res.unwrap();
                        buf = b;
                        pos = (pos + 65_536) % (1 << 20);
                    }
                });
            }
            corio::time::sleep(Duration::from_millis(1 + round % 3)).await;
        });
        drop(rt);
    }
}
}
