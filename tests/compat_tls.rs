//! `Compat<TlsStream<TcpStream>>` through the `tokio::io` traits: echo with
//! `close_notify`, a stream that ends without it, garbage, reads under
//! timeout storms, handing the session back, on both drivers.
#![cfg(all(feature = "tokio-io", feature = "tls"))]

mod support;
mod tls_support;

use std::io;
use std::time::{Duration, Instant};

use corio::compat::Compat;
use corio::net::{TcpListener, TcpStream};
use corio::time::timeout;
use corio::tls::{TlsAcceptor, TlsConnector, TlsStream};
use tls_support::{ANY_VERSION, TLS12, TLS13, client_config, server_config};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn pattern(i: usize) -> u8 {
    (i.wrapping_mul(131) ^ (i >> 11)) as u8
}

/// A TLS server (corio, in a task) and a connected TLS client.
async fn tls_pair(
    versions: &'static [&'static corio::tls::rustls::SupportedProtocolVersion],
) -> (TlsStream<TcpStream>, TlsStream<TcpStream>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = TlsAcceptor::from(server_config(versions, &[]));
    let server = corio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        acceptor.accept(tcp).await.unwrap()
    });
    let connector = TlsConnector::from(client_config(versions, &[]));
    let tcp = TcpStream::connect(addr).await.unwrap();
    let client = connector.connect("localhost", tcp).await.unwrap();
    (server.await.unwrap(), client)
}

both_drivers! {
fn tls_echo_byte_exact_with_close_notify() {
    support::run(async {
        for versions in [TLS13, TLS12] {
            let (server, client) = tls_pair(versions).await;
            let echo = corio::spawn(async move {
                let mut io = Compat::new(server);
                let mut buf = vec![0u8; 7000];
                let mut total = 0;
                loop {
                    let n = io.read(&mut buf).await.unwrap();
                    if n == 0 {
                        break;
                    }
                    io.write_all(&buf[..n]).await.unwrap();
                    total += n;
                }
                io.shutdown().await.unwrap();
                total
            });
            let (mut r, mut w) = tokio::io::split(Compat::new(client));
            const LEN: usize = 2 << 20;
            let writer = corio::spawn(async move {
                let data: Vec<u8> = (0..LEN).map(pattern).collect();
                for part in data.chunks(100_000) {
                    w.write_all(part).await.unwrap();
                }
                w.shutdown().await.unwrap();
            });
            let mut back = Vec::new();
            r.read_to_end(&mut back).await.unwrap();
            writer.await.unwrap();
            assert_eq!(echo.await.unwrap(), LEN);
            assert_eq!(back.len(), LEN);
            assert!(back.iter().enumerate().all(|(i, &b)| b == pattern(i)));
        }
    });
}
}

both_drivers! {
fn a_transport_that_ends_without_close_notify_is_unexpected_eof() {
    support::run(async {
        let (server, client) = tls_pair(ANY_VERSION).await;
        let mut io = Compat::new(client);
        // The server's TCP connection closes (FIN) with no close_notify.
        let tcp = server.into_inner();
        drop(tcp);
        let mut buf = [0u8; 16];
        let err = io.read(&mut buf).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof, "{err}");
    });
}
}

both_drivers! {
fn garbage_from_the_peer_is_invalid_data() {
    support::run(async {
        let (server, client) = tls_pair(TLS13).await;
        let tcp = server.into_inner();
        let (res, _) = tcp.write_all(vec![0x17u8, 3, 3, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8]).await;
        res.unwrap();
        let mut io = Compat::new(client);
        let mut buf = [0u8; 16];
        let err = io.read(&mut buf).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{err}");
    });
}
}

both_drivers! {
fn tls_reads_under_timeout_storms_lose_nothing() {
    const COUNT: u32 = 20_000;
    support::run(async {
        let (server, client) = tls_pair(TLS13).await;
        let sender = corio::spawn(async move {
            let mut io = Compat::new(server);
            let bytes: Vec<u8> = (0..COUNT).flat_map(u32::to_le_bytes).collect();
            for part in bytes.chunks(333) {
                io.write_all(part).await.unwrap();
                io.flush().await.unwrap();
                corio::time::sleep(Duration::from_micros(100)).await;
            }
            io.shutdown().await.unwrap();
        });
        let mut io = Compat::new(client);
        let mut got = Vec::new();
        let mut dropped = 0u32;
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut k = 0usize;
        loop {
            assert!(Instant::now() < deadline, "stalled at {} bytes", got.len());
            k += 1;
            let mut buf = [0u8; 11];
            let size = 1 + k % 11;
            match timeout(Duration::ZERO, io.read(&mut buf[..size])).await {
                Ok(n) => match n.unwrap() {
                    0 => break,
                    n => got.extend_from_slice(&buf[..n]),
                },
                Err(_) => {
                    dropped += 1;
                    corio::yield_now().await;
                }
            }
        }
        sender.await.unwrap();
        assert_eq!(got.len(), COUNT as usize * 4);
        for (i, w) in got.chunks(4).enumerate() {
            assert_eq!(u32::from_le_bytes(w.try_into().unwrap()), i as u32);
        }
        assert!(dropped >= 1000, "only {dropped} reads were dropped");
    });
}
}

both_drivers! {
fn into_inner_hands_the_session_back_mid_stream() {
    support::run(async {
        let (server, client) = tls_pair(TLS13).await;
        let mut s = Compat::new(server);
        s.write_all(b"one two three").await.unwrap();
        s.flush().await.unwrap();
        let mut c = Compat::new(client);
        let mut four = [0u8; 4];
        c.read_exact(&mut four).await.unwrap();
        assert_eq!(&four, b"one ");
        // Back to the owned-buffer API, then to a compat again.
        let mut tls = c.into_inner();
        let (res, buf) = tls.read(vec![0u8; 64]).await;
        assert_eq!(&buf[..res.unwrap()], b"two three");
        let mut s = s.into_inner();
        let (res, _) = s.write_all(b"after".as_slice()).await;
        res.unwrap();
        let mut c = Compat::new(tls);
        let mut five = [0u8; 5];
        c.read_exact(&mut five).await.unwrap();
        assert_eq!(&five, b"after");
    });
}
}
