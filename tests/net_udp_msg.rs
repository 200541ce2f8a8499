//! UDP with control messages: pktinfo, TOS/ECN, timestamps, truncation,
//! bad control data, GSO (`send_segments`, with and without the fallback)
//! and GRO, on both drivers, loopback only.

mod support;

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant, SystemTime};

use corio::net::UdpSocket;
use corio::net::udp::{Cmsg, RecvMeta};
use corio::time::timeout;

/// Hang guard for a single receive that must succeed.
const GUARD: Duration = Duration::from_secs(5);

const SEG: usize = 1200;

/// `n` segments of `SEG` bytes, each starting with its number.
fn segments(n: usize) -> Vec<u8> {
    (0..n * SEG)
        .map(|i| (i / SEG * 7 + i % 251) as u8)
        .collect()
}

/// Runs `f` on the variant's driver, one test at a time (one counts fds).
fn run<F: std::future::Future>(f: F) -> F::Output {
    let _serial = support::serial();
    support::run(f)
}

async fn recv_meta(sock: &UdpSocket, cap: usize) -> (RecvMeta, Vec<u8>) {
    let (res, buf) = timeout(GUARD, sock.recv_msg(Vec::with_capacity(cap)))
        .await
        .expect("a datagram within the guard");
    (res.unwrap(), buf)
}

fn bind_v6() -> Option<UdpSocket> {
    match UdpSocket::bind("[::1]:0") {
        Ok(s) => Some(s),
        Err(e) => {
            println!("SKIP: cannot bind [::1]: {e}");
            None
        }
    }
}

both_drivers! {
fn pktinfo_tos_and_timestamps_v4() {
    run(async {
        let rx = UdpSocket::bind("0.0.0.0:0").unwrap();
        rx.set_recv_pktinfo(true).unwrap();
        rx.set_recv_tos(true).unwrap();
        rx.set_recv_timestamps(true).unwrap();
        let port = rx.local_addr().unwrap().port();
        let tx = UdpSocket::bind("0.0.0.0:0").unwrap();
        let tx_port = tx.local_addr().unwrap().port();
        let before = SystemTime::now() - Duration::from_secs(60);
        for i in 0..20u8 {
            // The destination and the source both chosen per datagram.
            let dst = Ipv4Addr::new(127, 0, 0, 10 + i);
            let src = Ipv4Addr::new(127, 0, 1, 10 + i);
            let cmsgs = [
                Cmsg::PktInfo { src: src.into(), ifindex: 0 },
                Cmsg::Tos(0x2e << 2 | (i % 4)),
            ];
            let to = SocketAddr::from((dst, port));
            let (res, _) = tx.send_msg(vec![i; 100], Some(to), &cmsgs).await;
            assert_eq!(res.unwrap(), 100);
            let (meta, buf) = recv_meta(&rx, 1500).await;
            assert_eq!((meta.len, &buf[..]), (100, &[i; 100][..]));
            assert_eq!(meta.from, SocketAddr::from((src, tx_port)));
            assert_eq!(meta.dst, Some(IpAddr::V4(dst)));
            assert!(meta.ifindex.unwrap() > 0, "loopback has an index");
            assert_eq!(meta.tos, Some(0x2e << 2 | (i % 4)));
            assert_eq!(meta.ecn(), Some(i % 4));
            assert!(meta.timestamp.unwrap() > before);
            assert!(!meta.truncated && !meta.control_truncated);
            assert_eq!(meta.segment_size, None);
        }
    });
}
}

both_drivers! {
fn pktinfo_and_traffic_class_v6() {
    run(async {
        let Some(rx) = bind_v6() else { return };
        let tx = UdpSocket::bind("[::1]:0").unwrap();
        rx.set_recv_pktinfo(true).unwrap();
        rx.set_recv_tos(true).unwrap();
        let to = rx.local_addr().unwrap();
        let cmsgs = [
            Cmsg::PktInfo { src: Ipv6Addr::LOCALHOST.into(), ifindex: 0 },
            Cmsg::Tos(0b11),
        ];
        let (res, _) = tx.send_msg(b"six".as_slice(), Some(to), &cmsgs).await;
        assert_eq!(res.unwrap(), 3);
        let (meta, buf) = recv_meta(&rx, 64).await;
        assert_eq!(&buf[..], b"six");
        assert_eq!(meta.from, tx.local_addr().unwrap());
        assert_eq!(meta.dst, Some(IpAddr::V6(Ipv6Addr::LOCALHOST)));
        assert_eq!(meta.ecn(), Some(3));
        // Options off: no metadata.
        rx.set_recv_pktinfo(false).unwrap();
        rx.set_recv_tos(false).unwrap();
        tx.send_msg(b"x".as_slice(), Some(to), &[]).await.0.unwrap();
        let (meta, _) = recv_meta(&rx, 64).await;
        assert_eq!((meta.dst, meta.tos, meta.timestamp), (None, None, None));
    });
}
}

