//! Applying a redo record: checking that it names a possible operation
//! ([`validate`]), carrying it out ([`apply`]), and what it leaves in a
//! chunk descriptor ([`replayed`]).

use zerocopy::little_endian::U64;

use crate::error::{Error, Expected, Result, Structure};
use crate::format::heap::{ChunkDescriptor, ChunkKind, Geometry};
use crate::format::redo::RedoRecord;
use crate::format::{CHUNK, LINE, PAGE, REDO_OFFSET};
use crate::heap::classes::class_of_block;
use crate::heap::{BITMAP_WORD, DescriptorWords, decode};
use crate::medium::Medium;
use crate::medium::read;

/// A change to the chunk tables: a block becomes allocated or free.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct BlockChange {
    /// Offset of the block.
    pub(crate) block: u64,
    /// Its size: a class size, or whole chunks.
    pub(crate) size: u64,
    /// Allocated (else freed).
    pub(crate) alloc: bool,
}

impl BlockChange {
    /// The change a single-operation record makes.
    pub(crate) fn of(record: &RedoRecord) -> Self {
        Self {
            block: record.block.get(),
            size: record.block_size.get(),
            alloc: record.is_alloc(),
        }
    }

    /// Whether the block overlaps `len` bytes at `at`.
    pub(crate) fn overlaps(&self, at: u64, len: u64) -> bool {
        at < self.block + self.size && self.block < at + len
    }
}

/// Checks that `record` describes an operation [`apply`] can carry out
/// on this pool; used on records found at open.
///
/// # Errors
/// [`Error::Corrupt`] describing the first problem.
pub(crate) fn validate<M: Medium>(
    medium: &M,
    geometry: &Geometry,
    slot: usize,
    record: &RedoRecord,
) -> Result<()> {
    let at = (REDO_OFFSET + slot * LINE) as u64;
    let bad = |field, found, expected| {
        Error::corrupt(Structure::RedoRecord { slot }, at, field, found, expected)
    };
    let dest = record.dest.get();
    let dest_len = u64::from(record.dest_len.get());
    if !(dest_len == 8 || dest_len == 16) || !dest.is_multiple_of(8) {
        return Err(bad("dest", dest, Expected::PointerInPool));
    }
    validate_dest(geometry, dest, dest_len, &bad)?;
    let change = BlockChange::of(record);
    validate_block(medium, geometry, &change, &bad)?;
    if change.overlaps(dest, dest_len) {
        return Err(bad("dest", dest, Expected::OutsideItsBlock));
    }
    Ok(())
}

