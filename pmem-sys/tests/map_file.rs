//! Integration tests for [`pmem_sys::map_file`] and the calls that work on
//! its mappings (`unmap`, `is_pmem`, `msync`, the deep drain, `errormsg`),
//! ported from PMDK's libpmem tests (`pmem_map_file`, `pmem_is_pmem`,
//! `pmem_unmap`, `pmem_deep_persist`).
//!
//! Expected outcomes come from [`model`], written from the ordered checks in
//! the behaviour document (`docs/libpmem-behaviour.md`), never from the code
//! under test. Device DAX is simulated: `/dev/zero` is declared a Device DAX
//! in a fake sysfs tree laid out as the kernel does, and mapped with
//! [`map_file_with_sysfs`].
//!
//! Block allocation, as observed on tmpfs (`/dev/shm`) and ext4: `ftruncate`
//! allocates nothing, `posix_fallocate` allocates every block, and mapping a
//! file allocates nothing until pages are touched (on tmpfs even a read
//! fault through a shared mapping allocates the page). So `st_blocks` read
//! right after `map_file`, before touching the mapping, tells a `SPARSE`
//! creation from a full one.
//!
//! Expectations about `is_pmem` honour `PMEM_IS_PMEM_FORCE` if the test run
//! sets it; the forced answers themselves are checked in child processes.

mod common;

use std::ffi::OsString;
use std::fs;
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Barrier;

use pmem_sys::{MapFlags, RawMapping, Sysfs, map_file, map_file_with_sysfs, raw};
use proptest::prelude::*;
use tempfile::TempDir;

use common::{
    HUGE, huge_allocation_fails_fast, mapped_ranges, on_tmpfs, page_size, pattern, scratch, tree,
};

const CREATE: i32 = 1;
const EXCL: i32 = 2;
const SPARSE: i32 = 4;
const TMPFILE: i32 = 8;

const KIB: usize = 1 << 10;
const MIB: usize = 1 << 20;
/// The size of the fake Device DAX.
const DAX_SIZE: usize = 4 * MIB;
/// The size of the existing file in the matrix: between the lengths tried,
/// so that `CREATE` both shrinks and grows it.
const EXISTING_SIZE: usize = 64 * KIB;

/// Every flag combination, then unknown bits.
fn flag_values() -> impl Iterator<Item = i32> {
    (0..16).chain([16, 0x11, 0x100, -1])
}

/// The lengths of the matrix: 0, small, large, the DAX size, and two that
/// are negative as `off_t`.
const LENGTHS: [usize; 6] = [0, 4096, MIB, DAX_SIZE, 1 << 63, usize::MAX];

// ---------------------------------------------------------------------------
// The model
// ---------------------------------------------------------------------------

/// What a test maps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Target {
    /// An existing regular file of this many bytes.
    File(usize),
    /// A path that does not exist (its directory does).
    Missing,
    /// An existing directory (with a file in it).
    Dir,
    /// `/dev/zero`, declared a Device DAX of [`DAX_SIZE`] bytes in a fake sysfs.
    DeviceDax,
}

/// What `map_file` should do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expected {
    /// Succeed with a mapping of this length.
    Mapped(usize),
    /// Fail with this errno.
    Errno(i32),
}

/// libpmem's `pmem_map_file`, step by step as the behaviour document lists
/// the checks (first failure wins).
fn model(target: Target, flags: i32, len: usize) -> Expected {
    use Expected::{Errno, Mapped};
    // 1-2. Every target here passes the existence and file-type checks.
    // 3. Unknown flag bits.
    if flags & !(CREATE | EXCL | SPARSE | TMPFILE) != 0 {
        return Errno(libc::EINVAL);
    }
    // 4. Device DAX: only CREATE|SPARSE, then flags are ignored; len 0 or exact.
    let (flags, len) = if target == Target::DeviceDax {
        if flags & !(CREATE | SPARSE) != 0 {
            return Errno(libc::EINVAL);
        }
        if len != 0 && len != DAX_SIZE {
            return Errno(libc::EINVAL);
        }
        (0, 0)
    } else {
        (flags, len)
    };
    // 5. Length and TMPFILE rules.
    let create = flags & CREATE != 0;
    if create && (len as i64) < 0 {
        return Errno(libc::EINVAL);
    }
    if len != 0 && !create {
        return Errno(libc::EINVAL);
    }
    if len == 0 && create {
        return Errno(libc::EINVAL);
    }
    if flags & TMPFILE != 0 && !create {
        return Errno(libc::EINVAL);
    }
    // Opening: open(2)'s errno passes through.
    if flags & TMPFILE != 0 {
        return match target {
            Target::Dir => Mapped(len),
            Target::File(_) => Errno(libc::ENOTDIR),
            Target::Missing => Errno(libc::ENOENT),
            Target::DeviceDax => unreachable!("flags were cleared for Device DAX"),
        };
    }
    let exists = target != Target::Missing;
    if exists && create && flags & EXCL != 0 {
        return Errno(libc::EEXIST); // O_CREAT|O_EXCL is checked before the type
    }
    match target {
        Target::Dir => return Errno(libc::EISDIR),
        Target::Missing if !create => return Errno(libc::ENOENT),
        _ => {}
    }
    // Sizing.
    let mapped = match target {
        _ if create => len,
        Target::File(size) => size,
        Target::DeviceDax => DAX_SIZE,
        Target::Missing | Target::Dir => unreachable!("rejected above"),
    };
    if mapped == 0 {
        return Errno(libc::EINVAL); // an empty file without CREATE
    }
    Mapped(mapped)
}

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// `PMEM_IS_PMEM_FORCE` as libpmem reads it (`atoi`): 0 forces "no", 1 forces
/// "yes", anything else (or unset) leaves the answer to the registry.
fn forced_is_pmem() -> Option<bool> {
    let value = std::env::var("PMEM_IS_PMEM_FORCE").ok()?;
    let text = value.trim_start();
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let digits: String = digits.chars().take_while(char::is_ascii_digit).collect();
    let magnitude = digits.trim_start_matches('0');
    match (negative, magnitude) {
        (_, "") => Some(false),
        (false, "1") => Some(true),
        _ => None,
    }
}

