//! corio TLS client against corio TLS server: echo on TLS 1.2 and 1.3, ALPN, SNI, certificate errors, close_notify, cancel safety, fd leaks.
#![cfg(feature = "tls")]

mod support;
mod tls_support;

use std::future::Future;
use std::io;
use std::pin::pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use corio::IoBuf;
use corio::net::{TcpListener, TcpStream};
use corio::time::timeout;
use corio::tls::rustls::{self, ProtocolVersion, RootCertStore, ServerConfig};
use corio::tls::{TlsAcceptor, TlsConnector, TlsStream};
use tls_support::{
    ANY_VERSION, TIMEOUT, TLS12, TLS13, client_config, client_config_with_roots, pki, provider,
    rustls_error, server_config,
};

/// What the server saw of one session.
#[derive(Debug)]
struct Seen {
    version: Option<ProtocolVersion>,
    sni: Option<String>,
    alpn: Option<Vec<u8>>,
    echoed: usize,
}

fn listener() -> (TcpListener, std::net::SocketAddr) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    (l, addr)
}

/// Accepts one connection, echoes until the client's `close_notify`, then
/// answers it with the server's own.
async fn echo_once(listener: TcpListener, acceptor: TlsAcceptor) -> io::Result<Seen> {
    let (tcp, _) = listener.accept().await?;
    let mut tls = acceptor.accept(tcp).await?;
    let mut seen = Seen {
        version: tls.protocol_version(),
        sni: tls.server_name().map(str::to_string),
        alpn: tls.alpn_protocol().map(<[u8]>::to_vec),
        echoed: 0,
    };
    let mut buf = vec![0u8; 20_000];
    loop {
        let (res, b) = tls.read(buf).await;
        let n = res?;
        if n == 0 {
            break;
        }
        let (res, slice) = tls.write_all(b.slice(..n)).await;
        buf = slice.into_inner();
        res?;
        seen.echoed += n;
    }
    tls.shutdown().await?;
    Ok(seen)
}

async fn connect(
    addr: std::net::SocketAddr,
    connector: &TlsConnector,
    name: &str,
) -> io::Result<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    connector.connect(name, tcp).await
}

fn pattern(n: usize, seed: usize) -> Vec<u8> {
    (0..n)
        .map(|i| (i.wrapping_mul(31) ^ (i >> 8) ^ seed) as u8)
        .collect()
}

/// Echoes messages of awkward sizes (around the 16 KiB record size, up to
/// 1 MiB, sent in 64 KiB pieces so neither side waits on a full socket),
/// then closes cleanly; checks what each side saw.
fn echo_with(
    versions: &'static [&'static rustls::SupportedProtocolVersion],
    want: ProtocolVersion,
) {
    support::run(async move {
        let (l, addr) = listener();
        let server = corio::spawn(echo_once(
            l,
            TlsAcceptor::from(server_config(versions, &[])),
        ));
        let connector = TlsConnector::from(client_config(versions, &[]));
        let mut tls = connect(addr, &connector, "localhost").await.unwrap();
        assert_eq!(tls.protocol_version(), Some(want));
        assert!(tls.negotiated_cipher_suite().is_some());
        let certs = tls.peer_certificates().expect("server certificate");
        assert_eq!(certs[0], pki().localhost.cert);

        let mut sent = 0;
        for (i, size) in [1, 1000, 16_383, 16_384, 16_385, 65_536, 100_003, 1 << 20]
            .into_iter()
            .enumerate()
        {
            let msg = pattern(size, i);
            for piece in msg.chunks(64 * 1024) {
                let (res, _) = tls.write_all(piece.to_vec()).await;
                res.unwrap();
                let (res, back) = tls.read_exact(Vec::with_capacity(piece.len())).await;
                res.unwrap();
                assert_eq!(back, piece, "echo of a {size}-byte message");
            }
            sent += size;
        }
        tls.shutdown().await.unwrap();
        // The server answers our close_notify with its own: a clean end.
        let (res, _) = tls.read(vec![0u8; 100]).await;
        assert_eq!(res.unwrap(), 0);

        let seen = server.await.unwrap().unwrap();
        assert_eq!(seen.version, Some(want));
        assert_eq!(seen.sni.as_deref(), Some("localhost"));
        assert_eq!(seen.alpn, None);
        assert_eq!(seen.echoed, sent);
    });
}

