//! `TaskGroup`: tasks spawned together and awaited as they finish.
//!
//! How it works: each task is spawned with a guard in its future whose drop
//! (the task returned, panicked, was aborted, or its runtime shut down)
//! pushes the task's key onto the group's ready list and wakes whoever waits
//! in [`TaskGroup::join_next`]. `join_next` takes keys off that list and
//! collects those handles, which have finished by then, so waiting for the
//! next of n tasks costs O(1), not a poll of every handle. Dropping the group
//! aborts the tasks still in it. In fail-fast mode (asyncio's `TaskGroup`) a
//! task whose output is an `Err` aborts its siblings itself, as it returns
//! (through their abort handles, kept by key), and the group hands out that
//! task's result before any other.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::fmt;
use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use slab::Slab;

use super::task::{AbortHandle, JoinError, JoinHandle, spawn};

/// A set of tasks on the current runtime, awaited together, like asyncio's
/// `TaskGroup` or tokio's `JoinSet`.
///
/// [`join_next`](TaskGroup::join_next) yields each task's result as it
/// finishes; [`join_all`](TaskGroup::join_all) waits for all of them and, if
/// one fails, aborts the others and fails too. Dropping the group aborts the
/// tasks still in it (their futures are dropped on the runtime's thread);
/// [`shutdown`](TaskGroup::shutdown) does the same and waits until they are
/// gone. Tasks need not be `Send`; the group stays on its runtime's thread.
///
/// ```
/// use std::time::Duration;
///
/// corio::run(async {
///     let mut group = corio::TaskGroup::new();
///     for ms in [30u64, 10, 20] {
///         group.spawn(async move {
///             corio::time::sleep(Duration::from_millis(ms)).await;
///             ms
///         });
///     }
///     // As they finish.
///     let mut done = Vec::new();
///     while let Some(res) = group.join_next().await {
///         done.push(res.unwrap());
///     }
///     assert_eq!(done, [10, 20, 30]);
///
///     // All at once, in the order spawned.
///     let mut group = corio::TaskGroup::new();
///     for i in 0..3 {
///         group.spawn(async move { i * 10 });
///     }
///     assert_eq!(group.join_all().await, [0, 10, 20]);
/// });
/// ```
pub struct TaskGroup<T> {
    /// Each live task's spawn number and handle.
    tasks: Slab<(u64, JoinHandle<T>)>,
    ready: Rc<Ready>,
    spawned: u64,
    /// Fail-fast mode: tells whether an output is a failure.
    failed: Option<fn(&T) -> bool>,
}

/// What finished tasks leave for the group.
#[derive(Default)]
struct Ready {
    /// Keys of tasks whose futures are gone, in that order.
    keys: RefCell<VecDeque<usize>>,
    /// The task waiting in `join_next`.
    waiter: Cell<Option<Waker>>,
    /// Fail-fast mode: each live task's abort handle, by key.
    aborts: RefCell<Vec<Option<AbortHandle>>>,
    failure: Cell<Failure>,
}

/// Fail-fast mode: the first failed task, handed out before the others.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Failure {
    #[default]
    None,
    /// The task with this key failed; its result is not joined yet.
    Pending(usize),
    /// Its result was handed out.
    Delivered,
}

impl Ready {
    /// The task `key` failed: the first failure aborts every other task.
    fn fail(&self, key: usize) {
        if self.failure.get() != Failure::None {
            return;
        }
        self.failure.set(Failure::Pending(key));
        for (k, abort) in self.aborts.borrow().iter().enumerate() {
            if let (Some(abort), true) = (abort, k != key) {
                abort.abort();
            }
        }
    }

    fn set_abort(&self, key: usize, abort: Option<AbortHandle>) {
        let mut aborts = self.aborts.borrow_mut();
        if aborts.len() <= key {
            aborts.resize_with(key + 1, || None);
        }
        aborts[key] = abort;
    }
}

/// Lives in a grouped task's future; reports the task done when dropped.
struct Done {
    key: usize,
    ready: Rc<Ready>,
}

impl Drop for Done {
    fn drop(&mut self) {
        self.ready.keys.borrow_mut().push_back(self.key);
        if let Some(w) = self.ready.waiter.take() {
            w.wake();
        }
    }
}

