//! The owning [`Mapping`]'s hold on its file: one `Mapping` per file at a
//! time (an exclusive `flock` taken before the file is sized), resizing
//! through the descriptor it holds, and files that are not regular files or
//! Device DAX refused without blocking.
//!
//! Every test takes its turn ([`Turn`]): a child process forked by one test
//! shares the descriptors of another test's mappings until it execs, and so
//! its locks, which would make a reopen after a drop fail in that window.

mod common;

use std::ffi::CString;
use std::fs;
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, MutexGuard, PoisonError, mpsc};
use std::time::Duration;

use pmem_sys::{CopyFlags, MapFlags, Mapping, map_file};
use tempfile::TempDir;

use common::{HUGE, huge_allocation_fails_fast, mapped_ranges, page_size, pattern, scratch};

static ONE_TEST_AT_A_TIME: Mutex<()> = Mutex::new(());

/// A scratch directory, and this test's turn for as long as it lives.
struct Turn {
    dir: TempDir,
    _turn: MutexGuard<'static, ()>,
}

impl Turn {
    fn new() -> Self {
        let turn = ONE_TEST_AT_A_TIME
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        Self {
            dir: scratch("pmem-mapping-"),
            _turn: turn,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A file of `len` bytes of [`pattern`] (seed `seed`).
    fn file(&self, name: &str, len: usize, seed: u8) -> PathBuf {
        let path = self.path(name);
        fs::write(&path, pattern(len, seed)).unwrap();
        path
    }
}

/// Asserts that `result` is the lock conflict: `WouldBlock`, a message
/// naming `path`, and `EWOULDBLOCK` from `flock` as its source.
#[track_caller]
fn assert_locked<T: std::fmt::Debug>(result: io::Result<T>, path: &Path) {
    let err = result.expect_err("the file is mapped already");
    assert_eq!(err.kind(), io::ErrorKind::WouldBlock, "{err}");
    let shown = path.display().to_string();
    assert!(err.to_string().contains(&shown), "{err} names {shown}");
    let errno = std::error::Error::source(&err)
        .and_then(|s| s.downcast_ref::<io::Error>())
        .and_then(io::Error::raw_os_error);
    assert_eq!(errno, Some(libc::EWOULDBLOCK), "{err}");
    assert!(pmem_sys::errormsg().contains(&shown));
}

/// Size and bytes of the file at `path`.
fn contents(path: &Path) -> (u64, Vec<u8>) {
    (fs::metadata(path).unwrap().len(), fs::read(path).unwrap())
}

/// Bytes allocated to `path` (`st_blocks` is in 512-byte units).
fn allocated(path: &Path) -> u64 {
    fs::metadata(path).unwrap().blocks() * 512
}

// ---------------------------------------------------------------------------
// One Mapping per file
// ---------------------------------------------------------------------------

#[test]
fn a_second_open_of_a_mapped_file_would_block() {
    let t = Turn::new();
    let path = t.file("pool", 8192, 1);
    let first = Mapping::open(&path).unwrap();
    assert_locked(Mapping::open(&path), &path);
    assert_locked(Mapping::map(&path, 0, MapFlags::empty(), 0), &path);

    drop(first);
    let second = Mapping::open(&path).expect("the lock went with the first mapping");
    assert_eq!(second.as_slice(), &pattern(8192, 1)[..]);
}

#[test]
fn the_lock_is_on_the_file_not_the_name() {
    let t = Turn::new();
    let path = t.file("pool", 4096, 2);
    let first = Mapping::open(&path).unwrap();

    let link = t.path("link");
    fs::hard_link(&path, &link).unwrap();
    assert_locked(Mapping::open(&link), &link);

    let renamed = t.path("renamed");
    fs::rename(&path, &renamed).unwrap();
    assert_locked(Mapping::open(&renamed), &renamed);
    assert_locked(Mapping::create(&link, 4096), &link);

    // A new file at the old name is another file, free to map.
    let other = t.file("pool", 4096, 3);
    let unrelated = Mapping::open(&other).unwrap();
    assert_eq!(unrelated.as_slice(), &pattern(4096, 3)[..]);
    drop(first);
    assert!(Mapping::open(&renamed).is_ok());
}

#[test]
fn creating_over_a_mapped_file_changes_nothing() {
    let t = Turn::new();
    let len = 3 * page_size();
    let path = t.file("pool", len, 4);
    let mut first = Mapping::open(&path).unwrap();
    first.write(0, b"live", CopyFlags::empty()).unwrap();
    first.msync(..).unwrap();
    let before = contents(&path);

    // Shrinking, growing, sparse, unnamed through a link: each would resize
    // the file before mapping it, and each is refused first.
    assert_locked(Mapping::create(&path, page_size()), &path);
    assert_locked(Mapping::create(&path, 2 * len), &path);
    assert_locked(
        Mapping::map(&path, len / 2, MapFlags::CREATE | MapFlags::SPARSE, 0o600),
        &path,
    );
    let link = t.path("link");
    fs::hard_link(&path, &link).unwrap();
    assert_locked(Mapping::create(&link, 1), &link);
    // Creating it exclusively fails as it always did: it exists.
    let excl = Mapping::create_new(&path, page_size()).unwrap_err();
    assert_eq!(excl.raw_os_error(), Some(libc::EEXIST));

    assert_eq!(contents(&path), before, "size and bytes as they were");
    assert_eq!(&first.as_slice()[..4], b"live");
    assert_eq!(first.len(), len);

    drop(first);
    let resized = Mapping::create(&path, page_size()).unwrap();
    assert_eq!(resized.len(), page_size());
    assert_eq!(fs::metadata(&path).unwrap().len(), page_size() as u64);
}

#[test]
fn a_mapping_made_by_create_is_locked_too() {
    let t = Turn::new();
    let path = t.path("pool");
    let created = Mapping::create_new(&path, 4096).unwrap();
    assert_locked(Mapping::open(&path), &path);
    assert_locked(Mapping::create(&path, 8192), &path);
    assert_eq!(fs::metadata(&path).unwrap().len(), 4096);
    drop(created);

    let sized = Mapping::create(&path, 8192).unwrap();
    assert_locked(Mapping::open(&path), &path);
    drop(sized);
}

#[test]
fn the_raw_map_file_takes_no_lock() {
    let t = Turn::new();
    let path = t.file("pool", 4096, 5);
    let owned = Mapping::open(&path).unwrap();
    // As libpmem's pmem_map_file: no lock, so it maps a locked file too.
    let raw = map_file(&path, 0, MapFlags::empty(), 0).unwrap();
    // SAFETY: made just above; not used after this.
    unsafe { pmem_sys::raw::unmap(raw.addr, raw.len) }.unwrap();
    drop(owned);

    // Nor does it hold one: an owning mapping of its file succeeds.
    let raw = map_file(&path, 0, MapFlags::empty(), 0).unwrap();
    let owned = Mapping::open(&path).expect("map_file leaves the file unlocked");
    // SAFETY: as above.
    unsafe { pmem_sys::raw::unmap(raw.addr, raw.len) }.unwrap();
    // into_raw closes the file, but the kernel's mapping keeps the locked
    // open file description: the lock lasts until the mapping is unmapped.
    let raw = owned.into_raw();
    assert_locked(Mapping::open(&path), &path);
    // SAFETY: `raw` is what `owned` owned; nothing uses it any more.
    unsafe { pmem_sys::raw::unmap(raw.addr, raw.len) }.unwrap();
    assert!(Mapping::open(&path).is_ok(), "unmapping released the lock");
}

/// Set in a child process to the path of a file its parent has mapped.
const CHILD_ENV: &str = "PMEM_SYS_MAPPING_LOCKED_FILE";

/// Runs only in a child process (see [`CHILD_ENV`]); passes trivially otherwise.
#[test]
fn child_finds_the_file_locked() {
    let Some(path) = std::env::var_os(CHILD_ENV).map(PathBuf::from) else {
        return;
    };
    let before = contents(&path);
    assert_locked(Mapping::open(&path), &path);
    assert_locked(Mapping::create(&path, 1), &path);
    assert_eq!(contents(&path), before);
}

#[test]
fn another_process_cannot_map_a_mapped_file() {
    let t = Turn::new();
    let path = t.file("pool", 16384, 6);
    let held = Mapping::open(&path).unwrap();
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_finds_the_file_locked", "--test-threads=1"])
        .env(CHILD_ENV, &path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "{}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(held.as_slice(), &pattern(16384, 6)[..]);
}

// ---------------------------------------------------------------------------
// resize
// ---------------------------------------------------------------------------

#[test]
fn resize_grows_the_file_and_keeps_its_bytes() {
    let t = Turn::new();
    let page = page_size();
    let path = t.file("pool", page, 7);
    let mut m = Mapping::open(&path).unwrap();
    let new_len = 5 * page + 100;
    m.resize(new_len).unwrap();

    assert_eq!(m.len(), new_len);
    assert_eq!(fs::metadata(&path).unwrap().len(), new_len as u64);
    assert_eq!(&m.as_slice()[..page], &pattern(page, 7)[..]);
    assert!(m.as_slice()[page..].iter().all(|&b| b == 0));
    assert!(
        allocated(&path) >= new_len as u64,
        "blocks allocated as map_file allocates them"
    );
    // One mapping of the file, of the new length: the old one is gone.
    let start = m.as_ptr() as usize;
    let end = start + new_len.next_multiple_of(page);
    assert_eq!(mapped_ranges(&path), [(start, end)]);
    assert_eq!(m.is_pmem(), pmem_sys::raw::is_pmem(m.as_ptr(), m.len()));

    // The new bytes are the file's.
    m.write(new_len - 5, b"tail!", CopyFlags::empty()).unwrap();
    m.msync(..).unwrap();
    assert_eq!(&fs::read(&path).unwrap()[new_len - 5..], b"tail!");
    // The lock stays.
    assert_locked(Mapping::open(&path), &path);
}

#[test]
fn resize_shrinks_the_file() {
    let t = Turn::new();
    let page = page_size();
    let path = t.file("pool", 4 * page, 8);
    let mut m = Mapping::open(&path).unwrap();
    m.resize(page + 10).unwrap();
    assert_eq!(m.len(), page + 10);
    assert_eq!(fs::metadata(&path).unwrap().len(), (page + 10) as u64);
    assert_eq!(m.as_slice(), &pattern(4 * page, 8)[..page + 10]);
    let start = m.as_ptr() as usize;
    assert_eq!(mapped_ranges(&path), [(start, start + 2 * page)]);
    // Same length: nothing to do.
    let at = m.as_ptr();
    m.resize(page + 10).unwrap();
    assert_eq!(m.as_ptr(), at);
}

#[test]
fn resize_follows_the_file_through_a_rename() {
    let t = Turn::new();
    let page = page_size();
    let path = t.path("pool");
    let mut m = Mapping::create_new(&path, page).unwrap();
    m.write(0, b"mine", CopyFlags::empty()).unwrap();

    let renamed = t.path("renamed");
    fs::rename(&path, &renamed).unwrap();
    fs::write(&path, b"someone else's").unwrap();

    m.resize(4 * page).unwrap();
    assert_eq!(fs::metadata(&renamed).unwrap().len(), (4 * page) as u64);
    assert_eq!(&m.as_slice()[..4], b"mine");
    m.msync(..).unwrap();
    assert_eq!(&fs::read(&renamed).unwrap()[..4], b"mine");
    assert_eq!(
        contents(&path),
        (14, b"someone else's".to_vec()),
        "the file now at the old path is untouched"
    );
}

#[test]
fn resize_of_a_sparse_mapping_allocates_nothing() {
    let t = Turn::new();
    let path = t.path("sparse");
    let mut m = Mapping::map(&path, 4096, MapFlags::CREATE | MapFlags::SPARSE, 0o600).unwrap();
    m.resize(8 << 20).unwrap();
    assert_eq!(fs::metadata(&path).unwrap().len(), 8 << 20);
    assert!(
        allocated(&path) < 1 << 20,
        "{} bytes allocated",
        allocated(&path)
    );
}

#[test]
fn resize_refuses_what_it_cannot_do() {
    let t = Turn::new();
    let path = t.file("pool", 4096, 9);

    let mut m = Mapping::open(&path).unwrap();
    for bad in [0, usize::MAX] {
        let err = m.resize(bad).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
        assert!(err.to_string().contains("pool"), "{err}");
    }
    assert_eq!((m.len(), fs::metadata(&path).unwrap().len()), (4096, 4096));
    drop(m);

    let raw = map_file(&path, 0, MapFlags::empty(), 0).unwrap();
    // SAFETY: made just above; from here on only `m` uses it.
    let mut m = unsafe { Mapping::from_raw(raw) };
    let err = m.resize(8192).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::Unsupported, "{err}");
    assert!(err.to_string().contains("from_raw"), "{err}");
    assert_eq!(m.len(), 4096);
    assert_eq!(contents(&path), (4096, pattern(4096, 9)));
}

#[test]
fn a_failed_resize_changes_nothing() {
    let t = Turn::new();
    if !huge_allocation_fails_fast(t.dir.path()) {
        println!(
            "{}: a huge allocation may not fail fast here: skipped",
            t.dir.path().display()
        );
        return;
    }
    let path = t.file("pool", 4096, 10);
    let mut m = Mapping::open(&path).unwrap();
    // More than the file system holds: ftruncate or posix_fallocate fails.
    let err = m.resize(HUGE).unwrap_err();
    assert!(err.raw_os_error().is_some(), "{err}");
    assert_eq!(m.len(), 4096);
    assert_eq!(m.as_slice(), &pattern(4096, 10)[..]);
    assert_eq!(contents(&path), (4096, pattern(4096, 10)));
    m.resize(8192).expect("still usable");
}

// ---------------------------------------------------------------------------
// Files that are not files
// ---------------------------------------------------------------------------

/// Runs `f` on another thread and fails if it takes more than ten seconds:
/// a regression that blocks (opening a FIFO waits for a writer) fails
/// instead of hanging the run.
fn within_seconds<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("{what}: no answer in 10 s ({e})"))
}

