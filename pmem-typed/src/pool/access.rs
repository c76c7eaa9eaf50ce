//! Reaching objects: resolving persistent pointers, reading them, and
//! writing them through guards or `set`.

use std::panic::Location;
use std::ptr::NonNull;

use super::Pool;
use crate::error::{Error, Expected, PointerProblem, Result};
use crate::medium::read;

use crate::guard::{DisjointGuard, Guard, Snapshot};
use crate::medium::Medium;
use crate::persist::Persist;
use crate::pptr::{PPtr, PSlice};
use crate::resolve::{Access, placement};

impl<R: Persist, M: Medium> Pool<R, M> {
    /// Checks that `size` bytes at `offset` with alignment `align` may be
    /// accessed as `access` says (see [`crate::resolve`]), returning the
    /// offset: past the header, in the pool, aligned, and for a write clear
    /// of the allocator's chunk tables, so that no pointer, however hostile,
    /// lets a write reach the allocator's metadata.
    #[inline]
    pub(super) fn resolve(
        &self,
        offset: u64,
        size: u64,
        align: u64,
        access: Access,
    ) -> Result<usize> {
        let checked = match access {
            Access::Read => self.user.check_read(offset, size, align),
            Access::Write => self.user.check_write(offset, size, align),
        };
        match checked {
            Ok(()) => Ok(offset as usize),
            Err(reason) => Err(Error::BadPointer {
                offset,
                size,
                reason,
            }),
        }
    }

    /// [`resolve`](Self::resolve) for one `T`.
    #[inline]
    pub(super) fn resolve_object<T>(&self, offset: u64, access: Access) -> Result<usize> {
        let (size, align) = placement::<T>();
        self.resolve(offset, size, align, access)
    }

    /// [`resolve`](Self::resolve) for the elements of `slice`: (offset,
    /// bytes); the empty slice resolves to (0, 0) wherever it points.
    pub(super) fn resolve_slice<T>(
        &self,
        slice: PSlice<T>,
        access: Access,
    ) -> Result<(usize, usize)> {
        if slice.is_empty() {
            return Ok((0, 0));
        }
        let bytes = slice.byte_len().ok_or(Error::BadPointer {
            offset: slice.offset(),
            size: u64::MAX,
            reason: PointerProblem::OutOfBounds {
                pool_size: self.info.size,
            },
        })?;
        Ok((
            self.resolve(slice.offset(), bytes, placement::<T>().1, access)?,
            bytes as usize,
        ))
    }

    /// The `T` that `ptr` points to.
    ///
    /// # Errors
    /// [`Error::BadPointer`] if `ptr` is null, out of bounds or misaligned.
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_typed::{Error, PPtr, Persist, PointerProblem, Pool};
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
    /// let dir = tempfile::tempdir()?;
    /// let mut pool = Pool::<Root>::create(dir.path().join("list.pool"), "list", 1 << 20)?;
    /// pool.alloc(pool.root().fields().head, Node { value: 1, next: PPtr::null() })?;
    /// let node: &Node = pool.get(pool.get(pool.root())?.head)?;
    /// assert_eq!(node.value, 1);
    /// // Every pointer is checked: following the end of the list is an error...
    /// let end = pool.get(node.next);
    /// assert!(matches!(end, Err(Error::BadPointer { reason: PointerProblem::Null, .. })));
    /// // ...and so is a corrupted pointer, never a wild read.
    /// let wild = pool.get(PPtr::<Node>::from_offset(1 << 30));
    /// let out_of_bounds = PointerProblem::OutOfBounds { pool_size: 1 << 20 };
    /// assert!(matches!(wild, Err(Error::BadPointer { reason, .. }) if reason == out_of_bounds));
    /// # Ok(()) }
    /// ```
    #[inline]
    pub fn get<T: Persist>(&self, ptr: PPtr<T>) -> Result<&T> {
        let offset = self.resolve_object::<T>(ptr.offset(), Access::Read)?;
        // SAFETY: in bounds and aligned (resolved); any bytes are a valid `T`
        // (Pod); writes need `&mut self`, which this shared borrow excludes.
        Ok(unsafe { &*self.medium.base().add(offset).cast::<T>() })
    }

