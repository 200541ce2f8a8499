//! What the macros of `corio-macros` expand to call: not a public API.
//!
//! How it works: `#[corio::main]` builds a `Builder` and hands it here with
//! the body ([`block_on`], or [`run_shards`] with `shards = N`, whose shard
//! outputs [`ShardsOutput`] combines); `#[corio::test]` gets its runtime from
//! [`test_runtime`]; `select!` asks [`select_start`] where to start polling.

use std::cell::Cell;
use std::future::Future;

use crate::runtime::shard::{RunError, ShardId};
use crate::{Builder, DriverKind, Runtime};

/// Builds the runtime and runs `future` on it (`#[corio::main]`).
#[track_caller]
pub fn block_on<F: Future>(builder: Builder, future: F) -> F::Output {
    let rt = builder
        .build()
        .unwrap_or_else(|e| panic!("corio::main: cannot build the runtime: {e}"));
    rt.block_on(future)
}

/// The output of `main` run on every shard, combined into one.
pub trait ShardsOutput: Sized {
    /// One value from every shard's.
    fn combine(outputs: Vec<Self>) -> Self;
}

impl ShardsOutput for () {
    fn combine(_: Vec<()>) {}
}

/// The first shard's error, else `Ok(())`.
impl<E> ShardsOutput for Result<(), E> {
    fn combine(outputs: Vec<Self>) -> Self {
        outputs.into_iter().collect()
    }
}

/// Runs `entry` on every shard (`#[corio::main(shards = N)]`); a shard's
/// panic is resumed here.
pub fn run_shards<F, Fut>(builder: Builder, entry: F) -> Fut::Output
where
    F: Fn(ShardId) -> Fut + Send + Sync + 'static,
    Fut: Future + 'static,
    Fut::Output: ShardsOutput + Send + 'static,
{
    match builder.run(entry) {
        Ok(outputs) => ShardsOutput::combine(outputs),
        Err(RunError::Panic { payload, .. }) => std::panic::resume_unwind(payload),
        Err(e) => panic!("corio::main: {e}"),
    }
}

/// A runtime on `kind` for `#[corio::test]`. Where io_uring is not
/// available the io_uring variant says so and runs on the poll driver (as
/// corio's own test suite does).
#[track_caller]
pub fn test_runtime(kind: DriverKind) -> Runtime {
    static URING: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let mut builder = Builder::new().driver(kind);
    let available =
        || *URING.get_or_init(|| Builder::new().driver(DriverKind::Uring).build().is_ok());
    if kind == DriverKind::Uring && !available() {
        eprintln!("io_uring is not available here: running the uring variant on the poll driver");
        builder = Builder::new().driver(DriverKind::Poll);
    }
    builder
        .build()
        .unwrap_or_else(|e| panic!("corio::test: cannot build the runtime: {e}"))
}

thread_local! {
    static RNG: Cell<u64> = const { Cell::new(0x9E37_79B9_7F4A_7C15) };
}

/// Where `select!` starts polling among `n` branches: a cheap per-thread
/// pseudo-random number, so no branch is always polled first.
pub fn select_start(n: usize) -> usize {
    RNG.with(|r| {
        let mut x = r.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        r.set(x);
        (x % n as u64) as usize
    })
}
