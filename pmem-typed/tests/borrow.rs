//! Soundness by construction: reads borrow the pool shared, writes borrow it
//! exclusively, so the compiler rejects every attempt to hold a `&T` (or a
//! second guard) into a pool while writing to it. A pool owns its medium or
//! borrows it with `&mut`, so the same holds for writes that go around the
//! pool: the simulator's medium cannot be cloned, written raw while a pool
//! has it, or written through `Pool::medium`, and two pools cannot share it
//! (the `sim_*` files, in safe code only). Each file in `tests/borrow_ui/` is
//! such an attempt; the `.stderr` next to it records the error. The run-time
//! counterpart, `get_disjoint_mut` refusing overlapping objects, is tested in
//! `tests/pool.rs`.
//!
//! After a deliberate change of a message, regenerate the `.stderr` files
//! with `TRYBUILD=overwrite cargo test -p pmem-typed --test borrow` and
//! review the diff.

#[test]
fn aliasing_writes_do_not_compile() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/borrow_ui/*.rs");
}
