//! The io_uring driver under injected `io_uring_enter` faults (`EAGAIN`,
//! `EBUSY`, `EINTR`, short submits; `Builder::enter_faults`) and with a
//! completion queue so small that it overflows: no op and no completion is
//! lost or delivered twice, every future resolves, nothing leaks.
//!
//! A lost completion would leave a future pending for ever (the watchdog
//! ends the process and names the seed); a duplicated one trips the driver's
//! debug assertion on stale slots, or shows as a wrong count here.

mod support;

use std::cell::Cell;
use std::io::{Read, Write};
use std::rc::Rc;
use std::time::Duration;

use corio::net::{TcpListener, TcpStream, UdpSocket};
use corio::time::{sleep, timeout};
use corio::{Builder, DriverKind, Runtime};

/// An io_uring builder, or `None` (with a message) where there is none.
fn uring() -> Option<Builder> {
    if support::uring_available() {
        Some(Builder::new().driver(DriverKind::Uring))
    } else {
        eprintln!("skipped: io_uring is not available here");
        None
    }
}

fn pattern(i: usize) -> u8 {
    (i.wrapping_mul(131) % 253) as u8
}

/// Runs a mixed load on `rt` and checks every result: `nops` NOP round
/// trips from as many tasks, sleeps, a TCP echo of `bytes` bytes over 4
/// connections with some reads dropped by timeouts, UDP datagrams, and
/// accepts whose futures are dropped.
fn load(rt: &Runtime, nops: usize, bytes: usize) {
    rt.block_on(async {
        let done = Rc::new(Cell::new(0usize));
        let mut tasks = Vec::new();
        for i in 0..nops {
            let done = done.clone();
            tasks.push(corio::spawn(async move {
                corio::nop().await.expect("nop");
                if i % 7 == 0 {
                    sleep(Duration::from_micros(200)).await;
                }
                corio::nop().await.expect("second nop");
                done.set(done.get() + 1);
            }));
        }

        // TCP echo: a std thread per connection writes the pattern and reads
        // it back; the corio side echoes with plain reads, some of them
        // dropped by a short timeout (their bytes are kept for the next).
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let clients: Vec<_> = (0..4)
            .map(|_| {
                std::thread::spawn(move || {
                    let mut c = std::net::TcpStream::connect(addr).unwrap();
                    c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
                    let data: Vec<u8> = (0..bytes).map(pattern).collect();
                    let mut r = c.try_clone().unwrap();
                    let reader = std::thread::spawn(move || {
                        let mut back = vec![0u8; bytes];
                        r.read_exact(&mut back).expect("echo back");
                        back
                    });
                    for chunk in data.chunks(1000) {
                        c.write_all(chunk).unwrap();
                    }
                    c.shutdown(std::net::Shutdown::Write).unwrap();
                    assert!(reader.join().unwrap() == data, "echo corrupted");
                })
            })
            .collect();
        for n in 0..4u64 {
            // Every other accept is first polled once and dropped: its
            // connection, if it got one, goes to the next accept.
            let first = match n % 2 {
                0 => timeout(Duration::ZERO, listener.accept()).await.ok(),
                _ => None,
            };
            let (s, _) = match first {
                Some(res) => res.expect("accept"),
                None => listener.accept().await.expect("accept"),
            };
            tasks.push(corio::spawn(echo(s, n)));
        }

        // UDP: 200 datagrams, each answered.
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").unwrap();
        a.connect(b.local_addr().unwrap()).await.unwrap();
        b.connect(a.local_addr().unwrap()).await.unwrap();
        for i in 0..200u32 {
            a.send(i.to_be_bytes().to_vec()).await.0.unwrap();
            let (res, buf) = b.recv(vec![0u8; 8]).await;
            assert_eq!(res.unwrap(), 4);
            assert_eq!(u32::from_be_bytes(buf[..4].try_into().unwrap()), i);
        }

        for t in tasks {
            t.await.expect("task");
        }
        assert_eq!(done.get(), nops, "every NOP completed exactly once");
        for c in clients {
            c.join().expect("client");
        }
    });
}

