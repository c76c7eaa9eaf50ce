//! The heap's bytes: zones, each a chunk table followed by its 16 KiB
//! chunks, and the 64-byte descriptor of each chunk in the table. How the
//! allocator uses them is the `heap` module's.
//!
//! ```text
//! heap_offset
//! | zone 0: table (zone_chunks x 64 B) | chunk 0 | chunk 1 | ... | zone 1: table | ...
//! ```
//!
//! A chunk descriptor, one cache line (an allocation's bitmap update dirties
//! one line):
//!
//! ```text
//!  0 | kind (u8) | class (u8) | 2 zero bytes | run_chunks (u32)   <- the state word
//!  8 | bitmap (4 x u64): small chunks: bit i set = block i allocated
//! 40 | reserved (3 x u64) = 0
//! 64
//! ```
//!
//! | kind | value | class | run_chunks | bitmap |
//! |---|---|---|---|---|
//! | [`Free`](ChunkKind::Free) | 0 | 0 | 0 | 0 |
//! | [`Small`](ChunkKind::Small) | 1 | index into [`SIZE_CLASSES`] | 0 | blocks in use |
//! | [`Run`](ChunkKind::Run) (a large allocation's first chunk) | 2 | 0 | chunks in the run | 0 |
//! | [`RunTail`](ChunkKind::RunTail) (its later chunks) | 3 | 0 | 0 | 0 |
//!
//! All integers little-endian: the state word is the `u64` the first 8
//! bytes make, and it is written with one 8-byte store.

use zerocopy::little_endian::{U32, U64};
use zerocopy::{FromZeros, Immutable, IntoBytes, KnownLayout, TryFromBytes};

use super::{CHUNK, LINE, MAX_ZONE_CHUNKS, MIN_ZONE_CHUNKS, SIZE_CLASSES};

/// What a chunk is used for: byte 0 of its descriptor.
///
/// # Examples
///
/// ```
/// use pmem_typed::format::heap::{ChunkDescriptor, ChunkKind};
///
/// assert_eq!(ChunkDescriptor::decode(&[0; 64]).map(|d| d.kind), Some(ChunkKind::Free));
/// let mut line = [0; 64];
/// line[0] = 9; // no kind: opening refuses the pool
/// assert_eq!(ChunkDescriptor::decode(&line), None);
/// ```
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromZeros, IntoBytes, KnownLayout, Immutable,
)]
#[repr(u8)]
pub enum ChunkKind {
    /// Unused.
    #[default]
    Free = 0,
    /// Divided into blocks of one size class.
    Small = 1,
    /// First chunk of a large allocation.
    Run = 2,
    /// A later chunk of a large allocation.
    RunTail = 3,
}

/// One chunk's entry in its zone's chunk table.
///
/// # Examples
///
/// Zone 0's chunk table starts the heap; two small objects share a chunk:
///
/// ```
/// use pmem_typed::format::heap::{ChunkDescriptor, ChunkKind};
/// use pmem_typed::format::{LINE, SIZE_CLASSES};
/// use pmem_typed::{PPtr, Persist, Pool};
///
/// #[derive(Clone, Copy, Persist)]
/// #[repr(C)]
/// struct Root { a: PPtr<u64>, b: PPtr<u64> }
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("pool");
/// let table = {
///     let mut pool = Pool::<Root>::create(&path, "chunks", 1 << 20)?;
///     let root = pool.root();
///     pool.alloc(root.fields().a, 1)?;
///     pool.alloc(root.fields().b, 2)?;
///     pool.info().heap_offset as usize
/// };
/// let bytes = std::fs::read(&path)?;
/// let chunk = |i: usize| {
///     ChunkDescriptor::decode(bytes[table + i * LINE..][..LINE].try_into().unwrap()).unwrap()
/// };
/// assert_eq!(chunk(0).kind, ChunkKind::Small);
/// assert_eq!(SIZE_CLASSES[usize::from(chunk(0).class)], 64);
/// assert_eq!(chunk(0).bitmap.map(|w| w.get()), [0b11, 0, 0, 0]); // blocks 0 and 1 allocated
/// assert_eq!(chunk(1).kind, ChunkKind::Free);
/// # Ok(()) }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromZeros, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
pub struct ChunkDescriptor {
    /// What the chunk is used for.
    pub kind: ChunkKind,
    /// Small chunks: the index of their size class in [`SIZE_CLASSES`].
    pub class: u8,
    /// Zero.
    pub unused: [u8; 2],
    /// Run heads: the run's length in chunks.
    pub run_chunks: U32,
    /// Small chunks: bit `i` set means block `i` is allocated.
    pub bitmap: [U64; 4],
    /// Reserved, zero.
    pub reserved: [U64; 3],
}

