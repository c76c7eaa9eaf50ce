//! Allocating and freeing: the pool-level operations that choose a block
//! in the [`heap`](crate::heap) and make the change failure-atomic with the
//! [`redo`](crate::redo) protocol.

use std::panic::Location;

use zerocopy::FromZeros;

use super::Pool;
use crate::error::{Error, Expected, Result};
use crate::medium::read;

use crate::format::redo::{RedoKind, RedoRecord};
use crate::heap::reserve::Reservation;
use crate::medium::Medium;
use crate::persist::Persist;
use crate::pptr::{PPtr, PSlice};
use crate::resolve::Access;

impl<R: Persist, M: Medium> Pool<R, M> {
    /// Allocates a `T` holding `value` and publishes it into `*dest`, failure-
    /// atomically: after a crash, either both happened or neither did. The
    /// value is durable before the pointer is. Whatever `*dest` held before
    /// is overwritten (free it first if it owned a block).
    ///
    /// # Errors
    /// [`Error::OutOfSpace`]; [`Error::BadPointer`] for `dest`.
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_typed::{PPtr, Persist, Pool};
    ///
    /// #[derive(Clone, Copy, Persist)]
    /// #[repr(C)]
    /// struct Root { config: PPtr<Config> }
    ///
    /// #[derive(Clone, Copy, Persist)]
    /// #[repr(C)]
    /// struct Config { threads: u64, timeout_ms: u64 }
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// let path = dir.path().join("app.pool");
    /// {
    ///     let mut pool = Pool::<Root>::create(&path, "app", 1 << 20)?;
    ///     // Written, persisted and published into `config`: all or nothing.
    ///     let dest = pool.root().fields().config;
    ///     let config = pool.alloc(dest, Config { threads: 8, timeout_ms: 500 })?;
    ///     assert_eq!(pool.get(pool.root())?.config, config);
    /// }
    /// let pool = Pool::<Root>::open(&path, "app")?;
    /// let config = pool.get(pool.get(pool.root())?.config)?;
    /// assert_eq!((config.threads, config.timeout_ms), (8, 500));
    /// # Ok(()) }
    /// ```
    #[track_caller]
    pub fn alloc<T: Persist>(&mut self, dest: PPtr<PPtr<T>>, value: T) -> Result<PPtr<T>> {
        self.medium.note("Pool::alloc", Location::caller());
        let dest = self.resolve_object::<PPtr<T>>(dest.offset(), Access::Write)?;
        let bytes = bytemuck::bytes_of(&value);
        let block = self.alloc_block(
            size_of::<T>(),
            align_of::<T>(),
            Some(bytes),
            dest,
            |block| [block, 0],
            8,
        )?;
        Ok(PPtr::from_offset(block))
    }

    /// Allocates a slice holding `values` and publishes it into `*dest`,
    /// failure-atomically. No values allocate nothing: `*dest` becomes
    /// [`PSlice::empty`].
    ///
    /// # Errors
    /// As for [`alloc`](Self::alloc).
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_typed::{PSlice, Persist, Pool};
    ///
    /// #[derive(Clone, Copy, Persist)]
    /// #[repr(C)]
    /// struct Root { primes: PSlice<u64> }
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// let mut pool = Pool::<Root>::create(dir.path().join("primes.pool"), "primes", 1 << 20)?;
    /// let primes = pool.root().fields().primes;
    /// let first = pool.alloc_slice(primes, &[2, 3, 5])?;
    /// assert_eq!(pool.get_slice(first)?, [2, 3, 5]);
    /// // To replace it, free the old slice first: `alloc_slice` overwrites
    /// // `*dest`, and the old block would leak.
    /// pool.free_slice(primes)?;
    /// let more = pool.alloc_slice(primes, &[2, 3, 5, 7, 11])?;
    /// assert_eq!(pool.get(pool.root())?.primes, more);
    /// assert!(pool.check().is_consistent());
    /// # Ok(()) }
    /// ```
    #[track_caller]
    pub fn alloc_slice<T: Persist>(
        &mut self,
        dest: PPtr<PSlice<T>>,
        values: &[T],
    ) -> Result<PSlice<T>> {
        self.medium.note("Pool::alloc_slice", Location::caller());
        let dest = self.resolve_object::<PSlice<T>>(dest.offset(), Access::Write)?;
        let len = values.len() as u64;
        if len == 0 {
            self.publish_empty_slice(dest);
            return Ok(PSlice::empty());
        }
        let bytes: &[u8] = bytemuck::cast_slice(values);
        let block = self.alloc_block(
            bytes.len(),
            align_of::<T>(),
            Some(bytes),
            dest,
            |block| [block, len],
            16,
        )?;
        Ok(PSlice::from_raw_parts(block, len))
    }

