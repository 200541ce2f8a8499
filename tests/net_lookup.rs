//! Name resolution: `lookup_host` on the blocking pool, connect by name,
//! trying each address in turn, per-attempt connect timeouts.

mod support;

use std::net::{SocketAddr, TcpListener as StdListener};
use std::sync::mpsc;
use std::time::Duration;

use corio::net::{TcpListener, TcpStream, UdpSocket, lookup_host};
use corio::time::{sleep, timeout};

/// Bound for every wait here: a hang fails the test instead.
const GUARD: Duration = Duration::from_secs(10);

/// A runtime whose blocking pool has one thread, and a job that holds that
/// thread until the returned sender is dropped (or sent to).
fn hold_the_only_pool_thread() -> (corio::Runtime, mpsc::Sender<()>) {
    let rt = support::builder().max_blocking_threads(1).build().unwrap();
    let (tx, rx) = mpsc::channel::<()>();
    rt.block_on(async {
        let (started_tx, started_rx) = mpsc::channel();
        // Detached: it runs until `tx` goes.
        drop(corio::spawn_blocking(move || {
            started_tx.send(()).unwrap();
            let _ = rx.recv();
        }));
        while started_rx.try_recv().is_err() {
            sleep(Duration::from_millis(1)).await;
        }
    });
    (rt, tx)
}

/// An address on 127.0.0.1 where nothing listens.
fn closed_port() -> SocketAddr {
    let l = StdListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

both_drivers! {
fn other_tasks_run_while_a_lookup_waits_for_the_pool() {
    // Two tests count the process's fds: every test here holds the lock.
    let _serial = support::serial();
    let (rt, release) = hold_the_only_pool_thread();
    rt.block_on(async {
        // The lookup queues behind the held pool thread: were it run on the
        // runtime's thread, it would finish at once instead.
        let lookup = corio::spawn(async { lookup_host("localhost:80").await });
        let ticker = corio::spawn(async {
            for _ in 0..20 {
                sleep(Duration::from_millis(1)).await;
            }
        });
        timeout(GUARD, ticker).await.unwrap().unwrap();
        assert!(!lookup.is_finished(), "the lookup waits for the pool, not the runtime");
        release.send(()).unwrap();
        let addrs: Vec<SocketAddr> = timeout(GUARD, lookup).await.unwrap().unwrap().unwrap().collect();
        assert!(!addrs.is_empty());
        assert!(addrs.iter().all(|a| a.ip().is_loopback() && a.port() == 80), "{addrs:?}");
    });
}
}

both_drivers! {
fn literal_addresses_need_no_pool() {
    // Two tests count the process's fds: every test here holds the lock.
    let _serial = support::serial();
    let (rt, _held) = hold_the_only_pool_thread();
    rt.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let accept = corio::spawn(async move { listener.accept().await.map(drop) });
        let c = timeout(GUARD, TcpStream::connect(addr.to_string())).await.unwrap();
        c.unwrap();
        accept.await.unwrap().unwrap();
        let addrs: Vec<_> = timeout(GUARD, lookup_host(("::1", 7))).await.unwrap().unwrap().collect();
        assert_eq!(addrs, vec!["[::1]:7".parse().unwrap()]);

        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = format!("127.0.0.1:{}", b.local_addr().unwrap().port());
        let (res, _) = timeout(GUARD, a.send_to(b"x".as_slice(), to.as_str())).await.unwrap();
        assert_eq!(res.unwrap(), 1);
        timeout(GUARD, a.connect(to)).await.unwrap().unwrap();
    });
}
}

