//! Randomized fault schedules, on both drivers: each seed runs a few
//! channels at once — TCP and Unix streams, UDP and Unix datagram pairs —
//! whose ends do random sequences of `connect`, `accept` (and `incoming`),
//! `write_all`,
//! `read`, `read_exact`, `recv_pooled`, `shutdown` and close, with reads
//! and accepts dropped by random timeouts or after one poll, connects given
//! up half-way, tasks aborted, and peers that reset (`SO_LINGER` 0) or
//! half-close.
//!
//! Invariants, checked for every seed: a reader gets a prefix of what its
//! writer sent, each byte once and in order — all of it unless the loss was
//! reported as an error (a reset, a read after the peer went) to the side
//! that lost it; every datagram arrives once and in order; every fd is
//! closed at the end (`/proc/self/fd`); no task is left; and no seed hangs
//! (a watchdog ends the process and prints the seed).
//!
//! 200 seeds per driver in `cargo test`; `CORIO_FAULT_SEEDS=<n>` runs more,
//! `CORIO_FAULT_SEED=<seed>` replays one.

mod support;

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::future::Future;
use std::io::{self, ErrorKind};
use std::pin::pin;
use std::rc::Rc;
use std::task::Poll;
use std::time::Duration;

use corio::net::unix::SocketAddr as UnixAddr;
use corio::net::{TcpListener, TcpStream, UdpSocket, UnixDatagram, UnixListener, UnixStream};
use corio::time::{sleep, timeout};

/// xorshift64*: small, seeded, good enough for schedules.
#[derive(Clone)]
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

    fn chance(&mut self, one_in: u64) -> bool {
        self.below(one_in) == 0
    }

    /// A fresh generator for a sub-task.
    fn fork(&mut self) -> Rng {
        Rng::new(self.next())
    }
}

fn pattern(ch: u64, i: usize) -> u8 {
    ((i as u64).wrapping_mul(31).wrapping_add(ch * 7) % 251) as u8
}

/// Counts the tasks alive: each spawned task holds one.
#[derive(Clone, Default)]
struct Live(Rc<Cell<usize>>);

struct LiveGuard(Rc<Cell<usize>>);

impl Live {
    fn guard(&self) -> LiveGuard {
        self.0.set(self.0.get() + 1);
        LiveGuard(self.0.clone())
    }
}

impl Drop for LiveGuard {
    fn drop(&mut self) {
        self.0.set(self.0.get() - 1);
    }
}

thread_local! {
    /// What the schedules did, for the summary line: bytes and datagrams
    /// delivered, receives/accepts/connects dropped, connects abandoned
    /// after the kernel made them, resets, aborts, reads that ended in an
    /// error, writes that failed.
    static TALLY: RefCell<[u64; 9]> = const { RefCell::new([0; 9]) };
}

const BYTES: usize = 0;
const DATAGRAMS: usize = 1;
const DROPPED: usize = 2;
const ABANDONED: usize = 3;
const RESETS: usize = 4;
const ABORTS: usize = 5;
const READ_ERRORS: usize = 6;
const WRITE_ERRORS: usize = 7;
const EOFS: usize = 8;

/// Where each side of each channel of the running seed is (channel, side →
/// what it awaits), for the watchdog's message when a seed hangs.
static PHASES: std::sync::Mutex<BTreeMap<(u64, &str), String>> =
    std::sync::Mutex::new(BTreeMap::new());

fn phase(ch: u64, side: &'static str, what: impl FnOnce() -> String) {
    PHASES.lock().unwrap().insert((ch, side), what());
}

fn phases() -> String {
    let phases = PHASES.lock().unwrap();
    phases
        .iter()
        .map(|((ch, side), what)| format!("\n  channel {ch} {side}: {what}"))
        .collect()
}

fn tally(what: usize, n: u64) {
    TALLY.with(|t| t.borrow_mut()[what] += n);
}

/// How one receive, accept or connect is awaited.
#[derive(Debug, Clone, Copy)]
enum How {
    Plain,
    /// Under a timeout of this many microseconds (0: polled about once).
    Timeout(u64),
    /// Polled once, then dropped.
    Dropped,
}

