//! [`Error`]: everything that can go wrong with a pool, saying what was
//! expected and what was found.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// Why a pool operation failed.
///
/// Every variant's message says what was expected and what was found.
///
/// # Examples
///
/// Opening a pool under another layout name is refused before recovery
/// writes anything:
///
/// ```
/// use pmem_typed::{Error, Persist, Pool};
///
/// #[derive(Clone, Copy, Persist)]
/// #[repr(C)]
/// struct Root { n: u64 }
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("pool");
/// drop(Pool::<Root>::create(&path, "inventory", 1 << 20)?);
///
/// let err = Pool::<Root>::open(&path, "ledger").expect_err("another layout");
/// assert!(matches!(&err, Error::WrongLayout { found, .. } if found == "inventory"));
/// assert_eq!(err.to_string(), r#"wrong layout: expected "ledger", found "inventory""#);
/// # Ok(()) }
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// A system call failed.
    Io {
        /// What was being done, e.g. "open /pools/a".
        context: String,
        /// The error.
        source: io::Error,
    },
    /// The file does not start with the pool magic: it is not a pool, or its
    /// creation never finished.
    NotAPool {
        /// The first 8 bytes found.
        found: [u8; 8],
    },
    /// The pool was written by another version of the format.
    UnsupportedVersion {
        /// The version this library reads.
        expected: u32,
        /// The version in the file.
        found: u32,
    },
    /// The pool was created for another layout.
    WrongLayout {
        /// The layout name asked for.
        expected: String,
        /// The layout name in the pool.
        found: String,
    },
    /// The root type's layout differs from the one the pool was created with.
    RootTypeMismatch {
        /// Fingerprint of the root type in the program.
        expected: u64,
        /// Fingerprint recorded in the pool.
        found: u64,
        /// What differs, field by field.
        differences: Vec<FieldDifference>,
    },
    /// Stored and computed checksums differ.
    ChecksumMismatch {
        /// Which structure, e.g. "superblock".
        region: &'static str,
        /// The checksum of the bytes found.
        expected: u32,
        /// The checksum stored with them.
        found: u32,
    },
    /// The file is shorter than the pool needs.
    Truncated {
        /// Bytes needed.
        expected: u64,
        /// Bytes in the file.
        found: u64,
    },
    /// Another process (or another handle in this one) has the pool open.
    ///
    /// The lock is the one pmem-sys's [`Mapping`](pmem_sys::Mapping) of the
    /// file holds: an advisory `flock` on its open file description, which
    /// refuses any other `Mapping` of the file, whatever path it is opened
    /// by. A child forked while the pool is open shares that description
    /// (and the mapping) until it execs or exits, so the lock outlives the
    /// pool's drop for that long: a multi-threaded program that spawns
    /// processes while closing and reopening a pool can briefly see this
    /// error.
    AlreadyOpen {
        /// The pool file.
        path: PathBuf,
    },
    /// The path names neither a regular file nor a Device DAX: a directory,
    /// a FIFO, a socket, another device. It is refused before anything is
    /// read from it (a FIFO is not even opened), and left as it was.
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_typed::{Error, FileKind, Persist, Pool};
    ///
    /// #[derive(Clone, Copy, Persist)]
    /// #[repr(C)]
    /// struct Root { n: u64 }
    ///
    /// let err = Pool::<Root>::open("/dev/zero", "demo").unwrap_err();
    /// assert!(matches!(err, Error::NotAFile { found: FileKind::CharDevice, .. }));
    /// assert_eq!(
    ///     err.to_string(),
    ///     "/dev/zero: expected a regular file or a Device DAX, found a character device"
    /// );
    /// ```
    NotAFile {
        /// The path.
        path: PathBuf,
        /// What it names.
        found: FileKind,
    },
    /// On-media metadata is inconsistent: which structure, where, which
    /// field, what it holds and what the format requires there.
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_typed::format::heap::Geometry;
    /// use pmem_typed::sim::SimMedium;
    /// use pmem_typed::{Error, Expected, Persist, Pool, Structure};
    ///
    /// #[derive(Clone, Copy, Persist)]
    /// #[repr(C)]
    /// struct Root { n: u64 }
    ///
    /// let mut medium = SimMedium::new(1 << 20, 1 << 20);
    /// let heap_offset = {
    ///     let pool = Pool::<Root, _>::create_on(&mut medium, "damaged", Root { n: 0 }).unwrap();
    ///     pool.info().heap_offset
    /// };
    /// medium.store(heap_offset as usize, &[9]); // chunk 0's kind byte: no such kind
    /// match Pool::<Root, _>::open_on(&mut medium, "damaged") {
    ///     Err(Error::Corrupt { structure, field, found, expected, .. }) => {
    ///         assert_eq!(structure, Structure::ChunkDescriptor { zone: 0, chunk: 0 });
    ///         assert_eq!((field, found, expected), ("state", 9, Expected::KnownKind));
    ///     }
    ///     other => panic!("{other:?}"),
    /// }
    /// ```
    Corrupt {
        /// The structure holding the damage.
        structure: Structure,
        /// The structure's offset in the pool.
        offset: u64,
        /// The field found wrong.
        field: &'static str,
        /// What the field holds (its first 8 bytes, little-endian, for a
        /// wider field).
        found: u64,
        /// What the format requires there.
        expected: Expected,
    },
    /// A persistent pointer does not designate a valid `T` in this pool.
    BadPointer {
        /// The pointer's offset.
        offset: u64,
        /// Bytes it should designate.
        size: u64,
        /// Why it is invalid.
        reason: PointerProblem,
    },
    /// Two pointers given for simultaneous mutable access overlap.
    Overlap {
        /// Offsets of the two objects.
        offsets: (u64, u64),
    },
    /// The allocator has no room for the request.
    OutOfSpace {
        /// Bytes requested.
        requested: u64,
        /// The largest allocation possible in an empty zone.
        largest: u64,
    },
    /// `free` was called on a pointer that is not an allocated block.
    NotAllocated {
        /// The pointer's offset.
        offset: u64,
    },
    /// A batch was asked to lend out an object that is not in a block it
    /// reserved: objects already published change through
    /// [`Batch::set`](crate::Batch::set).
    NotReserved {
        /// The object's offset.
        offset: u64,
    },
    /// A batch was asked to store into a block it frees, to store a
    /// pointer to such a block, or to free a block it stores into: after
    /// publishing, the store would write or name freed memory.
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_typed::sim::SimMedium;
    /// use pmem_typed::{Error, PPtr, Persist, Pool};
    ///
    /// #[derive(Clone, Copy, Persist)]
    /// #[repr(C)]
    /// struct Root { head: PPtr<u64> }
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let mut pool = Pool::create_on(SimMedium::new(1 << 20, 1 << 20), "freed", Root { head: PPtr::null() })?;
    /// let head = pool.root().fields().head;
    /// let old = pool.alloc(head, 7)?;
    /// let mut batch = pool.batch();
    /// batch.free(old)?;
    /// assert!(matches!(batch.set(head, old), Err(Error::FreedInBatch { .. })));
    /// batch.set(head, PPtr::null())?;
    /// batch.publish();
    /// # Ok(()) }
    /// ```
    FreedInBatch {
        /// The offset stored into or pointed to.
        offset: u64,
    },
    /// Code built on a pool found its own data inconsistent (a cycle in a
    /// list, a count that disagrees with its table): the library never
    /// returns this; it lets such code report its findings in this crate's
    /// [`Result`]. Made with [`Error::inconsistent`].
    Inconsistent {
        /// What is inconsistent, with the values found.
        what: String,
    },
    /// An argument is out of its range: which, its value, and what it must
    /// be.
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_typed::sim::SimMedium;
    /// use pmem_typed::{Error, Expected, Persist, Pool};
    ///
    /// #[derive(Clone, Copy, Persist)]
    /// #[repr(C)]
    /// struct Root { n: u64 }
    ///
    /// let name = "x".repeat(100);
    /// let err = Pool::<Root, _>::create_on(SimMedium::new(1 << 20, 1 << 20), &name, Root { n: 0 })
    ///     .unwrap_err();
    /// assert!(matches!(
    ///     err,
    ///     Error::InvalidArgument { argument: "layout name", found: 100, expected: Expected::AtMost(63) }
    /// ));
    /// assert_eq!(err.to_string(), "invalid layout name: 100, expected at most 63");
    /// ```
    InvalidArgument {
        /// The argument, as its documentation names it.
        argument: &'static str,
        /// Its value (a length for a string or a slice).
        found: u64,
        /// What it must be.
        expected: Expected,
    },
}

