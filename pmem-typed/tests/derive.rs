//! `#[derive(Persist)]` on valid structs: layouts, fingerprints, projections,
//! tracing, `Pod`, and the `#[pmem(...)]` options. The rejected inputs are in
//! `compile_fail.rs`.

use std::cell::RefCell;

use pmem_typed::{FieldInfo, PPtr, PSlice, Persist, Tracer, TypeLayout};

/// A record whose fields need no padding, of several sizes.
#[derive(Clone, Copy, Debug, PartialEq, Persist)]
#[repr(C)]
pub struct Record {
    /// 8 bytes at 0.
    pub id: u64,
    /// 4 bytes at 8.
    pub flags: u32,
    /// 2 bytes at 12.
    pub kind: u16,
    /// 2 bytes at 14.
    pub tag: [u8; 2],
    /// 8 bytes at 16.
    pub next: PPtr<Record>,
}

/// The example in the documentation of the derive (which cannot run there:
/// pmem-macros does not depend on pmem-typed).
mod doc_example {
    use pmem_typed::{PPtr, PSlice, Persist};

    #[derive(Clone, Copy, Persist)]
    #[repr(C)]
    pub(crate) struct Node {
        pub(crate) key: u64,
        pub(crate) next: PPtr<Node>,
        pub(crate) values: PSlice<u32>,
    }

    #[test]
    fn doc_example() {
        let node: PPtr<Node> = PPtr::from_offset(4096);
        let fields: NodeFields = node.fields();
        assert_eq!(fields.next.offset(), 4096 + 8);
        assert_eq!(fields.values.offset(), 4096 + 16);
        assert_eq!(Node::LAYOUT.size, 32);
        assert_eq!(Node::LAYOUT.fields[1].name, "next");
    }
}

fn field(name: &'static str, offset: usize, size: usize) -> FieldInfo {
    FieldInfo::new(name, offset, size)
}

#[test]
fn layout_lists_fields_in_order() {
    let layout = Record::LAYOUT;
    assert_eq!(layout.name, "Record");
    assert_eq!((layout.size, layout.align), (24, 8));
    assert_eq!(
        layout.fields,
        [
            field("id", 0, 8),
            field("flags", 8, 4),
            field("kind", 12, 2),
            field("tag", 14, 2),
            field("next", 16, 8)
        ]
    );
    // The fingerprint is `of_struct`'s, over exactly these fields.
    assert_eq!(
        layout.fingerprint,
        TypeLayout::of_struct("anything", 24, 8, layout.fields).fingerprint
    );
}

mod fingerprints {
    use pmem_typed::{PPtr, Persist};

    #[derive(Clone, Copy, Persist)]
    #[repr(C)]
    pub(crate) struct Pair {
        pub(crate) x: u64,
        pub(crate) y: u64,
    }

    /// Same field names, sizes and offsets as `Pair`, another name.
    #[derive(Clone, Copy, Persist)]
    #[repr(C)]
    pub(crate) struct OtherPair {
        pub(crate) x: u64,
        pub(crate) y: PPtr<u8>,
    }

    /// `y` renamed.
    #[derive(Clone, Copy, Persist)]
    #[repr(C)]
    pub(crate) struct RenamedField {
        pub(crate) x: u64,
        pub(crate) z: u64,
    }

    /// `y` resized.
    #[derive(Clone, Copy, Persist)]
    #[repr(C)]
    pub(crate) struct ResizedField {
        pub(crate) x: u64,
        pub(crate) y: [u64; 2],
    }

    /// `x` and `y` at each other's offsets.
    #[derive(Clone, Copy, Persist)]
    #[repr(C)]
    pub(crate) struct Swapped {
        pub(crate) y: u64,
        pub(crate) x: u64,
    }
}

