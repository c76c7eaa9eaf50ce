//! The allocator: chunk tables on media, their volatile summary, and the
//! redo record that makes "allocate and publish" and "unpublish and free"
//! failure-atomic.
//!
//! # Protocol
//!
//! Allocation of block `B`, published into pointer `D`:
//! 1. `B`'s initial value is written, and the redo record
//!    `{Alloc, B, D, crc(value)}` with its own CRC; one fence makes both
//!    durable. This is the commit point.
//! 2. The record is applied: `B`'s bit (or its run of chunks) is set in the
//!    chunk table and `D` is written; one fence.
//! 3. The record is cleared; one fence. Only then does `alloc` return.
//!
//! After a crash, `open` replays a valid record: if `B`'s contents still match
//! the record's CRC, step 2 is redone (it is idempotent), otherwise the value
//! never became durable and the allocation is dropped. Freeing is the same
//! with `{Free, B, D}`: step 2 clears the bit and nulls `D`. A torn record
//! fails its CRC and is ignored. The record must be cleared before returning
//! because once the caller has the pointer it may change `D` again, and a
//! stale record replayed later would undo that.

use bytemuck::Zeroable;

use crate::error::{Error, Result};
use crate::layout::{
    CHUNK, ChunkDescriptor, Geometry, LINE, PAGE, RedoKind, RedoRecord, SIZE_CLASSES, chunk_kind,
};
use crate::medium::Medium;

/// Blocks per chunk of size class `class`.
pub(crate) const fn blocks_per_chunk(class: usize) -> usize {
    CHUNK / SIZE_CLASSES[class]
}

/// The smallest class whose blocks hold `size` bytes aligned to `align`.
pub(crate) fn class_for(size: usize, align: usize) -> Option<usize> {
    let need = size.max(align).max(1);
    SIZE_CLASSES.iter().position(|&c| c >= need)
}

/// The class whose block size is exactly `size`.
fn class_of_block(size: u64) -> Option<usize> {
    SIZE_CLASSES.iter().position(|&c| c as u64 == size)
}

/// Reads a plain-data value at `offset` of the medium.
///
/// # Safety
/// `offset + size_of::<T>() <= medium.len()`, and no `&mut` to those bytes is alive.
pub(crate) unsafe fn read<T: bytemuck::Pod, M: Medium>(medium: &M, offset: usize) -> T {
    debug_assert!(offset + size_of::<T>() <= medium.len());
    // SAFETY: in bounds (caller); any bytes are a valid `T` (Pod); read_unaligned
    // copies without requiring alignment.
    unsafe { medium.base().add(offset).cast::<T>().read_unaligned() }
}

/// Volatile facts about one chunk, rebuilt from its descriptor at open.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct ChunkInfo {
    kind: u8,
    class: u8,
    /// Blocks allocated (small chunks).
    used: u16,
    /// Chunks in the run (run heads).
    run: u32,
}

/// Where an allocation will go, chosen before anything durable changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Reservation {
    /// Offset of the block.
    pub(crate) offset: u64,
    /// Its size in bytes.
    pub(crate) size: u64,
}

/// Allocation statistics.
///
/// From [`Pool::stats`](crate::Pool::stats), or
/// [`Inspection::stats`](crate::inspect::Inspection::stats) for a pool file
/// that is not open.
///
/// # Examples
///
/// Small objects share chunks divided into blocks of one size class; large
/// ones take runs of whole 16 KiB chunks:
///
/// ```
/// use pmem_typed::{ClassStats, PPtr, PSlice, Persist, Pool, RunStats};
///
/// #[derive(Clone, Copy, Persist)]
/// #[repr(C)]
/// struct Root { config: PPtr<[u64; 4]>, log: PSlice<u8> }
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let dir = tempfile::tempdir()?;
/// let mut pool = Pool::<Root>::create(dir.path().join("pool"), "stats", 1 << 20)?;
/// let root = pool.root();
/// pool.alloc(root.fields().config, [0; 4])?; // 32 bytes: a 64-byte block
/// pool.alloc_slice_zeroed(root.fields().log, 40_000)?; // 40,000 bytes: 3 chunks
///
/// let stats = pool.stats();
/// assert_eq!(stats.chunks, 63); // 1 MiB less the header, root and chunk table
/// // 1 chunk of 64-byte blocks, 1 of its 256 used:
/// assert_eq!(
///     stats.classes[0],
///     ClassStats { block_size: 64, chunks: 1, used_blocks: 1, total_blocks: 256 }
/// );
/// assert_eq!(stats.runs, RunStats { count: 1, chunks: 3 });
/// assert_eq!(stats.free_chunks, 63 - 1 - 3);
/// assert_eq!(stats.allocated_bytes, 64 + 3 * 16 * 1024);
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HeapStats {
    /// Chunks in the heap.
    pub chunks: u64,
    /// Chunks with nothing allocated in them (unused, or emptied small chunks).
    pub free_chunks: u64,
    /// One entry per size class, smallest first.
    pub classes: Vec<ClassStats>,
    /// Large allocations: runs of whole chunks.
    pub runs: RunStats,
    /// Bytes in allocated blocks.
    pub allocated_bytes: u64,
}

