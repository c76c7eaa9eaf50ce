//! The medium a pool lives on: the one place its stores, flushes and fences
//! go through.
//!
//! [`FileMedium`] is persistent memory (or a file standing in for it) mapped
//! with pmem-sys. The crash simulator provides another medium that records
//! every store, flush and fence and keeps what is merely written apart from
//! what is durable. Pools are generic over the medium, so the file medium
//! costs nothing: its methods inline to pmem-sys calls.

use std::fs::{File, OpenOptions, TryLockError};
use std::panic::Location;
use std::path::{Path, PathBuf};

use pmem_sys::{CopyFlags, Engine, MapFlags, Mapping};

use crate::error::{Error, Result};

/// Bytes that persist, and the operations that make them persist.
///
/// Offsets are from the start of the medium. A pool guarantees, through
/// Rust's borrow rules, that no reference into the bytes a writing method
/// touches is alive while it runs.
///
/// # Safety
///
/// Implementations guarantee that [`base`](Self::base) points to
/// [`len`](Self::len) bytes, valid for reads and writes, aligned to at least
/// 4096, that stay valid (and do not move) until the medium is dropped or
/// [`grow`](Self::grow) is called.
pub unsafe trait Medium: Send + Sync {
    /// Start of the bytes.
    fn base(&self) -> *mut u8;

    /// Number of bytes.
    fn len(&self) -> usize;

    /// Whether the medium has no bytes.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Starts writing back the cache lines of `[offset, offset + len)`.
    /// Bytes changed through [`base`](Self::base) since the last flush of their
    /// line are among those written back.
    fn flush(&self, offset: usize, len: usize);

    /// Waits until everything flushed before, and every non-temporal store,
    /// is durable.
    fn fence(&self);

    /// [`flush`](Self::flush) then [`fence`](Self::fence).
    fn persist(&self, offset: usize, len: usize) {
        self.flush(offset, len);
        self.fence();
    }

    /// Copies `bytes` to `offset` and flushes them (no fence). With
    /// `nontemporal`, whole lines may bypass the cache.
    ///
    /// # Safety
    /// `offset + bytes.len() <= len()`, and no reference to those bytes is alive.
    unsafe fn write(&self, offset: usize, bytes: &[u8], nontemporal: bool);

    /// Fills `len` bytes at `offset` with `byte` and flushes them (no fence).
    ///
    /// # Safety
    /// `offset + len <= len()`, and no reference to those bytes is alive.
    unsafe fn fill(&self, offset: usize, byte: u8, len: usize, nontemporal: bool);

    /// Stores `value` at the 8-aligned `offset` with one failure-atomic
    /// 8-byte store (no flush).
    ///
    /// # Safety
    /// `offset` is 8-aligned, `offset + 8 <= len()`, and no reference to those
    /// bytes is alive.
    unsafe fn store_u64(&self, offset: usize, value: u64);

    /// Tells the medium which operation the following stores, flushes and
    /// fences belong to, and where the program called it. The crash simulator
    /// uses this to name crash points; other media ignore it.
    #[inline]
    fn note(&self, operation: &'static str, at: &'static Location<'static>) {
        let _ = (operation, at);
    }

    /// Makes the medium at least `new_len` bytes long; [`base`](Self::base)
    /// may change. The bytes already there are kept.
    ///
    /// # Errors
    /// The medium cannot grow.
    fn grow(&mut self, new_len: usize) -> Result<()>;
}

/// A pool file mapped with pmem-sys, locked against other openers.
///
/// On persistent memory (or with `PMEM_IS_PMEM_FORCE=1`), flushing uses the
/// cache-flush instructions; on an ordinary file it uses `msync`, as
/// libpmemobj does.
#[derive(Debug)]
pub struct FileMedium {
    mapping: Mapping,
    // Holds the advisory lock for as long as the pool is open.
    _lock: File,
    path: PathBuf,
    is_pmem: bool,
}

impl FileMedium {
    /// Creates the file at `path`, which must not exist, with `len` bytes, maps and locks it.
    ///
    /// # Errors
    /// [`Error::Io`] from creating or mapping the file; [`Error::AlreadyOpen`]
    /// if someone locked it first.
    pub fn create(path: impl AsRef<Path>, len: usize) -> Result<Self> {
        let path = path.as_ref();
        let mapping = Mapping::create_new(path, len)
            .map_err(|e| Error::io(format_args!("create {}", path.display()), e))?;
        let file = lock(path)?;
        Ok(Self::with(mapping, file, path))
    }

    /// Opens, locks and maps the existing file at `path`.
    ///
    /// # Errors
    /// [`Error::AlreadyOpen`] if another handle has it open;
    /// [`Error::Truncated`] if it is shorter than `min_len`; [`Error::Io`].
    pub fn open(path: impl AsRef<Path>, min_len: usize) -> Result<Self> {
        let path = path.as_ref();
        let file = lock(path)?;
        let found = file
            .metadata()
            .map_err(|e| Error::io(format_args!("stat {}", path.display()), e))?
            .len();
        if found < min_len as u64 {
            return Err(Error::Truncated {
                expected: min_len as u64,
                found,
            });
        }
        let mapping = Mapping::open(path)
            .map_err(|e| Error::io(format_args!("map {}", path.display()), e))?;
        Ok(Self::with(mapping, file, path))
    }

    fn with(mapping: Mapping, file: File, path: &Path) -> Self {
        let is_pmem = mapping.is_pmem();
        Self {
            mapping,
            _lock: file,
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

    /// The pool file.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the mapping is persistent memory (flushes), or not (msync).
    #[must_use]
    pub fn is_pmem(&self) -> bool {
        self.is_pmem
    }
}

/// Opens `path` read-write and takes an exclusive advisory lock on it.
fn lock(path: &Path) -> Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(|e| Error::io(format_args!("open {}", path.display()), e))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(TryLockError::WouldBlock) => Err(Error::AlreadyOpen {
            path: path.to_owned(),
        }),
        Err(TryLockError::Error(e)) => Err(Error::io(format_args!("lock {}", path.display()), e)),
    }
}

// SAFETY: the mapping is page-aligned and `len` bytes long, owned by this
// value, and replaced only by `grow`.
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
        debug_assert!(offset + len <= self.len());
        if self.is_pmem {
            // SAFETY: the range is inside the live mapping (debug-asserted; the pool checks).
            unsafe { Engine::global().flush(self.base().add(offset), len) }
        } else {
            // msync only fails for ranges outside the mapping, which the pool never passes.
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
        // CREATE on an existing file resizes it and allocates its blocks, as
        // pmem_map_file does; the lock stays with `self._lock`.
        let mapping = Mapping::map(&self.path, new_len, MapFlags::CREATE, 0o600).map_err(|e| {
            Error::io(
                format_args!("grow {} to {new_len} bytes", self.path.display()),
                e,
            )
        })?;
        self.is_pmem = mapping.is_pmem();
        self.mapping = mapping;
        Ok(())
    }
}
