//! Channels: oneshot and mpsc (bounded, unbounded) within one runtime, across runtimes on two threads, and from plain threads; close semantics and cancel safety.

mod support;

use std::cell::Cell;
use std::collections::HashSet;
use std::future::{Future, poll_fn};
use std::pin::pin;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::Poll;
use std::thread;
use std::time::{Duration, Instant};

use corio::sync::mpsc::error::{SendError, TryRecvError, TrySendError};
use corio::sync::oneshot::error::{RecvError, TryRecvError as OneshotTryRecvError};
use corio::sync::{mpsc, oneshot};
use corio::time::timeout;

/// Hang guard: far longer than any wait in these tests (longer still under
/// valgrind: see `support::slowdown`).
const GUARD: Duration = Duration::from_secs(10);

fn guard() -> Duration {
    GUARD * support::slowdown()
}

/// Joins `h`, failing the test instead of hanging if it runs past [`guard`].
fn join_within<T>(what: &str, h: thread::JoinHandle<T>) -> T {
    let deadline = Instant::now() + guard();
    while !h.is_finished() {
        assert!(Instant::now() < deadline, "{what} hung");
        thread::sleep(Duration::from_millis(2));
    }
    h.join().unwrap_or_else(|_| panic!("{what} panicked"))
}

/// Awaits `fut`, failing the test if it takes longer than [`guard`].
async fn guarded<F: Future>(what: &str, fut: F) -> F::Output {
    timeout(guard(), fut)
        .await
        .unwrap_or_else(|_| panic!("{what} hung"))
}

/// Yields `n` times so other tasks of this runtime run.
async fn yield_many(n: usize) {
    for _ in 0..n {
        corio::yield_now().await;
    }
}

/// True if `fut` completes when polled once.
async fn ready_now<F: Future + Unpin>(fut: &mut F) -> bool {
    poll_fn(|cx| Poll::Ready(std::pin::Pin::new(&mut *fut).poll(cx).is_ready())).await
}

// ---------------------------------------------------------------- oneshot

both_drivers! {
fn oneshot_send_recv_in_one_runtime() {
    support::run(async {
        let (tx, mut rx) = oneshot::channel::<String>();
        assert_eq!(rx.try_recv(), Err(OneshotTryRecvError::Empty));
        let h = corio::spawn(async move {
            corio::yield_now().await;
            tx.send("hello".to_string()).unwrap();
        });
        assert_eq!(guarded("oneshot recv", rx).await.unwrap(), "hello");
        h.await.unwrap();

        // A value sent before the receiver looks is there at once.
        let (tx, mut rx) = oneshot::channel();
        tx.send(7u8).unwrap();
        assert_eq!(rx.try_recv(), Ok(7));
        assert_eq!(rx.try_recv(), Err(OneshotTryRecvError::Closed));
    });
}
}

both_drivers! {
fn oneshot_across_two_runtimes() {
    for _ in 0..50 {
        let (req_tx, req_rx) = oneshot::channel::<u64>();
        let (resp_tx, resp_rx) = oneshot::channel::<u64>();
        let other = thread::spawn(move || {
            support::run(async move {
                let v = guarded("request", req_rx).await.unwrap();
                resp_tx.send(v * 2).unwrap();
            })
        });
        let got = support::run(async move {
            // Let the other shard park first, so the wake must cross threads.
            corio::time::sleep(Duration::from_micros(200)).await;
            req_tx.send(21).unwrap();
            guarded("response", resp_rx).await
        });
        assert_eq!(got, Ok(42));
        join_within("other shard", other);
    }
}
}

both_drivers! {
fn oneshot_blocking_recv_on_a_plain_thread() {
    let (tx, rx) = oneshot::channel::<u32>();
    let t = thread::spawn(move || rx.blocking_recv());
    support::run(async move {
        corio::time::sleep(Duration::from_millis(2)).await;
        tx.send(5).unwrap();
    });
    assert_eq!(join_within("blocking_recv", t), Ok(5));

    let (tx, rx) = oneshot::channel::<u32>();
    let t = thread::spawn(move || rx.blocking_recv());
    thread::sleep(Duration::from_millis(2));
    drop(tx);
    let r: Result<u32, RecvError> = join_within("blocking_recv", t);
    assert!(r.is_err());
}
}

