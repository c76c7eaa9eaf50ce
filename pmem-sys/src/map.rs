//! `pmem_map_file`: open or create a file (or Device DAX) and map it shared,
//! with libpmem's checks, errno values and sizing rules.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use crate::errormsg;
use crate::flags::MapFlags;
use crate::registry::{RangeKind, Registry};
use crate::sys;
use crate::sysfs::Sysfs;

const MIB: usize = 1 << 20;
const GIB: usize = 1 << 30;

/// A mapping made by [`map_file`]: where it is, how long, and whether it is
/// persistent memory. It is not unmapped on drop; see [`Mapping`](crate::Mapping)
/// for the owning type.
///
/// # Examples
///
/// ```
/// use pmem_sys::{MapFlags, Mapping, map_file, raw};
/// let dir = tempfile::tempdir()?;
/// let m = map_file(dir.path().join("pool"), 4096, MapFlags::CREATE, 0o600)?;
/// assert_eq!(m.len, 4096);
/// assert!((m.addr as usize).is_multiple_of(4096), "page-aligned");
/// assert_eq!(m.is_pmem, raw::is_pmem(m.addr, m.len));
/// // Nothing unmaps `m` on drop: hand it to a `Mapping` (or call `raw::unmap`).
/// // SAFETY: `m` was just made by `map_file`; from here on only `pool` uses it.
/// let pool = unsafe { Mapping::from_raw(m) };
/// assert_eq!(pool.len(), 4096);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawMapping {
    /// Start of the mapping (page-aligned).
    pub addr: *mut u8,
    /// Length of the mapping: the requested length, or the file's size.
    pub len: usize,
    /// Whether the whole mapping is persistent memory ([`is_pmem`](crate::raw::is_pmem)).
    pub is_pmem: bool,
}

/// What kind of file a path names (or a descriptor refers to).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FileKind {
    /// A regular file (for a path: also a directory, or nothing yet).
    Normal,
    /// A Device DAX character device.
    DeviceDax { major: u32, minor: u32 },
}

/// Whether a mapping takes the file's advisory lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Lock {
    /// None, as libpmem's `pmem_map_file`: the result is a raw pointer.
    Unlocked,
    /// `flock(LOCK_EX | LOCK_NB)` on the descriptor, taken before the file is
    /// sized, for the owning [`Mapping`](crate::Mapping).
    Exclusive,
}

/// A mapped file: the descriptor it was mapped through (holding the lock,
/// if one was taken), what it is, and the mapping.
#[derive(Debug)]
pub(crate) struct MappedFile {
    pub(crate) file: File,
    pub(crate) kind: FileKind,
    /// Made with [`MapFlags::SPARSE`]: its blocks are not allocated up front.
    pub(crate) sparse: bool,
    pub(crate) raw: RawMapping,
}

/// Maps a file as libpmem's `pmem_map_file` does.
///
/// - Without [`MapFlags::CREATE`], `len` must be 0 and the whole file is mapped.
/// - With `CREATE`, the file is created if needed (`mode` applies) and sized to
///   `len`, growing or shrinking it, with its blocks allocated unless
///   [`MapFlags::SPARSE`]. With [`MapFlags::EXCL`] it must not exist already.
/// - With `CREATE | TMPFILE`, `path` is a directory and the file is unnamed.
/// - A Device DAX path maps the whole device; `len` is 0 or its exact size.
///
/// The mapping is shared and writable; it uses `MAP_SYNC` when the file
/// system supports it, and is placed at a 2 MiB boundary (1 GiB for 2 GiB and
/// more) so that the kernel can use huge pages. As in libpmem, the file is
/// closed once mapped and not locked: another mapping of it can change its
/// bytes or length at any time, which is one reason the result is a raw
/// pointer. [`Mapping`](crate::Mapping) is the owning, locked alternative.
///
/// # Errors
///
/// The errno libpmem sets, as [`io::Error::raw_os_error`]: `EINVAL` for bad
/// flags or lengths and for unsupported file types, the errno of `open`,
/// `ftruncate`, `posix_fallocate` or `mmap` otherwise. On error, a file this
/// call created with `CREATE | EXCL` is removed. [`errormsg`](crate::errormsg)
/// describes the failure.
///
/// # Examples
///
/// ```
/// use pmem_sys::{MapFlags, map_file, raw};
/// let dir = tempfile::tempdir()?;
/// let m = map_file(dir.path().join("pool"), 1 << 20, MapFlags::CREATE, 0o600)?;
/// assert_eq!(m.len, 1 << 20);
/// // SAFETY: the mapping is ours and nothing else uses it.
/// unsafe { raw::unmap(m.addr, m.len)? };
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn map_file(
    path: impl AsRef<Path>,
    len: usize,
    flags: MapFlags,
    mode: u32,
) -> io::Result<RawMapping> {
    map_file_with_sysfs(path.as_ref(), len, flags, mode, Sysfs::system())
}

