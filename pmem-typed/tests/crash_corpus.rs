//! A corpus of persistent-memory bugs of the kinds that published checkers
//! (Yat, PMTest, pmreorder, Jaaru, Witcher, Vinter, Yashme, Agamotto) look
//! for, each with a fixed twin, run through the crash simulator in both of
//! its modes: exhaustive exploration ([`Explorer::explore`]) and property
//! tests ([`check_workloads`]).
//!
//! Every entry is two workloads, `bug` and `fixed`, built from a list of
//! operations (keys or values to write), and the list of profiles under
//! which the bug bites according to the model of `crash-model.md`: on x86
//! ADR a line's stores persist in program order but lines are written back
//! in any order; eADR keeps every store once made (only the crash position
//! matters); the conservative model lets any subset of a line's unfenced
//! words persist. Those sets nest (an eADR image is an ADR image, an ADR
//! image a conservative one), so a bug bites under Conservative whenever it
//! bites anywhere. Every fixed twin is correct under all three profiles.
//!
//! The entries, and what each models:
//!
//! - `hash_resize_two_words`: a hash table that doubles, as CCEH doubles its
//!   directory and level hashing resizes its table: the table pointer and its
//!   capacity are two stores, so a crash can pair the old table with the new
//!   capacity. Twin: both packed into one 8-byte word.
//! - `btree_split_sibling_early`: a B-link leaf split as in FAST&FAIR: the
//!   new sibling is linked and the leaf shrunk under the same fence that
//!   persists the sibling's keys. Twin: sibling persisted, then the link,
//!   then the shrink, each fenced.
//! - `btree_parent_count_first`: inserting a separator into a parent node
//!   with the count bumped before the key slot is written, both in the
//!   node's line. Twin: slot first, persisted, then the count.
//! - `inline_shift_raw` and `inline_shift_guard`: FAST&FAIR's insertion,
//!   which shifts the keys right inside one 64-byte node, one 8-byte store at
//!   a time from the end, with no flush in between; its reader tolerates a
//!   key seen twice but not a lost one. Correct where a line's stores persist
//!   in program order (x86 ADR, eADR), a bug under the conservative model
//!   only. Written with raw stores, and through a pool guard with a compiler
//!   fence between the statements. Twin: each store persisted.
//! - `ready_flag_first_guard`: a `ready` flag set before the `value` it
//!   publishes, in one line, through one guard: a bug under every profile.
//!   Twin: value, `persist()`, then the flag.
//! - `ring_tail_before_slot`: a ring buffer's tail bumped with the slot only
//!   flushed, not fenced. Twin: fence between.
//! - `undo_update_before_log`: an undo log whose entry is flushed but not
//!   fenced before the in-place update. Twin: fence between (a modification
//!   not yet covered by its log entry, the class PMTest's transaction
//!   checks look for).
//! - `undo_rollback_unpersisted`: the same undo log, whose roll-back in
//!   recovery writes and never flushes or fences: missing persistence in
//!   recovery code, visible only when recovery itself is crashed at its
//!   end. Twin: persisted.
//! - `redo_commit_before_entries`: a redo log whose commit mark is written,
//!   in the entries' line, before the entries. Twin: entries persisted, then
//!   the commit mark.
//! - `recovery_not_idempotent`: a deferred log of deltas that recovery
//!   applies with `counter += sum` and then clears: a crash during recovery
//!   applies it twice. Twin: recovery writes the absolute value, from a base
//!   recorded with the log.
//! - `resumed_recovery_not_idempotent`: the same log, applied by a recovery
//!   that records its progress in a phase word and takes a separate path
//!   when it was itself interrupted; only the path for a resumed recovery
//!   that was interrupted again is not idempotent. Not from a paper: the
//!   bug needs a crash during the recovery of a crashed recovery.
//! - `checksum_trusted_when_set`: records persisted with their checksum
//!   under one fence, read back whenever the checksum word is non-zero
//!   (PM file systems such as NOVA-Fortis checksum their metadata). Twin:
//!   the reader verifies the checksum.
//! - `lock_held_across_crash`: a lock word in persistent memory, set when a
//!   crash comes and never reset by recovery, so the next operation waits
//!   forever. Twin: recovery releases it (libpmemobj invalidates its locks
//!   at every open for this reason).
//! - `recovery_panics_on_torn_range`: a (start, end) range of the current
//!   record, published as two words; recovery slices the buffer with it and
//!   panics on a crash image that pairs the new start with the old end.
//!   Twin: the range in one word, and recovery checks it before use.
//! - `nontemporal_without_fence`: a block copied with non-temporal stores and
//!   published by a flag without a fence in between (as after libpmem's
//!   `pmem_memcpy_nodrain` without `pmem_drain`). Twin: fence before the
//!   flag. Non-temporal stores are weakly ordered and wait in
//!   write-combining buffers, outside the caches that eADR makes
//!   persistent: the bug bites under eADR too.
//! - `missing_flush`: a value stored and fenced but never flushed, then
//!   counted by a persisted flag: its line may never be written back. Not
//!   under eADR, where a store is durable once made. Twin: flushed.
//! - `pointer_published_before_object`: a pool list whose new node is
//!   linked (`Pool::publish`) before it is written through `get_mut`: in
//!   program order, so under eADR too. Twin: written (the guard persists
//!   it), then linked.
//! - `torn_pslice_set`: a 16-byte `PSlice` field replaced through a guard
//!   (`get_mut`), which stores its offset and length as one step of two
//!   words: a crash can pair the new offset with the old length, within the
//!   step, so under eADR too. Twin: `Pool::set`, which logs a value wider
//!   than 8 bytes (a batch of one store) so that it cannot tear.
//! - `flush_range_misses_last_line`: a record that spans two lines, flushed
//!   with one line from its line-aligned start, then counted by a flag.
//!   Twin: the record's own range.
//! - `unaligned_u64_torn`: an 8-byte value copied to an offset 4 bytes
//!   past a word boundary, so two words of one step, which tear even under
//!   eADR. Twin: aligned.
//! - `durability_returned_before_fence`: inserts that return (a
//!   [milestone](SimMedium::milestone)) after the flush but before the
//!   fence, so a value whose insert returned can be lost. Not under eADR.
//!   Twin: the milestone after the fence.
//!
//! The bugs `crash-model.md` lists, and the entries that cover them:
//! missing flush (`missing_flush`), missing fence (`ring_tail_before_slot`,
//! `undo_update_before_log`), pointer published before its object
//! (`pointer_published_before_object`, and across lines under one fence
//! `btree_split_sibling_early`), torn 16-byte update (`torn_pslice_set`,
//! and as two 8-byte stores `hash_resize_two_words`), flush range missing
//! the last line (`flush_range_misses_last_line`), reliance on same-line
//! ordering (`inline_shift_raw`, `inline_shift_guard`), non-temporal stores
//! without a fence (`nontemporal_without_fence`), recovery that writes
//! without persisting (`undo_rollback_unpersisted`), a valid token set
//! before the key and value (`redo_commit_before_entries`, whose commit
//! mark is that token, and `ready_flag_first_guard`), a length bumped
//! before the entry (`btree_parent_count_first`); besides, an unaligned
//! 8-byte store (`unaligned_u64_torn`) and a durability promise made too
//! early (`durability_returned_before_fence`).
//!
//! The two tests report every verdict that differs from the expected one in
//! one message; `--nocapture` shows the whole table.

use std::fmt::Display;
use std::panic::{AssertUnwindSafe, catch_unwind};

use pmem_typed::sim::proptest::check_workloads;
use pmem_typed::sim::{Explorer, Failure, Profile, Scenario, SimMedium, StepResult};
use pmem_typed::{PPtr, PSlice, Persist, Pool};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};

/// A workload: a scenario built from a list of operations.
type Workload = fn(&[u64]) -> Scenario<'static>;

/// A bug and its fixed twin.
struct Entry {
    name: &'static str,
    /// The profiles under which `bug` breaks its invariant.
    bites: &'static [Profile],
    bug: Workload,
    /// Correct under every profile.
    fixed: Workload,
}

