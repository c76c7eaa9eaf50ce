//! The medium a pool lives on: the one place its stores, flushes and fences
//! go through.
//!
//! [`FileMedium`] is persistent memory (or a file standing in for it) mapped
//! with pmem-sys. The crash simulator provides another medium that records
//! every store, flush and fence and keeps what is merely written apart from
//! what is durable. Pools are generic over the medium, so the file medium
//! costs nothing: its methods inline to pmem-sys calls.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, FileTypeExt, MetadataExt, OpenOptionsExt};
use std::panic::Location;
use std::path::{Path, PathBuf};

use pmem_sys::{CopyFlags, Engine, Mapping, Sysfs};
use zerocopy::FromBytes;

use crate::error::{Error, FileKind, Result};

/// Bytes that persist, and the operations that make them persist.
///
/// Offsets are from the start of the medium. A pool guarantees, through
/// Rust's borrow rules, that no reference into the bytes a writing method
/// touches is alive while it runs. It can do so because it owns its medium,
/// or borrows it with `&mut` (`&mut M` is a medium too): nothing but the
/// pool can reach the medium while the pool lives.
///
/// # Safety
///
/// Implementations guarantee that [`base`](Self::base) points to
/// [`len`](Self::len) bytes, valid for reads and writes, aligned to at least
/// 4096, that stay valid (and do not move) until the medium is dropped or
/// [`grow`](Self::grow) is called; and that the safe methods are sound for
/// any arguments: [`flush`](Self::flush) (and so [`persist`](Self::persist))
/// of a range outside the medium panics rather than reach the hardware.
///
/// # Examples
///
/// Code written against `Medium` runs on a pool file and on the crash
/// simulator alike:
///
/// ```
/// use pmem_typed::{FileMedium, Medium};
/// use pmem_typed::sim::SimMedium;
///
/// /// Adds one to the counter at offset 0 and makes it durable.
/// fn bump<M: Medium>(medium: &M) -> u64 {
///     // SAFETY: offset 0 is 8-aligned and inside the medium; no reference into it is alive.
///     let next = unsafe { medium.base().cast::<u64>().read() } + 1;
///     // SAFETY: as above.
///     unsafe { medium.store_u64(0, next) };
///     medium.persist(0, 8);
///     next
/// }
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let dir = tempfile::tempdir()?;
/// let file = FileMedium::create(dir.path().join("counter"), 4096)?;
/// assert_eq!((bump(&file), bump(&file)), (1, 2));
///
/// let simulated = SimMedium::new(4096, 4096);
/// assert_eq!(bump(&simulated), 1);
/// # Ok(()) }
/// ```
///
/// A pool on a borrowed medium gives it back when it is dropped:
///
/// ```
/// use pmem_typed::sim::SimMedium;
/// use pmem_typed::{Persist, Pool};
///
/// #[derive(Clone, Copy, Persist)]
/// #[repr(C)]
/// struct Root { n: u64 }
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let mut medium = SimMedium::new(64 << 10, 64 << 10);
/// let pool = Pool::create_on(&mut medium, "lent", Root { n: 3 })?; // a Pool<Root, &mut SimMedium>
/// assert_eq!(pool.get(pool.root())?.n, 3);
/// drop(pool);
/// let pool = Pool::<Root, _>::open_on(medium, "lent")?; // now it owns the medium
/// assert_eq!(pool.get(pool.root())?.n, 3);
/// # Ok(()) }
/// ```
pub unsafe trait Medium: Send + Sync {
    /// Start of the bytes.
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_typed::{FileMedium, Medium};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// let medium = FileMedium::create(dir.path().join("raw"), 4096)?;
    /// assert_eq!(medium.base() as usize % 4096, 0, "page-aligned");
    /// // SAFETY: the 4096 bytes stay mapped while `medium` lives, and nothing writes them meanwhile.
    /// let bytes = unsafe { std::slice::from_raw_parts(medium.base(), medium.len()) };
    /// assert!(bytes.iter().all(|&b| b == 0), "a new file is zeroed");
    /// # Ok(()) }
    /// ```
    fn base(&self) -> *mut u8;

    /// Number of bytes.
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
    /// let pool = Pool::<Root>::create(dir.path().join("pool"), "len", 1 << 20)?;
    /// assert_eq!(pool.medium().len(), 1 << 20);
    /// # Ok(()) }
    /// ```
    fn len(&self) -> usize;

