//! [`Pool::check`]: what is reachable from the root, what leaked, and which
//! persistent pointers do not designate allocated memory.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;

use crate::format::PAGE;
use crate::medium::Medium;
use crate::persist::{Persist, Tracer};
use crate::pool::Pool;

/// The findings of [`Pool::check`].
///
/// # Examples
///
/// Overwriting the only pointer to a block leaks it: the allocator still has
/// it, but nothing reaches it.
///
/// ```
/// use pmem_typed::{PPtr, Persist, Pool};
///
/// #[derive(Clone, Copy, Persist)]
/// #[repr(C)]
/// struct Root { head: PPtr<Node> }
///
/// #[derive(Clone, Copy, Persist)]
/// #[repr(C)]
/// struct Node { value: u64 }
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let dir = tempfile::tempdir()?;
/// let mut pool = Pool::<Root>::create(dir.path().join("pool"), "leak", 1 << 20)?;
/// let head = pool.root().fields().head;
/// let node = pool.alloc(head, Node { value: 1 })?;
/// assert_eq!(pool.check().reachable_blocks, 1);
///
/// pool.set(head, PPtr::null())?; // should have been `pool.free(head)`
/// let report = pool.check();
/// assert_eq!(report.leaked, [(node.offset(), 64)]); // the 16-byte node took a 64-byte block
/// let text = report.to_string();
/// assert!(text.starts_with("1 allocated block (64 bytes), 0 reachable, 1 leaked, 0 problems\n"));
/// assert!(text.contains(&format!("leaked: 64 bytes at {:#x}", node.offset())));
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CheckReport {
    /// Allocated blocks.
    pub allocated_blocks: u64,
    /// Bytes in allocated blocks.
    pub allocated_bytes: u64,
    /// Allocated blocks reachable from the root.
    pub reachable_blocks: u64,
    /// Allocated blocks no pointer reaches, as (offset, size).
    pub leaked: Vec<(u64, u64)>,
    /// Pointers that do not designate allocated memory.
    pub problems: Vec<BadTarget>,
}

/// A persistent pointer [`Pool::check`] found that designates no valid
/// memory: what it points to, and why that is not valid.
///
/// # Examples
///
/// ```
/// use pmem_typed::{BadTarget, PPtr, Persist, Pool, TargetProblem};
///
/// #[derive(Clone, Copy, Persist)]
/// #[repr(C)]
/// struct Root { stray: PPtr<u64> }
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let dir = tempfile::tempdir()?;
/// let mut pool = Pool::<Root>::create(dir.path().join("pool"), "stray", 1 << 20)?;
/// pool.set(pool.root().fields().stray, PPtr::from_offset(4097))?;
/// let report = pool.check();
/// let BadTarget { offset, problem, .. } = &report.problems[0];
/// assert_eq!((*offset, problem), (4097, &TargetProblem::Misaligned { align: 8 }));
/// assert_eq!(report.problems[0].to_string(), "pointer to 1 x u64 at 0x1001: not 8-byte aligned");
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct BadTarget {
    /// Offset the pointer holds.
    pub offset: u64,
    /// Elements it designates (1 for a `PPtr`, the length of a `PSlice`).
    pub count: u64,
    /// The element type's name.
    pub type_name: &'static str,
    /// Why the target is not valid.
    pub problem: TargetProblem,
}

/// Why a [`BadTarget`] is not valid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TargetProblem {
    /// `count` elements' bytes overflow a 64-bit size.
    SizeOverflows,
    /// The target starts in the header or ends past the pool.
    OutsidePool {
        /// The pool's size in bytes.
        pool_size: u64,
    },
    /// The offset is not a multiple of the type's alignment.
    Misaligned {
        /// The type's alignment.
        align: usize,
    },
    /// Past the root, but not inside one allocated block.
    NotAllocated,
}

impl fmt::Display for BadTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "pointer to {} x {} at {:#x}: ",
            self.count, self.type_name, self.offset
        )?;
        match self.problem {
            TargetProblem::SizeOverflows => f.write_str("its size overflows"),
            TargetProblem::OutsidePool { pool_size } => {
                write!(f, "outside the pool's {pool_size} bytes")
            }
            TargetProblem::Misaligned { align } => write!(f, "not {align}-byte aligned"),
            TargetProblem::NotAllocated => f.write_str("not inside an allocated block"),
        }
    }
}

