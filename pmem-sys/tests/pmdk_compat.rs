//! Side by side with PMDK: the same inputs given to PMDK's libpmem (loaded at
//! run time from `libpmem.so.1`) and to pmem-sys must give the same outcome:
//! the same mapped length and `is_pmem`, or the same errno, and the same
//! files afterwards (names, types, sizes, modes, contents, allocation).
//!
//! Every case runs in two fresh, identically prepared temporary directories,
//! one per implementation. Device DAX is left out: PMDK reads the real
//! `/sys`, which has none here (`map_file.rs` covers it with a fake sysfs).
//! Without libpmem installed the tests print a note and pass; CI installs it.

mod common;

use std::collections::BTreeMap;
use std::ffi::{CString, c_char, c_int, c_void};
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, OnceLock};

use common::{
    HUGE, fnv, huge_allocation_fails_fast, mapped_ranges, page_size, pattern, scratch, tree,
};
use pmem_sys::{MapFlags, RawMapping, map_file, raw};
use pmem_testkit::pmdk::{LIBPMEM, PmdkLibrary};

const CREATE: i32 = 1;
const SPARSE: i32 = 4;
const MIB: usize = 1 << 20;

type MapFileFn = unsafe extern "C" fn(
    *const c_char,
    usize,
    c_int,
    libc::mode_t,
    *mut usize,
    *mut c_int,
) -> *mut c_void;
type RangeFn = unsafe extern "C" fn(*const c_void, usize) -> c_int;
type UnmapFn = unsafe extern "C" fn(*mut c_void, usize) -> c_int;

/// PMDK's libpmem, loaded for the life of the process.
struct Pmdk {
    map_file: MapFileFn,
    unmap: UnmapFn,
    is_pmem: RangeFn,
    msync: RangeFn,
    deep_drain: RangeFn,
    _lib: PmdkLibrary,
}

/// libpmem, or `None` (with a note) if it is not installed.
fn pmdk() -> Option<&'static Pmdk> {
    static PMDK: OnceLock<Option<Pmdk>> = OnceLock::new();
    let pmdk = PMDK
        .get_or_init(|| {
            // SAFETY: libpmem's initialisers only read the environment, CPUID
            // and sysfs; the library stays loaded, as the static is never dropped.
            let lib = unsafe { PmdkLibrary::load(LIBPMEM) }.ok()?;
            // SAFETY: each type is the prototype `libpmem.h` declares for the
            // symbol, and the pointers are used only while `lib` is loaded
            // (always: it is kept beside them).
            unsafe {
                Some(Pmdk {
                    map_file: lib.function::<MapFileFn>("pmem_map_file").ok()?,
                    unmap: lib.function::<UnmapFn>("pmem_unmap").ok()?,
                    is_pmem: lib.function::<RangeFn>("pmem_is_pmem").ok()?,
                    msync: lib.function::<RangeFn>("pmem_msync").ok()?,
                    deep_drain: lib.function::<RangeFn>("pmem_deep_drain").ok()?,
                    _lib: lib,
                })
            }
        })
        .as_ref();
    if pmdk.is_none() {
        println!("libpmem not installed: side-by-side skipped");
    }
    pmdk
}

fn errno() -> i32 {
    io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// A C call's result: `Ok` for 0, otherwise the errno it set.
fn c_status(ret: c_int) -> Result<(), i32> {
    if ret == 0 { Ok(()) } else { Err(errno()) }
}

fn our_status(result: io::Result<()>) -> Result<(), i32> {
    result.map_err(|e| e.raw_os_error().expect("an errno"))
}

impl Pmdk {
    fn map(&self, path: &Path, len: usize, flags: i32, mode: u32) -> Result<RawMapping, i32> {
        let c_path = CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
        let mut mapped_len = 0usize;
        let mut is_pmem: c_int = 0;
        // SAFETY: `c_path` is NUL-terminated; the out-parameters are valid.
        let addr = unsafe {
            (self.map_file)(
                c_path.as_ptr(),
                len,
                flags,
                mode,
                &mut mapped_len,
                &mut is_pmem,
            )
        };
        if addr.is_null() {
            return Err(errno());
        }
        Ok(RawMapping {
            addr: addr.cast(),
            len: mapped_len,
            is_pmem: is_pmem != 0,
        })
    }

    /// # Safety
    /// As for `munmap`: nothing uses the range any more.
    unsafe fn unmap(&self, addr: *mut u8, len: usize) -> Result<(), i32> {
        // SAFETY: forwarded from the caller.
        c_status(unsafe { (self.unmap)(addr.cast(), len) })
    }
}

/// Which implementation a run uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Side {
    Pmdk,
    Ours,
}

