//! Hostile pointers: whatever offset a `PPtr` or `PSlice` holds (a value read
//! from a damaged or crafted pool, or made up), no write through the pool
//! reaches the allocator's metadata. Writes to the header and the chunk
//! tables are refused with a typed error (reads of a table only see its
//! bytes), `free` refuses anything that is not the start of an allocated
//! block, and after any sequence of such attempts the heap is exactly what
//! the allocator made it: it reopens with the same blocks, and no
//! allocation hands out a block that is still allocated.

use std::collections::BTreeMap;

use pmem_typed::format::heap::Geometry;
use pmem_typed::format::{CHUNK, LINE, PAGE};
use pmem_typed::sim::SimMedium;
use pmem_typed::{Error, Medium, PPtr, PSlice, Persist, PointerProblem, Pool};
use proptest::prelude::*;

#[derive(Clone, Copy, Debug, Persist)]
#[repr(C)]
struct Root {
    counter: u64,
    head: PPtr<Node>,
    blob: PSlice<u8>,
    slots: PSlice<PPtr<Node>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Persist)]
#[repr(C)]
struct Node {
    value: u64,
    next: PPtr<Node>,
}

const LAYOUT: &str = "pointers";
/// Created at 1 MiB (64 chunks per zone), grown to four zones.
const CREATED: usize = 1 << 20;
const GROWN: usize = 4 << 20;

type SimPool = Pool<Root, SimMedium>;

/// A pool of four zones with a few blocks in it: small ones, a run, a slice.
fn pool() -> SimPool {
    let medium = SimMedium::new(CREATED, GROWN);
    medium.set_recording(false);
    let empty = Root {
        counter: 0,
        head: PPtr::null(),
        blob: PSlice::empty(),
        slots: PSlice::empty(),
    };
    let mut pool = Pool::create_on(medium, LAYOUT, empty).expect("create");
    pool.grow(GROWN).expect("grow");
    let root = pool.root().fields();
    for value in 0..4 {
        let next = pool.get(pool.root()).expect("root").head;
        pool.alloc(root.head, Node { value, next }).expect("alloc");
    }
    pool.alloc_slice_zeroed(root.blob, 40_000).expect("run");
    pool.alloc_slice_zeroed(root.slots, 16).expect("slots");
    pool
}

fn geometry(pool: &SimPool) -> Geometry {
    let info = pool.info();
    Geometry {
        heap_offset: info.heap_offset as usize,
        zone_chunks: info.zone_chunks as usize,
        pool_size: info.size as usize,
    }
}

/// The chunk tables, as (start, end), worked out zone by zone.
fn tables(g: &Geometry) -> Vec<(u64, u64)> {
    (0..g.zones())
        .map(|zone| {
            let start = g.table_offset(zone) as u64;
            (start, start + g.table_bytes() as u64)
        })
        .collect()
}

/// Whether `[offset, offset + len)` touches the header or a chunk table, by
/// brute force over the tables (not the pool's own arithmetic); a range past
/// the last zone's chunks is in no zone, and counts as metadata too if it
/// reaches where the next zone's table would be.
fn touches_metadata(g: &Geometry, offset: u64, len: u64) -> bool {
    let end = offset + len.max(1);
    if offset < PAGE as u64 {
        return true;
    }
    let zone_bytes = g.zone_bytes() as u64;
    let heap = g.heap_offset as u64;
    let would_be_tables = (0..=g.zones() as u64).map(|z| {
        let start = heap + z * zone_bytes;
        (start, start + g.table_bytes() as u64)
    });
    tables(g)
        .into_iter()
        .chain(would_be_tables)
        .any(|(start, table_end)| offset < table_end && start < end)
}

fn is_metadata_error(result: &Result<impl Sized, Error>) -> bool {
    matches!(
        result,
        Err(Error::BadPointer {
            reason: PointerProblem::InAllocatorMetadata { .. } | PointerProblem::InHeader { .. },
            ..
        })
    )
}

/// Everything that makes the heap what it is: its blocks and statistics.
fn heap_of(pool: &SimPool) -> (Vec<(u64, u64)>, pmem_typed::HeapStats) {
    (pool.allocated_blocks(), pool.stats())
}

/// The pool's bytes, opened afresh as a restarted program would.
fn reopened(pool: SimPool) -> SimPool {
    let image = pool.into_medium().live();
    Pool::open_on(SimMedium::from_image(&image, GROWN), LAYOUT).expect("reopen")
}

