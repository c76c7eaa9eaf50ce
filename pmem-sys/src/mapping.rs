//! [`Mapping`]: an owned, bounds-checked mapping of a file.

use std::fmt;
use std::fs::File;
use std::io;
use std::ops::{Bound, Range, RangeBounds};
use std::path::{Path, PathBuf};
use std::ptr::NonNull;

use crate::engine::Engine;
use crate::errormsg;
use crate::flags::{CopyFlags, MapFlags};
use crate::map::{self, FileKind, Lock, MappedFile, RawMapping};
use crate::raw;
use crate::sysfs::Sysfs;

/// A byte range that does not fit in a mapping.
///
/// # Examples
///
/// ```
/// use pmem_sys::{Mapping, OutOfBounds};
/// let dir = tempfile::tempdir()?;
/// let pool = Mapping::create(dir.path().join("pool"), 4096)?;
/// let err = pool.read(4090, &mut [0; 10]).unwrap_err();
/// assert_eq!(err, OutOfBounds { start: 4090, end: Some(4100), len: 4096 });
/// assert_eq!(err.to_string(), "range 4090..4100 is outside the mapping of 4096 bytes");
/// let io: std::io::Error = err.into();
/// assert_eq!(io.kind(), std::io::ErrorKind::InvalidInput);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutOfBounds {
    /// The requested start offset.
    pub start: usize,
    /// The requested end offset (exclusive); `None` if it overflowed.
    pub end: Option<usize>,
    /// The mapping's length.
    pub len: usize,
}

impl fmt::Display for OutOfBounds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.end {
            Some(end) => write!(
                f,
                "range {}..{end} is outside the mapping of {} bytes",
                self.start, self.len
            ),
            None => write!(f, "range starting at {} overflows", self.start),
        }
    }
}

impl std::error::Error for OutOfBounds {}

impl From<OutOfBounds> for io::Error {
    fn from(e: OutOfBounds) -> Self {
        io::Error::new(io::ErrorKind::InvalidInput, e)
    }
}

/// A shared, writable mapping of a file, unmapped on drop.
///
/// All access is bounds-checked: offsets and ranges are relative to the
/// start of the mapping. Writes take `&mut self`, so a `Mapping` shared
/// between threads (it is `Send + Sync`) is only ever read through it.
///
/// # One mapping per file
///
/// A `Mapping` made from a path ([`open`](Self::open),
/// [`create`](Self::create), [`create_new`](Self::create_new),
/// [`map`](Self::map), [`tmpfile`](Self::tmpfile)) or from a `File`
/// ([`from_file`](Self::from_file)) owns the file's descriptor and holds an
/// exclusive advisory lock on it, `flock(LOCK_EX | LOCK_NB)`, from right
/// after the open (before the file is sized) until it is dropped. A second
/// `Mapping` of the file, in this process or another, by any path, hard
/// link or new name, fails with [`io::ErrorKind::WouldBlock`] and leaves the
/// file as it was. The safe accessors ([`as_slice`](Self::as_slice),
/// [`read`](Self::read), ...) rely on this: while the lock is held, no other
/// cooperating opener can map, write or resize the file, so its bytes change
/// only through this value's `&mut self` methods, and it never becomes
/// shorter than the mapping (which would make access fault with `SIGBUS`).
/// [`resize`](Self::resize) changes its length through the same descriptor.
///
/// Outside that guarantee, as for any advisory lock: processes that ignore
/// the lock (libpmem's `pmem_map_file` and this crate's [`map_file`](crate::map_file)
/// take none), descriptors of this process opened without it
/// (`std::fs::write`, `File::set_len` on another `File`), descriptors that
/// share the locked open file description (a clone of the `File` given to
/// `from_file`, a child forked while the mapping lives), and
/// `/proc/self/mem`. A `Mapping` made by [`from_raw`](Self::from_raw) has
/// no file and no lock: its caller vouches for the same.
///
/// # Examples
///
/// ```
/// use pmem_sys::{CopyFlags, Mapping};
/// let dir = tempfile::tempdir()?;
/// let mut m = Mapping::create(dir.path().join("pool"), 4096)?;
/// m.write(100, b"hello", CopyFlags::empty())?;   // copied and persisted
/// let mut back = [0u8; 5];
/// m.read(100, &mut back)?;
/// assert_eq!(&back, b"hello");
/// // The file is locked while `m` lives.
/// let second = Mapping::open(dir.path().join("pool")).unwrap_err();
/// assert_eq!(second.kind(), std::io::ErrorKind::WouldBlock);
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Mapping {
    // INVARIANT: `ptr..ptr + len` is a live shared read/write mapping owned by
    // this value alone, `len > 0`. With a `backing`, it maps the first `len`
    // bytes of `backing.file`, which is at least `len` bytes long, and that
    // descriptor holds the file's exclusive lock.
    ptr: NonNull<u8>,
    len: usize,
    is_pmem: bool,
    backing: Option<Backing>,
}

