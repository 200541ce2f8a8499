//! Waking a parked shard: `IORING_OP_MSG_RING` from ring to ring
//! (`Builder::msg_ring_wakeups(true)`) and the eventfd write (`false`, and
//! from plain threads), under ping-pong, from std threads, and while the
//! woken runtime goes away.
//!
//! Every test takes the serial lock: some count the process's fds.

mod support;

use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex};
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use corio::sync::mpsc;

/// Runs `f` on a new thread and fails the test if it takes longer than
/// `limit` (a lost wake-up hangs rather than fails).
fn with_watchdog<T: Send + 'static>(limit: Duration, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std_mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(limit)
        .unwrap_or_else(|_| panic!("no answer within {limit:?}: a wake-up was lost"))
}

/// `n` round trips between two shards over corio channels; returns the
/// MSG_RING wake-ups each shard sent.
fn ping_pong(builder: corio::Builder, n: u32) -> Vec<u64> {
    type Pipes = (mpsc::Sender<u32>, mpsc::Receiver<u32>);
    let (a_tx, b_rx) = mpsc::channel::<u32>(1);
    let (b_tx, a_rx) = mpsc::channel::<u32>(1);
    let pipes: Arc<Mutex<Vec<Option<Pipes>>>> =
        Arc::new(Mutex::new(vec![Some((a_tx, a_rx)), Some((b_tx, b_rx))]));
    builder
        .shards(2)
        .run(move |shard| {
            let (tx, mut rx) = pipes.lock().unwrap()[shard.index()].take().unwrap();
            async move {
                if shard.index() == 0 {
                    for i in 0..n {
                        tx.send(i).await.unwrap();
                        assert_eq!(rx.recv().await.unwrap(), i + 1);
                    }
                } else {
                    while let Some(i) = rx.recv().await {
                        if tx.send(i + 1).await.is_err() {
                            break;
                        }
                    }
                }
                corio::runtime::stats().msg_ring_wakeups
            }
        })
        .unwrap()
}

/// Whether the kernel's io_uring has `IORING_OP_MSG_RING`.
fn msg_ring_supported() -> bool {
    corio::probe()
        .opcodes
        .iter()
        .any(|s| s.name == "MSG_RING" && s.supported)
}

both_drivers! {
fn ping_pong_with_msg_ring_wakeups_on_and_off() {
    let _serial = support::serial();
    for on in [true, false] {
        let b = support::builder().msg_ring_wakeups(on);
        let sent = with_watchdog(Duration::from_secs(60), move || ping_pong(b, 20_000));
        let total: u64 = sent.iter().sum();
        if on && support::driver() == corio::DriverKind::Uring && msg_ring_supported() {
            assert!(total > 0, "no wake-up went through MSG_RING: {sent:?}");
        } else {
            assert_eq!(total, 0, "msg_ring_wakeups({on}) on {:?}", support::driver());
        }
    }
}
}

both_drivers! {
fn a_plain_thread_wakes_a_runtime_that_takes_msg_ring_wakeups() {
    let _serial = support::serial();
    let rt = support::builder().msg_ring_wakeups(true).build().unwrap();
    let (tx, mut rx) = mpsc::channel::<u32>(1);
    let sender = std::thread::spawn(move || {
        for i in 0..2_000 {
            if i % 100 == 0 {
                // Let the runtime park in the kernel now and then.
                std::thread::sleep(Duration::from_millis(1));
            }
            tx.blocking_send(i).unwrap();
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let got = rt.block_on(async move {
        let mut n = 0;
        while let Some(i) = corio::time::timeout(Duration::from_secs(30), rx.recv())
            .await
            .expect("a wake-up from a plain thread was lost")
        {
            assert_eq!(i, n);
            n += 1;
        }
        n
    });
    assert!(Instant::now() < deadline);
    sender.join().unwrap();
    assert_eq!(got, 2_000);
    assert_eq!(rt.stats().msg_ring_wakeups, 0, "a plain thread has no ring to send from");
}
}

/// A future that hands its waker out once, then is woken `n` times.
struct WokenTimes {
    left: u32,
    out: Option<std_mpsc::Sender<Waker>>,
}

impl std::future::Future for WokenTimes {
    type Output = ();

    fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<()> {
        if let Some(out) = self.out.take() {
            out.send(cx.waker().clone()).unwrap();
            return Poll::Pending;
        }
        if self.left == 0 {
            return Poll::Ready(());
        }
        self.left -= 1;
        Poll::Pending
    }
}

both_drivers! {
fn dropping_the_woken_runtime_while_another_keeps_waking_it() {
    let _serial = support::serial();
    let b = support::builder().msg_ring_wakeups(true);
    // Build (and drop) one first, so lazily made process-wide resources do
    // not count as leaks.
    drop(b.clone().build().unwrap());
    let base = support::open_fds();
    with_watchdog(Duration::from_secs(120), move || {
        let waker_source = b.clone().build().unwrap();
        for _ in 0..50 {
            let (wtx, wrx) = std_mpsc::channel::<Waker>();
            let b = b.clone();
            let target = std::thread::spawn(move || {
                let rt = b.build().unwrap();
                rt.block_on(WokenTimes { left: 200, out: Some(wtx) });
                // `rt` drops here while the source keeps waking it.
            });
            let waker = wrx.recv().unwrap();
            waker_source.block_on(async {
                // Wake until the target thread is gone, and a while after.
                let mut after = 0;
                while after < 200 {
                    waker.wake_by_ref();
                    corio::yield_now().await;
                    if target.is_finished() {
                        after += 1;
                    }
                }
            });
            target.join().unwrap();
        }
    });
    let after = support::open_fds();
    assert!(after <= base, "fds leaked: {base} before, {after} after");
}
}
