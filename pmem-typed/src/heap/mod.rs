//! The heap: chunk tables on media, their volatile summary, size classes,
//! runs of chunks, and the statistics they give.
//!
//! A zone's chunk table holds one [`ChunkDescriptor`] per 16 KiB chunk (the
//! bytes are drawn in [`format::heap`](crate::format::heap)). A small
//! chunk is divided into blocks of one size class, with a bitmap of those in
//! use; a large allocation is a run of whole chunks. The heap changes the
//! tables in two ways only: [`reserve`](Heap::reserve) dedicates a free chunk
//! to a size class (one 8-byte store, harmless if nothing is allocated in
//! it), and the [`redo`](crate::redo) protocol sets or clears a block's bit
//! or a run's state words, failure-atomically with publishing the block.
//!
//! - [`classes`]: size classes and bitmaps;
//! - [`reserve`]: choosing where an allocation goes, and keeping the volatile
//!   summary in step with applied records;
//! - [`stats`]: [`HeapStats`] and its parts.

pub(crate) mod classes;
pub(crate) mod reserve;
mod stats;

use std::collections::HashMap;

use zerocopy::IntoBytes;
use zerocopy::little_endian::U64;

use crate::error::{Error, Expected, Result, Structure};
use crate::format::heap::{BITMAP_AT, ChunkDescriptor, ChunkKind, Geometry, blocks_per_chunk};
use crate::format::{CHUNK, SIZE_CLASSES};
use crate::medium::Medium;
use crate::medium::read;
use classes::{bits_beyond, is_set};
pub use stats::{ClassStats, HeapStats, RunStats};

/// A descriptor's line as eight little-endian words, before decoding:
/// word 0 is the state word, words 1 to 4 the bitmap, 5 to 7 reserved.
/// Recovery replays records on these (a replay may rewrite a state word
/// that does not decode) and decodes the result.
pub(crate) type DescriptorWords = [U64; 8];

/// Word index of the bitmap in [`DescriptorWords`].
pub(crate) const BITMAP_WORD: usize = BITMAP_AT / 8;
/// Word index of the reserved words in [`DescriptorWords`].
const RESERVED_WORD: usize = BITMAP_WORD + 4;

/// The bitmap of the chunk whose descriptor is at `at`.
///
/// # Safety
/// `at` is the offset of the descriptor of an existing chunk (inside the
/// medium), and no `&mut` to it is alive.
#[inline]
pub(crate) unsafe fn read_bitmap<M: Medium>(medium: &M, at: usize) -> [u64; 4] {
    // SAFETY: the bitmap lies inside the descriptor (the caller's precondition).
    let words: [U64; 4] = unsafe { read(medium, at + BITMAP_AT) };
    words.map(U64::get)
}

/// Volatile facts about one chunk, rebuilt from its descriptor at open.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct ChunkInfo {
    kind: ChunkKind,
    class: u8,
    /// Blocks allocated (small chunks).
    used: u16,
    /// Chunks in the run (run heads).
    run: u32,
}

/// The allocator's volatile state.
#[derive(Debug)]
pub(crate) struct Heap {
    geometry: Geometry,
    /// Indexed by zone * zone_chunks + index; chunks beyond a partial zone's end are absent.
    chunks: Vec<Option<ChunkInfo>>,
    /// Small chunks of each class that may have free blocks.
    with_room: [Vec<u32>; SIZE_CLASSES.len()],
    /// Where to start looking for a free chunk.
    free_hint: usize,
    /// Blocks an open batch holds, allocated nowhere durable yet: by chunk
    /// (global index), the bits of its held small blocks, or all bits for a
    /// chunk of a held run.
    held: HashMap<usize, [u64; 4]>,
}

