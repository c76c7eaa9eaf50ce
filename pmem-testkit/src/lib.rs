//! Test and benchmark support shared by the crates of the pmem-rs workspace.
//! Never published; used only as a dev-dependency and by the fuzz crate.
//!
//! - [`scratch`]: fresh directories for pool files, in memory where possible;
//! - [`pmdk`]: PMDK's libpmem and libpmemobj loaded at run time, for the
//!   side-by-side tests and benchmarks;
//! - `hostile` (feature `hostile`): the hostile-file property the fuzz target
//!   `open_pool` and pmem-typed's corruption tests share;
//! - `counting` (feature `hostile`, which brings pmem-typed): a medium that
//!   counts flushes, copies and fences.
//!
//! It depends on pmem-typed (for `hostile`), which dev-depends on it: that is
//! fine for integration tests, benchmarks and fuzz targets, which link the
//! same pmem-typed, but not for unit tests inside `pmem-typed/src`, which
//! must not use this crate.

#[cfg(feature = "hostile")]
pub mod counting;
#[cfg(feature = "hostile")]
pub mod hostile;
pub mod pmdk;
pub mod scratch;
