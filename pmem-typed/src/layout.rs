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
//!
//! # Examples
//!
//! The constants and structures locate everything in a pool file:
//!
//! ```
//! use pmem_typed::layout::{
//!     CHUNK, DYNAMIC_SLOTS_OFFSET, DynamicSlot, LINE, MAGIC, PAGE, REDO_OFFSET, REDO_SLOTS,
//!     Superblock,
//! };
//! use pmem_typed::{Persist, Pool};
//!
//! #[derive(Clone, Copy, Persist)]
//! #[repr(C)]
//! struct Root { n: u64 }
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let path = dir.path().join("pool");
//! drop(Pool::<Root>::create(&path, "layout", 1 << 20)?);
//! let bytes = std::fs::read(&path)?;
//!
//! assert_eq!(bytes[..8], MAGIC);
//! let sb: Superblock = bytemuck::pod_read_unaligned(&bytes[..size_of::<Superblock>()]);
//! assert_eq!(sb.root_offset, PAGE as u64); // the root follows the superblock page,
//! assert_eq!(sb.heap_offset, 2 * PAGE as u64); // padded to a page: then the heap
//! // The rest of the first page: the header's changing part, then the redo records.
//! let slot: DynamicSlot = bytemuck::pod_read_unaligned(&bytes[DYNAMIC_SLOTS_OFFSET..][..LINE]);
//! assert_eq!(slot.pool_size, 1 << 20);
//! assert!(REDO_OFFSET + REDO_SLOTS * LINE <= PAGE);
//! // Zone 0: one 64-byte descriptor per chunk, then the chunks.
//! let first_chunk = sb.heap_offset + sb.zone_chunks * LINE as u64;
//! assert!(first_chunk + CHUNK as u64 <= bytes.len() as u64);
//! # Ok(()) }
//! ```

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
///
/// # Examples
///
/// ```
/// use pmem_typed::layout::{FORMAT_VERSION, MAGIC, Superblock, unpadded};
/// use pmem_typed::{Persist, Pool};
///
/// #[derive(Clone, Copy, Persist)]
/// #[repr(C)]
/// struct Account { id: u64, balance: u64 }
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("pool");
/// drop(Pool::<Account>::create(&path, "bank", 1 << 20)?);
///
/// let bytes = std::fs::read(&path)?;
/// let sb: Superblock = bytemuck::pod_read_unaligned(&bytes[..size_of::<Superblock>()]);
/// assert_eq!((sb.magic, sb.version), (MAGIC, FORMAT_VERSION));
/// assert_eq!(unpadded(&sb.layout_name), "bank");
/// assert_eq!((unpadded(&sb.root_name).as_str(), sb.root_size), ("Account", 16));
/// assert_eq!(sb.crc, sb.computed_crc());
/// # Ok(()) }
/// ```
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
///
/// # Examples
///
/// ```
/// use pmem_typed::layout::{FieldRecord, Superblock, unpadded};
/// use pmem_typed::{Persist, Pool};
///
/// #[derive(Clone, Copy, Persist)]
/// #[repr(C)]
/// struct Account { id: u64, balance: u64 }
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("pool");
/// drop(Pool::<Account>::create(&path, "bank", 1 << 20)?);
///
/// let bytes = std::fs::read(&path)?;
/// let sb: Superblock = bytemuck::pod_read_unaligned(&bytes[..size_of::<Superblock>()]);
/// // What opening with a changed `Account` compares the new type with.
/// let balance: FieldRecord = sb.root_fields[1];
/// assert_eq!((unpadded(&balance.name).as_str(), balance.offset, balance.size), ("balance", 8, 8));
/// assert_eq!(sb.root_field_count, 2);
/// # Ok(()) }
/// ```
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
///
/// # Examples
///
/// Growing a pool writes the other slot, with the next sequence number:
///
/// ```
/// use pmem_typed::layout::{DYNAMIC_SLOTS_OFFSET, DynamicSlot, LINE};
/// use pmem_typed::{Persist, Pool};
///
/// #[derive(Clone, Copy, Persist)]
/// #[repr(C)]
/// struct Root { n: u64 }
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("pool");
/// Pool::<Root>::create(&path, "grow", 1 << 20)?.grow(2 << 20)?;
///
/// let bytes = std::fs::read(&path)?;
/// let slot = |i: usize| -> DynamicSlot {
///     bytemuck::pod_read_unaligned(&bytes[DYNAMIC_SLOTS_OFFSET + i * LINE..][..LINE])
/// };
/// assert_eq!((slot(0).seq, slot(0).pool_size), (1, 1 << 20)); // as created
/// assert_eq!((slot(1).seq, slot(1).pool_size), (2, 2 << 20)); // newer: this one counts
/// assert!(slot(0).is_valid() && slot(1).is_valid());
/// # Ok(()) }
/// ```
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
///
/// # Examples
///
/// [`RedoRecord::kind`] holds one as a `u32`:
///
/// ```
/// use pmem_typed::layout::{RedoKind, RedoRecord};
///
/// let record = RedoRecord { kind: RedoKind::Free as u32, ..bytemuck::Zeroable::zeroed() };
/// assert_eq!(RedoKind::from_u32(record.kind), Some(RedoKind::Free));
/// assert_eq!(RedoKind::from_u32(7), None); // damaged: open refuses such a record
/// ```
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

