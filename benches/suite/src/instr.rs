//! The `instr` scenario: user-space instructions per request, the one figure
//! here that does not move with the VM.
//!
//! How it works: each runtime's HTTP (and echo 64 B) server runs under
//! `valgrind --tool=callgrind` with instrumentation off; the built-in load
//! generator warms it up (2,000 requests), `callgrind_control -i on`
//! starts counting, 8,000 keep-alive requests over 8 connections run, and
//! counting stops. Instructions (Ir) divided by requests is the figure.
//! valgrind runs the server about 50x slower, so this scenario's timings
//! mean nothing; only the counts do. The HTTP app's own code (parsing and
//! the response) is the same for every runtime; `limit` (a hand-written
//! io_uring loop, no runtime) shows how much of the total that is.
//!
//! With `CORIO_BENCH_KEEP_CALLGRIND=DIR` the callgrind files are kept in
//! DIR (named `APP-RUNTIME-...`) for `callgrind_annotate --inclusive=yes`.

use std::fmt::Write as _;
use std::io::{self, BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::load::{self, Message};
use crate::rt::Runtime;
use crate::runner::{Cfg, Results};

/// Requests counted, after the warm-up.
const REQUESTS: u64 = 8_000;
const WARMUP: u64 = 2_000;
const CONNS: usize = 8;

/// The runtimes counted.
pub const RUNTIMES: [Runtime; 9] = [
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

/// Instructions per request of one runtime in one app.
#[derive(Debug, Clone)]
pub struct InstrRow {
    /// "http" or "echo64".
    pub app: &'static str,
    pub label: String,
    pub requests: u64,
    pub ir_per_req: f64,
    pub date: String,
}

/// The app ids, as the `'static` strings rows use.
pub fn app_id(s: &str) -> Option<&'static str> {
    ["http", "echo64"].into_iter().find(|a| *a == s)
}

/// Counts one server; `Err` with what went wrong.
fn count(cfg: &Cfg, rt: Runtime, app: &'static str) -> io::Result<(u64, f64)> {
    let out = std::env::temp_dir().join(format!(
        "corio-instr-{}-{}.out",
        std::process::id(),
        rt.name()
    ));
    let serve_app = if app == "http" { "http" } else { "echo" };
    let mut child = Command::new("valgrind")
        .arg("--tool=callgrind")
        .arg("--instr-atstart=no")
        .arg(format!("--callgrind-out-file={}", out.display()))
        .arg(&cfg.exe)
        .args(["serve", serve_app, rt.name(), "--addr", "127.0.0.1:0"])
        .args(["--cpus", &cfg.server_cpu.to_string()])
        .env(crate::sys::CHILD_ENV, "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let pid = child.id();
    let kill = |child: &mut std::process::Child| {
        // A thread blocked in io_uring_enter keeps SIGTERM pending under
        // valgrind: SIGKILL, once the counts are dumped.
        let _ = child.kill();
        let _ = child.wait();
    };
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx.recv_timeout(Duration::from_secs(60)).unwrap_or_default();
    let Some(addr) = line
        .trim()
        .strip_prefix("listening on ")
        .and_then(|a| a.parse().ok())
    else {
        kill(&mut child);
        return Err(io::Error::other(format!("the server said {line:?}")));
    };
    let message = if app == "http" {
        Message::Http
    } else {
        Message::Echo { size: 64 }
    };
    let run = |max: u64| {
        load::run(
            &load::Load {
                addr,
                conns: CONNS,
                message,
                warmup: Duration::ZERO,
                duration: Duration::from_secs(120),
                max_requests: max,
            },
            |_| {},
        )
    };
    let control = |args: &[&str]| -> io::Result<()> {
        let status = Command::new("callgrind_control")
            .args(args)
            .arg(pid.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()?;
        if status.success() {
            Ok(())
        } else {
            Err(io::Error::other(format!(
                "callgrind_control {args:?} failed"
            )))
        }
    };
    let measured = (|| {
        run(WARMUP)?;
        control(&["-i", "on"])?;
        let o = run(REQUESTS)?;
        control(&["-i", "off"])?;
        control(&["-d"])?;
        std::thread::sleep(Duration::from_millis(500));
        Ok::<u64, io::Error>(o.requests)
    })();
    kill(&mut child);
    let requests = measured?;
    // The dump goes to `out.1` (or more parts); `out` itself holds what
    // was counted before the dump (nothing, counting was off).
    let ir = collect(&out, &format!("{app}-{}-", rt.name()))?;
    if requests == 0 || ir == 0 {
        return Err(io::Error::other("no requests or no instructions counted"));
    }
    Ok((requests, ir as f64 / requests as f64))
}

/// The instructions callgrind wrote to `out` and to the parts a dump adds
/// beside it (`out.1`, ...): each file's `totals:` line (a dumped part's
/// `summary:` is 0; a whole run's equals its `totals:`), `summary:` where a
/// file has no `totals:`. The files are removed, or with
/// `CORIO_BENCH_KEEP_CALLGRIND=DIR` moved there with `keep_as` before their
/// name, for `callgrind_annotate`.
pub fn collect(out: &std::path::Path, keep_as: &str) -> io::Result<u64> {
    let dir = out.parent().unwrap_or(std::path::Path::new("."));
    let stem = out
        .file_name()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_default();
    let mut ir = 0u64;
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        let name = e.file_name().to_string_lossy().to_string();
        if stem.is_empty() || !name.starts_with(&stem) {
            continue;
        }
        let text = std::fs::read_to_string(e.path()).unwrap_or_default();
        let line = |key: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| v.trim().parse::<u64>().ok())
        };
        ir += line("totals: ").or_else(|| line("summary: ")).unwrap_or(0);
        match std::env::var_os("CORIO_BENCH_KEEP_CALLGRIND") {
            // For `callgrind_annotate`: where the instructions went.
            Some(keep) => {
                let _ = std::fs::create_dir_all(&keep);
                let kept = std::path::Path::new(&keep).join(format!("{keep_as}{name}"));
                if std::fs::rename(e.path(), &kept).is_err() {
                    let _ = std::fs::copy(e.path(), &kept);
                    let _ = std::fs::remove_file(e.path());
                }
            }
            None => {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
    Ok(ir)
}

/// Runs the scenario for every runtime `cfg` keeps.
pub fn pass(cfg: &Cfg, res: &mut Results, keeps: impl Fn(Runtime) -> bool) {
    if crate::runner::tool_version("valgrind", &["--version"]).is_none() {
        eprintln!("valgrind not found: no instruction counts (apt-get install -y valgrind)");
        res.failures.push("instr: valgrind not found".into());
        return;
    }
    for app in ["http", "echo64"] {
        eprintln!("== instructions per request: {app}");
        for rt in RUNTIMES.into_iter().filter(|r| keeps(*r)) {
            match count(cfg, rt, app) {
                Ok((requests, per)) => {
                    eprintln!("  {:<28} {per:>8.0} Ir/req", rt.name());
                    res.instr.push(InstrRow {
                        app,
                        label: rt.name().to_string(),
                        requests,
                        ir_per_req: per,
                        date: cfg.date.clone(),
                    });
                }
                Err(e) => {
                    eprintln!("  {:<28} FAILED: {e}", rt.name());
                    res.failures
                        .push(format!("instr {app} / {}: {e}", rt.name()));
                }
            }
        }
    }
}

/// The report's section.
pub fn render(m: &mut String, res: &Results) {
    if res.instr.is_empty() {
        return;
    }
    let _ = writeln!(m, "## User-space instructions per request\n");
    let _ = writeln!(
        m,
        "The server under `valgrind --tool=callgrind`, counting only during {REQUESTS} keep-alive \
         requests over {CONNS} connections after a {WARMUP}-request warm-up (`--only instr`). \
         Deterministic, unlike CPU time: the same binary gives the same count within a few per \
         cent (batching varies with timing). `limit` is a hand-written io_uring loop with no \
         runtime; the HTTP app's own code (the same for every runtime) is part of every figure.\n"
    );
    for app in ["http", "echo64"] {
        let rows: Vec<_> = res.instr.iter().filter(|r| r.app == app).collect();
        if rows.is_empty() {
            continue;
        }
        let limit = rows
            .iter()
            .find(|r| r.label == "limit")
            .map(|r| r.ir_per_req);
        let _ = writeln!(m, "| {app} | Ir/request | × limit | measured |");
        let _ = writeln!(m, "|---|---:|---:|---|");
        for r in rows {
            let ratio = limit.map_or("".to_string(), |l| format!("{:.2}", r.ir_per_req / l));
            let _ = writeln!(
                m,
                "| {} | {:.0} | {ratio} | {} |",
                r.label, r.ir_per_req, r.date
            );
        }
        let _ = writeln!(m);
    }
}
