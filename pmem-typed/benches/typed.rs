//! Benchmarks of pmem-typed's hot paths, side by side with raw pmem-sys
//! stores and with PMDK's libpmemobj.
//!
//! Run with `cargo bench -p pmem-typed` (add `-- <filter>` to run some groups
//! only). The whole run takes about a minute and a half.
//!
//! # What is measured
//!
//! | group | ours (`typed`) | comparison | parameter |
//! |---|---|---|---|
//! | `field_set` | `pool.set(account.fields().balance, v)` | `raw`: volatile 8-byte store + `pmem_sys::raw::persist(addr, 8)` | the window, 4 KiB or 64 MiB |
//! | `alloc` | `pool.alloc(slot, Obj64 { .. })` | `pmemobj`: `pmemobj_alloc(pop, &slot, 64, 1, ctor, &arg)` | 64 (bytes) |
//! | `resolve` | `get`: `pool.get(ptr)`; `project`: `ptr.fields().balance`; `get_field`: both; `get_read`: `pool.get(ptr)` and read a field; `get_read_cold`: the same over 64 MiB of accounts | `unchecked`: `base + offset`; `raw_read`, `raw_read_cold`: read the field at `base + offset` | calls per iteration |
//! | `guard` | `pool.get_mut(obj)`, bump one `u64`, drop | `raw`: read, store + persist 8 bytes | the object size, 64 or 1024 |
//!
//! # Method
//!
//! - **Environment.** `main` sets `PMEM_IS_PMEM_FORCE=1` before anything
//!   reads the environment (and before libpmemobj is loaded), so that the
//!   `/dev/shm` files count as persistent memory: pools then flush with
//!   CLWB (or what the CPU has) and fence with SFENCE instead of calling
//!   `msync`, and libpmemobj does the same. Other `PMEM_*` variables are
//!   honoured by all sides; leave them unset for the default comparison.
//! - **Memory.** Three files in `/dev/shm` (tmpfs, i.e. DRAM;
//!   `std::env::temp_dir()` if there is none), each unlinked right after it
//!   is mapped: our pool (192 MiB, [`Pool::create`]), a 64 MiB
//!   [`pmem_sys::Mapping`] for the raw side, and a 64 MiB libpmemobj pool
//!   (`pmemobj_create`). The objects written in the timed loops are
//!   pre-faulted: ours are allocated zeroed (which writes them) and the raw
//!   mapping is zero-filled before any measurement.
//! - **Rotation.** Latencies rotate through many objects, like the
//!   `store8_persist` group of pmem-sys's benchmark, so that no single line
//!   is flushed over and over: the `k`-th call touches object
//!   `k mod count`, at offset `k * stride`. `field_set` has 64-byte
//!   `Account`s, one per line, and two windows: 4 KiB (64 lines, which stay
//!   in L1/L2 unless the flush evicts them: this shows per-call overhead best)
//!   and 64 MiB (1 Mi accounts, twice the 32 MiB L3: every store misses, as
//!   for cold persistent memory). The raw side writes the same 8 bytes (the
//!   `balance` offset in each line) of its mapping in the same order. Both
//!   compute the address from the rotation counter; ours wraps it in a
//!   `PPtr<Account>` and projects to `balance`, which is part of what is
//!   measured. `guard` rotates over 64 objects of 64 B (4 KiB) or 1 KiB
//!   (64 KiB), the raw side over the same offsets of its mapping.
//! - **Allocation.** Both libraries publish into a slot of a persistent array
//!   of 1024 pointers (ours: a `PSlice<PPtr<Obj64>>` in the pool; PMDK: an
//!   array of `PMEMoid` in the root object, from `pmemobj_root` and
//!   `pmemobj_direct`). One iteration is one allocation of a 64-byte object
//!   initialised to a value that changes every call: ours writes it inside
//!   `alloc`; PMDK's constructor copies it and calls `pmemobj_persist`. With
//!   `iter_custom`, allocations run in batches of up to 1024 (one per slot)
//!   and only the batch is timed; the 1024 objects are then freed
//!   (`pool.free` / `pmemobj_free`) outside the timed region, and the next
//!   batch begins. The same scheme for both, so both allocators see the same
//!   pattern of a full batch freed. Throughput is 10^9 / mean ns.
//! - **Resolution.** Each iteration is a tight loop of 1000 calls on one
//!   pointer passed through `black_box` every time, with the result passed to
//!   `black_box` as an `Option<&T>` (`.ok()`), so nothing is hoisted out of
//!   the loop but the pool's own fields (the size and base, as in any loop
//!   over a `&Pool`). `unchecked` is the same loop computing
//!   `base + offset` with no checks: the floor of the loop itself.
//!   `get_read` and `raw_read` also read the `balance` of what they found;
//!   their `_cold` versions read all 1 Mi accounts of the 64 MiB window,
//!   4099 accounts apart (no prefetcher follows), the pointer computed the
//!   same way on both sides. Times are per call (mean / 1000).
//! - **Checks.** Before timing, one allocation on each side is checked to
//!   have published the pointer and written the value, and then freed, so a
//!   wrong binding cannot be timed unnoticed.
//! - **Sampling.** 50 samples in 3 s after 1 s of warm-up per benchmark;
//!   ours and the comparison run one after the other for each parameter, so
//!   that drift affects both alike. On a shared machine, run twice.
//!
//! # Reading the results
//!
//! After the criterion runs, a summary table is printed from criterion's
//! `estimates.json` files (the mean of each benchmark, with the half-width of
//! its 95% confidence interval) and written as markdown to
//! `<criterion dir>/pmem-typed-vs-pmemobj.md`, where the criterion dir is
//! `$CRITERION_HOME`, else `$CARGO_TARGET_DIR/criterion`, else the
//! workspace's `target/criterion`. Each row has our number, the comparison
//! number, their ratio and the target from the issue:
//!
//! - field set: ours / raw latency, target at most 1.1;
//! - allocation: our ops/s / libpmemobj's ops/s, target at least 3;
//! - `pool.get`: under 2 ns per call (absolute);
//! - `pool.get` and a read of the object: at most 1.15 times a raw read;
//! - projection and guards: reported, no target.
//!
//! A target not met is marked **MISSED**. Only benchmarks that ran in this
//! process are shown; the others (filtered out, or `--test` mode) are "-".
//! If libpmemobj cannot be loaded, its side is skipped with a note.