/// Echoes `s` until end of stream, with every third read under a timeout
/// that may drop it.
async fn echo(s: TcpStream, seed: u64) {
    let mut k = seed;
    loop {
        k += 1;
        let read = s.read(vec![0u8; 1 + (k as usize * 37) % 1500]);
        let (res, buf) = if k.is_multiple_of(3) {
            match timeout(Duration::from_micros(50), read).await {
                Ok(r) => r,
                Err(_) => continue,
            }
        } else {
            read.await
        };
        let n = res.expect("read");
        if n == 0 {
            return;
        }
        s.write_all(buf[..n].to_vec()).await.0.expect("write_all");
    }
}

#[test]
fn every_op_survives_enter_faults_of_every_kind() {
    let Some(b) = uring() else { return };
    let _serial = support::serial();
    let fds = support::open_fds();
    // More with CORIO_ENTER_FAULT_SEEDS=<n>.
    let seeds = std::env::var("CORIO_ENTER_FAULT_SEEDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(16u64);
    for seed in 1..=seeds {
        let _dog = support::watchdog(
            Duration::from_secs(60),
            format!("enter faults, seed {seed}"),
        );
        let rt = b.clone().enter_faults(seed, 3).build().unwrap();
        load(&rt, 2_000, 64 * 1024);
        let injected = rt.injected_enter_faults();
        eprintln!("seed {seed}: injected EAGAIN/EBUSY/EINTR/short {injected:?}");
        assert!(
            injected.iter().all(|&n| n > 0),
            "seed {seed}: some fault kind never came: {injected:?}"
        );
        drop(rt);
    }
    assert_eq!(support::open_fds(), fds, "fds leaked");
}

#[test]
fn a_tiny_completion_queue_overflows_and_loses_nothing() {
    let Some(b) = uring() else { return };
    let _serial = support::serial();
    let fds = support::open_fds();
    let _dog = support::watchdog(Duration::from_secs(60), "tiny completion queue");
    // Four SQ and four CQ entries; one completion handled per tick, so the
    // kernel keeps the rest on its overflow list.
    let rt = b
        .entries(4)
        .cq_entries(4)
        .max_completions_per_tick(1)
        .build()
        .unwrap();
    load(&rt, 3_000, 32 * 1024);
    let s = rt.stats();
    eprintln!("{s}");
    assert!(s.cq_overflows > 0, "the completion queue never overflowed");
    drop(rt);
    assert_eq!(support::open_fds(), fds, "fds leaked");
}

#[test]
fn overflow_and_faults_together() {
    let Some(b) = uring() else { return };
    let _serial = support::serial();
    let fds = support::open_fds();
    let _dog = support::watchdog(Duration::from_secs(60), "overflow with faults, seed 99");
    let rt = b
        .entries(8)
        .cq_entries(8)
        .max_completions_per_tick(2)
        .enter_faults(99, 4)
        .build()
        .unwrap();
    load(&rt, 2_000, 32 * 1024);
    assert!(rt.stats().cq_overflows > 0);
    drop(rt);
    assert_eq!(support::open_fds(), fds, "fds leaked");
}

/// A runtime that spins instead of parking (`spin_before_park`) still
/// submits what a faulted enter left in the submission queue: the spin
/// looked only at completions, so SQEs left by an `EAGAIN`/`EBUSY` or a
/// short submit waited for ever under an endless spin (found under
/// valgrind, which runs the io_uring side with `CORIO_SPIN_US=max`).
#[test]
fn an_endless_spin_submits_what_a_faulted_enter_left() {
    let Some(b) = uring() else { return };
    let _serial = support::serial();
    let fds = support::open_fds();
    for seed in 1..=4 {
        let _dog = support::watchdog(
            Duration::from_secs(60),
            format!("spin with faults, seed {seed}"),
        );
        let rt = b
            .clone()
            .spin_before_park(Duration::MAX)
            .enter_faults(seed, 3)
            .build()
            .unwrap();
        load(&rt, 500, 16 * 1024);
        assert!(rt.injected_enter_faults().iter().sum::<u64>() > 0);
        drop(rt);
    }
    assert_eq!(support::open_fds(), fds, "fds leaked");
}

#[test]
fn the_poll_driver_ignores_the_knob() {
    let _serial = support::serial();
    let rt = Builder::new()
        .driver(DriverKind::Poll)
        .enter_faults(1, 2)
        .build()
        .unwrap();
    if rt.driver_kind() != DriverKind::Poll {
        eprintln!("skipped: CORIO_DRIVER overrides the driver asked for");
        return;
    }
    load(&rt, 200, 8 * 1024);
    assert_eq!(rt.injected_enter_faults(), [0; 4]);
}