    /// Allocates a slice of `len` zeroed elements and publishes it into `*dest`.
    /// A length of 0 allocates nothing: `*dest` becomes [`PSlice::empty`].
    ///
    /// # Errors
    /// As for [`alloc`](Self::alloc).
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_typed::{Error, PSlice, Persist, Pool};
    ///
    /// #[derive(Clone, Copy, Persist)]
    /// #[repr(C)]
    /// struct Root { histogram: PSlice<u64> }
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// let mut pool = Pool::<Root>::create(dir.path().join("hist.pool"), "hist", 1 << 20)?;
    /// let buckets = pool.root().fields().histogram;
    /// // Counters to fill in later: no initial values to copy.
    /// let histogram = pool.alloc_slice_zeroed(buckets, 10)?;
    /// assert_eq!(pool.get_slice(histogram)?, [0; 10]);
    /// for sample in [3, 7, 3] {
    ///     pool.get_slice_mut(histogram)?[sample] += 1;
    /// }
    /// assert_eq!(pool.get_slice(histogram)?[3], 2);
    /// // 8 MiB does not fit in a 1 MiB pool.
    /// let huge = pool.alloc_slice_zeroed(buckets, 1 << 20);
    /// assert!(matches!(huge, Err(Error::OutOfSpace { requested: 0x80_0000, .. })));
    /// # Ok(()) }
    /// ```
    #[track_caller]
    pub fn alloc_slice_zeroed<T: Persist>(
        &mut self,
        dest: PPtr<PSlice<T>>,
        len: u64,
    ) -> Result<PSlice<T>> {
        self.medium
            .note("Pool::alloc_slice_zeroed", Location::caller());
        let dest = self.resolve_object::<PSlice<T>>(dest.offset(), Access::Write)?;
        if len == 0 {
            self.publish_empty_slice(dest);
            return Ok(PSlice::empty());
        }
        let bytes = len
            .checked_mul(size_of::<T>() as u64)
            .and_then(|b| usize::try_from(b).ok())
            .ok_or_else(|| Error::InvalidArgument {
                argument: "len",
                found: len,
                expected: Expected::AtMost(usize::MAX as u64 / size_of::<T>().max(1) as u64),
            })?;
        let block =
            self.alloc_block(bytes, align_of::<T>(), None, dest, |block| [block, len], 16)?;
        Ok(PSlice::from_raw_parts(block, len))
    }

    /// Makes the slice at `dest` (16 resolved bytes) empty. The length goes
    /// first: a crash leaves the old slice, an empty one still naming the old
    /// block (it owns it, as [`free_slice`](Self::free_slice) and
    /// [`check`](Self::check) agree), or the empty slice.
    fn publish_empty_slice(&mut self, dest: usize) {
        // SAFETY: `dest` resolved to 16 in-bounds, 8-aligned bytes; `&mut self`
        // excludes references to them.
        unsafe { self.medium.store_u64(dest + 8, 0) };
        self.medium.persist(dest + 8, 8);
        // SAFETY: as above.
        unsafe { self.medium.store_u64(dest, 0) };
        self.medium.persist(dest, 8);
    }

    /// The allocation protocol (see [`redo`](crate::redo)): value and redo
    /// record, fence; apply, fence; clear the record, fence.
    fn alloc_block(
        &mut self,
        size: usize,
        align: usize,
        value: Option<&[u8]>,
        dest: usize,
        dest_value: impl FnOnce(u64) -> [u64; 2],
        dest_len: u32,
    ) -> Result<u64> {
        let Reservation {
            offset: block,
            size: block_size,
        } = self.heap.reserve(&self.medium, size, align)?;
        if (dest as u64) < block + block_size && block < dest as u64 + u64::from(dest_len) {
            return Err(Error::InvalidArgument {
                argument: "dest",
                found: dest as u64,
                expected: Expected::OutsideItsBlock,
            });
        }
        let value_crc = match value {
            // SAFETY: the block is free and inside the pool; nothing references it.
            Some(bytes) => unsafe {
                self.medium.write(block as usize, bytes, false);
                crc32fast::hash(bytes)
            },
            None => {
                // SAFETY: as above.
                unsafe { self.medium.fill(block as usize, 0, size, false) };
                zeros_crc(size)
            }
        };
        let record = RedoRecord {
            kind: RedoKind::Alloc,
            dest_len: dest_len.into(),
            block: block.into(),
            block_size: block_size.into(),
            dest: (dest as u64).into(),
            dest_value: dest_value(block).map(Into::into),
            value_crc: value_crc.into(),
            value_len: (size as u32).into(),
            ..RedoRecord::new_zeroed()
        };
        // SAFETY: the block was reserved from this heap, `dest` was resolved
        // for writing and lies outside it (checked above), and `&mut self`
        // excludes any reference into the pool.
        unsafe { self.redo.run(&self.medium, &mut self.heap, record) };
        Ok(block)
    }

