//! Zero-copy send vs plain send on loopback: CPU per GiB for bulk sends of
//! 16 KiB to 1 MiB.
//!
//! Run: `cargo bench --bench zc [-- TOTAL_MIB]` (default 512 MiB per case).
//!
//! Over a veth pair instead of loopback: start a sink in the peer network
//! namespace with `zc --sink ADDR:PORT` (it counts what each connection
//! sends and answers with the count and its CPU time), then run the bench
//! with `CORIO_ZC_PEER=ADDR:PORT`; the process column is then the sender's
//! process plus the sink's. `scripts/zc_veth.sh` sets
//! the pair up, runs both and tears it down.
//! For each buffer size a corio io_uring runtime on this thread sends TOTAL
//! bytes to a plain std thread that reads them into a 1 MiB buffer, once with
//! `write_all` (IORING_OP_SEND) and once with `write_all_zc`
//! (IORING_OP_SEND_ZC), each buffer reused for every send, and once with
//! tokio's `write_all` (current-thread runtime) for comparison. The table gives
//! the sender thread's CPU (user + system, `getrusage(RUSAGE_THREAD)`: on
//! loopback the receive path's softirq work runs there too), the whole
//! process's CPU (`RUSAGE_SELF`, with the reader), per GiB, and the wall
//! rate. Loopback delivers zero-copy pages to a local socket by copying
//! them, so zero-copy is expected to lose here; a real NIC is where it wins.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::time::{Duration, Instant};

use corio::net::TcpStream;
use corio::{Builder, DriverKind};

const SIZES: &[usize] = &[16 << 10, 64 << 10, 256 << 10, 1 << 20];

fn cpu(who: libc::c_int) -> Duration {
    // SAFETY: rusage is plain data; getrusage fills it.
    let mut r: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: a valid pointer to a rusage.
    unsafe { libc::getrusage(who, &mut r) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(r.ru_utime) + tv(r.ru_stime)
}

/// Thread CPU, process CPU and wall time since it was made.
struct Clock(Duration, Duration, Instant);

impl Clock {
    fn start() -> Clock {
        Clock(
            cpu(libc::RUSAGE_THREAD),
            cpu(libc::RUSAGE_SELF),
            Instant::now(),
        )
    }

    fn elapsed(&self) -> (Duration, Duration, Duration) {
        (
            cpu(libc::RUSAGE_THREAD) - self.0,
            cpu(libc::RUSAGE_SELF) - self.1,
            self.2.elapsed(),
        )
    }
}

/// tokio's `write_all` (current-thread runtime) of `total` bytes in `size`
/// chunks to `addr`; (thread CPU, process CPU, wall). With `remote` the peer
/// is a sink (see `sink`): the sender half-closes and checks its count.
fn send_tokio(
    addr: SocketAddr,
    size: usize,
    total: usize,
    remote: bool,
) -> (Duration, Duration, Duration) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        let buf = vec![0x5au8; size];
        let clock = Clock::start();
        for _ in 0..total / size {
            s.write_all(&buf).await.unwrap();
        }
        let mut elapsed = clock.elapsed();
        if remote {
            s.shutdown().await.unwrap();
            let mut answer = [0u8; 16];
            s.read_exact(&mut answer).await.unwrap();
            elapsed.1 += sink_cpu(&answer, total / size * size);
        }
        elapsed
    })
}

/// The sink's CPU from its answer, after checking it received `sent` bytes.
fn sink_cpu(answer: &[u8], sent: usize) -> Duration {
    let word = |i: usize| u64::from_le_bytes(answer[i..i + 8].try_into().unwrap());
    assert_eq!(word(0), sent as u64, "the sink received a different count");
    Duration::from_nanos(word(8))
}

