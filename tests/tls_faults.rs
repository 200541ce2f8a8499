//! Bad clients of a corio TLS server: plain text, random garbage and stalled connections get handshake errors or timeouts while other clients are served.
#![cfg(feature = "tls")]

mod support;
mod tls_support;

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use corio::IoBuf;
use corio::net::{TcpListener, TcpStream};
use corio::tls::rustls;
use corio::tls::{TlsAcceptor, TlsConnector};
use tls_support::{ANY_VERSION, TIMEOUT, client_config, rustls_error, server_config};

/// How each handshake ended, in accept order.
type Outcomes = Rc<std::cell::RefCell<Vec<io::Result<()>>>>;

/// Serves TLS on `l` (each connection in its own task): a completed
/// handshake echoes one read; every outcome is recorded.
fn serve(l: TcpListener, acceptor: TlsAcceptor, outcomes: Outcomes) -> corio::JoinHandle<()> {
    corio::spawn(async move {
        loop {
            let Ok((tcp, _)) = l.accept().await else {
                return;
            };
            let (acceptor, outcomes) = (acceptor.clone(), outcomes.clone());
            corio::spawn(async move {
                match acceptor.accept(tcp).await {
                    Ok(mut tls) => {
                        outcomes.borrow_mut().push(Ok(()));
                        let (res, buf) = tls.read(vec![0u8; 1024]).await;
                        if let Ok(n) = res {
                            let (_, _) = tls.write_all(buf.slice(..n)).await;
                        }
                        let _ = tls.shutdown().await;
                    }
                    Err(e) => outcomes.borrow_mut().push(Err(e)),
                }
            });
        }
    })
}

/// A real client: handshake, one echo, clean close.
async fn good_client(addr: SocketAddr) {
    let connector = TlsConnector::from(client_config(ANY_VERSION, &[]));
    let tcp = TcpStream::connect(addr).await.unwrap();
    let mut tls = connector.connect("localhost", tcp).await.unwrap();
    let (res, _) = tls.write_all(b"ping".as_slice()).await;
    res.unwrap();
    let (res, buf) = tls.read_exact(vec![0u8; 4]).await;
    res.unwrap();
    assert_eq!(buf, b"ping");
}

/// Sends `bytes`, half-closes, and reads what comes back until the server
/// closes (bounded by `TIMEOUT`).
async fn send_junk(addr: SocketAddr, bytes: Vec<u8>) -> Vec<u8> {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (res, _) = tcp.write_all(bytes).await;
    // The server may already have closed (and reset) on an early byte.
    if res.is_ok() {
        let _ = tcp.shutdown(std::net::Shutdown::Write).await;
    }
    let mut got = Vec::new();
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match corio::time::timeout(left, tcp.read(vec![0u8; 4096])).await {
            Ok((Ok(0), _)) | Ok((Err(_), _)) => return got,
            Ok((Ok(n), buf)) => got.extend_from_slice(&buf[..n]),
            Err(_) => panic!("server kept a junk connection open"),
        }
    }
}

fn xorshift(s: &mut u64) -> u64 {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    *s
}