    /// Frees the object `*dest` points to and nulls `*dest`, failure-atomically.
    /// Freeing a null pointer does nothing.
    ///
    /// # Errors
    /// [`Error::NotAllocated`] if `*dest` is not an allocated block;
    /// [`Error::BadPointer`] for `dest`.
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_typed::{Error, PPtr, Persist, Pool};
    ///
    /// #[derive(Clone, Copy, Persist)]
    /// #[repr(C)]
    /// struct Root { current: PPtr<Session>, cached: PPtr<Session> }
    ///
    /// #[derive(Clone, Copy, Persist)]
    /// #[repr(C)]
    /// struct Session { user: u64, expires: u64 }
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// let mut pool = Pool::<Root>::create(dir.path().join("web.pool"), "web", 1 << 20)?;
    /// let root = pool.root().fields();
    /// let session = pool.alloc(root.current, Session { user: 7, expires: 3600 })?;
    /// pool.publish(root.cached, session)?; // a second pointer to the same block
    ///
    /// pool.free(root.current)?; // unpublished and freed together
    /// assert!(pool.get(pool.root())?.current.is_null());
    /// pool.free(root.current)?; // freeing null does nothing
    /// // `cached` still points to the freed block: freeing it again is refused.
    /// assert!(matches!(pool.free(root.cached), Err(Error::NotAllocated { .. })));
    /// # Ok(()) }
    /// ```
    #[track_caller]
    pub fn free<T: Persist>(&mut self, dest: PPtr<PPtr<T>>) -> Result<()> {
        self.medium.note("Pool::free", Location::caller());
        self.free_and_publish_inner(dest, PPtr::null())
    }

    /// Frees the object `*dest` points to and stores `replacement` into
    /// `*dest`, failure-atomically: unlinking a node and freeing it in one
    /// step, where `free` then `publish` would leave a moment in which what
    /// follows the node is unreachable.
    ///
    /// # Errors
    /// As for [`free`](Self::free).
    ///
    /// # Examples
    ///
    /// ```
    /// # use pmem_typed::{PPtr, Persist, Pool};
    /// # #[derive(Clone, Copy, Persist)] #[repr(C)] struct Root { head: PPtr<Node> }
    /// # #[derive(Clone, Copy, Persist)] #[repr(C)] struct Node { value: u64, next: PPtr<Node> }
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # let mut pool = Pool::<Root>::create(dir.path().join("p"), "stack", 1 << 20)?;
    /// # let head = pool.root().fields().head;
    /// # pool.alloc(head, Node { value: 1, next: PPtr::null() })?;
    /// # let first = pool.get(pool.root())?.head;
    /// # pool.alloc(head, Node { value: 2, next: first })?;
    /// // Pop the top of a stack.
    /// let top = pool.get(pool.root())?.head;
    /// let next = pool.get(top)?.next;
    /// pool.free_and_publish(head, next)?;
    /// assert_eq!(pool.get(pool.get(pool.root())?.head)?.value, 1);
    /// # Ok(()) }
    /// ```
    #[track_caller]
    pub fn free_and_publish<T: Persist>(
        &mut self,
        dest: PPtr<PPtr<T>>,
        replacement: PPtr<T>,
    ) -> Result<()> {
        self.medium
            .note("Pool::free_and_publish", Location::caller());
        self.free_and_publish_inner(dest, replacement)
    }

    fn free_and_publish_inner<T>(
        &mut self,
        dest: PPtr<PPtr<T>>,
        replacement: PPtr<T>,
    ) -> Result<()> {
        let dest = self.resolve_object::<PPtr<T>>(dest.offset(), Access::Write)?;
        // SAFETY: `dest` resolved to 8 in-bounds bytes.
        let target: u64 = unsafe { read(&self.medium, dest) };
        self.free_block(dest, target, 8, [replacement.offset(), 0])
    }

