//! [`Batch`]: allocations, frees and stores of any size, published together
//! in one failure-atomic step by the batch log of the [`redo`](crate::redo)
//! protocol.

use std::panic::Location;

use super::Pool;
use crate::error::{Error, Expected, Result};
use crate::format::batch::{BLOCK_ENTRY_LEN, Entry, store_entry_len};
use crate::heap::reserve::Reservation;
use crate::medium::{FileMedium, Medium};
use crate::persist::{Persist, Tracer};
use crate::pptr::{PPtr, PSlice};
use crate::redo::batch::{BatchChanges, HeldAlloc, block_changes, extent_needed, publish};
use crate::resolve::{Access, placement};

/// What a batch has gathered; kept by the pool between batches so that a
/// batch allocates nothing once the vectors have grown.
#[derive(Debug, Default)]
pub(super) struct BatchParts {
    /// Blocks reserved and held, with their value lengths.
    allocs: Vec<HeldAlloc>,
    /// Whether each of `allocs` was lent out (`get_mut`) since it was
    /// written, and needs flushing at publish.
    lent: Vec<bool>,
    /// Allocated blocks to free.
    frees: Vec<Reservation>,
    /// Store entries, encoded.
    stores: Vec<u8>,
    /// Each store's (dest, len), for the checks.
    store_ranges: Vec<(u64, u64)>,
    /// Offsets the stored values point to.
    stored_targets: Vec<u64>,
    /// Held space for a log too long for the first page.
    extent: Option<Reservation>,
    /// Scratch for the log at publish.
    log: Vec<u8>,
    /// Scratch for tracing stored values.
    tracer: Tracer,
}

impl BatchParts {
    fn changes(&self) -> BatchChanges<'_> {
        BatchChanges {
            allocs: &self.allocs,
            frees: &self.frees,
            stores: &self.stores,
            extent: self.extent,
        }
    }

    fn clear(&mut self) {
        self.allocs.clear();
        self.lent.clear();
        self.frees.clear();
        self.stores.clear();
        self.store_ranges.clear();
        self.stored_targets.clear();
        self.extent = None;
    }
}

/// Allocations, frees and stores gathered and then published in one
/// failure-atomic step: after a crash, all of them happened or none did.
/// Made by [`Pool::batch`].
///
/// - [`alloc`](Self::alloc) and its slice forms reserve a block and write
///   its value; nothing durable names it yet. Reserved objects can be read
///   and written freely ([`get`](Self::get), [`get_mut`](Self::get_mut)):
///   they are flushed once, at publish.
/// - [`set`](Self::set) defers a store of any size into the root or an
///   allocated block (a store into a reserved block is written at once).
/// - [`free`](Self::free) and [`free_slice`](Self::free_slice) defer a free.
/// - [`publish`](Self::publish) makes all of it durable with two fences,
///   whatever the batch holds. Dropping the batch (or
///   [`cancel`](Self::cancel)) releases its reservations: nothing happened.
///
/// A batch holds any number of entries up to the pool's space: a log too
/// long for the pool's first page continues in heap space the batch holds
/// (never allocated), and an entry that finds no room is refused with
/// [`Error::OutOfSpace`] before anything is written.
///
/// # Examples
///
/// Two nodes allocated and linked, a 16-byte slice replaced and the old one
/// freed, in one step:
///
/// ```
/// use pmem_typed::{PPtr, PSlice, Persist, Pool};
///
/// #[derive(Clone, Copy, Persist)]
/// #[repr(C)]
/// struct Root { head: PPtr<Node>, items: PSlice<u64> }
///
/// #[derive(Clone, Copy, Persist)]
/// #[repr(C)]
/// struct Node { key: u64, next: PPtr<Node> }
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("batch.pool");
/// {
///     let mut pool = Pool::<Root>::create(&path, "batch", 1 << 20)?;
///     let root = pool.root().fields();
///     let old_items = pool.alloc_slice(root.items, &[1, 2])?;
///
///     let mut batch = pool.batch();
///     let second = batch.alloc(Node { key: 2, next: PPtr::null() })?; // not yet reachable
///     let first = batch.alloc(Node { key: 1, next: second })?;
///     batch.get_mut(second)?.key += 10; // reserved objects are written freely
///     let items = batch.alloc_slice(&[1, 2, 3])?;
///     batch.set(root.head, first)?;
///     batch.set(root.items, items)?; // 16 bytes, never torn
///     batch.free_slice(old_items)?;
///     batch.publish(); // all of it, or (after a crash) none
/// }
/// let pool = Pool::<Root>::open(&path, "batch")?;
/// let root = pool.get(pool.root())?;
/// let first = pool.get(root.head)?;
/// assert_eq!((first.key, pool.get(first.next)?.key), (1, 12));
/// assert_eq!(pool.get_slice(root.items)?, [1, 2, 3]);
/// assert!(pool.check().is_consistent());
/// # Ok(()) }
/// ```
#[must_use = "a batch does nothing until it is published"]
pub struct Batch<'p, R: Persist, M: Medium = FileMedium> {
    pool: &'p mut Pool<R, M>,
    parts: BatchParts,
}

