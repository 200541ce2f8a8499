//! An accept loop that cannot spin: under `EMFILE` a loop that retries at
//! once gets the error each time but costs almost no CPU (the listener backs
//! off: 1 ms doubling to 100 ms), and serves the waiting client as soon as
//! the runtime closes an fd, not when the back-off ends.
//!
//! Each test runs in a child process (it lowers `RLIMIT_NOFILE` for the
//! whole process). The CPU check is a budget, not a speed measurement: the
//! goal is under 5 % of a core; the test allows 25 % (five times the goal,
//! for a loaded machine and a debug build) and prints the figure. Before
//! the back-off such a loop took 100 % of a core (about 1.5 million errors
//! a second).

mod support;

use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use corio::net::{TcpListener, TcpStream, UdpSocket, UnixListener, UnixStream};
use corio::stream::StreamExt;

const CHILD_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the naive loop runs.
const LOOP: Duration = Duration::from_secs(1);
/// The CPU budget of the loop, as a share of `LOOP` (see the module docs).
const CPU_BUDGET: f64 = 0.25;

/// Makes the lowest free fd number the limit: no new fd can be opened.
fn exhaust_fds() {
    let mut lowest = 0;
    // SAFETY: F_GETFD only queries a descriptor; a free number gives EBADF.
    while unsafe { libc::fcntl(lowest, libc::F_GETFD) } != -1 {
        lowest += 1;
    }
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit into `lim`.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) }, 0);
    lim.rlim_cur = lowest as libc::rlim_t;
    // SAFETY: setrlimit reads one valid rlimit; this child runs only this test.
    let rc = unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) };
    assert_eq!(rc, 0, "setrlimit: {}", io::Error::last_os_error());
}

/// One accept by some method, keeping the connection it gets.
trait AcceptOnce {
    async fn accept(&mut self) -> io::Result<()>;
}

struct TcpAccept<'a>(&'a TcpListener, Option<TcpStream>);

impl AcceptOnce for TcpAccept<'_> {
    async fn accept(&mut self) -> io::Result<()> {
        self.1 = Some(self.0.accept().await?.0);
        Ok(())
    }
}

struct TcpIncoming<'a>(corio::net::Incoming<'a>, Option<TcpStream>);

impl AcceptOnce for TcpIncoming<'_> {
    async fn accept(&mut self) -> io::Result<()> {
        // The Stream impl, as a `while let` loop would use it.
        self.1 = Some(StreamExt::next(&mut self.0).await.unwrap()?);
        Ok(())
    }
}

struct UnixAccept<'a>(&'a UnixListener, Option<UnixStream>);

impl AcceptOnce for UnixAccept<'_> {
    async fn accept(&mut self) -> io::Result<()> {
        self.1 = Some(self.0.accept().await?.0);
        Ok(())
    }
}

struct UnixIncoming<'a>(corio::net::unix::Incoming<'a>, Option<UnixStream>);

impl AcceptOnce for UnixIncoming<'_> {
    async fn accept(&mut self) -> io::Result<()> {
        self.1 = Some(self.0.next().await?);
        Ok(())
    }
}

/// The naive loop: `accept` retried at once on every error, for `LOOP`;
/// then a freed fd; returns nothing, asserts everything.
async fn naive_loop_then_free(acceptor: &mut impl AcceptOnce) {
    // An fd the runtime owns and will close: freeing it is what should wake
    // the waiting accept.
    let spare = UdpSocket::bind("127.0.0.1:0").unwrap();
    exhaust_fds();
    let cpu = support::cpu_time();
    let start = Instant::now();
    let mut errors = 0u64;
    while start.elapsed() < LOOP {
        let e = acceptor
            .accept()
            .await
            .expect_err("no fd is free: the accept must fail");
        assert_eq!(e.raw_os_error(), Some(libc::EMFILE), "{e:?}");
        errors += 1;
    }
    let used = support::cpu_time() - cpu;
    let wall = start.elapsed();
    let share = used.as_secs_f64() / wall.as_secs_f64();
    eprintln!(
        "naive accept loop under EMFILE: {errors} errors in {wall:?}, CPU {used:?} ({:.1} % of a core)",
        share * 100.0
    );
    assert!(
        share < CPU_BUDGET,
        "the loop spun: {:.1} % of a core ({errors} errors)",
        share * 100.0
    );
    assert!(errors < 1_000, "{errors} errors in {wall:?}: no back-off");

    // The back-off is at its longest (100 ms) now. Fail once more, free an
    // fd through the runtime at once: the next accept must not wait for the
    // back-off to end.
    acceptor.accept().await.expect_err("still no fd");
    drop(spare);
    let freed = Instant::now();
    acceptor
        .accept()
        .await
        .expect("an fd was freed: the accept must succeed");
    let latency = freed.elapsed();
    eprintln!("served {latency:?} after the runtime closed an fd");
    assert!(
        latency < Duration::from_millis(100),
        "served {latency:?} after an fd was freed: woken by the back-off timer, not the close"
    );
}

