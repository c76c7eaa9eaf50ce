//! Procedural macros for [pmem-typed](https://docs.rs/pmem-typed):
//! `#[derive(Persist)]`.
//!
//! Use the derive through its re-export, `pmem_typed::Persist` (or
//! `pmem::typed::Persist` through the facade); the generated code refers to
//! pmem-typed items through whichever of the two the user's Cargo.toml lists.
//! This crate holds only the entry point; `parse.rs` checks the input,
//! `crate_path.rs` finds pmem-typed and `expand.rs` generates the code.

mod crate_path;
mod expand;
mod parse;

use proc_macro::TokenStream;

/// Implements `Persist` (and `bytemuck`'s `Pod` and `Zeroable`) for a
/// `#[repr(C)]` struct with named fields, after checking at compile time that
/// its layout can be persisted, and generates a `<Name>Fields` struct of
/// field projections.
///
/// The struct must also derive (or implement) `Clone` and `Copy`, and must
/// not derive `Pod` or `Zeroable` itself.
///
/// For an example, see the re-export `pmem_typed::Persist`, where it runs as
/// a doc test (this crate cannot depend on pmem-typed).
///
/// # Requirements, checked at compile time
///
/// Each violation is an error on the offending item:
///
/// - a struct with named fields (not an enum, union, tuple or unit struct),
///   with at least one field, and without generic parameters;
/// - `#[repr(C)]`, optionally with `align(N)`; `repr(packed)` is rejected;
/// - every field type is `bytemuck::Pod`;
/// - no padding: each field starts where the previous one ends, and the
///   struct ends where its last field does (add explicit `_pad: [u8; N]`
///   fields where the compiler would pad);
/// - no field of 8 bytes or less crosses an 8-byte boundary, because such a
///   field could not be persisted with one atomic store. Offsets are measured
///   from the start of the struct, so this holds wherever the struct itself
///   starts on an 8-byte boundary (pool allocations, or a field of a struct
///   aligned to 8).
///
/// # Generated items
///
/// - `unsafe impl Zeroable`, `unsafe impl Pod` and `unsafe impl Persist`,
///   with `Persist::LAYOUT` listing every field's name, offset and size,
///   `Persist::project` returning the projections, and `Persist::trace`
///   tracing every field whose type implements `Persist` (persistent
///   pointers, slices, arrays of them, nested derived structs) and skipping
///   the others;
/// - `<vis> struct <Name>Fields { <field vis> <field>: PPtr<FieldTy>, ... }`,
///   `Clone + Copy + Debug`, with the struct's visibility and each field's.
///
/// # Options
///
/// On the struct, `#[pmem(key = "value", ...)]`:
///
/// - `crate = "path"`: the path to `pmem_typed`. Not needed for a crate that
///   depends on `pmem-typed` (default `::pmem_typed`, or the name it was
///   renamed to) or on the facade `pmem-rs` (default `::pmem::typed`): the
///   derive reads Cargo.toml to choose. Use it for a re-export through
///   another crate; without either dependency and without this option the
///   derive fails, saying what to add;
/// - `fields = "Name"`: the name of the projection struct (default
///   `<Name>Fields`).
#[proc_macro_derive(Persist, attributes(pmem))]
pub fn derive_persist(input: TokenStream) -> TokenStream {
    let input = syn::parse_macro_input!(input as syn::DeriveInput);
    match parse::parse(input, crate_path::locate) {
        Ok(parsed) => expand::expand(&parsed).into(),
        Err(error) => error.into_compile_error().into(),
    }
}