impl Side {
    fn map(self, path: &Path, len: usize, flags: i32, mode: u32) -> Result<RawMapping, i32> {
        match self {
            Side::Pmdk => pmdk().unwrap().map(path, len, flags, mode),
            Side::Ours => map_file(path, len, MapFlags::from_bits_retain(flags), mode)
                .map_err(|e| e.raw_os_error().expect("an errno")),
        }
    }

    /// # Safety
    /// As for `munmap`: nothing uses the range any more.
    unsafe fn unmap(self, addr: *mut u8, len: usize) -> Result<(), i32> {
        match self {
            // SAFETY: forwarded from the caller.
            Side::Pmdk => unsafe { pmdk().unwrap().unmap(addr, len) },
            // SAFETY: forwarded from the caller.
            Side::Ours => our_status(unsafe { raw::unmap(addr, len) }),
        }
    }

    fn msync(self, addr: *const u8, len: usize) -> Result<(), i32> {
        match self {
            // SAFETY: msync only asks the kernel, which validates the range.
            Side::Pmdk => c_status(unsafe { (pmdk().unwrap().msync)(addr.cast(), len) }),
            Side::Ours => our_status(raw::msync(addr, len)),
        }
    }

    fn deep_drain(self, addr: *const u8, len: usize) -> Result<(), i32> {
        match self {
            // SAFETY: for untracked ranges the deep drain is an msync, which the
            // kernel validates.
            Side::Pmdk => c_status(unsafe { (pmdk().unwrap().deep_drain)(addr.cast(), len) }),
            Side::Ours => our_status(raw::deep_drain(addr, len)),
        }
    }

    fn is_pmem(self, addr: *const u8, len: usize) -> bool {
        match self {
            // SAFETY: pmem_is_pmem only looks the range up; it never dereferences it.
            Side::Pmdk => (unsafe { (pmdk().unwrap().is_pmem)(addr.cast(), len) }) != 0,
            Side::Ours => raw::is_pmem(addr, len),
        }
    }
}

/// `ranges` as offsets from `base`.
fn relative(ranges: Vec<(usize, usize)>, base: usize) -> Vec<(usize, usize)> {
    ranges
        .into_iter()
        .map(|(start, end)| (start - base, end - base))
        .collect()
}

// ---------------------------------------------------------------------------
// map_file side by side
// ---------------------------------------------------------------------------

/// What is at the path given to `map_file`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Target {
    /// A regular file of this many bytes.
    File(usize),
    Missing,
    /// A directory with a file in it.
    Dir,
    /// A symbolic link to a missing file.
    DanglingLink,
    /// A symbolic link to a regular file.
    LinkToFile,
    Fifo,
    Socket,
    /// A path below a regular file (`file/pool`).
    BelowFile,
    /// A path in a missing directory.
    MissingParent,
    /// A missing path ending in `/`.
    TrailingSlash,
    /// `/dev/null`: a character device that is not a Device DAX.
    DevNull,
}

/// Creates `target` in `dir` and returns the path to map.
fn prepare(dir: &Path, target: Target) -> PathBuf {
    let pool = dir.join("pool");
    match target {
        Target::File(size) => fs::write(&pool, pattern(size, 3)).unwrap(),
        Target::Missing => {}
        Target::Dir => {
            fs::create_dir(&pool).unwrap();
            fs::write(pool.join("inside"), b"keep").unwrap();
        }
        Target::DanglingLink => std::os::unix::fs::symlink("target", &pool).unwrap(),
        Target::LinkToFile => {
            fs::write(dir.join("target"), pattern(64 << 10, 5)).unwrap();
            std::os::unix::fs::symlink("target", &pool).unwrap();
        }
        Target::Fifo => {
            let c_path = CString::new(pool.as_os_str().as_encoded_bytes()).unwrap();
            // SAFETY: `c_path` is a NUL-terminated path.
            let ret = unsafe { libc::mkfifo(c_path.as_ptr(), 0o644) };
            assert_eq!(ret, 0, "mkfifo: {}", io::Error::last_os_error());
        }
        Target::Socket => {
            drop(std::os::unix::net::UnixListener::bind(&pool).unwrap());
        }
        Target::BelowFile => {
            fs::write(dir.join("file"), b"file").unwrap();
            return dir.join("file/pool");
        }
        Target::MissingParent => return dir.join("nodir/pool"),
        Target::TrailingSlash => return dir.join("pool/"),
        Target::DevNull => return PathBuf::from("/dev/null"),
    }
    pool
}

