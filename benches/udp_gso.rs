//! UDP send cost at QUIC-like sizes: 1,200-byte datagrams sent one per
//! `send_to` against `send_segments` (GSO, 40 segments per sendmsg), on both
//! corio drivers, and tokio's `send_to` in the same run.
//!
//! The sender runs on the calling thread; datagrams go to a bound loopback
//! socket nobody reads, so the kernel delivers until its queue is full and
//! drops the rest (the receive path runs on the sender's thread on loopback
//! either way). Reported: datagrams per second (wall) and the sending
//! thread's CPU per datagram (`getrusage(RUSAGE_THREAD)`, user + system),
//! best of a few repetitions.
//!
//! `cargo bench --bench udp_gso [-- DATAGRAMS]` (default 200,000 per run).
//!
//! Measured 2026-12-05, Linux 6.18, 2-CPU VM, **under load** (load average
//! 11-14: other engineers compiling), `cargo bench --bench udp_gso -- 100000`:
//!
//! | sender | datagrams/s | CPU ns/datagram |
//! |---|---|---|
//! | corio uring send_to | 315,388 | 1,533 |
//! | corio uring send_segments (GSO) | 1,777,978 | 240 |
//! | corio uring send_segments, GSO off | 329,259 | 1,729 |
//! | corio poll send_to | 328,725 | 1,435 |
//! | corio poll send_segments (GSO) | 1,078,345 | 393 |
//! | tokio send_to | 392,799 | 1,710 |
//!
//! GSO cuts CPU per datagram about 6x (uring) and 3.6x (poll) against
//! per-datagram sends; take the absolute numbers as rough (busy machine).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use corio::net::UdpSocket;
use corio::{Builder, DriverKind};

const SIZE: usize = 1200;
const SEGMENTS: usize = 40;
const REPS: usize = 3;

fn thread_cpu() -> Duration {
    // SAFETY: getrusage fills a zeroed rusage we own.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: as above; RUSAGE_THREAD is this (sending) thread.
    unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut ru) };
    let t = |tv: libc::timeval| Duration::new(tv.tv_sec as u64, tv.tv_usec as u32 * 1000);
    t(ru.ru_utime) + t(ru.ru_stime)
}

#[derive(Clone, Copy)]
enum Mode {
    SendTo,
    Gso,
    GsoFallback,
}

fn corio_run(driver: DriverKind, mode: Mode, to: SocketAddr, n: usize) -> (Duration, Duration) {
    let rt = Builder::new().driver(driver).build().expect("runtime");
    rt.block_on(async {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        s.set_gso(matches!(mode, Mode::Gso));
        let (mut burst, mut one) = (vec![7u8; SIZE * SEGMENTS], vec![7u8; SIZE]);
        let (wall, cpu) = (Instant::now(), thread_cpu());
        match mode {
            Mode::SendTo => {
                for _ in 0..n {
                    let (res, b) = s.send_to(one, to).await;
                    res.unwrap();
                    one = b;
                }
            }
            Mode::Gso | Mode::GsoFallback => {
                for _ in 0..n / SEGMENTS {
                    let (res, b) = s.send_segments(burst, SIZE, to).await;
                    res.unwrap();
                    burst = b;
                }
            }
        }
        (wall.elapsed(), thread_cpu() - cpu)
    })
}

fn tokio_run(to: SocketAddr, n: usize) -> (Duration, Duration) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let s = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let one = vec![7u8; SIZE];
        let (wall, cpu) = (Instant::now(), thread_cpu());
        for _ in 0..n {
            s.send_to(&one, to).await.unwrap();
        }
        (wall.elapsed(), thread_cpu() - cpu)
    })
}

fn main() {
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(200_000);
    let n = n.div_ceil(SEGMENTS) * SEGMENTS;
    let sink = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let to = sink.local_addr().unwrap();
    type Case = (&'static str, Box<dyn Fn() -> (Duration, Duration)>);
    let cases: Vec<Case> = vec![
        (
            "corio uring send_to",
            Box::new(move || corio_run(DriverKind::Uring, Mode::SendTo, to, n)),
        ),
        (
            "corio uring send_segments (GSO)",
            Box::new(move || corio_run(DriverKind::Uring, Mode::Gso, to, n)),
        ),
        (
            "corio uring send_segments, GSO off",
            Box::new(move || corio_run(DriverKind::Uring, Mode::GsoFallback, to, n)),
        ),
        (
            "corio poll send_to",
            Box::new(move || corio_run(DriverKind::Poll, Mode::SendTo, to, n)),
        ),
        (
            "corio poll send_segments (GSO)",
            Box::new(move || corio_run(DriverKind::Poll, Mode::Gso, to, n)),
        ),
        ("tokio send_to", Box::new(move || tokio_run(to, n))),
    ];
    println!("{n} datagrams of {SIZE} bytes per run, best of {REPS} (GSO: {SEGMENTS} per sendmsg)");
    println!("| sender | datagrams/s | CPU ns/datagram |");
    println!("|---|---|---|");
    for (name, run) in &cases {
        let (mut best_rate, mut best_cpu) = (0f64, f64::MAX);
        for _ in 0..REPS {
            let (wall, cpu) = run();
            best_rate = best_rate.max(n as f64 / wall.as_secs_f64());
            best_cpu = best_cpu.min(cpu.as_nanos() as f64 / n as f64);
        }
        println!("| {name} | {best_rate:.0} | {best_cpu:.0} |");
    }
    drop(sink);
}
