//! Where the generated code finds pmem-typed, read from the Cargo.toml of the
//! crate being compiled (with `proc-macro-crate`), so that the derive works
//! through whichever dependency the user has, with no attribute:
//!
//! - `pmem-typed` (possibly renamed) → `::pmem_typed` (or the new name). This
//!   includes pmem-typed itself: its library declares
//!   `extern crate self as pmem_typed`, and its tests, benches and doctests
//!   link it under that name.
//! - the facade `pmem-rs`, whose library is named `pmem` and re-exports
//!   pmem-typed as `typed` → `::pmem::typed` (or `::<new name>::typed`).
//!
//! `pmem-typed` wins when both are dependencies: it is the shorter path. An
//! explicit `#[pmem(crate = "...")]` skips the lookup (see [`crate::parse`]).

use proc_macro_crate::{Error, FoundCrate, crate_name};
use proc_macro2::Span;
use syn::Path;

/// The package that defines `Persist`.
const TYPED_PACKAGE: &str = "pmem-typed";
/// The facade package that re-exports it as `typed`.
const FACADE_PACKAGE: &str = "pmem-rs";
/// The facade's library name, which Cargo uses as its extern name unless the
/// dependency is renamed. proc-macro-crate reports the dependency's key with
/// `-` turned into `_`, which for an unrenamed facade is this instead:
const FACADE_KEY: &str = "pmem_rs";
const FACADE_LIB: &str = "pmem";

/// The path to pmem-typed's crate root in the crate being compiled, or an
/// error (at the derive) saying which dependency to add.
pub(crate) fn locate() -> syn::Result<Path> {
    match crate_name(TYPED_PACKAGE) {
        Ok(FoundCrate::Itself) => return Ok(syn::parse_quote!(::pmem_typed)),
        Ok(FoundCrate::Name(name)) => return Ok(extern_path(&name, None)),
        // Not built by Cargo (no manifest to read): the usual name is the best guess,
        // and rustc's own error names it if it is wrong.
        Err(Error::CargoManifestDirNotSet) => return Ok(syn::parse_quote!(::pmem_typed)),
        Err(Error::CrateNotFound { .. }) => {}
        Err(other) => return Err(lookup_failed(&other)),
    }
    match crate_name(FACADE_PACKAGE) {
        Ok(FoundCrate::Itself) => Ok(extern_path(FACADE_LIB, Some("typed"))),
        Ok(FoundCrate::Name(name)) if name == FACADE_KEY => {
            Ok(extern_path(FACADE_LIB, Some("typed")))
        }
        Ok(FoundCrate::Name(name)) => Ok(extern_path(&name, Some("typed"))),
        Err(Error::CrateNotFound { path, .. }) => Err(syn::Error::new(
            Span::call_site(),
            format!(
                "derive(Persist) needs pmem-typed, but `{}` lists neither `pmem-rs` nor \
                 `pmem-typed` among its dependencies: add one of them (`pmem-rs` re-exports \
                 pmem-typed as `pmem::typed`), or name the path to pmem-typed with \
                 `#[pmem(crate = \"path::to::pmem_typed\")]`",
                path.display()
            ),
        )),
        Err(other) => Err(lookup_failed(&other)),
    }
}

/// `::name` or `::name::module`.
fn extern_path(name: &str, module: Option<&str>) -> Path {
    let root = syn::Ident::new(name, Span::call_site());
    match module {
        None => syn::parse_quote!(::#root),
        Some(module) => {
            let module = syn::Ident::new(module, Span::call_site());
            syn::parse_quote!(::#root::#module)
        }
    }
}

fn lookup_failed(error: &Error) -> syn::Error {
    syn::Error::new(
        Span::call_site(),
        format!(
            "derive(Persist) could not find pmem-typed through Cargo.toml ({error}); \
             name its path with `#[pmem(crate = \"path::to::pmem_typed\")]`"
        ),
    )
}

#[cfg(test)]
mod tests {
    use quote::ToTokens;

    use super::*;

    #[test]
    fn paths() {
        assert_eq!(
            extern_path("pmem_typed", None)
                .to_token_stream()
                .to_string(),
            ":: pmem_typed"
        );
        assert_eq!(
            extern_path("my_pmem", Some("typed"))
                .to_token_stream()
                .to_string(),
            ":: my_pmem :: typed"
        );
    }

    /// This crate's own manifest names neither package: the error says what to add.
    #[test]
    fn missing_dependency_says_what_to_add() {
        let Err(error) = locate() else {
            panic!("pmem-macros' manifest names pmem-typed")
        };
        let message = error.to_string();
        assert!(
            message.contains("lists neither `pmem-rs` nor `pmem-typed`"),
            "{message}"
        );
        assert!(message.contains("pmem-macros/Cargo.toml"), "{message}");
    }
}