both_drivers! {
    fn echo_tls13() {
        echo_with(TLS13, ProtocolVersion::TLSv1_3);
    }
}

both_drivers! {
    fn echo_tls12() {
        echo_with(TLS12, ProtocolVersion::TLSv1_2);
    }
}

both_drivers! {
    fn alpn_is_negotiated() {
        support::run(async {
            let (l, addr) = listener();
            let acceptor = TlsAcceptor::from(server_config(ANY_VERSION, &["h2", "http/1.1"]));
            let server = corio::spawn(echo_once(l, acceptor));
            let connector = TlsConnector::from(client_config(ANY_VERSION, &["spdy/1", "http/1.1"]));
            let mut tls = connect(addr, &connector, "localhost").await.unwrap();
            assert_eq!(tls.alpn_protocol(), Some(&b"http/1.1"[..]));
            tls.shutdown().await.unwrap();
            let seen = server.await.unwrap().unwrap();
            assert_eq!(seen.alpn.as_deref(), Some(&b"http/1.1"[..]));
        });
    }
}

both_drivers! {
    fn alpn_without_a_common_protocol_fails() {
        support::run(async {
            let (l, addr) = listener();
            let server = corio::spawn(echo_once(l, TlsAcceptor::from(server_config(ANY_VERSION, &["h2"]))));
            let connector = TlsConnector::from(client_config(ANY_VERSION, &["http/1.1"]));
            let err = connect(addr, &connector, "localhost").await.unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{err}");
            let err = server.await.unwrap().unwrap_err();
            assert!(
                matches!(rustls_error(&err), Some(rustls::Error::NoApplicationProtocol)),
                "server: {err:?}"
            );
        });
    }
}

both_drivers! {
    fn sni_picks_the_certificate() {
        support::run(async {
            let p = pki();
            let mut resolver = rustls::server::ResolvesServerCertUsingSni::new();
            for (name, leaf) in [("a.test", &p.a), ("b.test", &p.b)] {
                let key = provider().key_provider.load_private_key(leaf.key()).unwrap();
                let ck = rustls::sign::CertifiedKey::new(vec![leaf.cert.clone()], key);
                resolver.add(name, ck).unwrap();
            }
            let config = ServerConfig::builder_with_provider(provider())
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_no_client_auth()
                .with_cert_resolver(Arc::new(resolver));
            let acceptor = TlsAcceptor::from(Arc::new(config));
            let connector = TlsConnector::from(client_config(ANY_VERSION, &[]));
            let (l, addr) = listener();
            let l = std::rc::Rc::new(l);

            for (name, leaf) in [("b.test", &p.b), ("a.test", &p.a)] {
                let (l2, acc) = (l.clone(), acceptor.clone());
                let server = corio::spawn(async move {
                    let (tcp, _) = l2.accept().await?;
                    let tls = acc.accept(tcp).await?;
                    Ok::<_, io::Error>(tls.server_name().map(str::to_string))
                });
                let tls = connect(addr, &connector, name).await.unwrap();
                assert_eq!(tls.peer_certificates().unwrap()[0], leaf.cert, "{name}");
                assert_eq!(server.await.unwrap().unwrap().as_deref(), Some(name));
            }

            // No certificate for this name: the server refuses the handshake.
            let (l2, acc) = (l.clone(), acceptor.clone());
            let server = corio::spawn(async move {
                let (tcp, _) = l2.accept().await?;
                acc.accept(tcp).await.map(|_| ())
            });
            let err = connect(addr, &connector, "c.test").await.unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{err}");
            server.await.unwrap().unwrap_err();
        });
    }
}

both_drivers! {
    fn wrong_host_name_is_a_certificate_error() {
        support::run(async {
            let (l, addr) = listener();
            let server = corio::spawn(echo_once(l, TlsAcceptor::from(server_config(ANY_VERSION, &[]))));
            let connector = TlsConnector::from(client_config(ANY_VERSION, &[]));
            let err = connect(addr, &connector, "not-localhost.test").await.unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{err}");
            assert!(
                matches!(
                    rustls_error(&err),
                    Some(rustls::Error::InvalidCertificate(
                        rustls::CertificateError::NotValidForName
                            | rustls::CertificateError::NotValidForNameContext { .. }
                    ))
                ),
                "client: {err:?}"
            );
            // The server hears why (a bad_certificate alert), and gets no session.
            let err = server.await.unwrap().unwrap_err();
            assert!(
                matches!(rustls_error(&err), Some(rustls::Error::AlertReceived(_))),
                "server: {err:?}"
            );
        });
    }
}

