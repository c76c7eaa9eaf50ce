//! libpmem's functions, one for one, for callers who manage memory
//! themselves. The safe [`Mapping`](crate::Mapping) is built on these.
//!
//! | libpmem | here |
//! |---|---|
//! | `pmem_map_file` | [`map_file`](crate::map_file) |
//! | `pmem_unmap` | [`unmap`] |
//! | `pmem_is_pmem` | [`is_pmem`] |
//! | `pmem_flush`, `pmem_drain`, `pmem_persist` | [`flush`], [`drain`], [`persist`] |
//! | `pmem_msync` | [`msync`] |
//! | `pmem_deep_flush`, `pmem_deep_drain`, `pmem_deep_persist` | [`deep_flush`], [`deep_drain`], [`deep_persist`] |
//! | `pmem_has_hw_drain`, `pmem_has_auto_flush` | [`has_hw_drain`], [`has_auto_flush`] |
//! | `pmem_memmove`, `pmem_memcpy`, `pmem_memset` | [`memmove`], [`memcpy`], [`memset`] |
//! | `..._persist`, `..._nodrain` | [`memcpy_persist`], [`memmove_nodrain`], ... |
//! | `pmem_check_version`, `pmem_errormsg` | [`check_version`], [`errormsg`] |

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::Path;
use std::sync::OnceLock;

use crate::arch;
use crate::config::parse_c_integer;
use crate::engine::Engine;
use crate::errormsg;
use crate::flags::CopyFlags;
use crate::registry::{RangeKind, Registry};
use crate::sys;
use crate::sysfs::{AutoFlush, Sysfs};

/// libpmem's major version, as in `libpmem.h`.
///
/// # Examples
///
/// ```
/// use pmem_sys::raw;
/// assert!(raw::check_version(raw::MAJOR_VERSION, 0).is_ok());
/// assert!(raw::check_version(raw::MAJOR_VERSION + 1, 0).is_err());
/// ```
pub const MAJOR_VERSION: u32 = 1;
/// libpmem's minor version, as in `libpmem.h`.
///
/// # Examples
///
/// ```
/// use pmem_sys::raw;
/// assert!(raw::check_version(1, raw::MINOR_VERSION).is_ok());
/// assert!(raw::check_version(1, raw::MINOR_VERSION + 1).is_err());
/// ```
pub const MINOR_VERSION: u32 = 1;

/// What `PMEM_IS_PMEM_FORCE` says, read once.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Forced {
    Never,
    Always,
    Detect,
}

fn forced() -> Forced {
    static FORCED: OnceLock<Forced> = OnceLock::new();
    *FORCED.get_or_init(|| match std::env::var("PMEM_IS_PMEM_FORCE") {
        // libpmem parses the value with atoi().
        Ok(value) => match parse_c_integer(&value) {
            0 => Forced::Never,
            1 => Forced::Always,
            _ => Forced::Detect,
        },
        Err(_) => Forced::Detect,
    })
}

/// Whether all of `[addr, addr + len)` is persistent memory: mapped with
/// `MAP_SYNC` or from a Device DAX, so that flushing from user space makes
/// stores durable. `len == 0` is never persistent memory.
///
/// `PMEM_IS_PMEM_FORCE=1` makes every non-empty range persistent memory (to
/// exercise the flush path on ordinary files), `=0` none. Thread-safe.
///
/// # Examples
///
/// ```
/// let on_stack = [0u8; 64];
/// if std::env::var_os("PMEM_IS_PMEM_FORCE").is_none() {
///     assert!(!pmem_sys::raw::is_pmem(on_stack.as_ptr(), on_stack.len()));
/// }
/// assert!(!pmem_sys::raw::is_pmem(on_stack.as_ptr(), 0));
/// ```
#[must_use]
pub fn is_pmem(addr: *const u8, len: usize) -> bool {
    if len == 0 {
        return false;
    }
    match forced() {
        Forced::Never => false,
        Forced::Always => true,
        // Without flush instructions that reach the media, a flush would do
        // nothing: such ranges are persisted with `msync` instead.
        Forced::Detect => {
            arch::FLUSH_REACHES_MEDIA && Registry::global().covers(addr as usize, len)
        }
    }
}

