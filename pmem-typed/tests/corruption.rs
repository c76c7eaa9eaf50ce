//! Corrupt pools: every damaged image is refused with an error or opens and
//! stays usable; nothing panics, and a refused open leaves the bytes as they
//! were (nothing is lost by trying).
//!
//! A valid pool (a list of nodes, a small slice and a large one) is built on a
//! [`SimMedium`] and then damaged in targeted ways, each with the outcome it
//! must have: header fields with and without a fixed-up checksum, the dynamic
//! slots, redo records that pass their CRC (sealed with
//! [`RedoRecord::sealed`]) but say nonsense, chunk descriptors, and the
//! persistent pointers inside objects (which `check` must report). Then
//! property tests flip random bytes and truncate the image, and one test does
//! the same to pool files. The inputs that made the fuzz target
//! (`fuzz/fuzz_targets/open_pool.rs`) panic are among the targeted cases.

use std::fmt;
use std::mem::offset_of;
use std::panic::{AssertUnwindSafe, catch_unwind};

use bytemuck::Zeroable;
use pmem_typed::format::batch::{BATCH_OFFSET, Entry, write_log};
use pmem_typed::format::heap::{ChunkDescriptor, ChunkKind};
use pmem_typed::format::redo::{RedoKind, RedoRecord, seal_line};
use pmem_typed::format::superblock::Superblock;
use pmem_typed::format::{CHUNK, DYNAMIC_SLOTS_OFFSET, LINE, MAGIC, PAGE, REDO_OFFSET};
use pmem_typed::sim::SimMedium;
use pmem_typed::{CheckReport, Error, PSlice, Pool};
use proptest::prelude::*;
use zerocopy::little_endian::U64;
use zerocopy::{FromZeros, IntoBytes};

// The fuzz target's pool types and workload, shared through the test kit.
use pmem_testkit::hostile::{
    GROWTH, LAYOUT, Node, Root, reseal_slot, reseal_superblock, use_and_reopen,
};

const SIZE: usize = 256 * 1024;

/// The valid pool every case starts from, and where its parts are.
struct Base {
    image: Vec<u8>,
    heap_offset: usize,
    /// The list's nodes, head first.
    nodes: Vec<u64>,
    numbers: PSlice<u64>,
    blob: PSlice<u8>,
}

impl Base {
    fn new() -> Self {
        let medium = SimMedium::new(SIZE, SIZE);
        medium.set_recording(false);
        let mut pool = Pool::<Root, _>::create_on(medium, LAYOUT, Root::zeroed()).expect("create");
        let root = pool.root();
        for value in 0..20 {
            let head = pool.get(root).unwrap().head;
            pool.alloc(root.fields().head, Node { value, next: head })
                .unwrap();
        }
        let numbers = pool
            .alloc_slice(root.fields().numbers, &[7u64; 100])
            .unwrap();
        let blob = pool
            .alloc_slice_zeroed::<u8>(root.fields().blob, 40_000)
            .unwrap();
        let heap_offset = pool.info().heap_offset as usize;
        let mut nodes = Vec::new();
        let mut at = pool.get(root).unwrap().head;
        while !at.is_null() {
            nodes.push(at.offset());
            at = pool.get(at).unwrap().next;
        }
        assert!(pool.check().is_consistent());
        Self {
            image: pool.into_medium().live(),
            heap_offset,
            nodes,
            numbers,
            blob,
        }
    }

    /// The descriptor offset of the chunk holding `offset` (zone 0).
    fn descriptor_of(&self, offset: u64) -> usize {
        let chunk = (offset as usize - self.heap_offset - 64 * LINE) / CHUNK;
        self.heap_offset + chunk * LINE
    }

    /// The first byte of the chunk whose descriptor is at `descriptor`.
    fn chunk_start(&self, descriptor: usize) -> u64 {
        (self.heap_offset + 64 * LINE + (descriptor - self.heap_offset) / LINE * CHUNK) as u64
    }
}

fn put_u64(image: &mut [u8], at: usize, value: u64) {
    image[at..at + 8].copy_from_slice(&value.to_le_bytes());
}

fn put_u32(image: &mut [u8], at: usize, value: u32) {
    image[at..at + 4].copy_from_slice(&value.to_le_bytes());
}

fn get_u64(image: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(image[at..at + 8].try_into().unwrap())
}

/// Writes `record`, with a valid CRC, into redo slot `i`.
fn put_record(image: &mut [u8], i: usize, record: RedoRecord) {
    put_line(image, i, line_of(record));
}

/// Writes the bytes of a record (which may hold no kind), with a valid CRC,
/// into redo slot `i`.
fn put_line(image: &mut [u8], i: usize, mut line: [u8; LINE]) {
    seal_line(&mut line);
    let at = REDO_OFFSET + i * LINE;
    image[at..at + LINE].copy_from_slice(&line);
}

/// The bytes of `record`.
fn line_of(record: RedoRecord) -> [u8; LINE] {
    let mut line = [0; LINE];
    line.copy_from_slice(record.as_bytes());
    line
}

/// The bytes of `record` with its first four bytes, the kind and the zero
/// bytes after it, replaced by the little-endian `word`.
fn with_kind_word(record: RedoRecord, word: u32) -> [u8; LINE] {
    let mut line = line_of(record);
    line[..4].copy_from_slice(&word.to_le_bytes());
    line
}

/// Sets a superblock field and fixes the CRC.
fn sb_u64(image: &mut [u8], at: usize, value: u64) {
    put_u64(image, at, value);
    reseal_superblock(image);
}

/// What opening a damaged image came to.
enum Outcome {
    /// `open` refused it; `changed` says whether the bytes changed anyway.
    Refused { error: Error, changed: bool },
    /// It opened: the check's findings, and whether it reopened after use.
    Opened {
        report: CheckReport,
        /// Whether it kept every promise while used, and reopened so.
        reopened: Result<(), String>,
    },
}

impl fmt::Debug for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Refused { error, changed } => {
                write!(
                    f,
                    "refused ({error}){}",
                    if *changed { ", CHANGED" } else { "" }
                )
            }
            Self::Opened { report, reopened } => {
                write!(f, "opened: {report}reopened: {reopened:?}")
            }
        }
    }
}

