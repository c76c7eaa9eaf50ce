//! [`Pool`]: a typed pool of persistent memory.

use std::marker::PhantomData;
use std::panic::Location;
use std::path::Path;
use std::ptr::NonNull;

use bytemuck::Zeroable;

use crate::alloc::{self, Heap, HeapStats, Reservation, read};
use crate::error::{Error, FieldDifference, PointerProblem, Result};
use crate::guard::{DisjointGuard, Guard, Snapshot};
use crate::layout::{
    CHUNK, DYNAMIC_SLOTS_OFFSET, DynamicSlot, FORMAT_VERSION, FieldRecord, Geometry, LINE, MAGIC,
    MAX_LAYOUT_NAME, MAX_RECORDED_FIELDS, MIN_POOL_SIZE, PAGE, REDO_OFFSET, REDO_SLOTS, RedoKind,
    RedoRecord, Superblock, padded, unpadded, zone_chunks_for,
};
use crate::medium::{FileMedium, Medium, OpenedFile};
use crate::persist::{Persist, TypeLayout};
use crate::pptr::{PPtr, PSlice};
use crate::resolve::{Access, UserData, placement};

/// What a pool's header records, for display and inspection.
///
/// # Examples
///
/// The record of the root type is what [`Pool::open`] checks the program's
/// root type against:
///
/// ```
/// use pmem_typed::{PPtr, Persist, Pool};
///
/// #[derive(Clone, Copy, Persist)]
/// #[repr(C)]
/// struct Catalog { count: u64, first: PPtr<u64> }
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let dir = tempfile::tempdir()?;
/// let pool = Pool::<Catalog>::create(dir.path().join("catalog.pool"), "catalog", 1 << 20)?;
/// let info = pool.info();
/// assert_eq!((info.layout.as_str(), info.size), ("catalog", 1 << 20));
/// assert_eq!(info.root_name, "Catalog");
/// assert_eq!((info.root_size, info.root_align), (16, 8));
/// assert_eq!(info.root_fingerprint, Catalog::LAYOUT.fingerprint);
/// assert_eq!(info.root_field_count, 2);
/// assert_eq!(info.root_fields, [("count".to_owned(), 0, 8), ("first".to_owned(), 8, 8)]);
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoolInfo {
    /// The format version.
    pub version: u32,
    /// The pool's random identity.
    pub uuid: [u8; 16],
    /// The layout name given at creation.
    pub layout: String,
    /// The pool's size in bytes: header, root and heap (what is allocated
    /// is [`HeapStats::allocated_bytes`]).
    pub size: u64,
    /// The root type as recorded: name, size, alignment, fingerprint.
    pub root_name: String,
    /// `size_of` the root type.
    pub root_size: u64,
    /// `align_of` the root type.
    pub root_align: u64,
    /// Fingerprint of the root type's layout.
    pub root_fingerprint: u64,
    /// Total fields of the root type.
    pub root_field_count: u32,
    /// The recorded fields: (name, offset, size).
    pub root_fields: Vec<(String, u64, u64)>,
    /// Chunks per zone.
    pub zone_chunks: u64,
    /// Offset of the heap.
    pub heap_offset: u64,
}

impl PoolInfo {
    /// The UUID in its usual text form.
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_typed::{Persist, Pool};
    ///
    /// #[derive(Clone, Copy, Persist)]
    /// #[repr(C)]
    /// struct Root { n: u64 }
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// let (a, b) = (dir.path().join("a.pool"), dir.path().join("b.pool"));
    /// let id = Pool::<Root>::create(&a, "demo", 1 << 20)?.info().uuid_string();
    /// // 8-4-4-4-12 hex digits, of a random (version 4) UUID.
    /// assert_eq!(id.split('-').map(str::len).collect::<Vec<_>>(), [8, 4, 4, 4, 12]);
    /// assert!(id.chars().all(|c| c == '-' || c.is_ascii_hexdigit()));
    /// assert_eq!(id.as_bytes()[14], b'4');
    /// // Each pool has its own, kept across opens: it tells pools apart.
    /// assert_eq!(Pool::<Root>::open(&a, "demo")?.info().uuid_string(), id);
    /// assert_ne!(Pool::<Root>::create(&b, "demo", 1 << 20)?.info().uuid_string(), id);
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn uuid_string(&self) -> String {
        let u = &self.uuid;
        let hex =
            |r: std::ops::Range<usize>| u[r].iter().map(|b| format!("{b:02x}")).collect::<String>();
        format!(
            "{}-{}-{}-{}-{}",
            hex(0..4),
            hex(4..6),
            hex(6..8),
            hex(8..10),
            hex(10..16)
        )
    }
}

/// A pool of persistent memory holding a root object of type `R` and a heap
/// of objects reachable from it, on medium `M` (a mapped file by default).
///
/// # Borrowing
///
/// Pools follow Rust's rules at compile time: objects are read through
/// `&Pool` ([`get`](Self::get)) and written through `&mut Pool`
/// ([`get_mut`](Self::get_mut), [`set`](Self::set), [`alloc`](Self::alloc),
/// ...). So no `&mut T` into the pool can alias another live reference, with
/// no run-time cost; [`get_disjoint_mut`](Self::get_disjoint_mut) checks
/// overlap at run time when several objects must be written at once. To share
/// a pool between threads, put it in a `Mutex` or `RwLock` (it is `Send` and
/// `Sync`).
///
/// # Persistence
///
/// Every write method makes its change durable before it returns: guards
/// flush the cache lines that changed and fence when dropped, `set` flushes
/// just the field. The program order of these calls is the order in which
/// changes become durable; allocation and free are failure-atomic with their
/// publication.
///
/// # Examples
///
/// ```
/// use pmem_typed::{PPtr, Persist, Pool};
///
/// #[derive(Clone, Copy, Persist)]
/// #[repr(C)]
/// struct Root { counter: u64, list: PPtr<Node> }
///
/// #[derive(Clone, Copy, Persist)]
/// #[repr(C)]
/// struct Node { value: u64, next: PPtr<Node> }
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("pool");
/// {
///     let mut pool = Pool::<Root>::create(&path, "example", 1 << 20)?;
///     let root = pool.root();
///     pool.set(root.fields().counter, 41)?;                  // one field, persisted
///     let head = pool.get(root)?.list;
///     pool.alloc(root.fields().list, Node { value: 7, next: head })?; // allocate + publish
///     pool.get_mut(root)?.counter += 1;                       // persisted when the guard drops
/// }
/// let pool = Pool::<Root>::open(&path, "example")?;
/// let root = pool.get(pool.root())?;
/// assert_eq!(root.counter, 42);
/// assert_eq!(pool.get(root.list)?.value, 7);
/// # Ok(()) }
/// ```
pub struct Pool<R, M: Medium = FileMedium> {
    medium: M,
    /// Where pointers may point (from the geometry: kept beside it).
    user: UserData,
    heap: Heap,
    info: PoolInfo,
    /// Index (0 or 1) and sequence number of the dynamic slot in use.
    slot: (usize, u64),
    /// The redo record slot and sequence number the next operation uses.
    redo: (usize, u32),
    /// Lent to guards for their snapshots, so that taking one allocates nothing.
    scratch: Vec<u8>,
    _root: PhantomData<fn() -> R>,
}

impl<R, M: Medium> std::fmt::Debug for Pool<R, M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

impl<R: Persist> Pool<R, FileMedium> {
    /// Creates a pool file of `size` bytes at `path` (which must not exist),
    /// with a zeroed root.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a bad layout name or size;
    /// [`Error::Io`] if the file cannot be created. A failed creation removes
    /// the file it created.
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_typed::{Error, Persist, Pool};
    ///
    /// #[derive(Clone, Copy, Persist)]
    /// #[repr(C)]
    /// struct Counter { hits: u64 }
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// let path = dir.path().join("counter.pool");
    /// let pool = Pool::<Counter>::create(&path, "counter", 1 << 20)?;
    /// assert_eq!(pool.get(pool.root())?.hits, 0); // the root starts zeroed
    /// assert_eq!(std::fs::metadata(&path)?.len(), 1 << 20);
    /// drop(pool);
    /// // An existing file is never overwritten...
    /// let again = Pool::<Counter>::create(&path, "counter", 1 << 20);
    /// assert!(matches!(again, Err(Error::Io { .. })));
    /// // ...and a size too small for the header, root and heap is refused.
    /// let tiny = Pool::<Counter>::create(dir.path().join("tiny.pool"), "counter", 4096);
    /// assert!(matches!(tiny, Err(Error::InvalidArgument { .. })));
    /// # Ok(()) }
    /// ```
    #[track_caller]
    pub fn create(path: impl AsRef<Path>, layout: &str, size: usize) -> Result<Self> {
        Self::create_with(path, layout, size, R::zeroed())
    }

    /// [`create`](Self::create) with an initial root value.
    ///
    /// # Errors
    /// As for [`create`](Self::create).
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_typed::{Persist, Pool};
    ///
    /// #[derive(Clone, Copy, Persist)]
    /// #[repr(C)]
    /// struct Config { version: u64, max_clients: u64 }
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// let path = dir.path().join("config.pool");
    /// // The pool exists only once its root holds this value: a crash during
    /// // creation never leaves a pool with a zeroed root.
    /// let defaults = Config { version: 1, max_clients: 64 };
    /// drop(Pool::create_with(&path, "config", 1 << 20, defaults)?);
    ///
    /// let pool = Pool::<Config>::open(&path, "config")?;
    /// let config = pool.get(pool.root())?;
    /// assert_eq!((config.version, config.max_clients), (1, 64));
    /// # Ok(()) }
    /// ```
    #[track_caller]
    pub fn create_with(path: impl AsRef<Path>, layout: &str, size: usize, root: R) -> Result<Self> {
        let path = path.as_ref();
        check_creation::<R>(layout, size)?;
        let medium = FileMedium::create(path, size)?;
        Self::create_on(medium, layout, root).inspect_err(|_| {
            // Only `FileMedium::create` made the file (it refuses existing ones).
            let _ = std::fs::remove_file(path);
        })
    }

