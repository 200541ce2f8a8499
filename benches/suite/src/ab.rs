//! `corio-bench ab BIN[,BIN...] WHAT RUNTIMES N`: one micro operation timed
//! with two or more builds of this binary taking turns, for a before/after
//! on a noisy machine.
//!
//! How it works: every round runs, in turn, each build's `corio` and (with
//! the first build only: they do not change between builds) each other
//! runtime of `RUNTIMES`, as `BIN micro WHAT RT N --cpus CPU`. A figure is
//! the wall time with `N` minus the lesser of two runs with `N = 0` (start-up
//! cancels out), over `N`; timers also lose the 1 ms each sleeps. The
//! report gives each row's median and lowest over the rounds, then each
//! later build against the first and every build against the fastest other
//! runtime (for NOPs: the difference to `raw`), as the median of the
//! comparisons made within each round: a slow phase of the VM that spans a
//! round slows both sides of the pair. Spawned children are not timed in
//! parallel: run it on an otherwise idle machine.

use std::path::Path;
use std::time::Instant;

use crate::Opts;
use crate::micro_table::{by_round, child, reference, run};
use crate::report::median;

/// One timed row: a build and a runtime.
struct Row {
    bin: String,
    rt: String,
    /// Nanoseconds per operation, one per round.
    ns: Vec<f64>,
}

/// `ab BINS WHAT RUNTIMES N [--rounds R] [--cpus CPU]`.
pub fn command(bins: &str, what: &str, runtimes: &str, n: &str, o: &Opts) -> Result<(), String> {
    o.check(&["rounds", "cpus"])?;
    let rounds: usize = o.get("rounds", 9)?;
    let cpu: usize = o.get("cpus", 1)?;
    let n: usize = n.parse().map_err(|_| format!("bad count {n:?}"))?;
    if n == 0 || rounds == 0 {
        return Err("N and --rounds must be at least 1".into());
    }
    let bins: Vec<&str> = bins.split(',').filter(|b| !b.is_empty()).collect();
    let rts: Vec<&str> = runtimes.split(',').filter(|r| !r.is_empty()).collect();
    if bins.is_empty() || !rts.contains(&"corio") {
        return Err("ab: give at least one build, and corio among the runtimes".into());
    }
    for b in &bins {
        if !Path::new(b).is_file() {
            return Err(format!("ab: no build at {b:?}"));
        }
    }
    let mut rows = plan(&bins, &rts);
    let floor = if what == "timer" { 1e-3 } else { 0.0 };
    for round in 0..rounds {
        for row in &mut rows {
            let full = timed(&row.bin, what, &row.rt, n, cpu)?;
            let empty = timed(&row.bin, what, &row.rt, 0, cpu)?
                .min(timed(&row.bin, what, &row.rt, 0, cpu)?);
            row.ns.push((full - empty - floor) / n as f64 * 1e9);
        }
        eprintln!("round {} of {rounds} done", round + 1);
    }
    print!("{}", report(what, &rows));
    Ok(())
}

/// The rows a run times: `corio` with every build, the other runtimes with
/// the first.
fn plan(bins: &[&str], rts: &[&str]) -> Vec<Row> {
    let mut rows = Vec::new();
    for (i, bin) in bins.iter().enumerate() {
        for rt in rts {
            if *rt == "corio" || i == 0 {
                rows.push(Row {
                    bin: bin.to_string(),
                    rt: rt.to_string(),
                    ns: Vec::new(),
                });
            }
        }
    }
    rows
}

/// Wall time of one child, in seconds.
fn timed(bin: &str, what: &str, rt: &str, n: usize, cpu: usize) -> Result<f64, String> {
    let start = Instant::now();
    run(child(Path::new(bin), what, rt, n, cpu))
        .map_err(|e| format!("{bin} micro {what} {rt} {n}: {e}"))?;
    Ok(start.elapsed().as_secs_f64())
}

