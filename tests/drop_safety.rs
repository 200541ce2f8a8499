//! Drop safety: ops dropped mid-flight, guarded buffers, fd reuse, shutdown with ops in flight, `!Send` tasks.

mod support;

use std::cell::Cell;
use std::future::{Future, poll_fn};
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::pin::{Pin, pin};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, ThreadId};
use std::time::{Duration, Instant};

use corio::net::{TcpListener, TcpStream};
use corio::time::{sleep, timeout};
use corio::{IoBuf, IoBufMut};

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

// The tests count the process's open fds and make thousands of sockets, so
// they run one at a time.
use support::{open_fds, serial};

/// Inside a runtime: waits up to 5 s for the fd count to fall to `want` or
/// below (closes of dropped sockets go through the ring; an fd the harness
/// or an earlier test held may close meanwhile, which is no leak); returns
/// the last count.
async fn settle_fds(want: usize) -> usize {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let n = open_fds();
        if n <= want || Instant::now() > deadline {
            return n;
        }
        sleep(Duration::from_millis(2)).await;
    }
}

/// Runs `body` on a fresh runtime of the test variant's driver, one test at
/// a time and under a watchdog; fails if the process holds more fds once the
/// runtime is gone than before it was built.
fn run_counting_fds(name: &'static str, secs: u64, body: impl Future<Output = ()>) {
    let _serial = serial();
    let _dog = watchdog(name, secs);
    let base = open_fds();
    support::runtime().block_on(body);
    let after = open_fds();
    assert!(
        after <= base,
        "fds leaked after the runtime was dropped: {base} then {after}"
    );
}

/// Inside a runtime: fails unless the fd count settles back to `during`.
async fn assert_fds_settle(during: usize) {
    let now = settle_fds(during).await;
    assert!(
        now <= during,
        "fds leaked while running: {during} then {now}"
    );
}

/// Aborts the process when a test hangs: a hung test would block `cargo test`.
struct Watchdog {
    state: Arc<(Mutex<bool>, Condvar)>,
    thread: Option<thread::JoinHandle<()>>,
}