    /// Whether the medium has no bytes.
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_typed::Medium;
    /// use pmem_typed::sim::SimMedium;
    ///
    /// assert!(SimMedium::new(0, 4096).is_empty());
    /// assert!(!SimMedium::new(4096, 4096).is_empty());
    /// ```
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Starts writing back the cache lines of `[offset, offset + len)`.
    /// Bytes changed through [`base`](Self::base) since the last flush of their
    /// line are among those written back.
    ///
    /// # Panics
    /// If the range is not inside the medium.
    ///
    /// # Examples
    ///
    /// Several ranges flushed, then one fence for all of them:
    ///
    /// ```
    /// use pmem_typed::{FileMedium, Medium};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// let path = dir.path().join("raw");
    /// let medium = FileMedium::create(&path, 4096)?;
    /// // SAFETY: both words are 8-aligned and inside the medium; no reference into it is alive.
    /// unsafe {
    ///     medium.base().add(64).cast::<u64>().write(1);
    ///     medium.base().add(1024).cast::<u64>().write(2);
    /// }
    /// medium.flush(64, 8);
    /// medium.flush(1024, 8);
    /// medium.fence();
    /// let bytes = std::fs::read(&path)?;
    /// assert_eq!((bytes[64], bytes[1024]), (1, 2));
    /// # Ok(()) }
    /// ```
    fn flush(&self, offset: usize, len: usize);

    /// Waits until everything flushed before, and every non-temporal store,
    /// is durable.
    ///
    /// # Examples
    ///
    /// The fence orders persistence: here a value becomes durable before the
    /// flag that says it is there. Without the first fence, the crash
    /// simulator finds a crash that keeps the flag but not the value.
    ///
    /// ```
    /// use pmem_typed::Medium;
    /// use pmem_typed::sim::{Explorer, Scenario};
    ///
    /// let publish = |fenced: bool| {
    ///     Scenario::new(4096)
    ///         .run(move |m| {
    ///             m.store_u64(64, 42);
    ///             m.flush(64, 8);
    ///             if fenced {
    ///                 m.fence();
    ///             }
    ///             m.store_u64(0, 1);
    ///             m.persist(0, 8);
    ///             Ok(())
    ///         })
    ///         .check(|m| match (m.read_u64(0), m.read_u64(64)) {
    ///             (0, _) | (1, 42) => Ok(()),
    ///             (flag, value) => Err(format!("flag {flag} with value {value}").into()),
    ///         })
    /// };
    /// assert!(Explorer::default().explore(&publish(true)).is_ok());
    /// assert!(Explorer::default().explore(&publish(false)).is_err());
    /// ```
    fn fence(&self);

    /// [`flush`](Self::flush) then [`fence`](Self::fence).
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_typed::{FileMedium, Medium};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// let medium = FileMedium::create(dir.path().join("raw"), 4096)?;
    /// // SAFETY: in bounds; no reference into the medium is alive.
    /// unsafe { medium.base().add(128).write_bytes(0xab, 64) };
    /// medium.persist(128, 64); // durable on return
    /// # Ok(()) }
    /// ```
    fn persist(&self, offset: usize, len: usize) {
        self.flush(offset, len);
        self.fence();
    }

    /// Copies `bytes` to `offset` and flushes them (no fence). With
    /// `nontemporal`, whole lines may bypass the cache.
    ///
    /// # Safety
    /// `offset + bytes.len() <= len()`, and no reference to those bytes is alive.
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_typed::{FileMedium, Medium};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// let path = dir.path().join("raw");
    /// let medium = FileMedium::create(&path, 4096)?;
    /// let record = [7u8; 256];
    /// // SAFETY: 256 bytes at 512 are inside the 4096; no reference into the medium is alive.
    /// unsafe { medium.write(512, &record, true) }; // whole lines may bypass the cache
    /// medium.fence();
    /// assert_eq!(&std::fs::read(&path)?[512..768], &record);
    /// # Ok(()) }
    /// ```
    unsafe fn write(&self, offset: usize, bytes: &[u8], nontemporal: bool);