use std::ffi::{CString, c_char, c_int, c_void};
use std::fmt::Write as _;
use std::hint::black_box;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, BenchmarkId, Criterion, Throughput};
use pmem_sys::{Engine, Mapping, raw};
use pmem_testkit::pmdk::{ErrormsgFn, LIBPMEMOBJ, PmdkLibrary, last_error};
use pmem_typed::{Medium, PPtr, PSlice, Persist, Pool};

const KIB: usize = 1 << 10;
const MIB: usize = 1 << 20;
/// A cache line: the stride of the field-set rotation.
const LINE: usize = 64;
/// The small window of the field-set group: 64 lines.
const HOT_WINDOW: usize = 4 * KIB;
/// The large window: twice the L3 cache.
const COLD_WINDOW: usize = 64 * MIB;
const WINDOWS: [usize; 2] = [HOT_WINDOW, COLD_WINDOW];
/// Our pool: the 64 MiB of accounts fill one zone; the rest goes in the next.
const POOL_SIZE: usize = 192 * MIB;
/// The raw mapping, and libpmemobj's pool.
const RAW_SIZE: usize = COLD_WINDOW;
const PMEMOBJ_POOL_SIZE: usize = 64 * MIB;
/// Destination slots of the allocation group, and its largest timed batch.
const SLOTS: usize = 1024;
/// Objects the guard group rotates over, per size.
const GUARD_OBJECTS: usize = 64;
/// Calls per iteration of the resolution group.
const INNER: u64 = 1000;
/// `type_num` given to `pmemobj_alloc`.
const TYPE_NUM: u64 = 1;
/// The layout name of both pools.
const LAYOUT: &str = "pmem-typed-bench";

const GROUP_SET: &str = "field_set";
const GROUP_ALLOC: &str = "alloc";
const GROUP_RESOLVE: &str = "resolve";
const GROUP_GUARD: &str = "guard";
const TYPED: &str = "typed";
const RAW: &str = "raw";
const PMEMOBJ: &str = "pmemobj";
const GET: &str = "get";
const PROJECT: &str = "project";
const GET_FIELD: &str = "get_field";
const UNCHECKED: &str = "unchecked";
const GET_READ: &str = "get_read";
const RAW_READ: &str = "raw_read";
const GET_READ_COLD: &str = "get_read_cold";
const RAW_READ_COLD: &str = "raw_read_cold";
/// Accounts between two cold reads: odd, so that every account is read, and
/// far apart (about 64 pages), so that no prefetcher follows.
const COLD_STRIDE: u64 = 4099;

/// The field-set group's object: one cache line.
#[derive(Clone, Copy, Persist)]
#[repr(C)]
struct Account {
    id: u64,
    balance: u64,
    history: [u64; 6],
}

/// The 64-byte object of the allocation and guard groups.
#[derive(Clone, Copy, Persist)]
#[repr(C)]
struct Obj64 {
    counter: u64,
    payload: [u64; 7],
}

/// The 1 KiB object of the guard group.
#[derive(Clone, Copy, Persist)]
#[repr(C)]
struct Obj1K {
    counter: u64,
    payload: [u64; 127],
}

#[derive(Clone, Copy, Persist)]
#[repr(C)]
struct Root {
    accounts: PSlice<Account>,
    slots: PSlice<PPtr<Obj64>>,
    small: PSlice<Obj64>,
    big: PSlice<Obj1K>,
}

const _: () = assert!(size_of::<Account>() == LINE);
const _: () = assert!(size_of::<Obj64>() == 64);
const _: () = assert!(size_of::<Obj1K>() == KIB);
/// Where the raw side stores, to match `account.fields().balance`.
const BALANCE_OFFSET: usize = std::mem::offset_of!(Account, balance);

impl Obj64 {
    fn new(n: u64) -> Self {
        Self {
            counter: n,
            payload: [n ^ 0x5a5a_5a5a_5a5a_5a5a; 7],
        }
    }
}

/// Objects with a counter the guard group bumps.
trait Counter: Persist {
    fn bump(&mut self);
}
impl Counter for Obj64 {
    fn bump(&mut self) {
        self.counter = self.counter.wrapping_add(1);
    }
}
impl Counter for Obj1K {
    fn bump(&mut self) {
        self.counter = self.counter.wrapping_add(1);
    }
}

