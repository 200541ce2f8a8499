//! [`CorioTimer`]: hyper's timeouts on corio's timers.
//!
//! How it works: hyper asks for sleeps that are `Send + Sync`, while corio's
//! [`Sleep`] belongs to the runtime of the thread that first polls it.
//! [`CorioSleep`] wraps one and remembers that thread: it may be created and
//! moved anywhere, but polling it on another thread than its first poll is
//! a bug that panics with a message (hyper's connections run in corio tasks,
//! which never change threads). If it is dropped on another thread, the
//! inner sleep is leaked rather than touched there.

use std::future::Future;
use std::mem::ManuallyDrop;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::thread::{self, ThreadId};
use std::time::{Duration, Instant};

use ::hyper::rt::{Sleep as HyperSleep, Timer};

use crate::time::{Sleep, sleep, sleep_until};

/// A [`hyper::rt::Timer`] on the current corio runtime's timers.
///
/// Give it to hyper's builders (`.timer(CorioTimer)`) for
/// `header_read_timeout`, HTTP/2 keep-alive pings, and the client's pool
/// timeouts. The sleeps it makes must be polled on a corio runtime's thread.
#[derive(Debug, Clone, Copy, Default)]
pub struct CorioTimer;

impl Timer for CorioTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn HyperSleep>> {
        Box::pin(CorioSleep::new(sleep(duration)))
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn HyperSleep>> {
        Box::pin(CorioSleep::new(sleep_until(deadline)))
    }

    fn reset(&self, sleep: &mut Pin<Box<dyn HyperSleep>>, new_deadline: Instant) {
        match sleep.as_mut().downcast_mut_pin::<CorioSleep>() {
            Some(s) => s.get_mut().reset(new_deadline),
            None => *sleep = self.sleep_until(new_deadline),
        }
    }
}

/// The sleep [`CorioTimer`] makes: a corio [`Sleep`] that hyper may hold in
/// `Send + Sync` types.
///
/// # Panics
///
/// Polling it on another thread than the one that first polled it panics.
#[derive(Debug)]
pub struct CorioSleep {
    inner: ManuallyDrop<Sleep>,
    /// The thread of the first poll (where the sleep registered its timer).
    owner: Option<ThreadId>,
}

// SAFETY: the only thread-bound state is the `Rc` of the runtime inside
// `inner`, set by the first poll. From then on `inner` is only touched on
// `owner`'s thread: `poll` and `reset` panic elsewhere (before touching it),
// and `drop` leaks it elsewhere. Before the first poll `inner` holds no
// `Rc` (a deadline only), so moving it between threads is fine.
unsafe impl Send for CorioSleep {}
// SAFETY: no method reads `inner` through a shared reference.
unsafe impl Sync for CorioSleep {}

impl CorioSleep {
    fn new(inner: Sleep) -> CorioSleep {
        CorioSleep {
            inner: ManuallyDrop::new(inner),
            owner: None,
        }
    }

    /// Claims `inner` for this thread, or panics if another thread did.
    fn claim(&mut self) -> &mut Sleep {
        let me = thread::current().id();
        match self.owner {
            None => self.owner = Some(me),
            Some(owner) if owner == me => {}
            Some(_) => panic!(
                "corio: a CorioTimer sleep was polled on another thread than its first poll; \
                 run hyper connections that use CorioTimer in corio tasks (corio::spawn)"
            ),
        }
        &mut self.inner
    }

    /// Moves the deadline (the sleep becomes pending again if it was done).
    pub fn reset(&mut self, deadline: Instant) {
        self.claim().reset(deadline);
    }

    /// The instant this sleep completes at.
    pub fn deadline(&self) -> Instant {
        self.inner.deadline()
    }
}

impl Future for CorioSleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        Pin::new(self.get_mut().claim()).poll(cx)
    }
}

impl HyperSleep for CorioSleep {}

impl Drop for CorioSleep {
    fn drop(&mut self) {
        match self.owner {
            Some(owner) if owner != thread::current().id() => {
                // Leaked: its runtime is on another thread.
            }
            // SAFETY: `inner` is dropped once, here, on its own thread (or
            // it never registered with a runtime).
            _ => unsafe { ManuallyDrop::drop(&mut self.inner) },
        }
    }
}