/// What `is_pmem` answers for a non-empty range that is (or is not) covered
/// by registered mappings.
fn expect_pmem(registered: bool) -> bool {
    forced_is_pmem().unwrap_or(registered)
}

fn names(dir: &Path) -> Vec<OsString> {
    let mut names: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    names
}

/// Bytes allocated to `path` (`st_blocks` is in 512-byte units).
fn allocated(path: &Path) -> u64 {
    fs::metadata(path).unwrap().blocks() * 512
}

fn dev_numbers(path: &Path) -> (u32, u32) {
    let rdev = fs::metadata(path).unwrap().rdev();
    (libc::major(rdev), libc::minor(rdev))
}

/// The mapped bytes.
///
/// # Safety
/// `m` is a live mapping that nothing else uses while the slice lives.
unsafe fn bytes<'a>(m: RawMapping) -> &'a mut [u8] {
    // SAFETY: forwarded from the caller: `m.addr..m.addr + m.len` is mapped
    // read/write and not aliased.
    unsafe { std::slice::from_raw_parts_mut(m.addr, m.len) }
}

fn unmap(m: RawMapping) {
    // SAFETY: the mapping came from `map_file` and the caller is done with it.
    unsafe { raw::unmap(m.addr, m.len) }.expect("unmap");
}

/// An address that is never mapped: below `vm.mmap_min_addr`.
fn unmapped_address() -> *const u8 {
    std::ptr::without_provenance(page_size())
}

/// What the fake regions' `deep_flush` controls hold until written. A real
/// control reads `1\n` when the region has flush hints (and `0\n` when no
/// flush is needed); a regular file standing in for it would hide a write of
/// `1` over `1\n`, so the stand-in holds two other bytes, which libpmem also
/// takes as "flush needed". A write shows as `1\n`.
const IDLE: &[u8] = b"-\n";
/// A stand-in control after libpmem wrote `1` to it.
const FLUSHED: &[u8] = b"1\n";

/// A sysfs tree in a temporary directory, laid out as the kernel lays out
/// `/sys`, where character devices can be declared Device DAX.
struct FakeSysfs {
    dir: TempDir,
}

impl FakeSysfs {
    fn new() -> Self {
        Self {
            dir: scratch("pmem-map-"),
        }
    }

