//! The redo records: one allocation or free in flight, at [`REDO_OFFSET`]
//! and the line after it, used in turn. What the records mean and how they
//! are applied and recovered is the `redo` protocol's; this is
//! their bytes.
//!
//! ```text
//!  0 | kind (u8): 0 none, 1 alloc, 2 free | 3 zero bytes | dest_len (u32): 8 or 16
//!  8 | block (u64): offset of the block
//! 16 | block_size (u64): a class size, or whole chunks
//! 24 | dest (u64): offset of the pointer to write
//! 32 | dest_value (2 x u64): what `dest` receives (a PPtr, or a PSlice)
//! 48 | value_crc (u32): alloc: CRC32 of the initial value | value_len (u32)
//! 56 | seq (u32)                          | crc (u32): CRC32 of bytes 0..60
//! 64
//! ```
//!
//! All integers little-endian. The kind byte and the three zero bytes after
//! it are the little-endian `u32` the kind was first written as: decoding
//! refuses a record whose first four bytes are not 0, 1 or 2.
//!
//! [`REDO_OFFSET`]: super::REDO_OFFSET

use zerocopy::little_endian::{U32, U64};
use zerocopy::{FromZeros, Immutable, IntoBytes, KnownLayout, TryFromBytes};

use super::{LINE, ZeroByte};

/// What a redo record is in the middle of.
///
/// # Examples
///
/// [`RedoRecord::kind`] holds one; bytes that hold none do not decode:
///
/// ```
/// use pmem_typed::format::redo::{RedoKind, RedoRecord};
/// use zerocopy::{FromZeros, IntoBytes};
///
/// let record = RedoRecord { kind: RedoKind::Free, ..RedoRecord::new_zeroed() }.sealed();
/// assert_eq!(RedoRecord::decode(&record.as_bytes().try_into()?), Some(record));
/// let mut line = [0u8; 64];
/// line[0] = 7; // damaged: open refuses such a record
/// assert_eq!(RedoRecord::decode(&line), None);
/// # Ok::<(), std::array::TryFromSliceError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromZeros, IntoBytes, KnownLayout, Immutable)]
#[repr(u8)]
pub enum RedoKind {
    /// No operation in flight.
    None = 0,
    /// Allocate `block` and publish it into `dest`.
    Alloc = 1,
    /// Unpublish `dest` and free `block`.
    Free = 2,
}

/// The allocator's redo record: one allocation or free in flight. Written and
/// persisted before the operation changes anything reachable, replayed by
/// `open` if a crash interrupted the operation, cleared when it is done.
///
/// # Examples
///
/// The record a crash in the middle of `pool.free(head)` leaves behind, and
/// what the next open does with it:
///
/// ```
/// use std::os::unix::fs::FileExt;
///
/// use pmem_typed::format::REDO_OFFSET;
/// use pmem_typed::format::redo::{RedoKind, RedoRecord};
/// use pmem_typed::inspect::{RedoState, inspect};
/// use pmem_typed::{PPtr, Persist, Pool};
/// use zerocopy::{FromZeros, IntoBytes};
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
/// let path = dir.path().join("pool");
/// let (head, node) = {
///     let mut pool = Pool::<Root>::create(&path, "redo", 1 << 20)?;
///     let head = pool.root().fields().head;
///     (head, pool.alloc(head, Node { value: 7 })?)
/// };
/// let record = RedoRecord {
///     kind: RedoKind::Free,
///     dest_len: 8.into(), // a `PPtr`
///     block: node.offset().into(),
///     block_size: 64.into(),
///     dest: head.offset().into(),
///     seq: 2.into(),
///     ..RedoRecord::new_zeroed() // `dest_value` null: unpublish
/// }
/// .sealed();
/// let file = std::fs::OpenOptions::new().write(true).open(&path)?;
/// file.write_all_at(record.as_bytes(), REDO_OFFSET as u64)?;
/// assert_eq!(inspect(&path)?.redo[0], RedoState::Pending(record));
///
/// // Opening finishes the free: the pointer is null and the block free.
/// let pool = Pool::<Root>::open(&path, "redo")?;
/// assert!(pool.get(pool.root())?.head.is_null());
/// assert_eq!(pool.stats().allocated_bytes, 0);
/// # Ok(()) }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromZeros, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
pub struct RedoRecord {
    /// The operation.
    pub kind: RedoKind,
    /// Zero: with `kind`, the little-endian `u32` of format version 1.
    pub kind_padding: [ZeroByte; 3],
    /// Bytes of `dest_value` to write: 8 (a `PPtr`) or 16 (a `PSlice`).
    pub dest_len: U32,
    /// Offset of the block.
    pub block: U64,
    /// Size of the block in bytes (a class size, or whole chunks).
    pub block_size: U64,
    /// Offset of the pointer to publish into or clear.
    pub dest: U64,
    /// The value `dest` receives.
    pub dest_value: [U64; 2],
    /// For `Alloc`: CRC32 of the block's initial contents. If they do not
    /// match after a crash, the value never became durable: roll back.
    pub value_crc: U32,
    /// For `Alloc`: bytes of the block covered by `value_crc`.
    pub value_len: U32,
    /// Sequence number: with two records valid after a crash, the older
    /// (smaller, modulo 2^32) is replayed first.
    pub seq: U32,
    /// CRC32 of every other byte of the record: a torn record is no record.
    pub crc: U32,
}

const _: () = assert!(size_of::<RedoRecord>() == LINE);

/// Where the `crc` field starts.
const CRC_AT: usize = core::mem::offset_of!(RedoRecord, crc);