both_drivers! {
fn oneshot_sender_dropped_gives_recv_error() {
    support::run(async {
        let (tx, rx) = oneshot::channel::<u32>();
        corio::spawn(async move {
            corio::yield_now().await;
            drop(tx);
        });
        assert!(guarded("recv", rx).await.is_err());

        let (tx, mut rx) = oneshot::channel::<u32>();
        drop(tx);
        assert_eq!(rx.try_recv(), Err(OneshotTryRecvError::Closed));
    });
    // Dropped on another thread while the receiver waits.
    let (tx, rx) = oneshot::channel::<u32>();
    let t = thread::spawn(move || {
        thread::sleep(Duration::from_millis(2));
        drop(tx);
    });
    let r = support::run(async move { guarded("recv", rx).await });
    assert!(r.is_err());
    join_within("dropper", t);
}
}

both_drivers! {
fn oneshot_receiver_dropped_send_returns_value() {
    let (tx, rx) = oneshot::channel::<Vec<u8>>();
    assert!(!tx.is_closed());
    drop(rx);
    assert!(tx.is_closed());
    assert_eq!(tx.send(vec![1, 2, 3]), Err(vec![1, 2, 3]));

    // A value sent but never received is dropped with the receiver.
    let marker = Arc::new(());
    let (tx, rx) = oneshot::channel::<Arc<()>>();
    tx.send(marker.clone()).unwrap();
    assert_eq!(Arc::strong_count(&marker), 2);
    drop(rx);
    assert_eq!(Arc::strong_count(&marker), 1);
}
}

both_drivers! {
fn oneshot_closed_resolves_when_receiver_goes() {
    // Receiver dropped on another shard while the sender awaits `closed()`.
    let (mut tx, rx) = oneshot::channel::<u32>();
    let (ready_tx, ready_rx) = oneshot::channel::<()>();
    let other = thread::spawn(move || {
        support::run(async move {
            guarded("ready", ready_rx).await.unwrap();
            corio::time::sleep(Duration::from_millis(1)).await;
            drop(rx);
        })
    });
    support::run(async move {
        {
            let mut closed = pin!(tx.closed());
            assert!(!ready_now(&mut closed).await);
            ready_tx.send(()).unwrap();
            guarded("closed", closed).await;
        }
        assert!(tx.is_closed());
        assert_eq!(tx.send(1), Err(1));
    });
    join_within("other shard", other);

    // `close()`: the sender sees it; a value sent before still arrives.
    support::run(async {
        let (mut tx, mut rx) = oneshot::channel::<u32>();
        let waiter = corio::spawn(async move {
            tx.closed().await;
            tx.send(9)
        });
        yield_many(3).await;
        assert!(!waiter.is_finished());
        rx.close();
        assert_eq!(guarded("waiter", waiter).await.unwrap(), Err(9));
        assert!(guarded("recv", rx).await.is_err());

        let (tx, mut rx) = oneshot::channel::<u32>();
        tx.send(4).unwrap();
        rx.close();
        assert_eq!(rx.try_recv(), Ok(4));
    });
}
}

// ---------------------------------------------------------------- mpsc

