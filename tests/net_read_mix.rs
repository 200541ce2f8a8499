//! Any order of read methods on one socket, some of them dropped by
//! timeouts, delivers every byte and datagram exactly once and in order:
//! `read`, `read_exact` and `recv_pooled` on TCP; `recv`, `recv_from` and
//! `recv_pooled` on UDP. Seeded random schedules on both drivers; a failing
//! seed is printed so it can be replayed (`CORIO_MIX_SEED=<seed>`), and
//! `CORIO_MIX_SEEDS=<n>` runs more of them.

mod support;

use std::future::Future;
use std::io::Write;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use corio::net::{TcpListener, TcpStream, UdpSocket};
use corio::time::timeout;

/// xorshift64*: small, seeded, good enough for schedules.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn pattern(i: usize) -> u8 {
    (i.wrapping_mul(31) % 251) as u8
}

/// The seeds to run: `CORIO_MIX_SEED` alone, or `CORIO_MIX_SEEDS` of them
/// (default `default`).
fn seeds(default: u64) -> Vec<u64> {
    if let Some(s) = std::env::var("CORIO_MIX_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        return vec![s];
    }
    let n = std::env::var("CORIO_MIX_SEEDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default);
    (1..=n).collect()
}

/// How a receive is awaited.
#[derive(Debug, Clone, Copy)]
enum How {
    Plain,
    /// Under a timeout of this many microseconds (0: polled once).
    Timeout(u64),
    /// Polled once, then dropped.
    Dropped,
}

fn how(rng: &mut Rng) -> How {
    match rng.below(6) {
        0 | 1 => How::Plain,
        2 => How::Dropped,
        3 => How::Timeout(0),
        _ => How::Timeout(1 + rng.below(2_000)),
    }
}

/// Polls `fut` once; `Some` when it finished.
fn poll_once<F: Future>(fut: F) -> Option<F::Output> {
    let mut fut = pin!(fut);
    match fut.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => Some(v),
        Poll::Pending => None,
    }
}

/// Awaits `fut` as `how` says; `None` when it was dropped unfinished.
async fn run<F: Future>(how: How, fut: F) -> Option<F::Output> {
    match how {
        How::Plain => Some(fut.await),
        How::Dropped => poll_once(fut),
        How::Timeout(us) => timeout(Duration::from_micros(us), fut).await.ok(),
    }
}

/// Receives the whole pattern stream from `s` with a random mix of read
/// methods; returns what arrived.
async fn tcp_mix(s: &TcpStream, rng: &mut Rng, total: usize) -> Vec<u8> {
    let mut got = Vec::with_capacity(total);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        assert!(Instant::now() < deadline, "the mix hung");
        let how = how(rng);
        match rng.below(3) {
            0 => {
                let len = 1 + rng.below(700) as usize;
                if let Some((res, buf)) = run(how, s.read(vec![0u8; len])).await {
                    match res.expect("read") {
                        0 => return got,
                        n => got.extend_from_slice(&buf[..n]),
                    }
                }
            }
            1 => {
                // Not cancel-safe (a partial fill dies with the future), so
                // always awaited; only asks for what is left.
                let left = total - got.len();
                if left == 0 {
                    continue;
                }
                let len = (1 + rng.below(300) as usize).min(left);
                let (res, buf) = s.read_exact(vec![0u8; len]).await;
                res.expect("read_exact");
                got.extend_from_slice(&buf);
            }
            _ => {
                if let Some(res) = run(how, s.recv_pooled()).await {
                    match res.expect("recv_pooled") {
                        None => return got,
                        Some(lease) => got.extend_from_slice(&lease),
                    }
                }
            }
        }
    }
}

both_drivers! {
fn tcp_reads_in_any_order_under_timeouts_lose_no_byte() {
    for seed in seeds(24) {
        let total = 24_000;
        let got = support::run(async {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            let sender = std::thread::spawn(move || {
                let mut rng = Rng::new(seed ^ 0xA5A5);
                let mut c = std::net::TcpStream::connect(addr).unwrap();
                let data: Vec<u8> = (0..total).map(pattern).collect();
                let mut at = 0;
                while at < total {
                    let n = (1 + rng.below(900) as usize).min(total - at);
                    c.write_all(&data[at..at + n]).unwrap();
                    at += n;
                    if rng.below(4) == 0 {
                        std::thread::sleep(Duration::from_micros(rng.below(500)));
                    }
                }
            });
            let (s, _) = listener.accept().await.unwrap();
            let mut rng = Rng::new(seed);
            let got = tcp_mix(&s, &mut rng, total).await;
            sender.join().unwrap();
            got
        });
        assert_eq!(got.len(), total, "seed {seed}: byte count");
        if let Some(i) = (0..total).find(|&i| got[i] != pattern(i)) {
            panic!("seed {seed}: byte {i} out of order");
        }
    }
}
}

/// One datagram: its sequence number, then `len` pattern bytes.
fn datagram(seq: u32, len: usize) -> Vec<u8> {
    let mut d = seq.to_be_bytes().to_vec();
    d.extend((0..len).map(|i| pattern(i + seq as usize)));
    d
}

