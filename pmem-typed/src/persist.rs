//! The [`Persist`] trait: what pools need to know about the types they store.
//!
//! Implemented by `#[derive(Persist)]` for user structs (which also checks
//! their layout at compile time) and here for primitives, arrays and the
//! persistent pointer types.

use core::marker::PhantomData;

use bytemuck::Pod;

use crate::pptr::{PPtr, PSlice};

/// One field of a [`TypeLayout`].
///
/// # Examples
///
/// ```
/// use pmem_typed::{FieldInfo, Persist};
///
/// #[derive(Clone, Copy, Persist)]
/// #[repr(C)]
/// struct Reading { sensor: u32, flags: u32, value: f64 }
///
/// let value: &FieldInfo = &Reading::LAYOUT.fields[2];
/// assert_eq!((value.name, value.offset, value.size), ("value", 8, 8));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FieldInfo {
    /// The field's name.
    pub name: &'static str,
    /// Byte offset within the struct.
    pub offset: usize,
    /// Size in bytes.
    pub size: usize,
}

impl FieldInfo {
    /// Describes one field.
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_typed::{FieldInfo, Persist};
    ///
    /// #[derive(Clone, Copy, Persist)]
    /// #[repr(C)]
    /// struct Range { start: u64, end: u64 }
    ///
    /// assert_eq!(
    ///     Range::LAYOUT.fields,
    ///     [FieldInfo::new("start", 0, 8), FieldInfo::new("end", 8, 8)]
    /// );
    /// ```
    #[must_use]
    pub const fn new(name: &'static str, offset: usize, size: usize) -> Self {
        Self { name, offset, size }
    }
}

/// The layout of a persistent type: size, alignment, fields, and a
/// fingerprint of them that pools store to detect a changed root type.
///
/// The fingerprint hashes field names, sizes and offsets (and the size and
/// alignment of the whole) with FNV-1a; it does not depend on `type_name` or
/// on the compiler, so it is stable across builds.
///
/// # Examples
///
/// ```
/// use pmem_typed::{PPtr, Persist};
///
/// #[derive(Clone, Copy, Persist)]
/// #[repr(C)]
/// struct Account { id: u64, balance: u64 }
///
/// // The same fields under another name: the same fingerprint.
/// #[derive(Clone, Copy, Persist)]
/// #[repr(C)]
/// struct Renamed { id: u64, balance: u64 }
///
/// // A field renamed: another fingerprint, so a pool refuses to open with it.
/// #[derive(Clone, Copy, Persist)]
/// #[repr(C)]
/// struct Changed { id: u64, cents: u64 }
///
/// let layout = Account::LAYOUT;
/// assert_eq!((layout.name, layout.size, layout.align), ("Account", 16, 8));
/// assert_eq!(layout.fields.len(), 2);
/// assert_eq!(layout.fingerprint, Renamed::LAYOUT.fingerprint);
/// assert_ne!(layout.fingerprint, Changed::LAYOUT.fingerprint);
/// // Primitives and pointers have layouts without fields.
/// assert!(u64::LAYOUT.fields.is_empty());
/// assert_eq!(PPtr::<Account>::LAYOUT.size, 8);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TypeLayout {
    /// A short name for messages (not part of the fingerprint).
    pub name: &'static str,
    /// `size_of::<T>()`.
    pub size: usize,
    /// `align_of::<T>()`.
    pub align: usize,
    /// The fields, in declaration order (empty for primitives and arrays).
    pub fields: &'static [FieldInfo],
    /// Stable hash of the above, without `name`.
    pub fingerprint: u64,
}