fn how(rng: &mut Rng) -> How {
    match rng.below(6) {
        0..=2 => How::Plain,
        3 => How::Dropped,
        4 => How::Timeout(0),
        _ => How::Timeout(1 + rng.below(1_500)),
    }
}

/// Polls `fut` once with the task's own context; `None` if it was pending
/// (it is dropped then).
async fn poll_once<F: Future>(fut: F) -> Option<F::Output> {
    let mut fut = pin!(fut);
    match std::future::poll_fn(|cx| Poll::Ready(fut.as_mut().poll(cx))).await {
        Poll::Ready(out) => Some(out),
        Poll::Pending => None,
    }
}

/// Awaits `fut` as `how` says; `None` when it was dropped unfinished.
async fn run<F: Future>(how: How, fut: F) -> Option<F::Output> {
    let out = match how {
        How::Plain => Some(fut.await),
        How::Dropped => poll_once(fut).await,
        How::Timeout(us) => timeout(Duration::from_micros(us), fut).await.ok(),
    };
    if out.is_none() {
        tally(DROPPED, 1);
    }
    out
}

/// A connected stream of either kind.
enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

macro_rules! each {
    ($s:expr, $x:ident => $e:expr) => {
        match $s {
            Stream::Tcp($x) => $e,
            Stream::Unix($x) => $e,
        }
    };
}

impl Stream {
    async fn read(&self, len: usize) -> io::Result<Vec<u8>> {
        let (res, mut buf) = each!(self, s => s.read(vec![0u8; len]).await);
        buf.truncate(res?);
        Ok(buf)
    }

    async fn read_exact(&self, len: usize) -> io::Result<Vec<u8>> {
        let (res, buf) = each!(self, s => s.read_exact(vec![0u8; len]).await);
        res.map(|()| buf)
    }

    async fn recv_pooled(&self) -> io::Result<Vec<u8>> {
        let lease = each!(self, s => s.recv_pooled().await)?;
        Ok(lease.map(|l| l.to_vec()).unwrap_or_default())
    }

    async fn write_all(&self, data: Vec<u8>) -> io::Result<()> {
        each!(self, s => s.write_all(data).await.0)
    }

    async fn shutdown_write(&self) -> io::Result<()> {
        each!(self, s => s.shutdown(std::net::Shutdown::Write).await)
    }

    /// Makes the close send a reset (TCP only).
    fn set_reset_on_close(&self) {
        if let Stream::Tcp(s) = self {
            socket2::SockRef::from(s)
                .set_linger(Some(Duration::ZERO))
                .unwrap();
        }
    }
}

enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener, UnixAddr),
}

impl Listener {
    /// `accept`, or with `multishot` the next of `incoming` (a multishot
    /// accept on io_uring).
    async fn accept(&self, multishot: bool) -> io::Result<Stream> {
        Ok(match (self, multishot) {
            (Listener::Tcp(l), false) => Stream::Tcp(l.accept().await?.0),
            (Listener::Tcp(l), true) => Stream::Tcp(l.incoming().next().await?),
            (Listener::Unix(l, _), false) => Stream::Unix(l.accept().await?.0),
            (Listener::Unix(l, _), true) => Stream::Unix(l.incoming().next().await?),
        })
    }

    async fn connect(&self) -> io::Result<Stream> {
        Ok(match self {
            Listener::Tcp(l) => Stream::Tcp(TcpStream::connect(l.local_addr().unwrap()).await?),
            Listener::Unix(_, a) => Stream::Unix(UnixStream::connect_addr(a.clone()).await?),
        })
    }
}

/// What a stream's writer does at the end.
#[derive(Debug, Clone, Copy, PartialEq)]
enum End {
    /// `shutdown(Write)`, then keeps the socket until the reader is done.
    HalfClose,
    /// Drops the socket.
    Close,
    /// Drops it with `SO_LINGER` 0 part-way (TCP; a plain close on Unix).
    Reset,
}

/// What the writer of a stream channel did.
#[derive(Default)]
struct Sent {
    /// Bytes handed to `write_all`, and those it confirmed.
    attempted: Cell<usize>,
    confirmed: Cell<usize>,
    /// It finished (all `write_all`s returned, the end done).
    finished: Cell<bool>,
    /// It reset the connection.
    reset: Cell<bool>,
    /// A write failed (the reader went away first).
    error: RefCell<Option<io::Error>>,
}

