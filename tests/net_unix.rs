//! Unix sockets: echo over paths and abstract names, pairs, split halves,
//! peer credentials, datagrams with addresses, pooled receives, reads under
//! timeouts that lose nothing, and bad input (long paths, addresses in use,
//! stale files, missing paths, files that are not sockets). Fd passing is
//! in `net_unix_fds.rs`.

mod support;

use std::io::{self, Write};
use std::os::linux::net::SocketAddrExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use corio::IoBuf;
use corio::net::unix::SocketAddr;
use corio::net::{UnixDatagram, UnixListener, UnixStream};
use corio::time::timeout;

/// Hang guard for one step that must succeed.
const GUARD: Duration = Duration::from_secs(5);

/// A name no other test or variant of this process uses (both variants run
/// on the poll driver where io_uring is missing).
fn unique(tag: &str) -> String {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{}-{tag}-{n}", std::process::id())
}

/// A directory of its own for one test variant, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("corio-unix-{}", unique(tag)));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// An abstract name no other test (or variant) uses.
fn abstract_name(tag: &str) -> String {
    format!("corio-test-{}", unique(tag))
}

/// Echoes everything on `s` back until the peer closes.
async fn echo(s: UnixStream) {
    let mut buf = vec![0u8; 4096];
    loop {
        let (res, b) = s.read(buf).await;
        let n = match res {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let (res, slice) = s.write_all(b.slice(..n)).await;
        buf = slice.into_inner();
        if res.is_err() {
            return;
        }
    }
}

/// Sends a few messages through an echo server and checks they come back.
async fn round_trips(c: &UnixStream) {
    for i in 0..20usize {
        let msg: Vec<u8> = (0..1 + i * 97).map(|j| (i + j) as u8).collect();
        c.write_all(msg.clone()).await.0.unwrap();
        let (res, buf) = timeout(GUARD, c.read_exact(vec![0u8; msg.len()]))
            .await
            .unwrap();
        res.unwrap();
        assert_eq!(buf, msg);
    }
}

both_drivers! {
fn echo_over_a_path() {
    let dir = TempDir::new("echo-path");
    let path = dir.join("echo.sock");
    support::run(async {
        let listener = UnixListener::bind(&path).unwrap();
        assert_eq!(listener.local_addr().unwrap().as_pathname(), Some(path.as_path()));
        let server = corio::spawn(async move {
            let (s, peer) = listener.accept().await.unwrap();
            assert!(peer.is_unnamed(), "an unbound client is unnamed: {peer:?}");
            assert!(s.local_addr().unwrap().as_pathname().is_some());
            echo(s).await;
        });
        let c = UnixStream::connect(&path).await.unwrap();
        assert_eq!(c.peer_addr().unwrap().as_pathname(), Some(path.as_path()));
        assert!(c.local_addr().unwrap().is_unnamed());
        round_trips(&c).await;
        drop(c);
        timeout(GUARD, server).await.unwrap().unwrap();
    });
}
}

both_drivers! {
fn echo_over_an_abstract_name_with_pooled_receives() {
    let name = abstract_name("echo-abstract");
    support::run(async {
        // std's abstract address converts.
        let std_addr = std::os::unix::net::SocketAddr::from_abstract_name(&name).unwrap();
        let listener = UnixListener::bind_addr(&std_addr).unwrap();
        let local = listener.local_addr().unwrap();
        assert_eq!(local.as_abstract_name(), Some(name.as_bytes()));
        let server = corio::spawn(async move {
            let mut incoming = listener.incoming();
            let s = incoming.next().await.unwrap();
            while let Some(data) = s.recv_pooled().await.unwrap() {
                s.write_all(data.to_vec()).await.0.unwrap();
            }
        });
        let c = UnixStream::connect_addr(&SocketAddr::from_abstract_name(&name).unwrap())
            .await
            .unwrap();
        assert_eq!(c.peer_addr().unwrap(), local);
        round_trips(&c).await;
        drop(c);
        timeout(GUARD, server).await.unwrap().unwrap();
    });
    // The name is free again once its socket is gone: no file was left.
    support::run(async {
        drop(UnixListener::bind_addr(SocketAddr::from_abstract_name(&name).unwrap()).unwrap());
    });
}
}

both_drivers! {
fn pair_and_split_halves() {
    support::run(async {
        let (a, b) = UnixStream::pair().unwrap();
        let (ar, aw) = a.into_split();
        let (br, bw) = b.into_split();
        // Each side writes 64 KiB while the other reads it, in two tasks
        // per side, so neither blocks the other on a full socket buffer.
        let total = 64 * 1024;
        let data: Vec<u8> = (0..total).map(|i| (i % 251) as u8).collect();
        let send = |w: corio::net::unix::OwnedWriteHalf, d: Vec<u8>| {
            corio::spawn(async move {
                for chunk in d.chunks(1000) {
                    w.write_all(chunk.to_vec()).await.0.unwrap();
                }
                w.shutdown(std::net::Shutdown::Write).await.unwrap();
                w
            })
        };
        let recv = |r: corio::net::unix::OwnedReadHalf| {
            corio::spawn(async move {
                let mut got = Vec::new();
                loop {
                    let (res, buf) = r.read(vec![0u8; 3000]).await;
                    match res.unwrap() {
                        0 => return (got, r),
                        n => got.extend_from_slice(&buf[..n]),
                    }
                }
            })
        };
        let (sa, sb) = (send(aw, data.clone()), send(bw, data.clone()));
        let (ra, rb) = (recv(ar), recv(br));
        let (aw, bw) = (sa.await.unwrap(), sb.await.unwrap());
        let ((got_a, ar), (got_b, br)) = (ra.await.unwrap(), rb.await.unwrap());
        assert!(got_a == data && got_b == data, "bytes lost or reordered");
        assert!(ar.peer_addr().unwrap().is_unnamed());
        assert!(aw.local_addr().unwrap().is_unnamed());
        // Halves of different streams do not reunite; the right ones do.
        let (ar, bw) = ar.reunite(bw).unwrap_err();
        ar.reunite(aw).unwrap();
        br.reunite(bw).unwrap();
    });
}
}

both_drivers! {
fn peer_cred_is_this_process() {
    let dir = TempDir::new("cred");
    let path = dir.join("cred.sock");
    support::run(async {
        // SAFETY: these getters cannot fail.
        let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
        let pid = std::process::id() as i32;
        let (a, b) = UnixStream::pair().unwrap();
        for s in [&a, &b] {
            let cred = s.peer_cred().unwrap();
            assert_eq!((cred.pid(), cred.uid(), cred.gid()), (pid, uid, gid));
        }
        let listener = UnixListener::bind(&path).unwrap();
        let c = UnixStream::connect(&path).await.unwrap();
        let (s, _) = listener.accept().await.unwrap();
        assert_eq!(c.peer_cred().unwrap(), s.peer_cred().unwrap());
        let (r, _w) = s.into_split();
        assert_eq!(r.peer_cred().unwrap().pid(), pid);
    });
}
}

both_drivers! {
fn datagrams_with_addresses() {
    let dir = TempDir::new("dgram");
    let (a_path, b_path) = (dir.join("a.sock"), dir.join("b.sock"));
    support::run(async {
        let a = UnixDatagram::bind(&a_path).unwrap();
        let b = UnixDatagram::bind(&b_path).unwrap();
        assert_eq!(a.local_addr().unwrap().as_pathname(), Some(a_path.as_path()));
        for i in 0..50usize {
            let msg = vec![i as u8; i * 13];
            assert_eq!(a.send_to(msg.clone(), &b_path).await.0.unwrap(), msg.len());
            let (res, buf) = timeout(GUARD, b.recv_from(Vec::with_capacity(1024))).await.unwrap();
            let (n, from) = res.unwrap();
            assert_eq!((n, from.as_pathname()), (msg.len(), Some(a_path.as_path())));
            assert_eq!(buf, msg);
            // Back to the address it came from.
            b.send_to_addr(buf, &from).await.0.unwrap();
            let (res, buf) = timeout(GUARD, a.recv_from(Vec::with_capacity(1024))).await.unwrap();
            assert_eq!(res.unwrap().1.as_pathname(), Some(b_path.as_path()));
            assert_eq!(buf, msg);
        }
        // An unbound sender is unnamed to its receiver.
        let u = UnixDatagram::unbound().unwrap();
        u.send_to(b"anon".as_slice(), &b_path).await.0.unwrap();
        let (res, buf) = timeout(GUARD, b.recv_from(Vec::with_capacity(64))).await.unwrap();
        assert!(res.unwrap().1.is_unnamed());
        assert_eq!(buf, b"anon");
        // Abstract names, and connected sockets.
        let name = abstract_name("dgram");
        let c = UnixDatagram::bind_addr(SocketAddr::from_abstract_name(&name).unwrap()).unwrap();
        u.connect_addr(c.local_addr().unwrap()).unwrap();
        assert_eq!(u.peer_addr().unwrap().as_abstract_name(), Some(name.as_bytes()));
        u.send(b"to abstract".as_slice()).await.0.unwrap();
        let (res, buf) = timeout(GUARD, c.recv(vec![0u8; 64])).await.unwrap();
        assert_eq!(&buf[..res.unwrap()], b"to abstract");
        // An empty datagram is a datagram.
        u.send(Vec::new()).await.0.unwrap();
        let (res, _) = timeout(GUARD, c.recv_from(vec![0u8; 64])).await.unwrap();
        assert_eq!(res.unwrap().0, 0);
    });
}
}

both_drivers! {
fn datagram_pairs_and_pooled_receives() {
    support::run(async {
        let (a, b) = UnixDatagram::pair().unwrap();
        assert!(a.peer_addr().unwrap().is_unnamed());
        for i in 0..100usize {
            a.send(vec![i as u8; i]).await.0.unwrap();
            let got = timeout(GUARD, b.recv_pooled()).await.unwrap().unwrap();
            assert_eq!(&got[..], &vec![i as u8; i][..]);
        }
        // A plain receive after pooled ones gets the next datagram.
        a.send(b"plain".as_slice()).await.0.unwrap();
        let (res, buf) = timeout(GUARD, b.recv_from(vec![0u8; 64])).await.unwrap();
        let (n, from) = res.unwrap();
        assert!(from.is_unnamed());
        assert_eq!(&buf[..n], b"plain");
        b.shutdown(std::net::Shutdown::Both).await.unwrap();
    });
}
}

/// xorshift64*, for schedules.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
    }
}

