//! Looking inside a pool without opening it for use: what `pmempool info`
//! and `pmempool check` do. Nothing is written, no recovery runs, and the
//! root type does not need to be known.

use std::path::Path;

use crate::error::Result;
use crate::format::PAGE;
use crate::format::REDO_SLOTS;
use crate::format::heap::Geometry;
use crate::format::redo::RedoRecord;
use crate::heap::{Heap, HeapStats};
use crate::medium::{Medium, OpenedFile};
use crate::pool::{PoolInfo, read_header};
use crate::redo::{RecordLine, read_line, recover::decode_valid, value_intact};

/// The state of a redo record slot.
///
/// # Examples
///
/// A crash while a record is being written leaves bytes that fail its CRC:
///
/// ```
/// use std::os::unix::fs::FileExt;
///
/// use pmem_typed::inspect::{RedoState, inspect};
/// use pmem_typed::format::REDO_OFFSET;
/// use pmem_typed::{Persist, Pool};
///
/// #[derive(Clone, Copy, Persist)]
/// #[repr(C)]
/// struct Root { n: u64 }
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("pool");
/// drop(Pool::<Root>::create(&path, "redo", 1 << 20)?);
/// assert_eq!(inspect(&path)?.redo, [RedoState::Empty, RedoState::Empty]);
///
/// // Half of a record in slot A, as a torn write leaves it.
/// let file = std::fs::OpenOptions::new().write(true).open(&path)?;
/// file.write_all_at(&[0xab; 32], REDO_OFFSET as u64)?;
/// drop(file);
/// assert_eq!(inspect(&path)?.redo[0], RedoState::Torn);
///
/// // Opening the pool ignores it and clears the slot.
/// drop(Pool::<Root>::open(&path, "redo")?);
/// assert_eq!(inspect(&path)?.redo[0], RedoState::Empty);
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RedoState {
    /// Empty: no operation in flight.
    Empty,
    /// A whole record: an allocation or free that the next open will finish.
    Pending(RedoRecord),
    /// A whole allocation record whose block no longer holds the value it
    /// recorded (`value_crc`): the value never became durable, or the block
    /// was written after the allocation finished. The next open clears it
    /// without redoing it.
    Stale(RedoRecord),
    /// A whole record that names no possible operation on this pool (its
    /// block or destination is out of place): the next open refuses the
    /// pool. [`Inspection::problems`] says what is wrong with it.
    Invalid(RedoRecord),
    /// A whole record (its CRC matches) whose kind is none of
    /// [`RedoKind`](crate::format::redo::RedoKind)'s: the next open refuses
    /// the pool. The line's bytes, as found.
    UnknownKind([u8; crate::format::LINE]),
    /// Bytes that do not add up to a record (a write torn by a crash): the
    /// next open ignores them.
    Torn,
}

/// What a pool holds, read without changing it.
///
/// # Examples
///
/// ```
/// use pmem_typed::inspect::inspect;
/// use pmem_typed::{PPtr, Persist, Pool};
///
/// #[derive(Clone, Copy, Persist)]
/// #[repr(C)]
/// struct Root { head: PPtr<Node> }
///
/// #[derive(Clone, Copy, Persist)]
/// #[repr(C)]
/// struct Node { value: u64, next: PPtr<Node> }
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("pool");
/// let node = {
///     let mut pool = Pool::<Root>::create(&path, "list", 1 << 20)?;
///     pool.alloc(pool.root().fields().head, Node { value: 1, next: PPtr::null() })?
/// }; // closed: a pool that is open cannot be inspected
///
/// // No need to know the root type: the header records it.
/// let report = inspect(&path)?;
/// assert_eq!((report.info.layout.as_str(), report.info.root_name.as_str()), ("list", "Root"));
/// assert_eq!(report.info.root_fields[0], ("head".to_string(), 0, 8));
/// assert_eq!(report.file_size, 1 << 20);
/// assert_eq!(report.blocks, Some(vec![(node.offset(), 64)]));
/// assert_eq!(report.stats.map(|s| s.allocated_bytes), Some(64));
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Inspection {
    /// The header.
    pub info: PoolInfo,
    /// The size of the file (at least `info.size`).
    pub file_size: u64,
    /// Allocation statistics, if the chunk tables are consistent.
    pub stats: Option<HeapStats>,
    /// Allocated blocks as (offset, size), if the chunk tables are consistent.
    pub blocks: Option<Vec<(u64, u64)>>,
    /// The redo record slots.
    pub redo: Vec<RedoState>,
    /// Inconsistencies found in the allocator's metadata.
    pub problems: Vec<String>,
}

