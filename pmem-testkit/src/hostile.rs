//! The hostile-file property, shared by the fuzz target `open_pool` and
//! pmem-typed's corruption tests: the pool types the seeds are made with,
//! the way an input becomes a pool image, and the workload run on a pool
//! that opens. Both use this module, so the tests and the fuzzer damage and
//! use the same pools in the same way (and CI builds this code).
//!
//! # Input format
//!
//! The first byte holds flags, the rest is the start of a pool image:
//!
//! - bit 0: recompute the superblock's CRC, bit 1: the dynamic slots' CRCs,
//!   bit 2: the redo records' CRCs, bit 3: the batch log's. Checksums stop almost every mutation at the
//!   first check; resealing lets the fuzzer reach the code behind them;
//! - the image is padded with zeros to the size a dynamic slot claims (kept
//!   between [`MIN_IMAGE`] and [`MAX_IMAGE`]), so inputs need not carry a
//!   pool's all-zero tail.

use pmem_typed::format::dynamic::DynamicSlot;
use pmem_typed::format::redo::seal_line;
use pmem_typed::format::superblock::Superblock;
use pmem_typed::format::{DYNAMIC_SLOTS_OFFSET, LINE, REDO_OFFSET};
use pmem_typed::sim::SimMedium;
use pmem_typed::{Medium, PPtr, PSlice, Persist, Pool};
use zerocopy::{FromBytes, IntoBytes};

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
/// Flag: recompute the batch log's CRC.
pub const RESEAL_BATCH: u8 = 8;

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
#[derive(Clone, Copy, Debug, PartialEq, Eq, Persist)]
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
    if flags & RESEAL_BATCH != 0 {
        pmem_typed::format::batch::reseal(&mut image);
    }
    image
}

/// Recomputes the superblock's CRC, so that damage behind it is what is found.
pub fn reseal_superblock(image: &mut [u8]) {
    let Ok((mut sb, _)) = Superblock::read_from_prefix(image) else {
        return;
    };
    sb.crc = sb.computed_crc().into();
    image[..size_of::<Superblock>()].copy_from_slice(sb.as_bytes());
}

/// Recomputes dynamic slot `i`'s CRC.
pub fn reseal_slot(image: &mut [u8], i: usize) {
    let at = DYNAMIC_SLOTS_OFFSET + i * LINE;
    let Ok(mut slot) = DynamicSlot::read_from_bytes(&image[at..at + LINE]) else {
        return;
    };
    slot.crc = slot.computed_crc().into();
    image[at..at + LINE].copy_from_slice(slot.as_bytes());
}

/// Recomputes redo record `i`'s CRC.
pub fn reseal_record(image: &mut [u8], i: usize) {
    let at = REDO_OFFSET + i * LINE;
    // Whatever the line holds: the kind is decoded after the CRC is checked.
    if let Some(line) = image
        .get_mut(at..at + LINE)
        .and_then(|l| <&mut [u8; LINE]>::try_from(l).ok())
    {
        seal_line(line);
    }
}

/// Inspects and opens the pool `data` describes and, if it opens, walks it,
/// uses it through its root with [`exercise_and_restore`], and reopens it.
/// Panics only on a bug: a panic inside pmem-typed, a broken promise of the
/// library during the workload, or a pool that opened and then does not
/// reopen with the same blocks and the same `check` findings.
pub fn open_pool(data: &[u8]) {
    let image = image(data);
    if image.is_empty() {
        return;
    }
    let mut medium = SimMedium::from_image(&image, image.len() + GROWTH);
    // Only the final memory matters here, not the order of stores.
    medium.set_recording(false);
    let _ = pmem_typed::inspect::inspect_medium(&medium, image.len() as u64);
    let Ok(pool) = Pool::<Root, _>::open_on(&mut medium, LAYOUT) else {
        return;
    };
    if let Err(broken) = use_and_reopen(pool) {
        panic!("{broken}");
    }
}

/// What [`exercise_and_restore`] grows a pool by: a zone of 64 chunks, more
/// or less, so that growth adds a zone or fills a partial one.
pub const GROWTH: usize = 1 << 20;

/// The promise kept for every pool that opens: it can be used, and stays
/// openable and as consistent as it was. Walks `pool`, records what `check`
/// finds, runs [`exercise_and_restore`], and reopens the medium: it must
/// open, with the blocks the workload left, and `check` must find what it
/// found before: the same leaked blocks and as many bad pointers (the
/// workload puts the root back as it was, so whatever was consistent stays
/// so, and nothing new leaks or dangles).
///
/// # Errors
/// A description of the first promise broken.
pub fn use_and_reopen(mut pool: Pool<Root, &mut SimMedium>) -> Result<(), String> {
    walk(&pool);
    let _ = pool.stats();
    let before = pool.check();
    exercise_and_restore(&mut pool)?;
    let blocks = pool.allocated_blocks();
    let medium = pool.into_medium();
    let pool = Pool::<Root, _>::open_on(medium, LAYOUT)
        .map_err(|e| format!("a pool that opened and was used does not reopen: {e}"))?;
    if pool.allocated_blocks() != blocks {
        return Err("the reopened pool holds other blocks than the workload left".into());
    }
    let after = pool.check();
    // The same blocks leak, and as many pointers are bad (their messages may
    // differ: one past the end of the pool before growth points into free
    // space after it).
    if after.leaked != before.leaked || after.problems.len() != before.problems.len() {
        return Err(format!(
            "the workload changed what check finds:\nbefore: {before}after: {after}"
        ));
    }
    Ok(())
}

