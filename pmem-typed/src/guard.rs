//! [`Guard`] and [`DisjointGuard`]: write access to persistent objects that
//! persists what changed when it is dropped.
//!
//! A guard holds a raw pointer to its object, not a `&mut T`, and lends out
//! `&mut T` only for the borrows of `deref_mut`: when the guard itself calls
//! into the medium (to flush), no reference into the object is alive, so a
//! medium that reads its memory meanwhile (the crash simulator compares it
//! with what it last saw) does not invalidate one.

use core::fmt;
use core::marker::PhantomData;
use core::ops::{Deref, DerefMut, Index, IndexMut};
use core::panic::Location;
use core::ptr::NonNull;

use bytemuck::Pod;

use crate::format::LINE;
use crate::medium::Medium;

/// Types a guard can cover: plain data, or slices of it.
///
/// # Examples
///
/// ```
/// use pmem_typed::PodView;
/// // A guard compares these bytes before and after to find the lines that changed.
/// assert_eq!(0x0102_u16.pod_bytes(), &0x0102_u16.to_ne_bytes());
/// assert_eq!([7_u32; 3][..].pod_bytes().len(), 12);
/// ```
pub trait PodView {
    /// The bytes of the value.
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_typed::PodView;
    /// use pmem_typed::{PPtr, Persist};
    ///
    /// #[derive(Clone, Copy, Persist)]
    /// #[repr(C)]
    /// struct Pair { a: u32, b: u32 }
    ///
    /// let pair = Pair { a: 1, b: 2 };
    /// assert_eq!(pair.pod_bytes(), [1, 0, 0, 0, 2, 0, 0, 0]); // little-endian x86-64
    /// assert_eq!(PPtr::<Pair>::null().pod_bytes(), [0; 8]);
    /// ```
    fn pod_bytes(&self) -> &[u8];
}

impl<T: Pod> PodView for T {
    fn pod_bytes(&self) -> &[u8] {
        bytemuck::bytes_of(self)
    }
}

impl<T: Pod> PodView for [T] {
    fn pod_bytes(&self) -> &[u8] {
        bytemuck::cast_slice(self)
    }
}

/// The object's bytes as last persisted, to find the lines that change: in
/// a buffer the pool lends, so that a guard costs no allocation.
pub(crate) struct Snapshot<'a>(pub(crate) &'a mut Vec<u8>);

/// Whether two equally long byte strings differ, compared a word at a time
/// (the lines compared are short: a call to `memcmp` per line would dominate).
#[inline]
fn differs(a: &[u8], b: &[u8]) -> bool {
    let (a_words, a_rest) = a.as_chunks::<8>();
    let (b_words, b_rest) = b.as_chunks::<8>();
    a_words.iter().zip(b_words).any(|(x, y)| x != y) || a_rest != b_rest
}

/// Flushes the cache lines of the object at `offset` whose bytes in `now`
/// differ from `before`, and brings `before` up to date. No fence.
fn flush_changes<M: Medium>(medium: &M, offset: usize, now: &[u8], before: &mut [u8]) {
    debug_assert_eq!(now.len(), before.len());
    // Lines are aligned to the medium, not to the object.
    let end_of_object = offset + now.len();
    let mut dirty: Option<(usize, usize)> = None;
    let mut line = offset / LINE * LINE;
    while line < end_of_object {
        let lo = line.max(offset) - offset;
        let hi = (line + LINE).min(end_of_object) - offset;
        if differs(&now[lo..hi], &before[lo..hi]) {
            before[lo..hi].copy_from_slice(&now[lo..hi]);
            dirty = match dirty {
                Some((start, end)) if end == line => Some((start, line + LINE)),
                Some((start, end)) => {
                    medium.flush(start, end - start);
                    Some((line, line + LINE))
                }
                None => Some((line, line + LINE)),
            };
        }
        line += LINE;
    }
    if let Some((start, end)) = dirty {
        // Clip to the medium: the object's last line may be its last bytes.
        let end = end.min(medium.len());
        medium.flush(start, end - start);
    }
}

