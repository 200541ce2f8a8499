//! Random 4 KiB reads of a 1 GiB file in the page cache: corio (plain and fixed buffers) vs tokio vs pread vs raw io_uring.
//!
//! Run: `taskset -c 1 cargo bench --bench fs_random_read [-- FILTER...]`. A contender runs
//! when its name contains any FILTER (`corio`, `fixed`, `tokio`, `pread`, `raw`, `qd1`,
//! `qd32`, ...). Every contender runs on one thread (tokio's current-thread runtime plus
//! its blocking pool, which shares the pinned core), reading random 4 KiB-aligned blocks
//! of one 1 GiB file under /tmp (made once, read once to be cached, deleted at the end)
//! for `ROUND` per run; contenders take turns for `REPS` runs after a warm-up, and the
//! table shows reads per second (max and median of the runs).
//!
//! - corio read / fixed: `File::read_at` into a `Vec`, `File::read_fixed_at` into a
//!   `FixedBufPool` buffer; QD tasks each with one read in flight. With the default
//!   `Builder::cached_reads`, a read that would share its submission with at most one
//!   other op (QD 1, QD 2) is answered by one `preadv2(RWF_NOWAIT)` on its first poll;
//!   at QD 32 reads share submissions.
//! - corio ring read: `read_at` on a runtime with `cached_reads(false)`: every read
//!   through the ring (what QD 1 did before cached reads).
//! - tokio: `spawn_blocking` + pread (`FileExt::read_at`), QD tasks.
//! - pread: a plain loop on this thread (QD 1 by nature).
//! - corio read+file / fixed+file: the same on a runtime with a registered-file table
//!   (`Builder::registered_files`), where `File::open` installs the file and every read
//!   names it by slot: the like-for-like contender of raw `+file`.
//! - raw READ / READ_FIXED: the `io-uring` crate with corio's ring flags, QD reads kept
//!   in flight, one `io_uring_enter` per batch of completions; `+file` also registers the
//!   file (`IORING_REGISTER_FILES`), as corio does with a registered-file table.

use std::cell::Cell;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use corio::fs::{File, FixedBufPool};
use io_uring::{IoUring, opcode, types};

const FILE_SIZE: u64 = 1 << 30;
const BLOCK: usize = 4096;
const BLOCKS: u64 = FILE_SIZE / BLOCK as u64;
const REPS: usize = 5;
const ROUND: Duration = Duration::from_millis(400);

/// Deletes the bench file when dropped (also on a panic).
struct BenchFile(PathBuf);

impl Drop for BenchFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn make_file() -> BenchFile {
    let path = PathBuf::from(format!("/tmp/corio-bench-fs-{}.bin", std::process::id()));
    let guard = BenchFile(path.clone());
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)
        .expect("create the bench file");
    let chunk: Vec<u8> = (0..1 << 20).map(|i| (i % 251) as u8 + 1).collect();
    for i in 0..FILE_SIZE >> 20 {
        f.write_all_at(&chunk, i << 20)
            .expect("write the bench file");
    }
    // Read it once so every block is in the page cache.
    let mut buf = vec![0u8; 1 << 20];
    for i in 0..FILE_SIZE >> 20 {
        f.read_exact_at(&mut buf, i << 20)
            .expect("read the bench file");
    }
    guard
}

fn next_pos(s: &mut u64) -> u64 {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    (*s % BLOCKS) * BLOCK as u64
}

fn seed(t: usize) -> u64 {
    0x9E37_79B9_7F4A_7C15 ^ ((t as u64 + 1) * 0x2545_F491_4F6C_DD1D)
}

/// Reads per second of a run that did `n` reads in `d`.
fn rate(n: u64, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64()
}

