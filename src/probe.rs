//! `corio::probe()`: what this machine offers corio, in one report.
//!
//! How it works: [`probe()`] builds (and drops) what a default `Auto`
//! runtime would build to learn which driver it gets and why, asks the
//! kernel which io_uring opcodes it supports (`IORING_REGISTER_PROBE` on a
//! tiny ring), sets up one tiny ring per setup flag to see which the kernel
//! accepts, and reads the resource limits (`getrlimit`) and the kernel
//! release (`uname`). It takes a few milliseconds; call it once, at start-up
//! or from a diagnostic tool, not per request.

use std::fmt;

use crate::driver::{Driver, DriverKind};
use crate::runtime::RingFlags;

/// What this machine offers corio; see [`probe()`]. Its `Display` is a
/// readable multi-line report.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Probe {
    /// The kernel release (`uname -r`).
    pub kernel: String,
    /// The driver [`DriverKind::Auto`] picks here (ignoring `CORIO_DRIVER`).
    pub auto_driver: DriverKind,
    /// Why `Auto` picks it (for the poll driver: the error that ruled
    /// io_uring out).
    pub auto_reason: String,
    /// The ring a default `Auto` runtime gets (flags after fallback); `None`
    /// on the poll driver.
    pub default_ring: Option<RingFlags>,
    /// The value of `CORIO_DRIVER`, which overrides the builder's choice.
    pub env_driver: Option<String>,
    /// The `kernel.io_uring_disabled` sysctl (0: allowed, 1: only for a
    /// group, 2: disabled), where the file exists.
    pub io_uring_disabled: Option<String>,
    /// io_uring setup flags, each tried alone on a tiny ring.
    pub setup_flags: Vec<Support>,
    /// io_uring features the kernel reports (`IORING_FEAT_*`).
    pub features: Vec<Support>,
    /// The io_uring opcodes corio uses, and whether the kernel has them.
    pub opcodes: Vec<Support>,
    /// `RLIMIT_NOFILE`: open files (every socket and file is one).
    pub nofile: Limit,
    /// `RLIMIT_MEMLOCK`: locked memory (rings and registered buffers count
    /// against it on kernels before 5.12).
    pub memlock: Limit,
}

/// Whether the kernel supports one thing, with a note.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Support {
    /// Its name, as in the kernel headers without the prefix
    /// (`DEFER_TASKRUN`, `RECVMSG`).
    pub name: &'static str,
    /// True when the kernel has it.
    pub supported: bool,
    /// What corio does with it, or the kernel's error when refused.
    pub note: String,
}

/// A resource limit; `None` means unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limit {
    /// The soft limit (what applies now).
    pub soft: Option<u64>,
    /// The hard limit (how far the process may raise the soft one).
    pub hard: Option<u64>,
}

/// Reports what this machine offers corio: the driver `Auto` picks and why,
/// the io_uring setup flags and opcodes the kernel accepts, and the resource
/// limits that matter.
///
/// ```
/// let p = corio::probe();
/// println!("{p}");
/// assert!(!p.kernel.is_empty());
/// ```
pub fn probe() -> Probe {
    let (auto_driver, auto_reason, default_ring) = Driver::auto_choice();
    #[cfg(corio_uring)]
    let (setup_flags, features, opcodes) = uring::probe();
    #[cfg(not(corio_uring))]
    let (setup_flags, features, opcodes) = (Vec::new(), Vec::new(), Vec::new());
    Probe {
        kernel: kernel_release(),
        auto_driver,
        auto_reason,
        default_ring,
        env_driver: std::env::var("CORIO_DRIVER").ok(),
        io_uring_disabled: std::fs::read_to_string("/proc/sys/kernel/io_uring_disabled")
            .ok()
            .map(|s| s.trim().to_string()),
        setup_flags,
        features,
        opcodes,
        // SAFETY: getrlimit writes one rlimit to a valid pointer.
        nofile: limit(|r| unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, r) }),
        // SAFETY: as above.
        memlock: limit(|r| unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, r) }),
    }
}

fn kernel_release() -> String {
    // SAFETY: utsname is plain data; uname fills it.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: passes a valid pointer to a utsname.
    if unsafe { libc::uname(&mut u) } != 0 {
        return "unknown".into();
    }
    // SAFETY: uname NUL-terminates `release` within the array.
    let release = unsafe { std::ffi::CStr::from_ptr(u.release.as_ptr()) };
    release.to_string_lossy().into_owned()
}

