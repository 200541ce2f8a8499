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

fn corio_rt() -> corio::Runtime {
    corio::Runtime::new().expect("corio runtime")
}

fn tokio_rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// Polls `fut` once with a no-op waker.
fn poll_once<F: Future>(fut: std::pin::Pin<&mut F>) -> Poll<F::Output> {
    fut.poll(&mut Context::from_waker(std::task::Waker::noop()))
}

fn xorshift(s: &mut u64) -> u64 {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    *s
}

#[divan::bench_group(sample_count = 200)]
mod spawn_join {
    use super::*;

    #[divan::bench]
    fn corio(b: Bencher) {
        let rt = corio_rt();
        b.counter(N).bench_local(|| {
            rt.block_on(async {
                for i in 0..N {
                    assert_eq!(corio::spawn(async move { i }).await.unwrap(), i);
                }
            })
        });
    }

    #[divan::bench]
    fn tokio(b: Bencher) {
        let rt = tokio_rt();
        b.counter(N).bench_local(|| {
            rt.block_on(async {
                for i in 0..N {
                    assert_eq!(tokio::spawn(async move { i }).await.unwrap(), i);
                }
            })
        });
    }
}

#[divan::bench_group(sample_count = 200)]
mod spawn_many {
    use super::*;

    #[divan::bench]
    fn corio(b: Bencher) {
        let rt = corio_rt();
        b.counter(N).bench_local(|| {
            rt.block_on(async {
                let hs: Vec<_> = (0..N).map(|i| corio::spawn(async move { i })).collect();
                for (i, h) in hs.into_iter().enumerate() {
                    assert_eq!(h.await.unwrap(), i);
                }
            })
        });
    }

    #[divan::bench]
    fn tokio(b: Bencher) {
        let rt = tokio_rt();
        b.counter(N).bench_local(|| {
            rt.block_on(async {
                let hs: Vec<_> = (0..N).map(|i| tokio::spawn(async move { i })).collect();
                for (i, h) in hs.into_iter().enumerate() {
                    assert_eq!(h.await.unwrap(), i);
                }
            })
        });
    }
}

#[divan::bench_group(sample_count = 200)]
mod yield_now {
    use super::*;

    #[divan::bench]
    fn corio(b: Bencher) {
        let rt = corio_rt();
        b.counter(N).bench_local(|| {
            rt.block_on(async {
                let t = corio::spawn(async {
                    for _ in 0..N {
                        corio::yield_now().await;
                    }
                });
                t.await.unwrap()
            })
        });
    }

    #[divan::bench]
    fn tokio(b: Bencher) {
        let rt = tokio_rt();
        b.counter(N).bench_local(|| {
            rt.block_on(async {
                let t = tokio::spawn(async {
                    for _ in 0..N {
                        tokio::task::yield_now().await;
                    }
                });
                t.await.unwrap()
            })
        });
    }
}

#[divan::bench_group(sample_count = 200)]
mod timer_register_cancel {
    use super::*;

    #[divan::bench]
    fn corio(b: Bencher) {
        let rt = corio_rt();
        b.counter(N).bench_local(|| {
            rt.block_on(async {
                for _ in 0..N {
                    let s = pin!(corio::time::sleep(Duration::from_secs(30)));
                    assert!(poll_once(s).is_pending());
                }
            })
        });
    }

    #[divan::bench]
    fn tokio(b: Bencher) {
        let rt = tokio_rt();
        b.counter(N).bench_local(|| {
            rt.block_on(async {
                for _ in 0..N {
                    let s = pin!(tokio::time::sleep(Duration::from_secs(30)));
                    assert!(poll_once(s).is_pending());
                }
            })
        });
    }
}

#[divan::bench_group(sample_count = 50)]
mod timers_fire {
    use super::*;

    /// Deadlines 0..1 ms from now, the same sequence for both runtimes.
    fn deadlines() -> Vec<Instant> {
        let now = Instant::now();
        let mut rng = 0x9E37_79B9_7F4A_7C15_u64;
        (0..N)
            .map(|_| now + Duration::from_nanos(xorshift(&mut rng) % 1_000_000))
            .collect()
    }

    #[divan::bench]
    fn corio(b: Bencher) {
        let rt = corio_rt();
        b.counter(N).bench_local(|| {
            rt.block_on(async {
                let hs: Vec<_> = deadlines()
                    .into_iter()
                    .map(|d| corio::spawn(corio::time::sleep_until(d)))
                    .collect();
                for h in hs {
                    h.await.unwrap();
                }
            })
        });
    }

    #[divan::bench]
    fn tokio(b: Bencher) {
        let rt = tokio_rt();
        b.counter(N).bench_local(|| {
            rt.block_on(async {
                let hs: Vec<_> = deadlines()
                    .into_iter()
                    .map(|d| tokio::spawn(tokio::time::sleep_until(d.into())))
                    .collect();
                for h in hs {
                    h.await.unwrap();
                }
            })
        });
    }
}

#[divan::bench(sample_count = 200)]
fn nop_corio(b: Bencher) {
    let rt = corio_rt();
    b.counter(N).bench_local(|| {
        rt.block_on(async {
            for _ in 0..N {
                corio::nop().await.unwrap();
            }
        })
    });
}

#[divan::bench_group(sample_count = 200)]
mod channel_unbounded {
    use super::*;

    #[divan::bench]
    fn corio(b: Bencher) {
        let rt = corio_rt();
        b.counter(N).bench_local(|| {
            rt.block_on(async {
                let (tx, mut rx) = corio::sync::mpsc::unbounded_channel();
                for i in 0..N {
                    tx.send(i).unwrap();
                }
                for i in 0..N {
                    assert_eq!(rx.recv().await, Some(i));
                }
            })
        });
    }

    #[divan::bench]
    fn tokio(b: Bencher) {
        let rt = tokio_rt();
        b.counter(N).bench_local(|| {
            rt.block_on(async {
                let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
                for i in 0..N {
                    tx.send(i).unwrap();
                }
                for i in 0..N {
                    assert_eq!(rx.recv().await, Some(i));
                }
            })
        });
    }
}

#[divan::bench_group(sample_count = 200)]
mod channel_ping_pong {
    use super::*;

    #[divan::bench]
    fn corio(b: Bencher) {
        use corio::sync::mpsc::channel;
        let rt = corio_rt();
        b.counter(N).bench_local(|| {
            rt.block_on(async {
                let (ping_tx, mut ping_rx) = channel::<usize>(1);
                let (pong_tx, mut pong_rx) = channel::<usize>(1);
                let echo = corio::spawn(async move {
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
            })
        });
    }

    #[divan::bench]
    fn tokio(b: Bencher) {
        use tokio::sync::mpsc::channel;
        let rt = tokio_rt();
        b.counter(N).bench_local(|| {
            rt.block_on(async {
                let (ping_tx, mut ping_rx) = channel::<usize>(1);
                let (pong_tx, mut pong_rx) = channel::<usize>(1);
                let echo = tokio::spawn(async move {
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
            })
        });
    }
}
