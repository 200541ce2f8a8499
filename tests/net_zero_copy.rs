//! Zero-copy sends (`send_zc`, `write_all_zc`): data integrity from 1 B to
//! 4 MiB, futures dropped mid-send (the buffer outlives them), and the plain
//! send they fall back to.

mod support;

use std::io;
use std::time::Duration;

use corio::net::{TcpListener, TcpStream};
use corio::time::timeout;
use support::{builder, open_fds, serial, watchdog};

/// The test pattern (not periodic in any power of two), from offset `seed`.
fn pattern(len: usize, seed: usize) -> Vec<u8> {
    (seed..seed + len)
        .map(|i| (i * 31 + i / 251) as u8)
        .collect()
}

/// A connected pair on 127.0.0.1: (the sending end, the receiving end).
async fn pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let accept = corio::spawn(async move { listener.accept().await.unwrap().0 });
    let tx = TcpStream::connect(addr).await.unwrap();
    (tx, accept.await.unwrap())
}

const SIZES: &[usize] = &[1, 2, 100, 4096, 16 << 10, 65_537, 1 << 20, 4 << 20];

/// Sends each size with `write_all_zc` (or one `send_zc` for small ones)
/// and checks every byte arrives.
async fn integrity() {
    let (tx, mut rx) = pair().await;
    for (n, &len) in SIZES.iter().enumerate() {
        let data = pattern(len, n);
        let reader = corio::spawn(async move {
            let (res, buf) = rx.read_exact(Vec::with_capacity(len)).await;
            res.unwrap();
            (rx, buf)
        });
        let back = if len <= 4096 {
            // One send takes a small buffer whole on an idle socket; the
            // loop covers a short one anyway.
            let (res, back) = tx.send_zc(data).await;
            let sent = res.unwrap();
            assert!(sent >= 1 && sent <= len);
            if sent < len {
                let (res, _) = tx.write_all_zc(back[sent..].to_vec()).await;
                res.unwrap();
            }
            back
        } else {
            let (res, back) = tx.write_all_zc(data).await;
            res.unwrap();
            back
        };
        assert_eq!(back.len(), len, "the buffer comes back whole");
        let (r, got) = reader.await.unwrap();
        assert!(got == back, "{len} bytes arrived intact");
        rx = r;
    }
}

both_drivers! {
    fn write_all_zc_delivers_every_size_intact() {
        // Every test here takes the lock: one of them counts fds.
        let _serial = serial();
        let _dog = watchdog(Duration::from_secs(60), "zero-copy integrity");
        support::run(integrity());
    }
}

both_drivers! {
    fn write_all_zc_falls_back_to_plain_sends_when_turned_off() {
        // Every test here takes the lock: one of them counts fds.
        let _serial = serial();
        let _dog = watchdog(Duration::from_secs(60), "zero-copy fallback");
        let rt = builder().disable_opcodes(["SEND_ZC"]).build().unwrap();
        rt.block_on(integrity());
    }
}

both_drivers! {
    fn the_write_half_sends_zero_copy() {
        // Every test here takes the lock: one of them counts fds.
        let _serial = serial();
        support::run(async {
            let (tx, rx) = pair().await;
            let (_r, w) = tx.into_split();
            let (res, _) = w.write_all_zc(pattern(70_000, 3)).await;
            res.unwrap();
            let (res, n) = w.send_zc(pattern(10, 70_003)).await;
            assert_eq!(res.unwrap(), 10);
            assert_eq!(n.len(), 10);
            let (res, got) = rx.read_exact(Vec::with_capacity(70_010)).await;
            res.unwrap();
            assert!(got == pattern(70_010, 3));
        });
    }
}

both_drivers! {
    fn a_dropped_write_all_zc_keeps_its_buffer_until_the_kernel_is_done() {
        // Every test here takes the lock: one of them counts fds.
        let _serial = serial();
        let _dog = watchdog(Duration::from_secs(60), "dropped zero-copy sends");
        let base = open_fds();
        support::run(async {
            for round in 0..20 {
                let (tx, rx) = pair().await;
                // 4 MiB to a peer that does not read yet: the send stalls.
                let len = 4 << 20;
                let res = timeout(Duration::from_millis(2), tx.write_all_zc(pattern(len, round)))
                    .await;
                // Reuse freed memory: garbage where the buffer was, if it
                // had been freed early.
                let junk: Vec<Vec<u8>> = (0..64).map(|_| vec![0xEE; 64 << 10]).collect();
                drop(tx);
                let (res2, got) = read_to_end(&rx).await;
                res2.unwrap();
                drop(junk);
                let want = pattern(len, round);
                if res.is_ok() {
                    assert_eq!(got.len(), len, "finished before the deadline");
                }
                assert!(got.len() <= len);
                assert!(got == want[..got.len()], "what arrived is the buffer's prefix");
            }
        });
        assert!(open_fds() <= base, "fds leaked: {base} then {}", open_fds());
    }
}