/// Uses `pool` as a program would, through its root, and puts the root back
/// as it found it (but for `counter`), checking on the way what the library
/// promises whatever the pool held:
///
/// - an allocation is a block that was free, allocated afterwards, holding
///   the value, and published where asked;
/// - a free of a block the workload allocated succeeds and frees just it;
/// - growth keeps every block, and allocation goes on in the new space.
///
/// Nodes are pushed onto `head` and popped again; `blob` and `numbers` are
/// set aside, allocated into, freed, and restored; so what the pool held
/// before is untouched, however it is linked.
///
/// # Errors
/// A description of the first promise broken.
pub fn exercise_and_restore<M: Medium>(pool: &mut Pool<Root, M>) -> Result<(), String> {
    let root = pool.root();
    let fields = root.fields();
    let original = *pool.get(root).map_err(|e| format!("the root: {e}"))?;
    let mut pushed = 0;
    let mut push = |pool: &mut Pool<Root, M>, value: u64| -> Result<(), String> {
        let head = read_root(pool)?.head;
        let node = Node { value, next: head };
        if let Some(new) = checked_alloc(pool, 16, |p| p.alloc(fields.head, node))? {
            if read_root(pool)?.head != new || *pool.get(new).map_err(str)? != node {
                return Err(format!("node {new:?} not published with its value"));
            }
            pushed += 1;
        }
        Ok(())
    };
    for value in 0..3 {
        push(pool, value)?;
    }
    for (slice, len) in [(fields.numbers, 3u64), (fields.blob.cast(), 40_000 / 8)] {
        let saved = *pool.get(slice).map_err(str)?;
        let values: Vec<u64> = (0..len).collect();
        let new = checked_alloc(pool, len * 8, |p| p.alloc_slice(slice, &values))?;
        if let Some(new) = new {
            if pool.get_slice(new).map_err(str)? != values {
                return Err(format!("slice {new:?} does not hold its values"));
            }
            checked_free(pool, new.offset(), |p| p.free_slice(slice))?;
        }
        pool.set(slice, saved).map_err(str)?;
    }
    let blocks = pool.allocated_blocks();
    let size = pool.size() as usize;
    if pool.grow(size + GROWTH).is_ok() && pool.allocated_blocks() != blocks {
        return Err(format!(
            "growing to {} bytes changed the blocks",
            size + GROWTH
        ));
    }
    for value in 3..6 {
        push(pool, value)?;
    }
    for _ in 0..pushed {
        let top = read_root(pool)?.head;
        let next = pool.get(top).map_err(str)?.next;
        checked_free(pool, top.offset(), |p| {
            p.free_and_publish(fields.head, next)
        })?;
    }
    pool.set(fields.counter, original.counter.wrapping_add(1))
        .map_err(str)?;
    pool.get_mut(root).map_err(str)?.counter = original.counter;
    let now = read_root(pool)?;
    if bytemuck::bytes_of(&now) != bytemuck::bytes_of(&original) {
        return Err(format!("the root is {now:?}, not {original:?} again"));
    }
    Ok(())
}

fn read_root<M: Medium>(pool: &Pool<Root, M>) -> Result<Root, String> {
    pool.get(pool.root()).copied().map_err(str)
}

fn str(e: pmem_typed::Error) -> String {
    e.to_string()
}

/// Runs `alloc` (of an object of `len` bytes), which may run out of space,
/// and checks that what it returns was free and is allocated now.
fn checked_alloc<M: Medium, P: Copy + std::fmt::Debug + Offset>(
    pool: &mut Pool<Root, M>,
    len: u64,
    alloc: impl FnOnce(&mut Pool<Root, M>) -> pmem_typed::Result<P>,
) -> Result<Option<P>, String> {
    let before = pool.allocated_blocks();
    let new = match alloc(pool) {
        Ok(new) => new,
        Err(pmem_typed::Error::OutOfSpace { .. }) => return Ok(None),
        Err(e) => return Err(format!("an allocation of {len} bytes failed: {e}")),
    };
    let (start, end) = (new.offset(), new.offset() + len);
    if let Some(&(block, size)) = before
        .iter()
        .find(|&&(block, size)| start < block + size && block < end)
    {
        return Err(format!(
            "{new:?} was handed out, but {size} bytes at {block:#x} were allocated"
        ));
    }
    let after = pool.allocated_blocks();
    if after.len() != before.len() + 1 || !after.iter().any(|&(block, _)| block == start) {
        return Err(format!(
            "{new:?} was handed out, but it is not the one new block"
        ));
    }
    Ok(Some(new))
}

/// Runs `free` of the block at `offset`, which the workload allocated, and
/// checks that it succeeds and frees just that block.
fn checked_free<M: Medium>(
    pool: &mut Pool<Root, M>,
    offset: u64,
    free: impl FnOnce(&mut Pool<Root, M>) -> pmem_typed::Result<()>,
) -> Result<(), String> {
    let before = pool.allocated_blocks();
    free(pool).map_err(|e| format!("freeing {offset:#x}: {e}"))?;
    let after = pool.allocated_blocks();
    let expected: Vec<(u64, u64)> = before.into_iter().filter(|&(b, _)| b != offset).collect();
    if after != expected {
        return Err(format!("freeing {offset:#x} did not free just that block"));
    }
    Ok(())
}

/// Persistent pointers and slices, by their offset.
trait Offset {
    fn offset(&self) -> u64;
}
impl<T> Offset for PPtr<T> {
    fn offset(&self) -> u64 {
        PPtr::offset(*self)
    }
}
impl<T> Offset for PSlice<T> {
    fn offset(&self) -> u64 {
        PSlice::offset(*self)
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