/// A read's time limit: none at all (polled once, then dropped) a third of
/// the time, else up to 100 µs.
fn limit(rng: &mut Rng) -> Duration {
    match rng.below(3) {
        0 => Duration::ZERO,
        _ => Duration::from_micros(rng.below(100)),
    }
}

fn pattern(i: usize) -> u8 {
    (i.wrapping_mul(31) % 251) as u8
}

both_drivers! {
fn thousands_of_timed_out_reads_lose_nothing() {
    let total = 300_000;
    let (got, timeouts) = support::run(async {
        let (ours, theirs) = std::os::unix::net::UnixStream::pair().unwrap();
        let s = UnixStream::from_std(ours);
        let writer = std::thread::spawn(move || {
            let mut theirs = theirs;
            let mut rng = Rng(0x1234_5678);
            let data: Vec<u8> = (0..total).map(pattern).collect();
            let mut at = 0;
            while at < total {
                let n = (1 + rng.below(150) as usize).min(total - at);
                theirs.write_all(&data[at..at + n]).unwrap();
                at += n;
                // Paced, so that reads wait (and time out) often.
                std::thread::sleep(Duration::from_micros(rng.below(200)));
            }
        });
        let mut rng = Rng(0x9876_5431);
        let (mut got, mut timeouts) = (Vec::with_capacity(total), 0u32);
        let deadline = Instant::now() + Duration::from_secs(60) * support::slowdown();
        loop {
            assert!(Instant::now() < deadline, "the reads hung");
            let limit = limit(&mut rng);
            // Plain reads, reads that take fds, and pooled receives, each
            // dropped by its timeout at any point.
            let res = match rng.below(3) {
                0 => timeout(limit, s.read(vec![0u8; 1 + rng.below(600) as usize]))
                    .await
                    .map(|(res, buf)| buf[..res.unwrap()].to_vec()),
                1 => timeout(limit, s.recv_with_fds(vec![0u8; 1 + rng.below(600) as usize], 2))
                    .await
                    .map(|(res, buf)| {
                        let (n, fds) = res.unwrap();
                        assert!(fds.is_empty());
                        buf[..n].to_vec()
                    }),
                _ => timeout(limit, s.recv_pooled())
                    .await
                    .map(|res| res.unwrap().map(|b| b.to_vec()).unwrap_or_default()),
            };
            match res {
                Err(_) => timeouts += 1,
                Ok(d) if d.is_empty() => break,
                Ok(d) => got.extend_from_slice(&d),
            }
        }
        writer.join().unwrap();
        (got, timeouts)
    });
    assert_eq!(got.len(), total, "byte count");
    if let Some(i) = (0..total).find(|&i| got[i] != pattern(i)) {
        panic!("byte {i} lost or out of order");
    }
    println!("{timeouts} reads timed out");
    assert!(timeouts >= 1000, "only {timeouts} reads timed out");
}
}

