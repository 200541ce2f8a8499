//! The macros (cargo feature `macros`, on by default), re-exported from the
//! `corio-macros` crate with their documentation and examples.
//!
//! How it works: see `corio-macros`; the expansions call the public API
//! and the hidden `corio::__private` helpers.

/// Runs `async fn main` on a corio runtime.
///
/// ```
/// #[corio::main]
/// async fn main() -> std::io::Result<()> {
///     corio::time::sleep(std::time::Duration::from_millis(1)).await;
///     Ok(())
/// }
/// ```
///
/// is `fn main() -> io::Result<()>` that builds a runtime with
/// [`Builder::new()`](crate::Builder) and runs the body with
/// [`block_on`](crate::Runtime::block_on). Options:
///
/// | Option | Effect |
/// |---|---|
/// | `shards = N` | run the body on `N` shards, one thread and runtime each ([`Builder::run`](crate::Builder::run)); `main` must then return `()` or `Result<(), E>` (`E: Send`), the first shard's error winning |
/// | `driver = "poll"` (or `"uring"`, `"auto"`) | [`Builder::driver`](crate::Builder::driver); `CORIO_DRIVER` still overrides it |
/// | `pin_cpus` | pin each shard's thread to its own CPU (needs `shards`) |
///
/// ```no_run
/// #[corio::main(shards = 2, pin_cpus)]
/// async fn main() {
///     println!("hello from {:?}", corio::shard::current().id());
/// }
/// ```
///
/// Misuse is a compile error that says what to write:
///
/// ```compile_fail
/// #[corio::main]
/// fn main() {} // error: needs an async function: write `async fn main()`
/// ```
///
/// ```compile_fail
/// #[corio::main(threads = 2)] // error: unknown option `threads`: write `shards = N`, ...
/// async fn main() {}
/// ```
///
/// ```compile_fail
/// #[corio::main(shards = "two")] // error: `shards` takes a positive integer, e.g. `shards = 4`
/// async fn main() {}
/// ```
///
/// ```compile_fail
/// #[corio::main(driver = "epoll")] // error: `driver` is "poll", "uring" or "auto"
/// async fn main() {}
/// ```
pub use corio_macros::main;

/// Runs an `async fn` test on a corio runtime.
///
/// `#[corio::test]` makes a `#[test]` whose body runs on a fresh runtime;
/// other attributes (`#[should_panic]`, `#[ignore]`) apply as usual and the
/// test may return a `Result`. Options: `driver = "poll"` (or `"uring"`,
/// `"auto"`), or `both_drivers`, which makes a module named after the test
/// holding a `uring` and a `poll` test running the same body (where
/// io_uring is unavailable the `uring` one says so and runs on the poll
/// driver), as corio's own test suite does.
///
/// ```
/// #[corio::test(both_drivers)]
/// async fn sleeps() {
///     corio::time::sleep(std::time::Duration::from_millis(1)).await;
/// }
/// # fn main() {}
/// ```
///
/// ```compile_fail
/// #[corio::test(both)] // error: unknown option `both`: write `both_drivers` or ...
/// async fn t() {}
/// # fn main() {}
/// ```
///
/// ```compile_fail
/// #[corio::test]
/// fn t() {} // error: needs an async function: write `async fn t()`
/// # fn main() {}
/// ```
pub use corio_macros::test;