/// What a path names when it is not a pool file: the `found` of
/// [`Error::NotAFile`].
///
/// # Examples
///
/// ```
/// use pmem_typed::inspect::inspect;
/// use pmem_typed::{Error, FileKind};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let dir = tempfile::tempdir()?;
/// let err = inspect(dir.path()).unwrap_err();
/// let Error::NotAFile { found, .. } = err else { panic!("{err}") };
/// assert_eq!(found, FileKind::Directory);
/// assert_eq!(found.to_string(), "a directory");
/// # Ok(()) }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FileKind {
    /// A directory.
    Directory,
    /// A FIFO (named pipe).
    Fifo,
    /// A Unix domain socket.
    Socket,
    /// A character device that is not a Device DAX (`/dev/zero`,
    /// `/dev/null`, a terminal).
    CharDevice,
    /// A block device (a disk or partition; a file system on it is where
    /// pool files go).
    BlockDevice,
    /// A file of a type none of the above names (Linux has none).
    Other,
}

impl fmt::Display for FileKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Directory => "a directory",
            Self::Fifo => "a FIFO",
            Self::Socket => "a socket",
            Self::CharDevice => "a character device",
            Self::BlockDevice => "a block device",
            Self::Other => "a file of another type",
        })
    }
}

/// Why a persistent pointer cannot be resolved.
///
/// It is the `reason` of [`Error::BadPointer`]: pointers read from media are
/// checked when resolved, so a corrupted or unset one is an error, not
/// undefined behaviour.
///
/// # Examples
///
/// ```
/// use pmem_typed::{Error, PPtr, Persist, PointerProblem, Pool};
///
/// #[derive(Clone, Copy, Persist)]
/// #[repr(C)]
/// struct Root { count: PPtr<u64> }
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let dir = tempfile::tempdir()?;
/// let pool = Pool::<Root>::create(dir.path().join("pool"), "ptrs", 1 << 20)?;
///
/// // A fresh root's pointers are null until something is published there.
/// let count = pool.get(pool.root())?.count;
/// assert!(matches!(
///     pool.get(count),
///     Err(Error::BadPointer { reason: PointerProblem::Null, .. })
/// ));
///
/// // An offset that is not a multiple of the target's alignment.
/// let err = pool.get(PPtr::<u64>::from_offset(4097)).expect_err("misaligned");
/// let Error::BadPointer { reason, .. } = &err else { panic!("{err}") };
/// assert_eq!(*reason, PointerProblem::Misaligned { align: 8 });
/// assert_eq!(
///     err.to_string(),
///     "bad persistent pointer 0x1001 to 8 bytes: it is not 8-byte aligned"
/// );
///
/// // The heap begins with the allocator's chunk table (after the root's
/// // page): no write through a pointer reaches it, so none can damage the
/// // allocator. (A read there is harmless: it sees plain bytes.)
/// let table = pool.info().heap_offset;
/// let mut pool = pool;
/// let err = pool.set(PPtr::<u64>::from_offset(table + 64), 1).expect_err("metadata");
/// let Error::BadPointer { reason, .. } = &err else { panic!("{err}") };
/// assert_eq!(*reason, PointerProblem::InAllocatorMetadata { table });
/// # Ok(()) }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PointerProblem {
    /// It is null.
    Null,
    /// It points into the pool's header, the first `header_size` bytes,
    /// which no typed value occupies.
    InHeader {
        /// Bytes of header before the root.
        header_size: u64,
    },
    /// It extends past the end of the pool (of `pool_size` bytes).
    OutOfBounds {
        /// The pool's size.
        pool_size: u64,
    },
    /// It is not a multiple of the type's alignment.
    Misaligned {
        /// The alignment required.
        align: u64,
    },
    /// A write through it would overlap the allocator's metadata: the chunk
    /// table at the start of a zone of the heap, which only the allocator
    /// writes.
    InAllocatorMetadata {
        /// Offset of the chunk table.
        table: u64,
    },
}