both_drivers! {
fn timed_out_datagram_receives_lose_nothing() {
    let count = 3000u32;
    support::run(async {
        let (ours, theirs) = std::os::unix::net::UnixDatagram::pair().unwrap();
        let s = UnixDatagram::from_std(ours);
        let writer = std::thread::spawn(move || {
            let mut rng = Rng(0x55AA);
            for seq in 0..count {
                let mut d = seq.to_le_bytes().to_vec();
                d.resize(4 + rng.below(200) as usize, seq as u8);
                // Blocks while the receiver's queue is full: none is dropped.
                theirs.send(&d).unwrap();
                std::thread::sleep(Duration::from_micros(rng.below(200)));
            }
        });
        let mut rng = Rng(0xAA55);
        let (mut next, mut timeouts) = (0u32, 0u32);
        let deadline = Instant::now() + Duration::from_secs(60) * support::slowdown();
        while next < count {
            assert!(Instant::now() < deadline, "the receives hung at {next}");
            let limit = limit(&mut rng);
            let res = match rng.below(4) {
                0 => timeout(limit, s.recv(vec![0u8; 256]))
                    .await
                    .map(|(res, buf)| buf[..res.unwrap()].to_vec()),
                1 => timeout(limit, s.recv_from(vec![0u8; 256]))
                    .await
                    .map(|(res, buf)| buf[..res.unwrap().0].to_vec()),
                2 => timeout(limit, s.recv_with_fds(vec![0u8; 256], 1))
                    .await
                    .map(|(res, buf)| buf[..res.unwrap().0].to_vec()),
                _ => timeout(limit, s.recv_pooled()).await.map(|r| r.unwrap().to_vec()),
            };
            match res {
                Err(_) => timeouts += 1,
                Ok(d) => {
                    let seq = u32::from_le_bytes(d[..4].try_into().unwrap());
                    assert_eq!(seq, next, "datagram lost or out of order");
                    assert!(d[4..].iter().all(|&b| b == seq as u8), "datagram {seq} corrupted");
                    next += 1;
                }
            }
        }
        writer.join().unwrap();
        println!("{timeouts} receives timed out");
        assert!(timeouts >= 1000, "only {timeouts} receives timed out");
    });
}
}

