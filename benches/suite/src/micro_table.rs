//! The `micro` scenario: what one small operation costs on each runtime —
//! spawn + join, spawn-many, a timer, a NOP round trip — in one run.
//!
//! How it works: every figure is `corio-bench micro WHAT RUNTIME N` (the
//! operation inside a spawned task, `micro.rs`) run as a child pinned to the
//! server CPU: its wall time with `N` minus its wall time with `N = 0`
//! (start-up and teardown cancel out), divided by `N`. Timers subtract the
//! 1 ms every one of them sleeps, so the figure is the cost beyond the floor.
//! Five rounds, the runtimes taking turns within each, after a wait for a
//! quiet machine; the table shows the median and the range. Absolute times
//! on these VMs move by up to 2x from one boot to the next, so the column to
//! read is the one against the best other runtime of the same run (for NOPs,
//! the difference to a raw io_uring loop with corio's ring flags). The
//! instruction column is the same child under `valgrind --tool=callgrind`
//! (smaller `N`, the same subtraction): user-space instructions per
//! operation, which do not move with the machine. With
//! `CORIO_BENCH_KEEP_CALLGRIND=DIR` the callgrind files are kept in DIR, as
//! for `instr`.

use std::fmt::Write as _;
use std::io;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use crate::runner::{Cfg, Results};

/// One operation measured.
struct Test {
    what: &'static str,
    /// `N` for the timed runs and for the counted ones.
    n: usize,
    n_counted: usize,
    runtimes: &'static [&'static str],
    /// What the table calls the operation.
    title: &'static str,
}

const PEERS: &[&str] = &["corio", "glommio", "monoio", "tokio"];
const RAW: &[&str] = &["corio", "raw"];

const TESTS: [Test; 5] = [
    Test {
        what: "spawn",
        n: 1_000_000,
        n_counted: 20_000,
        runtimes: PEERS,
        title: "spawn + join, one at a time",
    },
    Test {
        what: "spawn-many",
        n: 200_000,
        n_counted: 20_000,
        runtimes: PEERS,
        title: "spawn N, then join them all",
    },
    Test {
        what: "timer",
        n: 100_000,
        n_counted: 10_000,
        runtimes: PEERS,
        title: "a 1 ms sleep in its own task, beyond the 1 ms",
    },
    Test {
        what: "nop",
        n: 500_000,
        n_counted: 20_000,
        runtimes: RAW,
        title: "NOP round trip",
    },
    Test {
        what: "nop32",
        n: 500_000,
        n_counted: 20_000,
        runtimes: RAW,
        title: "NOP round trip, 32 in flight",
    },
];

/// Timed rounds per figure.
const ROUNDS: usize = 7;

/// One operation on one runtime.
#[derive(Debug, Clone)]
pub struct MicroRow {
    pub what: String,
    pub label: String,
    /// Nanoseconds per operation: median, lowest and highest of the rounds.
    pub ns: f64,
    pub ns_min: f64,
    pub ns_max: f64,
    /// User-space instructions per operation (NaN when not counted).
    pub ir: f64,
    /// The comparison of the `vs` column taken round by round: the median,
    /// over the rounds, of this runtime's time ÷ the reference's in the same
    /// round (for NOPs: − raw's). A slow phase of the machine that spans a
    /// round slows both sides of its pair, so this moves less than the ratio
    /// of the medians. NaN when not measured so (the reference itself, or a
    /// row from before the suite recorded it).
    pub paired: f64,
    pub date: String,
}

/// `exe micro WHAT RT N --cpus CPU`, as a child of the runner (also used
/// by `ab`).
pub(crate) fn child(exe: &Path, what: &str, rt: &str, n: usize, cpu: usize) -> Command {
    let mut c = Command::new(exe);
    c.args([
        "micro",
        what,
        rt,
        &n.to_string(),
        "--cpus",
        &cpu.to_string(),
    ])
    .env(crate::sys::CHILD_ENV, "1")
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(Stdio::piped());
    c
}

