//! The blocking pool: threads for syscalls that have no readiness, and the
//! op path that runs an op's syscall there.

mod job;
mod pool;

pub(crate) use job::{Job, Orphans, abandon, poll};
pub(crate) use pool::BlockingPool;
