//! The process-wide signal registry: the handler, the wake-up eventfd, the
//! listeners of each signal and the dispositions to restore.
//!
//! How it works: the first listener of a signal installs [`handler`] with
//! sigaction(2) and keeps the previous disposition; the last one to go puts
//! it back. The handler does only async-signal-safe work: it raises the
//! signal's `PENDING` flag and adds 1 to a process-wide eventfd (made once,
//! never closed). Listeners keep a read of that eventfd in flight in their
//! runtime's driver; whichever read takes the counter (on any runtime or
//! shard) calls [`dispatch`], which turns each raised flag into a new
//! generation of that signal and wakes every listener waiting for it,
//! wherever it runs. A listener has seen a delivery when the generation
//! moved past the one it saw last, so deliveries that arrive while nobody
//! waits are not lost (several of them coalesce into one).

use std::io;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::task::Waker;

use slab::Slab;

/// Signal numbers go up to `SIGRTMAX` (64 on Linux).
pub(crate) const MAX_SIGNAL: usize = 64;

/// Raised by the handler, lowered by `dispatch`.
static PENDING: [AtomicBool; MAX_SIGNAL + 1] = [const { AtomicBool::new(false) }; MAX_SIGNAL + 1];

/// Deliveries dispatched so far, per signal.
static GENERATION: [AtomicU64; MAX_SIGNAL + 1] = [const { AtomicU64::new(0) }; MAX_SIGNAL + 1];

/// The eventfd the handler writes to (-1 until made).
static WAKE_FD: AtomicI32 = AtomicI32::new(-1);

/// Listeners and saved dispositions, per signal.
static SLOTS: Mutex<Vec<Slot>> = Mutex::new(Vec::new());

#[derive(Default)]
struct Slot {
    /// One entry per live listener: the waker of its pending `recv`.
    listeners: Slab<Option<Waker>>,
    /// The disposition before the first listener, restored after the last.
    previous: Option<libc::sigaction>,
}

/// The signal handler: async-signal-safe (atomics and write(2) only).
extern "C" fn handler(signal: libc::c_int) {
    // SAFETY: reading this thread's errno location is async-signal-safe.
    let errno = unsafe { *libc::__errno_location() };
    if let Some(flag) = usize::try_from(signal).ok().and_then(|s| PENDING.get(s)) {
        flag.store(true, Ordering::SeqCst);
    }
    let fd = WAKE_FD.load(Ordering::SeqCst);
    if fd >= 0 {
        let one: u64 = 1;
        // SAFETY: write(2) is async-signal-safe; the eventfd is never closed
        // and non-blocking, and `one` is 8 readable bytes.
        unsafe { libc::write(fd, (&one as *const u64).cast(), 8) };
    }
    // SAFETY: as above; the interrupted code must not see our errno.
    unsafe { *libc::__errno_location() = errno };
}

/// The process-wide eventfd, made on first use.
fn wake_fd() -> io::Result<BorrowedFd<'static>> {
    static FD: OnceLock<OwnedFd> = OnceLock::new();
    if FD.get().is_none() {
        // SAFETY: eventfd(2) with no pointers.
        let raw = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a new fd that we own.
        let fd = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(raw) };
        // A racing thread may have set it first: then ours is dropped.
        let _ = FD.set(fd);
    }
    let fd = FD.get().expect("set above");
    WAKE_FD.store(std::os::fd::AsRawFd::as_raw_fd(fd), Ordering::SeqCst);
    use std::os::fd::AsFd;
    Ok(fd.as_fd())
}

/// A new fd for the process-wide eventfd, for one listener's reads.
pub(crate) fn dup_wake_fd() -> io::Result<OwnedFd> {
    wake_fd()?.try_clone_to_owned()
}

/// Signals a handler must never take over: the kernel refuses some, and a
/// handler that returns would loop on the others (faults).
fn forbidden(signal: i32) -> bool {
    [
        libc::SIGKILL,
        libc::SIGSTOP,
        libc::SIGILL,
        libc::SIGFPE,
        libc::SIGSEGV,
        libc::SIGBUS,
    ]
    .contains(&signal)
}

/// Registers a listener of `signal` (installing the handler for the first
/// one); returns its key and the generation it starts from.
pub(crate) fn register(signal: i32) -> io::Result<(usize, u64)> {
    let index = usize::try_from(signal)
        .ok()
        .filter(|&s| (1..=MAX_SIGNAL).contains(&s) && !forbidden(signal))
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("corio: signal {signal} cannot be listened for"),
            )
        })?;
    wake_fd()?;
    let mut slots = SLOTS.lock().unwrap_or_else(|e| e.into_inner());
    if slots.len() <= MAX_SIGNAL {
        slots.resize_with(MAX_SIGNAL + 1, Slot::default);
    }
    let slot = &mut slots[index];
    if slot.previous.is_none() {
        slot.previous = Some(install(signal)?);
    }
    let key = slot.listeners.insert(None);
    Ok((key, GENERATION[index].load(Ordering::SeqCst)))
}

/// Forgets a listener; the last one restores the previous disposition.
pub(crate) fn unregister(signal: i32, key: usize) {
    let mut slots = SLOTS.lock().unwrap_or_else(|e| e.into_inner());
    let slot = &mut slots[signal as usize];
    slot.listeners.try_remove(key);
    if slot.listeners.is_empty()
        && let Some(previous) = slot.previous.take()
    {
        // SAFETY: `previous` is what sigaction(2) returned for this signal.
        unsafe { libc::sigaction(signal, &previous, std::ptr::null_mut()) };
    }
}

/// Installs the handler for `signal`; returns the previous disposition.
fn install(signal: i32) -> io::Result<libc::sigaction> {
    // SAFETY: sigaction is plain data; all-zero is a valid starting point.
    let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
    action.sa_sigaction = handler as *const () as libc::sighandler_t;
    action.sa_flags = libc::SA_RESTART | libc::SA_ONSTACK;
    // SAFETY: sigemptyset on our own set; sigaction with valid pointers.
    let mut previous: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    let res = unsafe {
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaction(signal, &action, &mut previous)
    };
    if res < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(previous)
}

/// The generation of `signal`: how many deliveries were dispatched.
pub(crate) fn generation(signal: i32) -> u64 {
    GENERATION[signal as usize].load(Ordering::SeqCst)
}

/// Stores the waker of listener `key`'s pending `recv`.
pub(crate) fn set_waker(signal: i32, key: usize, waker: &Waker) {
    let mut slots = SLOTS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(w) = slots[signal as usize].listeners.get_mut(key)
        && !w.as_ref().is_some_and(|w| w.will_wake(waker))
    {
        *w = Some(waker.clone());
    }
}

/// Turns every raised flag into a delivery and wakes its listeners. Called
/// by whoever read the eventfd's counter (`_count` is only what it read).
pub(crate) fn dispatch(_count: u64) {
    let mut wake = Vec::new();
    for signal in 1..=MAX_SIGNAL {
        if !PENDING[signal].swap(false, Ordering::SeqCst) {
            continue;
        }
        GENERATION[signal].fetch_add(1, Ordering::SeqCst);
        let mut slots = SLOTS.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(slot) = slots.get_mut(signal) {
            wake.extend(slot.listeners.iter_mut().filter_map(|(_, w)| w.take()));
        }
    }
    for w in wake {
        w.wake();
    }
}