/// The limit `getrlimit` (called by `get`) reports.
fn limit(get: impl FnOnce(&mut libc::rlimit) -> libc::c_int) -> Limit {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    if get(&mut r) != 0 {
        return Limit {
            soft: None,
            hard: None,
        };
    }
    #[allow(clippy::unnecessary_cast)] // rlim_t is not u64 on every platform
    let v = |x: libc::rlim_t| (x != libc::RLIM_INFINITY).then_some(x as u64);
    Limit {
        soft: v(r.rlim_cur),
        hard: v(r.rlim_max),
    }
}

#[cfg(corio_uring)]
mod uring {
    use io_uring::opcode;

    use super::Support;
    use crate::driver::setup::{Flags, Spec};

    /// The opcodes corio submits: needed by `Auto`, used by `corio::fs`, or
    /// used with a blocking-pool fallback when missing.
    const OPCODES: &[(&str, u8, &str)] = &[
        ("NOP", opcode::Nop::CODE, NEEDED),
        ("READ", opcode::Read::CODE, NEEDED),
        ("POLL_ADD", opcode::PollAdd::CODE, NEEDED),
        ("ASYNC_CANCEL", opcode::AsyncCancel::CODE, NEEDED),
        ("ACCEPT", opcode::Accept::CODE, NEEDED),
        ("CONNECT", opcode::Connect::CODE, NEEDED),
        ("CLOSE", opcode::Close::CODE, NEEDED),
        ("SEND", opcode::Send::CODE, NEEDED),
        ("RECV", opcode::Recv::CODE, NEEDED),
        ("SENDMSG", opcode::SendMsg::CODE, NEEDED),
        ("RECVMSG", opcode::RecvMsg::CODE, NEEDED),
        ("SHUTDOWN", opcode::Shutdown::CODE, NEEDED),
        ("WRITE", opcode::Write::CODE, FS),
        ("READV", opcode::Readv::CODE, FS),
        ("WRITEV", opcode::Writev::CODE, FS),
        ("READ_FIXED", opcode::ReadFixed::CODE, FS),
        ("WRITE_FIXED", opcode::WriteFixed::CODE, FS),
        ("OPENAT", opcode::OpenAt::CODE, FS),
        ("STATX", opcode::Statx::CODE, FS),
        ("FSYNC", opcode::Fsync::CODE, FS),
        ("SYNC_FILE_RANGE", opcode::SyncFileRange::CODE, FS),
        ("FALLOCATE", opcode::Fallocate::CODE, FS),
        ("RENAMEAT", opcode::RenameAt::CODE, FS),
        ("UNLINKAT", opcode::UnlinkAt::CODE, FS),
        ("MKDIRAT", opcode::MkDirAt::CODE, FALLBACK),
        ("SYMLINKAT", opcode::SymlinkAt::CODE, FALLBACK),
        ("LINKAT", opcode::LinkAt::CODE, FALLBACK),
        ("FTRUNCATE", opcode::Ftruncate::CODE, FALLBACK),
        ("MSG_RING", opcode::MsgRingData::CODE, WAKE),
    ];
    const NEEDED: &str = "needed: without it Auto picks the poll driver";
    const FS: &str = "used by corio::fs";
    const FALLBACK: &str = "used by corio::fs; runs on the blocking pool when missing";
    const WAKE: &str = "wakes other shards (msg_ring_wakeups); an eventfd write when missing";

    fn tiny(
        flags: Flags,
        sqpoll: Option<(u32, Option<u32>)>,
    ) -> std::io::Result<io_uring::IoUring> {
        Spec {
            entries: 4,
            cq_entries: 8,
            flags,
            sqpoll,
        }
        .build()
    }

    fn flag(name: &'static str, r: std::io::Result<io_uring::IoUring>, note: &str) -> Support {
        match r {
            Ok(_) => Support {
                name,
                supported: true,
                note: note.into(),
            },
            Err(e) => Support {
                name,
                supported: false,
                note: format!("refused: {e}"),
            },
        }
    }