/// The file behind a [`Mapping`] made from a path or a `File`.
#[derive(Debug)]
struct Backing {
    /// The descriptor mapped; its open file description holds the lock.
    file: File,
    /// Where it was opened, for messages.
    path: PathBuf,
    kind: FileKind,
    /// Made with [`MapFlags::SPARSE`]: growing leaves blocks unallocated.
    sparse: bool,
}

// SAFETY: the mapping is plain memory owned by this value; it has no thread
// affinity, and mutation requires `&mut self`. `File` is `Send`.
unsafe impl Send for Mapping {}
// SAFETY: every `&self` method only reads the mapping or flushes caches, and
// none touches the file.
unsafe impl Sync for Mapping {}

impl fmt::Debug for Mapping {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mapping")
            .field("addr", &self.ptr)
            .field("len", &self.len)
            .field("is_pmem", &self.is_pmem)
            .field("path", &self.backing.as_ref().map(|b| &b.path))
            .finish()
    }
}

impl Mapping {
    /// Creates (or resizes) the file at `path` to `len` bytes and maps it.
    ///
    /// # Errors
    /// [`io::ErrorKind::WouldBlock`] if another `Mapping` of the file lives
    /// (see [one mapping per file](Self#one-mapping-per-file)): the file is
    /// left as it was. Otherwise as for [`map_file`](crate::map_file) with
    /// [`MapFlags::CREATE`].
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_sys::Mapping;
    /// let dir = tempfile::tempdir()?;
    /// let path = dir.path().join("pool");
    /// let pool = Mapping::create(&path, 8192)?;
    /// assert_eq!(pool.len(), 8192);
    /// assert_eq!(std::fs::metadata(&path)?.len(), 8192);
    /// drop(pool);
    /// // An existing file is resized to the new length...
    /// let pool = Mapping::create(&path, 4096)?;
    /// assert_eq!(std::fs::metadata(&path)?.len(), 4096);
    /// // ...unless another Mapping has it: then nothing is resized.
    /// let busy = Mapping::create(&path, 1 << 20).unwrap_err();
    /// assert_eq!(busy.kind(), std::io::ErrorKind::WouldBlock);
    /// assert_eq!(std::fs::metadata(&path)?.len(), 4096);
    /// # drop(pool);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn create(path: impl AsRef<Path>, len: usize) -> io::Result<Self> {
        Self::map(path, len, MapFlags::CREATE, 0o666)
    }

    /// Creates the file at `path`, which must not exist, with `len` bytes, and maps it.
    ///
    /// # Errors
    /// `EEXIST` if the file exists; otherwise as for
    /// [`map_file`](crate::map_file). A file this call created is removed
    /// on error.
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_sys::Mapping;
    /// let dir = tempfile::tempdir()?;
    /// let path = dir.path().join("pool");
    /// let pool = Mapping::create_new(&path, 4096)?;
    /// assert_eq!(pool.len(), 4096);
    /// let err = Mapping::create_new(&path, 4096).unwrap_err();
    /// assert_eq!(err.raw_os_error(), Some(libc::EEXIST));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn create_new(path: impl AsRef<Path>, len: usize) -> io::Result<Self> {
        Self::map(path, len, MapFlags::CREATE | MapFlags::EXCL, 0o666)
    }

    /// Maps the whole existing file (or Device DAX) at `path`.
    ///
    /// # Errors
    /// [`io::ErrorKind::WouldBlock`] if another `Mapping` of the file lives;
    /// its message names `path`, and its
    /// [`source`](std::error::Error::source) is the `EWOULDBLOCK` of `flock`.
    /// Otherwise as for [`map_file`](crate::map_file) without flags: `ENOENT`,
    /// `EINVAL` for an empty file, a FIFO, a socket or a character device
    /// that is not a Device DAX, ...
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_sys::{CopyFlags, Mapping};
    /// let dir = tempfile::tempdir()?;
    /// let path = dir.path().join("pool");
    /// let mut pool = Mapping::create(&path, 4096)?;
    /// pool.write(0, b"saved", CopyFlags::empty())?;
    /// pool.msync(..)?;
    /// drop(pool);
    ///
    /// let pool = Mapping::open(&path)?;
    /// assert_eq!(pool.len(), 4096, "the whole file");
    /// assert_eq!(&pool.as_slice()[..5], b"saved");
    /// let missing = Mapping::open(dir.path().join("missing")).unwrap_err();
    /// assert_eq!(missing.raw_os_error(), Some(libc::ENOENT));
    ///
    /// // One `Mapping` per file at a time, whatever the path.
    /// std::fs::hard_link(&path, dir.path().join("link"))?;
    /// let busy = Mapping::open(dir.path().join("link")).unwrap_err();
    /// assert_eq!(busy.kind(), std::io::ErrorKind::WouldBlock);
    /// assert!(busy.to_string().contains("link"), "{busy}");
    /// drop(pool);
    /// assert!(Mapping::open(dir.path().join("link")).is_ok());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn open(path: impl AsRef<Path>) -> io::Result<Self> {
        Self::map(path, 0, MapFlags::empty(), 0)
    }

    /// Maps the whole of `file`, an open regular file or Device DAX, and
    /// keeps it, locked as [`open`](Self::open) locks the file it opens.
    /// `path` is where `file` was opened, for messages only.
    ///
    /// `file` must be open for reading and writing. Opening it with
    /// `O_NONBLOCK` (`OpenOptionsExt::custom_flags`) keeps a FIFO found at
    /// its path from blocking the open; this call refuses the FIFO.
    ///
    /// # Errors
    /// [`io::ErrorKind::WouldBlock`] if another `Mapping` of the file lives;
    /// `EINVAL` if `file` is neither a regular file nor a Device DAX, or is
    /// empty; `EACCES` if it is not open read-write; `mmap`'s errno. `file`
    /// is closed on error, and unchanged.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::os::unix::fs::{FileExt, OpenOptionsExt};
    /// use pmem_sys::Mapping;
    /// let dir = tempfile::tempdir()?;
    /// let path = dir.path().join("pool");
    /// std::fs::write(&path, [7u8; 4096])?;
    ///
    /// let file = std::fs::OpenOptions::new()
    ///     .read(true)
    ///     .write(true)
    ///     .custom_flags(libc::O_NONBLOCK)
    ///     .open(&path)?;
    /// let mut header = [0u8; 8];
    /// file.read_exact_at(&mut header, 0)?; // look before mapping
    /// assert_eq!(header, [7; 8]);
    /// let pool = Mapping::from_file(file, &path)?;
    /// assert_eq!(pool.len(), 4096);
    /// assert_eq!(pool.as_slice()[4095], 7);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn from_file(file: File, path: impl AsRef<Path>) -> io::Result<Self> {
        Self::from_file_with_sysfs(file, path.as_ref(), Sysfs::system())
    }

    /// [`from_file`](Self::from_file) reading platform facts from `sysfs`.
    fn from_file_with_sysfs(file: File, path: &Path, sysfs: &Sysfs) -> io::Result<Self> {
        Ok(Self::owning(map::map_open_file(file, path, sysfs)?, path))
    }

    /// Maps an unnamed temporary file of `len` bytes in directory `dir`.
    ///
    /// # Errors
    /// As for [`map_file`](crate::map_file) with [`MapFlags::TMPFILE`].
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_sys::{CopyFlags, Mapping};
    /// let dir = tempfile::tempdir()?;
    /// let mut scratch = Mapping::tmpfile(dir.path(), 4096)?;
    /// scratch.write(0, b"scratch", CopyFlags::empty())?;
    /// assert_eq!(&scratch.as_slice()[..7], b"scratch");
    /// assert_eq!(std::fs::read_dir(dir.path())?.count(), 0, "the file has no name");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn tmpfile(dir: impl AsRef<Path>, len: usize) -> io::Result<Self> {
        Self::map(dir, len, MapFlags::CREATE | MapFlags::TMPFILE, 0o600)
    }

    /// [`map_file`](crate::map_file) with any flags, owning the result and
    /// the file, locked (see [one mapping per file](Self#one-mapping-per-file)).
    ///
    /// # Errors
    /// [`io::ErrorKind::WouldBlock`] if another `Mapping` of the file lives:
    /// the file is left as it was (it is locked before it is sized).
    /// Otherwise as for [`map_file`](crate::map_file).
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_sys::{MapFlags, Mapping};
    /// let dir = tempfile::tempdir()?;
    /// let path = dir.path().join("pool");
    /// // A sparse file: its blocks are allocated when first written.
    /// let pool = Mapping::map(&path, 1 << 16, MapFlags::CREATE | MapFlags::SPARSE, 0o600)?;
    /// assert_eq!(pool.len(), 1 << 16);
    /// // Without CREATE, the length must be 0 (the file's own).
    /// let err = Mapping::map(&path, 4096, MapFlags::empty(), 0).unwrap_err();
    /// assert_eq!(err.raw_os_error(), Some(libc::EINVAL));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn map(path: impl AsRef<Path>, len: usize, flags: MapFlags, mode: u32) -> io::Result<Self> {
        Self::map_with_sysfs(path.as_ref(), len, flags, mode, Sysfs::system())
    }

    /// [`map`](Self::map) reading platform facts from `sysfs`.
    fn map_with_sysfs(
        path: &Path,
        len: usize,
        flags: MapFlags,
        mode: u32,
        sysfs: &Sysfs,
    ) -> io::Result<Self> {
        let mapped = map::map_path(path, len, flags, mode, sysfs, Lock::Exclusive)?;
        Ok(Self::owning(mapped, path))
    }

    /// Owns a mapping made (and locked) by `map::map_path` or `map::map_open_file`.
    fn owning(mapped: MappedFile, path: &Path) -> Self {
        let MappedFile {
            file,
            kind,
            sparse,
            raw,
        } = mapped;
        debug_assert!(raw.len > 0);
        // INVARIANT: `raw` was just made, maps the first `raw.len > 0` bytes
        // of `file` (which is that long) and is owned by nothing else; `file`
        // was locked before it was sized.
        Self {
            ptr: NonNull::new(raw.addr).unwrap_or_else(|| null_mapping()),
            len: raw.len,
            is_pmem: raw.is_pmem,
            backing: Some(Backing {
                file,
                path: path.to_owned(),
                kind,
                sparse,
            }),
        }
    }

    /// Takes ownership of a mapping made by [`map_file`](crate::map_file).
    /// Such a `Mapping` has no file and takes no lock:
    /// [`resize`](Self::resize) refuses it.
    ///
    /// # Safety
    /// `raw` came from [`map_file`](crate::map_file) (or
    /// [`Mapping::into_raw`]), is still mapped, and nothing else will use or
    /// unmap it. For as long as the `Mapping` lives, nothing else writes its
    /// bytes or makes the file shorter than the mapping: what the lock of a
    /// `Mapping` made from a path ensures among cooperating openers.
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_sys::{MapFlags, Mapping, map_file};
    /// let dir = tempfile::tempdir()?;
    /// let raw = map_file(dir.path().join("pool"), 4096, MapFlags::CREATE, 0o600)?;
    /// // SAFETY: `raw` was just made by `map_file`, and nothing else will use or
    /// // unmap it: from here on, `pool` owns it.
    /// let pool = unsafe { Mapping::from_raw(raw) };
    /// assert_eq!((pool.as_ptr(), pool.len()), (raw.addr.cast_const(), raw.len));
    /// drop(pool); // unmaps
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub unsafe fn from_raw(raw: RawMapping) -> Self {
        debug_assert!(raw.len > 0);
        // INVARIANT: the caller hands over a live mapping of `raw.len > 0`
        // bytes, owned by nothing else; there is no backing file.
        Self {
            ptr: NonNull::new(raw.addr).unwrap_or_else(|| null_mapping()),
            len: raw.len,
            is_pmem: raw.is_pmem,
            backing: None,
        }
    }

    /// Gives up ownership without unmapping. The file (if any) is closed,
    /// but its lock lasts until the mapping is unmapped: a mapping keeps the
    /// open file description that holds the lock.
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_sys::{Mapping, raw};
    /// let dir = tempfile::tempdir()?;
    /// let pool = Mapping::create(dir.path().join("pool"), 4096)?;
    /// let addr = pool.as_ptr();
    /// let m = pool.into_raw(); // still mapped; now ours to unmap
    /// assert_eq!((m.addr.cast_const(), m.len), (addr, 4096));
    /// // SAFETY: `m` is the mapping `pool` owned, and nothing uses it any more.
    /// unsafe { raw::unmap(m.addr, m.len)? };
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[must_use]
    pub fn into_raw(mut self) -> RawMapping {
        drop(self.backing.take());
        let raw = RawMapping {
            addr: self.ptr.as_ptr(),
            len: self.len,
            is_pmem: self.is_pmem,
        };
        std::mem::forget(self);
        raw
    }

    /// Makes the file and the mapping `new_len` bytes long, through the
    /// descriptor this mapping holds: never by path, so a file renamed or
    /// replaced since it was opened is still the one resized, and the lock
    /// is kept throughout.
    ///
    /// The bytes up to the shorter length are kept, added bytes read as
    /// zeros, and the blocks of a file that grows are allocated
    /// (`posix_fallocate`) unless the mapping was made with
    /// [`MapFlags::SPARSE`]. The new length is mapped anew, with `MAP_SYNC`
    /// where the file system has it, so the address may change (`&mut self`
    /// means no reference into the old mapping is alive) and so may
    /// [`is_pmem`](Self::is_pmem).
    ///
    /// # Errors
    /// Nothing is changed on error:
    /// - [`io::ErrorKind::Unsupported`] for a mapping without a file (made by
    ///   [`from_raw`](Self::from_raw)) or of a Device DAX, whose size is fixed;
    /// - [`io::ErrorKind::InvalidInput`] if `new_len` is 0 or above `i64::MAX`;
    /// - the errno of `ftruncate`, `posix_fallocate` (`ENOSPC`) or `mmap`: the
    ///   mapping is the old one and the file has its old length again.
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_sys::{CopyFlags, Mapping};
    /// let dir = tempfile::tempdir()?;
    /// let path = dir.path().join("pool");
    /// let mut pool = Mapping::create(&path, 4096)?;
    /// pool.write(0, b"kept", CopyFlags::empty())?;
    ///
    /// std::fs::rename(&path, dir.path().join("renamed"))?;
    /// pool.resize(16384)?; // the file it maps, whatever its name now
    /// assert_eq!(pool.len(), 16384);
    /// assert_eq!(std::fs::metadata(dir.path().join("renamed"))?.len(), 16384);
    /// assert_eq!(&pool.as_slice()[..4], b"kept");
    /// assert!(pool.as_slice()[4096..].iter().all(|&b| b == 0));
    ///
    /// let zero = pool.resize(0).unwrap_err();
    /// assert_eq!(zero.kind(), std::io::ErrorKind::InvalidInput);
    /// assert_eq!(pool.len(), 16384);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn resize(&mut self, new_len: usize) -> io::Result<()> {
        let Some(backing) = &self.backing else {
            return Err(errormsg::described(
                io::ErrorKind::Unsupported,
                "resize: the mapping has no file (it was made by Mapping::from_raw)",
                None,
            ));
        };
        if let FileKind::DeviceDax { .. } = backing.kind {
            return Err(errormsg::described(
                io::ErrorKind::Unsupported,
                format_args!(
                    "resize {}: a Device DAX has a fixed size",
                    backing.path.display()
                ),
                None,
            ));
        }
        if new_len == 0 || i64::try_from(new_len).is_err() {
            return Err(errormsg::described(
                io::ErrorKind::InvalidInput,
                format_args!(
                    "resize {} to {new_len} bytes: expected 1 to {} bytes",
                    backing.path.display(),
                    i64::MAX
                ),
                None,
            ));
        }
        if new_len == self.len {
            return Ok(());
        }
        let fresh = map::resize_and_map(
            &backing.file,
            &backing.path,
            self.len,
            new_len,
            backing.sparse,
        )?;
        let (old_ptr, old_len) = (self.ptr, self.len);
        // INVARIANT: `fresh` maps the first `new_len > 0` bytes of the same
        // locked file, which is now that long, and is known to nothing else.
        self.ptr = NonNull::new(fresh.addr).unwrap_or_else(|| null_mapping());
        self.len = fresh.len;
        self.is_pmem = fresh.is_pmem;
        // SAFETY: the old range was this value's alone (the invariant), and
        // `&mut self` means no reference into it is alive; nothing points to
        // it any more. An error (impossible for a live page-aligned mapping)
        // leaves only a leak.
        let _ = unsafe { raw::unmap(old_ptr.as_ptr(), old_len) };
        Ok(())
    }

    /// Length in bytes.
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_sys::Mapping;
    /// let dir = tempfile::tempdir()?;
    /// let pool = Mapping::create(dir.path().join("pool"), 4096)?;
    /// assert_eq!(pool.len(), 4096);
    /// assert_eq!(pool.as_slice().len(), pool.len());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[must_use]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Always `false`: mappings are never empty. (For API symmetry with `len`.)
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_sys::Mapping;
    /// let dir = tempfile::tempdir()?;
    /// let pool = Mapping::create(dir.path().join("pool"), 4096)?;
    /// assert!(!pool.is_empty());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether the mapping is persistent memory (see [`raw::is_pmem`]).
    /// If not, [`msync`](Self::msync) is what makes data durable.
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_sys::{Mapping, raw};
    /// let dir = tempfile::tempdir()?;
    /// let pool = Mapping::create(dir.path().join("pool"), 4096)?;
    /// assert_eq!(pool.is_pmem(), raw::is_pmem(pool.as_ptr(), pool.len()));
    /// if !pool.is_pmem() {
    ///     println!("{} is not persistent memory: use msync", dir.path().display());
    /// }
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[must_use]
    pub fn is_pmem(&self) -> bool {
        self.is_pmem
    }

    /// Start of the mapping.
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_sys::Mapping;
    /// let dir = tempfile::tempdir()?;
    /// let pool = Mapping::create(dir.path().join("pool"), 4096)?;
    /// let p = pool.as_ptr();
    /// assert!((p as usize).is_multiple_of(4096), "mappings start on a page");
    /// assert_eq!(p, pool.as_slice().as_ptr());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[must_use]
    pub fn as_ptr(&self) -> *const u8 {
        self.ptr.as_ptr()
    }

    /// Start of the mapping, for writing.
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_sys::Mapping;
    /// let dir = tempfile::tempdir()?;
    /// let mut pool = Mapping::create(dir.path().join("pool"), 4096)?;
    /// let p = pool.as_mut_ptr().cast::<u64>();
    /// // SAFETY: `p` is page-aligned, so aligned for u64, and the mapping (alive while
    /// // `pool` is) has room for 8 bytes.
    /// unsafe { p.write(0x0123_4567_89ab_cdef) };
    /// pool.persist(..8)?;
    /// assert_eq!(pool.as_slice()[..8], 0x0123_4567_89ab_cdef_u64.to_ne_bytes());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[must_use]
    pub fn as_mut_ptr(&mut self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    /// The mapped bytes.
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_sys::{CopyFlags, Mapping};
    /// let dir = tempfile::tempdir()?;
    /// let mut pool = Mapping::create(dir.path().join("pool"), 4096)?;
    /// pool.write(10, b"abc", CopyFlags::empty())?;
    /// let bytes = pool.as_slice();
    /// assert_eq!(bytes.len(), 4096);
    /// assert_eq!(&bytes[10..13], b"abc");
    /// assert!(bytes[13..].iter().all(|&b| b == 0), "a new file reads as zeros");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[must_use]
    pub fn as_slice(&self) -> &[u8] {
        // SAFETY:
        // - the invariant makes `ptr..ptr + len` live, readable memory for
        //   as long as `self` is borrowed, and the file at least that long;
        // - nothing writes those bytes meanwhile: this value writes only
        //   through `&mut self`, and no other mapping or writer of the file
        //   exists among cooperating openers while its lock is held (see
        //   "One mapping per file"; `from_raw`'s caller promises the same).
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }

    /// The mapped bytes, for writing. Flush what you change
    /// ([`persist`](Self::persist)) to make it durable.
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_sys::Mapping;
    /// let dir = tempfile::tempdir()?;
    /// let mut pool = Mapping::create(dir.path().join("pool"), 4096)?;
    /// pool.as_mut_slice()[..4].copy_from_slice(&7u32.to_le_bytes());
    /// pool.sync(..4)?; // plain stores: make them durable explicitly
    /// assert_eq!(pool.as_slice()[..4], 7u32.to_le_bytes());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[must_use]
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: as for `as_slice`; `&mut self` makes the borrow exclusive
        // within this process, and the lock among cooperating openers.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }

    /// Checks `range` against the mapping and resolves it to offsets.
    ///
    /// # Errors
    /// [`OutOfBounds`] if the range extends past the end.
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_sys::{Mapping, OutOfBounds};
    /// let dir = tempfile::tempdir()?;
    /// let pool = Mapping::create(dir.path().join("pool"), 4096)?;
    /// assert_eq!(pool.check_range(..), Ok(0..4096));
    /// assert_eq!(pool.check_range(10..=19), Ok(10..20));
    /// assert_eq!(pool.check_range(4000..), Ok(4000..4096));
    /// assert_eq!(
    ///     pool.check_range(4000..5000),
    ///     Err(OutOfBounds { start: 4000, end: Some(5000), len: 4096 })
    /// );
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn check_range(&self, range: impl RangeBounds<usize>) -> Result<Range<usize>, OutOfBounds> {
        let start = match range.start_bound() {
            Bound::Included(&s) => s,
            Bound::Excluded(&s) => s.checked_add(1).ok_or(OutOfBounds {
                start: s,
                end: None,
                len: self.len,
            })?,
            Bound::Unbounded => 0,
        };
        let end = match range.end_bound() {
            Bound::Included(&e) => e.checked_add(1),
            Bound::Excluded(&e) => Some(e),
            Bound::Unbounded => Some(self.len),
        };
        match end {
            Some(end) if start <= end && end <= self.len => Ok(start..end),
            _ => Err(OutOfBounds {
                start,
                end,
                len: self.len,
            }),
        }
    }

    fn checked_at(&self, offset: usize, len: usize) -> Result<*mut u8, OutOfBounds> {
        let end = offset.checked_add(len);
        match end {
            Some(end) if end <= self.len => Ok(self.ptr.as_ptr().wrapping_add(offset)),
            _ => Err(OutOfBounds {
                start: offset,
                end,
                len: self.len,
            }),
        }
    }

    /// Copies `buf.len()` bytes at `offset` into `buf`.
    ///
    /// # Errors
    /// [`OutOfBounds`] if the bytes are not all in the mapping.
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_sys::{CopyFlags, Mapping};
    /// let dir = tempfile::tempdir()?;
    /// let mut pool = Mapping::create(dir.path().join("pool"), 4096)?;
    /// pool.write(4092, &[1, 2, 3, 4], CopyFlags::empty())?;
    /// let mut buf = [0u8; 4];
    /// pool.read(4092, &mut buf)?;
    /// assert_eq!(buf, [1, 2, 3, 4]);
    /// assert!(pool.read(4093, &mut buf).is_err(), "one byte past the end");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn read(&self, offset: usize, buf: &mut [u8]) -> Result<(), OutOfBounds> {
        let src = self.checked_at(offset, buf.len())?;
        // SAFETY: `src..src + buf.len()` is inside the mapping (checked); `buf`
        // is a distinct Rust allocation, so they do not overlap.
        unsafe { std::ptr::copy_nonoverlapping(src, buf.as_mut_ptr(), buf.len()) };
        Ok(())
    }

    /// Copies `data` to `offset` with libpmem's `pmem_memcpy`: durable on
    /// return unless `flags` contain `NODRAIN` or `NOFLUSH`.
    ///
    /// # Errors
    /// [`OutOfBounds`] if the destination is not all in the mapping.
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_sys::{CopyFlags, Mapping};
    /// let dir = tempfile::tempdir()?;
    /// let mut pool = Mapping::create(dir.path().join("pool"), 4096)?;
    /// pool.write(0, b"header", CopyFlags::empty())?; // durable on return (on PM)
    /// // Several writes, one fence:
    /// pool.write(64, b"a", CopyFlags::NODRAIN)?;
    /// pool.write(128, b"b", CopyFlags::NODRAIN)?;
    /// pool.drain();
    /// assert_eq!(&pool.as_slice()[..6], b"header");
    /// assert_eq!(pool.as_slice()[128], b'b');
    /// assert!(pool.write(4095, b"too long", CopyFlags::empty()).is_err());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn write(
        &mut self,
        offset: usize,
        data: &[u8],
        flags: CopyFlags,
    ) -> Result<(), OutOfBounds> {
        let dst = self.checked_at(offset, data.len())?;
        // SAFETY: the destination is inside the mapping (checked), which
        // `&mut self` lets us write; `data` is readable for its length.
        unsafe { Engine::global().memcpy(dst, data.as_ptr(), data.len(), flags) };
        Ok(())
    }

    /// Fills `range` with `byte` with `pmem_memset`.
    ///
    /// # Errors
    /// [`OutOfBounds`] if the range is not all in the mapping.
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_sys::{CopyFlags, Mapping};
    /// let dir = tempfile::tempdir()?;
    /// let mut pool = Mapping::create(dir.path().join("pool"), 4096)?;
    /// pool.fill(16..32, 0xFF, CopyFlags::empty())?;
    /// assert_eq!(pool.as_slice()[15], 0);
    /// assert!(pool.as_slice()[16..32].iter().all(|&b| b == 0xFF));
    /// assert_eq!(pool.as_slice()[32], 0);
    /// assert!(pool.fill(4000..=4096, 0, CopyFlags::empty()).is_err());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn fill(
        &mut self,
        range: impl RangeBounds<usize>,
        byte: u8,
        flags: CopyFlags,
    ) -> Result<(), OutOfBounds> {
        let range = self.check_range(range)?;
        let dst = self.ptr.as_ptr().wrapping_add(range.start);
        // SAFETY: the range is inside the mapping (checked) and `&mut self` lets us write it.
        unsafe { Engine::global().memset(dst, byte, range.len(), flags) };
        Ok(())
    }

    /// Copies the bytes of `src` to `dest` within the mapping with
    /// `pmem_memmove` (the two may overlap).
    ///
    /// # Errors
    /// [`OutOfBounds`] if either range is not all in the mapping.
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_sys::{CopyFlags, Mapping};
    /// let dir = tempfile::tempdir()?;
    /// let mut pool = Mapping::create(dir.path().join("pool"), 4096)?;
    /// pool.write(0, b"abcdef", CopyFlags::empty())?;
    /// pool.copy_within(0..6, 2, CopyFlags::empty())?; // overlapping is fine
    /// assert_eq!(&pool.as_slice()[..8], b"ababcdef");
    /// assert!(pool.copy_within(0..6, 4092, CopyFlags::empty()).is_err());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn copy_within(
        &mut self,
        src: impl RangeBounds<usize>,
        dest: usize,
        flags: CopyFlags,
    ) -> Result<(), OutOfBounds> {
        let src = self.check_range(src)?;
        let dst = self.checked_at(dest, src.len())?;
        let from = self.ptr.as_ptr().wrapping_add(src.start);
        // SAFETY: both ranges are inside the mapping (checked); memmove allows overlap.
        unsafe { Engine::global().memmove(dst, from, src.len(), flags) };
        Ok(())
    }

    /// Writes back the cache lines of `range` without waiting; see [`drain`](Self::drain).
    ///
    /// # Errors
    /// [`OutOfBounds`] if the range is not all in the mapping.
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_sys::Mapping;
    /// let dir = tempfile::tempdir()?;
    /// let mut pool = Mapping::create(dir.path().join("pool"), 4096)?;
    /// pool.as_mut_slice()[0] = 1;
    /// pool.as_mut_slice()[2048] = 2;
    /// pool.flush(0..1)?;
    /// pool.flush(2048..2049)?;
    /// pool.drain(); // one fence for both flushes
    /// assert_eq!((pool.as_slice()[0], pool.as_slice()[2048]), (1, 2));
    /// assert!(pool.flush(..=4096).is_err());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn flush(&self, range: impl RangeBounds<usize>) -> Result<(), OutOfBounds> {
        let range = self.check_range(range)?;
        // SAFETY: the range is inside the live mapping (checked).
        unsafe { Engine::global().flush(self.ptr.as_ptr().wrapping_add(range.start), range.len()) };
        Ok(())
    }

    /// Waits for earlier flushes to complete ([`raw::drain`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_sys::{CopyFlags, Mapping};
    /// let dir = tempfile::tempdir()?;
    /// let mut pool = Mapping::create(dir.path().join("pool"), 4096)?;
    /// for (i, word) in [b"one", b"two"].into_iter().enumerate() {
    ///     pool.write(i * 64, word, CopyFlags::NODRAIN)?;
    /// }
    /// pool.drain(); // both writes complete
    /// assert_eq!(&pool.as_slice()[64..67], b"two");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn drain(&self) {
        Engine::global().drain();
    }

    /// Makes `range` durable by flushing and draining: for persistent memory.
    /// Use [`msync`](Self::msync) for mappings that are not.
    ///
    /// # Errors
    /// [`OutOfBounds`] if the range is not all in the mapping.
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_sys::Mapping;
    /// let dir = tempfile::tempdir()?;
    /// let mut pool = Mapping::create(dir.path().join("pool"), 4096)?;
    /// pool.as_mut_slice()[..5].copy_from_slice(b"hello");
    /// pool.persist(..5)?; // durable if `pool.is_pmem()`; otherwise see `msync`
    /// assert_eq!(&pool.as_slice()[..5], b"hello");
    /// assert!(pool.persist(4096..4097).is_err());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn persist(&self, range: impl RangeBounds<usize>) -> Result<(), OutOfBounds> {
        let range = self.check_range(range)?;
        // SAFETY: the range is inside the live mapping (checked).
        unsafe {
            Engine::global().persist(self.ptr.as_ptr().wrapping_add(range.start), range.len())
        };
        Ok(())
    }

    /// Makes `range` durable with `msync`: works for every mapping.
    ///
    /// # Errors
    /// [`OutOfBounds`], or `msync`'s errno.
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_sys::Mapping;
    /// let dir = tempfile::tempdir()?;
    /// let path = dir.path().join("pool");
    /// let mut pool = Mapping::create(&path, 4096)?;
    /// pool.as_mut_slice()[100..105].copy_from_slice(b"hello");
    /// pool.msync(100..105)?;
    /// assert_eq!(&std::fs::read(&path)?[100..105], b"hello");
    /// let err = pool.msync(..5000).unwrap_err();
    /// assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn msync(&self, range: impl RangeBounds<usize>) -> io::Result<()> {
        let range = self.check_range(range)?;
        raw::msync(self.ptr.as_ptr().wrapping_add(range.start), range.len())
    }

    /// Persists `range` in whichever way this mapping needs: flush and drain
    /// for persistent memory, `msync` otherwise.
    ///
    /// # Errors
    /// As for [`msync`](Self::msync).
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_sys::Mapping;
    /// let dir = tempfile::tempdir()?;
    /// let path = dir.path().join("pool");
    /// let mut pool = Mapping::create(&path, 4096)?;
    /// pool.as_mut_slice()[..5].copy_from_slice(b"hello");
    /// pool.sync(..5)?; // persist or msync, as the mapping needs
    /// assert_eq!(&std::fs::read(&path)?[..5], b"hello");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn sync(&self, range: impl RangeBounds<usize>) -> io::Result<()> {
        if self.is_pmem {
            Ok(self.persist(range)?)
        } else {
            self.msync(range)
        }
    }

    /// [`raw::deep_persist`] on `range`.
    ///
    /// # Errors
    /// [`OutOfBounds`], or the error of the deep drain.
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_sys::Mapping;
    /// let dir = tempfile::tempdir()?;
    /// let path = dir.path().join("pool");
    /// let mut pool = Mapping::create(&path, 4096)?;
    /// pool.as_mut_slice()[..8].copy_from_slice(&1u64.to_le_bytes());
    /// pool.deep_persist(..8)?;
    /// assert_eq!(std::fs::read(&path)?[..8], 1u64.to_le_bytes());
    /// assert!(pool.deep_persist(..4097).is_err());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn deep_persist(&self, range: impl RangeBounds<usize>) -> io::Result<()> {
        let range = self.check_range(range)?;
        // SAFETY: the range is inside the live mapping (checked).
        unsafe { raw::deep_persist(self.ptr.as_ptr().wrapping_add(range.start), range.len()) }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: the invariant makes the mapping ours alone, and it is being
        // dropped, so nothing uses it any more. An error (which cannot happen
        // for a live page-aligned mapping) leaves only a leak.
        let _ = unsafe { raw::unmap(self.ptr.as_ptr(), self.len) };
    }
}