fn main() {
    // SAFETY: this is the first statement of `main`: no other thread exists
    // yet (neither criterion nor libpmemobj has been started), so nothing
    // reads or writes the environment concurrently.
    unsafe { std::env::set_var("PMEM_IS_PMEM_FORCE", "1") };
    println!(
        "note: PMEM_IS_PMEM_FORCE=1 is set for this process, so the /dev/shm pools \
         flush with cache-line writebacks and fences, as on persistent memory"
    );
    let started = SystemTime::now();
    let dir = bench_dir();

    let typed_path = dir.join(file_name(TYPED));
    let mut pool = Pool::<Root>::create(&typed_path, LAYOUT, POOL_SIZE)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", typed_path.display()));
    // The mapping stays valid; unlinking now leaves nothing behind on a crash.
    let _ = std::fs::remove_file(&typed_path);
    if !pool.medium().is_pmem() {
        eprintln!("note: our pool is not treated as pmem: it would msync, not flush");
    }
    let root = setup(&mut pool);

    let raw_path = dir.join(file_name(RAW));
    let mut raw_map = Mapping::create(&raw_path, RAW_SIZE)
        .unwrap_or_else(|e| panic!("cannot map {}: {e}", raw_path.display()));
    let _ = std::fs::remove_file(&raw_path);
    raw_map.as_mut_slice().fill(0);
    let raw_base = raw_map.as_mut_ptr();

    let lib = match Pmemobj::load() {
        Ok(lib) => Some(lib),
        Err(e) => {
            eprintln!("note: PMDK's libpmemobj not loaded ({e}); skipping its side");
            None
        }
    };
    let obj_path = dir.join(file_name(PMEMOBJ));
    let obj_pool = lib.as_ref().and_then(|lib| {
        let created = ObjPool::create(lib, &obj_path, PMEMOBJ_POOL_SIZE);
        let _ = std::fs::remove_file(&obj_path);
        created
            .inspect_err(|e| eprintln!("note: pmemobj_create failed ({e}); skipping its side"))
            .ok()
    });

    check_alloc(&mut pool, root.slots, obj_pool.as_ref());

    let mut c = Criterion::default().configure_from_args();
    bench_field_set(&mut c, &mut pool, root.accounts, raw_base);
    bench_alloc(&mut c, &mut pool, root.slots, obj_pool.as_ref());
    bench_resolve(&mut c, &pool, root.accounts);
    bench_guard(&mut c, &mut pool, &root, raw_base);
    c.final_summary();

    report(started, lib.as_ref(), obj_pool.is_some());

    drop(obj_pool);
    drop(raw_map);
    drop(pool);
}

/// Allocates the root's arrays, zeroed (which also pre-faults them).
fn setup(pool: &mut Pool<Root>) -> Root {
    let fields = pool.root().fields();
    let accounts = pool
        .alloc_slice_zeroed(fields.accounts, (COLD_WINDOW / LINE) as u64)
        .expect("allocate the accounts");
    let slots = pool
        .alloc_slice_zeroed(fields.slots, SLOTS as u64)
        .expect("allocate the slots");
    let small = pool
        .alloc_slice_zeroed(fields.small, GUARD_OBJECTS as u64)
        .expect("allocate the 64-byte objects");
    let big = pool
        .alloc_slice_zeroed(fields.big, GUARD_OBJECTS as u64)
        .expect("allocate the 1 KiB objects");
    for offset in [accounts.offset(), small.offset(), big.offset()] {
        assert!(
            offset.is_multiple_of(LINE as u64),
            "objects must start lines"
        );
    }
    Root {
        accounts,
        slots,
        small,
        big,
    }
}

/// A directory on tmpfs for the pool files.
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
    format!("pmem-typed-bench-{}-{who}", std::process::id())
}

/// Offsets `k * stride` for the `k`-th call, wrapping to 0 at `window`.
struct Rotation {
    next: usize,
    stride: usize,
    window: usize,
}

impl Rotation {
    fn new(window: usize, stride: usize) -> Self {
        assert!(window.is_multiple_of(stride) && window >= stride);
        Self {
            next: 0,
            stride,
            window,
        }
    }

    #[inline(always)]
    fn next(&mut self) -> usize {
        let at = self.next;
        self.next += self.stride;
        if self.next >= self.window {
            self.next = 0;
        }
        at
    }
}

// ---------------------------------------------------------------------------
// libpmemobj, loaded at run time.

/// `PMEMoid` from `libpmemobj/base.h`.
#[repr(C)]
#[derive(Clone, Copy)]
struct PmemOid {
    pool_uuid_lo: u64,
    off: u64,
}

type CreateFn =
    unsafe extern "C" fn(*const c_char, *const c_char, usize, libc::mode_t) -> *mut c_void;
type CloseFn = unsafe extern "C" fn(*mut c_void);
type RootFn = unsafe extern "C" fn(*mut c_void, usize) -> PmemOid;
type DirectFn = unsafe extern "C" fn(PmemOid) -> *mut c_void;
/// `pmemobj_constr`.
type ConstrFn = unsafe extern "C" fn(*mut c_void, *mut c_void, *mut c_void) -> c_int;
type AllocFn = unsafe extern "C" fn(
    *mut c_void,
    *mut PmemOid,
    usize,
    u64,
    Option<ConstrFn>,
    *mut c_void,
) -> c_int;
type FreeFn = unsafe extern "C" fn(*mut PmemOid);
type PersistFn = unsafe extern "C" fn(*mut c_void, *const c_void, usize);