    /// Opens the pool at `path`, recovering from an interrupted allocation or
    /// free, and checks that it has layout `layout` and root type `R`.
    ///
    /// # Errors
    /// [`Error::NotAPool`], [`Error::UnsupportedVersion`],
    /// [`Error::ChecksumMismatch`], [`Error::WrongLayout`],
    /// [`Error::RootTypeMismatch`], [`Error::Truncated`],
    /// [`Error::AlreadyOpen`], [`Error::Corrupt`], [`Error::Io`];
    /// [`Error::NotAFile`], at once, for a directory, FIFO, socket or device
    /// (nothing is read from it, and a file refused is left as it was).
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_typed::{Error, FieldDifference, Persist, Pool};
    ///
    /// #[derive(Clone, Copy, Persist)]
    /// #[repr(C)]
    /// struct Counter { hits: u64 }
    ///
    /// // A later version of the program's root type.
    /// #[derive(Clone, Copy, Persist)]
    /// #[repr(C)]
    /// struct CounterV2 { hits: u64, misses: u64 }
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// let path = dir.path().join("counter.pool");
    /// drop(Pool::create_with(&path, "counter", 1 << 20, Counter { hits: 3 })?);
    ///
    /// let pool = Pool::<Counter>::open(&path, "counter")?;
    /// assert_eq!(pool.get(pool.root())?.hits, 3);
    /// drop(pool); // it is locked while open
    /// // The layout name keeps a program from opening another program's pool...
    /// let other = Pool::<Counter>::open(&path, "metrics");
    /// assert!(matches!(other, Err(Error::WrongLayout { found, .. }) if found == "counter"));
    /// // ...and the recorded root type, from reading it as a changed type.
    /// let changed = Pool::<CounterV2>::open(&path, "counter");
    /// let Err(Error::RootTypeMismatch { differences, .. }) = changed else {
    ///     panic!("the root type changed");
    /// };
    /// let added = FieldDifference::Added { name: "misses".into(), offset: 8, size: 8 };
    /// assert!(differences.contains(&added));
    /// # Ok(()) }
    /// ```
    #[track_caller]
    pub fn open(path: impl AsRef<Path>, layout: &str) -> Result<Self> {
        let file = OpenedFile::open(path.as_ref())?;
        precheck_file(&file)?;
        Self::open_on(file.map(PAGE)?, layout)
    }
}

/// Tells a regular file shorter than a page apart as "not a pool" or
/// "truncated" from its first 8 bytes, read from the open descriptor: a
/// short file is never mapped, and nothing more of it is read.
pub(crate) fn precheck_file(file: &OpenedFile) -> Result<()> {
    let Some(len) = file.size() else {
        return Ok(()); // a Device DAX: its mapping's length is checked
    };
    if len >= PAGE as u64 {
        return Ok(());
    }
    let mut magic = [0u8; 8];
    let read = file.read_start(&mut magic)?;
    if read == magic.len() && magic != MAGIC {
        return Err(Error::NotAPool { found: magic });
    }
    Err(Error::Truncated {
        expected: PAGE as u64,
        found: len,
    })
}

fn check_creation<R: Persist>(layout: &str, size: usize) -> Result<()> {
    if layout.len() > MAX_LAYOUT_NAME || layout.contains('\0') {
        return Err(Error::InvalidArgument {
            what: format!(
                "layout name {layout:?}: expected at most {MAX_LAYOUT_NAME} bytes without NUL, found {}",
                layout.len()
            ),
        });
    }
    if R::LAYOUT.align > PAGE {
        return Err(Error::InvalidArgument {
            what: format!("root alignment {} is above {PAGE}", R::LAYOUT.align),
        });
    }
    let needed = heap_offset_for(R::LAYOUT.size) + MIN_POOL_SIZE - 2 * PAGE;
    if size < needed {
        return Err(Error::InvalidArgument {
            what: format!("pool size {size}: expected at least {needed} bytes"),
        });
    }
    Ok(())
}

/// The heap starts at the page after the root object.
fn heap_offset_for(root_size: usize) -> usize {
    PAGE + root_size.max(1).next_multiple_of(PAGE)
}

fn new_uuid() -> [u8; 16] {
    use std::io::Read;
    let mut uuid = [0u8; 16];
    let random = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut uuid));
    if random.is_err() {
        // No /dev/urandom: time and process id still tell pools apart.
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        uuid[..8].copy_from_slice(&(now.as_nanos() as u64).to_le_bytes());
        uuid[8..12].copy_from_slice(&std::process::id().to_le_bytes());
    }
    uuid[6] = (uuid[6] & 0x0f) | 0x40; // version 4
    uuid[8] = (uuid[8] & 0x3f) | 0x80; // RFC 4122 variant
    uuid
}

impl<R: Persist, M: Medium> Pool<R, M> {
    /// Creates a pool on `medium`, which becomes the pool's size.
    ///
    /// Creation is crash-atomic: everything is written and made durable
    /// first, and the magic number last, with one 8-byte store. A crash at
    /// any point leaves either a complete pool or "not a pool".
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a bad layout name or a medium too small.
    ///
    /// # Examples
    ///
    /// A pool in simulated persistent memory, as crash tests use:
    ///
    /// ```
    /// use pmem_typed::sim::SimMedium;
    /// use pmem_typed::{Error, Persist, Pool};
    ///
    /// #[derive(Clone, Copy, Persist)]
    /// #[repr(C)]
    /// struct Root { generation: u64 }
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let medium = SimMedium::new(64 << 10, 64 << 10);
    /// let pool = Pool::create_on(medium, "sim", Root { generation: 1 })?;
    /// assert_eq!(pool.size(), 64 << 10); // the whole medium
    /// assert_eq!(pool.get(pool.root())?.generation, 1);
    ///
    /// // The medium must hold the header, the root and some heap.
    /// let tiny = SimMedium::new(8 << 10, 8 << 10);
    /// let refused = Pool::create_on(tiny, "sim", Root { generation: 1 });
    /// assert!(matches!(refused, Err(Error::InvalidArgument { .. })));
    /// # Ok(()) }
    /// ```
    #[track_caller]
    pub fn create_on(medium: M, layout: &str, root: R) -> Result<Self> {
        medium.note("Pool::create", Location::caller());
        let size = medium.len();
        check_creation::<R>(layout, size)?;
        let heap_offset = heap_offset_for(R::LAYOUT.size);
        let zone_chunks = zone_chunks_for(size);
        let geometry = Geometry {
            heap_offset,
            zone_chunks,
            pool_size: size,
        };

        let mut sb = Superblock::zeroed();
        sb.version = FORMAT_VERSION;
        sb.uuid = new_uuid();
        sb.layout_name = padded(layout);
        sb.root_offset = PAGE as u64;
        sb.root_size = R::LAYOUT.size as u64;
        sb.root_align = R::LAYOUT.align as u64;
        sb.root_fingerprint = R::LAYOUT.fingerprint;
        sb.chunk_size = CHUNK as u64;
        sb.zone_chunks = zone_chunks as u64;
        sb.heap_offset = heap_offset as u64;
        sb.root_field_count = R::LAYOUT.fields.len() as u32;
        sb.root_name = padded(R::LAYOUT.name);
        for (record, field) in sb.root_fields.iter_mut().zip(R::LAYOUT.fields) {
            *record = FieldRecord {
                name: padded(field.name),
                offset: field.offset as u64,
                size: field.size as u64,
            };
        }
        sb.crc = sb.computed_crc();
        let slot = DynamicSlot::sealed(1, size as u64);

        // Whatever the medium held, it is not a pool from here on: with the
        // magic durably gone, no crash below can leave a half-written pool
        // that looks like one.
        // SAFETY: offset 0 is 8-aligned and inside the medium; no reference into it exists.
        unsafe { medium.store_u64(0, 0) };
        medium.persist(0, 8);
        // SAFETY: every range is inside the medium (its size was
        // checked against the geometry), and no reference into it exists yet.
        unsafe {
            medium.fill(0, 0, PAGE, false);
            medium.write(0, bytemuck::bytes_of(&sb), false);
            // Both slots start equal, so either survives damage to the other.
            medium.write(DYNAMIC_SLOTS_OFFSET, bytemuck::bytes_of(&slot), false);
            medium.write(
                DYNAMIC_SLOTS_OFFSET + LINE,
                bytemuck::bytes_of(&slot),
                false,
            );
            medium.write(PAGE, bytemuck::bytes_of(&root), false);
            for zone in 0..geometry.zones() {
                medium.fill(
                    geometry.table_offset(zone),
                    0,
                    geometry.table_bytes(),
                    false,
                );
            }
        }
        medium.fence();
        // SAFETY: offset 0 is 8-aligned and inside the medium.
        unsafe { medium.store_u64(0, u64::from_le_bytes(MAGIC)) };
        medium.persist(0, 8);

        Self::open_on(medium, layout)
    }

