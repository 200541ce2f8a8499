//! Mutex, RwLock, Semaphore, Notify, Event and Barrier (shared and local
//! flavors): behaviour within one runtime, FIFO order, across two runtimes
//! and from plain threads.

mod support;

use std::future::{Future, poll_fn};
use std::pin::pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::Poll;
use std::thread;
use std::time::{Duration, Instant};

use corio::sync::{Barrier, Event, Mutex, Notify, RwLock, Semaphore, TryAcquireError, local};
use corio::time::timeout;

/// Hang guard: far longer than any wait in these tests.
const GUARD: Duration = Duration::from_secs(10);

async fn guarded<F: Future>(what: &str, fut: F) -> F::Output {
    timeout(GUARD, fut)
        .await
        .unwrap_or_else(|_| panic!("{what} hung"))
}

fn join_within<T>(what: &str, h: thread::JoinHandle<T>) -> T {
    let deadline = Instant::now() + GUARD;
    while !h.is_finished() {
        assert!(Instant::now() < deadline, "{what} hung");
        thread::sleep(Duration::from_millis(2));
    }
    h.join().unwrap_or_else(|_| panic!("{what} panicked"))
}

async fn yield_many(n: usize) {
    for _ in 0..n {
        corio::yield_now().await;
    }
}

/// True if `fut` completes when polled once.
async fn ready_now<F: Future + Unpin>(fut: &mut F) -> bool {
    poll_fn(|cx| Poll::Ready(std::pin::Pin::new(&mut *fut).poll(cx).is_ready())).await
}

both_drivers! {
fn mutex_guards_across_awaits_and_hands_off_in_fifo_order() {
    support::run(async {
        let m = Rc::new(Mutex::new(Vec::new()));
        let first = m.lock().await;
        // Three waiters queue in order; a try_lock may not overtake them.
        let tasks: Vec<_> = (0..3)
            .map(|i| {
                let m = m.clone();
                corio::spawn(async move {
                    let mut v = m.lock().await;
                    corio::yield_now().await; // held across an await
                    v.push(i);
                })
            })
            .collect();
        yield_many(3).await;
        assert!(m.try_lock().is_err());
        drop(first);
        assert!(m.try_lock().is_err(), "a newcomer overtook the queue");
        for t in tasks {
            guarded("lock", t).await.unwrap();
        }
        assert_eq!(*m.lock().await, [0, 1, 2]);
        assert!(m.try_lock().is_ok());
    });
}
}

both_drivers! {
fn owned_guards_move_into_tasks() {
    support::run(async {
        let m = Arc::new(Mutex::new(0u32));
        let g = m.clone().lock_owned().await;
        let t = corio::spawn(async move {
            let mut g = g;
            *g += 1;
        });
        guarded("task", t).await.unwrap();
        assert_eq!(*m.lock().await, 1);
        assert!(m.clone().try_lock_owned().is_ok());

        let l = Rc::new(local::Mutex::new(String::new()));
        let mut g = l.clone().lock_owned().await;
        g.push('x');
        assert!(l.clone().try_lock_owned().is_err());
        drop(g);
        assert_eq!(*l.lock().await, "x");
        assert_eq!(Rc::try_unwrap(l).unwrap().into_inner(), "x");
    });
}
}

both_drivers! {
fn mutex_across_two_runtimes_and_a_plain_thread() {
    let m = Arc::new(Mutex::new(0u64));
    const N: u64 = 2000;
    let runtime_side = {
        let m = m.clone();
        thread::spawn(move || {
            support::run(async move {
                for _ in 0..N {
                    let mut g = m.lock().await;
                    *g += 1;
                    if *g % 64 == 0 {
                        corio::yield_now().await;
                    }
                }
            })
        })
    };
    let plain = {
        let m = m.clone();
        thread::spawn(move || {
            for _ in 0..N {
                *m.blocking_lock() += 1;
            }
        })
    };
    support::run(async {
        for _ in 0..N {
            *m.lock().await += 1;
        }
    });
    join_within("runtime thread", runtime_side);
    join_within("plain thread", plain);
    assert_eq!(*m.blocking_lock(), 3 * N);
}
}