/// Writes back the cache lines of `[addr, addr + len)` without waiting
/// (nothing on platforms whose caches are persistent). Follow with [`drain`].
///
/// # Safety
/// The range is mapped (readable).
///
/// # Examples
///
/// ```
/// use pmem_sys::{Mapping, raw};
/// let dir = tempfile::tempdir()?;
/// let mut pool = Mapping::create(dir.path().join("pool"), 4096)?;
/// pool.as_mut_slice()[..5].copy_from_slice(b"head.");
/// pool.as_mut_slice()[2048..2053].copy_from_slice(b"tail.");
/// let p = pool.as_ptr();
/// // SAFETY: bytes 0..5 and 2048..2053 lie inside the 4096-byte mapping, which
/// // `pool` keeps alive.
/// unsafe {
///     raw::flush(p, 5);
///     raw::flush(p.add(2048), 5);
/// }
/// raw::drain(); // one fence for both flushes
/// // Durable now if `pool.is_pmem()`; otherwise only `msync` makes it so.
/// assert_eq!(&pool.as_slice()[2048..2053], b"tail.");
/// # Ok::<(), std::io::Error>(())
/// ```
#[inline]
pub unsafe fn flush(addr: *const u8, len: usize) {
    // SAFETY: forwarded from the caller.
    unsafe { Engine::global().flush(addr, len) }
}

/// Waits for earlier flushes and non-temporal stores to become durable.
///
/// # Examples
///
/// ```
/// use pmem_sys::{Mapping, raw};
/// let dir = tempfile::tempdir()?;
/// let mut pool = Mapping::create(dir.path().join("pool"), 4096)?;
/// let p = pool.as_mut_ptr();
/// // SAFETY: bytes 0..5 and 64..70 lie inside the 4096-byte mapping, which `pool`
/// // keeps alive; the sources are separate constants.
/// unsafe {
///     raw::memcpy_nodrain(p, b"first".as_ptr(), 5);
///     raw::memcpy_nodrain(p.add(64), b"second".as_ptr(), 6);
/// }
/// raw::drain(); // waits for both copies at once
/// assert_eq!(&pool.as_slice()[..5], b"first");
/// assert_eq!(&pool.as_slice()[64..70], b"second");
/// # Ok::<(), std::io::Error>(())
/// ```
#[inline]
pub fn drain() {
    Engine::global().drain();
}

/// Makes `[addr, addr + len)` durable: [`flush`] then [`drain`].
///
/// # Safety
/// The range is mapped (readable).
///
/// # Examples
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// let m = pmem_sys::map_file(dir.path().join("p"), 4096, pmem_sys::MapFlags::CREATE, 0o600)?;
/// // SAFETY: the mapping is 4096 bytes long and nothing else uses it.
/// unsafe {
///     m.addr.cast::<u64>().write(42);
///     pmem_sys::raw::persist(m.addr, 8);
///     pmem_sys::raw::unmap(m.addr, m.len)?;
/// }
/// # Ok::<(), std::io::Error>(())
/// ```
#[inline]
pub unsafe fn persist(addr: *const u8, len: usize) {
    // SAFETY: forwarded from the caller.
    unsafe { Engine::global().persist(addr, len) }
}

/// Makes `[addr, addr + len)` durable with `msync(MS_SYNC)`, for mappings
/// that are not persistent memory. `addr` is rounded down to its page.
///
/// # Errors
/// `msync`'s errno: `ENOMEM` if the range is not mapped.
///
/// # Examples
///
/// ```
/// use pmem_sys::{Mapping, raw};
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("pool");
/// let mut pool = Mapping::create(&path, 4096)?;
/// pool.as_mut_slice()[100..105].copy_from_slice(b"hello");
/// // `addr` need not be page-aligned: it is rounded down to its page.
/// raw::msync(pool.as_ptr().wrapping_add(100), 5)?;
/// assert_eq!(&std::fs::read(&path)?[100..105], b"hello");
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn msync(addr: *const u8, len: usize) -> io::Result<()> {
    let offset = addr as usize % sys::page_size();
    // SAFETY: the start is page-aligned; the kernel validates the range.
    unsafe { sys::msync(addr.wrapping_sub(offset), len.saturating_add(offset)) }
        .map_err(|e| errormsg::os("msync", e))
}