/// Write access to a persistent `T` (or `[T]`), from
/// [`Pool::get_mut`](crate::Pool::get_mut) and
/// [`Pool::get_slice_mut`](crate::Pool::get_slice_mut).
///
/// Dereferences to `&mut T`. When dropped, or when
/// [`persist`](Self::persist) is called, it flushes exactly the cache lines
/// whose bytes changed and fences once, so the changes are durable. Several
/// changes to one object become durable together only in the sense that they
/// are flushed together: a crash before the fence may keep any subset of the
/// changed lines (use [`Pool::set`](crate::Pool::set) or allocation for
/// failure-atomic updates).
///
/// Within one line, stores reach the cache in program order, and x86 writes
/// a line back with its stores in that order; code that relies on it (an
/// in-line shift) must keep the compiler from reordering them, with a
/// borrow per store and a [`compiler_fence`](core::sync::atomic::compiler_fence)
/// between. The crash simulator sees the writes of each borrow as one step
/// in program order (see `sim::SimMedium`, feature `sim`).
///
/// # Examples
///
/// ```
/// use pmem_typed::{Persist, Pool};
///
/// #[derive(Clone, Copy, Persist)]
/// #[repr(C)]
/// struct Stats { reads: u64, writes: u64 }
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("stats.pool");
/// {
///     let mut pool = Pool::<Stats>::create(&path, "stats", 1 << 20)?;
///     let mut stats = pool.get_mut(pool.root())?;
///     stats.reads += 10;
///     stats.writes += 1;
/// } // the guard dropped first: its changes were flushed, then fenced once
/// let pool = Pool::<Stats>::open(&path, "stats")?;
/// let stats = pool.get(pool.root())?;
/// assert_eq!((stats.reads, stats.writes), (10, 1));
/// # Ok(()) }
/// ```
pub struct Guard<'a, T: ?Sized + PodView, M: Medium> {
    // INVARIANT (from `new`): a valid, aligned `T` at `offset` of `medium`,
    // which nothing but this guard accesses for `'a`.
    value: NonNull<T>,
    medium: &'a M,
    offset: usize,
    snapshot: Snapshot<'a>,
    /// Where the guard was taken, for the crash simulator's reports.
    taken_at: &'static Location<'static>,
    _borrow: PhantomData<&'a mut T>,
}

// SAFETY: the guard is an exclusive borrow of the `T` (what `&'a mut T` is)
// and a shared borrow of the medium, which is `Sync` (a supertrait of `Medium`).
unsafe impl<T: ?Sized + PodView + Send, M: Medium> Send for Guard<'_, T, M> {}
// SAFETY: through `&Guard` only `&T` is reachable, as through `&&mut T`.
unsafe impl<T: ?Sized + PodView + Sync, M: Medium> Sync for Guard<'_, T, M> {}

impl<'a, T: ?Sized + PodView, M: Medium> Guard<'a, T, M> {
    /// # Safety
    /// `value` points to a valid, aligned `T` at `offset` of `medium`, and for
    /// `'a` nothing else accesses it.
    pub(crate) unsafe fn new(
        medium: &'a M,
        offset: usize,
        taken_at: &'static Location<'static>,
        value: NonNull<T>,
        snapshot: Snapshot<'a>,
    ) -> Self {
        // INVARIANT: the caller's promise.
        let guard = Self {
            value,
            medium,
            offset,
            snapshot,
            taken_at,
            _borrow: PhantomData,
        };
        // SAFETY: the invariant; nothing else borrows the object.
        let bytes = unsafe { guard.value.as_ref() }.pod_bytes();
        guard.snapshot.0.clear();
        guard.snapshot.0.extend_from_slice(bytes);
        guard
    }

    /// Flushes the cache lines that changed since the guard was made (or last
    /// persisted) and fences: the changes are durable on return.
    ///
    /// # Examples
    ///
    /// A long-lived guard makes each step durable before starting the next:
    ///
    /// ```
    /// use pmem_typed::{Persist, Pool};
    /// use pmem_typed::sim::SimMedium;
    ///
    /// #[derive(Clone, Copy, Persist)]
    /// #[repr(C)]
    /// struct Job { step: u64, done: [u64; 3] }
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let medium = SimMedium::new(64 << 10, 64 << 10);
    /// let mut pool = Pool::create_on(medium, "job", Job { step: 0, done: [0; 3] })?;
    /// let mut job = pool.get_mut(pool.root())?;
    /// for step in 0..3 {
    ///     job.done[step] = 100 + step as u64;
    ///     job.step = step as u64 + 1;
    ///     job.persist(); // step `step` is durable here
    /// }
    /// drop(job); // nothing changed since the last persist: only a fence
    /// assert_eq!(pool.get(pool.root())?.done, [100, 101, 102]);
    /// # Ok(()) }
    /// ```
    pub fn persist(&mut self) {
        self.medium.note("Guard::persist", self.taken_at);
        // SAFETY: the invariant; no `&mut T` from `deref_mut` is alive while
        // `self` is borrowed mutably here.
        let now = unsafe { self.value.as_ref() }.pod_bytes();
        flush_changes(self.medium, self.offset, now, self.snapshot.0);
        self.medium.fence();
    }
}

