//! Recovery at open: finishing or rolling back the operations interrupted
//! allocations, frees and batches left in the redo records and the batch log.

use crate::error::{Error, Expected, Result, Structure};
use crate::format::batch::BATCH_OFFSET;
use crate::format::heap::Geometry;
use crate::format::redo::{RedoKind, RedoRecord, kind_word, line_crc, stored_crc};
use crate::format::{LINE, REDO_OFFSET, REDO_SLOTS};
use crate::heap::{DescriptorWords, Heap};
use crate::medium::{Medium, read, read_bytes};

use super::batch::{BatchLine, LoggedBatch, read_log};
use super::{BlockChange, apply, replayed, validate};

/// What a redo record slot's line holds, before its record is decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RecordLine {
    /// All zero: no operation in flight.
    Empty,
    /// A kind word other than 0 and a CRC that matches: a record was written
    /// whole. It may still name no kind.
    Whole([u8; LINE]),
    /// Anything else: a write torn by a crash, no record.
    Torn,
}

impl RecordLine {
    /// The class of `line`.
    pub(crate) fn of(line: [u8; LINE]) -> Self {
        if line == [0; LINE] {
            Self::Empty
        } else if kind_word(&line) != RedoKind::None as u32 && stored_crc(&line) == line_crc(&line)
        {
            Self::Whole(line)
        } else {
            Self::Torn
        }
    }
}

/// The line of redo record slot `slot`.
///
/// # Safety
/// The medium holds at least a page, and no `&mut` to the record slots is alive.
pub(crate) unsafe fn read_line<M: Medium>(medium: &M, slot: usize) -> [u8; LINE] {
    // SAFETY: the record slots lie within the first page (the caller's precondition).
    unsafe { read_bytes(medium, REDO_OFFSET + slot * LINE) }
}

/// The record a whole line holds, checked against the pool.
///
/// # Errors
/// [`Error::Corrupt`] for a kind that is none, or a record [`validate`]
/// refuses.
pub(crate) fn decode_valid<M: Medium>(
    medium: &M,
    geometry: &Geometry,
    slot: usize,
    line: &[u8; LINE],
) -> Result<RedoRecord> {
    let record = RedoRecord::decode(line).ok_or_else(|| {
        let at = (REDO_OFFSET + slot * LINE) as u64;
        let found = u64::from(kind_word(line));
        Error::corrupt(
            Structure::RedoRecord { slot },
            at,
            "kind",
            found,
            Expected::KnownKind,
        )
    })?;
    validate(medium, geometry, slot, &record)?;
    Ok(record)
}

/// Whether recovery redoes the validated `record`: always for a free; for
/// an allocation, if the block still holds the value the record's CRC
/// covers (else the value never became durable: roll back).
pub(crate) fn value_intact<M: Medium>(medium: &M, record: &RedoRecord) -> bool {
    if !record.is_alloc() {
        return true;
    }
    let value_len = record.value_len.get();
    if u64::from(value_len) > record.block_size.get() {
        return false;
    }
    // SAFETY:
    // - `validate` checked that the block lies in a chunk of the pool, and
    //   `value_len <= block_size`, so the bytes are in the medium;
    // - nothing writes the medium while `&M` is held without `unsafe` code
    //   whose precondition is that no reference into it is alive.
    let value = unsafe {
        std::slice::from_raw_parts(
            medium.base().add(record.block.get() as usize),
            value_len as usize,
        )
    };
    crc32fast::hash(value) == record.value_crc.get()
}

/// A log found whole at open: a redo record or a batch.
enum Logged {
    Record { slot: usize, line: [u8; LINE] },
    Batch(LoggedBatch),
}

impl Logged {
    fn seq(&self) -> u32 {
        match self {
            Self::Record { line, .. } => {
                let at = core::mem::offset_of!(RedoRecord, seq);
                u32::from_le_bytes([line[at], line[at + 1], line[at + 2], line[at + 3]])
            }
            Self::Batch(batch) => batch.seq,
        }
    }
}

/// What recovery replays.
enum Replay<'a> {
    Record(RedoRecord),
    Batch(&'a LoggedBatch),
}

