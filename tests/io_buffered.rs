//! corio::io over real TCP sockets (both drivers): BufReader (lines,
//! records, limits, bad UTF-8, fill_buf/consume, cancel safety, lines as a
//! stream), BufWriter, copy and copy_bidirectional, and no fd leaks.

mod support;

use std::future::{Future, poll_fn};
use std::pin::pin;
use std::task::Poll;
use std::time::Duration;

use corio::io::{BufReader, BufWriter, OwnedRead, OwnedWrite, copy, copy_bidirectional};
use corio::net::{TcpListener, TcpStream};
use corio::stream::StreamExt;
use corio::time::timeout;

const GUARD: Duration = Duration::from_secs(10);

async fn guarded<F: Future>(what: &str, fut: F) -> F::Output {
    timeout(GUARD, fut)
        .await
        .unwrap_or_else(|_| panic!("{what} hung"))
}

/// A connected pair: (client, server side).
async fn pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let client = corio::spawn(async move { TcpStream::connect(addr).await.unwrap() });
    let (server, _) = guarded("accept", listener.accept()).await.unwrap();
    (client.await.unwrap(), server)
}

/// Writes `parts` one by one (each its own send), then shuts down.
fn send_parts(stream: TcpStream, parts: Vec<Vec<u8>>) -> corio::JoinHandle<()> {
    corio::spawn(async move {
        for p in parts {
            stream.write_all(p).await.0.unwrap();
            corio::time::sleep(Duration::from_micros(200)).await;
        }
        stream.shutdown(std::net::Shutdown::Write).await.unwrap();
    })
}

both_drivers! {
fn read_line_across_reads_crlf_and_eof() {
    let _serial = support::serial(); // the leak test counts fds
    support::run(async {
        let (client, server) = pair().await;
        let parts = ["he", "llo\nwor", "ld\r\n", "\n", "last"];
        let writer = send_parts(client, parts.iter().map(|p| p.as_bytes().to_vec()).collect());
        let mut r = BufReader::with_capacity(4, server);
        let mut got = Vec::new();
        loop {
            let mut line = String::new();
            let n = guarded("read_line", r.read_line(&mut line)).await.unwrap();
            if n == 0 {
                break;
            }
            assert_eq!(n, line.len());
            got.push(line);
        }
        assert_eq!(got, ["hello\n", "world\r\n", "\n", "last"]);
        writer.await.unwrap();
    });
}
}

both_drivers! {
fn over_long_lines_are_refused_without_buffering_them() {
    let _serial = support::serial(); // the leak test counts fds
    support::run(async {
        let (client, server) = pair().await;
        let big = vec![b'x'; 1 << 20];
        let mut parts = vec![b"ok\n".to_vec(), big, b"\nafter\n".to_vec()];
        parts.push(b"0123456789\n".to_vec()); // 11 bytes with its \n
        let writer = send_parts(client, parts);
        let mut r = BufReader::new(server).with_max_line_length(10);
        let mut line = String::new();
        r.read_line(&mut line).await.unwrap();
        assert_eq!(line, "ok\n");
        line.clear();
        let e = guarded("read_line", r.read_line(&mut line)).await.unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidData);
        assert!(e.to_string().contains("longer than 10"), "{e}");
        assert!(r.buffer().len() <= 10 + r.capacity(), "buffered {}", r.buffer().len());
        assert!(line.is_empty());
        // The rest of that line is refused piece by piece, then reading goes on.
        let mut errors = 0;
        loop {
            line.clear();
            match guarded("read_line", r.read_line(&mut line)).await {
                Ok(_) if line == "after\n" => break,
                Ok(_) => {}
                Err(_) => errors += 1,
            }
            assert!(r.buffer().len() <= 10 + r.capacity());
        }
        assert!(errors > 0);
        line.clear();
        let e = r.read_line(&mut line).await.unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidData, "11 bytes > 10");
        assert_eq!(r.read_line(&mut line).await.unwrap(), 0);
        writer.await.unwrap();
    });
}
}

both_drivers! {
fn invalid_utf8_and_read_until_and_fill_buf() {
    let _serial = support::serial(); // the leak test counts fds
    support::run(async {
        let (client, server) = pair().await;
        let parts = vec![b"\xff\xfe\n".to_vec(), b"a;b;".to_vec(), b"tail".to_vec()];
        let writer = send_parts(client, parts);
        let mut r = BufReader::new(server);
        let mut s = String::from("kept ");
        let e = r.read_line(&mut s).await.unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidData);
        assert_eq!(s, "kept ", "the string is left as it was");
        let mut rec = Vec::new();
        assert_eq!(r.read_until(b';', &mut rec).await.unwrap(), 2);
        assert_eq!(r.read_until(b';', &mut rec).await.unwrap(), 2);
        assert_eq!(rec, b"a;b;");
        let mut rest = Vec::new();
        loop {
            let chunk = guarded("fill_buf", r.fill_buf()).await.unwrap();
            if chunk.is_empty() {
                break;
            }
            rest.extend_from_slice(chunk);
            let n = chunk.len();
            r.consume(n);
        }
        assert_eq!(rest, b"tail");
        writer.await.unwrap();
    });
}
}