impl<R: Persist, M: Medium> std::fmt::Debug for Batch<'_, R, M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batch")
            .field("allocs", &self.parts.allocs.len())
            .field("frees", &self.parts.frees.len())
            .field("stores", &self.parts.store_ranges.len())
            .finish_non_exhaustive()
    }
}

impl<R: Persist, M: Medium> Pool<R, M> {
    /// Starts a [`Batch`]: allocations, frees and stores published together
    /// in one failure-atomic step.
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_typed::{PPtr, Persist, Pool};
    /// use pmem_typed::sim::SimMedium;
    ///
    /// #[derive(Clone, Copy, Persist)]
    /// #[repr(C)]
    /// struct Root { a: PPtr<u64>, b: PPtr<u64> }
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let empty = Root { a: PPtr::null(), b: PPtr::null() };
    /// let mut pool = Pool::create_on(SimMedium::new(1 << 20, 1 << 20), "pair", empty)?;
    /// let root = pool.root().fields();
    /// let mut batch = pool.batch();
    /// let (a, b) = (batch.alloc(1)?, batch.alloc(2)?);
    /// batch.set(root.a, a)?;
    /// batch.set(root.b, b)?;
    /// batch.publish(); // both published, or neither
    /// assert_eq!(*pool.get(pool.get(pool.root())?.b)?, 2);
    ///
    /// let mut batch = pool.batch();
    /// batch.alloc(3u64)?;
    /// batch.cancel(); // or drop it: the reservation is released
    /// assert_eq!(pool.allocated_blocks().len(), 2);
    /// # Ok(()) }
    /// ```
    #[track_caller]
    pub fn batch(&mut self) -> Batch<'_, R, M> {
        self.medium.note("Pool::batch", Location::caller());
        let parts = std::mem::take(&mut self.batch_parts);
        Batch { pool: self, parts }
    }

    /// Stores `bytes` at the resolved `offset` through a batch of one
    /// store: failure-atomic at any size, with two fences.
    pub(super) fn store_atomically(&mut self, offset: usize, bytes: &[u8]) -> Result<()> {
        let mut batch = self.batch();
        batch.log_store(offset as u64, bytes)?;
        batch.publish();
        Ok(())
    }
}

