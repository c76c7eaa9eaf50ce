//! Soundness by construction: reads borrow the pool shared, writes borrow it
//! exclusively, so the compiler rejects every attempt to hold a `&T` (or a
//! second guard) into a pool while writing to it. Each file in
//! `tests/borrow_ui/` is such an attempt; the `.stderr` next to it records the
//! borrow error. The run-time counterpart, `get_disjoint_mut` refusing
//! overlapping objects, is tested in `tests/pool.rs`.

#[test]
fn aliasing_writes_do_not_compile() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/borrow_ui/*.rs");
}
