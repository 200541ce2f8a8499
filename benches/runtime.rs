//! Runtime micro-benchmarks: corio against tokio's current-thread runtime and raw io_uring.
//!
//! Run: `taskset -c 1 cargo bench --bench runtime [-- FILTER...]`. A bench runs when its
//! name contains any FILTER (`spawn`, `yield`, `timers`, `nop`, ...); the words `corio`,
//! `tokio` and `raw` select runtimes instead (e.g. `-- nop corio` to profile corio alone).
//! Each figure is the min and median of `REPS` runs after a warm-up, contenders taking turns.
//! Everything runs inside a spawned task, except `spawn@block_on` (directly in `block_on`).
//! On a shared machine prefix `chrt -f 10`: other processes on the core add ms to lateness.

use std::future::Future;
use std::time::{Duration, Instant};

use io_uring::{IoUring, opcode};

const REPS: usize = 5;
const N_SPAWN_JOIN: usize = 200_000;
const N_SPAWN_MANY: usize = 100_000;
const N_YIELD: usize = 1_000_000;
const N_TIMERS: usize = 100_000;
/// Light load: timers far enough apart that lateness shows precision, not backlog.
const N_TIMERS_LIGHT: usize = 1_000;
const TIMER_SPREAD_NS: u64 = 10_000_000;
const N_NOP: usize = 500_000;

/// Min and median of one measured quantity over `REPS` runs.
#[derive(Clone, Copy, Debug, Default)]
struct Stats {
    min: f64,
    med: f64,
}

/// One contender: runs the measurement once, returns its figures.
type Sampler<'a, const K: usize> = &'a mut dyn FnMut() -> [f64; K];

/// Runs every selected sampler once to warm up, then `REPS` rounds of each in turn
/// (interleaved, so drift on a shared machine hits all alike); returns per-column stats.
fn interleave<const K: usize, const M: usize>(
    mut fs: [Option<Sampler<'_, K>>; M],
) -> [Option<[Stats; K]>; M] {
    let mut runs: [Vec<[f64; K]>; M] = std::array::from_fn(|_| Vec::new());
    for round in 0..=REPS {
        for (f, r) in fs.iter_mut().zip(&mut runs) {
            if let Some(f) = f {
                let v = f();
                if round > 0 {
                    r.push(v);
                }
            }
        }
    }
    runs.map(|r| {
        (!r.is_empty()).then(|| {
            std::array::from_fn(|k| {
                let mut col: Vec<f64> = r.iter().map(|x| x[k]).collect();
                col.sort_by(f64::total_cmp);
                Stats {
                    min: col[0],
                    med: col[col.len() / 2],
                }
            })
        })
    })
}

/// Column `k` of a contender's figures.
fn col<const K: usize>(s: Option<[Stats; K]>, k: usize) -> Option<Stats> {
    s.map(|s| s[k])
}

fn ns_per(d: Duration, n: usize) -> f64 {
    d.as_nanos() as f64 / n as f64
}

fn xorshift(s: &mut u64) -> u64 {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    *s
}

/// `spawn(async {}).await`, one at a time; yields the elapsed time.
macro_rules! spawn_join {
    ($spawn:path, $n:expr) => {
        async move {
            let t = Instant::now();
            for _ in 0..$n {
                $spawn(async {}).await.unwrap();
            }
            t.elapsed()
        }
    };
}

/// Spawns `$n` empty tasks, then awaits every handle.
macro_rules! spawn_many {
    ($spawn:path, $n:expr) => {
        async move {
            let t = Instant::now();
            let hs: Vec<_> = (0..$n).map(|_| $spawn(async {})).collect();
            for h in hs {
                h.await.unwrap();
            }
            t.elapsed()
        }
    };
}

/// One task yielding `$n` times (each yield wakes itself).
macro_rules! yields {
    ($yield_now:path, $n:expr) => {
        async move {
            let t = Instant::now();
            for _ in 0..$n {
                $yield_now().await;
            }
            t.elapsed()
        }
    };
}

/// `$n` tasks, each sleeping until a random deadline 0..10 ms after its first poll and
/// returning how late it woke. Yields the total time and the lateness of every timer.
macro_rules! timers {
    ($spawn:path, $sleep_until:path, $n:expr) => {
        async move {
            let t = Instant::now();
            let mut rng = 0x9E37_79B9_7F4A_7C15_u64;
            let hs: Vec<_> = (0..$n)
                .map(|_| {
                    let off = Duration::from_nanos(xorshift(&mut rng) % TIMER_SPREAD_NS);
                    $spawn(async move {
                        let deadline = Instant::now() + off;
                        $sleep_until(deadline).await;
                        Instant::now() - deadline
                    })
                })
                .collect();
            let mut late = Vec::with_capacity($n);
            for h in hs {
                late.push(h.await.unwrap());
            }
            (t.elapsed(), late)
        }
    };
}

/// Runs `fut` inside a task spawned on the corio runtime.
fn corio_task<T: 'static>(rt: &corio::Runtime, fut: impl Future<Output = T> + 'static) -> T {
    rt.block_on(async { corio::spawn(fut).await.unwrap() })
}