/// Writes back the cache lines of the range with the flush instruction,
/// even where ordinary flushes are skipped (eADR, `PMEM_NO_FLUSH=1`).
///
/// # Safety
/// The range is mapped.
///
/// # Examples
///
/// ```
/// use pmem_sys::{Mapping, raw};
/// let dir = tempfile::tempdir()?;
/// let mut pool = Mapping::create(dir.path().join("pool"), 4096)?;
/// pool.as_mut_slice()[..4].copy_from_slice(&7u32.to_le_bytes());
/// // SAFETY: bytes 0..4 lie inside the mapping, which `pool` keeps alive.
/// unsafe { raw::deep_flush(pool.as_ptr(), 4) }; // flushes even under eADR
/// raw::deep_drain(pool.as_ptr(), 4)?;
/// assert_eq!(pool.as_slice()[..4], 7u32.to_le_bytes());
/// # Ok::<(), std::io::Error>(())
/// ```
#[inline]
pub unsafe fn deep_flush(addr: *const u8, len: usize) {
    // SAFETY: forwarded from the caller.
    unsafe { Engine::global().deep_flush(addr, len) }
}

/// Makes earlier writes to the range durable beyond the memory controller's
/// queues: `msync` for files (DAX file systems or not), a write to the
/// region's `deep_flush` control for Device DAX.
///
/// # Errors
/// `msync`'s errno. Device DAX ranges never fail: as in libpmem, a
/// `deep_flush` control that cannot be read or written is skipped.
///
/// # Examples
///
/// ```
/// use pmem_sys::{CopyFlags, Mapping, raw};
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("pool");
/// let mut pool = Mapping::create(&path, 4096)?;
/// pool.write(0, b"log entry", CopyFlags::empty())?; // copied and flushed
/// raw::deep_drain(pool.as_ptr(), 9)?; // a file: this is an msync
/// assert_eq!(&std::fs::read(&path)?[..9], b"log entry");
/// assert!(raw::deep_drain(pool.as_ptr(), 0).is_ok(), "nothing to drain");
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn deep_drain(addr: *const u8, len: usize) -> io::Result<()> {
    if len == 0 {
        return Ok(());
    }
    let start = addr as usize;
    let end = start.saturating_add(len);
    let mut at = start;
    let mut result = Ok(());
    let mut keep_first = |r: io::Result<()>| {
        if result.is_ok() {
            result = r;
        }
    };
    for (piece_start, piece_end, kind) in Registry::global().pieces(start, len) {
        if piece_start > at {
            keep_first(msync(addr.with_addr(at), piece_start - at));
        }
        match kind {
            RangeKind::DeviceDax { deep_flush } => {
                drain();
                request_region_flush(&deep_flush);
            }
            RangeKind::MapSync => {
                keep_first(msync(addr.with_addr(piece_start), piece_end - piece_start));
            }
        }
        at = piece_end;
    }
    if at < end {
        keep_first(msync(addr.with_addr(at), end - at));
    }
    result
}

/// Asks an NVDIMM region to flush its write-pending queues as libpmem does:
/// only if its `deep_flush` control reads two bytes other than `0\n` (flush
/// not needed), by writing `1` to it, never creating or truncating it.
/// Failures are ignored, as libpmem ignores them.
fn request_region_flush(control: &Path) {
    let mut value = [0u8; 2];
    let needed = File::open(control)
        .and_then(|mut file| file.read(&mut value))
        .is_ok_and(|n| n == 2 && value != *b"0\n");
    if needed {
        let _ = OpenOptions::new()
            .write(true)
            .open(control)
            .and_then(|mut file| file.write_all(b"1"));
    }
}