/// PMDK's libpmemobj, with the functions we call.
struct Pmemobj {
    path: &'static str,
    create: CreateFn,
    close: CloseFn,
    root: RootFn,
    direct: DirectFn,
    alloc: AllocFn,
    free: FreeFn,
    persist: PersistFn,
    errormsg: ErrormsgFn,
    /// Keeps libpmemobj loaded for as long as the pointers above exist.
    _lib: PmdkLibrary,
}

impl Pmemobj {
    fn load() -> Result<Self, String> {
        // SAFETY: loading runs the initialisers of libpmemobj and libpmem,
        // which read the environment (PMEM_IS_PMEM_FORCE has been set, and
        // no other thread touches the environment) and CPUID, and set up
        // their own state.
        let lib = unsafe { PmdkLibrary::load(LIBPMEMOBJ) }?;
        let path = lib.path();
        Self::resolve(lib).map_err(|e| format!("{path}: {e}"))
    }

    fn resolve(lib: PmdkLibrary) -> Result<Self, libloading::Error> {
        // SAFETY: each type is the prototype of that function in PMDK 1.12's
        // `libpmemobj/*.h` (`PMEMobjpool *` as `*mut c_void`, `PMEMoid` as
        // the `repr(C)` `PmemOid`, `mode_t` and `size_t` as on Linux;
        // `pmemobj_direct` is the exported, non-inline version); the pointers
        // are only called while `lib`, stored in the same value, is loaded.
        unsafe {
            Ok(Self {
                path: lib.path(),
                create: lib.function::<CreateFn>("pmemobj_create")?,
                close: lib.function::<CloseFn>("pmemobj_close")?,
                root: lib.function::<RootFn>("pmemobj_root")?,
                direct: lib.function::<DirectFn>("pmemobj_direct")?,
                alloc: lib.function::<AllocFn>("pmemobj_alloc")?,
                free: lib.function::<FreeFn>("pmemobj_free")?,
                persist: lib.function::<PersistFn>("pmemobj_persist")?,
                errormsg: lib.function::<ErrormsgFn>("pmemobj_errormsg")?,
                _lib: lib,
            })
        }
    }

    fn last_error(&self) -> String {
        // SAFETY: `errormsg` comes from libpmemobj, which `self` keeps loaded.
        unsafe { last_error(self.errormsg) }
    }
}

/// A libpmemobj pool whose root object is `SLOTS` `PMEMoid`s, closed on drop.
struct ObjPool<'a> {
    lib: &'a Pmemobj,
    pop: *mut c_void,
    /// The root object: `SLOTS` destinations for `pmemobj_alloc`.
    slots: *mut PmemOid,
}

impl<'a> ObjPool<'a> {
    fn create(lib: &'a Pmemobj, path: &Path, size: usize) -> Result<Self, String> {
        let c_path = CString::new(path.as_os_str().as_bytes()).map_err(|e| e.to_string())?;
        let layout = CString::new(LAYOUT).map_err(|e| e.to_string())?;
        // SAFETY: both strings are NUL-terminated; the path does not exist yet.
        let pop = unsafe { (lib.create)(c_path.as_ptr(), layout.as_ptr(), size, 0o600) };
        if pop.is_null() {
            return Err(lib.last_error());
        }
        // Owned from here, so that an early return closes it.
        let mut pool = Self {
            lib,
            pop,
            slots: std::ptr::null_mut(),
        };
        // SAFETY: `pop` is an open pool; a new pool's root is allocated zeroed.
        let root = unsafe { (lib.root)(pop, SLOTS * size_of::<PmemOid>()) };
        if root.off == 0 {
            return Err(format!("pmemobj_root: {}", lib.last_error()));
        }
        // SAFETY: `root` is a valid object of the open pool `pop`.
        let slots = unsafe { (lib.direct)(root) }.cast::<PmemOid>();
        if slots.is_null() || !slots.is_aligned() {
            return Err(format!("pmemobj_direct gave {slots:p}"));
        }
        pool.slots = slots;
        Ok(pool)
    }

    /// `pmemobj_alloc` of an `Obj64` holding `value` into slot `i`, with the
    /// constructor [`construct`].
    ///
    /// # Safety
    /// `i < SLOTS`, and slot `i` holds no object (or one that may leak).
    #[inline(always)]
    unsafe fn alloc(&self, i: usize, value: Obj64) {
        let mut arg = CtorArg {
            value,
            persist: self.lib.persist,
        };
        // SAFETY: `pop` is open; slot `i` is a `PMEMoid` inside its root
        // (caller: `i < SLOTS`); `construct` matches `pmemobj_constr` and
        // reads `arg`, which outlives the call.
        let rc = unsafe {
            (self.lib.alloc)(
                self.pop,
                self.slots.add(i),
                size_of::<Obj64>(),
                TYPE_NUM,
                Some(construct),
                (&raw mut arg).cast(),
            )
        };
        if rc != 0 {
            failed("pmemobj_alloc", &self.lib.last_error());
        }
    }

