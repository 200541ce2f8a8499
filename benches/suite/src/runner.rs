//! `corio-bench all`: every scenario, each runtime three times, then `BENCHMARKS.md` and the chart.
//!
//! How a network run goes: the runner (pinned to the load CPU) starts
//! `corio-bench serve APP RUNTIME` as a child pinned to the server CPU(s),
//! reads the address it prints, warms up, samples the child's utime + stime
//! from `/proc/PID/stat`, loads it for the measured window (built-in
//! generator, or wrk for HTTP when wrk is installed), samples again, and
//! kills it. Server CPU µs per request = CPU time delta / requests in the
//! window. Runtimes take turns within each repeat, so drift hits all alike.
//! The syscall pass repeats one run per runtime with `perf stat` counting the
//! server's `raw_syscalls:sys_enter` (and a few named syscalls) in the window.
//! File runs start `corio-bench fileread RUNTIME` children on the server CPU.

use std::io::{self, BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::Opts;
use crate::load::{self, Message};
use crate::report;
use crate::rt::{App, Runtime};
use crate::sys;

/// Settings of one `all` run.
#[derive(Debug, Clone)]
pub struct Cfg {
    pub secs: f64,
    pub warmup: f64,
    pub repeats: usize,
    pub file_secs: f64,
    pub server_cpu: usize,
    pub load_cpu: usize,
    pub only: Vec<String>,
    /// Runtime names to keep (all when empty).
    pub runtimes: Vec<String>,
    pub out: PathBuf,
    pub svg: PathBuf,
    pub exe: PathBuf,
    /// `wrk --version`'s first line, if wrk is installed.
    pub wrk: Option<String>,
    /// Whether `perf stat` can count syscall tracepoints here.
    pub perf: bool,
    /// Longest wait for an idle machine before each run, in seconds.
    pub quiet_wait: f64,
    /// Longest total of those waits, in seconds.
    pub quiet_budget: f64,
    /// When this run started (UTC).
    pub date: String,
}

/// How a scenario loads the server.
#[derive(Debug, Clone, Copy)]
pub enum LoadKind {
    /// The built-in closed-loop generator.
    Builtin { conns: usize, message: Message },
    /// wrk with `threads` threads and `conns` connections.
    Wrk { threads: usize, conns: usize },
}

/// One runtime (and mode) in a scenario.
#[derive(Debug, Clone)]
pub struct Contender {
    pub label: String,
    pub rt: Runtime,
    pub threads: usize,
}

/// A network scenario.
#[derive(Debug, Clone)]
pub struct NetCase {
    pub id: &'static str,
    pub title: String,
    /// The chart's title.
    pub short: &'static str,
    pub app: App,
    pub load: LoadKind,
    pub server_cpus: Vec<usize>,
    pub load_cpus: Vec<usize>,
    pub contenders: Vec<Contender>,
}

/// One measured network run.
#[derive(Debug, Clone)]
pub struct Sample {
    pub case: &'static str,
    pub label: String,
    pub repeat: usize,
    pub requests: u64,
    pub rps: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    pub cpu_us_per_req: f64,
    /// The user-space part of `cpu_us_per_req` (the rest is kernel time).
    pub user_us_per_req: f64,
    /// Server CPU time / wall time (1.0 = one core busy).
    pub cpu_cores: f64,
    /// How busy the machine was (all CPUs, 0–1) just before the run, with
    /// none of the suite's processes running: other work skews the figures.
    pub background: f64,
    /// When the run that measured it started (UTC).
    pub date: String,
}

/// (syscall, count) pairs from `perf stat`; "total" is every syscall.
type Counts = Vec<(String, u64)>;

/// Syscalls per request of one runtime in one scenario.
#[derive(Debug, Clone)]
pub struct SyscallRow {
    pub case: &'static str,
    pub label: String,
    pub requests: u64,
    pub total: f64,
    /// (syscall, count per request), largest first.
    pub named: Vec<(String, f64)>,
    /// When the run that measured it started (UTC).
    pub date: String,
}

/// One file random-read run.
#[derive(Debug, Clone)]
pub struct FileSample {
    pub label: String,
    pub qd: usize,
    pub repeat: usize,
    pub iops: f64,
    pub cpu_us_per_read: f64,
    /// When the run that measured it started (UTC).
    pub date: String,
}

/// Everything `all` measured.
#[derive(Debug, Default)]
pub struct Results {
    pub cases: Vec<NetCase>,
    pub samples: Vec<Sample>,
    pub syscalls: Vec<SyscallRow>,
    pub instr: Vec<crate::instr::InstrRow>,
    pub idle: Vec<crate::idle::IdleRow>,
    pub micro: Vec<crate::micro_table::MicroRow>,
    pub files: Vec<FileSample>,
    pub failures: Vec<String>,
    pub started: Option<Instant>,
    pub load_before: String,
    pub load_after: String,
    /// Runs started although the machine was still busy after `quiet_wait`.
    pub busy_starts: usize,
    /// Seconds spent waiting for the machine to calm down.
    pub waited: f64,
    /// When this run started (UTC).
    pub date: String,
    /// Figures not redone this time, kept from `results.tsv`: (scenario,
    /// date of their run, runtimes).
    pub kept: Vec<(String, String, Vec<String>)>,
}

fn contender(rt: Runtime, threads: usize) -> Contender {
    let label = if threads > 1 && rt != Runtime::TokioMt {
        let kind = match rt {
            Runtime::CorioUring
            | Runtime::CorioPoll
            | Runtime::CorioPool
            | Runtime::CorioCompat => "sharded",
            _ => "per core",
        };
        format!("{} ×{threads} {kind}", rt.name())
    } else if rt == Runtime::TokioMt {
        format!("tokio-mt ({threads} workers)")
    } else {
        rt.name().to_string()
    };
    Contender { label, rt, threads }
}

/// The single-core runtimes of the echo and HTTP scenarios.
const ONE_CORE: [Runtime; 9] = [
    Runtime::Limit,
    Runtime::CorioUring,
    Runtime::CorioPool,
    Runtime::CorioPoll,
    Runtime::Tokio,
    Runtime::Monoio,
    Runtime::Glommio,
    Runtime::Compio,
    Runtime::TokioUring,
];

/// The echo scenarios' runtimes: the single-core ones, and the compat layer.
const ECHO: [Runtime; 10] = [
    Runtime::Limit,
    Runtime::CorioUring,
    Runtime::CorioPool,
    Runtime::CorioCompat,
    Runtime::CorioPoll,
    Runtime::Tokio,
    Runtime::Monoio,
    Runtime::Glommio,
    Runtime::Compio,
    Runtime::TokioUring,
];

/// The file-read runtimes.
const FILE: [Runtime; 8] = [
    Runtime::CorioUring,
    Runtime::CorioFixed,
    Runtime::CorioPoll,
    Runtime::Tokio,
    Runtime::Monoio,
    Runtime::Glommio,
    Runtime::Compio,
    Runtime::TokioUring,
];

/// Scenario ids `--only` accepts.
const SCENARIOS: [&str; 10] = [
    "echo64", "echo1k", "http", "http2", "hyper", "file", "syscalls", "micro", "instr", "idle",
];

fn cases(cfg: &Cfg) -> Vec<NetCase> {
    let one = |rts: &[Runtime]| rts.iter().map(|&r| contender(r, 1)).collect::<Vec<_>>();
    let (s, l) = (vec![cfg.server_cpu], vec![cfg.load_cpu]);
    let http_load = |threads, conns| match cfg.wrk {
        Some(_) => LoadKind::Wrk { threads, conns },
        None => LoadKind::Builtin {
            conns,
            message: Message::Http,
        },
    };
    let both = vec![
        cfg.load_cpu.min(cfg.server_cpu),
        cfg.load_cpu.max(cfg.server_cpu),
    ];
    let tool = if cfg.wrk.is_some() {
        "wrk"
    } else {
        "built-in generator"
    };
    vec![
        NetCase {
            id: "echo64",
            title: "Echo, 64 connections × 64 B".into(),
            short: "Echo 64 × 64 B, server on one core",
            app: App::Echo,
            load: LoadKind::Builtin {
                conns: 64,
                message: Message::Echo { size: 64 },
            },
            server_cpus: s.clone(),
            load_cpus: l.clone(),
            contenders: one(&ECHO),
        },
        NetCase {
            id: "echo1k",
            title: "Echo, 256 connections × 1 KiB".into(),
            short: "Echo 256 × 1 KiB, server on one core",
            app: App::Echo,
            load: LoadKind::Builtin {
                conns: 256,
                message: Message::Echo { size: 1024 },
            },
            server_cpus: s.clone(),
            load_cpus: l.clone(),
            contenders: one(&ECHO),
        },
        NetCase {
            id: "http",
            title: format!(
                "HTTP keep-alive, 64 connections ({tool}, 1 thread), server on one core"
            ),
            short: "HTTP keep-alive, server on one core",
            app: App::Http,
            load: http_load(1, 64),
            server_cpus: s.clone(),
            load_cpus: l.clone(),
            contenders: one(&ONE_CORE),
        },
        NetCase {
            id: "hyper",
            title: format!(
                "hyper 1.x hello world, 64 connections ({tool}, 1 thread), server on one core"
            ),
            short: "hyper 1.x on corio and on tokio, server on one core",
            app: App::Http,
            load: http_load(1, 64),
            server_cpus: s,
            load_cpus: l,
            contenders: one(&[
                Runtime::CorioCompat,
                Runtime::TokioHyper,
                Runtime::CorioUring,
            ]),
        },
        NetCase {
            id: "http2",
            title: format!(
                "HTTP keep-alive, 64 connections ({tool}, 2 threads), server and load share both cores"
            ),
            short: "HTTP keep-alive, server and load on both cores",
            app: App::Http,
            load: http_load(2, 64),
            server_cpus: both.clone(),
            load_cpus: both,
            contenders: vec![
                contender(Runtime::CorioUring, 2),
                contender(Runtime::CorioPool, 2),
                contender(Runtime::CorioPoll, 2),
                contender(Runtime::TokioMt, 2),
                contender(Runtime::Tokio, 2),
                contender(Runtime::Monoio, 2),
                contender(Runtime::Glommio, 2),
                contender(Runtime::Compio, 2),
                contender(Runtime::TokioUring, 2),
            ],
        },
    ]
}

fn keeps(cfg: &Cfg, rt: Runtime) -> bool {
    cfg.runtimes.is_empty() || cfg.runtimes.iter().any(|r| r == rt.name())
}

fn keep_runtimes(cfg: &Cfg, mut case: NetCase) -> NetCase {
    case.contenders.retain(|c| keeps(cfg, c.rt));
    case
}

/// Runs the scenarios (`report_only`: none, only rewrites the report from
/// `results.tsv`) and writes the report.
pub fn all(o: &Opts, report_only: bool) -> io::Result<()> {
    let bad = |e: String| io::Error::new(io::ErrorKind::InvalidInput, e);
    let only: Vec<String> = o
        .str("only")
        .map(|s| s.split(',').map(|x| x.trim().to_string()).collect())
        .unwrap_or_default();
    if let Some(x) = only.iter().find(|x| !SCENARIOS.contains(&x.as_str())) {
        return Err(bad(format!("unknown scenario {x:?}; known: {SCENARIOS:?}")));
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let root = root.canonicalize().unwrap_or(root);
    let mut cfg = Cfg {
        secs: o.get("secs", 5.0).map_err(bad)?,
        warmup: o.get("warmup", 1.0).map_err(bad)?,
        repeats: o.get("repeats", 3).map_err(bad)?,
        file_secs: o.get("file-secs", 2.0).map_err(bad)?,
        server_cpu: o.get("server-cpu", 1).map_err(bad)?,
        load_cpu: o.get("load-cpu", 0).map_err(bad)?,
        only,
        runtimes: o
            .str("runtimes")
            .map(|s| s.split(',').map(|x| x.trim().to_string()).collect())
            .unwrap_or_default(),
        out: o
            .str("out")
            .map_or_else(|| root.join("BENCHMARKS.md"), PathBuf::from),
        svg: o
            .str("svg")
            .map_or_else(|| root.join("benches/suite/chart.svg"), PathBuf::from),
        exe: std::env::current_exe()?,
        wrk: tool_version("wrk", &["--version"]),
        perf: perf_counts_syscalls(),
        quiet_wait: o.get("quiet-wait", 15.0).map_err(bad)?,
        quiet_budget: o.get("quiet-budget", 300.0).map_err(bad)?,
        date: report::today(),
    };
    if cfg.repeats == 0 || cfg.secs <= 0.0 {
        return Err(bad("--repeats and --secs must be positive".into()));
    }
    sys::pin(&[cfg.load_cpu])?;
    let only = cfg.only.clone();
    let want = move |id: &str| !report_only && (only.is_empty() || only.iter().any(|x| x == id));
    let mut res = Results {
        started: Some(Instant::now()),
        date: cfg.date.clone(),
        load_before: sys::loadavg(),
        ..Results::default()
    };
    if !report_only {
        eprintln!("load average (1 min): {}", res.load_before);
        match &cfg.wrk {
            Some(v) => eprintln!("wrk: {v}"),
            None => eprintln!(
                "wrk not found: HTTP runs use the built-in generator (apt-get install -y wrk)"
            ),
        }
    }
    for case in cases(&cfg) {
        if !want(case.id) {
            continue;
        }
        let case = keep_runtimes(&cfg, case);
        eprintln!("== {}", case.title);
        for repeat in 0..cfg.repeats {
            for c in &case.contenders {
                let background = wait_quiet(&cfg, &mut res);
                match net_run(&cfg, &case, c, None) {
                    Ok((s, _)) => {
                        eprintln!(
                            "  [{}] {:<28} {:>9.0} req/s  p50 {:>7.1} µs  p99 {:>7.1} µs  {:>6.2} µs CPU/req ({:.2} user)",
                            repeat + 1,
                            c.label,
                            s.rps,
                            s.p50_us,
                            s.p99_us,
                            s.cpu_us_per_req,
                            s.user_us_per_req
                        );
                        res.samples.push(Sample {
                            repeat,
                            background,
                            ..s
                        });
                    }
                    Err(e) => {
                        eprintln!("  [{}] {:<28} FAILED: {e}", repeat + 1, c.label);
                        res.failures.push(format!("{} / {}: {e}", case.id, c.label));
                    }
                }
            }
        }
    }
    if want("syscalls") {
        if cfg.perf {
            syscall_pass(&cfg, &mut res);
        } else {
            eprintln!("perf cannot count syscall tracepoints here: no syscall table");
        }
    }
    if want("file") {
        file_pass(&cfg, &mut res)?;
    }
    if want("micro") {
        // The micro children's runtime names: corio (any corio kept), raw
        // (the limit's kind), or the peer itself.
        let kept = |name: &str| {
            cfg.runtimes.is_empty()
                || cfg.runtimes.iter().any(|r| {
                    r == name
                        || (name == "corio" && r.starts_with("corio"))
                        || (name == "raw" && r == "limit")
                })
        };
        crate::micro_table::pass(&cfg, &mut res, kept);
    }
    // Slow (valgrind): only when asked for by name.
    if !report_only && cfg.only.iter().any(|x| x == "instr") {
        crate::instr::pass(&cfg, &mut res, |rt| keeps(&cfg, rt));
    }
    // Opens 19,000 connections: only when asked for by name.
    if !report_only && cfg.only.iter().any(|x| x == "idle") {
        crate::idle::pass(&cfg, &mut res, |rt| keeps(&cfg, rt));
    }
    res.load_after = sys::loadavg();
    let elapsed = res.started.map_or(0.0, |t| t.elapsed().as_secs_f64());
    eprintln!("done in {elapsed:.0} s");
    res.cases = cases(&cfg)
        .into_iter()
        .map(|c| keep_runtimes(&cfg, c))
        .collect();
    // Next to the chart: benches/suite/results.tsv by default.
    let tsv = cfg
        .svg
        .parent()
        .unwrap_or(Path::new("."))
        .join("results.tsv");
    crate::store::merge(&tsv, &mut res);
    if report_only {
        crate::store::load_meta(&tsv, &mut cfg, &mut res);
    }
    crate::store::save(&tsv, &cfg, &res)?;
    report::write(&cfg, &res, &root)?;
    eprintln!(
        "wrote {}, {} and {}",
        cfg.out.display(),
        cfg.svg.display(),
        tsv.display()
    );
    Ok(())
}

/// A running server child; killed on drop.
struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Above this machine-wide busy fraction (with nothing of the suite running)
/// a run waits: on 2 CPUs, 0.1 is a fifth of a core.
pub const QUIET: f64 = 0.10;

/// Waits (up to `cfg.quiet_wait` s, and `cfg.quiet_budget` s in all) until
/// the machine is idle; returns the busy fraction last seen.
pub fn wait_quiet(cfg: &Cfg, res: &mut Results) -> f64 {
    let start = Instant::now();
    let left = (cfg.quiet_budget - res.waited).max(0.0);
    let deadline = start + Duration::from_secs_f64(cfg.quiet_wait.min(left));
    let mut said = false;
    let busy = loop {
        let busy = sys::machine_busy(Duration::from_millis(300));
        if busy <= QUIET {
            break busy;
        }
        if Instant::now() >= deadline {
            res.busy_starts += 1;
            eprintln!(
                "    (machine still {:.0}% busy: running anyway)",
                busy * 100.0
            );
            break busy;
        }
        if !said {
            eprintln!(
                "    (machine {:.0}% busy: waiting for it to calm down)",
                busy * 100.0
            );
            said = true;
        }
        std::thread::sleep(Duration::from_millis(700));
    };
    res.waited += start.elapsed().as_secs_f64();
    busy
}

fn start_server(cfg: &Cfg, case: &NetCase, c: &Contender) -> io::Result<Server> {
    let app = match case.app {
        App::Echo => "echo",
        App::Http => "http",
    };
    let cpus = case
        .server_cpus
        .iter()
        .map(|c| c.to_string())
        .collect::<Vec<_>>()
        .join(",");
    let mut child = Command::new(&cfg.exe)
        .args(["serve", app, c.rt.name(), "--addr", "127.0.0.1:0"])
        .args(["--cpus", &cpus, "--threads", &c.threads.to_string()])
        .env(sys::CHILD_ENV, "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let mut server = Server {
        child,
        addr: "127.0.0.1:0".parse().expect("an address"),
    };
    let line = rx
        .recv_timeout(Duration::from_secs(20))
        .map_err(|_| io::Error::other("the server did not start within 20 s"))?;
    server.addr = line
        .trim()
        .strip_prefix("listening on ")
        .and_then(|a| a.parse().ok())
        .ok_or_else(|| io::Error::other(format!("the server said {line:?}")))?;
    Ok(server)
}

/// `perf stat` counting a process's syscalls until stopped.
struct PerfStat {
    child: Child,
}

/// The named syscalls counted besides the total.
const NAMED: [&str; 15] = [
    "io_uring_enter",
    "epoll_wait",
    "epoll_pwait",
    "epoll_pwait2",
    "read",
    "write",
    "recvfrom",
    "sendto",
    "readv",
    "writev",
    "futex",
    "sched_yield",
    "accept4",
    "eventfd2",
    "poll",
];

impl PerfStat {
    fn start(pid: u32) -> io::Result<PerfStat> {
        let mut events = vec!["raw_syscalls:sys_enter".to_string()];
        for n in NAMED {
            if Path::new(&format!(
                "/sys/kernel/tracing/events/syscalls/sys_enter_{n}"
            ))
            .exists()
            {
                events.push(format!("syscalls:sys_enter_{n}"));
            }
        }
        let child = Command::new("perf")
            .args(["stat", "-x", ",", "--no-big-num", "-e", &events.join(",")])
            .args(["-p", &pid.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()?;
        // Let perf attach before the window starts.
        std::thread::sleep(Duration::from_millis(300));
        Ok(PerfStat { child })
    }

    /// Stops perf; returns (event, count) pairs.
    fn stop(self) -> io::Result<Counts> {
        let pid = self.child.id() as libc::pid_t;
        // SAFETY: sends SIGINT to the perf child this struct owns.
        unsafe { libc::kill(pid, libc::SIGINT) };
        let out = self.child.wait_with_output()?;
        let text = String::from_utf8_lossy(&out.stderr);
        let counts: Counts = text
            .lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split(',').collect();
                let n = f.first()?.trim().parse::<u64>().ok()?;
                let ev = f.get(2)?.trim();
                let name = ev
                    .strip_prefix("syscalls:sys_enter_")
                    .or_else(|| ev.strip_prefix("raw_syscalls:sys_enter").map(|_| "total"))?;
                Some((name.to_string(), n))
            })
            .collect();
        if counts.is_empty() {
            return Err(io::Error::other(format!("perf stat printed {text:?}")));
        }
        Ok(counts)
    }
}

/// One measured run of `c` in `case`; with `perf`, also counts syscalls.
fn net_run(
    cfg: &Cfg,
    case: &NetCase,
    c: &Contender,
    perf: Option<()>,
) -> io::Result<(Sample, Option<Counts>)> {
    let server = start_server(cfg, case, c)?;
    let pid = server.child.id();
    let nan = (f64::NAN, f64::NAN);
    let mut cpu = (nan, nan);
    let mut perf_counts = None;
    let (requests, elapsed, p50, p99) = match case.load {
        LoadKind::Builtin { conns, message } => {
            let spec = load::Load {
                addr: server.addr,
                conns,
                message,
                warmup: Duration::from_secs_f64(cfg.warmup),
                duration: Duration::from_secs_f64(cfg.secs),
                max_requests: 1 << 40,
            };
            sys::pin(&case.load_cpus)?;
            let mut perf_child = None;
            let mut err = None;
            let out = load::run(&spec, |start| {
                if start {
                    if perf.is_some() {
                        match PerfStat::start(pid) {
                            Ok(p) => perf_child = Some(p),
                            Err(e) => err = Some(e),
                        }
                    }
                    cpu.0 = sys::cpu_split_us(pid).unwrap_or(nan);
                } else {
                    cpu.1 = sys::cpu_split_us(pid).unwrap_or(nan);
                    if let Some(p) = perf_child.take() {
                        match p.stop() {
                            Ok(c) => perf_counts = Some(c),
                            Err(e) => err = Some(e),
                        }
                    }
                }
            });
            sys::pin(&[cfg.load_cpu])?;
            if let Some(e) = err {
                return Err(e);
            }
            let out = out?;
            (
                out.requests,
                out.elapsed.as_secs_f64(),
                out.hist.quantile(0.5) as f64 / 1e3,
                out.hist.quantile(0.99) as f64 / 1e3,
            )
        }
        LoadKind::Wrk { threads, conns } => {
            if cfg.warmup > 0.0 {
                wrk(cfg, case, server.addr, threads, conns, cfg.warmup)?;
            }
            let p = match perf {
                Some(()) => Some(PerfStat::start(pid)?),
                None => None,
            };
            cpu.0 = sys::cpu_split_us(pid)?;
            let w = wrk(cfg, case, server.addr, threads, conns, cfg.secs)?;
            cpu.1 = sys::cpu_split_us(pid)?;
            if let Some(p) = p {
                perf_counts = Some(p.stop()?);
            }
            // The CPU window is wrk's whole life (its connects included).
            (w.requests, w.secs, w.p50_us, w.p99_us)
        }
    };
    if requests == 0 {
        return Err(io::Error::other("no request completed"));
    }
    let user_us = cpu.1.0 - cpu.0.0;
    let cpu_us = user_us + cpu.1.1 - cpu.0.1;
    Ok((
        Sample {
            case: case.id,
            label: c.label.clone(),
            repeat: 0,
            requests,
            rps: requests as f64 / elapsed,
            p50_us: p50,
            p99_us: p99,
            cpu_us_per_req: cpu_us / requests as f64,
            user_us_per_req: user_us / requests as f64,
            cpu_cores: cpu_us / (elapsed * 1e6),
            background: 0.0,
            date: cfg.date.clone(),
        },
        perf_counts,
    ))
}

/// What one wrk run reported.
struct WrkOut {
    requests: u64,
    secs: f64,
    p50_us: f64,
    p99_us: f64,
}

fn wrk(
    cfg: &Cfg,
    case: &NetCase,
    addr: SocketAddr,
    threads: usize,
    conns: usize,
    secs: f64,
) -> io::Result<WrkOut> {
    // wrk inherits the runner's affinity: the load CPU(s) of the case.
    sys::pin(&case.load_cpus)?;
    let out = Command::new("wrk")
        .args(["-t", &threads.to_string(), "-c", &conns.to_string()])
        .args([
            "-d",
            &format!("{}s", secs.ceil().max(1.0) as u64),
            "--latency",
        ])
        .arg(format!("http://{addr}/"))
        .stdin(Stdio::null())
        .output();
    sys::pin(&[cfg.load_cpu])?;
    let out = out?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        return Err(io::Error::other(format!("wrk failed: {text}")));
    }
    parse_wrk(&text).ok_or_else(|| io::Error::other(format!("cannot parse wrk output: {text}")))
}

/// Parses wrk's `--latency` report.
fn parse_wrk(text: &str) -> Option<WrkOut> {
    if text.contains("Non-2xx") || text.contains("Socket errors") {
        eprintln!("    wrk reported errors:\n{text}");
    }
    let mut requests = None;
    let mut secs = None;
    let (mut p50, mut p99) = (None, None);
    for line in text.lines().map(str::trim) {
        let mut f = line.split_whitespace();
        match (f.next(), f.next(), f.next(), f.next()) {
            (Some("50%"), Some(v), _, _) => p50 = duration_us(v),
            (Some("99%"), Some(v), _, _) => p99 = duration_us(v),
            (Some(n), Some("requests"), Some("in"), Some(t)) => {
                requests = n.parse().ok();
                secs = duration_us(t.trim_end_matches(',')).map(|us| us / 1e6);
            }
            _ => {}
        }
    }
    Some(WrkOut {
        requests: requests?,
        secs: secs?,
        p50_us: p50?,
        p99_us: p99?,
    })
}

/// wrk's durations (`412.00us`, `1.20ms`, `5.00s`, `2.00m`) in µs.
fn duration_us(s: &str) -> Option<f64> {
    let split = s.find(|c: char| c.is_ascii_alphabetic())?;
    let (num, unit) = s.split_at(split);
    let v: f64 = num.parse().ok()?;
    let scale = match unit {
        "us" => 1.0,
        "ms" => 1e3,
        "s" => 1e6,
        "m" => 60e6,
        "h" => 3600e6,
        _ => return None,
    };
    Some(v * scale)
}

/// One run per runtime with `perf stat` counting the server's syscalls.
fn syscall_pass(cfg: &Cfg, res: &mut Results) {
    for case in cases(cfg) {
        if case.id == "echo1k" {
            continue;
        }
        let case = keep_runtimes(cfg, case);
        eprintln!("== syscalls: {}", case.title);
        for c in &case.contenders {
            wait_quiet(cfg, res);
            match net_run(cfg, &case, c, Some(())) {
                Ok((s, Some(counts))) => {
                    let per = |n: u64| n as f64 / s.requests as f64;
                    let total = counts
                        .iter()
                        .find(|(n, _)| n == "total")
                        .map_or(f64::NAN, |(_, n)| per(*n));
                    let mut named: Vec<(String, f64)> = counts
                        .iter()
                        .filter(|(n, c)| n != "total" && *c > 0)
                        .map(|(n, c)| (n.clone(), per(*c)))
                        .collect();
                    named.sort_by(|a, b| b.1.total_cmp(&a.1));
                    eprintln!("  {:<28} {total:>6.2} syscalls/req", c.label);
                    res.syscalls.push(SyscallRow {
                        case: case.id,
                        label: c.label.clone(),
                        requests: s.requests,
                        total,
                        named,
                        date: cfg.date.clone(),
                    });
                }
                Ok((_, None)) => res.failures.push(format!(
                    "syscalls {} / {}: perf gave nothing",
                    case.id, c.label
                )),
                Err(e) => {
                    eprintln!("  {:<28} FAILED: {e}", c.label);
                    res.failures
                        .push(format!("syscalls {} / {}: {e}", case.id, c.label));
                }
            }
        }
    }
}

/// Size of the file the random-read runs use.
const FILE_MIB: u64 = 256;

fn file_pass(cfg: &Cfg, res: &mut Results) -> io::Result<()> {
    let path = std::env::temp_dir().join(format!("corio-bench-{}.bin", std::process::id()));
    eprintln!(
        "== file random reads: 4 KiB, {FILE_MIB} MiB file in the page cache ({})",
        path.display()
    );
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&path)?;
        let chunk: Vec<u8> = (0..1 << 20).map(|i| (i % 251) as u8 + 1).collect();
        for _ in 0..FILE_MIB {
            f.write_all(&chunk)?;
        }
        f.sync_all()?;
    }
    // Read it once so every page is cached.
    let _ = std::fs::read(&path)?;
    let result = file_runs(cfg, res, &path);
    let _ = std::fs::remove_file(&path);
    result
}