/// One way the root type differs from the pool's record of it.
///
/// [`Error::RootTypeMismatch`] lists them when a pool is opened with a root
/// type whose layout changed since the pool was created.
///
/// # Examples
///
/// ```
/// use pmem_typed::{Error, FieldDifference, Persist, Pool};
///
/// #[derive(Clone, Copy, Persist)]
/// #[repr(C)]
/// struct RootV1 { hits: u64 }
///
/// // A later version of the program added a field.
/// #[derive(Clone, Copy, Persist)]
/// #[repr(C)]
/// struct RootV2 { hits: u64, misses: u64 }
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("pool");
/// drop(Pool::<RootV1>::create(&path, "cache", 1 << 20)?);
///
/// let err = Pool::<RootV2>::open(&path, "cache").expect_err("the root type changed");
/// let Error::RootTypeMismatch { differences, .. } = &err else { panic!("{err}") };
/// assert_eq!(*differences, [
///     FieldDifference::Size { expected: 16, found: 8 },
///     FieldDifference::Added { name: "misses".into(), offset: 8, size: 8 },
/// ]);
/// assert_eq!(
///     differences[1].to_string(),
///     "field `misses` (8 bytes at 8) is in the type but not in the pool"
/// );
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FieldDifference {
    /// The whole type's size changed.
    Size {
        /// Size in the program.
        expected: u64,
        /// Size recorded in the pool.
        found: u64,
    },
    /// A field the pool has is not in the type.
    Removed {
        /// Name in the pool.
        name: String,
        /// Offset in the pool.
        offset: u64,
        /// Size in the pool.
        size: u64,
    },
    /// A field of the type is not in the pool.
    Added {
        /// Name in the program.
        name: String,
        /// Offset in the program.
        offset: u64,
        /// Size in the program.
        size: u64,
    },
    /// A field moved or changed size.
    Changed {
        /// The field's name.
        name: String,
        /// (offset, size) in the program.
        expected: (u64, u64),
        /// (offset, size) in the pool.
        found: (u64, u64),
    },
    /// The pool records only some of its fields and the recorded ones match:
    /// the difference is in a field it did not record.
    Unrecorded,
}