const PROFILES: [Profile; 3] = [Profile::X86Adr, Profile::Eadr, Profile::Conservative];
/// Bugs in program order: a crash between two stores is enough.
const EVERYWHERE: &[Profile] = &PROFILES;
/// Bugs of write-back order between lines (or of a missing fence): not on eADR.
const WRITE_BACK: &[Profile] = &[Profile::X86Adr, Profile::Conservative];
/// Bugs of store order within one line.
const REORDERED: &[Profile] = &[Profile::Conservative];

/// The operations of the exhaustive mode.
const OPS: [u64; 3] = [42, 7, 19];

const ENTRIES: &[Entry] = &[
    Entry {
        name: "hash_resize_two_words",
        bites: EVERYWHERE,
        bug: resize::bug,
        fixed: resize::fixed,
    },
    Entry {
        name: "btree_split_sibling_early",
        bites: WRITE_BACK,
        bug: split::bug,
        fixed: split::fixed,
    },
    Entry {
        name: "btree_parent_count_first",
        bites: EVERYWHERE,
        bug: parent::bug,
        fixed: parent::fixed,
    },
    Entry {
        name: "inline_shift_raw",
        bites: REORDERED,
        bug: shift::bug,
        fixed: shift::fixed,
    },
    Entry {
        name: "inline_shift_guard",
        bites: REORDERED,
        bug: shift_guard::bug,
        fixed: shift_guard::fixed,
    },
    Entry {
        name: "ready_flag_first_guard",
        bites: EVERYWHERE,
        bug: ready::bug,
        fixed: ready::fixed,
    },
    Entry {
        name: "ring_tail_before_slot",
        bites: WRITE_BACK,
        bug: ring::bug,
        fixed: ring::fixed,
    },
    Entry {
        name: "undo_update_before_log",
        bites: WRITE_BACK,
        bug: undo::bug,
        fixed: undo::fixed,
    },
    Entry {
        name: "undo_rollback_unpersisted",
        bites: WRITE_BACK,
        bug: undo::rollback_unpersisted,
        fixed: undo::fixed,
    },
    Entry {
        name: "redo_commit_before_entries",
        bites: EVERYWHERE,
        bug: redo::bug,
        fixed: redo::fixed,
    },
    Entry {
        name: "recovery_not_idempotent",
        bites: EVERYWHERE,
        bug: replay::bug,
        fixed: replay::fixed,
    },
    Entry {
        name: "resumed_recovery_not_idempotent",
        bites: EVERYWHERE,
        bug: replay::resumed_bug,
        fixed: replay::resumed_fixed,
    },
    Entry {
        name: "checksum_trusted_when_set",
        bites: WRITE_BACK,
        bug: checksum::bug,
        fixed: checksum::fixed,
    },
    Entry {
        name: "lock_held_across_crash",
        bites: EVERYWHERE,
        bug: lock::bug,
        fixed: lock::fixed,
    },
    Entry {
        name: "recovery_panics_on_torn_range",
        bites: EVERYWHERE,
        bug: range::bug,
        fixed: range::fixed,
    },
    Entry {
        name: "nontemporal_without_fence",
        bites: EVERYWHERE,
        bug: streamed::bug,
        fixed: streamed::fixed,
    },
    Entry {
        name: "missing_flush",
        bites: WRITE_BACK,
        bug: unflushed::bug,
        fixed: unflushed::fixed,
    },
    Entry {
        name: "pointer_published_before_object",
        bites: EVERYWHERE,
        bug: publish::bug,
        fixed: publish::fixed,
    },
    Entry {
        name: "torn_pslice_set",
        bites: EVERYWHERE,
        bug: torn_slice::bug,
        fixed: torn_slice::fixed,
    },
    Entry {
        name: "flush_range_misses_last_line",
        bites: WRITE_BACK,
        bug: short_flush::bug,
        fixed: short_flush::fixed,
    },
    Entry {
        name: "unaligned_u64_torn",
        bites: EVERYWHERE,
        bug: unaligned::bug,
        fixed: unaligned::fixed,
    },
    Entry {
        name: "durability_returned_before_fence",
        bites: WRITE_BACK,
        bug: promise::bug,
        fixed: promise::fixed,
    },
];

/// Flushes `[at, at + len)` and fences.
fn persist(m: &SimMedium, at: usize, len: usize) {
    m.flush_range(at, len);
    m.sfence();
}

/// `n` words from `at`.
fn words<const N: usize>(m: &SimMedium, at: usize) -> [u64; N] {
    std::array::from_fn(|i| m.read_u64(at + 8 * i))
}

mod resize {
    //! A table of `capacity` one-word slots, a key in slot `key % capacity`;
    //! the directory names the table and its capacity. The keys are spread
    //! so that each one moves when the table doubles from 4 to 8 slots.
    use super::*;

    /// Bug: table offset (word 0) and capacity (word 1). Twin: one word,
    /// the offset with log2 of the capacity in its low bits.
    const DIR: usize = 0;
    /// Keys inserted (durably) so far.
    const COUNT: usize = 64;
    const OLD: usize = 1024;
    const NEW: usize = 2048;

    fn keys(ops: &[u64]) -> Vec<u64> {
        // Slot `i` of 4 before, slot `4 + i` of 8 after.
        ops.iter()
            .take(4)
            .enumerate()
            .map(|(i, &op)| op.wrapping_mul(8).wrapping_add(4 + i as u64))
            .collect()
    }

    fn scenario(ops: &[u64], packed: bool) -> Scenario<'static> {
        let written = keys(ops);
        let expected = written.clone();
        Scenario::new(4096)
            .setup(move |m| {
                if packed {
                    m.store_u64(DIR, OLD as u64 | 2);
                } else {
                    m.store_u64(DIR, OLD as u64);
                    m.store_u64(DIR + 8, 4);
                }
                Ok(())
            })
            .run(move |m| {
                for (i, &key) in written.iter().enumerate() {
                    let slot = OLD + 8 * (key % 4) as usize;
                    m.store_u64(slot, key);
                    persist(m, slot, 8);
                    m.store_u64(COUNT, i as u64 + 1);
                    persist(m, COUNT, 8);
                }
                // Double: the new table is persisted before it is published.
                for &key in &written {
                    m.store_u64(NEW + 8 * (key % 8) as usize, key);
                }
                persist(m, NEW, 64);
                if packed {
                    m.store_u64(DIR, NEW as u64 | 3);
                    persist(m, DIR, 8);
                } else {
                    // The bug: two words, the capacity first.
                    m.store_u64(DIR + 8, 8);
                    m.store_u64(DIR, NEW as u64);
                    persist(m, DIR, 16);
                }
                Ok(())
            })
            .check(move |m| {
                let (table, capacity) = if packed {
                    let word = m.read_u64(DIR);
                    (word & !63, 1u64 << (word & 63).min(9))
                } else {
                    (m.read_u64(DIR), m.read_u64(DIR + 8))
                };
                if capacity == 0 || table + 8 * capacity > 4096 {
                    return Err(format!("directory {table:#x} with {capacity} slots").into());
                }
                let count = m.read_u64(COUNT) as usize;
                for &key in expected.iter().take(count) {
                    let slot = (table + 8 * (key % capacity)) as usize;
                    if m.read_u64(slot) != key {
                        return Err(format!(
                            "key {key} lost: the directory says table {table:#x} of {capacity} slots"
                        )
                        .into());
                    }
                }
                Ok(())
            })
    }

    pub(super) fn bug(ops: &[u64]) -> Scenario<'static> {
        scenario(ops, false)
    }

    pub(super) fn fixed(ops: &[u64]) -> Scenario<'static> {
        scenario(ops, true)
    }
}

mod split {
    //! A B-link leaf of 6 keys (one line: count, next, keys), filled with the
    //! operations and then split into a sibling that takes the upper half.
    use super::*;

    /// Keys inserted (durably) so far: the tree's size.
    const SIZE: usize = 0;
    const LEAF: usize = 1024;
    const SIBLING: usize = 2048;
    const CAPACITY: usize = 6;
    const NEXT: usize = 8;

    fn key_at(node: usize, i: usize) -> usize {
        node + 16 + 8 * i
    }

