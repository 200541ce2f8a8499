//! `corio::compat` through the `tokio::io` traits: echo, buffered reads,
//! reads under timeout storms, writes left unflushed, shutdown, `into_inner`,
//! halves, sticky write errors and fd leaks, on both drivers.
#![cfg(feature = "tokio-io")]

mod support;

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::thread;
use std::time::{Duration, Instant};

use corio::compat::Compat;
use corio::net::{TcpListener, TcpStream};
use corio::time::timeout;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};

/// Longest wait for anything that should happen at once.
const TIMEOUT: Duration = Duration::from_secs(10);

fn pattern(i: usize) -> u8 {
    (i.wrapping_mul(31) ^ (i >> 9)) as u8
}

/// A corio server side and a std client side, connected.
async fn pair() -> (TcpStream, std::net::TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    client.set_read_timeout(Some(TIMEOUT)).unwrap();
    let (server, _) = listener.accept().await.unwrap();
    (server, client)
}

both_drivers! {
fn echo_round_trips_byte_exact() {
    let _serial = support::serial(); // the fd test counts the process's fds
    support::run(async {
        let (s, mut c) = pair().await;
        const LEN: usize = 3 << 20;
        let client = thread::spawn(move || {
            let data: Vec<u8> = (0..LEN).map(pattern).collect();
            let mut w = c.try_clone().unwrap();
            let writer = thread::spawn(move || {
                for part in data.chunks(50_000) {
                    w.write_all(part).unwrap();
                }
                w.shutdown(std::net::Shutdown::Write).unwrap();
            });
            let mut back = Vec::new();
            c.read_to_end(&mut back).unwrap();
            writer.join().unwrap();
            back
        });
        let mut io = Compat::new(s);
        let mut buf = vec![0u8; 10_000];
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
        assert_eq!(total, LEN);
        let back = client.join().unwrap();
        assert_eq!(back.len(), LEN);
        assert!(back.iter().enumerate().all(|(i, &b)| b == pattern(i)), "echo not byte-exact");
    });
}
}

both_drivers! {
fn buffered_lines_and_exact_reads() {
    let _serial = support::serial(); // the fd test counts the process's fds
    support::run(async {
        let (s, mut c) = pair().await;
        c.write_all(b"first line\nsecond\n0123456789tail").unwrap();
        c.shutdown(std::net::Shutdown::Write).unwrap();
        let mut io = Compat::new(s);
        let mut line = String::new();
        io.read_line(&mut line).await.unwrap();
        assert_eq!(line, "first line\n");
        line.clear();
        io.read_line(&mut line).await.unwrap();
        assert_eq!(line, "second\n");
        let mut ten = [0u8; 10];
        io.read_exact(&mut ten).await.unwrap();
        assert_eq!(&ten, b"0123456789");
        let mut rest = Vec::new();
        io.read_to_end(&mut rest).await.unwrap();
        assert_eq!(rest, b"tail");
        assert_eq!(io.read(&mut ten).await.unwrap(), 0, "EOF stays EOF");
    });
}
}

both_drivers! {
fn reads_under_timeout_storms_lose_nothing() {
    // A numbered stream arrives in small paced chunks while the reader keeps
    // dropping reads (zero and tiny timeouts) and reads odd sizes, so
    // leases are split and receives are dropped mid-wait thousands of times.
    const COUNT: u32 = 40_000;
    let _serial = support::serial(); // the fd test counts the process's fds
    support::run(async {
        let (s, mut c) = pair().await;
        let sender = thread::spawn(move || {
            let bytes: Vec<u8> = (0..COUNT).flat_map(u32::to_le_bytes).collect();
            for (k, part) in bytes.chunks(97).enumerate() {
                c.write_all(part).unwrap();
                if k % 2 == 0 {
                    thread::sleep(Duration::from_micros(300));
                }
            }
        });
        let mut io = Compat::new(s);
        let mut got = Vec::with_capacity(COUNT as usize * 4);
        let mut dropped = 0u64;
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut k = 0usize;
        while got.len() < COUNT as usize * 4 {
            assert!(Instant::now() < deadline, "stalled at {} bytes", got.len());
            k += 1;
            let mut buf = [0u8; 13];
            let size = 1 + k % 13;
            let wait = if k.is_multiple_of(3) { Duration::from_micros(50) } else { Duration::ZERO };
            match timeout(wait, io.read(&mut buf[..size])).await {
                Ok(n) => {
                    let n = n.unwrap();
                    assert!(n > 0, "EOF before the end");
                    got.extend_from_slice(&buf[..n]);
                }
                Err(_) => {
                    dropped += 1;
                    if dropped.is_multiple_of(64) {
                        corio::yield_now().await;
                    }
                }
            }
        }
        sender.join().unwrap();
        for (i, w) in got.chunks(4).enumerate() {
            let v = u32::from_le_bytes(w.try_into().unwrap());
            assert_eq!(v, i as u32, "number {i} lost or duplicated");
        }
        assert!(dropped >= 1000, "only {dropped} reads were dropped");
    });
}
}

