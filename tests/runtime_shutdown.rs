//! `Handle`: spawning from other threads, graceful shutdown (accepts
//! refused, tasks finish until the deadline, then are dropped with their
//! fds), on a plain runtime and on shards.

mod support;

use std::io::{Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use corio::net::TcpListener;
use corio::runtime::{Handle, is_shutting_down};
use corio::shard::{RunError, ShardId};
use corio::time::{sleep, timeout};

/// Bound for every wait here: a hang fails the test instead.
const GUARD: Duration = Duration::from_secs(20);
/// A grace period no test waits for: reaching it fails the test.
const LONG: Duration = Duration::from_secs(3600);

both_drivers! {
fn spawn_from_other_threads() {
    let rt = support::runtime();
    let handle = rt.handle();
    assert_eq!(handle.shards(), 1);
    let from_thread = std::thread::spawn({
        let handle = handle.clone();
        move || handle.spawn(async { corio::shard::current().id().index() + 41 })
    })
    .join()
    .unwrap();
    rt.block_on(async {
        assert_eq!(timeout(GUARD, from_thread).await.unwrap().unwrap(), 41);
        let current = Handle::current();
        assert_eq!(current.spawn(async { 7 }).await.unwrap(), 7);
        assert!(!current.is_shutting_down() && !is_shutting_down());
    });
    assert!(!is_shutting_down(), "outside a runtime");

    // On shards: round robin, or a chosen shard.
    let shards = support::builder()
        .shards(2)
        .start(|_| async { Handle::current().shutdown_requested().await })
        .unwrap();
    let handle = shards.handle();
    assert_eq!(handle.shards(), 2);
    let rt = support::runtime();
    let ids = rt.block_on(async {
        let a = handle.spawn(async { corio::shard::current().id() });
        let b = handle.spawn(async { corio::shard::current().id() });
        let c = handle.spawn_on(ShardId::new(1), async { corio::shard::current().id() });
        let mut ids = vec![a.await.unwrap(), b.await.unwrap()];
        ids.sort();
        (ids, c.await.unwrap())
    });
    assert_eq!(ids, (vec![ShardId::new(0), ShardId::new(1)], ShardId::new(1)));
    handle.shutdown(LONG);
    assert_eq!(shards.join().unwrap(), vec![(), ()]);
}
}

both_drivers! {
fn shutdown_refuses_accepts_and_lets_requests_finish() {
    let rt = support::runtime();
    let handle = rt.handle();
    rt.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let served = Arc::new(AtomicUsize::new(0));
        let received = Arc::new(AtomicUsize::new(0));
        let server = corio::spawn({
            let (served, received) = (served.clone(), received.clone());
            async move {
                loop {
                    let (stream, _) = match listener.accept().await {
                        Ok(conn) => conn,
                        Err(_) if is_shutting_down() => return, // drops the listener
                        Err(e) => panic!("accept: {e}"),
                    };
                    let (served, received) = (served.clone(), received.clone());
                    corio::spawn(async move {
                        // A slow request: in flight when the shutdown starts.
                        let (res, buf) = stream.read(vec![0u8; 16]).await;
                        let n = res.unwrap();
                        received.fetch_add(1, Ordering::SeqCst);
                        sleep(Duration::from_millis(100)).await;
                        stream.write_all(buf.into_iter().take(n).collect::<Vec<_>>()).await.0.unwrap();
                        served.fetch_add(1, Ordering::SeqCst);
                    });
                }
            }
        });
        // A blocking client on a thread: sends, then waits for the answer.
        let client = std::thread::spawn(move || {
            let mut s = std::net::TcpStream::connect(addr).unwrap();
            s.write_all(b"ping").unwrap();
            let mut got = [0u8; 4];
            s.read_exact(&mut got).unwrap();
            got
        });
        // Wait until the request is in flight.
        let deadline = std::time::Instant::now() + GUARD;
        while received.load(Ordering::SeqCst) == 0 {
            assert!(std::time::Instant::now() < deadline);
            sleep(Duration::from_millis(1)).await;
        }
        assert_eq!(served.load(Ordering::SeqCst), 0);
        // From another thread, as a signal watcher would.
        let h = handle.clone();
        std::thread::spawn(move || h.shutdown(LONG)).join().unwrap();
        timeout(GUARD, handle.shutdown_finished()).await.unwrap();
        assert!(handle.is_shutting_down() && is_shutting_down());
        assert_eq!(client.join().unwrap(), *b"ping", "the request in flight was answered");
        assert_eq!(served.load(Ordering::SeqCst), 1);
        timeout(GUARD, server).await.unwrap().unwrap();
        // The listener is gone: new connections are refused.
        let e = std::net::TcpStream::connect(addr).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused);
        // A listener made now refuses at once too.
        let late = TcpListener::bind("127.0.0.1:0").unwrap();
        assert!(late.accept().await.is_err());
        assert!(late.incoming().next().await.is_err());
    });
}
}