/// Checks a received datagram; returns its sequence number.
fn check_datagram(d: &[u8]) -> u32 {
    let seq = u32::from_be_bytes(d[..4].try_into().unwrap());
    for (i, &b) in d[4..].iter().enumerate() {
        assert_eq!(b, pattern(i + seq as usize), "datagram {seq} corrupted");
    }
    seq
}

both_drivers! {
fn udp_receives_in_any_order_under_timeouts_lose_no_datagram() {
    for seed in seeds(24) {
        let count = 300u32;
        support::run(async {
            let server = UdpSocket::bind("127.0.0.1:0").unwrap();
            let client = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            let client_addr = client.local_addr().unwrap();
            server.connect(client_addr).await.unwrap();
            let addr = server.local_addr().unwrap();
            // The sender keeps at most a window in flight, so the socket's
            // receive buffer never overflows (loopback UDP drops then).
            let received = Arc::new(AtomicUsize::new(0));
            let seen = received.clone();
            let sender = std::thread::spawn(move || {
                let mut rng = Rng::new(seed ^ 0x5A5A);
                for seq in 0..count {
                    let start = Instant::now();
                    while seq as usize >= seen.load(Ordering::SeqCst) + 16 {
                        assert!(start.elapsed() < Duration::from_secs(20), "receiver stalled");
                        std::thread::sleep(Duration::from_micros(50));
                    }
                    let len = rng.below(600) as usize;
                    client.send_to(&datagram(seq, len), addr).unwrap();
                }
            });
            let mut rng = Rng::new(seed);
            let mut next = 0u32;
            let deadline = Instant::now() + Duration::from_secs(30);
            while next < count {
                assert!(Instant::now() < deadline, "seed {seed}: the mix hung at {next}");
                let how = how(&mut rng);
                let got: Option<(Vec<u8>, Option<SocketAddr>)> = match rng.below(3) {
                    0 => run(how, server.recv(vec![0u8; 700])).await.map(|(res, buf)| {
                        let n = res.expect("recv");
                        (buf[..n].to_vec(), None)
                    }),
                    1 => run(how, server.recv_from(vec![0u8; 700])).await.map(|(res, buf)| {
                        let (n, from) = res.expect("recv_from");
                        (buf[..n].to_vec(), Some(from))
                    }),
                    _ => run(how, server.recv_pooled())
                        .await
                        .map(|res| (res.expect("recv_pooled").to_vec(), None)),
                };
                if let Some((d, from)) = got {
                    let seq = check_datagram(&d);
                    assert_eq!(seq, next, "seed {seed}: datagram out of order");
                    if let Some(from) = from {
                        assert_eq!(from, client_addr, "seed {seed}: wrong source");
                    }
                    next += 1;
                    received.store(next as usize, Ordering::SeqCst);
                }
            }
            sender.join().unwrap();
        });
    }
}
}

both_drivers! {
fn udp_recv_from_after_a_pooled_receive_gets_the_next_datagrams() {
    support::run(async {
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = server.local_addr().unwrap();
        let client = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        client.send_to(b"one", addr).unwrap();
        let first = server.recv_pooled().await.unwrap();
        assert_eq!(&first[..], b"one");
        drop(first);
        client.send_to(b"two", addr).unwrap();
        client.send_to(b"three", addr).unwrap();
        for want in [&b"two"[..], b"three"] {
            let (res, buf) = timeout(Duration::from_secs(2), server.recv_from(vec![0u8; 16]))
                .await
                .expect("recv_from after recv_pooled hung");
            let (n, from) = res.unwrap();
            assert_eq!(&buf[..n], want);
            assert_eq!(from, client.local_addr().unwrap());
        }
        // And the other way round: pooled again after plain ones.
        client.send_to(b"four", addr).unwrap();
        let four = timeout(Duration::from_secs(2), server.recv_pooled())
            .await
            .expect("recv_pooled after recv_from hung")
            .unwrap();
        assert_eq!(&four[..], b"four");
    });
}
}

both_drivers! {
fn recv_pooled_charges_the_budget_so_a_busy_reader_yields() {
    // 16-byte pool buffers: 8,000 waiting bytes take 500 receives.
    let rt = support::builder().buffer_pool(1024, 16).build().unwrap();
    rt.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut c = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (s, _) = listener.accept().await.unwrap();
        // Many small messages wait; a reader that takes them back to back
        // must still let another task run in between.
        for i in 0..2_000u32 {
            c.write_all(&i.to_be_bytes()).unwrap();
        }
        let ticks = std::rc::Rc::new(std::cell::Cell::new(0u32));
        let t = ticks.clone();
        let ticker = corio::spawn(async move {
            loop {
                t.set(t.get() + 1);
                corio::yield_now().await;
            }
        });
        corio::time::sleep(Duration::from_millis(20)).await;
        let before = ticks.get();
        let mut total = 0;
        while total < 8_000 {
            total += s.recv_pooled().await.unwrap().unwrap().len();
        }
        ticker.abort();
        assert_eq!(total, 8_000);
        // Each message arrived long before: every receive completes at
        // once, and only the budget makes the reader yield.
        assert!(
            ticks.get() > before,
            "the ticker never ran while the reader drained 8,000 bytes"
        );
    });
}
}