/// Everything observable about one call.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    /// Mapped length and `is_pmem`, or the errno.
    result: Result<(usize, bool), i32>,
    /// Bytes allocated to the named file right after mapping.
    allocated: Option<u64>,
    /// Hash of the mapped bytes.
    content: Option<u64>,
    /// The directory afterwards (after a write through the mapping, unmapped).
    after: BTreeMap<PathBuf, String>,
}

/// Held while files are created and inspected. PMDK 1.12 as packaged makes
/// `TMPFILE` files with `mkstemp` (never `O_TMPFILE`) and sets the process
/// umask to 077 around it, so files other threads create at that moment lose
/// their group and other bits.
fn umask_guard() -> MutexGuard<'static, ()> {
    static UMASK: Mutex<()> = Mutex::new(());
    UMASK
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn run(side: Side, target: Target, flags: i32, len: usize) -> Outcome {
    let _umask = umask_guard();
    let dir = scratch("pmem-compat-");
    let path = prepare(dir.path(), target);
    let mapped = side.map(&path, len, flags, 0o640);
    let allocated = fs::metadata(&path)
        .ok()
        .filter(|m| m.is_file())
        .map(|m| m.blocks() * 512);
    let (result, content) = match mapped {
        Err(errno) => (Err(errno), None),
        Ok(m) => {
            // SAFETY: the mapping is live and only used here.
            let data = unsafe { std::slice::from_raw_parts_mut(m.addr, m.len) };
            let content = fnv(data);
            data[0] ^= 0xff;
            let last = data.len() - 1;
            data[last] ^= 0x0f;
            // SAFETY: the mapping is not used any more.
            unsafe { side.unmap(m.addr, m.len) }.expect("unmap");
            (Ok((m.len, m.is_pmem)), Some(content))
        }
    };
    Outcome {
        result,
        allocated,
        content,
        after: tree(dir.path()),
    }
}

fn compare_target(target: Target) {
    if pmdk().is_none() {
        return;
    }
    // HUGE fails after the file is open: in posix_fallocate, ftruncate or
    // mmap. Without SPARSE it is tried only where it fails at once.
    let lengths = [0, 4096, MIB, HUGE, 1 << 63, usize::MAX];
    let huge_dense_ok = huge_allocation_fails_fast(scratch("pmem-compat-").path());
    let mut differences = Vec::new();
    let mut cases = 0;
    let mut mapped = 0;
    for flags in (0..16).chain([16, 0x11, 0x100, -1]) {
        for len in lengths {
            if len == HUGE && flags & CREATE != 0 && flags & SPARSE == 0 && !huge_dense_ok {
                continue;
            }
            cases += 1;
            let theirs = run(Side::Pmdk, target, flags, len);
            let ours = run(Side::Ours, target, flags, len);
            mapped += usize::from(ours.result.is_ok());
            if theirs != ours {
                differences.push(format!(
                    "flags {flags:#x} len {len:#x}:\n  PMDK {theirs:?}\n  ours {ours:?}"
                ));
            }
        }
    }
    assert!(
        differences.is_empty(),
        "{target:?}: {} of {cases} cases differ from PMDK:\n{}",
        differences.len(),
        differences.join("\n")
    );
    println!("{target:?}: {cases} cases agree with PMDK ({mapped} mapped)");
}

#[test]
fn same_as_pmdk_existing_file() {
    compare_target(Target::File(64 << 10));
}

#[test]
fn same_as_pmdk_empty_file() {
    compare_target(Target::File(0));
}

#[test]
fn same_as_pmdk_missing_file() {
    compare_target(Target::Missing);
}

#[test]
fn same_as_pmdk_directory() {
    compare_target(Target::Dir);
}

#[test]
fn same_as_pmdk_dangling_symlink() {
    compare_target(Target::DanglingLink);
}

#[test]
fn same_as_pmdk_symlink_to_file() {
    compare_target(Target::LinkToFile);
}