    /// `pmemobj_free` of slot `i`, which it nulls.
    ///
    /// # Safety
    /// `i < SLOTS`.
    unsafe fn free(&self, i: usize) {
        // SAFETY: slot `i` is a `PMEMoid` inside the open pool's root
        // (caller), holding an allocated object or null (freeing null is a
        // no-op).
        unsafe { (self.lib.free)(self.slots.add(i)) }
    }

    /// Slot `i`.
    ///
    /// # Safety
    /// `i < SLOTS`.
    unsafe fn slot(&self, i: usize) -> PmemOid {
        // SAFETY: inside the root (caller); nothing writes it concurrently.
        unsafe { self.slots.add(i).read() }
    }
}

impl Drop for ObjPool<'_> {
    fn drop(&mut self) {
        // SAFETY: `pop` is the open pool `pmemobj_create` returned, and the
        // benchmarks that used it have finished.
        unsafe { (self.lib.close)(self.pop) };
    }
}

/// What `construct` writes, and how it persists it.
#[repr(C)]
struct CtorArg {
    value: Obj64,
    persist: PersistFn,
}

/// The `pmemobj_alloc` constructor: copies the value in and persists it with
/// `pmemobj_persist`, as a libpmemobj user would.
///
/// # Safety
/// `arg` points to a live `CtorArg`, `ptr` to a new object of at least 64
/// bytes in the pool `pop`, which nothing else references.
unsafe extern "C" fn construct(pop: *mut c_void, ptr: *mut c_void, arg: *mut c_void) -> c_int {
    // SAFETY: as the function's contract says (the caller is `pmemobj_alloc`,
    // called by `ObjPool::alloc` with a `CtorArg`); objects may be only
    // 16-aligned, hence the unaligned write.
    unsafe {
        let arg = &*arg.cast::<CtorArg>();
        ptr.cast::<Obj64>().write_unaligned(arg.value);
        (arg.persist)(pop, ptr, size_of::<Obj64>());
    }
    0
}

#[cold]
#[inline(never)]
fn failed(what: &str, why: &dyn std::fmt::Display) -> ! {
    panic!("{what} failed: {why}")
}

/// Checks once, before timing, that one allocation on each side publishes
/// the pointer and writes the value, and that freeing nulls the slot.
fn check_alloc(pool: &mut Pool<Root>, slots: PSlice<PPtr<Obj64>>, obj: Option<&ObjPool<'_>>) {
    let value = Obj64::new(0x5eed);
    let dest = slots.at(0).expect("slot 0");
    let block = pool.alloc(dest, value).expect("Pool::alloc");
    assert_eq!(pool.get(dest).expect("slot").offset(), block.offset());
    let stored = pool.get(block).expect("new object");
    assert_eq!(bytemuck::bytes_of(stored), bytemuck::bytes_of(&value));
    pool.free(dest).expect("Pool::free");
    assert!(pool.get(dest).expect("slot").is_null());

    if let Some(obj) = obj {
        // SAFETY: slot 0 exists and is null (a new root is zeroed).
        unsafe { obj.alloc(0, value) };
        // SAFETY: slot 0 exists.
        let oid = unsafe { obj.slot(0) };
        assert_ne!(oid.off, 0, "pmemobj_alloc did not publish");
        // SAFETY: `oid` is the object just allocated in the open pool.
        let at = unsafe { (obj.lib.direct)(oid) }.cast::<Obj64>();
        assert!(!at.is_null());
        // SAFETY: the object holds at least 64 bytes; nothing writes it now.
        let stored = unsafe { at.read_unaligned() };
        assert_eq!(bytemuck::bytes_of(&stored), bytemuck::bytes_of(&value));
        // SAFETY: slot 0 exists.
        unsafe { obj.free(0) };
        // SAFETY: slot 0 exists.
        assert_eq!(unsafe { obj.slot(0) }.off, 0, "pmemobj_free did not null");
    }
}

// ---------------------------------------------------------------------------
// The benchmarks.

fn configure(group: &mut BenchmarkGroup<'_, WallTime>) {
    group
        .sample_size(50)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
}

fn bench_field_set(
    c: &mut Criterion,
    pool: &mut Pool<Root>,
    accounts: PSlice<Account>,
    raw_base: *mut u8,
) {
    let mut group = c.benchmark_group(GROUP_SET);
    configure(&mut group);
    let first = accounts.offset();
    let mut value = 0u64;
    for window in WINDOWS {
        let mut at = Rotation::new(window, LINE);
        group.bench_function(BenchmarkId::new(TYPED, window), |b| {
            b.iter(|| {
                let account = PPtr::<Account>::from_offset(first + at.next() as u64);
                value = value.wrapping_add(1);
                if let Err(e) = pool.set(account.fields().balance, value) {
                    failed("Pool::set", &e);
                }
            });
        });

        let mut at = Rotation::new(window, LINE);
        group.bench_function(BenchmarkId::new(RAW, window), |b| {
            b.iter(|| {
                let addr = raw_base.wrapping_add(at.next() + BALANCE_OFFSET);
                value = value.wrapping_add(1);
                // SAFETY: `addr` is 8 bytes into a line of the window, inside
                // the raw mapping (RAW_SIZE >= every window), so valid and
                // 8-aligned for the store and mapped for the persist; nothing
                // else uses the mapping.
                unsafe {
                    addr.cast::<u64>().write_volatile(value);
                    raw::persist(addr, 8);
                }
            });
        });
    }
    group.finish();
}