impl<T: 'static> TaskGroup<T> {
    /// An empty group.
    pub fn new() -> TaskGroup<T> {
        TaskGroup {
            tasks: Slab::new(),
            ready: Rc::default(),
            spawned: 0,
            failed: None,
        }
    }

    /// Spawns `future` as a task of this group on the current runtime.
    ///
    /// # Panics
    ///
    /// Panics when called outside a corio runtime.
    #[track_caller]
    pub fn spawn<F>(&mut self, future: F)
    where
        F: Future<Output = T> + 'static,
    {
        // Outside a runtime, panic before the guard exists (its drop would
        // report a task that never was).
        drop(super::context::current("corio::TaskGroup::spawn"));
        let entry = self.tasks.vacant_entry();
        let key = entry.key();
        let done = Done {
            key,
            ready: self.ready.clone(),
        };
        let failed = self.failed;
        let handle = spawn(async move {
            let done = done;
            let out = future.await;
            if let Some(failed) = failed
                && failed(&out)
            {
                done.ready.fail(key);
            }
            out
        });
        if self.failed.is_some() {
            if self.ready.failure.get() != Failure::None {
                // asyncio refuses new tasks once the group fails: this one
                // is aborted before it runs.
                handle.abort();
            }
            self.ready.set_abort(key, Some(handle.abort_handle()));
        }
        entry.insert((self.spawned, handle));
        self.spawned += 1;
    }

    /// Tasks in the group: running, or finished and not yet joined.
    pub fn len(&self) -> usize {
        self.tasks.len()
    }

    /// True when the group holds no task.
    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }

    /// Waits for the next task to finish and returns its result; `None` once
    /// the group is empty. Cancel-safe: a result is never lost when the
    /// future is dropped.
    pub async fn join_next(&mut self) -> Option<Result<T, JoinError>> {
        poll_fn(|cx| self.poll_join_next(cx)).await
    }

    /// The result of a task that has finished, if any, without waiting.
    pub fn try_join_next(&mut self) -> Option<Result<T, JoinError>> {
        match self.poll_join_next(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(res) => res,
            Poll::Pending => None,
        }
    }

    /// Poll form of [`join_next`](TaskGroup::join_next).
    pub fn poll_join_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<T, JoinError>>> {
        self.poll_next_with_index(cx)
            .map(|next| next.map(|(_, res)| res))
    }

    fn poll_next_with_index(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<(u64, Result<T, JoinError>)>> {
        if let Failure::Pending(key) = self.ready.failure.get() {
            // Fail-fast: the failed task's result comes first.
            let (_, handle) = self
                .tasks
                .get_mut(key)
                .expect("a failed task is in its group");
            let res = std::task::ready!(Pin::new(handle).poll(cx));
            self.ready.failure.set(Failure::Delivered);
            self.ready.keys.borrow_mut().retain(|&k| k != key);
            return Poll::Ready(Some(self.remove(key, res)));
        }
        loop {
            if self.tasks.is_empty() {
                return Poll::Ready(None);
            }
            let next = self.ready.keys.borrow_mut().pop_front();
            let Some(key) = next else {
                self.ready.waiter.set(Some(cx.waker().clone()));
                return Poll::Pending;
            };
            let Some((_, handle)) = self.tasks.get_mut(key) else {
                continue; // defensive: a key is reported once per task
            };
            match Pin::new(handle).poll(cx) {
                Poll::Ready(res) => return Poll::Ready(Some(self.remove(key, res))),
                // The future is gone but the output is not stored yet: the
                // handle wakes this task when it is.
                Poll::Pending => {
                    self.ready.keys.borrow_mut().push_front(key);
                    return Poll::Pending;
                }
            }
        }
    }

    /// Takes task `key` out of the group, with its result.
    fn remove(&mut self, key: usize, res: Result<T, JoinError>) -> (u64, Result<T, JoinError>) {
        let (index, _) = self.tasks.remove(key);
        if self.failed.is_some() {
            self.ready.set_abort(key, None);
        }
        (index, res)
    }

    /// Waits for every task and returns their outputs in the order they were
    /// spawned.
    ///
    /// # Panics
    ///
    /// When a task fails, the others are aborted (and awaited), then: a
    /// task's panic is resumed here; an aborted task panics with a message.
    pub async fn join_all(mut self) -> Vec<T> {
        let mut out = Vec::with_capacity(self.tasks.len());
        while let Some((index, res)) = poll_fn(|cx| self.poll_next_with_index(cx)).await {
            match res {
                Ok(v) => out.push((index, v)),
                Err(e) => {
                    self.shutdown().await;
                    match e.try_into_panic() {
                        Ok(payload) => std::panic::resume_unwind(payload),
                        Err(e) => panic!("corio: a task of TaskGroup::join_all failed: {e}"),
                    }
                }
            }
        }
        out.sort_unstable_by_key(|&(index, _)| index);
        out.into_iter().map(|(_, v)| v).collect()
    }

    /// Asks every task in the group to stop (see [`JoinHandle::abort`]).
    /// They stay in the group until joined: `join_next` then yields a
    /// cancelled [`JoinError`] for each that had not finished.
    pub fn abort_all(&self) {
        for (_, (_, handle)) in &self.tasks {
            handle.abort();
        }
    }

    /// Aborts every task and waits until each has finished (its future is
    /// dropped); the group is then empty.
    pub async fn shutdown(&mut self) {
        self.abort_all();
        while self.join_next().await.is_some() {}
    }
}