fn file_runs(cfg: &Cfg, res: &mut Results, path: &Path) -> io::Result<()> {
    for qd in [1usize, 32] {
        for repeat in 0..cfg.repeats {
            for rt in FILE {
                match file_run(cfg, rt, path, qd) {
                    Ok((iops, cpu)) => {
                        eprintln!(
                            "  [{}] QD {qd:<2} {:<12} {iops:>10.0} reads/s  {cpu:>6.2} µs CPU/read",
                            repeat + 1,
                            rt.name()
                        );
                        res.files.push(FileSample {
                            label: rt.name().to_string(),
                            qd,
                            repeat,
                            iops,
                            cpu_us_per_read: cpu,
                            date: cfg.date.clone(),
                        });
                    }
                    Err(e) => {
                        eprintln!("  [{}] QD {qd} {} FAILED: {e}", repeat + 1, rt.name());
                        res.failures
                            .push(format!("file QD {qd} / {}: {e}", rt.name()));
                    }
                }
            }
        }
    }
    Ok(())
}

fn file_run(cfg: &Cfg, rt: Runtime, path: &Path, qd: usize) -> io::Result<(f64, f64)> {
    let out = Command::new(&cfg.exe)
        .args(["fileread", rt.name(), "--file"])
        .arg(path)
        .args([
            "--qd",
            &qd.to_string(),
            "--secs",
            &cfg.file_secs.to_string(),
        ])
        .args(["--cpus", &cfg.server_cpu.to_string()])
        .env(sys::CHILD_ENV, "1")
        .stdin(Stdio::null())
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(io::Error::other(format!(
            "{}{}",
            text,
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    let field = |name: &str| -> Option<f64> {
        text.split_whitespace()
            .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('=')?.parse().ok())
    };
    match (field("reads"), field("secs"), field("cpu_us")) {
        (Some(reads), Some(secs), Some(cpu)) if reads > 0.0 => Ok((reads / secs, cpu / reads)),
        _ => Err(io::Error::other(format!("fileread printed {text:?}"))),
    }
}

/// The first line of `tool ARGS`' output, if it runs.
pub fn tool_version(tool: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(tool).args(args).output().ok()?;
    let text = [out.stdout, out.stderr].concat();
    String::from_utf8_lossy(&text)
        .lines()
        .next()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
}

/// Whether `perf stat -e raw_syscalls:sys_enter` works here.
fn perf_counts_syscalls() -> bool {
    Command::new("perf")
        .args(["stat", "-x", ",", "-e", "raw_syscalls:sys_enter", "true"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .is_ok_and(|o| o.status.success() && !String::from_utf8_lossy(&o.stderr).contains("not"))
}

/// Settings for tests that write and read the stored results.
#[cfg(test)]
pub fn test_cfg(dir: &Path) -> Cfg {
    Cfg {
        secs: 1.0,
        warmup: 0.0,
        repeats: 1,
        file_secs: 1.0,
        server_cpu: 1,
        load_cpu: 0,
        only: Vec::new(),
        runtimes: Vec::new(),
        out: dir.join("BENCHMARKS.md"),
        svg: dir.join("chart.svg"),
        exe: PathBuf::new(),
        wrk: None,
        perf: false,
        quiet_wait: 0.0,
        quiet_budget: 0.0,
        date: "test".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_wrk_output() {
        let text = "Running 5s test @ http://127.0.0.1:1/
  1 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   420.13us   60.00us   2.00ms   90.00%
    Req/Sec   150.00k     2.00k  160.00k    70.00%
  Latency Distribution
     50%  412.00us
     75%  450.00us
     90%  500.00us
     99%    1.20ms
  745123 requests in 5.00s, 66.10MB read
Requests/sec: 149024.60
Transfer/sec:     13.22MB
";
        let w = parse_wrk(text).expect("parses");
        assert_eq!(w.requests, 745_123);
        assert_eq!(w.secs, 5.0);
        assert_eq!(w.p50_us, 412.0);
        assert_eq!(w.p99_us, 1200.0);
        assert!(parse_wrk("garbage").is_none());
    }
}
