//! Prints what this machine offers corio: `cargo run --example probe`.
//!
//! The driver `DriverKind::Auto` picks and why, the ring a default runtime
//! gets, the io_uring setup flags, features and opcodes the kernel accepts,
//! and the resource limits that matter (open files, locked memory).

fn main() {
    print!("{}", corio::probe());
}
