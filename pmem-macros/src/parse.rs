//! Parsing and syntactic validation of a `#[derive(Persist)]` input.
//!
//! Everything that can be decided from the tokens alone is checked here and
//! reported with [`syn::Error::new_spanned`] on the offending tokens: the
//! item kind, generics, `#[repr]`, `#[pmem(...)]` options. Facts that need
//! the compiler (field types being `Pod`, offsets, padding) are asserted by
//! the generated code instead; see [`crate::expand`].

use proc_macro2::{Group, Span, TokenStream, TokenTree};
use quote::ToTokens;
use syn::ext::IdentExt as _;
use syn::spanned::Spanned as _;
use syn::{Attribute, Data, DeriveInput, Field, Fields, Ident, LitStr, Path, Visibility};

/// A struct that passed every syntactic check, ready for code generation.
pub(crate) struct PersistStruct {
    /// The struct's name.
    pub(crate) ident: Ident,
    /// The name for messages and the layout: the identifier without `r#`.
    pub(crate) name: String,
    /// The struct's visibility, given to the projection struct too.
    pub(crate) vis: Visibility,
    /// Path to the `pmem_typed` crate: `#[pmem(crate = "...")]`, or where
    /// Cargo.toml says it is.
    pub(crate) krate: Path,
    /// Name of the projection struct (`#[pmem(fields = "...")]`).
    pub(crate) fields_ident: Ident,
    /// The fields, in declaration order (at least one).
    pub(crate) fields: Vec<PersistField>,
}

/// One named field.
pub(crate) struct PersistField {
    /// The field's identifier, as written (possibly raw, `r#type`).
    pub(crate) ident: Ident,
    /// The name recorded in the layout: the identifier without `r#`.
    pub(crate) name: String,
    /// The field's visibility, given to its projection too.
    pub(crate) vis: Visibility,
    /// The field's type with `Self` replaced by the struct's name, so that it
    /// can be used outside the struct definition.
    pub(crate) ty: TokenStream,
    /// Span of the field's type, for errors about the type.
    pub(crate) ty_span: Span,
}

/// Parses and checks the derive input, collecting every syntactic error.
///
/// `locate_crate` gives the path to pmem-typed when `#[pmem(crate = "...")]`
/// does not (the derive passes [`crate::crate_path::locate`]); it is asked
/// only once the input is otherwise valid.
pub(crate) fn parse(
    input: DeriveInput,
    locate_crate: impl FnOnce() -> syn::Result<Path>,
) -> syn::Result<PersistStruct> {
    let mut errors = Errors::default();

    check_repr(&input, &mut errors);
    let options = errors.ok(parse_options(&input.attrs)).unwrap_or_default();

    if let Some(span_tokens) = generics_tokens(&input) {
        errors.push(syn::Error::new_spanned(
            span_tokens,
            "derive(Persist) does not support generic parameters or where clauses: \
             the layout of a persistent type is fixed once and recorded in the pool, \
             so it must be a concrete type",
        ));
    }

    let fields = match &input.data {
        Data::Struct(data) => match &data.fields {
            Fields::Named(named) if named.named.is_empty() => {
                errors.push(syn::Error::new_spanned(
                    &input.ident,
                    "derive(Persist) needs at least one field: a zero-sized type cannot be \
                     stored in a pool",
                ));
                Vec::new()
            }
            Fields::Named(named) => named
                .named
                .iter()
                .filter_map(|field| errors.ok(parse_field(field, &input.ident)))
                .collect(),
            Fields::Unnamed(unnamed) => {
                errors.push(syn::Error::new_spanned(
                    unnamed,
                    "derive(Persist) needs named fields: the projection struct has one \
                     pointer per field, named after it; write `struct Name { a: A, b: B }`",
                ));
                Vec::new()
            }
            Fields::Unit => {
                errors.push(syn::Error::new_spanned(
                    &input.ident,
                    "derive(Persist) needs a struct with named fields, not a unit struct",
                ));
                Vec::new()
            }
        },
        Data::Enum(data) => {
            errors.push(syn::Error::new_spanned(
                data.enum_token,
                "derive(Persist) supports only structs with named fields: an enum's \
                 discriminant makes some bit patterns invalid, so it is not plain data",
            ));
            Vec::new()
        }
        Data::Union(data) => {
            errors.push(syn::Error::new_spanned(
                data.union_token,
                "derive(Persist) supports only structs with named fields, not unions",
            ));
            Vec::new()
        }
    };

    errors.finish()?;

    let krate = match options.krate {
        Some(path) => path,
        None => locate_crate()?,
    };
    let fields_ident = options.fields.unwrap_or_else(|| {
        Ident::new(
            &format!("{}Fields", input.ident.unraw()),
            input.ident.span(),
        )
    });
    Ok(PersistStruct {
        name: input.ident.unraw().to_string(),
        ident: input.ident,
        vis: input.vis,
        krate,
        fields_ident,
        fields,
    })
}

/// Accumulates errors so that the user sees all of them at once.
#[derive(Default)]
struct Errors(Option<syn::Error>);