impl Inspection {
    /// Whether header and allocator metadata are consistent. A pending redo
    /// record is not a problem: the next open finishes it.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::os::unix::fs::FileExt;
    ///
    /// use pmem_typed::inspect::inspect;
    /// use pmem_typed::{Error, Persist, Pool};
    ///
    /// #[derive(Clone, Copy, Persist)]
    /// #[repr(C)]
    /// struct Root { n: u64 }
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// let path = dir.path().join("pool");
    /// drop(Pool::<Root>::create(&path, "damaged", 1 << 20)?);
    /// let report = inspect(&path)?;
    /// assert!(report.is_consistent());
    ///
    /// // Damage the first chunk descriptor's reserved words, which must be zero.
    /// let descriptor = report.info.heap_offset;
    /// let file = std::fs::OpenOptions::new().write(true).open(&path)?;
    /// file.write_all_at(&[1], descriptor + 40)?;
    /// drop(file);
    /// let report = inspect(&path)?;
    /// assert!(!report.is_consistent());
    /// assert_eq!(
    ///     report.problems[0],
    ///     "corrupt pool: the descriptor of chunk 0 of zone 0 at 0x2000: reserved is 0x1, expected zero"
    /// );
    /// // Opening refuses the pool for the same reason.
    /// assert!(matches!(
    ///     Pool::<Root>::open(&path, "damaged"),
    ///     Err(Error::Corrupt { field: "reserved", found: 1, .. })
    /// ));
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn is_consistent(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Inspects the pool file at `path`.
///
/// # Errors
/// What opening it would report about the header:
/// [`Error::NotAPool`](crate::Error::NotAPool),
/// [`Error::ChecksumMismatch`](crate::Error::ChecksumMismatch),
/// [`Error::Truncated`](crate::Error::Truncated),
/// [`Error::AlreadyOpen`](crate::Error::AlreadyOpen) (the file is locked
/// while inspected), [`Error::NotAFile`](crate::Error::NotAFile) (at once,
/// for a directory, FIFO, socket or device), [`Error::Io`](crate::Error::Io), ...
///
/// # Examples
///
/// ```
/// # use pmem_typed::{Persist, Pool};
/// # #[derive(Clone, Copy, Persist)] #[repr(C)] struct Root { n: u64 }
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("pool");
/// drop(Pool::<Root>::create(&path, "demo", 1 << 20)?);
/// let report = pmem_typed::inspect::inspect(&path)?;
/// assert_eq!(report.info.layout, "demo");
/// assert!(report.is_consistent());
/// # Ok(()) }
/// ```
pub fn inspect(path: impl AsRef<Path>) -> Result<Inspection> {
    let file = OpenedFile::open(path.as_ref())?;
    crate::pool::precheck_file(&file)?;
    let medium = file.map(PAGE)?;
    inspect_medium(&medium, medium.len() as u64)
}

/// Inspects a pool on any medium.
///
/// # Errors
/// As for [`inspect`].
///
/// # Examples
///
/// [`inspect`] refuses a pool file that is open; a copy of its bytes in
/// memory (on the crash simulator's `SimMedium`, feature `sim`) can still be
/// inspected:
///
/// ```
/// use pmem_typed::inspect::{RedoState, inspect, inspect_medium};
/// use pmem_typed::sim::SimMedium;
/// use pmem_typed::{Error, PSlice, Persist, Pool};
///
/// #[derive(Clone, Copy, Persist)]
/// #[repr(C)]
/// struct Root { samples: PSlice<u32> }
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("pool");
/// let mut pool = Pool::<Root>::create(&path, "samples", 1 << 20)?;
/// pool.alloc_slice(pool.root().fields().samples, &[1, 2, 3])?;
/// assert!(matches!(inspect(&path), Err(Error::AlreadyOpen { .. })));
///
/// let image = std::fs::read(&path)?;
/// let report = inspect_medium(&SimMedium::from_image(&image, image.len()), image.len() as u64)?;
/// assert_eq!(report.info.size, 1 << 20);
/// assert_eq!(report.blocks.map(|b| b.len()), Some(1));
/// assert!(report.redo.iter().all(|r| *r == RedoState::Empty), "no operation in flight");
/// # Ok(()) }
/// ```
pub fn inspect_medium<M: Medium>(medium: &M, file_size: u64) -> Result<Inspection> {
    let (info, _) = read_header(medium)?;
    let geometry = Geometry {
        heap_offset: info.heap_offset as usize,
        zone_chunks: info.zone_chunks as usize,
        pool_size: info.size as usize,
    };
    let mut problems = Vec::new();
    let redo = (0..REDO_SLOTS)
        .map(|slot| {
            // SAFETY: the records lie within the first page, which read_header
            // checked; `&M` excludes writers.
            match RecordLine::of(unsafe { read_line(medium, slot) }) {
                RecordLine::Empty => RedoState::Empty,
                // Recovery at open validates a whole record before replaying
                // it, and refuses to open the pool if it does not pass.
                RecordLine::Whole(line) => match decode_valid(medium, &geometry, slot, &line) {
                    Ok(record) if !value_intact(medium, &record) => RedoState::Stale(record),
                    Ok(record) => RedoState::Pending(record),
                    Err(e) => {
                        problems.push(e.to_string());
                        match RedoRecord::decode(&line) {
                            Some(record) => RedoState::Invalid(record),
                            None => RedoState::UnknownKind(line),
                        }
                    }
                },
                RecordLine::Torn => RedoState::Torn,
            }
        })
        .collect();
    let (stats, blocks) = match Heap::load(medium, geometry) {
        Ok(heap) => (Some(heap.stats()), Some(heap.allocated_blocks(medium))),
        Err(e) => {
            problems.push(e.to_string());
            (None, None)
        }
    };
    Ok(Inspection {
        info,
        file_size,
        stats,
        blocks,
        redo,
        problems,
    })
}
