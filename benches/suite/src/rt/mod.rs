//! One module per runtime, each with the same three things: an echo server,
//! an HTTP server (both on listeners handed in, so every runtime gets the
//! same socket options) and a file random-read runner.

use std::io;
use std::net::TcpListener;
use std::time::{Duration, Instant};

use ::corio::DriverKind::{Poll, Uring};

pub mod compio;
pub mod corio;
pub mod glommio;
pub mod hyper;
pub mod limit;
pub mod monoio;
pub mod tokio;
pub mod tokio_uring;

/// Size of the echo servers' read buffer.
pub const ECHO_BUF: usize = 4096;
/// Size of one random read.
pub const BLOCK: usize = 4096;

/// What a server answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum App {
    Echo,
    Http,
}

/// The runtimes (and modes) the suite knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runtime {
    /// corio on io_uring; with several threads, `Builder::shards(n).pin_cpus(true)`.
    CorioUring,
    /// corio's poll (mio) driver; sharded the same way.
    CorioPoll,
    /// corio on io_uring receiving with `recv_pooled` (multishot recv into
    /// the provided-buffer ring); sharded the same way.
    CorioPool,
    /// Registered (fixed) buffers; file reads only.
    CorioFixed,
    /// corio on io_uring through `corio::compat::Compat`: echo on the
    /// `tokio::io` traits, HTTP with hyper 1.x (its cost over the
    /// owned-buffer API, and hyper on corio against `tokio-hyper`).
    CorioCompat,
    /// The same hyper service on tokio's current-thread runtime (HTTP only).
    TokioHyper,
    /// tokio's current-thread runtime; with several threads, one per core on
    /// its own `SO_REUSEPORT` listener.
    Tokio,
    /// tokio's multi-thread runtime with one worker per CPU given.
    TokioMt,
    Monoio,
    Glommio,
    Compio,
    TokioUring,
    /// A hand-written io_uring loop with no runtime: the limit.
    Limit,
}

impl Runtime {
    pub const ALL: [Runtime; 13] = [
        Runtime::CorioUring,
        Runtime::CorioFixed,
        Runtime::CorioPool,
        Runtime::CorioPoll,
        Runtime::CorioCompat,
        Runtime::TokioHyper,
        Runtime::Tokio,
        Runtime::TokioMt,
        Runtime::Monoio,
        Runtime::Glommio,
        Runtime::Compio,
        Runtime::TokioUring,
        Runtime::Limit,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Runtime::CorioUring => "corio-uring",
            Runtime::CorioPoll => "corio-poll",
            Runtime::CorioPool => "corio-pool",
            Runtime::CorioFixed => "corio-fixed",
            Runtime::CorioCompat => "corio-compat",
            Runtime::TokioHyper => "tokio-hyper",
            Runtime::Tokio => "tokio",
            Runtime::TokioMt => "tokio-mt",
            Runtime::Monoio => "monoio",
            Runtime::Glommio => "glommio",
            Runtime::Compio => "compio",
            Runtime::TokioUring => "tokio-uring",
            Runtime::Limit => "limit",
        }
    }

    pub fn parse(s: &str) -> Option<Runtime> {
        Runtime::ALL.into_iter().find(|r| r.name() == s)
    }
}

/// Runs the server `app` of `rt` on `listeners`: one thread per listener
/// (pinned to `cpus[i]`), except for tokio-mt, which takes one listener and
/// runs `threads` workers.
pub fn serve(
    rt: Runtime,
    app: App,
    listeners: Vec<TcpListener>,
    cpus: &[usize],
    threads: usize,
) -> io::Result<()> {
    match rt {
        Runtime::CorioUring => corio::serve(Uring, corio::Recv::Owned, app, listeners),
        Runtime::CorioPool => corio::serve(Uring, corio::Recv::Pooled, app, listeners),
        Runtime::CorioPoll => corio::serve(Poll, corio::Recv::Owned, app, listeners),
        Runtime::TokioMt => tokio::serve_mt(app, listeners, threads),
        Runtime::Tokio => per_thread(listeners, cpus, move |l| tokio::serve(app, l)),
        Runtime::Monoio => per_thread(listeners, cpus, move |l| monoio::serve(app, l)),
        Runtime::Glommio => per_thread(listeners, cpus, move |l| glommio::serve(app, l)),
        Runtime::Compio => per_thread(listeners, cpus, move |l| compio::serve(app, l)),
        Runtime::TokioUring => per_thread(listeners, cpus, move |l| tokio_uring::serve(app, l)),
        Runtime::Limit => per_thread(listeners, cpus, move |l| limit::serve(app, l)),
        Runtime::CorioFixed => Err(io::Error::other("corio-fixed is a file-read mode only")),
        Runtime::CorioCompat => hyper::serve_corio(app, listeners),
        Runtime::TokioHyper => per_thread(listeners, cpus, move |l| hyper::serve_tokio(app, l)),
    }
}

