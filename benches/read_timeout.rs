//! CPU per timed-out read: `read_timeout` (a linked LINK_TIMEOUT on
//! io_uring) vs `time::timeout(read)` (a user-space timer, then a cancel),
//! and `read_timeout` with LINK_TIMEOUT turned off, and tokio's
//! `time::timeout(read)` (current-thread runtime) in the same run.
//!
//! Run: `cargo bench --bench read_timeout [-- N]` (default 20,000 reads per
//! case, each with a 50 µs deadline on an idle loopback connection; add
//! `CORIO_DRIVER=poll` for the poll driver). The table gives the process's
//! CPU (user + system, `getrusage`) per timed-out read and the wall time per
//! read (mostly the deadline itself).

use std::time::{Duration, Instant};

use corio::net::{TcpListener, TcpStream};

const DEADLINE: Duration = Duration::from_micros(50);

fn cpu() -> Duration {
    // SAFETY: rusage is plain data; getrusage fills it.
    let mut r: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: a valid pointer to a rusage.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut r) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(r.ru_utime) + tv(r.ru_stime)
}

/// `n` timed-out reads; (CPU, wall) per read.
fn run(n: u32, how: &str) -> (Duration, Duration) {
    let mut b = corio::Builder::new();
    if how == "read_timeout, LINK_TIMEOUT off" {
        b = b.disable_opcodes(["LINK_TIMEOUT"]);
    }
    b.build().unwrap().block_on(async move {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let accept = corio::spawn(async move { l.accept().await.unwrap().0 });
        let s = TcpStream::connect(addr).await.unwrap();
        let _peer = accept.await.unwrap();
        let mut buf = Vec::with_capacity(64);
        let (c0, w0) = (cpu(), Instant::now());
        for _ in 0..n {
            if how == "time::timeout(read)" {
                let r = corio::time::timeout(DEADLINE, s.read(Vec::with_capacity(64))).await;
                assert!(r.is_err());
            } else {
                let (res, b) = s.read_timeout(buf, DEADLINE).await;
                assert!(res.is_err());
                buf = b;
            }
        }
        ((cpu() - c0) / n, w0.elapsed() / n)
    })
}

/// The same with tokio: `tokio::time::timeout(DEADLINE, stream.read(..))`.
fn run_tokio(n: u32) -> (Duration, Duration) {
    use tokio::io::AsyncReadExt;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let accept = tokio::spawn(async move { l.accept().await.unwrap().0 });
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        let _peer = accept.await.unwrap();
        let mut buf = [0u8; 64];
        let (c0, w0) = (cpu(), Instant::now());
        for _ in 0..n {
            let r = tokio::time::timeout(DEADLINE, s.read(&mut buf)).await;
            assert!(r.is_err());
        }
        ((cpu() - c0) / n, w0.elapsed() / n)
    })
}

fn main() {
    let n: u32 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(20_000);
    println!("{n} timed-out reads per case, deadline {DEADLINE:?}");
    println!("{:>32} {:>10} {:>10}", "how", "CPU/read", "wall/read");
    for how in [
        "read_timeout",
        "read_timeout, LINK_TIMEOUT off",
        "time::timeout(read)",
        "tokio time::timeout(read)",
    ] {
        let (c, w) = if how.starts_with("tokio") {
            run_tokio(n)
        } else {
            run(n, how)
        };
        println!("{how:>32} {c:>10.1?} {w:>10.1?}");
    }
}