/// Reads until EOF (bounded: 64 MiB).
async fn read_to_end(s: &TcpStream) -> (io::Result<()>, Vec<u8>) {
    let mut out = Vec::new();
    while out.len() < 64 << 20 {
        let (res, buf) = s.read(Vec::with_capacity(256 << 10)).await;
        match res {
            Ok(0) => return (Ok(()), out),
            Ok(_) => out.extend_from_slice(&buf),
            Err(e) => return (Err(e), out),
        }
    }
    (Ok(()), out)
}

#[test]
fn disable_opcodes_refuses_unknown_names() {
    let _serial = serial();
    let err = corio::Builder::new()
        .disable_opcodes(["SEND_ZC", "NOT_AN_OPCODE"])
        .build()
        .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    assert!(err.to_string().contains("NOT_AN_OPCODE"), "{err}");
}

/// CQEs reaped for one `send_zc` of 1 KiB on an idle connection.
fn cqes_per_send(rt: corio::Runtime) -> u64 {
    rt.block_on(async {
        let (tx, rx) = pair().await;
        let before = corio::runtime::stats().cqes_reaped;
        let (res, _) = tx.send_zc(vec![1u8; 1024]).await;
        assert_eq!(res.unwrap(), 1024);
        let cqes = corio::runtime::stats().cqes_reaped - before;
        drop(rx);
        cqes
    })
}

#[test]
fn on_io_uring_a_zero_copy_send_ends_with_its_notification() {
    let _serial = serial();
    let Some(rt) = support::uring_runtime() else {
        return;
    };
    let zc = corio::probe()
        .opcodes
        .iter()
        .any(|o| o.name == "SEND_ZC" && o.supported);
    if !zc {
        eprintln!("skipped: the kernel lacks IORING_OP_SEND_ZC");
        return;
    }
    let udp = rt.block_on(async {
        let a = corio::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = corio::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let before = corio::runtime::stats().cqes_reaped;
        let (res, _) = a.send_to_zc(vec![3u8; 1200], b.local_addr().unwrap()).await;
        assert_eq!(res.unwrap(), 1200);
        corio::runtime::stats().cqes_reaped - before
    });
    assert_eq!(udp, 2, "a datagram's result, then the notification");
    assert_eq!(cqes_per_send(rt), 2, "the result, then the notification");
    let off = corio::Builder::new()
        .driver(corio::DriverKind::Uring)
        .disable_opcodes(["SEND_ZC"])
        .build()
        .unwrap();
    assert_eq!(cqes_per_send(off), 1, "a plain send");
}

#[test]
fn the_probe_lists_the_opcodes_with_fallbacks() {
    let _serial = serial();
    let p = corio::probe();
    if !support::uring_available() {
        eprintln!("skipped: io_uring is not available here");
        return;
    }
    for name in ["SEND_ZC", "SPLICE", "LINK_TIMEOUT"] {
        let s = p.opcodes.iter().find(|s| s.name == name);
        assert!(s.is_some(), "{name} missing from corio::probe()");
    }
}

both_drivers! {
    fn write_all_zc_works_on_a_socket_in_nonblocking_mode() {
        let _serial = serial();
        let _dog = watchdog(Duration::from_secs(60), "zero-copy nonblocking");
        support::run(async {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            let std_tx = std::net::TcpStream::connect(addr).unwrap();
            std_tx.set_nonblocking(true).unwrap();
            let tx = TcpStream::from_std(std_tx);
            let (rx, _) = listener.accept().await.unwrap();
            let len = 4 << 20;
            let reader = corio::spawn(async move {
                let (res, buf) = rx.read_exact(Vec::with_capacity(len)).await;
                res.unwrap();
                buf
            });
            let (res, back) = tx.write_all_zc(pattern(len, 9)).await;
            res.unwrap();
            assert!(reader.await.unwrap() == back);
        });
    }
}

/// Datagrams of several sizes with `send_to_zc`, each received whole.
async fn datagrams() {
    let a = corio::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let b = corio::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let to = b.local_addr().unwrap();
    for (n, len) in [1usize, 1200, 8000, 60_000].into_iter().enumerate() {
        let (res, back) = a.send_to_zc(pattern(len, n), to).await;
        assert_eq!(res.unwrap(), len);
        let (res, got) = b.recv_from(vec![0u8; 65_536]).await;
        let (m, from) = res.unwrap();
        assert_eq!(from, a.local_addr().unwrap());
        assert!(got[..m] == back[..], "{len}-byte datagram intact");
    }
}

both_drivers! {
    fn send_to_zc_delivers_whole_datagrams() {
        let _serial = serial();
        support::run(datagrams());
        builder().disable_opcodes(["SEND_ZC"]).build().unwrap().block_on(datagrams());
    }
}
