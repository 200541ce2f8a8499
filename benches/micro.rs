//! Micro-benchmarks on divan: corio against tokio's current-thread runtime.
//!
//! Run: `taskset -c 1 cargo bench --bench micro` (a filter picks groups:
//! `-- channel`, `-- timer`). Every figure is time per item (`N` items per
//! sample, divan's median and spread over the samples); a group's `corio`
//! and `tokio` rows do the same work. `benches/runtime.rs` has the same
//! operations as long interleaved runs with goals; this file is the quick,
//! statistically summarised view.
//!
//! - `spawn_join`: spawn an empty task and await its handle, one at a time.
//! - `spawn_many`: spawn `N` tasks, then await every handle.
//! - `yield_now`: a task yielding `N` times.
//! - `timer_register_cancel`: a sleep polled once (registered) and dropped,
//!   what a timeout around I/O that finishes in time costs.
//! - `timers_fire`: `N` tasks sleeping a random 0–1 ms, all awaited (the
//!   spread adds ~1 ms per sample, the same for both).
//! - `nop`: an io_uring NOP round trip through `Op<T>` (corio only).
//! - `channel_unbounded`: send `N` messages, then receive them, one task.
//! - `channel_ping_pong`: two tasks bouncing a message over two bounded
//!   channels of capacity 1 (each item is one send, one receive and one
//!   task switch).
//!
//! The sync primitives have three rows: `corio` (`corio::sync`, thread-safe),
//! `corio_local` (`corio::sync::local`, no atomics) and `tokio`
//! (`tokio::sync`). The goal for `corio_local` is at most half of tokio's time.
//!
//! - `mutex_uncontended`: lock and unlock, one task.
//! - `mutex_handoff`: two tasks taking turns on one mutex, each holding it
//!   across a `yield_now` so the other is waiting: every lock is a hand-off
//!   from a waiting queue (item: one hand-off and one yield).
//! - `semaphore`: acquire and release one permit, one task.
//! - `broadcast_fanout`: one value sent to 100 receiver tasks (item: one
//!   send and its 100 receives).

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use divan::Bencher;

fn main() {
    divan::main();
}

/// Items per sample.
const N: usize = 1000;

/// Polls `fut` once with a no-op waker.
fn poll_once<F: Future>(fut: std::pin::Pin<&mut F>) -> Poll<F::Output> {
    fut.poll(&mut Context::from_waker(std::task::Waker::noop()))
}

/// The same names on both runtimes, so each benchmark body is written once.
mod corio_api {
    pub use corio::sync::mpsc::{channel, unbounded_channel};
    pub use corio::sync::{Mutex, Semaphore, broadcast};
    pub use corio::time::{sleep, sleep_until};
    pub use corio::{spawn, yield_now};
    pub use std::sync::Arc as Shared;

    pub fn rt() -> corio::Runtime {
        corio::Runtime::new().expect("corio runtime")
    }
}

/// `corio::sync::local` under the same names (the rest as in `corio_api`).
mod corio_local_api {
    pub use corio::sync::local::{Mutex, Semaphore, broadcast};
    pub use corio::{spawn, yield_now};
    pub use std::rc::Rc as Shared;

    pub fn rt() -> corio::Runtime {
        corio::Runtime::new().expect("corio runtime")
    }
}

mod tokio_api {
    pub use std::sync::Arc as Shared;
    pub use tokio::spawn;
    pub use tokio::sync::mpsc::{channel, unbounded_channel};
    pub use tokio::sync::{Mutex, Semaphore, broadcast};
    pub use tokio::task::yield_now;
    pub use tokio::time::sleep;

    pub fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime")
    }

    pub fn sleep_until(deadline: std::time::Instant) -> tokio::time::Sleep {
        tokio::time::sleep_until(deadline.into())
    }
}

/// A group `$name` with a `corio` and a `tokio` benchmark running `$body`
/// (an async block) `N` items per sample, with `api` naming that runtime's
/// functions.
macro_rules! versus {
    ($name:ident, $samples:expr, $body:expr) => {
        #[divan::bench_group(sample_count = $samples)]
        mod $name {
            use super::*;

            #[divan::bench]
            fn corio(b: Bencher) {
                use crate::corio_api as api;
                let rt = api::rt();
                b.counter(N).bench_local(|| rt.block_on($body));
            }

            #[divan::bench]
            fn tokio(b: Bencher) {
                use crate::tokio_api as api;
                let rt = api::rt();
                b.counter(N).bench_local(|| rt.block_on($body));
            }
        }
    };
}