    fn node_keys(m: &SimMedium, node: usize) -> Result<Vec<u64>, String> {
        let count = m.read_u64(node) as usize;
        if count > CAPACITY {
            return Err(format!("node {node:#x} counts {count} keys"));
        }
        Ok((0..count).map(|i| m.read_u64(key_at(node, i))).collect())
    }

    fn scenario(ops: &[u64], ordered: bool) -> Scenario<'static> {
        let written: Vec<u64> = ops.iter().copied().take(CAPACITY).collect();
        let expected = written.clone();
        Scenario::new(4096)
            .run(move |m| {
                for (i, &key) in written.iter().enumerate() {
                    m.store_u64(key_at(LEAF, i), key);
                    persist(m, key_at(LEAF, i), 8);
                    m.store_u64(LEAF, i as u64 + 1);
                    persist(m, LEAF, 8);
                    m.store_u64(SIZE, i as u64 + 1);
                    persist(m, SIZE, 8);
                }
                let half = written.len() / 2;
                for (j, &key) in written[half..].iter().enumerate() {
                    m.store_u64(key_at(SIBLING, j), key);
                }
                m.store_u64(SIBLING, (written.len() - half) as u64);
                if ordered {
                    persist(m, SIBLING, 64);
                    m.store_u64(LEAF + NEXT, SIBLING as u64);
                    persist(m, LEAF + NEXT, 8);
                    m.store_u64(LEAF, half as u64);
                    persist(m, LEAF, 8);
                } else {
                    // The bug: linked and shrunk under the fence that
                    // persists the sibling's keys.
                    m.store_u64(LEAF + NEXT, SIBLING as u64);
                    m.store_u64(LEAF, half as u64);
                    m.flush_range(SIBLING, 64);
                    m.flush_range(LEAF, 64);
                    m.sfence();
                }
                Ok(())
            })
            .check(move |m| {
                let mut found = node_keys(m, LEAF)?;
                match m.read_u64(LEAF + NEXT) as usize {
                    0 => {}
                    SIBLING => found.extend(node_keys(m, SIBLING)?),
                    other => return Err(format!("the leaf links to {other:#x}").into()),
                }
                let size = m.read_u64(SIZE) as usize;
                // A key in both nodes is fine (mid-split); a missing one is not.
                match expected.iter().take(size).find(|key| !found.contains(key)) {
                    Some(key) => Err(format!("key {key} lost; the tree holds {found:?}").into()),
                    None => Ok(()),
                }
            })
    }

    pub(super) fn bug(ops: &[u64]) -> Scenario<'static> {
        scenario(ops, false)
    }

    pub(super) fn fixed(ops: &[u64]) -> Scenario<'static> {
        scenario(ops, true)
    }
}

mod parent {
    //! An inner node (one line: count, then 7 separator slots) receiving one
    //! separator per operation, as each child split pushes one up.
    use super::*;

    const NODE: usize = 1024;
    const CAPACITY: usize = 7;

    fn scenario(ops: &[u64], ordered: bool) -> Scenario<'static> {
        let written: Vec<u64> = ops.iter().copied().take(CAPACITY).collect();
        let expected = written.clone();
        Scenario::new(4096)
            .run(move |m| {
                for (i, &key) in written.iter().enumerate() {
                    let slot = NODE + 8 + 8 * i;
                    if ordered {
                        m.store_u64(slot, key);
                        persist(m, slot, 8);
                        m.store_u64(NODE, i as u64 + 1);
                        persist(m, NODE, 8);
                    } else {
                        // The bug: counted before the slot is written.
                        m.store_u64(NODE, i as u64 + 1);
                        m.store_u64(slot, key);
                        persist(m, NODE, 64);
                    }
                }
                Ok(())
            })
            .check(move |m| {
                let count = m.read_u64(NODE) as usize;
                for j in 0..count {
                    let found = m.read_u64(NODE + 8 + 8 * j);
                    if expected.get(j) != Some(&found) {
                        return Err(format!(
                            "the node counts {count} separators but slot {j} holds {found}"
                        )
                        .into());
                    }
                }
                Ok(())
            })
    }

    pub(super) fn bug(ops: &[u64]) -> Scenario<'static> {
        scenario(ops, false)
    }

    pub(super) fn fixed(ops: &[u64]) -> Scenario<'static> {
        scenario(ops, true)
    }
}

mod shift {
    //! FAST&FAIR's in-line insertion: a node of 8 sorted key slots in one
    //! line, zero-terminated, holding a largest key from the start (so that
    //! every insertion shifts). Readers tolerate a key seen twice in a row.
    use super::*;

    pub(super) const SLOTS: usize = 8;
    /// Larger than every inserted key.
    pub(super) const TOP: u64 = u64::MAX;
    /// Insertions completed (durably) so far.
    const DONE: usize = 0;
    const NODE: usize = 1024;

    /// Where `key` goes and how many slots are in use; `None` if it is
    /// already there (or cannot be inserted).
    pub(super) fn place(keys: &[u64; SLOTS], key: u64) -> Option<(usize, usize)> {
        let used = keys.iter().position(|&k| k == 0).unwrap_or(SLOTS);
        if key == 0 || key == TOP || used == SLOTS || keys[..used].contains(&key) {
            return None;
        }
        let at = keys[..used].iter().position(|&k| k > key).unwrap_or(used);
        Some((at, used))
    }

    /// The reader's view: sorted up to the first empty slot (duplicates
    /// allowed), nothing after it, no key lost.
    pub(super) fn check_node(
        keys: &[u64; SLOTS],
        done: usize,
        expected: &[u64],
    ) -> Result<(), String> {
        let used = keys.iter().position(|&k| k == 0).unwrap_or(SLOTS);
        if keys[used..].iter().any(|&k| k != 0) || !keys[..used].is_sorted() {
            return Err(format!("node {keys:?} is not sorted and zero-terminated"));
        }
        let lost = std::iter::once(&TOP)
            .chain(expected.iter().take(done))
            .find(|key| !keys[..used].contains(key));
        match lost {
            Some(key) => Err(format!("key {key:#x} lost: the node holds {keys:?}")),
            None => Ok(()),
        }
    }

    fn scenario(ops: &[u64], persist_each: bool) -> Scenario<'static> {
        let written = ops.to_vec();
        let expected = written.clone();
        Scenario::new(4096)
            .setup(|m| {
                m.store_u64(NODE, TOP);
                Ok(())
            })
            .run(move |m| {
                for (j, &key) in written.iter().enumerate() {
                    let keys: [u64; SLOTS] = words(m, NODE);
                    if let Some((at, used)) = place(&keys, key) {
                        for i in (at..used).rev() {
                            m.store_u64(NODE + 8 * (i + 1), keys[i]);
                            if persist_each {
                                persist(m, NODE + 8 * (i + 1), 8);
                            }
                        }
                        m.store_u64(NODE + 8 * at, key);
                        persist(m, NODE, 64);
                    }
                    m.store_u64(DONE, j as u64 + 1);
                    persist(m, DONE, 8);
                }
                Ok(())
            })
            .check(move |m| {
                let keys: [u64; SLOTS] = words(m, NODE);
                Ok(check_node(&keys, m.read_u64(DONE) as usize, &expected)?)
            })
    }

    pub(super) fn bug(ops: &[u64]) -> Scenario<'static> {
        scenario(ops, false)
    }

    pub(super) fn fixed(ops: &[u64]) -> Scenario<'static> {
        scenario(ops, true)
    }
}

/// The node of `inline_shift_guard`: the keys fill the root's first line.
#[derive(Clone, Copy, Persist)]
#[repr(C)]
struct ShiftRoot {
    keys: [u64; shift::SLOTS],
    done: u64,
}

mod shift_guard {
    //! `shift`, through a pool guard: one guard per insertion, one statement
    //! per 8-byte store, a compiler fence between them.
    use std::sync::atomic::{Ordering, compiler_fence};

    use super::shift::{SLOTS, TOP, check_node, place};
    use super::*;

    fn open(m: &mut SimMedium) -> pmem_typed::Result<Pool<ShiftRoot, &mut SimMedium>> {
        Pool::open_on(m, "shift")
    }