both_drivers! {
    fn unknown_issuer_is_a_certificate_error() {
        support::run(async {
            let (l, addr) = listener();
            let server = corio::spawn(echo_once(l, TlsAcceptor::from(server_config(ANY_VERSION, &[]))));
            // Trusts only an unrelated certificate.
            let mut roots = RootCertStore::empty();
            roots.add(pki().a.cert.clone()).unwrap();
            let connector = TlsConnector::from(client_config_with_roots(ANY_VERSION, &[], roots));
            let err = connect(addr, &connector, "localhost").await.unwrap_err();
            assert!(
                matches!(
                    rustls_error(&err),
                    Some(rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer))
                ),
                "client: {err:?}"
            );
            server.await.unwrap().unwrap_err();
        });
    }
}

both_drivers! {
    fn ip_address_as_server_name() {
        support::run(async {
            let (l, addr) = listener();
            let server = corio::spawn(echo_once(l, TlsAcceptor::from(server_config(ANY_VERSION, &[]))));
            let connector = TlsConnector::from(client_config(ANY_VERSION, &[]));
            let mut tls = connect(addr, &connector, "127.0.0.1").await.unwrap();
            tls.shutdown().await.unwrap();
            // An IP address is verified against the certificate but not sent as SNI.
            assert_eq!(server.await.unwrap().unwrap().sni, None);

            let (_l2, addr2) = listener();
            let err = connector
                .connect("not a name!", TcpStream::connect(addr2).await.unwrap())
                .await
                .unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
        });
    }
}

both_drivers! {
    fn end_without_close_notify_is_unexpected_eof() {
        support::run(async {
            let (l, addr) = listener();
            let acceptor = TlsAcceptor::from(server_config(ANY_VERSION, &[]));
            let server = corio::spawn(async move {
                let (tcp, _) = l.accept().await.unwrap();
                let mut tls = acceptor.accept(tcp).await.unwrap();
                let (res, buf) = tls.read_exact(vec![0u8; 5]).await;
                res.unwrap();
                assert_eq!(buf, b"hello");
                let (res, _) = tls.read(vec![0u8; 100]).await;
                res.unwrap_err().kind()
            });
            let connector = TlsConnector::from(client_config(ANY_VERSION, &[]));
            let mut tls = connect(addr, &connector, "localhost").await.unwrap();
            let (res, _) = tls.write_all(b"hello".as_slice()).await;
            res.unwrap();
            // FIN without close_notify: a truncation the server must see.
            tls.into_inner().shutdown(std::net::Shutdown::Write).await.unwrap();
            assert_eq!(server.await.unwrap(), io::ErrorKind::UnexpectedEof);
        });
    }
}

both_drivers! {
    fn buffer_kinds_and_lengths() {
        support::run(async {
            let (l, addr) = listener();
            let server = corio::spawn(echo_once(l, TlsAcceptor::from(server_config(ANY_VERSION, &[]))));
            let connector = TlsConnector::from(client_config(ANY_VERSION, &[]));
            let mut tls = connect(addr, &connector, "localhost").await.unwrap();

            // An empty Vec with capacity: its length becomes the count read.
            let (res, _) = tls.write_all(b"abcdef".as_slice()).await;
            res.unwrap();
            let (res, buf) = tls.read_exact(Vec::with_capacity(6)).await;
            res.unwrap();
            assert_eq!(buf, b"abcdef");

            // One byte at a time.
            let (res, _) = tls.write_all(bytes::Bytes::from_static(b"xyz")).await;
            res.unwrap();
            let mut got = Vec::new();
            while got.len() < 3 {
                let (res, b) = tls.read(Vec::with_capacity(1)).await;
                assert_eq!(res.unwrap(), 1);
                assert_eq!(b.len(), 1);
                got.extend_from_slice(&b);
            }
            assert_eq!(got, b"xyz");

            // Into the middle of a buffer, through a Slice; and a BytesMut.
            let (res, _) = tls.write_all(b"0123456789".to_vec().slice(2..6)).await;
            res.unwrap();
            let (res, s) = tls.read_exact(b"........".to_vec().slice(4..8)).await;
            res.unwrap();
            assert_eq!(s.into_inner(), b"....2345");
            let (res, _) = tls.write(b"bm".as_slice()).await;
            assert_eq!(res.unwrap(), 2);
            let (res, bm) = tls.read_exact(bytes::BytesMut::with_capacity(2)).await;
            res.unwrap();
            assert_eq!(&bm[..], b"bm");

            // A zero-capacity read returns at once.
            let (res, _) = tls.read(Vec::new()).await;
            assert_eq!(res.unwrap(), 0);
            tls.shutdown().await.unwrap();
            assert_eq!(server.await.unwrap().unwrap().echoed, 6 + 3 + 4 + 2);
        });
    }
}

