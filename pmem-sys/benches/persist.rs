//! Persistence benchmarks of pmem-sys, side by side with PMDK's libpmem.
//!
//! Run with `cargo bench -p pmem-sys` (add `-- <filter>` to run some groups
//! only). The whole run takes a few minutes.
//!
//! # What is measured
//!
//! | group | operation | parameter |
//! |---|---|---|
//! | `memcpy_persist` | `memcpy_persist(dst, src, len)` | `len`, 64 B to 64 MiB |
//! | `memset_persist` | `memset_persist(dst, 0x5a, len)` | `len`, 64 B to 64 MiB |
//! | `store8_persist` | a volatile 8-byte store, then `persist(addr, 8)` | the window, see below |
//! | `memcpy_variants` | `Engine::memcpy` per [`CopyVariant`] (ours only) | `len`: 4 KiB, 64 KiB, 4 MiB |
//!
//! In the first three groups `ours/<param>` is pmem-sys (`pmem_sys::raw::*`,
//! i.e. the process-wide [`Engine`] that `Config::from_env` picks) and
//! `pmdk/<param>` is PMDK's libpmem (`pmem_memcpy_persist`,
//! `pmem_memset_persist`, `pmem_persist`), both on the same mapping, with
//! identical parameters, measured one after the other for each parameter so
//! that drift over the run affects both alike. The order alternates: ours
//! first for every other parameter, PMDK's first for the rest, so that
//! neither library always runs first after a change of size.
//!
//! # Method
//!
//! - **Environment.** `main` sets `PMEM_IS_PMEM_FORCE=1` before anything
//!   reads the environment (and before libpmem is loaded), as tests do on
//!   machines without persistent memory. It does not change what is
//!   measured: both libraries' `*_persist` functions flush and fence
//!   whatever the mapping is; it only makes both report the mappings as
//!   persistent memory. Other `PMEM_*` variables are honoured by both
//!   libraries, so leave them unset for the default comparison.
//! - **Memory.** Persistent memory is stood in for by a file in `/dev/shm`
//!   (tmpfs, i.e. DRAM; `std::env::temp_dir()` if there is no `/dev/shm`),
//!   64 MiB, mapped with [`Mapping::create`] (our `map_file`), unlinked right
//!   after mapping, and pre-faulted before any measurement. Both libraries
//!   write into this same mapping: on this virtual machine two mappings of
//!   the same size get physical memory of different speed, and with one
//!   mapping per library the 16 and 64 MiB results swung by ±15% from run to
//!   run with which mapping was which (swapping the mappings swapped the
//!   winner). PMDK's own `pmem_map_file` still maps a file of its own, used to
//!   check its bindings before timing.
//! - **PMDK** is loaded at run time with `libloading` from
//!   `/usr/lib/x86_64-linux-gnu/libpmem.so.1`, else `libpmem.so.1` by name;
//!   it is never linked. If it cannot be loaded (or cannot map), only ours
//!   runs and a note says so.
//! - **Destinations rotate** through the whole 64 MiB mapping, like appends
//!   to a log larger than the cache: the `k`-th call writes at offset
//!   `k * stride`, wrapping to 0 when the next copy would not fit, where
//!   `stride` is `len` rounded up to 64 bytes, so every destination is
//!   64-byte aligned and consecutive calls touch consecutive, different lines.
//!   A line is written again only after 64 MiB of other writes (twice the
//!   32 MiB L3 here), so small copies do not re-flush one hot line and do not
//!   get cache hits that real persistent memory would not give either. The
//!   source is an ordinary heap buffer (64-aligned, filled with a pattern so
//!   that its pages are real), always read from its start.
//! - **Latency** (`store8_persist`) rotates the same way with a 64-byte
//!   stride over two windows: the whole mapping (`67108864`: every store
//!   misses the cache, as for cold persistent memory) and 4 KiB (`4096`:
//!   64 lines, which stay in L1 unless the flush evicts them). If both
//!   windows cost the same, the write-back and fence dominate, not the
//!   library's own instructions.
//! - **Sampling.** Sizes up to 64 KiB: 60 samples in 1.5 s; 256 KiB to 4 MiB:
//!   30 samples in 2 s; 16 and 64 MiB: 10 flat samples in 3 s. Warm-up 0.5 s
//!   (1 s for the largest). Each call is one criterion iteration.
//!
//! # Reading the results
//!
//! Criterion prints each benchmark as it runs (throughput in GiB/s for the
//! bandwidth groups). After all of them this program prints one table per
//! group from criterion's `estimates.json` files (the mean of each benchmark,
//! with the half-width of its 95% confidence interval) and writes the same
//! tables as markdown to `<criterion dir>/pmem-sys-vs-pmdk.md` (only when
//! every benchmark ran, so a filtered run never replaces a full table), where
//! the criterion dir is `$CRITERION_HOME`, else `$CARGO_TARGET_DIR/criterion`,
//! else the workspace's `target/criterion`.
//!
//! - Bandwidth is in GB/s (10^9 bytes per second, so it reads lower than
//!   criterion's GiB/s by 7%). The ratio column is **ours/PMDK**: above 1 we
//!   are faster.
//! - Latency is in ns per store-and-persist. The ratio column is
//!   **PMDK/ours**, so that here too above 1 means we are faster.
//! - Ratios below 0.95 are marked "slower". Compare them with the confidence
//!   intervals, and with another run: criterion times the two libraries one
//!   after the other, a few seconds apart, and on a virtual machine memory
//!   bandwidth drifts by several percent over that time, so ratios at 1 MiB
//!   and above can move by ±10% from run to run (an interleaved, call-by-call
//!   A/B of the same two libraries showed them within 1.5% at every size).
//!   Other work on the machine makes this worse: keep it idle.
//! - Only benchmarks that ran in this process are shown; the others (filtered
//!   out, or `--test` mode) appear as "-".