    fn scenario(ops: &[u64], persist_each: bool) -> Scenario<'static> {
        let written = ops.to_vec();
        let expected = written.clone();
        Scenario::new(64 * 1024)
            .setup(|m| {
                let mut keys = [0; SLOTS];
                keys[0] = TOP;
                Pool::create_on(m, "shift", ShiftRoot { keys, done: 0 })?;
                Ok(())
            })
            .run(move |m| {
                let mut pool = open(m)?;
                let root = pool.root();
                for (j, &key) in written.iter().enumerate() {
                    let keys = pool.get(root)?.keys;
                    if let Some((at, used)) = place(&keys, key) {
                        let mut g = pool.get_mut(root)?;
                        for i in (at..used).rev() {
                            g.keys[i + 1] = g.keys[i];
                            if persist_each {
                                g.persist();
                            } else {
                                compiler_fence(Ordering::SeqCst);
                            }
                        }
                        g.keys[at] = key;
                    } // the guard flushes the line and fences
                    pool.set(root.fields().done, j as u64 + 1)?;
                }
                Ok(())
            })
            .recover(|m| {
                open(m)?;
                Ok(())
            })
            .check(move |m| {
                let pool = open(m)?;
                let root = pool.get(pool.root())?;
                Ok(check_node(&root.keys, root.done as usize, &expected)?)
            })
    }

    pub(super) fn bug(ops: &[u64]) -> Scenario<'static> {
        scenario(ops, false)
    }

    pub(super) fn fixed(ops: &[u64]) -> Scenario<'static> {
        scenario(ops, true)
    }
}

/// One publication of `ready_flag_first_guard`: both words in one line.
#[derive(Clone, Copy, Persist)]
#[repr(C)]
struct Slot {
    value: u64,
    /// 1 once `value` is published.
    ready: u64,
}

/// The root of `ready_flag_first_guard`: four slots, one line.
#[derive(Clone, Copy, Persist)]
#[repr(C)]
struct FlagRoot {
    slots: [Slot; 4],
}

mod ready {
    //! Operation `j` publishes its value in slot `j`, through one guard.
    use std::sync::atomic::{Ordering, compiler_fence};

    use super::*;

    fn open(m: &mut SimMedium) -> pmem_typed::Result<Pool<FlagRoot, &mut SimMedium>> {
        Pool::open_on(m, "ready")
    }

    fn scenario(ops: &[u64], ordered: bool) -> Scenario<'static> {
        let written: Vec<u64> = ops.iter().copied().take(4).collect();
        let expected = written.clone();
        Scenario::new(64 * 1024)
            .setup(|m| {
                let slots = [Slot { value: 0, ready: 0 }; 4];
                Pool::create_on(m, "ready", FlagRoot { slots })?;
                Ok(())
            })
            .run(move |m| {
                let mut pool = open(m)?;
                let root = pool.root();
                for (j, &value) in written.iter().enumerate() {
                    let mut g = pool.get_mut(root)?;
                    if ordered {
                        g.slots[j].value = value;
                        g.persist();
                        g.slots[j].ready = 1;
                    } else {
                        // The bug: the flag first, in program order.
                        g.slots[j].ready = 1;
                        compiler_fence(Ordering::SeqCst);
                        g.slots[j].value = value;
                    }
                }
                Ok(())
            })
            .recover(|m| {
                open(m)?;
                Ok(())
            })
            .check(move |m| {
                let pool = open(m)?;
                let root = pool.get(pool.root())?;
                for (j, slot) in root.slots.iter().enumerate() {
                    if slot.ready != 0 && expected.get(j) != Some(&slot.value) {
                        return Err(format!("slot {j} is ready with value {}", slot.value).into());
                    }
                }
                Ok(())
            })
    }

    pub(super) fn bug(ops: &[u64]) -> Scenario<'static> {
        scenario(ops, false)
    }

    pub(super) fn fixed(ops: &[u64]) -> Scenario<'static> {
        scenario(ops, true)
    }
}

mod ring {
    //! A ring of 8 slots, each in its own line, and its tail index; the
    //! producer appends one value per operation.
    use super::*;

    const TAIL: usize = 0;
    const SLOTS: usize = 1024;
    const CAPACITY: usize = 8;

    fn slot(i: usize) -> usize {
        SLOTS + 64 * (i % CAPACITY)
    }

    fn scenario(ops: &[u64], fenced: bool) -> Scenario<'static> {
        let written: Vec<u64> = ops.iter().copied().take(CAPACITY).collect();
        let expected = written.clone();
        Scenario::new(4096)
            .run(move |m| {
                for (i, &value) in written.iter().enumerate() {
                    m.store_u64(slot(i), value);
                    m.flush_range(slot(i), 8);
                    if fenced {
                        m.sfence();
                    } // the bug: the slot's write-back is not waited for
                    m.store_u64(TAIL, i as u64 + 1);
                    persist(m, TAIL, 8);
                }
                Ok(())
            })
            .check(move |m| {
                let tail = m.read_u64(TAIL) as usize;
                for i in 0..tail {
                    let found = m.read_u64(slot(i));
                    if expected.get(i) != Some(&found) {
                        return Err(format!("tail {tail} but slot {i} holds {found}").into());
                    }
                }
                Ok(())
            })
    }

    pub(super) fn bug(ops: &[u64]) -> Scenario<'static> {
        scenario(ops, false)
    }

    pub(super) fn fixed(ops: &[u64]) -> Scenario<'static> {
        scenario(ops, true)
    }
}

mod undo {
    //! Transfers between two accounts A and B (own lines) under an undo log
    //! (one line: valid, old A, old B); A + B is always 1000.
    use super::*;

    const A: usize = 512;
    const B: usize = 576;
    const LOG: usize = 1024;
    const TOTAL: u64 = 1000;

    fn scenario(ops: &[u64], fence_log: bool, persist_rollback: bool) -> Scenario<'static> {
        let written = ops.to_vec();
        Scenario::new(4096)
            .setup(|m| {
                m.store_u64(A, TOTAL);
                Ok(())
            })
            .run(move |m| {
                for &amount in &written {
                    let (a, b) = (m.read_u64(A), m.read_u64(B));
                    m.store_u64(LOG + 8, a);
                    m.store_u64(LOG + 16, b);
                    persist(m, LOG + 8, 16);
                    m.store_u64(LOG, 1);
                    m.flush_range(LOG, 8);
                    if fence_log {
                        m.sfence();
                    } // the bug: the update can be durable before the entry is valid
                    m.store_u64(A, a.wrapping_sub(amount));
                    m.store_u64(B, b.wrapping_add(amount));
                    m.flush_range(A, 8);
                    m.flush_range(B, 8);
                    m.sfence();
                    m.store_u64(LOG, 0);
                    persist(m, LOG, 8);
                }
                Ok(())
            })
            .recover(move |m| {
                if m.read_u64(LOG) == 1 {
                    let (a, b) = (m.read_u64(LOG + 8), m.read_u64(LOG + 16));
                    m.store_u64(A, a);
                    m.store_u64(B, b);
                    if persist_rollback {
                        m.flush_range(A, 8);
                        m.flush_range(B, 8);
                        m.sfence();
                    }
                    m.store_u64(LOG, 0);
                    if persist_rollback {
                        persist(m, LOG, 8);
                    } // the bug: the roll-back is never made durable
                }
                Ok(())
            })
            .check(|m| {
                let (valid, a, b) = (m.read_u64(LOG), m.read_u64(A), m.read_u64(B));
                if valid != 0 {
                    return Err("the undo entry is still valid after recovery".into());
                }
                match a.wrapping_add(b) {
                    TOTAL => Ok(()),
                    sum => Err(format!("A {a} + B {b} = {sum}: half a transfer").into()),
                }
            })
    }

    pub(super) fn bug(ops: &[u64]) -> Scenario<'static> {
        scenario(ops, false, true)
    }

    pub(super) fn rollback_unpersisted(ops: &[u64]) -> Scenario<'static> {
        scenario(ops, true, false)
    }

    pub(super) fn fixed(ops: &[u64]) -> Scenario<'static> {
        scenario(ops, true, true)
    }
}

mod redo {
    //! Transfers between A and B (own lines) under a redo log (one line:
    //! commit, new A, new B); A + B is always 1000.
    use super::*;

    const A: usize = 512;
    const B: usize = 576;
    const LOG: usize = 1024;
    const TOTAL: u64 = 1000;