impl fmt::Display for FieldDifference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Size { expected, found } => {
                write!(f, "size is {expected} bytes, the pool has {found}")
            }
            Self::Removed { name, offset, size } => {
                write!(
                    f,
                    "field `{name}` ({size} bytes at {offset}) is in the pool but not in the type"
                )
            }
            Self::Added { name, offset, size } => {
                write!(
                    f,
                    "field `{name}` ({size} bytes at {offset}) is in the type but not in the pool"
                )
            }
            Self::Changed {
                name,
                expected,
                found,
            } => write!(
                f,
                "field `{name}` is {} bytes at {} in the type, {} bytes at {} in the pool",
                expected.1, expected.0, found.1, found.0
            ),
            Self::Unrecorded => f.write_str("a field beyond those the pool records differs"),
        }
    }
}

impl fmt::Display for PointerProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Null => f.write_str("it is null"),
            Self::InHeader { header_size } => {
                write!(f, "it points into the pool's {header_size}-byte header")
            }
            Self::OutOfBounds { pool_size } => write!(f, "the pool has only {pool_size} bytes"),
            Self::Misaligned { align } => write!(f, "it is not {align}-byte aligned"),
            Self::InAllocatorMetadata { table } => {
                write!(f, "it overlaps the allocator's chunk table at {table:#x}")
            }
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io { context, source } => write!(f, "{context}: {source}"),
            Self::NotAPool { found } => {
                write!(
                    f,
                    "not a pool: expected magic {:?}, found {:?}",
                    Bytes(&crate::format::MAGIC),
                    Bytes(found)
                )
            }
            Self::UnsupportedVersion { expected, found } => {
                write!(
                    f,
                    "unsupported pool format version: expected {expected}, found {found}"
                )
            }
            Self::WrongLayout { expected, found } => {
                write!(f, "wrong layout: expected {expected:?}, found {found:?}")
            }
            Self::RootTypeMismatch {
                expected,
                found,
                differences,
            } => {
                write!(
                    f,
                    "root type mismatch: expected fingerprint {expected:#018x}, found {found:#018x}"
                )?;
                for d in differences {
                    write!(f, "; {d}")?;
                }
                Ok(())
            }
            Self::ChecksumMismatch {
                region,
                expected,
                found,
            } => {
                write!(
                    f,
                    "{region} checksum mismatch: contents sum to {expected:#010x}, stored {found:#010x}"
                )
            }
            Self::Truncated { expected, found } => {
                write!(
                    f,
                    "pool truncated: expected at least {expected} bytes, found {found}"
                )
            }
            Self::AlreadyOpen { path } => write!(f, "{} is already open", path.display()),
            Self::NotAFile { path, found } => write!(
                f,
                "{}: expected a regular file or a Device DAX, found {found}",
                path.display()
            ),
            Self::Corrupt {
                structure,
                offset,
                field,
                found,
                expected,
            } => write!(
                f,
                "corrupt pool: {structure} at {offset:#x}: {field} is {found:#x}, expected {expected}"
            ),
            Self::BadPointer {
                offset,
                size,
                reason,
            } => {
                write!(
                    f,
                    "bad persistent pointer {offset:#x} to {size} bytes: {reason}"
                )
            }
            Self::Overlap { offsets } => {
                write!(
                    f,
                    "objects at {:#x} and {:#x} overlap: cannot borrow both mutably",
                    offsets.0, offsets.1
                )
            }
            Self::OutOfSpace { requested, largest } => {
                write!(
                    f,
                    "out of space: requested {requested} bytes, at most {largest} fit"
                )
            }
            Self::NotAllocated { offset } => write!(f, "{offset:#x} is not an allocated block"),
            Self::NotReserved { offset } => {
                write!(f, "{offset:#x} is not in a block this batch reserved")
            }
            Self::FreedInBatch { offset } => write!(
                f,
                "{offset:#x} is in a block this batch frees: it cannot be stored into or pointed to"
            ),
            Self::Inconsistent { what } => write!(f, "inconsistent data: {what}"),
            Self::InvalidArgument {
                argument,
                found,
                expected,
            } => write!(f, "invalid {argument}: {found}, expected {expected}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl Error {
    /// An [`Error::Io`] with its context.
    pub(crate) fn io(context: impl fmt::Display, source: io::Error) -> Self {
        Self::Io {
            context: context.to_string(),
            source,
        }
    }

    /// An [`Error::Inconsistent`]: for code built on pools to report that
    /// its own structures do not hold together.
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_typed::Error;
    ///
    /// let e = Error::inconsistent(format_args!("the list from {:#x} has a cycle", 4096));
    /// assert!(matches!(e, Error::Inconsistent { .. }));
    /// assert_eq!(e.to_string(), "inconsistent data: the list from 0x1000 has a cycle");
    /// ```
    pub fn inconsistent(what: impl fmt::Display) -> Self {
        Self::Inconsistent {
            what: what.to_string(),
        }
    }

    /// An [`Error::Corrupt`].
    pub(crate) const fn corrupt(
        structure: Structure,
        offset: u64,
        field: &'static str,
        found: u64,
        expected: Expected,
    ) -> Self {
        Self::Corrupt {
            structure,
            offset,
            field,
            found,
            expected,
        }
    }
}