impl RedoKind {
    /// The kind a record's `kind` word stands for, or `None` for a value no
    /// kind has.
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_typed::layout::RedoKind;
    ///
    /// assert_eq!(RedoKind::from_u32(1), Some(RedoKind::Alloc));
    /// assert_eq!(RedoKind::from_u32(3), None);
    /// ```
    #[must_use]
    pub const fn from_u32(value: u32) -> Option<Self> {
        match value {
            0 => Some(Self::None),
            1 => Some(Self::Alloc),
            2 => Some(Self::Free),
            _ => None,
        }
    }
}

/// The allocator's redo record: one allocation or free in flight. Written and
/// persisted before the operation changes anything reachable, replayed by
/// `open` if a crash interrupted the operation, cleared when it is done.
///
/// # Examples
///
/// The record a crash in the middle of `pool.free(head)` leaves behind, and
/// what the next open does with it:
///
/// ```
/// use std::os::unix::fs::FileExt;
///
/// use pmem_typed::inspect::{RedoState, inspect};
/// use pmem_typed::layout::{REDO_OFFSET, RedoKind, RedoRecord};
/// use pmem_typed::{PPtr, Persist, Pool};
///
/// #[derive(Clone, Copy, Persist)]
/// #[repr(C)]
/// struct Root { head: PPtr<Node> }
///
/// #[derive(Clone, Copy, Persist)]
/// #[repr(C)]
/// struct Node { value: u64 }
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("pool");
/// let (head, node) = {
///     let mut pool = Pool::<Root>::create(&path, "redo", 1 << 20)?;
///     let head = pool.root().fields().head;
///     (head, pool.alloc(head, Node { value: 7 })?)
/// };
/// let record = RedoRecord {
///     kind: RedoKind::Free as u32,
///     dest_len: 8, // a `PPtr`
///     block: node.offset(),
///     block_size: 64,
///     dest: head.offset(),
///     seq: 2,
///     ..bytemuck::Zeroable::zeroed() // `dest_value` null: unpublish
/// }
/// .sealed();
/// let file = std::fs::OpenOptions::new().write(true).open(&path)?;
/// file.write_all_at(bytemuck::bytes_of(&record), REDO_OFFSET as u64)?;
/// assert_eq!(inspect(&path)?.redo[0], RedoState::Pending(record));
///
/// // Opening finishes the free: the pointer is null and the block free.
/// let pool = Pool::<Root>::open(&path, "redo")?;
/// assert!(pool.get(pool.root())?.head.is_null());
/// assert_eq!(pool.stats().allocated_bytes, 0);
/// # Ok(()) }
/// ```
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
    ///
    /// # Examples
    ///
    /// A crash can persist part of the record's line: the CRC tells.
    ///
    /// ```
    /// use pmem_typed::layout::{RedoKind, RedoRecord};
    ///
    /// let record = RedoRecord {
    ///     kind: RedoKind::Alloc as u32,
    ///     dest_len: 8,
    ///     block: 12288,
    ///     block_size: 64,
    ///     dest: 4096,
    ///     dest_value: [12288, 0],
    ///     ..bytemuck::Zeroable::zeroed()
    /// }
    /// .sealed();
    /// assert_eq!(record.computed_crc(), record.crc);
    /// let torn = RedoRecord { dest_value: [0, 0], ..record }; // a store lost
    /// assert_ne!(torn.computed_crc(), torn.crc);
    /// ```
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
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_typed::layout::{RedoKind, RedoRecord};
    ///
    /// let unsealed = RedoRecord { kind: RedoKind::Free as u32, ..bytemuck::Zeroable::zeroed() };
    /// assert_ne!(unsealed.crc, unsealed.computed_crc()); // would be taken for a torn write
    /// let record = unsealed.sealed();
    /// assert_eq!(record.crc, record.computed_crc());
    /// assert_eq!(RedoRecord { crc: 0, ..record }, unsealed); // nothing else changed
    /// ```
    #[must_use]
    pub fn sealed(mut self) -> Self {
        self.crc = self.computed_crc();
        self
    }
}