    /// Opens the pool on `medium`, as [`open`](Pool::open) does for a file.
    ///
    /// # Errors
    /// As for [`open`](Pool::open).
    ///
    /// # Examples
    ///
    /// A copy of a pool's bytes (a backup, say) opens as the same pool:
    ///
    /// ```
    /// use pmem_typed::sim::SimMedium;
    /// use pmem_typed::{Error, Persist, Pool};
    ///
    /// #[derive(Clone, Copy, Persist)]
    /// #[repr(C)]
    /// struct Root { value: u64 }
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let medium = SimMedium::new(64 << 10, 64 << 10);
    /// let mut pool = Pool::create_on(medium, "backup", Root { value: 0 })?;
    /// pool.set(pool.root().fields().value, 42)?;
    ///
    /// // The pool's bytes, read through the pool (which owns the medium):
    /// let copy = SimMedium::from_image(&pool.medium().live(), 64 << 10);
    /// let restored = Pool::<Root, _>::open_on(copy, "backup")?;
    /// assert_eq!(restored.get(restored.root())?.value, 42);
    /// assert_eq!(restored.info().uuid, pool.info().uuid);
    ///
    /// // Bytes that are not a pool are refused.
    /// let blank = SimMedium::new(64 << 10, 64 << 10);
    /// let refused = Pool::<Root, _>::open_on(blank, "backup");
    /// assert!(matches!(refused, Err(Error::NotAPool { found }) if found == [0; 8]));
    /// # Ok(()) }
    /// ```
    #[track_caller]
    pub fn open_on(medium: M, layout: &str) -> Result<Self> {
        medium.note("Pool::open (recovery)", Location::caller());
        let (info, slot) = read_header(&medium)?;
        if info.layout != layout {
            return Err(Error::WrongLayout {
                expected: layout.to_owned(),
                found: info.layout,
            });
        }
        check_root_type(&info, &R::LAYOUT)?;
        let geometry = Geometry {
            heap_offset: info.heap_offset as usize,
            zone_chunks: info.zone_chunks as usize,
            pool_size: info.size as usize,
        };
        let (next_seq, heap) = recover(&medium, &geometry)?;
        // A handle closed earlier in this process may have left its last redo
        // record's clear flushed but not fenced (see `run_record`). This handle
        // numbers its records afresh from slot 0, so that clear must be durable
        // before it writes one: else a crash could leave the stale record valid
        // beside the new one, in no telling order, and replay it second.
        medium.fence();
        Ok(Self {
            medium,
            user: UserData::of(&geometry),
            heap,
            info,
            slot,
            redo: (0, next_seq),
            scratch: Vec::new(),
            _root: PhantomData,
        })
    }

    /// Gives the medium back (closing the pool).
    ///
    /// # Examples
    ///
    /// Closing a pool while keeping its memory, to inspect it or to open it
    /// again as a restarted program would:
    ///
    /// ```
    /// use pmem_typed::sim::SimMedium;
    /// use pmem_typed::{Persist, Pool};
    ///
    /// #[derive(Clone, Copy, Persist)]
    /// #[repr(C)]
    /// struct Root { done: u64 }
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let medium = SimMedium::new(64 << 10, 64 << 10);
    /// let mut pool = Pool::create_on(medium, "jobs", Root { done: 0 })?;
    /// pool.set(pool.root().fields().done, 5)?;
    ///
    /// let medium = pool.into_medium();
    /// assert_eq!(medium.read_u64(4096), 5); // the root lives at offset 4096
    /// let pool = Pool::<Root, _>::open_on(medium, "jobs")?;
    /// assert_eq!(pool.get(pool.root())?.done, 5);
    /// # Ok(()) }
    /// ```
    pub fn into_medium(self) -> M {
        self.medium
    }

    /// The medium.
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_typed::{Medium, Persist, Pool};
    ///
    /// #[derive(Clone, Copy, Persist)]
    /// #[repr(C)]
    /// struct Root { n: u64 }
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// let path = dir.path().join("demo.pool");
    /// let pool = Pool::<Root>::create(&path, "demo", 1 << 20)?;
    /// // The medium knows where the pool lives and how flushes reach it.
    /// assert_eq!(pool.medium().path(), path);
    /// assert_eq!(pool.medium().len() as u64, pool.size());
    /// let flushes = if pool.medium().is_pmem() { "cache flushes" } else { "msync" };
    /// println!("{} persists with {flushes}", path.display());
    /// # Ok(()) }
    /// ```
    pub fn medium(&self) -> &M {
        &self.medium
    }

    /// What the header records.
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_typed::{Persist, Pool};
    ///
    /// #[derive(Clone, Copy, Persist)]
    /// #[repr(C)]
    /// struct Orders { count: u64 }
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// let path = dir.path().join("orders.pool");
    /// let uuid = Pool::<Orders>::create(&path, "orders", 1 << 20)?.info().uuid;
    ///
    /// let pool = Pool::<Orders>::open(&path, "orders")?;
    /// let info = pool.info();
    /// assert_eq!((info.layout.as_str(), info.size, info.uuid), ("orders", 1 << 20, uuid));
    /// assert_eq!(info.root_name, "Orders");
    /// println!("{} pool {} of {} bytes", info.layout, info.uuid_string(), info.size);
    /// # Ok(()) }
    /// ```
    pub fn info(&self) -> &PoolInfo {
        &self.info
    }

    /// The pool's size in bytes: header, root and heap, as created or last
    /// grown (what is allocated is [`stats`](Self::stats)).
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_typed::{Persist, Pool};
    ///
    /// #[derive(Clone, Copy, Persist)]
    /// #[repr(C)]
    /// struct Root { n: u64 }
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// let path = dir.path().join("demo.pool");
    /// let mut pool = Pool::<Root>::create(&path, "demo", 1 << 20)?;
    /// assert_eq!(pool.size(), 1 << 20);
    /// pool.grow(2 << 20)?;
    /// assert_eq!(pool.size(), 2 << 20);
    /// assert_eq!(std::fs::metadata(&path)?.len(), 2 << 20);
    /// # Ok(()) }
    /// ```
    pub fn size(&self) -> u64 {
        self.info.size
    }

    /// Allocation statistics.
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_typed::{ClassStats, PSlice, Persist, Pool};
    ///
    /// #[derive(Clone, Copy, Persist)]
    /// #[repr(C)]
    /// struct Root { samples: PSlice<u64> }
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// let mut pool = Pool::<Root>::create(dir.path().join("stats.pool"), "stats", 1 << 20)?;
    /// assert_eq!(pool.stats().allocated_bytes, 0);
    /// let samples = pool.root().fields().samples;
    /// pool.alloc_slice(samples, &[0; 100])?; // 800 bytes
    /// // Small allocations are rounded up to a size class: a 1024-byte block,
    /// // the first of the 16 in a new chunk of that class.
    /// let stats = pool.stats();
    /// assert_eq!(stats.allocated_bytes, 1024);
    /// let class = ClassStats { block_size: 1024, chunks: 1, used_blocks: 1, total_blocks: 16 };
    /// assert!(stats.classes.contains(&class));
    /// pool.free_slice(samples)?;
    /// assert_eq!(pool.stats().allocated_bytes, 0);
    /// # Ok(()) }
    /// ```
    pub fn stats(&self) -> HeapStats {
        self.heap.stats()
    }

    /// The root object.
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_typed::{Persist, Pool};
    ///
    /// #[derive(Clone, Copy, Persist)]
    /// #[repr(C)]
    /// struct Settings { volume: u64, muted: u64 }
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// let path = dir.path().join("settings.pool");
    /// let mut pool = Pool::<Settings>::create(path, "settings", 1 << 20)?;
    /// // The root always exists: everything else is reached from it.
    /// let settings = pool.root();
    /// pool.set(settings.fields().volume, 7)?;
    /// assert_eq!(pool.get(settings)?.volume, 7);
    /// assert_eq!(settings.offset(), 4096); // the page after the header
    /// # Ok(()) }
    /// ```
    #[inline]
    pub fn root(&self) -> PPtr<R> {
        PPtr::from_offset(PAGE as u64)
    }

    /// Checks that `size` bytes at `offset` with alignment `align` may be
    /// accessed as `access` says (see [`crate::resolve`]), returning the
    /// offset: past the header, in the pool, aligned, and for a write clear
    /// of the allocator's chunk tables, so that no pointer, however hostile,
    /// lets a write reach the allocator's metadata.
    #[inline]
    fn resolve(&self, offset: u64, size: u64, align: u64, access: Access) -> Result<usize> {
        let checked = match access {
            Access::Read => self.user.check_read(offset, size, align),
            Access::Write => self.user.check_write(offset, size, align),
        };
        match checked {
            Ok(()) => Ok(offset as usize),
            Err(reason) => Err(Error::BadPointer {
                offset,
                size,
                reason,
            }),
        }
    }

    /// [`resolve`](Self::resolve) for one `T`.
    #[inline]
    fn resolve_object<T>(&self, offset: u64, access: Access) -> Result<usize> {
        let (size, align) = placement::<T>();
        self.resolve(offset, size, align, access)
    }

    /// [`resolve`](Self::resolve) for the elements of `slice`: (offset,
    /// bytes); the empty slice resolves to (0, 0) wherever it points.
    fn resolve_slice<T>(&self, slice: PSlice<T>, access: Access) -> Result<(usize, usize)> {
        if slice.is_empty() {
            return Ok((0, 0));
        }
        let bytes = slice.byte_len().ok_or(Error::BadPointer {
            offset: slice.offset(),
            size: u64::MAX,
            reason: PointerProblem::OutOfBounds {
                pool_size: self.info.size,
            },
        })?;
        Ok((
            self.resolve(slice.offset(), bytes, placement::<T>().1, access)?,
            bytes as usize,
        ))
    }