use std::cell::Cell;
use std::ffi::{CString, c_char, c_int, c_void};
use std::fmt::Write as _;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, BenchmarkId, Criterion, SamplingMode, Throughput};
use pmem_sys::{Config, CopyFlags, CopyVariant, CpuFeatures, Engine, Mapping, raw};
use pmem_testkit::pmdk::{ErrormsgFn, LIBPMEM, PmdkLibrary, last_error};

const KIB: usize = 1 << 10;
const MIB: usize = 1 << 20;

/// The copy and fill lengths.
const SIZES: [usize; 11] = [
    64,
    256,
    KIB,
    4 * KIB,
    16 * KIB,
    64 * KIB,
    256 * KIB,
    MIB,
    4 * MIB,
    16 * MIB,
    64 * MIB,
];
/// The lengths of the variants group.
const VARIANT_SIZES: [usize; 3] = [4 * KIB, 64 * KIB, 4 * MIB];
/// Size of each mapping, and the window destinations rotate through.
const REGION: usize = 64 * MIB;
/// The small window of the latency group.
const HOT_WINDOW: usize = 4 * KIB;
/// A cache line: the destination alignment and the smallest stride.
const LINE: usize = 64;
/// The byte the memset group writes.
const FILL: u8 = 0x5a;

/// `PMEM_FILE_CREATE` from `libpmem.h`.
const PMEM_FILE_CREATE: c_int = 1;

const GROUP_MEMCPY: &str = "memcpy_persist";
const GROUP_MEMSET: &str = "memset_persist";
const GROUP_STORE: &str = "store8_persist";
const GROUP_VARIANTS: &str = "memcpy_variants";
const OURS: &str = "ours";
const PMDK: &str = "pmdk";