both_drivers! {
fn mpsc_bounded_back_pressure() {
    support::run(async {
        let (tx, mut rx) = mpsc::channel::<usize>(1);
        assert_eq!(tx.max_capacity(), 1);
        let sent = Rc::new(Cell::new(0usize));
        let sent2 = sent.clone();
        const N: usize = 50;
        let producer = corio::spawn(async move {
            for i in 0..N {
                tx.send(i).await.unwrap();
                sent2.set(sent2.get() + 1);
            }
        });
        for received in 0..N {
            // However long we let it run, the producer is at most one
            // message (the buffer) ahead of us.
            yield_many(5).await;
            assert_eq!(
                sent.get(),
                (received + 1).min(N),
                "after {received} received"
            );
            if received + 1 < N {
                assert!(!producer.is_finished());
                assert_eq!(rx.capacity(), 0);
                assert_eq!(rx.len(), 1);
            }
            assert_eq!(guarded("recv", rx.recv()).await, Some(received));
        }
        guarded("producer", producer).await.unwrap();
        assert_eq!(rx.recv().await, None);
    });

    // try_send reports Full without waiting, and hands the value back.
    let (tx, mut rx) = mpsc::channel::<u32>(2);
    tx.try_send(1).unwrap();
    tx.try_send(2).unwrap();
    assert_eq!(tx.capacity(), 0);
    match tx.try_send(3) {
        Err(TrySendError::Full(v)) => assert_eq!(v, 3),
        other => panic!("expected Full, got {other:?}"),
    }
    assert_eq!(rx.try_recv(), Ok(1));
    assert_eq!(tx.capacity(), 1);
    tx.try_send(3).unwrap();
    assert_eq!(rx.try_recv(), Ok(2));
    assert_eq!(rx.try_recv(), Ok(3));
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    drop(tx);
    assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
}
}

both_drivers! {
fn mpsc_waiting_senders_are_served_in_order() {
    support::run(async {
        let (tx, mut rx) = mpsc::channel::<usize>(1);
        tx.send(usize::MAX).await.unwrap();
        let mut handles = Vec::new();
        for i in 0..5 {
            let tx = tx.clone();
            handles.push(corio::spawn(async move { tx.send(i).await }));
            // Each task starts waiting before the next is spawned.
            yield_many(2).await;
        }
        drop(tx);
        let mut got = Vec::new();
        while let Some(v) = guarded("recv", rx.recv()).await {
            got.push(v);
        }
        assert_eq!(got, [usize::MAX, 0, 1, 2, 3, 4]);
        for h in handles {
            h.await.unwrap().unwrap();
        }
    });
}
}

both_drivers! {
fn mpsc_ping_pong_100k_between_two_runtimes() {
    // 50,000 round trips: 100,000 messages, each one a wake across threads.
    const N: u64 = 50_000;
    let (ping_tx, mut ping_rx) = mpsc::channel::<u64>(1);
    let (pong_tx, mut pong_rx) = mpsc::channel::<u64>(1);
    let echo = thread::spawn(move || {
        support::run(async move {
            let mut n = 0u64;
            while let Some(v) = ping_rx.recv().await {
                pong_tx.send(v + 1).await.unwrap();
                n += 1;
            }
            n
        })
    });
    let pinger = thread::spawn(move || {
        support::run(async move {
            for i in 0..N {
                ping_tx.send(i * 2).await.unwrap();
                assert_eq!(pong_rx.recv().await, Some(i * 2 + 1));
            }
            drop(ping_tx);
            // The echo side's sender goes away when it finishes.
            assert_eq!(pong_rx.recv().await, None);
        })
    });
    join_within("pinger", pinger);
    assert_eq!(join_within("echo", echo), N);
}
}

both_drivers! {
fn mpsc_unbounded_ping_pong_between_two_runtimes() {
    const N: u64 = 20_000;
    let (ping_tx, mut ping_rx) = mpsc::unbounded_channel::<u64>();
    let (pong_tx, mut pong_rx) = mpsc::unbounded_channel::<u64>();
    let echo = thread::spawn(move || {
        support::run(async move {
            while let Some(v) = ping_rx.recv().await {
                pong_tx.send(v).unwrap();
            }
        })
    });
    let pinger = thread::spawn(move || {
        support::run(async move {
            for i in 0..N {
                ping_tx.send(i).unwrap();
                assert_eq!(pong_rx.recv().await, Some(i));
            }
        })
    });
    join_within("pinger", pinger);
    join_within("echo", echo);
}
}