#[test]
fn fingerprint_ignores_the_struct_name_only() {
    use fingerprints::*;
    let pair = Pair::LAYOUT.fingerprint;
    assert_eq!(pair, OtherPair::LAYOUT.fingerprint);
    assert_ne!(Pair::LAYOUT.name, OtherPair::LAYOUT.name);
    assert_ne!(pair, RenamedField::LAYOUT.fingerprint);
    assert_ne!(pair, ResizedField::LAYOUT.fingerprint);
    assert_ne!(pair, Swapped::LAYOUT.fingerprint);
}

#[test]
fn projections_point_at_fields() {
    let base: PPtr<Record> = PPtr::from_offset(4096);
    let fields: RecordFields = base.fields();
    // The projections have the fields' types.
    let flags: PPtr<u32> = fields.flags;
    let tag: PPtr<[u8; 2]> = fields.tag;
    let next: PPtr<PPtr<Record>> = fields.next;
    assert_eq!(fields.id.offset(), 4096);
    assert_eq!(flags.offset(), 4104);
    assert_eq!(fields.kind.offset(), 4108);
    assert_eq!(tag.offset(), 4110);
    assert_eq!(next.offset(), 4112);
    assert_eq!(Record::project(base).next, next);

    let null = PPtr::<Record>::null().fields();
    assert!(null.id.is_null() && null.flags.is_null() && null.kind.is_null());
    assert!(null.tag.is_null() && null.next.is_null());
    // Copy + Debug.
    let copy = fields;
    assert_eq!(format!("{:?}", copy.next), "PPtr(0x1010)");
    assert!(
        format!("{copy:?}").starts_with("RecordFields { id: PPtr(0x1000), flags: PPtr(0x1008)")
    );
}

#[test]
fn pod_round_trip() {
    let record = Record {
        id: 7,
        flags: 0xdead_beef,
        kind: 3,
        tag: *b"ok",
        next: PPtr::from_offset(64),
    };
    let bytes = bytemuck::bytes_of(&record);
    assert_eq!(bytes.len(), 24);
    assert_eq!(&bytes[..8], &7u64.to_ne_bytes());
    assert_eq!(&bytes[14..16], b"ok");
    assert_eq!(bytemuck::pod_read_unaligned::<Record>(bytes), record);
    let zero: Record = bytemuck::Zeroable::zeroed();
    assert_eq!(
        zero,
        Record {
            id: 0,
            flags: 0,
            kind: 0,
            tag: [0; 2],
            next: PPtr::null()
        }
    );
    assert!(zero.next.is_null());
}

// ---- tracing ----

thread_local! {
    static PROBED: RefCell<Vec<u64>> = const { RefCell::new(Vec::new()) };
}

/// Records its value when traced, to see which fields a trace visits and in
/// what order.
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(transparent)]
struct Probe(u64);

// SAFETY: no fields are projected; the layout is a u64's.
unsafe impl Persist for Probe {
    type Fields = ();
    const LAYOUT: TypeLayout = TypeLayout::of_scalar("Probe", "probe", 8, 8);
    fn project(_base: PPtr<Self>) {}
    fn trace(&self, _tracer: &mut Tracer) {
        PROBED.with(|probed| probed.borrow_mut().push(self.0));
    }
}

fn probed(value: &impl Persist) -> Vec<u64> {
    PROBED.with(|probed| probed.borrow_mut().clear());
    value.trace(&mut Tracer::default());
    PROBED.with(|probed| probed.take())
}

/// The number of pointers a trace recorded. `Tracer`'s contents are private
/// to pmem-typed; its `Debug` shows how many visits are pending.
fn visits(value: &impl Persist) -> usize {
    let mut tracer = Tracer::default();
    value.trace(&mut tracer);
    let debug = format!("{tracer:?}");
    let count = debug
        .strip_prefix("Tracer { pending: ")
        .and_then(|rest| rest.strip_suffix(" }"));
    count
        .unwrap_or_else(|| panic!("unexpected Tracer debug output {debug}"))
        .parse()
        .unwrap()
}

/// A `Pod` type that does not implement `Persist`: traced as nothing.
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C)]
struct PlainPod {
    word: u64,
}

