//! Runs the `http_server`, `echo`, `task_group` and `chat` examples as processes and talks to them over real sockets.
//!
//! Cargo builds the examples for a plain `cargo test`, into
//! `target/<profile>/examples/`, next to the `deps/` directory holding this
//! test binary. `cargo test --test examples_http` alone does not build them:
//! run `cargo build --examples` first (the tests say so when a binary is missing).
//!
//! Each test runs twice, with the example on each driver (`CORIO_DRIVER`).

mod support;

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use corio::DriverKind;

/// Longest wait for anything the servers should do at once.
const TIMEOUT: Duration = Duration::from_secs(10);

/// Path of a compiled example: `target/<profile>/examples/<name>`, found from
/// this test's own path, `target/<profile>/deps/examples_http-<hash>`.
fn example_path(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("path of the test binary");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test binary in target/<profile>/deps");
    let path = profile_dir.join("examples").join(name);
    assert!(
        path.is_file(),
        "example binary {} not found: plain `cargo test` builds the examples, \
         `cargo test --test examples_http` does not; run `cargo build --examples` \
         (with the same profile) first",
        path.display()
    );
    // `cargo test --test examples_http` would run an old build after an edit:
    // compare with the sources cargo lists in the dep-info file next to it.
    let built = modified(&path).unwrap();
    let dep_info = std::fs::read_to_string(path.with_extension("d")).unwrap_or_default();
    let sources = dep_info.split_once(": ").map_or("", |(_, s)| s.trim());
    let sources = sources.replace("\\ ", "\0"); // escaped spaces in paths
    for source in sources.split_whitespace().map(|s| s.replace('\0', " ")) {
        if modified(Path::new(&source)).is_some_and(|t| t > built) {
            panic!(
                "example binary {} is older than {source}: run `cargo build --examples` \
                 (plain `cargo test` rebuilds the examples itself)",
                path.display()
            );
        }
    }
    path
}

fn modified(path: &Path) -> Option<std::time::SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// A running example process; killed when dropped, also when a test panics.
struct Server {
    child: Child,
    addr: SocketAddr,
    _stdout: BufReader<ChildStdout>,
}

impl Server {
    /// Starts example `name` on a port the kernel picks.
    fn start(name: &str) -> Server {
        Server::start_with(name, &[])
    }

    /// Starts example `name` with `args` after `--addr 127.0.0.1:0`.
    fn start_with(name: &str, args: &[&str]) -> Server {
        let mut cmd = Command::new(example_path(name));
        cmd.args(["--addr", "127.0.0.1:0"])
            .args(args)
            .stderr(Stdio::inherit());
        Server::spawn(cmd)
    }