    /// Fills `len` bytes at `offset` with `byte` and flushes them (no fence).
    ///
    /// # Safety
    /// `offset + len <= len()`, and no reference to those bytes is alive.
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_typed::Medium;
    /// use pmem_typed::sim::SimMedium;
    ///
    /// let medium = SimMedium::new(4096, 4096);
    /// // SAFETY: 100 bytes at 64 are inside the medium; no reference into it is alive.
    /// unsafe { medium.fill(64, 0xff, 100, false) };
    /// medium.fence();
    /// let live = medium.live();
    /// assert!(live[64..164].iter().all(|&b| b == 0xff));
    /// assert_eq!((live[63], live[164]), (0, 0));
    /// ```
    unsafe fn fill(&self, offset: usize, byte: u8, len: usize, nontemporal: bool);

    /// Stores `value` at the 8-aligned `offset` with one failure-atomic
    /// 8-byte store (no flush).
    ///
    /// # Safety
    /// `offset` is 8-aligned, `offset + 8 <= len()`, and no reference to those
    /// bytes is alive.
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_typed::{FileMedium, Medium};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// let medium = FileMedium::create(dir.path().join("raw"), 4096)?;
    /// // SAFETY: offset 8 is 8-aligned and inside the medium; no reference into it is alive.
    /// unsafe { medium.store_u64(8, 0x1122_3344_5566_7788) };
    /// medium.persist(8, 8); // after a crash: the old value or the new one, never a mix
    /// // SAFETY: as above; the store is done.
    /// assert_eq!(unsafe { medium.base().add(8).cast::<u64>().read() }, 0x1122_3344_5566_7788);
    /// # Ok(()) }
    /// ```
    unsafe fn store_u64(&self, offset: usize, value: u64);

    /// Tells the medium which operation the following stores, flushes and
    /// fences belong to, and where the program called it. The crash simulator
    /// uses this to name crash points; other media ignore it.
    ///
    /// # Examples
    ///
    /// A failure report names the operation:
    ///
    /// ```
    /// use std::panic::Location;
    ///
    /// use pmem_typed::Medium;
    /// use pmem_typed::sim::{Explorer, Scenario};
    ///
    /// let scenario = Scenario::new(4096)
    ///     .run(|m| {
    ///         m.note("Flag::publish", Location::caller());
    ///         // SAFETY: both words are 8-aligned and inside the medium; no reference into it is alive.
    ///         unsafe {
    ///             Medium::store_u64(m, 64, 42);
    ///             Medium::store_u64(m, 0, 1); // bug: the value is not durable yet
    ///         }
    ///         Medium::persist(m, 0, 128);
    ///         Ok(())
    ///     })
    ///     .check(|m| match (m.read_u64(0), m.read_u64(64)) {
    ///         (0, _) | (1, 42) => Ok(()),
    ///         (flag, value) => Err(format!("flag {flag} with value {value}").into()),
    ///     });
    /// let failure = Explorer::default().explore(&scenario).unwrap_err();
    /// assert!(failure.to_string().contains("`Flag::publish` at "), "{failure}");
    /// ```
    #[inline]
    fn note(&self, operation: &'static str, at: &'static Location<'static>) {
        let _ = (operation, at);
    }

    /// Tells the medium that `&mut` to `[offset, offset + len)` is about to
    /// be lent out (a guard's `deref_mut`), so writes made through earlier
    /// borrows are complete. Does nothing, except on a medium that records
    /// writes: the crash simulator notes them here, so that each borrow's
    /// writes are seen in program order.
    ///
    /// # Examples
    ///
    /// A guard calls it on every `deref_mut`: the simulator sees `ready`
    /// written before `value`, as the program wrote them, and finds the
    /// crash that keeps the flag without the value.
    ///
    /// ```
    /// use pmem_typed::sim::{Explorer, Profile, Scenario};
    /// use pmem_typed::{Persist, Pool};
    ///
    /// #[derive(Clone, Copy, Persist)]
    /// #[repr(C)]
    /// struct Root { value: u64, ready: u64 }
    ///
    /// let scenario = Scenario::new(64 << 10)
    ///     .setup(|m| {
    ///         Pool::create_on(m, "lend", Root { value: 0, ready: 0 })?;
    ///         Ok(())
    ///     })
    ///     .run(|m| {
    ///         let mut pool = Pool::<Root, _>::open_on(m, "lend")?;
    ///         let mut root = pool.get_mut(pool.root())?;
    ///         root.ready = 1; // wrong: the flag first, in the value's line
    ///         root.value = 42;
    ///         Ok(())
    ///     })
    ///     .check(|m| {
    ///         let pool = Pool::<Root, _>::open_on(m, "lend")?;
    ///         match *pool.get(pool.root())? {
    ///             Root { ready: 1, value: 42 } | Root { ready: 0, .. } => Ok(()),
    ///             Root { value, .. } => Err(format!("ready with value {value}").into()),
    ///         }
    ///     });
    /// assert!(Explorer::new().profile(Profile::X86Adr).explore(&scenario).is_err());
    /// assert!(Explorer::new().profile(Profile::Eadr).explore(&scenario).is_err());
    /// ```
    #[inline]
    fn lend_mut(&self, offset: usize, len: usize) {
        let _ = (offset, len);
    }

