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

pub use crate::driver::probe::Support;
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
    /// UDP socket options corio's UDP API relies on (GSO, GRO, received
    /// metadata), each tried on a UDP socket; empty off Linux.
    pub udp: Vec<Support>,
    /// `RLIMIT_NOFILE`: open files (every socket and file is one).
    pub nofile: Limit,
    /// `RLIMIT_MEMLOCK`: locked memory (rings and registered buffers count
    /// against it on kernels before 5.12).
    pub memlock: Limit,
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
    let (setup_flags, features, opcodes) = crate::driver::probe::kernel();
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
        udp: udp_options(),
        // SAFETY: getrlimit writes one rlimit to a valid pointer.
        nofile: limit(|r| unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, r) }),
        // SAFETY: as above.
        memlock: limit(|r| unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, r) }),
    }
}

/// Which UDP options this kernel takes, each tried on a fresh socket.
fn udp_options() -> Vec<Support> {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;

        use crate::op::net::cmsg::{SO_TIMESTAMPNS, UDP_GRO, UDP_SEGMENT};
        let Ok(sock) = std::net::UdpSocket::bind("127.0.0.1:0") else {
            return Vec::new();
        };
        let fd = sock.as_raw_fd();
        let set = |level, name| {
            let one: libc::c_int = 1;
            let len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
            // SAFETY: passes a valid pointer to an int and its size.
            unsafe { libc::setsockopt(fd, level, name, (&one as *const libc::c_int).cast(), len) }
        };
        let get = |level, name| {
            let mut v: libc::c_int = 0;
            let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
            // SAFETY: passes a valid pointer to an int and its size.
            unsafe {
                libc::getsockopt(
                    fd,
                    level,
                    name,
                    (&mut v as *mut libc::c_int).cast(),
                    &mut len,
                )
            }
        };
        let entry = |name, res: libc::c_int, note: &str| Support {
            name,
            supported: res == 0,
            note: if res == 0 {
                note.to_string()
            } else {
                format!("refused: {}", std::io::Error::last_os_error())
            },
        };
        vec![
            entry(
                "UDP_SEGMENT",
                get(libc::SOL_UDP, UDP_SEGMENT),
                "GSO: UdpSocket::send_segments in one sendmsg (one send per segment when missing; 4.18)",
            ),
            entry(
                "UDP_GRO",
                set(libc::SOL_UDP, UDP_GRO),
                "GRO: UdpSocket::set_gro, segment size in RecvMeta (5.0)",
            ),
            entry(
                "IP_PKTINFO",
                set(libc::IPPROTO_IP, libc::IP_PKTINFO),
                "UdpSocket::set_recv_pktinfo, Cmsg::PktInfo",
            ),
            entry(
                "IP_RECVTOS",
                set(libc::IPPROTO_IP, libc::IP_RECVTOS),
                "UdpSocket::set_recv_tos (TOS/ECN in RecvMeta)",
            ),
            entry(
                "SO_TIMESTAMPNS",
                set(libc::SOL_SOCKET, SO_TIMESTAMPNS),
                "UdpSocket::set_recv_timestamps",
            ),
        ]
    }
    #[cfg(not(target_os = "linux"))]
    Vec::new()
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
            ("UDP options", &self.udp),
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