both_drivers! {
fn a_long_datagram_is_reported_truncated() {
    run(async {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        tx.connect(rx.local_addr().unwrap()).await.unwrap();
        tx.send_msg(vec![5u8; 1000], None, &[]).await.0.unwrap();
        let (meta, buf) = recv_meta(&rx, 100).await;
        assert_eq!((meta.len, buf.len()), (100, 100));
        assert!(meta.truncated);
    });
}
}

both_drivers! {
fn bad_control_data_is_refused() {
    run(async {
        let v4 = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = v4.local_addr().unwrap();
        let to = Some(addr);
        let v6_src = [Cmsg::PktInfo { src: Ipv6Addr::LOCALHOST.into(), ifindex: 0 }];
        let (res, buf) = v4.send_msg(vec![1u8; 10], to, &v6_src).await;
        assert_eq!(res.unwrap_err().kind(), io::ErrorKind::InvalidInput);
        assert_eq!(buf, vec![1u8; 10], "the buffer comes back");
        let many = vec![Cmsg::Tos(0); 100];
        let (res, _) = v4.send_msg(vec![1u8; 10], to, &many).await;
        let err = res.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert!(err.to_string().contains("too large"), "{err}");
        if let Some(v6) = bind_v6() {
            let v4_src = [Cmsg::PktInfo { src: Ipv4Addr::LOCALHOST.into(), ifindex: 0 }];
            let to = Some(v6.local_addr().unwrap());
            let (res, _) = v6.send_msg(vec![1u8; 10], to, &v4_src).await;
            assert_eq!(res.unwrap_err().kind(), io::ErrorKind::InvalidInput);
        }
        // GSO arguments.
        let (res, _) = v4.send_segments(vec![0u8; 100], 0, addr).await;
        assert_eq!(res.unwrap_err().kind(), io::ErrorKind::InvalidInput);
        let (res, _) = v4.send_segments(vec![0u8; 65 * 10], 10, addr).await;
        assert_eq!(res.unwrap_err().kind(), io::ErrorKind::InvalidInput);
        // Nothing was sent by any of them.
        let got = timeout(Duration::from_millis(50), v4.recv_msg(vec![0u8; 64])).await;
        assert!(got.is_err(), "no datagram");
    });
}
}

/// Sends 10 segments of 1,200 bytes to a plain receiver and checks that
/// they arrive as 10 datagrams; with `gso` off, through the fallback.
async fn segments_arrive_as_datagrams(gso: bool) {
    let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
    let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
    tx.set_gso(gso);
    let data = segments(10);
    for round in 0..3 {
        let (res, back) = tx
            .send_segments(data.clone(), SEG, rx.local_addr().unwrap())
            .await;
        assert_eq!(res.unwrap(), data.len(), "round {round}");
        assert_eq!(back, data);
        for (i, want) in data.chunks(SEG).enumerate() {
            let (meta, buf) = recv_meta(&rx, 65536).await;
            assert_eq!(meta.len, SEG, "datagram {i} of round {round}");
            assert_eq!(&buf[..], want);
            assert_eq!(meta.segment_size, None);
        }
    }
    // A short last segment.
    let short = segments(3)[..2 * SEG + 17].to_vec();
    let (res, _) = tx
        .send_segments(short.clone(), SEG, rx.local_addr().unwrap())
        .await;
    assert_eq!(res.unwrap(), short.len());
    for want in short.chunks(SEG) {
        let (res, buf) = timeout(GUARD, rx.recv_from(vec![0u8; 2048])).await.unwrap();
        assert_eq!(&buf[..res.unwrap().0], want);
    }
    assert_eq!(tx.gso(), gso, "loopback takes GSO");
}

both_drivers! {
fn gso_segments_arrive_as_datagrams() {
    run(segments_arrive_as_datagrams(true));
}
}