    /// A tree in which `/dev/zero` is a Device DAX of [`DAX_SIZE`] bytes in
    /// region 0.
    fn with_zero_as_dax() -> Self {
        let fake = Self::new();
        fake.declare_dax(Path::new("/dev/zero"), DAX_SIZE, Some(0));
        fake
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    fn sysfs(&self) -> Sysfs {
        Sysfs::at(self.root())
    }

    /// Declares character device `dev` a Device DAX of `size` bytes in
    /// NVDIMM region `region`, or outside any region (as `hmem` devices are):
    ///
    /// ```text
    /// dev/char/MAJ:MIN -> devices/.../region<R>/dax<R>.0/dax<R>.0
    ///     subsystem -> class/dax      size      device -> .. (holds align)
    /// bus/nd/devices/region<R>/deep_flush
    /// ```
    fn declare_dax(&self, dev: &Path, size: usize, region: Option<u32>) {
        let root = self.root();
        let (major, minor) = dev_numbers(dev);
        let parent = match region {
            Some(r) => root.join(format!(
                "devices/platform/e820_pmem/ndbus0/region{r}/dax{r}.0"
            )),
            None => root.join("devices/platform/hmem.0/dax0.0"),
        };
        let device = parent.join(parent.file_name().unwrap());
        fs::create_dir_all(&device).unwrap();
        fs::create_dir_all(root.join("class/dax")).unwrap();
        std::os::unix::fs::symlink(root.join("class/dax"), device.join("subsystem")).unwrap();
        fs::write(device.join("size"), format!("{size}\n")).unwrap();
        fs::write(parent.join("align"), format!("{}\n", 2 * MIB)).unwrap();
        std::os::unix::fs::symlink(&parent, device.join("device")).unwrap();
        fs::create_dir_all(root.join("dev/char")).unwrap();
        std::os::unix::fs::symlink(&device, root.join(format!("dev/char/{major}:{minor}")))
            .unwrap();
        if let Some(region) = region {
            let region_dir = root.join(format!("bus/nd/devices/region{region}"));
            fs::create_dir_all(&region_dir).unwrap();
            fs::write(region_dir.join("deep_flush"), IDLE).unwrap();
        }
    }

    /// Declares character device `dev` a member of `subsystem` (not DAX).
    fn declare_char(&self, dev: &Path, subsystem: &str) {
        let root = self.root();
        let (major, minor) = dev_numbers(dev);
        let name = dev.file_name().unwrap();
        let device = root.join("devices/virtual").join(subsystem).join(name);
        fs::create_dir_all(&device).unwrap();
        fs::create_dir_all(root.join("class").join(subsystem)).unwrap();
        std::os::unix::fs::symlink(root.join("class").join(subsystem), device.join("subsystem"))
            .unwrap();
        fs::create_dir_all(root.join("dev/char")).unwrap();
        std::os::unix::fs::symlink(&device, root.join(format!("dev/char/{major}:{minor}")))
            .unwrap();
    }

    fn deep_flush(&self, region: u32) -> PathBuf {
        self.root()
            .join(format!("bus/nd/devices/region{region}/deep_flush"))
    }
}

// ---------------------------------------------------------------------------
// One case of the matrix
// ---------------------------------------------------------------------------

/// Sets up `target` in a fresh directory, maps it with `flags` and `len`,
/// and checks the outcome and its effects against [`model`]. Returns whether
/// it mapped.
fn check_case(target: Target, flags: i32, len: usize) -> bool {
    let ctx = format!("{target:?}, flags {flags:#x}, len {len:#x}");
    let dir = scratch("pmem-map-");
    let fake = (target == Target::DeviceDax).then(FakeSysfs::with_zero_as_dax);
    let original = match target {
        Target::File(size) => pattern(size, 7),
        _ => Vec::new(),
    };
    let path = match target {
        Target::File(_) => {
            let path = dir.path().join("pool");
            fs::write(&path, &original).unwrap();
            path
        }
        Target::Missing => dir.path().join("pool"),
        Target::Dir => {
            let path = dir.path().join("dir");
            fs::create_dir(&path).unwrap();
            fs::write(path.join("inside"), b"keep").unwrap();
            path
        }
        Target::DeviceDax => PathBuf::from("/dev/zero"),
    };
    let before = tree(dir.path());
    let (allocated_before, permissions_before) = match target {
        Target::File(_) => (
            allocated(&path),
            Some(fs::metadata(&path).unwrap().permissions()),
        ),
        _ => (0, None),
    };

    let mode = 0o640;
    let result = match target {
        Target::DeviceDax => map_file_with_sysfs(
            &path,
            len,
            MapFlags::from_bits_retain(flags),
            mode,
            &fake.as_ref().unwrap().sysfs(),
        ),
        _ => map_file(&path, len, MapFlags::from_bits_retain(flags), mode),
    };
    let expected = model(target, flags, len);

    let m = match (expected, result) {
        (Expected::Errno(errno), Err(err)) => {
            assert_eq!(err.raw_os_error(), Some(errno), "{ctx}: {err}");
            assert_eq!(
                tree(dir.path()),
                before,
                "{ctx}: a failed map_file changed the files"
            );
            return false;
        }
        (Expected::Mapped(expected_len), Ok(m)) => {
            assert_eq!(m.len, expected_len, "{ctx}: mapped length");
            m
        }
        (expected, result) => panic!("{ctx}: expected {expected:?}, got {result:?}"),
    };

    assert!(
        (m.addr as usize).is_multiple_of(page_size()),
        "{ctx}: {:p} is not page-aligned",
        m.addr
    );
    assert_eq!(
        m.is_pmem,
        raw::is_pmem(m.addr, m.len),
        "{ctx}: is_pmem out-parameter"
    );
    if target == Target::DeviceDax || on_tmpfs(dir.path()) {
        assert_eq!(
            m.is_pmem,
            expect_pmem(target == Target::DeviceDax),
            "{ctx}: is_pmem"
        );
    }
    let create = flags & CREATE != 0;
    if target != Target::DeviceDax && flags & TMPFILE == 0 {
        // Before any page is touched: on tmpfs even a read fault through a
        // shared mapping allocates the page.
        let now_allocated = allocated(&path);
        if create && flags & SPARSE == 0 {
            assert!(
                now_allocated >= m.len as u64,
                "{ctx}: only {now_allocated} bytes allocated"
            );
        } else if create {
            assert!(
                now_allocated <= allocated_before,
                "{ctx}: SPARSE allocated {now_allocated} bytes (had {allocated_before})"
            );
        } else {
            assert_eq!(now_allocated, allocated_before, "{ctx}: mapping allocated");
        }
    }
    // SAFETY: the mapping is live and only this function uses it.
    let data = unsafe { bytes(m) };

    if target == Target::DeviceDax || flags & TMPFILE != 0 {
        // Fresh shared memory (/dev/zero) or a fresh unnamed file: zeros.
        assert!(data.iter().all(|&b| b == 0), "{ctx}: not zero-filled");
        // Writable from end to end (a read-only mapping would fault). There
        // is no name to read(2) back through.
        data[..4].copy_from_slice(b"pmem");
        let last = data.len() - 1;
        data[last] = 0xa5;
        assert_eq!(
            tree(dir.path()),
            before,
            "{ctx}: a Device DAX or TMPFILE mapping changed the directory"
        );
        if let Some(fake) = &fake {
            assert_eq!(fs::read(fake.deep_flush(0)).unwrap(), IDLE, "{ctx}");
        }
        unmap(m);
        return true;
    }

    // A named file: its bytes are the original ones, cut or zero-extended.
    let mut expected_data = original.clone();
    expected_data.resize(m.len, 0);
    assert!(data == expected_data.as_slice(), "{ctx}: mapped content");
    let meta = fs::metadata(&path).unwrap();
    assert_eq!(meta.len(), m.len as u64, "{ctx}: file size on disk");
    match permissions_before {
        // An existing file keeps its mode; `mode` only applies to creation.
        Some(before) => assert_eq!(meta.permissions(), before, "{ctx}: mode changed"),
        None => {
            let perm = meta.permissions().mode() & 0o777;
            assert_eq!(perm & !mode, 0, "{ctx}: created with mode {perm:o}");
        }
    }
    // Stores through the mapping are what read(2) sees.
    let head = pattern(data.len().min(64), 99);
    data[..head.len()].copy_from_slice(&head);
    let tail_at = data.len().saturating_sub(64);
    let tail = pattern(data.len() - tail_at, 42);
    data[tail_at..].copy_from_slice(&tail);
    let on_disk = fs::read(&path).unwrap();
    assert!(on_disk == *data, "{ctx}: read(2) does not see the stores");
    unmap(m);
    let names_now = names(dir.path());
    assert_eq!(names_now, vec![OsString::from(path.file_name().unwrap())]);
    true
}

fn check_matrix(target: Target) {
    let mut mapped = 0;
    let mut failed = 0;
    for flags in flag_values() {
        for len in LENGTHS {
            if check_case(target, flags, len) {
                mapped += 1;
            } else {
                failed += 1;
            }
        }
    }
    // The model makes both outcomes reachable for every target.
    assert!(
        failed > 0 && mapped > 0,
        "{target:?}: {mapped} mapped, {failed} failed"
    );
}

// ---------------------------------------------------------------------------
// The flag matrix
// ---------------------------------------------------------------------------

#[test]
fn model_agrees_with_the_documented_examples() {
    // A few cases straight from the behaviour document, to keep the model honest.
    let f = Target::File(EXISTING_SIZE);
    assert_eq!(model(f, 0, 0), Expected::Mapped(EXISTING_SIZE));
    assert_eq!(model(f, 0, 4096), Expected::Errno(libc::EINVAL));
    assert_eq!(model(f, CREATE, 0), Expected::Errno(libc::EINVAL));
    assert_eq!(model(f, CREATE, 4096), Expected::Mapped(4096));
    assert_eq!(model(f, CREATE | EXCL, 4096), Expected::Errno(libc::EEXIST));
    assert_eq!(model(f, CREATE, 1 << 63), Expected::Errno(libc::EINVAL));
    assert_eq!(model(f, EXCL | SPARSE, 0), Expected::Mapped(EXISTING_SIZE));
    assert_eq!(model(f, 16, 0), Expected::Errno(libc::EINVAL));
    assert_eq!(model(Target::File(0), 0, 0), Expected::Errno(libc::EINVAL));
    assert_eq!(model(Target::Missing, 0, 0), Expected::Errno(libc::ENOENT));
    assert_eq!(
        model(Target::Missing, CREATE | EXCL, MIB),
        Expected::Mapped(MIB)
    );
    assert_eq!(
        model(Target::Dir, CREATE, MIB),
        Expected::Errno(libc::EISDIR)
    );
    assert_eq!(
        model(Target::Dir, CREATE | TMPFILE, MIB),
        Expected::Mapped(MIB)
    );
    assert_eq!(
        model(Target::Dir, TMPFILE, 0),
        Expected::Errno(libc::EINVAL)
    );
    assert_eq!(
        model(Target::DeviceDax, CREATE | SPARSE, DAX_SIZE),
        Expected::Mapped(DAX_SIZE)
    );
    assert_eq!(
        model(Target::DeviceDax, CREATE | EXCL, 0),
        Expected::Errno(libc::EINVAL)
    );
    assert_eq!(
        model(Target::DeviceDax, 0, 4096),
        Expected::Errno(libc::EINVAL)
    );
}

#[test]
fn matrix_existing_file() {
    check_matrix(Target::File(EXISTING_SIZE));
}

#[test]
fn matrix_existing_empty_file() {
    check_matrix(Target::File(0));
}

#[test]
fn matrix_missing_file() {
    check_matrix(Target::Missing);
}

#[test]
fn matrix_directory() {
    check_matrix(Target::Dir);
}

#[test]
fn matrix_device_dax() {
    check_matrix(Target::DeviceDax);
}

fn target_strategy() -> impl Strategy<Value = Target> {
    prop_oneof![
        (0..=128 * KIB).prop_map(Target::File),
        Just(Target::Missing),
        Just(Target::Dir),
        Just(Target::DeviceDax),
    ]
}

fn flags_strategy() -> impl Strategy<Value = i32> {
    prop_oneof![4 => 0..16i32, 1 => any::<i32>(), 1 => (0..8i32).prop_map(|b| 1 << (4 + b))]
}

fn len_strategy() -> impl Strategy<Value = usize> {
    prop_oneof![
        2 => Just(0usize),
        4 => 1..=256 * KIB,
        1 => Just(DAX_SIZE),
        1 => (1usize << 63)..=usize::MAX,
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    /// Random flags, lengths and targets (existing files of random sizes
    /// included) against the model.
    #[test]
    fn map_file_matches_model(target in target_strategy(), flags in flags_strategy(),
                              len in len_strategy()) {
        check_case(target, flags, len);
    }
}

// ---------------------------------------------------------------------------
// Failures after the file is open
// ---------------------------------------------------------------------------

#[test]
fn failure_after_open_removes_only_what_create_excl_created() {
    let probe = scratch("pmem-map-");
    let fallocate_cases = huge_allocation_fails_fast(probe.path());
    if !fallocate_cases {
        println!(
            "{}: unknown file system, non-sparse cases skipped",
            probe.path().display()
        );
    }
    // (flags, existed before, removed afterwards)
    let cases = [
        (CREATE | EXCL | SPARSE, false, true),
        (CREATE | SPARSE, false, false),
        (CREATE | SPARSE, true, false),
        (CREATE | EXCL, false, true),
        (CREATE, false, false),
        (CREATE, true, false),
    ];
    let mut tried = 0;
    for (flags, existed, removed) in cases {
        if flags & SPARSE == 0 && !fallocate_cases {
            continue;
        }
        tried += 1;
        let dir = scratch("pmem-map-");
        let path = dir.path().join("pool");
        if existed {
            fs::write(&path, b"old").unwrap();
        }
        let err = map_file(&path, HUGE, MapFlags::from_bits_retain(flags), 0o600)
            .expect_err("4 EiB cannot be mapped");
        let errno = err.raw_os_error();
        // ftruncate past the maximum size, posix_fallocate without space, or
        // mmap beyond the address space.
        assert!(
            matches!(errno, Some(libc::EFBIG | libc::ENOSPC | libc::ENOMEM)),
            "flags {flags:#x}: {err}"
        );
        let msg = pmem_sys::errormsg();
        assert!(
            ["ftruncate", "posix_fallocate", "mmap"]
                .iter()
                .any(|step| msg.starts_with(step)),
            "errormsg does not name the step: {msg:?}"
        );
        assert_eq!(
            path.exists(),
            !removed,
            "flags {flags:#x}, existed {existed}: {err}, {msg}"
        );
    }
    assert!(tried >= 3);

    // TMPFILE with EXCL: nothing to remove, and the directory stays.
    let dir = scratch("pmem-map-");
    fs::write(dir.path().join("keep"), b"x").unwrap();
    let before = tree(dir.path());
    let flags = MapFlags::CREATE | MapFlags::EXCL | MapFlags::SPARSE | MapFlags::TMPFILE;
    map_file(dir.path(), HUGE, flags, 0o600).expect_err("4 EiB cannot be mapped");
    assert_eq!(tree(dir.path()), before);
}

#[test]
fn failed_open_removes_nothing() {
    // CREATE|EXCL on an existing file fails in open(2): that file was not
    // created by the call and must survive.
    let dir = scratch("pmem-map-");
    let path = dir.path().join("pool");
    fs::write(&path, b"mine").unwrap();
    let err = map_file(&path, 4096, MapFlags::CREATE | MapFlags::EXCL, 0o600).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EEXIST));
    assert_eq!(fs::read(&path).unwrap(), b"mine");
    // A dangling symlink: open(O_CREAT|O_EXCL) refuses to follow it.
    let link = dir.path().join("link");
    std::os::unix::fs::symlink("nowhere", &link).unwrap();
    let err = map_file(&link, 4096, MapFlags::CREATE | MapFlags::EXCL, 0o600).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EEXIST));
    assert!(
        fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert!(!dir.path().join("nowhere").exists());
}

