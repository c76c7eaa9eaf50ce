//! Recovery at open: finishing or rolling back the operation an
//! interrupted allocation or free left in the redo records.

use crate::error::{Error, Expected, Result, Structure};
use crate::format::heap::Geometry;
use crate::format::redo::{RedoKind, RedoRecord, kind_word, line_crc, stored_crc};
use crate::format::{LINE, REDO_OFFSET, REDO_SLOTS};
use crate::heap::{DescriptorWords, Heap};
use crate::medium::{Medium, read, read_bytes};

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

/// Finishes or rolls back the operation an interrupted allocation or free
/// left in the redo record. Its writes are persisted before the record is
/// cleared, so a crash during recovery only repeats it. Returns the next
/// record's sequence number and the heap as recovery leaves it.
///
/// # Errors
/// [`Error::Corrupt`] for a record that makes no sense, or chunk tables that
/// are inconsistent (after the replay); nothing has been written then.
pub(crate) fn recover<M: Medium>(medium: &M, geometry: &Geometry) -> Result<(u32, Heap)> {
    // SAFETY: `read_header` checked the medium holds a page; the pool is not
    // open yet, so nothing references its header.
    let lines: [[u8; LINE]; REDO_SLOTS] =
        core::array::from_fn(|slot| unsafe { read_line(medium, slot) });
    // A record that fails its CRC was torn while being written: no record.
    let mut valid: Vec<(usize, [u8; LINE])> = lines
        .iter()
        .enumerate()
        .filter_map(|(slot, line)| match RecordLine::of(*line) {
            RecordLine::Whole(line) => Some((slot, line)),
            RecordLine::Empty | RecordLine::Torn => None,
        })
        .collect();
    let seq = |line: &[u8; LINE]| {
        let at = core::mem::offset_of!(RedoRecord, seq);
        u32::from_le_bytes([line[at], line[at + 1], line[at + 2], line[at + 3]])
    };
    // Oldest first. At most two are valid, with consecutive sequence numbers
    // (modulo 2^32): the newer is the one whose successor the other is not.
    if let [(_, a), (_, b)] = valid.as_slice()
        && seq(a) == seq(b).wrapping_add(1)
    {
        valid.swap(0, 1);
    }
    let next_seq = valid
        .last()
        .map_or(1, |(_, line)| seq(line).wrapping_add(1));

    // Everything is checked before anything is written, the chunk tables as
    // the replay will leave them included: a refused open leaves the pool as
    // it found it.
    let mut replay = Vec::new();
    for (slot, line) in &valid {
        let record = decode_valid(medium, geometry, *slot, line)?;
        if value_intact(medium, &record) {
            replay.push(record);
        }
    }
    let heap = Heap::load_from(*geometry, |at| {
        // SAFETY: `load_from` asks only for descriptors of existing chunks,
        // which lie inside the pool.
        let words: DescriptorWords = unsafe { read(medium, at) };
        replay.iter().fold(words, |words, record| {
            replayed(geometry, &BlockChange::of(record), at, words)
        })
    })?;
    for record in &replay {
        // SAFETY: validated; the pool is not open yet, so nothing references it.
        unsafe { apply(medium, geometry, record) };
    }
    if !replay.is_empty() {
        medium.fence();
    }

    // Clear the valid records oldest first, each durably: were the newer
    // clear to persist alone, the older record would later replay on its own
    // and undo the newer operation. (The newest alone is harmless: it was
    // applied last.) Then whatever else the slots hold.
    let leftovers = (0..REDO_SLOTS)
        .filter(|&slot| lines[slot] != [0; LINE] && !valid.iter().any(|(v, _)| *v == slot));
    let order: Vec<usize> = valid
        .iter()
        .map(|(slot, _)| *slot)
        .chain(leftovers)
        .collect();
    for slot in order {
        // Zeroed whole, for the reason given in `RedoLog::run`.
        // SAFETY: the record slot is inside the first page and unreferenced.
        unsafe { medium.fill(REDO_OFFSET + slot * LINE, 0, LINE, false) };
        medium.fence();
    }
    Ok((next_seq, heap))
}
