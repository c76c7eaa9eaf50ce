//! Code generation for `#[derive(Persist)]`.
//!
//! The output is two items:
//!
//! - the projection struct `<Name>Fields`, outside any block so that users
//!   can name it;
//! - `const _: () = { ... };` holding the layout assertions and the
//!   `Zeroable`, `Pod` and `Persist` impls, each impl
//!   `#[automatically_derived]`. (The attribute is not put on the `const`
//!   itself: rustc warns that it "can only be applied to trait impl blocks"
//!   and that this is being phased out into a hard error.)
//!
//! Every path is absolute: `::core::...` or through the crate path
//! (from Cargo.toml, see [`crate::crate_path`], unless
//! `#[pmem(crate = "...")]` says otherwise), whose hidden `__private`
//! module holds the helpers the generated code needs.
//!
//! Type-level facts are asserted at compile time, each with tokens spanned at
//! the field it is about, so that rustc's error lands on that field:
//!
//! - `__p::assert_pod_field::<T>()` (spanned at the field's type) fails
//!   with "derive(Persist): every field must be plain data, and `T` is not
//!   `bytemuck::Pod`" (the `on_unimplemented` message of `__p::PodField`);
//! - `const _: () = ::core::assert!(cond, "...")` (spanned at the field's
//!   name) fails const evaluation with a message naming the field, for
//!   padding before a field, padding after the last field, a field of 8
//!   bytes or less that crosses an 8-byte boundary, and an alignment above a
//!   page (spanned at the struct's name: it comes from a field's type).
//!
//! Locals (`self`, `base`, `tracer`) are only ever written with the macro's
//! own spans: giving them a field's span would break hygiene when the struct
//! itself comes out of a `macro_rules!` macro.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};

use crate::parse::{MAX_ALIGN, PersistField, PersistStruct};

/// The largest field that a single aligned store can persist atomically.
const ATOMIC_WORD: usize = 8;

/// Generates the projection struct and the impls.
pub(crate) fn expand(input: &PersistStruct) -> TokenStream {
    let fields_struct = fields_struct(input);
    let assertions = assertions(input);
    let impls = impls(input);
    let krate = &input.krate;
    quote! {
        #fields_struct

        const _: () = {
            use #krate::__private as __p;

            #assertions
            #impls
        };
    }
}

/// `<vis> struct <Name>Fields { <field vis> <field>: PPtr<FieldTy>, ... }`.
fn fields_struct(input: &PersistStruct) -> TokenStream {
    let PersistStruct {
        name,
        vis,
        krate,
        fields_ident,
        fields,
        ..
    } = input;
    let doc = format!(" Field projections of [`{name}`]: one persistent pointer per field.");
    let members = fields.iter().map(
        |PersistField {
             ident,
             name,
             vis,
             ty,
             ..
         }| {
            let doc = format!(" Persistent pointer to the `{name}` field.");
            quote! {
                #[doc = #doc]
                #vis #ident: #krate::PPtr<#ty>
            }
        },
    );
    quote! {
        #[doc = #doc]
        #[derive(::core::clone::Clone, ::core::marker::Copy, ::core::fmt::Debug)]
        #vis struct #fields_ident {
            #(#members,)*
        }
    }
}