// ---------------------------------------------------------------------------
// TMPFILE
// ---------------------------------------------------------------------------

/// The errno of `open(path, O_TMPFILE | O_RDWR, 0600)`, or `None` if it works.
fn tmpfile_open_errno(path: &Path) -> Option<i32> {
    fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_TMPFILE)
        .mode(0o600)
        .open(path)
        .err()
        .map(|e| e.raw_os_error().unwrap())
}

#[test]
fn tmpfile_is_unnamed() {
    let dir = scratch("pmem-map-");
    fs::write(dir.path().join("a"), b"a").unwrap();
    let before = tree(dir.path());
    for flags in [0, EXCL, SPARSE, EXCL | SPARSE] {
        let flags = MapFlags::from_bits_retain(CREATE | TMPFILE | flags);
        let m = map_file(dir.path(), 256 * KIB, flags, 0o644).unwrap();
        assert_eq!(m.len, 256 * KIB);
        // SAFETY: the mapping is live and only used here.
        let data = unsafe { bytes(m) };
        assert!(data.iter().all(|&b| b == 0));
        data.fill(0x5a);
        assert_eq!(tree(dir.path()), before, "{flags:?} left a name behind");
        unmap(m);
        assert_eq!(tree(dir.path()), before);
    }
}

#[test]
fn tmpfile_needs_create() {
    let dir = scratch("pmem-map-");
    let file = dir.path().join("f");
    fs::write(&file, b"f").unwrap();
    for path in [dir.path(), &file, &dir.path().join("missing")] {
        for flags in [TMPFILE, TMPFILE | EXCL, TMPFILE | SPARSE] {
            let err = map_file(path, 0, MapFlags::from_bits_retain(flags), 0o600).unwrap_err();
            assert_eq!(err.raw_os_error(), Some(libc::EINVAL), "{}", path.display());
        }
    }
}

