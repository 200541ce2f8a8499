//! Runs the `tls_echo` and `http_server --tls` examples as processes and talks to them over TLS.
//!
//! Plain `cargo test` builds the examples first; `cargo test --test tls_examples`
//! alone does not (run `cargo build --examples` before). Each test runs twice, with
//! the example on each driver (`CORIO_DRIVER`).
#![cfg(feature = "tls")]

mod support;
mod tls_support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use corio::DriverKind;
use corio::tls::rustls::{self, ClientConnection, RootCertStore, StreamOwned};
use tls_support::{ChildGuard, TIMEOUT, TempDir, pki, provider};

/// `target/<profile>/examples/<name>`, next to this test's `deps/` directory.
fn example_path(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(Path::parent).unwrap();
    let path = dir.join("examples").join(name);
    assert!(
        path.is_file(),
        "example binary {} not found: plain `cargo test` builds the examples, \
         `cargo test --test tls_examples` does not; run `cargo build --examples` first",
        path.display()
    );
    path
}

/// Starts an example on the variant's driver; returns it with its address
/// and the lines it printed up to `listening on ADDR`.
fn start(name: &str, args: &[&str]) -> (ChildGuard, SocketAddr, Vec<String>) {
    let driver = match support::driver() {
        DriverKind::Uring => "uring",
        DriverKind::Poll => "poll",
        _ => "auto",
    };
    let mut cmd = Command::new(example_path(name));
    cmd.args(["--addr", "127.0.0.1:0"])
        .args(args)
        .env("CORIO_DRIVER", driver);
    let mut child = ChildGuard::spawn(cmd);
    drop(child.child.stdin.take());
    let mut lines = Vec::new();
    let deadline = std::time::Instant::now() + TIMEOUT;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let line = child.stdout.recv_timeout(left).unwrap_or_else(|_| {
            panic!("{name} printed no `listening on` line:\n{}", child.output())
        });
        if let Some(rest) = line.strip_prefix("listening on ") {
            let word = rest.split_whitespace().next().unwrap();
            let addr = word.trim_start_matches("https://").parse().unwrap();
            lines.push(line);
            return (child, addr, lines);
        }
        lines.push(line);
    }
}

/// A blocking rustls client (independent of corio) with `roots`.
fn connect(
    addr: SocketAddr,
    roots: RootCertStore,
    alpn: &[&str],
) -> StreamOwned<ClientConnection, TcpStream> {
    let mut config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let conn = ClientConnection::new(Arc::new(config), name).unwrap();
    let tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(TIMEOUT)).unwrap();
    StreamOwned::new(conn, tcp)
}

fn ca_roots() -> RootCertStore {
    let mut roots = RootCertStore::empty();
    roots.add(pki().ca.clone()).unwrap();
    roots
}

/// Writes the test PKI's `localhost` chain and key; returns their paths.
fn cert_files(dir: &TempDir) -> (PathBuf, PathBuf) {
    let leaf = &pki().localhost;
    (
        dir.file("chain.pem", format!("{}{}", leaf.cert_pem, pki().ca_pem)),
        dir.file("key.pem", &leaf.key_pem),
    )
}

both_drivers! {
    fn tls_echo_with_its_self_signed_certificate() {
        let (mut server, addr, lines) = start("tls_echo", &[]);
        // It names the PEM file of the certificate it made: trust that.
        let path = lines
            .iter()
            .find_map(|l| l.strip_prefix("self-signed certificate for localhost: "))
            .unwrap_or_else(|| panic!("no certificate path in {lines:?}"));
        let mut roots = RootCertStore::empty();
        for cert in corio::tls::load_certs(path.trim()).unwrap() {
            roots.add(cert).unwrap();
        }
        let mut tls = connect(addr, roots, &[]);
        for i in 0..10 {
            let msg = format!("message {i} {}", "z".repeat(i * 1000));
            tls.write_all(msg.as_bytes()).unwrap();
            let mut back = vec![0u8; msg.len()];
            tls.read_exact(&mut back).unwrap();
            assert_eq!(back, msg.as_bytes());
        }
        // close_notify: the server answers with its own, a clean end.
        tls.conn.send_close_notify();
        tls.flush().unwrap();
        let mut rest = Vec::new();
        tls.read_to_end(&mut rest).unwrap();
        assert!(rest.is_empty());
        let _ = std::fs::remove_file(path.trim());
        assert!(server.child.try_wait().unwrap().is_none(), "{}", server.output());
    }
}

