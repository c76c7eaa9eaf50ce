//! [`SimMedium`]: a medium in memory that records every store, flush and
//! fence, so that the explorer can work out what a crash could leave behind.

use std::alloc::{Layout, alloc_zeroed, dealloc};
use std::fmt;
use std::panic::Location;
use std::ptr::NonNull;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::error::{Error, Expected, Result};
use crate::format::LINE;
use crate::medium::Medium;

/// A word, the unit that fails atomically: an aligned 8-byte store is all-or-nothing,
/// anything larger or unaligned tears into these.
pub(crate) const WORD: usize = 8;

/// One recorded event of the program.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Event {
    /// The 8-byte word at `word * 8` now holds `value`. `raw` stores were
    /// found by comparing memory (writes through references); `nt` ones
    /// bypassed the cache. Stores of one `group` were made together, by one
    /// operation or one borrow, in an order the recording does not know:
    /// their consecutive run is one step of the program.
    Store {
        word: u32,
        value: u64,
        nt: bool,
        raw: bool,
        site: u32,
        group: u32,
    },
    /// The line at `line * 64` was written back (not yet waited for).
    Flush { line: u32, site: u32 },
    /// Earlier flushes and non-temporal stores are durable.
    Fence { site: u32 },
    /// The medium grew to `len` bytes (durable at once, like a file's size on
    /// a DAX file system).
    Resize { len: u32 },
}

/// Where an event came from: the pool operation and the program's call site.
///
/// # Examples
///
/// A failure names where the crash happened and where the lost stores were made:
///
/// ```
/// use pmem_typed::sim::{Explorer, Scenario};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// // The value and the flag that publishes it are persisted together: no order.
/// let scenario = Scenario::new(4096)
///     .run(|m| {
///         m.store_u64(64, 42);
///         m.store_u64(0, 1);
///         m.flush_range(0, 128);
///         m.sfence();
///         Ok(())
///     })
///     .check(|m| match (m.read_u64(0), m.read_u64(64)) {
///         (0, _) | (1, 42) => Ok(()),
///         (flag, value) => Err(format!("flag {flag} with value {value}").into()),
///     });
/// let failure = Explorer::default().explore(&scenario).expect_err("the flag can persist alone");
/// let point = failure.point.ok_or("a crash point")?;
/// assert_eq!(point.site.operation, "SimMedium::sfence"); // the crash came before this fence
/// let value = point.lines.iter().find(|line| line.offset == 64).ok_or("the value's line")?;
/// assert_eq!(value.kept, 0);
/// let store = value.sites[0];
/// assert_eq!(store.operation, "SimMedium::store_u64");
/// assert_eq!(store.to_string(), format!("`SimMedium::store_u64` at {}", store.location));
/// # Ok(()) }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Site {
    /// The operation, e.g. "Pool::alloc" or "SimMedium::store_u64".
    pub operation: &'static str,
    /// Where the program called it.
    pub location: &'static Location<'static>,
}