fn main() {
    // SAFETY: this is the first statement of `main`: no other thread exists
    // yet (neither criterion nor libpmem has been started), so nothing reads
    // or writes the environment concurrently.
    unsafe { std::env::set_var("PMEM_IS_PMEM_FORCE", "1") };
    println!(
        "note: PMEM_IS_PMEM_FORCE=1 is set for this process (both libraries flush in \
         *_persist regardless; it only makes the /dev/shm mappings count as pmem)"
    );
    let started = SystemTime::now();

    let dir = bench_dir();
    let mut ours = Mapping::create(dir.join(file_name(OURS)), REGION)
        .unwrap_or_else(|e| panic!("cannot map {}: {e}", dir.display()));
    // The mapping stays valid; unlinking now leaves nothing behind on a crash.
    let _ = std::fs::remove_file(dir.join(file_name(OURS)));
    ours.as_mut_slice().fill(0);
    let ours_base = ours.as_mut_ptr();

    let pmdk_lib = match Pmdk::load() {
        Ok(lib) => Some(lib),
        Err(e) => {
            eprintln!("note: PMDK's libpmem not loaded ({e}); benchmarking pmem-sys only");
            None
        }
    };
    let pmdk_map =
        pmdk_lib
            .as_ref()
            .and_then(|lib| match lib.map(&dir.join(file_name(PMDK)), REGION) {
                Ok(m) => Some(m),
                Err(e) => {
                    eprintln!(
                        "note: PMDK's pmem_map_file failed ({e}); benchmarking pmem-sys only"
                    );
                    None
                }
            });
    let pmdk = pmdk_map.as_ref().map(|m| {
        let _ = std::fs::remove_file(dir.join(file_name(PMDK)));
        Side {
            lib: m.lib,
            base: m.addr,
        }
    });

    let source = Source::new(REGION);
    check_bindings(ours_base, pmdk.as_ref(), &source);
    // Time both libraries writing into the same mapping (see "Memory" in the
    // crate docs): PMDK's functions do not care who mapped the memory.
    let pmdk = pmdk.map(|side| side.lib);

    let mut c = Criterion::default().configure_from_args();
    bench_memcpy(&mut c, ours_base, pmdk, source.as_ptr());
    bench_memset(&mut c, ours_base, pmdk);
    bench_store8(&mut c, ours_base, pmdk);
    let variants = bench_variants(&mut c, ours_base, source.as_ptr());
    c.final_summary();

    report(started, pmdk_lib.as_ref(), &variants);

    drop(pmdk_map);
    drop(ours);
}

/// A directory on tmpfs for the two pool files.
fn bench_dir() -> PathBuf {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        shm.to_owned()
    } else {
        let tmp = std::env::temp_dir();
        eprintln!(
            "note: no /dev/shm; mapping files in {} instead",
            tmp.display()
        );
        tmp
    }
}

fn file_name(who: &str) -> String {
    format!("pmem-sys-bench-{}-{who}", std::process::id())
}

/// The source of the copies: an ordinary heap buffer, 64-aligned, with every
/// page written (a zeroed allocation could be backed by the shared zero page).
struct Source {
    buf: Vec<u8>,
    offset: usize,
}

impl Source {
    fn new(len: usize) -> Self {
        let mut buf = vec![0u8; len + LINE];
        let offset = buf.as_ptr().align_offset(LINE);
        for (i, b) in buf.iter_mut().enumerate() {
            *b = (i % 251) as u8;
        }
        Self { buf, offset }
    }

    fn as_ptr(&self) -> *const u8 {
        self.buf[self.offset..].as_ptr()
    }
}

/// Destinations for successive calls: `len` bytes at 64-aligned offsets
/// `k * stride` in a window of `window` bytes, wrapping to the start.
struct Rotation {
    base: *mut u8,
    next: usize,
    stride: usize,
    last_start: usize,
}

impl Rotation {
    /// `base` is 64-aligned, and `len <= window`.
    fn new(base: *mut u8, window: usize, len: usize) -> Self {
        assert!(base.addr().is_multiple_of(LINE) && len <= window);
        Self {
            base,
            next: 0,
            stride: len.next_multiple_of(LINE),
            last_start: window - len,
        }
    }

    /// The next destination; `len` bytes at it lie within the window.
    #[inline(always)]
    fn next(&mut self) -> *mut u8 {
        let at = self.base.wrapping_add(self.next);
        self.next += self.stride;
        if self.next > self.last_start {
            self.next = 0;
        }
        at
    }
}

type MemcpyFn = unsafe extern "C" fn(*mut c_void, *const c_void, usize) -> *mut c_void;
type MemsetFn = unsafe extern "C" fn(*mut c_void, c_int, usize) -> *mut c_void;
type PersistFn = unsafe extern "C" fn(*const c_void, usize);
type MapFileFn = unsafe extern "C" fn(
    *const c_char,
    usize,
    c_int,
    libc::mode_t,
    *mut usize,
    *mut c_int,
) -> *mut c_void;
type UnmapFn = unsafe extern "C" fn(*mut c_void, usize) -> c_int;

