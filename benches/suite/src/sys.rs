//! Linux helpers: CPU pinning, a process's CPU time from `/proc/PID/stat`, listeners.

use std::io;
use std::net::{SocketAddr, TcpListener};

use socket2::{Domain, Protocol, Socket, Type};

/// Pins the calling thread (and the threads it starts afterwards) to `cpus`.
pub fn pin(cpus: &[usize]) -> io::Result<()> {
    // SAFETY: cpu_set_t is plain data; all-zero is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    for &cpu in cpus {
        // SAFETY: `set` is a valid cpu_set_t; CPU_SET ignores numbers past its size.
        unsafe { libc::CPU_SET(cpu, &mut set) };
    }
    // SAFETY: passes a valid set and its size; pid 0 is the calling thread.
    let r = unsafe { libc::sched_setaffinity(0, std::mem::size_of_val(&set), &set) };
    if r != 0 {
        let e = io::Error::last_os_error();
        return Err(io::Error::new(
            e.kind(),
            format!("sched_setaffinity({cpus:?}): {e}"),
        ));
    }
    Ok(())
}

/// Parses a CPU list such as `1` or `0,1`.
pub fn parse_cpus(s: &str) -> Result<Vec<usize>, String> {
    s.split(',')
        .map(|c| c.trim().parse().map_err(|_| format!("bad CPU list {s:?}")))
        .collect()
}

/// Clock ticks per second, the unit of `/proc/PID/stat` times.
fn ticks_per_sec() -> f64 {
    // SAFETY: sysconf has no memory-safety preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as f64 } else { 100.0 }
}

/// User and system CPU time of process `pid` (all its threads, io_uring
/// workers included), in microseconds, from fields 14 (utime) and 15 (stime)
/// of `/proc/PID/stat`.
pub fn cpu_split_us(pid: u32) -> io::Result<(f64, f64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name (field 2) may hold spaces: fields restart after its ')'.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .ok_or_else(|| io::Error::other("malformed /proc/PID/stat"))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3, so field N is fields[N - 3].
    let field = |n: usize| -> io::Result<f64> {
        fields
            .get(n - 3)
            .and_then(|f| f.parse::<f64>().ok())
            .map(|ticks| ticks * 1e6 / ticks_per_sec())
            .ok_or_else(|| io::Error::other("malformed /proc/PID/stat"))
    };
    Ok((field(14)?, field(15)?))
}

/// utime + stime of process `pid` in microseconds (see [`cpu_split_us`]).
pub fn cpu_us(pid: u32) -> io::Result<f64> {
    cpu_split_us(pid).map(|(u, s)| u + s)
}

/// A listening socket with `SO_REUSEADDR` and `SO_REUSEPORT`, backlog 1024,
/// in blocking mode (each runtime switches it as it needs).
pub fn listener(addr: SocketAddr) -> io::Result<TcpListener> {
    let s = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    s.set_reuse_address(true)?;
    s.set_reuse_port(true)?;
    s.bind(&addr.into())?;
    s.listen(1024)?;
    Ok(s.into())
}

/// `n` listeners on one port (`SO_REUSEPORT`): the first picks the port
/// when `addr` has port 0, the others join it.
pub fn listeners(addr: SocketAddr, n: usize) -> io::Result<Vec<TcpListener>> {
    let first = listener(addr)?;
    let addr = first.local_addr()?;
    let mut all = vec![first];
    for _ in 1..n {
        all.push(listener(addr)?);
    }
    Ok(all)
}

/// `uname -r`, the CPU model, the CPU count and the memory size.
pub fn machine() -> (String, String, usize, String) {
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, m)| m.trim().to_string())
        .unwrap_or_default();
    // SAFETY: sysconf has no memory-safety preconditions.
    let cpus = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) }.max(1) as usize;
    let mem = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("MemTotal"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map(|kb| format!("{:.0} GiB", kb / (1024.0 * 1024.0)))
        .unwrap_or_default();
    (kernel, model, cpus, mem)
}

/// The 1-minute load average (other work on the machine skews every figure).
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".into())
}

/// Busy and total jiffies of all CPUs, from the first line of `/proc/stat`.
fn cpu_jiffies() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().next()?.strip_prefix("cpu ")?;
    let v: Vec<u64> = line
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal ...
    let idle = v.get(3)? + v.get(4).unwrap_or(&0);
    let total: u64 = v.iter().take(8).sum();
    Some((total - idle, total))
}

/// The fraction of the machine's CPU time that was busy over `over`.
pub fn machine_busy(over: std::time::Duration) -> f64 {
    let a = cpu_jiffies();
    std::thread::sleep(over);
    match (a, cpu_jiffies()) {
        (Some((b0, t0)), Some((b1, t1))) if t1 > t0 => (b1 - b0) as f64 / (t1 - t0) as f64,
        _ => 0.0,
    }
}

/// The variable the runner sets on its children.
pub const CHILD_ENV: &str = "CORIO_BENCH_CHILD";

/// In a child the runner started: dies with the runner (`PR_SET_PDEATHSIG`),
/// so a killed run leaves no server behind.
pub fn die_with_runner() {
    if std::env::var_os(CHILD_ENV).is_some() {
        // SAFETY: prctl(PR_SET_PDEATHSIG) takes a signal number and touches no memory.
        unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) };
    }
}
