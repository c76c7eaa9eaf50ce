//! Compile-fail tests of `#[derive(Persist)]`: each file in `tests/ui/` is
//! rejected, with the error on the offending item as recorded in its
//! `.stderr` file.
//!
//! After a deliberate change of a message, regenerate the `.stderr` files
//! with `TRYBUILD=overwrite cargo test -p pmem-typed --test derive_ui` and
//! review the diff.

#[test]
fn derive_rejects() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui/*.rs");
}
