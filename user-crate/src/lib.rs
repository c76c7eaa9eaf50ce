//! A stand-in for a user's crate: it depends only on the `pmem-rs` facade
//! (plus `tempfile` for the examples' pools), as a user's would, and
//! compiles and runs every Rust example of the workspace's README as its
//! doctests. That checks what the facade's own tests cannot: that the
//! README's code, `#[derive(Persist)]` included, works through the facade
//! alone. `cargo test -p pmem-user-crate --doc` runs them.
//!
//! The crate has no code of its own.

// The README, as doctests of a crate that sees it as a user does.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeExamples;
