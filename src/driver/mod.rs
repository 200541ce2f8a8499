//! The driver: owns in-flight I/O and parks the thread.
//!
//! How it works: a runtime has one [`Driver`], chosen at run time: io_uring
//! (`uring.rs`, a completion driver) where the kernel allows it, or a
//! readiness driver on mio (`poll.rs`) everywhere else. Selection follows the
//! builder's [`DriverKind`], overridden by `CORIO_DRIVER=uring|poll`; `Auto`
//! falls back to poll when ring setup fails or the kernel's probe lacks an
//! opcode corio needs, and remembers why.

pub(crate) mod blocking;
mod poll;
#[cfg(corio_uring)]
pub(crate) mod setup;
#[cfg(corio_uring)]
mod uring;

use std::io;
use std::rc::Rc;
use std::time::Duration;

use crate::runtime::core::Core;
use crate::runtime::stats::Counters;
use crate::runtime::{Builder, RingFlags};

#[cfg(corio_uring)]
pub(crate) use uring::{Abandoned, Lifecycle, MultiOrphan, cqe_buffer};

/// Which driver a runtime uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum DriverKind {
    /// io_uring where available, else the poll driver (the default).
    #[default]
    Auto,
    /// io_uring; building fails where it is unavailable.
    Uring,
    /// The readiness driver (epoll/kqueue through mio).
    Poll,
}

/// The driver of one runtime.
// One per runtime, reached on every op: keep it inline rather than boxed.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub(crate) enum Driver {
    #[cfg(corio_uring)]
    Uring(uring::Driver),
    Poll(poll::Driver),
}

/// Wakes a parked runtime from any thread.
#[derive(Debug)]
pub(crate) enum Unparker {
    #[cfg(corio_uring)]
    Uring(uring::Unparker),
    Poll(poll::Unparker),
}

impl Unparker {
    pub(crate) fn unpark(&self) {
        match self {
            #[cfg(corio_uring)]
            Unparker::Uring(u) => u.unpark(),
            Unparker::Poll(u) => u.unpark(),
        }
    }

    /// True when the runtime accepts `IORING_OP_MSG_RING` wake-ups.
    pub(crate) fn by_ring(&self) -> bool {
        match self {
            #[cfg(corio_uring)]
            Unparker::Uring(u) => u.by_ring(),
            Unparker::Poll(_) => false,
        }
    }
}

/// A built driver, its unparker, and why `Auto` fell back, if it did.
pub(crate) struct Selected {
    pub(crate) driver: Driver,
    pub(crate) unparker: Unparker,
    pub(crate) fallback: Option<String>,
}

/// The kind requested by `CORIO_DRIVER`, if set to a known value.
fn env_kind() -> io::Result<Option<DriverKind>> {
    match std::env::var("CORIO_DRIVER") {
        Err(_) => Ok(None),
        Ok(v) => match v.as_str() {
            "" | "auto" => Ok(Some(DriverKind::Auto)),
            "uring" | "io_uring" => Ok(Some(DriverKind::Uring)),
            "poll" => Ok(Some(DriverKind::Poll)),
            other => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("corio: CORIO_DRIVER={other:?} is not one of uring, poll, auto"),
            )),
        },
    }
}