    /// The elements of `slice` (empty for the empty slice).
    ///
    /// # Errors
    /// [`Error::BadPointer`] if the slice is not inside the pool or misaligned.
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_typed::{Error, PSlice, Persist, Pool};
    ///
    /// #[derive(Clone, Copy, Persist)]
    /// #[repr(C)]
    /// struct Root { readings: PSlice<u32> }
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// let mut pool = Pool::<Root>::create(dir.path().join("sensor.pool"), "sensor", 1 << 20)?;
    /// // Nothing allocated yet: the empty slice reads as no elements.
    /// assert!(pool.get_slice(pool.get(pool.root())?.readings)?.is_empty());
    ///
    /// let readings = pool.alloc_slice(pool.root().fields().readings, &[12, 15, 11])?;
    /// assert_eq!(pool.get_slice(readings)?.iter().max(), Some(&15));
    /// // A corrupted length that runs past the end of the pool is refused.
    /// let corrupted = PSlice::<u32>::from_raw_parts(readings.offset(), 1 << 40);
    /// assert!(matches!(pool.get_slice(corrupted), Err(Error::BadPointer { .. })));
    /// # Ok(()) }
    /// ```
    pub fn get_slice<T: Persist>(&self, slice: PSlice<T>) -> Result<&[T]> {
        let (offset, bytes) = self.resolve_slice(slice, Access::Read)?;
        if bytes == 0 {
            return Ok(&[]);
        }
        // SAFETY: as in `get`, for `slice.len()` consecutive `T`s.
        Ok(unsafe {
            std::slice::from_raw_parts(
                self.medium.base().add(offset).cast::<T>(),
                slice.len() as usize,
            )
        })
    }