/// The chunks of one size class and their blocks, in [`HeapStats::classes`].
///
/// # Examples
///
/// ```
/// use pmem_typed::{PPtr, Persist, Pool};
///
/// #[derive(Clone, Copy, Persist)]
/// #[repr(C)]
/// struct Root { name: PPtr<[u8; 100]> }
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let dir = tempfile::tempdir()?;
/// let mut pool = Pool::<Root>::create(dir.path().join("pool"), "classes", 1 << 20)?;
/// pool.alloc(pool.root().fields().name, [b'x'; 100])?;
/// // 100 bytes round up to the 128-byte class.
/// let class = pool.stats().classes.into_iter().find(|c| c.used_blocks > 0).ok_or("none")?;
/// assert_eq!((class.block_size, class.chunks, class.total_blocks), (128, 1, 128));
/// # Ok(()) }
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClassStats {
    /// Size of the class's blocks in bytes.
    pub block_size: u64,
    /// Chunks divided into blocks of this class.
    pub chunks: u64,
    /// Blocks allocated in those chunks.
    pub used_blocks: u64,
    /// Blocks in those chunks, allocated or not.
    pub total_blocks: u64,
}

/// Large allocations, each a run of whole chunks, in [`HeapStats::runs`].
///
/// # Examples
///
/// ```
/// use pmem_typed::{PSlice, Persist, Pool, RunStats};
///
/// #[derive(Clone, Copy, Persist)]
/// #[repr(C)]
/// struct Root { image: PSlice<u8> }
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let dir = tempfile::tempdir()?;
/// let mut pool = Pool::<Root>::create(dir.path().join("pool"), "runs", 1 << 20)?;
/// pool.alloc_slice_zeroed(pool.root().fields().image, 100_000)?; // 7 chunks of 16 KiB
/// assert_eq!(pool.stats().runs, RunStats { count: 1, chunks: 7 });
/// # Ok(()) }
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RunStats {
    /// Large allocations.
    pub count: u64,
    /// Chunks they take.
    pub chunks: u64,
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
}

impl Heap {
    /// Reads and checks every chunk descriptor.
    ///
    /// # Errors
    /// [`Error::Corrupt`] naming the first inconsistent descriptor.
    pub(crate) fn load<M: Medium>(medium: &M, geometry: Geometry) -> Result<Self> {
        Self::load_replayed(medium, geometry, &[])
    }