/// Runs a child to its end; its stderr is the error when it fails.
pub(crate) fn run(mut c: Command) -> io::Result<()> {
    let out = c.output()?;
    if out.status.success() {
        Ok(())
    } else {
        Err(io::Error::other(
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        ))
    }
}

/// Wall time of one child, in seconds.
fn timed(cfg: &Cfg, what: &str, rt: &str, n: usize) -> io::Result<f64> {
    let start = Instant::now();
    run(child(&cfg.exe, what, rt, n, cfg.server_cpu))?;
    Ok(start.elapsed().as_secs_f64())
}

/// Nanoseconds per operation of one timed pair (`n` minus none).
fn per_op(cfg: &Cfg, t: &Test, rt: &str) -> io::Result<f64> {
    let full = timed(cfg, t.what, rt, t.n)?;
    let empty = timed(cfg, t.what, rt, 0)?;
    let floor = if t.what == "timer" { 1e-3 } else { 0.0 };
    Ok((full - empty - floor) / t.n as f64 * 1e9)
}

/// Instructions of one child under callgrind.
fn counted(cfg: &Cfg, what: &str, rt: &str, n: usize) -> io::Result<u64> {
    let out = std::env::temp_dir().join(format!(
        "corio-micro-{}-{what}-{rt}-{n}.out",
        std::process::id()
    ));
    let mut c = Command::new("valgrind");
    c.arg("--tool=callgrind")
        .arg(format!("--callgrind-out-file={}", out.display()))
        .arg(&cfg.exe)
        .args(["micro", what, rt, &n.to_string()])
        .args(["--cpus", &cfg.server_cpu.to_string()])
        .env(crate::sys::CHILD_ENV, "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let ran = run(c);
    // Collected (and removed) whether or not the run succeeded.
    let ir = crate::instr::collect(&out, "");
    ran?;
    let ir = ir?;
    if ir == 0 {
        return Err(io::Error::other("callgrind counted nothing"));
    }
    Ok(ir)
}

/// Instructions per operation (`n_counted` minus none).
fn ir_per_op(cfg: &Cfg, t: &Test, rt: &str) -> io::Result<f64> {
    let full = counted(cfg, t.what, rt, t.n_counted)?;
    let empty = counted(cfg, t.what, rt, 0)?;
    Ok((full as f64 - empty as f64) / t.n_counted as f64)
}

/// Runs the scenario for the runtimes `keeps` (by name) lets through.
pub fn pass(cfg: &Cfg, res: &mut Results, keeps: impl Fn(&str) -> bool) {
    let valgrind = crate::runner::tool_version("valgrind", &["--version"]).is_some();
    if !valgrind {
        eprintln!("valgrind not found: no instruction column (apt-get install -y valgrind)");
    }
    for t in &TESTS {
        let rts: Vec<&str> = t.runtimes.iter().copied().filter(|r| keeps(r)).collect();
        if rts.is_empty() {
            continue;
        }
        eprintln!("== micro: {} ({})", t.what, t.title);
        let mut times: Vec<Vec<f64>> = vec![Vec::new(); rts.len()];
        let mut failed: Vec<Option<String>> = vec![None; rts.len()];
        for _ in 0..ROUNDS {
            crate::runner::wait_quiet(cfg, res);
            for (i, rt) in rts.iter().enumerate() {
                if failed[i].is_some() {
                    continue;
                }
                match per_op(cfg, t, rt) {
                    Ok(ns) => times[i].push(ns),
                    Err(e) => failed[i] = Some(e.to_string()),
                }
            }
        }
        for (i, rt) in rts.iter().enumerate() {
            if let Some(e) = &failed[i] {
                eprintln!("  {rt:<10} FAILED: {e}");
                res.failures.push(format!("micro {} / {rt}: {e}", t.what));
                continue;
            }
            let ir = if valgrind {
                ir_per_op(cfg, t, rt).unwrap_or_else(|e| {
                    res.failures
                        .push(format!("micro {} / {rt} (callgrind): {e}", t.what));
                    f64::NAN
                })
            } else {
                f64::NAN
            };
            let v = &times[i];
            let row = MicroRow {
                what: t.what.to_string(),
                label: rt.to_string(),
                ns: crate::report::median(v.clone()),
                ns_min: v.iter().copied().fold(f64::INFINITY, f64::min),
                ns_max: v.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                ir,
                paired: f64::NAN,
                date: cfg.date.clone(),
            };
            eprintln!(
                "  {rt:<10} {:>8.1} ns/op ({:.1}–{:.1})  {:>6.0} Ir/op",
                row.ns, row.ns_min, row.ns_max, row.ir
            );
            res.micro.push(row);
        }
        let ok: Vec<(&str, &[f64])> = rts
            .iter()
            .zip(&times)
            .zip(&failed)
            .filter(|(_, f)| f.is_none())
            .map(|((rt, v), _)| (*rt, v.as_slice()))
            .collect();
        for row in res
            .micro
            .iter_mut()
            .filter(|r| r.what == t.what && r.date == cfg.date)
        {
            row.paired = paired(t.what, &row.label, &ok);
        }
    }
}

/// The reference `label` is compared with among `others` (runtime, median
/// ns): raw for NOPs, else the fastest other runtime; `None` for raw itself
/// or when there is no other.
pub(crate) fn reference<'a>(what: &str, label: &str, others: &[(&'a str, f64)]) -> Option<&'a str> {
    if what.starts_with("nop") {
        return (label != "raw")
            .then(|| {
                others
                    .iter()
                    .find(|(rt, _)| *rt == "raw")
                    .map(|(rt, _)| *rt)
            })
            .flatten();
    }
    others
        .iter()
        .filter(|(rt, _)| *rt != label)
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(rt, _)| *rt)
}