#[cold]
#[track_caller]
fn null_mapping() -> ! {
    panic!("Mapping::from_raw: null address")
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt;

    use super::*;
    use crate::sysfs::fake;

    /// A fake sysfs in which `/dev/zero` is a Device DAX of 4 MiB.
    fn zero_as_dax() -> (tempfile::TempDir, Sysfs) {
        let dir = tempfile::tempdir().unwrap();
        let rdev = std::fs::metadata("/dev/zero").unwrap().rdev();
        fake::add_device_dax(dir.path(), libc::major(rdev), libc::minor(rdev), 4 << 20, 0);
        let sysfs = Sysfs::at(dir.path());
        (dir, sysfs)
    }

    #[test]
    fn a_device_dax_keeps_its_size() {
        let (_tree, sysfs) = zero_as_dax();
        let zero = Path::new("/dev/zero");
        let mut dax = Mapping::map_with_sysfs(zero, 0, MapFlags::empty(), 0, &sysfs).unwrap();
        assert_eq!(dax.len(), 4 << 20);
        for new_len in [8 << 20, 1 << 20] {
            let err = dax.resize(new_len).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::Unsupported, "{err}");
            assert!(err.to_string().contains("Device DAX"), "{err}");
        }
        assert_eq!(dax.len(), 4 << 20);

        // Locked like a file, whether opened by path or handed over.
        let err = Mapping::map_with_sysfs(zero, 0, MapFlags::empty(), 0, &sysfs).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock, "{err}");
        drop(dax);
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(zero)
            .unwrap();
        let dax = Mapping::from_file_with_sysfs(file, zero, &sysfs).unwrap();
        assert_eq!(dax.len(), 4 << 20, "the device's size, not st_size");
        if std::env::var_os("PMEM_IS_PMEM_FORCE").is_none() {
            assert!(
                dax.is_pmem(),
                "a Device DAX in a region is persistent memory"
            );
        }
    }

    #[test]
    fn a_character_device_that_is_not_dax_is_refused_by_descriptor() {
        let (_tree, sysfs) = zero_as_dax();
        let null = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/null")
            .unwrap();
        let err = Mapping::from_file_with_sysfs(null, Path::new("/dev/null"), &sysfs).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EINVAL));
        assert_eq!(
            errormsg::errormsg(),
            "/dev/null is neither a regular file nor a Device DAX"
        );
    }
}