/// [`map_file`] reading platform facts from `sysfs` instead of `/sys`.
///
/// # Errors
/// As for [`map_file`].
///
/// # Examples
///
/// ```
/// use std::os::unix::fs::{MetadataExt, symlink};
/// use std::path::Path;
/// use pmem_sys::{MapFlags, Sysfs, map_file_with_sysfs};
///
/// let rdev = std::fs::metadata("/dev/null")?.rdev();
/// let (major, minor) = (libc::major(rdev), libc::minor(rdev));
/// // A fake /sys in which that character device belongs to `mem`, not `dax`.
/// let fake = tempfile::tempdir()?;
/// let dev = fake.path().join(format!("dev/char/{major}:{minor}"));
/// std::fs::create_dir_all(&dev)?;
/// std::fs::create_dir_all(fake.path().join("class/mem"))?;
/// symlink(fake.path().join("class/mem"), dev.join("subsystem"))?;
///
/// let sysfs = Sysfs::at(fake.path());
/// let err = map_file_with_sysfs(Path::new("/dev/null"), 0, MapFlags::empty(), 0, &sysfs)
///     .unwrap_err();
/// assert_eq!(err.raw_os_error(), Some(libc::EINVAL));
/// assert_eq!(pmem_sys::errormsg(), "/dev/null is a character device but not a Device DAX");
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn map_file_with_sysfs(
    path: &Path,
    len: usize,
    flags: MapFlags,
    mode: u32,
    sysfs: &Sysfs,
) -> io::Result<RawMapping> {
    map_path(path, len, flags, mode, sysfs, Lock::Unlocked).map(|mapped| mapped.raw)
}

