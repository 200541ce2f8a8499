//! Cancel safety of the sync primitives: thousands of `lock()`,
//! `acquire()`, `read()`/`write()` and `notified()` futures dropped at
//! random points (seeded), within one runtime (both drivers, both flavors),
//! across two shards, and on plain threads. A swallowed wake-up shows as a
//! hang (caught by a time guard), a leaked permit as a count that does not
//! come back, a double grant as two holders at once.

mod support;

use std::cell::Cell;
use std::future::{Future, poll_fn};
use std::pin::pin;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::task::{Context, Poll, Wake, Waker};
use std::thread;
use std::time::{Duration, Instant};

use corio::sync::generic::{Flavor, Local, Mutex, Notify, RwLock, Semaphore, Shared};
use corio::time::timeout;

const GUARD: Duration = Duration::from_secs(20);
const TASKS: u64 = 12;
const ROUNDS: u64 = 250;

/// xorshift64*: a small seeded generator, so a failure can be replayed.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
    }
}

/// Polls `fut` up to `polls` times, yielding to the other tasks between
/// polls, and drops it if it has not completed by then.
async fn poll_then_drop<F: Future>(fut: F, polls: u64) -> Option<F::Output> {
    let mut fut = pin!(fut);
    for _ in 0..polls {
        if let Poll::Ready(v) = poll_fn(|cx| Poll::Ready(fut.as_mut().poll(cx))).await {
            return Some(v);
        }
        corio::yield_now().await;
    }
    None
}

async fn yields(n: u64) {
    for _ in 0..n {
        corio::yield_now().await;
    }
}