impl<T: ?Sized + PodView, M: Medium> Deref for Guard<'_, T, M> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: the invariant; the returned borrow of `self` excludes a `&mut T`.
        unsafe { self.value.as_ref() }
    }
}

impl<T: ?Sized + PodView, M: Medium> DerefMut for Guard<'_, T, M> {
    fn deref_mut(&mut self) -> &mut T {
        // The last borrow has ended: a recording medium notes its writes now.
        self.medium.lend_mut(self.offset, self.snapshot.0.len());
        // SAFETY: the invariant; the returned borrow of `self` is exclusive.
        unsafe { self.value.as_mut() }
    }
}

impl<T: ?Sized + PodView, M: Medium> Drop for Guard<'_, T, M> {
    fn drop(&mut self) {
        self.persist();
    }
}

impl<T: ?Sized + PodView + fmt::Debug, M: Medium> fmt::Debug for Guard<'_, T, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Guard")
            .field("offset", &self.offset)
            .field("value", &&**self)
            .finish()
    }
}

/// Write access to `N` distinct persistent objects at once, from
/// [`Pool::get_disjoint_mut`](crate::Pool::get_disjoint_mut).
///
/// Index it (`guard[1].x = 3`) or take all the `&mut T` together with
/// [`each_mut`](Self::each_mut). When dropped, or when
/// [`persist`](Self::persist) is called, it flushes the cache lines that
/// changed in any of the objects and fences once. As with [`Guard`], the
/// changes are not failure-atomic together: a crash before the fence may
/// keep any subset of the changed lines.
///
/// # Examples
///
/// ```
/// use pmem_typed::{PSlice, Persist, Pool};
///
/// #[derive(Clone, Copy, Persist)]
/// #[repr(C)]
/// struct Root { cells: PSlice<u64> }
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let dir = tempfile::tempdir()?;
/// let mut pool = Pool::<Root>::create(dir.path().join("cells.pool"), "cells", 1 << 20)?;
/// let cells = pool.alloc_slice(pool.root().fields().cells, &[1, 2, 3, 4])?;
/// let (first, last) = (cells.at(0).ok_or("empty")?, cells.at(3).ok_or("empty")?);
/// {
///     let mut ends = pool.get_disjoint_mut([first, last])?;
///     let [a, b] = ends.each_mut();
///     std::mem::swap(a, b);
///     ends[0] *= 10;
/// } // both persisted, one fence
/// assert_eq!(pool.get_slice(cells)?, [40, 2, 3, 1]);
/// # Ok(()) }
/// ```
pub struct DisjointGuard<'a, T: Pod, M: Medium, const N: usize> {
    // INVARIANT (from `new`): each a valid, aligned `T` at the same index of
    // `offsets` in `medium`, no two sharing a byte, none accessed by anything
    // but this guard for `'a`.
    values: [NonNull<T>; N],
    offsets: [usize; N],
    medium: &'a M,
    /// The `N` objects' bytes, one after the other.
    snapshot: Snapshot<'a>,
    taken_at: &'static Location<'static>,
    _borrow: PhantomData<&'a mut T>,
}

// SAFETY: as for `Guard`: exclusive borrows of `N` `T`s and a shared borrow
// of a `Sync` medium.
unsafe impl<T: Pod + Send, M: Medium, const N: usize> Send for DisjointGuard<'_, T, M, N> {}
// SAFETY: through `&DisjointGuard` only `&T`s are reachable.
unsafe impl<T: Pod + Sync, M: Medium, const N: usize> Sync for DisjointGuard<'_, T, M, N> {}

impl<'a, T: Pod, M: Medium, const N: usize> DisjointGuard<'a, T, M, N> {
    /// # Safety
    /// Each of `offsets` holds a valid, aligned `T` of `medium`, no two
    /// overlap, and for `'a` nothing else accesses them.
    pub(crate) unsafe fn new(
        medium: &'a M,
        offsets: [usize; N],
        taken_at: &'static Location<'static>,
        snapshot: Snapshot<'a>,
    ) -> Self {
        let base = medium.base();
        // SAFETY: each offset is inside the medium (caller), so the pointer
        // is in bounds of the medium's allocation, and not null.
        let values =
            offsets.map(|offset| unsafe { NonNull::new_unchecked(base.add(offset).cast::<T>()) });
        // INVARIANT: the caller's promise.
        let guard = Self {
            values,
            offsets,
            medium,
            snapshot,
            taken_at,
            _borrow: PhantomData,
        };
        guard.snapshot.0.clear();
        for value in &guard.values {
            // SAFETY: the invariant; nothing else borrows the object.
            let bytes = bytemuck::bytes_of(unsafe { value.as_ref() });
            guard.snapshot.0.extend_from_slice(bytes);
        }
        guard
    }