/// PMDK's libpmem, loaded at run time, with the functions we call.
struct Pmdk {
    path: &'static str,
    memcpy_persist: MemcpyFn,
    memset_persist: MemsetFn,
    persist: PersistFn,
    map_file: MapFileFn,
    unmap: UnmapFn,
    errormsg: ErrormsgFn,
    /// Keeps libpmem loaded for as long as the pointers above exist.
    _lib: PmdkLibrary,
}

impl Pmdk {
    fn load() -> Result<Self, String> {
        // SAFETY: loading runs libpmem's initialiser, which only reads the
        // environment (PMEM_IS_PMEM_FORCE has been set, and no other thread
        // touches the environment) and CPUID, and sets up its own state.
        let lib = unsafe { PmdkLibrary::load(LIBPMEM) }?;
        let path = lib.path();
        Self::resolve(lib).map_err(|e| format!("{path}: {e}"))
    }

    fn resolve(lib: PmdkLibrary) -> Result<Self, libloading::Error> {
        // SAFETY: each type is the prototype of that function in PMDK's
        // `libpmem.h` (`mode_t` and `size_t` as on Linux); the pointers are
        // only called while `lib`, stored in the same value, is loaded.
        unsafe {
            Ok(Self {
                path: lib.path(),
                memcpy_persist: lib.function::<MemcpyFn>("pmem_memcpy_persist")?,
                memset_persist: lib.function::<MemsetFn>("pmem_memset_persist")?,
                persist: lib.function::<PersistFn>("pmem_persist")?,
                map_file: lib.function::<MapFileFn>("pmem_map_file")?,
                unmap: lib.function::<UnmapFn>("pmem_unmap")?,
                errormsg: lib.function::<ErrormsgFn>("pmem_errormsg")?,
                _lib: lib,
            })
        }
    }

    /// `pmem_map_file(path, len, PMEM_FILE_CREATE, 0600)`, pre-faulted.
    fn map(&self, path: &Path, len: usize) -> Result<PmdkMapping<'_>, String> {
        let c_path = CString::new(path.as_os_str().as_bytes()).map_err(|e| e.to_string())?;
        let (mut mapped_len, mut is_pmem) = (0usize, 0 as c_int);
        // SAFETY: `c_path` is a NUL-terminated string and the two out-pointers
        // are valid for writes, as pmem_map_file requires.
        let addr = unsafe {
            (self.map_file)(
                c_path.as_ptr(),
                len,
                PMEM_FILE_CREATE,
                0o600,
                &raw mut mapped_len,
                &raw mut is_pmem,
            )
        };
        if addr.is_null() {
            // SAFETY: `errormsg` comes from libpmem, which `self` keeps loaded.
            return Err(unsafe { last_error(self.errormsg) });
        }
        // Only now owned, so that an early return above leaks nothing.
        let mapping = PmdkMapping {
            lib: self,
            addr: addr.cast(),
            len: mapped_len,
        };
        if mapped_len < len {
            return Err(format!("pmem_map_file mapped {mapped_len} of {len} bytes"));
        }
        // SAFETY: pmem_map_file mapped `mapped_len >= len` writable bytes at
        // `addr`, and nothing else uses them.
        unsafe { std::ptr::write_bytes(mapping.addr, 0, len) };
        Ok(mapping)
    }
}

/// A mapping made by PMDK's `pmem_map_file`, unmapped with `pmem_unmap` on drop.
struct PmdkMapping<'a> {
    lib: &'a Pmdk,
    addr: *mut u8,
    len: usize,
}

impl Drop for PmdkMapping<'_> {
    fn drop(&mut self) {
        // SAFETY: `addr`/`len` is the mapping pmem_map_file returned, and
        // the benchmarks that wrote to it have finished.
        unsafe { (self.lib.unmap)(self.addr.cast(), self.len) };
    }
}

/// PMDK's functions and the start of its own mapping, where its bindings are
/// checked.
#[derive(Clone, Copy)]
struct Side<'a> {
    lib: &'a Pmdk,
    base: *mut u8,
}