    /// Spawns `cmd` on the test variant's driver and waits for its
    /// `listening on [http://]ADDR` line.
    fn spawn(mut cmd: Command) -> Server {
        let driver = match support::driver() {
            DriverKind::Uring => "uring",
            DriverKind::Poll => "poll",
            _ => "auto",
        };
        let mut child = cmd
            .env("CORIO_DRIVER", driver)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn the example");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut line = String::new();
            let res = reader.read_line(&mut line);
            let _ = tx.send((res, line, reader));
        });
        let (res, line, reader) = match rx.recv_timeout(TIMEOUT) {
            Ok(got) => got,
            Err(_) => {
                let _ = child.kill();
                panic!("the example printed no line within {TIMEOUT:?}");
            }
        };
        let addr = res.ok().and_then(|_| {
            let word = line.split_whitespace().nth(2)?;
            word.trim_start_matches("http://").parse().ok()
        });
        let Some(addr) = addr else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("expected `listening on ADDR` from the example, got {line:?}");
        };
        let server = Server {
            child,
            addr,
            _stdout: reader,
        };
        assert!(line.starts_with("listening on "), "{line:?}");
        // The example must really run on the driver asked for.
        let uring = server.has_fd("anon_inode:[io_uring]");
        match driver {
            "uring" => assert!(uring, "no io_uring fd in the example"),
            "poll" => assert!(
                !uring,
                "the example uses io_uring despite CORIO_DRIVER=poll"
            ),
            _ => {}
        }
        server
    }

    /// Whether one of the server's fds links to `target`.
    fn has_fd(&self, target: &str) -> bool {
        let dir = format!("/proc/{}/fd", self.child.id());
        std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .any(|e| std::fs::read_link(e.path()).is_ok_and(|l| l.as_os_str() == target))
    }

    /// Sends `sig` to the server process.
    fn signal(&self, sig: i32) {
        // SAFETY: kill(2) of our own child.
        assert_eq!(unsafe { libc::kill(self.child.id() as i32, sig) }, 0);
    }

    /// Waits up to `limit` for the server to exit; its status.
    fn exit_within(&mut self, limit: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the server still runs after {limit:?}"
            );
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits until a new connection to the server is refused (its
    /// listeners are closed).
    fn until_refused(&self) {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            match TcpStream::connect(self.addr) {
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => return,
                _ => {
                    assert!(Instant::now() < deadline, "new connections still accepted");
                    thread::sleep(Duration::from_millis(5));
                }
            }
        }
    }

    /// User + system CPU time of the server so far, in clock ticks.
    fn cpu_ticks(&self) -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap();
        // Fields after the `(comm)`, which may hold spaces: state is field 3,
        // utime and stime are fields 14 and 15.
        let rest = &stat[stat.rfind(')').unwrap() + 2..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A parsed HTTP response.
#[derive(Debug)]
struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        let mut found = self
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name));
        let first = found.next().map(|(_, v)| v.as_str());
        assert!(found.next().is_none(), "header {name} sent twice: {self:?}");
        first
    }
}

/// A blocking HTTP client over one connection, with a read buffer.
struct Client {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Client {
    fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(TIMEOUT)).unwrap();
        stream.set_nodelay(true).unwrap();
        Client {
            stream,
            buf: Vec::new(),
        }
    }

    fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
    }

    /// Reads more bytes into the buffer; false at end of file.
    fn fill(&mut self) -> bool {
        let mut chunk = [0u8; 16 * 1024];
        match self.stream.read(&mut chunk) {
            Ok(0) => false,
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                true
            }
            // This thread may have built an io_uring runtime (to see whether
            // io_uring works); the kernel's teardown of that ring interrupts
            // a later blocking read with a timeout once. Read again.
            Err(e) if e.kind() == io::ErrorKind::Interrupted => self.fill(),
            Err(e)
                if e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::TimedOut =>
            {
                panic!("no answer from the server within {TIMEOUT:?}")
            }
            Err(e) => panic!("read failed: {e}"),
        }
    }

    /// Reads one response; its body is Content-Length bytes, none if `head_only`.
    fn read_response(&mut self, head_only: bool) -> Response {
        let head_end = loop {
            if let Some(i) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i;
            }
            assert!(
                self.fill(),
                "connection closed mid-response: {:?}",
                self.text()
            );
        };
        let head = String::from_utf8(self.buf[..head_end].to_vec()).unwrap();
        self.buf.drain(..head_end + 4);
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap();
        let mut parts = status_line.splitn(3, ' ');
        assert_eq!(parts.next(), Some("HTTP/1.1"), "{status_line}");
        let status = parts.next().unwrap().parse().unwrap();
        assert!(
            parts.next().is_some_and(|r| !r.is_empty()),
            "no reason: {status_line}"
        );
        let headers = lines
            .map(|l| {
                let (n, v) = l.split_once(": ").expect("header line");
                (n.to_string(), v.to_string())
            })
            .collect();
        let mut resp = Response {
            status,
            headers,
            body: Vec::new(),
        };
        let len: usize = resp
            .header("content-length")
            .expect("every response has Content-Length")
            .parse()
            .unwrap();
        if !head_only {
            while self.buf.len() < len {
                assert!(self.fill(), "connection closed mid-body");
            }
            resp.body = self.buf.drain(..len).collect();
        }
        resp
    }

    fn response(&mut self) -> Response {
        self.read_response(false)
    }

    /// Asserts that the server closes the connection with nothing more to read.
    fn expect_eof(&mut self) {
        while self.fill() {}
        assert!(self.buf.is_empty(), "unexpected bytes: {:?}", self.text());
    }

    /// Asserts that nothing has arrived yet (the server must still be waiting).
    fn expect_nothing_yet(&mut self) {
        self.stream.set_nonblocking(true).unwrap();
        let res = self.stream.peek(&mut [0u8; 64]);
        self.stream.set_nonblocking(false).unwrap();
        match res {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            other => panic!("expected no response yet, got {other:?}"),
        }
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.buf).into_owned()
    }
}