/// [`map_file_with_sysfs`], keeping the descriptor, and with `lock`
/// taking the file's advisory lock right after opening it.
pub(crate) fn map_path(
    path: &Path,
    len: usize,
    flags: MapFlags,
    mode: u32,
    sysfs: &Sysfs,
    lock: Lock,
) -> io::Result<MappedFile> {
    let kind = file_kind(path, sysfs)?;

    let unknown = flags.bits() & !MapFlags::all().bits();
    if unknown != 0 {
        return Err(errormsg::errno(
            libc::EINVAL,
            format_args!("invalid flag specified {unknown:#x}"),
        ));
    }

    let (flags, len) = match kind {
        FileKind::Normal => (flags, len),
        FileKind::DeviceDax { major, minor } => {
            if !(MapFlags::CREATE | MapFlags::SPARSE).contains(flags) {
                return Err(errormsg::errno(
                    libc::EINVAL,
                    format_args!("flag unsupported for Device DAX {:#x}", flags.bits()),
                ));
            }
            let size = sysfs.device_dax_size(major, minor).map_err(|e| {
                errormsg::errno(
                    libc::EINVAL,
                    format_args!("unable to read Device DAX size: {e}"),
                )
            })?;
            if len != 0 && len as u64 != size {
                return Err(errormsg::errno(
                    libc::EINVAL,
                    format_args!(
                        "Device DAX length must be either 0 or the exact size of the device: {size}"
                    ),
                ));
            }
            (MapFlags::empty(), 0)
        }
    };

    let create = flags.contains(MapFlags::CREATE);
    if create && i64::try_from(len).is_err() {
        return Err(errormsg::errno(
            libc::EINVAL,
            format_args!("invalid file length {len}"),
        ));
    }
    if len != 0 && !create {
        return Err(errormsg::errno(
            libc::EINVAL,
            "non-zero 'len' not allowed without PMEM_FILE_CREATE",
        ));
    }
    if len == 0 && create {
        return Err(errormsg::errno(
            libc::EINVAL,
            "zero 'len' not allowed with PMEM_FILE_CREATE",
        ));
    }
    if flags.contains(MapFlags::TMPFILE) && !create {
        return Err(errormsg::errno(
            libc::EINVAL,
            "PMEM_FILE_TMPFILE not allowed without PMEM_FILE_CREATE",
        ));
    }

    let excl = flags.contains(MapFlags::EXCL);
    let (file, remove_on_error) = if flags.contains(MapFlags::TMPFILE) {
        (open_tmpfile(path, excl)?, false)
    } else {
        // O_NONBLOCK changes nothing for regular files and Device DAX; it
        // keeps the open from blocking should a FIFO have replaced the file
        // since the stat above (it is refused below). std adds O_CLOEXEC.
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(create)
            .custom_flags(libc::O_NONBLOCK | if excl { libc::O_EXCL } else { 0 })
            .mode(mode)
            .open(path)
            .map_err(|e| errormsg::os(format_args!("open {}", path.display()), e))?;
        (file, create && excl)
    };

    let result = check_and_map(&file, path, len, flags, kind, sysfs, lock);
    match result {
        Ok(raw) => Ok(MappedFile {
            file,
            kind,
            sparse: flags.contains(MapFlags::SPARSE),
            raw,
        }),
        Err(e) => {
            if remove_on_error {
                // Best effort: the error being reported matters more than this one.
                let _ = fs::remove_file(path);
            }
            Err(e)
        }
    }
}

/// Maps the whole of `file`, which was opened read-write at `path`, after
/// locking it exclusively: what [`Mapping::from_file`](crate::Mapping::from_file) does.
pub(crate) fn map_open_file(file: File, path: &Path, sysfs: &Sysfs) -> io::Result<MappedFile> {
    let kind = descriptor_kind(&file, path, sysfs)?;
    let raw = check_and_map(
        &file,
        path,
        0,
        MapFlags::empty(),
        kind,
        sysfs,
        Lock::Exclusive,
    )?;
    Ok(MappedFile {
        file,
        kind,
        sparse: false,
        raw,
    })
}

/// Checks that the open `file` is still what its path was (`kind`), takes
/// the lock if asked (before anything changes the file), then sizes and maps it.
fn check_and_map(
    file: &File,
    path: &Path,
    len: usize,
    flags: MapFlags,
    kind: FileKind,
    sysfs: &Sysfs,
    lock: Lock,
) -> io::Result<RawMapping> {
    if descriptor_kind(file, path, sysfs)? != kind {
        return Err(errormsg::errno(
            libc::EINVAL,
            format_args!("{} changed while it was being opened", path.display()),
        ));
    }
    if lock == Lock::Exclusive {
        lock_exclusive(file, path)?;
    }
    size_and_map(file, path, len, flags, kind, sysfs)
}

/// What the open `file` is, from `fstat`: a regular file or a Device DAX;
/// anything else is `EINVAL`.
fn descriptor_kind(file: &File, path: &Path, sysfs: &Sysfs) -> io::Result<FileKind> {
    let meta = file
        .metadata()
        .map_err(|e| errormsg::os(format_args!("fstat {}", path.display()), e))?;
    let file_type = meta.file_type();
    if file_type.is_file() {
        return Ok(FileKind::Normal);
    }
    if file_type.is_char_device() {
        let (major, minor) = sys::device_numbers(meta.rdev());
        if sysfs.is_device_dax(major, minor).unwrap_or(false) {
            return Ok(FileKind::DeviceDax { major, minor });
        }
    }
    Err(errormsg::errno(
        libc::EINVAL,
        format_args!(
            "{} is neither a regular file nor a Device DAX",
            path.display()
        ),
    ))
}

