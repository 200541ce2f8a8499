//! Helpers for the TLS tests: a test PKI made with rcgen, rustls configs on
//! the ring provider, temp dirs, free ports and `openssl` child processes.
//!
//! Each TLS test file declares `mod support;` and `mod tls_support;`. Not
//! every file uses every helper, hence the `dead_code` allowance.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, mpsc};
use std::time::{Duration, Instant};

use corio::tls::rustls::{self, ClientConfig, RootCertStore, ServerConfig};
use rustls::SupportedProtocolVersion;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// Longest wait for anything that should happen at once.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// TLS 1.3 only, TLS 1.2 only.
pub static TLS13: &[&SupportedProtocolVersion] = &[&rustls::version::TLS13];
pub static TLS12: &[&SupportedProtocolVersion] = &[&rustls::version::TLS12];
/// Both versions (rustls's default).
pub static ANY_VERSION: &[&SupportedProtocolVersion] = rustls::ALL_VERSIONS;

/// A certificate with its key, in DER and PEM.
pub struct Leaf {
    pub cert: CertificateDer<'static>,
    pub cert_pem: String,
    pub key_der: Vec<u8>,
    pub key_pem: String,
}

impl Leaf {
    pub fn key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_der.clone()))
    }
}

/// A test CA and leaf certificates it signed.
pub struct Pki {
    pub ca: CertificateDer<'static>,
    pub ca_pem: String,
    /// For `localhost` and `127.0.0.1`.
    pub localhost: Leaf,
    /// For `a.test` and `b.test` (SNI tests).
    pub a: Leaf,
    pub b: Leaf,
}

/// The process's test PKI, made once.
pub fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(|| {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "corio test CA");
        let ca = rcgen::CertifiedIssuer::self_signed(params, rcgen::KeyPair::generate().unwrap())
            .unwrap();
        let leaf = |names: &[&str]| {
            let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
            let mut params = rcgen::CertificateParams::new(names.clone()).unwrap();
            params
                .distinguished_name
                .push(rcgen::DnType::CommonName, names[0].clone());
            let key = rcgen::KeyPair::generate().unwrap();
            let cert = params.signed_by(&key, &ca).unwrap();
            Leaf {
                cert: cert.der().clone(),
                cert_pem: cert.pem(),
                key_der: key.serialize_der(),
                key_pem: key.serialize_pem(),
            }
        };
        Pki {
            ca: ca.der().clone(),
            ca_pem: ca.pem(),
            localhost: leaf(&["localhost", "127.0.0.1"]),
            a: leaf(&["a.test"]),
            b: leaf(&["b.test"]),
        }
    })
}

pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A server config for the `localhost` certificate.
pub fn server_config(
    versions: &[&'static SupportedProtocolVersion],
    alpn: &[&str],
) -> Arc<ServerConfig> {
    let leaf = &pki().localhost;
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(versions)
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![leaf.cert.clone()], leaf.key())
        .unwrap();
    config.alpn_protocols = alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
    Arc::new(config)
}

/// A client config trusting the test CA only.
pub fn client_config(
    versions: &[&'static SupportedProtocolVersion],
    alpn: &[&str],
) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    roots.add(pki().ca.clone()).unwrap();
    client_config_with_roots(versions, alpn, roots)
}

pub fn client_config_with_roots(
    versions: &[&'static SupportedProtocolVersion],
    alpn: &[&str],
    roots: RootCertStore,
) -> Arc<ClientConfig> {
    let mut config = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
    Arc::new(config)
}

/// The `rustls::Error` inside an `io::Error`, if any.
pub fn rustls_error(e: &std::io::Error) -> Option<&rustls::Error> {
    e.get_ref()?.downcast_ref::<rustls::Error>()
}

/// A directory under the system temp dir, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new() -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("corio-tls-test-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    /// Writes `contents` to `name` in the directory; returns its path.
    pub fn file(&self, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, contents).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn localhost(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// Fails the test with a clear message when `openssl` is missing.
pub fn openssl() -> Command {
    let found = Command::new("openssl")
        .arg("version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        found,
        "the TLS interop tests need the `openssl` command (apt-get install openssl)"
    );
    Command::new("openssl")
}

/// A child process, killed and reaped on drop; its output lines arrive on
/// channels, read by threads so it never blocks on a full pipe.
pub struct ChildGuard {
    pub child: Child,
    pub stdout: mpsc::Receiver<String>,
    pub stderr: mpsc::Receiver<String>,
    seen: Vec<String>,
    seen_err: Vec<String>,
}

impl ChildGuard {
    /// Spawns `cmd` with piped stdin, stdout and stderr.
    pub fn spawn(mut cmd: Command) -> ChildGuard {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn openssl");
        let stdout = lines(child.stdout.take().unwrap());
        let stderr = lines(child.stderr.take().unwrap());
        ChildGuard {
            child,
            stdout,
            stderr,
            seen: Vec::new(),
            seen_err: Vec::new(),
        }
    }

    /// Waits (at most `TIMEOUT`) for a stdout line containing `needle`;
    /// false if the output ends or time runs out first.
    pub fn wait_stdout(&mut self, needle: &str) -> bool {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stdout.recv_timeout(left) {
                Ok(line) => {
                    let hit = line.contains(needle);
                    self.seen.push(line);
                    if hit {
                        return true;
                    }
                }
                Err(_) => return false,
            }
        }
    }

    /// Waits (at most `TIMEOUT`) for the process to exit; returns its
    /// success and everything it printed.
    pub fn wait_exit(&mut self) -> (bool, String) {
        drop(self.child.stdin.take());
        let deadline = Instant::now() + TIMEOUT;
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break Some(s);
            }
            if Instant::now() > deadline {
                break None;
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        if status.is_some() {
            // Let the reader threads pass on the last lines (they end with the pipes).
            while let Ok(line) = self.stdout.recv_timeout(Duration::from_secs(1)) {
                self.seen.push(line);
            }
            while let Ok(line) = self.stderr.recv_timeout(Duration::from_secs(1)) {
                self.seen_err.push(line);
            }
        }
        (status.is_some_and(|s| s.success()), self.output())
    }

    /// What the process printed so far: stdout, then stderr.
    pub fn output(&mut self) -> String {
        self.seen.extend(self.stdout.try_iter());
        self.seen_err.extend(self.stderr.try_iter());
        format!(
            "{}\n--- stderr ---\n{}",
            self.seen.join("\n"),
            self.seen_err.join("\n")
        )
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn lines<R: Read + Send + 'static>(r: R) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(r).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}