both_drivers! {
fn gso_fallback_sends_one_datagram_per_segment() {
    run(segments_arrive_as_datagrams(false));
}
}

/// Receives with GRO until `total` bytes came, checking that each
/// coalesced receive reports the segment size; returns the bytes in order.
async fn gro_receive(rx: &UdpSocket, total: usize) -> (Vec<u8>, usize) {
    let mut got = Vec::new();
    let mut coalesced = 0;
    let deadline = Instant::now() + Duration::from_secs(10);
    while got.len() < total {
        assert!(Instant::now() < deadline, "stalled at {} bytes", got.len());
        let (meta, buf) = recv_meta(rx, 65536).await;
        if meta.len > SEG {
            assert_eq!(meta.segment_size, Some(SEG));
            coalesced += 1;
        }
        for seg in meta.segments(&buf) {
            assert!(seg.len() <= SEG);
            got.extend_from_slice(seg);
        }
    }
    (got, coalesced)
}

both_drivers! {
fn gro_reports_the_segment_size_and_reassembles() {
    run(async {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        if let Err(e) = rx.set_gro(true) {
            println!("SKIP: UDP_GRO refused: {e}");
            return;
        }
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let data = segments(20);
        let to = rx.local_addr().unwrap();
        let mut want = Vec::new();
        for _ in 0..5 {
            tx.send_segments(data.clone(), SEG, to).await.0.unwrap();
            want.extend_from_slice(&data);
        }
        let (got, coalesced) = gro_receive(&rx, want.len()).await;
        assert_eq!(got, want);
        // On loopback a GSO send reaches a GRO socket whole.
        assert!(coalesced > 0, "no coalesced receive");
    });
}
}

both_drivers! {
fn dropped_gro_receives_keep_every_segment() {
    run(async {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        if rx.set_gro(true).is_err() {
            println!("SKIP: UDP_GRO refused");
            return;
        }
        let fds = support::open_fds();
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = rx.local_addr().unwrap();
        let data = segments(8);
        for _ in 0..100 {
            // Receives dropped after one poll, before and after the data
            // is there: on io_uring they are in the kernel and may complete
            // after their future is gone (their bytes are then kept).
            let _ = timeout(Duration::ZERO, rx.recv_msg(Vec::with_capacity(65536))).await;
            tx.send_segments(data.clone(), SEG, to).await.0.unwrap();
            let _ = timeout(Duration::ZERO, rx.recv_msg(Vec::with_capacity(65536))).await;
            let (got, _) = gro_receive(&rx, data.len()).await;
            assert_eq!(got, data, "bytes lost or out of order");
        }
        drop(tx);
        corio::nop().await.unwrap();
        assert_eq!(support::open_fds(), fds, "an fd leaked");
    });
}
}

both_drivers! {
fn pooled_receives_report_source_and_metadata() {
    run(async {
        let rx = UdpSocket::bind("0.0.0.0:0").unwrap();
        rx.set_recv_pktinfo(true).unwrap();
        rx.set_recv_tos(true).unwrap();
        let port = rx.local_addr().unwrap().port();
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        for i in 0..50u8 {
            let dst = Ipv4Addr::new(127, 0, 0, 1 + i);
            let to = SocketAddr::from((dst, port));
            let len = 1 + i as usize * 70;
            tx.send_msg(vec![i; len], Some(to), &[Cmsg::Tos(i % 4)]).await.0.unwrap();
            let (buf, meta) = timeout(GUARD, rx.recv_pooled_msg()).await.unwrap().unwrap();
            assert_eq!((meta.len, &buf[..]), (len, &vec![i; len][..]));
            assert_eq!(meta.from, tx.local_addr().unwrap());
            assert_eq!(meta.dst, Some(IpAddr::V4(dst)));
            assert_eq!(meta.ecn(), Some(i % 4));
            assert!(!meta.truncated);
        }
        // A datagram longer than a pool buffer's payload room is cut.
        tx.send_to(vec![9u8; 5000], ("127.0.0.1", port)).await.0.unwrap();
        let (buf, meta) = timeout(GUARD, rx.recv_pooled_msg()).await.unwrap().unwrap();
        assert!(meta.truncated && buf.len() < 4096 && buf.iter().all(|&b| b == 9));
    });
}
}