fn watchdog(name: &'static str, secs: u64) -> Watchdog {
    let state = Arc::new((Mutex::new(false), Condvar::new()));
    let s = state.clone();
    let thread = thread::spawn(move || {
        let (lock, cv) = &*s;
        let done = lock.lock().unwrap_or_else(|e| e.into_inner());
        let (done, _) = cv
            .wait_timeout_while(done, Duration::from_secs(secs), |d| !*d)
            .unwrap_or_else(|e| e.into_inner());
        if !*done {
            eprintln!("{name}: still running after {secs} s, aborting the test process");
            std::process::abort();
        }
    });
    Watchdog {
        state,
        thread: Some(thread),
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        *self.state.0.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.state.1.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// xorshift64: reproducible "random" timings without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Byte `i` of the streams the tests send: not periodic over short spans.
fn pattern(i: usize) -> u8 {
    (i % 251) as u8 ^ (i / 251) as u8
}

fn check_pattern(got: &[u8], from: usize) {
    for (k, &b) in got.iter().enumerate() {
        assert_eq!(
            b,
            pattern(from + k),
            "wrong byte at stream offset {}",
            from + k
        );
    }
}

/// Polls `fut` exactly once.
async fn poll_once<F: Future + ?Sized>(mut fut: Pin<&mut F>) -> Poll<F::Output> {
    poll_fn(|cx| Poll::Ready(fut.as_mut().poll(cx))).await
}

/// Makes `n` futures with `make` and drops each while it is pending, four
/// ways in turn: right after its op was queued (before the kernel saw it),
/// after one tick (the op is in the kernel), through a zero timeout, and
/// through a short timeout. Returns how many finished before being dropped.
async fn drop_pending_many<F: Future>(n: usize, mut make: impl FnMut() -> F) -> usize {
    let mut finished = 0;
    for i in 0..n {
        let done = match i % 4 {
            0 => poll_once(pin!(make())).await.is_ready(),
            1 => {
                let mut fut = pin!(make());
                let ready = poll_once(fut.as_mut()).await.is_ready();
                if !ready {
                    corio::yield_now().await;
                }
                ready
            }
            2 => timeout(Duration::ZERO, make()).await.is_ok(),
            _ => {
                let d = Duration::from_micros(1 + (i % 50) as u64);
                timeout(d, make()).await.is_ok()
            }
        };
        finished += usize::from(done);
    }
    finished
}

// ---------------------------------------------------------------------------
// 1. Dropping pending futures 10,000 times
// ---------------------------------------------------------------------------

both_drivers! {
fn dropping_pending_accepts_leaks_nothing() {
    run_counting_fds("dropping_pending_accepts_leaks_nothing", 60, async {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let during = open_fds();
        let finished = drop_pending_many(10_000, || listener.accept()).await;
        assert_eq!(finished, 0, "an accept finished with no client");
        assert_fds_settle(during).await;
        // The listener still serves the next client.
        let client = std::net::TcpStream::connect(addr).unwrap();
        let (s, peer) = timeout(Duration::from_secs(5), listener.accept())
            .await
            .expect("accept hung after 10,000 dropped accepts")
            .unwrap();
        assert_eq!(peer, client.local_addr().unwrap());
        drop(s);
    });
}
}

both_drivers! {
fn dropping_pending_reads_leaks_and_loses_nothing() {
    run_counting_fds("dropping_pending_reads_leaks_and_loses_nothing", 60, async {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (s, _) = listener.accept().await.unwrap();
        let during = open_fds();
        let finished = drop_pending_many(10_000, || s.read(vec![0u8; 64])).await;
        assert_eq!(finished, 0, "a read finished with nothing sent");
        assert_fds_settle(during).await;
        // The next read gets exactly what is sent now.
        let msg = b"after ten thousand dropped reads";
        client.write_all(msg).unwrap();
        let (res, buf) = timeout(Duration::from_secs(5), s.read_exact(vec![0u8; msg.len()]))
            .await
            .expect("read hung after 10,000 dropped reads");
        res.unwrap();
        assert_eq!(&buf, msg);
    });
}
}

both_drivers! {
fn dropping_pending_connects_leaks_nothing() {
    run_counting_fds("dropping_pending_connects_leaks_nothing", 60, async {
        // Never accepts: the first connects complete in the kernel, then the
        // accept queue is full and the rest stay pending (SYNs are dropped).
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let during = open_fds();
        let finished = drop_pending_many(10_000, || TcpStream::connect(addr)).await;
        eprintln!("connect: {finished} of 10000 finished before they could be dropped");
        assert_fds_settle(during).await;
    });
}
}

both_drivers! {
fn dropping_pending_sleeps_leaks_nothing() {
    run_counting_fds("dropping_pending_sleeps_leaks_nothing", 60, async {
        let during = open_fds();
        let finished = drop_pending_many(10_000, || sleep(Duration::from_secs(3600))).await;
        assert_eq!(finished, 0, "an hour-long sleep finished");
        // Timers still work.
        let start = Instant::now();
        sleep(Duration::from_millis(10)).await;
        assert!(start.elapsed() >= Duration::from_millis(10));
        assert_eq!(open_fds(), during);
    });
}
}

// ---------------------------------------------------------------------------
// 2. Connections accepted for abandoned accepts
// ---------------------------------------------------------------------------

/// Serves one client: reads its byte and answers with the byte inverted.
async fn serve_one(s: TcpStream) {
    let (res, buf) = s.read_exact(vec![0u8; 1]).await;
    res.unwrap();
    let (res, _) = s.write_all(vec![!buf[0]]).await;
    res.unwrap();
}

both_drivers! {
fn accepts_dropped_by_timeouts_lose_no_client() {
    const THREADS: usize = 4;
    const PER_THREAD: usize = 250;
    const BATCH: usize = 25;
    const CLIENTS: usize = THREADS * PER_THREAD;
    let _serial = serial();
    let _dog = watchdog("accepts_dropped_by_timeouts_lose_no_client", 90);
    let base = open_fds();
    let rt = support::runtime();
    let start = Instant::now();
    rt.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let during = open_fds();
        // Each thread opens its clients in batches, each client sends one
        // byte, then waits for its answer.
        let clients: Vec<_> = (0..THREADS)
            .map(|t| {
                thread::spawn(move || {
                    for batch in 0..PER_THREAD / BATCH {
                        let mut conns = Vec::with_capacity(BATCH);
                        for k in 0..BATCH {
                            let id = t * PER_THREAD + batch * BATCH + k;
                            let mut s = std::net::TcpStream::connect(addr).unwrap();
                            s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
                            s.write_all(&[id as u8]).unwrap();
                            conns.push((id, s));
                        }
                        for (id, mut s) in conns {
                            let mut b = [0u8; 1];
                            s.read_exact(&mut b)
                                .unwrap_or_else(|e| panic!("client {id} was not served: {e}"));
                            assert_eq!(b[0], !(id as u8), "client {id} got a wrong answer");
                        }
                    }
                })
            })
            .collect();

        let mut handlers = Vec::with_capacity(CLIENTS);
        // `kept`: returned on the first poll, so kept from a dropped accept.
        let (mut attempts, mut dropped, mut kept) = (0usize, 0usize, 0usize);
        let deadline = Instant::now() + Duration::from_secs(40);
        while handlers.len() < CLIENTS {
            assert!(
                Instant::now() < deadline,
                "only {} of {CLIENTS} clients accepted in 40 s",
                handlers.len()
            );
            let res = match attempts % 3 {
                0 => timeout(Duration::from_millis(1), listener.accept())
                    .await
                    .ok(),
                1 => {
                    // Dropped after one tick: the accept was in the kernel.
                    let mut fut = pin!(listener.accept());
                    match poll_once(fut.as_mut()).await {
                        Poll::Ready(r) => {
                            kept += 1;
                            Some(r)
                        }
                        Poll::Pending => {
                            corio::yield_now().await;
                            None
                        }
                    }
                }
                _ => {
                    // Dropped before the kernel saw it.
                    let r = match poll_once(pin!(listener.accept())).await {
                        Poll::Ready(r) => {
                            kept += 1;
                            Some(r)
                        }
                        Poll::Pending => None,
                    };
                    if r.is_none() {
                        corio::yield_now().await;
                    }
                    r
                }
            };
            attempts += 1;
            match res {
                Some(Ok((s, _))) => handlers.push(corio::spawn(serve_one(s))),
                Some(Err(e)) => panic!("accept failed: {e}"),
                None => dropped += 1,
            }
        }
        for h in handlers {
            h.await.unwrap();
        }
        for c in clients {
            if let Err(p) = c.join() {
                std::panic::resume_unwind(p);
            }
        }
        eprintln!(
            "accept: {CLIENTS} clients served, {attempts} accepts, {dropped} dropped, \
             {kept} served from connections kept for dropped accepts, {:?}",
            start.elapsed()
        );
        assert_fds_settle(during).await;
    });
    drop(rt);
    let after = open_fds();
    assert!(after <= base, "fds leaked after the runtime was dropped: {base} then {after}");
}
}