#[test]
fn tmpfile_on_non_directory_fails_as_open_does() {
    let dir = scratch("pmem-map-");
    let file = dir.path().join("f");
    fs::write(&file, b"f").unwrap();
    let paths = [
        file.clone(),
        dir.path().join("missing"),
        dir.path().join("missing/below"),
        file.join("below"),
    ];
    for path in &paths {
        let expected = tmpfile_open_errno(path).expect("open(O_TMPFILE) fails here");
        let before = tree(dir.path());
        let err = map_file(path, 4096, MapFlags::CREATE | MapFlags::TMPFILE, 0o600).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(expected), "{}", path.display());
        assert_eq!(tree(dir.path()), before);
    }
    assert_eq!(tmpfile_open_errno(&file), Some(libc::ENOTDIR));
}

// ---------------------------------------------------------------------------
// Device DAX (fake sysfs)
// ---------------------------------------------------------------------------

fn map_dax(fake: &FakeSysfs, len: usize, flags: i32) -> io::Result<RawMapping> {
    map_file_with_sysfs(
        Path::new("/dev/zero"),
        len,
        MapFlags::from_bits_retain(flags),
        0,
        &fake.sysfs(),
    )
}

#[test]
fn device_dax_accepts_only_create_and_sparse() {
    let fake = FakeSysfs::with_zero_as_dax();
    for flags in 0..16 {
        let result = map_dax(&fake, 0, flags);
        if flags & !(CREATE | SPARSE) == 0 {
            let m = result.unwrap_or_else(|e| panic!("flags {flags:#x}: {e}"));
            assert_eq!(m.len, DAX_SIZE, "flags {flags:#x}");
            unmap(m);
        } else {
            assert_eq!(
                result.unwrap_err().raw_os_error(),
                Some(libc::EINVAL),
                "flags {flags:#x}"
            );
        }
    }
}

#[test]
fn device_dax_length_is_zero_or_exact() {
    let fake = FakeSysfs::with_zero_as_dax();
    for len in [0, DAX_SIZE] {
        let m = map_dax(&fake, len, CREATE).unwrap();
        assert_eq!(m.len, DAX_SIZE);
        assert!(
            (m.addr as usize).is_multiple_of(2 * MIB),
            "{:p} ignores the device's 2 MiB alignment",
            m.addr
        );
        unmap(m);
    }
    for len in [
        4096,
        DAX_SIZE - 4096,
        DAX_SIZE + 4096,
        2 * DAX_SIZE,
        1 << 63,
    ] {
        let err = map_dax(&fake, len, CREATE).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EINVAL), "len {len}");
    }
}

#[test]
fn device_dax_is_pmem() {
    let fake = FakeSysfs::with_zero_as_dax();
    let m = map_dax(&fake, 0, 0).unwrap();
    assert_eq!(m.is_pmem, expect_pmem(true));
    assert_eq!(raw::is_pmem(m.addr, m.len), expect_pmem(true));
    assert_eq!(
        raw::is_pmem(m.addr.wrapping_add(4096), 100),
        expect_pmem(true)
    );
    assert!(!raw::is_pmem(m.addr, 0));
    // One byte past the end is not part of it.
    assert_eq!(raw::is_pmem(m.addr, m.len + 1), expect_pmem(false));
    unmap(m);
}