/// [`MicroRow::paired`] of `label`, from every runtime's times by round
/// (`runs`: runtime, one time per round, in round order).
fn paired(what: &str, label: &str, runs: &[(&str, &[f64])]) -> f64 {
    let medians: Vec<(&str, f64)> = runs
        .iter()
        .map(|(rt, v)| (*rt, crate::report::median(v.to_vec())))
        .collect();
    let (Some(mine), Some(theirs)) = (
        runs.iter().find(|(rt, _)| *rt == label),
        reference(what, label, &medians).and_then(|r| runs.iter().find(|(rt, _)| *rt == r)),
    ) else {
        return f64::NAN;
    };
    by_round(mine.1, theirs.1, what.starts_with("nop"))
}

/// The median over the rounds of `mine[i] / theirs[i]` (with `diff`:
/// `mine[i] - theirs[i]`), the two taken in the same round; NaN when no
/// round has both.
pub(crate) fn by_round(mine: &[f64], theirs: &[f64], diff: bool) -> f64 {
    let each: Vec<f64> = mine
        .iter()
        .zip(theirs)
        .map(|(a, b)| if diff { a - b } else { a / b })
        .collect();
    if each.is_empty() {
        return f64::NAN;
    }
    crate::report::median(each)
}

/// The comparison column of `row`: against the best other runtime of the
/// same run, or (NOPs) the difference to the raw loop.
fn versus(row: &MicroRow, rows: &[&MicroRow]) -> String {
    let same_run = || rows.iter().filter(|r| r.date == row.date);
    let others: Vec<(&str, f64)> = same_run().map(|r| (r.label.as_str(), r.ns)).collect();
    let Some(best) = reference(&row.what, &row.label, &others)
        .and_then(|label| same_run().find(|r| r.label == label))
    else {
        return "".into();
    };
    let nop = row.what.starts_with("nop");
    let by_round = match (row.paired.is_finite(), nop) {
        (false, _) => String::new(),
        (true, true) => format!("; {:+.1} round by round", row.paired),
        (true, false) => format!("; {:.2}× round by round", row.paired),
    };
    if nop {
        format!("{:+.1} ns over raw{by_round}", row.ns - best.ns)
    } else {
        format!("{:.2}× {}{by_round}", row.ns / best.ns, best.label)
    }
}

