//! The `hyper_server` example (hyper 1.x on corio through `corio::compat`)
//! checked with real clients on both drivers: curl over HTTP/1.1 keep-alive,
//! HTTP/2 with prior knowledge and HTTPS with ALPN; 16 MiB bodies both ways;
//! clients that go away mid-body; 300 connections × 20 requests; a request
//! head that never ends; the `hyper_client` example against it and against
//! `http_server`; the axum router.
#![cfg(all(feature = "hyper", feature = "tokio-io"))]

mod compat_support;
mod support;

use std::io::{Read, Write};
use std::net::TcpStream as StdTcp;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use compat_support::{Conn, Server, TIMEOUT, curl, example_path, fnv1a, pattern};
use hyper::StatusCode;
use hyper::body::Bytes;

const MIB16: usize = 16 << 20;

fn text(out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "curl failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

both_drivers! {
fn curl_http1_keep_alive_and_http2_prior_knowledge() {
    let server = Server::start("hyper_server", &["--shards", "2"]);
    let url = server.url("/");
    let Some(out) = curl(&["-v", &url, &url, &url]) else { return };
    assert_eq!(text(&out), "Hello, world!\n".repeat(3));
    let log = String::from_utf8_lossy(&out.stderr);
    assert_eq!(log.matches("Re-using existing connection").count(), 2, "{log}");
    assert!(log.contains("HTTP/1.1 200"), "{log}");
    // One URL per run: curl 7.88 fails to reuse a prior-knowledge HTTP/2
    // connection (curl issue 10634, fixed in 8.0); the hyper client tests
    // below send many requests per HTTP/2 connection.
    let out = curl(&["--http2-prior-knowledge", "-w", " %{http_version}", &url]).unwrap();
    assert_eq!(text(&out), "Hello, world!\n 2");
    let echo = server.url("/echo");
    let out = curl(&["--http2-prior-knowledge", "--data-binary", "streamed both ways", &echo]).unwrap();
    assert_eq!(text(&out), "streamed both ways");
    let out = curl(&["-w", "%{http_code}", "-o", "/dev/null", &server.url("/nope")]).unwrap();
    assert_eq!(text(&out), "404");
}
}

#[cfg(feature = "tls")]
both_drivers! {
fn curl_https_picks_http2_or_http1_by_alpn() {
    let server = Server::start("hyper_server", &["--tls", "--shards", "1"]);
    let url = format!("https://{}/", server.addr);
    let Some(out) = curl(&["-k", "-w", " %{http_version}", &url]) else { return };
    assert_eq!(text(&out), "Hello, world!\n 2");
    let out = curl(&["-k", "--http1.1", "-w", " %{http_version}", &url, &url]).unwrap();
    assert_eq!(text(&out), "Hello, world!\n 1.1Hello, world!\n 1.1");
    let upload = format!("https://{}/upload", server.addr);
    let data: Vec<u8> = (0..1_000_000u64).map(pattern).collect();
    let path = support::unique_temp_path("corio-upload");
    std::fs::write(&path, &data).unwrap();
    let file = format!("@{}", path.display());
    let out = curl(&["-k", "--data-binary", &file, &upload]).unwrap();
    let _ = std::fs::remove_file(&path);
    assert_eq!(text(&out), format!("bytes=1000000 fnv={:016x}\n", fnv1a(&data)));
}
}

both_drivers! {
fn sixteen_mib_bodies_byte_exact_both_ways_on_http1_and_http2() {
    let server = Server::start("hyper_server", &["--shards", "1"]);
    let addr = server.addr;
    let data = Bytes::from((0..MIB16 as u64).map(pattern).collect::<Vec<u8>>());
    support::run(async move {
        for h2 in [false, true] {
            let mut conn = Conn::connect(addr, h2).await;
            let (status, body) = conn.get(&format!("/bytes/{MIB16}")).await;
            assert_eq!(status, StatusCode::OK);
            assert_eq!(body.len(), MIB16, "h2={h2}");
            assert!(body == data, "download not byte-exact (h2={h2})");
            let (_, body) = conn.post("/upload", data.clone()).await;
            let want = format!("bytes={MIB16} fnv={:016x}\n", fnv1a(&data));
            assert_eq!(body, want.as_bytes(), "h2={h2}");
            let (_, body) = conn.post("/echo", data.clone()).await;
            assert!(body == data, "echo not byte-exact (h2={h2})");
        }
    });
}
}

/// Writes a request head promising a 64 MiB body, then 1 MiB of it, and
/// closes the connection.
fn upload_and_vanish(addr: std::net::SocketAddr) {
    let mut c = StdTcp::connect(addr).unwrap();
    c.write_all(b"POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 67108864\r\n\r\n")
        .unwrap();
    c.write_all(&vec![1u8; 1 << 20]).unwrap();
}

/// Starts a 1 GiB download, reads 1 MiB of it, and closes the connection.
fn download_and_vanish(addr: std::net::SocketAddr) {
    let mut c = StdTcp::connect(addr).unwrap();
    c.set_read_timeout(Some(TIMEOUT)).unwrap();
    c.write_all(b"GET /bytes/1073741824 HTTP/1.1\r\nHost: a\r\n\r\n")
        .unwrap();
    let mut got = vec![0u8; 1 << 20];
    c.read_exact(&mut got).unwrap();
}

both_drivers! {
fn clients_that_disconnect_mid_body_cost_nothing() {
    let server = Server::start("hyper_server", &["--shards", "1"]);
    let addr = server.addr;
    // Warm up (the receive pool, the blocking pool), then count fds.
    support::run(async move {
        let mut conn = Conn::connect(addr, false).await;
        assert_eq!(conn.get("/").await.0, StatusCode::OK);
    });
    thread::sleep(Duration::from_millis(100));
    let base = server.fds();
    for _ in 0..10 {
        upload_and_vanish(addr);
        download_and_vanish(addr);
    }
    // HTTP/2: a download dropped mid-body, then the whole connection.
    support::run(async move {
        use http_body_util::BodyExt;
        for _ in 0..5 {
            let mut conn = Conn::connect(addr, true).await;
            let Conn::H2(sender) = &mut conn else { unreachable!() };
            let req = hyper::Request::get("http://localhost/bytes/1073741824")
                .body(http_body_util::Full::new(Bytes::new()))
                .unwrap();
            let res = sender.send_request(req).await.unwrap();
            let mut body = res.into_body();
            let mut got = 0;
            while got < (1 << 20) {
                let frame = body.frame().await.unwrap().unwrap();
                got += frame.data_ref().map_or(0, |d| d.len());
            }
        }
        let mut conn = Conn::connect(addr, false).await;
        assert_eq!(conn.get("/").await.1, "Hello, world!\n".as_bytes());
    });
    assert!(server.settles_to(base), "server fds: {} (was {base})", server.fds());
}
}

both_drivers! {
fn three_hundred_connections_of_twenty_requests() {
    let server = Server::start("hyper_server", &["--shards", "2"]);
    let addr = server.addr;
    let ok = support::run(async move {
        let mut tasks = Vec::new();
        for i in 0..300 {
            tasks.push(corio::spawn(async move {
                let mut conn = Conn::connect(addr, i % 2 == 1).await;
                let mut ok = 0;
                for k in 0..20 {
                    if k % 5 == 4 {
                        let body = Bytes::from(format!("request {i}.{k}"));
                        let (status, back) = conn.post("/echo", body.clone()).await;
                        assert_eq!((status, back), (StatusCode::OK, body));
                    } else {
                        let (status, body) = conn.get("/").await;
                        assert_eq!((status, &body[..]), (StatusCode::OK, &b"Hello, world!\n"[..]));
                    }
                    ok += 1;
                }
                ok
            }));
        }
        let mut ok = 0;
        for t in tasks {
            ok += t.await.unwrap();
        }
        ok
    });
    assert_eq!(ok, 6000);
}
}

both_drivers! {
fn a_request_head_that_never_ends_is_cut_off_and_others_are_served() {
    let server = Server::start("hyper_server", &["--shards", "1", "--header-timeout", "1"]);
    let addr = server.addr;
    let mut slow = StdTcp::connect(addr).unwrap();
    slow.set_read_timeout(Some(TIMEOUT)).unwrap();
    let start = Instant::now();
    slow.write_all(b"GET / HTTP/1.1\r\nHost: a\r\nX-Never-Ends: aaaa").unwrap();
    // Meanwhile other clients are served.
    let served = support::run(async move {
        let mut n = 0;
        for h2 in [false, true] {
            let mut conn = Conn::connect(addr, h2).await;
            for _ in 0..5 {
                assert_eq!(conn.get("/").await.0, StatusCode::OK);
                n += 1;
            }
        }
        n
    });
    assert_eq!(served, 10);
    let mut buf = [0u8; 1024];
    let res = loop {
        match slow.read(&mut buf) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            res => break res,
        }
    };
    let waited = start.elapsed();
    // Closed (hyper may answer 408 first), within the timeout and slack.
    match res {
        Ok(0) => {}
        Ok(n) => assert!(
            String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 408"),
            "{:?}",
            String::from_utf8_lossy(&buf[..n])
        ),
        Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}"),
    }
    assert!(waited >= Duration::from_millis(900), "cut off after {waited:?}");
    assert!(waited < TIMEOUT, "still open after {waited:?}");
}
}