fn bench_alloc(
    c: &mut Criterion,
    pool: &mut Pool<Root>,
    slots: PSlice<PPtr<Obj64>>,
    obj: Option<&ObjPool<'_>>,
) {
    let mut group = c.benchmark_group(GROUP_ALLOC);
    configure(&mut group);
    group.throughput(Throughput::Elements(1));
    let size = size_of::<Obj64>();
    let mut n = 0u64;

    group.bench_function(BenchmarkId::new(TYPED, size), |b| {
        b.iter_custom(|iters| {
            let mut timed = Duration::ZERO;
            let mut left = iters;
            while left > 0 {
                let batch = left.min(SLOTS as u64);
                let start = Instant::now();
                for i in 0..batch {
                    n += 1;
                    let dest = slots.at(i).expect("slot in range");
                    match pool.alloc(dest, Obj64::new(n)) {
                        Ok(block) => _ = black_box(block),
                        Err(e) => failed("Pool::alloc", &e),
                    }
                }
                timed += start.elapsed();
                for i in 0..batch {
                    let dest = slots.at(i).expect("slot in range");
                    if let Err(e) = pool.free(dest) {
                        failed("Pool::free", &e);
                    }
                }
                left -= batch;
            }
            timed
        });
    });

    if let Some(obj) = obj {
        group.bench_function(BenchmarkId::new(PMEMOBJ, size), |b| {
            b.iter_custom(|iters| {
                let mut timed = Duration::ZERO;
                let mut left = iters;
                while left > 0 {
                    let batch = left.min(SLOTS as u64) as usize;
                    let start = Instant::now();
                    for i in 0..batch {
                        n += 1;
                        // SAFETY: `i < SLOTS`; every slot is null here (the
                        // check and the previous batch freed theirs).
                        unsafe { obj.alloc(i, Obj64::new(n)) };
                    }
                    timed += start.elapsed();
                    for i in 0..batch {
                        // SAFETY: `i < SLOTS`.
                        unsafe { obj.free(i) };
                    }
                    left -= batch as u64;
                }
                timed
            });
        });
    }
    group.finish();
}

fn bench_resolve(c: &mut Criterion, pool: &Pool<Root>, accounts: PSlice<Account>) {
    let mut group = c.benchmark_group(GROUP_RESOLVE);
    configure(&mut group);
    group.throughput(Throughput::Elements(INNER));
    let account = accounts.at(1).expect("account 1");

    group.bench_function(BenchmarkId::new(GET, INNER), |b| {
        b.iter(|| {
            for _ in 0..INNER {
                black_box(pool.get(black_box(account)).ok());
            }
        });
    });
    group.bench_function(BenchmarkId::new(PROJECT, INNER), |b| {
        b.iter(|| {
            for _ in 0..INNER {
                black_box(black_box(account).fields().balance);
            }
        });
    });
    group.bench_function(BenchmarkId::new(GET_FIELD, INNER), |b| {
        b.iter(|| {
            for _ in 0..INNER {
                black_box(pool.get(black_box(account).fields().balance).ok());
            }
        });
    });
    let base = pool.medium().base();
    group.bench_function(BenchmarkId::new(UNCHECKED, INNER), |b| {
        b.iter(|| {
            for _ in 0..INNER {
                black_box(base.wrapping_add(black_box(account).offset() as usize));
            }
        });
    });
    group.bench_function(BenchmarkId::new(GET_READ, INNER), |b| {
        b.iter(|| {
            for _ in 0..INNER {
                black_box(pool.get(black_box(account)).map_or(0, |a| a.balance));
            }
        });
    });
    group.bench_function(BenchmarkId::new(RAW_READ, INNER), |b| {
        b.iter(|| {
            for _ in 0..INNER {
                let at = base.wrapping_add(black_box(account).offset() as usize);
                // SAFETY: `account` is an allocated, aligned `Account` of the
                // pool, which nothing writes while it is borrowed shared.
                black_box(unsafe { (*at.cast::<Account>()).balance });
            }
        });
    });
    // The same reads over all 1 Mi accounts (64 MiB, twice the L3), in an
    // order no prefetcher follows: what reading cold objects costs.
    let first = accounts.offset();
    let count = accounts.len();
    let cold =
        |k: u64| PPtr::<Account>::from_offset(first + (k * COLD_STRIDE) % count * LINE as u64);
    group.bench_function(BenchmarkId::new(GET_READ_COLD, INNER), |b| {
        let mut k = 0;
        b.iter(|| {
            for _ in 0..INNER {
                k += 1;
                black_box(pool.get(cold(k)).map_or(0, |a| a.balance));
            }
        });
    });
    group.bench_function(BenchmarkId::new(RAW_READ_COLD, INNER), |b| {
        let mut k = 0;
        b.iter(|| {
            for _ in 0..INNER {
                k += 1;
                let at = base.wrapping_add(cold(k).offset() as usize);
                // SAFETY: every `cold(k)` is one of the pool's accounts, as above.
                black_box(unsafe { (*at.cast::<Account>()).balance });
            }
        });
    });
    group.finish();
}