    /// [`load`](Self::load) of the chunk tables as they will be once
    /// `records` (validated) are applied, oldest first: recovery checks the
    /// outcome before it writes anything.
    ///
    /// # Errors
    /// As for [`load`](Self::load).
    pub(crate) fn load_replayed<M: Medium>(
        medium: &M,
        geometry: Geometry,
        records: &[RedoRecord],
    ) -> Result<Self> {
        let descriptor = |at: usize| {
            // SAFETY: called only with descriptors of existing chunks, which lie inside the pool.
            let d: ChunkDescriptor = unsafe { read(medium, at) };
            records
                .iter()
                .fold(d, |d, record| replayed(&geometry, record, at, d))
        };
        let zones = geometry.zones();
        let mut chunks = vec![None; zones * geometry.zone_chunks];
        let mut with_room: [Vec<u32>; SIZE_CLASSES.len()] = Default::default();
        for zone in 0..zones {
            let count = geometry.chunks_in_zone(zone);
            let mut index = 0;
            while index < count {
                let at = geometry.descriptor_offset(zone, index);
                let d = descriptor(at);
                let bad = |why: String| {
                    Error::corrupt(format_args!(
                        "chunk {index} of zone {zone} (descriptor at {at:#x}): {why}"
                    ))
                };
                let global = zone * geometry.zone_chunks + index;
                // Whatever the kind: a chunk freed later must be all zero.
                if d.reserved != [0; 3] {
                    let words: Vec<String> = d.reserved.iter().map(|w| format!("{w:#x}")).collect();
                    return Err(bad(format!(
                        "reserved words [{}], expected zero",
                        words.join(", ")
                    )));
                }
                match d.kind() {
                    chunk_kind::FREE if d == ChunkDescriptor::zeroed() => {
                        chunks[global] = Some(ChunkInfo::default());
                        index += 1;
                    }
                    chunk_kind::FREE => {
                        return Err(bad(format!(
                            "free, but state {:#x} or bitmap not zero",
                            d.state
                        )));
                    }
                    chunk_kind::SMALL => {
                        let class = d.class();
                        if class >= SIZE_CLASSES.len() || d.state >> 16 != 0 {
                            return Err(bad(format!(
                                "state {:#x}: no size class {class}",
                                d.state
                            )));
                        }
                        let blocks = blocks_per_chunk(class);
                        let stray = bits_beyond(&d.bitmap, blocks);
                        if stray != 0 {
                            return Err(bad(format!(
                                "{stray} bits set beyond its {blocks} blocks"
                            )));
                        }
                        let used = d.bitmap.iter().map(|w| w.count_ones()).sum::<u32>() as u16;
                        chunks[global] = Some(ChunkInfo {
                            kind: chunk_kind::SMALL,
                            class: class as u8,
                            used,
                            run: 0,
                        });
                        if usize::from(used) < blocks {
                            with_room[class].push(global as u32);
                        }
                        index += 1;
                    }
                    chunk_kind::RUN => {
                        let run = d.run_chunks() as usize;
                        if run == 0 || index + run > count || (d.state >> 8) as u32 & 0xff_ffff != 0
                        {
                            return Err(bad(format!(
                                "state {:#x}: run of {run} chunks does not fit in the zone's {count}",
                                d.state
                            )));
                        }
                        if d.bitmap != [0; 4] {
                            return Err(bad("run with a non-zero bitmap".into()));
                        }
                        chunks[global] = Some(ChunkInfo {
                            kind: chunk_kind::RUN,
                            class: 0,
                            used: 1,
                            run: run as u32,
                        });
                        for tail in index + 1..index + run {
                            // The run fits in the zone, checked above.
                            let t = descriptor(geometry.descriptor_offset(zone, tail));
                            if t.state != ChunkDescriptor::tail_state()
                                || t.bitmap != [0; 4]
                                || t.reserved != [0; 3]
                            {
                                return Err(bad(format!(
                                    "run of {run} chunks, but chunk {tail} has state {:#x}, not a run tail",
                                    t.state
                                )));
                            }
                            chunks[zone * geometry.zone_chunks + tail] = Some(ChunkInfo {
                                kind: chunk_kind::RUN_TAIL,
                                ..ChunkInfo::default()
                            });
                        }
                        index += run;
                    }
                    chunk_kind::RUN_TAIL => {
                        return Err(bad("run tail without a run head before it".into()));
                    }
                    other => {
                        return Err(bad(format!(
                            "state {:#x} has unknown kind {other}",
                            d.state
                        )));
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
        })
    }

    /// The geometry this heap covers.
    pub(crate) fn geometry(&self) -> &Geometry {
        &self.geometry
    }

    fn position(&self, global: usize) -> (usize, usize) {
        (
            global / self.geometry.zone_chunks,
            global % self.geometry.zone_chunks,
        )
    }

    /// Chooses a block of at least `size` bytes aligned to `align`. A free
    /// chunk taken for a size class is made durable as such here (harmless
    /// if nothing is ever allocated in it).
    ///
    /// # Errors
    /// [`Error::OutOfSpace`], or [`Error::InvalidArgument`] for an alignment above 4096.
    pub(crate) fn reserve<M: Medium>(
        &mut self,
        medium: &M,
        size: usize,
        align: usize,
    ) -> Result<Reservation> {
        if align > PAGE {
            return Err(Error::InvalidArgument {
                what: format!("alignment {align} is above the maximum of {PAGE}"),
            });
        }
        match class_for(size, align) {
            Some(class) => self.reserve_small(medium, class, size),
            None => self.reserve_run(size),
        }
    }

    fn reserve_small<M: Medium>(
        &mut self,
        medium: &M,
        class: usize,
        size: usize,
    ) -> Result<Reservation> {
        let blocks = blocks_per_chunk(class);
        while let Some(&global) = self.with_room[class].last() {
            let global = global as usize;
            let info = self.chunks[global].unwrap_or_default();
            if info.kind != chunk_kind::SMALL
                || usize::from(info.class) != class
                || usize::from(info.used) >= blocks
            {
                self.with_room[class].pop();
                continue;
            }
            let (zone, index) = self.position(global);
            // SAFETY: the descriptor of an existing chunk is inside the pool.
            let d: ChunkDescriptor =
                unsafe { read(medium, self.geometry.descriptor_offset(zone, index)) };
            if let Some(bit) = first_clear_bit(&d.bitmap, blocks) {
                let offset = self.geometry.chunk_offset(zone, index) + bit * SIZE_CLASSES[class];
                return Ok(Reservation {
                    offset: offset as u64,
                    size: SIZE_CLASSES[class] as u64,
                });
            }
            self.with_room[class].pop();
        }
        // No chunk of the class has room: dedicate a free one to it.
        let Some(global) = self.find_free_chunks(1) else {
            return Err(self.out_of_space(size));
        };
        let (zone, index) = self.position(global);
        let at = self.geometry.descriptor_offset(zone, index);
        // The previous operation's redo record may still be on its way to
        // media; it must be cleared before this chunk changes class, or its
        // replay would find the chunk unlike what it recorded. (A fence with
        // nothing pending costs about a nanosecond.)
        medium.fence();
        // SAFETY: the descriptor is inside the pool; nothing references the chunk table.
        unsafe { medium.store_u64(at, ChunkDescriptor::small_state(class)) };
        medium.persist(at, LINE);
        self.chunks[global] = Some(ChunkInfo {
            kind: chunk_kind::SMALL,
            class: class as u8,
            used: 0,
            run: 0,
        });
        self.with_room[class].push(global as u32);
        let offset = self.geometry.chunk_offset(zone, index);
        Ok(Reservation {
            offset: offset as u64,
            size: SIZE_CLASSES[class] as u64,
        })
    }

    fn reserve_run(&mut self, size: usize) -> Result<Reservation> {
        let chunks = size.div_ceil(CHUNK);
        let Some(global) = self.find_free_chunks(chunks) else {
            return Err(self.out_of_space(size));
        };
        let (zone, index) = self.position(global);
        Ok(Reservation {
            offset: self.geometry.chunk_offset(zone, index) as u64,
            size: (chunks * CHUNK) as u64,
        })
    }

    /// The first of `count` consecutive free (or emptied) chunks within one zone.
    fn find_free_chunks(&mut self, count: usize) -> Option<usize> {
        let zone_chunks = self.geometry.zone_chunks;
        if count > zone_chunks {
            return None;
        }
        let total = self.chunks.len();
        // Single chunks: start at the hint; runs: scan everything.
        let start = if count == 1 {
            self.free_hint.min(total)
        } else {
            0
        };
        let mut run_start = start;
        let mut run_len = 0;
        for global in start..total {
            // An emptied small chunk is as good as a free one: its bitmap is
            // zero, so whoever takes it overwrites its state with one store.
            let free = self.chunks[global].is_some_and(|c| {
                c.kind == chunk_kind::FREE || c.kind == chunk_kind::SMALL && c.used == 0
            });
            if !free || (run_len > 0 && global % zone_chunks == 0) {
                run_len = 0;
            }
            if free {
                if run_len == 0 {
                    run_start = global;
                }
                run_len += 1;
                if run_len == count {
                    if count == 1 {
                        self.free_hint = global + 1;
                    }
                    return Some(run_start);
                }
            }
        }
        if count == 1 && start > 0 {
            self.free_hint = 0;
            return self.find_free_chunks(1);
        }
        None
    }

    fn out_of_space(&self, requested: usize) -> Error {
        Error::OutOfSpace {
            requested: requested as u64,
            largest: (self
                .geometry
                .zone_chunks
                .min(self.geometry.chunks_in_zone(0))
                * CHUNK) as u64,
        }
    }

    /// Records in the volatile state that `record` was applied.
    pub(crate) fn note_applied(&mut self, record: &RedoRecord) {
        let Some((zone, index)) = self.geometry.locate(record.block as usize) else {
            return;
        };
        let global = zone * self.geometry.zone_chunks + index;
        let alloc = record.kind == RedoKind::Alloc as u32;
        if let Some(class) = class_of_block(record.block_size) {
            let Some(info) = self.chunks[global].as_mut() else {
                return;
            };
            if alloc {
                info.used += 1;
            } else {
                let was_full = usize::from(info.used) == blocks_per_chunk(class);
                info.used -= 1;
                if was_full {
                    self.with_room[class].push(global as u32);
                }
                if info.used == 0 {
                    self.free_hint = self.free_hint.min(global);
                }
            }
        } else {
            let run = (record.block_size / CHUNK as u64) as usize;
            for (i, chunk) in self.chunks[global..global + run].iter_mut().enumerate() {
                *chunk = Some(match (alloc, i) {
                    (true, 0) => ChunkInfo {
                        kind: chunk_kind::RUN,
                        class: 0,
                        used: 1,
                        run: run as u32,
                    },
                    (true, _) => ChunkInfo {
                        kind: chunk_kind::RUN_TAIL,
                        ..ChunkInfo::default()
                    },
                    (false, _) => ChunkInfo::default(),
                });
            }
            if !alloc {
                self.free_hint = self.free_hint.min(global);
            }
        }
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
            chunk_kind::SMALL => {
                let size = SIZE_CLASSES[usize::from(info.class)] as u64;
                let rel = offset - chunk_start;
                if !rel.is_multiple_of(size) {
                    return Err(not());
                }
                let bit = (rel / size) as usize;
                // SAFETY: the descriptor of an existing chunk is inside the pool.
                let d: ChunkDescriptor =
                    unsafe { read(medium, self.geometry.descriptor_offset(zone, index)) };
                if d.bitmap[bit / 64] & 1 << (bit % 64) == 0 {
                    return Err(not());
                }
                Ok((offset, size))
            }
            chunk_kind::RUN if offset == chunk_start => {
                Ok((offset, u64::from(info.run) * CHUNK as u64))
            }
            _ => Err(not()),
        }
    }

    /// Every allocated block, as (offset, size), in address order.
    pub(crate) fn allocated_blocks<M: Medium>(&self, medium: &M) -> Vec<(u64, u64)> {
        let mut blocks = Vec::new();
        for (global, info) in self.chunks.iter().enumerate() {
            let Some(info) = info else { continue };
            let (zone, index) = self.position(global);
            let start = self.geometry.chunk_offset(zone, index) as u64;
            match info.kind {
                chunk_kind::SMALL if info.used > 0 => {
                    let size = SIZE_CLASSES[usize::from(info.class)];
                    // SAFETY: the descriptor of an existing chunk is inside the pool.
                    let d: ChunkDescriptor =
                        unsafe { read(medium, self.geometry.descriptor_offset(zone, index)) };
                    for bit in 0..blocks_per_chunk(usize::from(info.class)) {
                        if d.bitmap[bit / 64] & 1 << (bit % 64) != 0 {
                            blocks.push((start + (bit * size) as u64, size as u64));
                        }
                    }
                }
                chunk_kind::RUN => blocks.push((start, u64::from(info.run) * CHUNK as u64)),
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
                chunk_kind::FREE => stats.free_chunks += 1,
                chunk_kind::SMALL if info.used == 0 => stats.free_chunks += 1,
                chunk_kind::SMALL => {
                    let class = usize::from(info.class);
                    let entry = &mut stats.classes[class];
                    entry.chunks += 1;
                    entry.used_blocks += u64::from(info.used);
                    entry.total_blocks += blocks_per_chunk(class) as u64;
                    stats.allocated_bytes += u64::from(info.used) * SIZE_CLASSES[class] as u64;
                }
                chunk_kind::RUN => {
                    stats.runs.count += 1;
                    stats.runs.chunks += u64::from(info.run);
                    stats.allocated_bytes += u64::from(info.run) * CHUNK as u64;
                }
                _ => {}
            }
        }
        stats
    }
}

fn first_clear_bit(bitmap: &[u64; 4], blocks: usize) -> Option<usize> {
    bitmap.iter().enumerate().find_map(|(w, &word)| {
        let bit = w * 64 + (!word).trailing_zeros() as usize;
        (word != u64::MAX && bit < blocks).then_some(bit)
    })
}

fn bits_beyond(bitmap: &[u64; 4], blocks: usize) -> u32 {
    (0..256)
        .filter(|&b| b >= blocks && bitmap[b / 64] & 1 << (b % 64) != 0)
        .count() as u32
}

/// Checks that `record` describes an operation `apply_record` can carry out
/// on this pool; used on records found at open.
///
/// # Errors
/// [`Error::Corrupt`] describing the first problem.
pub(crate) fn validate_record<M: Medium>(
    medium: &M,
    geometry: &Geometry,
    record: &RedoRecord,
) -> Result<()> {
    let bad = |why: String| Error::corrupt(format_args!("redo record {record:?}: {why}"));
    if record.kind != RedoKind::Alloc as u32 && record.kind != RedoKind::Free as u32 {
        return Err(bad(format!("unknown kind {}", record.kind)));
    }
    let dest_len = u64::from(record.dest_len);
    if !(dest_len == 8 || dest_len == 16)
        || !record.dest.is_multiple_of(8)
        || record.dest < PAGE as u64
        || record
            .dest
            .checked_add(dest_len)
            .is_none_or(|end| end > geometry.pool_size as u64)
    {
        return Err(bad(
            "its destination is not an aligned pointer inside the pool".into(),
        ));
    }
    // Recovery checks the chunk tables a replay leaves before it writes
    // anything (`Heap::load_replayed`), which covers the record's own stores
    // to the table but not one through its destination.
    let in_table = |offset: u64| {
        (offset as usize)
            .checked_sub(geometry.heap_offset)
            .is_some_and(|rel| rel % geometry.zone_bytes() < geometry.table_bytes())
    };
    if in_table(record.dest) || in_table(record.dest + dest_len - 1) {
        return Err(bad("its destination lies in a chunk table".into()));
    }
    let (zone, index) = geometry
        .locate(record.block as usize)
        .ok_or_else(|| bad("its block is not in the heap".into()))?;
    // SAFETY: the descriptor of an existing chunk is inside the pool.
    let d: ChunkDescriptor = unsafe { read(medium, geometry.descriptor_offset(zone, index)) };
    let chunk_start = geometry.chunk_offset(zone, index) as u64;
    if let Some(class) = class_of_block(record.block_size) {
        if d.kind() != chunk_kind::SMALL
            || d.class() != class
            || !(record.block - chunk_start).is_multiple_of(record.block_size)
        {
            return Err(bad(format!(
                "its chunk (state {:#x}) does not hold {}-byte blocks there",
                d.state, record.block_size
            )));
        }
    } else {
        let run = record.block_size / CHUNK as u64;
        if !record.block_size.is_multiple_of(CHUNK as u64)
            || run == 0
            || record.block != chunk_start
            || index as u64 + run > geometry.chunks_in_zone(zone) as u64
        {
            return Err(bad(
                "its run of chunks is empty or does not fit in the zone".into(),
            ));
        }
    }
    let block_end = record.block + record.block_size;
    if record.dest < block_end && record.block < record.dest + dest_len {
        return Err(bad("its destination lies inside its block".into()));
    }
    Ok(())
}

/// Makes the chunk table and the destination pointer say what `record` says.
/// Idempotent; flushes what it writes but does not fence.
///
/// # Safety
/// `record` passed [`validate_record`] (or was built by the allocator), and
/// no reference into the chunk table or the destination is alive.
pub(crate) unsafe fn apply_record<M: Medium>(medium: &M, geometry: &Geometry, record: &RedoRecord) {
    let Some((zone, index)) = geometry.locate(record.block as usize) else {
        return;
    };
    let at = geometry.descriptor_offset(zone, index);
    // SAFETY: every offset written is a descriptor of an existing
    // chunk or the validated destination, all inside the pool and unaliased.
    unsafe {
        if class_of_block(record.block_size).is_some() {
            let bit = ((record.block - geometry.chunk_offset(zone, index) as u64)
                / record.block_size) as usize;
            // One 8-byte store: the bit's word. (An emptied chunk keeps its
            // class; `find_free_chunks` hands it back later with a store of
            // its own, so nothing here relies on the order of two stores to
            // one line.)
            let d = replayed(geometry, record, at, read(medium, at));
            medium.store_u64(at + 8 + (bit / 64) * 8, d.bitmap[bit / 64]);
            medium.flush(at, LINE);
        } else {
            let run = (record.block_size / CHUNK as u64) as usize;
            // The tails' state words, then the head's.
            for chunk in (1..run).chain([0]) {
                let chunk_at = geometry.descriptor_offset(zone, index + chunk);
                let d = replayed(geometry, record, chunk_at, ChunkDescriptor::zeroed());
                medium.store_u64(chunk_at, d.state);
            }
            medium.flush(at, run * LINE);
        }
        let dest = record.dest as usize;
        medium.store_u64(dest, record.dest_value[0]);
        if record.dest_len == 16 {
            medium.store_u64(dest + 8, record.dest_value[1]);
        }
        medium.flush(dest, record.dest_len as usize);
    }
}

/// The descriptor at `at`, which was `d`, as applying `record` leaves it:
/// what [`apply_record`] stores there, without storing it.
pub(crate) fn replayed(
    geometry: &Geometry,
    record: &RedoRecord,
    at: usize,
    mut d: ChunkDescriptor,
) -> ChunkDescriptor {
    let Some((zone, index)) = geometry.locate(record.block as usize) else {
        return d;
    };
    let head = geometry.descriptor_offset(zone, index);
    let alloc = record.kind == RedoKind::Alloc as u32;
    if class_of_block(record.block_size).is_some() {
        if at == head {
            let bit = ((record.block - geometry.chunk_offset(zone, index) as u64)
                / record.block_size) as usize;
            let mask = 1u64 << (bit % 64);
            let word = &mut d.bitmap[bit / 64];
            *word = if alloc { *word | mask } else { *word & !mask };
        }
    } else {
        let run = (record.block_size / CHUNK as u64) as usize;
        if (head..head + run * LINE).contains(&at) {
            d.state = match (alloc, at == head) {
                (true, true) => ChunkDescriptor::run_state(run as u32),
                (true, false) => ChunkDescriptor::tail_state(),
                (false, _) => 0,
            };
        }
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes() {
        assert_eq!(class_for(1, 1), Some(0));
        assert_eq!(class_for(64, 8), Some(0));
        assert_eq!(class_for(65, 8), Some(1));
        assert_eq!(class_for(8, 512), Some(3));
        assert_eq!(class_for(8192, 8), Some(7));
        assert_eq!(class_for(8193, 8), None);
        assert_eq!(blocks_per_chunk(0), 256);
        assert_eq!(blocks_per_chunk(7), 2);
    }

    #[test]
    fn bit_search() {
        let mut bitmap = [u64::MAX, 0b1011, 0, 0];
        assert_eq!(first_clear_bit(&bitmap, 256), Some(66));
        bitmap[1] = u64::MAX;
        assert_eq!(first_clear_bit(&bitmap, 128), None);
        assert_eq!(first_clear_bit(&bitmap, 129), Some(128));
        assert_eq!(bits_beyond(&[0, 0, 1, 0], 128), 1);
    }

    #[test]
    fn record_crc_detects_tearing() {
        let r = RedoRecord {
            kind: 1,
            dest_len: 8,
            block: 4096,
            block_size: 64,
            dest: 4096,
            ..RedoRecord::zeroed()
        }
        .sealed();
        assert_eq!(r.computed_crc(), r.crc);
        let mut torn = r;
        torn.value_len = 3;
        assert_ne!(torn.computed_crc(), torn.crc);
    }
}
