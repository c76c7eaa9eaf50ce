//! Pools on files: creation, validation on open, typed access, guards,
//! allocation and free, growth, and the consistency check.

use std::path::PathBuf;

use pmem_testkit::counting::Counting;
use pmem_testkit::scratch;
use pmem_typed::format::redo::{RedoKind, RedoRecord};
use pmem_typed::format::{DYNAMIC_SLOTS_OFFSET, PAGE, REDO_OFFSET};
use pmem_typed::{
    Error, Expected, FieldDifference, PPtr, PSlice, Persist, PointerProblem, Pool, RunStats,
    Structure, TargetProblem,
};
use proptest::prelude::*;
use zerocopy::IntoBytes;

#[derive(Clone, Copy, Debug, PartialEq, Persist)]
#[repr(C)]
struct Root {
    counter: u64,
    head: PPtr<Node>,
    blob: PSlice<u8>,
    numbers: PSlice<u64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Persist)]
#[repr(C)]
struct Node {
    value: u64,
    next: PPtr<Node>,
}

/// The same size as `Root`, with `counter` renamed.
#[derive(Clone, Copy, Persist)]
#[repr(C)]
struct RenamedRoot {
    count: u64,
    head: PPtr<Node>,
    blob: PSlice<u8>,
    numbers: PSlice<u64>,
}

/// `Root` with one more field.
#[derive(Clone, Copy, Persist)]
#[repr(C)]
struct GrownRoot {
    counter: u64,
    head: PPtr<Node>,
    blob: PSlice<u8>,
    numbers: PSlice<u64>,
    extra: u64,
}

struct TempPool {
    dir: tempfile::TempDir,
}

impl TempPool {
    fn new() -> Self {
        Self {
            dir: scratch::scratch("pmem-typed"),
        }
    }

    fn path(&self) -> PathBuf {
        self.dir.path().join("pool")
    }

    fn create(&self, size: usize) -> Pool<Root> {
        Pool::create(self.path(), "test", size).expect("create pool")
    }

    fn open(&self) -> Pool<Root> {
        Pool::open(self.path(), "test").expect("open pool")
    }

    fn patch(&self, offset: u64, bytes: &[u8]) {
        use std::os::unix::fs::FileExt;
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(self.path())
            .expect("open file");
        file.write_all_at(bytes, offset).expect("patch file");
    }
}

#[test]
fn create_then_open_keeps_the_root() {
    let t = TempPool::new();
    {
        let mut pool = t.create(1 << 20);
        let root = pool.root();
        pool.set(root.fields().counter, 7).unwrap();
        let info = pool.info().clone();
        assert_eq!(info.layout, "test");
        assert_eq!(info.size, 1 << 20);
        assert_eq!(info.root_name, "Root");
        assert_eq!(info.root_fields[1], ("head".to_owned(), 8, 8));
        assert_eq!(info.uuid_string().len(), 36);
        assert_eq!(&info.uuid_string()[14..15], "4", "a version-4 UUID");
    }
    let pool = t.open();
    assert_eq!(pool.get(pool.root()).unwrap().counter, 7);
    assert!(pool.check().is_consistent());
}

#[test]
fn create_refuses_bad_arguments_and_existing_files() {
    let t = TempPool::new();
    let long = "x".repeat(64);
    assert!(matches!(
        Pool::<Root>::create(t.path(), &long, 1 << 20),
        Err(Error::InvalidArgument { .. })
    ));
    assert!(matches!(
        Pool::<Root>::create(t.path(), "test", 8192),
        Err(Error::InvalidArgument { .. })
    ));
    assert!(!t.path().exists(), "a refused creation leaves no file");

    std::fs::write(t.path(), b"precious").unwrap();
    match Pool::<Root>::create(t.path(), "test", 1 << 20) {
        Err(Error::Io { source, .. }) => assert_eq!(source.raw_os_error(), Some(libc::EEXIST)),
        other => panic!("expected EEXIST, got {other:?}"),
    }
    assert_eq!(
        std::fs::read(t.path()).unwrap(),
        b"precious",
        "the existing file is untouched"
    );
}