    /// The `T` that `ptr` points to.
    ///
    /// # Errors
    /// [`Error::BadPointer`] if `ptr` is null, out of bounds or misaligned.
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_typed::{Error, PPtr, Persist, PointerProblem, Pool};
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
    /// let mut pool = Pool::<Root>::create(dir.path().join("list.pool"), "list", 1 << 20)?;
    /// pool.alloc(pool.root().fields().head, Node { value: 1, next: PPtr::null() })?;
    /// let node: &Node = pool.get(pool.get(pool.root())?.head)?;
    /// assert_eq!(node.value, 1);
    /// // Every pointer is checked: following the end of the list is an error...
    /// let end = pool.get(node.next);
    /// assert!(matches!(end, Err(Error::BadPointer { reason: PointerProblem::Null, .. })));
    /// // ...and so is a corrupted pointer, never a wild read.
    /// let wild = pool.get(PPtr::<Node>::from_offset(1 << 30));
    /// let out_of_bounds = PointerProblem::OutOfBounds { pool_size: 1 << 20 };
    /// assert!(matches!(wild, Err(Error::BadPointer { reason, .. }) if reason == out_of_bounds));
    /// # Ok(()) }
    /// ```
    #[inline]
    pub fn get<T: Persist>(&self, ptr: PPtr<T>) -> Result<&T> {
        let offset = self.resolve_object::<T>(ptr.offset(), Access::Read)?;
        // SAFETY: in bounds and aligned (resolved); any bytes are a valid `T`
        // (Pod); writes need `&mut self`, which this shared borrow excludes.
        Ok(unsafe { &*self.medium.base().add(offset).cast::<T>() })
    }

    /// The elements of `slice` (empty for the empty slice).
    ///
    /// # Errors
    /// [`Error::BadPointer`] if the slice is not inside the pool or misaligned.
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_typed::{Error, PSlice, Persist, Pool};
    ///
    /// #[derive(Clone, Copy, Persist)]
    /// #[repr(C)]
    /// struct Root { readings: PSlice<u32> }
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// let mut pool = Pool::<Root>::create(dir.path().join("sensor.pool"), "sensor", 1 << 20)?;
    /// // Nothing allocated yet: the empty slice reads as no elements.
    /// assert!(pool.get_slice(pool.get(pool.root())?.readings)?.is_empty());
    ///
    /// let readings = pool.alloc_slice(pool.root().fields().readings, &[12, 15, 11])?;
    /// assert_eq!(pool.get_slice(readings)?.iter().max(), Some(&15));
    /// // A corrupted length that runs past the end of the pool is refused.
    /// let corrupted = PSlice::<u32>::from_raw_parts(readings.offset(), 1 << 40);
    /// assert!(matches!(pool.get_slice(corrupted), Err(Error::BadPointer { .. })));
    /// # Ok(()) }
    /// ```
    pub fn get_slice<T: Persist>(&self, slice: PSlice<T>) -> Result<&[T]> {
        let (offset, bytes) = self.resolve_slice(slice, Access::Read)?;
        if bytes == 0 {
            return Ok(&[]);
        }
        // SAFETY: as in `get`, for `slice.len()` consecutive `T`s.
        Ok(unsafe {
            std::slice::from_raw_parts(
                self.medium.base().add(offset).cast::<T>(),
                slice.len() as usize,
            )
        })
    }