fn kind<T: std::fmt::Debug>(res: io::Result<T>) -> io::ErrorKind {
    res.expect_err("expected an error").kind()
}

both_drivers! {
fn bad_paths_and_addresses() {
    let dir = TempDir::new("bad");
    support::run(async {
        // Too long for sun_path.
        let long = dir.join(&"x".repeat(120));
        assert_eq!(kind(UnixListener::bind(&long)), io::ErrorKind::InvalidInput);
        assert_eq!(kind(UnixStream::connect(&long).await), io::ErrorKind::InvalidInput);
        assert_eq!(kind(UnixDatagram::bind(&long)), io::ErrorKind::InvalidInput);
        let d = UnixDatagram::unbound().unwrap();
        let (res, buf) = d.send_to(b"kept".as_slice(), &long).await;
        assert_eq!(kind(res), io::ErrorKind::InvalidInput);
        assert_eq!(buf, b"kept", "the buffer comes back");
        assert_eq!(kind(d.connect(&long)), io::ErrorKind::InvalidInput);
        assert_eq!(kind(UnixListener::bind("a\0b")), io::ErrorKind::InvalidInput);
        // Nothing there, or no directory.
        let missing = dir.join("missing.sock");
        assert_eq!(kind(UnixStream::connect(&missing).await), io::ErrorKind::NotFound);
        assert_eq!(kind(d.connect(&missing)), io::ErrorKind::NotFound);
        let no_dir = dir.join("no-such-dir/x.sock");
        assert_eq!(kind(UnixListener::bind(&no_dir)), io::ErrorKind::NotFound);
        // A file that is not a socket: refused (Linux says ECONNREFUSED).
        let file = dir.join("plain-file");
        std::fs::write(&file, b"not a socket").unwrap();
        assert_eq!(kind(UnixStream::connect(&file).await), io::ErrorKind::ConnectionRefused);
        assert_eq!(kind(UnixListener::bind(&file)), io::ErrorKind::AddrInUse);
        // An abstract name nobody listens on.
        let nobody = SocketAddr::from_abstract_name(abstract_name("nobody")).unwrap();
        assert_eq!(
            kind(UnixStream::connect_addr(&nobody).await),
            io::ErrorKind::ConnectionRefused
        );
        // Sending on an unconnected socket without an address.
        assert_eq!(kind(d.send(b"x".as_slice()).await.0), io::ErrorKind::NotConnected);
        assert_eq!(kind(d.peer_addr()), io::ErrorKind::NotConnected);
    });
}
}