both_drivers! {
fn read_line_is_cancel_safe() {
    let _serial = support::serial(); // the leak test counts fds
    support::run(async {
        let (client, server) = pair().await;
        // Lines sent a few bytes at a time, so reads often wait mid-line.
        let text: String = (0..200).map(|i| format!("line number {i}\n")).collect();
        let parts = text.as_bytes().chunks(7).map(|c| c.to_vec()).collect();
        let writer = send_parts(client, parts);
        let mut r = BufReader::with_capacity(16, server);
        let mut got = String::new();
        let mut rng = 0x2545_F491_4F6C_DD1Du64;
        let mut dropped = 0;
        loop {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let mut line = String::new();
            let n = {
                let mut fut = pin!(r.read_line(&mut line));
                let polls = rng % 3;
                let mut out = None;
                for _ in 0..=polls {
                    if let Poll::Ready(v) = poll_fn(|cx| Poll::Ready(fut.as_mut().poll(cx))).await {
                        out = Some(v.unwrap());
                        break;
                    }
                    corio::time::sleep(Duration::from_micros(50)).await;
                }
                out
            };
            match n {
                None => dropped += 1,
                Some(0) => break,
                Some(_) => got.push_str(&line),
            }
        }
        assert_eq!(got, text);
        assert!(dropped > 0, "no read_line was dropped: the test shows nothing");
        writer.await.unwrap();
    });
}
}

both_drivers! {
fn lines_as_a_stream_and_next_line() {
    let _serial = support::serial(); // the leak test counts fds
    support::run(async {
        let (client, server) = pair().await;
        let writer = send_parts(client, vec![b"a\r\nb\nc".to_vec(), b"\nd".to_vec()]);
        let mut lines = BufReader::new(server).lines();
        assert_eq!(guarded("next", lines.next()).await.unwrap().unwrap(), "a");
        assert_eq!(lines.next_line().await.unwrap().as_deref(), Some("b"));
        assert_eq!(guarded("next", lines.next()).await.unwrap().unwrap(), "c");
        assert_eq!(guarded("next", lines.next()).await.unwrap().unwrap(), "d");
        assert!(lines.next().await.is_none());
        assert!(lines.next_line().await.unwrap().is_none());
        assert!(lines.into_inner().is_some());
        writer.await.unwrap();
    });
}
}

both_drivers! {
fn buf_writer_gathers_small_writes() {
    let _serial = support::serial(); // the leak test counts fds
    support::run(async {
        let (client, server) = pair().await;
        let mut w = BufWriter::with_capacity(64, client);
        for i in 0..10u8 {
            let (res, _) = w.write(vec![b'0' + i]).await;
            assert_eq!(res.unwrap(), 1);
        }
        assert_eq!(w.buffer(), b"0123456789");
        {
            // Nothing sent yet.
            let mut peek = pin!(server.read(vec![0u8; 64]));
            assert!(!poll_fn(|cx| Poll::Ready(peek.as_mut().poll(cx).is_ready())).await);
            w.flush().await.unwrap();
            let (res, buf) = guarded("read", peek).await;
            assert_eq!(&buf[..res.unwrap()], b"0123456789");
        }
        // A write larger than the buffer goes straight through, after the buffered bytes.
        w.write_all(b"ab".as_slice()).await.0.unwrap();
        w.write_all(vec![b'z'; 100]).await.0.unwrap();
        w.shutdown().await.unwrap();
        let mut all = Vec::new();
        let mut r = BufReader::new(server);
        r.read_until(b'\0', &mut all).await.unwrap();
        assert_eq!(all.len(), 102);
        assert_eq!(&all[..3], b"abz");
    });
}
}

