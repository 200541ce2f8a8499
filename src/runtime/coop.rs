//! Cooperative budget: a task whose results keep arriving at once must yield.
//!
//! How it works: the executor refills the budget before each task poll. Paths
//! that complete without waiting (data kept from an abandoned read, a
//! connection kept from an abandoned accept) first call [`yield_if_spent`],
//! which yields once when the budget is used up, and only then take the kept
//! result and [`charge`] one unit. Yielding before taking matters: a future
//! dropped during the yield has taken nothing, so nothing kept is lost.

use super::context;

/// Yields to the runtime once if the current task's budget is spent.
pub(crate) async fn yield_if_spent() {
    let spent = context::with_core(|c| c.is_some_and(|c| c.budget.get() == 0));
    if spent {
        super::yield_now().await;
    }
}

/// Takes one unit of the current task's budget (none left: nothing happens).
pub(crate) fn charge() {
    context::with_core(|c| c.map(|c| c.take_budget()));
}
