//! A loom model of the task state words: the run on the task's thread, the
//! join handle, and wakers on other threads (notices), in every
//! interleaving loom explores. `raw.rs` takes loom's atomics under `--cfg corio_loom` (and
//! `blocks.rs` keeps no blocks), so this drives the real code; each model
//! checks that an output reaches its handle (or is dropped) exactly once,
//! that no wake-up is lost, and that the block is freed exactly once.
//!
//! Built and run only with the loom flag (scripts/sanitizers.sh does):
//! `RUSTFLAGS="--cfg corio_loom" cargo test --release --lib raw::loom_model`

use std::sync::Arc as StdArc;
use std::task::{Context, Poll, Wake, Waker};

use loom::sync::atomic::AtomicBool;
use loom::sync::{Arc, Mutex};
use loom::thread;

use super::*;

/// Queues woken runnables for the model's main thread to run. A std `Arc`
/// around loom's mutex: its count says how many tasks still hold it (the
/// header holding it goes only when the block is freed).
#[derive(Clone)]
struct Queue(StdArc<Mutex<Vec<Runnable<Queue>>>>);

impl Schedule for Queue {
    fn schedule(runnable: Runnable<Queue>) {
        let q = runnable.scheduler().0.clone();
        q.lock().unwrap().push(runnable);
    }

    fn is_current(&self) -> bool {
        OWNED.with(|r| r.get() == StdArc::as_ptr(&self.0).cast())
    }

    fn schedule_here(runnable: Runnable<Queue>) {
        Queue::schedule(runnable);
    }

    const WAKERS: &'static RawWakerVTable = &QUEUE_WAKERS;
}

/// One address for the model scheduler's waker functions (as the
/// runtime's `SchedRef` has).
static QUEUE_WAKERS: RawWakerVTable = Wakers::<Queue>::VTABLE;

loom::thread_local! {
    /// The queue whose tasks this model thread runs (the one that made it).
    static OWNED: std::cell::Cell<*const ()> = std::cell::Cell::new(std::ptr::null());
}

impl Queue {
    /// A queue whose tasks the calling model thread runs.
    fn new() -> Queue {
        let q = Queue(StdArc::new(Mutex::new(Vec::new())));
        OWNED.with(|o| o.set(StdArc::as_ptr(&q.0).cast()));
        q
    }

    fn run_all(&self) -> usize {
        let mut n = 0;
        loop {
            let batch = std::mem::take(&mut *self.0.lock().unwrap());
            if batch.is_empty() {
                return n;
            }
            for r in batch {
                n += 1;
                r.run();
            }
        }
    }

    /// Tasks still holding this queue (1: every block was freed).
    fn holders(&self) -> usize {
        StdArc::strong_count(&self.0)
    }
}

