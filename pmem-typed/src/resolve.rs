//! Where persistent pointers may point: a pool's user data, and the check
//! every access through a [`PPtr`](crate::PPtr) or [`PSlice`](crate::PSlice)
//! makes before it becomes a reference.
//!
//! ```text
//! 0       PAGE            heap          heap + 257 << shift
//! | header | root's pages | table | chunks ... | table | chunks ... | ...
//!          |<---------- user data: everything but the header and tables -->
//! ```
//!
//! User data is the root's pages, `[PAGE, heap)`, and in each zone of the
//! heap everything after its chunk table. A zone is 257 table-sized units
//! (its table, then 256 units of chunks: `zone_chunks * (LINE + CHUNK)`
//! bytes, `zone_chunks * LINE` of table), and a table's size is a power of
//! two, so locating an offset in its zone costs a shift and a division by
//! the constant 257, which compiles to a multiplication. An object is user
//! data if it lies in the root's pages or within one zone's chunks: one that
//! runs past a zone's end meets the next zone's table.

use crate::error::PointerProblem;
use crate::format::heap::Geometry;
use crate::format::{CHUNK, LINE, PAGE};

/// Table-sized units per zone.
const UNITS_PER_ZONE: u64 = ((CHUNK + LINE) / LINE) as u64;
const _: () = assert!((CHUNK + LINE).is_multiple_of(LINE));

/// The smallest chunk table: 64 chunks' descriptors. An object no larger
/// spans at most two table-sized units.
const MIN_TABLE: u64 = (64 * LINE) as u64;

/// The inverse of [`UNITS_PER_ZONE`] (odd) modulo 2^64, by Newton's
/// iteration: each step doubles the bits that are right.
const INVERSE_UNITS_PER_ZONE: u64 = {
    let mut inverse = UNITS_PER_ZONE; // right in the low 3 bits, as for any odd number
    let mut step = 0;
    while step < 5 {
        inverse = inverse.wrapping_mul(2u64.wrapping_sub(UNITS_PER_ZONE.wrapping_mul(inverse)));
        step += 1;
    }
    inverse
};
const _: () = assert!(UNITS_PER_ZONE.wrapping_mul(INVERSE_UNITS_PER_ZONE) == 1);

/// Whether `unit` is a multiple of [`UNITS_PER_ZONE`], that is, a chunk
/// table: a multiplication by the inverse maps the multiples, and only
/// them, onto `0..=u64::MAX / UNITS_PER_ZONE`.
#[inline]
const fn divisible_by_units_per_zone(unit: u64) -> bool {
    unit.wrapping_mul(INVERSE_UNITS_PER_ZONE) <= u64::MAX / UNITS_PER_ZONE
}

/// `size_of::<T>()` and `align_of::<T>()`, refusing at compile time a type
/// aligned to more than a page: media are only page-aligned, so no pool could
/// place it at an address of its alignment.
pub(crate) const fn placement<T>() -> (u64, u64) {
    const {
        assert!(
            align_of::<T>() <= PAGE,
            "pmem_typed: a type aligned to more than 4096 bytes (a page) cannot be stored in a pool"
        );
    }
    (size_of::<T>() as u64, align_of::<T>() as u64)
}

/// What an access through a resolved pointer may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Access {
    /// Read: anywhere in the pool past the header.
    Read,
    /// Write: only user data.
    Write,
}

/// What resolution needs to know of a pool, computed once at open and after
/// growth, in one place so that a resolution touches one cache line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct UserData {
    /// The pool's size.
    size: u64,
    /// The bytes past the header: `size - PAGE`.
    span: u64,
    /// Where the heap (zone 0's table) begins: the end of the root's pages.
    heap: u64,
    /// log2 of a chunk table's size.
    table_shift: u32,
}

impl UserData {
    pub(crate) fn of(geometry: &Geometry) -> Self {
        let table = geometry.table_bytes();
        // `read_header` and creation admit only power-of-two zones.
        debug_assert!(table.is_power_of_two());
        let size = geometry.pool_size as u64;
        Self {
            size,
            span: size.saturating_sub(PAGE as u64),
            heap: geometry.heap_offset as u64,
            table_shift: table.trailing_zeros(),
        }
    }