/// Polls `n` accepts once each, lets them reach the kernel if `tick`, then
/// drops them all (a connection one returned at once is dropped too).
/// Returns how many returned at once.
async fn abandon_accepts(listener: &TcpListener, n: usize, tick: bool) -> usize {
    let mut futs: Vec<_> = (0..n).map(|_| Box::pin(listener.accept())).collect();
    let mut ready = 0;
    for f in &mut futs {
        if poll_once(f.as_mut()).await.is_ready() {
            ready += 1;
        }
    }
    if tick {
        corio::yield_now().await;
    }
    drop(futs);
    sleep(Duration::from_millis(20)).await;
    ready
}

#[test]
fn kept_connections_go_to_next_accepts_or_close_with_listener() {
    let _serial = serial();
    let _dog = watchdog(
        "kept_connections_go_to_next_accepts_or_close_with_listener",
        60,
    );
    let base = open_fds();
    // Kept connections are a completion-driver behaviour: a readiness
    // driver never accepts for a future that is gone.
    let Some(rt) = support::uring_runtime() else {
        return;
    };
    rt.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let during = open_fds();

        // Ten clients taken by accepts that are then dropped: the next ten
        // accepts return exactly those clients.
        let clients: Vec<_> = (0..10)
            .map(|_| std::net::TcpStream::connect(addr).unwrap())
            .collect();
        sleep(Duration::from_millis(10)).await;
        assert_eq!(abandon_accepts(&listener, 10, true).await, 0);
        let mut served = Vec::new();
        for _ in 0..10 {
            let (s, peer) = timeout(Duration::from_secs(5), listener.accept())
                .await
                .expect("a connection kept from a dropped accept was lost")
                .unwrap();
            served.push((s, peer));
        }
        let mut got: Vec<SocketAddr> = served.iter().map(|(_, p)| *p).collect();
        let mut want: Vec<SocketAddr> = clients.iter().map(|c| c.local_addr().unwrap()).collect();
        got.sort();
        want.sort();
        assert_eq!(got, want);

        // Ten more, then the listener goes away: what it kept is closed.
        let clients2: Vec<_> = (0..10)
            .map(|_| std::net::TcpStream::connect(addr).unwrap())
            .collect();
        sleep(Duration::from_millis(10)).await;
        abandon_accepts(&listener, 5, false).await;
        abandon_accepts(&listener, 5, true).await;
        drop(listener);
        let want_fds = during - 1 + clients.len() + served.len() + clients2.len();
        assert_eq!(
            settle_fds(want_fds).await,
            want_fds,
            "kept connections leaked"
        );
        for mut c in clients2 {
            c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            match c.read(&mut [0u8; 1]) {
                Ok(0) => {}
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {}
                other => panic!("client of a dropped listener: {other:?}"),
            }
        }
    });
    drop(rt);
    let after = open_fds();
    assert!(
        after <= base,
        "fds leaked after the runtime was dropped: {base} then {after}"
    );
}

/// An accept dropped before the kernel saw it takes a connection; an accept
/// already waiting in the kernel must still get it.
#[test]
fn kept_connection_reaches_an_accept_already_waiting() {
    let _serial = serial();
    let _dog = watchdog("kept_connection_reaches_an_accept_already_waiting", 60);
    // Kept connections are a completion-driver behaviour: a readiness
    // driver never accepts for a future that is gone.
    let Some(rt) = support::uring_runtime() else {
        return;
    };
    rt.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        for round in 0..20 {
            let client = std::net::TcpStream::connect(addr).unwrap();
            sleep(Duration::from_millis(2)).await;
            // Queued in one tick: accept (dropped at once), its cancel, and
            // the accept we wait on. The first takes the connection.
            assert!(poll_once(pin!(listener.accept())).await.is_pending());
            let (_s, peer) = timeout(Duration::from_secs(2), listener.accept())
                .await
                .unwrap_or_else(|_| panic!("round {round}: the kept connection never arrived"))
                .unwrap();
            assert_eq!(peer, client.local_addr().unwrap());
        }
    });
}

