//! Pools and the files under them: a pool keeps the file it opened whatever
//! becomes of its name, a pool's file is mapped by nothing else while it is
//! open, and what is not a file is refused at once, unread and unchanged.

use std::ffi::CString;
use std::fs;
use std::io;
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use pmem_sys::{MapFlags, Mapping};
use pmem_testkit::scratch;
use pmem_typed::format::{MAGIC, PAGE};
use pmem_typed::inspect::inspect;
use pmem_typed::{Error, FileKind, FileMedium, PSlice, Persist, Pool};

#[derive(Clone, Copy, Debug, PartialEq, Persist)]
#[repr(C)]
struct Root {
    counter: u64,
    numbers: PSlice<u64>,
    big0: PSlice<u8>,
    big1: PSlice<u8>,
    big2: PSlice<u8>,
}

const LAYOUT: &str = "files";
const MIB: usize = 1 << 20;

fn size_and_bytes(path: &Path) -> (u64, Vec<u8>) {
    (fs::metadata(path).unwrap().len(), fs::read(path).unwrap())
}

/// A pool of 1 MiB at `path` whose root counter is `counter`, with a slice
/// of three numbers.
fn make_pool(path: &Path, counter: u64) -> Pool<Root> {
    let mut pool = Pool::<Root>::create(path, LAYOUT, MIB).unwrap();
    let root = pool.root().fields();
    pool.set(root.counter, counter).unwrap();
    pool.alloc_slice(root.numbers, &[counter, counter + 1, counter + 2])
        .unwrap();
    pool
}

/// Reopens the pool at `path` and checks what [`make_pool`] put in it.
fn assert_pool(path: &Path, counter: u64, size: usize) {
    let pool = Pool::<Root>::open(path, LAYOUT).unwrap();
    let root = pool.get(pool.root()).unwrap();
    assert_eq!(root.counter, counter, "{}", path.display());
    assert_eq!(
        pool.get_slice(root.numbers).unwrap(),
        [counter, counter + 1, counter + 2]
    );
    assert_eq!(pool.size() as usize, size);
    assert_eq!(fs::metadata(path).unwrap().len(), size as u64);
    let report = pool.check();
    assert!(report.is_consistent(), "{report}");
}

#[test]
fn a_pool_grows_the_file_it_opened_not_the_one_at_its_path() {
    let dir = scratch::scratch("pmem-files");
    let path = dir.path().join("pool");
    let moved = dir.path().join("moved");

    let mut a = make_pool(&path, 1);
    fs::rename(&path, &moved).unwrap();
    let b = make_pool(&path, 100);
    let b_before = size_and_bytes(&path);

    a.grow(4 * MIB).unwrap();
    // The new space is usable: more than the old file could hold.
    let root = a.root().fields();
    for at in [root.big0, root.big1, root.big2] {
        let blob = a.alloc_slice_zeroed::<u8>(at, 600 << 10).unwrap();
        assert_eq!(a.get_slice(blob).unwrap().len(), 600 << 10);
    }
    assert_eq!(a.medium().path(), path, "the path it was opened at");

    assert_eq!(fs::metadata(&moved).unwrap().len(), (4 * MIB) as u64);
    assert_eq!(size_and_bytes(&path), b_before, "B's file is untouched");
    drop((a, b));

    assert_pool(&moved, 1, 4 * MIB);
    assert_pool(&path, 100, MIB);
}

#[test]
fn an_open_pools_file_is_mapped_by_nothing_else() {
    let dir = scratch::scratch("pmem-files");
    let path = dir.path().join("pool");
    let pool = make_pool(&path, 7);
    let before = size_and_bytes(&path);

    let link = dir.path().join("link");
    fs::hard_link(&path, &link).unwrap();
    for name in [&path, &link] {
        let again = Pool::<Root>::open(name, LAYOUT);
        assert!(
            matches!(&again, Err(Error::AlreadyOpen { path }) if path == name),
            "{again:?}"
        );
        assert!(matches!(inspect(name), Err(Error::AlreadyOpen { .. })));
        assert!(matches!(
            FileMedium::open(name, PAGE),
            Err(Error::AlreadyOpen { .. })
        ));
    }
    // pmem-sys's own mappings are refused too, before they resize anything.
    for attempt in [
        Mapping::create(&path, 4096),
        Mapping::map(&link, 2 * MIB, MapFlags::CREATE, 0o600),
        Mapping::open(&path),
    ] {
        let err = attempt.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock, "{err}");
    }
    assert_eq!(size_and_bytes(&path), before, "nothing truncated");
    // The pool still reads its data (no SIGBUS).
    let root = pool.get(pool.root()).unwrap();
    assert_eq!(root.counter, 7);
    assert_eq!(pool.get_slice(root.numbers).unwrap(), [7, 8, 9]);
    drop(pool);
    assert_pool(&link, 7, MIB);
}

// ---------------------------------------------------------------------------
// Paths that are not files
// ---------------------------------------------------------------------------

/// Runs `f` on another thread and fails if it takes more than ten seconds:
/// a regression that blocks (opening a FIFO waits for a writer) or reads
/// without end (`/dev/zero`) fails instead of hanging the run.
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

