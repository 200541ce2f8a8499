//! Helpers for the compat tests that run the example servers: starting an
//! example as a process on the test variant's driver, counting its fds, a
//! hyper client on corio, and `curl`.
//!
//! Each test file that needs them declares `mod support;` and
//! `mod compat_support;`. Not every file uses every helper.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Output, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use corio::DriverKind;
use corio::compat::Compat;
use corio::compat::hyper::{CorioExecutor, CorioTimer};
use corio::net::TcpStream;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::{http1, http2};
use hyper::{Method, Request, StatusCode};

/// Longest wait for anything that should happen at once.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// Byte `i` of the bodies `hyper_server` makes (`/bytes/N`).
pub fn pattern(i: u64) -> u8 {
    (i % 251) as u8
}

/// FNV-1a, 64 bits, as `hyper_server`'s `/upload` answers it.
pub fn fnv1a(data: &[u8]) -> u64 {
    let mut hash = 0xcbf2_9ce4_8422_2325u64;
    for &b in data {
        hash ^= b as u64;
        hash = hash.wrapping_mul(0x100_0000_01b3);
    }
    hash
}

/// Path of a compiled example: `target/<profile>/examples/<name>`.
///
/// A plain `cargo test --features ...` builds the examples; `--test` alone
/// does not (run `cargo build --examples --features ...` first).
pub fn example_path(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("path of the test binary");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test binary in target/<profile>/deps");
    let path = profile_dir.join("examples").join(name);
    assert!(
        path.is_file(),
        "example binary {} not found: `cargo test --features hyper,tokio-io` builds the \
         examples, `cargo test --test NAME` does not; run `cargo build --examples \
         --features hyper,tokio-io` first",
        path.display()
    );
    path
}

/// A running example process; killed when dropped.
pub struct Server {
    child: Child,
    pub addr: SocketAddr,
    /// Lines the example printed before `listening on`.
    pub banner: Vec<String>,
    _stdout: BufReader<ChildStdout>,
}

impl Server {
    /// Starts example `name` with `args` (plus `--addr 127.0.0.1:0`) on the
    /// test variant's driver and waits for its `listening on` line.
    pub fn start(name: &str, args: &[&str]) -> Server {
        let driver = match support_driver() {
            DriverKind::Uring => "uring",
            DriverKind::Poll => "poll",
            _ => "auto",
        };
        let mut child = Command::new(example_path(name))
            .args(["--addr", "127.0.0.1:0"])
            .args(args)
            .env("CORIO_DRIVER", driver)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn the example");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut banner = Vec::new();
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    let _ = tx.send(None);
                    return;
                }
                if line.starts_with("listening on ") {
                    let _ = tx.send(Some((line, banner, reader)));
                    return;
                }
                banner.push(line);
            }
        });
        let Ok(Some((line, banner, reader))) = rx.recv_timeout(TIMEOUT) else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{name} printed no `listening on` line within {TIMEOUT:?}");
        };
        let word = line.split_whitespace().nth(2).unwrap_or_default();
        let addr = word
            .trim_start_matches("http://")
            .trim_start_matches("https://")
            .trim_start_matches("ws://")
            .parse()
            .unwrap_or_else(|_| panic!("no address in {line:?}"));
        Server {
            child,
            addr,
            banner,
            _stdout: reader,
        }
    }

    /// `http://ADDR` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// How many fds the server has open.
    pub fn fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.child.id()))
            .map(|d| d.count())
            .unwrap_or(0)
    }

    /// Waits until the server has at most `n` fds open; false on time out.
    pub fn settles_to(&self, n: usize) -> bool {
        let deadline = Instant::now() + TIMEOUT;
        while self.fds() > n {
            if Instant::now() > deadline {
                return false;
            }
            thread::sleep(Duration::from_millis(20));
        }
        true
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        self.child.try_wait().ok().flatten().is_none()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // A `--tls` example leaves its self-signed certificate in the temp
        // dir for clients (`--ca`): nothing of a test run stays behind.
        for line in &self.banner {
            if let Some(path) = line
                .trim()
                .strip_prefix("self-signed certificate for localhost: ")
            {
                let _ = std::fs::remove_file(path);
            }
        }
    }
}

fn support_driver() -> DriverKind {
    crate::support::driver()
}

/// Runs `curl` with `args`; `None` (with a message) when curl is missing.
pub fn curl(args: &[&str]) -> Option<Output> {
    match Command::new("curl")
        .args(["-sS", "--max-time", "20"])
        .args(args)
        .output()
    {
        Ok(out) => Some(out),
        Err(e) => {
            eprintln!("skipped: curl is not available here ({e})");
            None
        }
    }
}

/// A hyper client connection on corio (HTTP/1.1, or HTTP/2 with prior
/// knowledge).
pub enum Conn {
    H1(http1::SendRequest<Full<Bytes>>),
    H2(http2::SendRequest<Full<Bytes>>),
}

impl Conn {
    /// Connects to `addr`; the connection's task runs on the current runtime.
    pub async fn connect(addr: SocketAddr, h2: bool) -> Conn {
        let io = Compat::new(TcpStream::connect(addr).await.expect("connect"));
        if h2 {
            let (sender, conn) = http2::Builder::new(CorioExecutor)
                .timer(CorioTimer)
                .handshake(io)
                .await
                .expect("h2 handshake");
            corio::spawn(conn);
            Conn::H2(sender)
        } else {
            let (sender, conn) = http1::handshake(io).await.expect("h1 handshake");
            corio::spawn(conn);
            Conn::H1(sender)
        }
    }

    /// Sends one request and collects the response body.
    pub async fn request(
        &mut self,
        method: Method,
        path: &str,
        body: Bytes,
    ) -> hyper::Result<(StatusCode, Bytes)> {
        // HTTP/2 takes the full URI (:scheme, :authority), HTTP/1.1 the path.
        let uri = match self {
            Conn::H1(_) => path.to_string(),
            Conn::H2(_) => format!("http://localhost{path}"),
        };
        let req = Request::builder()
            .method(method)
            .uri(uri)
            .header(hyper::header::HOST, "localhost")
            .body(Full::new(body))
            .unwrap();
        let res = match self {
            Conn::H1(s) => {
                s.ready().await?;
                s.send_request(req).await?
            }
            Conn::H2(s) => {
                s.ready().await?;
                s.send_request(req).await?
            }
        };
        let status = res.status();
        let body = res.into_body().collect().await?.to_bytes();
        Ok((status, body))
    }

    pub async fn get(&mut self, path: &str) -> (StatusCode, Bytes) {
        self.request(Method::GET, path, Bytes::new())
            .await
            .expect("GET")
    }

    pub async fn post(&mut self, path: &str, body: Bytes) -> (StatusCode, Bytes) {
        self.request(Method::POST, path, body).await.expect("POST")
    }
}
