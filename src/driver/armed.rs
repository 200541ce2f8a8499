//! What the driver keeps for a multishot op armed on an fd: the op's value
//! and the tasks waiting on it, in one allocation.
//!
//! How it works: an op of a multishot role makes its armed value with
//! [`Armed::boxed`]; the driver keeps the box in the op's slot while ops of
//! the fd's role take its completions (each waiting task's waker in
//! [`Waiters`]), and after the op is taken down, while its last
//! completions are released through the value (then `close`, if set, is
//! closed). One box, not a box of the value inside a box of the waiters:
//! an idle connection's armed receive is 64 bytes of heap, not 80.

use std::os::fd::RawFd;
use std::task::Waker;

use crate::release::Released;

/// An armed multishot op: its waiters, then the op's value (unsized once
/// boxed: `Box<Armed>` holds any op's).
#[cfg_attr(not(corio_uring), allow(dead_code))] // armed by io_uring only
pub(crate) struct Armed<T: ?Sized = dyn Released> {
    pub(crate) waiters: Waiters,
    /// An fd to close after the last completion, once the op was taken
    /// down (the socket went while the kernel still held the op).
    pub(crate) close: Option<RawFd>,
    pub(crate) op: T,
}

impl Armed {
    /// The armed value of `op`, boxed as the driver keeps it.
    pub(crate) fn boxed<T: Released + 'static>(op: T) -> Box<Armed> {
        Box::new(Armed {
            waiters: Waiters::None,
            close: None,
            op,
        })
    }
}

/// The tasks waiting on an armed op: nearly always one (a socket's reader),
/// kept inline so an idle connection's armed receive allocates no list.
#[derive(Default)]
#[cfg_attr(not(corio_uring), allow(dead_code))] // armed by io_uring only
pub(crate) enum Waiters {
    #[default]
    None,
    One(Waker),
    /// A lone waiter woken by a completion its task has not polled for
    /// yet: kept, not woken again, until the task polls (the driver then
    /// takes it with `take_woken` for the task's next op, as a single-shot
    /// op's slot hands on its waker). A task that dropped its receive
    /// leaves it here until another waits or the op is taken down, as a
    /// `One` stayed until the next completion. `add` handles it too.
    Woken(Waker),
    Many(Vec<Waker>),
}

/// `waker` as a stored waker: the driver's `spare` when it is the same
/// task's (no clone, no reference count touched), else a clone; a spare of
/// another task is dropped here.
#[inline(always)]
#[cfg_attr(not(corio_uring), allow(dead_code))] // io_uring only
pub(crate) fn spare_or_clone(spare: &mut Option<Waker>, waker: &Waker) -> Waker {
    match spare.take() {
        Some(w) if w.will_wake(waker) => w,
        _ => waker.clone(),
    }
}

#[cfg_attr(not(corio_uring), allow(dead_code))] // armed by io_uring only
impl Waiters {
    /// Writes `new` over an empty list (`None`, just taken or found):
    /// no drop glue to call for what it replaces.
    #[inline(always)]
    fn refill(&mut self, new: Waiters) {
        debug_assert!(matches!(self, Waiters::None));
        std::mem::forget(std::mem::replace(self, new));
    }

    /// Adds `waker` unless it is there already; `spare` is a waker the
    /// driver kept (the task's own, nearly always: then no clone).
    pub(crate) fn add(&mut self, waker: &Waker, spare: &mut Option<Waker>) {
        match self {
            Waiters::None => {
                self.refill(Waiters::One(spare_or_clone(spare, waker)));
            }
            Waiters::One(w) if w.will_wake(waker) => {}
            // Its task waits again.
            Waiters::Woken(w) if w.will_wake(waker) => {
                let Waiters::Woken(w) = std::mem::take(self) else {
                    unreachable!()
                };
                self.refill(Waiters::One(w));
            }
            // Another task waits while the woken one has not taken its
            // completion: that one had its wake-up, this one waits.
            Waiters::Woken(_) => *self = Waiters::One(waker.clone()),
            Waiters::One(_) => {
                let Waiters::One(w) = std::mem::take(self) else {
                    unreachable!()
                };
                self.refill(Waiters::Many(vec![w, waker.clone()]));
            }
            Waiters::Many(ws) => {
                if !ws.iter().any(|w| w.will_wake(waker)) {
                    ws.push(waker.clone());
                }
            }
        }
    }

    /// A completion arrived: wakes every waiter. A lone one is woken by
    /// reference and kept (`Woken`); several are woken by value and
    /// forgotten.
    pub(crate) fn wake_all(&mut self) {
        match self {
            Waiters::None | Waiters::Woken(_) => {}
            Waiters::One(w) => {
                w.wake_by_ref();
                let Waiters::One(w) = std::mem::take(self) else {
                    unreachable!()
                };
                self.refill(Waiters::Woken(w));
            }
            Waiters::Many(_) => {
                let Waiters::Many(ws) = std::mem::take(self) else {
                    unreachable!()
                };
                ws.into_iter().for_each(Waker::wake);
            }
        }
    }

