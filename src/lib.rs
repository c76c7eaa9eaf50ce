//! pmem-rs: typed data in persistent memory.
//!
//! This facade re-exports the workspace's crates:
//! - [`sys`]: libpmem in Rust (mapping, flush and fence, persistent copies);
//! - [`typed`]: typed pools, persistent pointers and crash-safe allocation.
//!
//! # Examples
//!
//! Bytes through [`sys`], a typed counter through [`typed`]:
//!
//! ```
//! use pmem::sys::{CopyFlags, Mapping};
//! use pmem::typed::{Persist, Pool};
//!
//! #[derive(Clone, Copy, Persist)]
//! #[repr(C)]
//! struct Counter { value: u64 }
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//!
//! let mut bytes = Mapping::create(dir.path().join("bytes"), 4096)?;
//! bytes.write(0, b"hello", CopyFlags::empty())?; // copied and persisted
//! assert_eq!(&bytes.as_slice()[..5], b"hello");
//!
//! let mut pool = Pool::<Counter>::create(dir.path().join("counter.pool"), "counter", 1 << 20)?;
//! pool.set(pool.root().fields().value, 1)?; // one 8-byte store, persisted
//! assert_eq!(pool.get(pool.root())?.value, 1);
//! # Ok(()) }
//! ```
//!
//! # Features
//!
//! - `sim`: the crash simulator, `pmem::typed::sim` (pmem-typed's `sim`
//!   feature). It is for tests: enable it in `[dev-dependencies]`.

pub use pmem_sys as sys;
pub use pmem_typed as typed;

// The README's examples run as doctests of `user-crate/`, a crate that
// depends only on this facade, as a user's does.
