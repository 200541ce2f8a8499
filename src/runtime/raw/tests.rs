//! The task allocation's state machine, driven by hand: a scheduler that
//! queues runnables in a list the test runs, futures and outputs that count
//! their drops, and a scheduler handle whose `Arc` count says whether the
//! allocation was freed (the header holding it is dropped only then).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};

use super::*;

/// Queues woken runnables for the test to run. The thread that made it is
/// its tasks' own thread (where the test runs them): wakes there are
/// local, wakes elsewhere send notices.
#[derive(Clone)]
struct Queue(Arc<Mutex<Vec<Runnable<Queue>>>>, std::thread::ThreadId);

impl Default for Queue {
    fn default() -> Queue {
        Queue(Arc::default(), std::thread::current().id())
    }
}

impl Schedule for Queue {
    fn schedule(runnable: Runnable<Queue>) {
        let q = runnable.scheduler().0.clone();
        q.lock().unwrap().push(runnable);
    }

    fn is_current(&self) -> bool {
        std::thread::current().id() == self.1
    }

    fn schedule_here(runnable: Runnable<Queue>) {
        Queue::schedule(runnable);
    }

    const WAKERS: &'static RawWakerVTable = &QUEUE_WAKERS;
}

/// One address for the test scheduler's waker functions (as the runtime's
/// `SchedRef` has): the handle keeps a waker of one of its tasks as a bare
/// pointer only when its vtable is this one.
static QUEUE_WAKERS: RawWakerVTable = Wakers::<Queue>::VTABLE;

impl Queue {
    fn take(&self) -> Vec<Runnable<Queue>> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }

    fn run_all(&self) -> usize {
        let mut n = 0;
        loop {
            let batch = self.take();
            if batch.is_empty() {
                return n;
            }
            for r in batch {
                n += 1;
                r.run();
            }
        }
    }

    /// Tasks still holding this queue in their header (1 = none: freed).
    fn holders(&self) -> usize {
        Arc::strong_count(&self.0)
    }
}