impl fmt::Display for Site {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}` at {}", self.operation, self.location)
    }
}

/// The recording.
#[derive(Debug, Default)]
pub(crate) struct Log {
    pub(crate) events: Vec<Event>,
    pub(crate) sites: Vec<Site>,
    /// Milestones the program marked, each with the number of events before it.
    pub(crate) milestones: Vec<(usize, String)>,
}

impl Log {
    /// An empty recording that starts at `site`.
    fn starting_at(site: Site) -> Self {
        Self {
            events: Vec::new(),
            sites: vec![site],
            milestones: Vec::new(),
        }
    }
}

#[derive(Debug)]
struct State {
    /// What the program's memory held at the last recorded event: the
    /// reference for finding raw writes.
    seen: Vec<u8>,
    log: Log,
    current_site: u32,
    /// The group of the next stores recorded.
    group: u32,
    recording: bool,
    /// The milestones a check sees as reached (set by the explorer): the
    /// first `.1` of `.0`.
    reached: (Arc<[String]>, usize),
}

/// The buffer: zeroed, 4096-aligned, allocated once at its largest size so
/// that its address never changes (even when the medium grows).
struct Buffer {
    ptr: NonNull<u8>,
    capacity: usize,
}

// SAFETY: the buffer is plain memory owned by this value; the medium's
// contract (no writes while references exist) governs access across threads.
unsafe impl Send for Buffer {}
// SAFETY: as above.
unsafe impl Sync for Buffer {}

impl Buffer {
    fn layout(capacity: usize) -> Layout {
        // Page alignment, as a mapping would have; capacity is at least one page.
        Layout::from_size_align(capacity.max(4096), 4096)
            .unwrap_or_else(|_| buffer_too_large(capacity))
    }

    fn zeroed(capacity: usize) -> Self {
        let layout = Self::layout(capacity);
        // SAFETY: the layout has a non-zero size.
        let ptr = unsafe { alloc_zeroed(layout) };
        let ptr = NonNull::new(ptr).unwrap_or_else(|| std::alloc::handle_alloc_error(layout));
        Self { ptr, capacity }
    }
}

impl Drop for Buffer {
    fn drop(&mut self) {
        // SAFETY: allocated in `zeroed` with this very layout.
        unsafe { dealloc(self.ptr.as_ptr(), Self::layout(self.capacity)) }
    }
}

#[cold]
#[track_caller]
fn buffer_too_large(capacity: usize) -> ! {
    panic!("SimMedium: {capacity} bytes cannot be allocated")
}

/// Simulated persistent memory for crash-consistency tests.
///
/// The program (usually a [`Pool`](crate::Pool) on this medium) sees
/// ordinary memory. Behind it, the medium records every store in 8-byte
/// words, every flush and every fence, in program order. The
/// [`Explorer`](super::Explorer) turns the recording into the images a power
/// failure could leave.
///
/// # What the model sees
///
/// The recording is a sequence of *steps* in program order; within a step,
/// stores are made together, with no order among them (they may persist in
/// any combination, even within one cache line).
///
/// - Each [`store_u64`](Self::store_u64) is a step of one word. A
///   [`store`](Self::store) or [`store_nontemporal`](Self::store_nontemporal)
///   of several words is one step: a `memcpy` orders nothing.
/// - Stores through references (a guard's `&mut T`) are found by comparing
///   memory with what the medium last saw. That happens at every call into
///   the medium and every time a guard lends out `&mut` (each `deref_mut`,
///   [`each_mut`](crate::DisjointGuard::each_mut) and `index_mut`): the
///   writes of one borrow are one step. So `guard.ready = 1; guard.value =
///   42;` is two steps, in that order (two borrows); writes made through one
///   `&mut` held across statements are one step, as the compiler may reorder
///   them.
/// - A value written and overwritten within one borrow is not seen: the
///   compiler may drop such a store, and the model takes it as dropped. A
///   tentative value the program relies on being able to see (or not) needs
///   a borrow of its own.
///
/// A medium belongs to one pool at a time: the pool takes it by value
/// (`Pool::create_on(medium, ..)`, given back by
/// [`Pool::into_medium`](crate::Pool::into_medium)) or borrows it with `&mut`
/// (`Pool::open_on(&mut medium, ..)`), and while the pool lives the medium is
/// read through [`Pool::medium`](crate::Pool::medium). It is not `Clone`, and
/// its raw stores take `&mut self`, because the pool hands out `&T` and
/// `&mut T` into these very bytes: a second handle could write under them,
/// undefined behaviour from safe code.
///
/// # Examples
///
/// ```
/// use pmem_typed::format::PAGE;
/// use pmem_typed::sim::SimMedium;
/// use pmem_typed::{Persist, Pool};
///
/// #[derive(Clone, Copy, Persist)]
/// #[repr(C)]
/// struct Root { n: u64 }
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let mut medium = SimMedium::new(64 << 10, 64 << 10);
/// // The pool borrows the medium: nothing else can write to it while the pool lives.
/// let mut pool = Pool::create_on(&mut medium, "sim", Root { n: 0 })?;
/// pool.get_mut(pool.root())?.n = 7; // through `&mut`: found by comparing memory
/// assert_eq!(pool.medium().read_u64(PAGE), 7); // reads go through the pool
/// drop(pool); // the borrow ends
///
/// // Its bytes make a new medium: reopening them is what recovery after a crash does.
/// let copy = SimMedium::from_image(&medium.live(), 64 << 10);
/// let reopened = Pool::<Root, _>::open_on(copy, "sim")?;
/// assert_eq!(reopened.get(reopened.root())?.n, 7);
/// # Ok(()) }
/// ```
pub struct SimMedium {
    buffer: Buffer,
    len: usize,
    state: Mutex<State>,
}

impl fmt::Debug for SimMedium {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimMedium")
            .field("len", &self.len())
            .field("capacity", &self.buffer.capacity)
            .finish()
    }
}

impl SimMedium {
    /// A zeroed medium of `len` bytes that can grow to `capacity`.
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_typed::Medium;
    /// use pmem_typed::sim::SimMedium;
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let mut medium = SimMedium::new(4096, 8192);
    /// assert_eq!(medium.len(), 4096);
    /// assert!(medium.live().iter().all(|&b| b == 0));
    /// // Room for `Pool::grow`, up to the capacity and no further.
    /// medium.grow(8192)?;
    /// assert_eq!(medium.len(), 8192);
    /// assert!(medium.grow(8193).is_err());
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn new(len: usize, capacity: usize) -> Self {
        let capacity = capacity.max(len);
        Self::with_buffer(Buffer::zeroed(capacity), len)
    }

