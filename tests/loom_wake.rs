//! A loom model of the cross-thread wake-up path (`runtime/executor.rs`,
//! `runtime/core.rs`, the drivers' unparkers): every interleaving of a
//! runtime that parks and threads that wake its tasks ends with every task
//! run — no wake-up is lost, and the runtime never sleeps with work queued.
//!
//! The protocol, as built: a waker pushes the task onto the runtime's remote
//! queue, then `parked.swap(false)`; only if it was set does it write the
//! eventfd. The runtime raises `parked`, checks the remote queue (and its
//! main future's flag) once more, and only then waits in the kernel for a
//! completion — the eventfd read it keeps in flight — lowering `parked` as
//! soon as the wait ends. Every write of `parked` and of the main future's
//! flag is a read-modify-write, in the model as in the runtime, and the
//! check of the flag after the raise is a plain acquire load: the raise
//! reads the waker's swap of `parked` (or an RMW after it), which orders the
//! waker's writes before the check. The protocol rests on acquire/release
//! alone, which loom checks (loom models SeqCst as acquire/release and lets
//! an RMW read a value a concurrent plain store has overwritten, loom issues
//! #254 and #282; with a plain store lowering `parked` it finds a deadlock,
//! and a real one: a waker's swap may read the value before the lowering).
//! Without the check of the flag, `two_wakers_and_the_main_future`
//! deadlocks. The model keeps
//! the atomics and their orderings and stands in for the queue, the eventfd
//! and the kernel's wait with loom types (the remote queue by a mutex: the
//! real one is concurrent-queue's, whose push and emptiness check are SeqCst).
//!
//! Built and run only with `RUSTFLAGS="--cfg corio_loom"`:
//! `RUSTFLAGS="--cfg corio_loom" cargo test --release --test loom_wake`
//! (scripts/sanitizers.sh does).
#![cfg(corio_loom)]

use std::collections::VecDeque;

use loom::sync::atomic::{AtomicBool, Ordering};
use loom::sync::{Arc, Condvar, Mutex};
use loom::thread;

/// The eventfd and the kernel's wait on it: a counter, a blocking read.
#[derive(Default)]
struct EventFd {
    count: Mutex<u64>,
    ready: Condvar,
}

impl EventFd {
    fn write(&self) {
        *self.count.lock().unwrap() += 1;
        self.ready.notify_one();
    }

    /// The park: waits until the counter is set, then takes it (the read
    /// kept in flight completes).
    fn wait(&self) {
        let mut c = self.count.lock().unwrap();
        while *c == 0 {
            c = self.ready.wait(c).unwrap();
        }
        *c = 0;
    }
}

struct Shared {
    /// Stands in for the lock-free remote queue (push and pop are atomic).
    remote: Mutex<VecDeque<u32>>,
    parked: AtomicBool,
    /// The main future's "woken" flag (`MainWaker`).
    main_woken: AtomicBool,
    eventfd: EventFd,
}

impl Shared {
    /// `Shared::unpark`.
    fn unpark(&self) {
        if self.parked.swap(false, Ordering::SeqCst) {
            self.eventfd.write();
        }
    }

    /// `Shared::schedule` from another thread.
    fn schedule(&self, task: u32) {
        self.remote.lock().unwrap().push_back(task);
        self.unpark();
    }

    /// `MainWaker::wake_by_ref`.
    fn wake_main(&self) {
        self.main_woken.swap(true, Ordering::SeqCst);
        self.unpark();
    }
}

/// The runtime's loop (`executor::block_on` and `park`) until it has run
/// `tasks` remote tasks and, with `main_wake`, seen its main future woken.
fn runtime(shared: &Shared, tasks: usize, main_wake: bool) {
    let mut ran = 0;
    let mut main_seen = !main_wake;
    loop {
        // A plain load first: the swap (a write) only when there is
        // something to clear, as in `block_on`.
        if shared.main_woken.load(Ordering::Acquire)
            && shared.main_woken.swap(false, Ordering::SeqCst)
        {
            main_seen = true;
        }
        while shared.remote.lock().unwrap().pop_front().is_some() {
            ran += 1;
        }
        if ran == tasks && main_seen {
            return;
        }
        // `executor::park`.
        shared.parked.swap(true, Ordering::SeqCst);
        if !shared.remote.lock().unwrap().is_empty() || shared.main_woken.load(Ordering::Acquire) {
            shared.parked.swap(false, Ordering::SeqCst);
            continue;
        }
        shared.eventfd.wait();
        shared.parked.swap(false, Ordering::SeqCst);
    }
}

fn shared() -> Arc<Shared> {
    Arc::new(Shared {
        remote: Mutex::new(VecDeque::new()),
        parked: AtomicBool::new(false),
        main_woken: AtomicBool::new(false),
        eventfd: EventFd::default(),
    })
}

#[test]
fn a_remote_wake_is_never_lost() {
    loom::model(|| {
        let s = shared();
        let waker = {
            let s = s.clone();
            thread::spawn(move || s.schedule(1))
        };
        runtime(&s, 1, false);
        waker.join().unwrap();
    });
}

#[test]
fn two_wakers_and_the_main_future() {
    loom::model(|| {
        let s = shared();
        let a = {
            let s = s.clone();
            thread::spawn(move || s.schedule(1))
        };
        let b = {
            let s = s.clone();
            thread::spawn(move || s.wake_main())
        };
        runtime(&s, 1, true);
        a.join().unwrap();
        b.join().unwrap();
    });
}

#[test]
fn one_waker_twice() {
    loom::model(|| {
        let s = shared();
        let a = {
            let s = s.clone();
            thread::spawn(move || {
                s.schedule(1);
                s.schedule(2);
            })
        };
        runtime(&s, 2, false);
        a.join().unwrap();
    });
}