// ---------------------------------------------------------------------------
// 3. The kernel never writes into a buffer whose owner is gone
// ---------------------------------------------------------------------------

const PAGE: usize = 4096;
/// Guard pages are never unmapped: bound how many the tests make.
const MAX_GUARD_PAGES: usize = 5_000;
static GUARD_PAGES: AtomicUsize = AtomicUsize::new(0);
/// What a canary page holds once its buffer is dropped.
const CANARY: u8 = 0xA5;
/// Addresses of dropped canary pages, checked after the runtime is gone.
static CANARY_PAGES: Mutex<Vec<usize>> = Mutex::new(Vec::new());

/// What happens to a [`GuardBuf`]'s page when the buffer is dropped.
#[derive(Debug, Clone, Copy)]
enum Guard {
    /// `PROT_NONE`: a kernel write fails with `EFAULT` (seen by the next
    /// read through the result kept from a dropped read); a user-space
    /// access faults.
    NoAccess,
    /// Filled with [`CANARY`] and left writable: a kernel write succeeds,
    /// so the bytes are lost to the stream and the canary is overwritten.
    Canary,
}

/// A one-page buffer in its own mapping, never unmapped (leaked on purpose)
/// so its address is never reused: a kernel write after the drop hits this
/// page, not some other allocation.
#[derive(Debug)]
struct GuardBuf {
    ptr: *mut u8,
    init: usize,
    guard: Guard,
}

impl GuardBuf {
    fn new(guard: Guard) -> GuardBuf {
        let n = GUARD_PAGES.fetch_add(1, Ordering::Relaxed);
        assert!(
            n < MAX_GUARD_PAGES,
            "test bug: more than {MAX_GUARD_PAGES} guard pages"
        );
        // SAFETY: a fresh private anonymous mapping at an address the kernel
        // picks; no existing memory is affected. Checked for MAP_FAILED.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                PAGE,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert_ne!(p, libc::MAP_FAILED, "mmap: {}", io::Error::last_os_error());
        GuardBuf {
            ptr: p.cast(),
            init: 0,
            guard,
        }
    }

    fn filled(&self) -> &[u8] {
        // SAFETY: the page is mapped read-write while `self` lives and its
        // first `init` bytes are initialised (anonymous pages start zeroed).
        unsafe { std::slice::from_raw_parts(self.ptr, self.init) }
    }
}

impl Drop for GuardBuf {
    fn drop(&mut self) {
        match self.guard {
            Guard::NoAccess => {
                // SAFETY: the page is our own mapping and nothing may use it
                // after this; it stays mapped.
                let rc = unsafe { libc::mprotect(self.ptr.cast(), PAGE, libc::PROT_NONE) };
                assert_eq!(rc, 0, "mprotect: {}", io::Error::last_os_error());
            }
            Guard::Canary => {
                // SAFETY: the page is our own read-write mapping of PAGE bytes.
                unsafe { std::ptr::write_bytes(self.ptr, CANARY, PAGE) };
                let mut pages = CANARY_PAGES.lock().unwrap_or_else(|e| e.into_inner());
                pages.push(self.ptr as usize);
            }
        }
    }
}

/// Checks that no dropped canary page was written to; returns how many were
/// checked.
fn check_canaries() -> usize {
    let pages = CANARY_PAGES.lock().unwrap_or_else(|e| e.into_inner());
    for &p in pages.iter() {
        // SAFETY: canary pages stay mapped read-write forever.
        let page = unsafe { std::slice::from_raw_parts(p as *const u8, PAGE) };
        if let Some(k) = page.iter().position(|&b| b != CANARY) {
            panic!("a dropped buffer's page at {p:#x} was written at offset {k} after the drop");
        }
    }
    pages.len()
}

// SAFETY: the pointer is to a page-sized mapping that does not move when the
// value moves and stays readable and writable until the value is dropped;
// `init <= PAGE` and its first `init` bytes are initialised.
unsafe impl IoBuf for GuardBuf {
    fn stable_ptr(&self) -> *const u8 {
        self.ptr
    }

    fn bytes_init(&self) -> usize {
        self.init
    }

    fn bytes_total(&self) -> usize {
        PAGE
    }
}

// SAFETY: same pointer as `stable_ptr`, writable for `PAGE` bytes while the
// value lives; `set_init` only grows `init`.
unsafe impl IoBufMut for GuardBuf {
    fn stable_mut_ptr(&mut self) -> *mut u8 {
        self.ptr
    }

    unsafe fn set_init(&mut self, pos: usize) {
        self.init = self.init.max(pos);
    }
}