both_drivers! {
fn connect_and_send_by_name() {
    // Two tests count the process's fds: every test here holds the lock.
    let _serial = support::serial();
    support::run(async {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let accept = corio::spawn(async move { listener.accept().await.map(drop) });
        let c = timeout(GUARD, TcpStream::connect(("localhost", port))).await.unwrap().unwrap();
        assert!(c.peer_addr().unwrap().ip().is_loopback());
        accept.await.unwrap().unwrap();

        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = server.local_addr().unwrap().port();
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        let (res, _) = client.send_to(b"by name".as_slice(), format!("localhost:{port}")).await;
        assert_eq!(res.unwrap(), 7);
        let (res, buf) = timeout(GUARD, server.recv_from(vec![0u8; 16])).await.unwrap();
        assert_eq!(&buf[..res.unwrap().0], b"by name");
        client.connect(("localhost", port)).await.unwrap();
        assert_eq!(client.peer_addr().unwrap().port(), port);
    });
}
}

both_drivers! {
fn connect_tries_each_address_in_turn() {
    // Two tests count the process's fds: every test here holds the lock.
    let _serial = support::serial();
    support::run(async {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let good = listener.local_addr().unwrap();
        let closed = closed_port();
        let accept = corio::spawn(async move { listener.accept().await.map(drop) });
        let addrs = [closed, good];
        let c = timeout(GUARD, TcpStream::connect(&addrs[..])).await.unwrap().unwrap();
        assert_eq!(c.peer_addr().unwrap(), good);
        accept.await.unwrap().unwrap();
        // All refused: the last address's error.
        let e = TcpStream::connect(&[closed, closed][..]).await.unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused);
    });
}
}

both_drivers! {
fn connect_timeout_bounds_each_attempt() {
    let _serial = support::serial();
    let before = support::open_fds();
    support::run(async {
        // A listener with a full backlog: the kernel drops further SYNs, so a
        // connect to it hangs (until TCP gives up, minutes later).
        let full = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        full.bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into()).unwrap();
        full.listen(0).unwrap();
        let hang = full.local_addr().unwrap().as_socket().unwrap();
        let filler = std::net::TcpStream::connect(hang).unwrap();

        let per_attempt = Duration::from_millis(100);
        let e = timeout(GUARD, TcpStream::connect_timeout(hang, per_attempt))
            .await
            .unwrap()
            .unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::TimedOut, "{e}");

        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let good = listener.local_addr().unwrap();
        let accept = corio::spawn(async move { listener.accept().await.map(drop) });
        let addrs = [hang, good];
        let c = timeout(GUARD, TcpStream::connect_timeout(&addrs[..], per_attempt))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(c.peer_addr().unwrap(), good);
        accept.await.unwrap().unwrap();
        drop((c, filler, full));
    });
    // The sockets of the timed-out attempts are closed.
    assert_eq!(support::open_fds(), before);
}
}

both_drivers! {
fn bad_addresses_are_invalid_input() {
    // Two tests count the process's fds: every test here holds the lock.
    let _serial = support::serial();
    support::run(async {
        for bad in ["localhost", "127.0.0.1", "localhost:http", "[::1]:99999"] {
            let e = TcpStream::connect(bad).await.unwrap_err();
            assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput, "{bad}");
            let e = lookup_host(bad).await.err().expect("an error");
            assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput, "{bad}");
        }
        let empty: &[SocketAddr] = &[];
        let e = TcpStream::connect(empty).await.unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
    });
}
}

both_drivers! {
fn dropping_a_lookup_midway_leaks_nothing() {
    let _serial = support::serial();
    let before = support::open_fds();
    {
        let (rt, release) = hold_the_only_pool_thread();
        rt.block_on(async {
            for _ in 0..50 {
                let r = timeout(Duration::from_millis(1), lookup_host("localhost:1")).await;
                assert!(r.is_err(), "the pool is held: the lookup cannot finish");
            }
            release.send(()).unwrap();
            // The queued lookups run now, for nobody.
            let addrs: Vec<_> = timeout(GUARD, lookup_host("localhost:2")).await.unwrap().unwrap().collect();
            assert!(!addrs.is_empty());
        });
    }
    assert_eq!(support::open_fds(), before);
}
}