/// How a reader's stream ended.
enum Got {
    Eof,
    Error(io::Error),
    /// The reader stopped early (and closed its end).
    Stopped,
}

async fn write_side(
    s: Stream,
    ch: u64,
    total: usize,
    end: End,
    mut rng: Rng,
    sent: Rc<Sent>,
    reader_done: Rc<Cell<bool>>,
) {
    let reset_at = (end == End::Reset).then(|| rng.below(total as u64 + 1) as usize);
    let mut at = 0;
    while at < total {
        if reset_at.is_some_and(|r| at >= r) {
            break;
        }
        let n = (1 + rng.below(3_000) as usize).min(total - at);
        let chunk: Vec<u8> = (at..at + n).map(|i| pattern(ch, i)).collect();
        sent.attempted.set(at + n);
        phase(ch, "writer", || format!("write_all {n} at {at} of {total}"));
        if let Err(e) = s.write_all(chunk).await {
            assert!(
                matches!(e.kind(), ErrorKind::BrokenPipe | ErrorKind::ConnectionReset),
                "channel {ch}: write failed with {e:?}"
            );
            *sent.error.borrow_mut() = Some(e);
            sent.finished.set(true);
            return;
        }
        at += n;
        sent.confirmed.set(at);
        if rng.chance(5) {
            sleep(Duration::from_micros(rng.below(300))).await;
        }
    }
    phase(ch, "writer", || format!("end {end:?}"));
    match end {
        End::HalfClose => {
            match s.shutdown_write().await {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::NotConnected => {}
                Err(e) => panic!("channel {ch}: shutdown: {e:?}"),
            }
            sent.finished.set(true);
            // Keep the socket open until the reader is done (bounded).
            for _ in 0..2_000 {
                if reader_done.get() {
                    break;
                }
                sleep(Duration::from_millis(1)).await;
            }
        }
        End::Close => sent.finished.set(true),
        End::Reset => {
            s.set_reset_on_close();
            sent.reset.set(true);
            sent.finished.set(true);
        }
    }
    phase(ch, "writer", || "done".into());
    drop(s);
}

/// Reads with a random mix of methods until end of stream, an error, or
/// (sometimes) a decision to stop early.
async fn read_side(
    s: Stream,
    ch: u64,
    mut rng: Rng,
    got: Rc<RefCell<Vec<u8>>>,
    done: Rc<Cell<bool>>,
) -> Got {
    let stop_after = rng.chance(8).then(|| rng.below(20_000) as usize);
    let end = loop {
        if stop_after.is_some_and(|n| got.borrow().len() >= n) {
            break Got::Stopped;
        }
        let how = how(&mut rng);
        let kind = rng.below(3);
        let have = got.borrow().len();
        phase(ch, "reader", || {
            format!("read kind {kind} ({how:?}) after {have} bytes")
        });
        let res = match kind {
            0 => run(how, s.read(1 + rng.below(2_000) as usize)).await,
            // Not cancel-safe (a partial fill dies with the future): awaited.
            1 => Some(s.read_exact(1 + rng.below(500) as usize).await),
            _ => run(how, s.recv_pooled()).await,
        };
        match res {
            None => {}
            Some(Ok(bytes)) if bytes.is_empty() => break Got::Eof,
            Some(Ok(bytes)) => got.borrow_mut().extend_from_slice(&bytes),
            Some(Err(e)) => break Got::Error(e),
        }
    };
    phase(ch, "reader", || "done".into());
    done.set(true);
    drop(s);
    end
}

