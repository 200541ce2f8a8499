//! Fuzzing corio's TLS path: a `TlsAcceptor` fed mutated handshakes (a
//! real ClientHello, records of every content type, plain text, random
//! bytes), and a `TlsStream` fed garbage records after a real handshake.
//! Every input must end in an error (or, after a handshake, an error or the
//! end of stream) — no panic, no hang (the handshake timeout and a watchdog
//! bound it), no fd left open.
//!
//! `CORIO_FUZZ_SECS=600 cargo test --test fuzz_tls` for a long run (split
//! between the two drivers).
#![cfg(feature = "tls")]

mod fuzz_support;
mod support;
mod tls_support;

use std::cell::RefCell;
use std::io::{ErrorKind, Write};
use std::time::Duration;

use corio::net::{TcpListener, TcpStream};
use corio::tls::rustls::{self, ClientConnection};
use corio::tls::{TlsAcceptor, TlsConnector};
use tls_support::{ANY_VERSION, TLS12, TLS13, client_config, server_config};

/// The first flight of a real client (its ClientHello records).
fn client_hello(versions: &[&'static rustls::SupportedProtocolVersion], alpn: &[&str]) -> Vec<u8> {
    let mut c = ClientConnection::new(
        client_config(versions, alpn),
        "localhost".try_into().unwrap(),
    )
    .unwrap();
    let mut out = Vec::new();
    while c.wants_write() {
        c.write_tls(&mut out).unwrap();
    }
    out
}

/// A TLS record: content type, version 3.3, length, payload.
fn record(kind: u8, payload: &[u8]) -> Vec<u8> {
    let mut r = vec![kind, 3, 3, (payload.len() >> 8) as u8, payload.len() as u8];
    r.extend_from_slice(payload);
    r
}

fn handshake_corpus() -> Vec<Vec<u8>> {
    let hello = client_hello(ANY_VERSION, &["h2", "http/1.1"]);
    let mut two = hello.clone();
    two.extend(record(20, &[1]));
    vec![
        hello,
        client_hello(TLS12, &[]),
        client_hello(TLS13, &["x"]),
        two,
        record(21, &[2, 40]),
        record(20, &[1]),
        record(23, &[0u8; 64]),
        record(22, &[]),
        record(22, &[1, 0, 0, 200, 3, 3]),
        b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n".to_vec(),
        Vec::new(),
    ]
}

fn record_corpus() -> Vec<Vec<u8>> {
    vec![
        record(23, &[7u8; 40]),
        record(21, &[1, 0]),
        record(21, &[2, 10]),
        record(22, &[4, 0, 0, 4, 0, 0, 0, 0]),
        record(20, &[1]),
        record(24, &[1, 0, 16]),
        [record(23, &[1u8; 17000]), record(23, &[])].concat(),
    ]
}

/// Sends `input` as a client's first bytes, half-closes, and runs the
/// server's handshake on it: it must fail.
async fn handshake_with(listener: &TcpListener, acceptor: &TlsAcceptor, input: &[u8]) {
    let mut client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    // Loopback's socket buffers take these few KiB at once.
    client.write_all(input).unwrap();
    client.shutdown(std::net::Shutdown::Write).unwrap();
    let (tcp, _) = listener.accept().await.unwrap();
    match acceptor.accept(tcp).await {
        Ok(_) => panic!("a handshake completed on fuzz input"),
        Err(e) => assert!(
            matches!(
                e.kind(),
                ErrorKind::InvalidData
                    | ErrorKind::UnexpectedEof
                    | ErrorKind::ConnectionReset
                    | ErrorKind::ConnectionAborted
                    | ErrorKind::BrokenPipe
                    | ErrorKind::TimedOut
            ),
            "handshake failed with {e:?}"
        ),
    }
    drop(client);
}

/// A real handshake, then `garbage` written raw under the client's TLS
/// session: the server's reads must end in an error or end of stream.
async fn garbage_after_handshake(
    listener: &TcpListener,
    acceptor: &TlsAcceptor,
    connector: &TlsConnector,
    garbage: &[u8],
) {
    let addr = listener.local_addr().unwrap();
    let client = corio::spawn({
        let connector = connector.clone();
        let garbage = garbage.to_vec();
        async move {
            let tcp = TcpStream::connect(addr).await.unwrap();
            let tls = connector.connect("localhost", tcp).await.unwrap();
            let raw = tls.get_ref();
            let _ = raw.write_all(garbage).await;
            let _ = raw.shutdown(std::net::Shutdown::Write).await;
            // Wait for the server to give up on the stream.
            let _ = corio::time::timeout(Duration::from_secs(5), raw.read(vec![0u8; 64])).await;
        }
    });
    let (tcp, _) = listener.accept().await.unwrap();
    // The client is done with its handshake before the server has read
    // its last flight: garbage right behind it can still fail the server's.
    let mut tls = match acceptor.accept(tcp).await {
        Ok(tls) => tls,
        Err(e) => {
            assert_eq!(e.kind(), ErrorKind::InvalidData, "{e:?}");
            client.await.unwrap();
            return;
        }
    };
    // Garbage never decrypts to data: the read ends in an error or the end
    // of stream.
    let (res, _) = tls.read(vec![0u8; 4096]).await;
    if let Ok(n) = res {
        assert_eq!(n, 0, "{n} bytes of plaintext out of garbage");
    }
    drop(tls);
    client.await.unwrap();
}

both_drivers! {
fn tls_survives_mutated_handshakes_and_garbage_records() {
    let _serial = support::serial();
    let fds = support::open_fds();
    let budget = fuzz_support::budget(Duration::from_secs(4)) / 2;
    let _dog = support::watchdog(budget + Duration::from_secs(60), "the TLS fuzz target");
    let rt = support::runtime();
    rt.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let acceptor = TlsAcceptor::from(server_config(ANY_VERSION, &["h2"]))
            .handshake_timeout(Duration::from_secs(2));
        let connector = TlsConnector::from(client_config(ANY_VERSION, &["h2"]));
        let handshakes = handshake_corpus();
        let records = record_corpus();
        let mut rng = fuzz_support::Rng::new(fuzz_support::seed() ^ support::driver() as u64);
        let start = std::time::Instant::now();
        let (mut shakes, mut after) = (0u64, 0u64);
        let failed: RefCell<Option<Vec<u8>>> = RefCell::new(None);
        while start.elapsed() < budget {
            // One in ten: a real session, then garbage.
            if rng.below(10) == 0 {
                let input = fuzz_support::mutate(&mut rng, &records, 20_000);
                *failed.borrow_mut() = Some(input.clone());
                garbage_after_handshake(&listener, &acceptor, &connector, &input).await;
                after += 1;
            } else {
                let input = fuzz_support::mutate(&mut rng, &handshakes, 16_000);
                *failed.borrow_mut() = Some(input.clone());
                handshake_with(&listener, &acceptor, &input).await;
                shakes += 1;
            }
        }
        failed.borrow_mut().take();
        eprintln!(
            "fuzz tls ({:?}): {shakes} handshakes and {after} sessions fed garbage in {:?}",
            support::driver(),
            start.elapsed()
        );
        assert!(shakes > 50, "only {shakes} inputs ran");
    });
    drop(rt);
    assert_eq!(support::open_fds(), fds, "fds leaked");
}
}