impl TypeLayout {
    /// The layout of a struct with the given fields.
    ///
    /// # Examples
    ///
    /// It is what `derive(Persist)` records:
    ///
    /// ```
    /// use pmem_typed::{FieldInfo, Persist, TypeLayout};
    ///
    /// #[derive(Clone, Copy, Persist)]
    /// #[repr(C)]
    /// struct Point { x: u64, y: u64 }
    ///
    /// const BY_HAND: TypeLayout = TypeLayout::of_struct(
    ///     "Point",
    ///     16,
    ///     8,
    ///     &[FieldInfo::new("x", 0, 8), FieldInfo::new("y", 8, 8)],
    /// );
    /// assert_eq!(BY_HAND, Point::LAYOUT);
    /// ```
    #[must_use]
    pub const fn of_struct(
        name: &'static str,
        size: usize,
        align: usize,
        fields: &'static [FieldInfo],
    ) -> Self {
        let mut hash = fnv(FNV_OFFSET, &(size as u64).to_le_bytes());
        hash = fnv(hash, &(align as u64).to_le_bytes());
        let mut i = 0;
        while i < fields.len() {
            hash = fnv(hash, fields[i].name.as_bytes());
            hash = fnv(hash, &[0xff]); // separates names: "ab"+"c" from "a"+"bc"
            hash = fnv(hash, &(fields[i].offset as u64).to_le_bytes());
            hash = fnv(hash, &(fields[i].size as u64).to_le_bytes());
            i += 1;
        }
        Self {
            name,
            size,
            align,
            fields,
            fingerprint: hash,
        }
    }

    /// The layout of a type without named fields, identified by `kind`
    /// (e.g. "u64", "array", "pptr") and its size and alignment.
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_typed::{Persist, TypeLayout};
    ///
    /// assert_eq!(u64::LAYOUT, TypeLayout::of_scalar("u64", "u64", 8, 8));
    /// // Same size and alignment, another kind: another fingerprint.
    /// assert_ne!(u64::LAYOUT.fingerprint, i64::LAYOUT.fingerprint);
    /// ```
    #[must_use]
    pub const fn of_scalar(
        name: &'static str,
        kind: &'static str,
        size: usize,
        align: usize,
    ) -> Self {
        let mut hash = fnv(FNV_OFFSET, kind.as_bytes());
        hash = fnv(hash, &(size as u64).to_le_bytes());
        hash = fnv(hash, &(align as u64).to_le_bytes());
        Self {
            name,
            size,
            align,
            fields: &[],
            fingerprint: hash,
        }
    }
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

const fn fnv(mut hash: u64, bytes: &[u8]) -> u64 {
    let mut i = 0;
    while i < bytes.len() {
        hash ^= bytes[i] as u64;
        hash = hash.wrapping_mul(FNV_PRIME);
        i += 1;
    }
    hash
}

/// A type that can live in a pool.
///
/// Derive it for your structs with `#[derive(Persist)]` (on a `#[repr(C)]`
/// struct that is also `Clone + Copy`): the derive checks at compile time that
/// every field is plain data, that there is no padding, and that no field of
/// 8 bytes or less straddles an 8-byte boundary (such a field could not be
/// persisted atomically); it then implements this trait, [`Pod`] and
/// [`Zeroable`](bytemuck::Zeroable), and generates a `<Name>Fields` struct of
/// field projections.
///
/// # Safety
///
/// `LAYOUT` describes `Self` truthfully (size, alignment, field offsets and
/// sizes within the struct), and `project` returns pointers to the fields
/// `LAYOUT` lists, at their offsets. `align_of::<Self>()` is at most 4096:
/// media are page-aligned, so that is the most a pool can keep (the derive
/// refuses more at compile time, and so do the pool's methods, for any type).
///
/// A hand-written impl that breaks the alignment rule does not build once a
/// pool would place the type:
///
/// ```compile_fail,E0080
/// use pmem_typed::{PPtr, Persist, Pool, TypeLayout};
///
/// #[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
/// #[repr(C, align(8192))]
/// struct Page8K { bytes: [u8; 8192] }
///
/// // SAFETY: not kept: the alignment is above 4096.
/// unsafe impl Persist for Page8K {
///     type Fields = ();
///     const LAYOUT: TypeLayout = TypeLayout::of_scalar("Page8K", "page", 8192, 8192);
///     fn project(_base: PPtr<Self>) {}
/// }
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let dir = tempfile::tempdir()?;
/// let pool = Pool::<PPtr<Page8K>>::create(dir.path().join("pool"), "pages", 1 << 20)?;
/// let page = *pool.get(pool.root())?;
/// let first = pool.get(page)?.bytes[0]; // error: aligned to more than 4096 bytes
/// # Ok(()) }
/// ```
///
/// # Examples
///
/// ```
/// use pmem_typed::{PPtr, PSlice, Persist};
///
/// #[derive(Clone, Copy, Persist)]
/// #[repr(C)]
/// struct Entry { key: u64, tag: [u8; 8], next: PPtr<Entry> }
///
/// let names: Vec<&str> = Entry::LAYOUT.fields.iter().map(|f| f.name).collect();
/// assert_eq!(names, ["key", "tag", "next"]);
///
/// // Primitives, arrays and persistent pointers implement it too, so
/// // generic code can ask any storable type for its layout.
/// fn bytes_in_pool<T: Persist>(count: u64) -> u64 {
///     count * T::LAYOUT.size as u64
/// }
/// assert_eq!(bytes_in_pool::<Entry>(10), 240);
/// assert_eq!(bytes_in_pool::<[u32; 3]>(1), 12);
/// assert_eq!(bytes_in_pool::<PSlice<Entry>>(1), 16);
/// ```
pub unsafe trait Persist: Pod {
    /// One persistent pointer per field (`()` for types without fields).
    type Fields: Copy;

