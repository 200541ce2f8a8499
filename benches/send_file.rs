//! A file to a socket: `send_file` (splice through a pipe on io_uring,
//! sendfile(2) on the poll driver) vs `read_at` + `write_all` through a
//! user-space buffer, and vs tokio (current-thread runtime: the file read
//! with pread on `spawn_blocking`, as `tokio::fs` does, then `write_all`),
//! for 64 KiB and 1 MiB files in the page cache.
//!
//! Run: `cargo bench --bench send_file [-- TOTAL_MIB]` (default 512 MiB per
//! case; `CORIO_DRIVER=poll` for the poll driver). A corio runtime on this
//! thread sends the file over and over to a std thread that reads and drops
//! the bytes; the table gives the process's CPU (user + system,
//! `getrusage(RUSAGE_SELF)`, reader included) per GiB and the wall rate.

use std::io::Read;
use std::net::TcpListener;
use std::time::{Duration, Instant};

use corio::fs::File;
use corio::net::TcpStream;

fn cpu() -> Duration {
    // SAFETY: rusage is plain data; getrusage fills it.
    let mut r: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: a valid pointer to a rusage.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut r) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(r.ru_utime) + tv(r.ru_stime)
}

/// Sends the file at `path` (`size` bytes) until `total` bytes went; (CPU, wall).
fn run(path: &std::path::Path, size: usize, total: usize, splice: bool) -> (Duration, Duration) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let reader = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut buf = vec![0u8; 1 << 20];
        let mut n = 0usize;
        while let Ok(k @ 1..) = s.read(&mut buf) {
            n += k;
        }
        n
    });
    let rt = corio::Builder::new().build().unwrap();
    let times = rt.block_on(async {
        let file = File::open(path).await.unwrap();
        let s = TcpStream::connect(addr).await.unwrap();
        let mut buf = Vec::with_capacity(size);
        let (c0, w0) = (cpu(), Instant::now());
        for _ in 0..total / size {
            if splice {
                assert_eq!(
                    s.send_file(&file, 0, size as u64).await.unwrap(),
                    size as u64
                );
            } else {
                buf.clear();
                let (res, b) = file.read_exact_at(buf, 0).await;
                res.unwrap();
                let (res, b) = s.write_all(b).await;
                res.unwrap();
                buf = b;
            }
        }
        drop(s);
        (cpu() - c0, w0.elapsed())
    });
    drop(rt);
    assert_eq!(reader.join().unwrap(), total / size * size);
    times
}

/// The tokio contender: (CPU, wall).
fn run_tokio(path: &std::path::Path, size: usize, total: usize) -> (Duration, Duration) {
    use std::os::unix::fs::FileExt;
    use tokio::io::AsyncWriteExt;

    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let reader = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut buf = vec![0u8; 1 << 20];
        let mut n = 0usize;
        while let Ok(k @ 1..) = s.read(&mut buf) {
            n += k;
        }
        n
    });
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let file = std::sync::Arc::new(std::fs::File::open(path).unwrap());
    let times = rt.block_on(async {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        let mut buf = vec![0u8; size];
        let (c0, w0) = (cpu(), Instant::now());
        for _ in 0..total / size {
            let f = file.clone();
            buf = tokio::task::spawn_blocking(move || {
                f.read_exact_at(&mut buf, 0).unwrap();
                buf
            })
            .await
            .unwrap();
            s.write_all(&buf).await.unwrap();
        }
        drop(s);
        (cpu() - c0, w0.elapsed())
    });
    drop(rt);
    assert_eq!(reader.join().unwrap(), total / size * size);
    times
}

fn main() {
    let mib: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(512);
    let total = mib << 20;
    let dir = std::env::temp_dir().join(format!("corio-send-file-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    println!("{mib} MiB per case; process CPU in ms per GiB");
    println!("{:>6} {:>12} {:>8} {:>7}", "file", "how", "cpu", "GiB/s");
    for size in [64 << 10, 1 << 20] {
        let path = dir.join(format!("f{size}"));
        std::fs::write(&path, vec![0x42u8; size]).unwrap();
        for how in ["read+write", "send_file", "tokio"] {
            let (c, w) = match how {
                "tokio" => run_tokio(&path, size, total),
                _ => run(&path, size, total, how == "send_file"),
            };
            let gib = total as f64 / (1u64 << 30) as f64;
            println!(
                "{:>5}K {:>12} {:>8.0} {:>7.2}",
                size >> 10,
                how,
                c.as_secs_f64() * 1000.0 / gib,
                gib / w.as_secs_f64()
            );
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