#[derive(Clone, Copy, Persist)]
#[repr(C)]
struct Inner {
    probe: Probe,
    ptr: PPtr<u64>,
}

#[derive(Clone, Copy, Persist)]
#[repr(C)]
struct Outer {
    first: Probe,
    plain: u64,
    word: usize,
    pod: PlainPod,
    probes: [Probe; 2],
    inner: Inner,
    ptr: PPtr<u32>,
    null: PPtr<u32>,
    slice: PSlice<u16>,
    empty: PSlice<u16>,
    ptrs: [PPtr<Inner>; 3],
}

fn outer() -> Outer {
    Outer {
        first: Probe(1),
        plain: 100,
        word: 200,
        pod: PlainPod { word: 300 },
        probes: [Probe(2), Probe(3)],
        inner: Inner {
            probe: Probe(4),
            ptr: PPtr::from_offset(64),
        },
        ptr: PPtr::from_offset(128),
        null: PPtr::null(),
        slice: PSlice::from_raw_parts(256, 4),
        empty: PSlice::empty(),
        ptrs: [
            PPtr::from_offset(512),
            PPtr::null(),
            PPtr::from_offset(1024),
        ],
    }
}

#[test]
fn trace_visits_persist_fields_in_order_through_nested_structs() {
    assert_eq!(probed(&outer()), [1, 2, 3, 4]);
    assert_eq!(probed(&outer().inner), [4]);
}

#[test]
fn trace_records_non_null_pointers_and_slices() {
    // inner.ptr, ptr, slice, ptrs[0], ptrs[2]; not null, empty, or plain data.
    assert_eq!(visits(&outer()), 5);
    assert_eq!(visits(&outer().inner), 1);
    let mut sparse = outer();
    sparse.inner.ptr = PPtr::null();
    sparse.ptrs = [PPtr::null(); 3];
    sparse.word = 0xffff; // plain data never counts
    assert_eq!(visits(&sparse), 2);
    assert_eq!(
        visits(&Record {
            id: 1,
            flags: 2,
            kind: 3,
            tag: [4, 5],
            next: PPtr::null()
        }),
        0
    );
}

// ---- options and unusual inputs ----

pub mod reexport {
    //! A crate that re-exports pmem_typed under another name.
    pub use pmem_typed as storage;
}

mod renamed_crate {
    use crate::reexport::storage;

    #[derive(Clone, Copy, storage::Persist)]
    #[repr(C)]
    #[pmem(crate = "crate::reexport::storage")]
    pub(crate) struct ViaPath {
        pub(crate) a: u32,
        pub(crate) b: u32,
    }

    #[derive(Clone, Copy, storage::Persist)]
    #[repr(C)]
    #[pmem(crate = "storage", fields = "ViaAliasPtrs")]
    pub(crate) struct ViaAlias {
        pub(crate) a: u64,
    }
}

#[test]
fn crate_and_fields_options() {
    use renamed_crate::{ViaAlias, ViaAliasPtrs, ViaPath, ViaPathFields};
    assert_eq!(ViaPath::LAYOUT.fields, [field("a", 0, 4), field("b", 4, 4)]);
    let fields: ViaPathFields = PPtr::<ViaPath>::from_offset(8).fields();
    assert_eq!(fields.b.offset(), 12);
    let fields: ViaAliasPtrs = PPtr::<ViaAlias>::from_offset(8).fields();
    assert_eq!(fields.a.offset(), 8);
}

/// A cache line: `align(64)` is allowed when the fields fill it.
#[derive(Clone, Copy, Persist)]
#[repr(C, align(64))]
struct Line {
    head: u64,
    words: [u64; 7],
}

/// `repr(align)` in its own attribute.
#[derive(Clone, Copy, Persist)]
#[repr(C)]
#[repr(align(16))]
struct Split {
    a: u64,
    b: [u8; 8],
}

