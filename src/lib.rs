//! pmem-rs: typed data in persistent memory.
//!
//! This facade re-exports the workspace's crates:
//! - [`sys`]: libpmem in Rust (mapping, flush and fence, persistent copies, the C ABI);
//! - [`typed`]: typed pools, persistent pointers and crash-safe allocation.

pub use pmem_sys as sys;
pub use pmem_typed as typed;

// Compile and run the README's Rust examples with the doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeExamples;
