//! Owned I/O buffers that can be safely handed to the kernel through io_uring.
//!
//! How it works: an io_uring operation may outlive the future that submitted
//! it (the future can be dropped while the kernel still reads or writes the
//! memory). Borrowed `&mut [u8]` buffers therefore cannot be used. Instead,
//! operations take ownership of a buffer implementing [`IoBuf`] (for writes)
//! or [`IoBufMut`] (for reads), keep it alive inside the in-flight operation,
//! and hand it back together with the result as a [`BufResult`]. Both traits
//! are `unsafe` because the runtime relies on the buffer's pointer staying
//! valid and stable while the buffer value itself is moved around.
//! [`Slice`] restricts an operation to a sub-range of a buffer while still
//! owning it.

pub(crate) mod copy;
mod io_buf;
mod lease;
pub(crate) mod pool;
mod slice;

pub use io_buf::{BufResult, IoBuf, IoBufMut};
pub use lease::PooledBuf;
pub use pool::PoolUsage;
pub use slice::Slice;
