#![no_main]
//! Fuzz target: opening a pool from arbitrary bytes (and inspecting it, and
//! using it if it opens) never panics. Every corrupt image must give an
//! error. Input format: see `pmem_testkit::hostile` (a flags byte, then the
//! image).
//!
//! Run with `cargo fuzz run open_pool`; seed the corpus first with
//! `cargo run --release --example seeds -- corpus/open_pool`.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| pmem_testkit::hostile::open_pool(data));
