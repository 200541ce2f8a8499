//! UDP: v4, v6 and connected round trips, truncation, broadcast, multicast, cancel safety, errors.

mod support;

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use corio::IoBuf;
use corio::net::UdpSocket;
use corio::time::timeout;
use socket2::SockRef;

/// Hang guard for a single receive that must succeed.
const GUARD: Duration = Duration::from_secs(5);

/// A tiny deterministic PRNG (xorshift64) for jittered timings.
struct Rng(u64);

impl Rng {
    fn below(&mut self, bound: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % bound
    }
}

/// Payload of datagram `seq`: its number, then a pattern derived from it.
fn payload(seq: u32, len: usize) -> Vec<u8> {
    let mut p = seq.to_le_bytes().to_vec();
    p.extend((4..len).map(|i| (seq as usize + i) as u8));
    p
}

/// Checks a datagram built by `payload` and returns its number.
fn check_payload(data: &[u8], len: usize) -> u32 {
    assert_eq!(data.len(), len, "datagram length");
    let seq = u32::from_le_bytes(data[..4].try_into().unwrap());
    assert_eq!(data, payload(seq, len), "datagram {seq} corrupted");
    seq
}

async fn round_trips(a: &UdpSocket, b: &UdpSocket) {
    let (a_addr, b_addr) = (a.local_addr().unwrap(), b.local_addr().unwrap());
    for i in 0..50u32 {
        let msg = payload(i, 20 + i as usize);
        let (res, _) = a.send_to(msg.clone(), b_addr).await;
        assert_eq!(res.unwrap(), msg.len());
        let (res, buf) = timeout(GUARD, b.recv_from(Vec::with_capacity(1500)))
            .await
            .unwrap();
        let (n, from) = res.unwrap();
        assert_eq!((n, from), (msg.len(), a_addr));
        assert_eq!(buf, msg);
        // And back, into a buffer with spare capacity.
        let (res, _) = b.send_to(buf, from).await;
        res.unwrap();
        let (res, buf) = timeout(GUARD, a.recv_from(Vec::with_capacity(4096)))
            .await
            .unwrap();
        assert_eq!(res.unwrap(), (msg.len(), b_addr));
        assert_eq!(buf, msg);
    }
}

both_drivers! {
fn send_to_recv_from_v4() {
    support::run(async {
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").unwrap();
        round_trips(&a, &b).await;
    });
}
}

both_drivers! {
fn send_to_recv_from_v6() {
    support::run(async {
        let a = match UdpSocket::bind("[::1]:0") {
            Ok(s) => s,
            Err(e) => {
                println!("SKIP send_to_recv_from_v6: cannot bind [::1]: {e}");
                return;
            }
        };
        let b = UdpSocket::bind("[::1]:0").unwrap();
        assert!(a.local_addr().unwrap().is_ipv6());
        round_trips(&a, &b).await;
    });
}
}

both_drivers! {
fn empty_and_large_datagrams() {
    support::run(async {
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").unwrap();
        let b_addr = b.local_addr().unwrap();
        a.send_to(Vec::new(), b_addr).await.0.unwrap();
        let (res, buf) = timeout(GUARD, b.recv_from(Vec::with_capacity(16)))
            .await
            .unwrap();
        assert_eq!(res.unwrap().0, 0);
        assert!(buf.is_empty());
        // Near the largest UDP payload over loopback (MTU 65536).
        let big = payload(9, 60_000);
        assert_eq!(a.send_to(big.clone(), b_addr).await.0.unwrap(), 60_000);
        let (res, buf) = timeout(GUARD, b.recv_from(Vec::with_capacity(65_536)))
            .await
            .unwrap();
        assert_eq!(res.unwrap().0, 60_000);
        assert_eq!(check_payload(&buf, 60_000), 9);
    });
}
}