both_drivers! {
fn rwlock_readers_share_writers_wait_in_order() {
    support::run(async {
        let l = Rc::new(RwLock::new(0));
        let r1 = l.read().await;
        let r2 = l.try_read().unwrap();
        assert!(l.try_write().is_err());
        let writer = {
            let l = l.clone();
            corio::spawn(async move {
                *l.write().await = 7;
            })
        };
        yield_many(2).await;
        // A reader coming after a waiting writer waits for it (no writer
        // starvation), even though readers hold the lock now.
        let mut late = pin!(l.read());
        assert!(!ready_now(&mut late).await);
        drop((r1, r2));
        guarded("writer", writer).await.unwrap();
        assert_eq!(*guarded("late reader", late).await, 7);

        // Downgrade keeps other writers out.
        let w = l.write().await;
        let r = corio::sync::RwLockWriteGuard::downgrade(w);
        assert!(l.try_write().is_err());
        assert!(l.try_read().is_ok());
        drop(r);
        assert!(l.try_write().is_ok());

        let l = local::RwLock::with_max_readers(1, 2);
        let (a, b) = (l.read().await, l.read().await);
        assert!(l.try_read().is_err(), "max_readers is 2");
        drop((a, b));
        *l.write().await += 1;
        assert_eq!(l.into_inner(), 2);
    });
}
}

both_drivers! {
fn semaphore_permits_many_owned_and_close() {
    support::run(async {
        let s = Arc::new(Semaphore::new(3));
        let two = s.acquire_many(2).await.unwrap();
        assert_eq!(s.available_permits(), 1);
        assert_eq!(s.try_acquire_many(2).unwrap_err(), TryAcquireError::NoPermits);
        // A big waiter at the front holds back a small one behind it.
        let big = {
            let s = s.clone();
            corio::spawn(async move { s.acquire_many_owned(3).await.unwrap().num_permits() })
        };
        yield_many(2).await;
        let mut small = pin!(s.acquire());
        assert!(!ready_now(&mut small).await, "the small acquire overtook the big one");
        drop(two);
        assert_eq!(guarded("big", big).await.unwrap(), 3);
        let p = guarded("small", small).await.unwrap();
        let mut p2 = s.try_acquire().unwrap();
        p2.merge(p);
        assert_eq!(p2.num_permits(), 2);
        p2.forget();
        assert_eq!(s.available_permits(), 1);
        s.add_permits(2);
        assert_eq!(s.forget_permits(1), 1);
        assert_eq!(s.available_permits(), 2);

        // Close: waiting and later acquires fail; held permits stay valid.
        let held = s.try_acquire_many(2).unwrap();
        let waiter = {
            let s = s.clone();
            corio::spawn(async move { s.acquire().await.is_err() })
        };
        yield_many(2).await;
        s.close();
        assert!(s.is_closed());
        assert!(guarded("waiter", waiter).await.unwrap());
        assert_eq!(s.try_acquire().unwrap_err(), TryAcquireError::Closed);
        drop(held);
        assert_eq!(s.available_permits(), 2);

        let l = Rc::new(local::Semaphore::new(1));
        let p = l.clone().acquire_owned().await.unwrap();
        assert!(l.clone().try_acquire_owned().is_err());
        drop(p);
        assert_eq!(l.available_permits(), 1);
    });
}
}

both_drivers! {
fn notify_one_stores_a_permit_and_waiters_wake_in_order() {
    support::run(async {
        let n = Rc::new(Notify::new());
        // A stored permit: the next notified() completes at once.
        n.notify_one();
        n.notify_one(); // still one permit
        guarded("permit", n.notified()).await;
        let mut second = pin!(n.notified());
        assert!(!ready_now(&mut second).await);

        let order = Rc::new(std::cell::RefCell::new(Vec::new()));
        let tasks: Vec<_> = (0..3)
            .map(|i| {
                let (n, order) = (n.clone(), order.clone());
                corio::spawn(async move {
                    n.notified().await;
                    order.borrow_mut().push(i);
                })
            })
            .collect();
        yield_many(2).await;
        n.notify_one(); // goes to `second`, the oldest waiter
        guarded("second", second).await;
        for _ in 0..3 {
            n.notify_one();
        }
        for t in tasks {
            guarded("waiter", t).await.unwrap();
        }
        assert_eq!(*order.borrow(), [0, 1, 2]);

        // notify_waiters wakes futures created before it, even unpolled,
        // and stores nothing.
        let l = local::Notify::new();
        let early = l.notified();
        l.notify_waiters();
        guarded("early", early).await;
        let mut late = pin!(l.notified());
        assert!(!ready_now(&mut late).await);
    });
}
}

