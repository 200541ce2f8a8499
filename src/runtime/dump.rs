//! Task dumps: the live tasks of a shard, for finding the one that hangs.
//!
//! How it works: every task that has waited at least once is in its core's
//! registry (shutdown needs it), with its origin: where it was spawned
//! (always recorded) and, with [`Builder::track_tasks`], when it
//! was last polled and which op it waited on when that poll returned
//! (`Watch::note_op`). [`task_dump`] reads them on the shard's own thread;
//! a task that finished is no longer in the registry.
//!
//! [`Builder::track_tasks`]: crate::Builder::track_tasks

use std::fmt;
use std::panic::Location;
use std::time::{Duration, Instant};

use super::context;

/// One live task in a [`TaskDump`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TaskInfo {
    /// The task's id, unique in the process (`None` without
    /// [`Builder::track_tasks`](crate::Builder::track_tasks)).
    pub id: Option<u64>,
    /// Where it was spawned.
    pub location: &'static Location<'static>,
    /// How long ago its last poll started: how long it has been idle (with
    /// tracking only).
    pub idle: Option<Duration>,
    /// The kind of op it waited on when its last poll returned (`"Recv"`,
    /// `"Timeout"`…); `None` when it waits on something else (a timer, a
    /// channel, another task) or without tracking.
    pub waiting_on: Option<&'static str>,
    /// How long ago it was spawned (with tracking only).
    pub age: Option<Duration>,
}

/// The live tasks of one shard, from [`task_dump`].
///
/// Its `Display` form is one line per task, longest idle first.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TaskDump {
    /// The shard the dump is of (0 for a plain runtime).
    pub shard: usize,
    /// Its tasks that have waited at least once and not finished.
    pub tasks: Vec<TaskInfo>,
}

impl fmt::Display for TaskDump {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "shard {}: {} live tasks", self.shard, self.tasks.len())?;
        for t in &self.tasks {
            match t.id {
                Some(id) => write!(f, "  task {id:<6}")?,
                None => write!(f, "  task ?     ")?,
            }
            write!(f, " spawned at {}", t.location)?;
            if let Some(idle) = t.idle {
                write!(f, ", idle {idle:.1?}")?;
            }
            match t.waiting_on {
                Some(op) => writeln!(f, ", waiting on op {op}")?,
                None => writeln!(f)?,
            }
        }
        Ok(())
    }
}

/// Lists the live tasks of the shard this code runs on: spawn location
/// and, with [`Builder::track_tasks`](crate::Builder::track_tasks), id,
/// time since the last poll and the op each waits on. Longest idle first.
///
/// Tasks that have not waited yet (spawned, not run) are not listed; nor is
/// the future given to `block_on`.
///
/// # Panics
///
/// Panics outside a corio runtime.
///
/// ```
/// use std::time::Duration;
///
/// let rt = corio::Builder::new().track_tasks(true).build().unwrap();
/// rt.block_on(async {
///     let sleeper = corio::spawn(corio::time::sleep(Duration::from_secs(60)));
///     corio::yield_now().await; // let it start and wait
///     let dump = corio::runtime::task_dump();
///     assert_eq!(dump.tasks.len(), 1);
///     print!("{dump}");
///     sleeper.abort();
/// });
/// ```
#[track_caller]
pub fn task_dump() -> TaskDump {
    let core = context::current("corio::runtime::task_dump");
    let now = Instant::now();
    let mut tasks: Vec<TaskInfo> = core
        .tasks
        .borrow()
        .iter()
        .map(|(_, (_, origin))| {
            let track = origin.track();
            TaskInfo {
                id: track.map(|t| t.id),
                location: origin.location(),
                idle: track
                    .and_then(|t| t.last_poll.get())
                    .map(|t| now.saturating_duration_since(t)),
                waiting_on: track.and_then(|t| t.waiting.get()),
                age: track.map(|t| now.saturating_duration_since(t.spawned)),
            }
        })
        .collect();
    tasks.sort_by_key(|t| std::cmp::Reverse(t.idle));
    TaskDump {
        shard: core.shard.get().map_or(0, |s| s.id),
        tasks,
    }
}