fn get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n").into_bytes()
}

fn assert_hello(resp: &Response) {
    assert_eq!(resp.status, 200, "{resp:?}");
    assert_eq!(resp.header("content-type"), Some("text/plain"));
    assert_eq!(resp.header("content-length"), Some("14"));
    assert_eq!(resp.body, b"Hello, world!\n");
}

/// Sends `request` on a new connection, expects `status` with `Connection:
/// close`, then end of file.
fn expect_refused(server: &Server, request: &[u8], status: u16) {
    let mut c = Client::connect(server.addr);
    c.send(request);
    let resp = c.response();
    let shown = String::from_utf8_lossy(request);
    assert_eq!(resp.status, status, "for {shown:?}: {resp:?}");
    assert_eq!(resp.header("connection"), Some("close"), "for {shown:?}");
    assert!(!resp.body.is_empty());
    c.expect_eof();
}

both_drivers! {
fn http_get_root_says_hello_and_keeps_the_connection() {
    let server = Server::start("http_server");
    let mut c = Client::connect(server.addr);
    for _ in 0..3 {
        c.send(&get("/"));
        let resp = c.response();
        assert_hello(&resp);
        assert_eq!(resp.header("connection"), None, "1.1 keep-alive is implied");
    }
    c.send(&get("/?query=ignored"));
    assert_hello(&c.response());
    c.send(b"GET / HTTP/1.1\r\nHost: test\r\nConnection: keep-alive\r\nAccept: */*\r\n\r\n");
    assert_hello(&c.response());
}
}

both_drivers! {
fn http_head_sends_headers_only() {
    let server = Server::start("http_server");
    let mut c = Client::connect(server.addr);
    c.send(b"HEAD / HTTP/1.1\r\nHost: test\r\n\r\n");
    let resp = c.read_response(true);
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("content-length"), Some("14"));
    // Had the server sent a body, this would read it as the next response.
    c.send(&get("/"));
    assert_hello(&c.response());
}
}

both_drivers! {
fn http_unknown_path_is_404_and_keeps_the_connection() {
    let server = Server::start("http_server");
    let mut c = Client::connect(server.addr);
    c.send(&get("/missing"));
    let resp = c.response();
    assert_eq!(resp.status, 404);
    assert_eq!(resp.body, b"Not Found\n");
    assert_eq!(resp.header("connection"), None);
    c.send(&get("/"));
    assert_hello(&c.response());
}
}

both_drivers! {
fn http_other_methods_get_405() {
    let server = Server::start("http_server");
    let mut c = Client::connect(server.addr);
    c.send(b"DELETE / HTTP/1.1\r\nHost: test\r\n\r\n");
    let resp = c.response();
    assert_eq!(resp.status, 405);
    assert_eq!(resp.header("allow"), Some("GET, HEAD"));
    assert_eq!(resp.body, b"Method Not Allowed\n");
    assert_eq!(resp.header("connection"), None);
    c.send(&get("/"));
    assert_hello(&c.response());

    // A request with a body is answered, then the connection closes (the
    // server never reads bodies), without losing the response.
    let mut c = Client::connect(server.addr);
    c.send(b"POST / HTTP/1.1\r\nHost: test\r\nContent-Length: 5\r\n\r\nhello");
    let resp = c.response();
    assert_eq!(resp.status, 405);
    assert_eq!(resp.header("connection"), Some("close"));
    c.expect_eof();
}
}

