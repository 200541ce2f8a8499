//! The receive pool's ring modes: receive bundles (several buffers per
//! completion) and incremental buffers (a receive uses only the bytes it
//! got), each on, forced off, and on the poll driver (which has neither).
//! Bytes arrive exactly and in order, every buffer comes back once, and
//! with an incremental ring many connections' few unread bytes share a
//! buffer.

mod support;

use std::io::Write;
use std::time::{Duration, Instant};

use corio::DriverKind;
use corio::net::{TcpListener, TcpStream, UdpSocket};
use corio::time::{sleep, timeout};

/// The combinations of ring features a test runs under.
const MODES: [&[&str]; 4] = [
    &[],
    &["RECV_BUNDLE"],
    &["PBUF_RING_INC"],
    &["RECV_BUNDLE", "PBUF_RING_INC"],
];

fn runtime(off: &[&str], count: u16, size: usize) -> corio::Runtime {
    support::builder()
        .buffer_pool(count, size)
        .disable_opcodes(off.iter().copied())
        .build()
        .unwrap()
}

/// The pool's modes agree with the driver and what was turned off; `false`
/// (with a message) when the kernel lacks a mode that was asked for.
fn check_modes(off: &[&str]) -> bool {
    let u = corio::runtime::pool_usage().expect("the pool is made");
    if support::driver() == DriverKind::Poll {
        assert!(!u.bundles && !u.incremental, "the poll driver has no ring");
        return true;
    }
    if off.contains(&"RECV_BUNDLE") {
        assert!(!u.bundles, "RECV_BUNDLE was turned off");
    }
    if off.contains(&"PBUF_RING_INC") {
        assert!(!u.incremental, "PBUF_RING_INC was turned off");
    }
    let lacks = (!off.contains(&"RECV_BUNDLE") && !u.bundles)
        || (!off.contains(&"PBUF_RING_INC") && !u.incremental);
    if lacks {
        eprintln!("the kernel lacks RECVSEND_BUNDLE or IOU_PBUF_RING_INC: {u:?}");
    }
    !lacks
}

async fn pair(listener: &TcpListener) -> (TcpStream, std::net::TcpStream) {
    let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().await.unwrap();
    (server, client)
}

fn pattern(i: usize) -> u8 {
    (i % 251) as u8
}

/// Arms the socket's multishot receive without taking anything.
async fn arm(s: &TcpStream) {
    assert!(
        timeout(Duration::from_millis(1), s.recv_pooled())
            .await
            .is_err(),
        "no data was sent yet"
    );
}

/// Waits until `n` more completions than `before` were reaped.
async fn await_cqes(before: u64, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while corio::runtime::stats().cqes_reaped < before + n {
        assert!(Instant::now() < deadline, "completions did not come");
        sleep(Duration::from_millis(2)).await;
    }
}

both_drivers! {
fn queued_bulk_data_comes_back_exactly_in_every_ring_mode() {
    const LEN: usize = 48 * 1024;
    const SIZE: usize = 1024;
    for off in MODES {
        let rt = runtime(off, 128, SIZE);
        rt.block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let (s, mut c) = pair(&listener).await;
            // Queued before the receive is armed: a bundle can take it all.
            let data: Vec<u8> = (0..LEN).map(pattern).collect();
            c.write_all(&data).unwrap();
            let before = corio::runtime::stats().cqes_reaped;
            let mut leases = Vec::new();
            let mut got = 0;
            while got < LEN {
                let lease = s.recv_pooled().await.unwrap().expect("data");
                assert!(!lease.is_empty() && lease.len() <= SIZE);
                for (k, &b) in lease.iter().enumerate() {
                    assert_eq!(b, pattern(got + k), "byte {} (modes off: {off:?})", got + k);
                }
                got += lease.len();
                leases.push(lease);
            }
            assert_eq!(got, LEN);
            let cqes = corio::runtime::stats().cqes_reaped - before;
            eprintln!("modes off {off:?}: {cqes} completions for {} buffers", leases.len());
            let full = check_modes(off);
            let u = corio::runtime::pool_usage().unwrap();
            if u.bundles {
                assert!(
                    (cqes as usize) < leases.len() / 2,
                    "{cqes} completions for {} buffers: no bundles",
                    leases.len()
                );
            } else if support::driver() == DriverKind::Uring {
                assert!(cqes as usize >= leases.len(), "one buffer per completion");
            }
            assert!(u.held >= leases.len() * SIZE / u.buffer_size / 2);
            drop(leases);
            assert_eq!(corio::runtime::pool_usage().unwrap().held, 0, "a buffer was not returned");
            // The buffers went back: the pool still carries data.
            c.write_all(b"again").unwrap();
            assert_eq!(&s.recv_pooled().await.unwrap().unwrap()[..], b"again");
            drop(c);
            assert!(s.recv_pooled().await.unwrap().is_none());
            let _ = full;
        });
    }
}
}