/// The compile-time checks that make the `Pod` impl sound and the layout
/// persistable.
fn assertions(input: &PersistStruct) -> TokenStream {
    let PersistStruct { ident, name, .. } = input;
    let mut out = TokenStream::new();

    for field in &input.fields {
        let ty = &field.ty;
        out.extend(quote_spanned! {field.ty_span=>
            const _: () = __p::assert_pod_field::<#ty>();
        });
    }

    // Padding between fields: in declaration order (repr(C)), each field
    // starts where the previous one ends. repr(C) puts the first at 0.
    for pair in input.fields.windows(2) {
        let [previous, field] = pair else {
            unreachable!("windows(2)")
        };
        let (prev_ident, prev_ty, this) = (&previous.ident, &previous.ty, &field.ident);
        let message = format!(
            "derive(Persist): `{name}` has padding before field `{}` (the compiler inserts bytes there \
             to align it, and padding bytes are not plain data); add an explicit padding field \
             before it or reorder the fields",
            field.name
        );
        out.extend(quote_spanned! {field.ident.span()=>
            const _: () = ::core::assert!(
                __p::offset_of!(#ident, #this)
                    == __p::offset_of!(#ident, #prev_ident) + __p::size_of::<#prev_ty>(),
                #message
            );
        });
    }

    // Trailing padding: the size is the end of the last field.
    if let Some(last) = input.fields.last() {
        let (last_ident, last_ty) = (&last.ident, &last.ty);
        let message = format!(
            "derive(Persist): `{name}` has padding after its last field `{}` (its size is rounded \
             up to a multiple of its alignment, and padding bytes are not plain data); add an \
             explicit padding field at the end, e.g. `_pad: [u8; N]`",
            last.name
        );
        out.extend(quote_spanned! {last.ident.span()=>
            const _: () = ::core::assert!(
                __p::size_of::<#ident>()
                    == __p::offset_of!(#ident, #last_ident) + __p::size_of::<#last_ty>(),
                #message
            );
        });
    }

    // An alignment above a page cannot be kept: media are page-aligned. An
    // `align(N)` attribute is checked by the parser; this catches a field
    // whose own type is aligned more.
    let message = format!(
        "derive(Persist): `{name}` is aligned to more than {MAX_ALIGN} bytes (a page), because of a \
         field's type; pools guarantee only page alignment, so it cannot be stored"
    );
    let max_align = MAX_ALIGN as usize;
    out.extend(quote_spanned! {ident.span()=>
        const _: () = ::core::assert!(__p::align_of::<#ident>() <= #max_align, #message);
    });

    // Small fields within one aligned 8-byte word, so one store persists them.
    for field in &input.fields {
        let (this, ty) = (&field.ident, &field.ty);
        let message = format!(
            "derive(Persist): field `{}` of `{name}` is {ATOMIC_WORD} bytes or smaller but crosses an \
             {ATOMIC_WORD}-byte boundary, so it could not be persisted atomically; move it within \
             one {ATOMIC_WORD}-byte-aligned word (reorder the fields or add explicit padding before it)",
            field.name
        );
        out.extend(quote_spanned! {field.ident.span()=>
            const _: () = ::core::assert!(
                __p::size_of::<#ty>() > #ATOMIC_WORD
                    || __p::offset_of!(#ident, #this) % #ATOMIC_WORD + __p::size_of::<#ty>()
                        <= #ATOMIC_WORD,
                #message
            );
        });
    }
    out
}

/// `Zeroable`, `Pod` and `Persist`.
fn impls(input: &PersistStruct) -> TokenStream {
    let PersistStruct {
        ident: name,
        name: name_str,
        krate,
        fields_ident,
        fields,
        ..
    } = input;
    let idents: Vec<_> = fields.iter().map(|field| &field.ident).collect();
    let names = fields.iter().map(|field| &field.name);
    let tys: Vec<_> = fields.iter().map(|field| &field.ty).collect();

    // The `// SAFETY:` proofs of the impls below live here, in the macro:
    // comments do not survive `quote!`, and clippy's
    // `undocumented_unsafe_blocks` does not look into derive expansions.
    quote! {
        const __FIELDS: &[#krate::FieldInfo] = &[
            #(#krate::FieldInfo::new(#names, __p::offset_of!(#name, #idents), __p::size_of::<#tys>()),)*
        ];

        // SAFETY (of both impls):
        // - `repr(C)` (checked by the macro), so the layout is the asserted one;
        // - every field is `Pod` (`assert_pod_field` above), hence `Zeroable`, and
        //   all zeros / any bit pattern is a valid value of each field;
        // - no padding between or after the fields (asserted above), so every
        //   byte belongs to a field;
        // - not generic (checked by the macro), so `'static`; `Copy` is the
        //   user's derive (a supertrait of `Pod`, so required by the compiler).
        #[automatically_derived]
        unsafe impl __p::Zeroable for #name {}
        #[automatically_derived]
        unsafe impl __p::Pod for #name {}

        // SAFETY:
        // - `LAYOUT` is built from `size_of`, `align_of` and `offset_of!` of
        //   `Self` and `size_of` of each field type, in declaration order;
        // - `project` offsets `base` by the same `offset_of!` values, with the
        //   fields' own types.
        #[automatically_derived]
        unsafe impl #krate::Persist for #name {
            type Fields = #fields_ident;

            const LAYOUT: #krate::TypeLayout = #krate::TypeLayout::of_struct(
                #name_str,
                __p::size_of::<#name>(),
                __p::align_of::<#name>(),
                __FIELDS,
            );

            #[inline]
            fn project(base: #krate::PPtr<Self>) -> #fields_ident {
                #fields_ident {
                    #(#idents: base.project::<#tys>(__p::offset_of!(#name, #idents)),)*
                }
            }

            fn trace(&self, tracer: &mut #krate::Tracer) {
                #[allow(unused_imports)]
                use __p::{TraceNothing as _, TraceViaPersist as _};
                #((&__p::TraceField(&self.#idents)).trace_field(tracer);)*
            }
        }
    }
}