impl CheckReport {
    /// No leaks and no problems.
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_typed::{PPtr, Persist, Pool};
    ///
    /// #[derive(Clone, Copy, Persist)]
    /// #[repr(C)]
    /// struct Root { name: PPtr<[u8; 32]> }
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// let mut pool = Pool::<Root>::create(dir.path().join("pool"), "names", 1 << 20)?;
    /// assert!(pool.check().is_consistent(), "a fresh pool");
    ///
    /// let name = pool.root().fields().name;
    /// pool.alloc(name, *b"persistent memory, typed........")?;
    /// pool.free(name)?; // unpublishes and frees in one step: nothing leaks
    /// assert!(pool.check().is_consistent());
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn is_consistent(&self) -> bool {
        self.leaked.is_empty() && self.problems.is_empty()
    }
}

impl fmt::Display for CheckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} ({} bytes), {} reachable, {} leaked, {}",
            crate::counted(self.allocated_blocks, "allocated block"),
            self.allocated_bytes,
            self.reachable_blocks,
            self.leaked.len(),
            crate::counted(self.problems.len() as u64, "problem"),
        )?;
        for (offset, size) in &self.leaked {
            writeln!(f, "  leaked: {size} bytes at {offset:#x}")?;
        }
        for problem in &self.problems {
            writeln!(f, "  problem: {problem}")?;
        }
        Ok(())
    }
}

/// The byte ranges already traced, per element type and phase (offset
/// modulo the element's size: elements of one type at the same offset are the
/// same elements), kept disjoint and merged.
#[derive(Debug, Default)]
struct Traced(HashMap<(u64, u64), BTreeMap<u64, u64>>);

impl Traced {
    /// Marks `[start, end)` traced for `key`, returning the parts of it that
    /// were not, in order.
    fn add(&mut self, key: (u64, u64), start: u64, end: u64) -> Vec<(u64, u64)> {
        let ranges = self.0.entry(key).or_default();
        // The ranges that overlap or touch it: disjoint and sorted, so their
        // ends are sorted too, and the scan back from `end` stops at the first
        // that ends before `start`.
        let mut touching: Vec<(u64, u64)> = ranges
            .range(..=end)
            .rev()
            .take_while(|&(_, &stop)| stop >= start)
            .map(|(&a, &b)| (a, b))
            .collect();
        touching.reverse();
        let mut gaps = Vec::new();
        let mut cursor = start;
        for &(a, b) in &touching {
            if a > cursor {
                gaps.push((cursor, a));
            }
            cursor = cursor.max(b);
            ranges.remove(&a);
        }
        if cursor < end {
            gaps.push((cursor, end));
        }
        let merged_start = touching.first().map_or(start, |&(a, _)| a.min(start));
        let merged_end = touching.last().map_or(end, |&(_, b)| b.max(end));
        ranges.insert(merged_start, merged_end);
        gaps
    }
}

