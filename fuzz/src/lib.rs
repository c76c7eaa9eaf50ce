//! What the fuzz targets share: the pool types the seeds are made with, the
//! way an input becomes a pool image, and the workload run on a pool that
//! opens. pmem-typed's corruption tests include this file as a module, so
//! the tests and the fuzzer damage and use the same pools in the same way
//! (and CI builds this code).
//!
//! # Input format
//!
//! The first byte holds flags, the rest is the start of a pool image:
//!
//! - bit 0: recompute the superblock's CRC, bit 1: the dynamic slots' CRCs,
//!   bit 2: the redo records' CRCs. Checksums stop almost every mutation at the
//!   first check; resealing lets the fuzzer reach the code behind them;
//! - the image is padded with zeros to the size a dynamic slot claims (kept
//!   between [`MIN_IMAGE`] and [`MAX_IMAGE`]), so inputs need not carry a
//!   pool's all-zero tail.

use pmem_typed::layout::{
    DYNAMIC_SLOTS_OFFSET, DynamicSlot, LINE, REDO_OFFSET, RedoRecord, Superblock,
};
use pmem_typed::sim::SimMedium;
use pmem_typed::{PPtr, PSlice, Persist, Pool};

/// The layout name of the pools the seeds hold.
pub const LAYOUT: &str = "fuzz";
/// Images shorter than this are padded: the size of the seed pools.
pub const MIN_IMAGE: usize = 64 * 1024;
/// No image is padded beyond this (a second zone of 64 chunks begins).
pub const MAX_IMAGE: usize = 2 << 20;

/// Flag: recompute the superblock's CRC.
pub const RESEAL_SUPERBLOCK: u8 = 1;
/// Flag: recompute both dynamic slots' CRCs.
pub const RESEAL_SLOTS: u8 = 2;
/// Flag: recompute both redo records' CRCs.
pub const RESEAL_RECORDS: u8 = 4;

/// The root of the fuzzed pools: a list, a byte blob and a slice of numbers.
#[derive(Clone, Copy, Debug, Persist)]
#[repr(C)]
pub struct Root {
    /// A counter.
    pub counter: u64,
    /// A list of nodes.
    pub head: PPtr<Node>,
    /// Bytes.
    pub blob: PSlice<u8>,
    /// Numbers.
    pub numbers: PSlice<u64>,
}

/// A list node.
#[derive(Clone, Copy, Debug, Persist)]
#[repr(C)]
pub struct Node {
    /// Its value.
    pub value: u64,
    /// The next node.
    pub next: PPtr<Node>,
}

/// The pool image an input describes (see the module docs).
#[must_use]
pub fn image(data: &[u8]) -> Vec<u8> {
    let Some((&flags, bytes)) = data.split_first() else {
        return Vec::new();
    };
    let mut image = bytes.to_vec();
    let claimed = [0, 1]
        .iter()
        .filter_map(|i| {
            let at = DYNAMIC_SLOTS_OFFSET + i * LINE + 8;
            Some(u64::from_le_bytes(image.get(at..at + 8)?.try_into().ok()?))
        })
        .max()
        .unwrap_or(0);
    let len = usize::try_from(claimed)
        .unwrap_or(MAX_IMAGE)
        .clamp(MIN_IMAGE, MAX_IMAGE)
        .max(image.len());
    image.resize(len, 0);
    if flags & RESEAL_SUPERBLOCK != 0 {
        reseal_superblock(&mut image);
    }
    for i in 0..2 {
        if flags & RESEAL_SLOTS != 0 {
            reseal_slot(&mut image, i);
        }
        if flags & RESEAL_RECORDS != 0 {
            reseal_record(&mut image, i);
        }
    }
    image
}

/// Recomputes the superblock's CRC, so that damage behind it is what is found.
pub fn reseal_superblock(image: &mut [u8]) {
    let mut sb: Superblock = bytemuck::pod_read_unaligned(&image[..size_of::<Superblock>()]);
    sb.crc = sb.computed_crc();
    image[..size_of::<Superblock>()].copy_from_slice(bytemuck::bytes_of(&sb));
}

/// Recomputes dynamic slot `i`'s CRC.
pub fn reseal_slot(image: &mut [u8], i: usize) {
    let at = DYNAMIC_SLOTS_OFFSET + i * LINE;
    let mut slot: DynamicSlot = bytemuck::pod_read_unaligned(&image[at..at + LINE]);
    slot.crc = slot.computed_crc();
    image[at..at + LINE].copy_from_slice(bytemuck::bytes_of(&slot));
}

/// Recomputes redo record `i`'s CRC.
pub fn reseal_record(image: &mut [u8], i: usize) {
    let at = REDO_OFFSET + i * LINE;
    let record: RedoRecord = bytemuck::pod_read_unaligned(&image[at..at + LINE]);
    image[at..at + LINE].copy_from_slice(bytemuck::bytes_of(&record.sealed()));
}

/// Inspects and opens the pool `data` describes and, if it opens, walks it,
/// allocates and frees in it, and reopens it. Panics only on a bug: a panic
/// inside pmem-typed, or a pool that opened, was changed only through its
/// root, and then does not reopen.
pub fn open_pool(data: &[u8]) {
    let image = image(data);
    if image.is_empty() {
        return;
    }
    let mut medium = SimMedium::from_image(&image, image.len());
    // Only the final memory matters here, not the order of stores.
    medium.set_recording(false);
    let _ = pmem_typed::inspect::inspect_medium(&medium, image.len() as u64);
    let Ok(mut pool) = Pool::<Root, _>::open_on(&mut medium, LAYOUT) else {
        return;
    };
    let _ = pool.check();
    walk(&pool);
    let _ = pool.stats();
    let _ = pool.allocated_blocks();
    exercise(&mut pool);
    let _ = pool.check();
    drop(pool);
    if let Err(e) = Pool::<Root, _>::open_on(medium, LAYOUT) {
        panic!("a pool that opened and was changed through its root does not reopen: {e}");
    }
}

/// Reads everything reachable from the root, a bounded number of steps.
pub fn walk<M: pmem_typed::Medium>(pool: &Pool<Root, M>) {
    let Ok(root) = pool.get(pool.root()) else {
        return;
    };
    let mut at = root.head;
    for _ in 0..100 {
        let Ok(node) = pool.get(at) else { break };
        at = node.next;
    }
    let _ = pool.get_slice(root.blob);
    let _ = pool.get_slice(root.numbers);
}

/// Allocations and frees whose destinations are in the root.
pub fn exercise<M: pmem_typed::Medium>(pool: &mut Pool<Root, M>) {
    let root = pool.root();
    for value in 0..3 {
        let Ok(head) = pool.get(root).map(|r| r.head) else {
            return;
        };
        let _ = pool.alloc(root.fields().head, Node { value, next: head });
    }
    let _ = pool.free_slice(root.fields().numbers);
    let _ = pool.alloc_slice(root.fields().numbers, &[1u64, 2, 3]);
    let _ = pool.free_slice(root.fields().blob);
    let _ = pool.alloc_slice_zeroed::<u8>(root.fields().blob, 20_000);
    for _ in 0..5 {
        let Ok(head) = pool.get(root).map(|r| r.head) else {
            return;
        };
        let next = pool.get(head).map_or(PPtr::null(), |n| n.next);
        let _ = pool.free_and_publish(root.fields().head, next);
    }
    let _ = pool.set(root.fields().counter, 1);
    if let Ok(mut guard) = pool.get_mut(root) {
        guard.counter += 1;
    }
}