#[test]
fn open_tells_what_is_wrong() {
    let t = TempPool::new();
    std::fs::write(t.path(), vec![0u8; 1 << 20]).unwrap();
    assert!(
        matches!(Pool::<Root>::open(t.path(), "test"), Err(Error::NotAPool { found }) if found == [0; 8])
    );
    std::fs::write(t.path(), b"#!/bin/sh\necho hello\n").unwrap();
    match Pool::<Root>::open(t.path(), "test") {
        Err(e @ Error::NotAPool { .. }) => {
            assert!(e.to_string().contains(r##"found b"#!/bin/s""##), "{e}")
        }
        other => panic!("expected NotAPool, got {other:?}"),
    }
    let short = b"PMEMRS\x00\x01 and then nothing";
    std::fs::write(t.path(), short).unwrap();
    match Pool::<Root>::open(t.path(), "test") {
        Err(Error::Truncated {
            expected: 4096,
            found,
        }) => assert_eq!(found, short.len() as u64),
        other => panic!("expected Truncated, got {other:?}"),
    }
    std::fs::remove_file(t.path()).unwrap();
    assert!(matches!(
        Pool::<Root>::open(t.path(), "test"),
        Err(Error::Io { .. })
    ));

    drop(t.create(1 << 20));
    match Pool::<Root>::open(t.path(), "other") {
        Err(Error::WrongLayout { expected, found }) => {
            assert_eq!((expected.as_str(), found.as_str()), ("other", "test"))
        }
        other => panic!("expected WrongLayout, got {other:?}"),
    }
    match Pool::<RenamedRoot>::open(t.path(), "test") {
        Err(Error::RootTypeMismatch { differences, .. }) => assert_eq!(
            differences,
            [
                FieldDifference::Removed {
                    name: "counter".into(),
                    offset: 0,
                    size: 8
                },
                FieldDifference::Added {
                    name: "count".into(),
                    offset: 0,
                    size: 8
                },
            ]
        ),
        other => panic!("expected RootTypeMismatch, got {other:?}"),
    }
    match Pool::<GrownRoot>::open(t.path(), "test") {
        Err(Error::RootTypeMismatch { differences, .. }) => {
            assert!(differences.contains(&FieldDifference::Size {
                expected: 56,
                found: 48
            }));
            assert!(differences.contains(&FieldDifference::Added {
                name: "extra".into(),
                offset: 48,
                size: 8
            }));
        }
        other => panic!("expected RootTypeMismatch, got {other:?}"),
    }
    // The pool is still fine after all these refusals.
    assert!(t.open().check().is_consistent());
}

#[test]
fn damaged_headers_are_reported() {
    let t = TempPool::new();
    drop(t.create(1 << 20));
    let original = std::fs::read(t.path()).unwrap();

    t.patch(8, &2u32.to_le_bytes());
    assert!(matches!(
        Pool::<Root>::open(t.path(), "test"),
        Err(Error::UnsupportedVersion {
            expected: 1,
            found: 2
        })
    ));
    std::fs::write(t.path(), &original).unwrap();

    t.patch(40, b"X");
    assert!(matches!(
        Pool::<Root>::open(t.path(), "test"),
        Err(Error::ChecksumMismatch {
            region: "superblock",
            ..
        })
    ));
    std::fs::write(t.path(), &original).unwrap();

    // One damaged dynamic slot is survivable (the other is used), both are not.
    t.patch(DYNAMIC_SLOTS_OFFSET as u64 + 8, &[0xff]);
    assert!(t.open().check().is_consistent());
    t.patch(DYNAMIC_SLOTS_OFFSET as u64 + 64 + 8, &[0xff]);
    assert!(matches!(
        Pool::<Root>::open(t.path(), "test"),
        Err(Error::ChecksumMismatch { .. })
    ));
    std::fs::write(t.path(), &original).unwrap();

    // The file shorter than the size the header records.
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(t.path())
        .unwrap();
    file.set_len(512 * 1024).unwrap();
    assert!(matches!(
        Pool::<Root>::open(t.path(), "test"),
        Err(Error::Truncated {
            expected: 1_048_576,
            found: 524_288
        })
    ));
    file.set_len(1 << 20).unwrap();
    std::fs::write(t.path(), &original).unwrap();

    // A chunk descriptor with a kind that does not exist.
    let heap_offset = t.open().info().heap_offset;
    t.patch(heap_offset, &[0x7f]);
    match Pool::<Root>::open(t.path(), "test") {
        Err(
            e @ Error::Corrupt {
                structure,
                offset,
                field,
                found,
                expected,
            },
        ) => {
            assert_eq!(structure, Structure::ChunkDescriptor { zone: 0, chunk: 0 });
            assert_eq!((offset, field, found), (heap_offset, "state", 0x7f));
            assert_eq!(expected, Expected::KnownKind);
            assert!(e.to_string().contains("chunk 0 of zone 0"), "{e}")
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

#[test]
fn a_pool_is_opened_once() {
    let t = TempPool::new();
    let pool = t.create(1 << 20);
    assert!(matches!(
        Pool::<Root>::open(t.path(), "test"),
        Err(Error::AlreadyOpen { .. })
    ));
    drop(pool);
    let _reopened = t.open();
}

#[test]
fn bad_pointers_are_errors() {
    let t = TempPool::new();
    let pool = t.create(1 << 20);
    let bad = |ptr: PPtr<u64>| match pool.get(ptr) {
        Err(Error::BadPointer { reason, .. }) => reason,
        other => panic!("expected BadPointer, got {other:?}"),
    };
    assert_eq!(bad(PPtr::null()), PointerProblem::Null);
    assert_eq!(
        bad(PPtr::from_offset(8)),
        PointerProblem::InHeader {
            header_size: PAGE as u64
        }
    );
    assert_eq!(
        pool.get(PPtr::<u64>::from_offset(8))
            .unwrap_err()
            .to_string(),
        "bad persistent pointer 0x8 to 8 bytes: it points into the pool's 4096-byte header"
    );
    assert_eq!(
        bad(PPtr::from_offset((1 << 20) - 4)),
        PointerProblem::OutOfBounds { pool_size: 1 << 20 }
    );
    assert_eq!(
        bad(PPtr::from_offset(u64::MAX - 2)),
        PointerProblem::OutOfBounds { pool_size: 1 << 20 }
    );
    assert_eq!(
        bad(PPtr::from_offset(PAGE as u64 + 4)),
        PointerProblem::Misaligned { align: 8 }
    );
    assert!(
        pool.get_slice(PSlice::<u64>::from_raw_parts(PAGE as u64, u64::MAX / 4))
            .is_err()
    );
    assert_eq!(
        pool.get_slice(PSlice::<u64>::empty()).unwrap(),
        &[] as &[u64]
    );
}

#[test]
fn guards_persist_what_changed() {
    let t = TempPool::new();
    {
        let mut pool = t.create(1 << 20);
        let root = pool.root();
        {
            let mut guard = pool.get_mut(root).unwrap();
            guard.counter = 99;
            guard.persist();
            guard.counter += 1;
        }
        let a = pool
            .alloc(
                root.fields().head,
                Node {
                    value: 1,
                    next: PPtr::null(),
                },
            )
            .unwrap();
        let b = pool.alloc(
            pool.get(a).unwrap().next.cast::<PPtr<Node>>().cast(),
            Node {
                value: 2,
                next: PPtr::null(),
            },
        );
        assert!(b.is_err(), "a null destination is refused");
        let b = pool
            .alloc(
                a.fields().next,
                Node {
                    value: 2,
                    next: PPtr::null(),
                },
            )
            .unwrap();
        let mut both = pool.get_disjoint_mut([a, b]).unwrap();
        let [ga, gb] = both.each_mut();
        (ga.value, gb.value) = (gb.value, ga.value);
        drop(both);
        assert!(matches!(
            pool.get_disjoint_mut([a, a]),
            Err(Error::Overlap { .. })
        ));
    }
    let pool = t.open();
    let root = pool.get(pool.root()).unwrap();
    assert_eq!(root.counter, 100);
    let a = pool.get(root.head).unwrap();
    assert_eq!((a.value, pool.get(a.next).unwrap().value), (2, 1));
}

#[test]
fn allocate_link_and_free() {
    let t = TempPool::new();
    {
        let mut pool = t.create(4 << 20);
        let root = pool.root();
        for value in 0..1000 {
            let head = pool.get(root).unwrap().head;
            pool.alloc(root.fields().head, Node { value, next: head })
                .unwrap();
        }
        let report = pool.check();
        assert_eq!(
            (report.allocated_blocks, report.reachable_blocks),
            (1000, 1000)
        );
        assert!(report.is_consistent(), "{report}");
    }
    let mut pool = t.open();
    let root = pool.root();
    let mut expected = 999;
    let mut at = pool.get(root).unwrap().head;
    while !at.is_null() {
        let node = pool.get(at).unwrap();
        assert_eq!(node.value, expected);
        expected = expected.wrapping_sub(1);
        at = node.next;
    }
    assert_eq!(expected, u64::MAX);
    // Free from the head: unlink by publishing the next node into the root.
    while !pool.get(root).unwrap().head.is_null() {
        let head = pool.get(root).unwrap().head;
        let next = pool.get(head).unwrap().next;
        pool.set(head.fields().next, PPtr::null()).unwrap();
        pool.free(root.fields().head).unwrap();
        pool.publish(root.fields().head, next).unwrap();
    }
    let stats = pool.stats();
    assert_eq!(stats.allocated_bytes, 0);
    assert_eq!(
        stats.free_chunks, stats.chunks,
        "empty chunks return to the free pool"
    );
    assert!(
        pool.free(root.fields().head).is_ok(),
        "freeing null does nothing"
    );
    assert!(matches!(
        pool.free(PPtr::<PPtr<Node>>::from_offset(PAGE as u64 + 4)),
        Err(Error::BadPointer { .. })
    ));
}

#[test]
fn freeing_what_is_not_allocated_is_refused() {
    let t = TempPool::new();
    let mut pool = t.create(1 << 20);
    let root = pool.root();
    let node = pool
        .alloc(
            root.fields().head,
            Node {
                value: 1,
                next: PPtr::null(),
            },
        )
        .unwrap();
    // Point `next` into the middle of the node, then try to free through it.
    pool.set(node.fields().next, PPtr::from_offset(node.offset() + 8))
        .unwrap();
    assert!(matches!(
        pool.free(node.fields().next),
        Err(Error::InvalidArgument { .. }) | Err(Error::NotAllocated { .. })
    ));
    pool.set(node.fields().next, PPtr::from_offset(node.offset() + 64))
        .unwrap();
    assert!(matches!(
        pool.free(node.fields().next),
        Err(Error::NotAllocated { .. })
    ));
    pool.set(node.fields().next, PPtr::null()).unwrap();
    assert!(pool.check().is_consistent());
}

#[test]
fn check_finds_leaks_and_dangling_pointers() {
    let t = TempPool::new();
    let mut pool = t.create(1 << 20);
    let root = pool.root();
    let node = pool
        .alloc(
            root.fields().head,
            Node {
                value: 1,
                next: PPtr::null(),
            },
        )
        .unwrap();
    pool.set(root.fields().head, PPtr::null()).unwrap();
    let report = pool.check();
    assert_eq!(report.leaked, [(node.offset(), 64)]);

    pool.set(root.fields().head, node).unwrap();
    pool.set(node.fields().next, PPtr::from_offset(node.offset() + 128))
        .unwrap();
    let report = pool.check();
    assert!(report.leaked.is_empty());
    assert_eq!(report.problems.len(), 1, "{report}");
    assert_eq!(
        report.problems[0].problem,
        TargetProblem::NotAllocated,
        "{report}"
    );
    assert_eq!(report.problems[0].offset, node.offset() + 128);
    assert!(
        report.problems[0]
            .to_string()
            .ends_with("not inside an allocated block"),
        "{report}"
    );
}

#[test]
fn slices_small_and_large() {
    let t = TempPool::new();
    {
        let mut pool = t.create(8 << 20);
        let root = pool.root();
        let blob: Vec<u8> = (0..300_000u32).map(|i| (i * 7) as u8).collect();
        let s = pool.alloc_slice(root.fields().blob, &blob).unwrap();
        assert_eq!(s.len(), 300_000);
        let n = pool
            .alloc_slice_zeroed::<u64>(root.fields().numbers, 100)
            .unwrap();
        pool.set_elem(n, 99, 42).unwrap();
        pool.copy_to_slice(n, 10, &[1, 2, 3]).unwrap();
        assert!(pool.copy_to_slice(n, 98, &[1, 2, 3]).is_err());
        assert!(pool.set_elem(n, 100, 1).is_err());
        let mut guard = pool.get_slice_mut(n).unwrap();
        guard[0] = 5;
        drop(guard);
    }
    let mut pool = t.open();
    let root = *pool.get(pool.root()).unwrap();
    let blob = pool.get_slice(root.blob).unwrap();
    assert!(
        blob.iter()
            .enumerate()
            .all(|(i, &b)| b == (i as u32 * 7) as u8)
    );
    let numbers = pool.get_slice(root.numbers).unwrap();
    assert_eq!(
        (numbers[0], &numbers[10..13], numbers[99], numbers[50]),
        (5, &[1u64, 2, 3][..], 42, 0)
    );
    assert!(pool.check().is_consistent());
    pool.free_slice(pool.root().fields().blob).unwrap();
    assert_eq!(pool.get(pool.root()).unwrap().blob, PSlice::empty());
    assert_eq!(pool.stats().runs, RunStats::default());
}

#[test]
fn empty_slices_allocate_nothing() {
    let t = TempPool::new();
    let mut pool = t.create(1 << 20);
    let root = pool.root();
    let numbers = pool.alloc_slice::<u64>(root.fields().numbers, &[]).unwrap();
    let blob = pool
        .alloc_slice_zeroed::<u8>(root.fields().blob, 0)
        .unwrap();
    assert_eq!((numbers, blob), (PSlice::empty(), PSlice::empty()));
    assert_eq!(pool.allocated_blocks(), []);
    let report = pool.check();
    assert!(report.is_consistent(), "{report}");

    // Replacing a slice by an empty one: the old block must be freed first,
    // else the check reports it.
    pool.alloc_slice(root.fields().numbers, &[1u64, 2, 3])
        .unwrap();
    pool.alloc_slice::<u64>(root.fields().numbers, &[]).unwrap();
    assert_eq!(pool.check().leaked.len(), 1);
}

#[test]
fn an_empty_slice_naming_a_block_owns_it() {
    // What a crash between the two stores that empty a slice can leave.
    let t = TempPool::new();
    let mut pool = t.create(1 << 20);
    let root = pool.root();
    let numbers = pool
        .alloc_slice(root.fields().numbers, &[1u64, 2, 3])
        .unwrap();
    let emptied = PSlice::<u64>::from_raw_parts(numbers.offset(), 0);
    pool.set(root.fields().numbers, emptied).unwrap();
    let report = pool.check();
    assert!(report.is_consistent(), "{report}");
    assert_eq!(pool.get_slice(emptied).unwrap(), &[] as &[u64]);
    pool.free_slice(root.fields().numbers).unwrap();
    assert_eq!(pool.allocated_blocks(), []);
    assert_eq!(pool.get(root).unwrap().numbers, PSlice::empty());
}

/// Fields smaller than 8 bytes, packed into words.
#[derive(Clone, Copy, Debug, PartialEq, Persist)]
#[repr(C)]
struct Packed {
    a: u8,
    b: u8,
    c: u16,
    d: u32,
    e: [u8; 3],
    f: u8,
    g: [u8; 2],
    h: u16,
    wide: [u32; 3],
}

#[test]
fn set_flushes_each_line_once_with_one_fence_or_a_logged_two() {
    let medium = Counting::new(pmem_typed::sim::SimMedium::new(1 << 20, 1 << 20));
    let root = Packed {
        a: 0,
        b: 0,
        c: 0,
        d: 0,
        e: [0; 3],
        f: 0,
        g: [0; 2],
        h: 0,
        wide: [0; 3],
    };
    let mut pool = Pool::create_on(medium, "packed", root).unwrap();
    let fields = pool.root().fields();
    pool.medium().take();
    // A byte, stored with its word: its line flushed, one fence.
    pool.set(fields.a, 1).unwrap();
    let counts = pool.medium().take();
    assert_eq!(
        (counts.lines_flushed(), counts.fences),
        (1, 1),
        "{counts:?}"
    );
    // 12 bytes, too wide for one store: logged (the log's line), fence,
    // copied (its line), fence, the log cleared (its line again, unfenced).
    pool.set(fields.wide, [7; 3]).unwrap();
    let counts = pool.medium().take();
    assert_eq!(
        (counts.lines_flushed(), counts.fences),
        (3, 2),
        "{counts:?}"
    );
    assert_eq!(pool.get(pool.root()).unwrap().wide, [7; 3]);
}

#[test]
fn setting_a_small_field_leaves_its_neighbours() {
    let t = TempPool::new();
    let path = t.path();
    {
        let mut pool = Pool::<Packed>::create(&path, "packed", 1 << 20).unwrap();
        let f = pool.root().fields();
        pool.set(f.a, 0x11).unwrap();
        pool.set(f.b, 0x22).unwrap();
        pool.set(f.c, 0x3333).unwrap();
        pool.set(f.d, 0x4444_4444).unwrap();
        pool.set(f.e, [0x55; 3]).unwrap();
        pool.set(f.f, 0x66).unwrap();
        pool.set(f.g, [0x77; 2]).unwrap();
        pool.set(f.h, 0x8888).unwrap();
        pool.set(f.wide, [0x9999_9999; 3]).unwrap();
        pool.set(f.b, 0xbb).unwrap();
        pool.set(f.f, 0xff).unwrap();
    }
    let pool = Pool::<Packed>::open(&path, "packed").unwrap();
    assert_eq!(
        *pool.get(pool.root()).unwrap(),
        Packed {
            a: 0x11,
            b: 0xbb,
            c: 0x3333,
            d: 0x4444_4444,
            e: [0x55; 3],
            f: 0xff,
            g: [0x77; 2],
            h: 0x8888,
            wide: [0x9999_9999; 3],
        }
    );
}

#[test]
fn out_of_space_then_grow() {
    let t = TempPool::new();
    {
        let mut pool = t.create(256 * 1024);
        let root = pool.root();
        let mut count = 0;
        let err = loop {
            let head = pool.get(root).unwrap().head;
            match pool.alloc(
                root.fields().head,
                Node {
                    value: count,
                    next: head,
                },
            ) {
                Ok(_) => count += 1,
                Err(e) => break e,
            }
        };
        assert!(
            matches!(err, Error::OutOfSpace { requested: 16, .. }),
            "{err}"
        );
        assert!(count > 3000, "only {count} nodes fit");
        assert!(
            pool.check().is_consistent(),
            "a refused allocation changes nothing"
        );
        pool.grow(1 << 20).unwrap();
        assert!(matches!(
            pool.grow(1000),
            Err(Error::InvalidArgument { .. })
        ));
        let head = pool.get(root).unwrap().head;
        pool.alloc(
            root.fields().head,
            Node {
                value: count,
                next: head,
            },
        )
        .unwrap();
    }
    let pool = t.open();
    assert_eq!(pool.size(), 1 << 20);
    assert_eq!(std::fs::metadata(t.path()).unwrap().len(), 1 << 20);
    let report = pool.check();
    assert!(report.is_consistent(), "{report}");
    assert!(report.allocated_blocks > 3000);
}

#[test]
fn grow_to_many_zones_and_allocate_large() {
    let t = TempPool::new();
    let mut pool = t.create(256 * 1024);
    assert!(matches!(
        pool.alloc_slice_zeroed::<u8>(pool.root().fields().blob, 1 << 20),
        Err(Error::OutOfSpace { .. })
    ));
    pool.grow(16 << 20).unwrap();
    let blob = pool
        .alloc_slice_zeroed::<u8>(pool.root().fields().blob, 900 * 1024)
        .unwrap();
    assert_eq!(pool.get_slice(blob).unwrap().len(), 900 * 1024);
    assert!(pool.check().is_consistent());
}

/// Writes a redo record into a closed pool, as if a crash had interrupted
/// the operation, and returns what `open` made of it.
fn replay(t: &TempPool, record: RedoRecord) -> Pool<Root> {
    let mut record = record;
    record.crc = 0.into();
    let bytes = record.as_bytes();
    let crc_at = std::mem::offset_of!(RedoRecord, crc);
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&bytes[..crc_at]);
    hasher.update(&bytes[crc_at + 4..]);
    record.crc = hasher.finalize().into();
    t.patch(REDO_OFFSET as u64, record.as_bytes());
    t.open()
}

#[test]
fn open_finishes_or_drops_an_interrupted_allocation() {
    let t = TempPool::new();
    let (block, dest) = {
        let mut pool = t.create(1 << 20);
        let root = pool.root();
        // Allocate and free once so that we know a block address and that its chunk is dedicated.
        let node = pool
            .alloc(
                root.fields().head,
                Node {
                    value: 5,
                    next: PPtr::null(),
                },
            )
            .unwrap();
        let keep = pool
            .alloc(
                node.fields().next,
                Node {
                    value: 6,
                    next: PPtr::null(),
                },
            )
            .unwrap();
        pool.free(node.fields().next).unwrap();
        (keep, root.fields().head.offset())
    };
    let value = Node {
        value: 77,
        next: PPtr::null(),
    };
    t.patch(block.offset(), bytemuck::bytes_of(&value));
    let record = RedoRecord {
        kind: RedoKind::Alloc,
        kind_padding: Default::default(),
        dest_len: 8.into(),
        block: block.offset().into(),
        block_size: 64.into(),
        dest: dest.into(),
        dest_value: [block.offset().into(), 0.into()],
        value_crc: crc32fast::hash(bytemuck::bytes_of(&value)).into(),
        crc: 0.into(),
        value_len: 16.into(),
        seq: 7.into(),
    };
    {
        let pool = replay(&t, record);
        let root = pool.get(pool.root()).unwrap();
        assert_eq!(root.head, block, "the committed allocation was finished");
        assert_eq!(pool.get(root.head).unwrap().value, 77);
        let report = pool.check();
        assert_eq!(
            report.leaked.len(),
            1,
            "the old head is now unreachable: {report}"
        );
    }
    // A value that never became durable: the record's CRC does not match, so it is dropped.
    let record = RedoRecord {
        value_crc: 1234.into(),
        dest_value: [(block.offset() + 64).into(), 0.into()],
        block: (block.offset() + 64).into(),
        ..record
    };
    let pool = replay(&t, record);
    assert_eq!(
        pool.get(pool.root()).unwrap().head,
        block,
        "the uncommitted allocation was dropped"
    );
    assert!(
        pool.allocated_blocks()
            .iter()
            .all(|&(b, _)| b != block.offset() + 64)
    );
}

#[test]
fn open_finishes_an_interrupted_free_and_ignores_torn_records() {
    let t = TempPool::new();
    let node = {
        let mut pool = t.create(1 << 20);
        pool.alloc(
            pool.root().fields().head,
            Node {
                value: 5,
                next: PPtr::null(),
            },
        )
        .unwrap()
    };
    let dest = PAGE as u64 + 8;
    let record = RedoRecord {
        kind: RedoKind::Free,
        kind_padding: Default::default(),
        dest_len: 8.into(),
        block: node.offset().into(),
        block_size: 64.into(),
        dest: dest.into(),
        dest_value: [0.into(), 0.into()],
        value_crc: 0.into(),
        crc: 0.into(),
        value_len: 0.into(),
        seq: 7.into(),
    };
    // A torn record (bad CRC) is ignored.
    t.patch(REDO_OFFSET as u64, record.as_bytes());
    assert_eq!(
        t.open()
            .get(PPtr::<Root>::from_offset(PAGE as u64))
            .unwrap()
            .head,
        node
    );
    let pool = replay(&t, record);
    assert!(pool.get(pool.root()).unwrap().head.is_null());
    assert!(pool.allocated_blocks().is_empty());
    drop(pool);
    // A record that makes no sense is a corrupt pool, not a crash, and
    // opening it changes nothing.
    let before = std::fs::read(t.path()).unwrap();
    let bad = RedoRecord {
        block: 12345.into(),
        ..record
    };
    let mut sealed = bad;
    sealed.crc = {
        let bytes = bad.as_bytes();
        let crc_at = std::mem::offset_of!(RedoRecord, crc);
        let mut hasher = crc32fast::Hasher::new();
        hasher.update(&bytes[..crc_at]);
        hasher.update(&bytes[crc_at + 4..]);
        hasher.finalize().into()
    };
    t.patch(REDO_OFFSET as u64, sealed.as_bytes());
    match Pool::<Root>::open(t.path(), "test") {
        Err(e @ Error::Corrupt { .. }) => assert!(e.to_string().contains("redo record"), "{e}"),
        other => panic!("expected Corrupt, got {other:?}"),
    }
    let after = std::fs::read(t.path()).unwrap();
    assert!(
        before[..REDO_OFFSET] == after[..REDO_OFFSET]
            && before[REDO_OFFSET + 64..] == after[REDO_OFFSET + 64..]
    );
}

#[derive(Clone, Debug)]
enum Op {
    Push(u64),
    Pop,
    Set(usize, u64),
    Blob(usize),
    DropBlob,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => any::<u64>().prop_map(Op::Push),
        2 => Just(Op::Pop),
        2 => (0usize..64, any::<u64>()).prop_map(|(i, v)| Op::Set(i, v)),
        1 => (0usize..40_000).prop_map(Op::Blob),
        1 => Just(Op::DropBlob),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Random stacks of nodes and blobs against a model, across reopenings.
    #[test]
    fn operations_match_a_model(batches in prop::collection::vec(prop::collection::vec(op(), 1..40), 1..4)) {
        let t = TempPool::new();
        drop(t.create(2 << 20));
        let mut stack: Vec<u64> = Vec::new();
        let mut blob: Option<Vec<u8>> = None;
        for batch in batches {
            let mut pool = t.open();
            let root = pool.root();
            for op in batch {
                match op {
                    Op::Push(v) => {
                        let head = pool.get(root).unwrap().head;
                        pool.alloc(root.fields().head, Node { value: v, next: head }).unwrap();
                        stack.push(v);
                    }
                    Op::Pop => {
                        let head = pool.get(root).unwrap().head;
                        if head.is_null() { continue; }
                        let next = pool.get(head).unwrap().next;
                        pool.free(root.fields().head).unwrap();
                        pool.publish(root.fields().head, next).unwrap();
                        stack.pop();
                    }
                    Op::Set(i, v) => {
                        let mut at = pool.get(root).unwrap().head;
                        for _ in 0..i.min(stack.len().saturating_sub(1)) {
                            at = pool.get(at).unwrap().next;
                        }
                        if at.is_null() { continue; }
                        pool.set(at.fields().value, v).unwrap();
                        let index = stack.len() - 1 - i.min(stack.len() - 1);
                        stack[index] = v;
                    }
                    Op::Blob(n) => {
                        pool.free_slice(root.fields().blob).unwrap();
                        let data: Vec<u8> = (0..n).map(|i| (i * 31 + n) as u8).collect();
                        pool.alloc_slice(root.fields().blob, &data).unwrap();
                        blob = Some(data);
                    }
                    Op::DropBlob => {
                        pool.free_slice(root.fields().blob).unwrap();
                        blob = None;
                    }
                }
            }
            let report = pool.check();
            prop_assert!(report.is_consistent(), "{}", report);
        }
        let pool = t.open();
        let root = *pool.get(pool.root()).unwrap();
        let mut found = Vec::new();
        let mut at = root.head;
        while !at.is_null() {
            let node = pool.get(at).unwrap();
            found.push(node.value);
            at = node.next;
        }
        found.reverse();
        prop_assert_eq!(found, stack);
        let stored = pool.get_slice(root.blob).unwrap();
        prop_assert_eq!(stored, blob.as_deref().unwrap_or(&[]));
    }
}