both_drivers! {
fn connect_send_recv() {
    support::run(async {
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").unwrap();
        let other = UdpSocket::bind("127.0.0.1:0").unwrap();
        let (a_addr, b_addr) = (a.local_addr().unwrap(), b.local_addr().unwrap());
        assert!(a.peer_addr().is_err(), "not connected yet");
        a.connect(b_addr).await.unwrap();
        b.connect(a_addr).await.unwrap();
        assert_eq!(a.peer_addr().unwrap(), b_addr);
        for i in 0..50u32 {
            let (res, _) = a.send(payload(i, 32)).await;
            assert_eq!(res.unwrap(), 32);
            let (res, buf) = timeout(GUARD, b.recv(Vec::with_capacity(64)))
                .await
                .unwrap();
            assert_eq!(res.unwrap(), 32);
            assert_eq!(check_payload(&buf, 32), i);
            b.send(buf).await.0.unwrap();
            // recv_from on a connected socket names the peer.
            let (res, buf) = timeout(GUARD, a.recv_from(Vec::with_capacity(64)))
                .await
                .unwrap();
            assert_eq!(res.unwrap(), (32, b_addr));
            assert_eq!(check_payload(&buf, 32), i);
        }
        // A connected socket only takes datagrams from its peer: the stranger's
        // datagram, sent first, is filtered out by the kernel.
        other
            .send_to(b"stranger".as_slice(), a_addr)
            .await
            .0
            .unwrap();
        b.send(b"peer".as_slice()).await.0.unwrap();
        let (res, buf) = timeout(GUARD, a.recv(Vec::with_capacity(64)))
            .await
            .unwrap();
        assert_eq!(res.unwrap(), 4);
        assert_eq!(buf, b"peer");
    });
}
}

both_drivers! {
fn connected_to_closed_port_reports_refused() {
    support::run(async {
        // Bind then drop a socket to get a port nobody listens on.
        let closed = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let closed_addr = closed.local_addr().unwrap();
        drop(closed);
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        a.connect(closed_addr).await.unwrap();
        a.send(b"anyone?".as_slice()).await.0.unwrap();
        // The ICMP port-unreachable comes back as ECONNREFUSED on the next op.
        let (res, _) = timeout(GUARD, a.recv(Vec::with_capacity(16)))
            .await
            .unwrap();
        let err = res.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused, "{err}");
    });
}
}

both_drivers! {
fn send_without_peer_fails() {
    support::run(async {
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let (res, buf) = a.send(b"nowhere".as_slice()).await;
        let err = res.unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EDESTADDRREQ), "{err}");
        assert_eq!(buf, b"nowhere", "the buffer comes back on error");
    });
}
}

both_drivers! {
fn recv_from_truncates_into_short_buffer() {
    support::run(async {
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").unwrap();
        let b_addr = b.local_addr().unwrap();
        let long = payload(3, 100);
        a.send_to(long.clone(), b_addr).await.0.unwrap();
        a.send_to(payload(4, 6), b_addr).await.0.unwrap();
        // Only the buffer's capacity is filled; the rest of the datagram is gone.
        let (res, buf) = timeout(GUARD, b.recv_from(Vec::with_capacity(8)))
            .await
            .unwrap();
        assert_eq!(res.unwrap(), (8, a.local_addr().unwrap()));
        assert_eq!(buf, long[..8]);
        // The next receive gets the next datagram, not the truncated tail.
        let (res, buf) = timeout(GUARD, b.recv_from(Vec::with_capacity(100)))
            .await
            .unwrap();
        assert_eq!(res.unwrap().0, 6);
        assert_eq!(check_payload(&buf, 6), 4);
        // Same for `recv` on a connected socket, and into a `Slice`.
        b.connect(a.local_addr().unwrap()).await.unwrap();
        a.send_to(long.clone(), b_addr).await.0.unwrap();
        let (res, slice) = timeout(GUARD, b.recv(vec![0u8; 32].slice(4..9)))
            .await
            .unwrap();
        assert_eq!(res.unwrap(), 5);
        assert_eq!(slice.into_inner()[4..9], long[..5]);
    });
}
}