    fn scenario(ops: &[u64], ordered: bool) -> Scenario<'static> {
        let written = ops.to_vec();
        Scenario::new(4096)
            .setup(|m| {
                m.store_u64(A, TOTAL);
                Ok(())
            })
            .run(move |m| {
                for &amount in &written {
                    let (a, b) = (m.read_u64(A), m.read_u64(B));
                    let (new_a, new_b) = (a.wrapping_sub(amount), b.wrapping_add(amount));
                    if ordered {
                        m.store_u64(LOG + 8, new_a);
                        m.store_u64(LOG + 16, new_b);
                        persist(m, LOG + 8, 16);
                        m.store_u64(LOG, 1);
                        persist(m, LOG, 8);
                    } else {
                        // The bug: the commit mark before the entries.
                        m.store_u64(LOG, 1);
                        m.store_u64(LOG + 8, new_a);
                        m.store_u64(LOG + 16, new_b);
                        persist(m, LOG, 24);
                    }
                    m.store_u64(A, new_a);
                    m.store_u64(B, new_b);
                    m.flush_range(A, 8);
                    m.flush_range(B, 8);
                    m.sfence();
                    m.store_u64(LOG, 0);
                    persist(m, LOG, 8);
                }
                Ok(())
            })
            .recover(|m| {
                if m.read_u64(LOG) == 1 {
                    let (a, b) = (m.read_u64(LOG + 8), m.read_u64(LOG + 16));
                    m.store_u64(A, a);
                    m.store_u64(B, b);
                    m.flush_range(A, 8);
                    m.flush_range(B, 8);
                    m.sfence();
                    m.store_u64(LOG, 0);
                    persist(m, LOG, 8);
                }
                Ok(())
            })
            .check(|m| {
                let (commit, a, b) = (m.read_u64(LOG), m.read_u64(A), m.read_u64(B));
                if commit != 0 {
                    return Err("the redo log is still committed after recovery".into());
                }
                match a.wrapping_add(b) {
                    TOTAL => Ok(()),
                    sum => Err(format!("A {a} + B {b} = {sum}").into()),
                }
            })
    }

    pub(super) fn bug(ops: &[u64]) -> Scenario<'static> {
        scenario(ops, false)
    }

    pub(super) fn fixed(ops: &[u64]) -> Scenario<'static> {
        scenario(ops, true)
    }
}

mod replay {
    //! A counter and a log of deltas to add to it, applied (and cleared) by
    //! recovery. Delta `i` lives in bits `16 i ..`, so a delta applied twice
    //! never looks like a longer prefix of the log.
    use super::*;

    /// The resumable recovery's progress: 0 idle, 1 applying, 2 applying
    /// again after a crash during recovery.
    const PHASE: usize = 0;
    const COUNTER: usize = 512;
    /// Entries logged; the counter's value when the log was started.
    const COUNT: usize = 1024;
    const BASE: usize = 1032;
    const ENTRIES: usize = 1088;
    const CAPACITY: usize = 4;

    fn deltas(ops: &[u64]) -> Vec<u64> {
        ops.iter()
            .take(CAPACITY)
            .enumerate()
            .map(|(i, &op)| (op % 0x7fff + 1) << (16 * i))
            .collect()
    }

    fn logged_sum(m: &SimMedium) -> Result<u64, String> {
        let count = m.read_u64(COUNT) as usize;
        if count > CAPACITY {
            return Err(format!("the log counts {count} entries"));
        }
        Ok((0..count).fold(0u64, |sum, i| sum.wrapping_add(m.read_u64(ENTRIES + 8 * i))))
    }

    fn store_persisted(m: &mut SimMedium, at: usize, value: u64) {
        m.store_u64(at, value);
        persist(m, at, 8);
    }

    /// Bug: `counter += sum`. Twin: `counter = base + sum`.
    fn recover(m: &mut SimMedium, absolute: bool) -> StepResult {
        if m.read_u64(COUNT) == 0 {
            return Ok(());
        }
        let sum = logged_sum(m)?;
        let from = if absolute {
            m.read_u64(BASE)
        } else {
            m.read_u64(COUNTER)
        };
        store_persisted(m, COUNTER, from.wrapping_add(sum));
        store_persisted(m, COUNT, 0);
        Ok(())
    }

    /// Records its phase; only the path for a second resumption differs
    /// between bug (`counter += sum`) and twin.
    fn recover_resumable(m: &mut SimMedium, absolute: bool) -> StepResult {
        let phase = m.read_u64(PHASE);
        if m.read_u64(COUNT) == 0 {
            if phase != 0 {
                store_persisted(m, PHASE, 0);
            }
            return Ok(());
        }
        let sum = logged_sum(m)?;
        let base = m.read_u64(BASE);
        match phase {
            0 | 1 => {
                store_persisted(m, PHASE, phase + 1);
                store_persisted(m, COUNTER, base.wrapping_add(sum));
            }
            _ => {
                // Resumed twice: the counter may already hold the sum.
                let from = if absolute { base } else { m.read_u64(COUNTER) };
                store_persisted(m, COUNTER, from.wrapping_add(sum));
            }
        }
        store_persisted(m, COUNT, 0);
        store_persisted(m, PHASE, 0);
        Ok(())
    }

    fn scenario(
        ops: &[u64],
        recover: impl Fn(&mut SimMedium) -> StepResult + Send + Sync + 'static,
    ) -> Scenario<'static> {
        let written = deltas(ops);
        let prefixes: Vec<u64> = std::iter::once(0)
            .chain(written.iter().scan(0u64, |sum, &d| {
                *sum = sum.wrapping_add(d);
                Some(*sum)
            }))
            .collect();
        Scenario::new(4096)
            .run(move |m| {
                // Appends only: the log is applied by the next recovery.
                for (i, &delta) in written.iter().enumerate() {
                    if i == 0 {
                        let counter = m.read_u64(COUNTER);
                        store_persisted(m, BASE, counter);
                    }
                    store_persisted(m, ENTRIES + 8 * i, delta);
                    store_persisted(m, COUNT, i as u64 + 1);
                }
                Ok(())
            })
            .recover(recover)
            .check(move |m| {
                if m.read_u64(COUNT) != 0 {
                    return Err("recovery left the log in place".into());
                }
                let counter = m.read_u64(COUNTER);
                if prefixes.contains(&counter) {
                    Ok(())
                } else {
                    Err(format!("counter {counter:#x} is no prefix sum of the log").into())
                }
            })
    }

    pub(super) fn bug(ops: &[u64]) -> Scenario<'static> {
        scenario(ops, |m| recover(m, false))
    }

    pub(super) fn fixed(ops: &[u64]) -> Scenario<'static> {
        scenario(ops, |m| recover(m, true))
    }

    pub(super) fn resumed_bug(ops: &[u64]) -> Scenario<'static> {
        scenario(ops, |m| recover_resumable(m, false))
    }

    pub(super) fn resumed_fixed(ops: &[u64]) -> Scenario<'static> {
        scenario(ops, |m| recover_resumable(m, true))
    }
}

mod checksum {
    //! One record per operation: data (value, !value) in one line, its
    //! checksum (CRC-32, never zero) in the next, both under one fence.
    use super::*;

    const RECORDS: usize = 1024;
    const CAPACITY: usize = 4;

    fn record(i: usize) -> usize {
        RECORDS + 128 * i
    }

    fn checksum(a: u64, b: u64) -> u64 {
        let mut hasher = crc32fast::Hasher::new();
        hasher.update(&a.to_le_bytes());
        hasher.update(&b.to_le_bytes());
        u64::from(hasher.finalize()) | 1 << 32
    }