/// Checks once, before timing anything, that both libraries' copies and
/// fills write what they should: a wrong binding would otherwise be timed
/// without anyone noticing.
fn check_bindings(ours: *mut u8, pmdk: Option<&Side<'_>>, source: &Source) {
    const LEN: usize = 4 * KIB + 8;
    // SAFETY: `Source` holds REGION >= LEN readable bytes.
    let src = unsafe { std::slice::from_raw_parts(source.as_ptr(), LEN) };
    let check = |who: &str, base: *mut u8, memcpy: &dyn Fn(*mut u8), memset: &dyn Fn(*mut u8)| {
        // SAFETY: each mapping is REGION >= 2 * LEN bytes, used by nothing else
        // right now; the slices are dropped before the next write.
        unsafe {
            memcpy(base);
            assert!(
                std::slice::from_raw_parts(base, LEN) == src,
                "{who}: memcpy_persist"
            );
            let at = base.add(LEN);
            memset(at);
            let filled = std::slice::from_raw_parts(at, LEN);
            assert!(filled.iter().all(|&b| b == FILL), "{who}: memset_persist");
        }
    };
    check(
        OURS,
        ours,
        // SAFETY: LEN bytes at the start of our mapping; `src` is LEN bytes.
        &|dst| unsafe { _ = raw::memcpy_persist(dst, src.as_ptr(), LEN) },
        // SAFETY: LEN bytes inside our mapping.
        &|dst| unsafe { _ = raw::memset_persist(dst, FILL, LEN) },
    );
    if let Some(&Side { lib, base }) = pmdk {
        check(
            PMDK,
            base,
            // SAFETY: as above, in PMDK's mapping; libpmem is loaded.
            &|dst| unsafe { _ = (lib.memcpy_persist)(dst.cast(), src.as_ptr().cast(), LEN) },
            // SAFETY: as above, in PMDK's mapping; libpmem is loaded.
            &|dst| unsafe { _ = (lib.memset_persist)(dst.cast(), c_int::from(FILL), LEN) },
        );
    }
}

/// Sample count, sampling mode and times for a copy of `len` bytes (see the
/// crate docs).
fn configure(group: &mut BenchmarkGroup<'_, WallTime>, len: usize) {
    let (samples, warm_up_ms, measure_ms, mode) = if len <= 64 * KIB {
        (60, 500, 1500, SamplingMode::Auto)
    } else if len <= 4 * MIB {
        (30, 500, 2000, SamplingMode::Auto)
    } else {
        (10, 1000, 3000, SamplingMode::Flat)
    };
    group
        .sample_size(samples)
        .warm_up_time(Duration::from_millis(warm_up_ms))
        .measurement_time(Duration::from_millis(measure_ms))
        .sampling_mode(mode);
}

/// Which library a benchmark runs.
#[derive(Clone, Copy)]
enum Who<'a> {
    Ours,
    Pmdk(&'a Pmdk),
}

/// The libraries to run for the `index`-th parameter of a group: ours, and
/// PMDK's when it is loaded; ours first for even indices, PMDK's first for
/// odd ones, so that neither always runs right after a change of parameter.
fn order(index: usize, pmdk: Option<&Pmdk>) -> Vec<Who<'_>> {
    let mut order = vec![Who::Ours];
    if let Some(lib) = pmdk {
        if index.is_multiple_of(2) {
            order.push(Who::Pmdk(lib));
        } else {
            order.insert(0, Who::Pmdk(lib));
        }
    }
    order
}

/// Benchmarks one operation of both libraries for the `index`-th parameter
/// `param` of a group, in the order [`order`] gives. Each iteration calls
/// `ours(dst)` or `theirs(lib, dst)` with the next destination of a fresh
/// [`Rotation`] of `len`-byte writes over the first `window` bytes of the
/// shared mapping at `base`.
fn bench_both(
    group: &mut BenchmarkGroup<'_, WallTime>,
    (index, param): (usize, usize),
    pmdk: Option<&Pmdk>,
    (base, window, len): (*mut u8, usize, usize),
    mut ours: impl FnMut(*mut u8),
    mut theirs: impl FnMut(&Pmdk, *mut u8),
) {
    for who in order(index, pmdk) {
        let mut to = Rotation::new(base, window, len);
        match who {
            Who::Ours => group.bench_function(BenchmarkId::new(OURS, param), |b| {
                b.iter(|| ours(to.next()));
            }),
            Who::Pmdk(lib) => group.bench_function(BenchmarkId::new(PMDK, param), |b| {
                b.iter(|| theirs(lib, to.next()));
            }),
        };
    }
}