both_drivers! {
    fn tls_echo_with_cert_and_key_files() {
        let dir = TempDir::new();
        let (cert, key) = cert_files(&dir);
        let (_server, addr, _) = start(
            "tls_echo",
            &["--cert", cert.to_str().unwrap(), "--key", key.to_str().unwrap()],
        );
        let mut tls = connect(addr, ca_roots(), &[]);
        tls.write_all(b"with files").unwrap();
        let mut back = [0u8; 10];
        tls.read_exact(&mut back).unwrap();
        assert_eq!(&back, b"with files");
        // A plain-text client gets no echo, and the server goes on.
        let mut plain = TcpStream::connect(addr).unwrap();
        plain.set_read_timeout(Some(TIMEOUT)).unwrap();
        plain.write_all(b"hello?\n").unwrap();
        let mut junk = Vec::new();
        let _ = plain.read_to_end(&mut junk);
        assert!(!junk.windows(6).any(|w| w == b"hello?"), "{junk:?}");
        let mut tls = connect(addr, ca_roots(), &[]);
        tls.write_all(b"again").unwrap();
        let mut back = [0u8; 5];
        tls.read_exact(&mut back).unwrap();
        assert_eq!(&back, b"again");
    }
}

/// Sends `GET /` on `tls`; returns the response head and body as text.
fn get(tls: &mut StreamOwned<ClientConnection, TcpStream>, close: bool) -> String {
    let req = if close {
        "GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    } else {
        "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"
    };
    tls.write_all(req.as_bytes()).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    // "Hello, world!\n" is the whole body; read until it is in.
    while !got.ends_with(b"Hello, world!\n") {
        let n = tls.read(&mut buf).unwrap();
        assert!(n > 0, "closed early: {:?}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    }
    String::from_utf8(got).unwrap()
}

both_drivers! {
    fn http_server_over_tls() {
        let dir = TempDir::new();
        let (cert, key) = cert_files(&dir);
        let (_server, addr, lines) = start(
            "http_server",
            &["--shards", "1", "--cert", cert.to_str().unwrap(), "--key", key.to_str().unwrap()],
        );
        assert!(lines.last().unwrap().contains("https://"), "{lines:?}");
        let mut tls = connect(addr, ca_roots(), &["h2", "http/1.1"]);
        // Keep-alive: several requests on one session.
        for _ in 0..3 {
            let resp = get(&mut tls, false);
            assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
        }
        assert_eq!(tls.conn.alpn_protocol(), Some(&b"http/1.1"[..]));
        // `Connection: close`: the response, then the server's close_notify.
        let resp = get(&mut tls, true);
        assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
        let mut rest = Vec::new();
        tls.read_to_end(&mut rest).unwrap();
        assert!(rest.is_empty(), "{rest:?}");

        // A plain-HTTP client on the TLS port gets no HTTP answer.
        let mut plain = TcpStream::connect(addr).unwrap();
        plain.set_read_timeout(Some(TIMEOUT)).unwrap();
        plain.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut junk = Vec::new();
        let _ = plain.read_to_end(&mut junk);
        assert!(!junk.starts_with(b"HTTP/"), "{:?}", String::from_utf8_lossy(&junk));
    }
}

both_drivers! {
    fn http_server_tls_self_signed_by_default() {
        let (_server, addr, lines) = start("http_server", &["--shards", "1", "--tls"]);
        let path = lines
            .iter()
            .find_map(|l| l.strip_prefix("self-signed certificate for localhost: "))
            .unwrap_or_else(|| panic!("no certificate path in {lines:?}"));
        let mut roots = RootCertStore::empty();
        for cert in corio::tls::load_certs(path.trim()).unwrap() {
            roots.add(cert).unwrap();
        }
        let _ = std::fs::remove_file(path.trim());
        let mut tls = connect(addr, roots, &[]);
        let resp = get(&mut tls, false);
        assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    }
}
