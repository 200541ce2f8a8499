//! Echo load for `benches/knobs.sh`: `echo_client ADDR CONNS SECS [SIZE]`.
//!
//! Std only (the script builds it with plain `rustc`): one thread per
//! connection, each sending SIZE bytes (default 64) and reading them back,
//! over and over, for SECS seconds. Prints the total round trips.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 4 {
        eprintln!("usage: echo_client ADDR CONNS SECS [SIZE]");
        std::process::exit(2);
    }
    let addr = args[1].clone();
    let conns: usize = args[2].parse().expect("CONNS");
    let secs: f64 = args[3].parse().expect("SECS");
    let size: usize = args.get(4).map_or(64, |s| s.parse().expect("SIZE"));
    let stop = Arc::new(AtomicBool::new(false));
    let threads: Vec<_> = (0..conns)
        .map(|_| {
            let (addr, stop) = (addr.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut s = TcpStream::connect(&addr).expect("connect");
                s.set_nodelay(true).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                let out = vec![7u8; size];
                let mut back = vec![0u8; size];
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    s.write_all(&out).expect("write");
                    s.read_exact(&mut back).expect("read");
                    n += 1;
                }
                n
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs_f64(secs));
    stop.store(true, Ordering::Relaxed);
    let total: u64 = threads.into_iter().map(|t| t.join().unwrap()).sum();
    println!("{total}");
}