both_drivers! {
fn http_pipelined_requests_are_answered_in_order() {
    let server = Server::start("http_server");
    let mut c = Client::connect(server.addr);
    let mut batch = get("/");
    batch.extend(get("/missing"));
    batch.extend(b"HEAD / HTTP/1.1\r\nHost: test\r\n\r\n");
    batch.extend(b"\r\n"); // a stray empty line between requests is allowed
    batch.extend(get("/"));
    c.send(&batch);
    assert_hello(&c.response());
    assert_eq!(c.response().status, 404);
    let head = c.read_response(true);
    assert_eq!((head.status, head.body.len()), (200, 0));
    assert_hello(&c.response());

    // More requests than fit one read of the server: requests straddle reads.
    let n = 1500;
    let batch: Vec<u8> = (0..n)
        .flat_map(|i| get(if i % 3 == 0 { "/missing" } else { "/" }))
        .collect();
    assert!(batch.len() > 32 * 1024);
    let mut writer = c.stream.try_clone().unwrap();
    let t = thread::spawn(move || writer.write_all(&batch).unwrap());
    for i in 0..n {
        let resp = c.response();
        let want = if i % 3 == 0 { 404 } else { 200 };
        assert_eq!(resp.status, want, "response {i}");
    }
    t.join().unwrap();
    c.send(&get("/"));
    assert_hello(&c.response());
}
}

both_drivers! {
fn http_request_split_across_writes() {
    let server = Server::start("http_server");
    let mut c = Client::connect(server.addr);
    c.send(b"GET / HT");
    thread::sleep(Duration::from_millis(30));
    c.send(b"TP/1.1\r\nHost: te");
    thread::sleep(Duration::from_millis(30));
    c.expect_nothing_yet();
    c.send(b"st\r\n\r\n");
    assert_hello(&c.response());

    // One byte per write, and a request ending in the same write as the next begins.
    let mut req = get("/");
    req.extend(b"GET /missing HTTP/1.1\r\n");
    for b in &req {
        c.send(&[*b]);
    }
    assert_hello(&c.response());
    c.send(b"Host: test\r\n\r\n");
    assert_eq!(c.response().status, 404);
}
}

both_drivers! {
fn http_connection_close_answers_then_closes() {
    let server = Server::start("http_server");
    let mut c = Client::connect(server.addr);
    c.send(&get("/"));
    assert_hello(&c.response());
    // The request after the one that says close is not answered.
    let mut batch = b"GET / HTTP/1.1\r\nHost: test\r\nConnection: Close\r\n\r\n".to_vec();
    batch.extend(get("/"));
    c.send(&batch);
    let resp = c.response();
    assert_hello(&resp);
    assert_eq!(resp.header("connection"), Some("close"));
    c.expect_eof();
}
}

