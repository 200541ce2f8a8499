//! What a driver is built from: a plain struct the runtime's `Builder`
//! fills in (the driver knows nothing of the builder).

use std::time::Duration;

/// Which driver a runtime uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum DriverKind {
    /// io_uring where available, else the poll driver (the default).
    #[default]
    Auto,
    /// io_uring; building fails where it is unavailable.
    Uring,
    /// The readiness driver (epoll/kqueue through mio).
    Poll,
}

/// The driver's settings (see `Builder` for what each means).
#[derive(Debug, Clone)]
pub(crate) struct DriverConfig {
    pub(crate) kind: DriverKind,
    pub(crate) entries: u32,
    pub(crate) cq_entries: Option<u32>,
    /// Setup flags: `None` tries the flag and falls back without it.
    pub(crate) coop_taskrun: Option<bool>,
    pub(crate) defer_taskrun: Option<bool>,
    pub(crate) single_issuer: Option<bool>,
    pub(crate) sqpoll: Option<Duration>,
    pub(crate) sqpoll_cpu: Option<u32>,
    pub(crate) register_ring_fd: bool,
    /// `None`: MSG_RING wake-ups where the kernel has them.
    pub(crate) msg_ring_wakeups: Option<bool>,
    pub(crate) max_completions_per_tick: usize,
    /// The receive pool: (buffer count, buffer size).
    pub(crate) pool: (u16, usize),
    pub(crate) max_blocking_threads: usize,
    /// Tests only: inject `io_uring_enter` faults (seed, about one in n).
    pub(crate) enter_faults: Option<(u64, u32)>,
    /// Optional opcodes (names from [`OPTIONAL_OPCODES`]) to treat as
    /// missing: ops on them take their fallback.
    pub(crate) opcodes_off: Vec<&'static str>,
    /// Per-op latency histograms (`latency.rs`).
    pub(crate) op_latency: bool,
    /// Slots of the registered-file table (0: none; `uring/files.rs`).
    pub(crate) registered_files: u32,
    /// Positional reads of files try the page cache first
    /// (`op/fs/cached.rs`).
    pub(crate) cached_reads: bool,
}

/// Most registered-file slots (a slot is a `u16`; one value means "none").
pub(crate) const MAX_REGISTERED_FILES: u32 = u16::MAX as u32;

/// `cfg` with what the environment overrides (`CORIO_REGISTERED_FILES`,
/// `CORIO_CACHED_READS`).
pub(crate) fn with_env(cfg: &DriverConfig) -> std::io::Result<std::borrow::Cow<'_, DriverConfig>> {
    let (files, cached) = (env_registered_files()?, env_cached_reads()?);
    if files.is_none() && cached.is_none() {
        return Ok(std::borrow::Cow::Borrowed(cfg));
    }
    Ok(std::borrow::Cow::Owned(DriverConfig {
        registered_files: files.unwrap_or(cfg.registered_files),
        cached_reads: cached.unwrap_or(cfg.cached_reads),
        ..cfg.clone()
    }))
}

/// What `CORIO_CACHED_READS` asks for (`None` when unset): `1`/`on` or
/// `0`/`off`; anything else is `InvalidInput`.
pub(crate) fn env_cached_reads() -> std::io::Result<Option<bool>> {
    match std::env::var("CORIO_CACHED_READS") {
        Err(_) => Ok(None),
        Ok(v) => parse_switch("CORIO_CACHED_READS", &v).map(Some),
    }
}

fn parse_switch(name: &str, v: &str) -> std::io::Result<bool> {
    match v.trim() {
        "1" | "on" | "true" => Ok(true),
        "0" | "off" | "false" => Ok(false),
        _ => Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("corio: {name}={v:?} is not 1/on or 0/off"),
        )),
    }
}

/// The table size `CORIO_REGISTERED_FILES` asks for (`None` when unset):
/// a number of slots, `0` for off; anything else is `InvalidInput`.
pub(crate) fn env_registered_files() -> std::io::Result<Option<u32>> {
    match std::env::var("CORIO_REGISTERED_FILES") {
        Err(_) => Ok(None),
        Ok(v) => parse_files(&v).map(Some),
    }
}

fn parse_files(v: &str) -> std::io::Result<u32> {
    match v.trim() {
        "" | "off" => Ok(0),
        n => n
            .parse::<u32>()
            .map(|n| n.min(MAX_REGISTERED_FILES))
            .map_err(|_| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    format!("corio: CORIO_REGISTERED_FILES={v:?} is not a number of slots"),
                )
            }),
    }
}

/// The io_uring opcodes and features with a fallback, which
/// `Builder::disable_opcodes` may turn off: zero-copy send (plain send),
/// splice (sendfile(2) on the blocking pool), linked timeouts (a user-space
/// timer), receive bundles (one buffer per completion), incremental buffer
/// rings (a whole buffer per receive).
pub(crate) const OPTIONAL_OPCODES: &[&str] = &[
    "SEND_ZC",
    "SPLICE",
    "LINK_TIMEOUT",
    "RECV_BUNDLE",
    "PBUF_RING_INC",
];

impl Default for DriverConfig {
    fn default() -> Self {
        DriverConfig {
            kind: DriverKind::Auto,
            entries: 1024,
            cq_entries: None,
            coop_taskrun: None,
            defer_taskrun: None,
            single_issuer: None,
            sqpoll: None,
            sqpoll_cpu: None,
            register_ring_fd: true,
            msg_ring_wakeups: None,
            max_completions_per_tick: usize::MAX,
            pool: (1024, 4096),
            max_blocking_threads: 64,
            enter_faults: None,
            opcodes_off: Vec::new(),
            op_latency: false,
            registered_files: 0,
            cached_reads: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registered_files_env_values() {
        assert_eq!(parse_files("1024").unwrap(), 1024);
        assert_eq!(parse_files(" 0 ").unwrap(), 0);
        assert_eq!(parse_files("off").unwrap(), 0);
        assert_eq!(parse_files("1000000").unwrap(), MAX_REGISTERED_FILES);
        assert!(parse_files("lots").is_err());
    }

    #[test]
    fn cached_reads_env_values() {
        for on in ["1", "on", " true "] {
            assert!(parse_switch("X", on).unwrap(), "{on}");
        }
        for off in ["0", "off", "false"] {
            assert!(!parse_switch("X", off).unwrap(), "{off}");
        }
        let err = parse_switch("CORIO_CACHED_READS", "maybe").unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
        assert!(err.to_string().contains("CORIO_CACHED_READS"), "{err}");
    }
}
