//! What the inspection says, worked out once for both the text and the JSON
//! output: geometry, redo records in words, errors sorted by kind.

use std::path::Path;

use pmem_typed::Error;
use pmem_typed::format::heap::Geometry;
use pmem_typed::format::redo::{RedoKind, RedoRecord, kind_word};
use pmem_typed::format::{CHUNK, LINE, REDO_OFFSET};
use pmem_typed::inspect::{Inspection, RedoState};

use crate::units;

/// The redo record slots' names, as in `docs/layout.md`.
pub(crate) const SLOT_NAMES: [&str; 2] = ["A", "B"];

/// An inspected pool with the facts derived from its header.
#[derive(Debug)]
pub(crate) struct Report<'a> {
    /// The file inspected.
    pub(crate) path: &'a Path,
    /// What the library found.
    pub(crate) inspection: &'a Inspection,
    /// Zones in the pool.
    pub(crate) zones: u64,
    /// Bytes of a full zone (chunk table and chunks).
    pub(crate) zone_bytes: u64,
    /// Bytes of a zone's chunk table.
    pub(crate) table_bytes: u64,
    /// Chunks in the last zone (it may be partial).
    pub(crate) last_zone_chunks: u64,
    /// Chunks in all zones.
    pub(crate) chunks: u64,
    /// Bytes past the last chunk that no zone uses.
    pub(crate) unused_tail: u64,
    /// Root fields the header does not record.
    pub(crate) unrecorded_fields: u64,
    /// The redo records, described.
    pub(crate) redo: Vec<Redo>,
}

impl<'a> Report<'a> {
    pub(crate) fn new(path: &'a Path, inspection: &'a Inspection) -> Self {
        let info = &inspection.info;
        // `read_header` checked the geometry (zone_chunks in 64..=4096, the
        // pool at least one zone with one chunk long), so none of this
        // overflows on a 64-bit target.
        let geometry = Geometry {
            heap_offset: info.heap_offset as usize,
            zone_chunks: info.zone_chunks as usize,
            pool_size: info.size as usize,
        };
        let zones = geometry.zones();
        let chunks: usize = (0..zones).map(|z| geometry.chunks_in_zone(z)).sum();
        let (last_zone_chunks, end) = match zones.checked_sub(1) {
            Some(last) => {
                let n = geometry.chunks_in_zone(last);
                (n, geometry.chunk_offset(last, n))
            }
            None => (0, geometry.heap_offset),
        };
        Self {
            path,
            inspection,
            zones: zones as u64,
            zone_bytes: geometry.zone_bytes() as u64,
            table_bytes: geometry.table_bytes() as u64,
            last_zone_chunks: last_zone_chunks as u64,
            chunks: chunks as u64,
            unused_tail: info.size.saturating_sub(end as u64),
            unrecorded_fields: u64::from(info.root_field_count)
                .saturating_sub(info.root_fields.len() as u64),
            redo: inspection
                .redo
                .iter()
                .enumerate()
                .map(|(slot, state)| Redo::new(slot, state))
                .collect(),
        }
    }

    /// Bytes in all chunks: what the allocator hands out.
    pub(crate) fn chunk_bytes(&self) -> u64 {
        self.chunks * CHUNK as u64
    }

    /// Notes about pending operations (not problems).
    pub(crate) fn notes(&self) -> Vec<String> {
        self.redo
            .iter()
            .filter(|r| r.state != "empty")
            .map(|r| format!("redo record {}: {}", r.name, r.text))
            .collect()
    }
}

/// One redo record slot, in words.
#[derive(Debug)]
pub(crate) struct Redo {
    /// "A" or "B".
    pub(crate) name: &'static str,
    /// Offset of the record in the pool.
    pub(crate) offset: u64,
    /// `empty`, `pending`, `stale`, `invalid` or `torn`.
    pub(crate) state: &'static str,
    /// The record, if whole.
    pub(crate) record: Option<RedoRecord>,
    /// What the next open does with it: `finish`, `drop`, `ignore`, or
    /// `refuse` (to open the pool).
    pub(crate) outcome: Option<&'static str>,
    /// A sentence saying all that.
    pub(crate) text: String,
}