/// Checks that `len` bytes at `dest` are user data a replay may write: past
/// the header, in the pool, clear of the chunk tables.
///
/// # Errors
/// What `bad` makes of the problem, for the field "dest".
pub(crate) fn validate_dest(
    geometry: &Geometry,
    dest: u64,
    len: u64,
    bad: &impl Fn(&'static str, u64, Expected) -> Error,
) -> Result<()> {
    if dest < PAGE as u64
        || len == 0
        || dest
            .checked_add(len)
            .is_none_or(|end| end > geometry.pool_size as u64)
    {
        return Err(bad("dest", dest, Expected::PointerInPool));
    }
    // Recovery checks the chunk tables a replay leaves before it writes
    // anything (`Heap::load_from`, in `recover`), which covers the record's own stores
    // to the table but not one through its destination.
    let zone_bytes = geometry.zone_bytes() as u64;
    let table_bytes = geometry.table_bytes() as u64;
    let heap = geometry.heap_offset as u64;
    let end = dest + len;
    let clear_of_tables = if end <= heap {
        true
    } else if dest < heap {
        false
    } else {
        let (first, last) = (dest - heap, end - 1 - heap);
        first / zone_bytes == last / zone_bytes && first % zone_bytes >= table_bytes
    };
    if !clear_of_tables {
        return Err(bad("dest", dest, Expected::OutsideChunkTables));
    }
    Ok(())
}

/// Checks that `change` names a block of the chunk tables as they are: a
/// block of its small chunk's class, or a run of whole chunks in one zone.
///
/// # Errors
/// What `bad` makes of the problem, for the field "block" or "block_size".
pub(crate) fn validate_block<M: Medium>(
    medium: &M,
    geometry: &Geometry,
    change: &BlockChange,
    bad: &impl Fn(&'static str, u64, Expected) -> Error,
) -> Result<()> {
    let (block, block_size) = (change.block, change.size);
    let (zone, index) = geometry
        .locate(block as usize)
        .ok_or_else(|| bad("block", block, Expected::InHeap))?;
    // SAFETY: the descriptor of an existing chunk is inside the pool.
    let words: DescriptorWords = unsafe { read(medium, geometry.descriptor_offset(zone, index)) };
    let chunk_start = geometry.chunk_offset(zone, index) as u64;
    if let Some(class) = class_of_block(block_size) {
        let holds_class = decode(&words)
            .is_some_and(|d| d.kind == ChunkKind::Small && usize::from(d.class) == class);
        if !holds_class || !(block - chunk_start).is_multiple_of(block_size) {
            return Err(bad("block", block, Expected::BlockOfItsChunk));
        }
    } else {
        let run = block_size / CHUNK as u64;
        if !block_size.is_multiple_of(CHUNK as u64)
            || run == 0
            || block != chunk_start
            || index as u64 + run > geometry.chunks_in_zone(zone) as u64
        {
            return Err(bad("block_size", block_size, Expected::WholeChunks));
        }
    }
    Ok(())
}

/// The bit of a small block in its chunk's bitmap.
fn block_bit(geometry: &Geometry, change: &BlockChange, zone: usize, index: usize) -> usize {
    ((change.block - geometry.chunk_offset(zone, index) as u64) / change.size) as usize
}

/// Makes the chunk table and the destination pointer say what `record` says.
/// Idempotent; flushes what it writes but does not fence.
///
/// # Safety
/// `record` passed [`validate`] (or was built by the allocator), and
/// no reference into the chunk table or the destination is alive.
pub(crate) unsafe fn apply<M: Medium>(medium: &M, geometry: &Geometry, record: &RedoRecord) {
    // SAFETY: forwarded from the caller: the block was validated or reserved.
    unsafe { apply_block(medium, geometry, &BlockChange::of(record)) };
    // The destination holds a `PPtr` or `PSlice`: native words, as the
    // program's own types store them.
    let dest = record.dest.get() as usize;
    // SAFETY: the validated destination is inside the pool and unaliased
    // (the caller's precondition).
    unsafe {
        medium.store_u64(dest, record.dest_value[0].get());
        if record.dest_len.get() == 16 {
            medium.store_u64(dest + 8, record.dest_value[1].get());
        }
    }
    medium.flush(dest, record.dest_len.get() as usize);
}

/// Makes the chunk table say what `change` says. Idempotent; flushes what
/// it writes but does not fence.
///
/// # Safety
/// `change` passed [`validate_block`] (or names a block the allocator
/// reserved or found allocated), and no reference into the chunk table is
/// alive.
pub(crate) unsafe fn apply_block<M: Medium>(medium: &M, geometry: &Geometry, change: &BlockChange) {
    let Some((zone, index)) = geometry.locate(change.block as usize) else {
        return;
    };
    let at = geometry.descriptor_offset(zone, index);
    // SAFETY: every offset written is a descriptor of an existing chunk,
    // inside the pool and unaliased (the caller's precondition).
    unsafe {
        if class_of_block(change.size).is_some() {
            let bit = block_bit(geometry, change, zone, index);
            // One 8-byte store: the bit's word. (An emptied chunk keeps its
            // class; `find_free_chunks` hands it back later with a store of
            // its own, so nothing here relies on the order of two stores to
            // one line.)
            let word_at = at + (BITMAP_WORD + bit / 64) * 8;
            let word: U64 = read(medium, word_at);
            let mask = 1u64 << (bit % 64);
            let word = if change.alloc {
                word.get() | mask
            } else {
                word.get() & !mask
            };
            medium.store_u64(word_at, word.to_le());
            medium.flush(at, LINE);
        } else {
            let run = (change.size / CHUNK as u64) as usize;
            // The tails' state words, then the head's.
            for chunk in (1..run).chain([0]) {
                let chunk_at = geometry.descriptor_offset(zone, index + chunk);
                medium.store_u64(chunk_at, run_state_word(change, chunk, run).to_le());
            }
            medium.flush(at, run * LINE);
        }
    }
}

/// The state word that applying the run change `change` leaves in chunk
/// `chunk` of its run of `run` chunks.
fn run_state_word(change: &BlockChange, chunk: usize, run: usize) -> u64 {
    match (change.alloc, chunk == 0) {
        (true, true) => ChunkDescriptor::run_state(run as u32),
        (true, false) => ChunkDescriptor::tail_state(),
        (false, _) => 0,
    }
}

/// The descriptor at `at`, which was `words`, as applying `change` leaves
/// it: what [`apply`] stores there, without storing it.
pub(crate) fn replayed(
    geometry: &Geometry,
    change: &BlockChange,
    at: usize,
    mut words: DescriptorWords,
) -> DescriptorWords {
    let Some((zone, index)) = geometry.locate(change.block as usize) else {
        return words;
    };
    let head = geometry.descriptor_offset(zone, index);
    if class_of_block(change.size).is_some() {
        if at == head {
            let bit = block_bit(geometry, change, zone, index);
            let mask = 1u64 << (bit % 64);
            let word = &mut words[BITMAP_WORD + bit / 64];
            *word = if change.alloc {
                word.get() | mask
            } else {
                word.get() & !mask
            }
            .into();
        }
    } else {
        let run = (change.size / CHUNK as u64) as usize;
        if (head..head + run * LINE).contains(&at) {
            words[0] = run_state_word(change, (at - head) / LINE, run).into();
        }
    }
    words
}