/// The report's section.
pub fn render(m: &mut String, res: &Results, server_cpu: usize) {
    if res.micro.is_empty() {
        return;
    }
    let _ = writeln!(
        m,
        "Per-operation costs (`--only micro`): each operation inside a spawned task, `corio-bench \
         micro WHAT RUNTIME N` pinned to CPU {server_cpu}, wall time with N minus with N = 0, over N; \
         median of {ROUNDS} rounds (range) with the runtimes taking turns; timers are the cost beyond \
         the 1 ms each sleeps. Absolute times move up to 2x between boots of these VMs: compare within \
         a run (the `vs` column: × the fastest other runtime of the same run; for NOPs, the \
         difference to `raw`, a plain io-uring loop with corio's ring flags; then the same \
         comparison made within each round, its median over the rounds, which a slow phase of the \
         machine moves less). Ir/op: user-space \
         instructions per operation under callgrind (the same subtraction), which do not move with \
         the machine.\n"
    );
    let _ = writeln!(
        m,
        "| operation | runtime | ns/op (range) | vs | Ir/op | measured |"
    );
    let _ = writeln!(m, "|---|---|---:|---|---:|---|");
    for t in &TESTS {
        let rows: Vec<&MicroRow> = res.micro.iter().filter(|r| r.what == t.what).collect();
        for r in &rows {
            let ir = if r.ir.is_nan() {
                "".to_string()
            } else {
                format!("{:.0}", r.ir)
            };
            let _ = writeln!(
                m,
                "| {} | {} | **{:.1}** ({:.1}–{:.1}) | {} | {ir} | {} |",
                t.title,
                r.label,
                r.ns,
                r.ns_min,
                r.ns_max,
                versus(r, &rows),
                r.date
            );
        }
    }
    let _ = writeln!(m);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(what: &str, label: &str, ns: f64, date: &str) -> MicroRow {
        MicroRow {
            what: what.into(),
            label: label.into(),
            ns,
            ns_min: ns - 1.0,
            ns_max: ns + 1.0,
            ir: 500.0,
            paired: f64::NAN,
            date: date.into(),
        }
    }

    #[test]
    fn compares_with_the_best_other_runtime_of_the_same_run() {
        let rows = [
            row("spawn", "corio", 50.0, "a"),
            row("spawn", "glommio", 40.0, "a"),
            row("spawn", "tokio", 200.0, "a"),
            // An older run's figure is not a peer of this run's.
            row("spawn", "monoio", 10.0, "b"),
        ];
        let refs: Vec<&MicroRow> = rows.iter().collect();
        assert_eq!(versus(&rows[0], &refs), "1.25× glommio");
        assert_eq!(versus(&rows[1], &refs), "0.80× corio");
        assert_eq!(versus(&rows[3], &refs), "");
    }

    #[test]
    fn nops_show_the_difference_to_raw() {
        let rows = [
            row("nop", "corio", 377.0, "a"),
            row("nop", "raw", 320.5, "a"),
        ];
        let refs: Vec<&MicroRow> = rows.iter().collect();
        assert_eq!(versus(&rows[0], &refs), "+56.5 ns over raw");
        assert_eq!(versus(&rows[1], &refs), "");
    }

    #[test]
    fn the_round_by_round_figure_pairs_each_round_with_the_reference() {
        // Round 2 is a slow phase for both: the medians' ratio (50 / 40)
        // is 1.25, the rounds' own ratios are 1.1, 1.1 and 1.4.
        let corio = [44.0, 99.0, 50.0];
        let glommio = [40.0, 90.0, 35.7];
        let tokio = [200.0, 300.0, 210.0];
        let runs = [
            ("corio", &corio[..]),
            ("glommio", &glommio[..]),
            ("tokio", &tokio[..]),
        ];
        assert!((paired("spawn", "corio", &runs) - 1.1).abs() < 1e-9);
        // glommio against corio, the fastest other.
        assert!((paired("spawn", "glommio", &runs) - 40.0 / 44.0).abs() < 1e-9);
        let nop = [400.0, 500.0, 410.0];
        let raw = [380.0, 470.0, 400.0];
        let runs = [("corio", &nop[..]), ("raw", &raw[..])];
        assert!((paired("nop", "corio", &runs) - 20.0).abs() < 1e-9);
        assert!(paired("nop", "raw", &runs).is_nan(), "raw has no reference");
        assert!(
            paired("spawn", "corio", &runs[..1]).is_nan(),
            "nobody to pair with"
        );
    }

    #[test]
    fn the_vs_column_adds_the_round_by_round_figure() {
        let rows = [
            MicroRow {
                paired: 1.1,
                ..row("spawn", "corio", 50.0, "a")
            },
            row("spawn", "glommio", 40.0, "a"),
            MicroRow {
                paired: 21.25,
                ..row("nop", "corio", 420.0, "a")
            },
            row("nop", "raw", 400.0, "a"),
        ];
        let refs: Vec<&MicroRow> = rows.iter().collect();
        assert_eq!(
            versus(&rows[0], &refs[..2]),
            "1.25× glommio; 1.10× round by round"
        );
        assert_eq!(
            versus(&rows[2], &refs[2..]),
            "+20.0 ns over raw; +21.2 round by round"
        );
    }

    #[test]
    fn rows_from_before_the_round_by_round_figure_still_load() {
        let dir = std::env::temp_dir().join(format!("corio-micro-old-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let tsv = dir.join("results.tsv");
        std::fs::write(
            &tsv,
            "micro\tspawn\tcorio\t46.3\t42.9\t65.5\t594.2\t2026-12-07 20:20 UTC\n",
        )
        .unwrap();
        let mut back = Results::default();
        crate::store::merge(&tsv, &mut back);
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(back.micro.len(), 1);
        assert_eq!(back.micro[0].ns, 46.3);
        assert!(back.micro[0].paired.is_nan());
    }

    #[test]
    fn rows_survive_results_tsv() {
        let dir = std::env::temp_dir().join(format!("corio-micro-table-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let tsv = dir.join("results.tsv");
        let mut res = Results::default();
        res.micro.push(MicroRow {
            paired: 28.5,
            ..row("nop32", "corio", 143.5, "2026-12-07 03:41 UTC")
        });
        res.micro.push(MicroRow {
            ir: f64::NAN,
            ..row("timer", "tokio", 499.7, "2026-12-07 03:41 UTC")
        });
        let cfg = crate::runner::test_cfg(&dir);
        crate::store::save(&tsv, &cfg, &res).unwrap();
        let mut back = Results::default();
        crate::store::merge(&tsv, &mut back);
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(back.micro.len(), 2);
        let nop = &back.micro[0];
        assert_eq!((nop.what.as_str(), nop.label.as_str()), ("nop32", "corio"));
        assert_eq!(
            (nop.ns, nop.ns_min, nop.ns_max, nop.ir),
            (143.5, 142.5, 144.5, 500.0)
        );
        assert_eq!(nop.date, "2026-12-07 03:41 UTC");
        assert_eq!(nop.paired, 28.5);
        assert!(back.micro[1].paired.is_nan(), "no figure stays none");
        assert!(
            back.micro[1].ir.is_nan(),
            "an uncounted row stays uncounted"
        );
        let mut m = String::new();
        render(&mut m, &back, 1);
        assert!(m.contains("| NOP round trip, 32 in flight | corio | **143.5** (142.5–144.5) |"));
        assert!(
            m.contains("| tokio | **499.7** (498.7–500.7) |  |  |"),
            "{m}"
        );
    }
}