/// Runs `f` on each listener: on this thread for one, else one pinned thread each.
fn per_thread<F>(listeners: Vec<TcpListener>, cpus: &[usize], f: F) -> io::Result<()>
where
    F: Fn(TcpListener) -> io::Result<()> + Send + Sync + Copy + 'static,
{
    if listeners.len() == 1 {
        return f(listeners.into_iter().next().expect("one listener"));
    }
    let threads: Vec<_> = listeners
        .into_iter()
        .enumerate()
        .map(|(i, l)| {
            let cpu = cpus[i % cpus.len()];
            std::thread::spawn(move || {
                crate::sys::pin(&[cpu])?;
                f(l)
            })
        })
        .collect();
    for t in threads {
        t.join()
            .map_err(|_| io::Error::other("a server thread panicked"))??;
    }
    Ok(())
}

/// Runs the random-read benchmark of `rt` on `path` with `qd` reads in
/// flight for `secs`; returns the number of reads done.
pub fn fileread(rt: Runtime, path: &str, qd: usize, secs: f64) -> io::Result<u64> {
    let spec = ReadSpec::new(path, secs)?;
    match rt {
        Runtime::CorioUring => corio::fileread(Uring, false, spec, qd),
        Runtime::CorioFixed => corio::fileread(Uring, true, spec, qd),
        Runtime::CorioPoll => corio::fileread(Poll, false, spec, qd),
        Runtime::CorioPool | Runtime::CorioCompat => {
            Err(io::Error::other("file reads: use corio-uring"))
        }
        Runtime::TokioHyper => Err(io::Error::other("file reads: use tokio")),
        Runtime::Tokio => tokio::fileread(spec, qd),
        Runtime::TokioMt => Err(io::Error::other("file reads: use tokio")),
        Runtime::Monoio => monoio::fileread(spec, qd),
        Runtime::Glommio => glommio::fileread(spec, qd),
        Runtime::Compio => compio::fileread(spec, qd),
        Runtime::TokioUring => tokio_uring::fileread(spec, qd),
        Runtime::Limit => Err(io::Error::other(
            "file reads: the limit has no file-read mode",
        )),
    }
}

/// The shared parameters of one random-read run.
#[derive(Debug, Clone)]
pub struct ReadSpec {
    pub path: String,
    /// Number of 4 KiB blocks in the file.
    pub blocks: u64,
    pub deadline: Instant,
}

impl ReadSpec {
    fn new(path: &str, secs: f64) -> io::Result<ReadSpec> {
        let len = std::fs::metadata(path)?.len();
        if len < BLOCK as u64 {
            return Err(io::Error::other("the file is smaller than one block"));
        }
        Ok(ReadSpec {
            path: path.to_string(),
            blocks: len / BLOCK as u64,
            deadline: Instant::now() + Duration::from_secs_f64(secs),
        })
    }

    /// The random position generator of task `t`.
    pub fn positions(&self, t: usize) -> Positions {
        Positions {
            state: 0x9e37_79b9_7f4a_7c15u64 ^ (t as u64 + 1).wrapping_mul(0x2545_f491_4f6c_dd1d),
            blocks: self.blocks,
            n: 0,
            deadline: self.deadline,
        }
    }
}

/// Random block offsets (xorshift), until the deadline (checked every 64).
#[derive(Debug)]
pub struct Positions {
    state: u64,
    blocks: u64,
    n: u64,
    deadline: Instant,
}

impl Iterator for Positions {
    type Item = u64;

    fn next(&mut self) -> Option<u64> {
        self.n += 1;
        if self.n.is_multiple_of(64) && Instant::now() >= self.deadline {
            return None;
        }
        let s = &mut self.state;
        *s ^= *s << 13;
        *s ^= *s >> 7;
        *s ^= *s << 17;
        Some((*s % self.blocks) * BLOCK as u64)
    }
}

/// Checks one read's result.
pub fn check_read(res: io::Result<usize>) -> io::Result<()> {
    match res? {
        BLOCK => Ok(()),
        n => Err(io::Error::other(format!(
            "short read: {n} of {BLOCK} bytes"
        ))),
    }
}