fn bench_memcpy(c: &mut Criterion, base: *mut u8, pmdk: Option<&Pmdk>, src: *const u8) {
    let mut group = c.benchmark_group(GROUP_MEMCPY);
    for (index, len) in SIZES.into_iter().enumerate() {
        configure(&mut group, len);
        group.throughput(Throughput::Bytes(len as u64));
        bench_both(
            &mut group,
            (index, len),
            pmdk,
            (base, REGION, len),
            |dst| {
                // SAFETY: `dst` is `len` bytes inside the mapping
                // (`Rotation`), `src` the first `len <= REGION` bytes of
                // `Source`; they do not overlap.
                unsafe { raw::memcpy_persist(dst, src, len) };
            },
            |lib, dst| {
                // SAFETY: as for ours; libpmem stays loaded while `lib` lives.
                unsafe { (lib.memcpy_persist)(dst.cast(), src.cast(), len) };
            },
        );
    }
    group.finish();
}

fn bench_memset(c: &mut Criterion, base: *mut u8, pmdk: Option<&Pmdk>) {
    let mut group = c.benchmark_group(GROUP_MEMSET);
    for (index, len) in SIZES.into_iter().enumerate() {
        configure(&mut group, len);
        group.throughput(Throughput::Bytes(len as u64));
        bench_both(
            &mut group,
            (index, len),
            pmdk,
            (base, REGION, len),
            |dst| {
                // SAFETY: `dst` is `len` bytes inside the mapping (`Rotation`).
                unsafe { raw::memset_persist(dst, FILL, len) };
            },
            |lib, dst| {
                // SAFETY: as for ours; libpmem stays loaded while `lib` lives.
                unsafe { (lib.memset_persist)(dst.cast(), c_int::from(FILL), len) };
            },
        );
    }
    group.finish();
}

fn bench_store8(c: &mut Criterion, base: *mut u8, pmdk: Option<&Pmdk>) {
    let mut group = c.benchmark_group(GROUP_STORE);
    configure(&mut group, 0);
    // A new value for every store, shared by the two libraries' closures.
    let value = Cell::new(0u64);
    let next_value = || {
        value.set(value.get().wrapping_add(1));
        value.get()
    };
    for (index, window) in [HOT_WINDOW, REGION].into_iter().enumerate() {
        bench_both(
            &mut group,
            (index, window),
            pmdk,
            (base, window, LINE),
            |addr| {
                let value = next_value();
                // SAFETY: `addr` is a 64-aligned line inside the mapping
                // (`Rotation`), so valid and aligned for an 8-byte write and
                // for persisting it.
                unsafe {
                    addr.cast::<u64>().write_volatile(value);
                    raw::persist(addr, 8);
                }
            },
            |lib, addr| {
                let value = next_value();
                // SAFETY: as for ours; libpmem stays loaded while `lib` lives.
                unsafe {
                    addr.cast::<u64>().write_volatile(value);
                    (lib.persist)(addr.cast(), 8);
                }
            },
        );
    }
    group.finish();
}

/// Benchmarks `Engine::memcpy` for every variant this CPU runs; returns the
/// variants' benchmark names.
fn bench_variants(c: &mut Criterion, ours: *mut u8, src: *const u8) -> Vec<String> {
    let cpu = CpuFeatures::detect();
    let engines: Vec<(String, Engine)> = CopyVariant::ALL
        .into_iter()
        .filter(|v| v.is_supported_by(&cpu))
        .filter_map(|variant| {
            let engine = Engine::new(Config {
                variant,
                ..Config::from_env()
            })
            .ok()?;
            Some((format!("{variant:?}").to_lowercase(), engine))
        })
        .collect();

    let mut group = c.benchmark_group(GROUP_VARIANTS);
    for len in VARIANT_SIZES {
        configure(&mut group, len);
        group.throughput(Throughput::Bytes(len as u64));
        for (name, engine) in &engines {
            let mut to = Rotation::new(ours, REGION, len);
            group.bench_function(BenchmarkId::new(name, len), |b| {
                b.iter(|| {
                    // SAFETY: as in `bench_memcpy`; `Engine::new` checked the
                    // CPU runs this variant.
                    unsafe { engine.memcpy(to.next(), src, len, CopyFlags::empty()) }
                });
            });
        }
    }
    group.finish();
    engines.into_iter().map(|(name, _)| name).collect()
}

// ---------------------------------------------------------------------------
// The summary tables, from criterion's estimates.

