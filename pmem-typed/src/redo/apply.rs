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
    let block = record.block.get();
    let block_size = record.block_size.get();
    let dest_len = u64::from(record.dest_len.get());
    if !(dest_len == 8 || dest_len == 16)
        || !dest.is_multiple_of(8)
        || dest < PAGE as u64
        || dest
            .checked_add(dest_len)
            .is_none_or(|end| end > geometry.pool_size as u64)
    {
        return Err(bad("dest", dest, Expected::PointerInPool));
    }
    // Recovery checks the chunk tables a replay leaves before it writes
    // anything (`Heap::load_from`, in `recover`), which covers the record's own stores
    // to the table but not one through its destination.
    let in_table = |offset: u64| {
        (offset as usize)
            .checked_sub(geometry.heap_offset)
            .is_some_and(|rel| rel % geometry.zone_bytes() < geometry.table_bytes())
    };
    if in_table(dest) || in_table(dest + dest_len - 1) {
        return Err(bad("dest", dest, Expected::OutsideChunkTables));
    }
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
    let block_end = block + block_size;
    if dest < block_end && block < dest + dest_len {
        return Err(bad("dest", dest, Expected::OutsideItsBlock));
    }
    Ok(())
}

/// The bit of a small block's record in its chunk's bitmap.
fn block_bit(geometry: &Geometry, record: &RedoRecord, zone: usize, index: usize) -> usize {
    ((record.block.get() - geometry.chunk_offset(zone, index) as u64) / record.block_size.get())
        as usize
}

/// Makes the chunk table and the destination pointer say what `record` says.
/// Idempotent; flushes what it writes but does not fence.
///
/// # Safety
/// `record` passed [`validate`] (or was built by the allocator), and
/// no reference into the chunk table or the destination is alive.
pub(crate) unsafe fn apply<M: Medium>(medium: &M, geometry: &Geometry, record: &RedoRecord) {
    let Some((zone, index)) = geometry.locate(record.block.get() as usize) else {
        return;
    };
    let at = geometry.descriptor_offset(zone, index);
    // SAFETY: every offset written is a descriptor of an existing
    // chunk or the validated destination, all inside the pool and unaliased.
    unsafe {
        if class_of_block(record.block_size.get()).is_some() {
            let bit = block_bit(geometry, record, zone, index);
            // One 8-byte store: the bit's word. (An emptied chunk keeps its
            // class; `find_free_chunks` hands it back later with a store of
            // its own, so nothing here relies on the order of two stores to
            // one line.)
            let word_at = at + (BITMAP_WORD + bit / 64) * 8;
            let word: U64 = read(medium, word_at);
            let mask = 1u64 << (bit % 64);
            let word = if record.is_alloc() {
                word.get() | mask
            } else {
                word.get() & !mask
            };
            medium.store_u64(word_at, word.to_le());
            medium.flush(at, LINE);
        } else {
            let run = (record.block_size.get() / CHUNK as u64) as usize;
            // The tails' state words, then the head's.
            for chunk in (1..run).chain([0]) {
                let chunk_at = geometry.descriptor_offset(zone, index + chunk);
                medium.store_u64(chunk_at, run_state_word(record, chunk, run).to_le());
            }
            medium.flush(at, run * LINE);
        }
        // The destination holds a `PPtr` or `PSlice`: native words, as the
        // program's own types store them.
        let dest = record.dest.get() as usize;
        medium.store_u64(dest, record.dest_value[0].get());
        if record.dest_len.get() == 16 {
            medium.store_u64(dest + 8, record.dest_value[1].get());
        }
        medium.flush(dest, record.dest_len.get() as usize);
    }
}

/// The state word that applying the run record `record` leaves in chunk
/// `chunk` of its run of `run` chunks.
fn run_state_word(record: &RedoRecord, chunk: usize, run: usize) -> u64 {
    match (record.is_alloc(), chunk == 0) {
        (true, true) => ChunkDescriptor::run_state(run as u32),
        (true, false) => ChunkDescriptor::tail_state(),
        (false, _) => 0,
    }
}

/// The descriptor at `at`, which was `words`, as applying `record` leaves
/// it: what [`apply`] stores there, without storing it.
pub(crate) fn replayed(
    geometry: &Geometry,
    record: &RedoRecord,
    at: usize,
    mut words: DescriptorWords,
) -> DescriptorWords {
    let Some((zone, index)) = geometry.locate(record.block.get() as usize) else {
        return words;
    };
    let head = geometry.descriptor_offset(zone, index);
    if class_of_block(record.block_size.get()).is_some() {
        if at == head {
            let bit = block_bit(geometry, record, zone, index);
            let mask = 1u64 << (bit % 64);
            let word = &mut words[BITMAP_WORD + bit / 64];
            *word = if record.is_alloc() {
                word.get() | mask
            } else {
                word.get() & !mask
            }
            .into();
        }
    } else {
        let run = (record.block_size.get() / CHUNK as u64) as usize;
        if (head..head + run * LINE).contains(&at) {
            words[0] = run_state_word(record, (at - head) / LINE, run).into();
        }
    }
    words
}