both_drivers! {
fn mpsc_many_producers_one_consumer() {
    const PER: u64 = 5_000;
    const THREADS: u64 = 4;
    const TASKS: u64 = 4;
    let (tx, mut rx) = mpsc::channel::<(u64, u64)>(16);

    // 4 plain threads.
    let mut threads = Vec::new();
    for p in 0..THREADS {
        let tx = tx.clone();
        threads.push(thread::spawn(move || {
            for seq in 0..PER {
                tx.blocking_send((p, seq)).unwrap();
            }
        }));
    }
    // 2 corio tasks on another shard.
    let tx_shard = tx.clone();
    let shard = thread::spawn(move || {
        support::run(async move {
            let mut hs = Vec::new();
            for p in THREADS..THREADS + TASKS / 2 {
                let tx = tx_shard.clone();
                hs.push(corio::spawn(async move {
                    for seq in 0..PER {
                        tx.send((p, seq)).await.unwrap();
                    }
                }));
            }
            drop(tx_shard);
            for h in hs {
                h.await.unwrap();
            }
        })
    });
    // 2 corio tasks on the consumer's own runtime, and the consumer.
    let got = support::run(async move {
        for p in THREADS + TASKS / 2..THREADS + TASKS {
            let tx = tx.clone();
            corio::spawn(async move {
                for seq in 0..PER {
                    tx.send((p, seq)).await.unwrap();
                }
            });
        }
        drop(tx);
        let mut next = vec![0u64; (THREADS + TASKS) as usize];
        let mut total = 0u64;
        while let Some((p, seq)) = guarded("recv", rx.recv()).await {
            assert_eq!(
                seq, next[p as usize],
                "producer {p}: out of order or duplicate"
            );
            next[p as usize] += 1;
            total += 1;
        }
        assert!(next.iter().all(|&n| n == PER), "missing messages: {next:?}");
        total
    });
    assert_eq!(got, PER * (THREADS + TASKS));
    for t in threads {
        join_within("producer thread", t);
    }
    join_within("producer shard", shard);
}
}

both_drivers! {
fn mpsc_dropped_receiver_fails_sends() {
    // Plain sends after the drop hand the value back.
    let (tx, rx) = mpsc::channel::<String>(4);
    assert!(!tx.is_closed());
    drop(rx);
    assert!(tx.is_closed());
    let e = support::run(tx.send("a".into())).unwrap_err();
    assert_eq!(e.0, "a");
    match tx.try_send("b".into()) {
        Err(TrySendError::Closed(v)) => assert_eq!(v, "b"),
        other => panic!("expected Closed, got {other:?}"),
    }
    let (utx, urx) = mpsc::unbounded_channel::<u32>();
    drop(urx);
    assert_eq!(utx.send(3), Err(SendError(3)));

    // A sender blocked on a full channel, on another shard, wakes with an error.
    let (tx, rx) = mpsc::channel::<u32>(1);
    tx.try_send(0).unwrap();
    let (waiting_tx, waiting_rx) = oneshot::channel::<()>();
    let shard = thread::spawn(move || {
        support::run(async move {
            let mut send = pin!(tx.send(1));
            assert!(!ready_now(&mut send).await);
            waiting_tx.send(()).unwrap();
            guarded("blocked send", send).await
        })
    });
    waiting_rx.blocking_recv().unwrap();
    thread::sleep(Duration::from_millis(2));
    drop(rx);
    assert_eq!(join_within("blocked sender", shard), Err(SendError(1)));

    // Same with blocking_send on a plain thread, and closed() on another task.
    let (tx, rx) = mpsc::channel::<u32>(1);
    tx.try_send(0).unwrap();
    let tx2 = tx.clone();
    let blocked = thread::spawn(move || tx2.blocking_send(2));
    let closed =
        thread::spawn(move || support::run(async move { guarded("closed", tx.closed()).await }));
    thread::sleep(Duration::from_millis(5));
    assert!(!blocked.is_finished());
    assert!(!closed.is_finished());
    drop(rx);
    assert_eq!(join_within("blocking_send", blocked), Err(SendError(2)));
    join_within("closed", closed);
}
}