    /// Makes the medium at least `new_len` bytes long; [`base`](Self::base)
    /// may change. The bytes already there are kept.
    ///
    /// # Errors
    /// The medium cannot grow.
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_typed::{FileMedium, Medium};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// let path = dir.path().join("raw");
    /// let mut medium = FileMedium::create(&path, 4096)?;
    /// medium.grow(16384)?;
    /// assert_eq!(medium.len(), 16384);
    /// assert_eq!(std::fs::metadata(&path)?.len(), 16384);
    /// # Ok(()) }
    /// ```
    fn grow(&mut self, new_len: usize) -> Result<()>;
}

/// A pool file mapped with pmem-sys, locked against other openers.
///
/// The [`Mapping`] holds the file's descriptor and an exclusive advisory
/// lock on it for as long as the medium lives (see pmem-sys's
/// [one mapping per file](Mapping#one-mapping-per-file)): another pool,
/// medium or `Mapping` of the same file, in this process or another, by any
/// path, is refused with [`Error::AlreadyOpen`]. Growing goes through that
/// descriptor too, so a pool file renamed or replaced while open is still
/// the one that grows.
///
/// On persistent memory (or with `PMEM_IS_PMEM_FORCE=1`), flushing uses the
/// cache-flush instructions; on an ordinary file it uses `msync`, as
/// libpmemobj does.
///
/// # Examples
///
/// Pools open their file through it; it can also be opened first and
/// handed to [`Pool::open_on`](crate::Pool::open_on):
///
/// ```
/// use pmem_typed::{FileMedium, Persist, Pool};
///
/// #[derive(Clone, Copy, Persist)]
/// #[repr(C)]
/// struct Root { n: u64 }
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("pool");
/// drop(Pool::create_with(&path, "demo", 1 << 20, Root { n: 3 })?);
///
/// let medium = FileMedium::open(&path, 4096)?;
/// assert_eq!(medium.path(), path);
/// let pool = Pool::<Root>::open_on(medium, "demo")?;
/// assert_eq!(pool.get(pool.root())?.n, 3);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct FileMedium {
    /// Holds the file's descriptor and its lock.
    mapping: Mapping,
    /// Where the file was opened, for display: it may have been renamed since.
    path: PathBuf,
    is_pmem: bool,
}

impl FileMedium {
    /// Creates the file at `path`, which must not exist, with `len` bytes, maps and locks it.
    ///
    /// # Errors
    /// [`Error::Io`] from creating or mapping the file; [`Error::AlreadyOpen`]
    /// if someone locked it first.
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_typed::{Error, FileMedium, Medium};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// let path = dir.path().join("raw");
    /// let medium = FileMedium::create(&path, 8192)?;
    /// assert_eq!(medium.len(), 8192);
    /// // The file must not exist yet.
    /// assert!(matches!(FileMedium::create(&path, 8192), Err(Error::Io { .. })));
    /// # Ok(()) }
    /// ```
    pub fn create(path: impl AsRef<Path>, len: usize) -> Result<Self> {
        let path = path.as_ref();
        let mapping = Mapping::create_new(path, len)
            .map_err(|e| mapping_error(format_args!("create {}", path.display()), path, e))?;
        Ok(Self::with(mapping, path))
    }