    fn scenario(ops: &[u64], verify: bool) -> Scenario<'static> {
        let written: Vec<u64> = ops.iter().copied().take(CAPACITY).collect();
        let expected = written.clone();
        Scenario::new(4096)
            .run(move |m| {
                for (i, &value) in written.iter().enumerate() {
                    let at = record(i);
                    m.store_u64(at, value);
                    m.store_u64(at + 8, !value);
                    m.store_u64(at + 64, checksum(value, !value));
                    m.flush_range(at, 16);
                    m.flush_range(at + 64, 8);
                    m.sfence();
                }
                Ok(())
            })
            .check(move |m| {
                for i in 0..CAPACITY {
                    let at = record(i);
                    let (a, b, sum) = (m.read_u64(at), m.read_u64(at + 8), m.read_u64(at + 64));
                    // The bug: a set checksum is taken to mean the data is there.
                    let trusted = sum != 0 && (!verify || sum == checksum(a, b));
                    if trusted && (b != !a || expected.get(i) != Some(&a)) {
                        return Err(format!("record {i}: the reader took ({a:#x}, {b:#x})").into());
                    }
                }
                Ok(())
            })
    }

    pub(super) fn bug(ops: &[u64]) -> Scenario<'static> {
        scenario(ops, false)
    }

    pub(super) fn fixed(ops: &[u64]) -> Scenario<'static> {
        scenario(ops, true)
    }
}

mod lock {
    //! A lock word in persistent memory guarding a data word; each
    //! operation locks, writes, unlocks, each step persisted.
    use super::*;

    const LOCK: usize = 0;
    const DATA: usize = 64;

    fn scenario(ops: &[u64], reset: bool) -> Scenario<'static> {
        let written = ops.to_vec();
        let expected = written.clone();
        Scenario::new(4096)
            .run(move |m| {
                for &value in &written {
                    m.store_u64(LOCK, 1);
                    persist(m, LOCK, 8);
                    m.store_u64(DATA, value);
                    persist(m, DATA, 8);
                    m.store_u64(LOCK, 0);
                    persist(m, LOCK, 8);
                }
                Ok(())
            })
            .recover(move |m| {
                // Nobody holds a lock after a restart.
                if reset && m.read_u64(LOCK) != 0 {
                    m.store_u64(LOCK, 0);
                    persist(m, LOCK, 8);
                }
                Ok(())
            })
            .check(move |m| {
                if m.read_u64(LOCK) != 0 {
                    return Err(
                        "the lock is still held after recovery: the next operation waits forever"
                            .into(),
                    );
                }
                match m.read_u64(DATA) {
                    0 => Ok(()),
                    data if expected.contains(&data) => Ok(()),
                    data => Err(format!("data {data}").into()),
                }
            })
    }

    pub(super) fn bug(ops: &[u64]) -> Scenario<'static> {
        scenario(ops, false)
    }

    pub(super) fn fixed(ops: &[u64]) -> Scenario<'static> {
        scenario(ops, true)
    }
}

mod range {
    //! A buffer of 32 words holding records; a range names the current one.
    //! The first record (4 words at 0) is there from the set-up; operation
    //! `j` writes its record at word `8 + 4 j`, then publishes its range.
    use super::*;

    /// Bug: start (word 0) and end (word 1). Twin: `start | end << 32`.
    const RANGE: usize = 0;
    const BUF: usize = 1024;
    const WORDS: usize = 32;
    const FIRST: u64 = u64::MAX;
    const CAPACITY: usize = 4;

    /// Operation `j`'s record: its range and the value filling it.
    fn record(j: usize, op: u64) -> (usize, usize, u64) {
        let start = 8 + 4 * j;
        (start, start + (op % 4) as usize + 1, op)
    }

    fn publish(m: &mut SimMedium, start: usize, end: usize, packed: bool) {
        if packed {
            m.store_u64(RANGE, start as u64 | (end as u64) << 32);
            persist(m, RANGE, 8);
        } else {
            m.store_u64(RANGE, start as u64);
            m.store_u64(RANGE + 8, end as u64);
            persist(m, RANGE, 16);
        }
    }

    fn range_of(m: &SimMedium, packed: bool) -> (usize, usize) {
        if packed {
            let word = m.read_u64(RANGE);
            ((word & 0xffff_ffff) as usize, (word >> 32) as usize)
        } else {
            (m.read_u64(RANGE) as usize, m.read_u64(RANGE + 8) as usize)
        }
    }

    fn scenario(ops: &[u64], packed: bool) -> Scenario<'static> {
        let records: Vec<_> = ops
            .iter()
            .take(CAPACITY)
            .enumerate()
            .map(|(j, &op)| record(j, op))
            .collect();
        let expected = records.clone();
        Scenario::new(4096)
            .setup(move |m| {
                for i in 0..4 {
                    m.store_u64(BUF + 8 * i, FIRST);
                }
                publish(m, 0, 4, packed);
                Ok(())
            })
            .run(move |m| {
                for &(start, end, value) in &records {
                    for w in start..end {
                        m.store_u64(BUF + 8 * w, value);
                    }
                    persist(m, BUF + 8 * start, 8 * (end - start));
                    publish(m, start, end, packed);
                }
                Ok(())
            })
            .recover(move |m| {
                // Rebuilds a volatile summary of the current record.
                let (start, end) = range_of(m, packed);
                let buf: [u64; WORDS] = words(m, BUF);
                let current = if packed {
                    buf.get(start..end)
                        .ok_or_else(|| format!("range {start}..{end} outside the buffer"))?
                } else {
                    &buf[start..end] // the bug: panics on a torn range
                };
                std::hint::black_box(current.iter().fold(0u64, |s, &w| s.wrapping_add(w)));
                Ok(())
            })
            .check(move |m| {
                let (start, end) = range_of(m, packed);
                let buf: [u64; WORDS] = words(m, BUF);
                let current = buf
                    .get(start..end)
                    .ok_or_else(|| format!("range {start}..{end} outside the buffer"))?;
                let first = (start, end) == (0, 4) && current.iter().all(|&w| w == FIRST);
                let written = expected
                    .iter()
                    .any(|&(s, e, v)| (s, e) == (start, end) && current.iter().all(|&w| w == v));
                if first || written {
                    Ok(())
                } else {
                    Err(format!("range {start}..{end} holds {current:?}").into())
                }
            })
    }

    pub(super) fn bug(ops: &[u64]) -> Scenario<'static> {
        scenario(ops, false)
    }

    pub(super) fn fixed(ops: &[u64]) -> Scenario<'static> {
        scenario(ops, true)
    }
}

mod streamed {
    //! One 64-byte block per operation, copied with non-temporal stores into
    //! its own line, then counted by a flag word.
    use super::*;

    const FLAG: usize = 0;
    const BLOCKS: usize = 1024;
    const CAPACITY: usize = 8;

    fn block(op: u64) -> [u8; 64] {
        let mut bytes = [0u8; 64];
        for (k, word) in bytes.chunks_exact_mut(8).enumerate() {
            word.copy_from_slice(&op.wrapping_add(1 + 1000 * k as u64).to_le_bytes());
        }
        bytes
    }

    fn scenario(ops: &[u64], fenced: bool) -> Scenario<'static> {
        let written: Vec<u64> = ops.iter().copied().take(CAPACITY).collect();
        let expected = written.clone();
        Scenario::new(4096)
            .run(move |m| {
                for (i, &op) in written.iter().enumerate() {
                    m.store_nontemporal(BLOCKS + 64 * i, &block(op));
                    if fenced {
                        m.sfence();
                    } // the bug: nothing drains the write-combining buffers
                    m.store_u64(FLAG, i as u64 + 1);
                    persist(m, FLAG, 8);
                }
                Ok(())
            })
            .check(move |m| {
                let count = m.read_u64(FLAG) as usize;
                for i in 0..count {
                    let mut found = [0u8; 64];
                    m.read(BLOCKS + 64 * i, &mut found);
                    if expected.get(i).map(|&op| block(op)) != Some(found) {
                        return Err(format!("flag {count} but block {i} is incomplete").into());
                    }
                }
                Ok(())
            })
    }

    pub(super) fn bug(ops: &[u64]) -> Scenario<'static> {
        scenario(ops, false)
    }

    pub(super) fn fixed(ops: &[u64]) -> Scenario<'static> {
        scenario(ops, true)
    }
}

mod unflushed {
    //! One value per operation, each in its own line, counted by a flag
    //! word persisted after it.
    use super::*;

    const FLAG: usize = 0;
    const VALUES: usize = 1024;
    const CAPACITY: usize = 8;

    fn slot(i: usize) -> usize {
        VALUES + 64 * i
    }

