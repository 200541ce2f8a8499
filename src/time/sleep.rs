//! `Sleep`: a future that completes at a deadline.

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use crate::runtime::context;
use crate::runtime::core::Core;

/// Waits until `duration` has elapsed.
///
/// ```
/// use std::time::{Duration, Instant};
///
/// corio::run(async {
///     let start = Instant::now();
///     corio::time::sleep(Duration::from_millis(10)).await;
///     assert!(start.elapsed() >= Duration::from_millis(10));
/// });
/// ```
pub fn sleep(duration: Duration) -> Sleep {
    let now = Instant::now();
    sleep_until(now.checked_add(duration).unwrap_or_else(far_future))
}

/// Waits until `deadline`.
pub fn sleep_until(deadline: Instant) -> Sleep {
    Sleep {
        deadline,
        entry: None,
    }
}

/// About 30 years from now: what "forever" means for a deadline.
pub(crate) fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(86400 * 365 * 30)
}

/// Future returned by [`sleep`] and [`sleep_until`].
///
/// It registers with the current runtime's timer store when first polled
/// (so it may be created outside a runtime) and unregisters when dropped.
#[derive(Debug)]
#[must_use = "a Sleep does nothing unless awaited"]
pub struct Sleep {
    deadline: Instant,
    entry: Option<(Rc<Core>, usize)>,
}

impl Sleep {
    /// The instant this sleep completes at.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// True once the deadline has passed.
    pub fn is_elapsed(&self) -> bool {
        Instant::now() >= self.deadline
    }

    /// Moves the deadline (the sleep becomes pending again if it was done).
    pub fn reset(&mut self, deadline: Instant) {
        self.unregister();
        self.deadline = deadline;
    }

    fn unregister(&mut self) {
        if let Some((core, key)) = self.entry.take() {
            core.timers.borrow_mut().remove(key);
        }
    }
}

impl Future for Sleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        match &this.entry {
            Some((core, key)) => {
                let fired = core.timers.borrow_mut().poll(*key, cx.waker());
                if fired {
                    this.entry = None;
                    return Poll::Ready(());
                }
                Poll::Pending
            }
            None => {
                if Instant::now() >= this.deadline {
                    return Poll::Ready(());
                }
                let core = context::current("corio::time::sleep");
                let key = core.timers.borrow_mut().insert(this.deadline, cx.waker());
                this.entry = Some((core, key));
                Poll::Pending
            }
        }
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        self.unregister();
    }
}