both_drivers! {
fn unflushed_writes_are_sent_after_the_stream_is_dropped() {
    // 8 MiB written without a flush while the client does not read yet:
    // sends are still in flight when the compat is dropped.
    const LEN: usize = 8 << 20;
    let _serial = support::serial(); // the fd test counts the process's fds
    support::run(async {
        let (s, mut c) = pair().await;
        let reader = thread::spawn(move || {
            thread::sleep(Duration::from_millis(200));
            let mut back = Vec::new();
            c.read_to_end(&mut back).unwrap();
            back
        });
        let mut io = Compat::new(s);
        let data: Vec<u8> = (0..LEN).map(pattern).collect();
        io.write_all(&data).await.unwrap();
        drop(io);
        // The detached send needs this runtime to run: wait for the reader.
        let deadline = Instant::now() + TIMEOUT;
        while !reader.is_finished() {
            assert!(Instant::now() < deadline, "reader did not finish");
            corio::time::sleep(Duration::from_millis(5)).await;
        }
        let back = reader.join().unwrap();
        assert_eq!(back.len(), LEN);
        assert!(back == data, "not byte-exact");
    });
}
}

both_drivers! {
fn shutdown_sends_fin_and_reading_goes_on() {
    let _serial = support::serial(); // the fd test counts the process's fds
    support::run(async {
        let (s, mut c) = pair().await;
        let mut io = Compat::new(s);
        io.write_all(b"bye").await.unwrap();
        io.shutdown().await.unwrap();
        io.shutdown().await.unwrap(); // a second shutdown is fine
        let mut got = Vec::new();
        c.read_to_end(&mut got).unwrap();
        assert_eq!(got, b"bye");
        assert!(io.write_all(b"more").await.is_err(), "write after shutdown");
        c.write_all(b"still reading").unwrap();
        drop(c);
        let mut rest = Vec::new();
        io.read_to_end(&mut rest).await.unwrap();
        assert_eq!(rest, b"still reading");
    });
}
}

both_drivers! {
fn into_inner_gives_unread_bytes_back_to_the_stream() {
    let _serial = support::serial(); // the fd test counts the process's fds
    support::run(async {
        let (s, mut c) = pair().await;
        c.write_all(b"hello world").unwrap();
        let mut io = Compat::new(s);
        let mut three = [0u8; 3];
        io.read_exact(&mut three).await.unwrap();
        assert_eq!(&three, b"hel");
        let s = io.into_inner();
        let (res, buf) = s.read(vec![0u8; 64]).await;
        assert_eq!(&buf[..res.unwrap()], b"lo world");
        // And a new compat over the same stream goes on after that.
        c.write_all(b"!").unwrap();
        let mut io = Compat::new(s);
        let mut one = [0u8; 1];
        io.read_exact(&mut one).await.unwrap();
        assert_eq!(&one, b"!");
    });
}
}

both_drivers! {
fn owned_halves_in_two_tasks() {
    let _serial = support::serial(); // the fd test counts the process's fds
    support::run(async {
        let (s, mut c) = pair().await;
        let (r, w) = s.into_split();
        let (mut r, mut w) = (Compat::new(r), Compat::new(w));
        let copier = corio::spawn(async move {
            let n = tokio::io::copy(&mut r, &mut w).await.unwrap();
            w.shutdown().await.unwrap();
            n
        });
        let data: Vec<u8> = (0..200_000).map(pattern).collect();
        let mut c2 = c.try_clone().unwrap();
        let sent = data.clone();
        let writer = thread::spawn(move || {
            c2.write_all(&sent).unwrap();
            c2.shutdown(std::net::Shutdown::Write).unwrap();
        });
        let reader = thread::spawn(move || {
            let mut back = Vec::new();
            c.read_to_end(&mut back).unwrap();
            back
        });
        assert_eq!(copier.await.unwrap(), data.len() as u64);
        writer.join().unwrap();
        assert!(reader.join().unwrap() == data);
    });
}
}