fn mkfifo(path: &Path) {
    let c = CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: `c` is a NUL-terminated path.
    let ret = unsafe { libc::mkfifo(c.as_ptr(), 0o600) };
    assert_eq!(ret, 0, "mkfifo: {}", io::Error::last_os_error());
}

/// Every path-based way to make a `Mapping` of `path`, each with its error.
fn every_constructor(path: PathBuf) -> Vec<(&'static str, io::Error)> {
    vec![
        ("open", Mapping::open(&path).unwrap_err()),
        ("create", Mapping::create(&path, 4096).unwrap_err()),
        (
            "map SPARSE",
            Mapping::map(&path, 4096, MapFlags::CREATE | MapFlags::SPARSE, 0o600).unwrap_err(),
        ),
    ]
}

#[test]
fn fifos_sockets_and_other_devices_are_refused_at_once() {
    let t = Turn::new();
    let fifo = t.path("fifo");
    mkfifo(&fifo);
    let socket = t.path("socket");
    let _listener = UnixListener::bind(&socket).unwrap();

    for path in [fifo.clone(), socket.clone(), PathBuf::from("/dev/null")] {
        let shown = path.display().to_string();
        let errors = within_seconds(&shown, move || every_constructor(path));
        for (how, err) in errors {
            assert_eq!(
                err.raw_os_error(),
                Some(libc::EINVAL),
                "{how} {shown}: {err}"
            );
        }
    }
    // Nothing was changed or replaced.
    assert!(fs::metadata(&fifo).unwrap().file_type().is_fifo());
    assert!(fs::metadata(&socket).unwrap().file_type().is_socket());
}