/// Counts its drops.
struct Counted(Arc<AtomicUsize>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// `Pending` once (keeping its waker where the model can take it), then
/// its output.
struct Once {
    waited: bool,
    waker: Arc<Mutex<Option<Waker>>>,
    out: Option<Counted>,
    /// Counts the polls that returned `Ready`.
    ready: Arc<AtomicUsize>,
    _drop: Counted,
}

impl Future for Once {
    type Output = Counted;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Counted> {
        let this = self.get_mut();
        if this.waited {
            this.ready.fetch_add(1, Ordering::SeqCst);
            return Poll::Ready(this.out.take().expect("polled after Ready"));
        }
        this.waited = true;
        *this.waker.lock().unwrap() = Some(cx.waker().clone());
        Poll::Pending
    }
}

struct Counts {
    future: Arc<AtomicUsize>,
    output: Arc<AtomicUsize>,
    ready: Arc<AtomicUsize>,
    waker: Arc<Mutex<Option<Waker>>>,
}

/// A task's future: `Once` (waits once) or ready at its first poll.
fn task(wait: bool) -> (Once, Counts) {
    let c = Counts {
        future: Arc::new(AtomicUsize::new(0)),
        output: Arc::new(AtomicUsize::new(0)),
        ready: Arc::new(AtomicUsize::new(0)),
        waker: Arc::new(Mutex::new(None)),
    };
    let f = Once {
        waited: !wait,
        waker: c.waker.clone(),
        out: Some(Counted(c.output.clone())),
        ready: c.ready.clone(),
        _drop: Counted(c.future.clone()),
    };
    (f, c)
}

fn spawn_on<F: Future>(q: &Queue, f: F) -> JoinRaw<F::Output, Queue> {
    let (runnable, handle) = spawn(q.clone(), f);
    runnable.schedule();
    handle
}

/// A waker that records that it was woken.
struct Flag(AtomicBool);

impl Wake for Flag {
    fn wake(self: StdArc<Self>) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// Polls a handle once with a fresh waker; returns the poll and the flag
/// that waker sets.
fn poll_handle<O>(h: &mut Option<JoinRaw<O, Queue>>) -> (Poll<Option<O>>, StdArc<Flag>) {
    let flag = StdArc::new(Flag(AtomicBool::new(false)));
    let waker = Waker::from(flag.clone());
    let polled = JoinRaw::poll(h, &mut Context::from_waker(&waker));
    if polled.is_ready() {
        assert!(h.is_none(), "Ready consumes the handle");
    }
    (polled, flag)
}

/// Awaits a handle as `JoinHandle` does, on the calling thread: polls, and
/// after `Pending` waits for its waker before polling again.
fn await_handle<O>(h: JoinRaw<O, Queue>) -> Option<O> {
    let mut h = Some(h);
    loop {
        let (polled, flag) = poll_handle(&mut h);
        if let Poll::Ready(out) = polled {
            return out;
        }
        // A lost wake-up hangs here, which loom reports.
        while !flag.0.load(Ordering::SeqCst) {
            thread::yield_now();
        }
    }
}

/// Another thread waits for the waker the task keeps at its `Pending` and
/// wakes it (by value, or by reference and then drops it).
fn wake_when_kept(c: &Counts, by_ref: bool) -> thread::JoinHandle<()> {
    let slot = c.waker.clone();
    thread::spawn(move || {
        loop {
            let w = slot.lock().unwrap().take();
            match w {
                Some(w) if by_ref => return w.wake_by_ref(),
                Some(w) => return w.wake(),
                None => thread::yield_now(),
            }
        }
    })
}

/// The waker the task kept at its `Pending`.
fn kept_waker(c: &Counts) -> Waker {
    c.waker.lock().unwrap().take().expect("kept waker")
}

/// The output reached its end exactly once and the block was freed.
fn assert_output_once_and_freed(q: &Queue, c: &Counts) {
    assert_eq!(c.output.load(Ordering::SeqCst), 1);
    assert_eq!(q.holders(), 1, "the task was not freed");
}

/// Runs the queue until the task's future has gone.
fn run_until_done(q: &Queue, c: &Counts) {
    while c.future.load(Ordering::SeqCst) == 0 {
        if q.run_all() == 0 {
            thread::yield_now();
        }
    }
}

#[test]
fn an_output_reaches_a_handle_awaited_on_another_thread() {
    loom::model(|| {
        let q = Queue::new();
        let (f, c) = task(false);
        let h = spawn_on(&q, f);
        let awaiting = thread::spawn(move || await_handle(h).is_some());
        q.run_all();
        assert!(awaiting.join().unwrap(), "no output");
        assert_eq!(c.output.load(Ordering::SeqCst), 1);
        assert_eq!(c.future.load(Ordering::SeqCst), 1);
        assert_eq!(q.holders(), 1, "the task was not freed");
    });
}

#[test]
fn a_wake_from_another_thread_while_the_task_runs_is_not_lost() {
    loom::model(|| {
        let q = Queue::new();
        let (f, c) = task(true);
        let h = spawn_on(&q, f);
        let waking = wake_when_kept(&c, false);
        run_until_done(&q, &c);
        waking.join().unwrap();
        assert!(await_handle(h).is_some(), "no output");
        assert_output_once_and_freed(&q, &c);
    });
}

#[test]
fn an_abort_from_another_thread_while_the_task_completes() {
    // The abort's bit (a `fetch_or` on the shared word) and its wake-up (a
    // notice) race the run's completing step and the handle's last one.
    loom::model(|| {
        let q = Queue::new();
        let (f, c) = task(false);
        let h = spawn_on(&q, f);
        let aborting = thread::spawn(move || {
            h.abort();
            await_handle(h).is_some()
        });
        run_until_done(&q, &c);
        let got = aborting.join().unwrap();
        // The notice the abort may have sent as the task finished.
        q.run_all();
        assert!(got, "no output");
        assert_output_once_and_freed(&q, &c);
    });
}

#[test]
fn a_waker_and_a_handle_on_two_other_threads() {
    // Three threads: the task waits once and is woken from one, its handle
    // is awaited on another; every step of the three may interleave.
    loom::model(|| {
        let q = Queue::new();
        let (f, c) = task(true);
        let h = spawn_on(&q, f);
        let awaiting = thread::spawn(move || await_handle(h).is_some());
        let waking = wake_when_kept(&c, true);
        run_until_done(&q, &c);
        waking.join().unwrap();
        assert!(awaiting.join().unwrap(), "no output");
        assert_output_once_and_freed(&q, &c);
    });
}

#[test]
fn a_handle_dropped_as_the_task_completes_drops_the_output_once() {
    loom::model(|| {
        let q = Queue::new();
        let (f, c) = task(false);
        let h = spawn_on(&q, f);
        let dropping = thread::spawn(move || drop(h));
        q.run_all();
        dropping.join().unwrap();
        // A handle dropped elsewhere before the run, with no waker left,
        // sends a notice (that thread cannot see that the task is queued):
        // the runtime takes it.
        q.run_all();
        assert_eq!(
            c.ready.load(Ordering::SeqCst),
            1,
            "not polled to completion"
        );
        assert_output_once_and_freed(&q, &c);
    });
}

#[test]
fn a_last_waker_dropped_on_another_thread_leaves_the_future_to_its_runtime() {
    loom::model(|| {
        let q = Queue::new();
        let (f, c) = task(true);
        drop(spawn_on(&q, f));
        q.run_all();
        let w = kept_waker(&c);
        let dropping = thread::spawn(move || drop(w));
        dropping.join().unwrap();
        // The last waker sent a notice: taking it drops the future (with
        // the output it had not returned).
        q.run_all();
        assert_eq!(c.future.load(Ordering::SeqCst), 1);
        assert_output_once_and_freed(&q, &c);
    });
}

#[test]
fn a_notice_racing_the_task_to_completion_is_taken_or_dropped_once() {
    // A wake from another thread (a notice) while the task's own thread
    // wakes and completes it: the notice finds the task queued, running,
    // or finished (then it may be what frees the block).
    loom::model(|| {
        let q = Queue::new();
        let (f, c) = task(true);
        let h = spawn_on(&q, f);
        q.run_all();
        let w = kept_waker(&c);
        let other = w.clone();
        let waking = thread::spawn(move || other.wake());
        w.wake();
        run_until_done(&q, &c);
        drop(h);
        waking.join().unwrap();
        q.run_all();
        assert_eq!(c.future.load(Ordering::SeqCst), 1);
        assert_output_once_and_freed(&q, &c);
    });
}

#[test]
fn a_check_and_a_wake_from_two_other_threads_lose_neither() {
    // A local clone dropped on one thread (a check: that thread cannot see
    // the local count) and a wake-up from another: the task runs to its end
    // whichever notice goes first, and is freed once.
    loom::model(|| {
        let q = Queue::new();
        let (f, c) = task(true);
        drop(spawn_on(&q, f));
        q.run_all();
        let w = kept_waker(&c);
        let dropped = w.clone();
        let checking = thread::spawn(move || drop(dropped));
        let waking = thread::spawn(move || w.wake());
        run_until_done(&q, &c);
        checking.join().unwrap();
        waking.join().unwrap();
        q.run_all();
        assert_eq!(c.ready.load(Ordering::SeqCst), 1, "the wake-up was lost");
        assert_output_once_and_freed(&q, &c);
    });
}

/// Polls the handle again and again without waiting for a wake-up (as a
/// `select!` may) until it is ready.
fn poll_handle_eagerly<O>(h: JoinRaw<O, Queue>) -> Option<O> {
    let mut h = Some(h);
    loop {
        if let (Poll::Ready(out), _) = poll_handle(&mut h) {
            return out;
        }
        thread::yield_now();
    }
}

/// Spawns `f` and polls its handle once, which stores the handle's waker
/// (the task has not run): returns the handle and that waker's flag.
fn spawn_awaited<F: Future>(q: &Queue, f: F) -> (JoinRaw<F::Output, Queue>, StdArc<Flag>) {
    let mut h = Some(spawn_on(q, f));
    let (polled, flag) = poll_handle(&mut h);
    assert!(polled.is_pending());
    (h.take().unwrap(), flag)
}

#[test]
fn a_handle_polled_again_as_the_task_completes_with_its_waker_gets_the_output_once() {
    // The run takes the stored waker while the handle, not waiting for the
    // wake-up, polls again: the handle must not touch the waker's slot or
    // let go of the block before the run is done with both.
    loom::model(|| {
        let q = Queue::new();
        let (f, c) = task(false);
        let (h, _) = spawn_awaited(&q, f);
        let polling = thread::spawn(move || poll_handle_eagerly(h).is_some());
        q.run_all();
        assert!(polling.join().unwrap(), "no output");
        assert_output_once_and_freed(&q, &c);
    });
}

#[test]
fn a_handle_with_its_waker_stored_dropped_as_the_task_completes() {
    // As above, with the handle dropped instead of polled: the output is
    // dropped once, and the stored waker is woken or taken back, not both.
    loom::model(|| {
        let q = Queue::new();
        let (f, c) = task(false);
        let (h, flag) = spawn_awaited(&q, f);
        let dropping = thread::spawn(move || drop(h));
        q.run_all();
        dropping.join().unwrap();
        q.run_all();
        assert_output_once_and_freed(&q, &c);
        assert_eq!(StdArc::strong_count(&flag), 1, "the stored waker leaked");
    });
}

#[test]
fn a_detached_task_completing_as_its_last_waker_goes_elsewhere_is_freed_once() {
    // The run frees a completed task with no locked step only when no
    // waker is left: here the last one is woken by reference and dropped on
    // another thread while the task runs to completion.
    loom::model(|| {
        let q = Queue::new();
        let (f, c) = task(true);
        drop(spawn_on(&q, f));
        let waking = wake_when_kept(&c, true);
        run_until_done(&q, &c);
        waking.join().unwrap();
        // A notice the waker sent (a wake or a check) is taken here.
        q.run_all();
        assert_eq!(c.future.load(Ordering::SeqCst), 1);
        assert_output_once_and_freed(&q, &c);
    });
}

#[test]
fn a_handle_that_stored_its_waker_here_then_awaited_elsewhere_is_woken() {
    // The handle stores its first waker on the task's thread with no
    // locked step (`AWAITED`), then waits on another thread with a new
    // waker while the task completes: the new waker is woken (or the
    // handle finds the output), the first one is woken or dropped, and
    // nobody touches the slot at once (loom's cell checks).
    loom::model(|| {
        let q = Queue::new();
        let (f, c) = task(false);
        let (h, first) = spawn_awaited(&q, f);
        let awaiting = thread::spawn(move || await_handle(h).is_some());
        q.run_all();
        assert!(awaiting.join().unwrap(), "no output");
        assert_output_once_and_freed(&q, &c);
        assert_eq!(StdArc::strong_count(&first), 1, "the first waker leaked");
    });
}

#[test]
fn a_handle_that_stored_its_waker_here_dropped_elsewhere_as_its_runnable_is_dropped() {
    // The task's thread drops the runnable (a shutdown: it closes the task
    // and takes the handle's waker to wake it) while the handle, whose
    // waker was stored with `AWAITED`, is dropped on another thread: the
    // waker goes once, the future once, the block once.
    loom::model(|| {
        let q = Queue::new();
        let (f, c) = task(false);
        let (h, flag) = spawn_awaited(&q, f);
        let dropping = thread::spawn(move || drop(h));
        drop(std::mem::take(&mut *q.0.lock().unwrap()));
        dropping.join().unwrap();
        // A handle dropped first, elsewhere, sent a notice: taken here.
        q.run_all();
        assert_eq!(c.future.load(Ordering::SeqCst), 1);
        assert_eq!(q.holders(), 1, "the task was not freed");
        assert_eq!(StdArc::strong_count(&flag), 1, "the stored waker leaked");
    });
}