/// Where criterion writes its results, found the way criterion finds it:
/// `$CRITERION_HOME`, else `$CARGO_TARGET_DIR/criterion`, else the target
/// directory `cargo metadata` reports, else `target/` next to the workspace's
/// manifest.
fn criterion_home() -> PathBuf {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return home.into();
    }
    if let Some(target) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(target).join("criterion");
    }
    let from_metadata = std::env::var_os("CARGO").and_then(|cargo| {
        let out = std::process::Command::new(cargo)
            .args(["metadata", "--format-version", "1", "--no-deps"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .ok()?;
        let meta: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        meta["target_directory"].as_str().map(PathBuf::from)
    });
    from_metadata
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"))
        .join("criterion")
}

/// One benchmark's mean time per iteration.
#[derive(Clone, Copy)]
struct Estimate {
    /// Mean, in ns per iteration.
    mean_ns: f64,
    /// Half the width of the 95% confidence interval of the mean, relative to it.
    rel_ci: f64,
}

/// The estimate criterion wrote for `group/function/param` in this run
/// (files older than `since` are from an earlier run and are ignored).
fn estimate(
    home: &Path,
    group: &str,
    function: &str,
    param: usize,
    since: SystemTime,
) -> Option<Estimate> {
    let path = home
        .join(group)
        .join(function)
        .join(param.to_string())
        .join("new/estimates.json");
    let modified = std::fs::metadata(&path).ok()?.modified().ok()?;
    if modified < since {
        return None;
    }
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).ok()?).ok()?;
    let mean = &json["mean"];
    let mean_ns = mean["point_estimate"].as_f64()?;
    let lower = mean["confidence_interval"]["lower_bound"].as_f64()?;
    let upper = mean["confidence_interval"]["upper_bound"].as_f64()?;
    Some(Estimate {
        mean_ns,
        rel_ci: (upper - lower) / 2.0 / mean_ns,
    })
}

/// `4 KiB`, `64 MiB`, `256 B`.
fn size_label(len: usize) -> String {
    match len {
        l if l >= MIB && l.is_multiple_of(MIB) => format!("{} MiB", l / MIB),
        l if l >= KIB && l.is_multiple_of(KIB) => format!("{} KiB", l / KIB),
        l => format!("{l} B"),
    }
}

/// Bandwidth in GB/s (10^9 B/s) of `len` bytes per iteration.
fn gbps(len: usize, e: Estimate) -> String {
    format!("{:.2} ±{:.1}%", len as f64 / e.mean_ns, e.rel_ci * 100.0)
}

fn nanos(e: Estimate) -> String {
    format!("{:.1} ±{:.1}%", e.mean_ns, e.rel_ci * 100.0)
}

/// PMDK's time over ours: above 1 we are faster, for bandwidth and latency alike.
fn ratio(ours: Option<Estimate>, pmdk: Option<Estimate>) -> String {
    match (ours, pmdk) {
        (Some(o), Some(p)) => {
            let r = p.mean_ns / o.mean_ns;
            if r < 0.95 {
                format!("**{r:.2}** slower")
            } else {
                format!("{r:.2}")
            }
        }
        _ => "-".to_owned(),
    }
}

fn cell(e: Option<Estimate>, show: impl Fn(Estimate) -> String) -> String {
    e.map_or_else(|| "-".to_owned(), show)
}