fn bench_guard(c: &mut Criterion, pool: &mut Pool<Root>, root: &Root, raw_base: *mut u8) {
    let mut group = c.benchmark_group(GROUP_GUARD);
    configure(&mut group);
    guard_pair(&mut group, pool, root.small, raw_base);
    guard_pair(&mut group, pool, root.big, raw_base);
    group.finish();
}

/// `get_mut` + bump + drop on `objects`, then the raw store + persist of the
/// same offsets of the raw mapping.
fn guard_pair<T: Counter>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    pool: &mut Pool<Root>,
    objects: PSlice<T>,
    raw_base: *mut u8,
) {
    let size = size_of::<T>();
    let window = size * objects.len() as usize;
    let first = objects.offset();

    let mut at = Rotation::new(window, size);
    group.bench_function(BenchmarkId::new(TYPED, size), |b| {
        b.iter(|| {
            let object = PPtr::<T>::from_offset(first + at.next() as u64);
            match pool.get_mut(object) {
                Ok(mut guard) => guard.bump(),
                Err(e) => failed("Pool::get_mut", &e),
            }
        });
    });

    let mut at = Rotation::new(window, size);
    group.bench_function(BenchmarkId::new(RAW, size), |b| {
        b.iter(|| {
            let addr = raw_base.wrapping_add(at.next()).cast::<u64>();
            // SAFETY: `addr` starts an object-sized slot of the window, which
            // lies inside the raw mapping (64 KiB <= RAW_SIZE), so it is valid
            // and 8-aligned for the load and store, and mapped for the
            // persist; nothing else uses the mapping.
            unsafe {
                let v = addr.read_volatile();
                addr.write_volatile(v.wrapping_add(1));
                raw::persist(addr.cast(), 8);
            }
        });
    });
}

// ---------------------------------------------------------------------------
// The summary table, from criterion's estimates.

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

/// One benchmark's mean time, scaled to one operation.
#[derive(Clone, Copy)]
struct Estimate {
    /// Mean, in ns per operation.
    ns: f64,
    /// Half the width of the 95% confidence interval of the mean, relative to it.
    rel_ci: f64,
}

/// The estimate criterion wrote for `group/function/param` in this run
/// (files older than `since` are from an earlier run and are ignored),
/// divided by `per` operations per iteration.
fn estimate(
    home: &Path,
    (group, function, param): (&str, &str, u64),
    per: u64,
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
    let ns = mean["point_estimate"].as_f64()?;
    let lower = mean["confidence_interval"]["lower_bound"].as_f64()?;
    let upper = mean["confidence_interval"]["upper_bound"].as_f64()?;
    Some(Estimate {
        ns: ns / per as f64,
        rel_ci: (upper - lower) / 2.0 / ns,
    })
}

fn nanos(e: Estimate) -> String {
    let digits = if e.ns < 10.0 { 2 } else { 1 };
    format!("{:.digits$} ns ±{:.1}%", e.ns, e.rel_ci * 100.0)
}

fn ops_per_sec(e: Estimate) -> String {
    format!(
        "{:.3} M/s ({:.0} ns) ±{:.1}%",
        1e3 / e.ns,
        e.ns,
        e.rel_ci * 100.0
    )
}

/// What a row is held to.
#[derive(Clone, Copy)]
enum Target {
    /// ours / comparison time at most this.
    TimeRatioAtMost(f64),
    /// comparison / ours time (our throughput over theirs) at least this.
    SpeedupAtLeast(f64),
    /// our time under this many ns.
    NanosBelow(f64),
    /// Reported only.
    None,
}

struct Row {
    metric: &'static str,
    ours: Option<Estimate>,
    other: Option<Estimate>,
    /// How the comparison is named in the table.
    other_name: &'static str,
    show: fn(Estimate) -> String,
    target: Target,
}

impl Row {
    /// (ratio cell, target cell, verdict cell).
    fn judge(&self) -> (String, String, String) {
        let time_ratio = match (self.ours, self.other) {
            (Some(o), Some(p)) => Some(o.ns / p.ns),
            _ => None,
        };
        let (ratio, target, met) = match self.target {
            Target::TimeRatioAtMost(max) => (
                time_ratio.map(|r| format!("{r:.2}x the time")),
                format!("≤ {max:.2}x the time"),
                time_ratio.map(|r| r <= max),
            ),
            Target::SpeedupAtLeast(min) => (
                time_ratio.map(|r| format!("{:.2}x the throughput", 1.0 / r)),
                format!("≥ {min:.0}x the throughput"),
                time_ratio.map(|r| 1.0 / r >= min),
            ),
            Target::NanosBelow(max) => (
                time_ratio.map(|r| format!("{r:.2}x the time")),
                format!("< {max} ns"),
                self.ours.map(|o| o.ns < max),
            ),
            Target::None => (
                time_ratio.map(|r| format!("{r:.2}x the time")),
                "-".to_owned(),
                None,
            ),
        };
        let verdict = match (met, self.target) {
            (_, Target::None) => "-",
            (Some(true), _) => "met",
            (Some(false), _) => "**MISSED**",
            (None, _) => "no data",
        };
        (
            ratio.unwrap_or_else(|| "-".to_owned()),
            target,
            verdict.to_owned(),
        )
    }
}