both_drivers! {
fn http_10_closes_unless_keep_alive() {
    let server = Server::start("http_server");
    let mut c = Client::connect(server.addr);
    c.send(b"GET / HTTP/1.0\r\n\r\n");
    let resp = c.response();
    assert_hello(&resp);
    assert_eq!(resp.header("connection"), Some("close"));
    c.expect_eof();

    let mut c = Client::connect(server.addr);
    for _ in 0..2 {
        c.send(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
        let resp = c.response();
        assert_hello(&resp);
        assert_eq!(resp.header("connection"), Some("keep-alive"));
    }
    c.send(b"GET /missing HTTP/1.0\r\n\r\n");
    assert_eq!(c.response().status, 404);
    c.expect_eof();
}
}

both_drivers! {
fn http_bad_requests_get_400_and_close() {
    let server = Server::start("http_server");
    let bad: &[&[u8]] = &[
        b"garbage\r\n\r\n",
        b"GET /\r\nHost: test\r\n\r\n",
        b"GET  / HTTP/1.1\r\nHost: test\r\n\r\n",
        b"G(T / HTTP/1.1\r\nHost: test\r\n\r\n",
        b"GET / HTTP/1.1 extra\r\nHost: test\r\n\r\n",
        b"GET / FTP/1.1\r\nHost: test\r\n\r\n",
        b"GET / HTTP/1.1\r\n\r\n", // HTTP/1.1 needs Host
        b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: test\r\nno colon here\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: test\r\n folded: line\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost : test\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: test\r\nContent-Length: abc\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: test\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: test\r\nContent-Length: 99999999999999999999999\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: test\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
    ];
    for request in bad {
        expect_refused(&server, request, 400);
    }
    // The request line alone is enough to refuse: no need to wait for headers.
    let mut c = Client::connect(server.addr);
    c.send(b"\x16\x03\x01 binary junk\n");
    assert_eq!(c.response().status, 400);
    c.expect_eof();
}
}

both_drivers! {
fn http_other_versions_get_505() {
    let server = Server::start("http_server");
    expect_refused(&server, b"GET / HTTP/2.0\r\nHost: test\r\n\r\n", 505);
    expect_refused(&server, b"GET / HTTP/0.9\r\n\r\n", 505);
}
}

both_drivers! {
fn http_oversized_head_gets_431() {
    let server = Server::start("http_server");
    let head = |value_len: usize| {
        let mut r = b"GET / HTTP/1.1\r\nHost: test\r\nX-Big: ".to_vec();
        r.extend(std::iter::repeat_n(b'a', value_len));
        r.extend(b"\r\n\r\n");
        r
    };
    // Just under 8 KiB is fine...
    let small = head(8000);
    assert!(small.len() <= 8192);
    let mut c = Client::connect(server.addr);
    c.send(&small);
    assert_hello(&c.response());
    // ...over it is not, complete or not.
    let big = head(9000);
    expect_refused(&server, &big, 431);
    expect_refused(&server, &big[..big.len() - 4], 431);
    let long_line = [b"GET /".as_slice(), &[b'a'; 9000]].concat();
    expect_refused(&server, &long_line, 431);
}
}

both_drivers! {
/// Closing a socket with unread input sends a reset, which can make the
/// client lose the response; the server must drain what the client still sends.
fn http_close_with_unread_input_keeps_the_response() {
    let server = Server::start("http_server");
    let requests: [&[u8]; 2] = [
        b"POST / HTTP/1.1\r\nHost: test\r\nContent-Length: 262144\r\n\r\n",
        b"garbage\r\n",
    ];
    for (request, status) in requests.into_iter().zip([405, 400]) {
        let mut c = Client::connect(server.addr);
        let mut writer = c.stream.try_clone().unwrap();
        let mut data = request.to_vec();
        data.resize(request.len() + 256 * 1024, b'x');
        let t = thread::spawn(move || {
            writer.write_all(&data)?;
            writer.shutdown(Shutdown::Write)
        });
        let resp = c.response();
        assert_eq!(resp.status, status);
        assert_eq!(resp.header("connection"), Some("close"));
        c.expect_eof();
        t.join().unwrap().expect("the server reset the connection");
    }
}
}

both_drivers! {
fn http_half_closed_client_still_gets_its_response() {
    let server = Server::start("http_server");
    let mut c = Client::connect(server.addr);
    let mut batch = get("/");
    batch.extend(get("/missing"));
    c.send(&batch);
    c.stream.shutdown(Shutdown::Write).unwrap();
    assert_hello(&c.response());
    assert_eq!(c.response().status, 404);
    c.expect_eof();
}
}

both_drivers! {
fn http_many_clients_at_once() {
    let server = Server::start("http_server");
    let addr = server.addr;
    let clients: Vec<_> = (0..32)
        .map(|_| {
            thread::spawn(move || {
                let mut c = Client::connect(addr);
                for _ in 0..50 {
                    c.send(&get("/"));
                    assert_hello(&c.response());
                }
            })
        })
        .collect();
    for t in clients {
        t.join().unwrap();
    }
}
}

both_drivers! {
/// Out of file descriptors, accept fails with EMFILE at once, every time:
/// the server must wait between attempts, and serve again when fds free up.
fn http_accept_errors_back_off_instead_of_spinning() {
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        // 24: what the server needs to start (three runtimes: two shards and
        // the signal watcher's, each with its ring and eventfds) plus a few.
        .arg(r#"ulimit -n 24 && exec "$0" --addr 127.0.0.1:0"#)
        .arg(example_path("http_server"))
        .stderr(Stdio::piped());
    let mut server = Server::spawn(cmd);
    let errors = Arc::new(AtomicUsize::new(0));
    let first_error = Arc::new(Mutex::new(String::new()));
    let stderr = server.child.stderr.take().unwrap();
    {
        let (errors, first_error) = (errors.clone(), first_error.clone());
        thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if errors.fetch_add(1, Ordering::SeqCst) == 0 {
                    *first_error.lock().unwrap() = line;
                }
            }
        });
    }

    // More connections than the server has fds for: the kernel completes
    // them all (backlog), the server can accept only some.
    let clients: Vec<TcpStream> = (0..32)
        .map(|_| TcpStream::connect(server.addr).unwrap())
        .collect();
    let deadline = Instant::now() + TIMEOUT;
    while errors.load(Ordering::SeqCst) == 0 {
        assert!(
            Instant::now() < deadline,
            "the server never reported an accept error"
        );
        thread::sleep(Duration::from_millis(10));
    }
    let first = first_error.lock().unwrap().clone();
    assert!(first.contains("accept failed"), "{first:?}");
    assert!(first.contains("Too many open files"), "{first:?}");

    // Watch for a while: a spinning accept loop would print thousands of
    // errors and burn a whole core.
    let (errors_before, cpu_before) = (errors.load(Ordering::SeqCst), server.cpu_ticks());
    thread::sleep(Duration::from_millis(1500));
    let errors_during = errors.load(Ordering::SeqCst) - errors_before;
    let cpu_during = server.cpu_ticks() - cpu_before;
    assert!(errors_during < 30, "{errors_during} accept errors in 1.5 s");
    assert!(
        cpu_during < 75,
        "{cpu_during} CPU ticks in 1.5 s (150 = one busy core)"
    );

    // Free the fds: the server accepts again.
    drop(clients);
    let mut c = Client::connect(server.addr);
    c.send(&get("/"));
    assert_hello(&c.response());
}
}