impl<R: Persist, M: Medium> Batch<'_, R, M> {
    /// Reserves a block for a `T` holding `value`. It is allocated, and
    /// the pointer means something to a later run of the program, only
    /// once the batch is published and the pointer stored somewhere
    /// reachable ([`set`](Self::set)).
    ///
    /// # Errors
    /// [`Error::OutOfSpace`]: the batch is unchanged.
    ///
    /// # Examples
    ///
    /// ```
    /// # use pmem_typed::{PPtr, Persist, Pool};
    /// # use pmem_typed::sim::SimMedium;
    /// # #[derive(Clone, Copy, Persist)] #[repr(C)] struct Root { point: PPtr<[u64; 2]> }
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let mut pool = Pool::create_on(SimMedium::new(1 << 20, 1 << 20), "p", Root { point: PPtr::null() })?;
    /// let dest = pool.root().fields().point;
    /// let mut batch = pool.batch();
    /// let point = batch.alloc([3u64, 4])?;
    /// assert_eq!(*batch.get(point)?, [3, 4]);
    /// batch.set(dest, point)?;
    /// batch.publish();
    /// assert_eq!(pool.get(pool.root())?.point, point);
    /// # Ok(()) }
    /// ```
    #[track_caller]
    pub fn alloc<T: Persist>(&mut self, value: T) -> Result<PPtr<T>> {
        let bytes = bytemuck::bytes_of(&value);
        let block = self.reserve(size_of::<T>(), align_of::<T>(), Some(bytes))?;
        Ok(PPtr::from_offset(block))
    }

    /// Reserves a slice holding `values`; no values reserve nothing and give
    /// [`PSlice::empty`].
    ///
    /// # Errors
    /// As for [`alloc`](Self::alloc).
    ///
    /// # Examples
    ///
    /// ```
    /// # use pmem_typed::{PSlice, Persist, Pool};
    /// # use pmem_typed::sim::SimMedium;
    /// # #[derive(Clone, Copy, Persist)] #[repr(C)] struct Root { primes: PSlice<u32> }
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let mut pool = Pool::create_on(SimMedium::new(1 << 20, 1 << 20), "p", Root { primes: PSlice::empty() })?;
    /// let dest = pool.root().fields().primes;
    /// let mut batch = pool.batch();
    /// let primes = batch.alloc_slice(&[2u32, 3, 5, 7])?;
    /// batch.get_slice_mut(primes)?.reverse();
    /// batch.set(dest, primes)?;
    /// batch.publish();
    /// assert_eq!(pool.get_slice(primes)?, [7, 5, 3, 2]);
    /// # Ok(()) }
    /// ```
    #[track_caller]
    pub fn alloc_slice<T: Persist>(&mut self, values: &[T]) -> Result<PSlice<T>> {
        if values.is_empty() {
            return Ok(PSlice::empty());
        }
        let bytes: &[u8] = bytemuck::cast_slice(values);
        let block = self.reserve(bytes.len(), align_of::<T>(), Some(bytes))?;
        Ok(PSlice::from_raw_parts(block, values.len() as u64))
    }

    /// Reserves a slice of `len` zeroed elements; a length of 0 reserves
    /// nothing and gives [`PSlice::empty`].
    ///
    /// # Errors
    /// As for [`alloc`](Self::alloc); [`Error::InvalidArgument`] for a
    /// slice of more than `u32::MAX` bytes.
    ///
    /// # Examples
    ///
    /// ```
    /// # use pmem_typed::{PSlice, Persist, Pool};
    /// # use pmem_typed::sim::SimMedium;
    /// # #[derive(Clone, Copy, Persist)] #[repr(C)] struct Root { counts: PSlice<u64> }
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let mut pool = Pool::create_on(SimMedium::new(1 << 20, 1 << 20), "p", Root { counts: PSlice::empty() })?;
    /// let dest = pool.root().fields().counts;
    /// let mut batch = pool.batch();
    /// let counts = batch.alloc_slice_zeroed::<u64>(100)?;
    /// batch.get_slice_mut(counts)?[7] = 1;
    /// batch.set(dest, counts)?;
    /// batch.publish();
    /// assert_eq!(pool.get_slice(counts)?.iter().sum::<u64>(), 1);
    /// # Ok(()) }
    /// ```
    #[track_caller]
    pub fn alloc_slice_zeroed<T: Persist>(&mut self, len: u64) -> Result<PSlice<T>> {
        if len == 0 {
            return Ok(PSlice::empty());
        }
        let bytes = len
            .checked_mul(size_of::<T>() as u64)
            .and_then(|b| usize::try_from(b).ok())
            .ok_or(Error::InvalidArgument {
                argument: "len",
                found: len,
                expected: Expected::AtMost(u64::from(u32::MAX) / size_of::<T>().max(1) as u64),
            })?;
        let block = self.reserve(bytes, align_of::<T>(), None)?;
        Ok(PSlice::from_raw_parts(block, len))
    }

    /// Reserves and holds a block of `size` bytes and writes its value
    /// (`None`: zeros), returning its offset.
    fn reserve(&mut self, size: usize, align: usize, value: Option<&[u8]>) -> Result<u64> {
        let value_len = u32::try_from(size).map_err(|_| Error::InvalidArgument {
            argument: "size",
            found: size as u64,
            expected: Expected::AtMost(u64::from(u32::MAX)),
        })?;
        self.make_log_room(BLOCK_ENTRY_LEN)?;
        let pool = &mut *self.pool;
        let block = pool.heap.reserve(&pool.medium, size, align)?;
        pool.heap.hold(block);
        // SAFETY: the block is free and inside the pool; the batch holds the
        // pool's exclusive borrow, so nothing references it.
        unsafe {
            match value {
                Some(bytes) => pool.medium.write(block.offset as usize, bytes, false),
                None => pool.medium.fill(block.offset as usize, 0, size, false),
            }
        }
        self.parts.allocs.push(HeldAlloc { block, value_len });
        self.parts.lent.push(false);
        Ok(block.offset)
    }

    /// Holds extent space for `more` bytes of entries beyond those logged,
    /// if the log no longer fits the first page.
    fn make_log_room(&mut self, more: usize) -> Result<()> {
        let needed = extent_needed(self.parts.changes().entry_bytes() + more);
        let held = self.parts.extent.map_or(0, |e| e.size as usize);
        if needed <= held {
            return Ok(());
        }
        // Doubling: a long batch moves its extent O(log n) times.
        let size = needed.max(2 * held).next_power_of_two();
        let pool = &mut *self.pool;
        let extent = pool.heap.reserve(&pool.medium, size, 8)?;
        pool.heap.hold(extent);
        if let Some(old) = self.parts.extent.replace(extent) {
            pool.heap.release(old);
        }
        Ok(())
    }

    /// The index of the reserved block holding `len` bytes at `offset`.
    fn reserved_holding(&self, offset: u64, len: u64) -> Option<usize> {
        self.parts
            .allocs
            .iter()
            .position(|a| a.block.offset <= offset && offset + len <= a.block.offset + a.block.size)
    }

    /// The root object, as [`Pool::root`].
    #[must_use]
    pub fn root(&self) -> PPtr<R> {
        self.pool.root()
    }

    /// The `T` at `ptr`, reserved in this batch or not, as [`Pool::get`]
    /// reads it.
    ///
    /// # Errors
    /// [`Error::BadPointer`].
    pub fn get<T: Persist>(&self, ptr: PPtr<T>) -> Result<&T> {
        self.pool.get(ptr)
    }

    /// The elements of `slice`, as [`Pool::get_slice`] reads them.
    ///
    /// # Errors
    /// [`Error::BadPointer`].
    pub fn get_slice<T: Persist>(&self, slice: PSlice<T>) -> Result<&[T]> {
        self.pool.get_slice(slice)
    }

    /// The `T` at `ptr`, which this batch reserved, to write freely: it is
    /// flushed at publish, and nothing durable names it before then.
    ///
    /// # Errors
    /// [`Error::NotReserved`] if `ptr` is not inside a block this batch
    /// reserved; [`Error::BadPointer`].
    ///
    /// # Examples
    ///
    /// ```
    /// # use pmem_typed::{Error, PPtr, Persist, Pool};
    /// # use pmem_typed::sim::SimMedium;
    /// # #[derive(Clone, Copy, Persist)] #[repr(C)] struct Root { n: PPtr<u64> }
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let mut pool = Pool::create_on(SimMedium::new(1 << 20, 1 << 20), "p", Root { n: PPtr::null() })?;
    /// let root = pool.root();
    /// let mut batch = pool.batch();
    /// let n = batch.alloc(1u64)?;
    /// *batch.get_mut(n)? *= 42;
    /// // The root is not reserved: it changes through `set`, at publish.
    /// assert!(matches!(batch.get_mut(root), Err(Error::NotReserved { .. })));
    /// # Ok(()) }
    /// ```
    #[track_caller]
    pub fn get_mut<T: Persist>(&mut self, ptr: PPtr<T>) -> Result<&mut T> {
        let offset = self.pool.resolve_object::<T>(ptr.offset(), Access::Write)?;
        let (size, _) = placement::<T>();
        let index = self
            .reserved_holding(offset as u64, size)
            .ok_or(Error::NotReserved {
                offset: offset as u64,
            })?;
        self.parts.lent[index] = true;
        let medium = &self.pool.medium;
        medium.note("Batch::get_mut", Location::caller());
        medium.lend_mut(offset, size as usize);
        // SAFETY: a valid `T` (any bytes are: `T: Pod`), in bounds and
        // aligned (resolved), in a block this batch holds: nothing durable
        // names it and the batch holds the pool's exclusive borrow, so no
        // other reference reaches it while this one (borrowing the batch
        // mutably) lives.
        Ok(unsafe { &mut *medium.base().add(offset).cast::<T>() })
    }

    /// The elements of `slice`, which this batch reserved, to write freely.
    ///
    /// # Errors
    /// As for [`get_mut`](Self::get_mut).
    #[track_caller]
    pub fn get_slice_mut<T: Persist>(&mut self, slice: PSlice<T>) -> Result<&mut [T]> {
        let (offset, bytes) = self.pool.resolve_slice(slice, Access::Write)?;
        if slice.is_empty() {
            return Ok(&mut []);
        }
        let index =
            self.reserved_holding(offset as u64, bytes as u64)
                .ok_or(Error::NotReserved {
                    offset: offset as u64,
                })?;
        self.parts.lent[index] = true;
        let medium = &self.pool.medium;
        medium.note("Batch::get_slice_mut", Location::caller());
        medium.lend_mut(offset, bytes);
        // SAFETY: as in `get_mut`, for `slice.len()` elements in the block.
        Ok(unsafe {
            std::slice::from_raw_parts_mut(
                medium.base().add(offset).cast::<T>(),
                slice.len() as usize,
            )
        })
    }

    /// Stores `value` at `dest` when the batch is published: failure-
    /// atomically with the rest of the batch, whatever its size (a 16-byte
    /// [`PSlice`] is never torn). `dest` is in the root's pages or in an
    /// allocated block; a `dest` inside a block this batch reserved is
    /// written at once instead, as part of that block's value.
    ///
    /// # Errors
    /// [`Error::BadPointer`] for `dest`; [`Error::NotAllocated`] if it is
    /// in no allocated or reserved block; [`Error::FreedInBatch`] if `dest`
    /// is in, or `value` points to, a block this batch frees;
    /// [`Error::OutOfSpace`] if the log has no room left.
    ///
    /// # Examples
    ///
    /// ```
    /// # use pmem_typed::{PSlice, Persist, Pool};
    /// # use pmem_typed::sim::SimMedium;
    /// # #[derive(Clone, Copy, Persist)] #[repr(C)] struct Root { name: PSlice<u8>, len: u64 }
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let mut pool = Pool::create_on(SimMedium::new(1 << 20, 1 << 20), "p", Root { name: PSlice::empty(), len: 0 })?;
    /// let root = pool.root();
    /// let mut batch = pool.batch();
    /// let name = batch.alloc_slice(b"ada")?;
    /// // The whole root, 24 bytes, in one step with the allocation.
    /// batch.set(root, Root { name, len: 3 })?;
    /// batch.publish();
    /// assert_eq!(pool.get_slice(pool.get(root)?.name)?, b"ada");
    /// # Ok(()) }
    /// ```
    #[track_caller]
    pub fn set<T: Persist>(&mut self, dest: PPtr<T>, value: T) -> Result<()> {
        self.pool.medium.note("Batch::set", Location::caller());
        let offset = self
            .pool
            .resolve_object::<T>(dest.offset(), Access::Write)? as u64;
        let bytes = bytemuck::bytes_of(&value);
        let mut tracer = std::mem::take(&mut self.parts.tracer);
        tracer.pending.clear();
        value.trace(&mut tracer);
        let freed = tracer
            .pending
            .iter()
            .find(|v| self.freed_block_holding(v.offset).is_some());
        let targets = tracer.pending.iter().map(|v| v.offset);
        let result = match freed {
            Some(visit) => Err(Error::FreedInBatch {
                offset: visit.offset,
            }),
            None => self.store(offset, bytes, targets),
        };
        self.parts.tracer = tracer;
        result
    }

    /// [`set`](Self::set) once the value's pointers are checked: `targets`.
    fn store(
        &mut self,
        offset: u64,
        bytes: &[u8],
        targets: impl Iterator<Item = u64>,
    ) -> Result<()> {
        let len = bytes.len() as u64;
        if self.reserved_holding(offset, len).is_some() {
            let medium = &self.pool.medium;
            // SAFETY: in bounds (resolved), in a block this batch holds, which
            // nothing references (the batch holds the pool exclusively).
            unsafe { medium.write(offset as usize, bytes, false) };
            self.parts.stored_targets.extend(targets);
            return Ok(());
        }
        if offset >= self.pool.info.heap_offset {
            if self.freed_block_holding(offset).is_some() {
                return Err(Error::FreedInBatch { offset });
            }
            let pool = &*self.pool;
            if pool
                .heap
                .block_containing(&pool.medium, offset, len)
                .is_none()
            {
                return Err(Error::NotAllocated { offset });
            }
        }
        self.log_store(offset, bytes)?;
        self.parts.stored_targets.extend(targets);
        Ok(())
    }

    /// Logs a store of `bytes` at the resolved `offset`.
    fn log_store(&mut self, offset: u64, bytes: &[u8]) -> Result<()> {
        if bytes.is_empty() {
            return Ok(());
        }
        if u32::try_from(bytes.len()).is_err() {
            return Err(Error::InvalidArgument {
                argument: "value",
                found: bytes.len() as u64,
                expected: Expected::AtMost(u64::from(u32::MAX)),
            });
        }
        self.make_log_room(store_entry_len(bytes.len()))?;
        Entry::Store {
            dest: offset,
            bytes,
        }
        .encode(&mut self.parts.stores);
        self.parts.store_ranges.push((offset, bytes.len() as u64));
        Ok(())
    }

    /// The block this batch frees that holds `offset`.
    fn freed_block_holding(&self, offset: u64) -> Option<Reservation> {
        self.parts
            .frees
            .iter()
            .copied()
            .find(|f| f.offset <= offset && offset < f.offset + f.size)
    }

    /// Frees the allocated object at `ptr` when the batch is published
    /// (null: nothing). Unlink it in the same batch ([`set`](Self::set)).
    ///
    /// # Errors
    /// [`Error::NotAllocated`] if `ptr` is not an allocated block (a block
    /// this batch reserved is not allocated yet), or this batch frees it
    /// already; [`Error::FreedInBatch`] if this batch stores into it or a
    /// pointer to it; [`Error::OutOfSpace`] if the log has no room left.
    ///
    /// # Examples
    ///
    /// Replacing an object: the new one published and the old one freed
    /// together.
    ///
    /// ```
    /// # use pmem_typed::{PPtr, Persist, Pool};
    /// # use pmem_typed::sim::SimMedium;
    /// # #[derive(Clone, Copy, Persist)] #[repr(C)] struct Root { config: PPtr<[u64; 4]> }
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let mut pool = Pool::create_on(SimMedium::new(1 << 20, 1 << 20), "p", Root { config: PPtr::null() })?;
    /// let dest = pool.root().fields().config;
    /// let old = pool.alloc(dest, [1, 2, 3, 4])?;
    /// let mut batch = pool.batch();
    /// let new = batch.alloc([5, 6, 7, 8])?;
    /// batch.set(dest, new)?;
    /// batch.free(old)?;
    /// batch.publish();
    /// assert_eq!(pool.allocated_blocks(), [(new.offset(), 64)]);
    /// # Ok(()) }
    /// ```
    #[track_caller]
    pub fn free<T: Persist>(&mut self, ptr: PPtr<T>) -> Result<()> {
        self.defer_free(ptr.offset())
    }

    /// Frees the allocated slice `slice` when the batch is published (one
    /// at offset 0, the empty slice: nothing).
    ///
    /// # Errors
    /// As for [`free`](Self::free).
    #[track_caller]
    pub fn free_slice<T: Persist>(&mut self, slice: PSlice<T>) -> Result<()> {
        self.defer_free(slice.offset())
    }

    fn defer_free(&mut self, offset: u64) -> Result<()> {
        if offset == 0 {
            return Ok(());
        }
        let pool = &*self.pool;
        let (block, size) = pool.heap.allocated_block(&pool.medium, offset)?;
        if self.freed_block_holding(block).is_some() {
            return Err(Error::NotAllocated { offset });
        }
        let inside = |at: u64, len: u64| at < block + size && block < at + len;
        if let Some(&(dest, _)) = self
            .parts
            .store_ranges
            .iter()
            .find(|&&(at, len)| inside(at, len))
        {
            return Err(Error::FreedInBatch { offset: dest });
        }
        if let Some(&target) = self.parts.stored_targets.iter().find(|&&t| inside(t, 1)) {
            return Err(Error::FreedInBatch { offset: target });
        }
        self.make_log_room(BLOCK_ENTRY_LEN)?;
        self.parts.frees.push(Reservation {
            offset: block,
            size,
        });
        Ok(())
    }

    /// Publishes the batch: its allocations, frees and stores become
    /// durable in one failure-atomic step, with two fences whatever it
    /// holds (none if it is empty).
    ///
    /// # Examples
    ///
    /// See [`Batch`].
    #[track_caller]
    pub fn publish(mut self) {
        let pool = &mut *self.pool;
        pool.medium.note("Batch::publish", Location::caller());
        if self.parts.changes().is_empty() {
            return;
        }
        for (alloc, lent) in self.parts.allocs.iter().zip(&self.parts.lent) {
            if *lent {
                pool.medium
                    .flush(alloc.block.offset as usize, alloc.value_len as usize);
            }
        }
        let seq = pool.redo.take_seq();
        let mut log = std::mem::take(&mut self.parts.log);
        // SAFETY: the allocs and the extent were reserved from this heap
        // and are held, the frees are allocated blocks (`allocated_block`),
        // and the extent holds the log (`make_log_room`); every store was
        // resolved for writing and lies outside the batch's blocks (stores
        // into reserved blocks were written directly, into freed ones
        // refused) and the extent (held, so in no allocated block); the
        // batch holds the pool exclusively.
        unsafe {
            publish(
                &pool.medium,
                &pool.heap,
                seq,
                &self.parts.changes(),
                &mut log,
            )
        };
        self.parts.log = log;
        for change in block_changes(&self.parts.changes()) {
            pool.heap.note_applied(&change);
        }
        for alloc in self.parts.allocs.drain(..) {
            pool.heap.release(alloc.block);
        }
    }

    /// Gives the batch up: its reservations are released, and nothing it
    /// gathered happens. Dropping it does the same.
    pub fn cancel(self) {}
}

