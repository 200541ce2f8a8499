//! The blocking pool: threads for work that has no readiness (files on the
//! poll driver, `spawn_blocking`).
//!
//! How it works: jobs go into a queue guarded by a mutex; an idle thread takes
//! the next one, and a new thread is started only when none is idle and the
//! pool is below its limit (further jobs wait in the queue: the pool is
//! bounded). Idle threads exit after a while. The runtime owns the pool: when
//! it is dropped, queued jobs that never started are dropped, and the drop
//! waits for running jobs to return and their threads to exit.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

type Job = Box<dyn FnOnce() + Send>;

/// How long an idle pool thread waits for work before it exits.
const IDLE: Duration = Duration::from_secs(10);

#[derive(Default)]
struct State {
    queue: VecDeque<Job>,
    idle: usize,
    threads: usize,
    shutdown: bool,
    handles: Vec<JoinHandle<()>>,
}

struct Inner {
    state: Mutex<State>,
    cond: Condvar,
    max_threads: usize,
}

/// A bounded pool of threads for blocking work.
#[derive(Clone)]
pub(crate) struct BlockingPool {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for BlockingPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockingPool")
            .field("max_threads", &self.inner.max_threads)
            .finish_non_exhaustive()
    }
}

impl BlockingPool {
    pub(crate) fn new(max_threads: usize) -> BlockingPool {
        BlockingPool {
            inner: Arc::new(Inner {
                state: Mutex::new(State::default()),
                cond: Condvar::new(),
                max_threads: max_threads.max(1),
            }),
        }
    }

    /// Queues `job`; it runs on a pool thread as soon as one is free.
    pub(crate) fn execute(&self, job: Job) {
        let mut st = self.inner.state.lock().unwrap_or_else(|e| e.into_inner());
        if st.shutdown {
            return;
        }
        st.queue.push_back(job);
        if st.idle > 0 {
            self.inner.cond.notify_one();
        } else if st.threads < self.inner.max_threads {
            st.threads += 1;
            st.handles.retain(|h| !h.is_finished());
            let inner = self.inner.clone();
            let spawned = std::thread::Builder::new()
                .name("corio-blocking".into())
                .spawn(move || worker(inner));
            match spawned {
                Ok(h) => st.handles.push(h),
                // No thread now: the job waits for a running thread, or the
                // next `execute` tries again.
                Err(_) => st.threads -= 1,
            }
        }
    }

    /// Drops jobs that never started and waits for the threads to exit.
    pub(crate) fn shutdown(&self) {
        let (handles, queued) = {
            let mut st = self.inner.state.lock().unwrap_or_else(|e| e.into_inner());
            st.shutdown = true;
            (
                std::mem::take(&mut st.handles),
                std::mem::take(&mut st.queue),
            )
        };
        drop(queued);
        self.inner.cond.notify_all();
        let me = std::thread::current().id();
        for h in handles {
            if h.thread().id() != me {
                let _ = h.join();
            }
        }
    }
}

fn worker(inner: Arc<Inner>) {
    let mut st = inner.state.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        if let Some(job) = st.queue.pop_front() {
            drop(st);
            // A panicking job is caught by its own wrapper; keep the thread.
            job();
            st = inner.state.lock().unwrap_or_else(|e| e.into_inner());
            continue;
        }
        if st.shutdown {
            break;
        }
        st.idle += 1;
        let (guard, timeout) = inner
            .cond
            .wait_timeout(st, IDLE)
            .unwrap_or_else(|e| e.into_inner());
        st = guard;
        st.idle -= 1;
        if timeout.timed_out() && st.queue.is_empty() {
            break;
        }
    }
    st.threads -= 1;
}
