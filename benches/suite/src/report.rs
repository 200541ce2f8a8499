//! Writes `BENCHMARKS.md` (machine, versions, medians, every run) and a hand-drawn SVG bar chart.
//!
//! The hand-written analysis between the `NOTES_START` and `NOTES_END`
//! markers of an existing `BENCHMARKS.md` is kept when the file is rewritten;
//! it goes after the summary tables, before the every-run tables.

use std::fmt::Write as _;
use std::io;
use std::path::Path;

use crate::runner::{Cfg, FileSample, Results, Sample, tool_version};
use crate::sys;

/// The hand-written notes of BENCHMARKS.md sit between these two lines.
const NOTES_START: &str = "<!-- Hand-written notes from here to the end marker are kept when the suite rewrites this file. -->";
const NOTES_END: &str = "<!-- End of the hand-written notes. -->";

pub fn write(cfg: &Cfg, res: &Results, root: &Path) -> io::Result<()> {
    let notes = std::fs::read_to_string(&cfg.out)
        .ok()
        .and_then(|old| {
            let (_, rest) = old.split_once(NOTES_START)?;
            Some(
                rest.split_once(NOTES_END)
                    .map_or(rest, |(n, _)| n)
                    .to_string(),
            )
        })
        .unwrap_or_else(|| "\n\n## Notes\n\n(None yet.)\n\n".to_string());
    let svg_rel = relative(&cfg.svg, cfg.out.parent().unwrap_or(root));
    let (summary, runs) = markdown(cfg, res, root, &svg_rel);
    std::fs::write(
        &cfg.out,
        format!("{summary}{NOTES_START}{notes}{NOTES_END}\n\n{runs}"),
    )?;
    std::fs::write(&cfg.svg, svg(res))?;
    Ok(())
}

fn relative(path: &Path, base: &Path) -> String {
    let (p, b) = (
        path.canonicalize().unwrap_or(path.to_path_buf()),
        base.canonicalize().unwrap_or(base.to_path_buf()),
    );
    p.strip_prefix(&b)
        .map(|r| r.display().to_string())
        .unwrap_or_else(|_| p.display().to_string())
}

pub(crate) fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Median figures of one contender in one case.
struct Summary {
    label: String,
    rps: f64,
    p50: f64,
    p99: f64,
    cpu: f64,
    cpu_min: f64,
    cpu_max: f64,
    user: f64,
    cores: f64,
    runs: usize,
}

fn summaries(res: &Results, case: &str) -> Vec<Summary> {
    let mut labels: Vec<&str> = Vec::new();
    for s in res.samples.iter().filter(|s| s.case == case) {
        if !labels.contains(&s.label.as_str()) {
            labels.push(&s.label);
        }
    }
    // In the scenario's own order (kept rows come first in `samples`).
    let order: Vec<&str> = res
        .cases
        .iter()
        .filter(|c| c.id == case)
        .flat_map(|c| c.contenders.iter().map(|k| k.label.as_str()))
        .collect();
    labels.sort_by_key(|l| order.iter().position(|o| o == l).unwrap_or(usize::MAX));
    labels
        .into_iter()
        .map(|label| {
            let runs: Vec<&Sample> = res
                .samples
                .iter()
                .filter(|s| s.case == case && s.label == label)
                .collect();
            let col = |f: fn(&Sample) -> f64| runs.iter().map(|s| f(s)).collect::<Vec<_>>();
            let cpu = col(|s| s.cpu_us_per_req);
            Summary {
                label: label.to_string(),
                rps: median(col(|s| s.rps)),
                p50: median(col(|s| s.p50_us)),
                p99: median(col(|s| s.p99_us)),
                cpu_min: cpu.iter().copied().fold(f64::INFINITY, f64::min),
                cpu_max: cpu.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                cpu: median(cpu),
                user: median(col(|s| s.user_us_per_req)),
                cores: median(col(|s| s.cpu_cores)),
                runs: runs.len(),
            }
        })
        .collect()
}