/// Inspects and opens `image`; if it opens, uses it with the fuzz target's
/// checked workload ([`use_and_reopen`]: walks it, allocates, grows and
/// frees through the root, checking every promise, then reopens it and
/// compares what `check` finds). A panic anywhere fails the test, naming the
/// mutation.
fn open_image(image: &[u8], what: &str) -> Outcome {
    let mut medium = SimMedium::from_image(image, image.len().max(PAGE) + GROWTH);
    medium.set_recording(false);
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        let _ = pmem_typed::inspect::inspect_medium(&medium, image.len() as u64);
        let pool = match Pool::<Root, _>::open_on(&mut medium, LAYOUT) {
            Err(error) => {
                let changed = medium.live() != image;
                return Outcome::Refused { error, changed };
            }
            Ok(pool) => pool,
        };
        let report = pool.check();
        let reopened = use_and_reopen(pool);
        Outcome::Opened { report, reopened }
    }));
    match outcome {
        Ok(outcome) => outcome,
        Err(panic) => {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_default();
            panic!("{what}: panicked: {message}")
        }
    }
}

/// The outcome a mutation must have.
enum Expect {
    /// Refused with an error the predicate accepts.
    Refused(fn(&Error) -> bool),
    /// Opens, and `check` finds something wrong.
    Inconsistent,
    /// Refused with any error, or opens and `check` finds something wrong.
    NotConsistent,
    /// Opens, and `check` finds nothing wrong.
    Consistent,
    /// Refused, or opens: whichever, without panicking.
    Either,
}

/// One targeted mutation.
struct Case {
    what: String,
    image: Vec<u8>,
    expect: Expect,
}

/// Checks one case's outcome, returning a description of what is wrong.
fn judge(case: &Case) -> Option<String> {
    let outcome = open_image(&case.image, &case.what);
    let ok = match (&outcome, &case.expect) {
        (Outcome::Refused { changed: true, .. }, _) => false,
        (
            Outcome::Opened {
                reopened: Err(_), ..
            },
            _,
        ) => false,
        (Outcome::Refused { error, .. }, Expect::Refused(accepts)) => accepts(error),
        (Outcome::Refused { .. }, Expect::Either) => true,
        (Outcome::Opened { .. }, Expect::Either) => true,
        (Outcome::Opened { report, .. }, Expect::Inconsistent) => !report.is_consistent(),
        (Outcome::Opened { report, .. }, Expect::Consistent) => report.is_consistent(),
        (Outcome::Refused { .. }, Expect::NotConsistent) => true,
        (Outcome::Opened { report, .. }, Expect::NotConsistent) => !report.is_consistent(),
        _ => false,
    };
    (!ok).then(|| format!("{}: {outcome:?}", case.what))
}

