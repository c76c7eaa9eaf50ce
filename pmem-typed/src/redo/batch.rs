//! The batch log: publishing many allocations, frees and stores in one
//! failure-atomic step ([`publish`]), and finding, checking and replaying
//! an interrupted one at open ([`LoggedBatch`]). Its bytes are
//! [`format::batch`](crate::format::batch)'s.
//!
//! # Protocol
//!
//! While the batch is open its blocks are *held* (reserved in the volatile
//! heap only) and written freely; nothing durable names them. Publishing:
//! 1. Each block's value is flushed and its CRC taken; the log (one entry
//!    per allocation, free and store, in that order) is written to the
//!    first page, or, when it does not fit there, to a held *extent* with
//!    an overflow entry in the first page. One fence makes values and log
//!    durable: the commit point.
//! 2. The entries are applied: bits or run states in the chunk tables, and
//!    the stores, in order. One fence.
//! 3. The log's header line is zeroed, flushed but not fenced, as
//!    [`RedoLog::run`](super::RedoLog::run) leaves its record.
//!
//! After a crash, a log whose CRC matches is replayed if every allocated
//! block still holds the value its entry's CRC covers, and dropped
//! otherwise: all of the batch or none of it. Replaying is idempotent, and
//! nothing a replay writes is read by it (stores may not touch the batch's
//! blocks or the extent), so a crash during recovery only repeats it.

use zerocopy::{FromZeros, IntoBytes, TryFromBytes};

use crate::error::{Error, Expected, Result, Structure};
use crate::format::batch::{
    BATCH_OFFSET, BLOCK_ENTRY_LEN, BatchHeader, Entry, INLINE_BYTES, LogKind, OVERFLOW_ENTRY_LEN,
};
use crate::format::heap::Geometry;
use crate::format::{LINE, PAGE};
use crate::heap::Heap;
use crate::heap::reserve::Reservation;
use crate::medium::{Medium, read_bytes};

use super::BlockChange;
use super::apply::{apply_block, validate_block, validate_dest};

/// A held block the batch allocates: where, and how many of its bytes are
/// its initial value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct HeldAlloc {
    /// The block.
    pub(crate) block: Reservation,
    /// Bytes of its value, from its start.
    pub(crate) value_len: u32,
}

/// What a batch publishes.
#[derive(Clone, Copy, Debug)]
pub(crate) struct BatchChanges<'a> {
    /// Blocks to allocate, held.
    pub(crate) allocs: &'a [HeldAlloc],
    /// Allocated blocks to free.
    pub(crate) frees: &'a [Reservation],
    /// Store entries, encoded, in program order.
    pub(crate) stores: &'a [u8],
    /// Held space for the entries when they do not fit the first page.
    pub(crate) extent: Option<Reservation>,
}

impl BatchChanges<'_> {
    /// Bytes of the batch's entries (overflow excluded).
    pub(crate) fn entry_bytes(&self) -> usize {
        (self.allocs.len() + self.frees.len()) * BLOCK_ENTRY_LEN + self.stores.len()
    }

    /// Whether there is nothing to publish.
    pub(crate) fn is_empty(&self) -> bool {
        self.allocs.is_empty() && self.frees.is_empty() && self.stores.is_empty()
    }
}

/// Bytes of extent a log of `entry_bytes` needs: none if it fits the first
/// page.
pub(crate) fn extent_needed(entry_bytes: usize) -> usize {
    if entry_bytes <= INLINE_BYTES {
        0
    } else {
        entry_bytes
    }
}