impl Heap {
    /// Reads and checks every chunk descriptor.
    ///
    /// # Errors
    /// [`Error::Corrupt`] naming the first inconsistent descriptor.
    pub(crate) fn load<M: Medium>(medium: &M, geometry: Geometry) -> Result<Self> {
        Self::load_from(geometry, |at| {
            // SAFETY: `load_from` asks only for descriptors of existing
            // chunks, which lie inside the pool.
            unsafe { read(medium, at) }
        })
    }

    /// Builds and checks the heap from the descriptors `descriptor` gives
    /// for the geometry's existing chunks (the only offsets it is called
    /// with). Recovery passes the descriptors as its redo records will leave
    /// them, to check the outcome before it writes anything.
    ///
    /// # Errors
    /// As for [`load`](Self::load).
    pub(crate) fn load_from(
        geometry: Geometry,
        descriptor: impl Fn(usize) -> DescriptorWords,
    ) -> Result<Self> {
        let zones = geometry.zones();
        let mut chunks = vec![None; zones * geometry.zone_chunks];
        let mut with_room: [Vec<u32>; SIZE_CLASSES.len()] = Default::default();
        for zone in 0..zones {
            let count = geometry.chunks_in_zone(zone);
            let mut index = 0;
            while index < count {
                let at = geometry.descriptor_offset(zone, index);
                let words = descriptor(at);
                let bad = |field, found, expected| {
                    let structure = Structure::ChunkDescriptor { zone, chunk: index };
                    Error::corrupt(structure, at as u64, field, found, expected)
                };
                let first_set = |words: &[U64]| words.iter().map(|w| w.get()).find(|&w| w != 0);
                let global = zone * geometry.zone_chunks + index;
                let state = words[0].get();
                // Whatever the kind: a chunk freed later must be all zero.
                let reserved = &words[RESERVED_WORD..];
                if let Some(found) = first_set(reserved) {
                    return Err(bad("reserved", found, Expected::Zero));
                }
                let Some(d) = decode(&words) else {
                    return Err(bad("state", state, Expected::KnownKind));
                };
                let bitmap = d.bitmap.map(U64::get);
                match d.kind {
                    ChunkKind::Free if words.iter().all(|w| w.get() == 0) => {
                        chunks[global] = Some(ChunkInfo::default());
                        index += 1;
                    }
                    ChunkKind::Free => {
                        return Err(match first_set(&words[..1]) {
                            Some(found) => bad("state", found, Expected::Zero),
                            None => bad("bitmap", first_set(&words).unwrap_or(0), Expected::Zero),
                        });
                    }
                    ChunkKind::Small => {
                        let class = usize::from(d.class);
                        if class >= SIZE_CLASSES.len() {
                            let classes = SIZE_CLASSES.len() as u64;
                            return Err(bad("state", state, Expected::ClassBelow(classes)));
                        }
                        if state >> 16 != 0 {
                            return Err(bad("state bytes 2..8", state, Expected::Zero));
                        }
                        let blocks = blocks_per_chunk(class);
                        let stray = bits_beyond(&bitmap, blocks);
                        if stray != 0 {
                            let word = blocks / 64;
                            let found = bitmap.get(word).copied().unwrap_or(0);
                            let blocks = blocks as u64;
                            return Err(bad("bitmap", found, Expected::BitsWithin { blocks }));
                        }
                        let used = bitmap.iter().map(|w| w.count_ones()).sum::<u32>() as u16;
                        chunks[global] = Some(ChunkInfo {
                            kind: ChunkKind::Small,
                            class: class as u8,
                            used,
                            run: 0,
                        });
                        if usize::from(used) < blocks {
                            with_room[class].push(global as u32);
                        }
                        index += 1;
                    }
                    ChunkKind::Run => {
                        let run = d.run_chunks.get() as usize;
                        if run == 0 || index + run > count {
                            let chunks = (count - index) as u64;
                            return Err(bad("state", state, Expected::RunWithinZone { chunks }));
                        }
                        if (state >> 8) as u32 & 0xff_ffff != 0 {
                            return Err(bad("state bytes 1..4", state, Expected::Zero));
                        }
                        if let Some(found) = first_set(&words[1..RESERVED_WORD]) {
                            return Err(bad("bitmap", found, Expected::Zero));
                        }
                        chunks[global] = Some(ChunkInfo {
                            kind: ChunkKind::Run,
                            class: 0,
                            used: 1,
                            run: run as u32,
                        });
                        for tail in index + 1..index + run {
                            // The run fits in the zone, checked above.
                            let t = descriptor(geometry.descriptor_offset(zone, tail));
                            let tail_at = geometry.descriptor_offset(zone, tail) as u64;
                            let structure = Structure::ChunkDescriptor { zone, chunk: tail };
                            if t[0].get() != ChunkDescriptor::tail_state() {
                                let found = t[0].get();
                                return Err(Error::corrupt(
                                    structure,
                                    tail_at,
                                    "state",
                                    found,
                                    Expected::RunTail,
                                ));
                            }
                            if let Some(found) = first_set(&t[1..]) {
                                return Err(Error::corrupt(
                                    structure,
                                    tail_at,
                                    "bitmap and reserved",
                                    found,
                                    Expected::Zero,
                                ));
                            }
                            chunks[zone * geometry.zone_chunks + tail] = Some(ChunkInfo {
                                kind: ChunkKind::RunTail,
                                ..ChunkInfo::default()
                            });
                        }
                        index += run;
                    }
                    ChunkKind::RunTail => {
                        return Err(bad("state", state, Expected::RunHeadBefore));
                    }
                }
            }
        }
        // Fill chunks with room from the low end first: keeps the heap compact.
        for list in &mut with_room {
            list.reverse();
        }
        Ok(Self {
            geometry,
            chunks,
            with_room,
            free_hint: 0,
            held: HashMap::new(),
        })
    }

