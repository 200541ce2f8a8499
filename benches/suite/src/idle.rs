//! The `idle` scenario: server memory per idle connection.
//!
//! How it works: each runtime's echo server (the natural code of `rt/`: an
//! accept loop spawning a task that loops receive + `write_all`) starts on
//! its own; this process opens N connections (default 19,000), sends one
//! byte on each and reads it back (so the server has accepted the
//! connection, spawned its task and armed its next receive). The server's
//! RSS is read after the first `WARM` connections (one-time costs such as
//! corio's 4 MiB receive pool, whose pages the first 1,024 receives touch,
//! are then in) and after all N; the figure is the growth divided by the
//! N - `WARM` connections in between. Kernel socket memory is not in RSS and
//! not counted. Not a timing: the machine's load does not move it.
//!
//! The client side is this process (its own fd limit), so a server and its
//! client each need N fds (ulimit -n 20000 here allows 19,000).

use std::fmt::Write as _;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::rt::Runtime;
use crate::runner::{Cfg, Results};

/// Connections held by default.
pub const CONNS: usize = 19_000;
/// Connections made before the first reading (not counted).
pub const WARM: usize = 2_000;

/// The runtimes measured (their echo servers).
pub const RUNTIMES: [Runtime; 5] = [
    Runtime::CorioPool,
    Runtime::CorioUring,
    Runtime::CorioPoll,
    Runtime::Tokio,
    Runtime::Monoio,
];

/// Memory per idle connection of one runtime.
#[derive(Debug, Clone)]
pub struct IdleRow {
    pub label: String,
    pub conns: usize,
    pub bytes_per_conn: f64,
    pub date: String,
}

/// A server child, killed on drop.
struct ServerChild(Child);

impl Drop for ServerChild {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Resident set size of `pid` in bytes.
fn rss(pid: u32) -> io::Result<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    text.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .ok_or_else(|| io::Error::other("no VmRSS"))
}

/// Measures `rt`'s echo server holding `conns` idle connections; returns
/// RSS (after `warm` connections, after `conns`) in bytes. `cpu`: the
/// server's CPU.
pub fn measure(
    exe: &std::path::Path,
    rt: Runtime,
    warm: usize,
    conns: usize,
    cpu: usize,
) -> io::Result<(u64, u64)> {
    let mut child = ServerChild(
        Command::new(exe)
            .args(["serve", "echo", rt.name(), "--addr", "127.0.0.1:0"])
            .args(["--cpus", &cpu.to_string()])
            .env(crate::sys::CHILD_ENV, "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?,
    );
    let pid = child.0.id();
    let mut line = String::new();
    BufReader::new(child.0.stdout.take().expect("piped stdout")).read_line(&mut line)?;
    let addr: SocketAddr = line
        .trim()
        .strip_prefix("listening on ")
        .and_then(|a| a.parse().ok())
        .ok_or_else(|| io::Error::other(format!("the server said {line:?}")))?;
    let mut before = rss(pid)?;
    let mut held = Vec::with_capacity(conns);
    let mut byte = [0u8; 1];
    for i in 0..conns {
        if i == warm {
            std::thread::sleep(Duration::from_millis(300));
            before = rss(pid)?;
        }
        let mut s = TcpStream::connect(addr)
            .map_err(|e| io::Error::new(e.kind(), format!("connection {i}: {e}")))?;
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
        s.write_all(b"x")?;
        s.read_exact(&mut byte)?;
        held.push(s);
    }
    std::thread::sleep(Duration::from_millis(500));
    let after = rss(pid)?;
    drop(held);
    Ok((before, after))
}

/// `corio-bench idle RUNTIME [--conns N] [--cpus N]`: prints one runtime's figure.
pub fn command(runtime: &str, o: &crate::Opts) -> Result<(), String> {
    let rt = Runtime::parse(runtime).ok_or_else(|| format!("unknown runtime {runtime:?}"))?;
    let conns: usize = o.get("conns", CONNS)?;
    let cpu: usize = o.get("cpus", 1)?;
    if conns == 0 {
        return Err("--conns must be at least 1".into());
    }
    let warm = WARM.min(conns / 2);
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let (before, after) = measure(&exe, rt, warm, conns, cpu).map_err(|e| e.to_string())?;
    println!(
        "{}: RSS {} KiB with {warm} connections -> {} KiB with {conns}: {:.0} bytes per idle connection",
        rt.name(),
        before / 1024,
        after / 1024,
        after.saturating_sub(before) as f64 / (conns - warm) as f64
    );
    Ok(())
}

/// Runs the scenario for every runtime `cfg` keeps.
pub fn pass(cfg: &Cfg, res: &mut Results, keeps: impl Fn(Runtime) -> bool) {
    eprintln!("== memory per idle connection ({CONNS} connections, counted after {WARM})");
    for rt in RUNTIMES.into_iter().filter(|r| keeps(*r)) {
        match measure(&cfg.exe, rt, WARM, CONNS, cfg.server_cpu) {
            Ok((before, after)) => {
                let per = after.saturating_sub(before) as f64 / (CONNS - WARM) as f64;
                eprintln!("  {:<28} {per:>8.0} B/conn", rt.name());
                res.idle.push(IdleRow {
                    label: rt.name().to_string(),
                    conns: CONNS,
                    bytes_per_conn: per,
                    date: cfg.date.clone(),
                });
            }
            Err(e) => {
                eprintln!("  {:<28} FAILED: {e}", rt.name());
                res.failures.push(format!("idle / {}: {e}", rt.name()));
            }
        }
    }
}

/// The report's section.
pub fn render(m: &mut String, res: &Results) {
    if res.idle.is_empty() {
        return;
    }
    let _ = writeln!(m, "## Memory per idle connection\n");
    let _ = writeln!(
        m,
        "Each runtime's echo server (accept loop, a task per connection looping receive + \
         `write_all`, as in `rt/`) holding {CONNS} connections that each echoed one byte and went \
         idle (`--only idle`, or `corio-bench idle RUNTIME`): server RSS growth from the \
         {WARM}th connection to the last, divided by the connections in between (one-time costs, \
         such as corio's receive pool, are in before the first reading). Kernel socket memory is not in RSS. corio-uring and tokio read into a 4 KiB \
         buffer per connection; corio-pool receives with `recv_pooled` (no buffer held while idle).\n"
    );
    let _ = writeln!(m, "| runtime | bytes per idle connection | measured |");
    let _ = writeln!(m, "|---|---:|---|");
    for r in &res.idle {
        let _ = writeln!(m, "| {} | {:.0} | {} |", r.label, r.bytes_per_conn, r.date);
    }
    let _ = writeln!(m);
}
