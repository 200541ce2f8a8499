//! The semaphore every lock is built on: permits in one word, waiters in a
//! FIFO queue, written once for both flavors.
//!
//! How it works: the word holds `permits << 2 | CLOSED | WAITERS`.
//! `WAITERS` is set exactly while the waiter queue is not empty, and only
//! by someone holding the queue's lock. Without it, acquiring is one
//! compare-and-swap that takes permits and releasing one `fetch_add`: an
//! uncontended `Mutex::lock` plus unlock costs two atomic operations (on the
//! local flavor, two plain loads and stores). With it, the fast acquire
//! always fails (so a newcomer queues behind the waiters: FIFO fairness),
//! and a release that sees it takes the lock and hands the permits to the
//! waiters at the front ([`Waiters::fitting`]), in order, subtracting them
//! from the word before waking them: a woken waiter owns its permits.
//!
//! Cancel safety: a future dropped after it was granted permits gives them
//! back as a release would (to the next waiters); one dropped while it
//! waits leaves the queue and lets the waiters behind it go if they now
//! fit. No wake-up and no permit is ever lost.
//!
//! Why the fast paths cannot race the queue: an acquirer that must wait
//! sets `WAITERS` with a compare-and-swap under the lock, so a release that
//! added permits in between makes that swap fail, and the acquirer sees the
//! permits on its next try. A release whose `fetch_add` returns a word with
//! `WAITERS` set takes the lock, and by then the waiter it raced is queued.

use std::task::{Context, Poll};

use super::flavor::{Flavor, Lock, Word};
use super::waiters::{Waiters, WakeList};

const WAITERS: usize = 1;
const CLOSED: usize = 2;
const SHIFT: usize = 2;

/// The most permits a semaphore can hold (`usize::MAX >> 3`).
pub(crate) const MAX_PERMITS: usize = usize::MAX >> 3;

/// Why a non-waiting acquire failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TryFail {
    /// The semaphore is closed.
    Closed,
    /// Not enough permits now (or others wait for them).
    NoPermits,
}

pub(crate) struct Sem<F: Flavor> {
    state: F::Word,
    waiters: F::Lock<Waiters>,
}

impl<F: Flavor> Sem<F> {
    /// A semaphore with `permits` permits.
    ///
    /// # Panics
    ///
    /// Panics if `permits` exceeds [`MAX_PERMITS`].
    pub(crate) fn new(permits: usize) -> Sem<F> {
        assert!(
            permits <= MAX_PERMITS,
            "a semaphore holds at most {MAX_PERMITS} permits, not {permits}"
        );
        Sem {
            state: F::Word::new(permits << SHIFT),
            waiters: F::Lock::new(Waiters::default()),
        }
    }

    /// Permits free now.
    pub(crate) fn available(&self) -> usize {
        self.state.load() >> SHIFT
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.state.load() & CLOSED != 0
    }

    /// Takes `n` permits if they are free and nobody waits.
    #[inline]
    pub(crate) fn try_acquire(&self, n: usize) -> Result<(), TryFail> {
        let mut s = self.state.load();
        loop {
            if s & CLOSED != 0 {
                return Err(TryFail::Closed);
            }
            if s & WAITERS != 0 || s >> SHIFT < n {
                return Err(TryFail::NoPermits);
            }
            match self.state.cas(s, s - (n << SHIFT)) {
                Ok(_) => return Ok(()),
                Err(actual) => s = actual,
            }
        }
    }

    /// One step of a waiting acquire of `n` permits; `key` is the future's
    /// node in the queue while it waits. `Ready(false)`: closed.
    pub(crate) fn poll_acquire(
        &self,
        n: usize,
        key: &mut Option<usize>,
        cx: &mut Context<'_>,
    ) -> Poll<bool> {
        if let Some(k) = *key {
            let mut w = self.waiters.lock();
            if w.is_waiting(k) {
                w.update(k, cx.waker());
                return Poll::Pending;
            }
            // Woken: granted its permits, or the semaphore closed.
            *key = None;
            return Poll::Ready(w.remove(k));
        }
        match self.try_acquire(n) {
            Ok(()) => return Poll::Ready(true),
            Err(TryFail::Closed) => return Poll::Ready(false),
            Err(TryFail::NoPermits) => {}
        }
        let mut w = self.waiters.lock();
        let mut s = self.state.load();
        loop {
            if s & CLOSED != 0 {
                return Poll::Ready(false);
            }
            let res = if s & WAITERS != 0 {
                // Only lock holders clear it, and this thread holds the lock.
                Ok(s)
            } else if s >> SHIFT >= n {
                match self.state.cas(s, s - (n << SHIFT)) {
                    Ok(_) => return Poll::Ready(true),
                    Err(actual) => Err(actual),
                }
            } else {
                self.state.cas(s, s | WAITERS)
            };
            match res {
                Ok(_) => {
                    *key = Some(w.push(cx.waker(), n));
                    return Poll::Pending;
                }
                Err(actual) => s = actual,
            }
        }
    }

