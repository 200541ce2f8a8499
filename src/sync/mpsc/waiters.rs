//! A FIFO list of waiting futures, each removable in O(1) when it is dropped.
//!
//! How it works: nodes live in a `Slab`; the waiting ones are linked in a
//! doubly linked list through slab keys. A future that starts to wait pushes
//! a node and keeps its key; it removes the node itself when it completes or
//! is dropped, so keys are never reused under a live future. Waking a node
//! unlinks it and marks it `granted` (it was given a slot) or not (it was
//! woken because the channel closed); the node stays in the slab until its
//! future removes it and so learns which.

use std::task::Waker;

use slab::Slab;

#[derive(Debug)]
struct Node {
    waker: Option<Waker>,
    prev: Option<usize>,
    next: Option<usize>,
    /// In the waiting list (not yet woken).
    linked: bool,
    /// Woken because a slot was handed to it.
    granted: bool,
}

/// The waiting futures of one kind (senders waiting for a slot, or futures
/// waiting for the channel to close), oldest first.
#[derive(Debug, Default)]
pub(super) struct Waiters {
    nodes: Slab<Node>,
    head: Option<usize>,
    tail: Option<usize>,
}

impl Waiters {
    /// True when no node is waiting (woken nodes not yet removed don't count).
    #[cfg(test)]
    pub(super) fn is_empty(&self) -> bool {
        self.head.is_none()
    }

    /// Number of nodes, waiting or woken but not yet removed.
    #[cfg(test)]
    pub(super) fn nodes(&self) -> usize {
        self.nodes.len()
    }

    /// Appends a waiting node; returns its key.
    pub(super) fn push(&mut self, waker: &Waker) -> usize {
        let key = self.nodes.insert(Node {
            waker: Some(waker.clone()),
            prev: self.tail,
            next: None,
            linked: true,
            granted: false,
        });
        match self.tail {
            Some(t) => self.nodes[t].next = Some(key),
            None => self.head = Some(key),
        }
        self.tail = Some(key);
        key
    }

    /// True while `key` waits (has not been woken).
    pub(super) fn is_waiting(&self, key: usize) -> bool {
        self.nodes[key].linked
    }

    /// Replaces the waker of a waiting node (the future was polled again,
    /// maybe by another task).
    pub(super) fn update(&mut self, key: usize, waker: &Waker) {
        super::super::set_waker(&mut self.nodes[key].waker, waker);
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
    }

    /// Wakes the oldest waiting node, handing it a slot; returns its waker.
    pub(super) fn grant_front(&mut self) -> Option<Waker> {
        let key = self.head?;
        self.unlink(key);
        let node = &mut self.nodes[key];
        node.granted = true;
        node.waker.take()
    }

    /// Wakes every waiting node without a slot (the channel closed).
    pub(super) fn wake_all(&mut self) -> Vec<Waker> {
        let mut out = Vec::new();
        while let Some(key) = self.head {
            self.unlink(key);
            out.extend(self.nodes[key].waker.take());
        }
        out
    }

    /// Removes the node of a completed or dropped future; true if it had
    /// been handed a slot it did not use.
    pub(super) fn remove(&mut self, key: usize) -> bool {
        if self.nodes[key].linked {
            self.unlink(key);
        }
        self.nodes.remove(key).granted
    }
}

#[cfg(test)]
mod tests {
    use std::task::Waker;

    use super::Waiters;

    #[test]
    fn fifo_order_and_removal_from_the_middle() {
        let w = Waker::noop();
        let mut q = Waiters::default();
        let a = q.push(w);
        let b = q.push(w);
        let c = q.push(w);
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
    }

    #[test]
    fn wake_all_does_not_grant() {
        let w = Waker::noop();
        let mut q = Waiters::default();
        let a = q.push(w);
        let b = q.push(w);
        assert_eq!(q.wake_all().len(), 2);
        assert!(q.is_empty());
        assert!(!q.remove(a));
        assert!(!q.remove(b));
        let c = q.push(w);
        assert!(q.is_waiting(c));
    }
}