/// Waits for the first of several futures to complete, drops the others,
/// and runs that branch's handler.
///
/// ```text
/// corio::select! {
///     [biased;]
///     pattern = future [, if condition] => handler,
///     ...
///     [else => handler,]
/// }
/// ```
///
/// The conditions are evaluated first (a false one disables its branch),
/// then every future expression, in order. The enabled futures are polled,
/// starting from a random branch (or in order after `biased;`), until one
/// completes: its branch is then disabled, and if its output matches the
/// pattern the other futures are dropped and the handler runs with the
/// pattern's bindings; if not, the others are polled on. When every branch
/// is disabled the `else` handler runs (without one: a panic). Handlers run
/// after the futures are dropped and outside any closure, so they may
/// borrow what the futures borrowed, and `return`, `?`, `break` and
/// `continue` act on the surrounding code. The value of `select!` is the
/// handler's. Patterns bind by value; write `x` and then `let mut x = x;`
/// rather than `mut x` inside a larger pattern.
///
/// ```
/// use std::time::Duration;
///
/// use corio::sync::mpsc;
///
/// corio::run(async {
///     let (tx, mut rx) = mpsc::channel::<u32>(4);
///     corio::spawn(async move { tx.send(7).await.unwrap() });
///     let got = corio::select! {
///         Some(v) = rx.recv() => v,
///         _ = corio::time::sleep(Duration::from_secs(5)) => 0,
///     };
///     assert_eq!(got, 7);
/// });
/// ```
///
/// # Cancel safety
///
/// A `select!` in a loop drops the losing futures on every turn, so each
/// branch's future must be *cancel-safe*: dropping it before it completes
/// must lose nothing. What corio's calls do when dropped:
///
/// | Call | Cancel-safe? |
/// |---|---|
/// | `TcpStream::read`, `OwnedReadHalf::read`, `recv_pooled`, `UdpSocket::recv`/`recv_from` | yes: data that arrives for a dropped call is returned by the next |
/// | `TcpListener::accept`, `Incoming::next` (and its `Stream`) | yes: a connection accepted for a dropped call goes to the next |
/// | `TlsStream::read` | yes |
/// | `BufReader::read_line`, `read_until`, `fill_buf`, `Lines::next_line` (and its `Stream`) | yes: nothing is consumed until a line is whole |
/// | `mpsc`/`broadcast`/`watch` receives (`recv`, `changed`, their `Stream`s), `oneshot::Receiver` | yes |
/// | `Mutex::lock`, `RwLock::read`/`write`, `Semaphore::acquire*`, `Notify::notified`, `Event::wait`, `Barrier::wait` | yes: what was handed to a dropped call passes to the next waiter |
/// | `time::sleep`, `Interval::tick` | yes (a tick is not lost) |
/// | `JoinHandle` (awaiting a task) | yes: the task runs on |
/// | `mpsc::Sender::send` | the message is dropped with the future, no slot is lost |
/// | `write`, `write_all`, `send`, `send_to` (TCP, UDP, TLS), `BufWriter` flushes, `io::copy` | no: part of the data may have been sent (a TLS stream then refuses to send more) |
/// | `read_exact` (TCP, TLS, `OwnedRead`) | no: bytes read into the dropped buffer are lost |
/// | `TcpStream::connect`, `TlsConnector::connect`, `TlsAcceptor::accept` | no: the connection or handshake is abandoned |
/// | `fs` reads and writes | no for writes; a read's data is lost with its buffer |
///
/// To use a call that is not cancel-safe in a loop, create its future once
/// outside the loop and select on `&mut fut` (pinned):
///
/// ```
/// use std::pin::pin;
/// use std::time::Duration;
///
/// corio::run(async {
///     let mut work = pin!(corio::time::sleep(Duration::from_millis(5)));
///     let mut ticks = 0;
///     loop {
///         corio::select! {
///             _ = &mut work => break,
///             _ = corio::time::sleep(Duration::from_millis(1)) => ticks += 1,
///         }
///     }
///     assert!(ticks >= 1);
/// });
/// ```
pub use corio_macros::select;

/// Waits for every future and returns their outputs as a tuple, in order.
///
/// The futures run concurrently within the calling task (no task is
/// spawned): each poll of `join!` polls each one that has not finished.
/// Dropping `join!` drops them all.
///
/// ```
/// corio::run(async {
///     let (a, b) = corio::join!(async { 1 }, async { "two" });
///     assert_eq!((a, b), (1, "two"));
/// });
/// ```
pub use corio_macros::join;

/// Like [`join!`] for futures that yield `Result<T, E>` (the same `E`):
/// `Ok` of the tuple of values, or the first `Err`, dropping the others.
///
/// ```
/// corio::run(async {
///     let r: Result<(u8, u8), &str> =
///         corio::try_join!(async { Ok(1) }, async { Err("no") });
///     assert_eq!(r, Err("no"));
/// });
/// ```
pub use corio_macros::try_join;
