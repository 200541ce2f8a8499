//! corio: a thread-per-core async runtime built on io_uring.
//!
//! Each runtime is one thread with its own executor and its own io_uring
//! completion-queue driver. Futures wrap submitted operations (TCP, UDP,
//! timers); while the kernel may touch a buffer, the driver owns it, so
//! dropping a future never frees memory the kernel still writes to.
//!
//! ```no_run
//! use corio::IoBuf;
//! use corio::net::TcpListener;
//!
//! corio::run(async {
//!     let listener = TcpListener::bind("127.0.0.1:7000").unwrap();
//!     loop {
//!         let (stream, _) = listener.accept().await.unwrap();
//!         corio::spawn(async move {
//!             let mut buf = vec![0u8; 4096];
//!             loop {
//!                 let (res, b) = stream.read(buf).await;
//!                 let n = match res {
//!                     Ok(0) | Err(_) => return,
//!                     Ok(n) => n,
//!                 };
//!                 let (res, b) = stream.write_all(b.slice(..n)).await;
//!                 buf = b.into_inner();
//!                 if res.is_err() {
//!                     return;
//!                 }
//!             }
//!         });
//!     }
//! });
//! ```
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(
    clippy::undocumented_unsafe_blocks,
    missing_docs,
    missing_debug_implementations,
    unreachable_pub
)]

pub mod buf;
mod driver;
#[cfg(target_os = "linux")]
pub mod fs;
pub mod net;
mod op;
pub mod probe;
#[cfg(target_os = "linux")]
pub mod process;
pub mod runtime;
#[cfg(target_os = "linux")]
pub mod signal;
pub mod sync;
pub mod time;
#[cfg(feature = "tls")]
pub mod tls;

pub use buf::{BufResult, IoBuf, IoBufMut, PooledBuf, Slice};
pub use op::nop;
pub use probe::{Probe, probe};
pub use runtime::shard;
pub use runtime::shard::spawn_on;
pub use runtime::{
    Builder, ContextVar, DriverKind, JoinError, JoinHandle, Runtime, TaskGroup, run, spawn,
    spawn_blocking, yield_now,
};