both_drivers! {
fn a_slow_reader_with_a_small_pool_loses_nothing_in_every_ring_mode() {
    const LEN: usize = 1 << 20;
    for off in MODES {
        let rt = runtime(off, 8, 512);
        rt.block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let (s, mut c) = pair(&listener).await;
            let sender = std::thread::spawn(move || {
                let data: Vec<u8> = (0..LEN).map(pattern).collect();
                for part in data.chunks(3000) {
                    c.write_all(part).unwrap();
                }
            });
            let mut got = 0;
            let mut held = std::collections::VecDeque::new();
            while got < LEN {
                let lease = s.recv_pooled().await.unwrap().expect("data");
                for (k, &b) in lease.iter().enumerate() {
                    assert_eq!(b, pattern(got + k), "byte {} (modes off: {off:?})", got + k);
                }
                got += lease.len();
                // Keep a few leases: the ring runs dry now and then.
                held.push_back(lease);
                if held.len() > 5 {
                    held.pop_front();
                }
            }
            sender.join().unwrap();
            drop(held);
            assert_eq!(corio::runtime::pool_usage().unwrap().held, 0);
            assert!(s.recv_pooled().await.unwrap().is_none());
        });
    }
}
}

both_drivers! {
fn few_unread_bytes_on_many_connections_share_buffers_when_incremental() {
    const CONNS: usize = 64;
    for off in MODES {
        let rt = runtime(off, 256, 4096);
        rt.block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let mut conns = Vec::new();
            for _ in 0..CONNS {
                let (s, c) = pair(&listener).await;
                arm(&s).await;
                conns.push((s, c));
            }
            let before = corio::runtime::stats().cqes_reaped;
            for (i, (_, c)) in conns.iter_mut().enumerate() {
                c.write_all(&[i as u8; 5]).unwrap();
            }
            if support::driver() == DriverKind::Uring {
                await_cqes(before, CONNS as u64).await;
            }
            check_modes(off);
            let u = corio::runtime::pool_usage().unwrap();
            eprintln!("modes off {off:?}: {} buffers hold {CONNS} connections' 5 bytes", u.held);
            if u.incremental {
                assert!(u.held <= 2, "{} buffers for {} bytes", u.held, CONNS * 5);
            } else if support::driver() == DriverKind::Uring {
                assert_eq!(u.held, CONNS, "a buffer per connection");
            }
            // Hold each connection's first bytes while the kernel writes
            // more (of every connection) past them in the same buffers.
            let mut first = Vec::new();
            for (s, _) in &conns {
                first.push(s.recv_pooled().await.unwrap().unwrap());
            }
            for (i, (_, c)) in conns.iter_mut().enumerate() {
                c.write_all(&[!(i as u8); 7]).unwrap();
            }
            for (i, (s, _)) in conns.iter().enumerate() {
                let second = s.recv_pooled().await.unwrap().unwrap();
                assert_eq!(&second[..], &[!(i as u8); 7]);
            }
            for (i, lease) in first.iter().enumerate() {
                assert_eq!(&lease[..], &[i as u8; 5], "earlier bytes were overwritten");
            }
            drop(first);
            assert_eq!(corio::runtime::pool_usage().unwrap().held, 0);
        });
    }
}
}

both_drivers! {
fn datagrams_and_streams_share_a_runtime_with_an_incremental_ring() {
    for off in MODES {
        let rt = runtime(off, 16, 2048);
        rt.block_on(async {
            let a = UdpSocket::bind("127.0.0.1:0").unwrap();
            let b = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let (s, mut c) = pair(&listener).await;
            for round in 0..100usize {
                c.write_all(&[round as u8; 3]).unwrap();
                b.send_to(&vec![round as u8; round + 1], a.local_addr().unwrap()).unwrap();
                let (d, meta) = a.recv_pooled_msg().await.unwrap();
                assert_eq!(&d[..], &vec![round as u8; round + 1][..]);
                assert_eq!(meta.from, b.local_addr().unwrap());
                let mut got = Vec::new();
                while got.len() < 3 {
                    got.extend_from_slice(&s.recv_pooled().await.unwrap().unwrap());
                }
                assert_eq!(got, [round as u8; 3]);
            }
            check_modes(off);
            assert_eq!(corio::runtime::pool_usage().unwrap().held, 0);
        });
    }
}
}