both_drivers! {
fn live_and_stale_socket_files_are_in_use() {
    let dir = TempDir::new("stale");
    let path = dir.join("s.sock");
    support::run(async {
        let live = UnixListener::bind(&path).unwrap();
        assert_eq!(kind(UnixListener::bind(&path)), io::ErrorKind::AddrInUse);
        assert_eq!(kind(UnixDatagram::bind(&path)), io::ErrorKind::AddrInUse);
        let abs = SocketAddr::from_abstract_name(abstract_name("in-use")).unwrap();
        let _held = UnixListener::bind_addr(&abs).unwrap();
        assert_eq!(kind(UnixListener::bind_addr(&abs)), io::ErrorKind::AddrInUse);
        // The listener goes, its file stays: a stale socket file. It is
        // not removed behind the user's back.
        drop(live);
        assert!(path.exists(), "dropping a listener leaves its file");
        assert_eq!(kind(UnixListener::bind(&path)), io::ErrorKind::AddrInUse);
        // How a user proves it stale: connecting is refused (once the
        // listener's close, which may go through the ring, is done).
        let deadline = Instant::now() + GUARD;
        loop {
            match UnixStream::connect(&path).await {
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => break,
                Ok(_) if Instant::now() < deadline => {
                    corio::time::sleep(Duration::from_millis(1)).await
                }
                other => panic!("connecting to a stale socket file: {other:?}"),
            }
        }
        std::fs::remove_file(&path).unwrap();
        let again = UnixListener::bind(&path).unwrap();
        let c = UnixStream::connect(&path).await.unwrap();
        let (s, _) = again.accept().await.unwrap();
        c.write_all(b"fresh".as_slice()).await.0.unwrap();
        let (res, buf) = s.read_exact(vec![0u8; 5]).await;
        res.unwrap();
        assert_eq!(buf, b"fresh");
    });
}
}

both_drivers! {
fn std_conversions_round_trip() {
    let dir = TempDir::new("std");
    let path = dir.join("std.sock");
    support::run(async {
        let std_listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let listener = UnixListener::from_std(std_listener);
        let c = UnixStream::connect(&path).await.unwrap();
        let (s, _) = listener.accept().await.unwrap();
        let listener = listener.into_std().unwrap();
        assert_eq!(listener.local_addr().unwrap().as_pathname(), Some(path.as_path()));
        let mut std_s = s.into_std().unwrap();
        std_s.write_all(b"via std").unwrap();
        let (res, buf) = c.read_exact(vec![0u8; 7]).await;
        res.unwrap();
        assert_eq!(buf, b"via std");
        let (a, _b) = UnixDatagram::pair().unwrap();
        let a = a.into_std().unwrap();
        assert!(a.local_addr().unwrap().is_unnamed());
        let std_addr = std::os::unix::net::SocketAddr::try_from(
            &SocketAddr::from_pathname(Path::new("/x")).unwrap(),
        )
        .unwrap();
        assert_eq!(std_addr.as_pathname(), Some(Path::new("/x")));
    });
}
}
