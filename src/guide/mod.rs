//! Guides: corio explained for newcomers, one page per topic.
//!
//! | Guide | For whom, about what |
//! |---|---|
//! | [`asyncio`] | you know Python's asyncio: the event loop, tasks, `TaskGroup`, `ContextVar`, streams, timeouts, signals and subprocesses, mapped one by one |
//! | [`tokio`] | you know tokio: what differs (owned buffers, `!Send` tasks, shards, `spawn_on`, the compat layer, `select!`) |
//! | [`buffers`] | owned, pooled, fixed and aligned buffers: which to use when |
//! | [`cancellation`] | what happens when you drop a future, call by call |
//! | [`performance`] | the knobs, the counters, `corio::probe()`, the benchmark suite, and how to read server CPU per request |
//!
//! Every Rust example in these pages is a doc test: `cargo test` compiles
//! and runs it. The examples that do I/O run on both drivers, io_uring and
//! the poll fallback (hidden lines wrap them in a runtime of each kind);
//! servers that would run for ever are only compiled.
//!
//! How it works: each guide is a Markdown file under `docs/guide/` in the
//! repository, included here as the documentation of an empty module, so
//! `cargo doc` renders it and `cargo test --doc` runs its examples. The
//! guides use the `macros` feature (on by default), so this module is only
//! built with it.

use std::future::Future;
use std::io;

use crate::DriverKind;

#[doc = include_str!("../../docs/guide/asyncio.md")]
pub mod asyncio {}

#[doc = include_str!("../../docs/guide/tokio.md")]
pub mod tokio {}

#[doc = include_str!("../../docs/guide/buffers.md")]
pub mod buffers {}

#[doc = include_str!("../../docs/guide/cancellation.md")]
pub mod cancellation {}

#[doc = include_str!("../../docs/guide/performance.md")]
pub mod performance {}

/// Runs the future `body` makes once on an io_uring runtime and once on a
/// poll-driver runtime (where io_uring is unavailable, both runs use the
/// poll driver, with a message), panicking on an error. The guides'
/// examples call it from hidden lines; not a public API.
#[doc(hidden)]
#[track_caller]
pub fn both_drivers<F, Fut>(body: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = io::Result<()>>,
{
    for kind in [DriverKind::Uring, DriverKind::Poll] {
        let rt = crate::__private::test_runtime(kind);
        if let Err(e) = rt.block_on(body()) {
            panic!("on the {:?} driver: {e}", rt.driver_kind());
        }
    }
}