#[test]
fn no_access_reaches_a_chunk_table() {
    let mut pool = pool();
    let g = geometry(&pool);
    assert_eq!(g.zones(), 4, "the test needs several zones");
    let before = heap_of(&pool);
    for (table, end) in tables(&g) {
        for offset in [table, table + 8, table + 64, end - 16, end - 8] {
            let node = PPtr::<Node>::from_offset(offset);
            let word = PPtr::<u64>::from_offset(offset);
            let slice = PSlice::<u64>::from_raw_parts(offset, 2);
            let expected = PointerProblem::InAllocatorMetadata { table };
            let reason = |e: Error| match e {
                Error::BadPointer { reason, .. } => reason,
                other => panic!("expected BadPointer, got {other}"),
            };
            // Reads see the table's bytes, as the medium holds them.
            let mut bytes = [0; 16];
            bytes.copy_from_slice(&pool.medium().live()[offset as usize..][..16]);
            assert_eq!(bytemuck::bytes_of(pool.get(node).unwrap()), bytes);
            assert_eq!(pool.get_slice(slice).unwrap().len(), 2);
            assert_eq!(reason(pool.get_mut(node).unwrap_err()), expected);
            assert_eq!(reason(pool.set(word, u64::MAX).unwrap_err()), expected);
            assert_eq!(reason(pool.get_slice_mut(slice).unwrap_err()), expected);
            assert_eq!(reason(pool.set_elem(slice, 0, 7).unwrap_err()), expected);
            assert_eq!(
                reason(pool.copy_to_slice(slice, 0, &[1, 2]).unwrap_err()),
                expected
            );
            let dest = PPtr::<PPtr<Node>>::from_offset(offset);
            let empty = Node {
                value: 0,
                next: PPtr::null(),
            };
            assert_eq!(reason(pool.alloc(dest, empty).unwrap_err()), expected);
            assert_eq!(reason(pool.free(dest).unwrap_err()), expected);
            assert_eq!(
                reason(pool.free_and_publish(dest, PPtr::null()).unwrap_err()),
                expected
            );
            let slice_dest = PPtr::<PSlice<u8>>::from_offset(offset);
            assert_eq!(
                reason(pool.alloc_slice(slice_dest, &[1]).unwrap_err()),
                expected
            );
            assert_eq!(reason(pool.free_slice(slice_dest).unwrap_err()), expected);
            let root_node = pool.get(pool.root()).expect("root").head;
            assert!(is_metadata_error(&pool.get_disjoint_mut([root_node, node])));
        }
    }
    // Objects that begin in a zone's chunks and run into the next zone's table.
    let last_chunk = g.chunk_offset(0, g.chunks_in_zone(0) - 1) as u64;
    let across = PSlice::<u8>::from_raw_parts(last_chunk, CHUNK as u64 + 1);
    assert!(is_metadata_error(&pool.get_slice_mut(across)));
    let straddling = PPtr::<[u64; 4]>::from_offset(last_chunk + CHUNK as u64 - 16);
    assert!(is_metadata_error(&pool.get_mut(straddling)));
    // The root's pages end where the first table begins.
    let root_end = PPtr::<[u8; 16]>::from_offset(g.heap_offset as u64 - 8);
    assert!(is_metadata_error(&pool.set(root_end, [1; 16])));
    // The header is refused even to reads.
    assert!(is_metadata_error(&pool.get(PPtr::<u64>::from_offset(8))));
    assert_eq!(heap_of(&pool), before, "nothing written");
    assert!(pool.check().is_consistent());
}

#[test]
fn free_refuses_what_is_not_an_allocated_block() {
    let mut pool = pool();
    let g = geometry(&pool);
    let root = pool.get(pool.root()).expect("root");
    let (node, blob) = (root.head, root.blob);
    let before = heap_of(&pool);
    let slots = pool.get(pool.root()).expect("root").slots;
    let slot = slots.at(0).expect("a slot");
    let targets = [
        node.offset() + 8,                 // inside a small block
        node.offset() + 64,                // the free block after it
        blob.offset() + CHUNK as u64,      // a run's tail chunk
        blob.offset() + 8,                 // inside a run
        PAGE as u64,                       // the root
        g.chunk_offset(3, 5) as u64,       // a free chunk in another zone
        GROWN as u64 - 64,                 // past the last zone's chunks
        u64::MAX - 7,                      // nowhere
        g.table_offset(1) as u64 + 8 * 64, // a descriptor
    ];
    for target in targets {
        pool.publish(slot, PPtr::from_offset(target))
            .expect("publish");
        let refused = pool.free(slot);
        assert!(
            matches!(refused, Err(Error::NotAllocated { offset }) if offset == target),
            "freeing {target:#x}: {refused:?}"
        );
        assert_eq!(
            heap_of(&pool),
            before,
            "freeing {target:#x} changed the heap"
        );
    }
    // A double free, through a second pointer: the second finds the block free.
    let (first, second) = (slot, slots.at(1).expect("a slot"));
    let extra = pool
        .alloc(
            first,
            Node {
                value: 9,
                next: PPtr::null(),
            },
        )
        .expect("alloc");
    pool.publish(second, extra).expect("second pointer");
    pool.free(first).expect("free");
    assert!(
        matches!(pool.free(second), Err(Error::NotAllocated { offset }) if offset == extra.offset())
    );
    pool.publish(second, PPtr::null()).expect("publish");
    let report = reopened(pool).check();
    assert!(report.is_consistent(), "{report}");
}