/// Tasks lock a mutex, dropping most attempts at a random poll; whoever
/// holds it checks it is alone. Returns the locks taken.
async fn churn_mutex<F: Flavor>(seed: u64) -> u64 {
    let m = Rc::new(Mutex::<u64, F>::new(0));
    let inside = Rc::new(Cell::new(false));
    let tasks: Vec<_> = (0..TASKS)
        .map(|t| {
            let (m, inside) = (m.clone(), inside.clone());
            corio::spawn(async move {
                let mut rng = Rng::new(seed + t);
                for _ in 0..ROUNDS {
                    let Some(mut g) = poll_then_drop(m.lock(), rng.below(4)).await else {
                        continue;
                    };
                    assert!(!inside.replace(true), "two guards at once");
                    *g += 1;
                    yields(rng.below(3)).await;
                    inside.set(false);
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    // Nothing leaked: the lock is free, and nobody holds a stale grant.
    *m.try_lock().expect("the mutex is free at the end")
}

/// Tasks acquire 1–3 of 3 permits, dropping attempts at random.
async fn churn_semaphore<F: Flavor>(seed: u64) -> u64 {
    let s = Rc::new(Semaphore::<F>::new(3));
    let held = Rc::new(Cell::new(0u32));
    let got = Rc::new(Cell::new(0u64));
    let tasks: Vec<_> = (0..TASKS)
        .map(|t| {
            let (s, held, got) = (s.clone(), held.clone(), got.clone());
            corio::spawn(async move {
                let mut rng = Rng::new(seed ^ (t << 32));
                for _ in 0..ROUNDS {
                    let n = 1 + rng.below(3) as u32;
                    let Some(p) = poll_then_drop(s.acquire_many(n), rng.below(4)).await else {
                        continue;
                    };
                    let p = p.unwrap();
                    held.set(held.get() + n);
                    assert!(held.get() <= 3, "more permits held than exist");
                    got.set(got.get() + 1);
                    yields(rng.below(3)).await;
                    held.set(held.get() - n);
                    drop(p);
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(s.available_permits(), 3, "a permit leaked");
    got.get()
}

/// Readers and writers, attempts dropped at random.
async fn churn_rwlock<F: Flavor>(seed: u64) -> u64 {
    let l = Rc::new(RwLock::<u64, F>::with_max_readers(0, 4));
    let readers = Rc::new(Cell::new(0u32));
    let writing = Rc::new(Cell::new(false));
    let tasks: Vec<_> = (0..TASKS)
        .map(|t| {
            let (l, readers, writing) = (l.clone(), readers.clone(), writing.clone());
            corio::spawn(async move {
                let mut rng = Rng::new(seed.rotate_left(t as u32 + 1));
                for _ in 0..ROUNDS {
                    let polls = rng.below(4);
                    if rng.below(3) == 0 {
                        let Some(mut g) = poll_then_drop(l.write(), polls).await else {
                            continue;
                        };
                        assert!(readers.get() == 0 && !writing.replace(true));
                        *g += 1;
                        yields(rng.below(2)).await;
                        writing.set(false);
                    } else {
                        let Some(g) = poll_then_drop(l.read(), polls).await else {
                            continue;
                        };
                        assert!(!writing.get());
                        readers.set(readers.get() + 1);
                        yields(rng.below(2)).await;
                        readers.set(readers.get() - 1);
                        drop(g);
                    }
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    *l.try_write().expect("the lock is free at the end")
}

/// One notification at a time; consumers drop their `notified()` at
/// random. Each notification must be taken by someone: a dropped future
/// that was picked passes it on.
async fn churn_notify<F: Flavor>(seed: u64) -> u64 {
    const N: u64 = 400;
    let n = Rc::new(Notify::<F>::new());
    let taken = Rc::new(Cell::new(0u64));
    let consumers: Vec<_> = (0..TASKS)
        .map(|t| {
            let (n, taken) = (n.clone(), taken.clone());
            corio::spawn(async move {
                let mut rng = Rng::new(seed + 7 * t);
                while taken.get() < N {
                    if poll_then_drop(n.notified(), rng.below(4)).await.is_some() {
                        taken.set(taken.get() + 1);
                    }
                }
            })
        })
        .collect();
    for i in 0..N {
        n.notify_one();
        while taken.get() <= i {
            corio::yield_now().await;
        }
    }
    // Wake consumers still waiting so they see the end.
    n.notify_waiters();
    for c in consumers {
        c.await.unwrap();
    }
    assert_eq!(taken.get(), N, "a notification was taken twice");
    N
}

async fn all_churns<F: Flavor>(seed: u64) {
    let guard = |what: &'static str| move || panic!("{what}: a wake-up was lost (hung)");
    let locks = timeout(GUARD, churn_mutex::<F>(seed))
        .await
        .unwrap_or_else(|_| guard("mutex")());
    let permits = timeout(GUARD, churn_semaphore::<F>(seed))
        .await
        .unwrap_or_else(|_| guard("semaphore")());
    let writes = timeout(GUARD, churn_rwlock::<F>(seed))
        .await
        .unwrap_or_else(|_| guard("rwlock")());
    timeout(GUARD, churn_notify::<F>(seed))
        .await
        .unwrap_or_else(|_| guard("notify")());
    // Some attempts must have got through, or the test shows nothing.
    assert!(
        locks > 0 && permits > 0 && writes > 0,
        "{locks} {permits} {writes}"
    );
}

both_drivers! {
fn random_drops_shared_flavor() {
    for seed in [1, 2, 3] {
        support::run(all_churns::<Shared>(seed));
    }
}
}

both_drivers! {
fn random_drops_local_flavor() {
    for seed in [4, 5, 6] {
        support::run(all_churns::<Local>(seed));
    }
}
}

both_drivers! {
fn random_drops_across_two_shards() {
    let m = Arc::new(corio::sync::Mutex::new(0u64));
    let s = Arc::new(corio::sync::Semaphore::new(2));
    let holders = Arc::new(AtomicUsize::new(0));
    let (m2, s2, h2) = (m.clone(), s.clone(), holders.clone());
    let out = support::builder()
        .shards(2)
        .run(move |shard| {
            let (m, s, holders) = (m2.clone(), s2.clone(), h2.clone());
            async move {
                let tasks: Vec<_> = (0..6u64)
                    .map(|t| {
                        let (m, s, holders) = (m.clone(), s.clone(), holders.clone());
                        corio::spawn(async move {
                            let mut rng = Rng::new(100 * shard.index() as u64 + t);
                            let mut locked = 0u64;
                            for _ in 0..ROUNDS {
                                let polls = rng.below(4);
                                if let Some(mut g) = poll_then_drop(m.lock(), polls).await {
                                    *g += 1;
                                    locked += 1;
                                    yields(rng.below(2)).await;
                                }
                                if let Some(p) = poll_then_drop(s.acquire(), rng.below(4)).await {
                                    assert!(holders.fetch_add(1, SeqCst) < 2);
                                    yields(rng.below(2)).await;
                                    holders.fetch_sub(1, SeqCst);
                                    drop(p);
                                }
                            }
                            locked
                        })
                    })
                    .collect();
                let mut locked = 0;
                for t in tasks {
                    locked += timeout(GUARD, t).await.expect("a shard hung").unwrap();
                }
                locked
            }
        })
        .unwrap();
    assert_eq!(*m.try_lock().unwrap(), out.iter().sum::<u64>());
    assert_eq!(s.available_permits(), 2);
}
}

/// Wakes a parked plain thread.
struct Unpark(thread::Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

/// On plain threads: each attempt is polled once, then either dropped or
/// driven to completion with the thread parked between polls. Real
/// parallelism races drops against hand-offs.
#[test]
fn random_drops_on_plain_threads() {
    let m = Arc::new(corio::sync::Mutex::new(0u64));
    let s = Arc::new(corio::sync::Semaphore::new(2));
    let holders = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..4u64)
        .map(|t| {
            let (m, s, holders) = (m.clone(), s.clone(), holders.clone());
            thread::spawn(move || {
                let waker = Waker::from(Arc::new(Unpark(thread::current())));
                let mut cx = Context::from_waker(&waker);
                let mut rng = Rng::new(77 + t);
                let mut locked = 0u64;
                for _ in 0..2000 {
                    let mut lock = pin!(m.lock());
                    if let Poll::Ready(mut g) = lock.as_mut().poll(&mut cx) {
                        *g += 1;
                        locked += 1;
                        continue;
                    }
                    if rng.below(2) == 0 {
                        continue; // dropped while queued (or just handed the lock)
                    }
                    let deadline = Instant::now() + GUARD;
                    let mut g = loop {
                        if let Poll::Ready(g) = lock.as_mut().poll(&mut cx) {
                            break g;
                        }
                        assert!(Instant::now() < deadline, "a wake-up was lost");
                        thread::park_timeout(GUARD);
                    };
                    *g += 1;
                    locked += 1;
                    drop(g);

                    let mut acq = pin!(s.acquire());
                    match acq.as_mut().poll(&mut cx) {
                        Poll::Ready(p) => {
                            assert!(holders.fetch_add(1, SeqCst) < 2);
                            holders.fetch_sub(1, SeqCst);
                            drop(p);
                        }
                        Poll::Pending if rng.below(2) == 0 => {}
                        Poll::Pending => {
                            let p = loop {
                                if let Poll::Ready(p) = acq.as_mut().poll(&mut cx) {
                                    break p;
                                }
                                assert!(Instant::now() < deadline, "a wake-up was lost");
                                thread::park_timeout(GUARD);
                            };
                            assert!(holders.fetch_add(1, SeqCst) < 2);
                            holders.fetch_sub(1, SeqCst);
                            drop(p);
                        }
                    }
                }
                locked
            })
        })
        .collect();
    let mut total = 0;
    for t in threads {
        total += t.join().unwrap();
    }
    assert_eq!(*m.blocking_lock(), total);
    assert_eq!(s.available_permits(), 2);
}
