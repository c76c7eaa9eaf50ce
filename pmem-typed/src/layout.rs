//! The on-media format: every structure a pool file holds, as `repr(C)`
//! plain-data types with their offsets. `docs/layout.md` draws them.
//!
//! ```text
//! 0            4 KiB              4 KiB + root        heap_offset
//! | superblock | root object ...  | zone 0: chunk table | chunks ... | zone 1 ...
//! ```
//!
//! All integers are little-endian x86-64 native; the format is not portable
//! to big-endian machines (neither is persistent memory hardware).

use bytemuck::{Pod, Zeroable};

/// The first 8 bytes of every pool. Written last when a pool is created, so a
/// crash during creation leaves "not a pool".
pub const MAGIC: [u8; 8] = *b"PMEMRS\x00\x01";
/// The format described here.
pub const FORMAT_VERSION: u32 = 1;
/// Size of the superblock page; the root object follows it.
pub const PAGE: usize = 4096;
/// Cache line: the unit of flushing, and the minimum allocation.
pub const LINE: usize = 64;
/// Heap chunks: the unit of the chunk table and of large allocations.
pub const CHUNK: usize = 16 * 1024;
/// Longest layout name, in bytes (the field holds a terminating NUL).
pub const MAX_LAYOUT_NAME: usize = 63;
/// Root fields recorded in the superblock (for naming differences).
pub const MAX_RECORDED_FIELDS: usize = 29;
/// Smallest pool: superblock, one page of root, a chunk table and one chunk.
pub const MIN_POOL_SIZE: usize = 2 * PAGE + 64 * 64 + CHUNK;

/// Block sizes of the small-object classes; larger requests take whole chunks.
pub const SIZE_CLASSES: [usize; 8] = [64, 128, 256, 512, 1024, 2048, 4096, 8192];

/// Offset of the first dynamic header slot; the second follows it.
pub const DYNAMIC_SLOTS_OFFSET: usize = 2048;
/// Offset of the first of the two redo records; the second follows it.
pub const REDO_OFFSET: usize = 2048 + 2 * 64;
/// Number of redo records, used in turn.
pub const REDO_SLOTS: usize = 2;

/// The static part of the pool header, written once at creation.
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
#[repr(C)]
pub struct Superblock {
    /// [`MAGIC`].
    pub magic: [u8; 8],
    /// [`FORMAT_VERSION`].
    pub version: u32,
    /// CRC32 of bytes 16..2048 of the page (everything below but the magic).
    pub crc: u32,
    /// Random identity of the pool, for telling copies apart.
    pub uuid: [u8; 16],
    /// The user's layout name, UTF-8, NUL-padded.
    pub layout_name: [u8; 64],
    /// Offset of the root object (always [`PAGE`]).
    pub root_offset: u64,
    /// `size_of` the root type.
    pub root_size: u64,
    /// `align_of` the root type.
    pub root_align: u64,
    /// Fingerprint of the root type's layout.
    pub root_fingerprint: u64,
    /// [`CHUNK`].
    pub chunk_size: u64,
    /// Chunks per zone (a power of two, 64 to 4096, chosen at creation).
    pub zone_chunks: u64,
    /// Offset of zone 0.
    pub heap_offset: u64,
    /// Number of root fields (possibly more than recorded below).
    pub root_field_count: u32,
    /// Reserved, zero.
    pub reserved: u32,
    /// The root type's name, for messages.
    pub root_name: [u8; 32],
    /// The root type's first [`MAX_RECORDED_FIELDS`] fields.
    pub root_fields: [FieldRecord; MAX_RECORDED_FIELDS],
}

/// One recorded root field.
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
#[repr(C)]
pub struct FieldRecord {
    /// Field name, UTF-8, NUL-padded (truncated to 47 bytes).
    pub name: [u8; 48],
    /// Offset in the root type.
    pub offset: u64,
    /// Size in bytes.
    pub size: u64,
}

const _: () = assert!(size_of::<Superblock>() == 2048);
const _: () = assert!(size_of::<FieldRecord>() == 64);

/// The changing part of the header, double-buffered: updates go to the slot
/// not in use, and the valid slot with the higher sequence number wins.
#[derive(Clone, Copy, Debug, Pod, Zeroable, PartialEq, Eq)]
#[repr(C)]
pub struct DynamicSlot {
    /// Bumped by every update.
    pub seq: u64,
    /// Bytes of the pool in use (the file may be longer).
    pub pool_size: u64,
    /// Reserved, zero.
    pub reserved: [u64; 5],
    /// CRC32 of the bytes above.
    pub crc: u32,
    /// Zero.
    pub pad: u32,
}

const _: () = assert!(size_of::<DynamicSlot>() == LINE);

/// What a redo record is in the middle of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum RedoKind {
    /// No operation in flight.
    None = 0,
    /// Allocate `block` and publish it into `dest`.
    Alloc = 1,
    /// Unpublish `dest` and free `block`.
    Free = 2,
}