impl Errors {
    fn push(&mut self, error: syn::Error) {
        match &mut self.0 {
            Some(all) => all.combine(error),
            None => self.0 = Some(error),
        }
    }

    /// The value, or `None` after recording the error.
    fn ok<T>(&mut self, result: syn::Result<T>) -> Option<T> {
        result.map_err(|error| self.push(error)).ok()
    }

    fn finish(self) -> syn::Result<()> {
        self.0.map_or(Ok(()), Err)
    }
}

/// The largest alignment a persistent type may have: the alignment every
/// medium's base is guaranteed (`pmem_typed::Medium`), a page.
pub(crate) const MAX_ALIGN: u64 = 4096;

/// Requires `#[repr(C)]`, allowing `align(N)` (up to [`MAX_ALIGN`]) beside it
/// and nothing else.
fn check_repr(input: &DeriveInput, errors: &mut Errors) {
    let mut has_c = false;
    for attr in input
        .attrs
        .iter()
        .filter(|attr| attr.path().is_ident("repr"))
    {
        let result = attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("C") {
                has_c = true;
                Ok(())
            } else if meta.path.is_ident("align") {
                let content;
                syn::parenthesized!(content in meta.input);
                let align = content.parse::<syn::LitInt>()?;
                // rustc checks that it is a power of two; the bound is ours.
                match align.base10_parse::<u64>() {
                    Ok(n) if n > MAX_ALIGN => Err(syn::Error::new_spanned(
                        &align,
                        format!(
                            "derive(Persist) supports alignments up to {MAX_ALIGN}, not {n}: \
                             pools are only guaranteed to be mapped at a {MAX_ALIGN}-byte \
                             (page) boundary, so a larger alignment could not be kept at \
                             every address"
                        ),
                    )),
                    _ => Ok(()),
                }
            } else if meta.path.is_ident("packed") {
                if meta.input.peek(syn::token::Paren) {
                    let content;
                    syn::parenthesized!(content in meta.input);
                    content.parse::<TokenStream>()?;
                }
                Err(meta.error(
                    "derive(Persist) does not support repr(packed): packed fields may be \
                     unaligned, so they could not be referenced or persisted atomically; \
                     use repr(C) and add explicit padding fields instead",
                ))
            } else {
                Err(meta.error(format!(
                    "derive(Persist) supports only `repr(C)` and `repr(C, align(N))`, not `repr({})`",
                    meta.path.to_token_stream()
                )))
            }
        });
        errors.ok(result);
    }
    if !has_c {
        errors.push(syn::Error::new_spanned(
            &input.ident,
            "derive(Persist) requires #[repr(C)]: without it the compiler may reorder \
             fields, so the layout recorded in the pool would not be stable",
        ));
    }
}

/// The struct-level `#[pmem(...)]` options.
#[derive(Default)]
struct Options {
    krate: Option<Path>,
    fields: Option<Ident>,
}

fn parse_options(attrs: &[Attribute]) -> syn::Result<Options> {
    let mut options = Options::default();
    for attr in attrs.iter().filter(|attr| attr.path().is_ident("pmem")) {
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("crate") {
                let lit: LitStr = meta.value()?.parse()?;
                let path = lit.parse::<Path>().map_err(|_| {
                    syn::Error::new_spanned(&lit, "expected a path to pmem_typed, e.g. `crate = \"my::reexport\"`")
                })?;
                set_once(&mut options.krate, path, &meta.path)
            } else if meta.path.is_ident("fields") {
                let lit: LitStr = meta.value()?.parse()?;
                let ident = lit.parse::<Ident>().map_err(|_| {
                    syn::Error::new_spanned(&lit, "expected the name of the projection struct, e.g. `fields = \"PointPtrs\"`")
                })?;
                set_once(&mut options.fields, ident, &meta.path)
            } else {
                Err(syn::Error::new_spanned(
                    &meta.path,
                    format!(
                        "unknown derive(Persist) option `{}`; expected `crate = \"path\"` or `fields = \"Name\"`",
                        meta.path.to_token_stream()
                    ),
                ))
            }
        })?;
    }
    Ok(options)
}

fn set_once<T>(slot: &mut Option<T>, value: T, key: &Path) -> syn::Result<()> {
    if slot.is_some() {
        return Err(syn::Error::new_spanned(
            key,
            format!(
                "duplicate derive(Persist) option `{}`",
                key.to_token_stream()
            ),
        ));
    }
    *slot = Some(value);
    Ok(())
}

/// The tokens to blame for generics, if there are any.
fn generics_tokens(input: &DeriveInput) -> Option<TokenStream> {
    let generics = &input.generics;
    if generics.params.is_empty() {
        generics
            .where_clause
            .as_ref()
            .map(ToTokens::to_token_stream)
    } else {
        // `<...>`: the `ToTokens` of `Generics` prints exactly that.
        Some(generics.to_token_stream())
    }
}