    /// The layout, whose fingerprint pools record for their root type.
    const LAYOUT: TypeLayout;

    /// The field projections of `base`.
    ///
    /// [`PPtr::fields`] calls this; it is rarely called directly.
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_typed::{PPtr, Persist};
    ///
    /// #[derive(Clone, Copy, Persist)]
    /// #[repr(C)]
    /// struct Span { start: u64, len: u32, flags: u32 }
    ///
    /// let span: PPtr<Span> = PPtr::from_offset(4096);
    /// let fields: SpanFields = Span::project(span);
    /// assert_eq!(fields.len.offset(), 4096 + 8);
    /// assert_eq!(fields.flags.offset(), 4096 + 12);
    /// assert_eq!(fields.flags, span.fields().flags);
    /// ```
    fn project(base: PPtr<Self>) -> Self::Fields;

    /// Visits every persistent pointer this value holds (for reachability
    /// checks). The default holds none.
    ///
    /// `derive(Persist)` traces every field that is a [`PPtr`], a
    /// [`PSlice`], or a type implementing `Persist` in turn; an offset kept in
    /// a plain integer is not a pointer to it. To keep pointers in another
    /// form, implement `Persist` by hand (see [`Tracer`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_typed::{PPtr, Persist, Pool};
    /// use pmem_typed::sim::SimMedium;
    ///
    /// #[derive(Clone, Copy, Persist)]
    /// #[repr(C)]
    /// struct Root { node: PPtr<Node>, raw_offset: u64 }
    ///
    /// #[derive(Clone, Copy, Persist)]
    /// #[repr(C)]
    /// struct Node { value: u64 }
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let medium = SimMedium::new(64 << 10, 64 << 10);
    /// let empty = Root { node: PPtr::null(), raw_offset: 0 };
    /// let mut pool = Pool::create_on(medium, "trace", empty)?;
    /// let root = pool.root();
    /// let node = pool.alloc(root.fields().node, Node { value: 1 })?;
    /// assert_eq!(pool.check().reachable_blocks, 1); // traced through `node`
    ///
    /// // Keep the offset as a plain number instead: `check` cannot follow it.
    /// pool.set(root.fields().raw_offset, node.offset())?;
    /// pool.set(root.fields().node, PPtr::null())?;
    /// assert_eq!(pool.check().leaked, [(node.offset(), 64)]);
    /// # Ok(()) }
    /// ```
    fn trace(&self, tracer: &mut Tracer) {
        let _ = tracer;
    }
}

macro_rules! scalar_persist {
    ($($t:ty),*) => {$(
        // SAFETY: a primitive: no fields, and the layout is its own.
        unsafe impl Persist for $t {
            type Fields = ();
            const LAYOUT: TypeLayout =
                TypeLayout::of_scalar(stringify!($t), stringify!($t), size_of::<$t>(), align_of::<$t>());
            fn project(_base: PPtr<Self>) {}
        }
    )*};
}
scalar_persist!(u8, u16, u32, u64, u128, i8, i16, i32, i64, i128, f32, f64);

// SAFETY: no fields are projected; the layout is the array's own size and alignment.
unsafe impl<T: Persist, const N: usize> Persist for [T; N]
where
    [T; N]: Pod,
{
    type Fields = ();
    const LAYOUT: TypeLayout = {
        // Arrays of different element types must not look alike: mix the element's fingerprint in.
        let element = T::LAYOUT.fingerprint.to_le_bytes();
        let base =
            TypeLayout::of_scalar("array", "array", size_of::<[T; N]>(), align_of::<[T; N]>());
        TypeLayout {
            fingerprint: fnv(base.fingerprint, &element),
            ..base
        }
    };
    fn project(_base: PPtr<Self>) {}
    fn trace(&self, tracer: &mut Tracer) {
        for element in self {
            element.trace(tracer);
        }
    }
}

// `PPtr::fields` lives here, not in pptr.rs, so that pptr.rs needs nothing from
// this module and the two do not import each other: `Persist` names `PPtr`
// (projections start from one), and only this method needs `T: Persist`.
impl<T: Persist> PPtr<T> {
    /// The field projections of a struct deriving [`Persist`]: one pointer
    /// per field.
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_typed::{PPtr, Persist};
    /// #[derive(Clone, Copy, Persist)]
    /// #[repr(C)]
    /// struct Point { x: u64, y: u64 }
    ///
    /// let p: PPtr<Point> = PPtr::from_offset(4096);
    /// assert_eq!(p.fields().y.offset(), 4104);
    /// ```
    #[must_use]
    pub fn fields(self) -> T::Fields {
        T::project(self)
    }
}

// SAFETY: a single offset, no fields.
unsafe impl<T: Persist> Persist for PPtr<T> {
    type Fields = ();
    const LAYOUT: TypeLayout = TypeLayout::of_scalar("PPtr", "pptr", 8, 8);
    fn project(_base: PPtr<Self>) {}
    fn trace(&self, tracer: &mut Tracer) {
        tracer.visit_ptr(*self);
    }
}

// SAFETY: offset and length, no projected fields.
unsafe impl<T: Persist> Persist for PSlice<T> {
    type Fields = ();
    const LAYOUT: TypeLayout = TypeLayout::of_scalar("PSlice", "pslice", 16, 8);
    fn project(_base: PPtr<Self>) {}
    fn trace(&self, tracer: &mut Tracer) {
        tracer.visit_slice(*self);
    }
}

/// Traces `count` consecutive `T`s at `ptr`.
///
/// # Safety
/// `ptr` is valid for reads of `count` `T`s and aligned for `T`.
type TraceFn = unsafe fn(*const u8, u64, &mut Tracer);

/// Collects the persistent pointers reachable from a value, for
/// [`Pool::check`](crate::Pool::check). Implementations of
/// [`Persist::trace`] call [`visit_ptr`](Self::visit_ptr) and
/// [`visit_slice`](Self::visit_slice).
///
/// # Examples
///
/// A pointer with a tag in its low bits is not a [`PPtr`], so its type
/// implements [`Persist`] by hand and traces the pointer it holds:
///
/// ```
/// use bytemuck::{Pod, Zeroable};
/// use pmem_typed::{PPtr, Persist, Pool, Tracer, TypeLayout};
/// use pmem_typed::sim::SimMedium;
///
/// #[derive(Clone, Copy, Persist)]
/// #[repr(C)]
/// struct Node { value: u64 }
///
/// /// A `PPtr<Node>` whose lowest bit marks the node as pinned.
/// #[derive(Clone, Copy, Pod, Zeroable)]
/// #[repr(C)]
/// struct Tagged { bits: u64 }
///
/// // SAFETY: `Tagged` is one `u64` (size 8, align 8) and has no fields to project.
/// unsafe impl Persist for Tagged {
///     type Fields = ();
///     const LAYOUT: TypeLayout = TypeLayout::of_scalar("Tagged", "tagged-pptr", 8, 8);
///     fn project(_base: PPtr<Self>) {}
///     fn trace(&self, tracer: &mut Tracer) {
///         tracer.visit_ptr(PPtr::<Node>::from_offset(self.bits & !1));
///     }
/// }
///
/// #[derive(Clone, Copy, Persist)]
/// #[repr(C)]
/// struct Root { fresh: PPtr<Node>, pinned: Tagged }
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let medium = SimMedium::new(64 << 10, 64 << 10);
/// let empty = Root { fresh: PPtr::null(), pinned: Tagged { bits: 0 } };
/// let mut pool = Pool::create_on(medium, "tagged", empty)?;
/// let root = pool.root();
/// let node = pool.alloc(root.fields().fresh, Node { value: 5 })?;
/// pool.set(root.fields().pinned, Tagged { bits: node.offset() | 1 })?;
/// pool.set(root.fields().fresh, PPtr::null())?;
/// // The node is reached through the tagged pointer alone.
/// let report = pool.check();
/// assert!(report.is_consistent(), "{report}");
/// assert_eq!(report.reachable_blocks, 1);
/// # Ok(()) }
/// ```
#[derive(Default)]
pub struct Tracer {
    pub(crate) pending: Vec<Visit>,
}

impl core::fmt::Debug for Tracer {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Tracer")
            .field("pending", &self.pending.len())
            .finish()
    }
}

