//! TCP basics: echo round trips, split halves, std interop, IPv6.

mod support;

use std::io::{Read, Write};
use std::time::Duration;

use corio::IoBuf;
use corio::net::{TcpListener, TcpStream};

both_drivers! {
fn echo_round_trip() {
    support::run(async {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = corio::spawn(async move {
            let (s, _) = listener.accept().await.unwrap();
            let mut buf = vec![0u8; 1024];
            loop {
                let (res, b) = s.read(buf).await;
                let n = res.unwrap();
                if n == 0 {
                    break;
                }
                let (res, b) = s.write_all(b.slice(..n)).await;
                res.unwrap();
                buf = b.into_inner();
            }
        });
        let c = TcpStream::connect(addr).await.unwrap();
        c.set_nodelay(true).unwrap();
        assert!(c.nodelay().unwrap());
        assert_eq!(c.peer_addr().unwrap(), addr);
        for i in 0..100u32 {
            let msg = format!("hello {i}").into_bytes();
            let len = msg.len();
            let (res, _) = c.write_all(msg).await;
            res.unwrap();
            let (res, buf) = c.read_exact(Vec::with_capacity(len)).await;
            res.unwrap();
            assert_eq!(buf, format!("hello {i}").into_bytes());
        }
        c.shutdown(std::net::Shutdown::Write).await.unwrap();
        server.await.unwrap();
    });
}
}

both_drivers! {
fn split_halves_in_two_tasks() {
    support::run(async {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let t = std::thread::spawn(move || {
            let mut s = std::net::TcpStream::connect(addr).unwrap();
            let mut buf = [0u8; 5];
            s.read_exact(&mut buf).unwrap();
            s.write_all(&buf).unwrap();
        });
        let (s, _) = listener.accept().await.unwrap();
        let (r, w) = s.into_split();
        let writer = corio::spawn(async move {
            w.write_all(b"abcde".as_slice()).await.0.unwrap();
            w
        });
        let reader = corio::spawn(async move {
            let (res, buf) = r.read_exact(vec![0u8; 5]).await;
            res.unwrap();
            assert_eq!(&buf, b"abcde");
            r
        });
        let w = writer.await.unwrap();
        let r = reader.await.unwrap();
        let s = r.reunite(w).unwrap();
        assert!(s.local_addr().is_ok());
        t.join().unwrap();
    });
}
}

both_drivers! {
fn writev_sends_all_buffers() {
    support::run(async {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let c = TcpStream::connect(addr).await.unwrap();
        let (s, _) = listener.accept().await.unwrap();
        let (res, bufs) = c.writev(vec![b"ab".to_vec(), b"cde".to_vec()]).await;
        assert_eq!(res.unwrap(), 5);
        assert_eq!(bufs.len(), 2);
        let (res, buf) = s.read_exact(vec![0u8; 5]).await;
        res.unwrap();
        assert_eq!(&buf, b"abcde");
    });
}
}

both_drivers! {
fn ipv6_loopback() {
    support::run(async {
        let Ok(listener) = TcpListener::bind("[::1]:0") else {
            eprintln!("skipped: no IPv6 loopback on this machine");
            return;
        };
        let addr = listener.local_addr().unwrap();
        assert!(addr.is_ipv6());
        let c = TcpStream::connect(addr).await.unwrap();
        let (s, peer) = listener.accept().await.unwrap();
        assert!(peer.is_ipv6());
        c.write_all(b"v6".as_slice()).await.0.unwrap();
        let (res, buf) = s.read_exact(vec![0u8; 2]).await;
        res.unwrap();
        assert_eq!(&buf, b"v6");
    });
}
}

both_drivers! {
fn from_std_nonblocking_socket_still_works() {
    support::run(async {
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        std_listener.set_nonblocking(true).unwrap();
        let addr = std_listener.local_addr().unwrap();
        let listener = TcpListener::from_std(std_listener);
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(30));
            let mut s = std::net::TcpStream::connect(addr).unwrap();
            std::thread::sleep(Duration::from_millis(30));
            s.write_all(b"late").unwrap();
            let mut back = [0u8; 4];
            s.read_exact(&mut back).unwrap();
            assert_eq!(&back, b"late");
        });
        // Accept and read both hit EAGAIN first and must be re-armed.
        let (s, _) = listener.accept().await.unwrap();
        let std_stream = s.into_std().unwrap();
        std_stream.set_nonblocking(true).unwrap();
        let s = TcpStream::from_std(std_stream);
        let (res, buf) = s.read_exact(vec![0u8; 4]).await;
        res.unwrap();
        s.write_all(buf).await.0.unwrap();
        t.join().unwrap();
    });
}
}

both_drivers! {
fn end_of_stream_seen_with_the_last_bytes_is_not_lost() {
    // The peer's bytes and its FIN arrive together while the reader is
    // between reads. The poll driver forgets readiness after a short read;
    // the FIN it already saw must still let the next read return 0.
    support::run(async {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        for pooled in [false, true] {
            let mut peer = std::net::TcpStream::connect(addr).unwrap();
            let (s, _) = listener.accept().await.unwrap();
            // A read that waits (so the fd is known to the driver), then
            // gives up.
            let r = corio::time::timeout(Duration::from_millis(10), s.read(vec![0u8; 64])).await;
            assert!(r.is_err(), "nothing was sent yet");
            peer.write_all(&[7u8; 100]).unwrap();
            peer.shutdown(std::net::Shutdown::Write).unwrap();
            // Let the driver take the events while no read is pending.
            corio::time::sleep(Duration::from_millis(30)).await;
            let limit = Duration::from_secs(5);
            let first = if pooled {
                let b = corio::time::timeout(limit, s.recv_pooled()).await.expect("data");
                b.unwrap().expect("bytes, not the end").len()
            } else {
                let (res, _) = corio::time::timeout(limit, s.read(vec![0u8; 4096])).await.expect("data");
                res.unwrap()
            };
            assert_eq!(first, 100, "pooled {pooled}");
            let end = if pooled {
                let b = corio::time::timeout(limit, s.recv_pooled()).await;
                b.expect("the end of stream was lost").unwrap().map_or(0, |b| b.len())
            } else {
                let r = corio::time::timeout(limit, s.read(vec![0u8; 4096])).await;
                r.expect("the end of stream was lost").0.unwrap()
            };
            assert_eq!(end, 0, "pooled {pooled}");
        }
    });
}
}