both_drivers! {
fn echo_sends_everything_back() {
    let server = Server::start("echo");
    let mut c = Client::connect(server.addr);
    for msg in [&b"hello"[..], b"x", b"a longer line\n"] {
        c.send(msg);
        let mut got = vec![0u8; msg.len()];
        c.stream.read_exact(&mut got).unwrap();
        assert_eq!(got, msg);
    }
    // More than the server's buffer and the socket buffers hold.
    let big: Vec<u8> = (0..4 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    let mut writer = c.stream.try_clone().unwrap();
    let sent = big.clone();
    let t = thread::spawn(move || {
        writer.write_all(&sent).unwrap();
        writer.shutdown(Shutdown::Write).unwrap();
    });
    let mut got = Vec::new();
    c.stream.read_to_end(&mut got).unwrap();
    t.join().unwrap();
    assert_eq!(got.len(), big.len());
    assert!(got == big, "echoed bytes differ");
}
}

both_drivers! {
fn echo_many_clients_at_once() {
    let server = Server::start("echo");
    let addr = server.addr;
    let clients: Vec<_> = (0..16u8)
        .map(|k| {
            thread::spawn(move || {
                let mut c = Client::connect(addr);
                for i in 0..100u8 {
                    let msg = [k, i, k ^ i];
                    c.send(&msg);
                    let mut got = [0u8; 3];
                    c.stream.read_exact(&mut got).unwrap();
                    assert_eq!(got, msg);
                }
            })
        })
        .collect();
    for t in clients {
        t.join().unwrap();
    }
}
}

both_drivers! {
fn task_group_example_answers_all_but_the_silent_requests() {
    let driver = match support::driver() {
        DriverKind::Uring => "uring",
        _ => "poll",
    };
    let mut child = Command::new(example_path("task_group"))
        .arg("30")
        .env("CORIO_DRIVER", driver)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the example");
    let deadline = Instant::now() + TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("task_group did not finish within {TIMEOUT:?}");
        }
        thread::sleep(Duration::from_millis(10));
    };
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(status.success(), "{status}\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    // Requests 9, 19 and 29 are never answered; every other echo carries
    // the id the client found in its context.
    for id in (0..30).filter(|id| id % 10 != 9) {
        assert!(
            stdout.contains(&format!("request {id}: hello from request {id}\n")),
            "request {id} missing or mislabelled:\n{stdout}"
        );
    }
    for id in [9, 19, 29] {
        assert!(stdout.contains(&format!("request {id}: timed out\n")), "{stdout}");
    }
    assert!(stdout.ends_with("27 of 30 answered, 3 timed out\n"), "{stdout}");
}
}