    /// Checks that `size` bytes at `offset`, aligned to `align` (a power of
    /// two), may be read: past the header, in the pool, aligned.
    ///
    /// Reads need not avoid the chunk tables: their bytes are plain data,
    /// and nothing writes them while the pool is borrowed shared, so a hostile
    /// pointer into one reads garbage, never undefined behaviour. Skipping
    /// the test keeps `Pool::get` as cheap as a bounds check.
    #[inline]
    pub(crate) fn check_read(
        &self,
        offset: u64,
        size: u64,
        align: u64,
    ) -> Result<(), PointerProblem> {
        if self.in_pool(offset, size) & (offset & (align - 1) == 0) {
            Ok(())
        } else {
            Err(self.problem(offset, size, align))
        }
    }

    /// Checks that `size` bytes at `offset`, aligned to `align` (a power of
    /// two), may be written: as [`check_read`](Self::check_read), and user
    /// data, clear of the chunk tables.
    ///
    /// The common case is one branch: the conditions are combined without
    /// short-circuiting, and only a refusal works out which one failed.
    #[inline]
    pub(crate) fn check_write(
        &self,
        offset: u64,
        size: u64,
        align: u64,
    ) -> Result<(), PointerProblem> {
        let aligned = offset & (align - 1) == 0;
        // Within the pool, the sums below cannot overflow (a pool is far
        // below 2^64 bytes). A zero-sized object is placed like a byte.
        let last_byte = size.max(1) - 1;
        let in_root = offset.wrapping_add(last_byte) < self.heap;
        let from_heap = offset.wrapping_sub(self.heap);
        let first = from_heap >> self.table_shift;
        let last = from_heap.wrapping_add(last_byte) >> self.table_shift;
        let in_chunks = (offset >= self.heap)
            & if size <= MIN_TABLE {
                // At most two units, the first and the next: neither may be
                // a table (the first unit of a zone).
                !divisible_by_units_per_zone(first) & !divisible_by_units_per_zone(last)
            } else {
                let zone = first / UNITS_PER_ZONE * UNITS_PER_ZONE;
                (first != zone) & (last < zone + UNITS_PER_ZONE)
            };
        if self.in_pool(offset, size) & aligned & (in_root | in_chunks) {
            Ok(())
        } else {
            Err(self.problem(offset, size, align))
        }
    }

    /// Whether `size` bytes at `offset` lie in the pool past the header.
    #[inline]
    fn in_pool(&self, offset: u64, size: u64) -> bool {
        // Null and header offsets wrap to above the pool's span.
        let from_page = offset.wrapping_sub(PAGE as u64);
        (from_page <= self.span) & (size <= self.span.wrapping_sub(from_page))
    }

    /// Which condition a refused range fails, first failure first (for a
    /// read, one of the first four).
    #[cold]
    fn problem(&self, offset: u64, size: u64, align: u64) -> PointerProblem {
        if offset == 0 {
            PointerProblem::Null
        } else if offset < PAGE as u64 {
            PointerProblem::InHeader {
                header_size: PAGE as u64,
            }
        } else if offset.checked_add(size).is_none_or(|end| end > self.size) {
            PointerProblem::OutOfBounds {
                pool_size: self.size,
            }
        } else if !offset.is_multiple_of(align) {
            PointerProblem::Misaligned { align }
        } else {
            PointerProblem::InAllocatorMetadata {
                table: self.table_overlapped(offset),
            }
        }
    }