fn run_client(args: &[&str]) -> String {
    let out = Command::new(example_path("hyper_client"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "hyper_client {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

both_drivers! {
fn hyper_client_example_against_hyper_server() {
    let server = Server::start("hyper_server", &["--shards", "1"]);
    let out = run_client(&["--repeat", "3", &server.url("/")]);
    assert_eq!(out, "HTTP/1.1 200 OK\nHello, world!\n".repeat(3));
    let out = run_client(&["--http2", "--data", "over h2", &server.url("/echo")]);
    assert_eq!(out, "HTTP/2.0 200 OK\nover h2");
    let out = run_client(&["-d", "abc", &server.url("/upload")]);
    assert_eq!(out, format!("HTTP/1.1 200 OK\nbytes=3 fnv={:016x}\n", fnv1a(b"abc")));
}
}

#[cfg(feature = "tls")]
both_drivers! {
fn hyper_client_example_over_tls_with_a_ca_file() {
    let server = Server::start("hyper_server", &["--tls", "--shards", "1"]);
    let ca = server
        .banner
        .iter()
        .find_map(|l| l.strip_prefix("self-signed certificate for localhost: "))
        .expect("the certificate's path")
        .trim()
        .to_string();
    let url = format!("https://localhost:{}/echo", server.addr.port());
    let out = run_client(&["--ca", &ca, "-d", "secret", &url]);
    assert_eq!(out, "HTTP/2.0 200 OK\nsecret");
    let out = Command::new(example_path("hyper_client")).arg(&url).output().unwrap();
    assert!(!out.status.success(), "https without --ca must fail");
    assert!(String::from_utf8_lossy(&out.stderr).contains("--ca"));
}
}

both_drivers! {
fn hyper_client_against_the_http_server_example() {
    let server = Server::start("http_server", &["--shards", "1"]);
    let addr = server.addr;
    support::run(async move {
        let mut conn = Conn::connect(addr, false).await;
        for _ in 0..20 {
            let (status, body) = conn.get("/").await;
            assert_eq!((status, &body[..]), (StatusCode::OK, &b"Hello, world!\n"[..]));
        }
    });
    let out = run_client(&["--repeat", "2", &server.url("/")]);
    assert_eq!(out, "HTTP/1.1 200 OK\nHello, world!\n".repeat(2));
}
}

both_drivers! {
fn axum_router_with_json_and_shared_state() {
    let server = Server::start("hyper_server", &["--axum", "--shards", "1"]);
    let Some(out) = curl(&[&server.url("/")]) else { return };
    assert_eq!(text(&out), "Hello from axum on corio!\n");
    let greet = server.url("/greet");
    let json = ["-H", "content-type: application/json", "-d"];
    let out = curl(&[json[0], json[1], json[2], r#"{"name":"corio","times":2}"#, &greet]).unwrap();
    assert_eq!(text(&out), r#"{"greeting":"Hello, corio! Hello, corio!","hits":1}"#);
    let out = curl(&["--http2-prior-knowledge", json[0], json[1], json[2], r#"{"name":"h2","times":1}"#, &greet]).unwrap();
    assert_eq!(text(&out), r#"{"greeting":"Hello, h2!","hits":2}"#);
    let out = curl(&[&server.url("/hits")]).unwrap();
    assert_eq!(text(&out), "2");
    let out = curl(&["-w", " %{http_code}", json[0], json[1], json[2], "{not json", &greet]).unwrap();
    assert!(text(&out).ends_with(" 400"), "{}", text(&out));
}
}
