//! Per-runtime timer store: a 4-ary min-heap of deadlines over a slab of entries, with lazy
//! removal.
//!
//! How it works: every timer lives in a `Slab<Entry>`; its key is handed to the `Sleep` future.
//! The heap (`Vec<HeapNode>`) holds `(deadline, seq, key)` ordered by `(deadline, seq)`, so equal
//! deadlines fire in insertion order; `seq` also tells a node from a later timer that reuses its
//! key. Removing a pending timer only frees its entry: its node goes stale and is skipped (and
//! dropped) when it reaches the top, so sifting never touches the slab and a cancelled timeout
//! costs no heap work. When stale nodes outnumber live ones the heap is rebuilt without them, so
//! it stays within twice the live timers. The top node is always live, so `next_deadline` is
//! exact. Four children per node halve the depth of a binary heap (a pop from 100,000 timers
//! touches 9 levels, not 17). Firing pops the heap, marks the entry fired and wakes its waker;
//! the entry stays in the slab until the `Sleep` observes it via `poll` or is dropped (`remove`).
//! Both the slab and the heap reuse their capacity, so steady-state use does not allocate.

use std::task::Waker;
use std::time::Instant;

use slab::Slab;

/// Children per heap node.
const ARITY: usize = 4;

/// Below this heap length stale nodes are left for the pops to drop.
const COMPACT_MIN: usize = 64;

/// One registered timer. Its deadline lives in its heap node while pending and is not needed
/// once fired, so it is not duplicated here.
#[derive(Debug)]
struct Entry {
    /// Task to wake on firing (taken when woken).
    waker: Option<Waker>,
    /// Sequence number of this timer's heap node.
    seq: u32,
    /// Still in the heap (not fired yet).
    pending: bool,
}

/// A heap node; the deadline is duplicated here so sifting never touches the slab to compare.
/// 16 bytes, so a node's four children fill one cache line.
#[derive(Debug, Clone, Copy)]
struct HeapNode {
    /// Deadline of the entry, in nanoseconds since the store's `base`.
    deadline: u64,
    /// Insertion sequence number (wrapping): breaks ties between equal deadlines, and tells
    /// the node of a removed timer from that of a later timer with the same key.
    seq: u32,
    /// Slab key of the entry.
    key: u32,
}

impl HeapNode {
    /// Heap ordering: earlier deadline first, then earlier insertion.
    fn before(&self, other: &HeapNode) -> bool {
        (self.deadline, self.seq) < (other.deadline, other.seq)
    }
}

/// Timers of one runtime: pending ones in a min-heap, fired-but-unobserved ones only in the slab.
#[derive(Debug)]
pub(crate) struct TimerStore {
    /// The instant deadlines are measured from (earlier deadlines count as `base`).
    base: Instant,
    /// All live entries (pending and fired-but-not-yet-polled).
    entries: Slab<Entry>,
    /// Min-heap of pending entries' nodes, plus stale nodes of removed ones (never on top).
    heap: Vec<HeapNode>,
    /// Stale nodes in `heap`.
    stale: usize,
    /// Next insertion sequence number.
    next_seq: u32,
}

impl Default for TimerStore {
    fn default() -> Self {
        TimerStore {
            base: Instant::now(),
            entries: Slab::new(),
            heap: Vec::new(),
            stale: 0,
            next_seq: 0,
        }
    }
}

impl TimerStore {
    /// Creates an empty store.
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Registers a timer; returns its key. The key stays valid until `remove` or until `poll`
    /// returns true.
    pub(crate) fn insert(&mut self, deadline: Instant, waker: &Waker) -> usize {
        let deadline = self.ns(deadline);
        let seq = self.next_seq;
        self.next_seq = self.next_seq.wrapping_add(1);
        let key = self.entries.insert(Entry {
            waker: Some(waker.clone()),
            seq,
            pending: true,
        });
        let node = HeapNode {
            deadline,
            seq,
            key: key as u32,
        };
        self.heap.push(node);
        self.sift_up(self.heap.len() - 1);
        key
    }

    /// Called by the `Sleep` future on each poll: if the timer has fired, frees the entry and
    /// returns true; otherwise stores the waker (cloned only if it would not wake the stored one)
    /// and returns false.
    pub(crate) fn poll(&mut self, key: usize, waker: &Waker) -> bool {
        let Some(entry) = self.entries.get_mut(key) else {
            debug_assert!(false, "TimerStore::poll: unknown key {key}");
            return true;
        };
        if !entry.pending {
            self.entries.remove(key);
            return true;
        }
        match &mut entry.waker {
            Some(old) if old.will_wake(waker) => {}
            slot => *slot = Some(waker.clone()),
        }
        false
    }