    /// A medium holding `image` (its length), able to grow to `capacity`.
    ///
    /// # Examples
    ///
    /// A pool file, loaded into the simulator:
    ///
    /// ```
    /// use pmem_typed::sim::SimMedium;
    /// use pmem_typed::{Persist, Pool};
    ///
    /// #[derive(Clone, Copy, Persist)]
    /// #[repr(C)]
    /// struct Root { n: u64 }
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// let path = dir.path().join("pool");
    /// Pool::<Root>::create_with(&path, "file", 1 << 20, Root { n: 5 })?;
    ///
    /// let image = std::fs::read(&path)?;
    /// let pool = Pool::<Root, _>::open_on(SimMedium::from_image(&image, image.len()), "file")?;
    /// assert_eq!(pool.get(pool.root())?.n, 5);
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn from_image(image: &[u8], capacity: usize) -> Self {
        let medium = Self::new(image.len(), capacity);
        // SAFETY: the fresh buffer holds at least `image.len()` bytes and nobody else has it.
        unsafe { std::ptr::copy_nonoverlapping(image.as_ptr(), medium.base(), image.len()) };
        medium.lock().seen[..image.len()].copy_from_slice(image);
        medium
    }

    fn with_buffer(buffer: Buffer, len: usize) -> Self {
        let seen = vec![0; buffer.capacity];
        let state = State {
            seen,
            log: Log::default(),
            current_site: 0,
            group: 0,
            recording: true,
            reached: (Arc::from([]), 0),
        };
        let medium = Self {
            buffer,
            len,
            state: Mutex::new(state),
        };
        medium.lock().log.sites.push(Site {
            operation: "start",
            location: Location::caller(),
        });
        medium
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic in a checked program must not hide the recording.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The bytes the program currently sees.
    ///
    /// # Examples
    ///
    /// Which bytes an operation changed:
    ///
    /// ```
    /// use pmem_typed::format::PAGE;
    /// use pmem_typed::sim::SimMedium;
    /// use pmem_typed::{Persist, Pool};
    ///
    /// #[derive(Clone, Copy, Persist)]
    /// #[repr(C)]
    /// struct Root { a: u64, b: u64 }
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let medium = SimMedium::new(64 << 10, 64 << 10);
    /// let mut pool = Pool::create_on(medium, "live", Root { a: 0, b: 0 })?;
    /// let before = pool.medium().live();
    /// pool.get_mut(pool.root())?.b = 1;
    /// let after = pool.medium().live();
    /// let changed: Vec<usize> = (0..after.len()).filter(|&i| before[i] != after[i]).collect();
    /// assert_eq!(changed, [PAGE + 8]);
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn live(&self) -> Vec<u8> {
        self.sync_raw_writes();
        // SAFETY: `len` bytes of the buffer are initialised; no `&mut` into it
        // is used during a call into the medium (medium contract).
        unsafe { std::slice::from_raw_parts(self.base().cast_const(), self.len()) }.to_vec()
    }

    /// Turns recording off or on. While off, stores and flushes take effect
    /// but are not logged, and memory is not compared (used for set-up the
    /// test does not explore, and for checking invariants).
    ///
    /// Crash images are built from the log, so inside an explored
    /// [`Scenario::run`](super::Scenario::run) or
    /// [`recover`](super::Scenario::recover) turn recording off only around
    /// reads: a write made meanwhile is in no crash image, even once flushed
    /// and fenced, and the explorer would report its loss.
    ///
    /// # Examples
    ///
    /// The recording grows with every store. A medium used as plain memory,
    /// here to build a pool image for other tests, need not keep one:
    ///
    /// ```
    /// use pmem_typed::sim::SimMedium;
    /// use pmem_typed::{PPtr, Persist, Pool};
    ///
    /// #[derive(Clone, Copy, Persist)]
    /// #[repr(C)]
    /// struct Root { head: PPtr<Node> }
    ///
    /// #[derive(Clone, Copy, Persist)]
    /// #[repr(C)]
    /// struct Node { value: u64, next: PPtr<Node> }
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let medium = SimMedium::new(1 << 20, 1 << 20);
    /// medium.set_recording(false);
    /// let mut pool = Pool::create_on(medium, "list", Root { head: PPtr::null() })?;
    /// let head = pool.root().fields().head;
    /// for value in 0..100 {
    ///     let next = *pool.get(head)?;
    ///     pool.alloc(head, Node { value, next })?;
    /// }
    /// let image = pool.into_medium().live(); // a pool holding a list of 100 nodes
    /// let copy = Pool::<Root, _>::open_on(SimMedium::from_image(&image, image.len()), "list")?;
    /// assert_eq!(copy.check().reachable_blocks, 100);
    /// # Ok(()) }
    /// ```
    pub fn set_recording(&self, on: bool) {
        let mut state = self.lock();
        match (state.recording, on) {
            (true, false) => self.sync_locked(&mut state),
            (false, true) => {
                // Start comparing from what memory holds now.
                let len = self.len();
                // SAFETY: as in `live`.
                let live = unsafe { std::slice::from_raw_parts(self.base().cast_const(), len) };
                state.seen[..len].copy_from_slice(live);
            }
            _ => {}
        }
        state.recording = on;
    }

    /// Takes the recording so far, leaving an empty one.
    pub(crate) fn take_log(&self) -> Log {
        self.sync_raw_writes();
        let mut state = self.lock();
        let site = state.log.sites[state.current_site as usize];
        state.current_site = 0;
        std::mem::replace(&mut state.log, Log::starting_at(site))
    }

    /// Takes the recording and stops recording (one comparison of memory
    /// instead of two).
    pub(crate) fn finish_recording(&self) -> Log {
        let mut state = self.lock();
        self.sync_locked(&mut state);
        state.recording = false;
        let site = state.log.sites[state.current_site as usize];
        state.current_site = 0;
        std::mem::replace(&mut state.log, Log::starting_at(site))
    }

    /// Copies `image` over the medium and forgets the recording: used to
    /// reuse one medium for many crash images. Records from then on if
    /// `recording`.
    pub(crate) fn reset_to(&mut self, image: &[u8], recording: bool) {
        let len = image.len();
        assert!(len <= self.buffer.capacity, "image larger than the medium");
        // SAFETY: the buffer holds `capacity >= len` bytes, and `&mut self`
        // proves that no reference into it is alive.
        unsafe { std::ptr::copy_nonoverlapping(image.as_ptr(), self.base(), len) };
        self.len = len;
        let mut state = self.lock();
        if recording {
            state.seen[..len].copy_from_slice(image);
        }
        state.log.events.clear();
        state.log.sites.truncate(1);
        state.log.milestones.clear();
        state.current_site = 0;
        state.recording = recording;
    }

    /// Sets the milestones a check sees as reached: the first `count` of `all`.
    pub(crate) fn set_reached(&mut self, all: &Arc<[String]>, count: usize) {
        let state = self.state.get_mut().unwrap_or_else(PoisonError::into_inner);
        state.reached = (Arc::clone(all), count.min(all.len()));
    }

    /// Records the writes made through references since the last event: each
    /// 8-byte word that differs from what the medium last saw.
    fn sync_raw_writes(&self) {
        let mut state = self.lock();
        self.sync_locked(&mut state);
    }

    fn sync_locked(&self, state: &mut State) {
        self.sync_range(state, 0, self.len());
    }

    /// Records the words of `[offset, offset + len)` that differ from what
    /// the medium last saw, as one group: writes through one borrow.
    fn sync_range(&self, state: &mut State, offset: usize, len: usize) {
        if !state.recording {
            return;
        }
        let start = offset / WORD * WORD;
        let end = (offset + len).next_multiple_of(WORD).min(self.len());
        if start >= end {
            return;
        }
        // SAFETY: `[start, end)` lies within the `len` initialised bytes of
        // the buffer; no `&mut` into the medium is used concurrently with a
        // call into it (medium contract).
        let live =
            unsafe { std::slice::from_raw_parts(self.base().add(start).cast_const(), end - start) };
        let seen = &mut state.seen[start..end];
        if live == &seen[..] {
            return;
        }
        let (site, group) = (state.current_site, state.group);
        for (i, (now, before)) in live.chunks(WORD).zip(seen.chunks_mut(WORD)).enumerate() {
            if now != before {
                before.copy_from_slice(now);
                let mut word = [0; WORD];
                word[..now.len()].copy_from_slice(now);
                state.log.events.push(Event::Store {
                    word: (start / WORD + i) as u32,
                    value: u64::from_le_bytes(word),
                    nt: false,
                    raw: true,
                    site,
                    group,
                });
            }
        }
        state.group += 1;
    }

    /// `write` and `fill`: `store` puts `len` bytes at the pointer to
    /// `offset`, which are recorded, then flushed (the ordinary stores; the
    /// whole lines of a non-temporal copy bypass the cache, as in pmem-sys).
    fn store_range(
        &self,
        offset: usize,
        len: usize,
        nontemporal: bool,
        store: impl FnOnce(*mut u8),
    ) {
        let mut state = self.lock();
        self.sync_locked(&mut state);
        // SAFETY: `offset` is in bounds (the caller of `write` or `fill`).
        store(unsafe { self.base().add(offset) });
        let end = offset + len;
        let (head_end, tail_start) = if nontemporal {
            (offset.next_multiple_of(LINE).min(end), end / LINE * LINE)
        } else {
            (end, end)
        };
        self.record_stores(&mut state, offset, head_end - offset, false);
        if tail_start > head_end {
            self.record_stores(&mut state, head_end, tail_start - head_end, true);
        }
        let tail_start = tail_start.max(head_end);
        self.record_stores(&mut state, tail_start, end - tail_start, false);
        // Nothing else wrote since the sync above: no second comparison.
        record_flush(&mut state, offset, head_end - offset);
        record_flush(&mut state, tail_start, end - tail_start);
    }

    /// Records stores of `[offset, offset + len)` made by the medium itself.
    fn record_stores(&self, state: &mut State, offset: usize, len: usize, nt: bool) {
        if !state.recording {
            return;
        }
        let first = offset / WORD;
        let last = (offset + len).div_ceil(WORD);
        let group = state.group;
        state.group += 1;
        for word in first..last {
            let at = word * WORD;
            // SAFETY: the word lies within the medium (callers checked the range).
            let bytes =
                unsafe { std::slice::from_raw_parts(self.base().add(at).cast_const(), WORD) };
            state.seen[at..at + WORD].copy_from_slice(bytes);
            let value = u64::from_le_bytes(bytes.try_into().unwrap_or_default());
            let site = state.current_site;
            state.log.events.push(Event::Store {
                word: word as u32,
                value,
                nt,
                raw: false,
                site,
                group,
            });
        }
    }

    fn set_site(
        &self,
        state: &mut State,
        operation: &'static str,
        location: &'static Location<'static>,
    ) {
        let site = Site {
            operation,
            location,
        };
        if state.log.sites.get(state.current_site as usize) != Some(&site) {
            state.log.sites.push(site);
            state.current_site = (state.log.sites.len() - 1) as u32;
        }
    }

    fn check_range(&self, offset: usize, len: usize) {
        let end = offset.checked_add(len);
        if end.is_none_or(|end| end > self.len()) {
            out_of_range(offset, len, self.len());
        }
    }

    /// Stores `value` at the 8-aligned `offset` (one failure-atomic store).
    ///
    /// It takes `&mut self`, so it cannot write under a reference a pool
    /// handed out. On an owned medium with [`Medium`] in scope, method syntax
    /// finds the trait's `unsafe` `store_u64(&self)` first: call this one as
    /// `SimMedium::store_u64(&mut medium, ..)`, or on a `&mut SimMedium` (as a
    /// scenario's steps get it).
    ///
    /// # Panics
    /// If the range is outside the medium or unaligned.
    ///
    /// # Examples
    ///
    /// A crash keeps all of the word or none of it, whatever the profile:
    ///
    /// ```
    /// use pmem_typed::sim::{Explorer, Profile, Scenario};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let scenario = Scenario::new(4096)
    ///     .run(|m| {
    ///         m.store_u64(8, u64::MAX);
    ///         m.flush_range(8, 8);
    ///         m.sfence();
    ///         Ok(())
    ///     })
    ///     .check(|m| match m.read_u64(8) {
    ///         0 | u64::MAX => Ok(()),
    ///         torn => Err(format!("torn: {torn:#x}").into()),
    ///     });
    /// let summary = Explorer::new().profile(Profile::Conservative).explore(&scenario)?;
    /// assert_eq!(summary.images, 2); // before and after
    /// # Ok(()) }
    /// ```
    #[track_caller]
    pub fn store_u64(&mut self, offset: usize, value: u64) {
        self.note("SimMedium::store_u64", Location::caller());
        assert!(
            offset.is_multiple_of(8),
            "store_u64 at unaligned offset {offset}"
        );
        self.check_range(offset, 8);
        // SAFETY:
        // - in range and 8-aligned: checked above;
        // - no reference to the bytes is alive: `&mut self` means no pool holds
        //   this medium (a pool owns it or borrows it with `&mut`, and the
        //   medium cannot be cloned), and only a pool hands out references.
        unsafe { Medium::store_u64(&*self, offset, value) }
    }

    /// Copies `bytes` to `offset` with ordinary stores (torn into 8-byte
    /// words), without flushing.
    ///
    /// # Panics
    /// If the range is outside the medium.
    ///
    /// # Examples
    ///
    /// A 16-byte value can tear, even within one cache line:
    ///
    /// ```
    /// use pmem_typed::sim::{Explorer, Scenario};
    ///
    /// let scenario = Scenario::new(4096)
    ///     .run(|m| {
    ///         m.store(64, &[0xff; 16]);
    ///         m.flush_range(64, 16);
    ///         m.sfence();
    ///         Ok(())
    ///     })
    ///     .check(|m| {
    ///         if m.read_u64(64) == m.read_u64(72) {
    ///             Ok(())
    ///         } else {
    ///             Err("half of the value".into())
    ///         }
    ///     });
    /// let failure = Explorer::default().explore(&scenario).expect_err("two 8-byte stores");
    /// assert_eq!(failure.message, "invariant violated: half of the value");
    /// ```
    #[track_caller]
    pub fn store(&mut self, offset: usize, bytes: &[u8]) {
        self.note("SimMedium::store", Location::caller());
        self.check_range(offset, bytes.len());
        let mut state = self.lock();
        self.sync_locked(&mut state);
        // SAFETY:
        // - in range: checked above;
        // - no reference to the bytes is alive: `&mut self`, as in `store_u64`;
        // - `bytes` cannot overlap the buffer, which nothing borrows.
        unsafe {
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), self.base().add(offset), bytes.len())
        };
        self.record_stores(&mut state, offset, bytes.len(), false);
    }

    /// Copies `bytes` to `offset` with non-temporal stores (no flush needed,
    /// but a fence is).
    ///
    /// # Panics
    /// If the range is outside the medium.
    ///
    /// # Examples
    ///
    /// An entry streamed past the cache, then published:
    ///
    /// ```
    /// use pmem_typed::sim::{Explorer, Scenario};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let scenario = Scenario::new(4096)
    ///     .run(|m| {
    ///         m.store_nontemporal(64, &[7; 64]);
    ///         m.sfence(); // no flush: the fence alone makes it durable
    ///         m.store_u64(0, 1);
    ///         m.flush_range(0, 8);
    ///         m.sfence();
    ///         Ok(())
    ///     })
    ///     .check(|m| {
    ///         let mut entry = [0; 64];
    ///         m.read(64, &mut entry);
    ///         if m.read_u64(0) == 0 || entry == [7; 64] {
    ///             Ok(())
    ///         } else {
    ///             Err("published before it was durable".into())
    ///         }
    ///     });
    /// Explorer::default().explore(&scenario)?;
    /// # Ok(()) }
    /// ```
    #[track_caller]
    pub fn store_nontemporal(&mut self, offset: usize, bytes: &[u8]) {
        self.note("SimMedium::store_nontemporal", Location::caller());
        self.check_range(offset, bytes.len());
        let mut state = self.lock();
        self.sync_locked(&mut state);
        // SAFETY:
        // - in range: checked above;
        // - no reference to the bytes is alive: `&mut self`, as in `store_u64`;
        // - `bytes` cannot overlap the buffer, which nothing borrows.
        unsafe {
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), self.base().add(offset), bytes.len())
        };
        self.record_stores(&mut state, offset, bytes.len(), true);
    }

    /// Reads the u64 at `offset`.
    ///
    /// # Panics
    /// If the range is outside the medium.
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_typed::format::MAGIC;
    /// use pmem_typed::sim::SimMedium;
    /// use pmem_typed::{Persist, Pool};
    ///
    /// #[derive(Clone, Copy, Persist)]
    /// #[repr(C)]
    /// struct Root { n: u64 }
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let mut medium = SimMedium::new(64 << 10, 64 << 10);
    /// assert_eq!(medium.read_u64(0), 0);
    /// Pool::create_on(&mut medium, "magic", Root { n: 0 })?; // borrowed until the pool drops
    /// assert_eq!(medium.read_u64(0), u64::from_le_bytes(MAGIC)); // the last word written
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn read_u64(&self, offset: usize) -> u64 {
        let mut bytes = [0u8; 8];
        self.read(offset, &mut bytes);
        u64::from_le_bytes(bytes)
    }

    /// Reads `buf.len()` bytes at `offset`.
    ///
    /// # Panics
    /// If the range is outside the medium.
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_typed::format::unpadded;
    /// use pmem_typed::sim::SimMedium;
    /// use pmem_typed::{Persist, Pool};
    ///
    /// #[derive(Clone, Copy, Persist)]
    /// #[repr(C)]
    /// struct Root { n: u64 }
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let mut medium = SimMedium::new(64 << 10, 64 << 10);
    /// Pool::create_on(&mut medium, "orders", Root { n: 0 })?;
    /// let mut name = [0; 64];
    /// medium.read(32, &mut name); // the superblock's layout name
    /// assert_eq!(unpadded(&name), "orders");
    /// # Ok(()) }
    /// ```
    pub fn read(&self, offset: usize, buf: &mut [u8]) {
        self.check_range(offset, buf.len());
        // SAFETY: in range (checked); plain bytes.
        unsafe {
            std::ptr::copy_nonoverlapping(self.base().add(offset), buf.as_mut_ptr(), buf.len())
        };
    }

    /// Flushes the lines of `[offset, offset + len)` (recorded at the caller).
    ///
    /// # Panics
    /// If the range is outside the medium.
    ///
    /// # Examples
    ///
    /// A fence waits only for what was flushed:
    ///
    /// ```
    /// use pmem_typed::sim::{Explorer, Scenario};
    ///
    /// let publish = |flush_value: bool| {
    ///     Scenario::new(4096)
    ///         .run(move |m| {
    ///             m.store_u64(64, 42);
    ///             if flush_value {
    ///                 m.flush_range(64, 8);
    ///             }
    ///             m.sfence();
    ///             m.store_u64(0, 1);
    ///             m.flush_range(0, 8);
    ///             m.sfence();
    ///             Ok(())
    ///         })
    ///         .check(|m| match (m.read_u64(0), m.read_u64(64)) {
    ///             (0, _) | (1, 42) => Ok(()),
    ///             (flag, value) => Err(format!("flag {flag} with value {value}").into()),
    ///         })
    /// };
    /// assert!(Explorer::default().explore(&publish(true)).is_ok());
    /// assert!(Explorer::default().explore(&publish(false)).is_err());
    /// ```
    #[track_caller]
    pub fn flush_range(&self, offset: usize, len: usize) {
        self.note("SimMedium::flush_range", Location::caller());
        self.check_range(offset, len);
        Medium::flush(self, offset, len);
    }

    /// A fence (recorded at the caller).
    ///
    /// # Examples
    ///
    /// Crashes are placed before every fence, where the most stores are undecided:
    ///
    /// ```
    /// use pmem_typed::sim::{Explorer, Scenario};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let scenario = Scenario::new(4096).run(|m| {
    ///     for i in 0..3 {
    ///         m.store_u64(64 * i, 1);
    ///         m.flush_range(64 * i, 8);
    ///         m.sfence();
    ///     }
    ///     Ok(())
    /// });
    /// let summary = Explorer::default().explore(&scenario)?;
    /// assert_eq!(summary.crash_points, 4); // before each fence, and at the end
    /// # Ok(()) }
    /// ```
    #[track_caller]
    pub fn sfence(&self) {
        self.note("SimMedium::sfence", Location::caller());
        Medium::fence(self);
    }

    /// Marks a milestone of the workload: everything the program did before
    /// this call is done. A check then learns, for the crash it checks,
    /// which milestones came before that crash ([`reached`](Self::reached)),
    /// and so can state durability: what an operation that returned
    /// promised must have survived.
    ///
    /// Marked in recovery or a check, milestones mean nothing: only the
    /// workload's are passed on.
    ///
    /// # Examples
    ///
    /// A counter whose bumps must survive once they returned:
    ///
    /// ```
    /// use pmem_typed::sim::{Explorer, Scenario};
    ///
    /// let counter = |fence_last: bool| {
    ///     Scenario::new(4096)
    ///         .run(move |m| {
    ///             for n in 1..=3 {
    ///                 m.store_u64(0, n);
    ///                 m.flush_range(0, 8);
    ///                 if fence_last || n < 3 {
    ///                     m.sfence();
    ///                 }
    ///                 m.milestone(format!("bump {n} returned"));
    ///             }
    ///             Ok(())
    ///         })
    ///         .check(|m| {
    ///             let returned = (1..=3).filter(|n| m.reached(&format!("bump {n} returned"))).count();
    ///             match m.read_u64(0) {
    ///                 n if n >= returned as u64 => Ok(()),
    ///                 n => Err(format!("{returned} bumps returned, but the counter is {n}").into()),
    ///             }
    ///         })
    /// };
    /// assert!(Explorer::default().explore(&counter(true)).is_ok());
    /// // The last bump returns before it is durable: a crash after it can lose it.
    /// let failure = Explorer::default().explore(&counter(false)).expect_err("bump 3 is lost");
    /// assert!(failure.message.contains("3 bumps returned, but the counter is 2"), "{failure}");
    /// ```
    pub fn milestone(&self, name: impl Into<String>) {
        let mut state = self.lock();
        // Writes made through references before the milestone come before it.
        self.sync_locked(&mut state);
        if state.recording {
            let at = state.log.events.len();
            state.log.milestones.push((at, name.into()));
        }
    }

    /// Whether the workload had passed milestone `name` before the crash
    /// this check is about (every milestone, without a crash). Outside a
    /// check, nothing is reached.
    ///
    /// # Examples
    ///
    /// See [`milestone`](Self::milestone).
    #[must_use]
    pub fn reached(&self, name: &str) -> bool {
        let state = self.lock();
        let (all, count) = &state.reached;
        all[..*count].iter().any(|reached| reached == name)
    }

    /// The milestones the workload had passed before the crash this check
    /// is about, in program order.
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_typed::sim::{Explorer, Scenario};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// // Each entry is persisted before its milestone, so every entry a
    /// // milestone promises is there.
    /// let scenario = Scenario::new(4096)
    ///     .run(|m| {
    ///         for i in 0..3 {
    ///             m.store_u64(64 * (i + 1), 7);
    ///             m.flush_range(64 * (i + 1), 8);
    ///             m.sfence();
    ///             m.milestone(format!("entry {i}"));
    ///         }
    ///         Ok(())
    ///     })
    ///     .check(|m| {
    ///         let promised = m.milestones_reached().len();
    ///         match (0..promised).find(|i| m.read_u64(64 * (i + 1)) != 7) {
    ///             None => Ok(()),
    ///             Some(i) => Err(format!("entry {i} lost").into()),
    ///         }
    ///     });
    /// Explorer::default().explore(&scenario)?;
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn milestones_reached(&self) -> Vec<String> {
        let state = self.lock();
        let (all, count) = &state.reached;
        all[..*count].to_vec()
    }
}