/// The allocator's redo record: one allocation or free in flight. Written and
/// persisted before the operation changes anything reachable, replayed by
/// `open` if a crash interrupted the operation, cleared when it is done.
#[derive(Clone, Copy, Debug, Pod, Zeroable, PartialEq, Eq)]
#[repr(C)]
pub struct RedoRecord {
    /// A [`RedoKind`].
    pub kind: u32,
    /// Bytes of `dest_value` to write: 8 (a `PPtr`) or 16 (a `PSlice`).
    pub dest_len: u32,
    /// Offset of the block.
    pub block: u64,
    /// Size of the block in bytes (a class size, or whole chunks).
    pub block_size: u64,
    /// Offset of the pointer to publish into or clear.
    pub dest: u64,
    /// The value `dest` receives.
    pub dest_value: [u64; 2],
    /// For `Alloc`: CRC32 of the block's initial contents. If they do not
    /// match after a crash, the value never became durable: roll back.
    pub value_crc: u32,
    /// For `Alloc`: bytes of the block covered by `value_crc`.
    pub value_len: u32,
    /// Sequence number: with two records valid after a crash, the older
    /// (smaller, modulo 2^32) is replayed first.
    pub seq: u32,
    /// CRC32 of every other byte of the record: a torn record is no record.
    pub crc: u32,
}

const _: () = assert!(size_of::<RedoRecord>() == LINE);

impl RedoRecord {
    /// The CRC32 of every byte but the `crc` field.
    #[must_use]
    pub fn computed_crc(&self) -> u32 {
        let bytes = bytemuck::bytes_of(self);
        let crc_at = core::mem::offset_of!(RedoRecord, crc);
        let mut hasher = crc32fast::Hasher::new();
        hasher.update(&bytes[..crc_at]);
        hasher.update(&bytes[crc_at + 4..]);
        hasher.finalize()
    }

    /// The record with its `crc` field filled in.
    #[must_use]
    pub fn sealed(mut self) -> Self {
        self.crc = self.computed_crc();
        self
    }
}

impl DynamicSlot {
    /// A slot with its `crc` filled in.
    #[must_use]
    pub fn sealed(seq: u64, pool_size: u64) -> Self {
        let mut slot = Self {
            seq,
            pool_size,
            ..Self::zeroed()
        };
        slot.crc = slot.computed_crc();
        slot
    }

    /// The CRC32 of the bytes before the `crc` field.
    #[must_use]
    pub fn computed_crc(&self) -> u32 {
        crc32fast::hash(&bytemuck::bytes_of(self)[..core::mem::offset_of!(DynamicSlot, crc)])
    }

    /// Whether the slot was written whole.
    #[must_use]
    pub fn is_valid(&self) -> bool {
        self.seq != 0 && self.crc == self.computed_crc()
    }
}

impl Superblock {
    /// The CRC32 of everything after the magic, version and crc fields.
    #[must_use]
    pub fn computed_crc(&self) -> u32 {
        crc32fast::hash(&bytemuck::bytes_of(self)[16..])
    }
}

/// Kinds of chunk, in the low byte of [`ChunkDescriptor::state`].
pub mod chunk_kind {
    /// Unused.
    pub const FREE: u8 = 0;
    /// Divided into blocks of one size class (class index in byte 1).
    pub const SMALL: u8 = 1;
    /// First chunk of a large allocation (length in chunks in bytes 4..8).
    pub const RUN: u8 = 2;
    /// A later chunk of a large allocation.
    pub const RUN_TAIL: u8 = 3;
}

/// One chunk's entry in its zone's chunk table: one cache line, so that an
/// allocation's bitmap update dirties a single line.
#[derive(Clone, Copy, Debug, Pod, Zeroable, PartialEq, Eq)]
#[repr(C)]
pub struct ChunkDescriptor {
    /// Kind (byte 0), size class (byte 1), run length in chunks (bytes 4..8).
    pub state: u64,
    /// For small chunks: bit `i` set means block `i` is allocated.
    pub bitmap: [u64; 4],
    /// Reserved, zero.
    pub reserved: [u64; 3],
}

const _: () = assert!(size_of::<ChunkDescriptor>() == LINE);

impl ChunkDescriptor {
    /// The state word of a small chunk of class `class`.
    #[must_use]
    pub const fn small_state(class: usize) -> u64 {
        chunk_kind::SMALL as u64 | (class as u64) << 8
    }

    /// The state word of the head of a run of `chunks` chunks.
    #[must_use]
    pub const fn run_state(chunks: u32) -> u64 {
        chunk_kind::RUN as u64 | (chunks as u64) << 32
    }

    /// The state word of a run's later chunk.
    #[must_use]
    pub const fn tail_state() -> u64 {
        chunk_kind::RUN_TAIL as u64
    }

    /// The kind byte.
    #[must_use]
    pub const fn kind(&self) -> u8 {
        self.state as u8
    }

    /// The size class (small chunks).
    #[must_use]
    pub const fn class(&self) -> usize {
        (self.state >> 8) as u8 as usize
    }

    /// The run length in chunks (run heads).
    #[must_use]
    pub const fn run_chunks(&self) -> u32 {
        (self.state >> 32) as u32
    }
}