/// Polls `fut` once and drops it if it is not done.
async fn poll_once<F: Future>(fut: F) -> Option<F::Output> {
    let mut fut = pin!(fut);
    std::future::poll_fn(|cx| match fut.as_mut().poll(cx) {
        Poll::Ready(v) => Poll::Ready(Some(v)),
        Poll::Pending => Poll::Ready(None),
    })
    .await
}

/// Reads until `Ok(0)`, dropping reads mid-flight along the way: each round
/// starts a read and drops it after one poll, starts one under a 50 µs
/// timeout, and every few rounds lets one finish. Returns the bytes and the
/// number of reads dropped.
async fn read_all_dropping(tls: &mut TlsStream<TcpStream>) -> (Vec<u8>, usize) {
    let mut got = Vec::new();
    let mut dropped = 0usize;
    let deadline = Instant::now() + TIMEOUT;
    for round in 0usize.. {
        assert!(Instant::now() < deadline, "stuck after {} bytes", got.len());
        let cap = 1 + (round * 7919) % 30_000;
        let r1 = poll_once(tls.read(Vec::with_capacity(cap))).await;
        let r2 = match r1 {
            Some(r) => Some(r),
            None => {
                dropped += 1;
                let r = timeout(Duration::from_micros(50), tls.read(Vec::with_capacity(cap))).await;
                r.ok()
            }
        };
        let r3 = match r2 {
            Some(r) => Some(r),
            None if round % 4 == 0 => {
                dropped += 1;
                Some(tls.read(Vec::with_capacity(cap)).await)
            }
            None => {
                dropped += 1;
                None
            }
        };
        if let Some((res, buf)) = r3 {
            let n = res.unwrap();
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
    }
    (got, dropped)
}

both_drivers! {
    fn dropped_reads_lose_nothing() {
        support::run(async {
            const MESSAGES: usize = 1_000;
            let (l, addr) = listener();
            let acceptor = TlsAcceptor::from(server_config(ANY_VERSION, &[]));
            let (go_tx, go_rx) = corio::sync::oneshot::channel::<()>();
            // The server sends messages of varying size, yielding in between
            // so they arrive while the client's reads come and go.
            let server = corio::spawn(async move {
                let (tcp, _) = l.accept().await.unwrap();
                let mut tls = acceptor.accept(tcp).await.unwrap();
                go_rx.await.unwrap();
                let mut all = Vec::new();
                for i in 0..MESSAGES {
                    let msg = pattern(1 + (i * 997) % 20_000, i);
                    all.extend_from_slice(&msg);
                    let (res, _) = tls.write_all(msg).await;
                    res.unwrap();
                    for _ in 0..i % 4 {
                        corio::yield_now().await;
                    }
                }
                tls.shutdown().await.unwrap();
                all
            });
            let connector = TlsConnector::from(client_config(ANY_VERSION, &[]));
            let mut tls = connect(addr, &connector, "localhost").await.unwrap();
            // First with nothing to read: every socket read is dropped in flight.
            for _ in 0..1_000 {
                assert!(poll_once(tls.read(vec![0u8; 100])).await.is_none());
                let r = timeout(Duration::from_micros(50), tls.read(vec![0u8; 100])).await;
                assert!(r.is_err());
            }
            go_tx.send(()).unwrap();
            let (got, dropped) = read_all_dropping(&mut tls).await;
            let all = server.await.unwrap();
            assert_eq!(got.len(), all.len());
            assert!(got == all, "bytes differ");
            println!("{dropped} more reads dropped while {} bytes came", all.len());
        });
    }
}

both_drivers! {
    fn dropped_write_stops_sending_but_reads_go_on() {
        support::run(async {
            let (l, addr) = listener();
            let acceptor = TlsAcceptor::from(server_config(ANY_VERSION, &[]));
            let (tx, rx) = corio::sync::oneshot::channel::<()>();
            // The server reads nothing until told, then sends one message.
            let server = corio::spawn(async move {
                let (tcp, _) = l.accept().await.unwrap();
                let mut tls = acceptor.accept(tcp).await.unwrap();
                rx.await.unwrap();
                let (res, _) = tls.write_all(b"still readable".as_slice()).await;
                res.unwrap();
                tls
            });
            let connector = TlsConnector::from(client_config(ANY_VERSION, &[]));
            let mut tls = connect(addr, &connector, "localhost").await.unwrap();
            // More than the socket buffers hold: the write must block, and
            // is dropped mid-flight.
            let big = vec![7u8; 64 << 20];
            let r = timeout(Duration::from_millis(300), tls.write_all(big)).await;
            assert!(r.is_err(), "a 64 MiB write to a peer that reads nothing finished");
            let (res, _) = tls.write(b"more".as_slice()).await;
            let err = res.unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::BrokenPipe, "{err}");
            let err = tls.shutdown().await.unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::BrokenPipe, "{err}");

            tx.send(()).unwrap();
            let (res, buf) = tls.read_exact(vec![0u8; 14]).await;
            res.unwrap();
            assert_eq!(buf, b"still readable");
            drop(server.await.unwrap());
        });
    }
}