/// [`deep_flush`] then [`deep_drain`].
///
/// # Safety
/// The range is mapped.
///
/// # Errors
/// As for [`deep_drain`].
///
/// # Examples
///
/// ```
/// use pmem_sys::{Mapping, raw};
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("pool");
/// let mut pool = Mapping::create(&path, 4096)?;
/// pool.as_mut_slice()[..8].copy_from_slice(&42u64.to_le_bytes());
/// // SAFETY: bytes 0..8 lie inside the mapping, which `pool` keeps alive.
/// unsafe { raw::deep_persist(pool.as_ptr(), 8)? };
/// assert_eq!(std::fs::read(&path)?[..8], 42u64.to_le_bytes());
/// # Ok::<(), std::io::Error>(())
/// ```
pub unsafe fn deep_persist(addr: *const u8, len: usize) -> io::Result<()> {
    // SAFETY: forwarded from the caller.
    unsafe { deep_flush(addr, len) };
    deep_drain(addr, len)
}

/// Whether the platform drains by hardware: never, on the platforms libpmem
/// supports.
///
/// # Examples
///
/// ```
/// // So a flush is only durable after `drain` (or a `_persist` function).
/// assert!(!pmem_sys::raw::has_hw_drain());
/// ```
#[must_use]
pub fn has_hw_drain() -> bool {
    false
}

/// Whether the platform flushes caches on power loss (eADR); sysfs is read
/// afresh on each call.
///
/// # Examples
///
/// ```
/// use pmem_sys::{AutoFlush, Sysfs, raw};
/// let auto = raw::has_auto_flush();
/// assert_eq!(auto, Sysfs::system().auto_flush(), "what /sys reports");
/// assert!([1, 0, -1].contains(&auto.as_c_int()));
/// if auto == AutoFlush::Yes {
///     println!("eADR: stores are durable once they reach the caches");
/// }
/// ```
#[must_use]
pub fn has_auto_flush() -> AutoFlush {
    Sysfs::system().auto_flush()
}

/// Unmaps `[addr, addr + len)` and forgets that it was persistent memory.
///
/// # Safety
/// Nothing in the process uses the range any more.
///
/// # Errors
/// `EINVAL` if `len` is 0 or `addr` is not page-aligned; `munmap`'s errno.
///
/// # Examples
///
/// ```
/// use pmem_sys::{MapFlags, map_file, raw};
/// let dir = tempfile::tempdir()?;
/// let m = map_file(dir.path().join("pool"), 4096, MapFlags::CREATE, 0o600)?;
/// // SAFETY: the range is empty, so nothing is unmapped (the call is rejected).
/// let err = unsafe { raw::unmap(m.addr, 0) }.unwrap_err();
/// assert_eq!(err.raw_os_error(), Some(libc::EINVAL));
/// // SAFETY: `m` came from `map_file` and is not used after this line.
/// unsafe { raw::unmap(m.addr, m.len)? };
/// # Ok::<(), std::io::Error>(())
/// ```
pub unsafe fn unmap(addr: *mut u8, len: usize) -> io::Result<()> {
    if len == 0 || !(addr as usize).is_multiple_of(sys::page_size()) {
        return Err(errormsg::errno(
            libc::EINVAL,
            format_args!("munmap {addr:p} {len}: address not page-aligned or length zero"),
        ));
    }
    let page_len = len
        .checked_next_multiple_of(sys::page_size())
        .unwrap_or(usize::MAX);
    Registry::global().unregister(addr as usize, page_len);
    // SAFETY: forwarded from the caller.
    unsafe { sys::munmap(addr, len) }.map_err(|e| errormsg::os("munmap", e))
}

