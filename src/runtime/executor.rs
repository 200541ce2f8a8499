//! The run loop (`block_on`) and shutdown.
//!
//! How it works: each tick polls the main future if it was woken, runs up to
//! `tick_tasks` queued tasks, moves remotely woken tasks to the local queue,
//! fires due timers, then calls the driver exactly once: `submit_and_reap`
//! (no waiting) when anything is runnable, or `park` (submit and wait for a
//! completion, the next timer or a remote wake-up) when nothing is. The
//! `parked` flag is raised before the last check of the remote queue and the
//! main future's flag, so a wake from another thread is never lost. Every
//! write of `parked` is a read-modify-write (the raise, the lowering after
//! the wait, a waker's swap): `parked` then has one chain of updates, so the
//! hand-off holds with acquire/release alone — a waker's swap either sees
//! `parked` raised and signals, or is read (itself or through the RMWs
//! after it) by the runtime's raise, which therefore sees what the waker
//! wrote before it: the queued task, the main future's flag. That last
//! check of the flag is a plain acquire load for that reason (a locked
//! instruction less per park, ~7 ns a NOP round trip). This rests on
//! acquire/release, not on the SeqCst store-then-load order, which loom
//! cannot check (it models SeqCst as acquire/release, and lets an RMW read
//! a store that a concurrent plain store overwrote: loom issues #254,
//! #282); `tests/loom_wake.rs` models exactly this. A plain store for the
//! lowering would break it (a waker's swap could read the value before the
//! lowering and the next raise read the lowering: no hand-off; the model
//! finds that deadlock). On x86 each RMW is an `xchg`: two locked
//! instructions per park. With
//! `Builder::spin_before_park`, the thread first looks for completions and
//! remote wake-ups for a while without sleeping. While a graceful shutdown
//! is on (`drain.rs`), each tick also runs the drain's step and a park lasts
//! no longer than its deadline.

use std::future::Future;
use std::panic::Location;
use std::pin::pin;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use super::context;
use super::core::{Core, Shared};
use crate::trace;

/// Waker of the future passed to `block_on`.
struct MainWaker {
    woken: AtomicBool,
    shared: Arc<Shared>,
}

impl Wake for MainWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.swap(true, Ordering::SeqCst);
        // Signals only a thread blocked in the kernel: the driver lowers
        // `parked` as soon as its wait returns, so completions it reaps
        // afterwards wake this future without a syscall.
        self.shared.unpark();
    }
}

/// Sends the MSG_RING wake-ups the thread queued when it leaves `block_on`
/// (returning or unwinding): no next tick would submit them.
struct FlushWakes<'a>(&'a Core);

impl Drop for FlushWakes<'_> {
    fn drop(&mut self) {
        // Never inside the driver: a panic there has released its borrow
        // by the time this guard's frame unwinds.
        self.0.driver.borrow_mut().flush_wakes();
    }
}

pub(super) fn block_on<F: Future>(
    core: &Rc<Core>,
    future: F,
    location: &'static Location<'static>,
) -> F::Output {
    let _guard = context::enter(core.clone());
    let _flush = FlushWakes(core);
    let main = Arc::new(MainWaker {
        woken: AtomicBool::new(true),
        shared: core.shared.clone(),
    });
    let waker = Waker::from(main.clone());
    let mut cx = Context::from_waker(&waker);
    let mut future = pin!(future);
    loop {
        // A load first: most ticks find the flag down, and a load is no
        // write (a wake it misses is seen by `park`'s last check).
        if main.woken.load(Ordering::Acquire) && main.woken.swap(false, Ordering::SeqCst) {
            core.budget.set(core.budget_max);
            core.counters.task_polled();
            let polled = match &core.watch {
                Some(w) => w.run_main(location, core.shard_index(), || {
                    future.as_mut().poll(&mut cx)
                }),
                _ => future.as_mut().poll(&mut cx),
            };
            if let Poll::Ready(out) = polled {
                return out;
            }
        }
        run_tasks(core);
        fire_timers(core);
        if core.shared.drain.started() && drain_tick(core, drop_all_tasks) {
            main.woken.store(true, Ordering::SeqCst);
        }
        if core.queue.is_empty() && !main.woken.load(Ordering::SeqCst) {
            park(core, &main.woken);
        } else {
            core.driver.borrow_mut().submit_and_reap();
        }
    }
}

/// Runs up to `tick_tasks` queued tasks, after pulling in remote wake-ups.
fn run_tasks(core: &Core) {
    drain_remote(core);
    // Observation is checked once per tick, not once per task: without it
    // the loop is the plain one.
    match &core.watch {
        None => {
            for _ in 0..core.tick_tasks {
                let next = core.queue.pop_front();
                let Some(runnable) = next else { break };
                core.budget.set(core.budget_max);
                core.counters.task_polled();
                runnable.run();
            }
        }
        Some(w) => run_watched(core, w),
    }
}

/// `run_tasks` with stall detection or task tracking on.
#[cold]
#[inline(never)]
fn run_watched(core: &Core, w: &super::observe::Watch) {
    for _ in 0..core.tick_tasks {
        let next = core.queue.pop_front();
        let Some(runnable) = next else { break };
        core.budget.set(core.budget_max);
        core.counters.task_polled();
        w.run(runnable, core.shard_index(), &core.tracked, &core.tasks);
    }
}