impl Driver {
    /// Builds the driver the builder (or `CORIO_DRIVER`) asks for.
    pub(crate) fn select(b: &Builder, counters: &Rc<Counters>) -> io::Result<Selected> {
        let kind = env_kind()?.unwrap_or(b.driver);
        match kind {
            DriverKind::Poll => Self::new_poll(b, None),
            #[cfg(corio_uring)]
            DriverKind::Uring => {
                let (d, u) = uring::Driver::new(b, counters.clone())?;
                Ok(Selected {
                    driver: Driver::Uring(d),
                    unparker: Unparker::Uring(u),
                    fallback: None,
                })
            }
            #[cfg(not(corio_uring))]
            DriverKind::Uring => Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "corio: io_uring is not available on this platform (or this build)",
            )),
            #[cfg(corio_uring)]
            DriverKind::Auto => match uring::Driver::new(b, counters.clone()) {
                Ok((d, u)) => Ok(Selected {
                    driver: Driver::Uring(d),
                    unparker: Unparker::Uring(u),
                    fallback: None,
                }),
                // io_uring works but refuses a flag the user asked for.
                Err(e) if setup::is_knob_refusal(&e) => Err(e),
                Err(e) => Self::new_poll(b, Some(format!("io_uring unavailable: {e}"))),
            },
            #[cfg(not(corio_uring))]
            DriverKind::Auto => {
                let _ = counters;
                Self::new_poll(
                    b,
                    Some("io_uring is not built for this platform".to_string()),
                )
            }
        }
    }

    /// What `Auto` picks on this machine with default settings (ignoring
    /// `CORIO_DRIVER`), why, and the ring it gets.
    pub(crate) fn auto_choice() -> (DriverKind, String, Option<RingFlags>) {
        #[cfg(corio_uring)]
        match uring::Driver::new(&Builder::new(), Rc::default()) {
            Ok((d, _)) => (
                DriverKind::Uring,
                "io_uring_setup succeeded and the kernel has every opcode corio needs".into(),
                Some(d.ring_flags()),
            ),
            Err(e) => (DriverKind::Poll, format!("io_uring unavailable: {e}"), None),
        }
        #[cfg(not(corio_uring))]
        (
            DriverKind::Poll,
            "io_uring is not built for this platform (or this build)".into(),
            None,
        )
    }

    fn new_poll(b: &Builder, fallback: Option<String>) -> io::Result<Selected> {
        let (d, u) = poll::Driver::new(b.max_completions_per_tick)?;
        Ok(Selected {
            driver: Driver::Poll(d),
            unparker: Unparker::Poll(u),
            fallback,
        })
    }

    /// The kind actually running (never `Auto`).
    pub(crate) fn kind(&self) -> DriverKind {
        match self {
            #[cfg(corio_uring)]
            Driver::Uring(_) => DriverKind::Uring,
            Driver::Poll(_) => DriverKind::Poll,
        }
    }

    /// Submits and reaps without waiting.
    pub(crate) fn submit_and_reap(&mut self, core: &Core) {
        match self {
            #[cfg(corio_uring)]
            Driver::Uring(d) => d.submit_and_reap(core),
            Driver::Poll(d) => d.turn(core, Some(Duration::ZERO)),
        }
    }

    /// Reaps what is ready without waiting, entering the kernel only when it
    /// holds completions back (io_uring); on the poll driver, a turn with a
    /// zero timeout.
    pub(crate) fn reap_ready(&mut self, core: &Core) {
        match self {
            #[cfg(corio_uring)]
            Driver::Uring(d) => d.reap_ready(core),
            Driver::Poll(d) => d.turn(core, Some(Duration::ZERO)),
        }
    }

    /// The io_uring setup, `None` on the poll driver.
    pub(crate) fn ring_flags(&self) -> Option<RingFlags> {
        match self {
            #[cfg(corio_uring)]
            Driver::Uring(d) => Some(d.ring_flags()),
            Driver::Poll(_) => None,
        }
    }

    /// Waits for I/O, a remote wake-up, or at most `timeout`.
    pub(crate) fn park(&mut self, core: &Core, timeout: Option<Duration>) {
        match self {
            #[cfg(corio_uring)]
            Driver::Uring(d) => d.park(core, timeout),
            Driver::Poll(d) => d.turn(core, timeout),
        }
    }

    /// Queues an `IORING_OP_MSG_RING` on this ring that wakes the runtime
    /// behind `target`; false when that cannot be done (poll driver, no
    /// MSG_RING here, the target does not accept them): write its eventfd.
    pub(crate) fn send_wake(&mut self, target: &Unparker) -> bool {
        match (self, target) {
            #[cfg(corio_uring)]
            (Driver::Uring(d), Unparker::Uring(t)) => d.send_wake(t),
            _ => false,
        }
    }

    /// Submits the MSG_RING wake-ups still queued, if any.
    pub(crate) fn flush_wakes(&mut self) {
        match self {
            #[cfg(corio_uring)]
            Driver::Uring(d) => d.flush_wakes(),
            Driver::Poll(_) => {}
        }
    }

    /// Finishes or cancels everything in flight before the runtime goes away.
    pub(crate) fn shutdown(&mut self, core: &Core) {
        match self {
            #[cfg(corio_uring)]
            Driver::Uring(d) => d.shutdown(core),
            Driver::Poll(d) => d.shutdown(core),
        }
    }

    /// Registers fixed buffers with the ring for the owner `token` (see
    /// `uring::Driver::register_buffers`); the poll driver has nothing to
    /// register.
    ///
    /// # Safety
    ///
    /// As for `uring::Driver::register_buffers`.
    pub(crate) unsafe fn register_buffers(
        &mut self,
        iovecs: &[libc::iovec],
        token: std::rc::Weak<()>,
    ) -> io::Result<()> {
        match self {
            #[cfg(corio_uring)]
            // SAFETY: forwarded from the caller.
            Driver::Uring(d) => unsafe { d.register_buffers(iovecs, token) },
            Driver::Poll(_) => {
                let _ = (iovecs, token);
                Ok(())
            }
        }
    }

    /// True when the ring's fixed buffers are those registered for `token`.
    pub(crate) fn buffers_owned_by(&self, token: &std::rc::Weak<()>) -> bool {
        match self {
            #[cfg(corio_uring)]
            Driver::Uring(d) => d.buffers_owned_by(token),
            Driver::Poll(_) => {
                let _ = token;
                false
            }
        }
    }

    /// Unregisters the fixed buffers registered for `token`, if they are.
    pub(crate) fn unregister_buffers(&mut self, token: &std::rc::Weak<()>) {
        match self {
            #[cfg(corio_uring)]
            Driver::Uring(d) => d.unregister_buffers(token),
            Driver::Poll(_) => {
                let _ = token;
            }
        }
    }

    /// The io_uring driver; only called by ops on a runtime that has it.
    #[cfg(corio_uring)]
    pub(crate) fn uring(&mut self) -> &mut uring::Driver {
        match self {
            Driver::Uring(d) => d,
            Driver::Poll(_) => unreachable!("corio: io_uring op on a poll-driver runtime"),
        }
    }

    /// The poll driver; only called by ops on a runtime that has it.
    pub(crate) fn poll(&mut self) -> &mut poll::Driver {
        match self {
            Driver::Poll(d) => d,
            #[cfg(corio_uring)]
            Driver::Uring(_) => unreachable!("corio: poll op on an io_uring runtime"),
        }
    }
}
