//! [`Pool::check`]: what is reachable from the root, what leaked, and which
//! persistent pointers do not designate allocated memory.

use std::collections::HashSet;
use std::fmt;

use crate::layout::PAGE;
use crate::medium::Medium;
use crate::persist::{Persist, Tracer};
use crate::pool::Pool;

/// The findings of [`Pool::check`].
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
    /// Pointers that do not designate allocated memory, and other problems.
    pub problems: Vec<String>,
}

impl CheckReport {
    /// No leaks and no problems.
    #[must_use]
    pub fn is_consistent(&self) -> bool {
        self.leaked.is_empty() && self.problems.is_empty()
    }
}

impl fmt::Display for CheckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} allocated blocks ({} bytes), {} reachable, {} leaked, {} problems",
            self.allocated_blocks,
            self.allocated_bytes,
            self.reachable_blocks,
            self.leaked.len(),
            self.problems.len()
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

impl<R: Persist, M: Medium> Pool<R, M> {
    /// Walks every persistent pointer reachable from the root (through the
    /// `trace` of each [`Persist`] type) and compares what it finds with the
    /// allocator's records.
    ///
    /// Reports allocated blocks nothing points to (leaks), and pointers that
    /// are misaligned, out of bounds, or point into memory that is not
    /// allocated. Pointers kept in fields that are not `PPtr`/`PSlice` (raw
    /// `u64` offsets, say) are not followed, so what they reach shows as leaked.
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
        while let Some(visit) = tracer.pending.pop() {
            if !seen.insert((visit.offset, visit.count, visit.layout.fingerprint)) {
                continue;
            }
            let what = || {
                format!(
                    "pointer to {} x {} at {:#x}",
                    visit.count, visit.layout.name, visit.offset
                )
            };
            let Some(bytes) = visit.count.checked_mul(visit.layout.size as u64) else {
                report
                    .problems
                    .push(format!("{}: its size overflows", what()));
                continue;
            };
            let end = visit.offset.checked_add(bytes);
            if visit.offset < PAGE as u64 || end.is_none_or(|end| end > pool_size) {
                report
                    .problems
                    .push(format!("{}: outside the pool's {pool_size} bytes", what()));
                continue;
            }
            let end = end.unwrap_or(u64::MAX);
            if visit.offset % visit.layout.align as u64 != 0 {
                report.problems.push(format!(
                    "{}: not {}-byte aligned",
                    what(),
                    visit.layout.align
                ));
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
                        report
                            .problems
                            .push(format!("{}: not inside an allocated block", what()));
                        continue;
                    }
                }
            }
            // SAFETY: the target is inside the pool and aligned (checked above),
            // `trace` only reads it, and `&self` excludes writers.
            unsafe {
                (visit.trace)(
                    self.medium().base().add(visit.offset as usize),
                    visit.count,
                    &mut tracer,
                )
            };
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