/// Sends the pattern in small pieces at random moments until told to stop,
/// then shuts its side down; returns the count sent.
fn random_sender(mut s: std::net::TcpStream, stop: Arc<AtomicBool>, seed: u64) -> usize {
    let mut rng = Rng(seed);
    let mut sent = 0;
    let mut chunk = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let n = 1 + rng.below(300) as usize;
        chunk.clear();
        chunk.extend((sent..sent + n).map(pattern));
        s.write_all(&chunk).unwrap();
        sent += n;
        let pause = rng.below(400);
        if pause > 50 {
            thread::sleep(Duration::from_micros(pause));
        }
    }
    s.shutdown(std::net::Shutdown::Write).unwrap();
    sent
}

both_drivers! {
fn reads_dropped_mid_flight_never_see_the_kernel_write_late() {
    const READS: usize = 1_500;
    let _serial = serial();
    let _dog = watchdog(
        "reads_dropped_mid_flight_never_see_the_kernel_write_late",
        60,
    );
    let base = open_fds();
    let rt = support::runtime();
    rt.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (s, _) = listener.accept().await.unwrap();
        let during = open_fds();
        let stop = Arc::new(AtomicBool::new(false));
        let st = stop.clone();
        let sender = thread::spawn(move || random_sender(client, st, 0x5eed_1234_abcd_0001));

        let mut rng = Rng(0x0dd_ba11_cafe_f00d);
        let mut pos = 0;
        let (mut whole, mut dropped) = (0, 0);
        for i in 0..READS {
            let guard = if i % 2 == 0 {
                Guard::NoAccess
            } else {
                Guard::Canary
            };
            let got = match rng.below(4) {
                0 => {
                    let d = Duration::from_micros(rng.below(300));
                    timeout(d, s.read(GuardBuf::new(guard))).await.ok()
                }
                1 => {
                    let mut fut = pin!(s.read(GuardBuf::new(guard)));
                    match poll_once(fut.as_mut()).await {
                        Poll::Ready(r) => Some(r),
                        Poll::Pending => {
                            corio::yield_now().await;
                            None
                        }
                    }
                }
                2 => match poll_once(pin!(s.read(GuardBuf::new(guard)))).await {
                    Poll::Ready(r) => Some(r),
                    Poll::Pending => None,
                },
                _ => Some(s.read(GuardBuf::new(guard)).await),
            };
            let Some((res, buf)) = got else {
                dropped += 1;
                continue;
            };
            whole += 1;
            let n = res.unwrap_or_else(|e| {
                panic!("read {i} failed: {e} (EFAULT: the kernel wrote into a dropped buffer)")
            });
            assert!(n > 0, "read {i}: end of stream before the sender stopped");
            assert_eq!(buf.filled().len(), n);
            check_pattern(buf.filled(), pos);
            pos += n;
        }
        stop.store(true, Ordering::Relaxed);
        // Everything left, including bytes kept by dropped reads.
        loop {
            let (res, buf) = s.read(Vec::with_capacity(64 * 1024)).await;
            let n = res.unwrap_or_else(|e| panic!("final read failed: {e}"));
            if n == 0 {
                break;
            }
            check_pattern(&buf[..n], pos);
            pos += n;
        }
        let sent = sender.join().unwrap();
        assert_eq!(pos, sent, "bytes lost or duplicated");
        eprintln!("guarded reads: {whole} finished, {dropped} dropped, {sent} bytes");
        // The stream, the listener and the sender's socket are gone.
        drop(s);
        drop(listener);
        let now = settle_fds(during - 3).await;
        assert!(now <= during - 3, "fds leaked while running: {now}");
    });
    drop(rt);
    let after = open_fds();
    assert!(after <= base, "fds leaked after the runtime was dropped: {base} then {after}");
    // The kernel can write nothing more now: look for late writes.
    assert!(check_canaries() > 0);
}
}

// ---------------------------------------------------------------------------
// 4. A closed socket's number, reused, is never touched by its stale read
// ---------------------------------------------------------------------------

/// A corio client connected to `listener`, and the std side of it.
async fn corio_client(
    listener: &std::net::TcpListener,
    nonblocking: bool,
) -> (TcpStream, std::net::TcpStream) {
    let addr = listener.local_addr().unwrap();
    let c = if nonblocking {
        // A socket handed in with O_NONBLOCK: reads go through EAGAIN and a
        // readiness poll, then are submitted again.
        let c = std::net::TcpStream::connect(addr).unwrap();
        c.set_nonblocking(true).unwrap();
        TcpStream::from_std(c)
    } else {
        TcpStream::connect(addr).await.unwrap()
    };
    let (peer, _) = listener.accept().unwrap();
    (c, peer)
}