both_drivers! {
    fn plain_text_gets_a_handshake_error() {
        support::run(async {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = l.local_addr().unwrap();
            let outcomes = Outcomes::default();
            let acceptor = TlsAcceptor::from(server_config(ANY_VERSION, &[]));
            let server = serve(l, acceptor, outcomes.clone());

            let reply = send_junk(addr, b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n".to_vec()).await;
            // At most an alert record (content type 21) comes back.
            assert!(reply.is_empty() || reply[0] == 21, "reply: {reply:?}");
            good_client(addr).await;

            let outcomes = outcomes.borrow();
            assert_eq!(outcomes.len(), 2);
            let err = outcomes[0].as_ref().unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{err}");
            assert!(
                matches!(rustls_error(err), Some(rustls::Error::InvalidMessage(_))),
                "{err:?}"
            );
            assert!(outcomes[1].is_ok());
            server.abort();
        });
    }
}

both_drivers! {
    fn random_garbage_gets_handshake_errors() {
        support::run(async {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = l.local_addr().unwrap();
            let outcomes = Outcomes::default();
            let acceptor = TlsAcceptor::from(server_config(ANY_VERSION, &[]));
            let server = serve(l, acceptor, outcomes.clone());

            let mut seed = 0x2545_f491_4f6c_dd1d_u64;
            const N: usize = 40;
            for i in 0..N {
                let len = 1 + (xorshift(&mut seed) % 3000) as usize;
                let mut junk: Vec<u8> = (0..len).map(|_| xorshift(&mut seed) as u8).collect();
                // Every other one looks like a handshake record at first.
                if i % 2 == 1 {
                    junk.splice(0..0, [22, 3, 1, (len >> 8) as u8, len as u8]);
                }
                send_junk(addr, junk).await;
                // The server keeps serving real clients in between.
                if i % 10 == 9 {
                    good_client(addr).await;
                }
            }

            let outcomes = outcomes.borrow();
            assert_eq!(outcomes.len(), N + N / 10);
            let mut kinds = std::collections::BTreeMap::new();
            for (i, o) in outcomes.iter().enumerate() {
                if i % 11 == 10 {
                    assert!(o.is_ok(), "real client {i}: {o:?}");
                    continue;
                }
                let err = o.as_ref().expect_err("garbage completed a handshake");
                // Not TLS, or ends mid-record: never a timeout or a success.
                assert!(
                    matches!(err.kind(), io::ErrorKind::InvalidData | io::ErrorKind::UnexpectedEof),
                    "connection {i}: {err:?}"
                );
                *kinds.entry(format!("{:?}", err.kind())).or_insert(0) += 1;
            }
            println!("garbage outcomes: {kinds:?}");
            server.abort();
        });
    }
}

/// Connections that stall before or inside the handshake: each is dropped
/// at the handshake timeout, in its own task, while a real client is served
/// at once.
///
/// The server runs on its own thread; the stalled connections and the real
/// client are blocking std sockets and rustls on the test thread.
fn stalled_handshakes(stalled: usize) {
    const HANDSHAKE_TIMEOUT: Duration = Duration::from_millis(300);
    let driver = support::driver();
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = corio::sync::oneshot::channel::<()>();
    let timed_out = Arc::new(Mutex::new(0usize));
    let server = {
        let timed_out = timed_out.clone();
        std::thread::spawn(move || {
            let rt = corio::Builder::new().driver(driver).build().unwrap();
            rt.block_on(async move {
                let l = TcpListener::bind("127.0.0.1:0").unwrap();
                addr_tx.send(l.local_addr().unwrap()).unwrap();
                let acceptor = TlsAcceptor::from(server_config(ANY_VERSION, &[]))
                    .handshake_timeout(HANDSHAKE_TIMEOUT);
                let accept_loop = corio::spawn(async move {
                    loop {
                        let Ok((tcp, _)) = l.accept().await else {
                            return;
                        };
                        let (acceptor, timed_out) = (acceptor.clone(), timed_out.clone());
                        corio::spawn(async move {
                            match acceptor.accept(tcp).await {
                                Ok(mut tls) => {
                                    let (res, buf) = tls.read(vec![0u8; 64]).await;
                                    if let Ok(n) = res {
                                        let _ = tls.write_all(buf.slice(..n)).await;
                                    }
                                }
                                Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                                    *timed_out.lock().unwrap() += 1;
                                }
                                Err(e) => panic!("unexpected handshake error: {e}"),
                            }
                        });
                    }
                });
                let _ = stop_rx.await;
                accept_loop.abort();
            });
        })
    };
    let addr: SocketAddr = addr_rx.recv_timeout(TIMEOUT).unwrap();

    // Most say nothing (never a ClientHello); one in ten stops inside a
    // record header.
    let opened = Instant::now();
    let mut quiet: Vec<std::net::TcpStream> = (0..stalled)
        .map(|i| {
            let mut s = std::net::TcpStream::connect(addr).unwrap();
            if i % 10 == 0 {
                s.write_all(&[22, 3, 1, 0, 200, 1, 0]).unwrap();
            }
            s
        })
        .collect();
    let opened_in = opened.elapsed();

    // A real client, right behind them.
    let config = client_config(ANY_VERSION, &[]);
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let start = Instant::now();
    let conn = rustls::ClientConnection::new(config.clone(), name.clone()).unwrap();
    let tcp = std::net::TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(TIMEOUT)).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    tls.write_all(b"ping").unwrap();
    let mut back = [0u8; 4];
    tls.read_exact(&mut back).unwrap();
    let served_in = start.elapsed();
    assert_eq!(&back, b"ping");
    println!(
        "{stalled} stalled connections opened in {opened_in:?}; a real client connected, \
         handshook and got an echo in {served_in:?}"
    );
    // The issue asks for 100 ms; this is a hang guard, generous for a
    // loaded 2-core machine. The figure above is the measurement.
    assert!(
        served_in < Duration::from_secs(2),
        "real client waited {served_in:?} behind {stalled} stalled handshakes"
    );

    // A few more stop mid-handshake: a whole ClientHello, then no answer to
    // the server's flight.
    const MID: usize = 10;
    for _ in 0..MID {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        let mut conn = rustls::ClientConnection::new(config.clone(), name.clone()).unwrap();
        let mut hello = Vec::new();
        conn.write_tls(&mut hello).unwrap();
        s.write_all(&hello).unwrap();
        quiet.push(s);
    }

    // Every stalled connection is closed by the server at the timeout.
    let mut first_closed = None;
    for (i, mut s) in quiet.into_iter().enumerate() {
        s.set_read_timeout(Some(TIMEOUT)).unwrap();
        // The server's flight may come first (after a ClientHello), then the close.
        let mut b = [0u8; 16 * 1024];
        let mut got = 0;
        loop {
            match s.read(&mut b) {
                Ok(0) => break,
                Ok(n) if got + n < 64 * 1024 => got += n,
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => break,
                other => panic!("stalled connection {i}: expected a close, got {other:?}"),
            }
        }
        // Only those that sent a ClientHello got the server's flight.
        assert_eq!(
            got > 0,
            i >= stalled,
            "stalled connection {i} got {got} bytes"
        );
        first_closed.get_or_insert(opened.elapsed());
    }
    let all_closed = opened.elapsed();
    let first_closed = first_closed.unwrap_or_default();
    println!("first stalled connection closed after {first_closed:?}, all by {all_closed:?}");
    assert!(
        first_closed >= HANDSHAKE_TIMEOUT - Duration::from_millis(50),
        "closed before the handshake timeout: {first_closed:?}"
    );
    assert!(
        all_closed < opened_in + HANDSHAKE_TIMEOUT + Duration::from_secs(5),
        "stalled connections closed late: {all_closed:?}"
    );
    // The server counts a timeout just after closing the socket: give the
    // last few a moment.
    let deadline = Instant::now() + TIMEOUT;
    while *timed_out.lock().unwrap() < stalled + MID && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(*timed_out.lock().unwrap(), stalled + MID);
    stop_tx.send(()).unwrap();
    server.join().unwrap();
}

both_drivers! {
    fn stalled_handshakes_time_out_in_their_own_tasks() {
        stalled_handshakes(1_000);
    }
}