const _: () = assert!(size_of::<ChunkDescriptor>() == LINE);

/// Offset of the bitmap in a descriptor: the allocator reads and writes its
/// words alone.
pub(crate) const BITMAP_AT: usize = core::mem::offset_of!(ChunkDescriptor, bitmap);

impl ChunkDescriptor {
    /// The descriptor a line holds, or `None` if its kind byte is none of
    /// [`ChunkKind`]'s. (Whether the other fields suit the kind is the
    /// allocator's check, at open.)
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_typed::format::heap::{ChunkDescriptor, ChunkKind};
    ///
    /// let mut line = [0; 64];
    /// line[..8].copy_from_slice(&ChunkDescriptor::run_state(3).to_le_bytes());
    /// let d = ChunkDescriptor::decode(&line).unwrap();
    /// assert_eq!((d.kind, d.run_chunks.get()), (ChunkKind::Run, 3));
    /// ```
    #[must_use]
    pub fn decode(line: &[u8; LINE]) -> Option<Self> {
        Self::try_read_from_bytes(line).ok()
    }

    /// The state word: the first 8 bytes, as a little-endian `u64`.
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_typed::format::heap::{ChunkDescriptor, ChunkKind};
    /// use zerocopy::FromZeros;
    ///
    /// let d = ChunkDescriptor { kind: ChunkKind::Small, class: 2, ..ChunkDescriptor::new_zeroed() };
    /// assert_eq!(d.state_word(), ChunkDescriptor::small_state(2));
    /// ```
    #[must_use]
    pub fn state_word(&self) -> u64 {
        let mut word = [0u8; 8];
        word.copy_from_slice(&self.as_bytes()[..8]);
        u64::from_le_bytes(word)
    }

    /// The state word of a small chunk of class `class`.
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_typed::format::heap::ChunkDescriptor;
    ///
    /// // A chunk taken for 256-byte blocks: one store of this word.
    /// assert_eq!(ChunkDescriptor::small_state(2), 0x0201);
    /// ```
    #[must_use]
    pub const fn small_state(class: usize) -> u64 {
        ChunkKind::Small as u64 | (class as u64) << 8
    }

    /// The state word of the head of a run of `chunks` chunks.
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_typed::format::CHUNK;
    /// use pmem_typed::format::heap::ChunkDescriptor;
    ///
    /// // A 40,000-byte allocation takes a run of 3 chunks.
    /// let chunks = 40_000_usize.div_ceil(CHUNK) as u32;
    /// assert_eq!(ChunkDescriptor::run_state(chunks), 2 | 3 << 32);
    /// ```
    #[must_use]
    pub const fn run_state(chunks: u32) -> u64 {
        ChunkKind::Run as u64 | (chunks as u64) << 32
    }

    /// The state word of a run's later chunk.
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_typed::format::heap::ChunkDescriptor;
    ///
    /// // Every chunk of a run after its head says only that it belongs to one.
    /// assert_eq!(ChunkDescriptor::tail_state(), 3);
    /// ```
    #[must_use]
    pub const fn tail_state() -> u64 {
        ChunkKind::RunTail as u64
    }
}

