//! A small mutation fuzzer for the `fuzz_*` tests: seeded inputs made from
//! a corpus of valid ones by byte flips, inserts of interesting bytes,
//! deletions, duplications, splices and truncations (or plain random
//! bytes), run for a time budget.
//!
//! `cargo test` runs each target for a second or two with a fixed seed;
//! `CORIO_FUZZ_SECS=<s>` runs longer, `CORIO_FUZZ_SEED=<n>` picks the seed.
//! A failing input is printed in hex with its seed and iteration, to be
//! added to the target's regression list.
#![allow(dead_code)]

use std::time::{Duration, Instant};

/// xorshift64*.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// The time budget of one target: `CORIO_FUZZ_SECS`, else `default`.
pub fn budget(default: Duration) -> Duration {
    std::env::var("CORIO_FUZZ_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map_or(default, Duration::from_secs)
}

/// The seed: `CORIO_FUZZ_SEED`, else a fixed one (so `cargo test` is
/// repeatable).
pub fn seed() -> u64 {
    std::env::var("CORIO_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0xC0_710)
}

/// Bytes that make parsers take other branches.
const INTERESTING: &[u8] = b" \t\r\n:;,=/-_.0129\x00\x7f\x80\xff-----BEGIN END";

/// One mutated input from `corpus` (or random bytes, now and then).
pub fn mutate(rng: &mut Rng, corpus: &[Vec<u8>], max_len: usize) -> Vec<u8> {
    if rng.below(16) == 0 {
        let n = rng.below(max_len.min(4096) + 1);
        return (0..n).map(|_| rng.next() as u8).collect();
    }
    let mut data = corpus[rng.below(corpus.len())].clone();
    for _ in 0..1 + rng.below(8) {
        let len = data.len();
        match rng.below(9) {
            0 if len > 0 => {
                let i = rng.below(len);
                data[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                data[i] = rng.next() as u8;
            }
            2 => {
                let i = rng.below(len + 1);
                let b = INTERESTING[rng.below(INTERESTING.len())];
                data.insert(i, b);
            }
            3 if len > 0 => {
                let i = rng.below(len);
                let n = 1 + rng.below((len - i).min(64));
                data.drain(i..i + n);
            }
            4 if len > 0 => {
                // Duplicate a range (a repeated header, a longer field).
                let i = rng.below(len);
                let n = 1 + rng.below((len - i).min(256));
                let piece = data[i..i + n].to_vec();
                let at = rng.below(len + 1);
                for _ in 0..1 + rng.below(4) {
                    data.splice(at..at, piece.iter().copied());
                }
            }
            5 => {
                // Splice in part of another corpus entry.
                let other = &corpus[rng.below(corpus.len())];
                if !other.is_empty() {
                    let i = rng.below(other.len());
                    let n = 1 + rng.below(other.len() - i);
                    let at = rng.below(len + 1);
                    data.splice(at..at, other[i..i + n].iter().copied());
                }
            }
            6 if len > 0 => data.truncate(rng.below(len)),
            7 if len > 1 => {
                let (i, j) = (rng.below(len), rng.below(len));
                data.swap(i, j);
            }
            _ => {
                // A run of one interesting byte (long lines, many blanks).
                let b = INTERESTING[rng.below(INTERESTING.len())];
                let at = rng.below(len + 1);
                let long = rng.below(8) == 0;
                let n = 1 + rng.below(if long { 10_000 } else { 16 });
                data.splice(at..at, std::iter::repeat_n(b, n));
            }
        }
    }
    data.truncate(max_len);
    data
}

/// Runs `check` on mutated inputs until the budget is spent; panics (with
/// the input in hex) if `check` does. Returns how many inputs ran.
pub fn run(
    name: &str,
    corpus: &[Vec<u8>],
    max_len: usize,
    default_budget: Duration,
    mut check: impl FnMut(&[u8]),
) -> u64 {
    let (seed, budget) = (seed(), budget(default_budget));
    let mut rng = Rng::new(seed);
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < budget {
        let input = mutate(&mut rng, corpus, max_len);
        let res = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(&input)));
        if let Err(p) = res {
            eprintln!(
                "fuzz {name}: seed {seed}, input {n} failed; add it to the regressions:\n{}",
                hex(&input)
            );
            std::panic::resume_unwind(p);
        }
        n += 1;
    }
    eprintln!(
        "fuzz {name}: {n} inputs in {:?} (seed {seed})",
        start.elapsed()
    );
    n
}

/// Lower-case hex.
pub fn hex(data: &[u8]) -> String {
    data.iter().map(|b| format!("{b:02x}")).collect()
}

/// Parses `hex` (for regression inputs).
pub fn unhex(hex: &str) -> Vec<u8> {
    let hex: Vec<u8> = hex.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    hex.chunks(2)
        .map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap(), 16).unwrap())
        .collect()
}