    /// Write access to `*ptr`: the guard dereferences to `&mut T`, and when
    /// dropped (or [`persist`](Guard::persist)ed) flushes the cache lines that
    /// changed and fences once.
    ///
    /// # Errors
    /// [`Error::BadPointer`].
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_typed::{Error, PPtr, Persist, Pool};
    ///
    /// #[derive(Clone, Copy, Persist)]
    /// #[repr(C)]
    /// struct Root { player: PPtr<Player> }
    ///
    /// #[derive(Clone, Copy, Persist)]
    /// #[repr(C)]
    /// struct Player { x: u64, y: u64, moves: u64 }
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// let mut pool = Pool::<Root>::create(dir.path().join("game.pool"), "game", 1 << 20)?;
    /// // No player yet: the null pointer is refused.
    /// let none = pool.get(pool.root())?.player;
    /// assert!(matches!(pool.get_mut(none), Err(Error::BadPointer { .. })));
    ///
    /// let player = pool.alloc(pool.root().fields().player, Player { x: 0, y: 0, moves: 0 })?;
    /// {
    ///     let mut p = pool.get_mut(player)?;
    ///     p.x += 3;
    ///     p.y += 4;
    ///     p.moves += 1;
    /// } // dropped: the changed line is flushed, with one fence
    /// let p = pool.get(player)?;
    /// assert_eq!((p.x, p.y, p.moves), (3, 4, 1));
    /// # Ok(()) }
    /// ```
    #[track_caller]
    pub fn get_mut<T: Persist>(&mut self, ptr: PPtr<T>) -> Result<Guard<'_, T, M>> {
        // Writes through the guard are attributed to this call.
        self.medium.note("Pool::get_mut", Location::caller());
        let offset = self.resolve_object::<T>(ptr.offset(), Access::Write)?;
        // SAFETY: in bounds (resolved), so in the medium's allocation and not null.
        let value = unsafe { NonNull::new_unchecked(self.medium.base().add(offset).cast::<T>()) };
        // SAFETY: a valid `T` (any bytes are: `T: Pod`), in bounds and aligned
        // (resolved); the guard holds the pool's exclusive borrow, and the
        // medium is the pool's alone, so nothing else reaches these bytes.
        Ok(unsafe {
            Guard::new(
                &self.medium,
                offset,
                Location::caller(),
                value,
                Snapshot(&mut self.scratch),
            )
        })
    }

    /// Write access to the elements of `slice`.
    ///
    /// # Errors
    /// [`Error::BadPointer`].
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_typed::{PSlice, Persist, Pool};
    ///
    /// #[derive(Clone, Copy, Persist)]
    /// #[repr(C)]
    /// struct Root { scores: PSlice<u64> }
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// let mut pool = Pool::<Root>::create(dir.path().join("scores.pool"), "scores", 1 << 20)?;
    /// let scores = pool.alloc_slice(pool.root().fields().scores, &[30, 10, 20])?;
    /// // The guard is a `&mut [u64]`: sort in place, persisted when it drops.
    /// pool.get_slice_mut(scores)?.sort_unstable();
    /// assert_eq!(pool.get_slice(scores)?, [10, 20, 30]);
    /// # Ok(()) }
    /// ```
    #[track_caller]
    pub fn get_slice_mut<T: Persist>(&mut self, slice: PSlice<T>) -> Result<Guard<'_, [T], M>> {
        // Writes through the guard are attributed to this call.
        self.medium.note("Pool::get_slice_mut", Location::caller());
        let (offset, _) = self.resolve_slice(slice, Access::Write)?;
        let base = if slice.is_empty() {
            NonNull::<T>::dangling()
        } else {
            // SAFETY: resolved in bounds, so in the medium's allocation and not null.
            unsafe { NonNull::new_unchecked(self.medium.base().add(offset).cast::<T>()) }
        };
        let elements = NonNull::slice_from_raw_parts(base, slice.len() as usize);
        // SAFETY: as in `get_mut`, for the whole slice (an empty one at a
        // dangling, aligned address).
        Ok(unsafe {
            Guard::new(
                &self.medium,
                offset,
                Location::caller(),
                elements,
                Snapshot(&mut self.scratch),
            )
        })
    }

    /// Write access to several distinct objects at once: one guard that
    /// persists the lines that changed in any of them, with one fence.
    ///
    /// # Errors
    /// [`Error::Overlap`] if two of them share a byte; [`Error::BadPointer`].
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_typed::{Error, PSlice, Persist, Pool};
    ///
    /// #[derive(Clone, Copy, Persist)]
    /// #[repr(C)]
    /// struct Bank { accounts: PSlice<Account> }
    ///
    /// #[derive(Clone, Copy, Persist)]
    /// #[repr(C)]
    /// struct Account { id: u64, balance: u64 }
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// let mut pool = Pool::<Bank>::create(dir.path().join("bank.pool"), "bank", 1 << 20)?;
    /// let opening = [Account { id: 1, balance: 100 }, Account { id: 2, balance: 0 }];
    /// let accounts = pool.alloc_slice(pool.root().fields().accounts, &opening)?;
    /// let (alice, bob) = (accounts.at(0).ok_or("empty")?, accounts.at(1).ok_or("empty")?);
    /// {
    ///     // Persisted together when dropped (not failure-atomically together).
    ///     let mut both = pool.get_disjoint_mut([alice, bob])?;
    ///     let [from, to] = both.each_mut();
    ///     from.balance -= 30;
    ///     to.balance += 30;
    /// }
    /// assert_eq!((pool.get(alice)?.balance, pool.get(bob)?.balance), (70, 30));
    /// // The same account twice would be two `&mut` to it.
    /// assert!(matches!(pool.get_disjoint_mut([alice, alice]), Err(Error::Overlap { .. })));
    /// # Ok(()) }
    /// ```
    #[track_caller]
    pub fn get_disjoint_mut<T: Persist, const N: usize>(
        &mut self,
        ptrs: [PPtr<T>; N],
    ) -> Result<DisjointGuard<'_, T, M, N>> {
        self.medium
            .note("Pool::get_disjoint_mut", Location::caller());
        let size = size_of::<T>() as u64;
        let mut offsets = [0usize; N];
        for (slot, ptr) in offsets.iter_mut().zip(&ptrs) {
            *slot = self.resolve_object::<T>(ptr.offset(), Access::Write)?;
        }
        for i in 0..N {
            for j in i + 1..N {
                let (a, b) = (offsets[i] as u64, offsets[j] as u64);
                // Zero-sized objects share no byte, even at one address.
                if a < b + size && b < a + size {
                    return Err(Error::Overlap { offsets: (a, b) });
                }
            }
        }
        // SAFETY: each offset holds a valid (`T: Pod`), aligned `T` in bounds
        // (resolved); no two overlap (checked); the guard holds the pool's
        // exclusive borrow, and the medium is the pool's alone.
        Ok(unsafe {
            DisjointGuard::new(
                &self.medium,
                offsets,
                Location::caller(),
                Snapshot(&mut self.scratch),
            )
        })
    }

    /// Stores `value` at `ptr` and persists exactly its cache lines. A value
    /// of 8 bytes or less that does not cross an 8-byte boundary (every such
    /// field the derive accepts) is written by one 8-byte store, so it is
    /// failure-atomic; larger values may be torn by a crash.
    ///
    /// # Errors
    /// [`Error::BadPointer`].
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_typed::{Error, PPtr, Persist, Pool};
    ///
    /// #[derive(Clone, Copy, Persist)]
    /// #[repr(C)]
    /// struct Counters { requests: u64, errors: u64 }
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// let path = dir.path().join("counters.pool");
    /// {
    ///     let mut pool = Pool::<Counters>::create(&path, "counters", 1 << 20)?;
    ///     // Just this field is written (one 8-byte store) and flushed.
    ///     pool.set(pool.root().fields().errors, 1)?;
    ///     assert!(matches!(pool.set(PPtr::<u64>::null(), 1), Err(Error::BadPointer { .. })));
    /// }
    /// let pool = Pool::<Counters>::open(&path, "counters")?;
    /// let counters = pool.get(pool.root())?;
    /// assert_eq!((counters.requests, counters.errors), (0, 1));
    /// # Ok(()) }
    /// ```
    #[inline]
    #[track_caller]
    pub fn set<T: Persist>(&mut self, ptr: PPtr<T>, value: T) -> Result<()> {
        self.medium.note("Pool::set", Location::caller());
        let offset = self.resolve_object::<T>(ptr.offset(), Access::Write)?;
        let size = size_of::<T>();
        let word = offset & !7;
        if size > 0 && offset + size <= word + 8 && word + 8 <= self.medium.len() {
            // One aligned 8-byte store is failure-atomic: smaller values ride
            // in their word, whose other bytes are stored back unchanged.
            let mut bytes = if size == 8 {
                [0; 8] // all replaced: no need to read the old word
            } else {
                // SAFETY: the word is 8-aligned and inside the medium (checked).
                unsafe { read::<[u8; 8], M>(&self.medium, word) }
            };
            let at = offset - word;
            bytes[at..at + size].copy_from_slice(bytemuck::bytes_of(&value));
            // SAFETY: as above; `&mut self` excludes any reference to the word.
            unsafe { self.medium.store_u64(word, u64::from_ne_bytes(bytes)) };
        } else {
            // SAFETY: in bounds (resolved); `&mut self` excludes any reference to the bytes.
            unsafe { self.medium.write(offset, bytemuck::bytes_of(&value), false) };
        }
        self.medium.persist(offset, size);
        Ok(())
    }

    /// Points `dest` at `target` with one failure-atomic 8-byte store, and
    /// persists it. Persist `*target` first: this is the publication step.
    ///
    /// # Errors
    /// [`Error::BadPointer`] if `dest` is invalid.
    ///
    /// # Examples
    ///
    /// Appending to a queue: [`alloc`](Self::alloc) publishes the new item
    /// into the last one's `next`, then `publish` moves the tail to it.
    ///
    /// ```
    /// use pmem_typed::{PPtr, Persist, Pool};
    ///
    /// #[derive(Clone, Copy, Persist)]
    /// #[repr(C)]
    /// struct Queue { head: PPtr<Item>, tail: PPtr<Item> }
    ///
    /// #[derive(Clone, Copy, Persist)]
    /// #[repr(C)]
    /// struct Item { job: u64, next: PPtr<Item> }
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// let mut pool = Pool::<Queue>::create(dir.path().join("queue.pool"), "queue", 1 << 20)?;
    /// let queue = pool.root().fields();
    /// let first = pool.alloc(queue.head, Item { job: 1, next: PPtr::null() })?;
    /// pool.publish(queue.tail, first)?;
    /// let second = pool.alloc(first.fields().next, Item { job: 2, next: PPtr::null() })?;
    /// pool.publish(queue.tail, second)?;
    ///
    /// let q = pool.get(pool.root())?;
    /// assert_eq!((pool.get(q.head)?.job, pool.get(q.tail)?.job), (1, 2));
    /// # Ok(()) }
    /// ```
    #[inline]
    #[track_caller]
    pub fn publish<T: Persist>(&mut self, dest: PPtr<PPtr<T>>, target: PPtr<T>) -> Result<()> {
        self.set(dest, target)
    }

    /// Stores element `index` of `slice` and persists it.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if `index` is out of range; [`Error::BadPointer`].
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_typed::{Error, PSlice, Persist, Pool};
    ///
    /// #[derive(Clone, Copy, Persist)]
    /// #[repr(C)]
    /// struct Root { slots: PSlice<u64> }
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// let mut pool = Pool::<Root>::create(dir.path().join("slots.pool"), "slots", 1 << 20)?;
    /// let slots = pool.alloc_slice_zeroed(pool.root().fields().slots, 4)?;
    /// pool.set_elem(slots, 2, 99)?; // one element, one store, persisted
    /// assert_eq!(pool.get_slice(slots)?, [0, 0, 99, 0]);
    /// // The index is checked against the slice's length.
    /// assert!(matches!(pool.set_elem(slots, 4, 1), Err(Error::InvalidArgument { .. })));
    /// # Ok(()) }
    /// ```
    #[track_caller]
    pub fn set_elem<T: Persist>(&mut self, slice: PSlice<T>, index: u64, value: T) -> Result<()> {
        self.medium.note("Pool::set_elem", Location::caller());
        let ptr = slice.at(index).ok_or_else(|| Error::InvalidArgument {
            what: format!("index {index} out of range for a slice of {}", slice.len()),
        })?;
        self.set(ptr, value)
    }

    /// Copies `values` into `slice` from element `start` on, with
    /// non-temporal stores, and persists them.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if they do not fit; [`Error::BadPointer`].
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_typed::{Error, PSlice, Persist, Pool};
    ///
    /// #[derive(Clone, Copy, Persist)]
    /// #[repr(C)]
    /// struct Root { message: PSlice<u8> }
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// let mut pool = Pool::<Root>::create(dir.path().join("msg.pool"), "msg", 1 << 20)?;
    /// let message = pool.alloc_slice_zeroed(pool.root().fields().message, 16)?;
    /// // Bulk data goes around the cache, straight to persistent memory.
    /// pool.copy_to_slice(message, 0, b"hello ")?;
    /// pool.copy_to_slice(message, 6, b"world")?;
    /// assert_eq!(&pool.get_slice(message)?[..11], b"hello world");
    /// // What does not fit is refused, and nothing is written.
    /// let overflow = pool.copy_to_slice(message, 12, b"again");
    /// assert!(matches!(overflow, Err(Error::InvalidArgument { .. })));
    /// assert_eq!(pool.get_slice(message)?[11..], [0; 5]);
    /// # Ok(()) }
    /// ```
    #[track_caller]
    pub fn copy_to_slice<T: Persist>(
        &mut self,
        slice: PSlice<T>,
        start: u64,
        values: &[T],
    ) -> Result<()> {
        self.medium.note("Pool::copy_to_slice", Location::caller());
        let count = values.len() as u64;
        if start.checked_add(count).is_none_or(|end| end > slice.len()) {
            return Err(Error::InvalidArgument {
                what: format!(
                    "{count} elements from index {start} do not fit in a slice of {}",
                    slice.len()
                ),
            });
        }
        let (base, _) = self.resolve_slice(slice, Access::Write)?;
        if values.is_empty() {
            return Ok(());
        }
        let offset = base + (start as usize) * size_of::<T>();
        let bytes: &[u8] = bytemuck::cast_slice(values);
        // SAFETY: inside the resolved slice; `&mut self` excludes references to it.
        unsafe { self.medium.write(offset, bytes, true) };
        self.medium.fence();
        Ok(())
    }

    /// Allocates a `T` holding `value` and publishes it into `*dest`, failure-
    /// atomically: after a crash, either both happened or neither did. The
    /// value is durable before the pointer is. Whatever `*dest` held before
    /// is overwritten (free it first if it owned a block).
    ///
    /// # Errors
    /// [`Error::OutOfSpace`]; [`Error::BadPointer`] for `dest`.
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_typed::{PPtr, Persist, Pool};
    ///
    /// #[derive(Clone, Copy, Persist)]
    /// #[repr(C)]
    /// struct Root { config: PPtr<Config> }
    ///
    /// #[derive(Clone, Copy, Persist)]
    /// #[repr(C)]
    /// struct Config { threads: u64, timeout_ms: u64 }
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// let path = dir.path().join("app.pool");
    /// {
    ///     let mut pool = Pool::<Root>::create(&path, "app", 1 << 20)?;
    ///     // Written, persisted and published into `config`: all or nothing.
    ///     let dest = pool.root().fields().config;
    ///     let config = pool.alloc(dest, Config { threads: 8, timeout_ms: 500 })?;
    ///     assert_eq!(pool.get(pool.root())?.config, config);
    /// }
    /// let pool = Pool::<Root>::open(&path, "app")?;
    /// let config = pool.get(pool.get(pool.root())?.config)?;
    /// assert_eq!((config.threads, config.timeout_ms), (8, 500));
    /// # Ok(()) }
    /// ```
    #[track_caller]
    pub fn alloc<T: Persist>(&mut self, dest: PPtr<PPtr<T>>, value: T) -> Result<PPtr<T>> {
        self.medium.note("Pool::alloc", Location::caller());
        let dest = self.resolve_object::<PPtr<T>>(dest.offset(), Access::Write)?;
        let bytes = bytemuck::bytes_of(&value);
        let block = self.alloc_block(
            size_of::<T>(),
            align_of::<T>(),
            Some(bytes),
            dest,
            |block| [block, 0],
            8,
        )?;
        Ok(PPtr::from_offset(block))
    }

    /// Allocates a slice holding `values` and publishes it into `*dest`,
    /// failure-atomically. No values allocate nothing: `*dest` becomes
    /// [`PSlice::empty`].
    ///
    /// # Errors
    /// As for [`alloc`](Self::alloc).
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_typed::{PSlice, Persist, Pool};
    ///
    /// #[derive(Clone, Copy, Persist)]
    /// #[repr(C)]
    /// struct Root { primes: PSlice<u64> }
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// let mut pool = Pool::<Root>::create(dir.path().join("primes.pool"), "primes", 1 << 20)?;
    /// let primes = pool.root().fields().primes;
    /// let first = pool.alloc_slice(primes, &[2, 3, 5])?;
    /// assert_eq!(pool.get_slice(first)?, [2, 3, 5]);
    /// // To replace it, free the old slice first: `alloc_slice` overwrites
    /// // `*dest`, and the old block would leak.
    /// pool.free_slice(primes)?;
    /// let more = pool.alloc_slice(primes, &[2, 3, 5, 7, 11])?;
    /// assert_eq!(pool.get(pool.root())?.primes, more);
    /// assert!(pool.check().is_consistent());
    /// # Ok(()) }
    /// ```
    #[track_caller]
    pub fn alloc_slice<T: Persist>(
        &mut self,
        dest: PPtr<PSlice<T>>,
        values: &[T],
    ) -> Result<PSlice<T>> {
        self.medium.note("Pool::alloc_slice", Location::caller());
        let dest = self.resolve_object::<PSlice<T>>(dest.offset(), Access::Write)?;
        let len = values.len() as u64;
        if len == 0 {
            self.publish_empty_slice(dest);
            return Ok(PSlice::empty());
        }
        let bytes: &[u8] = bytemuck::cast_slice(values);
        let block = self.alloc_block(
            bytes.len(),
            align_of::<T>(),
            Some(bytes),
            dest,
            |block| [block, len],
            16,
        )?;
        Ok(PSlice::from_raw_parts(block, len))
    }

    /// Allocates a slice of `len` zeroed elements and publishes it into `*dest`.
    /// A length of 0 allocates nothing: `*dest` becomes [`PSlice::empty`].
    ///
    /// # Errors
    /// As for [`alloc`](Self::alloc).
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_typed::{Error, PSlice, Persist, Pool};
    ///
    /// #[derive(Clone, Copy, Persist)]
    /// #[repr(C)]
    /// struct Root { histogram: PSlice<u64> }
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// let mut pool = Pool::<Root>::create(dir.path().join("hist.pool"), "hist", 1 << 20)?;
    /// let buckets = pool.root().fields().histogram;
    /// // Counters to fill in later: no initial values to copy.
    /// let histogram = pool.alloc_slice_zeroed(buckets, 10)?;
    /// assert_eq!(pool.get_slice(histogram)?, [0; 10]);
    /// for sample in [3, 7, 3] {
    ///     pool.get_slice_mut(histogram)?[sample] += 1;
    /// }
    /// assert_eq!(pool.get_slice(histogram)?[3], 2);
    /// // 8 MiB does not fit in a 1 MiB pool.
    /// let huge = pool.alloc_slice_zeroed(buckets, 1 << 20);
    /// assert!(matches!(huge, Err(Error::OutOfSpace { requested: 0x80_0000, .. })));
    /// # Ok(()) }
    /// ```
    #[track_caller]
    pub fn alloc_slice_zeroed<T: Persist>(
        &mut self,
        dest: PPtr<PSlice<T>>,
        len: u64,
    ) -> Result<PSlice<T>> {
        self.medium
            .note("Pool::alloc_slice_zeroed", Location::caller());
        let dest = self.resolve_object::<PSlice<T>>(dest.offset(), Access::Write)?;
        if len == 0 {
            self.publish_empty_slice(dest);
            return Ok(PSlice::empty());
        }
        let bytes = len
            .checked_mul(size_of::<T>() as u64)
            .and_then(|b| usize::try_from(b).ok())
            .ok_or_else(|| Error::InvalidArgument {
                what: format!(
                    "a slice of {len} elements of {} bytes is too large",
                    size_of::<T>()
                ),
            })?;
        let block =
            self.alloc_block(bytes, align_of::<T>(), None, dest, |block| [block, len], 16)?;
        Ok(PSlice::from_raw_parts(block, len))
    }

    /// The allocation protocol (see the `alloc` module): value and redo
    /// record, fence; apply, fence; clear the record, fence.
    /// Makes the slice at `dest` (16 resolved bytes) empty. The length goes
    /// first: a crash leaves the old slice, an empty one still naming the old
    /// block (it owns it, as [`free_slice`](Self::free_slice) and
    /// [`check`](Self::check) agree), or the empty slice.
    fn publish_empty_slice(&mut self, dest: usize) {
        // SAFETY: `dest` resolved to 16 in-bounds, 8-aligned bytes; `&mut self`
        // excludes references to them.
        unsafe { self.medium.store_u64(dest + 8, 0) };
        self.medium.persist(dest + 8, 8);
        // SAFETY: as above.
        unsafe { self.medium.store_u64(dest, 0) };
        self.medium.persist(dest, 8);
    }

    fn alloc_block(
        &mut self,
        size: usize,
        align: usize,
        value: Option<&[u8]>,
        dest: usize,
        dest_value: impl FnOnce(u64) -> [u64; 2],
        dest_len: u32,
    ) -> Result<u64> {
        let Reservation {
            offset: block,
            size: block_size,
        } = self.heap.reserve(&self.medium, size, align)?;
        if (dest as u64) < block + block_size && block < dest as u64 + u64::from(dest_len) {
            return Err(Error::InvalidArgument {
                what: format!(
                    "destination {dest:#x} lies in the free block {block:#x} being allocated"
                ),
            });
        }
        let value_crc = match value {
            // SAFETY: the block is free and inside the pool; nothing references it.
            Some(bytes) => unsafe {
                self.medium.write(block as usize, bytes, false);
                crc32fast::hash(bytes)
            },
            None => {
                // SAFETY: as above.
                unsafe { self.medium.fill(block as usize, 0, size, false) };
                zeros_crc(size)
            }
        };
        let record = RedoRecord {
            kind: RedoKind::Alloc as u32,
            dest_len,
            block,
            block_size,
            dest: dest as u64,
            dest_value: dest_value(block),
            value_crc,
            crc: 0,
            value_len: size as u32,
            seq: 0,
        };
        self.run_record(record);
        Ok(block)
    }

    /// Writes, applies and clears a redo record: two fences.
    ///
    /// The clear is flushed but not fenced: the next fence of any write
    /// method makes it durable, and until then the operation that follows
    /// has not returned, so replaying this record (which is idempotent) can
    /// only undo that unfinished operation. The two record slots are used in
    /// turn so that the next record does not rewrite a line still being
    /// written back.
    fn run_record(&mut self, record: RedoRecord) {
        let (slot, seq) = self.redo;
        let record = RedoRecord { seq, ..record }.sealed();
        let at = REDO_OFFSET + slot * LINE;
        // SAFETY: the record slot, the chunk table and the destination are
        // inside the pool, and `&mut self` excludes any reference into them.
        unsafe {
            self.medium.write(at, bytemuck::bytes_of(&record), false);
            // Commit point; also makes the previous record's clear durable.
            self.medium.fence();
            alloc::apply_record(&self.medium, self.heap.geometry(), &record);
            self.medium.fence();
            // Zero the whole record, not just its kind: a torn write of a
            // later record into this slot must not complete this one's CRC.
            self.medium.fill(at, 0, LINE, false);
        }
        self.redo = ((slot + 1) % REDO_SLOTS, seq.wrapping_add(1));
        self.heap.note_applied(&record);
    }

    /// Frees the object `*dest` points to and nulls `*dest`, failure-atomically.
    /// Freeing a null pointer does nothing.
    ///
    /// # Errors
    /// [`Error::NotAllocated`] if `*dest` is not an allocated block;
    /// [`Error::BadPointer`] for `dest`.
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_typed::{Error, PPtr, Persist, Pool};
    ///
    /// #[derive(Clone, Copy, Persist)]
    /// #[repr(C)]
    /// struct Root { current: PPtr<Session>, cached: PPtr<Session> }
    ///
    /// #[derive(Clone, Copy, Persist)]
    /// #[repr(C)]
    /// struct Session { user: u64, expires: u64 }
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// let mut pool = Pool::<Root>::create(dir.path().join("web.pool"), "web", 1 << 20)?;
    /// let root = pool.root().fields();
    /// let session = pool.alloc(root.current, Session { user: 7, expires: 3600 })?;
    /// pool.publish(root.cached, session)?; // a second pointer to the same block
    ///
    /// pool.free(root.current)?; // unpublished and freed together
    /// assert!(pool.get(pool.root())?.current.is_null());
    /// pool.free(root.current)?; // freeing null does nothing
    /// // `cached` still points to the freed block: freeing it again is refused.
    /// assert!(matches!(pool.free(root.cached), Err(Error::NotAllocated { .. })));
    /// # Ok(()) }
    /// ```
    #[track_caller]
    pub fn free<T: Persist>(&mut self, dest: PPtr<PPtr<T>>) -> Result<()> {
        self.medium.note("Pool::free", Location::caller());
        self.free_and_publish_inner(dest, PPtr::null())
    }

    /// Frees the object `*dest` points to and stores `replacement` into
    /// `*dest`, failure-atomically: unlinking a node and freeing it in one
    /// step, where `free` then `publish` would leave a moment in which what
    /// follows the node is unreachable.
    ///
    /// # Errors
    /// As for [`free`](Self::free).
    ///
    /// # Examples
    ///
    /// ```
    /// # use pmem_typed::{PPtr, Persist, Pool};
    /// # #[derive(Clone, Copy, Persist)] #[repr(C)] struct Root { head: PPtr<Node> }
    /// # #[derive(Clone, Copy, Persist)] #[repr(C)] struct Node { value: u64, next: PPtr<Node> }
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # let mut pool = Pool::<Root>::create(dir.path().join("p"), "stack", 1 << 20)?;
    /// # let head = pool.root().fields().head;
    /// # pool.alloc(head, Node { value: 1, next: PPtr::null() })?;
    /// # let first = pool.get(pool.root())?.head;
    /// # pool.alloc(head, Node { value: 2, next: first })?;
    /// // Pop the top of a stack.
    /// let top = pool.get(pool.root())?.head;
    /// let next = pool.get(top)?.next;
    /// pool.free_and_publish(head, next)?;
    /// assert_eq!(pool.get(pool.get(pool.root())?.head)?.value, 1);
    /// # Ok(()) }
    /// ```
    #[track_caller]
    pub fn free_and_publish<T: Persist>(
        &mut self,
        dest: PPtr<PPtr<T>>,
        replacement: PPtr<T>,
    ) -> Result<()> {
        self.medium
            .note("Pool::free_and_publish", Location::caller());
        self.free_and_publish_inner(dest, replacement)
    }

    fn free_and_publish_inner<T>(
        &mut self,
        dest: PPtr<PPtr<T>>,
        replacement: PPtr<T>,
    ) -> Result<()> {
        let dest = self.resolve_object::<PPtr<T>>(dest.offset(), Access::Write)?;
        // SAFETY: `dest` resolved to 8 in-bounds bytes.
        let target: u64 = unsafe { read(&self.medium, dest) };
        self.free_block(dest, target, 8, [replacement.offset(), 0])
    }

    /// Frees the slice `*dest` describes and empties `*dest`, failure-atomically.
    ///
    /// # Errors
    /// As for [`free`](Self::free).
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_typed::{PSlice, Persist, Pool};
    ///
    /// #[derive(Clone, Copy, Persist)]
    /// #[repr(C)]
    /// struct Root { buffer: PSlice<u64> }
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// let mut pool = Pool::<Root>::create(dir.path().join("buf.pool"), "buf", 1 << 20)?;
    /// let buffer = pool.root().fields().buffer;
    /// pool.alloc_slice_zeroed(buffer, 1000)?;
    /// assert_eq!(pool.allocated_blocks().len(), 1);
    /// // No crash can leave `buffer` describing freed memory.
    /// pool.free_slice(buffer)?;
    /// assert!(pool.get(pool.root())?.buffer.is_empty());
    /// assert!(pool.allocated_blocks().is_empty());
    /// # Ok(()) }
    /// ```
    #[track_caller]
    pub fn free_slice<T: Persist>(&mut self, dest: PPtr<PSlice<T>>) -> Result<()> {
        self.medium.note("Pool::free_slice", Location::caller());
        let dest = self.resolve_object::<PSlice<T>>(dest.offset(), Access::Write)?;
        // SAFETY: `dest` resolved to 16 in-bounds bytes.
        let target: u64 = unsafe { read(&self.medium, dest) };
        self.free_block(dest, target, 16, [0, 0])
    }

    fn free_block(
        &mut self,
        dest: usize,
        target: u64,
        dest_len: u32,
        dest_value: [u64; 2],
    ) -> Result<()> {
        if target == 0 {
            if dest_value != [0, 0] {
                // Nothing to free: publishing alone is one atomic store.
                // SAFETY: `dest` resolved to 8 in-bounds, aligned bytes; `&mut self` excludes references.
                unsafe { self.medium.store_u64(dest, dest_value[0]) };
                self.medium.persist(dest, 8);
            }
            return Ok(());
        }
        let (block, block_size) = self.heap.allocated_block(&self.medium, target)?;
        if (dest as u64) < block + block_size && block < dest as u64 + u64::from(dest_len) {
            return Err(Error::InvalidArgument {
                what: format!(
                    "the pointer at {dest:#x} lies inside the block {block:#x} it would free"
                ),
            });
        }
        let record = RedoRecord {
            kind: RedoKind::Free as u32,
            dest_len,
            block,
            block_size,
            dest: dest as u64,
            dest_value,
            value_crc: 0,
            crc: 0,
            value_len: 0,
            seq: 0,
        };
        self.run_record(record);
        Ok(())
    }

    /// Grows the pool to `new_size` bytes: extends the medium, remaps it, and
    /// adds the new space to the heap. Safe because `&mut self` proves that no
    /// reference into the old mapping is alive, and persistent pointers are
    /// offsets, so they stay valid.
    ///
    /// Crash-safe: the new size is recorded (in the header slot not in use)
    /// only after the new chunk tables are durable.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if `new_size` is smaller than the pool, or
    /// larger than a simulated medium's capacity; [`Error::Io`] from growing
    /// and remapping a file.
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_typed::{Error, PSlice, Persist, Pool};
    ///
    /// #[derive(Clone, Copy, Persist)]
    /// #[repr(C)]
    /// struct Root { old: PSlice<u8>, new: PSlice<u8> }
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// let mut pool = Pool::<Root>::create(dir.path().join("grow.pool"), "grow", 1 << 20)?;
    /// let root = pool.root().fields();
    /// let old = pool.alloc_slice(root.old, &vec![7; 600 << 10])?;
    /// // Full: a second 600 KiB does not fit...
    /// let full = pool.alloc_slice_zeroed(root.new, 600 << 10);
    /// assert!(matches!(full, Err(Error::OutOfSpace { .. })));
    /// // ...until the pool grows. What was there stays, at the same offsets.
    /// pool.grow(2 << 20)?;
    /// assert_eq!(pool.size(), 2 << 20);
    /// pool.alloc_slice_zeroed(root.new, 600 << 10)?;
    /// assert_eq!(pool.get_slice(old)?[..3], [7, 7, 7]);
    /// // Pools never shrink.
    /// assert!(matches!(pool.grow(1 << 20), Err(Error::InvalidArgument { .. })));
    /// # Ok(()) }
    /// ```
    #[track_caller]
    pub fn grow(&mut self, new_size: usize) -> Result<()> {
        self.medium.note("Pool::grow", Location::caller());
        let old = self.info.size as usize;
        if new_size < old {
            return Err(Error::InvalidArgument {
                what: format!("cannot shrink the pool from {old} to {new_size} bytes"),
            });
        }
        if new_size == old {
            return Ok(());
        }
        // The new size goes in the other slot, numbered one higher. A slot
        // numbered u64::MAX (only a crafted file has one) opens, but cannot be
        // superseded: refused before anything changes.
        let next_seq = self.slot.1.checked_add(1).ok_or_else(|| {
            Error::corrupt(format_args!(
                "dynamic header sequence number {:#x} cannot be advanced to record a new size",
                self.slot.1
            ))
        })?;
        self.medium.grow(new_size)?;
        let old_geometry = *self.heap.geometry();
        let geometry = Geometry {
            pool_size: new_size,
            ..old_geometry
        };
        // Chunks that the old size cut off from its last zone now exist: their
        // descriptors were never the allocator's to keep zero (a file may hold
        // anything there), so zero them, as creation does whole tables.
        if let Some(zone) = old_geometry.zones().checked_sub(1) {
            let (before, after) = (
                old_geometry.chunks_in_zone(zone),
                geometry.chunks_in_zone(zone),
            );
            if after > before {
                // SAFETY: descriptors of chunks in the grown medium; nothing
                // references a chunk table.
                unsafe {
                    self.medium.fill(
                        geometry.descriptor_offset(zone, before),
                        0,
                        (after - before) * LINE,
                        false,
                    )
                };
            }
        }
        for zone in old_geometry.zones()..geometry.zones() {
            // SAFETY: new zones lie inside the grown medium; nothing references them.
            unsafe {
                self.medium.fill(
                    geometry.table_offset(zone),
                    0,
                    geometry.table_bytes(),
                    false,
                )
            };
        }
        self.medium.fence();
        let (index, _) = self.slot;
        let next = DynamicSlot::sealed(next_seq, new_size as u64);
        let at = DYNAMIC_SLOTS_OFFSET + (1 - index) * LINE;
        // SAFETY: the unused header slot is inside the pool and unreferenced.
        unsafe { self.medium.write(at, bytemuck::bytes_of(&next), false) };
        self.medium.fence();
        self.slot = (1 - index, next_seq);
        self.info.size = new_size as u64;
        self.heap = Heap::load(&self.medium, geometry)?;
        self.user = UserData::of(&geometry);
        Ok(())
    }

    /// Every allocated block as (offset, size), in address order.
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_typed::{PPtr, PSlice, Persist, Pool};
    ///
    /// #[derive(Clone, Copy, Persist)]
    /// #[repr(C)]
    /// struct Root { id: PPtr<u64>, names: PSlice<u64> }
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// let mut pool = Pool::<Root>::create(dir.path().join("blocks.pool"), "blocks", 1 << 20)?;
    /// let id = pool.alloc(pool.root().fields().id, 42)?;
    /// let names = pool.alloc_slice_zeroed(pool.root().fields().names, 100)?;
    /// // Block sizes are the size classes the requests rounded up to.
    /// let blocks = pool.allocated_blocks();
    /// assert!(blocks.contains(&(id.offset(), 64)));
    /// assert!(blocks.contains(&(names.offset(), 1024)));
    /// assert!(blocks.is_sorted());
    /// let total: u64 = blocks.iter().map(|&(_, size)| size).sum();
    /// assert_eq!(total, pool.stats().allocated_bytes);
    /// # Ok(()) }
    /// ```
    pub fn allocated_blocks(&self) -> Vec<(u64, u64)> {
        self.heap.allocated_blocks(&self.medium)
    }
}