#[test]
fn repr_align_is_accepted() {
    assert_eq!((Line::LAYOUT.size, Line::LAYOUT.align), (64, 64));
    assert_eq!(
        Line::LAYOUT.fields,
        [field("head", 0, 8), field("words", 8, 56)]
    );
    assert_eq!((Split::LAYOUT.size, Split::LAYOUT.align), (16, 16));
}

/// `Self` in a field type means the struct, in the projections too.
#[derive(Clone, Copy, Persist)]
#[repr(C)]
struct ListNode {
    value: u64,
    next: PPtr<Self>,
    children: PSlice<Self>,
}

#[test]
fn self_in_field_types() {
    let fields = PPtr::<ListNode>::from_offset(64).fields();
    let next: PPtr<PPtr<ListNode>> = fields.next;
    let children: PPtr<PSlice<ListNode>> = fields.children;
    assert_eq!((next.offset(), children.offset()), (72, 80));
    let node = ListNode {
        value: 1,
        next: PPtr::from_offset(64),
        children: PSlice::from_raw_parts(128, 2),
    };
    assert_eq!(visits(&node), 2);
}

/// Raw identifiers are recorded without `r#`.
#[derive(Clone, Copy, Persist)]
#[repr(C)]
struct r#Keywords {
    r#type: u32,
    r#match: u32,
}

#[test]
fn raw_identifiers() {
    assert_eq!(Keywords::LAYOUT.name, "Keywords");
    assert_eq!(
        Keywords::LAYOUT.fields,
        [field("type", 0, 4), field("match", 4, 4)]
    );
    assert_eq!(
        PPtr::<Keywords>::from_offset(8).fields().r#match.offset(),
        12
    );
}

/// Small fields may share a word as long as none crosses a word boundary;
/// fields larger than a word may start anywhere.
#[derive(Clone, Copy, Persist)]
#[repr(C)]
struct Packed {
    a: u8,
    b: u8,
    c: [u8; 6],
    d: [u8; 3],
    e: [u8; 13],
}

#[test]
fn small_fields_within_words() {
    assert_eq!(Packed::LAYOUT.size, 24);
    assert_eq!(Packed::LAYOUT.fields[4], field("e", 11, 13));
}

// A struct defined by a `macro_rules!` macro: the generated code must not
// depend on the hygiene of the field tokens.
macro_rules! persistent_struct {
    ($name:ident { $($field:ident: $ty:ty),* }) => {
        #[derive(Clone, Copy, Persist)]
        #[repr(C)]
        struct $name {
            $($field: $ty),*
        }
    };
}
persistent_struct!(FromMacro { left: PPtr<u64>, right: PPtr<u64> });

#[test]
fn struct_from_a_macro() {
    let value = FromMacro {
        left: PPtr::from_offset(8),
        right: PPtr::null(),
    };
    assert_eq!(visits(&value), 1);
    assert_eq!(value.right, PPtr::null());
    assert_eq!(
        PPtr::<FromMacro>::from_offset(8).fields().right.offset(),
        16
    );
}

/// Projections of public and private fields.
pub mod visibility {
    use pmem_typed::{PPtr, Persist};

    /// Public fields give public projections; private ones stay private.
    #[derive(Clone, Copy, Debug, Persist)]
    #[repr(C)]
    pub struct Mixed {
        /// Visible.
        pub open: u64,
        hidden: u64,
    }

    impl Mixed {
        /// The private field's projection, from inside the module.
        pub fn hidden_ptr(base: PPtr<Self>) -> PPtr<u64> {
            base.fields().hidden
        }

        /// Uses `hidden`.
        pub fn new(open: u64) -> Self {
            Self { open, hidden: 0 }
        }
    }
}

#[test]
fn projections_follow_field_visibility() {
    let base = PPtr::<visibility::Mixed>::from_offset(32);
    assert_eq!(base.fields().open.offset(), 32);
    assert_eq!(visibility::Mixed::hidden_ptr(base).offset(), 40);
    assert_eq!(visibility::Mixed::new(3).open, 3);
}