fn run_cases(cases: &[Case]) {
    let failures: Vec<String> = cases.iter().filter_map(judge).collect();
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

fn not_a_pool(e: &Error) -> bool {
    matches!(e, Error::NotAPool { .. })
}
fn bad_version(e: &Error) -> bool {
    matches!(e, Error::UnsupportedVersion { .. })
}
fn bad_checksum(e: &Error) -> bool {
    matches!(e, Error::ChecksumMismatch { .. })
}
fn corrupt(e: &Error) -> bool {
    matches!(e, Error::Corrupt { .. })
}
fn wrong_layout(e: &Error) -> bool {
    matches!(e, Error::WrongLayout { .. })
}
fn root_mismatch(e: &Error) -> bool {
    matches!(e, Error::RootTypeMismatch { .. })
}
fn truncated(e: &Error) -> bool {
    matches!(e, Error::Truncated { .. })
}
fn corrupt_or_root(e: &Error) -> bool {
    corrupt(e) || root_mismatch(e)
}

/// Builds cases from `(what, mutation, expectation)`.
fn cases(base: &Base, list: Vec<Mutation>) -> Vec<Case> {
    list.into_iter()
        .map(|(what, mutate, expect)| {
            let mut image = base.image.clone();
            mutate(&mut image);
            Case {
                what,
                image,
                expect,
            }
        })
        .collect()
}

type Mutation = (String, Box<dyn Fn(&mut Vec<u8>)>, Expect);

fn m(what: impl Into<String>, f: impl Fn(&mut Vec<u8>) + 'static, expect: Expect) -> Mutation {
    (what.into(), Box::new(f), expect)
}

#[test]
fn the_base_pool_opens_consistently() {
    let base = Base::new();
    run_cases(&cases(
        &base,
        vec![m("nothing changed", |_| {}, Expect::Consistent)],
    ));
}

#[test]
fn damaged_superblock_fields_are_refused() {
    let base = Base::new();
    let mut list = vec![
        m(
            "magic zeroed",
            |i| i[..8].fill(0),
            Expect::Refused(not_a_pool),
        ),
        m(
            "magic's last byte",
            |i| i[7] = 2,
            Expect::Refused(not_a_pool),
        ),
        m(
            "version 2",
            |i| put_u32(i, offset_of!(Superblock, version), 2),
            Expect::Refused(bad_version),
        ),
        m(
            "version 0, resealed",
            |i| {
                put_u32(i, offset_of!(Superblock, version), 0);
                reseal_superblock(i);
            },
            Expect::Refused(bad_version),
        ),
        m(
            "crc flipped",
            |i| i[offset_of!(Superblock, crc)] ^= 1,
            Expect::Refused(bad_checksum),
        ),
        m(
            "uuid changed",
            |i| i[offset_of!(Superblock, uuid)] ^= 0x55,
            Expect::Refused(bad_checksum),
        ),
        m(
            "uuid changed, resealed",
            |i| {
                i[offset_of!(Superblock, uuid)] ^= 0x55;
                reseal_superblock(i);
            },
            Expect::Consistent,
        ),
        m(
            "layout name changed",
            |i| {
                i[offset_of!(Superblock, layout_name)] = b'C';
                reseal_superblock(i);
            },
            Expect::Refused(wrong_layout),
        ),
        m(
            "layout name without its NUL, invalid UTF-8",
            |i| {
                let at = offset_of!(Superblock, layout_name);
                i[at..at + 64].fill(0xff);
                reseal_superblock(i);
            },
            Expect::Refused(wrong_layout),
        ),
        m(
            "layout name emptied",
            |i| {
                i[offset_of!(Superblock, layout_name)] = 0;
                reseal_superblock(i);
            },
            Expect::Refused(wrong_layout),
        ),
        m(
            "root fingerprint",
            |i| sb_u64(i, offset_of!(Superblock, root_fingerprint), 12345),
            Expect::Refused(root_mismatch),
        ),
        m(
            "root type name, field count and field records",
            |i| {
                i[offset_of!(Superblock, root_name)..][..32].fill(0xee);
                put_u32(i, offset_of!(Superblock, root_field_count), u32::MAX);
                i[offset_of!(Superblock, root_fields)..][..64 * 29].fill(0x41);
                reseal_superblock(i);
            },
            Expect::Consistent,
        ),
    ];
    for value in [0, 8, 4095, 8192, u64::MAX] {
        list.push(m(
            format!("root offset {value}"),
            move |i| sb_u64(i, offset_of!(Superblock, root_offset), value),
            Expect::Refused(corrupt),
        ));
    }
    for value in [
        0,
        1,
        40,
        56,
        4096,
        4097,
        SIZE as u64,
        1 << 40,
        1 << 63,
        u64::MAX - 4096,
        u64::MAX - 4095,
        u64::MAX,
    ] {
        list.push(m(
            format!("root size {value}"),
            move |i| sb_u64(i, offset_of!(Superblock, root_size), value),
            Expect::Refused(corrupt_or_root),
        ));
    }
    for value in [0, 3, 4, 16, 8192, 1 << 63, u64::MAX] {
        list.push(m(
            format!("root alignment {value}"),
            move |i| sb_u64(i, offset_of!(Superblock, root_align), value),
            Expect::Refused(corrupt_or_root),
        ));
    }
    for value in [0, 4096, CHUNK as u64 * 2, u64::MAX] {
        list.push(m(
            format!("chunk size {value}"),
            move |i| sb_u64(i, offset_of!(Superblock, chunk_size), value),
            Expect::Refused(corrupt),
        ));
    }
    for value in [0, 1, 32, 63, 65, 8192, 1 << 32, u64::MAX] {
        list.push(m(
            format!("{value} chunks per zone"),
            move |i| sb_u64(i, offset_of!(Superblock, zone_chunks), value),
            Expect::Refused(corrupt),
        ));
    }
    // A valid geometry, but not the pool's: the chunk table is read from
    // the wrong place. Whatever it makes of it, it must not panic.
    for value in [128, 256, 4096] {
        list.push(m(
            format!("{value} chunks per zone (valid, but not the pool's)"),
            move |i| sb_u64(i, offset_of!(Superblock, zone_chunks), value),
            Expect::Either,
        ));
    }
    for value in [0, 4096, 8192 + 64, 12288, SIZE as u64, u64::MAX] {
        list.push(m(
            format!("heap offset {value}"),
            move |i| sb_u64(i, offset_of!(Superblock, heap_offset), value),
            Expect::Refused(corrupt),
        ));
    }
    list.push(m(
        "reserved word",
        |i| {
            put_u32(i, offset_of!(Superblock, reserved), 7);
            reseal_superblock(i);
        },
        Expect::Consistent,
    ));
    run_cases(&cases(&base, list));
}

#[test]
fn damaged_dynamic_slots_are_survived_or_refused() {
    let base = Base::new();
    let size_at = |slot: usize| DYNAMIC_SLOTS_OFFSET + slot * LINE + 8;
    let seq_at = |slot: usize| DYNAMIC_SLOTS_OFFSET + slot * LINE;
    let mut list = vec![
        m(
            "slot A's crc",
            move |i| i[DYNAMIC_SLOTS_OFFSET + 56] ^= 1,
            Expect::Consistent,
        ),
        m(
            "slot B's size",
            move |i| i[size_at(1)] ^= 1,
            Expect::Consistent,
        ),
        m(
            "both slots' sizes",
            move |i| {
                i[size_at(0)] ^= 1;
                i[size_at(1)] ^= 1;
            },
            Expect::Refused(bad_checksum),
        ),
        m(
            "both slots' sequence numbers zero, resealed",
            move |i| {
                for s in 0..2 {
                    put_u64(i, seq_at(s), 0);
                    reseal_slot(i, s);
                }
            },
            Expect::Refused(bad_checksum),
        ),
        m(
            "both slots zeroed",
            move |i| i[DYNAMIC_SLOTS_OFFSET..DYNAMIC_SLOTS_OFFSET + 2 * LINE].fill(0),
            Expect::Refused(bad_checksum),
        ),
    ];
    for (value, expect) in [
        (0, Expect::Refused(corrupt)),
        (PAGE as u64, Expect::Refused(corrupt)),
        (3 * PAGE as u64 + CHUNK as u64 - 1, Expect::Refused(corrupt)),
        (SIZE as u64 + 1, Expect::Refused(truncated)),
        (u64::MAX, Expect::Refused(truncated)),
        // Smaller than the pool: fine while what is allocated still fits,
        // otherwise what lay beyond is out of bounds, which `check` reports.
        (SIZE as u64 / 2, Expect::Consistent),
        (3 * PAGE as u64 + 3 * CHUNK as u64, Expect::NotConsistent),
        (3 * PAGE as u64 + CHUNK as u64, Expect::Inconsistent),
    ] {
        list.push(m(
            format!("pool size {value} in the newer slot"),
            move |i| {
                put_u64(i, seq_at(1), 2);
                put_u64(i, size_at(1), value);
                reseal_slot(i, 1);
            },
            expect,
        ));
    }
    run_cases(&cases(&base, list));
}

/// A sealed record freeing the list's head (the first node) from the root:
/// a legitimate interrupted operation, to vary field by field.
fn free_head(base: &Base) -> RedoRecord {
    RedoRecord {
        kind: RedoKind::Free,
        dest_len: (8).into(),
        block: (base.nodes[0]).into(),
        block_size: (64).into(),
        dest: (PAGE as u64 + 8).into(),
        dest_value: [U64::new(base.nodes[1]), U64::ZERO],
        seq: (5).into(),
        ..RedoRecord::new_zeroed()
    }
}

/// A batch log: the head node freed and the list's head moved to the next.
fn free_head_batch(base: &Base, image: &mut [u8], extra: &[Entry<'_>]) {
    let next = base.nodes[1].to_ne_bytes();
    let mut entries = vec![
        Entry::Free {
            block: base.nodes[0],
            block_size: 64,
        },
        Entry::Store {
            dest: PAGE as u64 + 8,
            bytes: &next,
        },
    ];
    entries.extend_from_slice(extra);
    write_log(image, 9, &entries);
}

#[test]
fn batch_logs_with_valid_crcs_and_garbage_entries_are_refused_or_ignored() {
    let base = Base::new();
    let b = || Base::new();
    let table = base.heap_offset as u64;
    let node = base.nodes[3];
    let list = vec![
        m(
            "a legitimate pending batch: the head freed and unlinked",
            move |i| free_head_batch(&b(), i, &[]),
            Expect::Consistent,
        ),
        m(
            "the same batch torn (bad CRC)",
            move |i| {
                free_head_batch(&b(), i, &[]);
                i[BATCH_OFFSET + 20] ^= 1;
            },
            Expect::Consistent,
        ),
        m(
            "a store into the chunk table",
            move |i| {
                let bytes = [0xff; 8];
                free_head_batch(
                    &b(),
                    i,
                    &[Entry::Store {
                        dest: table,
                        bytes: &bytes,
                    }],
                );
            },
            Expect::Refused(corrupt),
        ),
        m(
            "a store into the header",
            move |i| {
                let bytes = [0xff; 8];
                free_head_batch(
                    &b(),
                    i,
                    &[Entry::Store {
                        dest: 64,
                        bytes: &bytes,
                    }],
                );
            },
            Expect::Refused(corrupt),
        ),
        m(
            "a store past the pool's end",
            move |i| {
                let bytes = [0xff; 16];
                let dest = SIZE as u64 - 8;
                free_head_batch(
                    &b(),
                    i,
                    &[Entry::Store {
                        dest,
                        bytes: &bytes,
                    }],
                );
            },
            Expect::Refused(corrupt),
        ),
        m(
            "an allocation of a block between blocks",
            move |i| {
                let alloc = Entry::Alloc {
                    block: node + 8,
                    block_size: 64,
                    value_len: 0,
                    value_crc: 0,
                };
                free_head_batch(&b(), i, &[alloc]);
            },
            Expect::Refused(corrupt),
        ),
        m(
            "an allocation whose value is longer than its block",
            move |i| {
                let alloc = Entry::Alloc {
                    block: node,
                    block_size: 64,
                    value_len: 65,
                    value_crc: 0,
                };
                free_head_batch(&b(), i, &[alloc]);
            },
            Expect::Refused(corrupt),
        ),
        m(
            "a store into the block the batch allocates",
            move |i| {
                let bytes = [1; 8];
                let alloc = Entry::Alloc {
                    block: node,
                    block_size: 64,
                    value_len: 0,
                    value_crc: 0,
                };
                let store = Entry::Store {
                    dest: node + 8,
                    bytes: &bytes,
                };
                free_head_batch(&b(), i, &[alloc, store]);
            },
            Expect::Refused(corrupt),
        ),
        m(
            "an overflow to beyond the pool (no log)",
            move |i| {
                free_head_batch(
                    &b(),
                    i,
                    &[Entry::Overflow {
                        extent: u64::MAX - 8,
                    }],
                )
            },
            Expect::Consistent,
        ),
        m(
            "an unknown entry kind (no log)",
            move |i| {
                free_head_batch(&b(), i, &[]);
                i[BATCH_OFFSET + 16] = 7;
                pmem_typed::format::batch::reseal(i);
            },
            Expect::Consistent,
        ),
        m(
            "a batch log next to a chunk of unknown kind",
            move |i| {
                let base = b();
                free_head_batch(&base, i, &[]);
                put_u64(i, base.heap_offset + 13 * LINE, 0x7f);
            },
            Expect::Refused(corrupt),
        ),
    ];
    run_cases(&cases(&base, list));
}

#[test]
fn redo_records_with_valid_crcs_and_garbage_fields_are_refused() {
    let base = Base::new();
    let head = free_head(&base);
    let table = base.heap_offset as u64;
    let node = base.nodes[3];
    let blob = base.blob.offset();
    let mut list = vec![
        m(
            "a legitimate pending free of the head",
            move |i| put_record(i, 0, head),
            Expect::Consistent,
        ),
        m(
            "the same record torn (bad CRC)",
            move |i| {
                put_record(i, 0, head);
                i[REDO_OFFSET + 20] ^= 1;
            },
            Expect::Consistent,
        ),
        m(
            "a pending free of the large slice",
            move |i| {
                put_record(
                    i,
                    1,
                    RedoRecord {
                        block: (blob).into(),
                        block_size: (3 * CHUNK as u64).into(),
                        dest: (PAGE as u64 + 16).into(),
                        dest_len: (16).into(),
                        dest_value: [U64::ZERO, U64::ZERO],
                        ..head
                    },
                )
            },
            Expect::Consistent,
        ),
    ];
    // Kinds no operation has cannot be a `RedoRecord`: their bytes.
    let mut variants: Vec<(String, [u8; LINE])> = vec![
        ("kind 3".into(), with_kind_word(head, 3)),
        ("kind u32::MAX".into(), with_kind_word(head, u32::MAX)),
    ];
    let records: Vec<(String, RedoRecord)> = vec![
        (
            "dest_len 0".into(),
            RedoRecord {
                dest_len: (0).into(),
                ..head
            },
        ),
        (
            "dest_len 4".into(),
            RedoRecord {
                dest_len: (4).into(),
                ..head
            },
        ),
        (
            "dest_len u32::MAX".into(),
            RedoRecord {
                dest_len: (u32::MAX).into(),
                ..head
            },
        ),
        (
            "block 0".into(),
            RedoRecord {
                block: (0).into(),
                ..head
            },
        ),
        (
            "block in the header".into(),
            RedoRecord {
                block: (64).into(),
                ..head
            },
        ),
        (
            "block in the root".into(),
            RedoRecord {
                block: (PAGE as u64).into(),
                ..head
            },
        ),
        (
            "block in the chunk table".into(),
            RedoRecord {
                block: (table).into(),
                ..head
            },
        ),
        (
            "block misaligned in its chunk".into(),
            RedoRecord {
                block: (node + 8).into(),
                ..head
            },
        ),
        (
            "block at the pool's end".into(),
            RedoRecord {
                block: (SIZE as u64 - 64).into(),
                ..head
            },
        ),
        (
            "block past the pool".into(),
            RedoRecord {
                block: (SIZE as u64).into(),
                ..head
            },
        ),
        (
            "block u64::MAX".into(),
            RedoRecord {
                block: (u64::MAX).into(),
                ..head
            },
        ),
        (
            "block size 0".into(),
            RedoRecord {
                block_size: (0).into(),
                ..head
            },
        ),
        (
            "block size 63".into(),
            RedoRecord {
                block_size: (63).into(),
                ..head
            },
        ),
        (
            "block size of another class".into(),
            RedoRecord {
                block_size: (128).into(),
                ..head
            },
        ),
        (
            "block size of a run, on a small chunk".into(),
            RedoRecord {
                block_size: (CHUNK as u64).into(),
                ..head
            },
        ),
        (
            "block size of a run of the whole zone".into(),
            RedoRecord {
                block_size: (64 * CHUNK as u64).into(),
                ..head
            },
        ),
        (
            "block size u64::MAX".into(),
            RedoRecord {
                block_size: (u64::MAX).into(),
                ..head
            },
        ),
        (
            "run of the large slice, one chunk short".into(),
            RedoRecord {
                block: (blob).into(),
                block_size: (2 * CHUNK as u64).into(),
                ..head
            },
        ),
        (
            "run of the large slice, one chunk long".into(),
            RedoRecord {
                block: (blob).into(),
                block_size: (4 * CHUNK as u64).into(),
                ..head
            },
        ),
        (
            "run of no chunks".into(),
            RedoRecord {
                block: (blob).into(),
                block_size: (0).into(),
                ..head
            },
        ),
        (
            "run past the zone".into(),
            RedoRecord {
                block: (blob).into(),
                block_size: (1 << 40).into(),
                ..head
            },
        ),
        (
            "alloc of a run over the small chunks".into(),
            RedoRecord {
                kind: RedoKind::Alloc,
                block: (base.chunk_start(base.descriptor_of(node))).into(),
                block_size: (2 * CHUNK as u64).into(),
                ..head
            },
        ),
        (
            "dest 0".into(),
            RedoRecord {
                dest: (0).into(),
                ..head
            },
        ),
        (
            "dest in the header".into(),
            RedoRecord {
                dest: (2048).into(),
                ..head
            },
        ),
        (
            "dest misaligned".into(),
            RedoRecord {
                dest: (PAGE as u64 + 4).into(),
                ..head
            },
        ),
        (
            "dest at the pool's end".into(),
            RedoRecord {
                dest: (SIZE as u64 - 4).into(),
                ..head
            },
        ),
        (
            "dest u64::MAX".into(),
            RedoRecord {
                dest: (u64::MAX - 7).into(),
                ..head
            },
        ),
        (
            "dest inside its block".into(),
            RedoRecord {
                dest: (node + 8).into(),
                block: (node).into(),
                ..head
            },
        ),
        (
            "dest in the chunk table".into(),
            RedoRecord {
                dest: (table).into(),
                ..head
            },
        ),
        (
            "dest in a chunk descriptor's bitmap".into(),
            RedoRecord {
                dest: (base.descriptor_of(node) as u64 + 8).into(),
                dest_value: [U64::new(u64::MAX), U64::ZERO],
                ..head
            },
        ),
        (
            "alloc with value_len past its block".into(),
            RedoRecord {
                kind: RedoKind::Alloc,
                value_len: (65).into(),
                ..head
            },
        ),
        (
            "alloc with value_len u32::MAX".into(),
            RedoRecord {
                kind: RedoKind::Alloc,
                value_len: (u32::MAX).into(),
                ..head
            },
        ),
        (
            "alloc of an allocated block (crc of zero bytes)".into(),
            RedoRecord {
                kind: RedoKind::Alloc,
                value_len: (0).into(),
                ..head
            },
        ),
        (
            "free of a block that is not allocated".into(),
            RedoRecord {
                block: (node + CHUNK as u64 / 2).into(),
                ..head
            },
        ),
        (
            "free into a 16-byte destination".into(),
            RedoRecord {
                dest_len: (16).into(),
                dest: (PAGE as u64 + 40).into(),
                ..head
            },
        ),
    ];
    variants.extend(records.into_iter().map(|(what, r)| (what, line_of(r))));
    for (what, record) in variants {
        for slot in 0..2 {
            list.push(m(
                format!("redo record {slot}: {what}"),
                move |i| put_line(i, slot, record),
                Expect::Either,
            ));
        }
        list.push(m(
            format!("redo record 1: {what}, after a valid record 0"),
            move |i| {
                put_record(
                    i,
                    0,
                    RedoRecord {
                        seq: (4).into(),
                        ..head
                    },
                );
                put_line(i, 1, record);
            },
            Expect::Either,
        ));
    }
    for (what, a, b) in [
        ("two records with the same seq", 7, 7),
        ("two records wrapping around", u32::MAX, 0),
        ("two records far apart", 3, 1000),
    ] {
        list.push(m(
            what,
            move |i| {
                put_record(
                    i,
                    0,
                    RedoRecord {
                        seq: (a).into(),
                        ..head
                    },
                );
                put_record(
                    i,
                    1,
                    RedoRecord {
                        seq: (b).into(),
                        kind: RedoKind::Alloc,
                        ..head
                    },
                );
            },
            Expect::Either,
        ));
    }
    run_cases(&cases(&base, list));
}

#[test]
fn damaged_chunk_descriptors_are_refused_or_found_by_check() {
    let base = Base::new();
    let small = base.descriptor_of(base.nodes[0]);
    let run = base.descriptor_of(base.blob.offset());
    let numbers = base.descriptor_of(base.numbers.offset());
    let free = base.heap_offset + 13 * LINE;
    let mut list = Vec::new();
    for kind in [4u64, 7, 0x7f, 0xff] {
        list.push(m(
            format!("unknown kind {kind} on a free chunk"),
            move |i| put_u64(i, free, kind),
            Expect::Refused(corrupt),
        ));
    }
    for (what, at, state) in [
        (
            "small chunk of class 8",
            small,
            ChunkDescriptor::small_state(8),
        ),
        (
            "small chunk of class 255",
            small,
            ChunkDescriptor::small_state(255),
        ),
        (
            "small state with stray high bits",
            small,
            ChunkDescriptor::small_state(0) | 1 << 40,
        ),
        ("run of 0 chunks", run, ChunkDescriptor::run_state(0)),
        ("run past the zone", run, ChunkDescriptor::run_state(100)),
        (
            "run of u32::MAX chunks",
            run,
            ChunkDescriptor::run_state(u32::MAX),
        ),
        (
            "run state with stray bits",
            run,
            ChunkDescriptor::run_state(3) | 1 << 12,
        ),
        (
            "run tail without a head",
            free,
            ChunkDescriptor::tail_state(),
        ),
        ("run head turned free", run, 0),
        (
            "run longer, over a free chunk's",
            run,
            ChunkDescriptor::run_state(4),
        ),
        (
            "free chunk with a class",
            free,
            ChunkDescriptor::small_state(2) & !0xff,
        ),
    ] {
        list.push(m(
            format!("{what} (descriptor at {at:#x})"),
            move |i| put_u64(i, at, state),
            Expect::Refused(corrupt),
        ));
    }
    list.push(m(
        "a free chunk with bitmap bits",
        move |i| put_u64(i, free + 8, 1),
        Expect::Refused(corrupt),
    ));
    list.push(m(
        "a free chunk with reserved bits",
        move |i| put_u64(i, free + 48, 1),
        Expect::Refused(corrupt),
    ));
    list.push(m(
        "a run tail with reserved bits",
        move |i| put_u64(i, run + LINE + 40, 1),
        Expect::Refused(corrupt),
    ));
    list.push(m(
        "a small chunk with reserved bits",
        move |i| put_u64(i, small + 56, 1 << 60),
        Expect::Refused(corrupt),
    ));
    list.push(m(
        "a run with bitmap bits",
        move |i| put_u64(i, run + 8, 1),
        Expect::Refused(corrupt),
    ));
    list.push(m(
        "a run tail with bitmap bits",
        move |i| put_u64(i, run + LINE + 8, 1),
        Expect::Refused(corrupt),
    ));
    list.push(m(
        "bits beyond the numbers chunk's 16 blocks",
        move |i| put_u64(i, numbers + 8, 1 << 16 | 1),
        Expect::Refused(corrupt),
    ));
    // Well-formed descriptors that disagree with what the root reaches.
    list.push(m(
        "an extra block allocated (a leak)",
        move |i| put_u64(i, small + 8 + 24, 1 << 63),
        Expect::Inconsistent,
    ));
    list.push(m(
        "a reachable block marked free",
        move |i| {
            let word = get_u64(i, small + 8);
            put_u64(i, small + 8, word & !1);
        },
        Expect::Inconsistent,
    ));
    list.push(m(
        "the small chunk's class changed",
        move |i| put_u64(i, small, ChunkDescriptor::small_state(1)),
        Expect::Inconsistent,
    ));
    list.push(m(
        "the large slice's run freed whole",
        move |i| {
            for c in 0..3 {
                put_u64(i, run + c * LINE, 0);
            }
        },
        Expect::Inconsistent,
    ));
    list.push(m(
        "the large slice's run shortened, its last tail freed",
        move |i| {
            put_u64(i, run, ChunkDescriptor::run_state(2));
            put_u64(i, run + 2 * LINE, 0);
        },
        Expect::Inconsistent,
    ));
    list.push(m(
        "the whole chunk table set",
        move |i| {
            let at = base_heap(i);
            i[at..at + 64 * LINE].fill(0xff);
        },
        Expect::Refused(corrupt),
    ));
    run_cases(&cases(&base, list));
}

/// The heap offset recorded in `image`.
fn base_heap(image: &[u8]) -> usize {
    get_u64(image, offset_of!(Superblock, heap_offset)) as usize
}

#[test]
fn damaged_pointers_open_and_check_reports_them() {
    let base = Base::new();
    let head_at = PAGE + 8;
    let blob_at = PAGE + 16;
    let numbers_at = PAGE + 32;
    let node = base.nodes[4];
    let next_at = node as usize + 8;
    let mut list = Vec::new();
    for (what, value) in [
        ("null", 0),
        ("1", 1),
        ("into the header", 2048),
        ("misaligned", node + 4),
        ("into the middle of a node", node + 8),
        ("to a free block", base.nodes[0] + 64 * 30),
        ("into the chunk table", base.heap_offset as u64),
        ("to the last byte", SIZE as u64 - 8),
        ("past the pool", SIZE as u64),
        ("u64::MAX", u64::MAX),
        ("to the root itself", PAGE as u64),
    ] {
        list.push(m(
            format!("root.head {what}"),
            move |i| put_u64(i, head_at, value),
            Expect::Inconsistent,
        ));
        if value != node {
            list.push(m(
                format!("node.next {what}"),
                move |i| put_u64(i, next_at, value),
                Expect::Inconsistent,
            ));
        }
    }
    list.push(m(
        "node.next pointing to itself",
        move |i| put_u64(i, next_at, node),
        Expect::Inconsistent,
    ));
    for (what, offset, len) in [
        (
            "longer than its block",
            base.blob.offset(),
            3 * CHUNK as u64 + 1,
        ),
        ("u64::MAX elements", base.blob.offset(), u64::MAX),
        ("offset past the pool", SIZE as u64, 1),
        ("offset u64::MAX", u64::MAX, 1),
        ("offset into the table", base.heap_offset as u64, 10),
        ("emptied (a leak)", 0, 0),
    ] {
        list.push(m(
            format!("root.blob {what}"),
            move |i| {
                put_u64(i, blob_at, offset);
                put_u64(i, blob_at + 8, len);
            },
            Expect::Inconsistent,
        ));
    }
    for (what, offset, len) in [
        (
            "u64 elements overflowing the byte length",
            base.numbers.offset(),
            u64::MAX / 4,
        ),
        ("misaligned", base.numbers.offset() + 4, 10),
        ("longer than its block", base.numbers.offset(), 129),
    ] {
        list.push(m(
            format!("root.numbers {what}"),
            move |i| {
                put_u64(i, numbers_at, offset);
                put_u64(i, numbers_at + 8, len);
            },
            Expect::Inconsistent,
        ));
    }
    run_cases(&cases(&base, list));
}

#[test]
fn a_failed_open_changes_nothing_even_with_records_pending() {
    // A pending operation whose replay would be fine, next to damage that
    // makes the pool unusable: the open must refuse before replaying.
    let base = Base::new();
    let head = free_head(&base);
    let free = base.heap_offset + 13 * LINE;
    let blob = base.chunk_start(base.descriptor_of(base.blob.offset()));
    assert_eq!(blob, base.blob.offset());
    run_cases(&cases(
        &base,
        vec![
            m(
                "a pending free, and a chunk of unknown kind",
                move |i| {
                    put_record(i, 0, head);
                    put_u64(i, free, 0x7f);
                },
                Expect::Refused(corrupt),
            ),
            m(
                "a pending free, a torn record, and a chunk of unknown kind",
                move |i| {
                    put_record(i, 0, head);
                    i[REDO_OFFSET + LINE + 3] = 9;
                    put_u64(i, free, 0x7f);
                },
                Expect::Refused(corrupt),
            ),
            m(
                "a torn record, and a run tail without its head",
                move |i| {
                    i[REDO_OFFSET + 3] = 9;
                    put_u64(i, free, ChunkDescriptor::tail_state());
                },
                Expect::Refused(corrupt),
            ),
            m(
                "a pending free of one chunk of the three-chunk run",
                move |i| {
                    put_record(
                        i,
                        0,
                        RedoRecord {
                            block: (blob).into(),
                            block_size: (CHUNK as u64).into(),
                            dest: (PAGE as u64 + 16).into(),
                            dest_len: (16).into(),
                            dest_value: [U64::ZERO, U64::ZERO],
                            ..head
                        },
                    )
                },
                Expect::Refused(corrupt),
            ),
            m(
                "a pending free of a block in a chunk that is not small",
                move |i| {
                    put_record(
                        i,
                        0,
                        RedoRecord {
                            block: (blob + 64).into(),
                            ..head
                        },
                    )
                },
                Expect::Refused(corrupt),
            ),
        ],
    ));
}

#[test]
fn truncated_images_are_refused() {
    let base = Base::new();
    let mut list = Vec::new();
    for len in [
        0,
        1,
        7,
        8,
        100,
        PAGE - 1,
        PAGE,
        PAGE + 1,
        3 * PAGE,
        SIZE / 2,
        SIZE - 1,
    ] {
        list.push(Case {
            what: format!("truncated to {len} bytes"),
            image: base.image[..len].to_vec(),
            expect: Expect::Refused(|e| truncated(e) || not_a_pool(e)),
        });
    }
    // Longer than the pool is allowed (a grow that did not finish).
    let mut longer = base.image.clone();
    longer.resize(SIZE + 3 * CHUNK, 0xaa);
    list.push(Case {
        what: "followed by garbage".into(),
        image: longer,
        expect: Expect::Consistent,
    });
    run_cases(&list);
}

/// The inputs on which the fuzz target `open_pool` panicked, as mutations
/// of the base pool (the artifacts were pools of the fuzz target's own root
/// type; what made them fail is reproduced here). Each is also fed to the
/// fuzz target itself, as an input that reseals nothing.
#[test]
fn fuzz_regressions() {
    let base = Base::new();
    let run = base.descriptor_of(base.blob.offset());
    let regressions = cases(
        &base,
        vec![
            // crash-b30d2118: `read_header` rounded the root size up to pages
            // before comparing the heap offset: "attempt to add with overflow".
            m(
                "root size 0xffff_ffff_ffff_fffe, superblock resealed",
                |i| sb_u64(i, offset_of!(Superblock, root_size), u64::MAX - 1),
                Expect::Refused(corrupt),
            ),
            // crash-5c3ce7b8: a run tail with a non-zero reserved word opened;
            // freeing the run zeroed its state word only, and the pool did not
            // reopen ("free, but state 0x0 or bitmap not zero").
            m(
                "reserved word 0x48_0000_0000_0000 in a run tail",
                move |i| put_u64(i, run + LINE + 56, 0x48 << 48),
                Expect::Refused(corrupt),
            ),
        ],
    );
    run_cases(&regressions);
    for image in std::iter::once(&base.image).chain(regressions.iter().map(|case| &case.image)) {
        let input = [&[0][..], image].concat();
        pmem_testkit::hostile::open_pool(&input);
    }
}

/// An empty pool of [`SIZE`] bytes.
fn empty_pool() -> Vec<u8> {
    let mut medium = SimMedium::new(SIZE, SIZE);
    medium.set_recording(false);
    drop(Pool::<Root, _>::create_on(&mut medium, LAYOUT, Root::zeroed()).expect("create"));
    medium.live()
}

/// The hostile files of the soundness issue that `open` accepted and the
/// library's own operations then broke, and their neighbours: each must be
/// refused, or open and stay openable and as consistent as it was through
/// the checked workload (which grows the pool).
#[test]
fn accepted_pools_stay_usable_through_growth() {
    let empty = Base {
        image: empty_pool(),
        ..Base::new()
    };
    let heap = empty.heap_offset;
    let zone_chunks_at = offset_of!(Superblock, zone_chunks);
    let mut list = Vec::new();
    for zone_chunks in [128u64, 256] {
        // A chunk table larger than the pool has chunks for: the descriptors
        // past the last chunk are never read, so they may hold anything,
        // until growth brings their chunks into the pool.
        list.push(m(
            format!("{zone_chunks} chunks per zone, a stray descriptor past the last chunk"),
            move |i| {
                sb_u64(i, zone_chunks_at, zone_chunks);
                let stray = heap + 70 * LINE;
                let small_with_blocks = ChunkDescriptor {
                    kind: ChunkKind::Small,
                    class: 0,
                    bitmap: [U64::new(0xff), U64::ZERO, U64::ZERO, U64::ZERO],
                    ..ChunkDescriptor::new_zeroed()
                };
                i[stray..stray + LINE].copy_from_slice(small_with_blocks.as_bytes());
            },
            Expect::Consistent,
        ));
        list.push(m(
            format!("{zone_chunks} chunks per zone, garbage past the last chunk's descriptor"),
            move |i| {
                sb_u64(i, zone_chunks_at, zone_chunks);
                let from = heap + 15 * LINE;
                i[from..heap + zone_chunks as usize * LINE].fill(0xa5);
            },
            Expect::Consistent,
        ));
    }
    let seq_at = |slot: usize| DYNAMIC_SLOTS_OFFSET + slot * LINE;
    for slot in 0..2 {
        // Growth writes the other slot with the next number. It once wrapped
        // u64::MAX to 0 (an invalid slot, so the growth was lost at the next
        // open); now a pool numbered u64::MAX opens but refuses to grow, and
        // one numbered u64::MAX - 1 grows once, to u64::MAX, and reopens.
        for seq in [u64::MAX, u64::MAX - 1] {
            list.push(m(
                format!("dynamic slot {slot}'s sequence number {seq:#x}, resealed"),
                move |i| {
                    put_u64(i, seq_at(slot), seq);
                    reseal_slot(i, slot);
                },
                Expect::Consistent,
            ));
        }
    }
    run_cases(&cases(&empty, list));
}

/// Where random damage goes: anywhere, or in the metadata (header, root,
/// chunk table, the first chunks).
fn offsets() -> impl Strategy<Value = usize> {
    prop_oneof![
        2 => 0..SIZE,
        3 => 0..PAGE,
        1 => PAGE..PAGE + 64,
        3 => 2 * PAGE..3 * PAGE,
        2 => 3 * PAGE..3 * PAGE + 4 * CHUNK,
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Random bytes changed, with the checksums fixed up or not: refused
    /// without change, or opens and stays usable.
    #[test]
    fn random_damage_is_refused_or_survived(
        flips in prop::collection::vec((offsets(), 1u8..), 1..12),
        reseal in 0u8..16,
        pending in any::<bool>(),
    ) {
        let base = base();
        let mut image = base.image.clone();
        if pending {
            put_record(&mut image, 1, free_head(base));
        }
        for &(at, xor) in &flips {
            image[at] ^= xor;
        }
        if reseal & 1 != 0 {
            reseal_superblock(&mut image);
        }
        if reseal & 2 != 0 {
            reseal_slot(&mut image, 0);
            reseal_slot(&mut image, 1);
        }
        if reseal & 4 != 0 {
            for slot in 0..2 {
                let at = REDO_OFFSET + slot * LINE;
                let line: [u8; LINE] = image[at..at + LINE].try_into().expect("a line");
                if line != [0; LINE] {
                    put_line(&mut image, slot, line);
                }
            }
        }
        if reseal & 8 != 0 {
            if pending {
                free_head_batch(base, &mut image, &[]);
                for &(at, xor) in &flips {
                    image[at] ^= xor;
                }
            }
            pmem_typed::format::batch::reseal(&mut image);
        }
        let what = format!("flips {flips:x?}, reseal {reseal}, pending {pending}");
        let case = Case { what, image, expect: Expect::Either };
        if let Some(failure) = judge(&case) {
            prop_assert!(false, "{}", failure);
        }
    }

    /// Truncation anywhere, with damage before it.
    #[test]
    fn truncation_anywhere_is_refused(len in 0..SIZE, at in 0..PAGE, xor in any::<u8>()) {
        let base = base();
        let mut image = base.image[..len].to_vec();
        if let Some(byte) = image.get_mut(at) {
            *byte ^= xor;
        }
        let case = Case {
            what: format!("truncated to {len}, byte {at} ^ {xor:#x}"),
            image,
            expect: Expect::Refused(|_| true),
        };
        if let Some(failure) = judge(&case) {
            prop_assert!(false, "{}", failure);
        }
    }
}

/// The base pool, built once for the property tests.
fn base() -> &'static Base {
    static BASE: std::sync::OnceLock<Base> = std::sync::OnceLock::new();
    BASE.get_or_init(Base::new)
}

#[test]
fn refused_pool_files_are_left_as_they_were() {
    let base = Base::new();
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("pool");
    let head = free_head(&base);
    let free = base.heap_offset + 13 * LINE;
    let mut damaged = Vec::new();
    let mut push = |what: &str, f: &dyn Fn(&mut Vec<u8>)| {
        let mut image = base.image.clone();
        f(&mut image);
        damaged.push((what.to_owned(), image));
    };
    push("magic", &|i| i[0] ^= 1);
    push("superblock crc", &|i| i[12] ^= 1);
    push("both slots", &|i| {
        i[DYNAMIC_SLOTS_OFFSET] ^= 1;
        i[DYNAMIC_SLOTS_OFFSET + LINE] ^= 1;
    });
    push("a pending free and a bad chunk", &|i| {
        put_record(i, 0, head);
        put_u64(i, free, 0x7f);
    });
    push("a torn record and a bad chunk", &|i| {
        i[REDO_OFFSET + 3] = 1;
        put_u64(i, free, 0x7f);
    });
    push("a record with a bad block", &|i| {
        put_record(
            i,
            1,
            RedoRecord {
                block: (12345).into(),
                ..head
            },
        );
    });
    push("truncated", &|i| i.truncate(SIZE / 2));
    push("truncated header", &|i| i.truncate(PAGE - 8));
    for (what, image) in damaged {
        std::fs::write(&path, &image).expect("write pool");
        let result = Pool::<Root>::open(&path, LAYOUT);
        assert!(result.is_err(), "{what}: opened");
        drop(result);
        let after = std::fs::read(&path).expect("read pool");
        assert!(after == image, "{what}: the refused open changed the file");
        std::fs::remove_file(&path).expect("remove pool");
    }
    // And the undamaged image opens from a file too.
    assert_eq!(&base.image[..8], &MAGIC);
    std::fs::write(&path, &base.image).expect("write pool");
    let pool = Pool::<Root>::open(&path, LAYOUT).expect("open");
    assert!(pool.check().is_consistent());
}