impl<R: Persist, M: Medium> Drop for Batch<'_, R, M> {
    fn drop(&mut self) {
        let heap = &mut self.pool.heap;
        for alloc in self.parts.allocs.drain(..) {
            heap.release(alloc.block);
        }
        if let Some(extent) = self.parts.extent.take() {
            heap.release(extent);
        }
        self.parts.clear();
        self.pool.batch_parts = std::mem::take(&mut self.parts);
    }
}

#[cfg(test)]
mod tests {
    use crate::format::batch::INLINE_BYTES;
    use crate::sim::SimMedium;
    use crate::{PPtr, Pool};

    fn pool() -> Pool<[u64; 4], SimMedium> {
        Pool::create_on(SimMedium::new(1 << 20, 1 << 20), "batch", [0; 4]).unwrap()
    }

    #[test]
    fn a_held_block_is_not_handed_out_twice() {
        let mut pool = pool();
        let mut batch = pool.batch();
        let blocks: Vec<PPtr<u64>> = (0..300).map(|i| batch.alloc(i).unwrap()).collect();
        let mut offsets: Vec<u64> = blocks.iter().map(|b| b.offset()).collect();
        offsets.sort_unstable();
        offsets.dedup();
        assert_eq!(offsets.len(), 300);
        for (i, b) in blocks.iter().enumerate() {
            assert_eq!(*batch.get(*b).unwrap(), i as u64);
        }
    }

    #[test]
    fn publish_cancel_and_drop_leave_nothing_held() {
        let mut pool = pool();
        let mut batch = pool.batch();
        batch.alloc(1u64).unwrap();
        batch.cancel();
        assert!(!pool.heap.holds_any());
        {
            let mut batch = pool.batch();
            batch.alloc_slice_zeroed::<u8>(100_000).unwrap();
        }
        assert!(!pool.heap.holds_any());
        let mut batch = pool.batch();
        for i in 0..200 {
            // Past the first page: the log holds an extent.
            batch.alloc(i as u64).unwrap();
        }
        assert!(batch.parts.changes().entry_bytes() > INLINE_BYTES);
        assert!(batch.parts.extent.is_some());
        batch.publish();
        assert!(!pool.heap.holds_any());
        assert_eq!(pool.allocated_blocks().len(), 200);
        // Allocated, though no pointer was stored to reach them.
        let report = pool.check();
        assert_eq!((report.leaked.len(), report.problems.len()), (200, 0));
        let medium = pool.into_medium();
        Pool::<[u64; 4], _>::open_on(medium, "batch").unwrap();
    }
}
