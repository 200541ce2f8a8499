//! Cooperative budget: a task whose results keep arriving at once must yield.
//!
//! How it works: the executor refills the budget before each task poll. Paths
//! that complete without waiting (data kept from an abandoned read, a
//! connection kept from an abandoned accept) take one unit; when none is left
//! the task yields once, so timers, other tasks and I/O still run.

use super::context;

/// Takes one unit of budget, yielding to the runtime first when it is spent.
pub(crate) async fn consume_budget() {
    let ok = context::with_core(|c| c.is_none_or(|c| c.take_budget()));
    if !ok {
        super::yield_now().await;
    }
}