    /// Opens, locks and maps the existing file (or Device DAX) at `path`.
    ///
    /// # Errors
    /// [`Error::NotAFile`] for a directory, FIFO, socket or other device
    /// (refused without blocking or reading); [`Error::AlreadyOpen`] if
    /// another handle has it open; [`Error::Truncated`] if it is shorter than
    /// `min_len`; [`Error::Io`]. A file refused is left as it was.
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_typed::{Error, FileMedium, Medium};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// let path = dir.path().join("raw");
    /// drop(FileMedium::create(&path, 8192)?);
    ///
    /// let medium = FileMedium::open(&path, 4096)?;
    /// assert_eq!(medium.len(), 8192);
    /// // Locked while open, even against this process.
    /// assert!(matches!(FileMedium::open(&path, 4096), Err(Error::AlreadyOpen { .. })));
    /// drop(medium);
    /// assert!(matches!(
    ///     FileMedium::open(&path, 1 << 20),
    ///     Err(Error::Truncated { expected: 1048576, found: 8192 })
    /// ));
    /// # Ok(()) }
    /// ```
    pub fn open(path: impl AsRef<Path>, min_len: usize) -> Result<Self> {
        OpenedFile::open(path.as_ref())?.map(min_len)
    }

    fn with(mapping: Mapping, path: &Path) -> Self {
        let is_pmem = mapping.is_pmem();
        Self {
            mapping,
            path: path.to_owned(),
            is_pmem,
        }
    }

    /// pmem-sys flags for a copy: no drain (the pool fences), and no flush
    /// where `msync` does the job.
    fn copy_flags(&self, nontemporal: bool) -> CopyFlags {
        let mut flags = CopyFlags::NODRAIN;
        if nontemporal {
            flags |= CopyFlags::NONTEMPORAL;
        }
        if !self.is_pmem {
            flags |= CopyFlags::NOFLUSH;
        }
        flags
    }

    /// The path the pool file was opened at (it may have been renamed since:
    /// the medium keeps the file, not the name).
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
    /// let path = dir.path().join("pool");
    /// let pool = Pool::<Root>::create(&path, "demo", 1 << 20)?;
    /// assert_eq!(pool.medium().path(), path);
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the mapping is persistent memory (flushes), or not (msync).
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_sys::raw;
    /// use pmem_typed::{FileMedium, Medium};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// let medium = FileMedium::create(dir.path().join("raw"), 4096)?;
    /// // Decided by pmem-sys when the file is mapped (`PMEM_IS_PMEM_FORCE=1` forces it).
    /// assert_eq!(medium.is_pmem(), raw::is_pmem(medium.base(), medium.len()));
    /// if !medium.is_pmem() {
    ///     println!("{} is not persistent memory: flushing uses msync", dir.path().display());
    /// }
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn is_pmem(&self) -> bool {
        self.is_pmem
    }
}

/// A pool file opened once, read-write, and found to be a regular file or
/// a Device DAX; not locked or mapped yet. What `Pool::open` and `inspect`
/// look at (through the descriptor, never the path again) before mapping.
#[derive(Debug)]
pub(crate) struct OpenedFile {
    file: File,
    path: PathBuf,
    /// The size of a regular file; `None` for a Device DAX, whose size its
    /// mapping tells.
    size: Option<u64>,
}

impl OpenedFile {
    /// Opens `path` if it names a regular file or a Device DAX.
    ///
    /// The path is looked at first: a socket cannot be opened at all, and
    /// what is refused is best left unopened. The descriptor is opened with
    /// `O_NONBLOCK` (which regular files ignore), so a FIFO put at the path
    /// since cannot block, and is looked at again, which refuses that FIFO.
    pub(crate) fn open(path: &Path) -> Result<Self> {
        let stat = |e| Error::io(format_args!("stat {}", path.display()), e);
        check_kind(path, &std::fs::metadata(path).map_err(stat)?)?;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(path)
            .map_err(|e| Error::io(format_args!("open {}", path.display()), e))?;
        let meta = file.metadata().map_err(stat)?;
        let regular = check_kind(path, &meta)?;
        Ok(Self {
            file,
            path: path.to_owned(),
            size: regular.then_some(meta.len()),
        })
    }

    /// The size of a regular file, `None` for a Device DAX.
    pub(crate) fn size(&self) -> Option<u64> {
        self.size
    }

