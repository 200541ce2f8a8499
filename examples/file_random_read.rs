//! Random 4 KiB reads at a chosen queue depth, reporting IOPS: `cargo run --release --example file_random_read -- [--size-mib 256] [--qd 32] [--secs 5] [--fixed] [--direct] [--no-cached] [--dir PATH]`.
//!
//! Creates a file of `--size-mib` MiB in `--dir` (default: the temp dir),
//! then runs `--qd` tasks, each reading random 4 KiB blocks in a loop for
//! `--secs` seconds, so `--qd` reads are in flight at once. `--fixed` reads
//! into registered buffers (`FixedBufPool`, `READ_FIXED`); `--direct` opens
//! the file with `O_DIRECT` (bypassing the page cache; refused on tmpfs).
//! The file is in the page cache once written: reads it answers at once
//! are counted as cached (`Builder::cached_reads`; at `--qd 1` nearly all
//! are); `--no-cached` turns those tries off. Set `CORIO_DRIVER=poll` to
//! compare with the poll driver. The file is deleted at the end.

use std::cell::Cell;
use std::io;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::{Duration, Instant};

use corio::fs::{self, AlignedBuf, File, FixedBufPool, OpenOptions};

const BLOCK: usize = 4096;

struct Args {
    size: u64,
    qd: usize,
    secs: f64,
    fixed: bool,
    direct: bool,
    cached: bool,
    dir: PathBuf,
}

fn parse_args() -> Args {
    let usage = "usage: file_random_read [--size-mib N] [--qd N] [--secs S] [--fixed] [--direct] [--no-cached] [--dir PATH]";
    let mut a = Args {
        size: 256 << 20,
        qd: 32,
        secs: 5.0,
        fixed: false,
        direct: false,
        cached: true,
        dir: std::env::temp_dir(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .unwrap_or_else(|| panic!("{name} needs a value\n{usage}"))
        };
        match arg.as_str() {
            "--size-mib" => a.size = value("--size-mib").parse::<u64>().expect(usage) << 20,
            "--qd" => a.qd = value("--qd").parse().expect(usage),
            "--secs" => a.secs = value("--secs").parse().expect(usage),
            "--dir" => a.dir = value("--dir").into(),
            "--fixed" => a.fixed = true,
            "--direct" => a.direct = true,
            "--no-cached" => a.cached = false,
            _ => {
                eprintln!("{usage}");
                std::process::exit(2);
            }
        }
    }
    assert!(a.qd > 0 && a.size >= BLOCK as u64, "{usage}");
    a
}

/// Writes `size` bytes of non-zero data, 1 MiB at a time.
async fn create(path: &PathBuf, size: u64) -> io::Result<()> {
    let file = File::create(path).await?;
    let chunk: Vec<u8> = (0..1 << 20).map(|i| (i % 251) as u8 + 1).collect();
    let mut buf = chunk;
    let mut pos = 0;
    while pos < size {
        let n = (size - pos).min(1 << 20) as usize;
        buf.truncate(n);
        let (res, b) = file.write_all_at(buf, pos).await;
        res?;
        buf = b;
        pos += n as u64;
    }
    file.sync_all().await?;
    file.close().await
}

/// A per-task xorshift generator.
fn next_block(state: &mut u64, blocks: u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state % blocks
}

fn main() -> io::Result<()> {
    let args = parse_args();
    let rt = corio::Builder::new().cached_reads(args.cached).build()?;
    println!("driver: {:?}", rt.driver_kind());
    let path = args
        .dir
        .join(format!("corio-random-read-{}.bin", std::process::id()));
    let res = rt.block_on(run(&args, &path));
    let _ = rt.block_on(fs::remove_file(&path));
    res
}

async fn run(args: &Args, path: &PathBuf) -> io::Result<()> {
    create(path, args.size).await?;
    let mut opts = OpenOptions::new();
    opts.read(true);
    if args.direct {
        opts.custom_flags(libc::O_DIRECT);
    }
    let file = Rc::new(opts.open(path).await?);
    let pool = if args.fixed {
        Some(FixedBufPool::new(args.qd, BLOCK)?)
    } else {
        None
    };
    let blocks = args.size / BLOCK as u64;
    let reads = Rc::new(Cell::new(0u64));
    let deadline = Instant::now() + Duration::from_secs_f64(args.secs);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for t in 0..args.qd {
        let (file, reads) = (file.clone(), reads.clone());
        let fixed = pool.as_ref().map(|p| p.get().expect("one buffer per task"));
        let direct = args.direct;
        tasks.push(corio::spawn(async move {
            let mut rng = 0x9e37_79b9_7f4a_7c15u64 ^ (t as u64 + 1);
            let mut n = 0u64;
            // Three buffer kinds: registered, aligned (O_DIRECT), plain.
            let mut fixed = fixed;
            let mut aligned = direct.then(|| AlignedBuf::new(BLOCK, BLOCK));
            let mut plain = Some(vec![0u8; BLOCK]);
            loop {
                let pos = next_block(&mut rng, blocks) * BLOCK as u64;
                let got = if let Some(buf) = fixed.take() {
                    let (res, b) = file.read_fixed_at(buf, pos).await;
                    fixed = Some(b);
                    res?
                } else if let Some(buf) = aligned.take() {
                    let (res, b) = file.read_at(buf, pos).await;
                    aligned = Some(b);
                    res?
                } else {
                    let (res, b) = file.read_at(plain.take().expect("buffer"), pos).await;
                    plain = Some(b);
                    res?
                };
                assert_eq!(got, BLOCK, "short read at {pos}");
                n += 1;
                // Check the clock every 64 reads.
                if n.is_multiple_of(64) && Instant::now() >= deadline {
                    break;
                }
            }
            reads.set(reads.get() + n);
            Ok::<_, io::Error>(())
        }));
    }
    for t in tasks {
        t.await.map_err(|e| io::Error::other(e.to_string()))??;
    }
    let secs = start.elapsed().as_secs_f64();
    let cached = corio::runtime::stats().cached_reads;
    println!(
        "{} random 4 KiB reads in {:.2} s at QD {}{}{}: {:.0} IOPS ({} answered from the page cache on their first poll)",
        reads.get(),
        secs,
        args.qd,
        if args.fixed { ", fixed buffers" } else { "" },
        if args.direct { ", O_DIRECT" } else { "" },
        reads.get() as f64 / secs,
        cached
    );
    Ok(())
}
