//! What the heap holds, counted: [`HeapStats`] and its parts.

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
/// use pmem_typed::{PPtr, PSlice, Persist, Pool};
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
/// let small = &stats.classes[0];
/// assert_eq!((small.block_size, small.chunks, small.used_blocks, small.total_blocks), (64, 1, 1, 256));
/// assert_eq!((stats.runs.count, stats.runs.chunks), (1, 3));
/// assert_eq!(stats.free_chunks, 63 - 1 - 3);
/// assert_eq!(stats.allocated_bytes, 64 + 3 * 16 * 1024);
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
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
#[non_exhaustive]
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
/// use pmem_typed::{PSlice, Persist, Pool};
///
/// #[derive(Clone, Copy, Persist)]
/// #[repr(C)]
/// struct Root { image: PSlice<u8> }
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let dir = tempfile::tempdir()?;
/// let mut pool = Pool::<Root>::create(dir.path().join("pool"), "runs", 1 << 20)?;
/// pool.alloc_slice_zeroed(pool.root().fields().image, 100_000)?; // 7 chunks of 16 KiB
/// let runs = pool.stats().runs;
/// assert_eq!((runs.count, runs.chunks), (1, 7));
/// # Ok(()) }
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RunStats {
    /// Large allocations.
    pub count: u64,
    /// Chunks they take.
    pub chunks: u64,
}
