//! Loom models of `corio::sync`'s cross-thread algorithms: the semaphore
//! every lock is built on (`sync/sem.rs`: permits and a `WAITERS` flag in
//! one word, a FIFO queue under a lock) and the bounded mpsc channel
//! (`sync/mpsc/chan.rs`: slots handed to the oldest waiting sender). Every
//! interleaving must keep the permits and messages, wake every waiter that
//! was served, and never leave one asleep with what it waits for available.
//!
//! The models copy the algorithms with their atomic orderings and replace
//! wakers with a flag and `park`/`unpark`. Built and run only with
//! `RUSTFLAGS="--cfg corio_loom"`:
//! `RUSTFLAGS="--cfg corio_loom" cargo test --release --test loom_sync`
//! (scripts/sanitizers.sh does).
#![cfg(corio_loom)]

use std::collections::VecDeque;

use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use loom::sync::{Arc, Mutex};
use loom::thread;

/// A waker: a flag and the thread to unpark.
#[derive(Clone)]
struct Waker {
    woken: Arc<AtomicBool>,
    thread: thread::Thread,
}

impl Waker {
    fn current() -> Waker {
        Waker {
            woken: Arc::new(AtomicBool::new(false)),
            thread: thread::current(),
        }
    }

    fn wake(&self) {
        // An RMW, not a store: loom does not give `unpark`/`park` the
        // happens-before edge std documents, so a woken thread's swap could
        // miss a plain store (a false "deadlock"); an RMW reads the latest.
        self.woken.swap(true, Ordering::SeqCst);
        self.thread.unpark();
    }

    /// Blocks this (the waker's) thread until woken.
    fn wait(&self) {
        while !self.woken.swap(false, Ordering::SeqCst) {
            thread::park();
        }
    }
}

// ---- the semaphore (sync/sem.rs) ----

const WAITERS: usize = 1;
const SHIFT: usize = 2;

struct Node {
    id: usize,
    need: usize,
    waker: Waker,
}

#[derive(Default)]
struct Queue {
    waiting: VecDeque<Node>,
    granted: Vec<usize>,
}

struct Sem {
    state: AtomicUsize,
    waiters: Mutex<Queue>,
}

impl Sem {
    fn new(permits: usize) -> Sem {
        Sem {
            state: AtomicUsize::new(permits << SHIFT),
            waiters: Mutex::new(Queue::default()),
        }
    }

    fn try_acquire(&self, n: usize) -> bool {
        let mut s = self.state.load(Ordering::Acquire);
        loop {
            if s & WAITERS != 0 || s >> SHIFT < n {
                return false;
            }
            match self.state.compare_exchange(
                s,
                s - (n << SHIFT),
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return true,
                Err(actual) => s = actual,
            }
        }
    }

    /// `poll_acquire`'s first poll: true when acquired, else queued as `id`.
    fn acquire_or_queue(&self, id: usize, n: usize, waker: &Waker) -> bool {
        if self.try_acquire(n) {
            return true;
        }
        let mut w = self.waiters.lock().unwrap();
        let mut s = self.state.load(Ordering::Acquire);
        loop {
            let res = if s & WAITERS != 0 {
                Ok(s)
            } else if s >> SHIFT >= n {
                match self.state.compare_exchange(
                    s,
                    s - (n << SHIFT),
                    Ordering::AcqRel,
                    Ordering::Acquire,
                ) {
                    Ok(_) => return true,
                    Err(actual) => Err(actual),
                }
            } else {
                self.state
                    .compare_exchange(s, s | WAITERS, Ordering::AcqRel, Ordering::Acquire)
            };
            match res {
                Ok(_) => {
                    w.waiting.push_back(Node {
                        id,
                        need: n,
                        waker: waker.clone(),
                    });
                    return false;
                }
                Err(actual) => s = actual,
            }
        }
    }