/// A TCP client that connected before the fds ran out: it must get its
/// byte echoed once it is accepted.
fn tcp_client(addr: std::net::SocketAddr) -> std::thread::JoinHandle<()> {
    let mut c = std::net::TcpStream::connect(addr).unwrap();
    std::thread::spawn(move || {
        c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        c.write_all(b"x").unwrap();
        let mut b = [0u8; 1];
        c.read_exact(&mut b).unwrap();
        assert_eq!(&b, b"x");
    })
}

async fn echo_one_tcp(s: corio::net::TcpStream) {
    let (res, buf) = s.read(vec![0u8; 1]).await;
    assert_eq!(res.unwrap(), 1);
    s.write_all(buf).await.0.unwrap();
}

macro_rules! child_test {
    ($name:ident, $body:block) => {
        both_drivers! {
        fn $name() {
            if !support::is_child(stringify!($name)) {
                support::run_in_child(stringify!($name), CHILD_TIMEOUT);
                return;
            }
            support::run(async $body);
        }
        }
    };
}

child_test!(tcp_accept_backs_off_under_emfile, {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = tcp_client(listener.local_addr().unwrap());
    let mut acceptor = TcpAccept(&listener, None);
    naive_loop_then_free(&mut acceptor).await;
    echo_one_tcp(acceptor.1.take().unwrap()).await;
    client.join().unwrap();
});

child_test!(tcp_incoming_backs_off_under_emfile, {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = tcp_client(listener.local_addr().unwrap());
    let mut acceptor = TcpIncoming(listener.incoming(), None);
    naive_loop_then_free(&mut acceptor).await;
    echo_one_tcp(acceptor.1.take().unwrap()).await;
    client.join().unwrap();
});

/// A Unix listener on a fresh path, and a client connected to it.
fn unix_pair(
    tag: &str,
) -> (
    UnixListener,
    std::os::unix::net::UnixStream,
    std::path::PathBuf,
) {
    let path = std::env::temp_dir().join(format!(
        "corio-backoff-{tag}-{:?}-{}.sock",
        support::driver(),
        std::process::id()
    ));
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path).unwrap();
    let client = std::os::unix::net::UnixStream::connect(&path).unwrap();
    (listener, client, path)
}

child_test!(unix_accept_backs_off_under_emfile, {
    let (listener, client, path) = unix_pair("accept");
    let mut acceptor = UnixAccept(&listener, None);
    naive_loop_then_free(&mut acceptor).await;
    let s = acceptor.1.take().unwrap();
    s.write_all(b"y".as_slice()).await.0.unwrap();
    let mut b = [0u8; 1];
    (&client).read_exact(&mut b).unwrap();
    assert_eq!(&b, b"y");
    assert!(client.as_raw_fd() >= 0);
    std::fs::remove_file(path).unwrap();
});

child_test!(unix_incoming_backs_off_under_emfile, {
    let (listener, client, path) = unix_pair("incoming");
    let mut acceptor = UnixIncoming(listener.incoming(), None);
    naive_loop_then_free(&mut acceptor).await;
    let s = acceptor.1.take().unwrap();
    s.write_all(b"z".as_slice()).await.0.unwrap();
    let mut b = [0u8; 1];
    (&client).read_exact(&mut b).unwrap();
    assert_eq!(&b, b"z");
    std::fs::remove_file(path).unwrap();
});