/// Publishes `changes` as the batch numbered `seq`: two fences. The
/// caller has flushed the blocks' values (those not written by a flushing
/// write), and then releases the held blocks and tells the heap what was
/// applied ([`Heap::note_applied`]); `log` is scratch space for the
/// entries.
///
/// # Safety
/// Every block in `changes` was reserved from `heap` and is held (allocs,
/// extent) or allocated (frees); the extent, if any, holds at least
/// [`entry_bytes`](BatchChanges::entry_bytes); every store's destination
/// was resolved for writing and lies outside the batch's blocks and the
/// extent; no reference into the pool is alive.
pub(crate) unsafe fn publish<M: Medium>(
    medium: &M,
    heap: &Heap,
    seq: u32,
    changes: &BatchChanges<'_>,
    log: &mut Vec<u8>,
) {
    let base = medium.base();
    // The header's place, filled in once the entries' CRC is known: header
    // and entries go to media in one write.
    const HEADER: usize = size_of::<BatchHeader>();
    log.clear();
    log.resize(HEADER, 0);
    for alloc in changes.allocs {
        let block = alloc.block.offset as usize;
        // SAFETY: the held block is inside the pool and nothing references
        // it (the caller's precondition).
        let value =
            unsafe { std::slice::from_raw_parts(base.add(block), alloc.value_len as usize) };
        Entry::Alloc {
            block: alloc.block.offset,
            block_size: alloc.block.size,
            value_len: alloc.value_len,
            value_crc: crc32fast::hash(value),
        }
        .encode(log);
    }
    for free in changes.frees {
        Entry::Free {
            block: free.offset,
            block_size: free.size,
        }
        .encode(log);
    }
    log.extend_from_slice(changes.stores);
    let entry_bytes = log.len() - HEADER;
    let header = BatchHeader {
        kind: LogKind::Batch,
        seq: seq.into(),
        ..BatchHeader::new_zeroed()
    };
    match changes.extent.filter(|_| entry_bytes > INLINE_BYTES) {
        None => {
            let header = BatchHeader {
                bytes: (entry_bytes as u32).into(),
                ..header
            }
            .sealed(&log[HEADER..]);
            log[..HEADER].copy_from_slice(header.as_bytes());
            // SAFETY: header and entries fit the first page (at most
            // `INLINE_BYTES` of entries), which nothing references.
            unsafe { medium.write(BATCH_OFFSET, log, false) };
        }
        Some(extent) => {
            let mut first = Vec::with_capacity(HEADER + OVERFLOW_ENTRY_LEN);
            first.resize(HEADER, 0);
            Entry::Overflow {
                extent: extent.offset,
            }
            .encode(&mut first);
            let header = BatchHeader {
                bytes: ((OVERFLOW_ENTRY_LEN + entry_bytes) as u32).into(),
                ..header
            };
            let mut hasher = crc32fast::Hasher::new();
            hasher.update(&header.as_bytes()[..12]);
            hasher.update(&first[HEADER..]);
            hasher.update(&log[HEADER..]);
            let header = BatchHeader {
                crc: hasher.finalize().into(),
                ..header
            };
            first[..HEADER].copy_from_slice(header.as_bytes());
            // SAFETY: the extent is held and holds the entries (the caller's
            // precondition), the header and overflow entry are in the first
            // page; nothing references either.
            unsafe {
                medium.write(extent.offset as usize, &log[HEADER..], false);
                medium.write(BATCH_OFFSET, &first, false);
            }
        }
    }
    // The commit point; it also makes the previous log's clear durable.
    medium.fence();
    let geometry = heap.geometry();
    for change in block_changes(changes) {
        // SAFETY: reserved or allocated in this heap (the caller's precondition).
        unsafe { apply_block(medium, geometry, &change) };
    }
    // SAFETY: resolved destinations, unreferenced (the caller's precondition).
    unsafe { apply_stores(medium, changes.stores) };
    medium.fence();
    // Zeroed as a line, for the reason given in `RedoLog::run`.
    // SAFETY: the header line is in the first page; nothing references it.
    unsafe { medium.fill(BATCH_OFFSET, 0, LINE, false) };
}

/// The chunk-table changes of `changes`: allocations, then frees.
pub(crate) fn block_changes<'a>(
    changes: &'a BatchChanges<'_>,
) -> impl Iterator<Item = BlockChange> + 'a {
    let allocs = changes.allocs.iter().map(|a| BlockChange {
        block: a.block.offset,
        size: a.block.size,
        alloc: true,
    });
    let frees = changes.frees.iter().map(|f| BlockChange {
        block: f.offset,
        size: f.size,
        alloc: false,
    });
    allocs.chain(frees)
}

/// Writes the stores `entries` holds (other entries are skipped), in
/// order; flushed, not fenced.
///
/// # Safety
/// Every store's destination is inside the pool and unreferenced.
unsafe fn apply_stores<M: Medium>(medium: &M, entries: &[u8]) {
    for entry in Entries(entries) {
        if let Entry::Store { dest, bytes } = entry {
            // SAFETY: forwarded from the caller.
            unsafe { medium.write(dest as usize, bytes, false) };
        }
    }
}