impl DynamicSlot {
    /// A slot with its `crc` filled in.
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_typed::layout::DynamicSlot;
    ///
    /// // What `grow` to 2 MiB writes into the slot not in use.
    /// let slot = DynamicSlot::sealed(2, 2 << 20);
    /// assert!(slot.is_valid());
    /// assert_eq!((slot.seq, slot.pool_size, slot.reserved), (2, 2 << 20, [0; 5]));
    /// ```
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
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_typed::layout::DynamicSlot;
    ///
    /// let slot = DynamicSlot::sealed(3, 1 << 20);
    /// assert_eq!(slot.computed_crc(), slot.crc);
    /// // A crash that kept the new size but not the new CRC:
    /// let torn = DynamicSlot { pool_size: 4 << 20, ..slot };
    /// assert_ne!(torn.computed_crc(), torn.crc);
    /// ```
    #[must_use]
    pub fn computed_crc(&self) -> u32 {
        crc32fast::hash(&bytemuck::bytes_of(self)[..core::mem::offset_of!(DynamicSlot, crc)])
    }

    /// Whether the slot was written whole.
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_typed::layout::DynamicSlot;
    ///
    /// assert!(DynamicSlot::sealed(1, 1 << 20).is_valid());
    /// assert!(!DynamicSlot::sealed(0, 1 << 20).is_valid(), "sequence 0: never written");
    /// let torn = DynamicSlot { seq: 5, ..DynamicSlot::sealed(4, 1 << 20) };
    /// assert!(!torn.is_valid());
    /// ```
    #[must_use]
    pub fn is_valid(&self) -> bool {
        self.seq != 0 && self.crc == self.computed_crc()
    }
}