/// Finishes or rolls back the operations interrupted allocations, frees
/// and batches left in the redo records and the batch log. Their writes are
/// persisted before the logs are cleared, so a crash during recovery only
/// repeats it. Returns the next log's sequence number and the heap as
/// recovery leaves it.
///
/// # Errors
/// [`Error::Corrupt`] for a log that makes no sense, or chunk tables that
/// are inconsistent (after the replay); nothing has been written then.
pub(crate) fn recover<M: Medium>(medium: &M, geometry: &Geometry) -> Result<(u32, Heap)> {
    // SAFETY: `read_header` checked the medium holds a page; the pool is not
    // open yet, so nothing references its header.
    let lines: [[u8; LINE]; REDO_SLOTS] =
        core::array::from_fn(|slot| unsafe { read_line(medium, slot) });
    // SAFETY: as above.
    let batch_line = unsafe { read_log(medium, geometry) };
    // A log that fails its CRC was torn while being written: no log.
    let mut valid: Vec<Logged> = lines
        .iter()
        .enumerate()
        .filter_map(|(slot, line)| match RecordLine::of(*line) {
            RecordLine::Whole(line) => Some(Logged::Record { slot, line }),
            RecordLine::Empty | RecordLine::Torn => None,
        })
        .collect();
    let batch_torn = batch_line == BatchLine::Torn;
    if let BatchLine::Whole(batch) = batch_line {
        valid.push(Logged::Batch(batch));
    }
    // Oldest first. The logs in flight have consecutive sequence numbers
    // (modulo 2^32): ordered by their distance from the first one's.
    if let Some(first) = valid.first().map(Logged::seq) {
        valid.sort_by_key(|log| log.seq().wrapping_sub(first) as i32);
    }
    let next_seq = valid.last().map_or(1, |log| log.seq().wrapping_add(1));

    // Everything is checked before anything is written, the chunk tables as
    // the replay will leave them included: a refused open leaves the pool as
    // it found it.
    let mut replay = Vec::new();
    for log in &valid {
        match log {
            Logged::Record { slot, line } => {
                let record = decode_valid(medium, geometry, *slot, line)?;
                if value_intact(medium, &record) {
                    replay.push(Replay::Record(record));
                }
            }
            Logged::Batch(batch) => {
                batch.validate(medium, geometry)?;
                if batch.values_intact(medium) {
                    replay.push(Replay::Batch(batch));
                }
            }
        }
    }
    let changes: Vec<BlockChange> = replay
        .iter()
        .flat_map(|log| match log {
            Replay::Record(record) => vec![BlockChange::of(record)],
            Replay::Batch(batch) => batch.block_changes().collect(),
        })
        .collect();
    let heap = Heap::load_from(*geometry, |at| {
        // SAFETY: `load_from` asks only for descriptors of existing chunks,
        // which lie inside the pool.
        let words: DescriptorWords = unsafe { read(medium, at) };
        changes
            .iter()
            .fold(words, |words, change| replayed(geometry, change, at, words))
    })?;
    for log in &replay {
        // SAFETY: validated; the pool is not open yet, so nothing references it.
        unsafe {
            match log {
                Replay::Record(record) => apply(medium, geometry, record),
                Replay::Batch(batch) => batch.apply(medium, geometry),
            }
        }
    }
    if !replay.is_empty() {
        medium.fence();
    }

    // Clear the valid logs oldest first, each durably: were the newer
    // clear to persist alone, the older log would later replay on its own
    // and undo the newer operation. (The newest alone is harmless: it was
    // applied last.) Then whatever else the slots and the batch log hold.
    // Each is zeroed as a line, for the reason given in `RedoLog::run`.
    let clear_at = |log: &Logged| match log {
        Logged::Record { slot, .. } => REDO_OFFSET + slot * LINE,
        Logged::Batch(_) => BATCH_OFFSET,
    };
    let torn_slots = (0..REDO_SLOTS).filter(|&slot| {
        lines[slot] != [0; LINE]
            && !valid
                .iter()
                .any(|log| matches!(log, Logged::Record { slot: s, .. } if *s == slot))
    });
    let order: Vec<usize> = valid
        .iter()
        .map(clear_at)
        .chain(torn_slots.map(|slot| REDO_OFFSET + slot * LINE))
        .chain(batch_torn.then_some(BATCH_OFFSET))
        .collect();
    for at in order {
        // SAFETY: every log line is inside the first page and unreferenced.
        unsafe { medium.fill(at, 0, LINE, false) };
        medium.fence();
    }
    Ok((next_seq, heap))
}