/// Geometry of a pool, derived from its superblock and size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    /// Offset of zone 0.
    pub heap_offset: usize,
    /// Chunks per zone.
    pub zone_chunks: usize,
    /// Bytes in use.
    pub pool_size: usize,
}

impl Geometry {
    /// Bytes of a zone's chunk table.
    #[must_use]
    pub const fn table_bytes(&self) -> usize {
        self.zone_chunks * LINE
    }

    /// Bytes of a full zone.
    #[must_use]
    pub const fn zone_bytes(&self) -> usize {
        self.table_bytes() + self.zone_chunks * CHUNK
    }

    /// Number of zones with at least one chunk.
    #[must_use]
    pub fn zones(&self) -> usize {
        let heap = self.pool_size.saturating_sub(self.heap_offset);
        let full = heap / self.zone_bytes();
        let rest = heap % self.zone_bytes();
        full + usize::from(rest >= self.table_bytes() + CHUNK)
    }

    /// Chunks in zone `zone`.
    #[must_use]
    pub fn chunks_in_zone(&self, zone: usize) -> usize {
        let start = self.heap_offset + zone * self.zone_bytes();
        let avail = self.pool_size.saturating_sub(start + self.table_bytes());
        (avail / CHUNK).min(self.zone_chunks)
    }

    /// Offset of zone `zone`'s chunk table.
    #[must_use]
    pub const fn table_offset(&self, zone: usize) -> usize {
        self.heap_offset + zone * self.zone_bytes()
    }

    /// Offset of chunk `index` of zone `zone`'s descriptor.
    #[must_use]
    pub const fn descriptor_offset(&self, zone: usize, index: usize) -> usize {
        self.table_offset(zone) + index * LINE
    }

    /// Offset of the first byte of chunk `index` of zone `zone`.
    #[must_use]
    pub const fn chunk_offset(&self, zone: usize, index: usize) -> usize {
        self.table_offset(zone) + self.table_bytes() + index * CHUNK
    }

    /// The zone and chunk index holding `offset`, if it lies in a chunk.
    #[must_use]
    pub fn locate(&self, offset: usize) -> Option<(usize, usize)> {
        let rel = offset.checked_sub(self.heap_offset)?;
        let zone = rel / self.zone_bytes();
        let in_zone = rel % self.zone_bytes();
        let index = in_zone.checked_sub(self.table_bytes())? / CHUNK;
        (zone < self.zones() && index < self.chunks_in_zone(zone)).then_some((zone, index))
    }
}

/// The zone geometry for a pool of `size` bytes: zones of about the pool's
/// size, so small pools waste little on chunk tables and large ones allow
/// large allocations.
#[must_use]
pub fn zone_chunks_for(size: usize) -> usize {
    (size / CHUNK).next_power_of_two().clamp(64, 4096)
}

/// Bytes of a string field: `text` NUL-padded (the caller checked its length).
#[must_use]
pub fn padded<const N: usize>(text: &str) -> [u8; N] {
    let mut out = [0u8; N];
    let n = text.len().min(N - 1);
    out[..n].copy_from_slice(&text.as_bytes()[..n]);
    out
}

/// The text of a NUL-padded string field (lossy for invalid UTF-8).
#[must_use]
pub fn unpadded(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn geometry_of_a_small_pool() {
        let g = Geometry {
            heap_offset: 2 * PAGE,
            zone_chunks: 64,
            pool_size: 64 * 1024,
        };
        assert_eq!(g.zones(), 1);
        assert_eq!(g.chunks_in_zone(0), (64 * 1024 - 2 * PAGE - 4096) / CHUNK);
        assert_eq!(g.locate(g.chunk_offset(0, 1) + 100), Some((0, 1)));
        assert_eq!(
            g.locate(g.table_offset(0) + 10),
            None,
            "the chunk table is not a chunk"
        );
        assert_eq!(g.locate(100), None);
        assert_eq!(g.locate(64 * 1024), None);
    }

    #[test]
    fn geometry_of_several_zones() {
        let g = Geometry {
            heap_offset: 2 * PAGE,
            zone_chunks: 64,
            pool_size: 2 * PAGE + 2 * (4096 + 64 * CHUNK) + 4096 + 3 * CHUNK + 10,
        };
        assert_eq!(g.zones(), 3);
        assert_eq!(g.chunks_in_zone(2), 3);
        assert_eq!(g.locate(g.chunk_offset(2, 2)), Some((2, 2)));
        assert_eq!(g.locate(g.chunk_offset(2, 3)), None);
    }

    #[test]
    fn descriptor_states_round_trip() {
        let mut d = ChunkDescriptor::zeroed();
        d.state = ChunkDescriptor::small_state(5);
        assert_eq!((d.kind(), d.class()), (chunk_kind::SMALL, 5));
        d.state = ChunkDescriptor::run_state(7);
        assert_eq!((d.kind(), d.run_chunks()), (chunk_kind::RUN, 7));
        assert_eq!(zone_chunks_for(64 * 1024), 64);
        assert_eq!(zone_chunks_for(1 << 30), 4096);
        assert_eq!(unpadded(&padded::<8>("abcdefghij")), "abcdefg");
    }
}