/// The structure an [`Error::Corrupt`] is in.
///
/// # Examples
///
/// ```
/// use pmem_typed::Structure;
///
/// let at = Structure::ChunkDescriptor { zone: 0, chunk: 3 };
/// assert_eq!(at.to_string(), "the descriptor of chunk 3 of zone 0");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Structure {
    /// The superblock, at offset 0.
    Superblock,
    /// The dynamic header slot in use.
    DynamicSlot,
    /// A redo record.
    RedoRecord {
        /// Its slot, 0 or 1.
        slot: usize,
    },
    /// The batch log, after the redo records.
    BatchLog,
    /// A chunk's descriptor in its zone's chunk table.
    ChunkDescriptor {
        /// The zone.
        zone: usize,
        /// The chunk's index in the zone.
        chunk: usize,
    },
}

impl fmt::Display for Structure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Superblock => f.write_str("the superblock"),
            Self::DynamicSlot => f.write_str("the dynamic header slot"),
            Self::RedoRecord { slot } => write!(f, "redo record {}", ["A", "B"][slot % 2]),
            Self::BatchLog => f.write_str("the batch log"),
            Self::ChunkDescriptor { zone, chunk } => {
                write!(f, "the descriptor of chunk {chunk} of zone {zone}")
            }
        }
    }
}

