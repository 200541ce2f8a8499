//! Environment overrides of the executor's knobs (the driver's are in
//! `driver/config.rs`): `CORIO_SPIN_US`.
//!
//! `CORIO_SPIN_US` sets [`Builder::spin_before_park`](super::Builder::spin_before_park)
//! for every runtime of the process without a rebuild: a number of
//! microseconds (`0` for off) or `max` for a thread that never sleeps in the
//! kernel. Besides experiments, it is what lets the io_uring driver run under
//! valgrind: valgrind runs one thread at a time and does not hand the others
//! a turn while a thread waits in `io_uring_enter`, so a test whose peer is
//! another thread of the process would wait for ever; a spinning runtime
//! yields its turn as it goes.

use std::io;
use std::time::Duration;

/// The spin `CORIO_SPIN_US` asks for, or `builder`'s when it is unset; an
/// unreadable value is `InvalidInput`.
pub(super) fn spin(builder: Duration) -> io::Result<Duration> {
    match std::env::var("CORIO_SPIN_US") {
        Err(_) => Ok(builder),
        Ok(v) => parse_spin(&v),
    }
}

fn parse_spin(v: &str) -> io::Result<Duration> {
    match v.trim() {
        "" | "off" => Ok(Duration::ZERO),
        "max" => Ok(Duration::MAX),
        n => n.parse::<u64>().map(Duration::from_micros).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("corio: CORIO_SPIN_US={v:?} is not a number of microseconds or `max`"),
            )
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spin_env_values() {
        assert_eq!(parse_spin("250").unwrap(), Duration::from_micros(250));
        assert_eq!(parse_spin(" 0 ").unwrap(), Duration::ZERO);
        assert_eq!(parse_spin("off").unwrap(), Duration::ZERO);
        assert_eq!(parse_spin("max").unwrap(), Duration::MAX);
        let err = parse_spin("fast").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert!(err.to_string().contains("CORIO_SPIN_US"), "{err}");
    }
}