/// What a hostile program (or pool) tries.
#[derive(Clone, Debug)]
enum Op {
    /// Store through a pointer at any offset, of any small size.
    Set { offset: u64, value: u64, wide: bool },
    /// Write through a guard on `len` bytes at any offset.
    Scribble { offset: u64, len: u64, byte: u8 },
    /// Publish an arbitrary offset into a slot, then free through it.
    FreeAt { slot: u64, target: u64 },
    /// Allocate into a slot.
    Alloc { slot: u64, value: u64 },
    /// Free what a slot holds.
    Free { slot: u64 },
}

/// Offsets near every boundary the pool has, and anywhere.
fn offsets() -> impl Strategy<Value = u64> {
    let g = Geometry {
        heap_offset: 2 * PAGE,
        zone_chunks: 64,
        pool_size: GROWN,
    };
    let mut edges = vec![0, PAGE as u64, GROWN as u64, u64::MAX];
    for zone in 0..=g.zones() {
        edges.push(g.table_offset(zone) as u64);
        edges.push((g.table_offset(zone) + g.table_bytes()) as u64);
    }
    let near = (prop::sample::select(edges), -80i64..80)
        .prop_map(|(edge, delta)| edge.wrapping_add_signed(delta));
    prop_oneof![
        3 => near,
        1 => 0..GROWN as u64 + 4096,
        1 => any::<u64>(),
    ]
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    let op = prop_oneof![
        (offsets(), any::<u64>(), any::<bool>()).prop_map(|(offset, value, wide)| Op::Set {
            offset,
            value,
            wide
        }),
        (offsets(), 1u64..200, any::<u8>()).prop_map(|(offset, len, byte)| Op::Scribble {
            offset,
            len,
            byte
        }),
        (0u64..16, offsets()).prop_map(|(slot, target)| Op::FreeAt { slot, target }),
        (0u64..16, any::<u64>()).prop_map(|(slot, value)| Op::Alloc { slot, value }),
        (0u64..16).prop_map(|slot| Op::Free { slot }),
    ];
    prop::collection::vec(op, 1..40)
}

/// Runs `ops`, checking each write the pool accepts against the metadata
/// model and each allocation against the blocks already allocated.
fn run(pool: &mut SimPool, ops: &[Op]) -> Result<(), TestCaseError> {
    let g = geometry(pool);
    let slots = pool.get(pool.root()).map_err(fail)?.slots;
    for op in ops {
        match *op {
            Op::Set {
                offset,
                value,
                wide,
            } => {
                let accepted = if wide {
                    pool.set(PPtr::<[u64; 2]>::from_offset(offset), [value; 2])
                        .is_ok()
                } else {
                    pool.set(PPtr::<u32>::from_offset(offset), value as u32)
                        .is_ok()
                };
                let len = if wide { 16 } else { 4 };
                prop_assert!(
                    !accepted || !touches_metadata(&g, offset, len),
                    "a store of {len} bytes at {offset:#x} was accepted"
                );
            }
            Op::Scribble { offset, len, byte } => {
                let slice = PSlice::<u8>::from_raw_parts(offset, len);
                if let Ok(mut bytes) = pool.get_slice_mut(slice) {
                    prop_assert!(
                        !touches_metadata(&g, offset, len),
                        "a guard on {len} bytes at {offset:#x} was given"
                    );
                    bytes.fill(byte);
                }
            }
            Op::FreeAt { slot, target } => {
                let at = slots.at(slot).ok_or_else(|| fail("slot"))?;
                let blocks = pool.allocated_blocks();
                pool.publish(at, PPtr::from_offset(target)).map_err(fail)?;
                let freed = pool.free(at).is_ok();
                let was_block = blocks.iter().any(|&(start, _)| start == target);
                // Freeing null does nothing, successfully (`Pool::free`'s contract).
                prop_assert_eq!(freed, was_block || target == 0, "free of {:#x}", target);
            }
            Op::Alloc { slot, value } => {
                let at = slots.at(slot).ok_or_else(|| fail("slot"))?;
                let blocks = pool.allocated_blocks();
                let node = Node {
                    value,
                    next: PPtr::null(),
                };
                if let Ok(new) = pool.alloc(at, node) {
                    let (start, end) = (new.offset(), new.offset() + 16);
                    prop_assert!(
                        !blocks.iter().any(|&(b, size)| start < b + size && b < end),
                        "{:#x} was handed out while allocated",
                        start
                    );
                    prop_assert!(!touches_metadata(&g, start, 64));
                    prop_assert_eq!(*pool.get(new).map_err(fail)?, node);
                }
            }
            Op::Free { slot } => {
                let at = slots.at(slot).ok_or_else(|| fail("slot"))?;
                let _ = pool.free(at);
            }
        }
    }
    Ok(())
}