    /// Reads the first bytes of the file into `buf`, as many as there are up
    /// to its length, from the descriptor (`pread`); returns how many.
    pub(crate) fn read_start(&self, buf: &mut [u8]) -> Result<usize> {
        let mut done = 0;
        while done < buf.len() {
            match self.file.read_at(&mut buf[done..], done as u64) {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Error::io(format_args!("read {}", self.path.display()), e)),
            }
        }
        Ok(done)
    }

    /// Locks and maps the file: [`Error::AlreadyOpen`] if another mapping
    /// of it lives, [`Error::Truncated`] if it is shorter than `min_len`
    /// (checked before the lock and again once it is held).
    pub(crate) fn map(self, min_len: usize) -> Result<FileMedium> {
        let truncated = |found: u64| Error::Truncated {
            expected: min_len as u64,
            found,
        };
        if let Some(size) = self.size
            && size < min_len as u64
        {
            return Err(truncated(size));
        }
        let path = self.path;
        let mapping = Mapping::from_file(self.file, &path)
            .map_err(|e| mapping_error(format_args!("map {}", path.display()), &path, e))?;
        if mapping.len() < min_len {
            return Err(truncated(mapping.len() as u64));
        }
        Ok(FileMedium::with(mapping, &path))
    }
}

/// `Ok(true)` for a regular file, `Ok(false)` for a Device DAX,
/// [`Error::NotAFile`] for anything else.
fn check_kind(path: &Path, meta: &std::fs::Metadata) -> Result<bool> {
    let file_type = meta.file_type();
    if file_type.is_file() {
        return Ok(true);
    }
    let found = if file_type.is_char_device() {
        let rdev = meta.rdev();
        let dax = Sysfs::system().is_device_dax(libc::major(rdev), libc::minor(rdev));
        if dax.unwrap_or(false) {
            return Ok(false);
        }
        FileKind::CharDevice
    } else if file_type.is_dir() {
        FileKind::Directory
    } else if file_type.is_fifo() {
        FileKind::Fifo
    } else if file_type.is_socket() {
        FileKind::Socket
    } else if file_type.is_block_device() {
        FileKind::BlockDevice
    } else {
        FileKind::Other
    };
    Err(Error::NotAFile {
        path: path.to_owned(),
        found,
    })
}

/// A pmem-sys error about the file at `path`: [`Error::AlreadyOpen`] for
/// the lock conflict (another mapping of the file lives), [`Error::Io`]
/// with `context` otherwise.
fn mapping_error(context: impl std::fmt::Display, path: &Path, e: io::Error) -> Error {
    if e.kind() == io::ErrorKind::WouldBlock {
        Error::AlreadyOpen {
            path: path.to_owned(),
        }
    } else {
        Error::io(context, e)
    }
}

// SAFETY: the mapping is page-aligned and `len` bytes long, owned by this
// value, and moved only by `grow` (`Mapping::resize`). Its file is locked for
// the medium's life, so no other cooperating opener maps or resizes it.
unsafe impl Medium for FileMedium {
    #[inline]
    fn base(&self) -> *mut u8 {
        self.mapping.as_ptr().cast_mut()
    }

    #[inline]
    fn len(&self) -> usize {
        self.mapping.len()
    }

    #[inline]
    fn flush(&self, offset: usize, len: usize) {
        // One comparison beside a cache flush: a safe method must not flush
        // (or fault on) an address outside the mapping, whoever calls it.
        if offset.checked_add(len).is_none_or(|end| end > self.len()) {
            outside_the_medium(offset, len, self.len());
        }
        if self.is_pmem {
            // SAFETY: the range is inside the live mapping (checked above).
            unsafe { Engine::global().flush(self.base().add(offset), len) }
        } else {
            // msync only fails for ranges outside the mapping, excluded above.
            let _ = self.mapping.msync(offset..offset + len);
        }
    }

    #[inline]
    fn fence(&self) {
        Engine::global().drain();
    }

    #[inline]
    unsafe fn write(&self, offset: usize, bytes: &[u8], nontemporal: bool) {
        debug_assert!(offset + bytes.len() <= self.len());
        // SAFETY: in bounds with no live reference (caller); `bytes` is outside the mapping
        // or, if inside, memmove semantics make overlap harmless.
        let dst = unsafe { self.base().add(offset) };
        // SAFETY: as above.
        unsafe {
            Engine::global().memcpy(
                dst,
                bytes.as_ptr(),
                bytes.len(),
                self.copy_flags(nontemporal),
            )
        };
        if !self.is_pmem {
            self.flush(offset, bytes.len());
        }
    }

    #[inline]
    unsafe fn fill(&self, offset: usize, byte: u8, len: usize, nontemporal: bool) {
        debug_assert!(offset + len <= self.len());
        // SAFETY: in bounds with no live reference (caller).
        let dst = unsafe { self.base().add(offset) };
        // SAFETY: as above.
        unsafe { Engine::global().memset(dst, byte, len, self.copy_flags(nontemporal)) };
        if !self.is_pmem {
            self.flush(offset, len);
        }
    }