fn zeros_crc(len: usize) -> u32 {
    let zeros = [0u8; 4096];
    let mut hasher = crc32fast::Hasher::new();
    let mut left = len;
    while left > 0 {
        let n = left.min(zeros.len());
        hasher.update(&zeros[..n]);
        left -= n;
    }
    hasher.finalize()
}

/// Reads and checks the header: magic, version, checksums, geometry and the
/// current dynamic slot. Layout and root type are the caller's to check.
pub(crate) fn read_header<M: Medium>(medium: &M) -> Result<(PoolInfo, (usize, u64))> {
    let len = medium.len();
    if len < 8 {
        return Err(Error::Truncated {
            expected: PAGE as u64,
            found: len as u64,
        });
    }
    // SAFETY: 8 bytes at offset 0 are inside the medium.
    let magic: [u8; 8] = unsafe { read(medium, 0) };
    if magic != MAGIC {
        return Err(Error::NotAPool { found: magic });
    }
    if len < PAGE {
        return Err(Error::Truncated {
            expected: PAGE as u64,
            found: len as u64,
        });
    }
    // SAFETY: the superblock lies within the first page, checked present.
    let sb: Superblock = unsafe { read(medium, 0) };
    if sb.version != FORMAT_VERSION {
        return Err(Error::UnsupportedVersion {
            expected: FORMAT_VERSION,
            found: sb.version,
        });
    }
    let crc = sb.computed_crc();
    if crc != sb.crc {
        return Err(Error::ChecksumMismatch {
            region: "superblock",
            expected: crc,
            found: sb.crc,
        });
    }
    let geometry_ok = sb.chunk_size == CHUNK as u64
        && sb.zone_chunks.is_power_of_two()
        && (64..=4096).contains(&sb.zone_chunks)
        && sb.root_offset == PAGE as u64
        && sb.root_align.is_power_of_two()
        && sb.root_align <= PAGE as u64
        // A root larger than the medium cannot fit, and rounding a size
        // near u64::MAX up to pages would overflow.
        && sb.root_size <= len as u64
        && sb.heap_offset == heap_offset_for(sb.root_size as usize) as u64;
    if !geometry_ok {
        return Err(Error::corrupt(format_args!(
            "superblock geometry: chunk size {}, {} chunks per zone, root at {} ({} bytes, align {}), heap at {}",
            sb.chunk_size,
            sb.zone_chunks,
            sb.root_offset,
            sb.root_size,
            sb.root_align,
            sb.heap_offset
        )));
    }
    let slots: [DynamicSlot; 2] = [0, 1].map(|i| {
        // SAFETY: both slots lie within the first page.
        unsafe { read(medium, DYNAMIC_SLOTS_OFFSET + i * LINE) }
    });
    let valid = |i: usize| slots[i].is_valid();
    let index = match (valid(0), valid(1)) {
        (true, true) => usize::from(slots[1].seq > slots[0].seq),
        (true, false) => 0,
        (false, true) => 1,
        (false, false) => {
            return Err(Error::ChecksumMismatch {
                region: "dynamic header (both copies)",
                expected: slots[0].computed_crc(),
                found: slots[0].crc,
            });
        }
    };
    let slot = slots[index];
    if slot.pool_size > len as u64 {
        return Err(Error::Truncated {
            expected: slot.pool_size,
            found: len as u64,
        });
    }
    let minimum = sb.heap_offset + (sb.zone_chunks * LINE as u64) + CHUNK as u64;
    if slot.pool_size < minimum {
        return Err(Error::corrupt(format_args!(
            "pool size {} is below the minimum {minimum}",
            slot.pool_size
        )));
    }
    let recorded = (sb.root_field_count as usize).min(MAX_RECORDED_FIELDS);
    let info = PoolInfo {
        version: sb.version,
        uuid: sb.uuid,
        layout: unpadded(&sb.layout_name),
        size: slot.pool_size,
        root_name: unpadded(&sb.root_name),
        root_size: sb.root_size,
        root_align: sb.root_align,
        root_fingerprint: sb.root_fingerprint,
        root_field_count: sb.root_field_count,
        root_fields: sb.root_fields[..recorded]
            .iter()
            .map(|f| (unpadded(&f.name), f.offset, f.size))
            .collect(),
        zone_chunks: sb.zone_chunks,
        heap_offset: sb.heap_offset,
    };
    Ok((info, (index, slot.seq)))
}

