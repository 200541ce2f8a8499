//! Executor and task tests: spawn, join, abort, panic, wakers from threads.

mod support;

use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use corio::time::sleep;

both_drivers! {
fn spawn_and_join() {
    let out = support::run(async {
        let hs: Vec<_> = (0..100)
            .map(|i| corio::spawn(async move { i * 2 }))
            .collect();
        let mut sum = 0;
        for h in hs {
            sum += h.await.unwrap();
        }
        sum
    });
    assert_eq!(out, (0..100).map(|i| i * 2).sum::<i32>());
}
}

both_drivers! {
fn not_send_futures_run() {
    support::run(async {
        let counter = Rc::new(Cell::new(0));
        let c = counter.clone();
        corio::spawn(async move {
            corio::yield_now().await;
            c.set(c.get() + 1);
        })
        .await
        .unwrap();
        assert_eq!(counter.get(), 1);
    });
}
}

both_drivers! {
fn panicking_task_gives_join_error_and_runtime_keeps_running() {
    support::run(async {
        let bad = corio::spawn(async {
            corio::yield_now().await;
            panic!("boom");
        });
        let good = corio::spawn(async {
            sleep(Duration::from_millis(5)).await;
            7
        });
        let err = bad.await.unwrap_err();
        assert!(err.is_panic());
        assert!(!err.is_cancelled());
        assert_eq!(err.to_string(), "task panicked: boom");
        let payload = err.into_panic();
        assert_eq!(*payload.downcast::<&str>().unwrap(), "boom");
        assert_eq!(good.await.unwrap(), 7);
    });
}
}

both_drivers! {
fn abort_cancels_a_sleeping_task() {
    support::run(async {
        let dropped = Rc::new(Cell::new(false));
        struct OnDrop(Rc<Cell<bool>>);
        impl Drop for OnDrop {
            fn drop(&mut self) {
                self.0.set(true);
            }
        }
        let guard = OnDrop(dropped.clone());
        let h = corio::spawn(async move {
            let _g = guard;
            sleep(Duration::from_secs(60)).await;
        });
        corio::yield_now().await;
        h.abort();
        let err = h.await.unwrap_err();
        assert!(err.is_cancelled());
        assert!(dropped.get(), "aborted task's future was not dropped");
    });
}
}

both_drivers! {
fn dropping_handle_detaches() {
    let done = Rc::new(Cell::new(false));
    let d = done.clone();
    let seen = done.clone();
    support::run(async move {
        drop(corio::spawn(async move {
            sleep(Duration::from_millis(2)).await;
            d.set(true);
        }));
        // Wait for the detached task (bounded), not a fixed time: on a busy
        // machine both timers can fire in one tick, and the main future,
        // polled first, would end the runtime before the task ran.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while !seen.get() && std::time::Instant::now() < deadline {
            sleep(Duration::from_millis(1)).await;
        }
    });
    assert!(done.get());
}
}

both_drivers! {
fn waker_from_std_thread_wakes_parked_runtime() {
    support::run(async {
        let (tx, rx) = std::sync::mpsc::channel::<std::task::Waker>();
        let fired = Arc::new(AtomicUsize::new(0));
        let f2 = fired.clone();
        let t = std::thread::spawn(move || {
            let w = rx.recv().unwrap();
            std::thread::sleep(Duration::from_millis(20));
            f2.store(1, Ordering::SeqCst);
            w.wake();
        });
        let start = Instant::now();
        let mut sent = Some(tx);
        std::future::poll_fn(|cx| {
            if fired.load(Ordering::SeqCst) == 1 {
                return std::task::Poll::Ready(());
            }
            if let Some(tx) = sent.take() {
                tx.send(cx.waker().clone()).unwrap();
            }
            std::task::Poll::Pending
        })
        .await;
        assert!(start.elapsed() < Duration::from_secs(5));
        t.join().unwrap();
    });
}
}

both_drivers! {
#[should_panic(expected = "must be called from inside a corio runtime")]
fn spawn_outside_runtime_panics() {
    drop(corio::spawn(async {}));
}
}

both_drivers! {
#[should_panic(expected = "cannot start a runtime")]
fn block_on_inside_block_on_panics() {
    support::run(async {
        support::run(async {});
    });
}
}

both_drivers! {
fn yield_now_lets_others_run() {
    support::run(async {
        let n = Rc::new(Cell::new(0));
        let n2 = n.clone();
        let h = corio::spawn(async move {
            for _ in 0..10 {
                n2.set(n2.get() + 1);
                corio::yield_now().await;
            }
        });
        corio::yield_now().await;
        assert!(n.get() >= 1);
        h.await.unwrap();
        assert_eq!(n.get(), 10);
    });
}
}

both_drivers! {
fn nop_round_trip() {
    support::run(async {
        for _ in 0..1000 {
            corio::nop().await.unwrap();
        }
    });
}
}

fn gettid() -> i32 {
    // SAFETY: gettid has no preconditions.
    unsafe { libc::gettid() }
}

both_drivers! {
fn spawn_blocking_returns_result_and_panics_become_join_errors() {
    support::run(async {
        let v = corio::spawn_blocking(|| {
            std::thread::sleep(Duration::from_millis(5));
            21 * 2
        })
        .await
        .unwrap();
        assert_eq!(v, 42);
        let err = corio::spawn_blocking(|| panic!("blocking boom"))
            .await
            .unwrap_err();
        assert!(err.is_panic());
        assert_eq!(err.to_string(), "task panicked: blocking boom");
    });
}
}

both_drivers! {
fn blocking_pool_is_bounded_and_joined_at_shutdown() {
    let rt = support::builder()
        .max_blocking_threads(3)
        .build()
        .unwrap();
    let running = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let tids = Arc::new(std::sync::Mutex::new(std::collections::HashSet::new()));
    rt.block_on(async {
        let hs: Vec<_> = (0..12)
            .map(|i| {
                let (running, peak, tids) = (running.clone(), peak.clone(), tids.clone());
                corio::spawn_blocking(move || {
                    tids.lock().unwrap().insert(gettid());
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(now, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(10));
                    running.fetch_sub(1, Ordering::SeqCst);
                    i
                })
            })
            .collect();
        for (i, h) in hs.into_iter().enumerate() {
            assert_eq!(h.await.unwrap(), i);
        }
    });
    let p = peak.load(Ordering::SeqCst);
    assert!(
        (1..=3).contains(&p),
        "peak concurrency {p} exceeds the bound"
    );
    let tids = tids.lock().unwrap().clone();
    assert!(!tids.is_empty() && tids.len() <= 3);
    drop(rt);
    // The drop joined the threads. A joined thread has finished running,
    // but the kernel removes its /proc/self/task entry a moment later (it
    // wakes the joiner while the thread exits, before the thread is
    // reaped): on a loaded machine the entry can outlive the join, which
    // made this check flaky when it looked only once.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    for tid in tids {
        let task = format!("/proc/self/task/{tid}");
        while std::path::Path::new(&task).exists() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert!(
            !std::path::Path::new(&task).exists(),
            "pool thread {tid} still alive 5 s after the runtime was dropped"
        );
    }
}
}

both_drivers! {
fn runtimes_are_freed_when_dropped() {
    // Warm up (lazy statics, the test harness's own fds).
    drop(support::runtime());
    let _serial = support::serial();
    let before = support::open_fds();
    for _ in 0..500 {
        let rt = support::runtime();
        rt.block_on(async { corio::nop().await.unwrap() });
    }
    let after = support::open_fds();
    // Other tests run in parallel and may hold a few fds for a moment.
    assert!(after <= before + 16, "fds grew from {before} to {after}");
}
}