/// A block device under `/dev`, if the machine shows one.
fn some_block_device() -> Option<PathBuf> {
    fs::read_dir("/dev")
        .ok()?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .find(|path| fs::metadata(path).is_ok_and(|m| m.file_type().is_block_device()))
}

/// `Pool::open`, `inspect` and `FileMedium::open` of `path`, each asserted
/// to be `NotAFile` naming `path` and `found`.
fn assert_refused(path: PathBuf, found: FileKind) {
    let shown = path.display().to_string();
    let errors = within_seconds(&shown, move || {
        [
            Pool::<Root>::open(&path, LAYOUT).map(drop),
            inspect(&path).map(drop),
            FileMedium::open(&path, PAGE).map(drop),
        ]
        .map(|r| r.map_err(|e| (e, path.clone())))
    });
    for result in errors {
        match result {
            Err((Error::NotAFile { path, found: kind }, asked)) => {
                assert_eq!((&path, kind), (&asked, found), "{shown}");
            }
            Err((other, _)) => panic!("{shown}: expected NotAFile, got {other}"),
            Ok(()) => panic!("{shown}: opened as a pool"),
        }
    }
}

#[test]
fn fifos_sockets_directories_and_devices_are_refused_at_once() {
    let dir = scratch::scratch("pmem-files");
    let fifo = dir.path().join("fifo");
    mkfifo(&fifo);
    let socket = dir.path().join("socket");
    let _listener = UnixListener::bind(&socket).unwrap();
    let subdir = dir.path().join("dir");
    fs::create_dir(&subdir).unwrap();

    assert_refused(fifo.clone(), FileKind::Fifo);
    assert_refused(socket.clone(), FileKind::Socket);
    assert_refused(subdir.clone(), FileKind::Directory);
    assert_refused("/dev/zero".into(), FileKind::CharDevice);
    assert_refused("/dev/null".into(), FileKind::CharDevice);
    match some_block_device() {
        Some(device) => assert_refused(device, FileKind::BlockDevice),
        None => println!("no block device in /dev: that case is skipped"),
    }

    // Left as they were.
    assert!(fs::metadata(&fifo).unwrap().file_type().is_fifo());
    assert!(fs::metadata(&socket).unwrap().file_type().is_socket());
    assert_eq!(fs::read_dir(&subdir).unwrap().count(), 0);

    let err = Pool::<Root>::open(&fifo, LAYOUT).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "{}: expected a regular file or a Device DAX, found a FIFO",
            fifo.display()
        )
    );
}

#[test]
fn short_files_are_told_apart_from_their_first_bytes() {
    let dir = scratch::scratch("pmem-files");
    let cases: [(&str, Vec<u8>); 4] = [
        ("empty", vec![]),
        ("five", b"hello".to_vec()),
        ("elf", b"\x7fELF\x02\x01\x01\x00 and more".to_vec()),
        ("stub", [&MAGIC[..], &[0; 92]].concat()),
    ];
    for (name, bytes) in cases {
        let path = dir.path().join(name);
        fs::write(&path, &bytes).unwrap();
        for err in [
            Pool::<Root>::open(&path, LAYOUT).map(drop).unwrap_err(),
            inspect(&path).map(drop).unwrap_err(),
        ] {
            match (name, &err) {
                ("elf", Error::NotAPool { found }) => assert_eq!(found, b"\x7fELF\x02\x01\x01\x00"),
                ("empty" | "five" | "stub", Error::Truncated { expected, found }) => {
                    assert_eq!((*expected, *found), (PAGE as u64, bytes.len() as u64));
                }
                _ => panic!("{name}: {err}"),
            }
        }
        // Unchanged, and not left locked.
        assert_eq!(fs::read(&path).unwrap(), bytes);
        if !bytes.is_empty() {
            drop(Mapping::open(&path).expect("no lock left behind"));
        }
    }
}

/// `Medium::flush` is safe: a range outside the medium (which a pool never
/// passes, but any caller of `pool.medium()` may) panics instead of
/// flushing, or faulting on, an address outside the mapping.
#[test]
fn flushing_outside_the_medium_panics() {
    use pmem_typed::Medium;
    use pmem_typed::sim::SimMedium;
    use std::panic::{AssertUnwindSafe, catch_unwind};

    let dir = scratch::scratch("pmem-typed-files");
    let file = FileMedium::create(dir.path().join("raw"), 8192).unwrap();
    let sim = SimMedium::new(8192, 8192);
    let media: [&dyn Fn(usize, usize); 2] = [&|o, l| file.flush(o, l), &|o, l| sim.flush(o, l)];
    for flush in media {
        flush(8192 - 64, 64); // the last line: fine
        for (offset, len) in [(8192, 1), (8000, 193), (usize::MAX, 2), (1 << 40, 8)] {
            let outcome = catch_unwind(AssertUnwindSafe(|| flush(offset, len)));
            assert!(outcome.is_err(), "flush({offset}, {len}) did not panic");
        }
    }
    // And through `persist`, which flushes first.
    assert!(catch_unwind(AssertUnwindSafe(|| file.persist(1 << 30, 64))).is_err());
}