    /// Frees the slice `*dest` describes and empties `*dest`, failure-atomically.
    ///
    /// # Errors
    /// As for [`free`](Self::free).
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_typed::{PSlice, Persist, Pool};
    ///
    /// #[derive(Clone, Copy, Persist)]
    /// #[repr(C)]
    /// struct Root { buffer: PSlice<u64> }
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// let mut pool = Pool::<Root>::create(dir.path().join("buf.pool"), "buf", 1 << 20)?;
    /// let buffer = pool.root().fields().buffer;
    /// pool.alloc_slice_zeroed(buffer, 1000)?;
    /// assert_eq!(pool.allocated_blocks().len(), 1);
    /// // No crash can leave `buffer` describing freed memory.
    /// pool.free_slice(buffer)?;
    /// assert!(pool.get(pool.root())?.buffer.is_empty());
    /// assert!(pool.allocated_blocks().is_empty());
    /// # Ok(()) }
    /// ```
    #[track_caller]
    pub fn free_slice<T: Persist>(&mut self, dest: PPtr<PSlice<T>>) -> Result<()> {
        self.medium.note("Pool::free_slice", Location::caller());
        let dest = self.resolve_object::<PSlice<T>>(dest.offset(), Access::Write)?;
        // SAFETY: `dest` resolved to 16 in-bounds bytes.
        let target: u64 = unsafe { read(&self.medium, dest) };
        self.free_block(dest, target, 16, [0, 0])
    }

    fn free_block(
        &mut self,
        dest: usize,
        target: u64,
        dest_len: u32,
        dest_value: [u64; 2],
    ) -> Result<()> {
        if target == 0 {
            if dest_value != [0, 0] {
                // Nothing to free: publishing alone is one atomic store.
                // SAFETY: `dest` resolved to 8 in-bounds, aligned bytes; `&mut self` excludes references.
                unsafe { self.medium.store_u64(dest, dest_value[0]) };
                self.medium.persist(dest, 8);
            }
            return Ok(());
        }
        let (block, block_size) = self.heap.allocated_block(&self.medium, target)?;
        if (dest as u64) < block + block_size && block < dest as u64 + u64::from(dest_len) {
            return Err(Error::InvalidArgument {
                argument: "dest",
                found: dest as u64,
                expected: Expected::OutsideItsBlock,
            });
        }
        let record = RedoRecord {
            kind: RedoKind::Free,
            dest_len: dest_len.into(),
            block: block.into(),
            block_size: block_size.into(),
            dest: (dest as u64).into(),
            dest_value: dest_value.map(Into::into),
            ..RedoRecord::new_zeroed()
        };
        // SAFETY: the block is allocated in this heap (`allocated_block`),
        // `dest` was resolved for writing and lies outside it (checked
        // above), and `&mut self` excludes any reference into the pool.
        unsafe { self.redo.run(&self.medium, &mut self.heap, record) };
        Ok(())
    }

    /// Every allocated block as (offset, size), in address order.
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_typed::{PPtr, PSlice, Persist, Pool};
    ///
    /// #[derive(Clone, Copy, Persist)]
    /// #[repr(C)]
    /// struct Root { id: PPtr<u64>, names: PSlice<u64> }
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// let mut pool = Pool::<Root>::create(dir.path().join("blocks.pool"), "blocks", 1 << 20)?;
    /// let id = pool.alloc(pool.root().fields().id, 42)?;
    /// let names = pool.alloc_slice_zeroed(pool.root().fields().names, 100)?;
    /// // Block sizes are the size classes the requests rounded up to.
    /// let blocks = pool.allocated_blocks();
    /// assert!(blocks.contains(&(id.offset(), 64)));
    /// assert!(blocks.contains(&(names.offset(), 1024)));
    /// assert!(blocks.is_sorted());
    /// let total: u64 = blocks.iter().map(|&(_, size)| size).sum();
    /// assert_eq!(total, pool.stats().allocated_bytes);
    /// # Ok(()) }
    /// ```
    pub fn allocated_blocks(&self) -> Vec<(u64, u64)> {
        self.heap.allocated_blocks(&self.medium)
    }
}

fn zeros_crc(len: usize) -> u32 {
    let zeros = [0u8; 4096];
    let mut hasher = crc32fast::Hasher::new();
    let mut left = len;
    while left > 0 {
        let n = left.min(zeros.len());
        hasher.update(&zeros[..n]);
        left -= n;
    }
    hasher.finalize()
}