both_drivers! {
fn waiting_accepts_and_incoming_fail_when_the_shutdown_starts() {
    let rt = support::runtime();
    let handle = rt.handle();
    rt.block_on(async {
        let listener = std::rc::Rc::new(TcpListener::bind("127.0.0.1:0").unwrap());
        let l1 = listener.clone();
        let accept = corio::spawn(async move { l1.accept().await.map(drop) });
        let l2 = listener.clone();
        let incoming = corio::spawn(async move { l2.incoming().next().await.map(drop) });
        let requested = corio::spawn({
            let handle = handle.clone();
            async move { handle.shutdown_requested().await }
        });
        sleep(Duration::from_millis(20)).await;
        assert!(!accept.is_finished() && !incoming.is_finished());
        handle.shutdown(LONG);
        let e = timeout(GUARD, accept).await.unwrap().unwrap().unwrap_err();
        assert!(e.to_string().contains("shutting down"), "{e}");
        assert!(timeout(GUARD, incoming).await.unwrap().unwrap().is_err());
        timeout(GUARD, requested).await.unwrap().unwrap();
        timeout(GUARD, handle.shutdown_finished()).await.unwrap();
    });
}
}

both_drivers! {
fn the_deadline_drops_the_tasks_left_and_closes_their_fds() {
    // Alone in a process: the other tests here open sockets meanwhile.
    if !support::is_child("the_deadline_drops_the_tasks_left_and_closes_their_fds") {
        support::run_in_child("the_deadline_drops_the_tasks_left_and_closes_their_fds", GUARD);
        return;
    }
    let rt = support::runtime();
    let handle = rt.handle();
    rt.block_on(async {
        corio::nop().await.unwrap();
        let before = support::open_fds();
        let (flag, dropped) = support::DropFlag::new();
        let stuck = corio::spawn(async move {
            let _flag = flag;
            let sock = corio::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            let _ = sock.recv(vec![0u8; 8]).await; // never comes
        });
        sleep(Duration::from_millis(10)).await;
        assert!(support::open_fds() > before);
        handle.shutdown(LONG);
        sleep(Duration::from_millis(20)).await;
        assert!(!dropped.get(), "the grace period is not over");
        // A second call brings the deadline closer: now.
        handle.shutdown(Duration::ZERO);
        timeout(GUARD, handle.shutdown_finished()).await.unwrap();
        assert!(dropped.get());
        assert!(stuck.await.unwrap_err().is_cancelled());
        // The socket's close reaches the driver at its next turn.
        let deadline = std::time::Instant::now() + GUARD;
        while support::open_fds() != before {
            assert!(std::time::Instant::now() < deadline, "the task's socket was not closed");
            sleep(Duration::from_millis(1)).await;
        }
        // The main future goes on; new tasks still run.
        assert_eq!(corio::spawn(async { 5 }).await.unwrap(), 5);
    });
}
}

both_drivers! {
fn shards_drain_then_join() {
    let finished = Arc::new(AtomicUsize::new(0));
    let shards = support::builder()
        .shards(2)
        .start({
            let finished = finished.clone();
            move |shard| {
                let finished = finished.clone();
                async move {
                    // A request in flight on each shard...
                    corio::spawn(async move {
                        Handle::current().shutdown_requested().await;
                        sleep(Duration::from_millis(50)).await;
                        finished.fetch_add(1, Ordering::SeqCst);
                    });
                    // ...and an entry that returns when told to stop.
                    Handle::current().shutdown_requested().await;
                    shard.index()
                }
            }
        })
        .unwrap();
    let handle = shards.handle();
    std::thread::sleep(Duration::from_millis(20));
    handle.shutdown(LONG);
    assert_eq!(shards.join().unwrap(), vec![0, 1]);
    assert_eq!(finished.load(Ordering::SeqCst), 2, "the tasks ran to their end");
    let rt = support::runtime();
    rt.block_on(async { timeout(GUARD, handle.shutdown_finished()).await.unwrap() });
    // Spawning on shards that are gone: a cancelled task.
    let late = handle.spawn(async { 1 });
    assert!(rt.block_on(late).unwrap_err().is_cancelled());
}
}

both_drivers! {
fn an_entry_still_running_at_the_deadline_is_dropped() {
    let shards = support::builder()
        .shards(2)
        .start(|shard| async move {
            if shard.index() == 1 {
                // Ignores the shutdown.
                sleep(LONG).await;
            }
            Handle::current().shutdown_requested().await;
        })
        .unwrap();
    shards.handle().shutdown(Duration::from_millis(50));
    match shards.join() {
        Err(RunError::ShutDown { shard }) => assert_eq!(shard, ShardId::new(1)),
        other => panic!("expected ShutDown for shard 1, got {other:?}"),
    }
}
}

both_drivers! {
fn a_panic_still_wins_over_the_shutdown() {
    let shards = support::builder()
        .shards(2)
        .start(|shard| async move {
            Handle::current().shutdown_requested().await;
            if shard.index() == 0 {
                panic!("shard 0 fails while stopping");
            }
        })
        .unwrap();
    shards.handle().shutdown(LONG);
    match shards.join() {
        Err(RunError::Panic { shard, .. }) => assert_eq!(shard, ShardId::new(0)),
        other => panic!("expected a panic of shard 0, got {other:?}"),
    }
}
}

both_drivers! {
fn background_reapers_do_not_hold_the_drain() {
    let rt = support::runtime();
    let handle = rt.handle();
    rt.block_on(async {
        // Dropped while it runs: reaped by a background task.
        let child = corio::process::Command::new("sleep").arg("30").spawn().unwrap();
        let pid = child.id().unwrap();
        drop(child);
        handle.shutdown(LONG);
        timeout(GUARD, handle.shutdown_finished()).await.unwrap();
        // SAFETY: kill(2) of our own child.
        unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    });
}
}
