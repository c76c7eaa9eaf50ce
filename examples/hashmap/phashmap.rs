//! A persistent hash map without transactions, in the style of libpmemobj's
//! `hashmap_atomic` example: buckets of singly linked entry lists, changed
//! only by failure-atomic allocation, publication and free.
//!
//! # Layout
//!
//! ```text
//! MapRoot (the pool's root)
//!   table0, table1: PSlice<PPtr<Entry>>  two bucket arrays; `current` names the
//!   current: u64                         one in use, the other is empty except
//!                                        during a resize
//!   count: u64                           number of entries, possibly stale
//!   moving: PPtr<Entry>                  the entry a resize is moving, or null
//!
//! Entry (48 bytes, in a 64-byte block): key u64 | value [u8; 32] | next PPtr<Entry>
//! ```
//!
//! A key lives in bucket `mix(key) % buckets` of the current array. An
//! entry's key and value are never written after it is published (an update
//! publishes a new entry); its `next` changes only by single 8-byte stores.
//!
//! # Operations, and why a crash anywhere is harmless
//!
//! Every step is one of the pool's failure-atomic operations: `alloc` (the
//! entry's value is durable before the pointer that publishes it, and the
//! block is allocated if and only if it is published), `free_and_publish`
//! (unlink and free in one step), or an 8-byte `set`/`publish` that is
//! persisted before the next step starts.
//!
//! - **Insert of a new key**: `alloc` the entry at the head of its bucket,
//!   with `next` = the old head. Either it is in the map or it never was.
//!   Then `count` is stored: a crash before that leaves `count` stale.
//! - **Update**: `alloc` a new entry at the head of the bucket, then
//!   `free_and_publish` the old entry's predecessor link to the old entry's
//!   successor. In between, the key is in the chain twice, the new entry
//!   first, so lookups already see the new value; opening the map removes
//!   the later duplicate of any key (the update finished). A key never has
//!   two entries after a completed update, and no entry is ever torn: its
//!   value is durable before it is published, and never written again.
//! - **Remove**: `free_and_publish(link, entry.next)`, where `link` is the
//!   bucket slot or the predecessor's `next`: unlinking and freeing are one
//!   failure-atomic step. Then `count` is stored.
//! - **Resize** to `n` buckets: `alloc_slice_zeroed` the spare array (it is
//!   published in the unused table field, atomically with its allocation);
//!   move the entries one at a time from the head of each old bucket:
//!
//!   1. `moving = E` (E is now reachable from its old bucket and `moving`);
//!   2. old slot = `E.next` (E is reachable from `moving` only);
//!   3. `E.next` = head of its new bucket;
//!   4. new slot = E (reachable from `moving` and its new bucket);
//!   5. `moving = null`.
//!
//!   Then `current` is switched with one 8-byte store, and the old array is
//!   freed with `free_slice`. An entry is thus always reachable from the root,
//!   and from two places only through `moving`, which opening resolves.
//!
//! # Recovery, on every open
//!
//! 1. If `moving` is set, its entry is looked up by pointer in its old and
//!    its new bucket; found in either, the move had not started or was done;
//!    found in neither, steps 3 and 4 are redone. Then `moving` is cleared.
//! 2. Every chain is walked: a key seen again in the same chain is the old
//!    half of an interrupted update and is unlinked and freed. (This runs
//!    before a resize is finished, because moving reverses the order of a
//!    chain, and with it which of two duplicates comes first.) Entries
//!    reached twice, or in the wrong bucket, are reported as corruption.
//! 3. If the spare array is allocated: holding any entry, the resize had
//!    started moving and is finished (moves, switch, free); holding none,
//!    either nothing was moved yet or the switch was done, and in both cases
//!    all entries are in the current array, so the spare is freed.
//! 4. `count` is set to the number of entries if it differs.
//!
//! Each repair step is itself one of the atomic steps above, so a crash
//! during recovery leaves a state recovery handles. A pool created without
//! its first bucket array (a crash during `create`) gets one at open.
//!
//! `tests/example_hashmap.rs` checks all of this with the crash simulator:
//! every image a crash can leave in workloads of inserts, updates, removes
//! and resizes (and in the recovery of each) opens to one of the states the
//! program went through, with no leak and no dangling pointer.
//!
//! Opening is O(entries): the price of a stale `count` and of resizes with
//! no log. (libpmemobj's example keeps a "count dirty" flag to recount only
//! after a crash; with duplicates to remove after an interrupted update, this
//! map would need the same flag for those too.)

