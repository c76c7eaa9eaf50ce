//! The process-wide registry of ranges known to be persistent memory:
//! mappings made with `MAP_SYNC` and Device DAX mappings.
//!
//! [`is_pmem`](crate::raw::is_pmem) asks it whether a range is wholly
//! covered; unmapping removes ranges, splitting entries that straddle the
//! unmapped part.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// How a registered range reaches persistence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum RangeKind {
    /// A file mapping with `MAP_SYNC`: the file system keeps its metadata
    /// durable, flushes make data durable.
    MapSync,
    /// A Device DAX mapping; deep drains write to the region's `deep_flush`.
    DeviceDax {
        /// The region's `deep_flush` control (shared by the pieces of one mapping).
        deep_flush: Arc<PathBuf>,
    },
}

/// A registered range `[start, end)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Entry {
    pub(crate) end: usize,
    pub(crate) kind: RangeKind,
}

/// Registered ranges keyed by start address; entries never overlap.
#[derive(Debug, Default)]
pub(crate) struct Registry {
    ranges: RwLock<BTreeMap<usize, Entry>>,
}

impl Registry {
    /// The process's registry.
    pub(crate) fn global() -> &'static Registry {
        static GLOBAL: Registry = Registry {
            ranges: RwLock::new(BTreeMap::new()),
        };
        &GLOBAL
    }

    fn read(&self) -> RwLockReadGuard<'_, BTreeMap<usize, Entry>> {
        // A panic while holding the lock cannot leave the map half-updated in a
        // way that matters more than losing the registry, so poisoning is ignored.
        self.ranges
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, BTreeMap<usize, Entry>> {
        self.ranges
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Records `[start, start + len)`, replacing whatever was registered there
    /// (a new mapping at an address means the old one is gone).
    pub(crate) fn register(&self, start: usize, len: usize, kind: RangeKind) {
        if len == 0 {
            return;
        }
        let end = start.saturating_add(len);
        let mut ranges = self.write();
        remove_locked(&mut ranges, start, end);
        ranges.insert(start, Entry { end, kind });
    }

    /// Forgets `[start, start + len)`, splitting entries that extend past it.
    pub(crate) fn unregister(&self, start: usize, len: usize) {
        if len == 0 {
            return;
        }
        remove_locked(&mut self.write(), start, start.saturating_add(len));
    }

    /// Whether registered entries cover every byte of `[start, start + len)`.
    /// An empty range is not persistent memory.
    pub(crate) fn covers(&self, start: usize, len: usize) -> bool {
        if len == 0 {
            return false;
        }
        let end = start.saturating_add(len);
        let ranges = self.read();
        let mut at = start;
        // The entry holding `at` is the last one starting at or before it.
        while at < end {
            match ranges.range(..=at).next_back() {
                Some((_, entry)) if entry.end > at => at = entry.end,
                _ => return false,
            }
        }
        true
    }

    /// The registered pieces overlapping `[start, start + len)`, clipped to it,
    /// in address order.
    pub(crate) fn pieces(&self, start: usize, len: usize) -> Vec<(usize, usize, RangeKind)> {
        let end = start.saturating_add(len);
        let ranges = self.read();
        let first = ranges
            .range(..=start)
            .next_back()
            .map_or(start, |(&s, _)| s);
        ranges
            .range(first..end)
            .filter(|(_, e)| e.end > start)
            .map(|(&s, e)| (s.max(start), e.end.min(end), e.kind.clone()))
            .collect()
    }

    #[cfg(test)]
    fn snapshot(&self) -> Vec<(usize, usize)> {
        self.read().iter().map(|(&s, e)| (s, e.end)).collect()
    }
}

/// Removes `[start, end)` from the map, keeping the parts of straddling
/// entries that lie outside it.
fn remove_locked(ranges: &mut BTreeMap<usize, Entry>, start: usize, end: usize) {
    let first = ranges
        .range(..start)
        .next_back()
        .filter(|(_, e)| e.end > start)
        .map(|(&s, _)| s);
    let overlapping: Vec<usize> = first
        .into_iter()
        .chain(ranges.range(start..end).map(|(&s, _)| s))
        .collect();
    for s in overlapping {
        let Some(entry) = ranges.remove(&s) else {
            continue;
        };
        if s < start {
            ranges.insert(
                s,
                Entry {
                    end: start,
                    kind: entry.kind.clone(),
                },
            );
        }
        if entry.end > end {
            ranges.insert(
                end,
                Entry {
                    end: entry.end,
                    kind: entry.kind,
                },
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn covers_adjacent_entries() {
        let r = Registry::default();
        r.register(0x1000, 0x1000, RangeKind::MapSync);
        r.register(0x2000, 0x1000, RangeKind::MapSync);
        assert!(r.covers(0x1000, 0x2000));
        assert!(r.covers(0x1fff, 2));
        assert!(!r.covers(0x1000, 0x2001));
        assert!(!r.covers(0xfff, 2));
        assert!(!r.covers(0x1000, 0), "an empty range is never pmem");
    }

    #[test]
    fn unregister_splits() {
        let r = Registry::default();
        r.register(0x10000, 0x10000, RangeKind::MapSync);
        r.unregister(0x14000, 0x1000);
        assert_eq!(r.snapshot(), vec![(0x10000, 0x14000), (0x15000, 0x20000)]);
        assert!(!r.covers(0x13000, 0x2000));
        assert!(r.covers(0x15000, 0xb000));
        r.unregister(0x0, 0x12000);
        assert_eq!(r.snapshot(), vec![(0x12000, 0x14000), (0x15000, 0x20000)]);
    }

    #[test]
    fn pieces_are_clipped() {
        let r = Registry::default();
        r.register(0x1000, 0x1000, RangeKind::MapSync);
        r.register(0x3000, 0x1000, RangeKind::MapSync);
        let p: Vec<_> = r
            .pieces(0x1800, 0x2000)
            .into_iter()
            .map(|(s, e, _)| (s, e))
            .collect();
        assert_eq!(p, vec![(0x1800, 0x2000), (0x3000, 0x3800)]);
    }

    #[test]
    fn concurrent_readers_agree() {
        let r = Registry::default();
        r.register(0x100000, 0x100000, RangeKind::MapSync);
        std::thread::scope(|s| {
            for _ in 0..16 {
                s.spawn(|| {
                    for i in 0..1000 {
                        assert!(r.covers(0x100000 + i, 0x1000));
                        assert!(!r.covers(0xff000 + i, 0x2000));
                    }
                });
            }
        });
    }

    proptest! {
        /// The registry agrees with a byte map of what was registered and unregistered.
        #[test]
        fn matches_byte_model(ops in prop::collection::vec((any::<bool>(), 0usize..64, 0usize..24), 1..40),
                              query in (0usize..64, 0usize..32)) {
            let r = Registry::default();
            let mut model = [false; 128];
            for (add, start, len) in ops {
                if add {
                    r.register(start, len, RangeKind::MapSync);
                } else {
                    r.unregister(start, len);
                }
                for b in &mut model[start..start + len] {
                    *b = add;
                }
            }
            let (start, len) = query;
            let expected = len > 0 && model[start..start + len].iter().all(|&b| b);
            prop_assert_eq!(r.covers(start, len), expected);
            let snapshot = r.snapshot();
            for pair in snapshot.windows(2) {
                prop_assert!(pair[0].1 <= pair[1].0, "entries overlap: {:?}", snapshot);
            }
        }
    }
}