#[cold]
#[track_caller]
fn out_of_range(offset: usize, len: usize, medium: usize) -> ! {
    panic!("SimMedium: {len} bytes at {offset} are outside the medium of {medium} bytes")
}

// SAFETY: the buffer is allocated at its full capacity, page-aligned, and
// never moves; `len` only grows within it.
unsafe impl Medium for SimMedium {
    #[inline]
    fn base(&self) -> *mut u8 {
        self.buffer.ptr.as_ptr()
    }

    #[inline]
    fn len(&self) -> usize {
        self.len
    }

    fn flush(&self, offset: usize, len: usize) {
        self.check_range(offset, len);
        let mut state = self.lock();
        self.sync_locked(&mut state);
        record_flush(&mut state, offset, len);
    }

    fn fence(&self) {
        let mut state = self.lock();
        self.sync_locked(&mut state);
        if state.recording {
            let site = state.current_site;
            state.log.events.push(Event::Fence { site });
        }
    }

    unsafe fn write(&self, offset: usize, bytes: &[u8], nontemporal: bool) {
        // SAFETY: in bounds and unaliased (caller).
        let copy = |to: *mut u8| unsafe {
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), to, bytes.len());
        };
        self.store_range(offset, bytes.len(), nontemporal, copy);
    }

    unsafe fn fill(&self, offset: usize, byte: u8, len: usize, nontemporal: bool) {
        // SAFETY: in bounds and unaliased (caller).
        let fill = |to: *mut u8| unsafe { to.write_bytes(byte, len) };
        self.store_range(offset, len, nontemporal, fill);
    }

    unsafe fn store_u64(&self, offset: usize, value: u64) {
        let mut state = self.lock();
        self.sync_locked(&mut state);
        // SAFETY: aligned, in bounds, unaliased (caller).
        unsafe { self.base().add(offset).cast::<u64>().write(value) };
        self.record_stores(&mut state, offset, 8, false);
    }

    fn grow(&mut self, new_len: usize) -> Result<()> {
        if new_len > self.buffer.capacity {
            return Err(Error::InvalidArgument {
                argument: "SimMedium length",
                found: new_len as u64,
                expected: Expected::AtMost(self.buffer.capacity as u64),
            });
        }
        self.sync_raw_writes();
        let old_len = self.len;
        self.len = old_len.max(new_len);
        let len = self.len;
        // A file grows with zeros: bytes a longer image left in the buffer
        // must not show through.
        // SAFETY: `[old_len, len)` lies within the buffer's capacity, and
        // `&mut self` proves that no reference into it is alive.
        unsafe { self.base().add(old_len).write_bytes(0, len - old_len) };
        let state = self.state.get_mut().unwrap_or_else(PoisonError::into_inner);
        state.seen[old_len..len].fill(0);
        if state.recording {
            state.log.events.push(Event::Resize { len: len as u32 });
        }
        Ok(())
    }

    fn note(&self, operation: &'static str, at: &'static Location<'static>) {
        let mut state = self.lock();
        self.sync_locked(&mut state);
        self.set_site(&mut state, operation, at);
    }

    fn lend_mut(&self, offset: usize, len: usize) {
        let mut state = self.lock();
        self.sync_range(&mut state, offset, len);
    }
}

