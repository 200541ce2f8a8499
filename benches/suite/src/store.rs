//! Every run's figures as tab-separated lines (`benches/suite/results.tsv`),
//! so a partial rerun (`all --only http`) keeps the other scenarios' figures.
//!
//! Line kinds (first field), each but `meta` ending with the date of the run:
//! `meta date load_before load_after waited busy_starts secs warmup repeats
//! file_secs quiet_wait quiet_budget` (the latest run, for `corio-bench report`),
//! `net case label repeat requests rps p50 p99 cpu user cores background date`,
//! `sys case label requests total name=count,... date` (counts per request),
//! `file label qd repeat iops cpu date`, `instr app label requests ir_per_request date`,
//! `idle label conns bytes_per_conn date`, `micro what label ns ns_min ns_max ir_per_op date paired`.

use std::fmt::Write as _;
use std::io;
use std::path::Path;

use crate::runner::{Cfg, FileSample, Results, Sample, SyscallRow};

/// The scenario ids, as the `'static` strings the results use.
const IDS: [&str; 5] = ["echo64", "echo1k", "http", "http2", "hyper"];

fn id(s: &str) -> Option<&'static str> {
    IDS.into_iter().find(|i| *i == s)
}

pub fn save(path: &Path, cfg: &Cfg, res: &Results) -> io::Result<()> {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "meta\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
        res.date,
        res.load_before,
        res.load_after,
        res.waited,
        res.busy_starts,
        cfg.secs,
        cfg.warmup,
        cfg.repeats,
        cfg.file_secs,
        cfg.quiet_wait,
        cfg.quiet_budget
    );
    for s in &res.samples {
        let _ = writeln!(
            out,
            "net\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
            s.case,
            s.label,
            s.repeat,
            s.requests,
            s.rps,
            s.p50_us,
            s.p99_us,
            s.cpu_us_per_req,
            s.user_us_per_req,
            s.cpu_cores,
            s.background,
            s.date
        );
    }
    for r in &res.syscalls {
        let named: Vec<String> = r.named.iter().map(|(n, c)| format!("{n}={c}")).collect();
        let _ = writeln!(
            out,
            "sys\t{}\t{}\t{}\t{}\t{}\t{}",
            r.case,
            r.label,
            r.requests,
            r.total,
            named.join(","),
            r.date
        );
    }
    for r in &res.instr {
        let _ = writeln!(
            out,
            "instr\t{}\t{}\t{}\t{}\t{}",
            r.app, r.label, r.requests, r.ir_per_req, r.date
        );
    }
    for r in &res.idle {
        let _ = writeln!(
            out,
            "idle\t{}\t{}\t{}\t{}",
            r.label, r.conns, r.bytes_per_conn, r.date
        );
    }
    for r in &res.micro {
        let _ = writeln!(
            out,
            "micro\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
            r.what, r.label, r.ns, r.ns_min, r.ns_max, r.ir, r.date, r.paired
        );
    }
    for f in &res.files {
        let _ = writeln!(
            out,
            "file\t{}\t{}\t{}\t{}\t{}\t{}",
            f.label, f.qd, f.repeat, f.iops, f.cpu_us_per_read, f.date
        );
    }
    std::fs::write(path, out)
}