both_drivers! {
fn http_sigterm_refuses_new_connections_finishes_requests_and_exits_zero() {
    let mut server = Server::start("http_server");
    // An idle keep-alive connection, and one with a request in flight (the
    // first half of its head is in when the signal comes).
    let mut idle = Client::connect(server.addr);
    idle.send(&get("/"));
    assert_hello(&idle.response());
    let mut busy = Client::connect(server.addr);
    busy.send(&get("/"));
    assert_hello(&busy.response());
    busy.send(b"GET / HTTP/1.1\r\nHost: test\r\n");
    thread::sleep(Duration::from_millis(50)); // let the half arrive
    server.signal(libc::SIGTERM);
    server.until_refused();
    idle.expect_eof();
    busy.expect_nothing_yet();
    busy.send(b"\r\n");
    assert_hello(&busy.response());
    busy.expect_eof();
    let status = server.exit_within(TIMEOUT);
    assert!(status.success(), "{status}");
}
}

both_drivers! {
fn http_a_second_signal_stops_at_once() {
    let mut server = Server::start("http_server");
    let mut busy = Client::connect(server.addr);
    busy.send(&get("/"));
    assert_hello(&busy.response());
    busy.send(b"GET / HTTP/1.1\r\n"); // never finished
    thread::sleep(Duration::from_millis(50));
    server.signal(libc::SIGINT);
    server.until_refused();
    // The drain would wait 10 s for `busy`; the second signal ends it.
    server.signal(libc::SIGINT);
    let status = server.exit_within(Duration::from_secs(5));
    assert!(status.success(), "{status}");
    busy.expect_eof();
}
}

/// The `chat` example (built with the `macros` feature, a default one).
#[cfg(feature = "macros")]
mod chat {
    use super::*;

    /// A chat client over a blocking socket: sends lines, reads lines.
    struct ChatClient {
        reader: BufReader<TcpStream>,
        stream: TcpStream,
    }

    impl ChatClient {
        /// Connects and reads the welcome line; returns the client and its nick.
        fn connect(addr: SocketAddr) -> (ChatClient, String) {
            let stream = TcpStream::connect(addr).unwrap();
            stream.set_read_timeout(Some(TIMEOUT)).unwrap();
            let mut c = ChatClient {
                reader: BufReader::new(stream.try_clone().unwrap()),
                stream,
            };
            let hello = c.line();
            let nick = hello
                .strip_prefix("* welcome, ")
                .and_then(|r| r.split(':').next())
                .unwrap_or_else(|| panic!("no welcome: {hello:?}"))
                .to_string();
            (c, nick)
        }

        fn send(&mut self, line: &str) {
            self.stream.write_all(line.as_bytes()).unwrap();
        }

        /// The next line, without its newline; "" at end of stream.
        fn line(&mut self) -> String {
            let mut s = String::new();
            loop {
                match self.reader.read_line(&mut s) {
                    Ok(_) => return s.trim_end_matches('\n').to_string(),
                    // See `Client::fill`.
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => panic!("chat read failed (no line within {TIMEOUT:?}?): {e}"),
                }
            }
        }

        /// Reads lines until `want`; panics at end of stream.
        fn expect(&mut self, want: &str) {
            loop {
                let got = self.line();
                if got == want {
                    return;
                }
                assert!(!got.is_empty(), "the server closed before {want:?}");
            }
        }
    }

    /// Reads until the server ends the connection: end of stream, or a reset
    /// (the server closed with input unread), which may come before its
    /// goodbye line is read.
    fn disconnected(c: &mut ChatClient) {
        loop {
            let mut s = String::new();
            match c.reader.read_line(&mut s) {
                Ok(0) => return,
                // Its own first lines (within the burst), notices, the goodbye.
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return,
                Err(e) => panic!("the server did not disconnect the client: {e}"),
            }
        }
    }

