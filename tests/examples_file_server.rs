//! Runs the `file_server` example as a process (on each driver) and checks
//! 200/206/416/404/403 answers and body bytes over one keep-alive connection.
//!
//! `cargo test --test examples_file_server` alone does not build the
//! example: run `cargo build --examples` first (plain `cargo test` does).

mod fs_util;
mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use corio::DriverKind;
use fs_util::TempDir;

/// `target/<profile>/examples/file_server`, next to this test's `deps/`.
fn example_path() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(Path::parent).unwrap();
    let path = dir.join("examples").join("file_server");
    assert!(
        path.is_file(),
        "{} not found: run `cargo build --examples` first",
        path.display()
    );
    path
}

/// The example, killed on drop.
struct Server(Child, SocketAddr);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(root: &Path) -> Server {
    let driver = match support::driver() {
        DriverKind::Poll => "poll",
        _ => "uring",
    };
    let mut child = Command::new(example_path())
        .args(["--addr", "127.0.0.1:0", "--root"])
        .arg(root)
        .env("CORIO_DRIVER", driver)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .split_whitespace()
        .nth(2)
        .and_then(|w| w.trim_start_matches("http://").parse().ok());
    let Some(addr) = addr else {
        let _ = child.kill();
        panic!("expected `listening on http://ADDR`, got {line:?}");
    };
    Server(child, addr)
}

/// One answer: status code, headers (lower-case names), body.
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Sends a GET for `path` (with extra header lines) and reads the answer.
fn get(conn: &mut BufReader<TcpStream>, path: &str, extra: &str) -> Answer {
    let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\n{extra}\r\n");
    conn.get_mut().write_all(req.as_bytes()).unwrap();
    let mut line = String::new();
    conn.read_line(&mut line).unwrap();
    let status = line.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        conn.read_line(&mut h).unwrap();
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (n, v) = h.split_once(':').unwrap();
        headers.push((n.to_ascii_lowercase(), v.trim().to_string()));
    }
    let mut a = Answer {
        status,
        headers,
        body: Vec::new(),
    };
    let len: usize = a.header("content-length").unwrap().parse().unwrap();
    a.body = vec![0; len];
    conn.read_exact(&mut a.body).unwrap();
    a
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 13 + i / 257) as u8).collect()
}

both_drivers! {
    fn the_file_server_answers_files_ranges_and_refusals() {
        let _dog = support::watchdog(Duration::from_secs(60), "file_server");
        let outside = TempDir::new("file-server-outside");
        std::fs::write(outside.join("secret"), b"secret").unwrap();
        let dir = TempDir::new("file-server-root");
        let data = pattern(300_001);
        std::fs::write(dir.join("a.bin"), &data).unwrap();
        std::fs::create_dir(dir.join("sub")).unwrap();
        std::fs::write(dir.join("sub").join("index.html"), b"<p>hi</p>").unwrap();
        std::os::unix::fs::symlink(outside.join("secret"), dir.join("out")).unwrap();
        std::os::unix::fs::symlink(dir.join("a.bin"), dir.join("in")).unwrap();
        let server = start(dir.path());
        let stream = TcpStream::connect(server.1).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut conn = BufReader::new(stream);

        let a = get(&mut conn, "/a.bin", "");
        assert_eq!(a.status, 200);
        assert!(a.body == data, "the whole file");

        let a = get(&mut conn, "/a.bin", "Range: bytes=1000-70999\r\n");
        assert_eq!(a.status, 206);
        assert_eq!(a.header("content-range"), Some("bytes 1000-70999/300001"));
        assert!(a.body == data[1000..71000]);

        let a = get(&mut conn, "/a.bin", "Range: bytes=-10\r\n");
        assert_eq!(a.status, 206);
        assert!(a.body == data[data.len() - 10..]);

        let a = get(&mut conn, "/a.bin", "Range: bytes=299990-\r\n");
        assert_eq!(a.status, 206);
        assert!(a.body == data[299_990..]);

        for bad in ["bytes=300001-", "bytes=9-3", "bytes=x-1", "bytes=-0"] {
            let a = get(&mut conn, "/a.bin", &format!("Range: {bad}\r\n"));
            assert_eq!(a.status, 416, "{bad}");
            assert_eq!(a.header("content-range"), Some("bytes */300001"));
        }

        assert_eq!(get(&mut conn, "/sub/", "").body, b"<p>hi</p>");
        assert_eq!(get(&mut conn, "/nope.txt", "").status, 404);
        assert_eq!(get(&mut conn, "/../secret", "").status, 403);
        assert_eq!(get(&mut conn, "/sub/%2e%2e/%2e%2e/etc/passwd", "").status, 403);
        assert_eq!(get(&mut conn, "/out", "").status, 403, "a symlink out of the root");
        let a = get(&mut conn, "/in", "");
        assert_eq!(a.status, 200, "a symlink inside the root");
        assert!(a.body == data);

        // Still the same keep-alive connection after all of that.
        let a = get(&mut conn, "/a.bin", "Connection: close\r\n");
        assert_eq!(a.status, 200);
        let mut rest = Vec::new();
        assert_eq!(conn.read_to_end(&mut rest).unwrap(), 0, "closed as asked");
    }
}