/// `qd` corio tasks, each reading in a loop until the deadline (plain or fixed buffers);
/// `files`: `rt` has a registered-file table.
fn corio_reads(rt: &corio::Runtime, path: &PathBuf, qd: usize, fixed: bool, files: bool) -> f64 {
    rt.block_on(async {
        let file = Rc::new(File::open(path).await.expect("open"));
        // On a runtime with a registered-file table, the file is in it.
        assert_eq!(
            corio::runtime::stats().registered_files,
            u64::from(files),
            "the bench file's slot in the registered-file table"
        );
        let pool = fixed.then(|| FixedBufPool::new(qd, BLOCK).expect("fixed buffers"));
        let done = Rc::new(Cell::new(0u64));
        let start = Instant::now();
        let deadline = start + ROUND;
        let tasks: Vec<_> = (0..qd)
            .map(|t| {
                let (file, done) = (file.clone(), done.clone());
                let mut fbuf = pool.as_ref().map(|p| p.get().expect("a buffer per task"));
                corio::spawn(async move {
                    let mut rng = seed(t);
                    let mut vbuf = Some(vec![0u8; BLOCK]);
                    let mut n = 0u64;
                    loop {
                        let pos = next_pos(&mut rng);
                        let got = if let Some(b) = fbuf.take() {
                            let (res, b) = file.read_fixed_at(b, pos).await;
                            fbuf = Some(b);
                            res
                        } else {
                            let (res, b) = file.read_at(vbuf.take().unwrap(), pos).await;
                            vbuf = Some(b);
                            res
                        };
                        assert_eq!(got.expect("read"), BLOCK);
                        n += 1;
                        if n.is_multiple_of(32) && Instant::now() >= deadline {
                            break;
                        }
                    }
                    done.set(done.get() + n);
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        rate(done.get(), start.elapsed())
    })
}

/// `qd` tokio tasks, each doing `spawn_blocking(pread)` in a loop.
fn tokio_reads(rt: &tokio::runtime::Runtime, file: &Arc<std::fs::File>, qd: usize) -> f64 {
    rt.block_on(async {
        let start = Instant::now();
        let deadline = start + ROUND;
        let tasks: Vec<_> = (0..qd)
            .map(|t| {
                let file = file.clone();
                tokio::spawn(async move {
                    let mut rng = seed(t);
                    let mut buf = vec![0u8; BLOCK];
                    let mut n = 0u64;
                    loop {
                        let pos = next_pos(&mut rng);
                        let f = file.clone();
                        let (got, b) = tokio::task::spawn_blocking(move || {
                            let r = f.read_at(&mut buf, pos);
                            (r, buf)
                        })
                        .await
                        .unwrap();
                        buf = b;
                        assert_eq!(got.expect("pread"), BLOCK);
                        n += 1;
                        if n.is_multiple_of(32) && Instant::now() >= deadline {
                            break;
                        }
                    }
                    n
                })
            })
            .collect();
        let mut total = 0;
        for t in tasks {
            total += t.await.unwrap();
        }
        rate(total, start.elapsed())
    })
}

/// A pread loop on this thread.
fn pread_loop(file: &std::fs::File) -> f64 {
    let mut rng = seed(0);
    let mut buf = vec![0u8; BLOCK];
    let start = Instant::now();
    let mut n = 0u64;
    loop {
        let got = file.read_at(&mut buf, next_pos(&mut rng)).expect("pread");
        assert_eq!(got, BLOCK);
        n += 1;
        if n.is_multiple_of(32) && start.elapsed() >= ROUND {
            return rate(n, start.elapsed());
        }
    }
}

/// A ring with the flags corio sets up (falling back like corio does).
fn raw_ring() -> IoUring {
    let mut b = IoUring::builder();
    b.setup_single_issuer()
        .setup_defer_taskrun()
        .setup_taskrun_flag();
    b.build(256)
        .or_else(|_| IoUring::builder().build(256))
        .expect("io_uring setup")
}

/// `qd` reads kept in flight straight through the io-uring crate: READ, or
/// READ_FIXED on buffers registered with the ring, and with `reg_file` on
/// the file registered too (`IORING_REGISTER_FILES`, which corio does not
/// do: a reference for what that would add).
fn raw_reads(file: &std::fs::File, qd: usize, fixed: bool, reg_file: bool) -> f64 {
    let mut ring = raw_ring();
    let mut bufs = vec![vec![0u8; BLOCK]; qd];
    if fixed {
        let iovecs: Vec<libc::iovec> = bufs
            .iter_mut()
            .map(|b| libc::iovec {
                iov_base: b.as_mut_ptr().cast(),
                iov_len: BLOCK,
            })
            .collect();
        // SAFETY: the buffers outlive the ring (dropped after it, below).
        unsafe { ring.submitter().register_buffers(&iovecs) }.expect("register buffers");
    }
    if reg_file {
        ring.submitter()
            .register_files(&[file.as_raw_fd()])
            .expect("register the file");
    }
    let fd = types::Fd(file.as_raw_fd());
    let mut rng = seed(0);
    let mut make_sqe = |bufs: &mut [Vec<u8>], i: usize| {
        let (ptr, pos) = (bufs[i].as_mut_ptr(), next_pos(&mut rng));
        let len = BLOCK as u32;
        let e = match (fixed, reg_file) {
            (true, true) => opcode::ReadFixed::new(types::Fixed(0), ptr, len, i as u16)
                .offset(pos)
                .build(),
            (true, false) => opcode::ReadFixed::new(fd, ptr, len, i as u16)
                .offset(pos)
                .build(),
            (false, true) => opcode::Read::new(types::Fixed(0), ptr, len)
                .offset(pos)
                .build(),
            (false, false) => opcode::Read::new(fd, ptr, len).offset(pos).build(),
        };
        e.user_data(i as u64)
    };
    for i in 0..qd {
        let sqe = make_sqe(&mut bufs, i);
        // SAFETY: the buffer stays alive and untouched until its completion.
        unsafe { ring.submission().push(&sqe) }.expect("sq has room");
    }
    let start = Instant::now();
    let mut n = 0u64;
    let mut done: Vec<usize> = Vec::with_capacity(qd);
    let result = loop {
        ring.submit_and_wait(1).expect("io_uring_enter");
        done.clear();
        for cqe in ring.completion() {
            assert_eq!(cqe.result(), BLOCK as i32, "raw read failed");
            done.push(cqe.user_data() as usize);
        }
        n += done.len() as u64;
        if start.elapsed() >= ROUND {
            break rate(n, start.elapsed());
        }
        for &i in &done {
            let sqe = make_sqe(&mut bufs, i);
            // SAFETY: as above.
            unsafe { ring.submission().push(&sqe) }.expect("sq has room");
        }
    };
    // Reap what is still in flight before the buffers go.
    let mut left = qd - done.len();
    while left > 0 {
        ring.submit_and_wait(1).expect("io_uring_enter");
        left -= ring.completion().count();
    }
    drop(ring);
    drop(bufs);
    result
}

/// Max and median of a contender's runs.
fn stats(mut v: Vec<f64>) -> (f64, f64) {
    v.sort_by(f64::total_cmp);
    (v[v.len() - 1], v[v.len() / 2])
}

fn main() {
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let on = |name: &str| filters.is_empty() || filters.iter().any(|f| name.contains(f.as_str()));
    let bench_file = make_file();
    let path = bench_file.0.clone();
    let std_file = Arc::new(std::fs::File::open(&path).expect("open"));
    let crt = corio::Runtime::new().expect("corio runtime");
    let crt_ring = corio::Builder::new()
        .cached_reads(false)
        .build()
        .expect("corio runtime without cached reads");
    let crt_files = corio::Builder::new()
        .registered_files(16)
        .build()
        .expect("corio runtime with registered files");
    let trt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("tokio runtime");
    println!(
        "random 4 KiB reads of a 1 GiB cached file; corio driver: {:?}; {REPS} runs of {ROUND:?} after a warm-up\n",
        crt.driver_kind()
    );

    type Contender<'a> = (String, Box<dyn FnMut() -> f64 + 'a>);
    let mut all: Vec<Contender> = Vec::new();
    for qd in [1usize, 32] {
        let p = path.clone();
        let crt = &crt;
        all.push((
            format!("corio read qd{qd}"),
            Box::new(move || corio_reads(crt, &p, qd, false, false)),
        ));
        let (p, crt_ring) = (path.clone(), &crt_ring);
        all.push((
            format!("corio ring read qd{qd}"),
            Box::new(move || corio_reads(crt_ring, &p, qd, false, false)),
        ));
        let p = path.clone();
        all.push((
            format!("corio fixed qd{qd}"),
            Box::new(move || corio_reads(crt, &p, qd, true, false)),
        ));
        let (p, crt_files) = (path.clone(), &crt_files);
        all.push((
            format!("corio read+file qd{qd}"),
            Box::new(move || corio_reads(crt_files, &p, qd, false, true)),
        ));
        let p = path.clone();
        all.push((
            format!("corio fixed+file qd{qd}"),
            Box::new(move || corio_reads(crt_files, &p, qd, true, true)),
        ));
        let (f, trt) = (std_file.clone(), &trt);
        all.push((
            format!("tokio spawn_blocking qd{qd}"),
            Box::new(move || tokio_reads(trt, &f, qd)),
        ));
        let f = std_file.clone();
        all.push((
            format!("raw READ qd{qd}"),
            Box::new(move || raw_reads(&f, qd, false, false)),
        ));
        let f = std_file.clone();
        all.push((
            format!("raw READ_FIXED qd{qd}"),
            Box::new(move || raw_reads(&f, qd, true, false)),
        ));
        let f = std_file.clone();
        all.push((
            format!("raw READ+file qd{qd}"),
            Box::new(move || raw_reads(&f, qd, false, true)),
        ));
        let f = std_file.clone();
        all.push((
            format!("raw READ_FIXED+file qd{qd}"),
            Box::new(move || raw_reads(&f, qd, true, true)),
        ));
    }
    let f = std_file.clone();
    all.push((
        "pread loop qd1".to_string(),
        Box::new(move || pread_loop(&f)),
    ));
    all.retain(|(name, _)| on(name));

    let mut runs: Vec<Vec<f64>> = vec![Vec::new(); all.len()];
    for round in 0..=REPS {
        for ((_, f), r) in all.iter_mut().zip(&mut runs) {
            let v = f();
            if round > 0 {
                r.push(v);
            }
        }
    }
    println!("{:<28} {:>12} {:>12}", "contender", "max/s", "median/s");
    let mut med = std::collections::HashMap::new();
    for ((name, _), r) in all.iter().zip(runs) {
        let (max, m) = stats(r);
        println!("{name:<28} {max:>12.0} {m:>12.0}");
        med.insert(name.clone(), m);
    }

    // The goals of the issue, on medians.
    let get = |n: &str| med.get(n).copied();
    println!();
    if let (Some(c), Some(r)) = (get("corio read qd32"), get("raw READ qd32")) {
        let ratio = c / r;
        let ok = if ratio >= 0.95 { "ok" } else { "MISS" };
        println!("corio read qd32 / raw READ qd32 = {ratio:.3} (goal >= 0.95: {ok})");
    }
    // Issue 18's "plain reads >= raw READ" at QD 1, and what cached reads add.
    if let (Some(c), Some(r)) = (get("corio read qd1"), get("raw READ qd1")) {
        let ratio = c / r;
        let ok = if ratio >= 1.0 { "ok" } else { "MISS" };
        println!("corio read qd1 / raw READ qd1 = {ratio:.3} (goal >= 1: {ok})");
    }
    for qd in [1, 32] {
        let (c, ring) = (
            get(&format!("corio read qd{qd}")),
            get(&format!("corio ring read qd{qd}")),
        );
        if let (Some(c), Some(ring)) = (c, ring) {
            println!(
                "corio read qd{qd} / corio ring read qd{qd} = {:.3}",
                c / ring
            );
        }
    }
    // Issue 18's goals, like for like: with a registered file on both sides.
    for (c, r) in [
        ("corio read+file qd32", "raw READ+file qd32"),
        ("corio fixed+file qd32", "raw READ_FIXED+file qd32"),
    ] {
        if let (Some(cv), Some(rv)) = (get(c), get(r)) {
            let ratio = cv / rv;
            let ok = if ratio >= 1.0 { "ok" } else { "MISS" };
            println!("{c} / {r} = {ratio:.3} (goal >= 1: {ok})");
        }
    }
    for qd in [1, 32] {
        if let (Some(c), Some(p)) = (get(&format!("corio fixed qd{qd}")), get("pread loop qd1")) {
            let ok = if c > p { "ok" } else { "MISS" };
            println!(
                "corio fixed qd{qd} / pread loop = {:.3} (goal > 1: {ok})",
                c / p
            );
        }
    }
    for kind in ["read", "fixed"] {
        for qd in [1, 32] {
            let (c, t) = (
                get(&format!("corio {kind} qd{qd}")),
                get(&format!("tokio spawn_blocking qd{qd}")),
            );
            if let (Some(c), Some(t)) = (c, t) {
                let ok = if c >= 5.0 * t { "ok" } else { "MISS" };
                println!(
                    "corio {kind} qd{qd} / tokio qd{qd} = {:.1} (goal >= 5: {ok})",
                    c / t
                );
            }
        }
    }
    drop(all);
    drop(crt_files);
    drop(crt_ring);
    drop(crt);
    drop(bench_file);
}
