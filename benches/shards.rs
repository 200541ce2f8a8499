//! Cross-shard ping-pong: the cost of waking a parked shard, eventfd write
//! against `IORING_OP_MSG_RING` (`Builder::msg_ring_wakeups`).
//!
//! Two shards pinned to the first two allowed CPUs bounce a counter over two
//! corio `mpsc` channels; each message finds the other shard parked, so each
//! round trip is two wake-ups. The two modes run interleaved, each run timing
//! several repetitions after a warm-up; min and median over all repetitions.
//!
//! `cargo bench --bench shards [-- ROUNDS]` (default 6 runs per mode).
//!
//! Measured 2026-11-25, Linux 6.18, 2-CPU VM; ns per round trip:
//!
//! | wake-up  | wall min      | wall median   | CPU min       | CPU median    |
//! |----------|---------------|---------------|---------------|---------------|
//! | eventfd  | 43242         | 48241         | 32564         | 36505         |
//! | msg_ring | 32157         | 37587         | 19717         | 22849         |
//!
//! (quiet machine, one invocation; three earlier invocations on a busy
//! machine, load 2-3, agreed on the order: eventfd CPU median 31–44 µs,
//! MSG_RING 24–47 µs.)

use std::sync::{Arc, Mutex};
use std::time::Instant;

use corio::sync::mpsc;

const WARMUP: u32 = 2_000;
const TRIPS: u32 = 20_000;
const REPS: usize = 5;

/// One sample: wall ns per round trip, process CPU ns per round trip,
/// enters per round trip on the timing shard.
type Sample = (f64, f64, f64);

fn cpu_ns() -> f64 {
    // SAFETY: getrusage fills a zeroed rusage we own.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: as above; RUSAGE_SELF covers both shard threads.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let t = |tv: libc::timeval| tv.tv_sec as f64 * 1e9 + tv.tv_usec as f64 * 1e3;
    t(ru.ru_utime) + t(ru.ru_stime)
}

fn run(msg_ring: bool) -> Vec<Sample> {
    type Pipes = (mpsc::Sender<u32>, mpsc::Receiver<u32>);
    let (a_tx, b_rx) = mpsc::channel::<u32>(1);
    let (b_tx, a_rx) = mpsc::channel::<u32>(1);
    let pipes: Arc<Mutex<Vec<Option<Pipes>>>> =
        Arc::new(Mutex::new(vec![Some((a_tx, a_rx)), Some((b_tx, b_rx))]));
    let out = corio::Builder::new()
        .driver(corio::DriverKind::Uring)
        .shards(2)
        .pin_cpus(true)
        .msg_ring_wakeups(msg_ring)
        .run(move |shard| {
            let (tx, mut rx) = pipes.lock().unwrap()[shard.index()].take().unwrap();
            async move {
                let mut samples = Vec::new();
                if shard.index() == 0 {
                    let mut trips = async |n: u32| {
                        for i in 0..n {
                            tx.send(i).await.unwrap();
                            assert_eq!(rx.recv().await.unwrap(), i + 1);
                        }
                    };
                    trips(WARMUP).await;
                    for _ in 0..REPS {
                        let (s0, c0, t0) = (corio::runtime::stats(), cpu_ns(), Instant::now());
                        trips(TRIPS).await;
                        let wall = t0.elapsed().as_nanos() as f64;
                        let cpu = cpu_ns() - c0;
                        let s = corio::runtime::stats().since(&s0);
                        let n = f64::from(TRIPS);
                        samples.push((wall / n, cpu / n, s.enters as f64 / n));
                    }
                    if msg_ring {
                        assert!(corio::runtime::stats().msg_ring_wakeups > 0);
                    }
                } else {
                    while let Some(i) = rx.recv().await {
                        if tx.send(i + 1).await.is_err() {
                            break;
                        }
                    }
                }
                samples
            }
        })
        .expect("two pinned io_uring shards");
    out.into_iter().flatten().collect()
}

fn min_median(mut v: Vec<f64>) -> (f64, f64) {
    v.sort_by(f64::total_cmp);
    (v[0], v[v.len() / 2])
}

fn main() {
    let rounds: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(6);
    let mut all: [Vec<Sample>; 2] = [Vec::new(), Vec::new()];
    for _ in 0..rounds {
        for (k, on) in [false, true].into_iter().enumerate() {
            all[k].extend(run(on));
        }
    }
    println!(
        "cross-shard ping-pong, 2 pinned shards, {rounds} runs x {REPS} reps x {TRIPS} round trips"
    );
    println!(
        "{:<10} {:>14} {:>14} {:>14} {:>14} {:>12}",
        "wake-up", "wall ns min", "wall ns med", "cpu ns min", "cpu ns med", "enters/trip"
    );
    for (k, name) in ["eventfd", "msg_ring"].into_iter().enumerate() {
        let (wmin, wmed) = min_median(all[k].iter().map(|s| s.0).collect());
        let (cmin, cmed) = min_median(all[k].iter().map(|s| s.1).collect());
        let (_, emed) = min_median(all[k].iter().map(|s| s.2).collect());
        println!("{name:<10} {wmin:>14.0} {wmed:>14.0} {cmin:>14.0} {cmed:>14.0} {emed:>12.2}");
    }
}
