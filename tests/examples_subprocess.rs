//! Runs the `subprocess` example as a process on both drivers: a line
//! filter over a child's stdout, the child's exit code passed on, a child
//! killed after `--timeout`, a missing program.
//!
//! A plain `cargo test` builds the examples; `cargo test --test
//! examples_subprocess` alone does not (run `cargo build --examples` first).

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use corio::DriverKind;

/// `target/<profile>/examples/subprocess`, next to this test's `deps/`.
fn example() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(Path::parent).unwrap();
    let path = dir.join("examples").join("subprocess");
    assert!(
        path.is_file(),
        "{} not found: run `cargo build --examples` (plain `cargo test` builds it)",
        path.display()
    );
    path
}

fn run(args: &[&str]) -> Output {
    let driver = match support::driver() {
        DriverKind::Poll => "poll",
        _ => "uring",
    };
    Command::new(example())
        .args(args)
        .env("CORIO_DRIVER", driver)
        .output()
        .expect("run the example")
}

both_drivers! {
fn filters_lines_and_passes_the_exit_code_on() {
    let out = run(&["--grep", "b", "--", "printf", "a\\nb\\nabc\\nlast b"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "2: b\n3: abc\n4: last b\n");
    assert!(stderr.contains("3 of 4 lines matched"), "{stderr}");

    let out = run(&["sh", "-c", "seq 1 20000; exit 4"]);
    assert_eq!(out.status.code(), Some(4));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.lines().count(), 20000);
    assert!(stdout.ends_with("20000: 20000\n"));
}
}

both_drivers! {
fn kills_a_child_that_runs_too_long() {
    let out = run(&["--timeout", "0.2", "--", "sleep", "30"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("killing it") && stderr.contains("signal: 9"), "{stderr}");
}
}

both_drivers! {
fn a_missing_program_is_reported() {
    let out = run(&["corio-no-such-program"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("NotFound"), "{stderr}");
}
}