    #[inline]
    unsafe fn store_u64(&self, offset: usize, value: u64) {
        debug_assert!(offset.is_multiple_of(8) && offset + 8 <= self.len());
        // SAFETY: aligned, in bounds, unaliased (caller). A volatile u64 store is one
        // 8-byte instruction, which is what makes it failure-atomic.
        unsafe { self.base().add(offset).cast::<u64>().write_volatile(value) }
    }

    fn grow(&mut self, new_len: usize) -> Result<()> {
        if new_len <= self.len() {
            return Ok(());
        }
        // Through the descriptor the mapping holds, never the path: the file
        // may have been renamed, or another put in its place, since it was opened.
        self.mapping.resize(new_len).map_err(|e| {
            Error::io(
                format_args!("grow {} to {new_len} bytes", self.path.display()),
                e,
            )
        })?;
        self.is_pmem = self.mapping.is_pmem();
        Ok(())
    }
}

#[cold]
#[track_caller]
fn outside_the_medium(offset: usize, len: usize, medium: usize) -> ! {
    panic!("{len} bytes at {offset} are outside the medium of {medium} bytes")
}

// SAFETY:
// - `base` and `len` are `M`'s, which keeps the trait's promise for them;
// - the `&mut` borrow keeps `M` alive and in place while this medium exists,
//   and `grow` is `M`'s, so the bytes move only when `M`'s would;
// - the borrow is exclusive: while a pool holds it, nothing else can reach the
//   medium, so the pool's no-live-reference guarantee covers every writer.
unsafe impl<M: Medium> Medium for &mut M {
    #[inline]
    fn base(&self) -> *mut u8 {
        (**self).base()
    }

    #[inline]
    fn len(&self) -> usize {
        (**self).len()
    }

    #[inline]
    fn flush(&self, offset: usize, len: usize) {
        (**self).flush(offset, len);
    }

    #[inline]
    fn fence(&self) {
        (**self).fence();
    }

    #[inline]
    fn persist(&self, offset: usize, len: usize) {
        (**self).persist(offset, len);
    }

    #[inline]
    unsafe fn write(&self, offset: usize, bytes: &[u8], nontemporal: bool) {
        // SAFETY: forwarded from the caller.
        unsafe { (**self).write(offset, bytes, nontemporal) }
    }

    #[inline]
    unsafe fn fill(&self, offset: usize, byte: u8, len: usize, nontemporal: bool) {
        // SAFETY: forwarded from the caller.
        unsafe { (**self).fill(offset, byte, len, nontemporal) }
    }

    #[inline]
    unsafe fn store_u64(&self, offset: usize, value: u64) {
        // SAFETY: forwarded from the caller.
        unsafe { (**self).store_u64(offset, value) }
    }

    #[inline]
    fn note(&self, operation: &'static str, at: &'static Location<'static>) {
        (**self).note(operation, at);
    }

    fn lend_mut(&self, offset: usize, len: usize) {
        (**self).lend_mut(offset, len);
    }

    fn grow(&mut self, new_len: usize) -> Result<()> {
        (**self).grow(new_len)
    }
}

/// Reads a value of a type for which any bytes are valid at `offset` of the
/// medium.
///
/// # Safety
/// `offset + size_of::<T>() <= medium.len()`, and no `&mut` to those bytes is alive.
#[inline]
pub(crate) unsafe fn read<T: FromBytes, M: Medium>(medium: &M, offset: usize) -> T {
    debug_assert!(offset + size_of::<T>() <= medium.len());
    // SAFETY:
    // - in bounds (the caller's precondition), so the bytes are in the
    //   medium's allocation and no `&mut` to them is alive;
    // - any bytes are a valid `T` (`FromBytes`);
    // - `read_unaligned` copies without requiring alignment.
    unsafe { medium.base().add(offset).cast::<T>().read_unaligned() }
}

/// The `N` bytes at `offset` of the medium.
///
/// # Safety
/// As for [`read`].
#[inline]
pub(crate) unsafe fn read_bytes<const N: usize, M: Medium>(medium: &M, offset: usize) -> [u8; N] {
    // SAFETY: the caller's precondition, for `[u8; N]`.
    unsafe { read::<[u8; N], M>(medium, offset) }
}
