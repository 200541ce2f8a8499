//! Sets `cfg(corio_uring)` where the io_uring driver is compiled in: Linux,
//! unless `--cfg corio_no_uring` asks for the build a non-Linux target sees.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(corio_uring)");
    println!("cargo::rustc-check-cfg=cfg(corio_no_uring)");
    // The loom models (tests/loom_*.rs) build with `--cfg corio_loom`.
    println!("cargo::rustc-check-cfg=cfg(corio_loom)");
    println!("cargo::rerun-if-env-changed=CARGO_CFG_CORIO_NO_URING");
    let linux = std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux");
    let disabled = std::env::var_os("CARGO_CFG_CORIO_NO_URING").is_some();
    if linux && !disabled {
        println!("cargo::rustc-cfg=corio_uring");
    }
}
