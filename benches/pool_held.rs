//! Pool memory held by many connections that each received a few bytes
//! and hold them (a request not yet complete): an incremental buffer ring
//! (`IOU_PBUF_RING_INC`) against a plain one. Deterministic (counts buffers
//! and resident pages), not timed.
//!
//! Run: `ulimit -n 20000; cargo bench --bench pool_held [-- CONNS BYTES]`
//! (default 19,000 connections, 5 bytes each). For each mode a server
//! process (a corio io_uring runtime, pool 32768 × 4 KiB so the plain ring
//! never runs dry) accepts CONNS connections from a client process (each
//! side stays under the fd limit), spawns a task per connection that takes
//! one pooled receive and keeps the lease, and reports once every task has
//! its bytes: the buffers held (`runtime::pool_usage().held`), those as
//! bytes, and the growth of the process's resident memory (VmRSS) from
//! before the bytes were sent.

use std::cell::{Cell, RefCell};
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::rc::Rc;
use std::time::{Duration, Instant};

use corio::net::TcpListener;
use corio::{Builder, DriverKind};

fn rss_kib() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Connects `conns` sockets to `addr`, writes `bytes` on each, says
/// `ready`, and holds them until stdin closes.
fn client(addr: &str, conns: usize, bytes: usize) {
    let mut socks = Vec::with_capacity(conns);
    for _ in 0..conns {
        socks.push(std::net::TcpStream::connect(addr).unwrap());
    }
    println!("connected");
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).unwrap();
    for s in &mut socks {
        s.write_all(&vec![b'x'; bytes]).unwrap();
    }
    println!("ready");
    let _ = std::io::stdin().read_line(&mut line);
}

/// One mode's server; prints a table row.
fn server(mode: &str, conns: usize, bytes: usize) {
    let mut b = Builder::new()
        .driver(DriverKind::Uring)
        .buffer_pool(32768, 4096);
    if mode == "plain" {
        b = b.disable_opcodes(["PBUF_RING_INC"]);
    }
    let rt = b.build().unwrap();
    rt.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--client", &addr, &conns.to_string(), &bytes.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let leases = Rc::new(RefCell::new(Vec::with_capacity(conns)));
        let got = Rc::new(Cell::new(0usize));
        for _ in 0..conns {
            let (s, _) = listener.accept().await.unwrap();
            let (leases, got) = (leases.clone(), got.clone());
            corio::spawn(async move {
                // A few bytes may straddle two buffers: take them all.
                let mut mine = Vec::new();
                let mut n = 0;
                while n < bytes {
                    let lease = s.recv_pooled().await.unwrap().unwrap();
                    n += lease.len();
                    mine.push(lease);
                }
                got.set(got.get() + n);
                leases.borrow_mut().push((s, mine));
            });
        }
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "connected");
        corio::time::sleep(Duration::from_millis(100)).await;
        let rss0 = rss_kib();
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(b"send\n").unwrap();
        line.clear();
        out.read_line(&mut line).unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        while got.get() < conns * bytes {
            assert!(Instant::now() < deadline, "only {} bytes came", got.get());
            corio::time::sleep(Duration::from_millis(10)).await;
        }
        let u = corio::runtime::pool_usage().unwrap();
        let rss = rss_kib();
        println!(
            "{:<12} {:>7} {:>6} {:>9} {:>14} {:>14}",
            if u.incremental {
                "incremental"
            } else {
                "plain"
            },
            conns,
            bytes,
            u.held,
            u.held * u.buffer_size / 1024,
            rss.saturating_sub(rss0),
        );
        drop(stdin);
        let _ = child.wait();
        leases.borrow_mut().clear();
    });
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    if args.first().map(String::as_str) == Some("--client") {
        return client(&args[1], args[2].parse().unwrap(), args[3].parse().unwrap());
    }
    if args.first().map(String::as_str) == Some("--server") {
        return server(&args[1], args[2].parse().unwrap(), args[3].parse().unwrap());
    }
    let conns: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(19_000);
    let bytes: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(5);
    println!(
        "{:<12} {:>7} {:>6} {:>9} {:>14} {:>14}",
        "ring", "conns", "bytes", "buffers", "pool KiB held", "RSS KiB grown"
    );
    for mode in ["incremental", "plain"] {
        let st = Command::new(std::env::current_exe().unwrap())
            .args(["--server", mode, &conns.to_string(), &bytes.to_string()])
            .status()
            .unwrap();
        assert!(st.success(), "the {mode} run failed");
    }
}