/// Takes an exclusive `flock` on `file`'s open file description, without
/// waiting. A conflict is `ErrorKind::WouldBlock`, with a message naming
/// `path` and the `EWOULDBLOCK` of `flock` as its source.
fn lock_exclusive(file: &File, path: &Path) -> io::Result<()> {
    // std's `try_lock` is `flock(fd, LOCK_EX | LOCK_NB)` on Linux.
    match file.try_lock() {
        Ok(()) => Ok(()),
        Err(TryLockError::WouldBlock) => {
            let source = io::Error::from_raw_os_error(libc::EWOULDBLOCK);
            Err(errormsg::described(
                io::ErrorKind::WouldBlock,
                format_args!(
                    "{} is locked by another Mapping or process (flock: {})",
                    path.display(),
                    errormsg::strerror(&source)
                ),
                Some(source),
            ))
        }
        Err(TryLockError::Error(e)) => {
            Err(errormsg::os(format_args!("flock {}", path.display()), e))
        }
    }
}

/// Classifies `path` as libpmem does: a missing file is "normal" (it may be
/// created), regular files and directories are normal, a character device
/// must be a Device DAX, anything else is `EINVAL`.
fn file_kind(path: &Path, sysfs: &Sysfs) -> io::Result<FileKind> {
    let meta = match fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(FileKind::Normal),
        Err(e) => return Err(errormsg::os(format_args!("stat {}", path.display()), e)),
    };
    let file_type = meta.file_type();
    if file_type.is_file() || file_type.is_dir() {
        return Ok(FileKind::Normal);
    }
    if file_type.is_char_device() {
        let (major, minor) = sys::device_numbers(meta.rdev());
        return match sysfs.is_device_dax(major, minor) {
            Ok(true) => Ok(FileKind::DeviceDax { major, minor }),
            Ok(false) => Err(errormsg::errno(
                libc::EINVAL,
                format_args!(
                    "{} is a character device but not a Device DAX",
                    path.display()
                ),
            )),
            Err(e) => Err(errormsg::os(
                format_args!(
                    "realpath {}/dev/char/{major}:{minor}/subsystem",
                    sysfs.root().display()
                ),
                e,
            )),
        };
    }
    Err(errormsg::errno(
        libc::EINVAL,
        format_args!(
            "{} is neither a file, a directory nor a Device DAX",
            path.display()
        ),
    ))
}

/// An unnamed file in directory `dir`: `O_TMPFILE`, or an unlinked `mkstemp`
/// file where the file system lacks it.
fn open_tmpfile(dir: &Path, excl: bool) -> io::Result<File> {
    let opened = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_TMPFILE | if excl { libc::O_EXCL } else { 0 })
        .mode(0o600)
        .open(dir);
    match opened {
        Ok(file) => Ok(file),
        Err(e) if e.raw_os_error() == Some(libc::EOPNOTSUPP) => sys::mkstemp_unlinked(dir)
            .map_err(|e| errormsg::os(format_args!("mkstemp in {}", dir.display()), e)),
        Err(e) => Err(errormsg::os(format_args!("open {}", dir.display()), e)),
    }
}

/// Sizes the open file as `flags` ask, maps it and registers the mapping.
fn size_and_map(
    file: &File,
    path: &Path,
    len: usize,
    flags: MapFlags,
    kind: FileKind,
    sysfs: &Sysfs,
) -> io::Result<RawMapping> {
    let len = if flags.contains(MapFlags::CREATE) {
        set_size(file, len, flags.contains(MapFlags::SPARSE))?;
        len
    } else {
        let size = match kind {
            FileKind::Normal => file.metadata().map(|m| m.len()),
            FileKind::DeviceDax { major, minor } => sysfs.device_dax_size(major, minor),
        }
        .map_err(|e| errormsg::os(format_args!("stat {}", path.display()), e))?;
        usize::try_from(size).map_err(|_| {
            errormsg::errno(
                libc::EFBIG,
                format_args!("{} is too large to map", path.display()),
            )
        })?
    };
    if len == 0 {
        return Err(errormsg::errno(
            libc::EINVAL,
            format_args!("{} is empty", path.display()),
        ));
    }
    map_shared(file, len, kind, sysfs)
}