impl<R: Persist, M: Medium> Pool<R, M> {
    /// Walks every persistent pointer reachable from the root (through the
    /// `trace` of each [`Persist`] type) and compares what it finds with the
    /// allocator's records.
    ///
    /// Reports allocated blocks nothing points to (leaks), and pointers that
    /// are misaligned, out of bounds, or point into memory that is not
    /// allocated. Pointers kept in fields that are not `PPtr`/`PSlice` (raw
    /// `u64` offsets, say) are not followed, so what they reach shows as leaked.
    ///
    /// # Examples
    ///
    /// A pointer to memory that was never allocated is reported, not followed:
    ///
    /// ```
    /// use pmem_typed::{PPtr, Persist, Pool, TargetProblem};
    ///
    /// #[derive(Clone, Copy, Persist)]
    /// #[repr(C)]
    /// struct Root { first: PPtr<Node>, stray: PPtr<Node> }
    ///
    /// #[derive(Clone, Copy, Persist)]
    /// #[repr(C)]
    /// struct Node { value: u64, next: PPtr<Node> }
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// let mut pool = Pool::<Root>::create(dir.path().join("pool"), "check", 1 << 20)?;
    /// let root = pool.root();
    /// let first = pool.alloc(root.fields().first, Node { value: 1, next: PPtr::null() })?;
    /// pool.alloc(first.fields().next, Node { value: 2, next: PPtr::null() })?;
    /// let report = pool.check();
    /// assert_eq!((report.allocated_blocks, report.reachable_blocks), (2, 2));
    /// assert!(report.is_consistent());
    ///
    /// // Well aligned and inside the pool, but not in an allocated block.
    /// let wild = PPtr::from_offset(pool.size() - 4096);
    /// pool.set(root.fields().stray, wild)?;
    /// let report = pool.check();
    /// assert_eq!(report.problems.len(), 1);
    /// assert_eq!(report.problems[0].problem, TargetProblem::NotAllocated, "{report}");
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn check(&self) -> CheckReport {
        let blocks = self.allocated_blocks();
        let mut reached = vec![false; blocks.len()];
        let mut report = CheckReport {
            allocated_blocks: blocks.len() as u64,
            allocated_bytes: blocks.iter().map(|b| b.1).sum(),
            ..CheckReport::default()
        };
        let root_end = PAGE as u64 + self.info().root_size;
        let pool_size = self.size();

        let mut tracer = Tracer::default();
        if let Ok(root) = self.get(self.root()) {
            root.trace(&mut tracer);
        }
        let mut seen = HashSet::new();
        let mut traced = Traced::default();
        while let Some(visit) = tracer.pending.pop() {
            if !seen.insert((visit.offset, visit.count, visit.layout.fingerprint)) {
                continue;
            }
            let bad = |problem| BadTarget {
                offset: visit.offset,
                count: visit.count,
                type_name: visit.layout.name,
                problem,
            };
            let Some(bytes) = visit.count.checked_mul(visit.layout.size as u64) else {
                report.problems.push(bad(TargetProblem::SizeOverflows));
                continue;
            };
            let end = visit.offset.checked_add(bytes);
            if visit.offset < PAGE as u64 || end.is_none_or(|end| end > pool_size) {
                report
                    .problems
                    .push(bad(TargetProblem::OutsidePool { pool_size }));
                continue;
            }
            let end = end.unwrap_or(u64::MAX);
            if visit.offset % visit.layout.align as u64 != 0 {
                report.problems.push(bad(TargetProblem::Misaligned {
                    align: visit.layout.align,
                }));
                continue;
            }
            let in_root = end <= root_end;
            if !in_root {
                // The block holding the target: the last one starting at or before it.
                let index = blocks.partition_point(|&(start, _)| start <= visit.offset);
                let holder = index
                    .checked_sub(1)
                    .filter(|&i| end <= blocks[i].0 + blocks[i].1);
                match holder {
                    Some(i) => reached[i] = true,
                    None => {
                        report.problems.push(bad(TargetProblem::NotAllocated));
                        continue;
                    }
                }
            }
            // Each element is traced once, however many pointers reach it
            // (a crafted pool can make every slot of a large slice point at
            // the same large slice): the work stays linear in the pool's size.
            let size = visit.layout.size as u64;
            if size == 0 {
                continue; // nothing to trace in a zero-sized element
            }
            let key = (visit.layout.fingerprint, visit.offset % size);
            for (start, stop) in traced.add(key, visit.offset, end) {
                // SAFETY: `[start, stop)` is within the target, which is inside
                // the pool and aligned (checked above), and holds whole
                // elements (the ranges of one key share its phase); `trace`
                // only reads them, and `&self` excludes writers.
                unsafe {
                    (visit.trace)(
                        self.medium().base().add(start as usize),
                        (stop - start) / size,
                        &mut tracer,
                    )
                };
            }
        }
        report.reachable_blocks = reached.iter().filter(|&&r| r).count() as u64;
        report.leaked = blocks
            .iter()
            .zip(&reached)
            .filter(|(_, r)| !**r)
            .map(|(b, _)| *b)
            .collect();
        report
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_range_is_traced_once() {
        let mut traced = Traced::default();
        let key = (1, 0);
        assert_eq!(traced.add(key, 100, 200), [(100, 200)]);
        assert_eq!(traced.add(key, 100, 200), []);
        assert_eq!(traced.add(key, 50, 150), [(50, 100)]);
        assert_eq!(traced.add(key, 300, 400), [(300, 400)]);
        assert_eq!(traced.add(key, 0, 500), [(0, 50), (200, 300), (400, 500)]);
        assert_eq!(traced.add(key, 10, 490), []);
        // Another type, or another phase of the same type, is traced anew.
        assert_eq!(traced.add((2, 0), 100, 200), [(100, 200)]);
        assert_eq!(traced.add((1, 8), 100, 200), [(100, 200)]);
        assert_eq!(traced.0[&key].len(), 1, "merged into one range");
    }
}