/// One stream channel: a listener, a client that connects (some attempts
/// given up), an acceptor (some accepts dropped), data one way.
async fn stream_channel(ch: u64, unix: bool, mut rng: Rng, live: Live, seed: u64) {
    let listener = if unix {
        let name = format!("corio-faults-{}-{seed}-{ch}", std::process::id());
        let addr = UnixAddr::from_abstract_name(name).unwrap();
        Listener::Unix(UnixListener::bind_addr(addr.clone()).unwrap(), addr)
    } else {
        Listener::Tcp(TcpListener::bind("127.0.0.1:0").unwrap())
    };
    let listener = Rc::new(listener);
    let total = 1 + rng.below(40_000) as usize;
    let end = match rng.below(3) {
        0 => End::HalfClose,
        1 => End::Close,
        _ => End::Reset,
    };
    let client_writes = rng.chance(2);

    // Connect, giving up some attempts half-way; the client then sends a
    // one-byte tag so the acceptor tells its connection from abandoned ones.
    let l = listener.clone();
    let mut crng = rng.fork();
    let g = live.guard();
    let client = corio::spawn(async move {
        let _g = g;
        loop {
            let how = how(&mut crng);
            phase(ch, "client", || format!("connect ({how:?})"));
            match run(how, l.connect()).await {
                None => continue,
                Some(Ok(s)) => {
                    phase(ch, "client", || "tag write".into());
                    s.write_all(vec![0xAB]).await.expect("tag");
                    phase(ch, "client", || "connected".into());
                    return s;
                }
                Some(Err(e)) => panic!("channel {ch}: connect: {e:?}"),
            }
        }
    });
    let mut arng = rng.fork();
    let server = loop {
        let multishot = arng.chance(3);
        let how = how(&mut arng);
        phase(ch, "acceptor", || {
            format!("accept (multishot {multishot}, {how:?})")
        });
        let Some(res) = run(how, listener.accept(multishot)).await else {
            continue;
        };
        let s = res.expect("accept");
        phase(ch, "acceptor", || "tag read".into());
        // An abandoned connect shows as end of stream (or a reset) here.
        match s.read_exact(1).await {
            Ok(tag) => {
                assert_eq!(tag, [0xAB], "channel {ch}: wrong tag");
                break s;
            }
            Err(e) => {
                assert!(
                    matches!(
                        e.kind(),
                        ErrorKind::UnexpectedEof | ErrorKind::ConnectionReset
                    ),
                    "channel {ch}: abandoned connection gave {e:?}"
                );
                tally(ABANDONED, 1);
            }
        }
    };
    phase(ch, "acceptor", || {
        "accepted; awaiting the client task".into()
    });
    let client = client.await.expect("client task");
    drop(listener);
    phase(ch, "acceptor", || {
        format!("done; client writes {client_writes}, {end:?}, {total} bytes")
    });
    let (w, r) = if client_writes {
        (client, server)
    } else {
        (server, client)
    };

    let sent = Rc::new(Sent::default());
    let got = Rc::new(RefCell::new(Vec::new()));
    let reader_done = Rc::new(Cell::new(false));
    let g = live.guard();
    let writer = corio::spawn({
        let (sent, done, wrng) = (sent.clone(), reader_done.clone(), rng.fork());
        async move {
            let _g = g;
            write_side(w, ch, total, end, wrng, sent, done).await
        }
    });
    let g = live.guard();
    let reader = corio::spawn({
        let (got, done, rrng) = (got.clone(), reader_done.clone(), rng.fork());
        async move {
            let _g = g;
            read_side(r, ch, rrng, got, done).await
        }
    });
    // Sometimes one side is aborted part-way.
    let abort = rng.below(10);
    if abort < 2 {
        sleep(Duration::from_micros(rng.below(3_000))).await;
        if abort == 0 {
            writer.abort()
        } else {
            reader.abort()
        }
        tally(ABORTS, 1);
    }
    let wrote = writer.await;
    let read = reader.await;

    // Every byte the reader got is the writer's, once and in order.
    let got = got.borrow();
    tally(BYTES, got.len() as u64);
    tally(RESETS, sent.reset.get() as u64);
    tally(WRITE_ERRORS, sent.error.borrow().is_some() as u64);
    match &read {
        Ok(Got::Eof) => tally(EOFS, 1),
        Ok(Got::Error(_)) => tally(READ_ERRORS, 1),
        _ => {}
    }
    assert!(
        got.len() <= sent.attempted.get(),
        "channel {ch}: {} bytes read, {} written",
        got.len(),
        sent.attempted.get()
    );
    if let Some(i) = (0..got.len()).find(|&i| got[i] != pattern(ch, i)) {
        panic!("channel {ch}: byte {i} corrupted, duplicated or out of order");
    }
    let writer_aborted = wrote.as_ref().err().is_some_and(|e| e.is_cancelled());
    match read {
        Ok(Got::Eof) => {
            // A clean end: everything the writer confirmed arrived, unless
            // the writer reset, was aborted mid-write, or a write failed.
            if !sent.reset.get() && !writer_aborted && sent.error.borrow().is_none() {
                assert_eq!(
                    got.len(),
                    sent.confirmed.get(),
                    "channel {ch}: bytes lost without an error"
                );
                assert_eq!(
                    got.len(),
                    total,
                    "channel {ch}: end of stream before the writer finished"
                );
            }
        }
        Ok(Got::Error(e)) => {
            assert!(
                matches!(
                    e.kind(),
                    ErrorKind::ConnectionReset | ErrorKind::UnexpectedEof
                ),
                "channel {ch}: read failed with {e:?}"
            );
            if e.kind() == ErrorKind::ConnectionReset {
                assert!(sent.reset.get() || unix, "channel {ch}: reset nobody made");
            }
        }
        Ok(Got::Stopped) | Err(_) => {}
    }
    if let Err(e) = wrote {
        assert!(e.is_cancelled(), "channel {ch}: writer panicked");
    }
}