#[test]
fn device_dax_size_must_be_readable() {
    let fake = FakeSysfs::with_zero_as_dax();
    let (major, minor) = dev_numbers(Path::new("/dev/zero"));
    let size = fake.root().join(format!("dev/char/{major}:{minor}/size"));
    fs::write(&size, "lots\n").unwrap();
    assert_eq!(
        map_dax(&fake, 0, 0).unwrap_err().raw_os_error(),
        Some(libc::EINVAL)
    );
    fs::remove_file(&size).unwrap();
    assert_eq!(
        map_dax(&fake, 0, 0).unwrap_err().raw_os_error(),
        Some(libc::EINVAL)
    );
}

#[test]
fn other_character_devices_are_rejected() {
    let fake = FakeSysfs::new();
    let null = Path::new("/dev/null");
    fake.declare_char(null, "mem");
    for flags in [0, CREATE, CREATE | EXCL] {
        let len = if flags == 0 { 0 } else { 4096 };
        let err = map_file_with_sysfs(
            null,
            len,
            MapFlags::from_bits_retain(flags),
            0o600,
            &fake.sysfs(),
        )
        .unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EINVAL), "flags {flags:#x}");
        assert!(
            pmem_sys::errormsg().contains("/dev/null"),
            "{}",
            pmem_sys::errormsg()
        );
    }
    // No sysfs entry at all: the error of resolving `subsystem`.
    let err = map_file_with_sysfs(
        Path::new("/dev/zero"),
        0,
        MapFlags::empty(),
        0,
        &fake.sysfs(),
    )
    .unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::ENOENT));
    // Unknown flags on a non-DAX character device: the type check comes first.
    let err =
        map_file_with_sysfs(null, 0, MapFlags::from_bits_retain(16), 0, &fake.sysfs()).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EINVAL));
}

#[test]
fn deep_drain_writes_the_regions_deep_flush() {
    let fake = FakeSysfs::with_zero_as_dax();
    let control = fake.deep_flush(0);
    let m = map_dax(&fake, 0, 0).unwrap();
    // SAFETY: the mapping is live and only used here.
    (unsafe { bytes(m) })[..5].copy_from_slice(b"hello");

    raw::deep_drain(m.addr, 4096).unwrap();
    assert_eq!(fs::read(&control).unwrap(), FLUSHED);

    fs::write(&control, IDLE).unwrap();
    // SAFETY: the range is inside the live mapping.
    unsafe { raw::deep_persist(m.addr.wrapping_add(100), 64) }.unwrap();
    assert_eq!(fs::read(&control).unwrap(), FLUSHED);

    fs::write(&control, IDLE).unwrap();
    raw::deep_drain(m.addr, 0).unwrap();
    assert_eq!(fs::read(&control).unwrap(), IDLE, "len 0 does nothing");
    unmap(m);
}

#[test]
fn deep_drain_skips_controls_libpmem_skips() {
    // libpmem reads the control first: `0\n` means no flush is needed, and
    // anything but two bytes is not understood. It never creates the control,
    // and its failures do not fail the drain.
    let fake = FakeSysfs::with_zero_as_dax();
    let control = fake.deep_flush(0);
    let m = map_dax(&fake, 0, 0).unwrap();
    for content in [&b"0\n"[..], b"", b"1", b"10\n"] {
        fs::write(&control, content).unwrap();
        raw::deep_drain(m.addr, m.len).unwrap();
        let after = fs::read(&control).unwrap();
        if content.len() == 3 {
            // Two bytes read and not "0\n": written over, not truncated.
            assert_eq!(after, b"10\n");
        } else {
            assert_eq!(
                after,
                content,
                "{:?} was written to",
                String::from_utf8_lossy(content)
            );
        }
    }
    fs::remove_file(&control).unwrap();
    raw::deep_drain(m.addr, m.len).expect("a missing control does not fail the drain");
    assert!(!control.exists(), "the control was created");
    unmap(m);
}

#[test]
fn device_dax_outside_a_region_is_not_tracked() {
    // libpmem cannot find the region, so it does not track the mapping.
    let fake = FakeSysfs::new();
    fake.declare_dax(Path::new("/dev/zero"), DAX_SIZE, None);
    let m = map_dax(&fake, 0, 0).unwrap();
    assert_eq!(m.len, DAX_SIZE);
    assert_eq!(m.is_pmem, expect_pmem(false));
    assert_eq!(raw::is_pmem(m.addr, m.len), expect_pmem(false));
    // SAFETY: the mapping is live and only used here.
    (unsafe { bytes(m) })[..5].copy_from_slice(b"hello");
    raw::deep_drain(m.addr, m.len).unwrap();
    unmap(m);
}

#[test]
fn deep_drain_of_a_file_mapping_is_msync() {
    let fake = FakeSysfs::with_zero_as_dax();
    let dir = scratch("pmem-map-");
    let path = dir.path().join("pool");
    let m = map_file(&path, MIB, MapFlags::CREATE, 0o600).unwrap();
    // SAFETY: the mapping is live and only used here.
    (unsafe { bytes(m) })[..5].copy_from_slice(b"hello");
    raw::deep_drain(m.addr, m.len).unwrap();
    // SAFETY: the range is inside the live mapping.
    unsafe { raw::deep_persist(m.addr.wrapping_add(3), 10) }.unwrap();
    assert_eq!(&fs::read(&path).unwrap()[..5], b"hello");
    assert_eq!(
        fs::read(fake.deep_flush(0)).unwrap(),
        IDLE,
        "not a Device DAX"
    );
    unmap(m);
}

#[test]
fn deep_drain_of_unmapped_memory_is_enomem() {
    let err = raw::deep_drain(unmapped_address(), 4096).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::ENOMEM));
    assert!(
        raw::deep_drain(unmapped_address(), 0).is_ok(),
        "len 0 does nothing"
    );
}