/// The far end for `CORIO_ZC_PEER`: accepts connections on `addr` one after
/// another, reads each to its end and answers with the byte count and the
/// CPU nanoseconds the sink process used meanwhile (two u64 LE).
fn sink(addr: &str) -> ! {
    let listener = TcpListener::bind(addr).unwrap();
    eprintln!("sink listening on {}", listener.local_addr().unwrap());
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let (mut s, _) = listener.accept().unwrap();
        let before = cpu(libc::RUSAGE_SELF);
        let mut n = 0u64;
        loop {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(k) => n += k as u64,
            }
        }
        let used = (cpu(libc::RUSAGE_SELF) - before).as_nanos() as u64;
        let mut answer = [0u8; 16];
        answer[..8].copy_from_slice(&n.to_le_bytes());
        answer[8..].copy_from_slice(&used.to_le_bytes());
        let _ = s.write_all(&answer);
    }
}

/// Sends `total` bytes in `size` chunks by `how` ("plain", "zc" or
/// "tokio"); (thread CPU, process CPU, wall).
fn run(
    size: usize,
    total: usize,
    how: &str,
    peer: Option<SocketAddr>,
) -> (Duration, Duration, Duration) {
    let zc = how == "zc";
    let sent = total / size * size;
    if let Some(addr) = peer {
        if how == "tokio" {
            return send_tokio(addr, size, total, true);
        }
        return send_corio(addr, size, total, zc, true);
    }
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let reader = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut buf = vec![0u8; 1 << 20];
        let mut n = 0usize;
        loop {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => return n,
                Ok(k) => n += k,
            }
        }
    });
    let r = if how == "tokio" {
        send_tokio(addr, size, total, false)
    } else {
        send_corio(addr, size, total, zc, false)
    };
    assert_eq!(reader.join().unwrap(), sent);
    r
}

/// corio's `write_all` or `write_all_zc` (io_uring driver) of `total` bytes
/// in `size` chunks to `addr`; as `send_tokio`.
fn send_corio(
    addr: SocketAddr,
    size: usize,
    total: usize,
    zc: bool,
    remote: bool,
) -> (Duration, Duration, Duration) {
    let rt = Builder::new().driver(DriverKind::Uring).build().unwrap();
    let (t, p, w) = rt.block_on(async {
        let s = TcpStream::connect(addr).await.unwrap();
        let mut buf = vec![0x5au8; size];
        let clock = Clock::start();
        for _ in 0..total / size {
            let (res, b) = if zc {
                s.write_all_zc(buf).await
            } else {
                s.write_all(buf).await
            };
            res.unwrap();
            buf = b;
        }
        let mut elapsed = clock.elapsed();
        if remote {
            s.shutdown(std::net::Shutdown::Write).await.unwrap();
            let (res, answer) = s.read_exact(vec![0u8; 16]).await;
            res.unwrap();
            elapsed.1 += sink_cpu(&answer, total / size * size);
        }
        elapsed
    });
    // The socket's close is an op: the runtime submits it as it goes.
    drop(rt);
    (t, p, w)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--sink") {
        sink(args.get(i + 1).map_or("0.0.0.0:7100", |a| a.as_str()));
    }
    let peer: Option<SocketAddr> = std::env::var("CORIO_ZC_PEER")
        .ok()
        .map(|p| p.parse().expect("CORIO_ZC_PEER: ADDR:PORT"));
    let mib: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(512);
    let total = mib << 20;
    let per_gib = |d: Duration| d.as_secs_f64() * 1000.0 * (1u64 << 30) as f64 / total as f64;
    match peer {
        Some(p) => println!(
            "{mib} MiB per case to the sink at {p}; CPU in ms per GiB sent (sender thread / sender process)"
        ),
        None => println!(
            "{mib} MiB per case over loopback; CPU in ms per GiB sent (sender thread / whole process)"
        ),
    }
    println!(
        "{:>8} {:>6} {:>10} {:>10} {:>9}",
        "size", "send", "thread", "process", "GiB/s"
    );
    for &size in SIZES {
        for how in ["plain", "zc", "tokio"] {
            let (t, p, w) = run(size, total, how, peer);
            println!(
                "{:>7}K {:>6} {:>10.0} {:>10.0} {:>9.2}",
                size >> 10,
                how,
                per_gib(t),
                per_gib(p),
                total as f64 / (1u64 << 30) as f64 / w.as_secs_f64()
            );
        }
    }
}