/// One pointer found by a trace: its target and how to trace the target in turn.
#[derive(Clone, Copy)]
pub(crate) struct Visit {
    pub(crate) offset: u64,
    pub(crate) count: u64,
    pub(crate) layout: TypeLayout,
    pub(crate) trace: TraceFn,
}

impl Tracer {
    /// Records a pointer to a `T` (nothing for null).
    ///
    /// # Examples
    ///
    /// A pointer kept compactly, as a 32-bit count of cache lines:
    ///
    /// ```
    /// use bytemuck::{Pod, Zeroable};
    /// use pmem_typed::{PPtr, Persist, Pool, Tracer, TypeLayout};
    /// use pmem_typed::sim::SimMedium;
    ///
    /// #[derive(Clone, Copy, Persist)]
    /// #[repr(C)]
    /// struct Node { value: u64 }
    ///
    /// /// A `PPtr<Node>` divided by 64 (blocks are 64-byte aligned); 0 is null.
    /// #[derive(Clone, Copy, Pod, Zeroable)]
    /// #[repr(C)]
    /// struct LinePtr { line: u32 }
    ///
    /// // SAFETY: `LinePtr` is one `u32` (size 4, align 4) with no fields to project.
    /// unsafe impl Persist for LinePtr {
    ///     type Fields = ();
    ///     const LAYOUT: TypeLayout = TypeLayout::of_scalar("LinePtr", "line-pptr", 4, 4);
    ///     fn project(_base: PPtr<Self>) {}
    ///     fn trace(&self, tracer: &mut Tracer) {
    ///         // Null (line 0) is skipped by `visit_ptr`.
    ///         tracer.visit_ptr(PPtr::<Node>::from_offset(u64::from(self.line) * 64));
    ///     }
    /// }
    ///
    /// #[derive(Clone, Copy, Persist)]
    /// #[repr(C)]
    /// struct Root { fresh: PPtr<Node>, links: [LinePtr; 2] }
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let medium = SimMedium::new(64 << 10, 64 << 10);
    /// let empty = Root { fresh: PPtr::null(), links: [LinePtr { line: 0 }; 2] };
    /// let mut pool = Pool::create_on(medium, "lines", empty)?;
    /// let root = pool.root();
    /// let node = pool.alloc(root.fields().fresh, Node { value: 5 })?;
    /// let line = LinePtr { line: (node.offset() / 64) as u32 };
    /// pool.set(root.fields().links, [line, LinePtr { line: 0 }])?;
    /// pool.set(root.fields().fresh, PPtr::null())?;
    /// assert!(pool.check().is_consistent(), "reached through `links[0]`");
    /// # Ok(()) }
    /// ```
    pub fn visit_ptr<T: Persist>(&mut self, ptr: PPtr<T>) {
        if !ptr.is_null() {
            self.pending.push(Visit {
                offset: ptr.offset(),
                count: 1,
                layout: T::LAYOUT,
                trace: trace_erased::<T>,
            });
        }
    }

