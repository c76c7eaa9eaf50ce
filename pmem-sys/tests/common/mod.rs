//! Helpers shared by the integration tests that map files (`map_file.rs`,
//! `pmdk_compat.rs`). Each test crate uses a subset of them.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::ffi::CString;
use std::fs;
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

pub(crate) use pmem_testkit::scratch::scratch;

/// Positive as `off_t`, but more than any file system or address space holds.
pub(crate) const HUGE: usize = 1 << 62;

pub(crate) fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(size).expect("page size")
}

fn c_path(path: &Path) -> CString {
    CString::new(path.as_os_str().as_encoded_bytes()).expect("a path without NUL bytes")
}

/// The `f_type` magic number of the file system holding `path`.
pub(crate) fn fs_magic(path: &Path) -> i128 {
    let c_path = c_path(path);
    let mut st = std::mem::MaybeUninit::<libc::statfs>::uninit();
    // SAFETY: `c_path` is NUL-terminated; `st` is writable for one `statfs`.
    let ret = unsafe { libc::statfs(c_path.as_ptr(), st.as_mut_ptr()) };
    assert_eq!(
        ret,
        0,
        "statfs {}: {}",
        path.display(),
        io::Error::last_os_error()
    );
    // SAFETY: statfs succeeded, so it filled in `st`.
    i128::from(unsafe { st.assume_init() }.f_type)
}

/// Whether `path` is on tmpfs, which never supports `MAP_SYNC`: mappings of
/// its files are not persistent memory.
pub(crate) fn on_tmpfs(path: &Path) -> bool {
    fs_magic(path) == i128::from(libc::TMPFS_MAGIC)
}

/// Whether a [`HUGE`] non-sparse creation fails at once on the file system
/// of `dir` rather than trying to allocate it: tmpfs with a size limit
/// (`posix_fallocate` sees it cannot fit) or ext4 (`ftruncate` is past the
/// maximum file size). Elsewhere the answer is unknown and this says no.
pub(crate) fn huge_allocation_fails_fast(dir: &Path) -> bool {
    let magic = fs_magic(dir);
    if magic == i128::from(libc::EXT4_SUPER_MAGIC) {
        return true;
    }
    if magic != i128::from(libc::TMPFS_MAGIC) {
        return false;
    }
    let c_path = c_path(dir);
    let mut st = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `c_path` is NUL-terminated; `st` is writable for one `statvfs`.
    let ret = unsafe { libc::statvfs(c_path.as_ptr(), st.as_mut_ptr()) };
    assert_eq!(ret, 0, "statvfs: {}", io::Error::last_os_error());
    // SAFETY: statvfs succeeded, so it filled in `st`.
    let st = unsafe { st.assume_init() };
    st.f_blocks > 0 && u128::from(st.f_blocks) * u128::from(st.f_frsize) < HUGE as u128
}

/// The address ranges at which `path` is mapped in this process, from
/// `/proc/self/maps` (matched by device and inode, merged where adjacent).
pub(crate) fn mapped_ranges(path: &Path) -> Vec<(usize, usize)> {
    let meta = fs::metadata(path).unwrap();
    let dev = format!(
        "{:02x}:{:02x}",
        libc::major(meta.dev()),
        libc::minor(meta.dev())
    );
    let ino = meta.ino().to_string();
    let maps = fs::read_to_string("/proc/self/maps").unwrap();
    let mut ranges: Vec<(usize, usize)> = Vec::new();
    for line in maps.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() < 5 || fields[3] != dev || fields[4] != ino {
            continue;
        }
        let (start, end) = fields[0].split_once('-').unwrap();
        let start = usize::from_str_radix(start, 16).unwrap();
        let end = usize::from_str_radix(end, 16).unwrap();
        match ranges.last_mut() {
            Some(last) if last.1 == start => last.1 = end,
            _ => ranges.push((start, end)),
        }
    }
    ranges
}

/// Deterministic, mostly non-zero bytes.
pub(crate) fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) | 1)
        .collect()
}

/// FNV-1a, to compare file contents in a readable summary.
pub(crate) fn fnv(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Every entry under `dir`: type, size, mode, and the content of files small
/// enough to read.
pub(crate) fn tree(dir: &Path) -> BTreeMap<PathBuf, String> {
    fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, String>) {
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let rel = path.strip_prefix(base).unwrap().to_owned();
            let meta = fs::symlink_metadata(&path).unwrap();
            let kind = meta.file_type();
            let mode = meta.permissions().mode() & 0o7777;
            let what = if kind.is_dir() {
                walk(base, &path, out);
                format!("dir, mode {mode:o}")
            } else if kind.is_symlink() {
                format!("link to {}", fs::read_link(&path).unwrap().display())
            } else if kind.is_fifo() || kind.is_socket() {
                format!("{kind:?}, mode {mode:o}")
            } else if meta.len() > 8 << 20 {
                format!("file of {} bytes, mode {mode:o}", meta.len())
            } else {
                let data = fs::read(&path).unwrap();
                format!(
                    "file of {} bytes, mode {mode:o}, hash {:x}",
                    data.len(),
                    fnv(&data)
                )
            };
            out.insert(rel, what);
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}