/// Like `versus!`, with a third row for corio's local flavor, and `$items`
/// items per sample.
macro_rules! versus3 {
    ($name:ident, $samples:expr, $items:expr, $body:expr) => {
        #[divan::bench_group(sample_count = $samples)]
        mod $name {
            use super::*;

            #[divan::bench]
            fn corio(b: Bencher) {
                use crate::corio_api as api;
                let rt = api::rt();
                b.counter($items).bench_local(|| rt.block_on($body));
            }

            #[divan::bench]
            fn corio_local(b: Bencher) {
                use crate::corio_local_api as api;
                let rt = api::rt();
                b.counter($items).bench_local(|| rt.block_on($body));
            }

            #[divan::bench]
            fn tokio(b: Bencher) {
                use crate::tokio_api as api;
                let rt = api::rt();
                b.counter($items).bench_local(|| rt.block_on($body));
            }
        }
    };
}

versus!(spawn_join, 200, async {
    for i in 0..N {
        assert_eq!(api::spawn(async move { i }).await.unwrap(), i);
    }
});

versus!(spawn_many, 200, async {
    let hs: Vec<_> = (0..N).map(|i| api::spawn(async move { i })).collect();
    for (i, h) in hs.into_iter().enumerate() {
        assert_eq!(h.await.unwrap(), i);
    }
});

versus!(yield_now, 200, async {
    let t = api::spawn(async {
        for _ in 0..N {
            api::yield_now().await;
        }
    });
    t.await.unwrap()
});

versus!(timer_register_cancel, 200, async {
    for _ in 0..N {
        let s = pin!(api::sleep(Duration::from_secs(30)));
        assert!(poll_once(s).is_pending());
    }
});

versus!(timers_fire, 50, async {
    // Deadlines 0..1 ms from now, the same sequence for both runtimes.
    let now = Instant::now();
    let mut rng = 0x9E37_79B9_7F4A_7C15_u64;
    let hs: Vec<_> = (0..N)
        .map(|_| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let deadline = now + Duration::from_nanos(rng % 1_000_000);
            api::spawn(api::sleep_until(deadline))
        })
        .collect();
    for h in hs {
        h.await.unwrap();
    }
});

versus!(channel_unbounded, 200, async {
    let (tx, mut rx) = api::unbounded_channel();
    for i in 0..N {
        tx.send(i).unwrap();
    }
    for i in 0..N {
        assert_eq!(rx.recv().await, Some(i));
    }
});

versus!(channel_ping_pong, 200, async {
    let (ping_tx, mut ping_rx) = api::channel::<usize>(1);
    let (pong_tx, mut pong_rx) = api::channel::<usize>(1);
    let echo = api::spawn(async move {
        while let Some(v) = ping_rx.recv().await {
            pong_tx.send(v).await.unwrap();
        }
    });
    for i in 0..N {
        ping_tx.send(i).await.unwrap();
        assert_eq!(pong_rx.recv().await, Some(i));
    }
    drop(ping_tx);
    echo.await.unwrap();
});

#[divan::bench(sample_count = 200)]
fn nop_corio(b: Bencher) {
    let rt = corio_api::rt();
    b.counter(N).bench_local(|| {
        rt.block_on(async {
            for _ in 0..N {
                corio::nop().await.unwrap();
            }
        })
    });
}

versus3!(mutex_uncontended, 200, N, async {
    let m = api::Mutex::new(0usize);
    for _ in 0..N {
        *m.lock().await += 1;
    }
    assert_eq!(*m.lock().await, N);
});

versus3!(mutex_handoff, 200, N, async {
    let m = api::Shared::new(api::Mutex::new(0usize));
    let other = m.clone();
    let t = api::spawn(async move {
        for _ in 0..N / 2 {
            let mut g = other.lock().await;
            *g += 1;
            api::yield_now().await;
        }
    });
    for _ in 0..N / 2 {
        let mut g = m.lock().await;
        *g += 1;
        api::yield_now().await;
    }
    t.await.unwrap();
    assert_eq!(*m.lock().await, N);
});

versus3!(semaphore, 200, N, async {
    let s = api::Semaphore::new(1);
    for _ in 0..N {
        drop(s.acquire().await.unwrap());
    }
    assert_eq!(s.available_permits(), 1);
});

/// Values sent per `broadcast_fanout` sample.
const FANOUT_SENDS: usize = 100;

versus3!(broadcast_fanout, 50, FANOUT_SENDS, async {
    let (tx, _) = api::broadcast::channel::<usize>(128);
    let receivers: Vec<_> = (0..100)
        .map(|_| {
            let mut rx = tx.subscribe();
            api::spawn(async move {
                let mut sum = 0;
                for _ in 0..FANOUT_SENDS {
                    sum += rx.recv().await.unwrap();
                }
                sum
            })
        })
        .collect();
    api::yield_now().await;
    for i in 0..FANOUT_SENDS {
        tx.send(i).unwrap();
    }
    for r in receivers {
        assert_eq!(r.await.unwrap(), FANOUT_SENDS * (FANOUT_SENDS - 1) / 2);
    }
});