/// Adds to `res` the stored figures this run did not redo: a stored row is
/// dropped only when this run measured the same scenario and runtime (and
/// queue depth) again. Notes in `res.kept` what was kept, by scenario and date.
pub fn merge(path: &Path, res: &mut Results) {
    let Ok(text) = std::fs::read_to_string(path) else {
        return;
    };
    let mut samples = Vec::new();
    let mut syscalls = Vec::new();
    let mut files = Vec::new();
    let mut instr = Vec::new();
    let mut idle = Vec::new();
    let mut micro = Vec::new();
    let mut kept: Vec<(String, String, Vec<String>)> = Vec::new();
    let mut note = |scenario: &str, date: &str, label: &str| {
        let i = match kept.iter().position(|(s, d, _)| s == scenario && d == date) {
            Some(i) => i,
            None => {
                kept.push((scenario.to_string(), date.to_string(), Vec::new()));
                kept.len() - 1
            }
        };
        if !kept[i].2.iter().any(|l| l == label) {
            kept[i].2.push(label.to_string());
        }
    };
    for line in text.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        let num = |i: usize| f.get(i).and_then(|x| x.parse::<f64>().ok());
        match f.first().copied() {
            Some("net") if f.len() == 13 => {
                let Some(case) = id(f[1]) else { continue };
                let (Some(repeat), Some(requests)) = (num(3), num(4)) else {
                    continue;
                };
                let label = f[2];
                if res
                    .samples
                    .iter()
                    .any(|s| s.case == case && s.label == label)
                {
                    continue;
                }
                note(case, f[12], label);
                samples.push(Sample {
                    case,
                    label: label.to_string(),
                    repeat: repeat as usize,
                    requests: requests as u64,
                    rps: num(5).unwrap_or(f64::NAN),
                    p50_us: num(6).unwrap_or(f64::NAN),
                    p99_us: num(7).unwrap_or(f64::NAN),
                    cpu_us_per_req: num(8).unwrap_or(f64::NAN),
                    user_us_per_req: num(9).unwrap_or(f64::NAN),
                    cpu_cores: num(10).unwrap_or(f64::NAN),
                    background: num(11).unwrap_or(f64::NAN),
                    date: f[12].to_string(),
                });
            }
            Some("sys") if f.len() == 7 => {
                let Some(case) = id(f[1]) else { continue };
                let label = f[2];
                if res
                    .syscalls
                    .iter()
                    .any(|r| r.case == case && r.label == label)
                {
                    continue;
                }
                note("syscalls", f[6], label);
                let named = f[5]
                    .split(',')
                    .filter_map(|kv| {
                        let (n, c) = kv.split_once('=')?;
                        Some((n.to_string(), c.parse().ok()?))
                    })
                    .collect();
                syscalls.push(SyscallRow {
                    case,
                    label: label.to_string(),
                    requests: num(3).unwrap_or(0.0) as u64,
                    total: num(4).unwrap_or(f64::NAN),
                    named,
                    date: f[6].to_string(),
                });
            }
            Some("instr") if f.len() == 6 => {
                let Some(app) = crate::instr::app_id(f[1]) else {
                    continue;
                };
                let label = f[2];
                if res.instr.iter().any(|r| r.app == app && r.label == label) {
                    continue;
                }
                note("instr", f[5], label);
                instr.push(crate::instr::InstrRow {
                    app,
                    label: label.to_string(),
                    requests: num(3).unwrap_or(0.0) as u64,
                    ir_per_req: num(4).unwrap_or(f64::NAN),
                    date: f[5].to_string(),
                });
            }
            Some("idle") if f.len() == 5 => {
                let label = f[1];
                if res.idle.iter().any(|r| r.label == label) {
                    continue;
                }
                note("idle", f[4], label);
                idle.push(crate::idle::IdleRow {
                    label: label.to_string(),
                    conns: num(2).unwrap_or(0.0) as usize,
                    bytes_per_conn: num(3).unwrap_or(f64::NAN),
                    date: f[4].to_string(),
                });
            }
            // (Rows from before the round-by-round figure have 8 fields.)
            Some("micro") if f.len() == 8 || f.len() == 9 => {
                let (what, label) = (f[1], f[2]);
                if res.micro.iter().any(|r| r.what == what && r.label == label) {
                    continue;
                }
                note("micro", f[7], label);
                micro.push(crate::micro_table::MicroRow {
                    what: what.to_string(),
                    label: label.to_string(),
                    ns: num(3).unwrap_or(f64::NAN),
                    ns_min: num(4).unwrap_or(f64::NAN),
                    ns_max: num(5).unwrap_or(f64::NAN),
                    ir: num(6).unwrap_or(f64::NAN),
                    paired: num(8).unwrap_or(f64::NAN),
                    date: f[7].to_string(),
                });
            }
            Some("file") if f.len() == 7 => {
                let (label, qd) = (f[1], num(2).unwrap_or(0.0) as usize);
                if res.files.iter().any(|r| r.label == label && r.qd == qd) {
                    continue;
                }
                note("file", f[6], label);
                files.push(FileSample {
                    label: label.to_string(),
                    qd,
                    repeat: num(3).unwrap_or(0.0) as usize,
                    iops: num(4).unwrap_or(f64::NAN),
                    cpu_us_per_read: num(5).unwrap_or(f64::NAN),
                    date: f[6].to_string(),
                });
            }
            _ => {}
        }
    }
    // Stored rows first, in the order they were run.
    samples.append(&mut res.samples);
    res.samples = samples;
    syscalls.append(&mut res.syscalls);
    res.syscalls = syscalls;
    files.append(&mut res.files);
    res.files = files;
    instr.append(&mut res.instr);
    res.instr = instr;
    idle.append(&mut res.idle);
    res.idle = idle;
    micro.append(&mut res.micro);
    res.micro = micro;
    res.kept = kept;
}

/// Restores the latest run's settings and machine-load lines (for `report`).
pub fn load_meta(path: &Path, cfg: &mut Cfg, res: &mut Results) {
    let Ok(text) = std::fs::read_to_string(path) else {
        return;
    };
    let Some(line) = text.lines().find(|l| l.starts_with("meta\t")) else {
        return;
    };
    let f: Vec<&str> = line.split('\t').collect();
    if f.len() != 12 {
        return;
    }
    let num = |i: usize| f[i].parse::<f64>().ok();
    res.date = f[1].to_string();
    res.load_before = f[2].to_string();
    res.load_after = f[3].to_string();
    res.waited = num(4).unwrap_or(0.0);
    res.busy_starts = num(5).unwrap_or(0.0) as usize;
    cfg.secs = num(6).unwrap_or(cfg.secs);
    cfg.warmup = num(7).unwrap_or(cfg.warmup);
    cfg.repeats = num(8).map_or(cfg.repeats, |r| r as usize);
    cfg.file_secs = num(9).unwrap_or(cfg.file_secs);
    cfg.quiet_wait = num(10).unwrap_or(cfg.quiet_wait);
    cfg.quiet_budget = num(11).unwrap_or(cfg.quiet_budget);
    // Rows of the latest run are not "kept from an earlier run".
    res.kept.retain(|(_, d, _)| *d != res.date);
}