    both_drivers! {
    fn chat_broadcasts_lines_and_renames() {
        let server = Server::start("chat");
        let (mut a, an) = ChatClient::connect(server.addr);
        let (mut b, bn) = ChatClient::connect(server.addr);
        a.expect(&format!("* {bn} joined"));
        a.send("/nick alice\n");
        b.expect(&format!("* {an} is now alice"));
        a.send("hello, everyone\n");
        b.expect("alice: hello, everyone");
        a.expect("alice: hello, everyone");
        // A line split across writes is one line.
        b.send("hi ");
        thread::sleep(Duration::from_millis(20));
        b.send("there\n/quit\n");
        a.expect(&format!("{bn}: hi there"));
        a.expect(&format!("* {bn} left"));
        b.expect(&format!("{bn}: hi there"));
        assert_eq!(b.line(), "", "/quit closes the connection");
    }
    }

    both_drivers! {
    fn chat_disconnects_a_flooding_client_and_the_rest_go_on() {
        let server = Server::start_with("chat", &["--rate", "5", "--burst", "10", "--max-line", "64"]);
        let (mut a, _) = ChatClient::connect(server.addr);
        let (mut b, bn) = ChatClient::connect(server.addr);
        let (mut flood, fname) = ChatClient::connect(server.addr);
        let lines: String = (0..500).map(|i| format!("spam {i}\n")).collect();
        flood.send(&lines);
        // The goodbye, then the end; or a reset (the server closed with the
        // flood unread), which may arrive before the goodbye is read.
        disconnected(&mut flood);
        a.expect(&format!("* {fname} was disconnected for flooding"));
        // The others still chat.
        b.send("still here\n");
        a.expect(&format!("{bn}: still here"));
        // Over-long lines end a connection too, without the server buffering them.
        let (mut long, lname) = ChatClient::connect(server.addr);
        long.send(&"x".repeat(100_000));
        disconnected(&mut long);
        a.expect(&format!("* {lname} was disconnected for a bad line"));
    }
    }

    both_drivers! {
    fn chat_disconnects_a_client_that_does_not_read() {
        let server = Server::start_with(
            "chat",
            &["--rate", "1000000", "--burst", "1000000", "--history", "256", "--write-timeout", "300"],
        );
        let (a, a_name) = ChatClient::connect(server.addr);
        // A client with a tiny receive buffer that never reads.
        let slow = {
            let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
            s.set_recv_buffer_size(4096).unwrap();
            s.connect(&server.addr.into()).unwrap();
            TcpStream::from(s)
        };
        let ChatClient { mut reader, mut stream } = a;
        // Find the slow client's name from its join, then talk a lot.
        let slow_name = loop {
            let mut l = String::new();
            reader.read_line(&mut l).unwrap();
            match l.strip_prefix("* ").and_then(|r| r.strip_suffix(" joined\n")) {
                Some(n) if n != a_name => break n.to_string(),
                _ => {}
            }
        };
        let talker = thread::spawn(move || {
            // Paced, so this client's own task keeps up with the channel. Over
            // 4 MiB in all: more than the kernel buffers toward the slow client
            // (on loopback its send buffer grows to a few MiB).
            let line = format!("{}\n", "y".repeat(1000));
            for i in 0..6000 {
                if stream.write_all(line.as_bytes()).is_err() {
                    break;
                }
                if i % 20 == 0 {
                    thread::sleep(Duration::from_millis(2));
                }
            }
            stream
        });
        let deadline = Instant::now() + TIMEOUT;
        let mut seen = 0;
        loop {
            assert!(Instant::now() < deadline, "the slow client was not disconnected");
            let mut l = String::new();
            match reader.read_line(&mut l) {
                Ok(0) => panic!("the server closed the talking client"),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => panic!("{e}"),
            }
            seen += 1;
            if l.starts_with(&format!("* {slow_name} was disconnected")) {
                break;
            }
        }
        assert!(seen > 16, "the talking client was held back: {seen} lines");
        drop(slow);
        let _ = talker.join();
    }
    }
}