both_drivers! {
fn event_set_clear_wait() {
    support::run(async {
        let e = Rc::new(Event::new());
        assert!(!e.is_set());
        let waiters: Vec<_> = (0..3)
            .map(|_| {
                let e = e.clone();
                corio::spawn(async move { e.wait().await })
            })
            .collect();
        yield_many(2).await;
        e.set();
        // Cleared before the waiters run: they still return (asyncio).
        e.clear();
        for w in waiters {
            guarded("waiter", w).await.unwrap();
        }
        assert!(!e.is_set());
        let mut w = pin!(e.wait());
        assert!(!ready_now(&mut w).await);
        e.set();
        assert!(ready_now(&mut w).await);
        guarded("set event", e.wait()).await;

        let l = local::Event::new();
        l.set();
        assert!(l.is_set());
        guarded("local", l.wait()).await;
    });
}
}

both_drivers! {
fn event_set_from_another_thread_wakes_a_runtime() {
    let e = Arc::new(Event::new());
    let setter = {
        let e = e.clone();
        thread::spawn(move || {
            thread::sleep(Duration::from_millis(5));
            e.set();
        })
    };
    support::run(async {
        guarded("wait", e.wait()).await;
    });
    join_within("setter", setter);
}
}

both_drivers! {
fn barrier_rounds_and_one_leader_each() {
    support::run(async {
        let b = Rc::new(Barrier::new(3));
        for _round in 0..3 {
            let tasks: Vec<_> = (0..3)
                .map(|_| {
                    let b = b.clone();
                    corio::spawn(async move { b.wait().await.is_leader() })
                })
                .collect();
            let mut leaders = 0;
            for t in tasks {
                leaders += guarded("barrier", t).await.unwrap() as usize;
            }
            assert_eq!(leaders, 1);
        }
        // A wait dropped before the round completes no longer counts.
        let mut a = pin!(b.wait());
        assert!(!ready_now(&mut a).await);
        let mut c = Box::pin(b.wait());
        assert!(!ready_now(&mut c).await);
        drop(c);
        let mut d = pin!(b.wait());
        assert!(!ready_now(&mut d).await, "a dropped wait completed the round");
        let last = guarded("last", b.wait()).await;
        assert!(last.is_leader());
        assert!(!guarded("a", a).await.is_leader());
        assert!(!guarded("d", d).await.is_leader());

        let l = local::Barrier::new(1);
        assert!(l.wait().await.is_leader());
    });
}
}

both_drivers! {
fn semaphore_across_two_runtimes() {
    let s = Arc::new(Semaphore::new(2));
    let inside = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let work = |s: Arc<Semaphore>, inside: Arc<std::sync::atomic::AtomicUsize>| async move {
        use std::sync::atomic::Ordering::SeqCst;
        for _ in 0..500 {
            let _p = s.acquire().await.unwrap();
            assert!(inside.fetch_add(1, SeqCst) < 2, "more holders than permits");
            corio::yield_now().await;
            inside.fetch_sub(1, SeqCst);
        }
    };
    let other = {
        let (s, inside) = (s.clone(), inside.clone());
        thread::spawn(move || support::run(work(s, inside)))
    };
    support::run(async {
        let a = corio::spawn(work(s.clone(), inside.clone()));
        work(s.clone(), inside.clone()).await;
        guarded("task", a).await.unwrap();
    });
    join_within("other runtime", other);
    assert_eq!(s.available_permits(), 2);
}
}

#[test]
fn blocking_lock_inside_a_runtime_panics() {
    let m = Mutex::new(1);
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        corio::run(async { drop(m.blocking_lock()) })
    }));
    let msg = r.unwrap_err();
    let msg = msg.downcast_ref::<String>().unwrap();
    assert!(msg.contains("await the async method instead"), "{msg}");
}

#[test]
fn send_and_sync_where_tokio_has_them() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}
    send_sync::<Mutex<u32>>();
    send_sync::<corio::sync::MutexGuard<'static, u32>>();
    send_sync::<corio::sync::OwnedMutexGuard<u32>>();
    send_sync::<RwLock<u32>>();
    send_sync::<Semaphore>();
    send_sync::<corio::sync::OwnedSemaphorePermit>();
    send_sync::<Notify>();
    send_sync::<Event>();
    send_sync::<Barrier>();
    send_sync::<corio::sync::broadcast::Sender<u32>>();
    send_sync::<corio::sync::watch::Sender<u32>>();
    send::<corio::sync::broadcast::Receiver<u32>>();
    send::<corio::sync::watch::Receiver<u32>>();
    // The futures of the shared flavor can move to another shard.
    let m = Mutex::new(0);
    let s = Semaphore::new(1);
    let n = Notify::new();
    fn is_send<T: Send>(_: &T) {}
    is_send(&m.lock());
    is_send(&s.acquire());
    is_send(&n.notified());
    // The local flavor is `Send` (nothing shared) but not `Sync`.
    send::<local::Mutex<u32>>();
}