use std::collections::HashSet;
use std::fmt;
use std::path::Path;

use pmem_typed::{
    CheckReport, Error, Expected, FileMedium, Medium, PPtr, PSlice, Persist, Pool, Result,
};

/// The pool's layout name.
pub(crate) const LAYOUT: &str = "phashmap";
/// Buckets of a map whose creation was interrupted before its first array.
pub(crate) const DEFAULT_BUCKETS: u64 = 16;
/// The map doubles its buckets when it holds more than this many entries per bucket.
pub(crate) const MAX_LOAD: u64 = 2;

/// A value: 32 bytes, written once per entry.
pub(crate) type Value = [u8; 32];
/// A bucket array: the head of each bucket's chain.
pub(crate) type Table = PSlice<PPtr<Entry>>;

/// One key and its value, linked into a bucket's chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Persist)]
#[repr(C)]
pub(crate) struct Entry {
    pub(crate) key: u64,
    pub(crate) value: Value,
    pub(crate) next: PPtr<Entry>,
}

/// The pool's root: the map.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Persist)]
#[repr(C)]
pub(crate) struct MapRoot {
    pub(crate) table0: Table,
    pub(crate) table1: Table,
    /// Which table is in use: 0 or 1.
    pub(crate) current: u64,
    /// Number of entries; may be one operation behind after a crash.
    pub(crate) count: u64,
    /// The entry a resize is moving, or null.
    pub(crate) moving: PPtr<Entry>,
}

impl MapRoot {
    /// Table `index` (0 or 1).
    pub(crate) fn table(&self, index: u64) -> Table {
        if index == 0 { self.table0 } else { self.table1 }
    }

    /// The table in use.
    pub(crate) fn current_table(&self) -> Table {
        self.table(self.current)
    }

    /// The other table: empty outside of a resize.
    pub(crate) fn spare_table(&self) -> Table {
        self.table(1 - self.current)
    }
}

/// The bucket of `key` in an array of `buckets` (SplitMix64's finaliser).
pub(crate) fn bucket_of(key: u64, buckets: u64) -> u64 {
    let mut z = key.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    (z ^ (z >> 31)) % buckets.max(1)
}

/// What opening found to repair. `Default` is "nothing".
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Recovery {
    /// The pool had no bucket array (its creation was interrupted).
    pub(crate) created_table: bool,
    /// A resize was interrupted while moving an entry.
    pub(crate) moving: Option<MoveRepair>,
    /// Duplicate keys removed (interrupted updates).
    pub(crate) duplicates_removed: u64,
    /// A resize was interrupted.
    pub(crate) resize: Option<ResizeRepair>,
    /// The stored count was stale: (stored, actual).
    pub(crate) count: Option<(u64, u64)>,
}

/// Where the entry in `moving` was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum MoveRepair {
    /// Still in its old bucket: the move had not started.
    NotStarted,
    /// Already in its new bucket: only `moving` was left to clear.
    AlreadyMoved,
    /// In neither: it was linked into its new bucket.
    Finished,
}

/// What was done with an interrupted resize.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ResizeRepair {
    /// Entries had been moved: the rest were moved and the arrays switched.
    Finished {
        /// Buckets before.
        from: u64,
        /// Buckets after.
        to: u64,
    },
    /// The spare array held no entry (nothing moved yet, or the switch was
    /// done): it was freed.
    SpareFreed {
        /// Its buckets.
        buckets: u64,
    },
}

impl Recovery {
    /// Whether opening found nothing to repair.
    pub(crate) fn is_clean(&self) -> bool {
        *self == Self::default()
    }
}

impl fmt::Display for Recovery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_clean() {
            return f.write_str("nothing to repair");
        }
        let mut parts = Vec::new();
        if self.created_table {
            parts.push("created the missing bucket array".to_owned());
        }
        if let Some(moving) = self.moving {
            parts.push(format!("resolved an interrupted move ({moving:?})"));
        }
        if self.duplicates_removed > 0 {
            parts.push(format!(
                "removed {} stale duplicate(s) of interrupted updates",
                self.duplicates_removed
            ));
        }
        match self.resize {
            Some(ResizeRepair::Finished { from, to }) => {
                parts.push(format!("finished a resize from {from} to {to} buckets"));
            }
            Some(ResizeRepair::SpareFreed { buckets }) => {
                parts.push(format!("freed a spare array of {buckets} buckets"));
            }
            None => {}
        }
        if let Some((stored, actual)) = self.count {
            parts.push(format!("count {stored} repaired to {actual}"));
        }
        f.write_str(&parts.join("; "))
    }
}