// ---------------------------------------------------------------------------
// is_pmem
// ---------------------------------------------------------------------------

#[test]
fn is_pmem_agrees_across_threads() {
    const THREADS: usize = 16;
    let fake = FakeSysfs::with_zero_as_dax();
    let dax = map_dax(&fake, 0, 0).unwrap();
    let dir = scratch("pmem-map-");
    let file = map_file(dir.path().join("pool"), MIB, MapFlags::CREATE, 0o600).unwrap();
    let file_expected = if on_tmpfs(dir.path()) {
        expect_pmem(false)
    } else {
        raw::is_pmem(file.addr, file.len)
    };
    let (dax_at, file_at) = (dax.addr as usize, file.addr as usize);
    let barrier = Barrier::new(THREADS);
    let answers: Vec<Vec<(bool, bool, bool)>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let barrier = &barrier;
                s.spawn(move || {
                    barrier.wait();
                    (0..500)
                        .map(|i| {
                            let offset = (i * 4096 + t * 64) % MIB;
                            let at =
                                |base: usize| std::ptr::without_provenance::<u8>(base + offset);
                            (
                                raw::is_pmem(at(dax_at), MIB),
                                raw::is_pmem(at(file_at), MIB - offset),
                                raw::is_pmem(at(dax_at), 0),
                            )
                        })
                        .collect()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (t, thread) in answers.iter().enumerate() {
        for &answer in thread {
            assert_eq!(
                answer,
                (expect_pmem(true), file_expected, false),
                "thread {t}"
            );
        }
    }
    unmap(dax);
    unmap(file);
}

#[test]
fn is_pmem_len_zero_is_false() {
    let fake = FakeSysfs::with_zero_as_dax();
    let m = map_dax(&fake, 0, 0).unwrap();
    assert!(!raw::is_pmem(m.addr, 0));
    let on_stack = [0u8; 8];
    assert!(!raw::is_pmem(on_stack.as_ptr(), 0));
    unmap(m);
}

#[test]
fn tmpfs_mappings_are_not_pmem() {
    let dir = scratch("pmem-map-");
    if !on_tmpfs(dir.path()) {
        println!("{} is not tmpfs: skipped", dir.path().display());
        return;
    }
    let m = map_file(dir.path().join("pool"), MIB, MapFlags::CREATE, 0o600).unwrap();
    assert_eq!(m.is_pmem, expect_pmem(false));
    assert_eq!(raw::is_pmem(m.addr, m.len), expect_pmem(false));
    unmap(m);
}

/// Set in the child processes of [`is_pmem_force_is_read_from_the_environment`]
/// to the answer expected: `always`, `never` or `detect`.
const CHILD_ENV: &str = "PMEM_SYS_MAP_FILE_FORCE_CHILD";

/// Runs only in a child process (see [`CHILD_ENV`]); passes trivially otherwise.
#[test]
fn child_checks_forced_is_pmem() {
    let Ok(mode) = std::env::var(CHILD_ENV) else {
        return;
    };
    let fake = FakeSysfs::with_zero_as_dax();
    let dax = map_dax(&fake, 0, 0).unwrap();
    let dir = scratch("pmem-map-");
    let file = map_file(dir.path().join("pool"), MIB, MapFlags::CREATE, 0o600).unwrap();
    let on_stack = [0u8; 64];
    let (dax_pmem, file_pmem, stack_pmem) = match mode.as_str() {
        "always" => (true, true, true),
        "never" => (false, false, false),
        "detect" => (true, false, false),
        other => panic!("unknown mode {other}"),
    };
    assert_eq!(
        (dax.is_pmem, raw::is_pmem(dax.addr, dax.len)),
        (dax_pmem, dax_pmem)
    );
    if on_tmpfs(dir.path()) {
        assert_eq!(file.is_pmem, file_pmem);
    }
    assert_eq!(raw::is_pmem(on_stack.as_ptr(), 64), stack_pmem);
    assert!(!raw::is_pmem(on_stack.as_ptr(), 0), "len 0 is never pmem");
    assert!(!raw::is_pmem(dax.addr, 0), "len 0 is never pmem");
    unmap(dax);
    unmap(file);
}

#[test]
fn is_pmem_force_is_read_from_the_environment() {
    let exe = std::env::current_exe().unwrap();
    for (value, mode) in [
        ("1", "always"),
        ("0", "never"),
        ("2", "detect"),
        ("01", "always"),
    ] {
        let out = Command::new(&exe)
            .args(["--exact", "child_checks_forced_is_pmem", "--test-threads=1"])
            .env("PMEM_IS_PMEM_FORCE", value)
            .env(CHILD_ENV, mode)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && stdout.contains("1 passed"),
            "PMEM_IS_PMEM_FORCE={value}: {}\n{stdout}\n{stderr}",
            out.status
        );
    }
}

// ---------------------------------------------------------------------------
// unmap
// ---------------------------------------------------------------------------

#[test]
fn unmap_whole_pages_of_a_fresh_mapping() {
    let page = page_size();
    for len in [4096, 2 * MIB, 2 * MIB - 1] {
        let dir = scratch("pmem-map-");
        let path = dir.path().join("pool");
        let m = map_file(&path, 4 * MIB, MapFlags::CREATE, 0o600).unwrap();
        let start = m.addr as usize;
        assert_eq!(mapped_ranges(&path), vec![(start, start + 4 * MIB)]);
        // SAFETY: the first `len` bytes of the mapping are not used again.
        unsafe { raw::unmap(m.addr, len) }.unwrap_or_else(|e| panic!("len {len}: {e}"));
        // munmap takes whole pages: the file stays mapped from the next page on.
        let rest = len.next_multiple_of(page);
        assert_eq!(
            mapped_ranges(&path),
            vec![(start + rest, start + 4 * MIB)],
            "len {len}"
        );
        let tail = RawMapping {
            addr: m.addr.wrapping_add(rest),
            len: 4 * MIB - rest,
            is_pmem: m.is_pmem,
        };
        // SAFETY: the rest of the mapping is still live and only used here.
        (unsafe { bytes(tail) })[..4].copy_from_slice(b"tail");
        assert_eq!(&fs::read(&path).unwrap()[rest..rest + 4], b"tail");
        unmap(tail);
        assert_eq!(mapped_ranges(&path), vec![]);
    }
}

#[test]
fn unmap_rejects_len_zero_and_unaligned_addresses() {
    let dir = scratch("pmem-map-");
    let path = dir.path().join("pool");
    let m = map_file(&path, MIB, MapFlags::CREATE, 0o600).unwrap();
    let whole = vec![(m.addr as usize, m.addr as usize + MIB)];
    // SAFETY: both calls are rejected before anything is unmapped (checked below).
    let zero = unsafe { raw::unmap(m.addr, 0) }.unwrap_err();
    assert_eq!(zero.raw_os_error(), Some(libc::EINVAL));
    // SAFETY: as above.
    let unaligned = unsafe { raw::unmap(m.addr.wrapping_add(1), 4096) }.unwrap_err();
    assert_eq!(unaligned.raw_os_error(), Some(libc::EINVAL));
    assert_eq!(
        mapped_ranges(&path),
        whole,
        "a rejected unmap unmapped something"
    );
    unmap(m);
}

#[test]
fn unmap_splits_registered_ranges() {
    let fake = FakeSysfs::with_zero_as_dax();
    let m = map_dax(&fake, 0, 0).unwrap();
    let at = |offset: usize| m.addr.wrapping_add(offset);
    assert_eq!(raw::is_pmem(at(0), DAX_SIZE), expect_pmem(true));

    // Unmap [1 MiB, 2 MiB - 100): whole pages go, so up to 2 MiB.
    // SAFETY: this part of the mapping is not used again.
    unsafe { raw::unmap(at(MIB), MIB - 100) }.unwrap();
    assert_eq!(raw::is_pmem(at(0), MIB), expect_pmem(true));
    assert_eq!(raw::is_pmem(at(MIB - 1), 1), expect_pmem(true));
    assert_eq!(raw::is_pmem(at(MIB), 1), expect_pmem(false));
    assert_eq!(raw::is_pmem(at(2 * MIB - 100), 100), expect_pmem(false));
    assert_eq!(raw::is_pmem(at(2 * MIB), 2 * MIB), expect_pmem(true));
    assert_eq!(raw::is_pmem(at(0), DAX_SIZE), expect_pmem(false));
    assert_eq!(raw::is_pmem(at(MIB - 1), 2), expect_pmem(false));

    // The two pieces still work and still deep-drain through the region.
    // SAFETY: both pieces are live and only used here.
    unsafe {
        at(0).write(1);
        at(2 * MIB).write(2);
    }
    raw::deep_drain(at(2 * MIB), 4096).unwrap();
    assert_eq!(fs::read(fake.deep_flush(0)).unwrap(), FLUSHED);

    // SAFETY: the pieces are not used again.
    unsafe {
        raw::unmap(at(0), MIB).unwrap();
        raw::unmap(at(2 * MIB), 2 * MIB).unwrap();
    }
}

// ---------------------------------------------------------------------------
// msync
// ---------------------------------------------------------------------------

#[test]
fn msync_rounds_the_address_down() {
    let dir = scratch("pmem-map-");
    let path = dir.path().join("pool");
    let m = map_file(&path, MIB, MapFlags::CREATE, 0o600).unwrap();
    // SAFETY: the mapping is live and only used here.
    (unsafe { bytes(m) })[100..105].copy_from_slice(b"hello");
    raw::msync(m.addr, m.len).unwrap();
    // Not page-aligned: msync(2) itself would say EINVAL.
    raw::msync(m.addr.wrapping_add(100), 10).unwrap();
    raw::msync(m.addr.wrapping_add(MIB - 1), 1).unwrap();
    raw::msync(m.addr.wrapping_add(4097), 0).unwrap();
    assert_eq!(&fs::read(&path).unwrap()[100..105], b"hello");
    unmap(m);
}

#[test]
fn msync_of_unmapped_memory_is_enomem() {
    let err = raw::msync(unmapped_address(), 4096).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::ENOMEM));
    let err = raw::msync(unmapped_address().wrapping_add(10), 10).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::ENOMEM));
    assert!(
        pmem_sys::errormsg().starts_with("msync"),
        "{}",
        pmem_sys::errormsg()
    );
}