    /// Write access to `*ptr`: the guard dereferences to `&mut T`, and when
    /// dropped (or [`persist`](Guard::persist)ed) flushes the cache lines that
    /// changed and fences once.
    ///
    /// # Errors
    /// [`Error::BadPointer`].
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_typed::{Error, PPtr, Persist, Pool};
    ///
    /// #[derive(Clone, Copy, Persist)]
    /// #[repr(C)]
    /// struct Root { player: PPtr<Player> }
    ///
    /// #[derive(Clone, Copy, Persist)]
    /// #[repr(C)]
    /// struct Player { x: u64, y: u64, moves: u64 }
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// let mut pool = Pool::<Root>::create(dir.path().join("game.pool"), "game", 1 << 20)?;
    /// // No player yet: the null pointer is refused.
    /// let none = pool.get(pool.root())?.player;
    /// assert!(matches!(pool.get_mut(none), Err(Error::BadPointer { .. })));
    ///
    /// let player = pool.alloc(pool.root().fields().player, Player { x: 0, y: 0, moves: 0 })?;
    /// {
    ///     let mut p = pool.get_mut(player)?;
    ///     p.x += 3;
    ///     p.y += 4;
    ///     p.moves += 1;
    /// } // dropped: the changed line is flushed, with one fence
    /// let p = pool.get(player)?;
    /// assert_eq!((p.x, p.y, p.moves), (3, 4, 1));
    /// # Ok(()) }
    /// ```
    #[track_caller]
    pub fn get_mut<T: Persist>(&mut self, ptr: PPtr<T>) -> Result<Guard<'_, T, M>> {
        // Writes through the guard are attributed to this call.
        self.medium.note("Pool::get_mut", Location::caller());
        let offset = self.resolve_object::<T>(ptr.offset(), Access::Write)?;
        // SAFETY: in bounds (resolved), so in the medium's allocation and not null.
        let value = unsafe { NonNull::new_unchecked(self.medium.base().add(offset).cast::<T>()) };
        // SAFETY: a valid `T` (any bytes are: `T: Pod`), in bounds and aligned
        // (resolved); the guard holds the pool's exclusive borrow, and the
        // medium is the pool's alone, so nothing else reaches these bytes.
        Ok(unsafe {
            Guard::new(
                &self.medium,
                offset,
                Location::caller(),
                value,
                Snapshot(&mut self.scratch),
            )
        })
    }

    /// Write access to the elements of `slice`.
    ///
    /// # Errors
    /// [`Error::BadPointer`].
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_typed::{PSlice, Persist, Pool};
    ///
    /// #[derive(Clone, Copy, Persist)]
    /// #[repr(C)]
    /// struct Root { scores: PSlice<u64> }
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// let mut pool = Pool::<Root>::create(dir.path().join("scores.pool"), "scores", 1 << 20)?;
    /// let scores = pool.alloc_slice(pool.root().fields().scores, &[30, 10, 20])?;
    /// // The guard is a `&mut [u64]`: sort in place, persisted when it drops.
    /// pool.get_slice_mut(scores)?.sort_unstable();
    /// assert_eq!(pool.get_slice(scores)?, [10, 20, 30]);
    /// # Ok(()) }
    /// ```
    #[track_caller]
    pub fn get_slice_mut<T: Persist>(&mut self, slice: PSlice<T>) -> Result<Guard<'_, [T], M>> {
        // Writes through the guard are attributed to this call.
        self.medium.note("Pool::get_slice_mut", Location::caller());
        let (offset, _) = self.resolve_slice(slice, Access::Write)?;
        let base = if slice.is_empty() {
            NonNull::<T>::dangling()
        } else {
            // SAFETY: resolved in bounds, so in the medium's allocation and not null.
            unsafe { NonNull::new_unchecked(self.medium.base().add(offset).cast::<T>()) }
        };
        let elements = NonNull::slice_from_raw_parts(base, slice.len() as usize);
        // SAFETY: as in `get_mut`, for the whole slice (an empty one at a
        // dangling, aligned address).
        Ok(unsafe {
            Guard::new(
                &self.medium,
                offset,
                Location::caller(),
                elements,
                Snapshot(&mut self.scratch),
            )
        })
    }

    /// Write access to several distinct objects at once: one guard that
    /// persists the lines that changed in any of them, with one fence.
    ///
    /// # Errors
    /// [`Error::Overlap`] if two of them share a byte; [`Error::BadPointer`].
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_typed::{Error, PSlice, Persist, Pool};
    ///
    /// #[derive(Clone, Copy, Persist)]
    /// #[repr(C)]
    /// struct Bank { accounts: PSlice<Account> }
    ///
    /// #[derive(Clone, Copy, Persist)]
    /// #[repr(C)]
    /// struct Account { id: u64, balance: u64 }
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// let mut pool = Pool::<Bank>::create(dir.path().join("bank.pool"), "bank", 1 << 20)?;
    /// let opening = [Account { id: 1, balance: 100 }, Account { id: 2, balance: 0 }];
    /// let accounts = pool.alloc_slice(pool.root().fields().accounts, &opening)?;
    /// let (alice, bob) = (accounts.at(0).ok_or("empty")?, accounts.at(1).ok_or("empty")?);
    /// {
    ///     // Persisted together when dropped (not failure-atomically together).
    ///     let mut both = pool.get_disjoint_mut([alice, bob])?;
    ///     let [from, to] = both.each_mut();
    ///     from.balance -= 30;
    ///     to.balance += 30;
    /// }
    /// assert_eq!((pool.get(alice)?.balance, pool.get(bob)?.balance), (70, 30));
    /// // The same account twice would be two `&mut` to it.
    /// assert!(matches!(pool.get_disjoint_mut([alice, alice]), Err(Error::Overlap { .. })));
    /// # Ok(()) }
    /// ```
    #[track_caller]
    pub fn get_disjoint_mut<T: Persist, const N: usize>(
        &mut self,
        ptrs: [PPtr<T>; N],
    ) -> Result<DisjointGuard<'_, T, M, N>> {
        self.medium
            .note("Pool::get_disjoint_mut", Location::caller());
        let size = size_of::<T>() as u64;
        let mut offsets = [0usize; N];
        for (slot, ptr) in offsets.iter_mut().zip(&ptrs) {
            *slot = self.resolve_object::<T>(ptr.offset(), Access::Write)?;
        }
        for i in 0..N {
            for j in i + 1..N {
                let (a, b) = (offsets[i] as u64, offsets[j] as u64);
                // Zero-sized objects share no byte, even at one address.
                if a < b + size && b < a + size {
                    return Err(Error::Overlap { offsets: (a, b) });
                }
            }
        }
        // SAFETY: each offset holds a valid (`T: Pod`), aligned `T` in bounds
        // (resolved); no two overlap (checked); the guard holds the pool's
        // exclusive borrow, and the medium is the pool's alone.
        Ok(unsafe {
            DisjointGuard::new(
                &self.medium,
                offsets,
                Location::caller(),
                Snapshot(&mut self.scratch),
            )
        })
    }

    /// Stores `value` at `ptr` and persists it, failure-atomically: after a
    /// crash `*ptr` holds the old value or the new one, never a mix. A value
    /// of 8 bytes or less that does not cross an 8-byte boundary (every such
    /// field the derive accepts) is written by one 8-byte store and its line
    /// flushed, with one fence. A larger value (a [`PSlice`], a whole
    /// struct) goes through a [`Batch`](crate::Batch) of one store: logged,
    /// then written, with two fences.
    ///
    /// # Errors
    /// [`Error::BadPointer`]; [`Error::OutOfSpace`] if a value too large for
    /// the log's first page finds no heap space to log it in.
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_typed::{Error, PPtr, Persist, Pool};
    ///
    /// #[derive(Clone, Copy, Persist)]
    /// #[repr(C)]
    /// struct Counters { requests: u64, errors: u64 }
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// let path = dir.path().join("counters.pool");
    /// {
    ///     let mut pool = Pool::<Counters>::create(&path, "counters", 1 << 20)?;
    ///     // Just this field is written (one 8-byte store) and flushed.
    ///     pool.set(pool.root().fields().errors, 1)?;
    ///     assert!(matches!(pool.set(PPtr::<u64>::null(), 1), Err(Error::BadPointer { .. })));
    /// }
    /// let pool = Pool::<Counters>::open(&path, "counters")?;
    /// let counters = pool.get(pool.root())?;
    /// assert_eq!((counters.requests, counters.errors), (0, 1));
    /// # Ok(()) }
    /// ```
    #[inline]
    #[track_caller]
    pub fn set<T: Persist>(&mut self, ptr: PPtr<T>, value: T) -> Result<()> {
        self.medium.note("Pool::set", Location::caller());
        let offset = self.resolve_object::<T>(ptr.offset(), Access::Write)?;
        let size = size_of::<T>();
        let word = offset & !7;
        if size > 0 && offset + size <= word + 8 && word + 8 <= self.medium.len() {
            // One aligned 8-byte store is failure-atomic: smaller values ride
            // in their word, whose other bytes are stored back unchanged.
            let mut bytes = if size == 8 {
                [0; 8] // all replaced: no need to read the old word
            } else {
                // SAFETY: the word is 8-aligned and inside the medium (checked).
                unsafe { read::<[u8; 8], M>(&self.medium, word) }
            };
            let at = offset - word;
            bytes[at..at + size].copy_from_slice(bytemuck::bytes_of(&value));
            // The word is the program's own bytes, not the format's: stored
            // as they are, in the machine's order.
            // SAFETY: as above; `&mut self` excludes any reference to the word.
            unsafe { self.medium.store_u64(word, u64::from_ne_bytes(bytes)) };
            self.medium.persist(offset, size);
        } else if size > 0 {
            // Too wide for one store: logged, so that it cannot tear.
            self.store_atomically(offset, bytemuck::bytes_of(&value))?;
        }
        Ok(())
    }

    /// Points `dest` at `target` with one failure-atomic 8-byte store, and
    /// persists it. Persist `*target` first: this is the publication step.
    ///
    /// # Errors
    /// [`Error::BadPointer`] if `dest` is invalid.
    ///
    /// # Examples
    ///
    /// Appending to a queue: [`alloc`](Self::alloc) publishes the new item
    /// into the last one's `next`, then `publish` moves the tail to it.
    ///
    /// ```
    /// use pmem_typed::{PPtr, Persist, Pool};
    ///
    /// #[derive(Clone, Copy, Persist)]
    /// #[repr(C)]
    /// struct Queue { head: PPtr<Item>, tail: PPtr<Item> }
    ///
    /// #[derive(Clone, Copy, Persist)]
    /// #[repr(C)]
    /// struct Item { job: u64, next: PPtr<Item> }
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// let mut pool = Pool::<Queue>::create(dir.path().join("queue.pool"), "queue", 1 << 20)?;
    /// let queue = pool.root().fields();
    /// let first = pool.alloc(queue.head, Item { job: 1, next: PPtr::null() })?;
    /// pool.publish(queue.tail, first)?;
    /// let second = pool.alloc(first.fields().next, Item { job: 2, next: PPtr::null() })?;
    /// pool.publish(queue.tail, second)?;
    ///
    /// let q = pool.get(pool.root())?;
    /// assert_eq!((pool.get(q.head)?.job, pool.get(q.tail)?.job), (1, 2));
    /// # Ok(()) }
    /// ```
    #[inline]
    #[track_caller]
    pub fn publish<T: Persist>(&mut self, dest: PPtr<PPtr<T>>, target: PPtr<T>) -> Result<()> {
        self.set(dest, target)
    }

    /// Stores element `index` of `slice` and persists it.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if `index` is out of range; [`Error::BadPointer`].
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_typed::{Error, PSlice, Persist, Pool};
    ///
    /// #[derive(Clone, Copy, Persist)]
    /// #[repr(C)]
    /// struct Root { slots: PSlice<u64> }
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// let mut pool = Pool::<Root>::create(dir.path().join("slots.pool"), "slots", 1 << 20)?;
    /// let slots = pool.alloc_slice_zeroed(pool.root().fields().slots, 4)?;
    /// pool.set_elem(slots, 2, 99)?; // one element, one store, persisted
    /// assert_eq!(pool.get_slice(slots)?, [0, 0, 99, 0]);
    /// // The index is checked against the slice's length.
    /// assert!(matches!(pool.set_elem(slots, 4, 1), Err(Error::InvalidArgument { .. })));
    /// # Ok(()) }
    /// ```
    #[track_caller]
    pub fn set_elem<T: Persist>(&mut self, slice: PSlice<T>, index: u64, value: T) -> Result<()> {
        self.medium.note("Pool::set_elem", Location::caller());
        let ptr = slice.at(index).ok_or_else(|| Error::InvalidArgument {
            argument: "index",
            found: index,
            expected: Expected::Below(slice.len()),
        })?;
        self.set(ptr, value)
    }

    /// Copies `values` into `slice` from element `start` on, with
    /// non-temporal stores, and persists them.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if they do not fit; [`Error::BadPointer`].
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_typed::{Error, PSlice, Persist, Pool};
    ///
    /// #[derive(Clone, Copy, Persist)]
    /// #[repr(C)]
    /// struct Root { message: PSlice<u8> }
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// let mut pool = Pool::<Root>::create(dir.path().join("msg.pool"), "msg", 1 << 20)?;
    /// let message = pool.alloc_slice_zeroed(pool.root().fields().message, 16)?;
    /// // Bulk data goes around the cache, straight to persistent memory.
    /// pool.copy_to_slice(message, 0, b"hello ")?;
    /// pool.copy_to_slice(message, 6, b"world")?;
    /// assert_eq!(&pool.get_slice(message)?[..11], b"hello world");
    /// // What does not fit is refused, and nothing is written.
    /// let overflow = pool.copy_to_slice(message, 12, b"again");
    /// assert!(matches!(overflow, Err(Error::InvalidArgument { .. })));
    /// assert_eq!(pool.get_slice(message)?[11..], [0; 5]);
    /// # Ok(()) }
    /// ```
    #[track_caller]
    pub fn copy_to_slice<T: Persist>(
        &mut self,
        slice: PSlice<T>,
        start: u64,
        values: &[T],
    ) -> Result<()> {
        self.medium.note("Pool::copy_to_slice", Location::caller());
        let count = values.len() as u64;
        if start.checked_add(count).is_none_or(|end| end > slice.len()) {
            return Err(Error::InvalidArgument {
                argument: "start + values.len()",
                found: start.saturating_add(count),
                expected: Expected::AtMost(slice.len()),
            });
        }
        let (base, _) = self.resolve_slice(slice, Access::Write)?;
        if values.is_empty() {
            return Ok(());
        }
        let offset = base + (start as usize) * size_of::<T>();
        let bytes: &[u8] = bytemuck::cast_slice(values);
        // SAFETY: inside the resolved slice; `&mut self` excludes references to it.
        unsafe { self.medium.write(offset, bytes, true) };
        self.medium.fence();
        Ok(())
    }
}