impl Superblock {
    /// The CRC32 of everything after the magic, version and crc fields.
    ///
    /// # Examples
    ///
    /// Damage anywhere past the first 16 bytes shows, and opening refuses the pool:
    ///
    /// ```
    /// use pmem_typed::layout::Superblock;
    /// use pmem_typed::{Error, Persist, Pool};
    ///
    /// #[derive(Clone, Copy, Persist)]
    /// #[repr(C)]
    /// struct Root { n: u64 }
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// let path = dir.path().join("pool");
    /// drop(Pool::<Root>::create(&path, "crc", 1 << 20)?);
    /// let mut bytes = std::fs::read(&path)?;
    /// bytes[32] = b'x'; // the layout name's first byte
    /// std::fs::write(&path, &bytes)?;
    ///
    /// let sb: Superblock = bytemuck::pod_read_unaligned(&bytes[..size_of::<Superblock>()]);
    /// assert_ne!(sb.computed_crc(), sb.crc);
    /// assert!(matches!(
    ///     Pool::<Root>::open(&path, "crc"),
    ///     Err(Error::ChecksumMismatch { region: "superblock", .. })
    /// ));
    /// # Ok(()) }
    /// ```
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
///
/// # Examples
///
/// Zone 0's chunk table starts the heap; two small objects share a chunk:
///
/// ```
/// use pmem_typed::layout::{ChunkDescriptor, LINE, SIZE_CLASSES, chunk_kind};
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
/// let chunk = |i: usize| -> ChunkDescriptor {
///     bytemuck::pod_read_unaligned(&bytes[table + i * LINE..][..LINE])
/// };
/// assert_eq!(chunk(0).kind(), chunk_kind::SMALL);
/// assert_eq!(SIZE_CLASSES[chunk(0).class()], 64);
/// assert_eq!(chunk(0).bitmap, [0b11, 0, 0, 0]); // blocks 0 and 1 allocated
/// assert_eq!(chunk(1).kind(), chunk_kind::FREE);
/// # Ok(()) }
/// ```
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
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_typed::layout::{ChunkDescriptor, SIZE_CLASSES, chunk_kind};
    ///
    /// // A chunk taken for 256-byte blocks: one store of this word.
    /// let state = ChunkDescriptor::small_state(2);
    /// assert_eq!(state, 0x0201);
    /// let d = ChunkDescriptor { state, ..bytemuck::Zeroable::zeroed() };
    /// assert_eq!((d.kind(), SIZE_CLASSES[d.class()]), (chunk_kind::SMALL, 256));
    /// ```
    #[must_use]
    pub const fn small_state(class: usize) -> u64 {
        chunk_kind::SMALL as u64 | (class as u64) << 8
    }

    /// The state word of the head of a run of `chunks` chunks.
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_typed::layout::{CHUNK, ChunkDescriptor, chunk_kind};
    ///
    /// // A 40,000-byte allocation takes a run of 3 chunks.
    /// let chunks = 40_000_usize.div_ceil(CHUNK) as u32;
    /// let state = ChunkDescriptor::run_state(chunks);
    /// let head = ChunkDescriptor { state, ..bytemuck::Zeroable::zeroed() };
    /// assert_eq!((head.kind(), head.run_chunks()), (chunk_kind::RUN, 3));
    /// ```
    #[must_use]
    pub const fn run_state(chunks: u32) -> u64 {
        chunk_kind::RUN as u64 | (chunks as u64) << 32
    }

    /// The state word of a run's later chunk.
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_typed::layout::{ChunkDescriptor, chunk_kind};
    ///
    /// // Every chunk of a run after its head says only that it belongs to one.
    /// let state = ChunkDescriptor::tail_state();
    /// let tail = ChunkDescriptor { state, ..bytemuck::Zeroable::zeroed() };
    /// assert_eq!(tail.kind(), chunk_kind::RUN_TAIL);
    /// assert_eq!(tail.run_chunks(), 0);
    /// ```
    #[must_use]
    pub const fn tail_state() -> u64 {
        chunk_kind::RUN_TAIL as u64
    }

    /// The kind byte.
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_typed::layout::{ChunkDescriptor, chunk_kind};
    /// use bytemuck::Zeroable;
    ///
    /// assert_eq!(ChunkDescriptor::zeroed().kind(), chunk_kind::FREE);
    /// let d = ChunkDescriptor { state: ChunkDescriptor::run_state(2), ..Zeroable::zeroed() };
    /// assert_eq!(d.kind(), chunk_kind::RUN);
    /// ```
    #[must_use]
    pub const fn kind(&self) -> u8 {
        self.state as u8
    }

