//! `corio::compat::hyper` in one process, on both drivers: hyper's HTTP/1.1
//! and HTTP/2 server and client connections with `CorioExecutor` and
//! `CorioTimer`, `header_read_timeout`, the timer's sleeps, and no fd left
//! behind by connections dropped mid-request.
#![cfg(all(feature = "hyper", feature = "tokio-io"))]

mod compat_support;
mod support;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::pin;
use std::thread;
use std::time::{Duration, Instant};

use compat_support::{Conn, TIMEOUT};
use corio::compat::Compat;
use corio::compat::hyper::{CorioExecutor, CorioTimer};
use corio::net::TcpListener;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::rt::Timer;
use hyper::server::conn::{http1, http2};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};

thread_local! {
    /// `/slow` handlers running now, and the most at once.
    static ACTIVE: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    static MOST: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

async fn handle(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path().to_string();
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    Ok(Response::new(Full::new(match path.as_str() {
        "/slow" => {
            let now = ACTIVE.with(|a| {
                a.set(a.get() + 1);
                a.get()
            });
            MOST.with(|m| m.set(m.get().max(now)));
            corio::time::sleep(Duration::from_millis(200)).await;
            ACTIVE.with(|a| a.set(a.get() - 1));
            Bytes::from_static(b"slow")
        }
        _ => Bytes::from(format!("{path} {}", body.len())),
    })))
}

/// A server task accepting forever: HTTP/2 when `h2`.
fn serve(h2: bool, header_timeout: Duration) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    corio::spawn(async move {
        loop {
            let (s, _) = listener.accept().await.unwrap();
            corio::spawn(async move {
                let io = Compat::new(s);
                let _ = if h2 {
                    http2::Builder::new(CorioExecutor)
                        .timer(CorioTimer)
                        .serve_connection(io, service_fn(handle))
                        .await
                } else {
                    http1::Builder::new()
                        .timer(CorioTimer)
                        .header_read_timeout(header_timeout)
                        .serve_connection(io, service_fn(handle))
                        .await
                };
            });
        }
    });
    addr
}

both_drivers! {
fn http1_and_http2_connections_in_one_runtime() {
    let _serial = support::serial(); // one test counts the process's fds
    support::run(async {
        for h2 in [false, true] {
            let addr = serve(h2, Duration::from_secs(5));
            let mut conn = Conn::connect(addr, h2).await;
            for i in 0..50usize {
                let body = Bytes::from(vec![b'x'; i * 100]);
                let (status, back) = conn.post(&format!("/n{i}"), body).await;
                assert_eq!(status, StatusCode::OK);
                assert_eq!(back, format!("/n{i} {}", i * 100).as_bytes());
            }
            if h2 {
                // Streams run concurrently, as tasks on the executor.
                let Conn::H2(sender) = conn else { unreachable!() };
                let mut tasks = Vec::new();
                for _ in 0..10 {
                    let mut sender = sender.clone();
                    tasks.push(corio::spawn(async move {
                        let req = Request::get("http://localhost/slow").body(Full::new(Bytes::new())).unwrap();
                        let res = sender.send_request(req).await.unwrap();
                        res.into_body().collect().await.unwrap().to_bytes()
                    }));
                }
                for t in tasks {
                    assert_eq!(t.await.unwrap(), "slow".as_bytes());
                }
                let most = MOST.with(|m| m.get());
                assert!(most > 1, "the slow requests ran one at a time");
            }
        }
    });
}
}

both_drivers! {
fn header_read_timeout_runs_on_corio_timers() {
    let _serial = support::serial();
    support::run(async {
        let addr = serve(false, Duration::from_millis(300));
        let slow = corio::net::TcpStream::connect(addr).await.unwrap();
        let (res, _) = slow.write_all(b"GET / HTTP/1.1\r\nHost: a\r\n".as_slice()).await;
        res.unwrap();
        let start = Instant::now();
        let mut conn = Conn::connect(addr, false).await;
        assert_eq!(conn.get("/other").await.1, "/other 0".as_bytes());
        let mut got = Vec::new();
        loop {
            let (res, buf) = corio::time::timeout(TIMEOUT, slow.read(vec![0u8; 512])).await.unwrap();
            match res {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
        let waited = start.elapsed();
        assert!(got.is_empty() || got.starts_with(b"HTTP/1.1 408"), "{got:?}");
        assert!(waited >= Duration::from_millis(250) && waited < TIMEOUT, "{waited:?}");
    });
}
}

both_drivers! {
fn timer_sleeps_fire_and_reset() {
    let _serial = support::serial();
    support::run(async {
        let timer = CorioTimer;
        let start = Instant::now();
        timer.sleep(Duration::from_millis(20)).await;
        assert!(start.elapsed() >= Duration::from_millis(20));
        timer.sleep_until(Instant::now() - Duration::from_secs(1)).await;
        let mut sleep = timer.sleep(Duration::from_secs(3600));
        {
            let mut polled = pin!(std::future::poll_fn(|cx| {
                let _ = sleep.as_mut().poll(cx);
                std::task::Poll::Ready(())
            }));
            (&mut polled).await;
        }
        let start = Instant::now();
        timer.reset(&mut sleep, Instant::now() + Duration::from_millis(10));
        sleep.await;
        assert!(start.elapsed() < Duration::from_secs(60));
    });
}
}

#[test]
#[allow(clippy::async_yields_async)] // the sleep is returned, not awaited
fn a_sleep_polled_on_another_thread_panics_with_a_message() {
    let _serial = support::serial();
    let rt = corio::Runtime::new().unwrap();
    let mut sleep = rt.block_on(async {
        let mut sleep = CorioTimer.sleep(Duration::from_secs(3600));
        std::future::poll_fn(|cx| {
            assert!(sleep.as_mut().poll(cx).is_pending());
            std::task::Poll::Ready(())
        })
        .await;
        sleep
    });
    let res = thread::spawn(move || {
        let rt = corio::Runtime::new().unwrap();
        let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            rt.block_on(std::future::poll_fn(|cx| {
                let _ = sleep.as_mut().poll(cx);
                std::task::Poll::Ready(())
            }))
        }));
        // Dropped here, on the wrong thread: leaked, not touched.
        drop(sleep);
        out
    })
    .join()
    .unwrap();
    let err = res.unwrap_err();
    let msg = err.downcast_ref::<&str>().copied().unwrap_or_default();
    assert!(msg.contains("another thread"), "{msg}");
}

both_drivers! {
fn connections_dropped_mid_request_leave_no_fd() {
    let _serial = support::serial();
    let before = support::open_fds();
    support::run(async {
        let a1 = serve(false, Duration::from_secs(5));
        let a2 = serve(true, Duration::from_secs(5));
        for i in 0..40 {
            let (addr, h2) = if i % 2 == 0 { (a1, false) } else { (a2, true) };
            let mut conn = Conn::connect(addr, h2).await;
            // Dropped while the server sleeps in the handler.
            let _ = corio::time::timeout(Duration::from_millis(5), conn.get("/slow")).await;
        }
        corio::time::sleep(Duration::from_millis(300)).await;
    });
    let deadline = Instant::now() + TIMEOUT;
    while support::open_fds() > before && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(support::open_fds(), before, "fds leaked");
}
}
