//! `Barrier`: `n` tasks wait until all `n` have arrived.
//!
//! How it works: a lock guards the count of tasks that arrived in the
//! current round and the FIFO queue of those waiting. The `n`-th arrival is
//! the round's leader: it starts a new round and wakes (grants) the others.
//! A waiter dropped before its round completes is taken out of the count,
//! so a cancelled wait never makes a round complete short of `n`.

use std::fmt;
use std::future::poll_fn;
use std::task::Poll;

use super::flavor::{Flavor, Lock};
use super::waiters::{Waiters, WakeList};

/// Lets `n` tasks wait for each other: [`wait`](Self::wait) returns once
/// `n` tasks are in it, then the barrier can be used again.
///
/// ```
/// use std::rc::Rc;
///
/// use corio::sync::Barrier;
///
/// corio::run(async {
///     let barrier = Rc::new(Barrier::new(3));
///     let tasks: Vec<_> = (0..3)
///         .map(|_| {
///             let b = barrier.clone();
///             corio::spawn(async move { b.wait().await.is_leader() })
///         })
///         .collect();
///     let mut leaders = 0;
///     for t in tasks {
///         leaders += t.await.unwrap() as usize;
///     }
///     assert_eq!(leaders, 1); // exactly one task is told it was last
/// });
/// ```
pub struct Barrier<F: Flavor> {
    n: usize,
    state: F::Lock<State>,
}

#[derive(Debug, Default)]
struct State {
    arrived: usize,
    waiters: Waiters,
}

/// What [`Barrier::wait`] returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BarrierWaitResult(bool);

impl BarrierWaitResult {
    /// True for exactly one task per round: the one whose arrival
    /// completed it.
    pub fn is_leader(&self) -> bool {
        self.0
    }
}

impl<F: Flavor> Barrier<F> {
    /// A barrier for `n` tasks (0 acts as 1).
    pub fn new(n: usize) -> Self {
        Barrier {
            n: n.max(1),
            state: F::Lock::new(State::default()),
        }
    }

    /// Waits until `n` tasks are waiting, then returns in all of them.
    ///
    /// Cancel-safe: a wait dropped before its round completes no longer
    /// counts toward it.
    pub async fn wait(&self) -> BarrierWaitResult {
        let mut key = None;
        let guard = LeaveOnDrop {
            barrier: self,
            key: &mut key,
        };
        poll_fn(|cx| {
            let mut st = guard.barrier.state.lock();
            match *guard.key {
                Some(k) if st.waiters.is_waiting(k) => {
                    st.waiters.update(k, cx.waker());
                    Poll::Pending
                }
                Some(k) => {
                    st.waiters.remove(k);
                    *guard.key = None;
                    Poll::Ready(BarrierWaitResult(false))
                }
                None => {
                    st.arrived += 1;
                    if st.arrived < guard.barrier.n {
                        *guard.key = Some(st.waiters.push(cx.waker(), 1));
                        return Poll::Pending;
                    }
                    st.arrived = 0;
                    let mut wakers = WakeList::default();
                    st.waiters.grant_all(&mut wakers);
                    drop(st);
                    wakers.wake();
                    Poll::Ready(BarrierWaitResult(true))
                }
            }
        })
        .await
    }
}

/// Leaves the round if the wait is dropped while queued.
struct LeaveOnDrop<'a, 'k, F: Flavor> {
    barrier: &'a Barrier<F>,
    key: &'k mut Option<usize>,
}

impl<F: Flavor> Drop for LeaveOnDrop<'_, '_, F> {
    fn drop(&mut self) {
        if let Some(k) = self.key.take() {
            let mut st = self.barrier.state.lock();
            if st.waiters.is_waiting(k) {
                st.arrived -= 1;
            }
            st.waiters.remove(k);
        }
    }
}

impl<F: Flavor> fmt::Debug for Barrier<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = self.state.lock();
        f.debug_struct("Barrier")
            .field("n", &self.n)
            .field("arrived", &st.arrived)
            .finish()
    }
}
