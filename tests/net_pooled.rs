//! Pooled receives (driver-owned buffers, multishot recv) and multishot
//! accept: ordering, cancel safety, a pool that runs dry, leases, EOF and
//! resets, and cleanup.

mod support;

use std::collections::HashSet;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::thread;
use std::time::{Duration, Instant};

use corio::net::{TcpListener, TcpStream, UdpSocket};
use corio::time::timeout;

/// A connected (corio server side, std client side) pair.
async fn pair() -> (TcpStream, std::net::TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().await.unwrap();
    (server, client)
}

fn pattern(i: usize) -> u8 {
    (i % 251) as u8
}

/// Sends `len` pattern bytes in `chunk`-sized writes with `pause` between.
fn send_pattern(mut c: std::net::TcpStream, len: usize, chunk: usize, pause: Duration) {
    let data: Vec<u8> = (0..len).map(pattern).collect();
    for part in data.chunks(chunk) {
        c.write_all(part).unwrap();
        if !pause.is_zero() {
            thread::sleep(pause);
        }
    }
}

both_drivers! {
fn pooled_echo_round_trips() {
    let _serial = support::serial(); // fd counts are process-wide
    support::run(async {
        let (s, mut c) = pair().await;
        for i in 0..200u32 {
            let msg = format!("message {i}");
            c.write_all(msg.as_bytes()).unwrap();
            let got = s.recv_pooled().await.unwrap().expect("data");
            assert_eq!(&got[..], msg.as_bytes());
            s.write_all(got.to_vec()).await.0.unwrap();
            let mut back = vec![0u8; msg.len()];
            c.read_exact(&mut back).unwrap();
            assert_eq!(back, msg.as_bytes());
        }
        drop(c);
        assert!(s.recv_pooled().await.unwrap().is_none(), "EOF must be None");
        assert!(s.recv_pooled().await.unwrap().is_none(), "EOF stays None");
    });
}
}

both_drivers! {
fn a_pool_of_four_buffers_with_a_slow_consumer_loses_nothing() {
    let _serial = support::serial(); // fd counts are process-wide
    const SENDS: usize = 4096;
    const CHUNK: usize = 100;
    let rt = support::builder().buffer_pool(4, 256).build().unwrap();
    rt.block_on(async {
        let (s, c) = pair().await;
        let sender = thread::spawn(move || send_pattern(c, SENDS * CHUNK, CHUNK, Duration::ZERO));
        let mut got = 0usize;
        let mut ids = HashSet::new();
        let mut held = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(60) * support::slowdown();
        while got < SENDS * CHUNK {
            assert!(Instant::now() < deadline, "stalled at {got} bytes");
            let lease = s.recv_pooled().await.unwrap().expect("data before EOF");
            for (k, &b) in lease.iter().enumerate() {
                assert_eq!(b, pattern(got + k), "byte {} out of order", got + k);
            }
            got += lease.len();
            if let Some(id) = lease.buffer_id() {
                ids.insert(id);
            }
            // Hold up to all four buffers now and then: the pool runs dry and
            // the multishot receive must stop, then resume once they return.
            held.push(lease);
            if held.len() == 4 || got.is_multiple_of(7) {
                corio::time::sleep(Duration::from_micros(200)).await;
                held.clear();
            }
        }
        drop(held);
        sender.join().unwrap();
        assert!(ids.iter().all(|&id| id < 4), "buffer ids outside the pool: {ids:?}");
        // The pool still works after running dry many times.
        assert!(s.recv_pooled().await.unwrap().is_none());
    });
}
}