/// Compares the recorded root type with `layout`, listing the differences.
fn check_root_type(info: &PoolInfo, layout: &TypeLayout) -> Result<()> {
    if info.root_fingerprint == layout.fingerprint
        && info.root_size == layout.size as u64
        && info.root_align == layout.align as u64
    {
        return Ok(());
    }
    let mut differences = Vec::new();
    if info.root_size != layout.size as u64 {
        differences.push(FieldDifference::Size {
            expected: layout.size as u64,
            found: info.root_size,
        });
    }
    let truncated = info.root_field_count as usize > info.root_fields.len();
    for (name, offset, size) in &info.root_fields {
        match layout.fields.iter().find(|f| f.name == name.as_str()) {
            None if !truncated || layout.fields.len() <= info.root_fields.len() => {
                differences.push(FieldDifference::Removed {
                    name: name.clone(),
                    offset: *offset,
                    size: *size,
                });
            }
            Some(f) if (f.offset as u64, f.size as u64) != (*offset, *size) => {
                differences.push(FieldDifference::Changed {
                    name: name.clone(),
                    expected: (f.offset as u64, f.size as u64),
                    found: (*offset, *size),
                })
            }
            _ => {}
        }
    }
    if !truncated {
        for f in layout.fields {
            if !info.root_fields.iter().any(|(name, ..)| name == f.name) {
                differences.push(FieldDifference::Added {
                    name: f.name.to_owned(),
                    offset: f.offset as u64,
                    size: f.size as u64,
                });
            }
        }
    }
    if differences.is_empty() {
        differences.push(FieldDifference::Unrecorded);
    }
    Err(Error::RootTypeMismatch {
        expected: layout.fingerprint,
        found: info.root_fingerprint,
        differences,
    })
}