    /// Setup flags, features and opcodes, from tiny rings.
    pub(super) fn probe() -> (Vec<Support>, Vec<Support>, Vec<Support>) {
        let none = Flags::default();
        let si = Flags {
            single_issuer: true,
            ..none
        };
        let dt = Flags {
            defer_taskrun: true,
            ..si
        };
        let ct = Flags {
            coop_taskrun: true,
            ..none
        };
        let flags = vec![
            flag(
                "SINGLE_ISSUER",
                tiny(si, None),
                "Builder::single_issuer (tried by default)",
            ),
            flag(
                "DEFER_TASKRUN",
                tiny(dt, None),
                "Builder::defer_taskrun, with SINGLE_ISSUER (tried first by default)",
            ),
            flag(
                "COOP_TASKRUN",
                tiny(ct, None),
                "Builder::coop_taskrun (the default when DEFER_TASKRUN is refused)",
            ),
            flag(
                "TASKRUN_FLAG",
                tiny(ct, None),
                "set with either taskrun mode",
            ),
            flag(
                "SQPOLL",
                tiny(none, Some((10, None))),
                "Builder::sqpoll (off by default)",
            ),
        ];
        let ring = match tiny(none, None) {
            Ok(r) => r,
            Err(e) => {
                let err = Support {
                    name: "io_uring_setup",
                    supported: false,
                    note: format!("refused: {e}"),
                };
                return (flags, vec![err], Vec::new());
            }
        };
        let p = ring.params();
        let feat = |name, on: bool, note: &str| Support {
            name,
            supported: on,
            note: note.into(),
        };
        let features = vec![
            feat(
                "NODROP",
                p.is_feature_nodrop(),
                "needed: no completion is lost on overflow",
            ),
            feat(
                "EXT_ARG",
                p.is_feature_ext_arg(),
                "needed: timed waits in io_uring_enter",
            ),
            feat(
                "FAST_POLL",
                p.is_feature_fast_poll(),
                "socket ops wait in the kernel without a worker thread",
            ),
            feat(
                "NATIVE_WORKERS",
                p.is_feature_native_workers(),
                "blocking work runs on io-wq threads",
            ),
            feat(
                "SKIP_CQE_ON_SUCCESS",
                p.is_feature_skip_cqe_on_success(),
                "linked ops without completions",
            ),
            feat(
                "LINKED_FILE",
                p.is_feature_linked_file(),
                "fds resolved when a linked op starts",
            ),
            feat(
                "RECVSEND_BUNDLE",
                p.is_feature_recvsend_bundle(),
                "bundled receives from a buffer ring",
            ),
            feat(
                "MIN_TIMEOUT",
                p.is_feature_min_timeout(),
                "batched waits with a minimum timeout",
            ),
        ];
        let mut probe = io_uring::Probe::new();
        let probed = ring.submitter().register_probe(&mut probe);
        let opcodes = OPCODES
            .iter()
            .map(|&(name, code, note)| Support {
                name,
                supported: probed.is_ok() && probe.is_supported(code),
                note: note.into(),
            })
            .collect();
        (flags, features, opcodes)
    }
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = |x: Option<u64>| x.map_or("unlimited".to_string(), |n| n.to_string());
        write!(f, "soft {}, hard {}", v(self.soft), v(self.hard))
    }
}

impl fmt::Display for Probe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.auto_driver {
            DriverKind::Uring => "io_uring",
            _ => "poll (epoll/kqueue)",
        };
        writeln!(f, "kernel             {}", self.kernel)?;
        writeln!(f, "Auto driver        {kind}: {}", self.auto_reason)?;
        if let Some(ring) = &self.default_ring {
            writeln!(f, "default ring       {ring}")?;
        }
        let env = self.env_driver.as_deref().unwrap_or("unset");
        writeln!(f, "CORIO_DRIVER       {env}")?;
        if let Some(d) = &self.io_uring_disabled {
            writeln!(f, "kernel.io_uring_disabled  {d}")?;
        }
        writeln!(f, "RLIMIT_NOFILE      {}", self.nofile)?;
        writeln!(f, "RLIMIT_MEMLOCK     {} (bytes)", self.memlock)?;
        let sections = [
            ("setup flags", &self.setup_flags),
            ("features", &self.features),
            ("opcodes", &self.opcodes),
        ];
        for (title, items) in sections {
            if items.is_empty() {
                continue;
            }
            writeln!(f, "{title}:")?;
            for s in items {
                let yes = if s.supported { "yes" } else { "NO " };
                writeln!(f, "  {:<20} {yes}  {}", s.name, s.note)?;
            }
        }
        Ok(())
    }
}