/// Runs `fut` inside a task spawned on the tokio runtime.
fn tokio_task<T: Send + 'static>(
    rt: &tokio::runtime::Runtime,
    fut: impl Future<Output = T> + Send + 'static,
) -> T {
    rt.block_on(async { tokio::spawn(fut).await.unwrap() })
}

fn tokio_sleep_until(deadline: Instant) -> tokio::time::Sleep {
    tokio::time::sleep_until(deadline.into())
}

/// ns per timer, mean lateness (µs), p99 lateness (µs).
fn timer_figures((total, mut late): (Duration, Vec<Duration>)) -> [f64; 3] {
    late.sort();
    let mean = late.iter().sum::<Duration>().as_nanos() as f64 / late.len() as f64;
    let p99 = late[late.len() * 99 / 100].as_nanos() as f64;
    [ns_per(total, late.len()), mean / 1e3, p99 / 1e3]
}

/// One NOP round trip at a time straight through the `io-uring` crate.
fn raw_nop(n: usize, corio_flags: bool) -> f64 {
    let mut b: io_uring::Builder = IoUring::builder();
    if corio_flags {
        b.setup_single_issuer()
            .setup_defer_taskrun()
            .setup_taskrun_flag();
    }
    let mut ring = b.build(256).expect("io_uring setup");
    let t = Instant::now();
    for i in 0..n {
        let sqe = opcode::Nop::new().build().user_data(i as u64);
        // SAFETY: a NOP names no memory; the queue was emptied by the last submit.
        unsafe { ring.submission().push(&sqe) }.expect("sq has room");
        ring.submit_and_wait(1).expect("io_uring_enter");
        let cqe = ring.completion().next().expect("one completion");
        assert!(cqe.result() >= 0, "NOP failed: {}", cqe.result());
    }
    ns_per(t.elapsed(), n)
}

/// Command-line selection: words naming a runtime (`corio`, `tokio`, `raw`) pick runtimes,
/// other words pick the benches whose name contains them; none picks all.
struct Filter {
    benches: Vec<String>,
    runtimes: Vec<String>,
}

impl Filter {
    fn from_args() -> Filter {
        let (runtimes, benches) = std::env::args()
            .skip(1)
            .filter(|a| !a.starts_with('-'))
            .partition(|a| ["corio", "tokio", "raw"].contains(&a.as_str()));
        Filter { benches, runtimes }
    }

    fn bench(&self, name: &str) -> bool {
        self.benches.is_empty() || self.benches.iter().any(|f| name.contains(f.as_str()))
    }

    /// `f`, if runtime `rt` is selected.
    fn pick<'a, const K: usize>(&self, rt: &str, f: Sampler<'a, K>) -> Option<Sampler<'a, K>> {
        let on = self.runtimes.is_empty() || self.runtimes.iter().any(|r| r == rt);
        on.then_some(f)
    }
}

fn header() {
    println!(
        "{:<20} {:<16} {:>10} {:>10}  note",
        "bench", "runtime", "min", "median"
    );
}

fn row(bench: &str, rt: &str, s: Option<Stats>, unit: &str, note: &str) {
    if let Some(s) = s {
        println!(
            "{bench:<20} {rt:<16} {:>10.1} {:>10.1}  {unit} {note}",
            s.min, s.med
        );
    }
}

/// Prints corio's and tokio's rows, with corio's median as a fraction of tokio's.
fn versus(bench: &str, corio: Option<Stats>, tokio: Option<Stats>, unit: &str) {
    row(bench, "tokio", tokio, unit, "");
    let note = match (corio, tokio) {
        (Some(c), Some(t)) => {
            let ratio = c.med / t.med;
            let verdict = if ratio <= 0.5 { "ok" } else { "MISS" };
            format!("corio/tokio {ratio:.2} (goal <= 0.50: {verdict})")
        }
        _ => String::new(),
    };
    row(bench, "corio", corio, unit, &note);
}