/// `pmem_memmove`: copies `len` bytes (the ranges may overlap) and makes
/// them durable, as `flags` direct. Returns `dst`.
///
/// # Safety
/// `src` is readable and `dst` writable for `len` bytes of mapped memory.
///
/// # Examples
///
/// ```
/// use pmem_sys::{CopyFlags, Mapping, raw};
/// let dir = tempfile::tempdir()?;
/// let mut pool = Mapping::create(dir.path().join("pool"), 4096)?;
/// pool.write(0, b"abcdef", CopyFlags::empty())?;
/// let p = pool.as_mut_ptr();
/// // SAFETY: bytes 0..6 and 2..8 lie inside the 4096-byte mapping, which `pool`
/// // keeps alive; memmove allows them to overlap.
/// let ret = unsafe { raw::memmove(p.add(2), p, 6, CopyFlags::empty()) };
/// assert_eq!(ret, p.wrapping_add(2));
/// assert_eq!(&pool.as_slice()[..8], b"ababcdef");
/// # Ok::<(), std::io::Error>(())
/// ```
#[inline]
pub unsafe fn memmove(dst: *mut u8, src: *const u8, len: usize, flags: CopyFlags) -> *mut u8 {
    // SAFETY: forwarded from the caller.
    unsafe { Engine::global().memmove(dst, src, len, flags) };
    dst
}

/// `pmem_memcpy`: the same as [`memmove`], overlap included.
///
/// # Safety
/// As for [`memmove`].
///
/// # Examples
///
/// ```
/// use pmem_sys::{CopyFlags, Mapping, raw};
/// let dir = tempfile::tempdir()?;
/// let mut pool = Mapping::create(dir.path().join("pool"), 4096)?;
/// let src = [0x5Au8; 1024];
/// let p = pool.as_mut_ptr();
/// // SAFETY: bytes 0..1024 lie inside the 4096-byte mapping, which `pool` keeps
/// // alive; `src` is a separate local array.
/// let ret = unsafe { raw::memcpy(p, src.as_ptr(), src.len(), CopyFlags::NONTEMPORAL) };
/// assert_eq!(ret, p);
/// assert_eq!(&pool.as_slice()[..1024], &src[..]);
/// # Ok::<(), std::io::Error>(())
/// ```
#[inline]
pub unsafe fn memcpy(dst: *mut u8, src: *const u8, len: usize, flags: CopyFlags) -> *mut u8 {
    // SAFETY: forwarded from the caller.
    unsafe { memmove(dst, src, len, flags) }
}

/// `pmem_memset`: fills `len` bytes with `byte`, durably, as `flags` direct.
///
/// # Safety
/// `dst` is writable for `len` bytes of mapped memory.
///
/// # Examples
///
/// ```
/// use pmem_sys::{CopyFlags, Mapping, raw};
/// let dir = tempfile::tempdir()?;
/// let mut pool = Mapping::create(dir.path().join("pool"), 4096)?;
/// let p = pool.as_mut_ptr();
/// // SAFETY: bytes 0..64 lie inside the 4096-byte mapping, which `pool` keeps alive.
/// let ret = unsafe { raw::memset(p, 0xFF, 64, CopyFlags::NODRAIN) };
/// raw::drain(); // NODRAIN left the fence to us
/// assert_eq!(ret, p);
/// assert!(pool.as_slice()[..64].iter().all(|&b| b == 0xFF));
/// assert_eq!(pool.as_slice()[64], 0);
/// # Ok::<(), std::io::Error>(())
/// ```
#[inline]
pub unsafe fn memset(dst: *mut u8, byte: u8, len: usize, flags: CopyFlags) -> *mut u8 {
    // SAFETY: forwarded from the caller.
    unsafe { Engine::global().memset(dst, byte, len, flags) };
    dst
}