    /// Records a slice of `T`s (nothing for a slice at offset 0, the empty one).
    ///
    /// # Examples
    ///
    /// A reference to a blob that keeps a checksum beside a 32-bit length:
    ///
    /// ```
    /// use bytemuck::{Pod, Zeroable};
    /// use pmem_typed::{PPtr, PSlice, Persist, Pool, Tracer, TypeLayout};
    /// use pmem_typed::sim::SimMedium;
    ///
    /// #[derive(Clone, Copy, Pod, Zeroable)]
    /// #[repr(C)]
    /// struct Blob { offset: u64, len: u32, crc: u32 }
    ///
    /// // SAFETY: `Blob` is 16 bytes, 8-aligned, without padding, with no fields to project.
    /// unsafe impl Persist for Blob {
    ///     type Fields = ();
    ///     const LAYOUT: TypeLayout = TypeLayout::of_scalar("Blob", "crc-blob", 16, 8);
    ///     fn project(_base: PPtr<Self>) {}
    ///     fn trace(&self, tracer: &mut Tracer) {
    ///         tracer.visit_slice(PSlice::<u8>::from_raw_parts(self.offset, u64::from(self.len)));
    ///     }
    /// }
    ///
    /// #[derive(Clone, Copy, Persist)]
    /// #[repr(C)]
    /// struct Root { fresh: PSlice<u8>, blob: Blob }
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let medium = SimMedium::new(64 << 10, 64 << 10);
    /// let empty = Root { fresh: PSlice::empty(), blob: Blob { offset: 0, len: 0, crc: 0 } };
    /// let mut pool = Pool::create_on(medium, "blobs", empty)?;
    /// let root = pool.root();
    /// let bytes = pool.alloc_slice(root.fields().fresh, b"hello")?;
    /// let blob = Blob { offset: bytes.offset(), len: 5, crc: 0x3610_a686 };
    /// pool.set(root.fields().blob, blob)?;
    /// pool.set(root.fields().fresh, PSlice::empty())?;
    /// assert!(pool.check().is_consistent(), "reached through `blob`");
    /// # Ok(()) }
    /// ```
    pub fn visit_slice<T: Persist>(&mut self, slice: PSlice<T>) {
        // An empty slice with an offset still owns the block it names:
        // `Pool::free_slice` frees it.
        if slice.offset() != 0 {
            self.pending.push(Visit {
                offset: slice.offset(),
                count: slice.len(),
                layout: T::LAYOUT,
                trace: trace_erased::<T>,
            });
        }
    }
}