/// One datagram channel: a connected pair (UDP on loopback, or a Unix
/// datagram pair); the sender keeps a window so nothing overflows.
async fn datagram_channel(ch: u64, unix: bool, mut rng: Rng, live: Live) {
    let count = 1 + rng.below(120) as u32;
    let (a, b): (Rc<Dgram>, Rc<Dgram>) = if unix {
        let (a, b) = UnixDatagram::pair().unwrap();
        (Rc::new(Dgram::Unix(a)), Rc::new(Dgram::Unix(b)))
    } else {
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").unwrap();
        a.connect(b.local_addr().unwrap()).await.unwrap();
        b.connect(a.local_addr().unwrap()).await.unwrap();
        (Rc::new(Dgram::Udp(a)), Rc::new(Dgram::Udp(b)))
    };
    let received = Rc::new(Cell::new(0u32));
    let g = live.guard();
    let sender = corio::spawn({
        let (received, mut srng) = (received.clone(), rng.fork());
        async move {
            let _g = g;
            for seq in 0..count {
                for _ in 0..20_000 {
                    if seq < received.get() + 16 {
                        break;
                    }
                    sleep(Duration::from_micros(50)).await;
                }
                phase(ch, "sender", || format!("send {seq} of {count}"));
                let mut d = seq.to_be_bytes().to_vec();
                d.extend((0..srng.below(900) as usize).map(|i| pattern(ch, i + seq as usize)));
                a.send(d).await.expect("send");
            }
            phase(ch, "sender", || "done".into());
        }
    });
    let mut next = 0u32;
    while next < count {
        let how = how(&mut rng);
        let kind = rng.below(2);
        phase(ch, "receiver", || {
            format!("recv {next} of {count}: kind {kind} ({how:?})")
        });
        let got = match kind {
            0 => run(how, b.recv(1_000)).await,
            _ => run(how, b.recv_pooled()).await,
        };
        if let Some(d) = got {
            let d = d.expect("receive");
            let seq = u32::from_be_bytes(d[..4].try_into().unwrap());
            assert_eq!(seq, next, "channel {ch}: datagram out of order or lost");
            for (i, &byte) in d[4..].iter().enumerate() {
                assert_eq!(
                    byte,
                    pattern(ch, i + seq as usize),
                    "channel {ch}: datagram {seq} corrupted"
                );
            }
            next += 1;
            received.set(next);
            tally(DATAGRAMS, 1);
        }
    }
    sender.await.expect("sender");
}

enum Dgram {
    Udp(UdpSocket),
    Unix(UnixDatagram),
}

impl Dgram {
    async fn send(&self, d: Vec<u8>) -> io::Result<usize> {
        match self {
            Dgram::Udp(s) => s.send(d).await.0,
            Dgram::Unix(s) => s.send(d).await.0,
        }
    }