    /// All `N` objects, mutably, at once.
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_typed::{PSlice, Persist, Pool};
    ///
    /// #[derive(Clone, Copy, Persist)]
    /// #[repr(C)]
    /// struct Root { accounts: PSlice<u64> }
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// let mut pool = Pool::<Root>::create(dir.path().join("bank.pool"), "bank", 1 << 20)?;
    /// let accounts = pool.alloc_slice(pool.root().fields().accounts, &[100, 0])?;
    /// let (alice, bob) = (accounts.at(0).ok_or("empty")?, accounts.at(1).ok_or("empty")?);
    /// let mut both = pool.get_disjoint_mut([alice, bob])?;
    /// let [from, to] = both.each_mut();
    /// *from -= 30;
    /// *to += 30;
    /// drop(both);
    /// assert_eq!(pool.get_slice(accounts)?, [70, 30]);
    /// # Ok(()) }
    /// ```
    pub fn each_mut(&mut self) -> [&mut T; N] {
        self.lend_all();
        // SAFETY: the invariant: the objects are disjoint, so the `N`
        // exclusive borrows do not alias, and they borrow `self` exclusively.
        self.values.map(|mut value| unsafe { value.as_mut() })
    }

    /// Before lending `&mut`: the last borrow, of any of the objects, has
    /// ended, and a recording medium notes its writes as one step.
    fn lend_all(&self) {
        let start = self.offsets.iter().min().copied().unwrap_or(0);
        let end = self.offsets.iter().max().map_or(0, |&o| o + size_of::<T>());
        self.medium.lend_mut(start, end.saturating_sub(start));
    }

    /// Flushes the cache lines that changed in any of the objects since the
    /// guard was made (or last persisted) and fences once.
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_typed::{PSlice, Persist, Pool};
    ///
    /// #[derive(Clone, Copy, Persist)]
    /// #[repr(C)]
    /// struct Root { pair: PSlice<u64> }
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// let mut pool = Pool::<Root>::create(dir.path().join("pair.pool"), "pair", 1 << 20)?;
    /// let pair = pool.alloc_slice_zeroed(pool.root().fields().pair, 2)?;
    /// let mut both = pool.get_disjoint_mut([pair.at(0).ok_or("empty")?, pair.at(1).ok_or("empty")?])?;
    /// for round in 1..=3 {
    ///     both[0] = round;
    ///     both[1] = round * round;
    ///     both.persist(); // round `round` is durable here
    /// }
    /// drop(both);
    /// assert_eq!(pool.get_slice(pair)?, [3, 9]);
    /// # Ok(()) }
    /// ```
    pub fn persist(&mut self) {
        self.medium.note("DisjointGuard::persist", self.taken_at);
        let size = size_of::<T>();
        for (i, (value, &offset)) in self.values.iter().zip(&self.offsets).enumerate() {
            // SAFETY: the invariant; no `&mut T` lent out is alive while
            // `self` is borrowed mutably here.
            let now = bytemuck::bytes_of(unsafe { value.as_ref() });
            let before = &mut self.snapshot.0[i * size..(i + 1) * size];
            flush_changes(self.medium, offset, now, before);
        }
        self.medium.fence();
    }
}

impl<T: Pod, M: Medium, const N: usize> Index<usize> for DisjointGuard<'_, T, M, N> {
    type Output = T;

    /// # Panics
    /// If `index >= N`.
    fn index(&self, index: usize) -> &T {
        // SAFETY: the invariant; the returned borrow of `self` excludes a `&mut T`.
        unsafe { self.values[index].as_ref() }
    }
}

impl<T: Pod, M: Medium, const N: usize> IndexMut<usize> for DisjointGuard<'_, T, M, N> {
    /// # Panics
    /// If `index >= N`.
    fn index_mut(&mut self, index: usize) -> &mut T {
        self.lend_all();
        // SAFETY: the invariant; the returned borrow of `self` is exclusive.
        unsafe { self.values[index].as_mut() }
    }
}

impl<T: Pod, M: Medium, const N: usize> Drop for DisjointGuard<'_, T, M, N> {
    fn drop(&mut self) {
        self.persist();
    }
}

impl<T: Pod + fmt::Debug, M: Medium, const N: usize> fmt::Debug for DisjointGuard<'_, T, M, N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut list = f.debug_list();
        for value in &self.values {
            // SAFETY: the invariant; `&self` excludes a `&mut T`.
            list.entry(unsafe { value.as_ref() });
        }
        list.finish()
    }
}