/// Geometry of a pool's heap, derived from its superblock and size.
///
/// # Examples
///
/// Where a pool's allocator put an object:
///
/// ```
/// use pmem_typed::format::heap::Geometry;
/// use pmem_typed::inspect::inspect;
/// use pmem_typed::{PPtr, Persist, Pool};
///
/// #[derive(Clone, Copy, Persist)]
/// #[repr(C)]
/// struct Root { big: PPtr<[u64; 2048]> }
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("pool");
/// let big = {
///     let mut pool = Pool::<Root>::create(&path, "geometry", 1 << 20)?;
///     pool.alloc(pool.root().fields().big, [0; 2048])? // 16 KiB: a whole chunk
/// };
/// let info = inspect(&path)?.info;
/// let geometry = Geometry {
///     heap_offset: info.heap_offset as usize,
///     zone_chunks: info.zone_chunks as usize,
///     pool_size: info.size as usize,
/// };
/// assert_eq!(geometry.locate(big.offset() as usize), Some((0, 0)));
/// assert_eq!(geometry.chunk_offset(0, 0), big.offset() as usize);
/// # Ok(()) }
/// ```
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
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_typed::format::LINE;
    /// use pmem_typed::format::heap::Geometry;
    ///
    /// let g = Geometry { heap_offset: 8192, zone_chunks: 64, pool_size: 1 << 20 };
    /// assert_eq!(g.table_bytes(), 64 * LINE); // a descriptor per chunk
    /// ```
    #[must_use]
    pub const fn table_bytes(&self) -> usize {
        self.zone_chunks * LINE
    }

    /// Bytes of a full zone.
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_typed::format::CHUNK;
    /// use pmem_typed::format::heap::Geometry;
    ///
    /// let g = Geometry { heap_offset: 8192, zone_chunks: 64, pool_size: 1 << 20 };
    /// assert_eq!(g.zone_bytes(), 4096 + 64 * CHUNK);
    /// // More than this pool holds: its only zone is cut short.
    /// assert!(g.heap_offset + g.zone_bytes() > g.pool_size);
    /// ```
    #[must_use]
    pub const fn zone_bytes(&self) -> usize {
        self.table_bytes() + self.zone_chunks * CHUNK
    }

    /// Number of zones with at least one chunk.
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_typed::format::heap::Geometry;
    ///
    /// let g = Geometry { heap_offset: 8192, zone_chunks: 64, pool_size: 1 << 20 };
    /// assert_eq!(g.zones(), 1);
    /// // Growing the pool to 3 MiB keeps its zone size and adds zones.
    /// assert_eq!(Geometry { pool_size: 3 << 20, ..g }.zones(), 3);
    /// ```
    #[must_use]
    pub fn zones(&self) -> usize {
        let heap = self.pool_size.saturating_sub(self.heap_offset);
        let full = heap / self.zone_bytes();
        let rest = heap % self.zone_bytes();
        full + usize::from(rest >= self.table_bytes() + CHUNK)
    }

    /// Chunks in zone `zone`.
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_typed::format::heap::Geometry;
    ///
    /// let g = Geometry { heap_offset: 8192, zone_chunks: 64, pool_size: 1 << 20 };
    /// // 1 MiB less 8 KiB of header and root, less the 4 KiB table:
    /// assert_eq!(g.chunks_in_zone(0), 63);
    /// assert_eq!(g.chunks_in_zone(1), 0);
    /// ```
    #[must_use]
    pub fn chunks_in_zone(&self, zone: usize) -> usize {
        let start = self.heap_offset + zone * self.zone_bytes();
        let avail = self.pool_size.saturating_sub(start + self.table_bytes());
        (avail / CHUNK).min(self.zone_chunks)
    }

    /// Offset of zone `zone`'s chunk table.
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_typed::format::heap::Geometry;
    ///
    /// let g = Geometry { heap_offset: 8192, zone_chunks: 64, pool_size: 1 << 20 };
    /// assert_eq!(g.table_offset(0), g.heap_offset);
    /// assert_eq!(g.table_offset(1), g.heap_offset + g.zone_bytes());
    /// ```
    #[must_use]
    pub const fn table_offset(&self, zone: usize) -> usize {
        self.heap_offset + zone * self.zone_bytes()
    }

    /// Offset of chunk `index` of zone `zone`'s descriptor.
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_typed::format::LINE;
    /// use pmem_typed::format::heap::Geometry;
    ///
    /// let g = Geometry { heap_offset: 8192, zone_chunks: 64, pool_size: 1 << 20 };
    /// assert_eq!(g.descriptor_offset(0, 5), 8192 + 5 * LINE);
    /// assert!(g.descriptor_offset(0, 63) < g.chunk_offset(0, 0));
    /// ```
    #[must_use]
    pub const fn descriptor_offset(&self, zone: usize, index: usize) -> usize {
        self.table_offset(zone) + index * LINE
    }

    /// Offset of the first byte of chunk `index` of zone `zone`.
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_typed::format::CHUNK;
    /// use pmem_typed::format::heap::Geometry;
    ///
    /// let g = Geometry { heap_offset: 8192, zone_chunks: 64, pool_size: 1 << 20 };
    /// assert_eq!(g.chunk_offset(0, 0), 8192 + 4096); // after the chunk table
    /// assert_eq!(g.chunk_offset(0, 1), g.chunk_offset(0, 0) + CHUNK);
    /// ```
    #[must_use]
    pub const fn chunk_offset(&self, zone: usize, index: usize) -> usize {
        self.table_offset(zone) + self.table_bytes() + index * CHUNK
    }

    /// The zone and chunk index holding `offset`, if it lies in a chunk.
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_typed::format::heap::Geometry;
    ///
    /// let g = Geometry { heap_offset: 8192, zone_chunks: 64, pool_size: 1 << 20 };
    /// assert_eq!(g.locate(g.chunk_offset(0, 3) + 100), Some((0, 3)));
    /// assert_eq!(g.locate(g.descriptor_offset(0, 3)), None); // the table holds no chunk
    /// assert_eq!(g.locate(4096), None); // nor does the root
    /// ```
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
///
/// # Examples
///
/// ```
/// use pmem_typed::format::CHUNK;
/// use pmem_typed::format::heap::zone_chunks_for;
///
/// assert_eq!(zone_chunks_for(1 << 20), 64); // the minimum: a 4 KiB chunk table
/// assert_eq!(zone_chunks_for(3 << 20), 256); // 192 chunks, rounded up
/// // The maximum: 64 MiB zones, so no allocation is larger.
/// assert_eq!(zone_chunks_for(1 << 30) * CHUNK, 64 << 20);
/// ```
#[must_use]
pub fn zone_chunks_for(size: usize) -> usize {
    (size / CHUNK)
        .next_power_of_two()
        .clamp(MIN_ZONE_CHUNKS, MAX_ZONE_CHUNKS)
}

/// Blocks per chunk of size class `class`.
#[must_use]
pub(crate) const fn blocks_per_chunk(class: usize) -> usize {
    CHUNK / SIZE_CLASSES[class]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::PAGE;

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
        let mut line = [0u8; LINE];
        line[..8].copy_from_slice(&ChunkDescriptor::small_state(5).to_le_bytes());
        let d = ChunkDescriptor::decode(&line).expect("small");
        assert_eq!((d.kind, d.class), (ChunkKind::Small, 5));
        assert_eq!(d.state_word(), ChunkDescriptor::small_state(5));
        line[..8].copy_from_slice(&ChunkDescriptor::run_state(7).to_le_bytes());
        let d = ChunkDescriptor::decode(&line).expect("run");
        assert_eq!((d.kind, d.run_chunks.get()), (ChunkKind::Run, 7));
        for kind in [4u8, 0x7f, 0xff] {
            line[0] = kind;
            assert_eq!(ChunkDescriptor::decode(&line), None);
        }
        assert_eq!(zone_chunks_for(64 * 1024), 64);
        assert_eq!(zone_chunks_for(1 << 30), 4096);
    }
}
