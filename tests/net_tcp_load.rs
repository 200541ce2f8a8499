//! TCP load: 1,000 concurrent connections each echoing 1 MiB through one runtime, every byte checked.

mod support;

use std::cell::Cell;
use std::rc::Rc;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use corio::IoBuf;
use corio::net::{TcpListener, TcpStream};

const CONNS: usize = 1_000;
const PER_CONN: usize = 1 << 20;
/// Write size and read buffer size.
const CHUNK: usize = 64 * 1024;

/// Aborts the process if the test hangs: a hung test would block `cargo test`.
struct Watchdog(Arc<(Mutex<bool>, Condvar)>);

fn watchdog(secs: u64) -> Watchdog {
    let state = Arc::new((Mutex::new(false), Condvar::new()));
    let s = state.clone();
    std::thread::spawn(move || {
        let (lock, cv) = &*s;
        let done = lock.lock().unwrap_or_else(|e| e.into_inner());
        let (done, _) = cv
            .wait_timeout_while(done, Duration::from_secs(secs), |d| !*d)
            .unwrap_or_else(|e| e.into_inner());
        if !*done {
            eprintln!("net_tcp_load: still running after {secs} s, aborting");
            std::process::abort();
        }
    });
    Watchdog(state)
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        *self.0.0.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.0.1.notify_all();
    }
}

/// Pseudo-random bytes; connection `c` sends `pattern[c..c + PER_CONN]`, so
/// each connection's stream differs from every other's.
fn pattern() -> &'static [u8] {
    // A static, not a leaked box: LeakSanitizer (scripts/sanitizers.sh)
    // reports what a test leaks too.
    static PATTERN: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    PATTERN.get_or_init(|| {
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        (0..PER_CONN + CONNS)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect()
    })
}

/// Echoes until the peer shuts its side down; returns the count echoed.
async fn echo(s: TcpStream) -> usize {
    let mut buf = Vec::with_capacity(CHUNK);
    let mut total = 0;
    loop {
        let (res, b) = s.read(buf).await;
        let n = res.expect("server read");
        if n == 0 {
            return total;
        }
        let (res, b) = s.write_all(b.slice(..n)).await;
        res.expect("server write");
        buf = b.into_inner();
        buf.clear();
        total += n;
    }
}

/// Sends this connection's 1 MiB while reading the echo; checks every byte.
async fn client(addr: std::net::SocketAddr, c: usize, pat: &'static [u8]) -> usize {
    let stream = TcpStream::connect(addr).await.expect("connect");
    let (r, w) = stream.into_split();
    let mine = &pat[c..c + PER_CONN];
    let writer = corio::spawn(async move {
        for piece in mine.chunks(CHUNK) {
            let (res, _) = w.write_all(piece).await;
            res.expect("client write");
        }
        w.shutdown(std::net::Shutdown::Write)
            .await
            .expect("client shutdown");
    });
    let mut got = 0;
    let mut buf = Vec::with_capacity(CHUNK);
    loop {
        let (res, b) = r.read(buf).await;
        let n = res.expect("client read");
        if n == 0 {
            break;
        }
        assert!(got + n <= PER_CONN, "connection {c}: more bytes than sent");
        if b[..n] != mine[got..got + n] {
            let k = (0..n).find(|&k| b[k] != mine[got + k]).unwrap();
            panic!("connection {c}: wrong byte at offset {}", got + k);
        }
        got += n;
        buf = b;
        buf.clear();
    }
    writer.await.expect("writer task");
    got
}

both_drivers! {
fn thousand_connections_echo_one_mib_each() {
    let _dog = watchdog(180);
    let pat = pattern();
    let _serial = support::serial();
    let base = support::open_fds();
    let rt = support::runtime();
    let served = Rc::new(Cell::new(0));
    let start = Instant::now();
    rt.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let srv = served.clone();
        let server = corio::spawn(async move {
            let mut echoes = Vec::with_capacity(CONNS);
            for _ in 0..CONNS {
                let (s, _) = listener.accept().await.expect("accept");
                echoes.push(corio::spawn(echo(s)));
            }
            for e in echoes {
                let n = e.await.expect("echo task");
                assert_eq!(n, PER_CONN, "server echoed a short stream");
                srv.set(srv.get() + 1);
            }
        });
        let clients: Vec<_> = (0..CONNS)
            .map(|c| corio::spawn(client(addr, c, pat)))
            .collect();
        for (c, h) in clients.into_iter().enumerate() {
            let got = h.await.expect("client task");
            assert_eq!(got, PER_CONN, "connection {c}: echo cut short");
        }
        server.await.expect("server task");
    });
    let took = start.elapsed();
    assert_eq!(served.get(), CONNS);
    let mib = (CONNS * PER_CONN) >> 20;
    eprintln!(
        "{CONNS} connections echoed {mib} MiB in {took:?} ({:.0} MiB/s each way)",
        mib as f64 / took.as_secs_f64()
    );
    drop(rt);
    assert_eq!(support::open_fds(), base, "fds leaked");
}
}