    /// An acquire future of `n` permits was dropped while it waited in
    /// the queue as `key`: gives back what it was granted, or leaves the
    /// queue letting those behind it go.
    pub(crate) fn cancel(&self, n: usize, key: usize) {
        let mut wakers = WakeList::default();
        let mut w = self.waiters.lock();
        if w.remove(key) {
            self.state.fetch_add(n << SHIFT);
        }
        self.grant_locked(&mut w, &mut wakers);
        drop(w);
        wakers.wake();
    }

    /// Gives back (or adds) `n` permits, waking waiters they serve.
    #[inline]
    pub(crate) fn release(&self, n: usize) {
        if n == 0 {
            return;
        }
        let prev = self.state.fetch_add(n << SHIFT);
        debug_assert!(
            prev >> SHIFT <= MAX_PERMITS - n,
            "semaphore permits overflow"
        );
        if prev & WAITERS != 0 {
            self.release_slow();
        }
    }

    #[cold]
    fn release_slow(&self) {
        let mut wakers = WakeList::default();
        let mut w = self.waiters.lock();
        self.grant_locked(&mut w, &mut wakers);
        drop(w);
        wakers.wake();
    }

    /// Adds `n` permits.
    ///
    /// # Panics
    ///
    /// Panics if the total would exceed [`MAX_PERMITS`].
    pub(crate) fn add_permits(&self, n: usize) {
        let mut s = self.state.load();
        loop {
            assert!(
                (s >> SHIFT)
                    .checked_add(n)
                    .is_some_and(|t| t <= MAX_PERMITS),
                "a semaphore holds at most {MAX_PERMITS} permits"
            );
            // Add with a swap, not `fetch_add`, so the check holds.
            match self.state.cas(s, s + (n << SHIFT)) {
                Ok(_) => break,
                Err(actual) => s = actual,
            }
        }
        if s & WAITERS != 0 {
            self.release_slow();
        }
    }

    /// Removes up to `n` free permits; returns how many.
    pub(crate) fn forget(&self, n: usize) -> usize {
        let mut s = self.state.load();
        loop {
            let take = n.min(s >> SHIFT);
            match self.state.cas(s, s - (take << SHIFT)) {
                Ok(_) => return take,
                Err(actual) => s = actual,
            }
        }
    }

    /// Closes: acquires fail from now on and waiting ones wake with an error.
    pub(crate) fn close(&self) {
        let mut wakers = WakeList::default();
        let mut w = self.waiters.lock();
        self.state.fetch_or(CLOSED);
        w.wake_all(&mut wakers);
        self.state.fetch_and(!WAITERS);
        drop(w);
        wakers.wake();
    }

    /// Hands free permits to the waiters at the front that they serve, and
    /// clears `WAITERS` when none is left waiting. Call with the lock held.
    fn grant_locked(&self, w: &mut Waiters, wakers: &mut WakeList) {
        let mut s = self.state.load();
        loop {
            if s & WAITERS == 0 {
                // Nobody waits (the flag is set whenever someone does).
                return;
            }
            let (count, total) = w.fitting(s >> SHIFT);
            let mut new = s - (total << SHIFT);
            if count == w.len() {
                new &= !WAITERS;
            }
            if new == s {
                return;
            }
            // Only releases change the word meanwhile (fast acquires fail
            // while WAITERS is set): retry with their permits added.
            match self.state.cas(s, new) {
                Ok(_) => {
                    for _ in 0..count {
                        wakers.extend(w.grant_front());
                    }
                    return;
                }
                Err(actual) => s = actual,
            }
        }
    }

    /// Nodes in the queue, waiting or granted but not yet removed (tests).
    #[cfg(test)]
    pub(crate) fn queued(&self) -> usize {
        self.waiters.lock().nodes()
    }
}

impl<F: Flavor> std::fmt::Debug for Sem<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = self.state.load();
        f.debug_struct("Semaphore")
            .field("permits", &(s >> SHIFT))
            .field("waiters", &(s & WAITERS != 0))
            .field("closed", &(s & CLOSED != 0))
            .finish()
    }
}

/// A future waiting for `n` permits of a [`Sem`]; leaves the queue (passing
/// on permits it was granted) when dropped.
pub(crate) struct Acquire<'a, F: Flavor> {
    sem: &'a Sem<F>,
    n: usize,
    key: Option<usize>,
}

impl<'a, F: Flavor> Acquire<'a, F> {
    pub(crate) fn new(sem: &'a Sem<F>, n: usize) -> Self {
        Acquire { sem, n, key: None }
    }
}

impl<F: Flavor> std::future::Future for Acquire<'_, F> {
    /// `false`: the semaphore is closed.
    type Output = bool;

    #[inline]
    fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<bool> {
        let this = &mut *self;
        this.sem.poll_acquire(this.n, &mut this.key, cx)
    }
}