    fn scenario(ops: &[u64], flushed: bool) -> Scenario<'static> {
        let written: Vec<u64> = ops.iter().copied().take(CAPACITY).collect();
        let expected = written.clone();
        Scenario::new(4096)
            .run(move |m| {
                for (i, &value) in written.iter().enumerate() {
                    m.store_u64(slot(i), value);
                    if flushed {
                        m.flush_range(slot(i), 8);
                    } // the bug: the fence has no write-back to wait for
                    m.sfence();
                    m.store_u64(FLAG, i as u64 + 1);
                    persist(m, FLAG, 8);
                }
                Ok(())
            })
            .check(move |m| {
                let count = m.read_u64(FLAG) as usize;
                for i in 0..count {
                    let found = m.read_u64(slot(i));
                    if expected.get(i) != Some(&found) {
                        return Err(format!("flag {count} but value {i} is {found}").into());
                    }
                }
                Ok(())
            })
    }

    pub(super) fn bug(ops: &[u64]) -> Scenario<'static> {
        scenario(ops, false)
    }

    pub(super) fn fixed(ops: &[u64]) -> Scenario<'static> {
        scenario(ops, true)
    }
}

/// A node of `pointer_published_before_object`'s list.
#[derive(Clone, Copy, Persist)]
#[repr(C)]
struct ListNode {
    value: u64,
    /// `value ^ CHECK`: a node read before it was written fails it.
    check: u64,
    next: PPtr<ListNode>,
}

/// The root of `pointer_published_before_object`.
#[derive(Clone, Copy, Persist)]
#[repr(C)]
struct ListRoot {
    head: PPtr<ListNode>,
    /// Blank nodes, allocated by the set-up: node `i` is operation `i`'s.
    nodes: PSlice<ListNode>,
}

mod publish {
    //! A list onto which each operation pushes a node holding its value;
    //! the nodes are allocated (blank) by the set-up, so that the workload
    //! is only the writes and the links.
    use super::*;

    const CHECK: u64 = 0x5a5a_5a5a_5a5a_5a5a;
    const CAPACITY: usize = 4;

    fn open(m: &mut SimMedium) -> pmem_typed::Result<Pool<ListRoot, &mut SimMedium>> {
        Pool::open_on(m, "publish")
    }

    fn node(value: u64, next: PPtr<ListNode>) -> ListNode {
        ListNode {
            value,
            check: value ^ CHECK,
            next,
        }
    }

    fn scenario(ops: &[u64], persist_first: bool) -> Scenario<'static> {
        let written: Vec<u64> = ops.iter().copied().take(CAPACITY).collect();
        let expected = written.clone();
        Scenario::new(64 * 1024)
            .setup(|m| {
                let root = ListRoot {
                    head: PPtr::null(),
                    nodes: PSlice::empty(),
                };
                let mut pool = Pool::create_on(m, "publish", root)?;
                pool.alloc_slice_zeroed(pool.root().fields().nodes, CAPACITY as u64)?;
                Ok(())
            })
            .run(move |m| {
                let mut pool = open(m)?;
                let head = pool.root().fields().head;
                let nodes = pool.get(pool.root())?.nodes;
                for (i, &value) in written.iter().enumerate() {
                    let fresh = nodes.at(i as u64).ok_or("no blank node left")?;
                    let next = *pool.get(head)?;
                    if persist_first {
                        *pool.get_mut(fresh)? = node(value, next); // persisted as the guard drops
                        pool.publish(head, fresh)?;
                    } else {
                        // The bug: linked, then written.
                        pool.publish(head, fresh)?;
                        *pool.get_mut(fresh)? = node(value, next);
                    }
                }
                Ok(())
            })
            .recover(|m| {
                open(m)?;
                Ok(())
            })
            .check(move |m| {
                let pool = open(m)?;
                let mut found = Vec::new();
                let mut at = pool.get(pool.root())?.head;
                while !at.is_null() && found.len() <= expected.len() {
                    let n = pool.get(at)?;
                    if n.check != n.value ^ CHECK {
                        return Err(format!(
                            "after {found:?} the list reaches a node holding ({}, {:#x})",
                            n.value, n.check
                        )
                        .into());
                    }
                    found.push(n.value);
                    at = n.next;
                }
                found.reverse();
                if expected.starts_with(&found) {
                    Ok(())
                } else {
                    Err(format!("the list holds {found:?}, no prefix of {expected:?}").into())
                }
            })
    }

    pub(super) fn bug(ops: &[u64]) -> Scenario<'static> {
        scenario(ops, false)
    }

    pub(super) fn fixed(ops: &[u64]) -> Scenario<'static> {
        scenario(ops, true)
    }
}

/// The root of `torn_pslice_set`.
#[derive(Clone, Copy, Persist)]
#[repr(C)]
struct SliceRoot {
    /// The current version.
    data: PSlice<u64>,
    /// Version `j`'s block (`j + 1` elements), allocated by the set-up.
    blocks: PSlice<PSlice<u64>>,
}

mod torn_slice {
    //! A slice replaced by a new version per operation. Version `j` has
    //! `j + 1` elements, each tagged with `j`, so that no torn pairing of
    //! offset and length reads as a version; version 0 is the set-up's. The
    //! blocks are allocated by the set-up: the workload writes a version's
    //! elements (persisted), then publishes it.
    use super::*;

    const VERSIONS: usize = 5;

    fn open(m: &mut SimMedium) -> pmem_typed::Result<Pool<SliceRoot, &mut SimMedium>> {
        Pool::open_on(m, "slices")
    }

    fn version(j: usize, op: u64) -> Vec<u64> {
        (0..=j as u64)
            .map(|k| (j as u64 + 1) << 32 | op << 8 | k)
            .collect()
    }

    fn scenario(ops: &[u64], logged: bool) -> Scenario<'static> {
        let versions: Vec<Vec<u64>> = std::iter::once(version(0, 0))
            .chain(
                ops.iter()
                    .take(VERSIONS - 1)
                    .enumerate()
                    .map(|(j, &op)| version(j + 1, op)),
            )
            .collect();
        let written = versions.clone();
        Scenario::new(64 * 1024)
            .setup(|m| {
                let root = SliceRoot {
                    data: PSlice::empty(),
                    blocks: PSlice::empty(),
                };
                let mut pool = Pool::create_on(m, "slices", root)?;
                let root = pool.root().fields();
                let blocks = pool.alloc_slice_zeroed(root.blocks, VERSIONS as u64)?;
                for j in 0..VERSIONS {
                    let dest = blocks.at(j as u64).ok_or("no block")?;
                    pool.alloc_slice_zeroed(dest, j as u64 + 1)?;
                }
                let first = pool.get_slice(blocks)?[0];
                pool.copy_to_slice(first, 0, &version(0, 0))?;
                pool.set(root.data, first)?;
                Ok(())
            })
            .run(move |m| {
                let mut pool = open(m)?;
                let root = pool.root().fields();
                let blocks = pool.get(pool.root())?.blocks;
                for (j, values) in written.iter().enumerate().skip(1) {
                    let block = pool.get_slice(blocks)?[j];
                    pool.get_slice_mut(block)?.copy_from_slice(values);
                    if logged {
                        // Logged, then written: the old slice or the new.
                        pool.set(root.data, block)?;
                    } else {
                        // The bug: offset and length, two words, one step.
                        pool.get_mut(pool.root())?.data = block;
                    }
                }
                Ok(())
            })
            .recover(|m| {
                open(m)?;
                Ok(())
            })
            .check(move |m| {
                let pool = open(m)?;
                let root = pool.get(pool.root())?;
                let current = root.data;
                let values = pool.get_slice(current)?;
                if versions.iter().any(|v| v[..] == *values) {
                    Ok(())
                } else {
                    Err(format!(
                        "the slice (offset {:#x}, length {}) holds {values:x?}: no version written",
                        current.offset(),
                        current.len()
                    )
                    .into())
                }
            })
    }

    pub(super) fn bug(ops: &[u64]) -> Scenario<'static> {
        scenario(ops, false)
    }

    pub(super) fn fixed(ops: &[u64]) -> Scenario<'static> {
        scenario(ops, true)
    }
}

mod short_flush {
    //! One record of four words per operation, 48 bytes into a pair of
    //! lines (two words in each), then counted by a flag.
    use super::*;