fn report(started: SystemTime, pmdk: Option<&Pmdk>, variants: &[String]) {
    let home = criterion_home();
    let est = |group: &str, function: &str, param: usize| {
        estimate(&home, group, function, param, started)
    };
    let mut md = String::new();
    // Ours runs in every group, so its results say whether anything ran, and
    // whether everything did.
    let ran: Vec<bool> = SIZES
        .iter()
        .flat_map(|&l| [(GROUP_MEMCPY, OURS, l), (GROUP_MEMSET, OURS, l)])
        .chain([HOT_WINDOW, REGION].map(|w| (GROUP_STORE, OURS, w)))
        .chain(
            variants
                .iter()
                .flat_map(|v| VARIANT_SIZES.map(|l| (GROUP_VARIANTS, v.as_str(), l))),
        )
        .map(|(g, f, p)| est(g, f, p).is_some())
        .collect();
    if !ran.contains(&true) {
        println!(
            "note: no estimates from this run in {} (--test, --list or a filter?); \
             no table written",
            home.display()
        );
        return;
    }

    let cpu_model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines().find_map(|l| {
                l.strip_prefix("model name")
                    .map(|rest| rest.trim_start_matches([' ', '\t', ':']).to_owned())
            })
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let config = Engine::global().config();
    let _ = writeln!(md, "# pmem-sys vs PMDK libpmem\n");
    let _ = writeln!(
        md,
        "- CPU: {cpu_model}; {} logical CPUs; {:?}",
        std::thread::available_parallelism().map_or(0, usize::from),
        CpuFeatures::detect()
    );
    let _ = writeln!(
        md,
        "- pmem-sys engine: flush {:?}, variant {:?}, movnt threshold {}, skip_flush {}",
        config.flush, config.variant, config.movnt_threshold, config.skip_flush
    );
    match pmdk {
        Some(lib) => {
            let _ = writeln!(md, "- PMDK: `{}` (loaded at run time)", lib.path);
        }
        None => {
            let _ = writeln!(md, "- PMDK: not loaded; pmem-sys only");
        }
    }
    let _ = writeln!(
        md,
        "- Method: one 64 MiB /dev/shm mapping (ours) that both libraries write to, \
         PMEM_IS_PMEM_FORCE=1; destinations \
         64-aligned, rotating through the whole mapping (see benches/persist.rs)\n"
    );

    for (group, title) in [
        (GROUP_MEMCPY, "memcpy_persist bandwidth"),
        (GROUP_MEMSET, "memset_persist bandwidth"),
    ] {
        let _ = writeln!(md, "## {title} (GB/s, higher is better)\n");
        let _ = writeln!(
            md,
            "| size | ours (GB/s) | PMDK (GB/s) | ours/PMDK (>1: ours faster) |"
        );
        let _ = writeln!(md, "|---:|---:|---:|---:|");
        for len in SIZES {
            let (o, p) = (est(group, OURS, len), est(group, PMDK, len));
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} |",
                size_label(len),
                cell(o, |e| gbps(len, e)),
                cell(p, |e| gbps(len, e)),
                ratio(o, p)
            );
        }
        md.push('\n');
    }

    let _ = writeln!(
        md,
        "## store 8 bytes + persist latency (ns, lower is better)\n"
    );
    let _ = writeln!(
        md,
        "| window | ours (ns) | PMDK (ns) | PMDK/ours (>1: ours faster) |"
    );
    let _ = writeln!(md, "|---:|---:|---:|---:|");
    for window in [HOT_WINDOW, REGION] {
        let (o, p) = (
            est(GROUP_STORE, OURS, window),
            est(GROUP_STORE, PMDK, window),
        );
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} |",
            size_label(window),
            cell(o, nanos),
            cell(p, nanos),
            ratio(o, p)
        );
    }
    md.push('\n');

    let _ = writeln!(
        md,
        "## memcpy_persist by copy variant, pmem-sys only (GB/s, higher is better)\n"
    );
    let _ = write!(md, "| size |");
    for name in variants {
        let _ = write!(md, " {name} |");
    }
    let _ = writeln!(md, " fastest |");
    let _ = writeln!(md, "|---:|{}---|", "---:|".repeat(variants.len()));
    for len in VARIANT_SIZES {
        let _ = write!(md, "| {} |", size_label(len));
        let mut best: Option<(&str, f64)> = None;
        for name in variants {
            let e = est(GROUP_VARIANTS, name, len);
            let _ = write!(md, " {} |", cell(e, |e| gbps(len, e)));
            if let Some(e) = e
                && best.is_none_or(|(_, ns)| e.mean_ns < ns)
            {
                best = Some((name, e.mean_ns));
            }
        }
        let _ = writeln!(md, " {} |", best.map_or("-", |(name, _)| name));
    }

    println!("\n{md}");
    let out = home.join("pmem-sys-vs-pmdk.md");
    if ran.contains(&false) {
        // A filtered run must not replace the full table the README is made from.
        println!("(partial run: {} left as it was)", out.display());
        return;
    }
    match std::fs::create_dir_all(&home).and_then(|()| std::fs::write(&out, &md)) {
        Ok(()) => println!("(written to {})", out.display()),
        Err(e) => eprintln!("note: cannot write {}: {e}", out.display()),
    }
}