both_drivers! {
fn stale_read_never_touches_a_socket_reusing_its_fd() {
    const LEN: usize = 256 * 1024;
    run_counting_fds("stale_read_never_touches_a_socket_reusing_its_fd", 60, async {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut reused_rounds = 0;
        'rounds: for round in 0..12 {
            if reused_rounds == 6 {
                break;
            }
            let nonblocking = round % 2 == 1;
            let (old, mut old_peer) = corio_client(&listener, nonblocking).await;
            let fd = old.as_raw_fd();
            let old = Rc::new(old);
            let o = old.clone();
            let reader = corio::spawn(async move {
                let (res, buf) = o.read(vec![0u8; 4096]).await;
                (res.map_err(|e| e.to_string()), buf)
            });
            sleep(Duration::from_millis(5)).await;
            assert!(
                !reader.is_finished(),
                "round {round}: the read finished with no data"
            );
            if round % 3 == 0 {
                drop(old);
                reader.abort();
            } else {
                reader.abort();
                drop(old);
            }
            assert!(reader.await.unwrap_err().is_cancelled());

            // Open sockets until one gets the old number back.
            let mut spare = Vec::new();
            let deadline = Instant::now() + Duration::from_secs(5);
            let (new, new_peer) = loop {
                let (c, p) = corio_client(&listener, nonblocking).await;
                if c.as_raw_fd() == fd {
                    break (c, p);
                }
                if p.as_raw_fd() == fd {
                    // The accepted std side took the number: no stale-op
                    // check possible this round.
                    continue 'rounds;
                }
                spare.push((c, p));
                assert!(
                    spare.len() < 200 && Instant::now() < deadline,
                    "round {round}: fd {fd} was never reused"
                );
                sleep(Duration::from_millis(1)).await;
            };
            reused_rounds += 1;

            // Bytes to the old peer go nowhere; every byte to the new one
            // arrives at the new socket.
            let _ = old_peer.write_all(b"stale");
            let writer = thread::spawn(move || {
                let mut p = new_peer;
                let data: Vec<u8> = (0..LEN).map(pattern).collect();
                p.write_all(&data).unwrap();
                p.shutdown(std::net::Shutdown::Write).unwrap();
                p
            });
            let mut got = 0;
            loop {
                let (res, buf) = timeout(Duration::from_secs(5), new.read(vec![0u8; 16 * 1024]))
                    .await
                    .unwrap_or_else(|_| panic!("round {round}: read on the reused fd hung"));
                let n = res.unwrap();
                if n == 0 {
                    break;
                }
                check_pattern(&buf[..n], got);
                got += n;
            }
            assert_eq!(got, LEN, "round {round}: bytes lost on the reused fd {fd}");
            drop(writer.join().unwrap());
        }
        assert!(reused_rounds >= 4, "fd reused in only {reused_rounds} rounds");
    });
}
}

// ---------------------------------------------------------------------------
// 5. Tiny queues, many ops
// ---------------------------------------------------------------------------

both_drivers! {
fn tiny_ring_runs_ten_thousand_concurrent_ops() {
    const TASKS: usize = 10_000;
    const NOPS: usize = 3;
    const SLEEPERS: usize = 200;
    const PAIRS: usize = 20;
    const ECHO: usize = 64 * 1024;
    let _serial = serial();
    let _dog = watchdog("tiny_ring_runs_ten_thousand_concurrent_ops", 60);
    let base = open_fds();
    let rt = support::builder().entries(2).cq_entries(4).build().unwrap();
    let nops = Rc::new(Cell::new(0));
    let sleeps = Rc::new(Cell::new(0));
    let echoed = Rc::new(Cell::new(0));
    let start = Instant::now();
    rt.block_on(async {
        let mut handles = Vec::new();
        for _ in 0..TASKS {
            let nops = nops.clone();
            handles.push(corio::spawn(async move {
                for _ in 0..NOPS {
                    corio::nop().await.unwrap();
                    nops.set(nops.get() + 1);
                }
            }));
        }
        let mut rng = Rng(77);
        for _ in 0..SLEEPERS {
            let d = Duration::from_micros(rng.below(5_000));
            let sleeps = sleeps.clone();
            handles.push(corio::spawn(async move {
                sleep(d).await;
                sleeps.set(sleeps.get() + 1);
            }));
        }
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        for _ in 0..PAIRS {
            let echoed = echoed.clone();
            handles.push(corio::spawn(async move {
                let c = TcpStream::connect(addr).await.unwrap();
                let (r, w) = c.into_split();
                let writer = corio::spawn(async move {
                    let data: Vec<u8> = (0..ECHO).map(pattern).collect();
                    w.write_all(data).await.0.unwrap();
                    w
                });
                let mut got = 0;
                while got < ECHO {
                    let (res, buf) = r.read(vec![0u8; 8192]).await;
                    let n = res.unwrap();
                    assert!(n > 0, "echo ended early");
                    check_pattern(&buf[..n], got);
                    got += n;
                }
                drop(writer.await.unwrap());
                echoed.set(echoed.get() + got);
            }));
        }
        for _ in 0..PAIRS {
            let (s, _) = listener.accept().await.unwrap();
            handles.push(corio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                loop {
                    let (res, b) = s.read(buf).await;
                    let n = res.unwrap();
                    if n == 0 {
                        return;
                    }
                    let (res, b) = s.write_all(b.slice(..n)).await;
                    res.unwrap();
                    buf = b.into_inner();
                }
            }));
        }
        for h in handles {
            h.await.unwrap();
        }
    });
    eprintln!("tiny ring: all ops done in {:?}", start.elapsed());
    assert_eq!(nops.get(), TASKS * NOPS, "nop completions lost");
    assert_eq!(sleeps.get(), SLEEPERS, "sleeps lost");
    assert_eq!(echoed.get(), PAIRS * ECHO, "echo bytes lost");
    drop(rt);
    let after = open_fds();
    assert!(after <= base, "fds leaked after the runtime was dropped: {base} then {after}");
}
}