both_drivers! {
    fn client_handshake_timeout() {
        support::run(async {
            // A server that accepts and then says nothing.
            let (l, addr) = listener();
            let server = corio::spawn(async move {
                let (tcp, _) = l.accept().await.unwrap();
                corio::time::sleep(Duration::from_secs(5)).await;
                drop(tcp);
            });
            let connector = TlsConnector::from(client_config(ANY_VERSION, &[]))
                .handshake_timeout(Duration::from_millis(200));
            let start = Instant::now();
            let err = connect(addr, &connector, "localhost").await.unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{err}");
            assert!(start.elapsed() >= Duration::from_millis(190), "{:?}", start.elapsed());
            server.abort();
        });
    }
}

both_drivers! {
    fn no_fd_leaks() {
        // Other tests of this file open fds at the same time: count in a
        // process of its own.
        if !support::is_child("no_fd_leaks") {
            support::run_in_child("no_fd_leaks", Duration::from_secs(60));
            return;
        }
        let before = support::open_fds();
        support::run(async {
            let (l, addr) = listener();
            // Only silent clients need the short timeout. A real handshake
            // in a debug build on a loaded machine can take longer than
            // 50 ms: with one timeout for all, a full session timed out now
            // and then (the flake this test had).
            let acceptor = TlsAcceptor::from(server_config(ANY_VERSION, &[]))
                .handshake_timeout(Duration::from_secs(20));
            let impatient = acceptor.clone().handshake_timeout(Duration::from_millis(50));
            let l = std::rc::Rc::new(l);
            let connector = TlsConnector::from(client_config(ANY_VERSION, &[]));
            for i in 0..45 {
                let acc = if i % 3 == 2 { &impatient } else { &acceptor };
                let (l2, acc) = (l.clone(), acc.clone());
                let server = corio::spawn(async move {
                    let (tcp, _) = l2.accept().await?;
                    let mut tls = acc.accept(tcp).await?;
                    let (res, _) = tls.read(vec![0u8; 64]).await;
                    res
                });
                match i % 3 {
                    // A full session.
                    0 => {
                        let mut tls = connect(addr, &connector, "localhost").await.unwrap();
                        let (res, _) = tls.write_all(b"hi".as_slice()).await;
                        res.unwrap();
                        assert_eq!(server.await.unwrap().unwrap(), 2);
                    }
                    // Garbage: a handshake error.
                    1 => {
                        let tcp = TcpStream::connect(addr).await.unwrap();
                        let (res, _) = tcp.write_all(b"GET / HTTP/1.0\r\n\r\n".as_slice()).await;
                        res.unwrap();
                        server.await.unwrap().unwrap_err();
                    }
                    // Silence: a handshake timeout.
                    _ => {
                        let _tcp = TcpStream::connect(addr).await.unwrap();
                        let err = server.await.unwrap().unwrap_err();
                        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
                    }
                }
            }
        });
        let after = support::open_fds();
        assert_eq!(before, after, "fds before and after 45 sessions");
    }
}