// ---------------------------------------------------------------------------
// errormsg
// ---------------------------------------------------------------------------

#[test]
fn errormsg_names_the_step_and_path() {
    let dir = scratch("pmem-map-");
    let missing = dir.path().join("missing-pool");
    let err = map_file(&missing, 0, MapFlags::empty(), 0).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::ENOENT));
    let msg = pmem_sys::errormsg();
    assert!(msg.contains(&*missing.to_string_lossy()), "{msg}");
    assert!(msg.contains("No such file or directory"), "{msg}");

    let existing = dir.path().join("existing-pool");
    fs::write(&existing, b"x").unwrap();
    let err = map_file(&existing, 4096, MapFlags::CREATE | MapFlags::EXCL, 0o600).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EEXIST));
    let msg = pmem_sys::errormsg();
    assert!(msg.contains(&*existing.to_string_lossy()), "{msg}");

    let err = map_file(&existing, 0, MapFlags::from_bits_retain(0x40), 0).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EINVAL));
    assert!(
        pmem_sys::errormsg().contains("0x40"),
        "{}",
        pmem_sys::errormsg()
    );

    let err = map_file(&existing, 4096, MapFlags::empty(), 0).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EINVAL));
    assert!(
        pmem_sys::errormsg().contains("len"),
        "{}",
        pmem_sys::errormsg()
    );

    // The message is per thread.
    let other = std::thread::spawn(pmem_sys::errormsg).join().unwrap();
    assert_eq!(other, "");
}