    /// The size class (small chunks).
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_typed::layout::{CHUNK, ChunkDescriptor, SIZE_CLASSES};
    ///
    /// let state = ChunkDescriptor::small_state(7);
    /// let d = ChunkDescriptor { state, ..bytemuck::Zeroable::zeroed() };
    /// let block = SIZE_CLASSES[d.class()];
    /// assert_eq!((block, CHUNK / block), (8192, 2)); // two 8 KiB blocks per chunk
    /// ```
    #[must_use]
    pub const fn class(&self) -> usize {
        (self.state >> 8) as u8 as usize
    }

    /// The run length in chunks (run heads).
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_typed::layout::{CHUNK, ChunkDescriptor};
    ///
    /// let state = ChunkDescriptor::run_state(5);
    /// let head = ChunkDescriptor { state, ..bytemuck::Zeroable::zeroed() };
    /// // The allocation's size in bytes:
    /// assert_eq!(head.run_chunks() as usize * CHUNK, 80 * 1024);
    /// ```
    #[must_use]
    pub const fn run_chunks(&self) -> u32 {
        (self.state >> 32) as u32
    }
}

/// Geometry of a pool, derived from its superblock and size.
///
/// # Examples
///
/// Where a pool's allocator put an object:
///
/// ```
/// use pmem_typed::inspect::inspect;
/// use pmem_typed::layout::Geometry;
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
    /// use pmem_typed::layout::{Geometry, LINE};
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
    /// use pmem_typed::layout::{CHUNK, Geometry};
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
    /// use pmem_typed::layout::{Geometry};
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
    /// use pmem_typed::layout::{Geometry};
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
    /// use pmem_typed::layout::{Geometry};
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
    /// use pmem_typed::layout::{Geometry, LINE};
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
    /// use pmem_typed::layout::{CHUNK, Geometry};
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
    /// use pmem_typed::layout::{Geometry};
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
/// use pmem_typed::layout::{CHUNK, zone_chunks_for};
///
/// assert_eq!(zone_chunks_for(1 << 20), 64); // the minimum: a 4 KiB chunk table
/// assert_eq!(zone_chunks_for(3 << 20), 256); // 192 chunks, rounded up
/// // The maximum: 64 MiB zones, so no allocation is larger.
/// assert_eq!(zone_chunks_for(1 << 30) * CHUNK, 64 << 20);
/// ```
#[must_use]
pub fn zone_chunks_for(size: usize) -> usize {
    (size / CHUNK).next_power_of_two().clamp(64, 4096)
}

/// Bytes of a string field: `text` NUL-padded (the caller checked its length).
///
/// # Examples
///
/// ```
/// use pmem_typed::layout::{MAX_LAYOUT_NAME, padded};
///
/// let name: [u8; MAX_LAYOUT_NAME + 1] = padded("bank");
/// assert_eq!(&name[..5], b"bank\0");
/// assert!(name[4..].iter().all(|&b| b == 0));
/// // Longer text is cut, keeping the terminating NUL.
/// assert_eq!(padded::<4>("bank"), *b"ban\0");
/// ```
#[must_use]
pub fn padded<const N: usize>(text: &str) -> [u8; N] {
    let mut out = [0u8; N];
    let n = text.len().min(N - 1);
    out[..n].copy_from_slice(&text.as_bytes()[..n]);
    out
}

/// The text of a NUL-padded string field (lossy for invalid UTF-8).
///
/// # Examples
///
/// ```
/// use pmem_typed::layout::{padded, unpadded};
///
/// assert_eq!(unpadded(&padded::<64>("inventory")), "inventory");
/// assert_eq!(unpadded(b"no\xffnul"), "no\u{fffd}nul"); // invalid UTF-8 is replaced
/// ```
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