// ---------------------------------------------------------------------------
// 6. Dropping a runtime with a thousand ops in flight
// ---------------------------------------------------------------------------

/// Counts its drops.
struct DropCount(Rc<Cell<usize>>);

impl Drop for DropCount {
    fn drop(&mut self) {
        self.0.set(self.0.get() + 1);
    }
}

both_drivers! {
fn runtime_drop_with_a_thousand_ops_in_flight() {
    const LISTENERS: usize = 4;
    const ACCEPTS_PER_LISTENER: usize = 25;
    const STD_PAIRS: usize = 350;
    const CORIO_PAIRS: usize = 50;
    const SLEEPERS: usize = 450;
    let _serial = serial();
    let _dog = watchdog("runtime_drop_with_a_thousand_ops_in_flight", 60);
    let base = open_fds();
    let dropped = Rc::new(Cell::new(0));
    let started = Rc::new(Cell::new(0));
    let rt = support::runtime();
    let (spawned, std_clients) = rt.block_on(async {
        let mut spawned = 0;
        let mut std_clients = Vec::new();
        for _ in 0..LISTENERS {
            let l = Rc::new(TcpListener::bind("127.0.0.1:0").unwrap());
            for _ in 0..ACCEPTS_PER_LISTENER {
                let (l, d, st) = (l.clone(), DropCount(dropped.clone()), started.clone());
                spawned += 1;
                corio::spawn(async move {
                    let _d = d;
                    st.set(st.get() + 1);
                    // Nobody connects to these listeners.
                    let _ = l.accept().await;
                    unreachable!("accept finished with no client");
                });
            }
        }
        // A listener for the pairs, not shared with the accept tasks.
        let pl = TcpListener::bind("127.0.0.1:0").unwrap();
        let paddr = pl.local_addr().unwrap();
        for _ in 0..STD_PAIRS {
            let c = std::net::TcpStream::connect(paddr).unwrap();
            let (s, _) = pl.accept().await.unwrap();
            std_clients.push(c);
            let (d, st) = (DropCount(dropped.clone()), started.clone());
            spawned += 1;
            corio::spawn(async move {
                let _d = d;
                st.set(st.get() + 1);
                // Canary pages: the peers send while the runtime is dropped;
                // a late kernel write would show in the page.
                let _ = s.read(GuardBuf::new(Guard::Canary)).await;
                unreachable!("read finished with nothing sent");
            });
        }
        for _ in 0..CORIO_PAIRS {
            let c = TcpStream::connect(paddr).await.unwrap();
            let (s, _) = pl.accept().await.unwrap();
            for stream in [c, s] {
                let (d, st) = (DropCount(dropped.clone()), started.clone());
                spawned += 1;
                corio::spawn(async move {
                    let _d = d;
                    st.set(st.get() + 1);
                    let _ = stream.read(vec![0u8; 4096]).await;
                    unreachable!("read finished with nothing sent");
                });
            }
        }
        for _ in 0..SLEEPERS {
            let (d, st) = (DropCount(dropped.clone()), started.clone());
            spawned += 1;
            corio::spawn(async move {
                let _d = d;
                st.set(st.get() + 1);
                sleep(Duration::from_secs(3600)).await;
            });
        }
        // Let every task start its op.
        sleep(Duration::from_millis(50)).await;
        (spawned, std_clients)
    });
    assert_eq!(spawned, 1_000);
    assert_eq!(started.get(), spawned, "not every task reached its op");
    assert_eq!(dropped.get(), 0);
    // The std peers send while the runtime goes away.
    let stop = Arc::new(AtomicBool::new(false));
    let st = stop.clone();
    let sender = thread::spawn(move || {
        let mut clients = std_clients;
        let mut rounds = 0;
        while !st.load(Ordering::Relaxed) || rounds < 2 {
            for c in &mut clients {
                let _ = c.write(b"late data");
            }
            rounds += 1;
        }
        clients
    });
    thread::sleep(Duration::from_millis(1));
    let t = Instant::now();
    drop(rt);
    let took = t.elapsed();
    stop.store(true, Ordering::Relaxed);
    let std_clients = sender.join().unwrap();
    eprintln!("runtime drop with {spawned} ops in flight took {took:?}");
    assert!(took < Duration::from_secs(5), "runtime drop took {took:?}");
    assert_eq!(
        dropped.get(),
        spawned,
        "tasks not dropped by the runtime drop"
    );
    drop(std_clients);
    let after = open_fds();
    assert!(after <= base, "fds leaked after the runtime was dropped: {base} then {after}");
    assert!(check_canaries() >= STD_PAIRS);
}
}

