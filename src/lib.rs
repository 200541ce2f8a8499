//! corio: a thread-per-core async runtime built on io_uring.
//!
//! Each runtime is one thread with its own executor and its own io_uring
//! completion-queue driver. Futures wrap submitted operations (TCP, UDP,
//! files, timers); while the kernel may touch a buffer, the driver owns it, so
//! dropping a future never frees memory the kernel still writes to. Around
//! that: [`sync`] (locks, semaphores, events, channels), [`io`] (buffered
//! lines, copying between streams), [`stream`], and the macros
//! `#[corio::main]`, `#[corio::test]`, `select!`, `join!` (feature
//! `macros`, on by default).
//!
//! A TCP echo server:
//!
#![cfg_attr(feature = "macros", doc = "```no_run")]
#![cfg_attr(not(feature = "macros"), doc = "```ignore")]
//! use corio::net::TcpListener;
//! use corio::time::{Duration, sleep};
//!
//! #[corio::main]
//! async fn main() -> std::io::Result<()> {
//!     let listener = TcpListener::bind("127.0.0.1:9000")?;
//!     loop {
//!         match listener.accept().await {
//!             Ok((stream, _peer)) => {
//!                 corio::spawn(async move {
//!                     let (mut reader, mut writer) = stream.into_split();
//!                     // Echoes until the peer closes (Ok) or resets (Err).
//!                     let _ = corio::io::copy(&mut reader, &mut writer).await;
//!                 });
//!             }
//!             // Out of fds (EMFILE), say: pause rather than spin.
//!             Err(_) => sleep(Duration::from_millis(100)).await,
//!         }
//!     }
//! }
//! ```
//!
//! # Guides
//!
#![cfg_attr(
    all(feature = "macros", target_os = "linux"),
    doc = "New to corio? [`guide`] has a page for [asyncio users](guide::asyncio), one for \
           [tokio users](guide::tokio), and one each on [buffers](guide::buffers), \
           [cancellation](guide::cancellation) (what dropping each call's future does) and \
           [performance experiments](guide::performance); every example in them is a test."
)]
#![cfg_attr(
    not(all(feature = "macros", target_os = "linux")),
    doc = "The guides (module `guide`: asyncio and tokio users, buffers, cancellation, \
           performance) are built with the default feature `macros`."
)]
// Examples in the docs compile without warnings.
#![doc(test(attr(deny(warnings))))]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(
    clippy::undocumented_unsafe_blocks,
    missing_docs,
    missing_debug_implementations,
    unreachable_pub
)]

// The macros' expansions name `::corio`, also inside this crate's tests.
extern crate self as corio;

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;
pub mod buf;
pub mod compat;
// Built without io_uring, the ring's half of the op layer (multishot arming,
// released completions, SQEs) is never reached.
#[cfg_attr(not(corio_uring), allow(dead_code))]
mod driver;
#[cfg_attr(not(corio_uring), allow(dead_code))]
mod fd;
mod freed;
#[cfg(target_os = "linux")]
pub mod fs;
#[cfg(all(feature = "macros", target_os = "linux"))]
pub mod guide;
pub mod io;
#[cfg(feature = "macros")]
mod macros;
pub mod net;
#[cfg_attr(not(corio_uring), allow(dead_code))]
mod op;
pub mod probe;
#[cfg(target_os = "linux")]
pub mod process;
#[cfg_attr(not(corio_uring), allow(dead_code))]
mod release;
pub mod runtime;
#[cfg(target_os = "linux")]
pub mod signal;
pub mod stream;
pub mod sync;
pub mod time;
#[cfg(feature = "tls")]
pub mod tls;
mod trace;

pub use buf::{BufResult, IoBuf, IoBufMut, PooledBuf, Slice};
#[cfg(feature = "macros")]
pub use macros::{join, main, select, test, try_join};
pub use op::nop;
pub use probe::{Probe, probe};
pub use runtime::shard;
pub use runtime::shard::spawn_on;
// The README's examples compile (`cargo test --doc`).
#[cfg(all(doctest, feature = "macros"))]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

pub use runtime::{
    Builder, ContextVar, DriverKind, JoinError, JoinHandle, Runtime, TaskGroup, run, spawn,
    spawn_blocking, yield_now,
};