both_drivers! {
fn broadcast_flag_set_get_and_effect() {
    support::run(async {
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        assert!(!a.broadcast().unwrap(), "off by default");
        // A receiver bound to loopback's broadcast address.
        let r = UdpSocket::bind("127.255.255.255:0").unwrap();
        let dest = r.local_addr().unwrap();
        let (res, _) = a.send_to(b"no".as_slice(), dest).await;
        let err = res.unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EACCES), "{err}");

        a.set_broadcast(true).unwrap();
        assert!(a.broadcast().unwrap());
        a.send_to(b"yes".as_slice(), dest).await.0.unwrap();
        let (res, buf) = timeout(GUARD, r.recv_from(Vec::with_capacity(8)))
            .await
            .unwrap();
        assert_eq!(res.unwrap(), (3, a.local_addr().unwrap()));
        assert_eq!(buf, b"yes");

        a.set_broadcast(false).unwrap();
        assert!(!a.broadcast().unwrap());
        assert!(a.send_to(b"no".as_slice(), dest).await.0.is_err());
    });
}
}

both_drivers! {
fn multicast_v4_join_leave_on_loopback() {
    support::run(async {
        let group = Ipv4Addr::new(239, 255, 43, 21);
        let lo = Ipv4Addr::LOCALHOST;
        // Bound to the group address: only the group's datagrams arrive.
        let r = UdpSocket::bind((group, 0)).unwrap();
        let dest = r.local_addr().unwrap();
        // Only this socket's own memberships count: by default Linux hands
        // it the group's datagrams while any socket on the host (the other
        // variant of this test, say) is in the group.
        let off: libc::c_int = 0;
        // SAFETY: setsockopt with a live fd and a c_int option value.
        let rc = unsafe {
            libc::setsockopt(
                r.as_raw_fd(),
                libc::IPPROTO_IP,
                libc::IP_MULTICAST_ALL,
                (&off as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        assert_eq!(rc, 0, "IP_MULTICAST_ALL: {}", std::io::Error::last_os_error());
        if let Err(e) = r.join_multicast_v4(group, lo) {
            // No multicast on loopback here: the error must be a kernel one.
            assert!(e.raw_os_error().is_some(), "unclear join error: {e:?}");
            println!("SKIP multicast delivery: join failed: {e}");
            return;
        }
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        SockRef::from(&s).set_multicast_if_v4(&lo).unwrap();
        s.set_multicast_loop_v4(true).unwrap();
        s.set_multicast_ttl_v4(1).unwrap();
        s.send_to(b"one".as_slice(), dest).await.0.unwrap();
        let (res, buf) = timeout(GUARD, r.recv_from(Vec::with_capacity(8)))
            .await
            .unwrap();
        assert_eq!(res.unwrap(), (3, s.local_addr().unwrap()));
        assert_eq!(buf, b"one");

        // After leaving, the group's traffic no longer arrives: "two" is sent
        // while out of the group, "three" after joining again, and the first
        // datagram received must be "three".
        r.leave_multicast_v4(group, lo).unwrap();
        let again = r.leave_multicast_v4(group, lo).unwrap_err();
        assert_eq!(again.raw_os_error(), Some(libc::EADDRNOTAVAIL), "{again}");
        s.send_to(b"two".as_slice(), dest).await.0.unwrap();
        r.join_multicast_v4(group, lo).unwrap();
        s.send_to(b"three".as_slice(), dest).await.0.unwrap();
        let (res, buf) = timeout(GUARD, r.recv_from(Vec::with_capacity(8)))
            .await
            .unwrap();
        assert_eq!(res.unwrap().0, 5);
        assert_eq!(buf, b"three");
        r.leave_multicast_v4(group, lo).unwrap();
    });
}
}

both_drivers! {
fn multicast_bad_arguments_are_io_errors() {
    support::run(async {
        let r = UdpSocket::bind("127.0.0.1:0").unwrap();
        // Not a multicast address.
        let e = r
            .join_multicast_v4(Ipv4Addr::new(10, 1, 2, 3), Ipv4Addr::LOCALHOST)
            .unwrap_err();
        assert!(e.raw_os_error().is_some(), "{e:?}");
        // An interface address no interface has.
        let e = r
            .join_multicast_v4(
                Ipv4Addr::new(239, 255, 43, 22),
                Ipv4Addr::new(192, 0, 2, 77),
            )
            .unwrap_err();
        assert!(e.raw_os_error().is_some(), "{e:?}");
        // IPv6 options on an IPv4 socket.
        let group6 = "ff02::4321".parse::<Ipv6Addr>().unwrap();
        assert!(r.join_multicast_v6(group6, 0).is_err());
        if let Ok(r6) = UdpSocket::bind("[::1]:0") {
            // Joining a link-local group on loopback may or may not be
            // allowed; either way it is a result, not a panic.
            match r6.join_multicast_v6(group6, lo_index()) {
                Ok(()) => r6.leave_multicast_v6(group6, lo_index()).unwrap(),
                Err(e) => assert!(e.raw_os_error().is_some(), "{e:?}"),
            }
        }
    });
}
}

fn lo_index() -> u32 {
    // SAFETY: the name is a valid NUL-terminated C string.
    unsafe { libc::if_nametoindex(c"lo".as_ptr()) }
}

both_drivers! {
fn send_to_bad_addresses_are_io_errors() {
    support::run(async {
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        // Not an address at all (no lookup happens).
        let (res, buf) = a.send_to(b"x".as_slice(), "not an address").await;
        assert_eq!(res.unwrap_err().kind(), io::ErrorKind::InvalidInput);
        assert_eq!(buf, b"x");
        // A name that cannot resolve (`.invalid` is reserved, RFC 2606).
        let (res, _) = a.send_to(b"x".as_slice(), "no-such-host.invalid:9").await;
        assert!(res.is_err());
        // Port 0 is not a destination.
        let (res, _) = a.send_to(b"x".as_slice(), "127.0.0.1:0").await;
        assert_eq!(res.unwrap_err().raw_os_error(), Some(libc::EINVAL));
        // An IPv6 destination from an IPv4 socket.
        let (res, _) = a.send_to(b"x".as_slice(), "[::1]:9").await;
        assert!(res.unwrap_err().raw_os_error().is_some());
        // The socket still works afterwards.
        let b = UdpSocket::bind("127.0.0.1:0").unwrap();
        a.send_to(b"ok".as_slice(), b.local_addr().unwrap())
            .await
            .0
            .unwrap();
        let (res, buf) = timeout(GUARD, b.recv_from(Vec::with_capacity(4)))
            .await
            .unwrap();
        assert_eq!(res.unwrap().0, 2);
        assert_eq!(buf, b"ok");
    });
}
}

/// Sends `count` numbered datagrams of `len` bytes from a std socket on a
/// thread, in bursts of one to four with a random pause of up to
/// `max_gap_us` between bursts (a burst often finds a receive not yet
/// submitted, or about to be dropped).
fn spawn_sender(
    to: SocketAddr,
    from: Option<std::net::UdpSocket>,
    count: u32,
    len: usize,
    max_gap_us: u64,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut rng = Rng(0x2545_F491_4F6C_DD1D ^ len as u64);
        let sock = from.unwrap_or_else(|| std::net::UdpSocket::bind("127.0.0.1:0").unwrap());
        let mut seq = 0;
        while seq < count {
            for _ in 0..=rng.below(4) {
                if seq < count {
                    sock.send_to(&payload(seq, len), to).unwrap();
                    seq += 1;
                }
            }
            std::thread::sleep(Duration::from_micros(rng.below(max_gap_us)));
        }
    })
}

/// A short timeout for the cancel loops: often zero (the receive is dropped
/// in the same tick it is submitted: it completes at once if a datagram is
/// queued, else it is cancelled), otherwise up to about a millisecond.
fn short(rng: &mut Rng) -> Duration {
    match rng.below(4) {
        0 => Duration::ZERO,
        _ => Duration::from_micros(rng.below(1000)),
    }
}

/// Makes the kernel keep plenty of datagrams for the socket.
fn big_rcvbuf(sock: &UdpSocket) {
    SockRef::from(sock).set_recv_buffer_size(4 << 20).unwrap();
}

/// Receives datagrams until `count` have arrived, first through 2,000
/// short-lived receives (most abandoned by their timeout), then with a hang
/// guard; returns the sequence numbers in arrival order and how many short
/// receives timed out.
async fn receive_all<F, Fut>(count: u32, len: usize, mut recv: F) -> (Vec<u32>, usize)
where
    F: FnMut(Vec<u8>) -> Fut,
    Fut: Future<Output = (io::Result<usize>, Vec<u8>)>,
{
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut got = Vec::with_capacity(count as usize);
    let mut timed_out = 0;
    for _ in 0..2000 {
        if rng.below(16) == 0 {
            // A busy task: datagrams queue up meanwhile.
            std::thread::sleep(Duration::from_micros(rng.below(500)));
        }
        match timeout(short(&mut rng), recv(Vec::with_capacity(256))).await {
            Ok((res, buf)) => {
                assert_eq!(res.unwrap(), len);
                got.push(check_payload(&buf, len));
            }
            Err(_) => timed_out += 1,
        }
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while got.len() < count as usize {
        assert!(
            Instant::now() < deadline,
            "stalled after {} datagrams",
            got.len()
        );
        match timeout(Duration::from_secs(2), recv(Vec::with_capacity(256))).await {
            Ok((res, buf)) => {
                assert_eq!(res.unwrap(), len);
                got.push(check_payload(&buf, len));
            }
            Err(_) => {
                let missing = (0..count).find(|s| !got.contains(s));
                panic!(
                    "lost datagrams: got {} of {count}, first missing {missing:?}",
                    got.len()
                )
            }
        }
    }
    (got, timed_out)
}

both_drivers! {
fn recv_from_cancel_safe_under_timeouts() {
    const COUNT: u32 = 1500;
    const LEN: usize = 40;
    support::run(async {
        let r = UdpSocket::bind("127.0.0.1:0").unwrap();
        big_rcvbuf(&r);
        let sender = spawn_sender(r.local_addr().unwrap(), None, COUNT, LEN, 3000);
        let start = Instant::now();
        let r = &r;
        let (got, timed_out) = receive_all(COUNT, LEN, |buf| async move {
            let (res, buf) = r.recv_from(buf).await;
            (res.map(|(n, _)| n), buf)
        })
        .await;
        sender.join().unwrap();
        println!(
            "recv_from: {timed_out} of 2000 receives timed out, {:?}",
            start.elapsed()
        );
        assert!(
            timed_out > 0,
            "no receive was abandoned: the test tests nothing"
        );
        let want: Vec<u32> = (0..COUNT).collect();
        assert!(got == want, "datagrams lost, repeated or reordered");
        // Nothing more is pending.
        assert!(
            timeout(
                Duration::from_millis(20),
                r.recv_from(Vec::with_capacity(64))
            )
            .await
            .is_err()
        );
    });
}
}

both_drivers! {
fn nonblocking_std_socket_recv_from_cancel_safe() {
    // A socket handed in with O_NONBLOCK: receives answer EAGAIN and wait on a
    // readiness poll, so timeouts often drop them in that state instead.
    const COUNT: u32 = 1500;
    const LEN: usize = 32;
    support::run(async {
        let std_sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        std_sock.set_nonblocking(true).unwrap();
        let r = UdpSocket::from_std(std_sock);
        big_rcvbuf(&r);
        let sender = spawn_sender(r.local_addr().unwrap(), None, COUNT, LEN, 3000);
        let r = &r;
        let (got, timed_out) = receive_all(COUNT, LEN, |buf| async move {
            let (res, buf) = r.recv_from(buf).await;
            (res.map(|(n, _)| n), buf)
        })
        .await;
        sender.join().unwrap();
        assert!(
            timed_out > 0,
            "no receive was abandoned: the test tests nothing"
        );
        let want: Vec<u32> = (0..COUNT).collect();
        assert!(got == want, "datagrams lost, repeated or reordered");
    });
}
}

both_drivers! {
fn connected_recv_cancel_safe_under_timeouts() {
    const COUNT: u32 = 1500;
    const LEN: usize = 24;
    support::run(async {
        let r = UdpSocket::bind("127.0.0.1:0").unwrap();
        big_rcvbuf(&r);
        let peer = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        r.connect(peer.local_addr().unwrap()).await.unwrap();
        let sender = spawn_sender(r.local_addr().unwrap(), Some(peer), COUNT, LEN, 3000);
        let start = Instant::now();
        let (got, timed_out) = receive_all(COUNT, LEN, |buf| r.recv(buf)).await;
        sender.join().unwrap();
        println!(
            "recv: {timed_out} of 2000 receives timed out, {:?}",
            start.elapsed()
        );
        assert!(
            timed_out > 0,
            "no receive was abandoned: the test tests nothing"
        );
        let want: Vec<u32> = (0..COUNT).collect();
        assert!(got == want, "datagrams lost, repeated or reordered");
    });
}
}

both_drivers! {
fn abandoned_receives_without_traffic_then_one_datagram() {
    support::run(async {
        let r = UdpSocket::bind("127.0.0.1:0").unwrap();
        // Many receives dropped before and after reaching the kernel.
        for i in 0..1000u32 {
            let d = Duration::from_micros(u64::from(i % 4) * 50);
            assert!(
                timeout(d, r.recv_from(Vec::with_capacity(64)))
                    .await
                    .is_err()
            );
        }
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        s.send_to(payload(77, 10), r.local_addr().unwrap())
            .await
            .0
            .unwrap();
        let (res, buf) = timeout(GUARD, r.recv_from(Vec::with_capacity(64)))
            .await
            .unwrap();
        assert_eq!(res.unwrap(), (10, s.local_addr().unwrap()));
        assert_eq!(check_payload(&buf, 10), 77);
    });
}
}

both_drivers! {
fn kept_datagram_survives_a_dropped_budget_yield() {
    // A datagram kept from an abandoned receive is handed out by the next
    // receive without a kernel op; when the task's budget is spent, that path
    // yields. A receive dropped during that yield must lose nothing.
    // (On io_uring a dropped receive can complete anyway and keep its
    // datagram; the poll driver never keeps one, so there every datagram
    // simply stays queued in the kernel.)
    let rt = support::builder().task_budget(1).build().unwrap();
    let uring = rt.driver_kind() == corio::DriverKind::Uring;
    rt.block_on(async {
        let sender = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let socks: Vec<UdpSocket> = (0..20)
            .map(|_| UdpSocket::bind("127.0.0.1:0").unwrap())
            .collect();
        for (i, s) in socks.iter().enumerate() {
            let to = s.local_addr().unwrap();
            sender.send_to(&payload(i as u32, 8), to).unwrap();
            // On io_uring, submitted and dropped in the same tick: the receive
            // completes at once (the datagram is already queued) and its
            // datagram is kept.
            if uring {
                let res = timeout(Duration::ZERO, s.recv_from(Vec::with_capacity(16))).await;
                assert!(res.is_err());
            }
        }
        corio::time::sleep(Duration::from_millis(5)).await;
        // In one poll, a zero-timeout receive on each socket: after the first,
        // the budget is spent, so each yields first and is dropped.
        let mut received = vec![false; socks.len()];
        for (i, s) in socks.iter().enumerate() {
            if let Ok((res, buf)) =
                timeout(Duration::ZERO, s.recv_from(Vec::with_capacity(16))).await
            {
                assert_eq!(res.unwrap().0, 8);
                assert_eq!(check_payload(&buf, 8), i as u32);
                received[i] = true;
            }
        }
        let dropped = received.iter().filter(|r| !**r).count();
        assert!(
            dropped > 0,
            "no receive was dropped: the test tests nothing"
        );
        for (i, s) in socks.iter().enumerate().filter(|(i, _)| !received[*i]) {
            let (res, buf) = timeout(Duration::from_secs(1), s.recv_from(Vec::with_capacity(16)))
                .await
                .unwrap_or_else(|_| panic!("datagram {i} lost"));
            assert_eq!(res.unwrap().0, 8);
            assert_eq!(check_payload(&buf, 8), i as u32);
        }
    });
}
}