/// The entries encoded in a byte string, in order (stopping at the first
/// that does not decode).
#[derive(Clone, Copy)]
struct Entries<'a>(&'a [u8]);

impl<'a> Iterator for Entries<'a> {
    type Item = Entry<'a>;

    fn next(&mut self) -> Option<Entry<'a>> {
        let (entry, len) = Entry::decode(self.0)?;
        self.0 = &self.0[len..];
        Some(entry)
    }
}

/// A log found at open whose CRC matches, with its entries read (from the
/// first page and the extent).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct LoggedBatch {
    /// Its sequence number.
    pub(crate) seq: u32,
    /// Its entries, the overflow entry dropped.
    entries: Vec<u8>,
    /// Where the extent was and its bytes of entries, if it had one.
    extent: Option<(u64, u64)>,
}

/// What the batch log holds at open.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum BatchLine {
    /// A zero header line: no batch in flight.
    Empty,
    /// A whole log.
    Whole(LoggedBatch),
    /// Anything else: a log torn by a crash (or a cleared one whose clear
    /// was torn), no batch.
    Torn,
}

/// The error for a bad `field` of the batch log.
fn bad(field: &'static str, found: u64, expected: Expected) -> Error {
    Error::corrupt(
        Structure::BatchLog,
        BATCH_OFFSET as u64,
        field,
        found,
        expected,
    )
}

/// Reads the batch log. Reads only within the first page and, for an
/// overflowing log, within the pool.
///
/// # Safety
/// The medium holds at least a page, and no `&mut` into it is alive.
pub(crate) unsafe fn read_log<M: Medium>(medium: &M, geometry: &Geometry) -> BatchLine {
    // SAFETY: the header line is in the first page (the caller's precondition).
    let line: [u8; LINE] = unsafe { read_bytes(medium, BATCH_OFFSET) };
    if line == [0; LINE] {
        return BatchLine::Empty;
    }
    let Ok(header) = BatchHeader::try_read_from_bytes(&line[..size_of::<BatchHeader>()]) else {
        return BatchLine::Torn;
    };
    if header.kind != LogKind::Batch {
        return BatchLine::Torn;
    }
    let bytes = header.bytes.get() as usize;
    let inline_at = BATCH_OFFSET + size_of::<BatchHeader>();
    // SAFETY: the inline entries are in the first page.
    let inline = unsafe {
        std::slice::from_raw_parts(medium.base().add(inline_at), bytes.min(INLINE_BYTES))
    };
    let mut entries = Vec::with_capacity(bytes.min(INLINE_BYTES));
    let mut extent = None;
    let mut rest = inline;
    while !rest.is_empty() {
        let Some((entry, len)) = Entry::decode(rest) else {
            return BatchLine::Torn;
        };
        if let Entry::Overflow { extent: at } = entry {
            let consumed = inline.len() - rest.len() + len;
            let tail = (bytes - consumed.min(bytes)) as u64;
            let fits = at
                .checked_add(tail)
                .is_some_and(|end| at >= PAGE as u64 && end <= geometry.pool_size as u64);
            if !fits || bytes < consumed {
                return BatchLine::Torn;
            }
            // SAFETY: inside the pool (checked).
            let tail_bytes = unsafe {
                std::slice::from_raw_parts(medium.base().add(at as usize), tail as usize)
            };
            entries.extend_from_slice(tail_bytes);
            extent = Some((at, tail));
            let mut hasher = crc32fast::Hasher::new();
            hasher.update(&header.as_bytes()[..12]);
            hasher.update(&inline[..consumed]);
            hasher.update(tail_bytes);
            if hasher.finalize() != header.crc.get() {
                return BatchLine::Torn;
            }
            return BatchLine::Whole(LoggedBatch {
                seq: header.seq.get(),
                entries,
                extent,
            });
        }
        entries.extend_from_slice(&rest[..len]);
        rest = &rest[len..];
    }
    if bytes > INLINE_BYTES || !header.seals(inline) {
        return BatchLine::Torn;
    }
    BatchLine::Whole(LoggedBatch {
        seq: header.seq.get(),
        entries,
        extent,
    })
}

