//! Every run's figures as tab-separated lines (`benches/suite/results.tsv`),
//! so a partial rerun (`all --only http`) keeps the other scenarios' figures.
//!
//! Line kinds (first field), each ending with the date of the run:
//! `net case label repeat requests rps p50 p99 cpu user cores background date`,
//! `sys case label requests total name=count,... date` (counts per request),
//! `file label qd repeat iops cpu date`.

use std::fmt::Write as _;
use std::io;
use std::path::Path;

use crate::runner::{FileSample, Results, Sample, SyscallRow};

/// The scenario ids, as the `'static` strings the results use.
const IDS: [&str; 4] = ["echo64", "echo1k", "http", "http2"];

fn id(s: &str) -> Option<&'static str> {
    IDS.into_iter().find(|i| *i == s)
}

pub fn save(path: &Path, res: &Results) -> io::Result<()> {
    let mut out = String::new();
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
            date_of(res, s.case)
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
            date_of(res, "syscalls")
        );
    }
    for f in &res.files {
        let _ = writeln!(
            out,
            "file\t{}\t{}\t{}\t{}\t{}\t{}",
            f.label,
            f.qd,
            f.repeat,
            f.iops,
            f.cpu_us_per_read,
            date_of(res, "file")
        );
    }
    std::fs::write(path, out)
}

fn date_of(res: &Results, scenario: &str) -> String {
    res.kept
        .iter()
        .find(|(s, _)| s == scenario)
        .map_or_else(|| res.date.clone(), |(_, d)| d.clone())
}

/// Adds to `res` the stored figures of the scenarios `wanted` says were not rerun.
pub fn merge(path: &Path, res: &mut Results, wanted: impl Fn(&str) -> bool) {
    let Ok(text) = std::fs::read_to_string(path) else {
        return;
    };
    let mut keep = |scenario: &str, date: &str| -> bool {
        if wanted(scenario) {
            return false;
        }
        if !res.kept.iter().any(|(s, _)| s == scenario) {
            res.kept.push((scenario.to_string(), date.to_string()));
        }
        true
    };
    let mut samples = Vec::new();
    let mut syscalls = Vec::new();
    let mut files = Vec::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        let num = |i: usize| f.get(i).and_then(|x| x.parse::<f64>().ok());
        match f.first().copied() {
            Some("net") if f.len() == 13 => {
                let Some(case) = id(f[1]) else { continue };
                let (Some(repeat), Some(requests)) = (num(3), num(4)) else {
                    continue;
                };
                if keep(case, f[12]) {
                    samples.push(Sample {
                        case,
                        label: f[2].to_string(),
                        repeat: repeat as usize,
                        requests: requests as u64,
                        rps: num(5).unwrap_or(f64::NAN),
                        p50_us: num(6).unwrap_or(f64::NAN),
                        p99_us: num(7).unwrap_or(f64::NAN),
                        cpu_us_per_req: num(8).unwrap_or(f64::NAN),
                        user_us_per_req: num(9).unwrap_or(f64::NAN),
                        cpu_cores: num(10).unwrap_or(f64::NAN),
                        background: num(11).unwrap_or(f64::NAN),
                    });
                }
            }
            Some("sys") if f.len() == 7 => {
                let Some(case) = id(f[1]) else { continue };
                if keep("syscalls", f[6]) {
                    let named = f[5]
                        .split(',')
                        .filter_map(|kv| {
                            let (n, c) = kv.split_once('=')?;
                            Some((n.to_string(), c.parse().ok()?))
                        })
                        .collect();
                    syscalls.push(SyscallRow {
                        case,
                        label: f[2].to_string(),
                        requests: num(3).unwrap_or(0.0) as u64,
                        total: num(4).unwrap_or(f64::NAN),
                        named,
                    });
                }
            }
            Some("file") if f.len() == 7 && keep("file", f[6]) => {
                files.push(FileSample {
                    label: f[1].to_string(),
                    qd: num(2).unwrap_or(0.0) as usize,
                    repeat: num(3).unwrap_or(0.0) as usize,
                    iops: num(4).unwrap_or(f64::NAN),
                    cpu_us_per_read: num(5).unwrap_or(f64::NAN),
                });
            }
            _ => {}
        }
    }
    // Stored scenarios come first, in the order they were run.
    samples.append(&mut res.samples);
    res.samples = samples;
    syscalls.append(&mut res.syscalls);
    res.syscalls = syscalls;
    files.append(&mut res.files);
    res.files = files;
}
