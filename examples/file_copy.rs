//! Copies a file with several reads and writes in flight: `cargo run --release --example file_copy -- SRC DST [--depth 8] [--chunk-kib 256]`.
//!
//! `--depth` tasks share the work: each takes the next chunk, reads it with
//! `read_at` and writes it at the same position with `write_all_at`, so up to
//! `depth` reads and writes are in the kernel at once. The destination gets
//! the source's permission bits and is flushed with `sync_all` at the end.

use std::cell::Cell;
use std::io;
use std::rc::Rc;
use std::time::Instant;

use corio::IoBuf;
use corio::fs::{File, OpenOptions};

struct Args {
    src: String,
    dst: String,
    depth: usize,
    chunk: usize,
}

fn parse_args() -> Args {
    let usage = "usage: file_copy SRC DST [--depth N] [--chunk-kib N]";
    let mut paths = Vec::new();
    let (mut depth, mut chunk_kib) = (8usize, 256usize);
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut num = |name: &str| -> usize {
            it.next()
                .and_then(|v| v.parse().ok())
                .filter(|&n| n > 0)
                .unwrap_or_else(|| panic!("{name} needs a positive number\n{usage}"))
        };
        match a.as_str() {
            "--depth" => depth = num("--depth"),
            "--chunk-kib" => chunk_kib = num("--chunk-kib"),
            "-h" | "--help" => {
                println!("{usage}");
                std::process::exit(0);
            }
            _ => paths.push(a),
        }
    }
    let [src, dst]: [String; 2] = paths.try_into().unwrap_or_else(|_| {
        eprintln!("{usage}");
        std::process::exit(2);
    });
    Args {
        src,
        dst,
        depth,
        chunk: chunk_kib * 1024,
    }
}

fn main() -> io::Result<()> {
    let args = parse_args();
    corio::run(async move {
        let start = Instant::now();
        let src = Rc::new(File::open(&args.src).await?);
        let meta = src.metadata().await?;
        let len = meta.len();
        let dst = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(meta.permissions().mode())
            .open(&args.dst)
            .await?;
        // Reserve the space up front where the filesystem can.
        if len > 0 && dst.fallocate(0, len, 0).await.is_err() {
            dst.set_len(len).await?;
        }
        let dst = Rc::new(dst);

        let next = Rc::new(Cell::new(0u64));
        let mut workers = Vec::new();
        for _ in 0..args.depth {
            let (src, dst, next) = (src.clone(), dst.clone(), next.clone());
            let chunk = args.chunk;
            workers.push(corio::spawn(async move {
                let mut buf = Vec::with_capacity(chunk);
                loop {
                    let pos = next.get();
                    if pos >= len {
                        return Ok::<_, io::Error>(());
                    }
                    next.set(pos + chunk as u64);
                    // Fill the chunk (short reads are possible), then write it.
                    buf.clear();
                    let want = chunk.min((len - pos) as usize);
                    while buf.len() < want {
                        let have = buf.len();
                        let (res, b) = src.read_at(buf.slice(have..want), pos + have as u64).await;
                        buf = b.into_inner();
                        if res? == 0 {
                            return Err(io::Error::new(
                                io::ErrorKind::UnexpectedEof,
                                "the source shrank during the copy",
                            ));
                        }
                    }
                    let (res, b) = dst.write_all_at(buf, pos).await;
                    buf = b;
                    res?;
                }
            }));
        }
        for w in workers {
            w.await.map_err(|e| io::Error::other(e.to_string()))??;
        }
        dst.sync_all().await?;
        let secs = start.elapsed().as_secs_f64();
        println!(
            "copied {len} bytes in {:.3} s ({:.1} MiB/s, depth {}, chunk {} KiB)",
            secs,
            len as f64 / secs / (1 << 20) as f64,
            args.depth,
            args.chunk / 1024
        );
        Ok(())
    })
}