both_drivers! {
fn mpsc_close_keeps_buffered_messages() {
    support::run(async {
        let (tx, mut rx) = mpsc::channel::<u32>(8);
        for i in 0..5 {
            tx.send(i).await.unwrap();
        }
        // A sender waiting for room on a full channel is woken with an error.
        let (tx_full, mut rx_full) = mpsc::channel::<u32>(1);
        tx_full.send(0).await.unwrap();
        let tx_full2 = tx_full.clone();
        let waiter = corio::spawn(async move { tx_full2.send(1).await });
        yield_many(3).await;
        assert!(!waiter.is_finished());
        rx_full.close();
        assert_eq!(guarded("waiter", waiter).await.unwrap(), Err(SendError(1)));
        assert_eq!(rx_full.recv().await, Some(0));
        assert_eq!(rx_full.recv().await, None);

        rx.close();
        assert!(tx.is_closed());
        assert!(rx.is_closed());
        assert_eq!(tx.send(99).await, Err(SendError(99)));
        guarded("closed", tx.closed()).await;
        let mut got = Vec::new();
        // The sender is still alive: None comes from the close, not a drop.
        while let Some(v) = guarded("recv", rx.recv()).await {
            got.push(v);
        }
        assert_eq!(got, [0, 1, 2, 3, 4]);
        assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));

        let (utx, mut urx) = mpsc::unbounded_channel::<u32>();
        utx.send(1).unwrap();
        utx.send(2).unwrap();
        urx.close();
        assert_eq!(utx.send(3), Err(SendError(3)));
        assert_eq!(urx.recv().await, Some(1));
        assert_eq!(urx.recv().await, Some(2));
        assert_eq!(urx.recv().await, None);
    });
}
}

both_drivers! {
fn mpsc_close_from_another_thread_keeps_acknowledged_messages() {
    // Producers on a plain thread send until the channel closes; every send
    // that returned Ok before the close must be received.
    for _ in 0..20 {
        let (tx, mut rx) = mpsc::unbounded_channel::<u64>();
        let acked = Arc::new(AtomicUsize::new(0));
        let acked2 = acked.clone();
        let producer = thread::spawn(move || {
            let mut i = 0u64;
            while tx.send(i).is_ok() {
                acked2.store(i as usize + 1, Ordering::SeqCst);
                i += 1;
                if i == 200_000 {
                    break;
                }
            }
        });
        let received = support::run(async move {
            for _ in 0..100 {
                let _ = rx.recv().await;
            }
            rx.close();
            let mut n = 100u64;
            while let Some(v) = rx.recv().await {
                assert_eq!(v, n);
                n += 1;
            }
            n
        });
        join_within("producer", producer);
        assert_eq!(received as usize, acked.load(Ordering::SeqCst));
    }
}
}

both_drivers! {
fn mpsc_cancelled_sends_do_not_leak_capacity() {
    support::run(async {
        const CAP: usize = 4;
        let (tx, mut rx) = mpsc::channel::<usize>(CAP);
        for i in 0..CAP {
            tx.send(i).await.unwrap();
        }
        // Another sender waits for room the whole time; the cancelled sends
        // must not take its turn.
        let tx2 = tx.clone();
        let patient = corio::spawn(async move { tx2.send(1000).await });
        yield_many(2).await;
        for i in 0..1_000 {
            let r = timeout(Duration::from_millis(1), tx.send(CAP + i)).await;
            assert!(r.is_err(), "send {i} on a full channel completed");
        }
        assert_eq!(tx.capacity(), 0);
        // One slot frees: it goes to the waiting sender, not to a ghost.
        assert_eq!(rx.recv().await, Some(0));
        assert_eq!(guarded("patient sender", patient).await.unwrap(), Ok(()));
        let mut got = Vec::new();
        while let Ok(v) = rx.try_recv() {
            got.push(v);
        }
        assert_eq!(got, [1, 2, 3, 1000]);
        assert_eq!(tx.capacity(), CAP);
        // Still works, to full capacity.
        for i in 0..CAP {
            tx.try_send(i).unwrap();
        }
        assert!(matches!(tx.try_send(9), Err(TrySendError::Full(9))));
        for i in 0..CAP {
            assert_eq!(rx.recv().await, Some(i));
        }
        assert_eq!(tx.capacity(), CAP);
    });
}
}