/// `pmem_memmove_persist`: copies and makes durable.
///
/// # Safety
/// As for [`memmove`].
///
/// # Examples
///
/// ```
/// use pmem_sys::{CopyFlags, Mapping, raw};
/// let dir = tempfile::tempdir()?;
/// let mut pool = Mapping::create(dir.path().join("pool"), 4096)?;
/// pool.write(0, b"0123456789", CopyFlags::empty())?;
/// let p = pool.as_mut_ptr();
/// // SAFETY: bytes 2..10 and 0..8 lie inside the 4096-byte mapping, which `pool`
/// // keeps alive; memmove allows them to overlap.
/// unsafe { raw::memmove_persist(p, p.add(2), 8) };
/// assert_eq!(&pool.as_slice()[..10], b"2345678989");
/// # Ok::<(), std::io::Error>(())
/// ```
#[inline]
pub unsafe fn memmove_persist(dst: *mut u8, src: *const u8, len: usize) -> *mut u8 {
    // SAFETY: forwarded from the caller.
    unsafe { memmove(dst, src, len, CopyFlags::empty()) }
}

/// `pmem_memcpy_persist`: copies and makes durable.
///
/// # Safety
/// As for [`memmove`].
///
/// # Examples
///
/// ```
/// use pmem_sys::{Mapping, raw};
/// let dir = tempfile::tempdir()?;
/// let mut pool = Mapping::create(dir.path().join("pool"), 4096)?;
/// let record = 42u64.to_le_bytes();
/// // SAFETY: bytes 0..8 lie inside the 4096-byte mapping, which `pool` keeps
/// // alive; `record` is a separate local array.
/// unsafe { raw::memcpy_persist(pool.as_mut_ptr(), record.as_ptr(), record.len()) };
/// if !pool.is_pmem() {
///     pool.msync(..8)?; // not persistent memory: flushing is not enough
/// }
/// assert_eq!(pool.as_slice()[..8], record);
/// # Ok::<(), std::io::Error>(())
/// ```
#[inline]
pub unsafe fn memcpy_persist(dst: *mut u8, src: *const u8, len: usize) -> *mut u8 {
    // SAFETY: forwarded from the caller.
    unsafe { memmove(dst, src, len, CopyFlags::empty()) }
}

/// `pmem_memset_persist`: fills and makes durable.
///
/// # Safety
/// As for [`memset`].
///
/// # Examples
///
/// ```
/// use pmem_sys::{CopyFlags, Mapping, raw};
/// let dir = tempfile::tempdir()?;
/// let mut pool = Mapping::create(dir.path().join("pool"), 4096)?;
/// pool.write(0, &[1; 32], CopyFlags::empty())?;
/// // SAFETY: bytes 8..24 lie inside the 4096-byte mapping, which `pool` keeps alive.
/// unsafe { raw::memset_persist(pool.as_mut_ptr().add(8), 0, 16) };
/// assert_eq!(pool.as_slice()[..32], [[1; 8], [0; 8], [0; 8], [1; 8]].concat());
/// # Ok::<(), std::io::Error>(())
/// ```
#[inline]
pub unsafe fn memset_persist(dst: *mut u8, byte: u8, len: usize) -> *mut u8 {
    // SAFETY: forwarded from the caller.
    unsafe { memset(dst, byte, len, CopyFlags::empty()) }
}

/// `pmem_memmove_nodrain`: copies and flushes; durable after [`drain`].
///
/// # Safety
/// `src` is readable and `dst` writable for `len` bytes of mapped memory.
///
/// # Examples
///
/// ```
/// use pmem_sys::{CopyFlags, Mapping, raw};
/// let dir = tempfile::tempdir()?;
/// let mut pool = Mapping::create(dir.path().join("pool"), 4096)?;
/// pool.write(0, b"abc", CopyFlags::empty())?;
/// let p = pool.as_mut_ptr();
/// // SAFETY: bytes 0..3, 1..4 and 4..7 lie inside the 4096-byte mapping, which
/// // `pool` keeps alive; memmove allows overlap.
/// unsafe {
///     raw::memmove_nodrain(p.add(1), p, 3);
///     raw::memmove_nodrain(p.add(4), p, 3);
/// }
/// raw::drain(); // one fence for both moves
/// assert_eq!(&pool.as_slice()[..7], b"aabcaab");
/// # Ok::<(), std::io::Error>(())
/// ```
#[inline]
pub unsafe fn memmove_nodrain(dst: *mut u8, src: *const u8, len: usize) -> *mut u8 {
    // SAFETY: forwarded from the caller.
    unsafe { Engine::global().memmove(dst, src, len, CopyFlags::NODRAIN) };
    dst
}