    /// A task took a completion: the woken lone waiter's waker, if any,
    /// for the driver to keep for that task's next op.
    #[inline]
    pub(crate) fn take_woken(&mut self) -> Option<Waker> {
        if !matches!(self, Waiters::Woken(_)) {
            return None;
        }
        let Waiters::Woken(w) = std::mem::take(self) else {
            unreachable!()
        };
        Some(w)
    }

    /// The op is taken down: wakes whoever still waits and forgets all.
    pub(crate) fn wake_and_clear(&mut self) {
        match std::mem::take(self) {
            Waiters::None | Waiters::Woken(_) => {}
            Waiters::One(w) => w.wake(),
            Waiters::Many(ws) => ws.into_iter().for_each(Waker::wake),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Nothing;

    impl Released for Nothing {
        fn completion(&mut self, _res: i32, _flags: u32) -> bool {
            true
        }
    }

    struct Small([u8; 24]);

    impl Released for Small {
        fn completion(&mut self, res: i32, _flags: u32) -> bool {
            self.0[0] = res as u8;
            true
        }
    }

    #[test]
    fn an_armed_receive_is_one_allocation_of_at_most_56_bytes() {
        // The pooled receive's value (a weak fd, the pool, the datagram
        // header box) is 24 bytes: with the waiters and `close`, 56, which
        // glibc serves from a 64-byte chunk.
        let armed = Armed::boxed(Small([0; 24]));
        assert!(std::mem::size_of_val(&*armed) <= 56);
        let armed = Armed::boxed(Nothing);
        assert!(std::mem::size_of_val(&*armed) <= 32);
    }

    #[test]
    fn waiters_keep_each_task_once_and_wake_all() {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::task::Wake;
        struct Count(AtomicUsize);
        impl Wake for Count {
            fn wake(self: Arc<Self>) {
                self.0.fetch_add(1, Ordering::SeqCst);
            }
        }
        let (a, b) = (
            Arc::new(Count(AtomicUsize::new(0))),
            Arc::new(Count(AtomicUsize::new(0))),
        );
        let (wa, wb) = (Waker::from(a.clone()), Waker::from(b.clone()));
        let mut spare = None;
        let mut w = Waiters::None;
        w.add(&wa, &mut spare);
        w.add(&wa, &mut spare);
        assert!(matches!(w, Waiters::One(_)));
        w.add(&wb, &mut spare);
        w.add(&wb, &mut spare);
        assert!(matches!(&w, Waiters::Many(v) if v.len() == 2));
        w.wake_all();
        assert!(
            matches!(w, Waiters::None),
            "several waiters are all woken by value and forgotten"
        );
        assert_eq!(a.0.load(Ordering::SeqCst), 1);
        assert_eq!(b.0.load(Ordering::SeqCst), 1);
        // A lone waiter is woken by reference and kept until its task
        // takes the completion; a second completion meanwhile does not
        // wake it again.
        w.add(&wa, &mut spare);
        w.wake_all();
        assert!(matches!(w, Waiters::Woken(_)));
        w.wake_all();
        assert_eq!(a.0.load(Ordering::SeqCst), 2, "woken once");
        assert_eq!(Arc::strong_count(&a), 3, "wa, the kept waker, the Arc");
        // Its task takes the completion: the waker goes to the driver,
        // and the task's next wait reuses it.
        let kept = w.take_woken().expect("the woken waiter's waker");
        assert!(matches!(w, Waiters::None));
        assert!(w.take_woken().is_none());
        spare = Some(kept);
        w.add(&wa, &mut spare);
        assert!(spare.is_none(), "the task's own spare was used");
        assert_eq!(Arc::strong_count(&a), 3, "no clone");
        // A woken task that waits again without taking anything is
        // waiting again, with the same waker.
        w.wake_all();
        assert_eq!(a.0.load(Ordering::SeqCst), 3);
        w.add(&wa, &mut spare);
        assert!(matches!(w, Waiters::One(_)));
        assert_eq!(Arc::strong_count(&a), 3, "no clone");
        // Another task waiting while the woken one has not taken its
        // completion replaces it (that one had its wake-up).
        w.wake_all();
        assert_eq!(a.0.load(Ordering::SeqCst), 4);
        w.add(&wb, &mut spare);
        assert!(matches!(&w, Waiters::One(x) if x.will_wake(&wb)));
        assert_eq!(Arc::strong_count(&a), 2, "the woken one's waker went");
        // Taken down: whoever waits is woken by value.
        w.wake_and_clear();
        assert!(matches!(w, Waiters::None));
        assert_eq!(b.0.load(Ordering::SeqCst), 2);
        // Another task's spare is dropped, not used.
        w.add(&wa, &mut spare);
        let Waiters::One(again) = std::mem::take(&mut w) else {
            panic!("one waiter")
        };
        spare = Some(again);
        w.add(&wb, &mut spare);
        assert!(spare.is_none());
        assert_eq!(Arc::strong_count(&a), 2, "the other task's spare went");
    }
}