// ---------------------------------------------------------------------------
// 7. `!Send` task state stays on its thread
// ---------------------------------------------------------------------------

type Log = Arc<Mutex<Vec<(&'static str, usize, ThreadId)>>>;

/// `!Send` state (kept in an `Rc`) that records where it is used and dropped.
struct Local {
    id: usize,
    log: Log,
}

impl Local {
    fn touch(&self) {
        let t = thread::current().id();
        self.log.lock().unwrap().push(("poll", self.id, t));
    }
}

impl Drop for Local {
    fn drop(&mut self) {
        let t = thread::current().id();
        self.log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(("drop", self.id, t));
    }
}

/// Wakes a thread parked in [`block_on_here`].
struct Unpark(thread::Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

/// Polls `fut` to completion on this (non-runtime) thread, for at most 10 s.
fn block_on_here<F: Future>(fut: F) -> F::Output {
    let waker = Waker::from(Arc::new(Unpark(thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut fut = pin!(fut);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return v;
        }
        assert!(Instant::now() < deadline, "a JoinHandle never resolved");
        thread::park_timeout(Duration::from_millis(10));
    }
}

both_drivers! {
fn not_send_state_is_polled_and_dropped_on_its_own_thread() {
    const TASKS: usize = 100;
    const ABORTED: usize = 80;
    let _serial = serial();
    let _dog = watchdog("not_send_state_is_polled_and_dropped_on_its_own_thread", 60);
    let log: Log = Arc::default();
    let wakers: Arc<Mutex<Vec<Option<Waker>>>> = Arc::new(Mutex::new(vec![None; TASKS]));
    let stop_waking = Arc::new(AtomicBool::new(false));
    let rt_thread = thread::current().id();
    let rt = support::runtime();

    // Wakes every task from another thread, over and over, until told to
    // stop (which is after the runtime is gone).
    let (w, stop) = (wakers.clone(), stop_waking.clone());
    let waker_thread = thread::spawn(move || {
        let mut rounds = 0usize;
        while !stop.load(Ordering::Relaxed) {
            let ws: Vec<Waker> = w.lock().unwrap().iter().flatten().cloned().collect();
            for waker in ws {
                waker.wake();
            }
            rounds += 1;
            thread::yield_now();
        }
        rounds
    });

    let aborter = rt.block_on(async {
        let mut handles = Vec::new();
        for id in 0..TASKS {
            let local = Rc::new(Local {
                id,
                log: log.clone(),
            });
            let w = wakers.clone();
            handles.push(corio::spawn(async move {
                let l = local.clone();
                poll_fn(move |cx| {
                    l.touch();
                    w.lock().unwrap()[id] = Some(cx.waker().clone());
                    Poll::<()>::Pending
                })
                .await;
                drop(local);
            }));
        }
        // Let the remote wakes run the tasks a while.
        sleep(Duration::from_millis(50)).await;
        let kept = handles.split_off(ABORTED);
        // Abort 80 from another thread and await their handles there.
        let aborter = thread::spawn(move || {
            for h in &handles {
                h.abort();
            }
            for h in handles {
                let res = block_on_here(h);
                assert!(res.unwrap_err().is_cancelled());
            }
        });
        // Until the aborted tasks are gone; the runtime keeps running them.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let drops = log.lock().unwrap().iter().filter(|e| e.0 == "drop").count();
            if drops == ABORTED && aborter.is_finished() {
                break;
            }
            assert!(Instant::now() < deadline, "aborted tasks were not dropped");
            sleep(Duration::from_millis(1)).await;
        }
        // The other 20 are dropped by the runtime's drop, still being woken.
        for h in kept {
            drop(h);
        }
        aborter
    });
    drop(rt);
    stop_waking.store(true, Ordering::Relaxed);
    let rounds = waker_thread.join().unwrap();
    if let Err(p) = aborter.join() {
        std::panic::resume_unwind(p);
    }

    let log = log.lock().unwrap();
    let polls = log.iter().filter(|e| e.0 == "poll").count();
    let drops: Vec<usize> = log.iter().filter(|e| e.0 == "drop").map(|e| e.1).collect();
    eprintln!(
        "!Send tasks: {polls} polls, {} drops, {rounds} wake rounds",
        drops.len()
    );
    assert!(polls > TASKS, "tasks were not woken from the other thread");
    let mut sorted = drops.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        (0..TASKS).collect::<Vec<_>>(),
        "each task dropped once"
    );
    for (what, id, t) in log.iter() {
        assert_eq!(*t, rt_thread, "task {id}: {what} on another thread");
    }
}
}