/// The printed report (see the module's notes).
fn report(what: &str, rows: &[Row]) -> String {
    use std::fmt::Write as _;
    let nop = what.starts_with("nop");
    let mut out = String::new();
    for r in rows {
        let min = r.ns.iter().copied().fold(f64::INFINITY, f64::min);
        let _ = writeln!(
            out,
            "{} {}: median {:.1} ns, min {:.1} ns ({} rounds)",
            r.bin,
            r.rt,
            median(r.ns.clone()),
            min,
            r.ns.len()
        );
    }
    let corios: Vec<&Row> = rows.iter().filter(|r| r.rt == "corio").collect();
    for later in corios.iter().skip(1) {
        let _ = writeln!(
            out,
            "{} against {}: {:.3}× ({:+.1} ns), round by round",
            later.bin,
            corios[0].bin,
            by_round(&later.ns, &corios[0].ns, false),
            by_round(&later.ns, &corios[0].ns, true)
        );
    }
    let peers: Vec<(&str, f64)> = rows
        .iter()
        .filter(|r| r.rt != "corio")
        .map(|r| (r.rt.as_str(), median(r.ns.clone())))
        .collect();
    let reference =
        reference(what, "corio", &peers).and_then(|rt| rows.iter().find(|r| r.rt == rt));
    if let Some(peer) = reference {
        for c in &corios {
            let vs = if nop {
                format!("{:+.1} ns", by_round(&c.ns, &peer.ns, true))
            } else {
                format!("{:.3}×", by_round(&c.ns, &peer.ns, false))
            };
            let _ = writeln!(
                out,
                "{} corio against {}: {vs}, round by round",
                c.bin, peer.rt
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(bin: &str, rt: &str, ns: &[f64]) -> Row {
        Row {
            bin: bin.into(),
            rt: rt.into(),
            ns: ns.to_vec(),
        }
    }

    #[test]
    fn peers_run_with_the_first_build_only() {
        let rows = plan(&["a", "b"], &["corio", "glommio"]);
        let names: Vec<(&str, &str)> = rows
            .iter()
            .map(|r| (r.bin.as_str(), r.rt.as_str()))
            .collect();
        assert_eq!(names, [("a", "corio"), ("a", "glommio"), ("b", "corio")]);
    }

    #[test]
    fn the_report_pairs_builds_and_peers_by_round() {
        // Round 2 is slow for everyone: the later build is 0.9× the first
        // in every round, and 1.1× glommio in two rounds of three.
        let rows = [
            row("old", "corio", &[50.0, 100.0, 50.0]),
            row("old", "glommio", &[40.0, 80.0, 41.0]),
            row("old", "tokio", &[200.0, 400.0, 200.0]),
            row("new", "corio", &[45.0, 90.0, 45.0]),
        ];
        let r = report("spawn", &rows);
        assert!(
            r.contains("old corio: median 50.0 ns, min 50.0 ns (3 rounds)"),
            "{r}"
        );
        assert!(
            r.contains("new against old: 0.900× (-5.0 ns), round by round"),
            "{r}"
        );
        assert!(
            r.contains("new corio against glommio: 1.125×, round by round"),
            "{r}"
        );
        assert!(
            r.contains("old corio against glommio: 1.250×, round by round"),
            "{r}"
        );
    }

    #[test]
    fn nops_are_compared_with_raw_by_difference() {
        let rows = [
            row("old", "corio", &[420.0, 500.0, 425.0]),
            row("old", "raw", &[400.0, 470.0, 400.0]),
        ];
        let r = report("nop", &rows);
        assert!(
            r.contains("old corio against raw: +25.0 ns, round by round"),
            "{r}"
        );
    }

    #[test]
    fn bad_arguments_are_refused_before_anything_runs() {
        let o = Opts::parse(&[]).expect("no options");
        let e = command("/nonexistent/corio-bench", "spawn", "corio", "10", &o).unwrap_err();
        assert!(e.contains("no build at"), "{e}");
        let e = command("/nonexistent/corio-bench", "spawn", "glommio", "10", &o).unwrap_err();
        assert!(e.contains("corio among the runtimes"), "{e}");
        let e = command("/nonexistent/corio-bench", "spawn", "corio", "0", &o).unwrap_err();
        assert!(e.contains("at least 1"), "{e}");
        let bad = Opts::parse(&["--repeats".to_string(), "3".to_string()]).unwrap();
        assert!(command("x", "spawn", "corio", "10", &bad).is_err());
    }
}
