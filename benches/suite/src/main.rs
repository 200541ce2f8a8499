//! corio-bench: corio against tokio, monoio, glommio, compio and tokio-uring on echo, HTTP and file reads.
//!
//! Commands (run from the repository root):
//!
//! ```text
//! cargo run -p corio-bench --release -- all [--secs 5] [--warmup 1] [--repeats 3] [--only LIST] [--runtimes LIST]
//! corio-bench report                      # rewrite BENCHMARKS.md and the chart from results.tsv
//! corio-bench serve echo|http RUNTIME [--addr 127.0.0.1:0] [--cpus 1] [--threads 1]
//! corio-bench load echo|http --addr HOST:PORT [--conns 64] [--size 64] [--secs 5] [--warmup 1]
//! corio-bench fileread RUNTIME --file PATH [--qd 32] [--secs 3] [--cpus 1]
//! corio-bench idle RUNTIME [--conns 19000] [--cpus 1]   # RSS per idle connection
//! corio-bench micro WHAT RUNTIME N [--cpus 1]              # one small operation N times
//! corio-bench ab BIN,BIN WHAT RUNTIMES N [--rounds 9] [--cpus 1]  # builds taking turns
//! ```
//!
//! `all` runs every scenario (see `runner.rs`), pins servers and load to
//! different cores, and writes `BENCHMARKS.md` and `benches/suite/chart.svg`.
//! RUNTIME is one of corio-uring, corio-pool, corio-poll, corio-fixed (file reads only),
//! corio-compat (through `corio::compat`: echo on the `tokio::io` traits, HTTP with hyper),
//! tokio, tokio-mt, tokio-hyper (hyper on tokio, HTTP only), monoio, glommio, compio, tokio-uring.

mod ab;
/// The example server's per-read step (`answer`).
#[path = "../../../examples/http_server/app.rs"]
mod app;
/// The example server's parser and fixed responses, shared so every runtime
/// answers with the same code.
#[path = "../../../examples/http_server/http.rs"]
mod http;
mod idle;
mod instr;
mod load;
mod micro;
mod micro_table;
mod report;
mod rt;
mod runner;
mod store;
mod sys;

use std::io::{self, Write};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use rt::{App, Runtime};

const USAGE: &str = "usage:
  corio-bench all [--secs S] [--warmup S] [--repeats N] [--file-secs S] [--only LIST] [--runtimes LIST]
                  [--quiet-wait S] [--quiet-budget S] [--server-cpu N] [--load-cpu N] [--out FILE] [--svg FILE]
      --only: comma-separated scenarios: echo64, echo1k, http, http2, hyper, file, syscalls, micro, instr, idle
                  (instr: instructions per request under valgrind; idle: RSS per idle connection,
                  19,000 connections; neither is in the default run)
      --runtimes: comma-separated runtime names (default: all)
      --quiet-wait, --quiet-budget: before each run, wait up to S seconds (default 15; 300 in all)
                                    for the machine to be idle
  corio-bench report [--out FILE] [--svg FILE]     (rewrites the report from results.tsv, runs nothing)
  corio-bench serve echo|http RUNTIME [--addr HOST:PORT] [--cpus LIST] [--threads N]
  corio-bench load echo|http --addr HOST:PORT [--conns N] [--size BYTES] [--secs S] [--warmup S] [--max REQUESTS]
  corio-bench fileread RUNTIME --file PATH [--qd N] [--secs S] [--cpus LIST]
  corio-bench idle RUNTIME [--conns N] [--cpus N]   (server RSS per idle echo connection)
  corio-bench micro spawn|spawn-many|timer|nop|nop32 corio|tokio|glommio|monoio|raw N [--cpus LIST]
  corio-bench ab BIN[,BIN...] WHAT RUNTIMES N [--rounds R] [--cpus CPU]
                  (one micro operation with builds of this binary taking turns, corio on each,
                  the other RUNTIMES on the first; comparisons made round by round)