/// Makes `file` `len` bytes long (`ftruncate`), with its blocks allocated
/// (`posix_fallocate`) unless `sparse`.
fn set_size(file: &File, len: usize, sparse: bool) -> io::Result<()> {
    file.set_len(len as u64)
        .map_err(|e| errormsg::os("ftruncate", e))?;
    if !sparse {
        sys::fallocate(file, len as u64).map_err(|e| errormsg::os("posix_fallocate", e))?;
    }
    Ok(())
}

/// Maps the first `len` bytes of `file` shared (with `MAP_SYNC` where the
/// file system has it) at a placement that suits huge pages, and registers
/// the range if it is persistent memory.
fn map_shared(file: &File, len: usize, kind: FileKind, sysfs: &Sysfs) -> io::Result<RawMapping> {
    let required_align = match kind {
        FileKind::DeviceDax { major, minor } => sysfs.device_dax_alignment(major, minor),
        FileKind::Normal => None,
    };
    let hint = placement_hint(len, required_align.and_then(|a| usize::try_from(a).ok()));

    let (addr, map_sync) =
        match sys::mmap_shared(hint, len, libc::MAP_SHARED_VALIDATE | libc::MAP_SYNC, file) {
            Ok(addr) => (addr, true),
            Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL | libc::EOPNOTSUPP)) => {
                let addr = sys::mmap_shared(hint, len, libc::MAP_SHARED, file)
                    .map_err(|e| errormsg::os("mmap", e))?;
                (addr, false)
            }
            Err(e) => return Err(errormsg::os("mmap", e)),
        };

    let registered = match kind {
        FileKind::DeviceDax { major, minor } => {
            // libpmem does not track a Device DAX whose NVDIMM region it
            // cannot find: the mapping works, but `is_pmem` says no and a deep
            // drain is an msync.
            let deep_flush = sysfs.region_deep_flush(major, minor).ok();
            deep_flush.map(|path| RangeKind::DeviceDax {
                deep_flush: Arc::new(path),
            })
        }
        FileKind::Normal if map_sync => Some(RangeKind::MapSync),
        FileKind::Normal => None,
    };
    if let Some(range_kind) = registered {
        Registry::global().register(addr as usize, len, range_kind);
    }
    let is_pmem = crate::raw::is_pmem(addr, len);
    Ok(RawMapping { addr, len, is_pmem })
}

/// Changes the regular file `file` (`path`), mapped with `old_len` bytes,
/// to `new_len` bytes and maps the new length anew, as [`size_and_map`]
/// does at open: its blocks allocated unless `sparse`, `MAP_SYNC` where
/// possible, registered if persistent memory.
///
/// The old mapping stays: the caller switches to the new one and unmaps it.
/// A file that shrinks is cut only once the new mapping exists, and a file
/// that grows is extended before it is mapped, so the old mapping never
/// extends past the end of the file while it can still be used. On error
/// nothing new is mapped and the file has its old length again (a failed
/// `posix_fallocate` or `mmap` after growing it truncates it back).
pub(crate) fn resize_and_map(
    file: &File,
    path: &Path,
    old_len: usize,
    new_len: usize,
    sparse: bool,
) -> io::Result<RawMapping> {
    debug_assert!(new_len > 0 && new_len != old_len);
    let grows = new_len > old_len;
    let undo = |e: io::Error| {
        if grows {
            // Best effort: the error being reported matters more than this one.
            let _ = file.set_len(old_len as u64);
        }
        e
    };
    if grows {
        set_size(file, new_len, sparse).map_err(undo)?;
    }
    let raw = map_shared(file, new_len, FileKind::Normal, Sysfs::system()).map_err(undo)?;
    if !grows && let Err(e) = file.set_len(new_len as u64) {
        // SAFETY: `raw` was mapped just above and is known to nothing else.
        let _ = unsafe { crate::raw::unmap(raw.addr, raw.len) };
        return Err(errormsg::os(
            format_args!("ftruncate {}", path.display()),
            e,
        ));
    }
    Ok(raw)
}