/// `pmem_memcpy_nodrain`: copies and flushes; durable after [`drain`].
///
/// # Safety
/// As for [`memmove_nodrain`].
///
/// # Examples
///
/// ```
/// use pmem_sys::{Mapping, raw};
/// let dir = tempfile::tempdir()?;
/// let mut pool = Mapping::create(dir.path().join("pool"), 4096)?;
/// let (key, value) = (b"name", b"Ada");
/// let p = pool.as_mut_ptr();
/// // SAFETY: bytes 0..4 and 8..11 lie inside the 4096-byte mapping, which `pool`
/// // keeps alive; the sources are separate constants.
/// unsafe {
///     raw::memcpy_nodrain(p, key.as_ptr(), key.len());
///     raw::memcpy_nodrain(p.add(8), value.as_ptr(), value.len());
/// }
/// raw::drain();
/// assert_eq!(&pool.as_slice()[..4], b"name");
/// assert_eq!(&pool.as_slice()[8..11], b"Ada");
/// # Ok::<(), std::io::Error>(())
/// ```
#[inline]
pub unsafe fn memcpy_nodrain(dst: *mut u8, src: *const u8, len: usize) -> *mut u8 {
    // SAFETY: forwarded from the caller.
    unsafe { memmove_nodrain(dst, src, len) }
}

/// `pmem_memset_nodrain`: fills and flushes; durable after [`drain`].
///
/// # Safety
/// `dst` is writable for `len` bytes of mapped memory.
///
/// # Examples
///
/// ```
/// use pmem_sys::{CopyFlags, Mapping, raw};
/// let dir = tempfile::tempdir()?;
/// let mut pool = Mapping::create(dir.path().join("pool"), 4096)?;
/// pool.write(0, &[9; 4096], CopyFlags::empty())?;
/// let p = pool.as_mut_ptr();
/// // SAFETY: bytes 0..512 and 3584..4096 lie inside the 4096-byte mapping, which
/// // `pool` keeps alive.
/// unsafe {
///     raw::memset_nodrain(p, 0, 512);
///     raw::memset_nodrain(p.add(3584), 0, 512);
/// }
/// raw::drain();
/// assert!(pool.as_slice()[..512].iter().all(|&b| b == 0));
/// assert!(pool.as_slice()[512..3584].iter().all(|&b| b == 9));
/// assert!(pool.as_slice()[3584..].iter().all(|&b| b == 0));
/// # Ok::<(), std::io::Error>(())
/// ```
#[inline]
pub unsafe fn memset_nodrain(dst: *mut u8, byte: u8, len: usize) -> *mut u8 {
    // SAFETY: forwarded from the caller.
    unsafe { Engine::global().memset(dst, byte, len, CopyFlags::NODRAIN) };
    dst
}

/// `pmem_check_version`: `Ok` if this library provides libpmem
/// `major.minor`, otherwise the reason (also recorded for
/// [`errormsg`]).
///
/// # Errors
/// `major` is not 1, or `minor` is above 1.
///
/// # Examples
///
/// ```
/// assert!(pmem_sys::raw::check_version(1, 0).is_ok());
/// assert_eq!(pmem_sys::raw::check_version(2, 0).unwrap_err(),
///            "libpmem major version mismatch (need 2, found 1)");
/// ```
pub fn check_version(major: u32, minor: u32) -> Result<(), String> {
    let problem = if major != MAJOR_VERSION {
        format!("libpmem major version mismatch (need {major}, found {MAJOR_VERSION})")
    } else if minor > MINOR_VERSION {
        format!("libpmem minor version mismatch (need {minor}, found {MINOR_VERSION})")
    } else {
        return Ok(());
    };
    errormsg::set(&problem);
    Err(problem)
}