RUNTIME: limit corio-uring corio-pool corio-poll corio-fixed corio-compat tokio tokio-mt tokio-hyper monoio
         glommio compio tokio-uring (corio-compat: echo on tokio::io traits over corio::compat, HTTP
         with hyper; tokio-hyper: the same hyper service on tokio's current-thread runtime)";

/// Options given as `--name value` (or `--name=value`) after the positional arguments.
pub struct Opts {
    pairs: Vec<(String, String)>,
}

impl Opts {
    fn parse(args: &[String]) -> Result<Opts, String> {
        let mut pairs = Vec::new();
        let mut it = args.iter();
        while let Some(a) = it.next() {
            let Some(name) = a.strip_prefix("--") else {
                return Err(format!("unexpected argument {a:?}"));
            };
            let (name, value) = match name.split_once('=') {
                Some((n, v)) => (n.to_string(), v.to_string()),
                None => {
                    let v = it.next().ok_or_else(|| format!("--{name} needs a value"))?;
                    (name.to_string(), v.clone())
                }
            };
            pairs.push((name, value));
        }
        Ok(Opts { pairs })
    }

    pub fn str(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn get<T: std::str::FromStr>(&self, name: &str, default: T) -> Result<T, String> {
        match self.str(name) {
            None => Ok(default),
            Some(v) => v
                .parse()
                .map_err(|_| format!("bad value for --{name}: {v:?}")),
        }
    }

    fn check(&self, known: &[&str]) -> Result<(), String> {
        match self
            .pairs
            .iter()
            .find(|(n, _)| !known.contains(&n.as_str()))
        {
            Some((n, _)) => Err(format!("unknown option --{n}")),
            None => Ok(()),
        }
    }
}

fn main() -> ExitCode {
    sys::die_with_runner();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let res = match args.first().map(String::as_str) {
        Some("all") => Opts::parse(&args[1..]).and_then(|o| {
            o.check(&[
                "secs",
                "warmup",
                "repeats",
                "file-secs",
                "only",
                "runtimes",
                "quiet-wait",
                "quiet-budget",
                "server-cpu",
                "load-cpu",
                "out",
                "svg",
            ])?;
            runner::all(&o, false).map_err(|e| e.to_string())
        }),
        Some("report") => Opts::parse(&args[1..]).and_then(|o| {
            o.check(&["out", "svg"])?;
            runner::all(&o, true).map_err(|e| e.to_string())
        }),
        Some("serve") if args.len() >= 3 => serve(&args[1], &args[2], &args[3..]),
        Some("load") if args.len() >= 2 => load(&args[1], &args[2..]),
        Some("micro") if args.len() >= 4 => Opts::parse(&args[4..]).and_then(|o| {
            o.check(&["cpus"])?;
            if let Some(c) = o.str("cpus") {
                sys::pin(&sys::parse_cpus(c)?).map_err(|e| e.to_string())?;
            }
            let n = args[3]
                .parse()
                .map_err(|_| format!("bad count {:?}", args[3]))?;
            micro::run(&args[1], &args[2], n)
        }),
        Some("ab") if args.len() >= 5 => Opts::parse(&args[5..])
            .and_then(|o| ab::command(&args[1], &args[2], &args[3], &args[4], &o)),
        Some("fileread") if args.len() >= 2 => fileread(&args[1], &args[2..]),
        Some("idle") if args.len() >= 2 => Opts::parse(&args[2..]).and_then(|o| {
            o.check(&["conns", "cpus"])?;
            idle::command(&args[1], &o)
        }),
        _ => Err(USAGE.to_string()),
    };
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("corio-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn parse_app(s: &str) -> Result<App, String> {
    match s {
        "echo" => Ok(App::Echo),
        "http" => Ok(App::Http),
        _ => Err(format!("unknown app {s:?} (echo or http)\n{USAGE}")),
    }
}

fn parse_runtime(s: &str) -> Result<Runtime, String> {
    Runtime::parse(s).ok_or_else(|| format!("unknown runtime {s:?}\n{USAGE}"))
}

/// `serve APP RUNTIME`: pins itself, binds, prints `listening on ADDR`, serves until killed.
fn serve(app: &str, runtime: &str, rest: &[String]) -> Result<(), String> {
    let app = parse_app(app)?;
    let rt = parse_runtime(runtime)?;
    let o = Opts::parse(rest)?;
    o.check(&["addr", "cpus", "threads"])?;
    let addr: SocketAddr = o.get("addr", "127.0.0.1:0".parse().expect("an address"))?;
    let cpus = match o.str("cpus") {
        Some(c) => Some(sys::parse_cpus(c)?),
        None => None,
    };
    let threads: usize = o.get("threads", 1)?;
    if threads == 0 {
        return Err("--threads must be at least 1".into());
    }
    if let Some(cpus) = &cpus {
        sys::pin(cpus).map_err(|e| e.to_string())?;
    }
    let cpus = cpus.unwrap_or_else(|| (0..threads).collect());
    // tokio-mt shares one listener among its workers; the others get one each.
    let n = if rt == Runtime::TokioMt { 1 } else { threads };
    let listeners = sys::listeners(addr, n).map_err(|e| e.to_string())?;
    let local = listeners[0].local_addr().map_err(|e| e.to_string())?;
    println!("listening on {local}");
    let _ = io::stdout().flush();
    rt::serve(rt, app, listeners, &cpus, threads).map_err(|e| format!("{}: {e}", rt.name()))
}

/// `load APP`: one run of the built-in generator, printed.
fn load(app: &str, rest: &[String]) -> Result<(), String> {
    let app = parse_app(app)?;
    let o = Opts::parse(rest)?;
    o.check(&["addr", "conns", "size", "secs", "warmup", "cpus", "max"])?;
    let addr: SocketAddr = o
        .str("addr")
        .ok_or("--addr is required")?
        .parse()
        .map_err(|_| "bad --addr")?;
    if !addr.ip().is_loopback() {
        return Err("the load generator only targets loopback addresses".into());
    }
    if let Some(c) = o.str("cpus") {
        sys::pin(&sys::parse_cpus(c)?).map_err(|e| e.to_string())?;
    }
    let message = match app {
        App::Echo => load::Message::Echo {
            size: o.get("size", 64)?,
        },
        App::Http => load::Message::Http,
    };
    let spec = load::Load {
        addr,
        conns: o.get("conns", 64)?,
        message,
        warmup: Duration::from_secs_f64(o.get("warmup", 1.0)?),
        duration: Duration::from_secs_f64(o.get("secs", 5.0)?),
        max_requests: o.get("max", u64::MAX)?,
    };
    let out = load::run(&spec, |_| {}).map_err(|e| e.to_string())?;
    println!(
        "{} requests in {:.2} s: {:.0} req/s, p50 {:.1} µs, p99 {:.1} µs",
        out.requests,
        out.elapsed.as_secs_f64(),
        out.rps(),
        out.hist.quantile(0.5) as f64 / 1e3,
        out.hist.quantile(0.99) as f64 / 1e3
    );
    Ok(())
}

/// `fileread RUNTIME`: prints `reads=N secs=S cpu_us=C`.
fn fileread(runtime: &str, rest: &[String]) -> Result<(), String> {
    let rt = parse_runtime(runtime)?;
    let o = Opts::parse(rest)?;
    o.check(&["file", "qd", "secs", "cpus"])?;
    let path = o.str("file").ok_or("--file is required")?;
    let qd: usize = o.get("qd", 32)?;
    let secs: f64 = o.get("secs", 3.0)?;
    if qd == 0 {
        return Err("--qd must be at least 1".into());
    }
    if let Some(c) = o.str("cpus") {
        sys::pin(&sys::parse_cpus(c)?).map_err(|e| e.to_string())?;
    }
    let pid = std::process::id();
    let cpu0 = sys::cpu_us(pid).map_err(|e| e.to_string())?;
    let t0 = Instant::now();
    let reads = rt::fileread(rt, path, qd, secs).map_err(|e| format!("{}: {e}", rt.name()))?;
    let elapsed = t0.elapsed().as_secs_f64();
    let cpu = sys::cpu_us(pid).map_err(|e| e.to_string())? - cpu0;
    println!("reads={reads} secs={elapsed:.3} cpu_us={cpu:.0}");
    Ok(())
}