both_drivers! {
fn pooled_gro_receives_reassemble() {
    let _serial = support::serial();
    let rt = support::builder().buffer_pool(64, 65536).build().unwrap();
    rt.block_on(async {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        if rx.set_gro(true).is_err() {
            println!("SKIP: UDP_GRO refused");
            return;
        }
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let data = segments(20);
        tx.send_segments(data.clone(), SEG, rx.local_addr().unwrap()).await.0.unwrap();
        let mut got = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(10);
        while got.len() < data.len() {
            assert!(Instant::now() < deadline, "stalled at {} bytes", got.len());
            let (buf, meta) = timeout(GUARD, rx.recv_pooled_msg()).await.unwrap().unwrap();
            if meta.len > SEG {
                assert_eq!(meta.segment_size, Some(SEG));
            }
            meta.segments(&buf).for_each(|s| got.extend_from_slice(s));
        }
        assert_eq!(got, data);
    });
}
}

both_drivers! {
fn pooled_and_plain_receives_mixed_and_dropped_keep_sources() {
    run(async {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = rx.local_addr().unwrap();
        let senders: Vec<_> = (0..3).map(|_| UdpSocket::bind("127.0.0.1:0").unwrap()).collect();
        for i in 0..300usize {
            let tx = &senders[i % 3];
            // Dropped after one poll, each kind: what they get is kept.
            match i % 3 {
                0 => drop(timeout(Duration::ZERO, rx.recv_pooled_msg()).await),
                1 => drop(timeout(Duration::ZERO, rx.recv_msg(vec![0u8; 64])).await),
                _ => drop(timeout(Duration::ZERO, rx.recv_from(vec![0u8; 64])).await),
            }
            tx.send_to(vec![i as u8; 1 + i % 40], to).await.0.unwrap();
            let (buf, meta) = timeout(GUARD, rx.recv_pooled_msg()).await.unwrap().unwrap();
            assert_eq!(&buf[..], &vec![i as u8; 1 + i % 40][..], "datagram {i}");
            assert_eq!(meta.from, tx.local_addr().unwrap());
        }
    });
}
}

both_drivers! {
fn segment_cmsg_on_v6_and_dropped_sends_leak_nothing() {
    run(async {
        let fds = support::open_fds();
        let Some(rx) = bind_v6() else { return };
        let tx = UdpSocket::bind("[::1]:0").unwrap();
        let to = rx.local_addr().unwrap();
        // GSO through the general call, on IPv6.
        let data = segments(3);
        let seg = [Cmsg::Segment(SEG as u16), Cmsg::Tos(1)];
        let (res, _) = tx.send_msg(data.clone(), Some(to), &seg).await;
        assert_eq!(res.unwrap(), data.len());
        for want in data.chunks(SEG) {
            let (meta, buf) = recv_meta(&rx, 2048).await;
            assert_eq!(&buf[..meta.len], want);
        }
        // Sends and receives dropped at every stage: nothing leaks.
        for i in 0..500usize {
            match i % 3 {
                0 => drop(timeout(Duration::ZERO, tx.send_msg(vec![1u8; 64], Some(to), &seg)).await),
                1 => drop(timeout(Duration::ZERO, tx.send_segments(segments(4), SEG, to)).await),
                _ => drop(timeout(Duration::ZERO, rx.recv_msg(vec![0u8; 65536])).await),
            }
        }
        drop((tx, rx));
        // The sockets close once their cancelled ops complete.
        for _ in 0..200 {
            if support::open_fds() == fds {
                break;
            }
            corio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(support::open_fds(), fds, "an fd leaked");
    });
}
}

both_drivers! {
fn gro_runs_taken_by_a_pooled_receive_and_kept_stay_datagrams() {
    let _serial = support::serial();
    let rt = support::builder().buffer_pool(64, 65536).build().unwrap();
    rt.block_on(async {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        if rx.set_gro(true).is_err() {
            println!("SKIP: UDP_GRO refused");
            return;
        }
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = rx.local_addr().unwrap();
        let data = segments(8);
        for _ in 0..50 {
            // On io_uring the dropped pooled receive leaves a multishot
            // RECVMSG armed: the run lands in a pool buffer, and the plain
            // receives below take the op down and get it as kept datagrams.
            drop(timeout(Duration::ZERO, rx.recv_pooled_msg()).await);
            tx.send_segments(data.clone(), SEG, to).await.0.unwrap();
            let (got, _) = gro_receive(&rx, data.len()).await;
            assert_eq!(got, data, "bytes lost or out of order");
        }
    });
}
}