/// Finishes or rolls back the operation an interrupted allocation or free
/// left in the redo record. Its writes are persisted before the record is
/// cleared, so a crash during recovery only repeats it. Returns the next
/// record's sequence number and the heap as recovery leaves it.
///
/// # Errors
/// [`Error::Corrupt`] for a record that makes no sense, or chunk tables that
/// are inconsistent (after the replay); nothing has been written then.
pub(crate) fn recover<M: Medium>(medium: &M, geometry: &Geometry) -> Result<(u32, Heap)> {
    let records: [RedoRecord; REDO_SLOTS] = core::array::from_fn(|slot| {
        // SAFETY: the records lie within the first page.
        unsafe { read(medium, REDO_OFFSET + slot * LINE) }
    });
    // A record that fails its CRC was torn while being written: no record.
    let mut valid: Vec<(usize, RedoRecord)> = records
        .iter()
        .copied()
        .enumerate()
        .filter(|(_, r)| r.kind != RedoKind::None as u32 && r.crc == r.computed_crc())
        .collect();
    // Oldest first. At most two are valid, with consecutive sequence numbers
    // (modulo 2^32): the newer is the one whose successor the other is not.
    if let [(_, a), (_, b)] = valid.as_slice()
        && a.seq == b.seq.wrapping_add(1)
    {
        valid.swap(0, 1);
    }
    let next_seq = valid.last().map_or(1, |(_, r)| r.seq.wrapping_add(1));

    // Everything is checked before anything is written, the chunk tables as
    // the replay will leave them included: a refused open leaves the pool as
    // it found it.
    let mut replay = Vec::new();
    for (_, record) in &valid {
        alloc::validate_record(medium, geometry, record)?;
        let roll_forward = record.kind == RedoKind::Free as u32 || {
            let in_bounds = u64::from(record.value_len) <= record.block_size;
            // SAFETY: the validated block is inside the pool; value_len is within it.
            in_bounds
                && crc32fast::hash(unsafe {
                    std::slice::from_raw_parts(
                        medium.base().add(record.block as usize),
                        record.value_len as usize,
                    )
                }) == record.value_crc
        };
        if roll_forward {
            replay.push(*record);
        }
    }
    let heap = Heap::load_replayed(medium, *geometry, &replay)?;
    for record in &replay {
        // SAFETY: validated; the pool is not open yet, so nothing references it.
        unsafe { alloc::apply_record(medium, geometry, record) };
    }
    if !replay.is_empty() {
        medium.fence();
    }

    // Clear the valid records oldest first, each durably: were the newer
    // clear to persist alone, the older record would later replay on its own
    // and undo the newer operation. (The newest alone is harmless: it was
    // applied last.) Then whatever else the slots hold.
    let leftovers = (0..REDO_SLOTS).filter(|&slot| {
        records[slot] != RedoRecord::zeroed() && !valid.iter().any(|(v, _)| *v == slot)
    });
    let order: Vec<usize> = valid
        .iter()
        .map(|(slot, _)| *slot)
        .chain(leftovers)
        .collect();
    for slot in order {
        // Zeroed whole, for the reason given in `run_record`.
        // SAFETY: the record slot is inside the first page and unreferenced.
        unsafe { medium.fill(REDO_OFFSET + slot * LINE, 0, LINE, false) };
        medium.fence();
    }
    Ok((next_seq, heap))
}