/// The CRC32 of every byte of a record's line but its `crc` field, whatever
/// the bytes hold: the check that tells a whole record from a torn one comes
/// before decoding it.
///
/// # Examples
///
/// ```
/// use pmem_typed::format::redo::{line_crc, seal_line};
///
/// let mut line = [0xab; 64];
/// seal_line(&mut line);
/// assert_eq!(u32::from_le_bytes(line[60..].try_into()?), line_crc(&line));
/// # Ok::<(), std::array::TryFromSliceError>(())
/// ```
#[must_use]
pub fn line_crc(line: &[u8; LINE]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&line[..CRC_AT]);
    hasher.update(&line[CRC_AT + 4..]);
    hasher.finalize()
}

/// The `crc` field a line holds.
#[must_use]
pub fn stored_crc(line: &[u8; LINE]) -> u32 {
    u32::from_le_bytes([
        line[CRC_AT],
        line[CRC_AT + 1],
        line[CRC_AT + 2],
        line[CRC_AT + 3],
    ])
}

/// Writes the CRC of a line's other bytes into its `crc` field: what a tool
/// that damages records on purpose uses to make them pass the torn-write
/// check (the next check, decoding, still refuses an unknown kind).
///
/// # Examples
///
/// ```
/// use pmem_typed::format::redo::{RedoRecord, seal_line, stored_crc, line_crc};
///
/// let mut line = [0; 64];
/// line[0] = 3; // no kind
/// seal_line(&mut line);
/// assert_eq!(stored_crc(&line), line_crc(&line));
/// assert_eq!(RedoRecord::decode(&line), None);
/// ```
pub fn seal_line(line: &mut [u8; LINE]) {
    let crc = line_crc(line);
    line[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_le_bytes());
}

/// The first four bytes of a line as the little-endian `u32` they are: the
/// kind, if it is one.
#[must_use]
pub fn kind_word(line: &[u8; LINE]) -> u32 {
    u32::from_le_bytes([line[0], line[1], line[2], line[3]])
}

impl RedoRecord {
    /// The record a line holds, or `None` if its kind is none of
    /// [`RedoKind`]'s (every other field takes any value).
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_typed::format::redo::{RedoKind, RedoRecord};
    ///
    /// let mut line = [0u8; 64];
    /// line[0] = 1;
    /// assert_eq!(RedoRecord::decode(&line).map(|r| r.kind), Some(RedoKind::Alloc));
    /// line[1] = 1; // the kind word is 257
    /// assert_eq!(RedoRecord::decode(&line), None);
    /// ```
    #[must_use]
    pub fn decode(line: &[u8; LINE]) -> Option<Self> {
        Self::try_read_from_bytes(line).ok()
    }

    /// The CRC32 of every byte but the `crc` field.
    ///
    /// # Examples
    ///
    /// A crash can persist part of the record's line: the CRC tells.
    ///
    /// ```
    /// use pmem_typed::format::redo::{RedoKind, RedoRecord};
    /// use zerocopy::FromZeros;
    ///
    /// let record = RedoRecord {
    ///     kind: RedoKind::Alloc,
    ///     dest_len: 8.into(),
    ///     block: 12288.into(),
    ///     block_size: 64.into(),
    ///     dest: 4096.into(),
    ///     dest_value: [12288.into(), 0.into()],
    ///     ..RedoRecord::new_zeroed()
    /// }
    /// .sealed();
    /// assert_eq!(record.computed_crc(), record.crc.get());
    /// let torn = RedoRecord { dest_value: [0.into(), 0.into()], ..record }; // a store lost
    /// assert_ne!(torn.computed_crc(), torn.crc.get());
    /// ```
    #[must_use]
    pub fn computed_crc(&self) -> u32 {
        let mut line = [0u8; LINE];
        line.copy_from_slice(self.as_bytes());
        line_crc(&line)
    }

    /// The record with its `crc` field filled in.
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_typed::format::redo::{RedoKind, RedoRecord};
    /// use zerocopy::FromZeros;
    ///
    /// let unsealed = RedoRecord { kind: RedoKind::Free, ..RedoRecord::new_zeroed() };
    /// assert_ne!(unsealed.crc.get(), unsealed.computed_crc()); // would be taken for a torn write
    /// let record = unsealed.sealed();
    /// assert_eq!(record.crc.get(), record.computed_crc());
    /// assert_eq!(RedoRecord { crc: 0.into(), ..record }, unsealed); // nothing else changed
    /// ```
    #[must_use]
    pub fn sealed(mut self) -> Self {
        self.crc = self.computed_crc().into();
        self
    }

    /// Whether this is an allocation's record (else a free's).
    #[must_use]
    pub fn is_alloc(&self) -> bool {
        self.kind == RedoKind::Alloc
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_crc_detects_tearing() {
        let r = RedoRecord {
            kind: RedoKind::Alloc,
            dest_len: 8.into(),
            block: 4096.into(),
            block_size: 64.into(),
            dest: 4096.into(),
            ..RedoRecord::new_zeroed()
        }
        .sealed();
        assert_eq!(r.computed_crc(), r.crc.get());
        let mut torn = r;
        torn.value_len = 3.into();
        assert_ne!(torn.computed_crc(), torn.crc.get());
    }

    #[test]
    fn the_kind_is_the_u32_it_was() {
        let r = RedoRecord {
            kind: RedoKind::Free,
            ..RedoRecord::new_zeroed()
        };
        assert_eq!(r.as_bytes()[..4], 2u32.to_le_bytes());
        for word in [3u32, 0x100, 0x0100_0001, u32::MAX] {
            let mut line = [0u8; LINE];
            line[..4].copy_from_slice(&word.to_le_bytes());
            assert_eq!(RedoRecord::decode(&line), None, "{word:#x}");
            assert_eq!(kind_word(&line), word);
        }
    }
}