impl<U: 'static, E: 'static> TaskGroup<Result<U, E>> {
    /// An empty group in fail-fast mode, as asyncio's `TaskGroup`: the first
    /// task that returns an `Err` aborts all the others at once (tasks
    /// spawned afterwards are aborted before they run), and
    /// [`join_next`](TaskGroup::join_next) yields that task's result before
    /// any other; the aborted ones then come as cancelled [`JoinError`]s.
    /// [`try_join_all`](TaskGroup::try_join_all) returns the error.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// corio::run(async {
    ///     let mut group = corio::TaskGroup::fail_fast();
    ///     group.spawn(async {
    ///         corio::time::sleep(Duration::from_secs(60)).await;
    ///         Ok(1)
    ///     });
    ///     group.spawn(async { Err("bad input") });
    ///     // The failure comes at once; the sleeper is cancelled.
    ///     assert_eq!(group.try_join_all().await, Err("bad input"));
    /// });
    /// ```
    pub fn fail_fast() -> TaskGroup<Result<U, E>> {
        let mut group = TaskGroup::new();
        group.failed = Some(Result::is_err);
        group
    }

    /// Waits for every task and returns their `Ok` values in spawn order,
    /// or the first `Err` a task returned (the others are then aborted and
    /// awaited). In fail-fast mode "first" is the first to fail in time.
    ///
    /// # Panics
    ///
    /// As [`join_all`](TaskGroup::join_all): a task's panic is resumed here,
    /// an aborted task (other than by the failure) panics with a message.
    pub async fn try_join_all(mut self) -> Result<Vec<U>, E> {
        let mut out = Vec::with_capacity(self.tasks.len());
        while let Some((index, res)) = poll_fn(|cx| self.poll_next_with_index(cx)).await {
            match res {
                Ok(Ok(v)) => out.push((index, v)),
                Ok(Err(e)) => {
                    self.shutdown().await;
                    return Err(e);
                }
                Err(e) => {
                    self.shutdown().await;
                    match e.try_into_panic() {
                        Ok(payload) => std::panic::resume_unwind(payload),
                        Err(e) => panic!("corio: a task of TaskGroup::try_join_all failed: {e}"),
                    }
                }
            }
        }
        out.sort_unstable_by_key(|&(index, _)| index);
        Ok(out.into_iter().map(|(_, v)| v).collect())
    }
}

impl<T: 'static> Default for TaskGroup<T> {
    fn default() -> Self {
        TaskGroup::new()
    }
}

impl<T> Drop for TaskGroup<T> {
    fn drop(&mut self) {
        for (_, (_, handle)) in &self.tasks {
            handle.abort();
        }
    }
}

impl<T> fmt::Debug for TaskGroup<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskGroup")
            .field("tasks", &self.tasks.len())
            .field("finished", &self.ready.keys.borrow().len())
            .finish()
    }
}