impl Redo {
    fn new(slot: usize, state: &RedoState) -> Self {
        let (state, record, outcome, text) = match state {
            RedoState::Empty => ("empty", None, None, "empty".to_owned()),
            RedoState::Pending(r) => (
                "pending",
                Some(*r),
                Some("finish"),
                format!("{} (will be finished on next open)", operation(r)),
            ),
            RedoState::Stale(r) => (
                "stale",
                Some(*r),
                Some("drop"),
                format!(
                    "{}, but the block no longer holds the recorded value (will be dropped on next open)",
                    operation(r)
                ),
            ),
            RedoState::Invalid(r) => (
                "invalid",
                Some(*r),
                Some("refuse"),
                format!(
                    "{}, which is impossible in this pool (the next open will refuse the pool; see problems)",
                    operation(r)
                ),
            ),
            RedoState::UnknownKind(line) => (
                "invalid",
                None,
                Some("refuse"),
                format!(
                    "{}, which is impossible in this pool (the next open will refuse the pool; see problems)",
                    unknown_operation(line)
                ),
            ),
            RedoState::Torn => (
                "torn",
                None,
                Some("ignore"),
                "torn: a record write interrupted by a crash (ignored on next open)".to_owned(),
            ),
            _ => (
                "unknown",
                None,
                None,
                "in a state this tool does not know".to_owned(),
            ),
        };
        Self {
            name: SLOT_NAMES.get(slot).copied().unwrap_or("?"),
            offset: (REDO_OFFSET + slot * LINE) as u64,
            state,
            record,
            outcome,
            text,
        }
    }
}

/// The operation name of a record's kind, for JSON.
pub(crate) fn kind_name(record: &RedoRecord) -> &'static str {
    match record.kind {
        RedoKind::Alloc => "alloc",
        RedoKind::Free => "free",
        RedoKind::None => "none",
    }
}

/// "64 bytes", "48.0 KiB".
fn block_size_text(block_size: u64) -> String {
    if block_size < 1024 {
        format!("{block_size} bytes")
    } else {
        units::size(block_size)
    }
}

/// "unknown operation 7 on 64 bytes at 0x4000": a whole record's line
/// whose kind is none (its other fields read as the format places them).
fn unknown_operation(line: &[u8; LINE]) -> String {
    let word = |at: usize| {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(&line[at..at + 8]);
        u64::from_le_bytes(bytes)
    };
    let block = word(std::mem::offset_of!(RedoRecord, block));
    let block_size = word(std::mem::offset_of!(RedoRecord, block_size));
    format!(
        "unknown operation {} on {} at {block:#x}",
        kind_word(line),
        block_size_text(block_size)
    )
}

/// "allocation of 64 bytes at 0x1c100 published into 0x1008", ...
fn operation(r: &RedoRecord) -> String {
    let size = block_size_text(r.block_size.get());
    let [value, len] = r.dest_value.map(|w| w.get());
    let (block, dest, dest_len) = (r.block.get(), r.dest.get(), r.dest_len.get());
    match r.kind {
        RedoKind::Alloc => {
            let slice = if dest_len == 16 {
                format!(" as a slice of {len} elements")
            } else {
                String::new()
            };
            format!("allocation of {size} at {block:#x} published into {dest:#x}{slice}")
        }
        RedoKind::Free => {
            let unpublish = match (dest_len, value) {
                (16, _) => format!("emptying the slice at {dest:#x}"),
                (_, 0) => format!("nulling the pointer at {dest:#x}"),
                (_, next) => format!("pointing {dest:#x} at {next:#x} instead"),
            };
            format!("free of {size} at {block:#x}, {unpublish}")
        }
        RedoKind::None => format!("no operation on {size} at {block:#x}"),
    }
}

/// Exit status for a pool problem.
pub(crate) const EXIT_PROBLEMS: u8 = 1;
/// Exit status for a usage error or a file that could not be read (missing,
/// unreadable, locked, or not a file at all).
pub(crate) const EXIT_USAGE: u8 = 2;

/// An error from `inspect`, sorted: its kind for JSON and its exit status.
#[derive(Debug)]
pub(crate) struct Failure<'a> {
    pub(crate) error: &'a Error,
    /// `not_a_pool`, `checksum_mismatch`, `io`, ...
    pub(crate) kind: &'static str,
    /// 1 if the file is not a usable pool, 2 if it could not be read.
    pub(crate) exit: u8,
}