    /// The geometry this heap covers.
    pub(crate) fn geometry(&self) -> &Geometry {
        &self.geometry
    }

    /// Zone and index of chunk number `global`.
    fn position(&self, global: usize) -> (usize, usize) {
        (
            global / self.geometry.zone_chunks,
            global % self.geometry.zone_chunks,
        )
    }

    /// The allocated block starting at `offset`, as (offset, size).
    ///
    /// # Errors
    /// [`Error::NotAllocated`] if no allocated block starts there.
    pub(crate) fn allocated_block<M: Medium>(&self, medium: &M, offset: u64) -> Result<(u64, u64)> {
        let not = || Error::NotAllocated { offset };
        let (zone, index) = self.geometry.locate(offset as usize).ok_or_else(not)?;
        let info = self.chunks[zone * self.geometry.zone_chunks + index].ok_or_else(not)?;
        let chunk_start = self.geometry.chunk_offset(zone, index) as u64;
        match info.kind {
            ChunkKind::Small => {
                let size = SIZE_CLASSES[usize::from(info.class)] as u64;
                let rel = offset - chunk_start;
                if !rel.is_multiple_of(size) {
                    return Err(not());
                }
                let bit = (rel / size) as usize;
                // SAFETY: the descriptor of an existing chunk is inside the pool.
                let bitmap =
                    unsafe { read_bitmap(medium, self.geometry.descriptor_offset(zone, index)) };
                if !is_set(&bitmap, bit) {
                    return Err(not());
                }
                Ok((offset, size))
            }
            ChunkKind::Run if offset == chunk_start => {
                Ok((offset, u64::from(info.run) * CHUNK as u64))
            }
            _ => Err(not()),
        }
    }

