//! Interop with OpenSSL: `openssl s_client` against the corio TLS server and the corio TLS client against `openssl s_server`, on TLS 1.2 and 1.3.
//!
//! Needs the `openssl` command (`.ci/run` checks it is there).
#![cfg(feature = "tls")]

mod support;
mod tls_support;

use std::io::{self, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::mpsc;
use std::thread::JoinHandle;

use corio::IoBuf;
use corio::net::{TcpListener, TcpStream};
use corio::tls::rustls::{self, ProtocolVersion, ServerConfig};
use corio::tls::{self, TlsAcceptor, TlsConnector};
use tls_support::{
    ANY_VERSION, ChildGuard, TIMEOUT, TLS12, TempDir, client_config, free_port, localhost, openssl,
    pki, provider, rustls_error, server_config,
};

/// What the corio server saw of its one session.
#[derive(Debug)]
struct Seen {
    version: Option<ProtocolVersion>,
    sni: Option<String>,
    alpn: Option<Vec<u8>>,
    echoed: usize,
    /// How the session ended: `Ok` for `close_notify`.
    end: io::Result<()>,
}

/// A corio TLS echo server for one connection, on its own thread (with the
/// test variant's driver). Returns its address, the thread, and what it saw.
fn corio_server(
    config: Arc<ServerConfig>,
) -> (SocketAddr, JoinHandle<()>, mpsc::Receiver<io::Result<Seen>>) {
    let driver = support::driver();
    let (addr_tx, addr_rx) = mpsc::channel();
    let (seen_tx, seen_rx) = mpsc::channel();
    let thread = std::thread::spawn(move || {
        let rt = corio::Builder::new().driver(driver).build().unwrap();
        rt.block_on(async move {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            addr_tx.send(l.local_addr().unwrap()).unwrap();
            let session = async {
                let (tcp, _) = l.accept().await?;
                let mut tls = TlsAcceptor::from(config).accept(tcp).await?;
                let mut seen = Seen {
                    version: tls.protocol_version(),
                    sni: tls.server_name().map(str::to_string),
                    alpn: tls.alpn_protocol().map(<[u8]>::to_vec),
                    echoed: 0,
                    end: Ok(()),
                };
                let mut buf = vec![0u8; 16 * 1024];
                loop {
                    let (res, b) = tls.read(buf).await;
                    let n = match res {
                        Ok(0) => break,
                        Ok(n) => n,
                        Err(e) => {
                            seen.end = Err(e);
                            break;
                        }
                    };
                    let (res, slice) = tls.write_all(b.slice(..n)).await;
                    buf = slice.into_inner();
                    res?;
                    seen.echoed += n;
                }
                if seen.end.is_ok() {
                    tls.shutdown().await?;
                }
                Ok(seen)
            };
            let res = corio::time::timeout(TIMEOUT, session).await;
            let _ = seen_tx.send(res.unwrap_or_else(|e| Err(e.into())));
        });
    });
    let addr = addr_rx.recv_timeout(TIMEOUT).unwrap();
    (addr, thread, seen_rx)
}

/// Starts `openssl s_client` against `addr`, trusting the test CA.
fn s_client(dir: &TempDir, addr: SocketAddr, extra: &[&str]) -> ChildGuard {
    let ca = dir.file("ca.pem", &pki().ca_pem);
    let mut cmd = openssl();
    cmd.args([
        "s_client",
        "-connect",
        &addr.to_string(),
        "-brief",
        "-CAfile",
    ])
    .arg(ca)
    .args(["-verify_return_error"])
    .args(extra);
    ChildGuard::spawn(cmd)
}

/// Runs `openssl s_client` against a corio server: lines go out and must
/// come back; then stdin closes, and s_client ends with `close_notify`.
fn s_client_to_corio(flag: &str, want: ProtocolVersion) {
    let dir = TempDir::new();
    let (addr, thread, seen) = corio_server(server_config(ANY_VERSION, &["h2", "http/1.1"]));
    let mut client = s_client(
        &dir,
        addr,
        &[
            flag,
            "-servername",
            "localhost",
            "-verify_hostname",
            "localhost",
            "-alpn",
            "http/1.1",
        ],
    );
    let mut stdin = client.child.stdin.take().unwrap();
    let lines: Vec<String> = (0..50)
        .map(|i| format!("line {i} {}", "x".repeat(i * 37)))
        .collect();
    for line in &lines {
        writeln!(stdin, "{line}").unwrap();
    }
    stdin.flush().unwrap();
    let last = lines.last().unwrap().clone();
    assert!(client.wait_stdout(&last), "no echo:\n{}", client.output());
    drop(stdin);
    let (ok, out) = client.wait_exit();
    assert!(ok, "s_client failed:\n{out}");
    for line in &lines {
        assert!(out.contains(line.as_str()), "{line:?} not echoed:\n{out}");
    }
    let name = if want == ProtocolVersion::TLSv1_3 {
        "TLSv1.3"
    } else {
        "TLSv1.2"
    };
    assert!(out.contains(&format!("Protocol version: {name}")), "{out}");
    assert!(out.contains("Verification: OK"), "{out}");

    let seen = seen.recv_timeout(TIMEOUT).unwrap().unwrap();
    assert_eq!(seen.version, Some(want));
    assert_eq!(seen.sni.as_deref(), Some("localhost"));
    assert_eq!(seen.alpn.as_deref(), Some(&b"http/1.1"[..]));
    let sent: usize = lines.iter().map(|l| l.len() + 1).sum();
    assert_eq!(seen.echoed, sent);
    assert!(
        seen.end.is_ok(),
        "s_client ended without close_notify: {:?}",
        seen.end
    );
    thread.join().unwrap();
}

both_drivers! {
    fn s_client_tls13_to_corio_server() {
        s_client_to_corio("-tls1_3", ProtocolVersion::TLSv1_3);
    }
}

both_drivers! {
    fn s_client_tls12_to_corio_server() {
        s_client_to_corio("-tls1_2", ProtocolVersion::TLSv1_2);
    }
}

both_drivers! {
    fn s_client_refuses_a_wrong_host_name() {
        let dir = TempDir::new();
        let (addr, thread, seen) = corio_server(server_config(ANY_VERSION, &[]));
        let mut client = s_client(&dir, addr, &["-verify_hostname", "not-localhost.test"]);
        let (ok, out) = client.wait_exit();
        assert!(!ok, "s_client accepted a certificate for another name:\n{out}");
        // The corio server gets the alert, not a session.
        let err = seen.recv_timeout(TIMEOUT).unwrap().unwrap_err();
        assert!(
            matches!(rustls_error(&err), Some(rustls::Error::AlertReceived(_))),
            "{err:?}\n{out}"
        );
        thread.join().unwrap();
    }
}

both_drivers! {
    fn openssl_made_rsa_pem_files_load_and_serve() {
        // An RSA certificate and a PKCS#1 key, as OpenSSL writes them.
        let dir = TempDir::new();
        let (cert, key) = (dir.path().join("rsa.pem"), dir.path().join("rsa.key"));
        let status = openssl()
            .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"])
            .args(["-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost"])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(status.success());
        let pkcs1 = dir.path().join("rsa1.key");
        let status = openssl()
            .args(["rsa", "-traditional", "-in"])
            .arg(&key)
            .arg("-out")
            .arg(&pkcs1)
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(status.success());

        let certs = tls::load_certs(&cert).unwrap();
        let key = tls::load_private_key(&pkcs1).unwrap();
        assert!(matches!(key, rustls::pki_types::PrivateKeyDer::Pkcs1(_)));
        let config = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap();
        let (addr, thread, seen) = corio_server(Arc::new(config));
        let mut cmd = openssl();
        cmd.args(["s_client", "-connect", &addr.to_string(), "-brief", "-CAfile"])
            .arg(&cert)
            .args(["-verify_return_error", "-verify_hostname", "localhost"]);
        let mut client = ChildGuard::spawn(cmd);
        let mut stdin = client.child.stdin.take().unwrap();
        writeln!(stdin, "over RSA").unwrap();
        stdin.flush().unwrap();
        assert!(client.wait_stdout("over RSA"), "{}", client.output());
        drop(stdin);
        let (ok, out) = client.wait_exit();
        assert!(ok, "{out}");
        assert!(out.contains("Signature type: RSA"), "{out}");
        let seen = seen.recv_timeout(TIMEOUT).unwrap().unwrap();
        assert_eq!(seen.echoed, "over RSA\n".len());
        thread.join().unwrap();
    }
}

/// Starts `openssl s_server -rev` (it sends back each line reversed) for
/// one connection with the test PKI's `localhost` certificate; waits until
/// it listens.
fn s_server(dir: &TempDir, flag: &str) -> (ChildGuard, SocketAddr) {
    let leaf = &pki().localhost;
    let cert = dir.file("cert.pem", format!("{}{}", leaf.cert_pem, pki().ca_pem));
    let key = dir.file("key.pem", &leaf.key_pem);
    // A port that was free a moment ago may be taken again: try a few.
    for _ in 0..3 {
        let addr = localhost(free_port());
        let mut cmd = openssl();
        cmd.args([
            "s_server",
            "-accept",
            &addr.to_string(),
            "-naccept",
            "1",
            "-rev",
        ])
        .arg("-cert")
        .arg(&cert)
        .arg("-key")
        .arg(&key)
        .args([flag, "-alpn", "http/1.1"]);
        let mut server = ChildGuard::spawn(cmd);
        if server.wait_stdout("ACCEPT") {
            return (server, addr);
        }
        eprintln!("s_server did not start:\n{}", server.output());
    }
    panic!("openssl s_server did not start");
}

fn corio_to_s_server(flag: &str, want: ProtocolVersion) {
    let dir = TempDir::new();
    let (mut server, addr) = s_server(&dir, flag);
    support::run(async {
        let connector = TlsConnector::from(client_config(ANY_VERSION, &["http/1.1"]));
        let tcp = TcpStream::connect(addr).await.unwrap();
        let mut tls = connector.connect("localhost", tcp).await.unwrap();
        assert_eq!(tls.protocol_version(), Some(want));
        assert_eq!(tls.alpn_protocol(), Some(&b"http/1.1"[..]));
        for i in 0..20 {
            let line = format!("corio says {i} {}\n", "y".repeat(i * 100));
            let (res, _) = tls.write_all(line.clone().into_bytes()).await;
            res.unwrap();
            let (res, back) = tls.read_exact(vec![0u8; line.len()]).await;
            res.unwrap();
            let want: String = line
                .trim_end_matches('\n')
                .chars()
                .rev()
                .collect::<String>()
                + "\n";
            assert_eq!(String::from_utf8(back).unwrap(), want);
        }
        tls.shutdown().await.unwrap();
        // s_server answers close_notify with its own.
        let (res, _) = tls.read(vec![0u8; 64]).await;
        assert_eq!(res.unwrap(), 0);
    });
    let (ok, out) = server.wait_exit();
    let name = if want == ProtocolVersion::TLSv1_3 {
        "TLSv1.3"
    } else {
        "TLSv1.2"
    };
    assert!(out.contains(&format!("Protocol version: {name}")), "{out}");
    assert!(ok, "s_server failed:\n{out}");
}

both_drivers! {
    fn corio_client_tls13_to_s_server() {
        corio_to_s_server("-tls1_3", ProtocolVersion::TLSv1_3);
    }
}

both_drivers! {
    fn corio_client_tls12_to_s_server() {
        corio_to_s_server("-tls1_2", ProtocolVersion::TLSv1_2);
    }
}

both_drivers! {
    fn corio_client_refuses_s_server_for_a_wrong_host_name() {
        let dir = TempDir::new();
        let (mut server, addr) = s_server(&dir, "-tls1_3");
        let err = support::run(async {
            let connector = TlsConnector::from(client_config(ANY_VERSION, &[]));
            let tcp = TcpStream::connect(addr).await.unwrap();
            connector.connect("not-localhost.test", tcp).await.unwrap_err()
        });
        assert!(
            matches!(rustls_error(&err), Some(rustls::Error::InvalidCertificate(_))),
            "{err:?}"
        );
        let (_, out) = server.wait_exit();
        assert!(!out.contains("CONNECTION ESTABLISHED"), "{out}");
    }
}

both_drivers! {
    fn corio_client_tls12_only_against_s_server_tls13_only_fails() {
        let dir = TempDir::new();
        let (_server, addr) = s_server(&dir, "-tls1_3");
        let err = support::run(async {
            let connector = TlsConnector::from(client_config(TLS12, &[]));
            let tcp = TcpStream::connect(addr).await.unwrap();
            connector.connect("localhost", tcp).await.unwrap_err()
        });
        assert!(rustls_error(&err).is_some(), "{err:?}");
    }
}