    const FLAG: usize = 0;
    const RECORDS: usize = 1024;
    const CAPACITY: usize = 4;

    fn record(i: usize) -> usize {
        RECORDS + 128 * i + 48
    }

    fn contents(op: u64) -> [u64; 4] {
        std::array::from_fn(|k| op << 8 | (k as u64 + 1))
    }

    fn scenario(ops: &[u64], whole: bool) -> Scenario<'static> {
        let written: Vec<u64> = ops.iter().copied().take(CAPACITY).collect();
        let expected = written.clone();
        Scenario::new(4096)
            .run(move |m| {
                for (i, &op) in written.iter().enumerate() {
                    let at = record(i);
                    for (k, word) in contents(op).into_iter().enumerate() {
                        m.store_u64(at + 8 * k, word);
                    }
                    if whole {
                        m.flush_range(at, 32);
                    } else {
                        // The bug: one line from the line-aligned start.
                        m.flush_range(at & !63, 64);
                    }
                    m.sfence();
                    m.store_u64(FLAG, i as u64 + 1);
                    persist(m, FLAG, 8);
                }
                Ok(())
            })
            .check(move |m| {
                let count = m.read_u64(FLAG) as usize;
                for i in 0..count {
                    let found: [u64; 4] = words(m, record(i));
                    if expected.get(i).map(|&op| contents(op)) != Some(found) {
                        return Err(format!("flag {count} but record {i} is {found:?}").into());
                    }
                }
                Ok(())
            })
    }

    pub(super) fn bug(ops: &[u64]) -> Scenario<'static> {
        scenario(ops, false)
    }

    pub(super) fn fixed(ops: &[u64]) -> Scenario<'static> {
        scenario(ops, true)
    }
}

mod unaligned {
    //! An 8-byte value rewritten (and persisted) by each operation, copied
    //! in as bytes: 4 bytes past a word boundary, so two words, or aligned.
    //! Version `j` repeats one 32-bit half, distinct per version, so a torn
    //! read has two different halves.
    use super::*;

    const WORD_LINE: usize = 1024;

    fn version(j: usize, op: u64) -> u64 {
        let half = (j as u64 + 1) << 16 | op;
        half << 32 | half
    }

    fn scenario(ops: &[u64], at: usize) -> Scenario<'static> {
        let written: Vec<u64> = ops
            .iter()
            .enumerate()
            .map(|(j, &op)| version(j, op))
            .collect();
        let expected = written.clone();
        Scenario::new(4096)
            .run(move |m| {
                for &value in &written {
                    m.store(at, &value.to_le_bytes());
                    persist(m, at, 8);
                }
                Ok(())
            })
            .check(move |m| {
                let mut bytes = [0u8; 8];
                m.read(at, &mut bytes);
                match u64::from_le_bytes(bytes) {
                    0 => Ok(()),
                    found if expected.contains(&found) => Ok(()),
                    found => Err(format!("the value reads {found:#x}: half old, half new").into()),
                }
            })
    }

    pub(super) fn bug(ops: &[u64]) -> Scenario<'static> {
        scenario(ops, WORD_LINE + 4)
    }

    pub(super) fn fixed(ops: &[u64]) -> Scenario<'static> {
        scenario(ops, WORD_LINE + 8)
    }
}

mod promise {
    //! Inserts of one value per operation, each into its own line; insert
    //! `i` returns (milestone "insert {i} returned"), and every value whose
    //! insert returned must survive.
    use super::*;

    const VALUES: usize = 1024;
    const CAPACITY: usize = 8;

    fn slot(i: usize) -> usize {
        VALUES + 64 * i
    }

    fn returned(i: usize) -> String {
        format!("insert {i} returned")
    }

    fn scenario(ops: &[u64], fenced: bool) -> Scenario<'static> {
        let written: Vec<u64> = ops.iter().copied().take(CAPACITY).collect();
        let expected = written.clone();
        Scenario::new(4096)
            .run(move |m| {
                for (i, &value) in written.iter().enumerate() {
                    m.store_u64(slot(i), value);
                    m.flush_range(slot(i), 8);
                    if fenced {
                        m.sfence();
                        m.milestone(returned(i));
                    } else {
                        // The bug: it returns before the write-back is waited for.
                        m.milestone(returned(i));
                        m.sfence();
                    }
                }
                Ok(())
            })
            .check(move |m| {
                for (i, &value) in expected.iter().enumerate() {
                    let found = m.read_u64(slot(i));
                    if m.reached(&returned(i)) && found != value {
                        return Err(
                            format!("insert {i} returned but its slot holds {found}").into()
                        );
                    }
                }
                Ok(())
            })
    }

    pub(super) fn bug(ops: &[u64]) -> Scenario<'static> {
        scenario(ops, false)
    }

    pub(super) fn fixed(ops: &[u64]) -> Scenario<'static> {
        scenario(ops, true)
    }
}

/// What a check came to.
#[derive(Debug)]
enum Verdict {
    Passed,
    /// The checker reported a failure (its first line).
    Failed(String),
    /// The checker itself panicked.
    Panicked(String),
}

impl Verdict {
    fn of<T, E: Display>(check: impl FnOnce() -> Result<T, E>) -> Self {
        match catch_unwind(AssertUnwindSafe(check)) {
            Ok(Ok(_)) => Self::Passed,
            Ok(Err(e)) => Self::Failed(e.to_string()),
            Err(panic) => Self::Panicked(
                panic
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_default(),
            ),
        }
    }

    fn short(&self) -> String {
        match self {
            Self::Passed => "Ok".into(),
            Self::Failed(why) => format!("Err ({})", why.lines().next().unwrap_or_default()),
            Self::Panicked(why) => format!("PANIC ({why})"),
        }
    }
}

/// A failure, in one line: what broke and whether a crash during recovery did it.
fn summary(failure: &Failure) -> String {
    let during = if !failure.recovery_points.is_empty() {
        ", during recovery"
    } else {
        ""
    };
    format!("{:?}{during}: {}", failure.kind, failure.message)
}

/// Runs every entry's bug and twin under every profile with `check`,
/// prints the table and panics listing every verdict that is not the
/// expected one.
fn judge(mode: &str, check: impl Fn(Profile, Workload) -> Verdict) {
    let mut table = Vec::new();
    let mut wrong = Vec::new();
    for entry in ENTRIES {
        for profile in PROFILES {
            for (which, workload, should_fail) in [
                ("bug", entry.bug, entry.bites.contains(&profile)),
                ("fixed", entry.fixed, false),
            ] {
                let verdict = check(profile, workload);
                let right = match verdict {
                    Verdict::Passed => !should_fail,
                    Verdict::Failed(_) => should_fail,
                    Verdict::Panicked(_) => false,
                };
                let line = format!(
                    "{} {which} {profile:?}: expected {}, got {}",
                    entry.name,
                    if should_fail { "Err" } else { "Ok" },
                    verdict.short()
                );
                if !right {
                    wrong.push(line.clone());
                }
                table.push(format!("{} {line}", if right { "  " } else { "!!" }));
            }
        }
    }
    eprintln!("{mode} mode:\n{}", table.join("\n"));
    assert!(
        wrong.is_empty(),
        "{mode} mode: {} wrong verdicts:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

#[test]
fn exhaustive_mode_finds_every_bug_and_passes_every_twin() {
    judge("exhaustive", |profile, workload| {
        let explorer = Explorer::new().profile(profile);
        Verdict::of(|| explorer.explore(&workload(&OPS)).map_err(|f| summary(&f)))
    });
}

#[test]
fn proptest_mode_finds_every_bug_and_passes_every_twin() {
    judge("proptest", |profile, workload| {
        let explorer = Explorer::new().profile(profile);
        let config = Config {
            cases: 8,
            failure_persistence: None,
            // The same cases every run: a verdict must not depend on luck.
            rng_seed: RngSeed::Fixed(0x5eed),
            ..Config::default()
        };
        let ops = prop::collection::vec(1u64..100, 1..4);
        Verdict::of(|| {
            check_workloads(&explorer, config, ops, workload)
                .map_err(|found| format!("{:?}: {}", found.ops, summary(&found.failure)))
        })
    });
}