    /// The chunk table that an object at `offset`, in the pool past the
    /// header but not user data, overlaps.
    fn table_overlapped(&self, offset: u64) -> u64 {
        if offset < self.heap {
            return self.heap;
        }
        let from_heap = offset - self.heap;
        let first = from_heap >> self.table_shift;
        let zone = first / UNITS_PER_ZONE * UNITS_PER_ZONE;
        // Its own zone's table, or else the next one's, which it runs into.
        let table = if first == zone {
            zone
        } else {
            zone + UNITS_PER_ZONE
        };
        self.heap + (table << self.table_shift)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn geometry(zone_chunks: usize, zones: usize) -> Geometry {
        Geometry {
            heap_offset: 2 * PAGE,
            zone_chunks,
            pool_size: 2 * PAGE + zones * zone_chunks * (LINE + CHUNK),
        }
    }

    /// The tables and the header, by brute force from the geometry.
    fn metadata(g: &Geometry) -> Vec<(u64, u64)> {
        let mut regions = vec![(0, PAGE as u64)];
        for zone in 0..=g.zones() {
            let start = g.table_offset(zone) as u64;
            regions.push((start, start + g.table_bytes() as u64));
        }
        regions
    }

    fn brute_force(g: &Geometry, offset: u64, size: u64, align: u64) -> bool {
        let end = offset.checked_add(size.max(1));
        offset >= PAGE as u64
            && end.is_some_and(|end| end <= g.pool_size as u64 + u64::from(size == 0))
            && offset
                .checked_add(size)
                .is_some_and(|e| e <= g.pool_size as u64)
            && offset.is_multiple_of(align)
            && metadata(g).iter().all(|&(start, stop)| {
                let end = offset + size.max(1);
                end <= start || stop <= offset
            })
    }

    #[test]
    fn agrees_with_brute_force_at_every_boundary() {
        for zone_chunks in [64, 128, 4096] {
            let g = geometry(zone_chunks, 3);
            let user = UserData::of(&g);
            let mut edges = vec![0, PAGE as u64, g.pool_size as u64, u64::MAX];
            for (start, stop) in metadata(&g) {
                edges.extend([start, stop]);
            }
            // Miri runs this a thousand times slower: the edges themselves.
            let reach = if cfg!(miri) { 2 } else { 130 };
            for &edge in &edges {
                for delta in -reach..reach {
                    let offset = edge.wrapping_add_signed(delta);
                    for size in [0, 1, 8, 64, 4096, CHUNK as u64 + 1, 1 << 30, u64::MAX] {
                        for align in [1, 8, 64] {
                            let ours = user.check_write(offset, size, align).is_ok();
                            let readable = user.check_read(offset, size, align).is_ok();
                            assert!(readable || !ours, "writable but not readable");
                            let in_bounds = offset >= PAGE as u64
                                && offset
                                    .checked_add(size)
                                    .is_some_and(|e| e <= g.pool_size as u64)
                                && offset.is_multiple_of(align);
                            assert_eq!(readable, in_bounds, "{size} bytes at {offset:#x}");
                            let truth = brute_force(&g, offset, size, align);
                            assert_eq!(
                                ours, truth,
                                "{size} bytes at {offset:#x} aligned {align}, {zone_chunks} chunks per zone"
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn divisibility_by_the_units_of_a_zone() {
        let count = if cfg!(miri) { 1000 } else { 100_000 };
        for unit in (0..count).chain(u64::MAX - count..=u64::MAX) {
            assert_eq!(
                divisible_by_units_per_zone(unit),
                unit % UNITS_PER_ZONE == 0,
                "{unit}"
            );
        }
    }

    #[test]
    fn refusals_name_the_first_problem() {
        let g = geometry(64, 2);
        let user = UserData::of(&g);
        assert_eq!(user.check_write(0, 8, 8), Err(PointerProblem::Null));
        assert!(matches!(
            user.check_write(8, 8, 8),
            Err(PointerProblem::InHeader { .. })
        ));
        assert!(matches!(
            user.check_write(g.pool_size as u64 - 4, 8, 8),
            Err(PointerProblem::OutOfBounds { .. })
        ));
        assert_eq!(
            user.check_write(PAGE as u64 + 4, 8, 8),
            Err(PointerProblem::Misaligned { align: 8 })
        );
        let table1 = g.table_offset(1) as u64;
        assert_eq!(
            user.check_write(table1 + 64, 8, 8),
            Err(PointerProblem::InAllocatorMetadata { table: table1 })
        );
        // Running from zone 0's last chunk into zone 1's table.
        assert_eq!(
            user.check_write(table1 - 8, 16, 8),
            Err(PointerProblem::InAllocatorMetadata { table: table1 })
        );
        // From the root's pages into zone 0's table.
        assert_eq!(
            user.check_write(2 * PAGE as u64 - 8, 16, 8),
            Err(PointerProblem::InAllocatorMetadata {
                table: 2 * PAGE as u64
            })
        );
    }
}