impl<F: Flavor> Drop for Acquire<'_, F> {
    fn drop(&mut self) {
        if let Some(k) = self.key.take() {
            self.sem.cancel(self.n, k);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::pin::Pin;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::{Context, Poll, Wake, Waker};

    use super::{Acquire, Sem, TryFail};
    use crate::sync::flavor::{Local, Shared};

    struct Count(AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn counter() -> (Arc<Count>, Waker) {
        let c = Arc::new(Count(AtomicUsize::new(0)));
        (c.clone(), Waker::from(c))
    }

    fn poll<F: crate::sync::flavor::Flavor>(a: &mut Acquire<'_, F>, w: &Waker) -> Poll<bool> {
        Pin::new(a).poll(&mut Context::from_waker(w))
    }

    use std::future::Future;

    #[test]
    fn fast_path_and_fifo_hand_off() {
        let sem = Sem::<Shared>::new(1);
        assert_eq!(sem.try_acquire(1), Ok(()));
        let (ca, wa) = counter();
        let (cb, wb) = counter();
        let mut a = Acquire::new(&sem, 1);
        let mut b = Acquire::new(&sem, 1);
        assert!(poll(&mut a, &wa).is_pending());
        assert!(poll(&mut b, &wb).is_pending());
        // A newcomer may not overtake the queue, even when a permit is free.
        sem.release(1);
        assert_eq!(ca.0.load(Ordering::SeqCst), 1);
        assert_eq!(cb.0.load(Ordering::SeqCst), 0);
        assert_eq!(sem.available(), 0);
        assert_eq!(sem.try_acquire(1), Err(TryFail::NoPermits));
        assert_eq!(poll(&mut a, &wa), Poll::Ready(true));
        sem.release(1);
        assert_eq!(poll(&mut b, &wb), Poll::Ready(true));
        sem.release(1);
        assert_eq!(sem.available(), 1);
        assert_eq!(sem.queued(), 0);
        assert_eq!(sem.try_acquire(1), Ok(()));
    }

    #[test]
    fn a_dropped_granted_waiter_passes_its_permits_on() {
        let sem = Sem::<Local>::new(0);
        let (ca, wa) = counter();
        let (cb, wb) = counter();
        let mut a = Acquire::new(&sem, 2);
        let mut b = Acquire::new(&sem, 1);
        assert!(poll(&mut a, &wa).is_pending());
        assert!(poll(&mut b, &wb).is_pending());
        sem.release(2);
        assert_eq!(ca.0.load(Ordering::SeqCst), 1);
        assert_eq!(cb.0.load(Ordering::SeqCst), 0);
        drop(a);
        assert_eq!(cb.0.load(Ordering::SeqCst), 1);
        assert_eq!(poll(&mut b, &wb), Poll::Ready(true));
        assert_eq!(sem.available(), 1);
        drop(b);
        assert_eq!(sem.available(), 1, "a finished acquire owns its permit");
    }

    #[test]
    fn a_dropped_front_waiter_unblocks_smaller_ones_behind_it() {
        let sem = Sem::<Shared>::new(1);
        let (_, wa) = counter();
        let (cb, wb) = counter();
        let mut a = Acquire::new(&sem, 3);
        let mut b = Acquire::new(&sem, 1);
        assert!(poll(&mut a, &wa).is_pending());
        assert!(poll(&mut b, &wb).is_pending());
        assert_eq!(cb.0.load(Ordering::SeqCst), 0);
        drop(a);
        assert_eq!(cb.0.load(Ordering::SeqCst), 1);
        assert_eq!(poll(&mut b, &wb), Poll::Ready(true));
        assert_eq!(sem.available(), 0);
        assert_eq!(sem.queued(), 0);
        // The queue is empty again: the fast path works.
        sem.release(1);
        assert_eq!(sem.try_acquire(1), Ok(()));
    }

    #[test]
    fn close_wakes_waiters_without_permits() {
        let sem = Sem::<Shared>::new(0);
        let (ca, wa) = counter();
        let mut a = Acquire::new(&sem, 1);
        assert!(poll(&mut a, &wa).is_pending());
        sem.close();
        assert_eq!(ca.0.load(Ordering::SeqCst), 1);
        assert_eq!(poll(&mut a, &wa), Poll::Ready(false));
        assert_eq!(sem.try_acquire(0), Err(TryFail::Closed));
        sem.release(2);
        assert_eq!(sem.available(), 2);
    }

    #[test]
    fn add_and_forget_permits() {
        let sem = Sem::<Local>::new(1);
        sem.add_permits(4);
        assert_eq!(sem.available(), 5);
        assert_eq!(sem.forget(2), 2);
        assert_eq!(sem.forget(10), 3);
        assert_eq!(sem.available(), 0);
    }

    #[test]
    #[should_panic(expected = "at most")]
    fn too_many_permits_panics() {
        let sem = Sem::<Local>::new(super::MAX_PERMITS);
        sem.add_permits(1);
    }
}