both_drivers! {
fn a_failed_write_fails_every_later_write() {
    let _serial = support::serial(); // the fd test counts the process's fds
    support::run(async {
        let (s, c) = pair().await;
        // Close with RST: SO_LINGER 0.
        socket2::SockRef::from(&c).set_linger(Some(Duration::ZERO)).unwrap();
        drop(c);
        let mut io = Compat::new(s);
        let chunk = vec![7u8; 64 * 1024];
        let deadline = Instant::now() + TIMEOUT;
        let first = loop {
            assert!(Instant::now() < deadline, "writes to a reset peer never failed");
            let res = async {
                io.write_all(&chunk).await?;
                io.flush().await
            }
            .await;
            if let Err(e) = res {
                break e;
            }
        };
        assert!(
            matches!(
                first.kind(),
                std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset
            ),
            "{first:?}"
        );
        let again = io.write_all(b"x").await.unwrap_err();
        assert_eq!(again.kind(), first.kind());
        assert!(io.flush().await.is_err());
    });
}
}

/// Connects `n` clients to a compat echo server, each sending a little and
/// dropping its connection at some point (mid-read, mid-write or after EOF).
async fn churn(addr: SocketAddr, n: usize) {
    let mut clients = Vec::new();
    for i in 0..n {
        clients.push(corio::spawn(async move {
            let mut io = Compat::new(TcpStream::connect(addr).await.unwrap());
            io.write_all(&vec![i as u8; 1000 + i * 37]).await.unwrap();
            if i % 3 == 0 {
                return; // dropped with the echo unread
            }
            let mut buf = vec![0u8; 100];
            let _ = timeout(Duration::from_millis(1), io.read(&mut buf)).await;
            if i % 3 == 1 {
                io.shutdown().await.unwrap();
                let mut rest = Vec::new();
                io.read_to_end(&mut rest).await.unwrap();
            }
        }));
    }
    for c in clients {
        c.await.unwrap();
    }
}

both_drivers! {
fn no_fd_leaks_from_dropped_reads_writes_and_streams() {
    let _serial = support::serial();
    let before = support::open_fds();
    support::run(async {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = corio::spawn(async move {
            loop {
                let (s, _) = listener.accept().await.unwrap();
                corio::spawn(async move {
                    let (mut r, mut w) = tokio::io::split(Compat::new(s));
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                });
            }
        });
        churn(addr, 150).await;
        server.abort();
        // Let detached sends and closes settle.
        corio::time::sleep(Duration::from_millis(100)).await;
    });
    let deadline = Instant::now() + TIMEOUT;
    while support::open_fds() > before && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(support::open_fds(), before, "fds leaked");
}
}

both_drivers! {
fn unix_streams_and_child_pipes_work_through_the_traits() {
    let _serial = support::serial();
    support::run(async {
        // A Unix stream pair, one end through the traits.
        let (a, b) = corio::net::UnixStream::pair().unwrap();
        let mut a = Compat::new(a);
        a.write_all(b"over unix\n").await.unwrap();
        a.flush().await.unwrap();
        let (res, buf) = b.read_exact(vec![0u8; 10]).await;
        res.unwrap();
        assert_eq!(&buf, b"over unix\n");
        b.write_all(b"and back\n".as_slice()).await.0.unwrap();
        let mut line = String::new();
        tokio::io::BufReader::new(&mut a).read_line(&mut line).await.unwrap();
        assert_eq!(line, "and back\n");

        // A child's stdin and stdout: `cat` echoes what goes in.
        let mut child = corio::process::Command::new("cat")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = Compat::new(child.stdin.take().unwrap());
        let mut stdout = Compat::new(child.stdout.take().unwrap());
        let data: Vec<u8> = (0..300_000).map(pattern).collect();
        let expect = data.clone();
        let writer = corio::spawn(async move {
            stdin.write_all(&data).await.unwrap();
            stdin.shutdown().await.unwrap(); // closes the pipe: cat sees EOF
            assert!(stdin.write_all(b"late").await.is_err(), "a write after shutdown");
        });
        let mut back = Vec::new();
        timeout(TIMEOUT, stdout.read_to_end(&mut back))
            .await
            .expect("cat's output never ended")
            .unwrap();
        writer.await.unwrap();
        assert!(back == expect, "the bytes came back changed");
        assert!(child.wait().await.unwrap().success());
    });
}
}