    async fn recv(&self, len: usize) -> io::Result<Vec<u8>> {
        let (res, mut buf) = match self {
            Dgram::Udp(s) => s.recv(vec![0u8; len]).await,
            Dgram::Unix(s) => s.recv(vec![0u8; len]).await,
        };
        buf.truncate(res?);
        Ok(buf)
    }

    async fn recv_pooled(&self) -> io::Result<Vec<u8>> {
        Ok(match self {
            Dgram::Udp(s) => s.recv_pooled().await?.to_vec(),
            Dgram::Unix(s) => s.recv_pooled().await?.to_vec(),
        })
    }
}

/// One seed: 2 to 4 channels of random kinds at once.
fn one_seed(seed: u64) {
    let live = Live::default();
    let rt = support::builder().buffer_pool(64, 2048).build().unwrap();
    rt.block_on(async {
        let mut rng = Rng::new(seed);
        let mut handles = Vec::new();
        for ch in 0..2 + rng.below(3) {
            let crng = rng.fork();
            let live2 = live.clone();
            let g = live.guard();
            let kind = rng.below(4);
            handles.push(corio::spawn(async move {
                let _g = g;
                match kind {
                    0 => stream_channel(ch, false, crng, live2, seed).await,
                    1 => stream_channel(ch, true, crng, live2, seed).await,
                    2 => datagram_channel(ch, false, crng, live2).await,
                    _ => datagram_channel(ch, true, crng, live2).await,
                }
            }));
        }
        for h in handles {
            if let Err(e) = h.await {
                std::panic::resume_unwind(e.into_panic());
            }
        }
    });
    assert_eq!(live.0.get(), 0, "seed {seed}: tasks left");
    drop(rt);
}

/// How long one seed may take: `CORIO_FAULT_WATCHDOG_SECS`, else 30 s.
fn watchdog_limit() -> Duration {
    let secs = std::env::var("CORIO_FAULT_WATCHDOG_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30);
    Duration::from_secs(secs)
}

/// The seeds to run: `CORIO_FAULT_SEED` alone, or `CORIO_FAULT_SEEDS` of
/// them (default 200).
fn seeds() -> Vec<u64> {
    if let Some(s) = std::env::var("CORIO_FAULT_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        return vec![s];
    }
    let n = std::env::var("CORIO_FAULT_SEEDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    (1..=n).collect()
}

both_drivers! {
fn random_fault_schedules_keep_every_invariant() {
    let _serial = support::serial();
    let fds = support::open_fds();
    let driver = format!("{:?}", support::driver());
    let started = std::time::Instant::now();
    let seeds = seeds();
    for &seed in &seeds {
        PHASES.lock().unwrap().clear();
        let what = format!("fault schedule seed {seed} ({driver}); replay with CORIO_FAULT_SEED={seed}");
        let _dog = support::watchdog_with(watchdog_limit(), move || what.clone() + &phases());
        let res = std::panic::catch_unwind(|| one_seed(seed));
        if let Err(p) = res {
            eprintln!("fault schedule seed {seed} ({driver}) failed; replay with CORIO_FAULT_SEED={seed}");
            std::panic::resume_unwind(p);
        }
        let now = support::open_fds();
        assert_eq!(now, fds, "seed {seed} ({driver}): {} fds left open", now as i64 - fds as i64);
    }
    let t = TALLY.with(|t| *t.borrow());
    eprintln!(
        "{} fault schedules on {driver} in {:?}: {} bytes, {} datagrams, {} receives/accepts/connects \
         dropped, {} connections abandoned, {} resets, {} aborts, {} EOFs, {} read errors, {} write errors",
        seeds.len(),
        started.elapsed(),
        t[BYTES], t[DATAGRAMS], t[DROPPED], t[ABANDONED], t[RESETS], t[ABORTS], t[EOFS], t[READ_ERRORS], t[WRITE_ERRORS],
    );
}
}

#[test]
fn the_schedule_is_reproducible() {
    let mut a = Rng::new(42);
    let mut b = Rng::new(42);
    assert!((0..100).all(|_| a.next() == b.next()));
}