both_drivers! {
fn mpsc_sender_aborted_after_being_handed_a_slot_passes_it_on() {
    support::run(async {
        let (tx, mut rx) = mpsc::channel::<u32>(1);
        tx.send(0).await.unwrap();
        let (ta, tb) = (tx.clone(), tx.clone());
        let a = corio::spawn(async move { ta.send(1).await });
        yield_many(2).await;
        let b = corio::spawn(async move { tb.send(2).await });
        yield_many(2).await;
        // The freed slot is handed to `a`, which is aborted before it runs:
        // the slot must pass on to `b`.
        assert_eq!(rx.recv().await, Some(0));
        a.abort();
        assert!(guarded("a", a).await.unwrap_err().is_cancelled());
        assert_eq!(guarded("b", b).await.unwrap(), Ok(()));
        assert_eq!(rx.recv().await, Some(2));
        assert_eq!(tx.capacity(), 1);
    });
}
}

both_drivers! {
fn mpsc_receiver_yields_to_other_tasks() {
    // A receiver that always finds a message waiting still lets the other
    // tasks of its shard run (cooperative budget).
    support::run(async {
        let (tx, mut rx) = mpsc::unbounded_channel::<u32>();
        for i in 0..10_000 {
            tx.send(i).unwrap();
        }
        drop(tx);
        let ran = Rc::new(Cell::new(false));
        let ran2 = ran.clone();
        corio::spawn(async move { ran2.set(true) });
        let mut seen_at = None;
        let mut n = 0;
        while rx.recv().await.is_some() {
            if seen_at.is_none() && ran.get() {
                seen_at = Some(n);
            }
            n += 1;
        }
        assert_eq!(n, 10_000);
        assert!(
            seen_at.is_some(),
            "the other task never ran while receiving"
        );
    });
}
}

both_drivers! {
fn blocking_calls_inside_a_runtime_panic() {
    let (_tx, mut rx) = mpsc::channel::<u32>(1);
    let r = support::run(async move {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| rx.blocking_recv()))
    });
    let msg = r.unwrap_err();
    let msg = msg.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(msg.contains("blocking_recv"), "{msg}");
}
}

both_drivers! {
fn handles_are_debug_and_send() {
    fn is_send<T: Send>(_: &T) {}
    let (tx, rx) = mpsc::channel::<u32>(3);
    tx.try_send(1).unwrap();
    is_send(&tx);
    is_send(&rx);
    // The futures are Send too, so they can run on any shard.
    is_send(&tx.send(2));
    is_send(&tx.closed());
    let mut rx = rx;
    is_send(&rx.recv());
    let s = format!("{tx:?} {rx:?}");
    assert!(s.contains("capacity: 2"), "{s}");
    let (utx, urx) = mpsc::unbounded_channel::<u32>();
    is_send(&utx);
    let s = format!("{utx:?} {urx:?}");
    assert!(s.contains("UnboundedSender"), "{s}");
    let (otx, orx) = oneshot::channel::<u32>();
    is_send(&otx);
    is_send(&orx);
    is_send(&utx.closed());
    let s = format!("{otx:?} {orx:?}");
    assert!(s.contains("closed: false"), "{s}");
    let mut set = HashSet::new();
    set.insert(format!("{:?}", SendError(1u8)));
    assert!(set.contains("SendError { .. }"));
}
}