/// What the format requires of the field an [`Error::Corrupt`] names, or
/// what an [`Error::InvalidArgument`]'s argument must be.
///
/// # Examples
///
/// ```
/// use pmem_typed::Expected;
///
/// assert_eq!(Expected::Value(4096).to_string(), "4096");
/// assert_eq!(Expected::RunWithinZone { chunks: 63 }.to_string(), "a run of 1 to 63 chunks in its zone");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Expected {
    /// Exactly this value.
    Value(u64),
    /// At most this value.
    AtMost(u64),
    /// At least this value.
    AtLeast(u64),
    /// Less than this value.
    Below(u64),
    /// A power of two in `min..=max`.
    PowerOfTwoIn {
        /// The smallest allowed.
        min: u64,
        /// The largest allowed.
        max: u64,
    },
    /// Zero: reserved bytes, and everything in a free chunk.
    Zero,
    /// A kind the format defines (chunk or redo record).
    KnownKind,
    /// A size-class index below this.
    ClassBelow(u64),
    /// No allocated bit beyond the chunk's blocks.
    BitsWithin {
        /// Blocks the chunk's class gives it.
        blocks: u64,
    },
    /// A run head's length: 1 to this many chunks, within its zone.
    RunWithinZone {
        /// Chunks left in the zone from the head.
        chunks: u64,
    },
    /// A run tail's state, for a chunk inside a run.
    RunTail,
    /// A run head somewhere before a run tail.
    RunHeadBefore,
    /// An aligned pointer (8 or 16 bytes) inside the pool, past the header.
    PointerInPool,
    /// Somewhere outside the chunk tables.
    OutsideChunkTables,
    /// A block in the heap's chunks.
    InHeap,
    /// A block of its chunk's size class, at a block boundary.
    BlockOfItsChunk,
    /// A run of whole chunks that starts a chunk and fits its zone.
    WholeChunks,
    /// Somewhere outside the block itself (a redo record's destination, or
    /// the pointer an allocation or free publishes into).
    OutsideItsBlock,
    /// A sequence number that can still be advanced.
    BelowMax,
    /// Somewhere a batch's replay does not read: outside the blocks it
    /// allocates and its log's extent.
    OutsideTheLog,
    /// At most one overflow entry, the last in the first page.
    OneOverflow,
}