both_drivers! {
fn buf_writer_refuses_writes_after_a_dropped_flush() {
    let _serial = support::serial(); // the leak test counts fds
    support::run(async {
        let (client, _server) = pair().await;
        let mut w = BufWriter::with_capacity(1 << 20, client);
        // Fill the socket's buffers so a flush must wait, then drop it.
        let big = vec![1u8; 8 << 20];
        w.write_all(big[..(1 << 20) - 1].to_vec()).await.0.unwrap();
        let mut stalled = false;
        for _ in 0..20 {
            let ready = {
                let mut f = pin!(w.flush());
                poll_fn(|cx| Poll::Ready(f.as_mut().poll(cx).is_ready())).await
            };
            if !ready {
                stalled = true;
                break;
            }
            w.write_all(big[..(1 << 20) - 1].to_vec()).await.0.unwrap();
        }
        assert!(stalled, "the peer never filled up");
        let e = w.write(b"x".as_slice()).await.0.unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe);
        assert!(w.flush().await.is_err());
    });
}
}

both_drivers! {
fn buf_reader_reads_and_writes_through() {
    let _serial = support::serial(); // the leak test counts fds
    support::run(async {
        let (client, server) = pair().await;
        let mut c = BufReader::new(client);
        let mut s = BufReader::with_capacity(8, server);
        c.write_all(b"hello world, this is long".as_slice()).await.0.unwrap();
        let (res, buf) = s.read_exact(vec![0u8; 5].into_boxed_slice()).await;
        res.unwrap();
        assert_eq!(&buf[..], b"hello");
        // A big buffer with nothing buffered reads from the stream directly.
        let (res, buf) = s.read(Vec::with_capacity(64)).await;
        let n = res.unwrap();
        assert!(n > 0 && buf.starts_with(b" world"[..n.min(6)].as_ref()));
        s.shutdown().await.unwrap();
        let (res, _) = c.read(vec![0u8; 8]).await;
        assert_eq!(res.unwrap(), 0);
    });
}
}

both_drivers! {
fn copy_echo_and_bidirectional_proxy() {
    let _serial = support::serial(); // the leak test counts fds
    support::run(async {
        // Echo through copy() on the two halves of one stream.
        let (client, server) = pair().await;
        let echo = corio::spawn(async move {
            let (mut r, mut w) = server.into_split();
            copy(&mut r, &mut w).await.unwrap()
        });
        let data: Vec<u8> = (0..100_000u32).map(|i| i as u8).collect();
        let (cr, cw) = client.into_split();
        let sender = {
            let data = data.clone();
            corio::spawn(async move {
                let mut cw = cw;
                cw.write_all(data).await.0.unwrap();
                OwnedWrite::shutdown(&mut cw).await.unwrap();
            })
        };
        let mut back = Vec::new();
        let mut cr = BufReader::new(cr);
        loop {
            let chunk = guarded("echo back", cr.fill_buf()).await.unwrap();
            if chunk.is_empty() {
                break;
            }
            back.extend_from_slice(chunk);
            let n = chunk.len();
            cr.consume(n);
        }
        assert_eq!(back, data);
        sender.await.unwrap();
        assert_eq!(guarded("echo", echo).await.unwrap(), data.len() as u64);

        // A proxy: client <-> (a, b) <-> backend.
        let (client, a) = pair().await;
        let (b, backend) = pair().await;
        let proxy = corio::spawn(async move { copy_bidirectional(&a, &b).await.unwrap() });
        let backend_task = corio::spawn(async move {
            let mut r = BufReader::new(backend);
            let mut line = String::new();
            r.read_line(&mut line).await.unwrap();
            r.write_all(format!("re: {line}").into_bytes()).await.0.unwrap();
            OwnedWrite::shutdown(&mut r).await.unwrap();
            let mut rest = Vec::new();
            r.read_until(b'\n', &mut rest).await.unwrap();
            rest
        });
        client.write_all(b"ping\n".as_slice()).await.0.unwrap();
        let mut r = BufReader::new(&client);
        let mut line = String::new();
        guarded("reply", r.read_line(&mut line)).await.unwrap();
        assert_eq!(line, "re: ping\n");
        client.shutdown(std::net::Shutdown::Write).await.unwrap();
        assert_eq!(guarded("backend", backend_task).await.unwrap(), b"");
        let (up, down) = guarded("proxy", proxy).await.unwrap();
        assert_eq!((up, down), (5, 9));
    });
}
}

both_drivers! {
fn dropped_buffered_reads_leak_no_fd() {
    let _serial = support::serial();
    let before = support::open_fds();
    support::run(async {
        for _ in 0..50 {
            let (client, server) = pair().await;
            let mut r = BufReader::new(server);
            let mut line = String::new();
            let mut fut = pin!(r.read_line(&mut line));
            assert!(!poll_fn(|cx| Poll::Ready(fut.as_mut().poll(cx).is_ready())).await);
            drop(client);
        }
    });
    let deadline = std::time::Instant::now() + GUARD;
    while support::open_fds() > before && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(support::open_fds(), before);
}
}
