//! Growing a pool: more chunk tables and chunks, then the new size in the
//! dynamic header slot not in use.

use std::panic::Location;

use zerocopy::IntoBytes;

use super::Pool;
use crate::error::{Error, Expected, Result, Structure};
use crate::format::dynamic::DynamicSlot;
use crate::format::heap::Geometry;
use crate::format::{DYNAMIC_SLOTS_OFFSET, LINE};
use crate::heap::Heap;
use crate::medium::Medium;
use crate::persist::Persist;
use crate::resolve::UserData;

impl<R: Persist, M: Medium> Pool<R, M> {
    /// Grows the pool to `new_size` bytes: extends the medium, remaps it, and
    /// adds the new space to the heap. Safe because `&mut self` proves that no
    /// reference into the old mapping is alive, and persistent pointers are
    /// offsets, so they stay valid.
    ///
    /// Crash-safe: the new size is recorded (in the header slot not in use)
    /// only after the new chunk tables are durable.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if `new_size` is smaller than the pool, or
    /// larger than a simulated medium's capacity; [`Error::Io`] from growing
    /// and remapping a file.
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_typed::{Error, PSlice, Persist, Pool};
    ///
    /// #[derive(Clone, Copy, Persist)]
    /// #[repr(C)]
    /// struct Root { old: PSlice<u8>, new: PSlice<u8> }
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// let mut pool = Pool::<Root>::create(dir.path().join("grow.pool"), "grow", 1 << 20)?;
    /// let root = pool.root().fields();
    /// let old = pool.alloc_slice(root.old, &vec![7; 600 << 10])?;
    /// // Full: a second 600 KiB does not fit...
    /// let full = pool.alloc_slice_zeroed(root.new, 600 << 10);
    /// assert!(matches!(full, Err(Error::OutOfSpace { .. })));
    /// // ...until the pool grows. What was there stays, at the same offsets.
    /// pool.grow(2 << 20)?;
    /// assert_eq!(pool.size(), 2 << 20);
    /// pool.alloc_slice_zeroed(root.new, 600 << 10)?;
    /// assert_eq!(pool.get_slice(old)?[..3], [7, 7, 7]);
    /// // Pools never shrink.
    /// assert!(matches!(pool.grow(1 << 20), Err(Error::InvalidArgument { .. })));
    /// # Ok(()) }
    /// ```
    #[track_caller]
    pub fn grow(&mut self, new_size: usize) -> Result<()> {
        self.medium.note("Pool::grow", Location::caller());
        let old = self.info.size as usize;
        if new_size < old {
            return Err(Error::InvalidArgument {
                argument: "new_size",
                found: new_size as u64,
                expected: Expected::AtLeast(old as u64),
            });
        }
        if new_size == old {
            return Ok(());
        }
        // The new size goes in the other slot, numbered one higher. A slot
        // numbered u64::MAX (only a crafted file has one) opens, but cannot be
        // superseded: refused before anything changes.
        let next_seq = self.slot.1.checked_add(1).ok_or_else(|| {
            let at = (DYNAMIC_SLOTS_OFFSET + self.slot.0 * LINE) as u64;
            Error::corrupt(
                Structure::DynamicSlot,
                at,
                "seq",
                self.slot.1,
                Expected::BelowMax,
            )
        })?;
        self.medium.grow(new_size)?;
        let old_geometry = *self.heap.geometry();
        let geometry = Geometry {
            pool_size: new_size,
            ..old_geometry
        };
        // Chunks that the old size cut off from its last zone now exist: their
        // descriptors were never the allocator's to keep zero (a file may hold
        // anything there), so zero them, as creation does whole tables.
        if let Some(zone) = old_geometry.zones().checked_sub(1) {
            let (before, after) = (
                old_geometry.chunks_in_zone(zone),
                geometry.chunks_in_zone(zone),
            );
            if after > before {
                // SAFETY: descriptors of chunks in the grown medium; nothing
                // references a chunk table.
                unsafe {
                    self.medium.fill(
                        geometry.descriptor_offset(zone, before),
                        0,
                        (after - before) * LINE,
                        false,
                    )
                };
            }
        }
        for zone in old_geometry.zones()..geometry.zones() {
            // SAFETY: new zones lie inside the grown medium; nothing references them.
            unsafe {
                self.medium.fill(
                    geometry.table_offset(zone),
                    0,
                    geometry.table_bytes(),
                    false,
                )
            };
        }
        self.medium.fence();
        let (index, _) = self.slot;
        let next = DynamicSlot::sealed(next_seq, new_size as u64);
        let at = DYNAMIC_SLOTS_OFFSET + (1 - index) * LINE;
        // SAFETY: the unused header slot is inside the pool and unreferenced.
        unsafe { self.medium.write(at, next.as_bytes(), false) };
        self.medium.fence();
        self.slot = (1 - index, next_seq);
        self.info.size = new_size as u64;
        self.heap = Heap::load(&self.medium, geometry)?;
        self.user = UserData::of(&geometry);
        Ok(())
    }
}