/// Moves remote wake-ups to the local queue. The check is inlined into each
/// tick; the drain, rarer, is not.
#[inline(always)]
fn drain_remote(core: &Core) {
    if !core.shared.remote.is_empty() {
        drain_remote_queue(core);
    }
}

#[inline(never)]
fn drain_remote_queue(core: &Core) {
    while let Ok(r) = core.shared.remote.pop() {
        core.queue.push_back(r);
    }
}

fn fire_timers(core: &Core) {
    let mut timers = core.timers.borrow_mut();
    if timers.next_deadline().is_some() {
        timers.fire_expired(Instant::now());
    }
}

/// Waits in the kernel until a completion, a remote wake or the next timer.
fn park(core: &Core, main_woken: &AtomicBool) {
    if !core.spin.is_zero() && spin(core, main_woken) {
        return;
    }
    core.shared.parked.swap(true, Ordering::SeqCst);
    // Plain loads suffice after the raise (module doc): a waker whose swap
    // of `parked` this raise read wrote its task or flag before it.
    if !core.shared.remote.is_empty() || main_woken.load(Ordering::Acquire) {
        core.shared.parked.swap(false, Ordering::SeqCst);
        core.driver.borrow_mut().submit_and_reap();
        return;
    }
    let mut wake_at = core.timers.borrow().next_deadline();
    if core.shared.drain.started()
        && let Some(deadline) = core.shared.drain.deadline()
    {
        wake_at = Some(wake_at.map_or(deadline, |t| t.min(deadline)));
    }
    let timeout = wake_at.map(|d| d.saturating_duration_since(Instant::now()));
    trace::park(timeout);
    core.driver
        .borrow_mut()
        .park(timeout, &core.shared.parked, || !core.queue.is_empty());
    // The driver lowered `parked` as its wait ended (both drivers, on every
    // path of `Driver::park`), as `tests/loom_wake.rs` models it.
    trace::unpark();
}

/// Looks for work without sleeping for up to `spin_before_park` (less if a
/// timer is due sooner); true when a task became runnable.
fn spin(core: &Core, main_woken: &AtomicBool) -> bool {
    // `None`: a spin too long to add to an instant, bounded only by timers.
    let mut deadline = Instant::now().checked_add(core.spin);
    if let Some(t) = core.timers.borrow().next_deadline() {
        deadline = Some(deadline.map_or(t, |d| d.min(t)));
    }
    // Hand the kernel what the tasks queued: its completions are what we
    // are waiting for.
    core.driver.borrow_mut().submit_and_reap();
    let mut spun = false;
    loop {
        if !core.queue.is_empty()
            || !core.shared.remote.is_empty()
            || main_woken.load(Ordering::SeqCst)
        {
            if spun {
                core.counters.spin_hit();
            }
            return true;
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return false;
        }
        core.driver.borrow_mut().reap_ready();
        std::hint::spin_loop();
        spun = true;
    }
}

/// Drops every task on this thread, then waits until the kernel has finished
/// with every op (rule 7 of the design).
pub(super) fn shutdown(core: &Rc<Core>) {
    let _guard = context::swap(core.clone());
    drop_all_tasks(core);
    core.driver.borrow_mut().shutdown();
    // Tasks from `spawn_on` may still arrive; from now on they are dropped
    // by the scheduler, and those already queued are dropped here.
    core.shared.closed.store(true, Ordering::SeqCst);
    // Pairs with the one in `Shared::schedule_remote`: a push this drain
    // misses sees `closed` there and is dropped by its sender.
    std::sync::atomic::fence(Ordering::SeqCst);
    drain_remote(core);
    loop {
        let next = core.queue.pop_front();
        let Some(runnable) = next else { break };
        drop(runnable);
    }
    // Whoever waits for a graceful shutdown of this runtime is done.
    core.shared.drain.finish();
}

/// Drops every live task (at shutdown, or at a graceful shutdown's deadline).
fn drop_all_tasks(core: &Core) {
    // Waking a registered task queues its runnable (or does nothing if it is
    // already queued); dropping a runnable drops the future. A wake racing
    // in from another thread may still be on its way to the remote queue, so
    // repeat until no task is left.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        wake_all_tasks(core);
        drain_remote(core);
        loop {
            let next = core.queue.pop_front();
            let Some(runnable) = next else { break };
            drop(runnable);
        }
        if core.tasks.borrow().is_empty() || Instant::now() > deadline {
            break;
        }
        std::thread::yield_now();
    }
}

/// The drain's step at the end of a tick (see [`Drain::step`]); true when
/// the main future must be polled.
///
/// [`Drain::step`]: super::drain::Drain::step
fn drain_tick(core: &Core, drop_tasks: impl FnOnce(&Core)) -> bool {
    core.shared.drain.step(
        || wake_all_tasks(core),
        || drop_tasks(core),
        || core.tasks.borrow().len(),
        || core.queue.is_empty() && core.shared.remote.is_empty(),
    )
}

/// Wakes every live task (the wakers are cloned first: a wake may run code
/// that registers or drops tasks).
fn wake_all_tasks(core: &Core) {
    let wakers: Vec<Waker> = core
        .tasks
        .borrow()
        .iter()
        .map(|(_, (w, _))| w.clone())
        .collect();
    for w in wakers {
        w.wake();
    }
}