fn fail(e: impl std::fmt::Display) -> TestCaseError {
    TestCaseError::fail(e.to_string())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: if cfg!(miri) { 2 } else { 64 }, ..ProptestConfig::default() })]

    /// Whatever a program writes through pointers, the allocator's state is
    /// what its own operations made it: the heap reopens with the same
    /// blocks, and no block is handed out twice.
    #[test]
    fn hostile_writes_leave_the_allocator_intact(ops in ops()) {
        let mut pool = pool();
        run(&mut pool, &ops)?;
        let heap = heap_of(&pool);
        let mut blocks: BTreeMap<u64, u64> = BTreeMap::new();
        for &(start, size) in &heap.0 {
            prop_assert!(blocks.insert(start, size).is_none());
        }
        let pool = reopened(pool);
        prop_assert_eq!(heap_of(&pool), heap);
    }
}

#[test]
fn the_metadata_model_agrees_with_the_layout() {
    // The brute-force model of the tests above, against the allocator's own
    // placement of descriptors and chunks.
    let pool = pool();
    let g = geometry(&pool);
    for zone in 0..g.zones() {
        assert!(touches_metadata(&g, g.descriptor_offset(zone, 0) as u64, 8));
        assert!(touches_metadata(
            &g,
            (g.descriptor_offset(zone, g.zone_chunks - 1) + LINE - 8) as u64,
            8
        ));
        assert!(!touches_metadata(&g, g.chunk_offset(zone, 0) as u64, 8));
    }
    assert_eq!(pool.medium().len(), GROWN);
}

/// An element type that counts how often `check` traces one.
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C)]
struct Counted {
    target: PSlice<u8>,
}

static TRACED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

// SAFETY: one field, `target`, at offset 0, 16 bytes; no projections.
unsafe impl Persist for Counted {
    type Fields = ();
    const LAYOUT: pmem_typed::TypeLayout = pmem_typed::TypeLayout::of_struct(
        "Counted",
        16,
        8,
        &[pmem_typed::FieldInfo::new("target", 0, 16)],
    );
    fn project(_base: PPtr<Self>) {}
    fn trace(&self, tracer: &mut pmem_typed::Tracer) {
        TRACED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        tracer.visit_slice(self.target);
    }
}

#[derive(Clone, Copy, Persist)]
#[repr(C)]
struct Nested {
    outer: PSlice<PSlice<Counted>>,
}

/// `check` traces every element once, however many pointers reach it: a
/// crafted pool whose `n` slices cover the first 1, 2, ..., `n` elements of
/// one array made it trace n²/2 elements (and hold as many pending visits).
#[test]
fn check_traces_each_element_once() {
    // (Under Miri, a thousand times slower, fewer: the count still tells.)
    const N: u64 = if cfg!(miri) { 50 } else { 2000 };
    let medium = SimMedium::new(1 << 20, 1 << 20);
    let mut pool = Pool::create_on(
        medium,
        "nested",
        Nested {
            outer: PSlice::empty(),
        },
    )
    .expect("create");
    let outer = pool.root().fields().outer;
    let slices = pool.alloc_slice_zeroed(outer, N).expect("outer");
    // The array all of them point into: the first slot's own allocation.
    let first = slices.at(0).expect("slot");
    let array = pool.alloc_slice_zeroed::<Counted>(first, N).expect("array");
    for i in 1..N {
        let prefix = PSlice::from_raw_parts(array.offset(), i + 1);
        pool.set_elem(slices, i, prefix).expect("prefix");
    }
    TRACED.store(0, std::sync::atomic::Ordering::Relaxed);
    let report = pool.check();
    assert!(report.is_consistent(), "{report}");
    let traced = TRACED.load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(traced, N as usize, "elements traced");
}
