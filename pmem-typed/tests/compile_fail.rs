//! Compile-fail tests, each file rejected with the error its `.stderr`
//! records, in one trybuild run (trybuild checks this crate's dependencies
//! once per `TestCases`, which is most of the time these take):
//!
//! - `tests/ui/`: `#[derive(Persist)]` rejects what it cannot persist, with
//!   the error on the offending item.
//! - `tests/borrow_ui/`: soundness by construction. Reads borrow the pool
//!   shared, writes borrow it exclusively, so the compiler rejects every
//!   attempt to hold a `&T` (or a second guard) into a pool while writing to
//!   it. A pool owns its medium or borrows it with `&mut`, so the same holds
//!   for writes that go around the pool: the simulator's medium cannot be
//!   cloned, written raw while a pool has it, or written through
//!   `Pool::medium`, and two pools cannot share it (the `sim_*` files, in
//!   safe code only). The run-time counterpart, `get_disjoint_mut` refusing
//!   overlapping objects, is tested in `tests/pool.rs`.
//!
//! # The pinned toolchain
//!
//! The snapshots are rustc's own messages, whose wording, notes and
//! suggestions change between releases, so they are checked with one
//! toolchain, [`PINNED_RUSTC`]; under any other this test prints that it
//! skipped and passes. `.ci/run` installs the pinned toolchain and runs this
//! test with it, so CI always checks the snapshots. (Matching only error
//! codes would survive toolchain updates but not check what matters here:
//! that the derive's message lands on the offending field.)
//!
//! To move the pin: change [`PINNED_RUSTC`], then regenerate the `.stderr`
//! files with `TRYBUILD=overwrite cargo +<new> test -p pmem-typed --test
//! compile_fail` and review the diff.
//!
//! This test has its own `main` (`harness = false` in Cargo.toml) so that it
//! can turn trybuild's colours off before any thread exists.

use std::process::Command;

/// The `rustc --version` prefix the `.stderr` snapshots were recorded with.
const PINNED_RUSTC: &str = "rustc 1.95.0 ";

fn main() {
    // trybuild colours its report through termcolor whenever TERM is set,
    // terminal or not, which leaves escape codes in logs; it honours NO_COLOR.
    // SAFETY: `main` of a test without the libtest harness, before anything
    // has spawned a thread: no other thread can read or write the environment.
    unsafe { std::env::set_var("NO_COLOR", "1") };

    // trybuild runs the `cargo` that runs this test, whose `rustc` (through
    // rustup, the same toolchain) is the one asked here.
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let version = Command::new(&rustc)
        .arg("--version")
        .output()
        .map(|output| String::from_utf8_lossy(&output.stdout).into_owned())
        .unwrap_or_default();
    let version = version.lines().next().unwrap_or("no rustc");
    if !version.starts_with(PINNED_RUSTC) {
        println!(
            "compile_fail: SKIPPED, the .stderr snapshots are checked with `{}`, not `{}` \
             (run `cargo +{} test -p pmem-typed --test compile_fail`, as .ci/run does)",
            PINNED_RUSTC.trim_end(),
            version,
            PINNED_RUSTC.trim_start_matches("rustc ").trim_end(),
        );
        return;
    }

    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui/*.rs");
    cases.compile_fail("tests/borrow_ui/*.rs");
    // Dropping `cases` runs them all and panics if any differs.
}