    /// A later poll: true once granted (removes the node).
    fn granted(&self, id: usize) -> bool {
        let mut w = self.waiters.lock().unwrap();
        if let Some(i) = w.granted.iter().position(|&g| g == id) {
            w.granted.swap_remove(i);
            return true;
        }
        false
    }

    /// The future dropped while queued: gives back what it was granted.
    fn cancel(&self, id: usize, n: usize) {
        let mut wakers = Vec::new();
        let mut w = self.waiters.lock().unwrap();
        if let Some(i) = w.granted.iter().position(|&g| g == id) {
            w.granted.swap_remove(i);
            self.state.fetch_add(n << SHIFT, Ordering::AcqRel);
        } else if let Some(i) = w.waiting.iter().position(|nd| nd.id == id) {
            w.waiting.remove(i);
        }
        // Lets the waiters behind go, and clears `WAITERS` once none is left.
        self.grant_locked(&mut w, &mut wakers);
        drop(w);
        wakers.iter().for_each(Waker::wake);
    }

    fn release(&self, n: usize) {
        let prev = self.state.fetch_add(n << SHIFT, Ordering::AcqRel);
        if prev & WAITERS != 0 {
            let mut wakers = Vec::new();
            let mut w = self.waiters.lock().unwrap();
            self.grant_locked(&mut w, &mut wakers);
            drop(w);
            wakers.iter().for_each(Waker::wake);
        }
    }

    fn grant_locked(&self, w: &mut Queue, wakers: &mut Vec<Waker>) {
        let mut s = self.state.load(Ordering::Acquire);
        loop {
            if s & WAITERS == 0 {
                return;
            }
            let (mut count, mut total, mut avail) = (0, 0, s >> SHIFT);
            for node in &w.waiting {
                if node.need > avail {
                    break;
                }
                avail -= node.need;
                total += node.need;
                count += 1;
            }
            let mut new = s - (total << SHIFT);
            if count == w.waiting.len() {
                new &= !WAITERS;
            }
            if new == s {
                return;
            }
            match self
                .state
                .compare_exchange(s, new, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => {
                    for _ in 0..count {
                        let node = w.waiting.pop_front().unwrap();
                        w.granted.push(node.id);
                        wakers.push(node.waker);
                    }
                    return;
                }
                Err(actual) => s = actual,
            }
        }
    }

    fn permits(&self) -> usize {
        self.state.load(Ordering::Acquire) >> SHIFT
    }
}

/// Acquires `n` permits, waiting as a task would.
fn acquire(sem: &Sem, id: usize, n: usize) {
    let waker = Waker::current();
    if sem.acquire_or_queue(id, n, &waker) {
        return;
    }
    loop {
        waker.wait();
        if sem.granted(id) {
            return;
        }
    }
}

#[test]
fn a_release_racing_a_waiter_always_serves_it() {
    loom::model(|| {
        let sem = Arc::new(Sem::new(1));
        assert!(sem.try_acquire(1));
        let waiter = {
            let sem = sem.clone();
            thread::spawn(move || {
                acquire(&sem, 1, 1);
                sem.release(1);
            })
        };
        sem.release(1);
        waiter.join().unwrap();
        assert_eq!(sem.permits(), 1, "a permit was lost or made up");
        assert_eq!(sem.state.load(Ordering::Acquire) & WAITERS, 0);
    });
}