/// Where to ask the kernel to put a mapping of `len` bytes: a free spot
/// aligned to 2 MiB (1 GiB for 2 GiB and more, or the device's alignment if
/// larger), or above `PMEM_MMAP_HINT` if that is set. 0 means no preference.
fn placement_hint(len: usize, required_align: Option<usize>) -> usize {
    let default_align = if len >= 2 * GIB { GIB } else { 2 * MIB };
    let align = required_align
        .filter(|a| a.is_power_of_two())
        .map_or(default_align, |a| a.max(default_align));
    if let Some(base) = env_hint() {
        return unused_range_above(base, len, align, &proc_maps()).unwrap_or(0);
    }
    let Some(reserve) = len.checked_add(align) else {
        return 0;
    };
    sys::free_address_space(reserve)
        .and_then(|addr| addr.checked_next_multiple_of(align))
        .unwrap_or(0)
}

/// `PMEM_MMAP_HINT`, read once: a hexadecimal address, as libpmem parses it.
fn env_hint() -> Option<usize> {
    static HINT: OnceLock<Option<usize>> = OnceLock::new();
    *HINT.get_or_init(|| {
        let text = std::env::var("PMEM_MMAP_HINT").ok()?;
        let text = text.trim_start();
        let hex = text
            .strip_prefix("0x")
            .or_else(|| text.strip_prefix("0X"))
            .unwrap_or(text);
        let digits: String = hex.chars().take_while(char::is_ascii_hexdigit).collect();
        usize::from_str_radix(&digits, 16).ok()
    })
}

/// The mapped ranges of this process, from `/proc/self/maps`, in address order.
fn proc_maps() -> Vec<(usize, usize)> {
    let text = fs::read_to_string(PathBuf::from("/proc/self/maps")).unwrap_or_default();
    text.lines()
        .filter_map(|line| {
            let range = line.split_whitespace().next()?;
            let (start, end) = range.split_once('-')?;
            Some((
                usize::from_str_radix(start, 16).ok()?,
                usize::from_str_radix(end, 16).ok()?,
            ))
        })
        .collect()
}

/// The lowest `align`-aligned address at or above `base` where `len` bytes
/// fit between the `mapped` ranges (sorted by address).
fn unused_range_above(
    base: usize,
    len: usize,
    align: usize,
    mapped: &[(usize, usize)],
) -> Option<usize> {
    let mut candidate = base.checked_next_multiple_of(align)?;
    for &(start, end) in mapped {
        if end <= candidate {
            continue;
        }
        if start >= candidate.checked_add(len)? {
            break;
        }
        candidate = end.checked_next_multiple_of(align)?;
    }
    candidate.checked_add(len).map(|_| candidate)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unused_range_skips_mappings() {
        let maps = [(0x1000, 0x3000), (0x200000, 0x300000), (0x400000, 0x500000)];
        assert_eq!(unused_range_above(0x0, 0x1000, 0x1000, &maps), Some(0x0));
        assert_eq!(
            unused_range_above(0x1000, 0x1000, 0x1000, &maps),
            Some(0x3000)
        );
        assert_eq!(
            unused_range_above(0x0, 0x200000, 0x200000, &maps),
            Some(0x600000)
        );
        assert_eq!(
            unused_range_above(0x300000, 0x100000, 0x100000, &maps),
            Some(0x300000)
        );
        assert_eq!(
            unused_range_above(usize::MAX - 10, 0x1000, 0x1000, &maps),
            None
        );
    }

    #[test]
    fn hint_is_aligned() {
        let hint = placement_hint(4 * MIB, None);
        assert!(hint.is_multiple_of(2 * MIB), "{hint:#x}");
        let hint = placement_hint(4 * MIB, Some(GIB));
        assert!(hint.is_multiple_of(GIB), "{hint:#x}");
    }
}