    /// The allocated block holding `len` bytes at `offset`, as (offset,
    /// size), if one holds them all.
    pub(crate) fn block_containing<M: Medium>(
        &self,
        medium: &M,
        offset: u64,
        len: u64,
    ) -> Option<(u64, u64)> {
        let (zone, mut index) = self.geometry.locate(offset as usize)?;
        let zone_start = zone * self.geometry.zone_chunks;
        // A run's tail belongs to the head before it.
        while self.chunks[zone_start + index]?.kind == ChunkKind::RunTail {
            index = index.checked_sub(1)?;
        }
        let info = self.chunks[zone_start + index]?;
        let chunk_start = self.geometry.chunk_offset(zone, index) as u64;
        let (block, size) = match info.kind {
            ChunkKind::Small => {
                let size = SIZE_CLASSES[usize::from(info.class)] as u64;
                let bit = (offset - chunk_start) / size;
                // SAFETY: the descriptor of an existing chunk is inside the pool.
                let bitmap =
                    unsafe { read_bitmap(medium, self.geometry.descriptor_offset(zone, index)) };
                if bit as usize >= blocks_per_chunk(usize::from(info.class))
                    || !is_set(&bitmap, bit as usize)
                {
                    return None;
                }
                (chunk_start + bit * size, size)
            }
            ChunkKind::Run => (chunk_start, u64::from(info.run) * CHUNK as u64),
            _ => return None,
        };
        (offset.checked_add(len)? <= block + size).then_some((block, size))
    }

    /// Every allocated block, as (offset, size), in address order.
    pub(crate) fn allocated_blocks<M: Medium>(&self, medium: &M) -> Vec<(u64, u64)> {
        let mut blocks = Vec::new();
        for (global, info) in self.chunks.iter().enumerate() {
            let Some(info) = info else { continue };
            let (zone, index) = self.position(global);
            let start = self.geometry.chunk_offset(zone, index) as u64;
            match info.kind {
                ChunkKind::Small if info.used > 0 => {
                    let size = SIZE_CLASSES[usize::from(info.class)];
                    // SAFETY: the descriptor of an existing chunk is inside the pool.
                    let bitmap = unsafe {
                        read_bitmap(medium, self.geometry.descriptor_offset(zone, index))
                    };
                    for bit in 0..blocks_per_chunk(usize::from(info.class)) {
                        if is_set(&bitmap, bit) {
                            blocks.push((start + (bit * size) as u64, size as u64));
                        }
                    }
                }
                ChunkKind::Run => blocks.push((start, u64::from(info.run) * CHUNK as u64)),
                _ => {}
            }
        }
        blocks
    }

    /// Counts for [`HeapStats`].
    pub(crate) fn stats(&self) -> HeapStats {
        let mut stats = HeapStats {
            classes: SIZE_CLASSES
                .iter()
                .map(|&size| ClassStats {
                    block_size: size as u64,
                    ..ClassStats::default()
                })
                .collect(),
            ..HeapStats::default()
        };
        for info in self.chunks.iter().flatten() {
            stats.chunks += 1;
            match info.kind {
                ChunkKind::Free => stats.free_chunks += 1,
                ChunkKind::Small if info.used == 0 => stats.free_chunks += 1,
                ChunkKind::Small => {
                    let class = usize::from(info.class);
                    let entry = &mut stats.classes[class];
                    entry.chunks += 1;
                    entry.used_blocks += u64::from(info.used);
                    entry.total_blocks += blocks_per_chunk(class) as u64;
                    stats.allocated_bytes += u64::from(info.used) * SIZE_CLASSES[class] as u64;
                }
                ChunkKind::Run => {
                    stats.runs.count += 1;
                    stats.runs.chunks += u64::from(info.run);
                    stats.allocated_bytes += u64::from(info.run) * CHUNK as u64;
                }
                ChunkKind::RunTail => {}
            }
        }
        stats
    }
}

/// The descriptor eight words make, if their kind byte is a kind.
pub(crate) fn decode(words: &DescriptorWords) -> Option<ChunkDescriptor> {
    let line: &[u8; 64] = words.as_bytes().try_into().ok()?;
    ChunkDescriptor::decode(line)
}