impl<'a> Failure<'a> {
    pub(crate) fn new(error: &'a Error) -> Self {
        let (kind, exit) = match error {
            Error::Io { .. } => ("io", EXIT_USAGE),
            Error::AlreadyOpen { .. } => ("already_open", EXIT_USAGE),
            Error::NotAFile { .. } => ("not_a_file", EXIT_USAGE),
            Error::NotAPool { .. } => ("not_a_pool", EXIT_PROBLEMS),
            Error::UnsupportedVersion { .. } => ("unsupported_version", EXIT_PROBLEMS),
            Error::ChecksumMismatch { .. } => ("checksum_mismatch", EXIT_PROBLEMS),
            Error::Truncated { .. } => ("truncated", EXIT_PROBLEMS),
            Error::Corrupt { .. } => ("corrupt", EXIT_PROBLEMS),
            _ => ("other", EXIT_PROBLEMS),
        };
        Self { error, kind, exit }
    }

    /// The line to print: the library's message, which says what was
    /// expected and what was found. Messages about the file as a whole
    /// (I/O, locked, not a file) name it already.
    pub(crate) fn message(&self, path: &Path) -> String {
        match self.error {
            Error::Io { .. } | Error::AlreadyOpen { .. } | Error::NotAFile { .. } => {
                self.error.to_string()
            }
            e => format!("{}: {e}", path.display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use zerocopy::{FromZeros, IntoBytes};

    use super::*;

    fn record(kind: RedoKind, dest_len: u32, block_size: u64, dest_value: [u64; 2]) -> RedoRecord {
        RedoRecord {
            kind,
            dest_len: dest_len.into(),
            block: 0x4000.into(),
            block_size: block_size.into(),
            dest: 0x1008.into(),
            dest_value: dest_value.map(Into::into),
            seq: 1.into(),
            ..RedoRecord::new_zeroed()
        }
    }

    #[test]
    fn operations_in_words() {
        use RedoKind::{Alloc, Free};
        let cases = [
            (
                record(Alloc, 8, 64, [0x4000, 0]),
                "allocation of 64 bytes at 0x4000 published into 0x1008",
            ),
            (
                record(Alloc, 16, 1024, [0x4000, 100]),
                "allocation of 1.0 KiB at 0x4000 published into 0x1008 as a slice of 100 elements",
            ),
            (
                record(Free, 8, 3 * CHUNK as u64, [0, 0]),
                "free of 48.0 KiB at 0x4000, nulling the pointer at 0x1008",
            ),
            (
                record(Free, 8, 64, [0x4040, 0]),
                "free of 64 bytes at 0x4000, pointing 0x1008 at 0x4040 instead",
            ),
            (
                record(Free, 16, 128, [0, 0]),
                "free of 128 bytes at 0x4000, emptying the slice at 0x1008",
            ),
        ];
        for (r, words) in cases {
            assert_eq!(operation(&r), words);
        }
        assert_eq!(kind_name(&cases[0].0), "alloc");
        assert_eq!(kind_name(&cases[2].0), "free");
        let mut line = [0u8; LINE];
        line.copy_from_slice(record(Free, 8, 64, [0, 0]).as_bytes());
        line[0] = 7;
        assert_eq!(
            unknown_operation(&line),
            "unknown operation 7 on 64 bytes at 0x4000"
        );
    }

    #[test]
    fn slots_and_outcomes() {
        let pending = Redo::new(
            1,
            &RedoState::Pending(record(RedoKind::Free, 8, 64, [0; 2])),
        );
        assert_eq!((pending.name, pending.offset), ("B", 2240));
        assert_eq!(
            (pending.state, pending.outcome),
            ("pending", Some("finish"))
        );
        assert!(pending.text.ends_with(" (will be finished on next open)"));
        let torn = Redo::new(0, &RedoState::Torn);
        assert_eq!((torn.name, torn.offset), ("A", 2176));
        assert_eq!(
            (torn.state, torn.outcome, torn.record),
            ("torn", Some("ignore"), None)
        );
    }
}