#[test]
fn same_as_pmdk_fifo() {
    compare_target(Target::Fifo);
}

#[test]
fn same_as_pmdk_socket() {
    compare_target(Target::Socket);
}

#[test]
fn same_as_pmdk_below_a_file() {
    compare_target(Target::BelowFile);
}

#[test]
fn same_as_pmdk_missing_parent() {
    compare_target(Target::MissingParent);
}

#[test]
fn same_as_pmdk_trailing_slash() {
    compare_target(Target::TrailingSlash);
}

#[test]
fn same_as_pmdk_char_device_not_dax() {
    compare_target(Target::DevNull);
}

// ---------------------------------------------------------------------------
// unmap, msync, deep drain, is_pmem side by side
// ---------------------------------------------------------------------------

/// What the unmap, msync and deep-drain calls return on a fresh 4 MiB
/// mapping, and which parts of the file stay mapped.
fn range_calls(side: Side) -> Vec<(String, String)> {
    let page = page_size();
    let low = std::ptr::without_provenance::<u8>(page); // below mmap_min_addr
    let mut seen = Vec::new();
    let mut record = |what: &str, value: String| seen.push((what.to_owned(), value));
    for len in [4096, 2 * MIB, 2 * MIB - 1] {
        let dir = scratch("pmem-compat-");
        let path = dir.path().join("pool");
        let m = side.map(&path, 4 * MIB, CREATE, 0o600).unwrap();
        let base = m.addr as usize;
        // SAFETY: rejected before anything is unmapped (checked by mapped_ranges).
        let zero = unsafe { side.unmap(m.addr, 0) };
        record("unmap len 0", format!("{zero:?}"));
        // SAFETY: as above.
        let unaligned = unsafe { side.unmap(m.addr.wrapping_add(1), 4096) };
        record("unmap unaligned", format!("{unaligned:?}"));
        record(
            "mapped",
            format!("{:?}", relative(mapped_ranges(&path), base)),
        );
        record("msync", format!("{:?}", side.msync(m.addr, m.len)));
        let unaligned = side.msync(m.addr.wrapping_add(100), 10);
        record("msync unaligned", format!("{unaligned:?}"));
        record(
            "deep_drain",
            format!("{:?}", side.deep_drain(m.addr, m.len)),
        );
        // SAFETY: the first `len` bytes are not used again.
        let head = unsafe { side.unmap(m.addr, len) };
        record(&format!("unmap {len}"), format!("{head:?}"));
        record(
            "mapped",
            format!("{:?}", relative(mapped_ranges(&path), base)),
        );
        let rest = len.next_multiple_of(page);
        // SAFETY: the rest is not used again.
        let tail = unsafe { side.unmap(m.addr.wrapping_add(rest), 4 * MIB - rest) };
        record("unmap rest", format!("{tail:?}"));
        record(
            "mapped",
            format!("{:?}", relative(mapped_ranges(&path), base)),
        );
    }
    record("msync unmapped", format!("{:?}", side.msync(low, page)));
    record(
        "deep_drain unmapped",
        format!("{:?}", side.deep_drain(low, page)),
    );
    record("deep_drain len 0", format!("{:?}", side.deep_drain(low, 0)));
    let on_stack = [0u8; 64];
    record(
        "is_pmem len 0",
        format!("{}", side.is_pmem(on_stack.as_ptr(), 0)),
    );
    record(
        "is_pmem stack",
        format!("{}", side.is_pmem(on_stack.as_ptr(), 64)),
    );
    seen
}

#[test]
fn range_calls_same_as_pmdk() {
    if pmdk().is_none() {
        return;
    }
    let (theirs, ours) = {
        let _umask = umask_guard();
        (range_calls(Side::Pmdk), range_calls(Side::Ours))
    };
    assert_eq!(theirs.len(), ours.len());
    for (t, o) in theirs.iter().zip(&ours) {
        assert_eq!(t, o, "PMDK vs ours");
    }
    // The comparison is not between two no-ops: both rejected what the kernel rejects.
    let einval = Err::<(), i32>(libc::EINVAL);
    assert!(ours.contains(&("unmap len 0".to_owned(), format!("{einval:?}"))));
    let enomem = Err::<(), i32>(libc::ENOMEM);
    assert!(ours.contains(&("msync unmapped".to_owned(), format!("{enomem:?}"))));
}
