//! [`Pool`]: a typed pool of persistent memory. One idea per file:
//!
//! - `open`: creating a pool and opening one (header checks, then
//!   [`redo`](crate::redo) recovery);
//! - `access`: resolving pointers, reading, and writing through guards and `set`;
//! - `alloc`: allocating and freeing, with the [`heap`](crate::heap) and the
//!   [`redo`](crate::redo) protocol;
//! - `grow`: growing the pool.

mod access;
mod alloc;
mod batch;
mod grow;
mod open;

use std::marker::PhantomData;

use crate::format::PAGE;
use crate::heap::{Heap, HeapStats};
use crate::medium::{FileMedium, Medium};
use crate::pptr::PPtr;
use crate::redo::RedoLog;
use crate::resolve::UserData;

pub use batch::Batch;
pub(crate) use open::{precheck_file, read_header};

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
#[non_exhaustive]
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
    /// Where the next redo record goes.
    redo: RedoLog,
    /// Lent to guards for their snapshots, so that taking one allocates nothing.
    scratch: Vec<u8>,
    /// Kept between batches, so that a batch allocates nothing once grown.
    batch_parts: batch::BatchParts,
    _root: PhantomData<fn() -> R>,
}

impl<R, M: Medium> std::fmt::Debug for Pool<R, M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

impl<R, M: Medium> Pool<R, M> {
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
    /// use pmem_typed::{PSlice, Persist, Pool};
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
    /// let class = stats.classes.iter().find(|c| c.block_size == 1024).ok_or("no class")?;
    /// assert_eq!((class.chunks, class.used_blocks, class.total_blocks), (1, 1, 16));
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
}