impl fmt::Display for Expected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Value(v) => write!(f, "{v}"),
            Self::AtMost(v) => write!(f, "at most {v}"),
            Self::AtLeast(v) => write!(f, "at least {v}"),
            Self::Below(v) => write!(f, "below {v}"),
            Self::PowerOfTwoIn { min, max } => write!(f, "a power of two from {min} to {max}"),
            Self::Zero => f.write_str("zero"),
            Self::KnownKind => f.write_str("a known kind"),
            Self::ClassBelow(n) => write!(f, "a size class below {n}"),
            Self::BitsWithin { blocks } => write!(f, "no bit set beyond its {blocks} blocks"),
            Self::RunWithinZone { chunks } => {
                write!(f, "a run of 1 to {chunks} chunks in its zone")
            }
            Self::RunTail => f.write_str("a run tail"),
            Self::RunHeadBefore => f.write_str("a run head before it"),
            Self::PointerInPool => {
                f.write_str("an aligned pointer inside the pool, past the header")
            }
            Self::OutsideChunkTables => f.write_str("a place outside the chunk tables"),
            Self::InHeap => f.write_str("a block in the heap"),
            Self::BlockOfItsChunk => f.write_str("a block of its chunk's size class"),
            Self::WholeChunks => f.write_str("a run of whole chunks that fits its zone"),
            Self::OutsideItsBlock => f.write_str("a place outside its block"),
            Self::BelowMax => f.write_str("a number below u64::MAX"),
            Self::OutsideTheLog => {
                f.write_str("somewhere outside the batch's own blocks and its log's extent")
            }
            Self::OneOverflow => f.write_str("one overflow entry, the last in the first page"),
        }
    }
}

/// Bytes shown as a string where printable.
struct Bytes<'a>(&'a [u8]);

impl fmt::Debug for Bytes<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("b\"")?;
        for &b in self.0 {
            write!(f, "{}", core::ascii::escape_default(b))?;
        }
        f.write_str("\"")
    }
}

/// `Result` with [`Error`].
///
/// # Examples
///
/// ```
/// use pmem_typed::{PPtr, Persist, Pool, Result};
///
/// #[derive(Clone, Copy, Persist)]
/// #[repr(C)]
/// struct Root { visits: u64 }
///
/// /// Counts a visit, durably; any pool error goes to the caller.
/// fn visit(path: &std::path::Path) -> Result<u64> {
///     let mut pool = Pool::<Root>::open(path, "visits")?;
///     let visits: PPtr<u64> = pool.root().fields().visits;
///     let next = *pool.get(visits)? + 1;
///     pool.set(visits, next)?;
///     Ok(next)
/// }
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("pool");
/// drop(Pool::<Root>::create(&path, "visits", 1 << 20)?);
/// assert_eq!(visit(&path)?, 1);
/// assert_eq!(visit(&path)?, 2);
/// assert!(visit(&dir.path().join("missing")).is_err());
/// # Ok(()) }
/// ```
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_say_expected_and_found() {
        let e = Error::NotAPool {
            found: *b"\x7fELF\x02\x01\x01\x00",
        };
        assert_eq!(
            e.to_string(),
            r#"not a pool: expected magic b"PMEMRS\x00\x01", found b"\x7fELF\x02\x01\x01\x00""#
        );
        let e = Error::RootTypeMismatch {
            expected: 1,
            found: 2,
            differences: vec![FieldDifference::Changed {
                name: "balance".into(),
                expected: (8, 8),
                found: (8, 4),
            }],
        };
        assert!(
            e.to_string()
                .contains("field `balance` is 8 bytes at 8 in the type, 4 bytes at 8 in the pool"),
            "{e}"
        );
        let e = Error::Truncated {
            expected: 65536,
            found: 100,
        };
        assert_eq!(
            e.to_string(),
            "pool truncated: expected at least 65536 bytes, found 100"
        );
        let e = Error::NotAFile {
            path: "/run/pools/a".into(),
            found: FileKind::Fifo,
        };
        assert_eq!(
            e.to_string(),
            "/run/pools/a: expected a regular file or a Device DAX, found a FIFO"
        );
    }
}