both_drivers! {
fn ten_thousand_timed_out_pooled_receives_lose_no_byte() {
    let _serial = support::serial(); // fd counts are process-wide
    const LEN: usize = 200_000;
    support::run(async {
        let (s, c) = pair().await;
        let sender = thread::spawn(move || send_pattern(c, LEN, 20, Duration::from_micros(50)));
        let mut got = 0usize;
        let mut timeouts = 0;
        let deadline = Instant::now() + Duration::from_secs(60) * support::slowdown();
        let mut attempts = 0;
        while got < LEN {
            assert!(Instant::now() < deadline, "stalled at {got} bytes");
            attempts += 1;
            let wait = Duration::from_micros((attempts % 5) as u64 * 20);
            match timeout(wait, s.recv_pooled()).await {
                Err(_) => timeouts += 1,
                Ok(res) => {
                    let lease = res.unwrap().expect("data before EOF");
                    for (k, &b) in lease.iter().enumerate() {
                        assert_eq!(b, pattern(got + k), "byte {} lost or out of order", got + k);
                    }
                    got += lease.len();
                }
            }
            if attempts >= 10_000 && timeouts >= 1_000 && got >= LEN {
                break;
            }
        }
        // Keep timing out until 10,000 attempts, then drain the rest.
        while attempts < 10_000 {
            attempts += 1;
            if timeout(Duration::ZERO, s.recv_pooled()).await.is_err() {
                timeouts += 1;
            }
        }
        sender.join().unwrap();
        assert_eq!(got, LEN);
        assert!(timeouts > 0, "no receive timed out: the test proves nothing");
        eprintln!("{attempts} attempts, {timeouts} timed out");
    });
}
}

both_drivers! {
fn ten_thousand_timed_out_plain_reads_lose_no_byte() {
    let _serial = support::serial(); // fd counts are process-wide
    const LEN: usize = 200_000;
    support::run(async {
        let (s, c) = pair().await;
        let sender = thread::spawn(move || send_pattern(c, LEN, 20, Duration::from_micros(50)));
        let mut got = 0usize;
        let mut attempts = 0;
        let mut timeouts = 0;
        let deadline = Instant::now() + Duration::from_secs(60) * support::slowdown();
        while got < LEN || attempts < 10_000 {
            assert!(Instant::now() < deadline, "stalled at {got} bytes");
            attempts += 1;
            let wait = Duration::from_micros((attempts % 5) as u64 * 20);
            match timeout(wait, s.read(Vec::with_capacity(64))).await {
                Err(_) => timeouts += 1,
                Ok((res, buf)) => {
                    let n = res.unwrap();
                    if n == 0 {
                        break;
                    }
                    for (k, &b) in buf[..n].iter().enumerate() {
                        assert_eq!(b, pattern(got + k), "byte {} lost or out of order", got + k);
                    }
                    got += n;
                }
            }
        }
        sender.join().unwrap();
        assert_eq!(got, LEN);
        assert!(timeouts > 0);
    });
}
}

both_drivers! {
fn plain_reads_after_pooled_receives_keep_the_order() {
    let _serial = support::serial(); // fd counts are process-wide
    support::run(async {
        let (s, c) = pair().await;
        let sender = thread::spawn(move || send_pattern(c, 50_000, 333, Duration::from_micros(20)));
        let mut got = 0usize;
        let mut turn = 0;
        while got < 50_000 {
            turn += 1;
            let chunk: Vec<u8> = if turn % 2 == 0 {
                match s.recv_pooled().await.unwrap() {
                    Some(l) => l.to_vec(),
                    None => break,
                }
            } else {
                // A small buffer: the rest of a pooled chunk must wait.
                let (res, buf) = s.read(Vec::with_capacity(50)).await;
                let n = res.unwrap();
                buf[..n].to_vec()
            };
            for (k, &b) in chunk.iter().enumerate() {
                assert_eq!(b, pattern(got + k), "byte {} out of order", got + k);
            }
            got += chunk.len();
        }
        sender.join().unwrap();
        assert_eq!(got, 50_000);
    });
}
}

both_drivers! {
fn a_reset_peer_ends_pooled_receives_with_an_error() {
    let _serial = support::serial(); // fd counts are process-wide
    support::run(async {
        let (s, c) = pair().await;
        socket2::SockRef::from(&c).set_linger(Some(Duration::ZERO)).unwrap();
        let mut c = c;
        c.write_all(b"last words").unwrap();
        let got = s.recv_pooled().await.unwrap().unwrap();
        assert_eq!(&got[..], b"last words");
        drop(c);
        let err = loop {
            match s.recv_pooled().await {
                Err(e) => break e,
                Ok(None) => panic!("a reset is not an orderly end"),
                Ok(Some(_)) => {}
            }
        };
        assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset);
    });
}
}