impl LoggedBatch {
    fn entries(&self) -> Entries<'_> {
        Entries(&self.entries)
    }

    /// The blocks the batch allocates, as (offset, size).
    fn alloc_blocks(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.entries().filter_map(|e| match e {
            Entry::Alloc {
                block, block_size, ..
            } => Some((block, block_size)),
            _ => None,
        })
    }

    /// Checks that every entry names something a replay can do on this
    /// pool, and that no store writes what the replay reads (the batch's
    /// blocks, whose values it checks, and the extent).
    ///
    /// # Errors
    /// [`Error::Corrupt`] describing the first problem.
    pub(crate) fn validate<M: Medium>(&self, medium: &M, geometry: &Geometry) -> Result<()> {
        let overlaps = |(at, len): (u64, u64), other: u64, other_len: u64| {
            at < other + other_len && other < at + len
        };
        if let Some((at, len)) = self.extent {
            validate_dest(geometry, at, len.max(1), &|_, found, expected| {
                bad("extent", found, expected)
            })?;
        }
        let mut rest = self.entries.as_slice();
        while !rest.is_empty() {
            let Some((entry, len)) = Entry::decode(rest) else {
                return Err(bad("kind", u64::from(rest[0]), Expected::KnownKind));
            };
            rest = &rest[len..];
            match entry {
                Entry::Alloc {
                    block,
                    block_size,
                    value_len,
                    ..
                } => {
                    let change = BlockChange {
                        block,
                        size: block_size,
                        alloc: true,
                    };
                    validate_block(medium, geometry, &change, &bad)?;
                    if u64::from(value_len) > block_size {
                        return Err(bad(
                            "value_len",
                            u64::from(value_len),
                            Expected::AtMost(block_size),
                        ));
                    }
                    if self.extent.is_some_and(|e| overlaps(e, block, block_size)) {
                        return Err(bad("block", block, Expected::OutsideTheLog));
                    }
                }
                Entry::Free { block, block_size } => {
                    let change = BlockChange {
                        block,
                        size: block_size,
                        alloc: false,
                    };
                    validate_block(medium, geometry, &change, &bad)?;
                }
                Entry::Store { dest, bytes } => {
                    let len = bytes.len() as u64;
                    validate_dest(geometry, dest, len, &bad)?;
                    if self.extent.is_some_and(|e| overlaps(e, dest, len))
                        || self.alloc_blocks().any(|b| overlaps(b, dest, len))
                    {
                        return Err(bad("dest", dest, Expected::OutsideTheLog));
                    }
                }
                Entry::Overflow { extent } => {
                    return Err(bad("extent", extent, Expected::OneOverflow));
                }
            }
        }
        Ok(())
    }

    /// Whether every block the batch allocates still holds the value its
    /// entry's CRC covers: else the values never all became durable, and
    /// none of the batch is replayed. Call after [`validate`](Self::validate).
    pub(crate) fn values_intact<M: Medium>(&self, medium: &M) -> bool {
        self.entries().all(|entry| match entry {
            Entry::Alloc {
                block,
                value_len,
                value_crc,
                ..
            } => {
                // SAFETY: validated: the block is in the pool, and holds
                // `value_len` bytes; nothing writes the medium while `&M`
                // is held without `unsafe` code whose precondition is that no
                // reference into it is alive.
                let value = unsafe {
                    std::slice::from_raw_parts(
                        medium.base().add(block as usize),
                        value_len as usize,
                    )
                };
                crc32fast::hash(value) == value_crc
            }
            _ => true,
        })
    }

    /// The chunk-table changes the batch makes, in order.
    pub(crate) fn block_changes(&self) -> impl Iterator<Item = BlockChange> + '_ {
        self.entries().filter_map(|e| match e {
            Entry::Alloc {
                block, block_size, ..
            } => Some(BlockChange {
                block,
                size: block_size,
                alloc: true,
            }),
            Entry::Free { block, block_size } => Some(BlockChange {
                block,
                size: block_size,
                alloc: false,
            }),
            _ => None,
        })
    }

    /// Replays the batch: its chunk-table changes, then its stores.
    /// Flushed, not fenced.
    ///
    /// # Safety
    /// The batch passed [`validate`](Self::validate), and no reference into
    /// the pool is alive.
    pub(crate) unsafe fn apply<M: Medium>(&self, medium: &M, geometry: &Geometry) {
        for change in self.block_changes() {
            // SAFETY: validated; unreferenced (the caller's precondition).
            unsafe { apply_block(medium, geometry, &change) };
        }
        // SAFETY: validated destinations; unreferenced.
        unsafe { apply_stores(medium, &self.entries) };
    }
}