/// Version of `name` in Cargo.lock (the newest if several).
fn locked_version(lock: &str, name: &str) -> String {
    let mut versions = Vec::new();
    let mut lines = lock.lines();
    while let Some(l) = lines.next() {
        if l.trim() != format!("name = \"{name}\"") {
            continue;
        }
        if let Some(v) = lines
            .next()
            .and_then(|v| v.trim().strip_prefix("version = \""))
        {
            versions.push(v.trim_end_matches('"').to_string());
        }
    }
    let key =
        |v: &String| -> Vec<u64> { v.split(['.', '-']).filter_map(|x| x.parse().ok()).collect() };
    versions
        .into_iter()
        .max_by_key(key)
        .unwrap_or_else(|| "?".into())
}

pub fn today() -> String {
    tool_version("date", &["-u", "+%Y-%m-%d %H:%M UTC"]).unwrap_or_else(|| "?".into())
}

/// The summary part and the every-run part of BENCHMARKS.md.
fn markdown(cfg: &Cfg, res: &Results, root: &Path, svg: &str) -> (String, String) {
    let mut m = String::new();
    let (kernel, model, cpus, mem) = sys::machine();
    let lock = std::fs::read_to_string(root.join("Cargo.lock")).unwrap_or_default();
    let v = |n: &str| format!("{n} {}", locked_version(&lock, n));
    let rustc = tool_version("rustc", &["--version"]).unwrap_or_else(|| "?".into());
    let _ = writeln!(m, "# Benchmarks\n");
    let _ = writeln!(
        m,
        "Generated by `cargo run -p corio-bench --release -- all` ([`benches/suite`](benches/suite/src/main.rs)) \
         on {}; every figure is also in `results.tsv` next to the chart. Each figure in a summary table is the median of the runs (the server-CPU column also shows the \
         range); every run is listed at the end. Written by the suite: rerun it rather than editing the tables.\n",
        res.date
    );
    if !res.kept.is_empty() {
        let parts: Vec<String> = res
            .kept
            .iter()
            .map(|(scenario, date, labels)| format!("`{scenario}` {} ({date})", labels.join(", ")))
            .collect();
        let _ = writeln!(
            m,
            "*Kept from earlier runs, which this run did not redo (`--only`, `--runtimes`): {}. The machine \
             lines below describe the latest run.*\n",
            parts.join("; ")
        );
    }
    let _ = writeln!(m, "| | |\n|---|---|");
    let _ = writeln!(m, "| CPU | {model}, {cpus} CPUs, {mem} |");
    let _ = writeln!(m, "| Kernel | Linux {kernel} |");
    let _ = writeln!(m, "| Toolchain | {rustc} |");
    let _ = writeln!(
        m,
        "| Crates | corio {} (this tree), {}, {}, {}, {}, {}; load generator on {} |",
        locked_version(&lock, "corio"),
        v("tokio"),
        v("monoio"),
        v("glommio"),
        v("compio"),
        v("tokio-uring"),
        v("mio")
    );
    let _ = writeln!(
        m,
        "| HTTP load | {} |",
        cfg.wrk
            .as_deref()
            .map(|w| format!("`{w}`"))
            .unwrap_or_else(|| "built-in generator (wrk not installed)".into())
    );
    let _ = writeln!(
        m,
        "| Settings | {} s measured after {} s warm-up, {} repeats (runtimes take turns), server pinned to CPU {}, \
         load to CPU {} (two-core case: both share both); file runs {} s each |",
        cfg.secs, cfg.warmup, cfg.repeats, cfg.server_cpu, cfg.load_cpu, cfg.file_secs
    );
    let _ = writeln!(
        m,
        "| Machine load | 1-minute load average {} at the start, {} at the end; each run first waited (up to {} s, {:.0} s \
         in all) for the machine to be under {:.0}% busy, and {} runs started without that (other work on the machine \
         inflates CPU per request and latency tails; the every-run table shows how busy it was before each run) |",
        res.load_before,
        res.load_after,
        cfg.quiet_wait,
        res.waited,
        crate::runner::QUIET * 100.0,
        res.busy_starts
    );
    let _ = writeln!(m);
    let _ = writeln!(
        m,
        "**Server CPU µs per request** (utime + stime of the server process from `/proc/PID/stat`, all its \
         threads and io_uring workers included, over the measured window, divided by the requests completed) is \
         the headline figure: on a 2-core machine the load generator, not the server, sets the request rate, so \
         req/s mostly measures the client. Lower is better. Latencies are round trips seen by the load generator \
         (closed loop: one request in flight per connection).\n"
    );
    let _ = writeln!(m, "![Server CPU per request and file IOPS]({svg})\n");

    for case in &res.cases {
        let sums = summaries(res, case.id);
        if sums.is_empty() {
            continue;
        }
        let _ = writeln!(m, "## {}\n", case.title);
        // The hyper case compares hyper on corio with hyper on tokio.
        let base = match case.id {
            "hyper" => "tokio-hyper",
            _ => "tokio",
        };
        let tokio = sums
            .iter()
            .find(|s| s.label == base || (base == "tokio" && s.label.starts_with("tokio-mt")))
            .map(|s| s.cpu);
        let _ = writeln!(
            m,
            "| runtime | runs | req/s | p50 µs | p99 µs | server CPU µs/req (range) | of which user | vs {} | server cores busy |",
            match case.id {
                "http2" => "tokio-mt",
                id =>
                    if id == "hyper" {
                        "tokio-hyper"
                    } else {
                        "tokio"
                    },
            }
        );
        let _ = writeln!(m, "|---|---:|---:|---:|---:|---:|---:|---:|---:|");
        for s in &sums {
            let rel = tokio.map_or("".into(), |t| format!("{:+.0}%", (s.cpu / t - 1.0) * 100.0));
            let _ = writeln!(
                m,
                "| {} | {} | {:.0} | {:.1} | {:.1} | **{:.2}** ({:.2}–{:.2}) | {:.2} | {} | {:.2} |",
                s.label,
                s.runs,
                s.rps,
                s.p50,
                s.p99,
                s.cpu,
                s.cpu_min,
                s.cpu_max,
                s.user,
                rel,
                s.cores
            );
        }
        let _ = writeln!(m);
    }

    if !res.syscalls.is_empty() {
        let _ = writeln!(m, "## Syscalls per request\n");
        let _ = writeln!(
            m,
            "One extra run per runtime with `perf stat -e raw_syscalls:sys_enter,syscalls:sys_enter_…` attached to \
             the server for the measured window (tracepoints slow syscalls a little, so these runs are not in the \
             tables above). Counts are per request; io_uring runtimes do their socket I/O inside `io_uring_enter`.\n"
        );
        let _ = writeln!(
            m,
            "| scenario | runtime | requests | syscalls/req | largest ones, per request |"
        );
        let _ = writeln!(m, "|---|---|---:|---:|---|");
        // Scenario order, then each scenario's runtime order.
        let rank = |r: &&crate::runner::SyscallRow| -> (usize, usize) {
            let ci = res.cases.iter().position(|c| c.id == r.case);
            let ki = ci.and_then(|i| {
                res.cases[i]
                    .contenders
                    .iter()
                    .position(|k| k.label == r.label)
            });
            (ci.unwrap_or(usize::MAX), ki.unwrap_or(usize::MAX))
        };
        let mut rows: Vec<&crate::runner::SyscallRow> = res.syscalls.iter().collect();
        rows.sort_by_key(rank);
        for r in rows {
            let top: Vec<String> = r
                .named
                .iter()
                .filter(|(_, n)| *n >= 0.005)
                .take(5)
                .map(|(name, n)| format!("{name} {n:.2}"))
                .collect();
            let _ = writeln!(
                m,
                "| {} | {} | {} | **{:.2}** | {} |",
                r.case,
                r.label,
                r.requests,
                r.total,
                top.join(", ")
            );
        }
        let _ = writeln!(m);
    }

    crate::instr::render(&mut m, res);
    crate::idle::render(&mut m, res);

    if !res.files.is_empty() {
        let _ = writeln!(m, "## File random reads\n");
        let _ = writeln!(
            m,
            "4 KiB reads at random 4 KiB-aligned offsets of a 256 MiB file in the page cache, queue depth 1 \
             (one task) and 32 (32 tasks), the process pinned to CPU {}; CPU per read counts the whole \
             process (blocking-pool and io_uring worker threads included). corio-fixed reads into registered \
             buffers (`FixedBufPool`, `READ_FIXED`); tokio has no positional async read, so it runs \
             `spawn_blocking(pread)` (what `tokio::fs` does inside); glommio uses `BufferedFile::read_at`.\n",
            cfg.server_cpu
        );
        let _ = writeln!(
            m,
            "| runtime | QD 1 reads/s | QD 1 CPU µs/read | QD 32 reads/s | QD 32 CPU µs/read |"
        );
        let _ = writeln!(m, "|---|---:|---:|---:|---:|");
        let mut labels: Vec<&str> = Vec::new();
        for f in &res.files {
            if !labels.contains(&f.label.as_str()) {
                labels.push(&f.label);
            }
        }
        labels.sort_by_key(|l| file_rank(l));
        for l in labels {
            let pick = |qd: usize, f: fn(&FileSample) -> f64| {
                median(
                    res.files
                        .iter()
                        .filter(|s| s.label == l && s.qd == qd)
                        .map(f)
                        .collect(),
                )
            };
            let _ = writeln!(
                m,
                "| {l} | {:.0} | {:.2} | **{:.0}** | {:.2} |",
                pick(1, |s| s.iops),
                pick(1, |s| s.cpu_us_per_read),
                pick(32, |s| s.iops),
                pick(32, |s| s.cpu_us_per_read)
            );
        }
        let _ = writeln!(m);
    }

    let _ = writeln!(m, "## Micro-benchmarks\n");
    crate::micro_table::render(&mut m, res, cfg.server_cpu);
    let _ = writeln!(
        m,
        "More: spawn + join, yield, timers, channels and the NOP round trip (corio vs tokio's current-thread \
         runtime) live in [`benches/micro.rs`](benches/micro.rs) (divan: `taskset -c 1 cargo bench --bench \
         micro`) and, as long interleaved runs with goals and raw io_uring, in \
         [`benches/runtime.rs`](benches/runtime.rs) (`taskset -c 1 cargo bench --bench runtime`). Cross-shard \
         wake-ups (eventfd vs MSG_RING) are in [`benches/shards.rs`](benches/shards.rs). They are not repeated \
         here.\n"
    );

    let summary = std::mem::take(&mut m);
    if !res.failures.is_empty() {
        let _ = writeln!(m, "## Failed runs\n");
        for f in &res.failures {
            let _ = writeln!(m, "- {}", f.replace('\n', " "));
        }
        let _ = writeln!(m);
    }

    let _ = writeln!(m, "## Every run\n");
    let _ = writeln!(
        m,
        "| scenario | runtime | run | requests | req/s | p50 µs | p99 µs | server CPU µs/req | user µs/req | server cores busy | machine busy before |"
    );
    let _ = writeln!(m, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for s in &res.samples {
        let _ = writeln!(
            m,
            "| {} | {} | {} | {} | {:.0} | {:.1} | {:.1} | {:.3} | {:.3} | {:.2} | {:.0}% |",
            s.case,
            s.label,
            s.repeat + 1,
            s.requests,
            s.rps,
            s.p50_us,
            s.p99_us,
            s.cpu_us_per_req,
            s.user_us_per_req,
            s.cpu_cores,
            s.background * 100.0
        );
    }
    if !res.files.is_empty() {
        let _ = writeln!(m, "\n| file runtime | QD | run | reads/s | CPU µs/read |");
        let _ = writeln!(m, "|---|---:|---:|---:|---:|");
        for f in &res.files {
            let _ = writeln!(
                m,
                "| {} | {} | {} | {:.0} | {:.3} |",
                f.label,
                f.qd,
                f.repeat + 1,
                f.iops,
                f.cpu_us_per_read
            );
        }
    }
    (summary, m)
}

/// Where a file-read runtime goes in tables and the chart.
fn file_rank(label: &str) -> usize {
    crate::rt::Runtime::ALL
        .iter()
        .position(|r| r.name() == label)
        .unwrap_or(usize::MAX)
}

/// Bar colour by runtime family.
fn colour(label: &str) -> &'static str {
    let family = label.split([' ', '(']).next().unwrap_or(label);
    match family {
        "corio-uring" => "#e8590c",
        "corio-fixed" => "#c2410c",
        "corio-pool" => "#a61e4d",
        "corio-poll" => "#f59f00",
        "corio-compat" => "#d9480f",
        "tokio" => "#1c7ed6",
        "tokio-mt" => "#74c0fc",
        "tokio-hyper" => "#1864ab",
        "monoio" => "#2f9e44",
        "glommio" => "#7048e8",
        "compio" => "#0ca678",
        "tokio-uring" => "#868e96",
        _ => "#495057",
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// One chart panel: a title and horizontal bars.
struct Panel {
    title: String,
    unit: &'static str,
    rows: Vec<(String, f64)>,
}

fn svg(res: &Results) -> String {
    let mut panels = Vec::new();
    for case in &res.cases {
        let rows: Vec<(String, f64)> = summaries(res, case.id)
            .into_iter()
            .map(|s| (s.label, s.cpu))
            .filter(|(_, v)| v.is_finite())
            .collect();
        if !rows.is_empty() {
            panels.push(Panel {
                title: format!(
                    "{}: server CPU µs per request (lower is better)",
                    case.short
                ),
                unit: "µs",
                rows,
            });
        }
    }
    let mut labels: Vec<&str> = Vec::new();
    for f in res.files.iter().filter(|f| f.qd == 32) {
        if !labels.contains(&f.label.as_str()) {
            labels.push(&f.label);
        }
    }
    labels.sort_by_key(|l| file_rank(l));
    if !labels.is_empty() {
        panels.push(Panel {
            title: "File random 4 KiB reads, queue depth 32: thousand reads/s (higher is better)"
                .into(),
            unit: "k",
            rows: labels
                .iter()
                .map(|l| {
                    let v = median(
                        res.files
                            .iter()
                            .filter(|f| f.qd == 32 && f.label == *l)
                            .map(|f| f.iops / 1e3)
                            .collect(),
                    );
                    (l.to_string(), v)
                })
                .collect(),
        });
    }

    const W: f64 = 900.0;
    const LABEL_W: f64 = 210.0;
    const BAR_MAX: f64 = 560.0;
    const ROW: f64 = 20.0;
    const TITLE: f64 = 28.0;
    const GAP: f64 = 18.0;
    let height: f64 = 16.0
        + panels
            .iter()
            .map(|p| TITLE + ROW * p.rows.len() as f64 + GAP)
            .sum::<f64>();
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{height}" viewBox="0 0 {W} {height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let mut y = 16.0;
    for p in &panels {
        let _ = writeln!(
            s,
            r#"<text x="8" y="{:.0}" font-size="13" font-weight="bold">{}</text>"#,
            y + 12.0,
            esc(&p.title)
        );
        y += TITLE;
        let max = p.rows.iter().map(|r| r.1).fold(0.0, f64::max).max(1e-9);
        for (label, v) in &p.rows {
            let w = (v / max * BAR_MAX).max(1.0);
            let _ = writeln!(
                s,
                r#"<text x="{:.0}" y="{:.0}" text-anchor="end">{}</text>"#,
                LABEL_W - 6.0,
                y + 13.0,
                esc(label)
            );
            let _ = writeln!(
                s,
                r#"<rect x="{LABEL_W}" y="{:.0}" width="{w:.1}" height="{:.0}" fill="{}"/>"#,
                y + 2.0,
                ROW - 5.0,
                colour(label)
            );
            let text = if p.unit == "k" {
                format!("{v:.0}k")
            } else {
                format!("{v:.2} {}", p.unit)
            };
            let _ = writeln!(
                s,
                r#"<text x="{:.1}" y="{:.0}">{}</text>"#,
                LABEL_W + w + 5.0,
                y + 13.0,
                text
            );
            y += ROW;
        }
        y += GAP;
    }
    let _ = writeln!(s, "</svg>");
    s
}