fn corrupt(what: String) -> Error {
    Error::inconsistent(what)
}

fn check_buckets(buckets: u64) -> Result<()> {
    if buckets == 0 {
        return Err(Error::InvalidArgument {
            argument: "buckets",
            found: buckets,
            expected: Expected::AtLeast(1),
        });
    }
    Ok(())
}

/// An entry found by key: the link that points to it, and its contents.
#[derive(Clone, Copy, Debug)]
struct Found {
    link: PPtr<PPtr<Entry>>,
    entry: Entry,
}

/// A persistent hash map from `u64` to [`Value`], in a pool on medium `M`.
pub(crate) struct PHashMap<M: Medium = FileMedium> {
    pool: Pool<MapRoot, M>,
    /// The number of entries (exact; the stored `count` may lag after a crash).
    len: u64,
    recovery: Recovery,
}

impl<M: Medium> fmt::Debug for PHashMap<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PHashMap")
            .field("len", &self.len)
            .field("recovery", &self.recovery)
            .finish_non_exhaustive()
    }
}

impl PHashMap<FileMedium> {
    /// Creates a pool file of `pool_size` bytes at `path` holding an empty
    /// map of `buckets` buckets.
    ///
    /// # Errors
    /// As for [`Pool::create`]; [`Error::InvalidArgument`] for 0 buckets.
    pub(crate) fn create(path: impl AsRef<Path>, pool_size: usize, buckets: u64) -> Result<Self> {
        check_buckets(buckets)?;
        Self::init(Pool::create(path, LAYOUT, pool_size)?, buckets)
    }

    /// Opens the map at `path`, repairing what a crash left (see the module docs).
    ///
    /// # Errors
    /// As for [`Pool::open`]; [`Error::Inconsistent`] if the map's structure is broken.
    pub(crate) fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::recover(Pool::open(path, LAYOUT)?)
    }
}

impl<M: Medium> PHashMap<M> {
    /// Creates an empty map of `buckets` buckets on `medium`.
    ///
    /// # Errors
    /// As for [`Pool::create_on`]; [`Error::InvalidArgument`] for 0 buckets.
    pub(crate) fn create_on(medium: M, buckets: u64) -> Result<Self> {
        check_buckets(buckets)?;
        let root = MapRoot {
            table0: PSlice::empty(),
            table1: PSlice::empty(),
            current: 0,
            count: 0,
            moving: PPtr::null(),
        };
        Self::init(Pool::create_on(medium, LAYOUT, root)?, buckets)
    }

    /// Opens the map on `medium`, repairing what a crash left.
    ///
    /// # Errors
    /// As for [`Pool::open_on`]; [`Error::Inconsistent`] if the map's structure is broken.
    pub(crate) fn open_on(medium: M) -> Result<Self> {
        Self::recover(Pool::open_on(medium, LAYOUT)?)
    }

    fn init(mut pool: Pool<MapRoot, M>, buckets: u64) -> Result<Self> {
        let table0 = pool.root().fields().table0;
        pool.alloc_slice_zeroed(table0, buckets)?;
        // INVARIANT: `len` counts the entries: none in a new array.
        Ok(Self {
            pool,
            len: 0,
            recovery: Recovery::default(),
        })
    }

    fn recover(pool: Pool<MapRoot, M>) -> Result<Self> {
        // INVARIANT: `repair` sets `len` to the entries it counted; the map
        // is only returned if it succeeded.
        let mut map = Self {
            pool,
            len: 0,
            recovery: Recovery::default(),
        };
        map.repair()?;
        Ok(map)
    }

    /// What opening repaired.
    pub(crate) fn recovery(&self) -> &Recovery {
        &self.recovery
    }

    /// The pool (for inspection).
    pub(crate) fn pool(&self) -> &Pool<MapRoot, M> {
        &self.pool
    }

    /// Closes the map, giving the medium back.
    pub(crate) fn into_medium(self) -> M {
        self.pool.into_medium()
    }