/// # Safety
/// `ptr` is valid for reads of `count` `T`s and aligned for `T`.
unsafe fn trace_erased<T: Persist>(ptr: *const u8, count: u64, tracer: &mut Tracer) {
    // SAFETY: forwarded from the caller; `T: Pod`, so any bytes are a valid `T`.
    let values = unsafe { core::slice::from_raw_parts(ptr.cast::<T>(), count as usize) };
    for value in values {
        value.trace(tracer);
    }
}

/// Support for the code `#[derive(Persist)]` generates. Not public API.
#[doc(hidden)]
pub mod __private {
    pub use bytemuck::{Pod, Zeroable};
    pub use core::mem::{align_of, offset_of, size_of};

    use super::{Persist, Tracer};

    /// Traces a field through `Persist` if its type implements it, and does
    /// nothing otherwise ("autoref specialisation": the by-value impl below
    /// wins method resolution when it applies, the by-reference one otherwise).
    #[derive(Debug)]
    pub struct TraceField<'a, T>(pub &'a T);

    /// Chosen when the field type implements `Persist`.
    pub trait TraceViaPersist {
        /// Traces the field.
        fn trace_field(&self, tracer: &mut Tracer);
    }
    impl<T: Persist> TraceViaPersist for TraceField<'_, T> {
        fn trace_field(&self, tracer: &mut Tracer) {
            self.0.trace(tracer);
        }
    }

    /// Chosen for plain-data fields that hold no persistent pointers.
    pub trait TraceNothing {
        /// Does nothing.
        fn trace_field(&self, tracer: &mut Tracer);
    }
    impl<T> TraceNothing for &TraceField<'_, T> {
        fn trace_field(&self, _tracer: &mut Tracer) {}
    }

    /// `PhantomData` for generated assertions.
    pub type Marker<T> = super::PhantomData<T>;

    /// Fails to compile (on the field's span) unless `T` is plain data.
    pub const fn assert_pod<T: Pod>() {}

    /// Implemented for exactly the [`Pod`] types; what the derive asserts of
    /// every field type, through [`assert_pod_field`].
    ///
    /// Bounding on this rather than on `Pod` gives a message that says what
    /// `derive(Persist)` needs, and (with `do_not_recommend`) keeps rustc from
    /// listing every `Pod` type in scope, a list that changes whenever one is
    /// added anywhere.
    #[diagnostic::on_unimplemented(
        message = "derive(Persist): every field must be plain data, and `{Self}` is not `bytemuck::Pod`",
        label = "not plain data",
        note = "fields of a persistent struct must be `Pod`, such as integers, floats, arrays of them, \
                `PPtr`, `PSlice`, and structs deriving `Persist`; not references, raw pointers, \
                `bool`, `char`, enums, or types with padding"
    )]
    pub trait PodField {}
    #[diagnostic::do_not_recommend]
    impl<T: Pod> PodField for T {}

    /// Fails to compile (on the field's type) unless `T` is plain data,
    /// saying that `derive(Persist)` needs it to be.
    pub const fn assert_pod_field<T: PodField>() {}
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &[FieldInfo] = &[FieldInfo::new("a", 0, 8), FieldInfo::new("b", 8, 8)];
    const B: &[FieldInfo] = &[FieldInfo::new("a", 0, 8), FieldInfo::new("c", 8, 8)];
    const C: &[FieldInfo] = &[FieldInfo::new("ab", 0, 8), FieldInfo::new("", 8, 8)];

    #[test]
    fn fingerprints_differ_by_name_offset_size() {
        let a = TypeLayout::of_struct("S", 16, 8, A);
        assert_eq!(
            a.fingerprint,
            TypeLayout::of_struct("Renamed", 16, 8, A).fingerprint
        );
        assert_ne!(
            a.fingerprint,
            TypeLayout::of_struct("S", 16, 8, B).fingerprint
        );
        assert_ne!(
            a.fingerprint,
            TypeLayout::of_struct("S", 16, 8, C).fingerprint
        );
        assert_ne!(
            a.fingerprint,
            TypeLayout::of_struct("S", 24, 8, A).fingerprint
        );
    }

    #[test]
    fn fingerprint_is_stable() {
        // Pools on disk depend on this value never changing.
        assert_eq!(
            TypeLayout::of_struct("S", 16, 8, A).fingerprint,
            0x0958_b94a_f542_f11a
        );
        assert_ne!(
            <[u32; 2]>::LAYOUT.fingerprint,
            <[i32; 2]>::LAYOUT.fingerprint
        );
        assert_ne!(<u64>::LAYOUT.fingerprint, <i64>::LAYOUT.fingerprint);
    }

    #[test]
    fn pointers_are_traced() {
        let mut tracer = Tracer::default();
        [
            PPtr::<u64>::from_offset(64),
            PPtr::null(),
            PPtr::from_offset(128),
        ]
        .trace(&mut tracer);
        PSlice::<u32>::from_raw_parts(256, 3).trace(&mut tracer);
        let offsets: Vec<u64> = tracer.pending.iter().map(|v| v.offset).collect();
        assert_eq!(offsets, [64, 128, 256]);
        assert_eq!(tracer.pending[2].count, 3);
    }
}