#[test]
fn from_file_checks_what_the_descriptor_is() {
    let t = Turn::new();
    let fifo = t.path("fifo");
    mkfifo(&fifo);
    let path = fifo.clone();
    // The check `map_file` makes by path is made again on the descriptor:
    // what was opened is what is mapped.
    let (err, message) = within_seconds("fifo", move || {
        let file = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&path)
            .unwrap();
        let err = Mapping::from_file(file, &path).unwrap_err();
        (err, pmem_sys::errormsg())
    });
    assert_eq!(err.raw_os_error(), Some(libc::EINVAL), "{err}");
    assert_eq!(
        message,
        format!(
            "{} is neither a regular file nor a Device DAX",
            fifo.display()
        )
    );

    let null = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
        .unwrap();
    let err = Mapping::from_file(null, "/dev/null").unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EINVAL), "{err}");

    let dir = fs::File::open(t.dir.path()).unwrap();
    let err = Mapping::from_file(dir, t.dir.path()).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EINVAL), "{err}");

    let path = t.file("pool", 4096, 11);
    let read_only = fs::File::open(&path).unwrap();
    let err = Mapping::from_file(read_only, &path).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EACCES), "{err}");

    let file = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .unwrap();
    let m = Mapping::from_file(file, &path).unwrap();
    assert_eq!(m.as_slice(), &pattern(4096, 11)[..]);
    assert_locked(Mapping::open(&path), &path);
    let file = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .unwrap();
    assert_locked(Mapping::from_file(file, &path), &path);
}