    /// Checks the pool: no leaked block, no dangling pointer.
    pub(crate) fn check(&self) -> CheckReport {
        self.pool.check()
    }

    /// Number of entries.
    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    /// Whether the map is empty.
    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of buckets.
    ///
    /// # Errors
    /// [`Error::BadPointer`] if the root cannot be read.
    pub(crate) fn buckets(&self) -> Result<u64> {
        Ok(self.root()?.current_table().len())
    }

    /// The value of `key`.
    ///
    /// # Errors
    /// [`Error::BadPointer`] for a broken chain.
    pub(crate) fn get(&self, key: u64) -> Result<Option<Value>> {
        let table = self.root()?.current_table();
        let slot = self.slot(table, bucket_of(key, table.len()))?;
        Ok(self.find(slot, key)?.map(|found| found.entry.value))
    }

    /// Whether `key` is in the map.
    ///
    /// # Errors
    /// As for [`get`](Self::get).
    pub(crate) fn contains_key(&self, key: u64) -> Result<bool> {
        Ok(self.get(key)?.is_some())
    }

    /// Sets `key` to `value`, returning the value it replaces. May grow the
    /// bucket array (see [`MAX_LOAD`]).
    ///
    /// # Errors
    /// [`Error::OutOfSpace`] if the entry cannot be allocated (the map is
    /// unchanged); [`Error::BadPointer`] for a broken chain.
    pub(crate) fn insert(&mut self, key: u64, value: Value) -> Result<Option<Value>> {
        let table = self.root()?.current_table();
        let slot = self.slot(table, bucket_of(key, table.len()))?;
        let old = self.find(slot, key)?;
        let head = *self.pool.get(slot)?;
        // Publish the new entry at the head: it shadows an old one of the same key.
        let new = self.pool.alloc(
            slot,
            Entry {
                key,
                value,
                next: head,
            },
        )?;
        if let Some(old) = old {
            // Unlink and free the shadowed entry in one step. Its link is
            // unchanged, unless it was the bucket's head: then it is now the
            // new entry's `next`.
            let link = if old.link == slot {
                new.fields().next
            } else {
                old.link
            };
            self.pool.free_and_publish(link, old.entry.next)?;
            return Ok(Some(old.entry.value));
        }
        self.len += 1;
        self.store_count()?;
        if self.len > MAX_LOAD.saturating_mul(table.len()) {
            match self.resize(table.len().saturating_mul(2)) {
                // No room for a larger array: the map stays as it is, only slower.
                Err(Error::OutOfSpace { .. }) => {}
                other => other?,
            }
        }
        Ok(None)
    }

    /// Removes `key`, returning its value.
    ///
    /// # Errors
    /// [`Error::BadPointer`] for a broken chain.
    pub(crate) fn remove(&mut self, key: u64) -> Result<Option<Value>> {
        let table = self.root()?.current_table();
        let slot = self.slot(table, bucket_of(key, table.len()))?;
        let Some(found) = self.find(slot, key)? else {
            return Ok(None);
        };
        self.pool.free_and_publish(found.link, found.entry.next)?;
        self.len = self.len.saturating_sub(1);
        self.store_count()?;
        Ok(Some(found.entry.value))
    }

    /// Rebuilds the map with `buckets` buckets, moving every entry.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for 0 buckets; [`Error::OutOfSpace`] if the
    /// new array cannot be allocated (the map is unchanged);
    /// [`Error::Inconsistent`] if an earlier resize was left unfinished (reopen
    /// the map to finish it).
    pub(crate) fn resize(&mut self, buckets: u64) -> Result<()> {
        check_buckets(buckets)?;
        let root = self.root()?;
        if !root.spare_table().is_empty() || !root.moving.is_null() {
            return Err(corrupt(
                "a resize is unfinished: reopen the map to finish it".to_owned(),
            ));
        }
        if root.current_table().len() == buckets {
            return Ok(());
        }
        let spare = self.table_field(1 - root.current);
        self.pool.alloc_slice_zeroed(spare, buckets)?;
        self.migrate()
    }