both_drivers! {
fn dropping_a_socket_with_an_armed_receive_frees_its_fd_and_buffers() {
    let _serial = support::serial();
    let rt = support::builder().buffer_pool(8, 1024).build().unwrap();
    rt.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let base = support::open_fds();
        for round in 0..50 {
            let mut c = std::net::TcpStream::connect(addr).unwrap();
            let (s, _) = listener.accept().await.unwrap();
            c.write_all(&[round as u8; 3000]).unwrap();
            let lease = s.recv_pooled().await.unwrap().unwrap();
            assert!(!lease.is_empty());
            drop(lease);
            // More data lands in pool buffers after the socket is dropped;
            // they must come back, and the fd must close.
            c.write_all(&[1; 5000]).unwrap();
            drop(s);
            drop(c);
            corio::time::sleep(Duration::from_millis(1)).await;
        }
        // Every buffer came back: eight leases can be held at once.
        let mut c = std::net::TcpStream::connect(addr).unwrap();
        let (s, _) = listener.accept().await.unwrap();
        let mut held = Vec::new();
        for _ in 0..8 {
            c.write_all(&[7; 100]).unwrap();
            held.push(timeout(Duration::from_secs(5), s.recv_pooled()).await.unwrap().unwrap().unwrap());
        }
        drop((held, s, c));
        corio::time::sleep(Duration::from_millis(5)).await;
        let now = support::open_fds();
        assert!(now <= base, "fds leaked: {base} then {now}");
    });
}
}

both_drivers! {
fn incoming_accepts_and_keeps_connections_after_it_is_dropped() {
    let _serial = support::serial(); // fd counts are process-wide
    support::run(async {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let mut clients = Vec::new();
        {
            let mut incoming = listener.incoming();
            for _ in 0..20 {
                clients.push(std::net::TcpStream::connect(addr).unwrap());
                let s = incoming.next().await.unwrap();
                assert_eq!(s.peer_addr().unwrap(), clients.last().unwrap().local_addr().unwrap());
            }
        }
        // The multishot accept may be cancelled after the kernel accepted
        // more: those connections go to the next accept.
        let mut peers = HashSet::new();
        for _ in 0..5 {
            let c = std::net::TcpStream::connect(addr).unwrap();
            peers.insert(c.local_addr().unwrap());
            clients.push(c);
        }
        for _ in 0..5 {
            let (s, peer) = timeout(Duration::from_secs(5), listener.accept()).await.unwrap().unwrap();
            assert!(peers.remove(&peer), "unexpected peer {peer}");
            drop(s);
        }
        assert!(peers.is_empty());
    });
}
}

both_drivers! {
fn udp_pooled_receives_keep_datagram_boundaries() {
    let _serial = support::serial(); // fd counts are process-wide
    support::run(async {
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        a.connect(b.local_addr().unwrap()).await.unwrap();
        b.connect(a.local_addr().unwrap()).unwrap();
        for i in 0..100usize {
            b.send(&vec![i as u8; i + 1]).unwrap();
        }
        for i in 0..100usize {
            let d = a.recv_pooled().await.unwrap();
            assert_eq!(&d[..], &vec![i as u8; i + 1][..]);
        }
        let _ = a.as_raw_fd();
    });
}
}

both_drivers! {
fn two_tasks_waiting_on_one_socket_both_see_its_end() {
    // Two tasks wait on one socket's pooled receives when the peer closes:
    // the multishot receive ends with EOF, and each waiter must be woken —
    // one takes the end, the other arms a new receive and sees EOF too.
    // (A waiter left in the ended op's slot would hang here.)
    let _serial = support::serial();
    support::run(async {
        let (s, c) = pair().await;
        let s = std::rc::Rc::new(s);
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let s = s.clone();
                corio::spawn(async move {
                    let mut got = 0;
                    while let Some(buf) = s.recv_pooled().await.unwrap() {
                        got += buf.len();
                    }
                    got
                })
            })
            .collect();
        // Both are waiting on the armed receive before the peer acts.
        for _ in 0..10 {
            corio::yield_now().await;
        }
        let sender = thread::spawn(move || {
            let mut c = c;
            c.write_all(b"hello").unwrap();
            thread::sleep(Duration::from_millis(20));
            drop(c);
        });
        let mut total = 0;
        for r in readers {
            total += timeout(Duration::from_secs(5), r)
                .await
                .expect("every waiter sees the end")
                .unwrap();
        }
        sender.join().unwrap();
        assert_eq!(total, 5, "the bytes reach one reader once");
    });
}
}