/// Records a flush of the lines of `[offset, offset + len)`.
fn record_flush(state: &mut State, offset: usize, len: usize) {
    if !state.recording || len == 0 {
        return;
    }
    let site = state.current_site;
    for line in offset / LINE..(offset + len).div_ceil(LINE) {
        state.log.events.push(Event::Flush {
            line: line as u32,
            site,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_typed_and_raw_stores() {
        let mut m = SimMedium::new(4096, 4096);
        // The inherent (safe) method: with `Medium` in scope, `m.store_u64`
        // would pick the trait's unsafe one, which takes `&self`.
        SimMedium::store_u64(&mut m, 64, 7);
        // SAFETY: in bounds; no reference into the medium exists.
        unsafe { m.base().add(200).write(1) };
        m.flush_range(64, 200);
        m.sfence();
        let log = m.take_log();
        let kinds: Vec<_> = log
            .events
            .iter()
            .map(|e| match e {
                Event::Store { word, raw, .. } => {
                    format!("store {word}{}", if *raw { " raw" } else { "" })
                }
                Event::Flush { line, .. } => format!("flush {line}"),
                Event::Fence { .. } => "fence".into(),
                Event::Resize { len } => format!("resize {len}"),
            })
            .collect();
        assert_eq!(
            kinds,
            [
                "store 8",
                "store 25 raw",
                "flush 1",
                "flush 2",
                "flush 3",
                "flush 4",
                "fence"
            ]
        );
        let site = log.sites[match log.events.last() {
            Some(Event::Fence { site }) => *site as usize,
            _ => 0,
        }];
        assert_eq!(site.operation, "SimMedium::sfence");
        assert!(site.location.file().ends_with("medium.rs"));
    }

    #[test]
    fn nontemporal_writes_stream_whole_lines() {
        let m = SimMedium::new(4096, 4096);
        // SAFETY: in bounds, unaliased.
        unsafe { Medium::write(&m, 60, &[1u8; 140], true) };
        let log = m.take_log();
        let nt: Vec<u32> = log
            .events
            .iter()
            .filter_map(|e| match e {
                Event::Store { word, nt: true, .. } => Some(*word),
                _ => None,
            })
            .collect();
        assert_eq!(
            nt,
            (8..24).collect::<Vec<u32>>(),
            "the two whole lines 64..192"
        );
    }

    #[test]
    fn grows_in_place() {
        let mut m = SimMedium::new(4096, 8192);
        let base = m.base();
        Medium::grow(&mut m, 8192).unwrap();
        assert_eq!((m.len(), m.base()), (8192, base));
        assert!(Medium::grow(&mut m, 8193).is_err());
    }
}