    /// Frees the entry (fired or not); called when the `Sleep` is dropped. An unknown key is a bug:
    /// it trips a `debug_assert` but is ignored in release builds.
    pub(crate) fn remove(&mut self, key: usize) {
        let Some(entry) = self.entries.try_remove(key) else {
            debug_assert!(false, "TimerStore::remove: unknown key {key}");
            return;
        };
        if entry.pending {
            self.stale += 1;
            if self.stale > self.heap.len() / 2 && self.heap.len() >= COMPACT_MIN {
                self.compact();
            } else {
                self.drop_stale_top();
            }
        }
    }

    /// Earliest pending (unfired) deadline.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.heap
            .first()
            .map(|n| self.base + std::time::Duration::from_nanos(n.deadline))
    }

    /// `t` in nanoseconds since `base` (0 before it).
    fn ns(&self, t: Instant) -> u64 {
        t.saturating_duration_since(self.base).as_nanos() as u64
    }

    /// Fires every pending timer with `deadline <= now`: takes it out of the heap, marks the entry
    /// fired and wakes its waker. Returns how many fired.
    pub(crate) fn fire_expired(&mut self, now: Instant) -> usize {
        let mut fired = 0;
        let now = self.ns(now);
        while let Some(top) = self.heap.first()
            && top.deadline <= now
        {
            let key = top.key as usize;
            self.pop();
            // The top is live (stale nodes never stay there).
            let entry = &mut self.entries[key];
            entry.pending = false;
            if let Some(waker) = entry.waker.take() {
                waker.wake();
            }
            fired += 1;
            self.drop_stale_top();
        }
        fired
    }

    /// Number of entries (fired-but-not-yet-polled included).
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    #[cfg(test)]
    /// Whether the store holds no entries at all.
    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// True when `node` belongs to a timer that is still pending.
    fn is_live(&self, node: &HeapNode) -> bool {
        self.entries
            .get(node.key as usize)
            .is_some_and(|e| e.pending && e.seq == node.seq)
    }

    /// Pops stale nodes off the top until a live one (or nothing) is there.
    fn drop_stale_top(&mut self) {
        while let Some(top) = self.heap.first()
            && !self.is_live(top)
        {
            self.pop();
            self.stale -= 1;
        }
    }

    /// Rebuilds the heap from its live nodes (O(n)).
    fn compact(&mut self) {
        let mut heap = std::mem::take(&mut self.heap);
        heap.retain(|n| self.is_live(n));
        self.heap = heap;
        self.stale = 0;
        for pos in (0..self.heap.len() / ARITY + 1).rev() {
            if pos < self.heap.len() {
                self.sift_down(pos);
            }
        }
    }

    /// Removes the top node.
    fn pop(&mut self) {
        self.heap.swap_remove(0);
        if !self.heap.is_empty() {
            self.sift_down(0);
        }
    }

    /// Moves the node at `pos` up until its parent is not after it.
    fn sift_up(&mut self, mut pos: usize) {
        let node = self.heap[pos];
        while pos > 0 {
            let parent = (pos - 1) / ARITY;
            if !node.before(&self.heap[parent]) {
                break;
            }
            self.heap[pos] = self.heap[parent];
            pos = parent;
        }
        self.heap[pos] = node;
    }

    /// Moves the node at `pos` down until no child is before it.
    fn sift_down(&mut self, mut pos: usize) {
        let node = self.heap[pos];
        let len = self.heap.len();
        loop {
            let first = ARITY * pos + 1;
            if first >= len {
                break;
            }
            let mut child = first;
            for c in first + 1..(first + ARITY).min(len) {
                if self.heap[c].before(&self.heap[child]) {
                    child = c;
                }
            }
            if !self.heap[child].before(&node) {
                break;
            }
            self.heap[pos] = self.heap[child];
            pos = child;
        }
        self.heap[pos] = node;
    }

    /// Panics if the heap order, the stale count or the live top is broken.
    #[cfg(test)]
    fn check_invariants(&self) {
        for (i, node) in self.heap.iter().enumerate() {
            assert!(i == 0 || !node.before(&self.heap[(i - 1) / ARITY]), "order");
        }
        let live = self.heap.iter().filter(|n| self.is_live(n)).count();
        let pending = self.entries.iter().filter(|(_, e)| e.pending).count();
        assert_eq!(live, pending, "a pending timer has no live node");
        assert_eq!(self.heap.len() - live, self.stale, "stale count");
        assert!(
            self.heap.first().is_none_or(|n| self.is_live(n)),
            "stale top"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
    use std::sync::{Arc, Mutex};
    use std::task::Wake;
    use std::time::Duration;

    struct Xorshift(u64);
    impl Xorshift {
        fn next(&mut self, bound: u64) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0 % bound
        }
    }

    struct Counter(Arc<AtomicUsize>);
    impl Wake for Counter {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, SeqCst);
        }
    }

    /// Ids of woken `Recorder`s, in wake order.
    type Log = Arc<Mutex<Vec<usize>>>;
    /// Waker that appends its id to a shared log, to observe firing order.
    struct Recorder(usize, Log);
    impl Wake for Recorder {
        fn wake(self: Arc<Self>) {
            self.1.lock().unwrap().push(self.0);
        }
    }

    fn ms(n: u64) -> Instant {
        thread_local!(static BASE: Instant = Instant::now());
        BASE.with(|b| *b + Duration::from_millis(n))
    }

    /// Inserts `n` timers with random deadlines below `n / 8` ms (so many tie), each with a
    /// `Recorder` waker whose id is its insertion index. Returns `(deadline, id, key)` per timer.
    fn fill(
        s: &mut TimerStore,
        rng: &mut Xorshift,
        n: usize,
    ) -> (Vec<(Instant, usize, usize)>, Log) {
        let log = Arc::default();
        let timers = (0..n).map(|id| {
            let d = ms(rng.next(n as u64 / 8));
            let w = Waker::from(Arc::new(Recorder(id, Arc::clone(&log))));
            (d, id, s.insert(d, &w))
        });
        (timers.collect(), log)
    }

    #[test]
    fn fires_in_deadline_then_insertion_order() {
        let mut s = TimerStore::new();
        let (mut timers, log) = fill(&mut s, &mut Xorshift(0x9E37_79B9_7F4A_7C15), 2000);
        assert_eq!(s.fire_expired(ms(1000)), 2000);
        timers.sort(); // by (deadline, insertion id)
        let want: Vec<_> = timers.iter().map(|t| t.1).collect();
        assert_eq!(*log.lock().unwrap(), want);
        assert_eq!(
            (s.len(), s.next_deadline()),
            (2000, None),
            "fired stay until polled"
        );
        assert!(timers.iter().all(|t| s.poll(t.2, Waker::noop())) && s.is_empty());
    }

    #[test]
    fn remove_from_middle_keeps_invariants() {
        let (mut s, mut rng) = (TimerStore::new(), Xorshift(42));
        let (mut timers, _) = fill(&mut s, &mut rng, 500);
        while !timers.is_empty() {
            let (_, _, key) = timers.swap_remove(rng.next(timers.len() as u64) as usize);
            s.remove(key);
            s.check_invariants();
            assert_eq!(s.len(), timers.len());
            assert_eq!(s.next_deadline(), timers.iter().map(|t| t.0).min());
        }
    }

    #[test]
    fn poll_and_remove_around_firing() {
        let mut s = TimerStore::new();
        let a = s.insert(ms(10), Waker::noop());
        let b = s.insert(ms(20), Waker::noop());
        assert!(!s.poll(a, Waker::noop()));
        assert_eq!(s.fire_expired(ms(9)), 0);
        assert!(!s.poll(a, Waker::noop()), "poll is true only after firing");
        assert_eq!(s.fire_expired(ms(10)), 1, "deadline == now fires");
        assert!(!s.poll(b, Waker::noop()));
        s.remove(a); // fired but never polled
        s.check_invariants();
        assert_eq!((s.len(), s.next_deadline()), (1, Some(ms(20))));
        assert_eq!(s.fire_expired(ms(30)), 1);
        assert!(s.poll(b, Waker::noop()) && s.is_empty());
        assert_eq!(s.fire_expired(ms(40)), 0);
    }

    #[test]
    fn a_removed_timers_node_never_fires_the_timer_reusing_its_key() {
        let mut s = TimerStore::new();
        let keep = s.insert(ms(5), Waker::noop()); // keeps the stale node off the top
        let a = s.insert(ms(10), Waker::noop());
        s.remove(a);
        let count = Arc::new(AtomicUsize::new(0));
        let wb = Waker::from(Arc::new(Counter(count.clone())));
        let b = s.insert(ms(50), &wb);
        assert_eq!(a, b, "the slab reuses the key");
        s.check_invariants();
        assert_eq!(s.fire_expired(ms(20)), 1, "only `keep` is due");
        assert_eq!(count.load(SeqCst), 0, "b fired by a's stale node");
        assert!(!s.poll(b, &wb));
        assert!(s.poll(keep, Waker::noop()));
        assert_eq!(s.next_deadline(), Some(ms(50)));
        assert_eq!(s.fire_expired(ms(50)), 1);
        assert_eq!(count.load(SeqCst), 1);
        s.check_invariants();
    }

    #[test]
    fn many_cancelled_timeouts_keep_the_heap_small() {
        // Timeouts that never fire (the usual fate of an I/O timeout): the heap holds at
        // most about twice the live timers.
        let (mut s, mut rng) = (TimerStore::new(), Xorshift(99));
        let mut live = std::collections::VecDeque::new();
        for i in 0..200_000u64 {
            live.push_back(s.insert(ms(1000 + rng.next(30_000)), Waker::noop()));
            if live.len() > 1000 {
                s.remove(live.pop_front().unwrap());
            }
            if i % 997 == 0 {
                s.check_invariants();
            }
            assert!(
                s.heap.len() <= 2 * 1001 + 1,
                "heap grew to {}",
                s.heap.len()
            );
        }
        while let Some(k) = live.pop_front() {
            s.remove(k);
        }
        assert!(s.is_empty() && s.next_deadline().is_none());
        assert!(
            s.heap.len() < COMPACT_MIN,
            "{} stale nodes left",
            s.heap.len()
        );
    }

    #[test]
    fn next_deadline_after_removals() {
        let mut s = TimerStore::new();
        let k = [50, 10, 30, 20, 40].map(|d| s.insert(ms(d), Waker::noop()));
        assert_eq!(s.next_deadline(), Some(ms(10)));
        for (i, next) in [(1, 20), (2, 20), (3, 40)] {
            s.remove(k[i]);
            assert_eq!(s.next_deadline(), Some(ms(next)));
        }
        s.fire_expired(ms(45));
        assert_eq!(s.next_deadline(), Some(ms(50)), "fired are not pending");
        s.remove(k[0]);
        assert_eq!(s.next_deadline(), None);
        s.check_invariants();
    }

    #[test]
    fn large_random_sequence_matches_sorted_model() {
        let (mut s, mut rng) = (TimerStore::new(), Xorshift(0xDEAD_BEEF));
        let (mut model, log) = fill(&mut s, &mut rng, 100_000);
        for _ in 0..30_000 {
            s.remove(model.swap_remove(rng.next(model.len() as u64) as usize).2);
        }
        s.check_invariants();
        model.sort();
        let (mut done, mut now) = (0, 0);
        while done < model.len() {
            assert_eq!(s.next_deadline(), Some(model[done].0));
            now += rng.next(300);
            let n = model[done..].iter().take_while(|t| t.0 <= ms(now)).count();
            assert_eq!(s.fire_expired(ms(now)), n);
            let fired = &model[done..done + n];
            let want: Vec<_> = fired.iter().map(|t| t.1).collect();
            assert_eq!(std::mem::take(&mut *log.lock().unwrap()), want);
            assert!(fired.iter().all(|t| s.poll(t.2, Waker::noop())));
            done += n;
            assert_eq!(s.len(), model.len() - done);
            if now % 7 == 0 {
                s.check_invariants();
            }
        }
        assert!(s.is_empty() && s.next_deadline().is_none());
    }

    #[test]
    fn waker_wake_counts() {
        let mut s = TimerStore::new();
        let counts: [Arc<AtomicUsize>; 3] = Default::default();
        let [w1, w2, w3] = counts.clone().map(|n| Waker::from(Arc::new(Counter(n))));
        let a = s.insert(ms(10), &w1);
        assert!(!s.poll(a, &w1.clone())); // same task: kept
        assert!(!s.poll(a, &w2)); // moved to another task: replaced
        let b = s.insert(ms(10), &w3);
        s.remove(b); // cancelled: never woken
        assert_eq!(s.fire_expired(ms(10)), 1);
        assert_eq!(s.fire_expired(ms(10)), 0, "no double firing");
        assert!(s.poll(a, &w2), "polling a fired timer does not wake");
        assert_eq!(counts.map(|n| n.load(SeqCst)), [0, 1, 0]);
    }

    #[test]
    fn churn_of_1m_timers_does_not_grow_memory() {
        let (mut s, mut rng, mut live) = (TimerStore::new(), Xorshift(7), Vec::new());
        for i in 0..1_000_000 {
            live.push(s.insert(ms(rng.next(1000)), Waker::noop()));
            if live.len() > 16 {
                s.remove(live.swap_remove(rng.next(live.len() as u64) as usize));
            }
            if i % 1000 == 0 {
                s.fire_expired(ms(rng.next(1000))); // fired entries stay in the slab
            }
        }
        assert!(s.len() <= 17);
        // Stale nodes of removed timers are compacted away at COMPACT_MIN.
        let caps = (s.entries.capacity(), s.heap.capacity());
        assert!(
            caps.0 <= 32 && caps.1 <= 2 * COMPACT_MIN,
            "capacity grew: {caps:?}"
        );
        s.check_invariants();
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "unknown key")]
    fn remove_unknown_key_debug_asserts() {
        let mut s = TimerStore::new();
        let k = s.insert(ms(0), Waker::noop());
        s.remove(k);
        s.remove(k);
    }
}
