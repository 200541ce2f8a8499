//! A FIFO list of waiting futures, each removable in O(1) when it is
//! dropped: the one waiter queue behind every corio sync primitive.
//!
//! How it works: nodes live in a `Slab`; the waiting ones are linked in a
//! doubly linked list through slab keys (no intrusive pointers, no unsafe).
//! A future that starts to wait pushes a node and keeps its key; it removes
//! the node itself when it completes or is dropped, so keys are never
//! reused under a live future. Waking a node unlinks it and marks it
//! `granted` (it was handed what it waited for: permits, a channel slot, a
//! notification) or not (it was woken because the primitive closed); the
//! node stays in the slab until its future removes it and so learns which.
//! A future dropped while granted hands its grant on (see each primitive):
//! that is what makes waiting cancel-safe.
//!
//! Each node also carries what it needs (`need`: permits for a semaphore),
//! so [`Waiters::fitting`] can tell how many waiters at the front can be
//! served from what is available, in order.

use std::task::Waker;

use slab::Slab;

#[derive(Debug)]
struct Node {
    waker: Option<Waker>,
    prev: Option<usize>,
    next: Option<usize>,
    /// What the waiter needs (permits; 1 elsewhere).
    need: usize,
    /// In the waiting list (not yet woken).
    linked: bool,
    /// Woken because what it waited for was handed to it.
    granted: bool,
}

/// The waiting futures of one kind, oldest first.
#[derive(Debug, Default)]
pub(crate) struct Waiters {
    nodes: Slab<Node>,
    head: Option<usize>,
    tail: Option<usize>,
    /// Linked (waiting) nodes.
    waiting: usize,
}

impl Waiters {
    /// True when no node is waiting (woken nodes not yet removed don't count).
    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.head.is_none()
    }

    /// Nodes waiting now.
    pub(crate) fn len(&self) -> usize {
        self.waiting
    }

    /// Number of nodes, waiting or woken but not yet removed.
    #[cfg(test)]
    pub(crate) fn nodes(&self) -> usize {
        self.nodes.len()
    }

    /// Appends a waiting node that needs `need`; returns its key.
    pub(crate) fn push(&mut self, waker: &Waker, need: usize) -> usize {
        let key = self.nodes.insert(Node {
            waker: Some(waker.clone()),
            prev: self.tail,
            next: None,
            need,
            linked: true,
            granted: false,
        });
        match self.tail {
            Some(t) => self.nodes[t].next = Some(key),
            None => self.head = Some(key),
        }
        self.tail = Some(key);
        self.waiting += 1;
        key
    }

    /// True while `key` waits (has not been woken).
    pub(crate) fn is_waiting(&self, key: usize) -> bool {
        self.nodes[key].linked
    }

    /// Replaces the waker of a waiting node (the future was polled again,
    /// maybe by another task).
    pub(crate) fn update(&mut self, key: usize, waker: &Waker) {
        super::set_waker(&mut self.nodes[key].waker, waker);
    }

    fn unlink(&mut self, key: usize) {
        let (prev, next) = {
            let n = &mut self.nodes[key];
            debug_assert!(n.linked);
            n.linked = false;
            (n.prev.take(), n.next.take())
        };
        match prev {
            Some(p) => self.nodes[p].next = next,
            None => self.head = next,
        }
        match next {
            Some(n) => self.nodes[n].prev = prev,
            None => self.tail = prev,
        }
        self.waiting -= 1;
    }

    /// How many waiters at the front can be served, in order, from
    /// `available`, and what they need in all. Stops at the first that
    /// does not fit: later waiters never overtake it (FIFO fairness).
    pub(crate) fn fitting(&self, mut available: usize) -> (usize, usize) {
        let (mut count, mut total) = (0, 0);
        let mut cur = self.head;
        while let Some(k) = cur {
            let need = self.nodes[k].need;
            if need > available {
                break;
            }
            available -= need;
            total += need;
            count += 1;
            cur = self.nodes[k].next;
        }
        (count, total)
    }

    /// Wakes the oldest waiting node, handing it what it waits for;
    /// returns its waker.
    pub(crate) fn grant_front(&mut self) -> Option<Waker> {
        let key = self.head?;
        self.unlink(key);
        let node = &mut self.nodes[key];
        node.granted = true;
        node.waker.take()
    }

    /// Wakes every waiting node, handing each what it waits for.
    pub(crate) fn grant_all(&mut self, wakers: &mut WakeList) {
        while let Some(w) = self.grant_front() {
            wakers.push(w);
        }
    }

    /// Wakes every waiting node without a grant (the primitive closed).
    pub(crate) fn wake_all(&mut self, wakers: &mut WakeList) {
        while let Some(key) = self.head {
            self.unlink(key);
            if let Some(w) = self.nodes[key].waker.take() {
                wakers.push(w);
            }
        }
    }

    /// Removes the node of a completed or dropped future; true if it had
    /// been granted something it did not use.
    pub(crate) fn remove(&mut self, key: usize) -> bool {
        if self.nodes[key].linked {
            self.unlink(key);
        }
        self.nodes.remove(key).granted
    }
}

/// Wakers collected under a lock, woken after it is released (a woken task
/// may run at once on another thread and take the same lock).
#[derive(Debug, Default)]
pub(crate) struct WakeList {
    one: Option<Waker>,
    more: Vec<Waker>,
}

impl WakeList {
    pub(crate) fn push(&mut self, w: Waker) {
        if self.one.is_none() {
            self.one = Some(w);
        } else {
            self.more.push(w);
        }
    }

    pub(crate) fn extend(&mut self, w: Option<Waker>) {
        if let Some(w) = w {
            self.push(w);
        }
    }

    /// Wakes them all. Call after unlocking.
    pub(crate) fn wake(self) {
        if let Some(w) = self.one {
            w.wake();
        }
        self.more.into_iter().for_each(Waker::wake);
    }
}

#[cfg(test)]
mod tests {
    use std::task::Waker;

    use super::{Waiters, WakeList};

    #[test]
    fn fifo_order_and_removal_from_the_middle() {
        let w = Waker::noop();
        let mut q = Waiters::default();
        let a = q.push(w, 1);
        let b = q.push(w, 1);
        let c = q.push(w, 1);
        assert_eq!(q.len(), 3);
        assert!(!q.remove(b));
        assert!(q.grant_front().is_some());
        assert!(!q.is_waiting(a));
        assert!(q.is_waiting(c));
        assert!(q.grant_front().is_some());
        assert!(q.grant_front().is_none());
        assert!(q.is_empty());
        assert!(q.remove(a));
        assert!(q.remove(c));
        assert_eq!(q.nodes(), 0);
        assert_eq!(q.len(), 0);
    }

    #[test]
    fn wake_all_does_not_grant() {
        let w = Waker::noop();
        let mut q = Waiters::default();
        let a = q.push(w, 1);
        let b = q.push(w, 1);
        let mut list = WakeList::default();
        q.wake_all(&mut list);
        list.wake();
        assert!(q.is_empty());
        assert!(!q.remove(a));
        assert!(!q.remove(b));
        let c = q.push(w, 1);
        assert!(q.is_waiting(c));
    }

    #[test]
    fn fitting_stops_at_the_first_that_does_not_fit() {
        let w = Waker::noop();
        let mut q = Waiters::default();
        q.push(w, 2);
        q.push(w, 3);
        q.push(w, 1);
        assert_eq!(q.fitting(1), (0, 0));
        assert_eq!(q.fitting(4), (1, 2));
        assert_eq!(q.fitting(5), (2, 5));
        assert_eq!(q.fitting(100), (3, 6));
    }
}