    /// The entries, bucket by bucket.
    pub(crate) fn iter(&self) -> Iter<'_, M> {
        let table = self
            .root()
            .and_then(|root| self.pool.get_slice(root.current_table()));
        let (heads, error) = match table {
            Ok(heads) => (heads, None),
            Err(e) => (&[][..], Some(e)),
        };
        Iter {
            pool: &self.pool,
            heads,
            bucket: 0,
            next: PPtr::null(),
            error,
        }
    }

    /// The entries, collected.
    ///
    /// # Errors
    /// The first error the iteration met.
    pub(crate) fn entries(&self) -> Result<Vec<(u64, Value)>> {
        self.iter().collect()
    }

    fn root(&self) -> Result<MapRoot> {
        self.pool.get(self.pool.root()).copied()
    }

    fn table_field(&self, index: u64) -> PPtr<Table> {
        let fields = self.pool.root().fields();
        if index == 0 {
            fields.table0
        } else {
            fields.table1
        }
    }

    /// The slot of bucket `bucket` of `table`.
    fn slot(&self, table: Table, bucket: u64) -> Result<PPtr<PPtr<Entry>>> {
        table.at(bucket).ok_or_else(|| {
            corrupt(format!(
                "bucket {bucket} is outside an array of {} buckets",
                table.len()
            ))
        })
    }

    fn store_count(&mut self) -> Result<()> {
        let count = self.pool.root().fields().count;
        self.pool.set(count, self.len)
    }

    /// The entry of `key` in the chain starting at `slot`.
    fn find(&self, slot: PPtr<PPtr<Entry>>, key: u64) -> Result<Option<Found>> {
        let mut link = slot;
        loop {
            let at = *self.pool.get(link)?;
            if at.is_null() {
                return Ok(None);
            }
            let entry = *self.pool.get(at)?;
            if entry.key == key {
                return Ok(Some(Found { link, entry }));
            }
            link = at.fields().next;
        }
    }

    /// Moves every entry of the current table into the spare one, switches
    /// them, and frees the old one (the module docs give the steps).
    fn migrate(&mut self) -> Result<()> {
        let root = self.root()?;
        let (from, to) = (root.current_table(), root.spare_table());
        for bucket in 0..from.len() {
            let slot = self.slot(from, bucket)?;
            loop {
                let at = *self.pool.get(slot)?;
                if at.is_null() {
                    break;
                }
                self.move_entry(slot, at, to)?;
            }
        }
        let current = self.pool.root().fields().current;
        self.pool.set(current, 1 - root.current)?;
        let old = self.table_field(root.current);
        self.pool.free_slice(old)
    }

    /// Moves the entry `at`, the head of the bucket at `slot`, to the head of
    /// its bucket in `to`.
    fn move_entry(&mut self, slot: PPtr<PPtr<Entry>>, at: PPtr<Entry>, to: Table) -> Result<()> {
        let entry = *self.pool.get(at)?;
        let moving = self.pool.root().fields().moving;
        self.pool.publish(moving, at)?;
        self.pool.publish(slot, entry.next)?;
        self.link_at_head(at, entry.key, to)?;
        self.pool.publish(moving, PPtr::null())
    }

    /// Makes `at` the head of its bucket in `to`: its `next` first, then the slot.
    fn link_at_head(&mut self, at: PPtr<Entry>, key: u64, to: Table) -> Result<()> {
        let slot = self.slot(to, bucket_of(key, to.len()))?;
        let head = *self.pool.get(slot)?;
        self.pool.publish(at.fields().next, head)?;
        self.pool.publish(slot, at)
    }

    /// Whether the chain of `key`'s bucket in `table` holds the entry `at`.
    fn chain_holds(&self, table: Table, key: u64, at: PPtr<Entry>) -> Result<bool> {
        let slot = self.slot(table, bucket_of(key, table.len()))?;
        let mut seen = HashSet::new();
        let mut next = *self.pool.get(slot)?;
        while !next.is_null() {
            if next == at {
                return Ok(true);
            }
            if !seen.insert(next) {
                return Err(corrupt(format!("a cycle in the chain at {next:?}")));
            }
            next = self.pool.get(next)?.next;
        }
        Ok(false)
    }

    /// Recovery: see the module docs.
    fn repair(&mut self) -> Result<()> {
        let mut root = self.root()?;
        if root.current > 1 {
            return Err(corrupt(format!(
                "the current table is {}, expected 0 or 1",
                root.current
            )));
        }
        if root.current_table().is_empty() {
            if !root.spare_table().is_empty() {
                return Err(corrupt(
                    "the current bucket array is missing, the spare is not".to_owned(),
                ));
            }
            let field = self.table_field(root.current);
            self.pool.alloc_slice_zeroed(field, DEFAULT_BUCKETS)?;
            self.recovery.created_table = true;
            root = self.root()?;
        }

        // 1. The entry a resize was moving.
        if !root.moving.is_null() {
            let at = root.moving;
            let key = self.pool.get(at)?.key;
            let from = root.current_table();
            let to = if root.spare_table().is_empty() {
                from
            } else {
                root.spare_table()
            };
            let outcome = if self.chain_holds(from, key, at)? {
                MoveRepair::NotStarted
            } else if self.chain_holds(to, key, at)? {
                MoveRepair::AlreadyMoved
            } else {
                self.link_at_head(at, key, to)?;
                MoveRepair::Finished
            };
            let moving = self.pool.root().fields().moving;
            self.pool.publish(moving, PPtr::null())?;
            self.recovery.moving = Some(outcome);
            root = self.root()?;
        }

        // 2. Duplicates, structure, and the count.
        let mut seen = HashSet::new();
        let mut count = 0;
        for table in [root.current_table(), root.spare_table()] {
            count += self.sweep(table, &mut seen)?;
        }

        // 3. An interrupted resize.
        let spare = root.spare_table();
        if !spare.is_empty() {
            let holds_entries = self.pool.get_slice(spare)?.iter().any(|p| !p.is_null());
            self.recovery.resize = Some(if holds_entries {
                self.migrate()?;
                ResizeRepair::Finished {
                    from: root.current_table().len(),
                    to: spare.len(),
                }
            } else {
                self.pool.free_slice(self.table_field(1 - root.current))?;
                ResizeRepair::SpareFreed {
                    buckets: spare.len(),
                }
            });
        }

        // 4. The count.
        self.len = count;
        if root.count != count {
            self.store_count()?;
            self.recovery.count = Some((root.count, count));
        }
        Ok(())
    }

    /// Walks every chain of `table`, removing later duplicates of a key and
    /// checking that each entry is in its bucket and reached once (`seen`
    /// spans both tables). Returns the number of entries kept.
    fn sweep(&mut self, table: Table, seen: &mut HashSet<PPtr<Entry>>) -> Result<u64> {
        let mut count = 0;
        for bucket in 0..table.len() {
            let mut keys = HashSet::new();
            let mut link = self.slot(table, bucket)?;
            loop {
                let at = *self.pool.get(link)?;
                if at.is_null() {
                    break;
                }
                if !seen.insert(at) {
                    return Err(corrupt(format!(
                        "entry {at:?} is reached twice (bucket {bucket} of {})",
                        table.len()
                    )));
                }
                let entry = *self.pool.get(at)?;
                let home = bucket_of(entry.key, table.len());
                if home != bucket {
                    return Err(corrupt(format!(
                        "key {} is in bucket {bucket} of {}, expected {home}",
                        entry.key,
                        table.len()
                    )));
                }
                if keys.insert(entry.key) {
                    count += 1;
                    link = at.fields().next;
                } else {
                    // The older half of an interrupted update: the first entry
                    // of a key in its chain is the newest.
                    self.pool.free_and_publish(link, entry.next)?;
                    self.recovery.duplicates_removed += 1;
                }
            }
        }
        Ok(count)
    }
}

/// The entries of a map, bucket by bucket; stops after an error.
pub(crate) struct Iter<'a, M: Medium> {
    pool: &'a Pool<MapRoot, M>,
    heads: &'a [PPtr<Entry>],
    bucket: usize,
    next: PPtr<Entry>,
    error: Option<Error>,
}

impl<M: Medium> fmt::Debug for Iter<'_, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Iter")
            .field("bucket", &self.bucket)
            .field("next", &self.next)
            .finish_non_exhaustive()
    }
}

impl<M: Medium> Iterator for Iter<'_, M> {
    type Item = Result<(u64, Value)>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(error) = self.error.take() {
            self.heads = &[];
            self.next = PPtr::null();
            return Some(Err(error));
        }
        while self.next.is_null() {
            let head = self.heads.get(self.bucket)?;
            self.bucket += 1;
            self.next = *head;
        }
        match self.pool.get(self.next) {
            Ok(entry) => {
                self.next = entry.next;
                Some(Ok((entry.key, entry.value)))
            }
            Err(error) => {
                self.heads = &[];
                self.next = PPtr::null();
                Some(Err(error))
            }
        }
    }
}