fn parse_field(field: &Field, struct_ident: &Ident) -> syn::Result<PersistField> {
    field.modifiers.require_empty()?;
    if let Some(attr) = field.attrs.iter().find(|attr| attr.path().is_ident("pmem")) {
        return Err(syn::Error::new_spanned(
            attr,
            "derive(Persist) has no field options; `#[pmem(...)]` goes on the struct",
        ));
    }
    let ident = field
        .ident
        .clone()
        .ok_or_else(|| syn::Error::new_spanned(field, "expected a named field"))?;
    Ok(PersistField {
        name: ident.unraw().to_string(),
        ident,
        vis: field.vis.clone(),
        ty: replace_self(field.ty.to_token_stream(), struct_ident),
        ty_span: field.ty.span(),
    })
}

/// Replaces every `Self` in `tokens` by `ident` (keeping `Self`'s span): a
/// field type may say `PPtr<Self>`, which means something else (or nothing)
/// in the generated items.
fn replace_self(tokens: TokenStream, ident: &Ident) -> TokenStream {
    tokens
        .into_iter()
        .map(|tree| match tree {
            TokenTree::Ident(word) if word == "Self" => {
                let mut renamed = ident.clone();
                renamed.set_span(word.span());
                TokenTree::Ident(renamed)
            }
            TokenTree::Group(group) => {
                let mut replaced =
                    Group::new(group.delimiter(), replace_self(group.stream(), ident));
                replaced.set_span(group.span());
                TokenTree::Group(replaced)
            }
            other => other,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(tokens: TokenStream) -> syn::Result<PersistStruct> {
        parse(syn::parse2(tokens).unwrap(), || {
            Ok(syn::parse_quote!(::located::pmem_typed))
        })
    }

    fn error_of(tokens: TokenStream) -> String {
        match parse_str(tokens) {
            Ok(_) => panic!("expected an error"),
            Err(error) => error.to_string(),
        }
    }

    #[test]
    fn accepts_repr_c_and_align() {
        let parsed = parse_str(quote::quote! {
            #[repr(C, align(64))]
            #[pmem(crate = "renamed::path", fields = "Ptrs")]
            pub struct S { pub r#type: u64, next: PPtr<Self> }
        })
        .unwrap();
        assert_eq!(parsed.fields_ident, "Ptrs");
        assert_eq!(
            parsed.krate.to_token_stream().to_string(),
            "renamed :: path"
        );
        assert_eq!(parsed.fields[0].name, "type");
        assert_eq!(parsed.fields[1].ty.to_string(), "PPtr < S >");
    }

    #[test]
    fn default_names() {
        let parsed = parse_str(quote::quote! { #[repr(C)] struct r#Point { x: u64 } }).unwrap();
        assert_eq!(parsed.fields_ident, "PointFields");
        assert_eq!(
            parsed.krate.to_token_stream().to_string(),
            ":: located :: pmem_typed"
        );
    }

    #[test]
    fn rejects_with_reasons() {
        assert!(error_of(quote::quote! { struct S { a: u64 } }).contains("requires #[repr(C)]"));
        assert!(
            error_of(quote::quote! { #[repr(C, packed)] struct S { a: u64 } })
                .contains("repr(packed)")
        );
        assert!(
            error_of(quote::quote! { #[repr(C, align(8192))] struct S { a: u64 } })
                .contains("alignments up to 4096, not 8192")
        );
        assert!(parse_str(quote::quote! { #[repr(C, align(4096))] struct S { a: u64 } }).is_ok());
        assert!(
            error_of(quote::quote! { #[repr(transparent)] struct S { a: u64 } })
                .contains("repr(transparent)")
        );
        assert!(error_of(quote::quote! { #[repr(C)] struct S<T> { a: T } }).contains("generic"));
        assert!(
            error_of(quote::quote! { #[repr(C)] struct S where u8: Copy { a: u8 } })
                .contains("generic")
        );
        assert!(error_of(quote::quote! { #[repr(C)] struct S(u64); }).contains("named fields"));
        assert!(error_of(quote::quote! { #[repr(C)] struct S; }).contains("unit struct"));
        assert!(error_of(quote::quote! { #[repr(C)] struct S {} }).contains("at least one field"));
        assert!(error_of(quote::quote! { #[repr(C)] enum S { A } }).contains("enum"));
        assert!(error_of(quote::quote! { #[repr(C)] union S { a: u64 } }).contains("unions"));
        assert!(
            error_of(quote::quote! { #[repr(C)] #[pmem(foo)] struct S { a: u64 } })
                .contains("unknown")
        );
        assert!(
            error_of(
                quote::quote! { #[repr(C)] #[pmem(fields = "A", fields = "B")] struct S { a: u64 } }
            )
            .contains("duplicate")
        );
        assert!(
            error_of(quote::quote! { #[repr(C)] struct S { #[pmem(crate = "x")] a: u64 } })
                .contains("no field options")
        );
    }

    #[test]
    fn reports_all_errors_at_once() {
        let error = parse_str(quote::quote! { #[pmem(foo)] struct S<T> { a: T } })
            .err()
            .unwrap();
        assert_eq!(error.into_iter().count(), 3);
    }
}