fn main() {
    let sel = Filter::from_args();
    let crt = corio::Runtime::new().expect("corio runtime");
    let trt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    println!("{REPS} runs after a warm-up; figures in ns per op unless noted\n");
    header();

    if sel.bench("spawn_join") {
        let n = N_SPAWN_JOIN;
        let [c, t] = interleave([
            sel.pick("corio", &mut || {
                [ns_per(corio_task(&crt, spawn_join!(corio::spawn, n)), n)]
            }),
            sel.pick("tokio", &mut || {
                [ns_per(tokio_task(&trt, spawn_join!(tokio::spawn, n)), n)]
            }),
        ]);
        versus("spawn_join", col(c, 0), col(t, 0), "ns/op");
    }
    if sel.bench("spawn@block_on") {
        let n = N_SPAWN_JOIN;
        let [c, t] = interleave([
            sel.pick("corio", &mut || {
                [ns_per(crt.block_on(spawn_join!(corio::spawn, n)), n)]
            }),
            sel.pick("tokio", &mut || {
                [ns_per(trt.block_on(spawn_join!(tokio::spawn, n)), n)]
            }),
        ]);
        versus("spawn@block_on", col(c, 0), col(t, 0), "ns/op");
    }
    if sel.bench("spawn_many") {
        let n = N_SPAWN_MANY;
        let [c, t] = interleave([
            sel.pick("corio", &mut || {
                [ns_per(corio_task(&crt, spawn_many!(corio::spawn, n)), n)]
            }),
            sel.pick("tokio", &mut || {
                [ns_per(tokio_task(&trt, spawn_many!(tokio::spawn, n)), n)]
            }),
        ]);
        versus("spawn_many", col(c, 0), col(t, 0), "ns/task");
    }
    if sel.bench("yield") {
        let n = N_YIELD;
        let [c, t] = interleave([
            sel.pick("corio", &mut || {
                [ns_per(corio_task(&crt, yields!(corio::yield_now, n)), n)]
            }),
            sel.pick("tokio", &mut || {
                let fut = yields!(tokio::task::yield_now, n);
                [ns_per(tokio_task(&trt, fut), n)]
            }),
        ]);
        versus("yield", col(c, 0), col(t, 0), "ns/yield");
    }
    for (name, n) in [("timers", N_TIMERS), ("timers_light", N_TIMERS_LIGHT)] {
        if !sel.bench(name) {
            continue;
        }
        let [c, t] = interleave([
            sel.pick("corio", &mut || {
                let fut = timers!(corio::spawn, corio::time::sleep_until, n);
                timer_figures(corio_task(&crt, fut))
            }),
            sel.pick("tokio", &mut || {
                let fut = timers!(tokio::spawn, tokio_sleep_until, n);
                timer_figures(tokio_task(&trt, fut))
            }),
        ]);
        println!("{name}: {n} tasks, each sleeping a random 0-10 ms");
        if n == N_TIMERS {
            versus("  total", col(c, 0), col(t, 0), "ns/timer");
        } else {
            // Light load: the wall time is the 10 ms spread, not a cost.
            row("  total", "tokio", col(t, 0), "ns/timer", "");
            let note = "(spread-bound, no goal)";
            row("  total", "corio", col(c, 0), "ns/timer", note);
        }
        versus("  late mean", col(c, 1), col(t, 1), "us");
        versus("  late p99", col(c, 2), col(t, 2), "us");
    }
    if sel.bench("nop") {
        let n = N_NOP;
        let [c, raw, raw_f] = interleave([
            sel.pick("corio", &mut || {
                let d = corio_task(&crt, async move {
                    let t = Instant::now();
                    for _ in 0..n {
                        corio::nop().await.unwrap();
                    }
                    t.elapsed()
                });
                [ns_per(d, n)]
            }),
            sel.pick("raw", &mut || [raw_nop(n, false)]),
            sel.pick("raw", &mut || [raw_nop(n, true)]),
        ]);
        let (c, raw, raw_f) = (col(c, 0), col(raw, 0), col(raw_f, 0));
        row("nop", "raw", raw, "ns/op", "(default ring flags)");
        let flags = "(SINGLE_ISSUER|DEFER_TASKRUN)";
        row("nop", "raw+corio-flags", raw_f, "ns/op", flags);
        let note = match (c, raw, raw_f) {
            (Some(c), Some(r), Some(rf)) => {
                let gap = c.med - r.med.min(rf.med);
                let verdict = if gap <= 50.0 { "ok" } else { "MISS" };
                format!("corio - best raw {gap:.0} ns (goal <= 50: {verdict})")
            }
            _ => String::new(),
        };
        row("nop", "corio", c, "ns/op", &note);
    }
}
