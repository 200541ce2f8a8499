//! An accept cancelled after the kernel woke it for a connection does not
//! strand that connection: another accept waiting on the listener gets it.
//!
//! The kernel wakes one waiting accept per new connection. With io_uring's
//! `DEFER_TASKRUN` the woken accept runs only when the runtime next enters
//! the kernel; if its future was dropped meanwhile, the cancel lands first
//! and the accept completes with `ECANCELED`, the connection still queued
//! and the other accepts asleep. Found by the fault-injection test
//! (`driver_enter_faults.rs`), whose short submits widened that window.

mod support;

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use corio::net::{TcpListener, UnixListener};
use corio::time::{sleep, timeout};

/// Polls `fut` once with the task's own context; true when it is pending.
async fn pending_once<F: Future + ?Sized>(fut: Pin<&mut F>) -> bool {
    let mut fut = Some(fut);
    std::future::poll_fn(|cx| Poll::Ready(fut.take().unwrap().poll(cx).is_pending())).await
}

both_drivers! {
fn a_dropped_accept_woken_for_a_connection_leaves_it_to_the_next_tcp() {
    support::run(async {
        for round in 0..20 {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            // Two accepts wait in the kernel; the first in line is woken
            // for the connection, then dropped.
            let mut first = Box::pin(listener.accept());
            assert!(pending_once(first.as_mut()).await);
            let mut second = Box::pin(listener.accept());
            assert!(pending_once(second.as_mut()).await);
            sleep(Duration::from_millis(2)).await;
            let _client = std::net::TcpStream::connect(addr).unwrap();
            drop(first);
            let (s, _) = timeout(Duration::from_secs(5), second)
                .await
                .unwrap_or_else(|_| panic!("round {round}: the connection was stranded"))
                .unwrap();
            drop(s);
        }
    });
}
}

both_drivers! {
fn a_dropped_accept_woken_for_a_connection_leaves_it_to_the_next_unix() {
    support::run(async {
        let dir = support::unique_temp_path("corio-accept-cancel");
        let _ = std::fs::create_dir(&dir);
        for round in 0..20 {
            let path = dir.join(format!("{round}.sock"));
            let _ = std::fs::remove_file(&path);
            let listener = UnixListener::bind(&path).unwrap();
            let mut first = Box::pin(listener.accept());
            assert!(pending_once(first.as_mut()).await);
            let mut second = Box::pin(listener.accept());
            assert!(pending_once(second.as_mut()).await);
            sleep(Duration::from_millis(2)).await;
            let _client = std::os::unix::net::UnixStream::connect(&path).unwrap();
            drop(first);
            timeout(Duration::from_secs(5), second)
                .await
                .unwrap_or_else(|_| panic!("round {round}: the connection was stranded"))
                .unwrap();
            std::fs::remove_file(&path).unwrap();
        }
        let _ = std::fs::remove_dir(&dir);
    });
}
}

both_drivers! {
fn an_incoming_gets_the_connection_a_dropped_accept_kept() {
    support::run(async {
        for round in 0..20 {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            // A single accept waits in the kernel, and an `incoming()`
            // waits on a multishot accept; a client connects, and the
            // single accept, dropped, keeps its connection (or not: then
            // the multishot accept gets it).
            let mut single = Box::pin(listener.accept());
            assert!(pending_once(single.as_mut()).await);
            let mut incoming = listener.incoming();
            let mut next = Box::pin(incoming.next());
            assert!(pending_once(next.as_mut()).await);
            sleep(Duration::from_millis(2)).await;
            let _client = std::net::TcpStream::connect(addr).unwrap();
            sleep(Duration::from_millis(2)).await;
            drop(single);
            timeout(Duration::from_secs(5), next)
                .await
                .unwrap_or_else(|_| panic!("round {round}: the kept connection never reached incoming()"))
                .unwrap();
        }
    });
}
}
