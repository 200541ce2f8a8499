//! broadcast and watch channels (shared and local flavors): fan-out, lag,
//! close, values dropped once read, across runtimes and plain threads, and
//! their `Stream` impls.

mod support;

use std::future::{Future, poll_fn};
use std::pin::{Pin, pin};
use std::rc::Rc;
use std::sync::Arc;
use std::task::Poll;
use std::thread;
use std::time::{Duration, Instant};

use corio::stream::{Stream, StreamExt};
use corio::sync::broadcast::error::{RecvError, TryRecvError};
use corio::sync::{broadcast, local, watch};
use corio::time::timeout;

const GUARD: Duration = Duration::from_secs(10);

async fn guarded<F: Future>(what: &str, fut: F) -> F::Output {
    timeout(GUARD, fut)
        .await
        .unwrap_or_else(|_| panic!("{what} hung"))
}

fn join_within<T>(what: &str, h: thread::JoinHandle<T>) -> T {
    let deadline = Instant::now() + GUARD;
    while !h.is_finished() {
        assert!(Instant::now() < deadline, "{what} hung");
        thread::sleep(Duration::from_millis(2));
    }
    h.join().unwrap_or_else(|_| panic!("{what} panicked"))
}

async fn ready_now<F: Future + Unpin>(fut: &mut F) -> bool {
    poll_fn(|cx| Poll::Ready(Pin::new(&mut *fut).poll(cx).is_ready())).await
}

both_drivers! {
fn broadcast_every_receiver_gets_every_value() {
    support::run(async {
        let (tx, rx) = broadcast::channel::<u32>(16);
        let tasks: Vec<_> = (0..10)
            .map(|i| {
                let mut rx = if i == 0 { rx.resubscribe() } else { tx.subscribe() };
                corio::spawn(async move {
                    let mut got = Vec::new();
                    loop {
                        match rx.recv().await {
                            Ok(v) => got.push(v),
                            Err(RecvError::Closed) => return got,
                            Err(e) => panic!("{e}"),
                        }
                    }
                })
            })
            .collect();
        drop(rx);
        corio::yield_now().await;
        for v in 0..10 {
            assert_eq!(tx.send(v), Ok(10));
            corio::yield_now().await;
        }
        drop(tx);
        for t in tasks {
            assert_eq!(guarded("receiver", t).await.unwrap(), (0..10).collect::<Vec<_>>());
        }
    });
}
}

both_drivers! {
fn broadcast_lagging_receiver_is_told_how_many_it_missed() {
    support::run(async {
        let (tx, mut slow) = broadcast::channel(4);
        let mut fast = tx.subscribe();
        for v in 0..10 {
            tx.send(v).unwrap();
            assert_eq!(fast.try_recv(), Ok(v));
        }
        assert_eq!(slow.len(), 10);
        assert_eq!(slow.recv().await, Err(RecvError::Lagged(6)));
        for v in 6..10 {
            assert_eq!(slow.recv().await, Ok(v));
        }
        assert_eq!(slow.try_recv(), Err(TryRecvError::Empty));
        assert!(slow.is_empty());
        // Lagging as a try_recv, then closed.
        for v in 0..6 {
            tx.send(v).unwrap();
        }
        assert_eq!(slow.try_recv(), Err(TryRecvError::Lagged(2)));
        drop(tx);
        let mut rest = Vec::new();
        while let Ok(v) = slow.try_recv() {
            rest.push(v);
        }
        assert_eq!(rest, [2, 3, 4, 5]);
        assert_eq!(slow.try_recv(), Err(TryRecvError::Closed));
        assert_eq!(slow.recv().await, Err(RecvError::Closed));
    });
}
}

#[test]
fn broadcast_values_are_dropped_once_read_and_with_the_last_receiver() {
    let (tx, mut a) = broadcast::channel::<Arc<()>>(8);
    let mut b = tx.subscribe();
    let v = Arc::new(());
    tx.send(v.clone()).unwrap();
    assert_eq!(Arc::strong_count(&v), 2);
    a.try_recv().unwrap();
    assert_eq!(Arc::strong_count(&v), 2, "b has yet to read it");
    let got = b.try_recv().unwrap(); // the last reader gets it moved
    assert_eq!(Arc::strong_count(&v), 2);
    drop(got);
    assert_eq!(Arc::strong_count(&v), 1);
    // Unread values go when their last receiver goes.
    tx.send(v.clone()).unwrap();
    drop(a);
    assert_eq!(Arc::strong_count(&v), 2);
    drop(b);
    assert_eq!(Arc::strong_count(&v), 1);
    // No receivers: the value comes back.
    assert_eq!(tx.receiver_count(), 0);
    assert!(tx.send(v.clone()).is_err());
}