fn report(started: SystemTime, lib: Option<&Pmemobj>, pmemobj_ran: bool) {
    let home = criterion_home();
    let est = |key: (&str, &str, u64), per: u64| estimate(&home, key, per, started);
    let set = |who, window: usize| est((GROUP_SET, who, window as u64), 1);
    let alloc = |who| est((GROUP_ALLOC, who, size_of::<Obj64>() as u64), 1);
    let resolve = |who| est((GROUP_RESOLVE, who, INNER), INNER);
    let guard = |who, size: usize| est((GROUP_GUARD, who, size as u64), 1);

    let rows = [
        Row {
            metric: "`pool.set(acct.fields().balance, v)`, 4 KiB window",
            ours: set(TYPED, HOT_WINDOW),
            other: set(RAW, HOT_WINDOW),
            other_name: "raw store + persist",
            show: nanos,
            target: Target::TimeRatioAtMost(1.1),
        },
        Row {
            metric: "`pool.set(acct.fields().balance, v)`, 64 MiB window",
            ours: set(TYPED, COLD_WINDOW),
            other: set(RAW, COLD_WINDOW),
            other_name: "raw store + persist",
            show: nanos,
            target: Target::TimeRatioAtMost(1.1),
        },
        Row {
            metric: "alloc + init + publish 64 B",
            ours: alloc(TYPED),
            other: alloc(PMEMOBJ),
            other_name: "pmemobj_alloc + ctor",
            show: ops_per_sec,
            target: Target::SpeedupAtLeast(3.0),
        },
        Row {
            metric: "`pool.get(ptr)`",
            ours: resolve(GET),
            other: resolve(UNCHECKED),
            other_name: "unchecked base + offset",
            show: nanos,
            target: Target::NanosBelow(2.0),
        },
        Row {
            metric: "`pool.get(ptr)?.balance`",
            ours: resolve(GET_READ),
            other: resolve(RAW_READ),
            other_name: "raw read of base + offset",
            show: nanos,
            target: Target::TimeRatioAtMost(1.15),
        },
        Row {
            metric: "`pool.get(ptr)?.balance`, 64 MiB of accounts",
            ours: resolve(GET_READ_COLD),
            other: resolve(RAW_READ_COLD),
            other_name: "raw read of base + offset",
            show: nanos,
            target: Target::TimeRatioAtMost(1.15),
        },
        Row {
            metric: "`ptr.fields().balance`",
            ours: resolve(PROJECT),
            other: resolve(UNCHECKED),
            other_name: "unchecked base + offset",
            show: nanos,
            target: Target::None,
        },
        Row {
            metric: "`pool.get(ptr.fields().balance)`",
            ours: resolve(GET_FIELD),
            other: resolve(UNCHECKED),
            other_name: "unchecked base + offset",
            show: nanos,
            target: Target::None,
        },
        Row {
            metric: "guard: `get_mut`, bump a u64, drop; 64 B object",
            ours: guard(TYPED, 64),
            other: guard(RAW, 64),
            other_name: "raw load, store + persist",
            show: nanos,
            target: Target::None,
        },
        Row {
            metric: "guard: `get_mut`, bump a u64, drop; 1 KiB object",
            ours: guard(TYPED, KIB),
            other: guard(RAW, KIB),
            other_name: "raw load, store + persist",
            show: nanos,
            target: Target::None,
        },
    ];
    if rows.iter().all(|r| r.ours.is_none()) {
        println!(
            "note: no estimates from this run in {} (--test, --list or a filter?); \
             no table written",
            home.display()
        );
        return;
    }

    let mut md = String::new();
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
    let _ = writeln!(md, "# pmem-typed vs raw pmem-sys and PMDK libpmemobj\n");
    let _ = writeln!(
        md,
        "- CPU: {cpu_model}; {} logical CPUs; flush {:?}",
        std::thread::available_parallelism().map_or(0, usize::from),
        config.flush
    );
    match (lib, pmemobj_ran) {
        (Some(lib), true) => {
            let _ = writeln!(md, "- libpmemobj: `{}` (loaded at run time)", lib.path);
        }
        _ => {
            let _ = writeln!(md, "- libpmemobj: not available; its side was skipped");
        }
    }
    let _ = writeln!(
        md,
        "- Method: /dev/shm files with PMEM_IS_PMEM_FORCE=1; latencies rotate over \
         many objects; allocations timed in batches of up to {SLOTS}, freed untimed \
         (see benches/typed.rs)\n"
    );
    let _ = writeln!(
        md,
        "| metric | ours | comparison | vs | ratio (ours to comparison) | target | verdict |"
    );
    let _ = writeln!(md, "|---|---:|---:|---|---:|---|---|");
    for row in &rows {
        let (ratio, target, verdict) = row.judge();
        let cell = |e: Option<Estimate>| e.map_or_else(|| "-".to_owned(), row.show);
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {ratio} | {target} | {verdict} |",
            row.metric,
            cell(row.ours),
            cell(row.other),
            row.other_name,
        );
    }

    println!("\n{md}");
    let out = home.join("pmem-typed-vs-pmemobj.md");
    match std::fs::create_dir_all(&home).and_then(|()| std::fs::write(&out, &md)) {
        Ok(()) => println!("(written to {})", out.display()),
        Err(e) => eprintln!("note: cannot write {}: {e}", out.display()),
    }
}
