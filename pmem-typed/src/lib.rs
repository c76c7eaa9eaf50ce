//! Typed pools in persistent memory, built on [`pmem_sys`].
//!
//! This crate is being built; see the workspace README for its plan.

pub use pmem_sys;