both_drivers! {
fn broadcast_across_threads_and_plain_threads() {
    let (tx, mut rx) = broadcast::channel::<u64>(1024);
    let mut plain_rx = tx.subscribe();
    let plain = thread::spawn(move || {
        let mut sum = 0;
        while let Ok(v) = plain_rx.blocking_recv() {
            sum += v;
        }
        sum
    });
    let other = thread::spawn(move || {
        support::run(async move {
            let mut sum = 0;
            while let Ok(v) = guarded("recv", rx.recv()).await {
                sum += v;
            }
            sum
        })
    });
    support::run(async move {
        for v in 1..=1000 {
            tx.send(v).unwrap();
            if v % 100 == 0 {
                corio::time::sleep(Duration::from_micros(100)).await;
            }
        }
    });
    assert_eq!(join_within("runtime receiver", other), 500_500);
    assert_eq!(join_within("plain receiver", plain), 500_500);
}
}

both_drivers! {
fn broadcast_receiver_is_a_stream_and_local_flavor_works() {
    support::run(async {
        let (tx, rx) = local::broadcast::channel::<Rc<str>>(2);
        let mut s = rx;
        for w in ["a", "b", "c"] {
            tx.send(w.into()).unwrap();
        }
        assert_eq!(s.next().await, Some(Err(RecvError::Lagged(1))));
        assert_eq!(s.next().await.unwrap().unwrap().as_ref(), "b");
        assert_eq!(s.next().await.unwrap().unwrap().as_ref(), "c");
        drop(tx);
        assert_eq!(s.next().await, None);
        assert_eq!(Stream::size_hint(&s), (0, None));
    });
}
}

both_drivers! {
fn watch_changed_borrow_and_close() {
    support::run(async {
        let (tx, mut rx) = watch::channel(0u32);
        assert_eq!(rx.has_changed(), Ok(false));
        let mut changed = Box::pin(async move {
            rx.changed().await.unwrap();
            let v = *rx.borrow_and_update();
            (rx, v)
        });
        assert!(!ready_now(&mut changed).await);
        tx.send(1).unwrap();
        tx.send(2).unwrap(); // only the latest is seen
        let (mut rx, v) = guarded("changed", changed).await;
        assert_eq!(v, 2);
        assert!(!rx.borrow().has_changed());
        tx.send_modify(|v| *v += 1);
        assert!(rx.borrow().has_changed());
        assert!(!tx.send_if_modified(|_| false));
        assert_eq!(*rx.borrow_and_update(), 3);
        rx.mark_changed();
        assert_eq!(rx.has_changed(), Ok(true));
        rx.mark_unchanged();
        assert_eq!(rx.has_changed(), Ok(false));
        assert_eq!(tx.send_replace(10), 3);
        let r = rx.wait_for(|v| *v >= 10).await.unwrap();
        assert_eq!(*r, 10);
        drop(r);

        let mut rx2 = tx.subscribe();
        assert_eq!(tx.receiver_count(), 2);
        drop(tx);
        assert!(rx2.changed().await.is_err());
        assert_eq!(*rx2.borrow(), 10, "the last value stays");
        assert!(rx.has_changed().is_err());
    });
}
}

both_drivers! {
fn watch_sender_closed_and_send_without_receivers() {
    support::run(async {
        let (tx, rx) = watch::channel(String::new());
        let rx2 = rx.clone();
        let mut closed = pin!(tx.closed());
        assert!(!ready_now(&mut closed).await);
        drop(rx);
        assert!(!ready_now(&mut closed).await);
        drop(rx2);
        guarded("closed", closed).await;
        assert!(tx.is_closed());
        assert!(tx.send("x".into()).is_err());
        assert_eq!(tx.send_replace("y".into()), "");
        assert_eq!(*tx.borrow(), "y");
    });
}
}

both_drivers! {
fn watch_across_threads_and_as_a_stream() {
    let (tx, mut rx) = watch::channel(0u64);
    let watcher = thread::spawn(move || {
        support::run(async move {
            // Sees a rising sequence ending in the last value.
            let mut last = 0;
            while let Some(v) = guarded("next", rx.next()).await {
                assert!(v > last);
                last = v;
            }
            last
        })
    });
    let plain = {
        let mut rx = tx.subscribe();
        thread::spawn(move || {
            while rx.blocking_changed().is_ok() {}
            *rx.borrow()
        })
    };
    support::run(async move {
        for v in 1..=200 {
            tx.send_replace(v);
            if v % 20 == 0 {
                corio::time::sleep(Duration::from_micros(200)).await;
            }
        }
    });
    assert_eq!(join_within("watcher", watcher), 200);
    assert_eq!(join_within("plain", plain), 200);

    support::run(async {
        let (tx, mut rx) = local::watch::channel(1);
        rx.mark_changed();
        assert_eq!(rx.next().await, Some(1));
        tx.send(2).unwrap();
        assert_eq!(rx.next().await, Some(2));
    });
}
}