/// Counts its drops.
struct Counted(Arc<AtomicUsize>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// A future that returns `Pending` `n` times (waking itself each time when
/// `self_wake`, else storing its waker), then a counted output.
struct Steps {
    left: usize,
    self_wake: bool,
    waker: Arc<Mutex<Option<Waker>>>,
    _drop: Counted,
    out: Option<Counted>,
}

impl Future for Steps {
    type Output = Counted;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Counted> {
        let this = self.get_mut();
        if this.left == 0 {
            return Poll::Ready(this.out.take().unwrap());
        }
        this.left -= 1;
        if this.self_wake {
            cx.waker().wake_by_ref();
        } else {
            *this.waker.lock().unwrap() = Some(cx.waker().clone());
        }
        Poll::Pending
    }
}

struct Counts {
    future: Arc<AtomicUsize>,
    output: Arc<AtomicUsize>,
    waker: Arc<Mutex<Option<Waker>>>,
}

impl Counts {
    /// The waker the future kept at its last `Pending`.
    fn take_waker(&self) -> Waker {
        self.waker
            .lock()
            .unwrap()
            .take()
            .expect("the future kept no waker")
    }
}

fn steps(left: usize, self_wake: bool) -> (Steps, Counts) {
    let c = Counts {
        future: Arc::default(),
        output: Arc::default(),
        waker: Arc::default(),
    };
    let f = Steps {
        left,
        self_wake,
        waker: c.waker.clone(),
        _drop: Counted(c.future.clone()),
        out: Some(Counted(c.output.clone())),
    };
    (f, c)
}

fn spawn_on<F: Future>(q: &Queue, f: F) -> JoinRaw<F::Output, Queue> {
    let (runnable, handle) = spawn(q.clone(), f);
    runnable.schedule();
    handle
}

/// A `steps(1, false)` task run once on `q`: waiting on the waker it kept
/// (returned), with its handle.
fn waiting(q: &Queue) -> (JoinRaw<Counted, Queue>, Counts, Waker) {
    let (f, c) = steps(1, false);
    let h = spawn_on(q, f);
    q.run_all();
    let w = c.take_waker();
    (h, c, w)
}

/// As [`waiting`], its handle dropped before the run (detached).
fn waiting_detached(q: &Queue) -> (Counts, Waker) {
    let (f, c) = steps(1, false);
    drop(spawn_on(q, f));
    q.run_all();
    let w = c.take_waker();
    (c, w)
}

/// A waker that records that it was woken.
#[derive(Default)]
struct Flag(AtomicBool);

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// Polls a handle as `JoinHandle` does: `Ready` empties the option.
fn poll_handle<O>(h: &mut Option<JoinRaw<O, Queue>>, flag: &Arc<Flag>) -> Poll<Option<O>> {
    let waker = Waker::from(flag.clone());
    let polled = JoinRaw::poll(h, &mut Context::from_waker(&waker));
    assert_eq!(polled.is_ready(), h.is_none(), "Ready consumes the handle");
    polled
}

#[test]
fn a_task_runs_completes_hands_its_output_over_and_is_freed() {
    let q = Queue::default();
    let (f, c) = steps(3, true);
    let mut h = Some(spawn_on(&q, f));
    let flag = Arc::new(Flag::default());
    assert!(poll_handle(&mut h, &flag).is_pending());
    assert!(!h.as_ref().unwrap().is_finished());
    // Each self-wake during a poll queues the task once more.
    assert_eq!(q.run_all(), 4);
    assert!(h.as_ref().unwrap().is_finished());
    assert!(
        flag.0.load(Ordering::SeqCst),
        "the handle's waker was not woken"
    );
    assert_eq!(
        c.future.load(Ordering::SeqCst),
        1,
        "future dropped once at completion"
    );
    let Poll::Ready(Some(out)) = poll_handle(&mut h, &flag) else {
        panic!("no output")
    };
    assert_eq!(c.output.load(Ordering::SeqCst), 0);
    // Taking the output let go of the task: nothing else held it.
    assert_eq!(q.holders(), 1, "task not freed with the output taken");
    drop(out);
    assert_eq!(c.output.load(Ordering::SeqCst), 1);
}

#[test]
fn a_detached_task_drops_its_own_output_and_frees_itself() {
    let q = Queue::default();
    let (f, c) = steps(1, false);
    drop(spawn_on(&q, f));
    assert_eq!(q.run_all(), 1);
    let w = c.take_waker();
    assert_eq!(q.holders(), 2, "a waker holds the task");
    w.wake();
    assert_eq!(q.run_all(), 1);
    assert_eq!(c.future.load(Ordering::SeqCst), 1);
    assert_eq!(
        c.output.load(Ordering::SeqCst),
        1,
        "the output was not dropped"
    );
    assert_eq!(q.holders(), 1, "task not freed");
}

#[test]
fn a_handle_dropped_after_completion_drops_the_output() {
    let q = Queue::default();
    let (f, c) = steps(0, false);
    let h = spawn_on(&q, f);
    q.run_all();
    assert!(h.is_finished());
    assert_eq!(c.output.load(Ordering::SeqCst), 0);
    drop(h);
    assert_eq!(c.output.load(Ordering::SeqCst), 1);
    assert_eq!(q.holders(), 1);
}

#[test]
fn a_waker_outliving_the_task_frees_it_last_and_wakes_nothing() {
    let q = Queue::default();
    let (f, c) = steps(1, false);
    let mut h = Some(spawn_on(&q, f));
    q.run_all();
    let w = c.take_waker();
    let spare = w.clone();
    w.wake();
    q.run_all();
    let flag = Arc::new(Flag::default());
    assert!(matches!(poll_handle(&mut h, &flag), Poll::Ready(Some(_))));
    drop(h);
    assert_eq!(q.holders(), 2, "freed under a live waker");
    spare.wake_by_ref();
    assert_eq!(q.run_all(), 0, "a finished task was queued");
    drop(spare);
    assert_eq!(q.holders(), 1, "task not freed by its last waker");
    assert_eq!(c.future.load(Ordering::SeqCst), 1);
    assert_eq!(c.output.load(Ordering::SeqCst), 1);
}

/// A completed task is freed without a last step on the shared word only
/// when nothing else holds it: a waker left, counted on the task's thread
/// or on another one, keeps it until that waker goes, with a handle or
/// without.
#[test]
fn a_task_with_a_waker_left_is_not_freed_by_its_run_or_its_handle() {
    for (handle, spare_elsewhere) in [(false, false), (false, true), (true, false), (true, true)] {
        let q = Queue::default();
        let (f, c) = steps(1, false);
        let mut h = Some(spawn_on(&q, f));
        if !handle {
            drop(h.take());
        }
        q.run_all();
        let w = c.take_waker();
        // Counted here (a clone on the task's thread) or in the shared
        // word (a clone on another thread).
        let spare = if spare_elsewhere {
            let w2 = w.clone();
            elsewhere(move || w2.clone())
        } else {
            w.clone()
        };
        w.wake();
        // (A clone dropped elsewhere sent a check too.)
        assert!(q.run_all() >= 1);
        assert_eq!(c.future.load(Ordering::SeqCst), 1);
        if handle {
            let flag = Arc::new(Flag::default());
            assert!(matches!(poll_handle(&mut h, &flag), Poll::Ready(Some(_))));
        }
        let case = format!("handle {handle}, waker elsewhere {spare_elsewhere}");
        assert_eq!(c.output.load(Ordering::SeqCst), 1, "{case}");
        assert_eq!(q.holders(), 2, "{case}: freed under a live waker");
        drop(spare);
        assert_eq!(q.holders(), 1, "{case}: not freed by its last waker");
    }
}

#[test]
fn a_dropped_runnable_drops_the_future_and_the_handle_sees_none() {
    let q = Queue::default();
    let (f, c) = steps(1, false);
    let mut h = Some(spawn_on(&q, f));
    q.run_all();
    let flag = Arc::new(Flag::default());
    assert!(poll_handle(&mut h, &flag).is_pending());
    // Shutdown: wake the task (on its thread, as the runtime's shutdown
    // does), drop its runnable instead of running it.
    c.take_waker().wake();
    let runnables = q.take();
    assert_eq!(runnables.len(), 1);
    drop(runnables);
    assert_eq!(c.future.load(Ordering::SeqCst), 1, "future not dropped");
    assert!(flag.0.load(Ordering::SeqCst), "the handle was not woken");
    assert!(h.as_ref().unwrap().is_finished());
    assert!(matches!(poll_handle(&mut h, &flag), Poll::Ready(None)));
    // Closed: wakes do nothing any more.
    drop(h);
    assert_eq!(q.holders(), 1);
    // The value the future held for its output went with it.
    assert_eq!(c.output.load(Ordering::SeqCst), 1);
}

#[test]
fn a_task_nobody_can_wake_is_dropped_by_its_last_run() {
    let q = Queue::default();
    // Pending with no waker left, handle gone: nothing can wake it.
    let forgetful = std::future::poll_fn(|_| Poll::<()>::Pending);
    drop(spawn_on(&q, forgetful));
    assert_eq!(q.run_all(), 1);
    assert_eq!(q.holders(), 1, "not freed by its run");
}

#[test]
fn a_pending_task_whose_last_waker_goes_elsewhere_is_dropped_by_its_runtime() {
    let q = Queue::default();
    // Its last waker is dropped on another thread, then its handle: the
    // future must still be dropped where it runs, by a run of its own.
    let (h, c, w) = waiting(&q);
    std::thread::spawn(move || drop(w)).join().unwrap();
    assert_eq!(q.holders(), 2, "freed under its handle");
    drop(h);
    assert_eq!(
        c.future.load(Ordering::SeqCst),
        0,
        "future dropped off its runtime"
    );
    assert_eq!(q.run_all(), 1, "not queued for its runtime to drop");
    assert_eq!(c.future.load(Ordering::SeqCst), 1);
    assert_eq!(c.output.load(Ordering::SeqCst), 1);
    assert_eq!(q.holders(), 1);
    // Same with the handle gone first and the last waker dropped last.
    let (c, w) = waiting_detached(&q);
    std::thread::spawn(move || drop(w)).join().unwrap();
    assert_eq!(c.future.load(Ordering::SeqCst), 0);
    assert_eq!(q.run_all(), 1);
    assert_eq!(c.future.load(Ordering::SeqCst), 1);
    assert_eq!(q.holders(), 1);
}

#[test]
fn the_handle_keeps_only_its_latest_waker() {
    let q = Queue::default();
    let (f, c) = steps(1, false);
    let mut h = Some(spawn_on(&q, f));
    let first = Arc::new(Flag::default());
    let second = Arc::new(Flag::default());
    assert!(poll_handle(&mut h, &first).is_pending());
    assert!(poll_handle(&mut h, &first).is_pending());
    assert!(poll_handle(&mut h, &second).is_pending());
    assert_eq!(Arc::strong_count(&first), 1, "the replaced waker was kept");
    q.run_all();
    c.take_waker().wake();
    q.run_all();
    assert!(!first.0.load(Ordering::SeqCst));
    assert!(second.0.load(Ordering::SeqCst));
    drop(h);
    assert_eq!(Arc::strong_count(&second), 1, "the handle's waker leaked");
    assert_eq!(q.holders(), 1);
}

/// The shared and local words of the task behind a handle.
fn words<O>(h: &Option<JoinRaw<O, Queue>>) -> (usize, usize) {
    let ptr = h.as_ref().expect("the handle").ptr;
    // SAFETY: the handle keeps the task alive.
    let head = unsafe { head(ptr) };
    (
        head.shared.load(Ordering::SeqCst),
        head.local.load(Ordering::SeqCst),
    )
}

/// A handle polled on its task's thread stores its waker with no step on
/// the shared word (`AWAITED`); moved to another thread, it stores its next
/// waker under the lock (`AWAITER`), which the run then wakes, and the first
/// one goes.
#[test]
fn a_handle_stores_its_waker_without_a_shared_step_only_on_its_tasks_thread() {
    let q = Queue::default();
    let (f, c) = steps(1, false);
    let mut h = Some(spawn_on(&q, f));
    let spawned = words(&h).0;
    let here = Arc::new(Flag::default());
    assert!(poll_handle(&mut h, &here).is_pending());
    let (shared, local) = words(&h);
    assert_eq!(shared, spawned, "the handle stepped on the shared word");
    assert_ne!(local & AWAITED, 0);
    q.run_all();
    // Elsewhere: the waker stored here is replaced under the lock.
    let there = Arc::new(Flag::default());
    let moved = there.clone();
    let mut h = elsewhere(move || {
        assert!(poll_handle(&mut h, &moved).is_pending());
        h
    });
    assert_ne!(words(&h).0 & AWAITER, 0);
    assert_eq!(Arc::strong_count(&here), 1, "the replaced waker was kept");
    c.take_waker().wake();
    q.run_all();
    assert!(!here.0.load(Ordering::SeqCst));
    assert!(
        there.0.load(Ordering::SeqCst),
        "the latest waker was not woken"
    );
    assert!(matches!(poll_handle(&mut h, &there), Poll::Ready(Some(_))));
    assert_eq!(Arc::strong_count(&there), 1, "the handle's waker leaked");
    assert_eq!(q.holders(), 1);
}

/// A handle first polled on another thread stores its waker under the
/// shared word; one that stored it on the task's thread and is dropped
/// elsewhere before the task completes takes it back.
#[test]
fn a_handle_that_stored_its_waker_here_and_is_dropped_elsewhere_takes_it_back() {
    let q = Queue::default();
    let (f, c) = steps(0, false);
    let h = spawn_on(&q, f);
    let flag = Arc::new(Flag::default());
    let moved = flag.clone();
    let h = elsewhere(move || {
        let mut h = Some(h);
        assert!(poll_handle(&mut h, &moved).is_pending());
        h
    });
    let (shared, local) = words(&h);
    assert_ne!(shared & AWAITER, 0);
    assert_eq!(local & AWAITED, 0);
    drop(h);
    assert_eq!(Arc::strong_count(&flag), 1, "the handle's waker leaked");
    let mut h = Some(spawn_on(&q, steps(0, false).0));
    assert!(poll_handle(&mut h, &flag).is_pending());
    assert_eq!(Arc::strong_count(&flag), 2);
    elsewhere(move || drop(h));
    assert_eq!(Arc::strong_count(&flag), 1, "the handle's waker leaked");
    q.run_all();
    assert!(!flag.0.load(Ordering::SeqCst));
    assert_eq!(c.output.load(Ordering::SeqCst), 1);
    assert_eq!(q.holders(), 1);
}

/// Panics when dropped.
struct Bomb;

impl Drop for Bomb {
    fn drop(&mut self) {
        panic!("boom (expected by the test)");
    }
}

/// Returns a `Bomb` at once, and is one.
struct Armed(#[allow(dead_code)] Bomb);

impl Future for Armed {
    type Output = Bomb;

    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Bomb> {
        Poll::Ready(Bomb)
    }
}

#[test]
fn a_panicking_drop_of_a_future_or_output_is_contained() {
    let q = Queue::default();
    let mut h = Some(spawn_on(&q, Armed(Bomb)));
    q.run_all();
    let flag = Arc::new(Flag::default());
    let Poll::Ready(Some(out)) = poll_handle(&mut h, &flag) else {
        panic!("no output")
    };
    std::mem::forget(out);
    drop(h);
    assert_eq!(q.holders(), 1);
    // Detached: the run drops the (panicking) output itself.
    drop(spawn_on(&q, Armed(Bomb)));
    q.run_all();
    assert_eq!(q.holders(), 1);
}

#[test]
fn wakes_and_handle_polls_from_other_threads_lose_nothing() {
    // The task runs here; another thread wakes it (by clone and by ref)
    // and a third awaits its handle, in every order the threads make.
    for round in 0..300 {
        let q = Queue::default();
        let (f, c) = steps(3, false);
        let h = Some(spawn_on(&q, f));
        let flag = Arc::new(Flag::default());
        let awaiting = {
            let flag = flag.clone();
            std::thread::spawn(move || {
                let mut h = h;
                loop {
                    match poll_handle(&mut h, &flag) {
                        Poll::Ready(out) => return out.is_some(),
                        Poll::Pending => std::thread::yield_now(),
                    }
                }
            })
        };
        let waking = {
            let waker = c.waker.clone();
            std::thread::spawn(move || {
                for i in 0.. {
                    let w = waker.lock().unwrap().take();
                    match w {
                        Some(w) if i % 2 == 0 => w.wake(),
                        Some(w) => w.wake_by_ref(),
                        None if Arc::strong_count(&waker) == 1 => return,
                        None => std::thread::yield_now(),
                    }
                }
            })
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while c.future.load(Ordering::SeqCst) == 0 {
            assert!(std::time::Instant::now() < deadline, "round {round}: hung");
            if q.run_all() == 0 {
                std::thread::yield_now();
            }
        }
        drop(c.waker);
        assert!(awaiting.join().unwrap(), "round {round}: no output");
        waking.join().unwrap();
        assert_eq!(c.output.load(Ordering::SeqCst), 1, "round {round}");
        assert_eq!(q.holders(), 1, "round {round}: task not freed");
    }
}

#[test]
fn every_waker_of_a_task_will_wake_the_others() {
    // Lists that keep one waker per task (accept waiters, say) compare with
    // `will_wake`: a clone, the poll's own waker and the handle's must agree.
    let q = Queue::default();
    let kept: Arc<Mutex<Option<Waker>>> = Arc::default();
    let same = Arc::new(AtomicUsize::new(0));
    let (k, n) = (kept.clone(), same.clone());
    let mut polls = 0;
    let h = spawn_on(
        &q,
        std::future::poll_fn(move |cx| {
            polls += 1;
            let mut k = k.lock().unwrap();
            if let Some(w) = k.as_ref()
                && w.will_wake(cx.waker())
            {
                n.fetch_add(1, Ordering::SeqCst);
            }
            *k = Some(cx.waker().clone());
            if polls == 3 {
                return Poll::Ready(());
            }
            cx.waker().wake_by_ref();
            Poll::Pending
        }),
    );
    let abort_side = h.waker();
    assert_eq!(q.run_all(), 3);
    assert_eq!(
        same.load(Ordering::SeqCst),
        2,
        "a task's wakers did not compare equal"
    );
    assert!(abort_side.will_wake(kept.lock().unwrap().as_ref().unwrap()));
    drop((abort_side, h, kept));
    assert_eq!(q.holders(), 1);
}

/// Runs `f` on another thread (a waker used there sends notices).
fn elsewhere<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> R {
    std::thread::spawn(f).join().unwrap()
}

#[test]
fn wakes_from_another_thread_send_one_notice_that_runs_the_task_once() {
    let q = Queue::default();
    let (f, c) = steps(2, false);
    let mut h = Some(spawn_on(&q, f));
    assert_eq!(q.run_all(), 1);
    let w = c.take_waker();
    // By reference twice, then by value: the first sends the notice, the
    // others find it on its way.
    elsewhere(move || {
        w.wake_by_ref();
        w.wake_by_ref();
        w.wake();
    });
    assert_eq!(q.0.lock().unwrap().len(), 1, "one notice");
    // Taking it runs the task (here: its second Pending, a new waker kept).
    assert_eq!(q.run_all(), 1);
    assert_eq!(c.future.load(Ordering::SeqCst), 0);
    // A wake on the task's own thread queues its token, no notice.
    c.take_waker().wake();
    assert_eq!(q.run_all(), 1);
    let flag = Arc::new(Flag::default());
    assert!(matches!(poll_handle(&mut h, &flag), Poll::Ready(Some(_))));
    assert_eq!(q.holders(), 1, "task not freed");
}

#[test]
fn a_notice_that_outlives_its_task_frees_the_block_when_it_goes() {
    let q = Queue::default();
    // Taken after the task finished: it frees the block.
    let (c, w) = waiting_detached(&q);
    let own = w.clone();
    elsewhere(move || w.wake());
    // The task's own wake-up runs it to completion behind the notice's back.
    own.wake();
    let mut batch = q.take();
    assert_eq!(batch.len(), 2, "a notice and a token");
    let token = batch.pop().unwrap();
    token.run();
    assert_eq!(c.future.load(Ordering::SeqCst), 1);
    assert_eq!(q.holders(), 2, "the notice keeps the block");
    batch.pop().unwrap().run();
    assert_eq!(q.holders(), 1, "the notice did not free the block");
    // Dropped unrun (shutdown) after the task was dropped: same.
    let (c, w) = waiting_detached(&q);
    let own = w.clone();
    elsewhere(move || w.wake());
    own.wake();
    let mut batch = q.take();
    let token = batch.pop().unwrap();
    drop(token);
    assert_eq!(c.future.load(Ordering::SeqCst), 1, "future not dropped");
    assert_eq!(q.holders(), 2);
    drop(batch);
    assert_eq!(q.holders(), 1, "the dropped notice did not free the block");
}

#[test]
fn a_wake_from_another_thread_after_the_task_finished_sends_nothing() {
    let q = Queue::default();
    let (h, c, w) = waiting(&q);
    let kept = w.clone();
    w.wake();
    q.run_all();
    assert_eq!(c.future.load(Ordering::SeqCst), 1);
    drop(h);
    assert_eq!(q.holders(), 2, "the waker keeps the block");
    elsewhere(move || {
        kept.wake_by_ref();
        kept.wake();
    });
    assert!(q.take().is_empty(), "a notice for a finished task");
    assert_eq!(q.holders(), 1, "the last waker did not free the block");
}

#[test]
fn wakers_counted_on_one_thread_and_dropped_on_another_balance_out() {
    // Clones on the task's thread count locally, clones elsewhere in the
    // shared word; each may be dropped on either side. The task must be
    // freed once every one is gone, whatever the mix.
    let q = Queue::default();
    let (h, c, w) = waiting(&q);
    let here: Vec<Waker> = (0..5).map(|_| w.clone()).collect();
    let there: Vec<Waker> = elsewhere({
        let w = w.clone();
        move || (0..5).map(|_| w.clone()).collect()
    });
    // Five local clones dropped elsewhere, five foreign clones dropped here.
    elsewhere(move || drop(here));
    drop(there);
    // Still reachable (the handle, `w`): nothing queued, nothing dropped.
    assert!(q.take().is_empty());
    assert_eq!(c.future.load(Ordering::SeqCst), 0);
    w.wake();
    assert_eq!(q.run_all(), 1);
    assert_eq!(c.future.load(Ordering::SeqCst), 1, "not completed");
    drop(h);
    assert_eq!(q.holders(), 1, "the counts did not balance: not freed");
}

#[test]
fn a_last_waker_cloned_elsewhere_and_dropped_here_leaves_the_future_to_a_notice() {
    // The local count goes below zero (a reference taken on another thread
    // given up on the task's): the two counts together say "none left".
    let q = Queue::default();
    let (c, w) = waiting_detached(&q);
    let foreign = elsewhere({
        let w = w.clone();
        move || w.clone()
    });
    drop(w);
    // (The clone's drop over there may have sent a check: the other thread
    // cannot see the local count. Taking it changes nothing.)
    q.run_all();
    assert_eq!(
        c.future.load(Ordering::SeqCst),
        0,
        "dropped while a waker is left"
    );
    drop(foreign);
    assert_eq!(
        c.future.load(Ordering::SeqCst),
        0,
        "future dropped in place"
    );
    assert_eq!(q.run_all(), 1, "no notice for the runtime");
    assert_eq!(c.future.load(Ordering::SeqCst), 1);
    assert_eq!(q.holders(), 1);
}

#[test]
fn a_check_notice_does_not_poll_the_task_unless_a_wake_joins_it() {
    let q = Queue::default();
    // A local clone dropped elsewhere, the handle gone: that thread cannot
    // tell whether it was the last reference, so it sends a check.
    let (c, w) = waiting_detached(&q);
    let clone = w.clone();
    elsewhere(move || drop(clone));
    assert_eq!(q.0.lock().unwrap().len(), 1, "no check sent");
    q.run_all();
    assert_eq!(
        c.future.load(Ordering::SeqCst),
        0,
        "a check polled the task"
    );
    // The same, then a wake-up from elsewhere while the check is on its
    // way: it becomes a wake-up (one notice, one poll).
    let clone = w.clone();
    elsewhere(move || drop(clone));
    let other = w.clone();
    elsewhere(move || other.wake());
    assert_eq!(q.0.lock().unwrap().len(), 1, "one notice");
    assert_eq!(q.run_all(), 1);
    assert_eq!(c.future.load(Ordering::SeqCst), 1, "the wake-up was lost");
    drop(w);
    assert_eq!(q.holders(), 1);
}

#[test]
fn more_wakers_than_the_local_count_holds_spill_to_the_shared_count() {
    // The local count is an `i16`: past it, clones on the task's thread
    // count in the shared word; dropping them all, some here and some
    // elsewhere, still frees the task once.
    let q = Queue::default();
    let (h, c, w) = waiting(&q);
    let mut many: Vec<Waker> = (0..40_000).map(|_| w.clone()).collect();
    let there = many.split_off(25_000);
    elsewhere(move || drop(there));
    drop(many);
    assert!(q.take().is_empty(), "the handle is alive: no check");
    w.wake();
    assert_eq!(q.run_all(), 1);
    assert_eq!(c.future.load(Ordering::SeqCst), 1);
    drop(h);
    assert_eq!(q.holders(), 1, "not freed");
}

/// The handle's waker slot of the task behind a handle.
fn slot_word<O>(h: &Option<JoinRaw<O, Queue>>) -> usize {
    let ptr = h.as_ref().expect("the handle").ptr;
    // SAFETY: the handle keeps the task alive, and nothing else touches
    // the slot while the test thread looks (no run is in progress).
    unsafe { header::<Queue>(ptr).awaiter.word() }
}

/// A handle awaited in another task of its scheduler keeps that task's
/// waker as the task's pointer (no box: one word); the same waker again
/// changes nothing, another kind of waker is boxed (tagged), and the
/// completing run wakes the awaiting task, whose counts come back whole.
#[test]
fn a_handle_awaited_in_a_task_keeps_its_waker_as_a_bare_pointer() {
    let q = Queue::default();
    let (f, c) = steps(1, false);
    let mut h = Some(spawn_on(&q, f));
    assert_eq!(q.run_all(), 1);
    // The awaiting side: another task of the same scheduler, waiting.
    let (waiter, wc, waiter_waker) = waiting(&q);
    let mut waiter = Some(waiter);
    let cx = &mut Context::from_waker(&waiter_waker);
    assert!(JoinRaw::poll(&mut h, cx).is_pending());
    assert_eq!(
        slot_word(&h),
        waiter_waker.data() as usize,
        "not kept as the awaiting task's pointer"
    );
    let refs = local_refs(words(&waiter).1);
    assert!(JoinRaw::poll(&mut h, cx).is_pending());
    assert_eq!(slot_word(&h), waiter_waker.data() as usize);
    assert_eq!(
        local_refs(words(&waiter).1),
        refs,
        "the same waker was cloned again"
    );
    // Another kind of waker: boxed, and the task's pointer gives its
    // reference back.
    let flag = Arc::new(Flag::default());
    assert!(poll_handle(&mut h, &flag).is_pending());
    assert_eq!(slot_word(&h) & 1, 1, "a foreign waker not boxed");
    assert_eq!(local_refs(words(&waiter).1), refs - 1);
    assert_eq!(Arc::strong_count(&flag), 2);
    // Back to the task's waker, then the run completes and wakes it.
    assert!(JoinRaw::poll(&mut h, cx).is_pending());
    assert_eq!(Arc::strong_count(&flag), 1, "the boxed waker leaked");
    c.take_waker().wake();
    assert_eq!(q.run_all(), 2, "the awaiting task was not woken");
    assert_eq!(wc.future.load(Ordering::SeqCst), 1);
    assert!(matches!(poll_handle(&mut h, &flag), Poll::Ready(Some(_))));
    assert!(matches!(
        poll_handle(&mut waiter, &flag),
        Poll::Ready(Some(_))
    ));
    drop(waiter_waker);
    assert_eq!(q.holders(), 1, "a task not freed");
    assert_eq!(c.output.load(Ordering::SeqCst), 1);
    assert_eq!(wc.output.load(Ordering::SeqCst), 1);
}

/// Returns `true` once its task was asked to stop (read through the waker
/// it is polled with, as the runtime's wrapper does), else waits.
struct AbortAware;

impl Future for AbortAware {
    type Output = bool;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<bool> {
        // SAFETY: polled only by its task's run, with the task's waker.
        if unsafe { abort_requested::<Queue>(cx) } {
            return Poll::Ready(true);
        }
        drop(cx.waker().clone());
        Poll::Pending
    }
}

/// The abort request is a bit of the shared word: the handle's and an
/// abort hold's requests set it (once), wake the task, which sees it from
/// its future, and leave the waker count alone.
#[test]
fn an_abort_is_a_state_bit_the_future_sees_and_the_counts_ignore() {
    let q = Queue::default();
    let mut h = Some(spawn_on(&q, AbortAware));
    assert_eq!(q.run_all(), 1);
    let (shared, _) = words(&h);
    assert_eq!(shared & ABORTED, 0);
    let hold = h.as_ref().unwrap().abort_raw();
    let refs = shared_refs(words(&h).0) + local_refs(words(&h).1);
    h.as_ref().unwrap().abort();
    hold.abort();
    let (shared, local) = words(&h);
    assert_ne!(shared & ABORTED, 0);
    assert_eq!(shared & !(ABORTED | REFS), ATTACHED | HANDLE);
    assert_eq!(shared_refs(shared) + local_refs(local), refs);
    assert_eq!(q.run_all(), 1, "the abort did not wake the task once");
    assert!(matches!(
        poll_handle(&mut h, &Arc::new(Flag::default())),
        Poll::Ready(Some(true))
    ));
    assert_eq!(q.holders(), 2, "freed under the abort hold");
    drop(hold);
    assert_eq!(q.holders(), 1);
}

/// The header is four words: with an `async {}`-sized stage (24 bytes) a
/// task block is 56 bytes, a 64-byte allocator chunk.
#[test]
fn the_header_is_four_words() {
    assert_eq!(
        std::mem::size_of::<Header<Arc<u8>>>(),
        4 * std::mem::size_of::<usize>()
    );
    type Stage24 = std::future::Pending<[u64; 3]>;
    assert_eq!(std::mem::size_of::<Alloc<Stage24, Arc<u8>>>(), 56);
}