#[test]
fn two_waiters_share_one_permit_in_turn() {
    loom::model(|| {
        let sem = Arc::new(Sem::new(1));
        let threads: Vec<_> = (0..2)
            .map(|id| {
                let sem = sem.clone();
                thread::spawn(move || {
                    acquire(&sem, id, 1);
                    sem.release(1);
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(sem.permits(), 1);
    });
}

#[test]
fn a_cancelled_waiter_passes_its_grant_on() {
    loom::model(|| {
        let sem = Arc::new(Sem::new(1));
        assert!(sem.try_acquire(1));
        // A waiter queues, then gives up (its future is dropped) — before
        // or after the release granted it the permit.
        let quitter = {
            let sem = sem.clone();
            thread::spawn(move || {
                let waker = Waker::current();
                if sem.acquire_or_queue(7, 1, &waker) {
                    sem.release(1);
                } else {
                    sem.cancel(7, 1);
                }
            })
        };
        let stayer = {
            let sem = sem.clone();
            thread::spawn(move || {
                acquire(&sem, 8, 1);
                sem.release(1);
            })
        };
        sem.release(1);
        quitter.join().unwrap();
        stayer.join().unwrap();
        assert_eq!(sem.permits(), 1);
    });
}

// ---- the bounded mpsc channel (sync/mpsc/chan.rs) ----

struct ChanState {
    queue: VecDeque<(usize, u32)>,
    reserved: usize,
    rx_waker: Option<Waker>,
    send_waiters: VecDeque<(usize, Waker)>,
    granted: Vec<usize>,
}

struct Chan {
    cap: usize,
    state: Mutex<ChanState>,
}

impl Chan {
    fn new(cap: usize) -> Chan {
        Chan {
            cap,
            state: Mutex::new(ChanState {
                queue: VecDeque::new(),
                reserved: 0,
                rx_waker: None,
                send_waiters: VecDeque::new(),
                granted: Vec::new(),
            }),
        }
    }

    /// `send().await`: pushes when a slot is free (and nobody waits for
    /// one), else waits to be handed one.
    fn send(&self, sender: usize, value: u32) {
        let waker = Waker::current();
        let mut first = true;
        loop {
            let mut st = self.state.lock().unwrap();
            let handed = match st.granted.iter().position(|&g| g == sender) {
                Some(i) => {
                    st.granted.swap_remove(i);
                    st.reserved -= 1;
                    true
                }
                None => false,
            };
            let free = self.cap - st.queue.len() - st.reserved;
            if handed || (first && free > 0 && st.send_waiters.is_empty()) {
                st.queue.push_back((sender, value));
                let rx = st.rx_waker.take();
                drop(st);
                if let Some(w) = rx {
                    w.wake();
                }
                return;
            }
            if first {
                st.send_waiters.push_back((sender, waker.clone()));
                first = false;
            }
            drop(st);
            waker.wait();
        }
    }

    /// `recv().await`.
    fn recv(&self) -> (usize, u32) {
        let waker = Waker::current();
        loop {
            let mut st = self.state.lock().unwrap();
            if let Some(v) = st.queue.pop_front() {
                // A slot freed: hand it to the oldest waiting sender.
                let mut wake = None;
                if self.cap - st.queue.len() - st.reserved > 0
                    && let Some((id, w)) = st.send_waiters.pop_front()
                {
                    st.reserved += 1;
                    st.granted.push(id);
                    wake = Some(w);
                }
                drop(st);
                if let Some(w) = wake {
                    w.wake();
                }
                return v;
            }
            st.rx_waker = Some(waker.clone());
            drop(st);
            waker.wait();
        }
    }
}

#[test]
fn a_full_channel_serves_waiting_senders_in_order_and_loses_nothing() {
    loom::model(|| {
        let chan = Arc::new(Chan::new(1));
        let senders: Vec<_> = (0..2)
            .map(|id| {
                let chan = chan.clone();
                thread::spawn(move || {
                    chan.send(id, 1);
                    chan.send(id, 2);
                })
            })
            .collect();
        let mut last = [0u32; 2];
        for _ in 0..4 {
            let (id, v) = chan.recv();
            assert_eq!(v, last[id] + 1, "sender {id}'s values out of order");
            last[id] = v;
        }
        for s in senders {
            s.join().unwrap();
        }
        let st = chan.state.lock().unwrap();
        assert!(st.queue.is_empty() && st.reserved == 0 && st.send_waiters.is_empty());
    });
}
