//! The batch log: the redo record of a batch (`Pool::batch`), many
//! allocations, frees and stores published in one failure-atomic step. It
//! fills the rest of the first page after the redo records, from
//! [`BATCH_OFFSET`]; a log too long for it continues in an *extent*, heap
//! space the batch held but never allocated. What the log means and how it
//! is applied and recovered is the `redo` protocol's; this is its bytes.
//!
//! ```text
//! header, at BATCH_OFFSET:
//!  0 | kind (u8): 0 none, 1 batch | 3 zero bytes | seq (u32)
//!  8 | bytes (u32): bytes of entries | crc (u32): CRC32 of bytes 0..12 and of every entry byte
//! 16 | entries, each 8-aligned, until `bytes` are read:
//!
//! alloc (1) and free (2), 24 bytes:
//!  0 | kind (u8) | 3 zero bytes | value_len (u32): bytes of the initial value (free: 0)
//!  8 | block (u64)
//! 16 | block_size (u32) | value_crc (u32): CRC32 of the initial value (free: 0)
//!
//! store (3), 16 bytes and the value, zero-padded to a multiple of 8:
//!  0 | kind (u8) | 3 zero bytes | len (u32): bytes stored
//!  8 | dest (u64)
//! 16 | the value's bytes, as the program stores them
//!
//! overflow (4), 16 bytes, the last entry of the page: the rest follows at `extent`
//!  0 | kind (u8) | 3 zero bytes | 4 zero bytes
//!  8 | extent (u64)
//! ```
//!
//! All integers little-endian; the stored values are the program's own
//! bytes. A batch of one allocation and one 8-byte store is one line: the
//! same cost as [`RedoRecord`](super::redo::RedoRecord)'s.

use zerocopy::little_endian::{U32, U64};
use zerocopy::{FromZeros, Immutable, IntoBytes, KnownLayout, TryFromBytes};

use super::{PAGE, REDO_OFFSET, REDO_SLOTS, ZeroByte};
use crate::format::LINE;

/// Where the batch log's header is: after the redo records.
pub const BATCH_OFFSET: usize = REDO_OFFSET + REDO_SLOTS * LINE;
/// Bytes of entries the first page holds, after the header (an overflow
/// entry included).
pub const INLINE_BYTES: usize = PAGE - BATCH_OFFSET - size_of::<BatchHeader>();

/// Whether the batch log holds a batch.
///
/// # Examples
///
/// ```
/// use pmem_typed::format::batch::{BatchHeader, LogKind};
/// use zerocopy::TryFromBytes;
///
/// let mut bytes = [0u8; 16];
/// assert_eq!(BatchHeader::try_read_from_bytes(&bytes).map(|h| h.kind), Ok(LogKind::None));
/// bytes[0] = 9;
/// assert!(BatchHeader::try_read_from_bytes(&bytes).is_err());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromZeros, IntoBytes, KnownLayout, Immutable)]
#[repr(u8)]
pub enum LogKind {
    /// No batch in flight.
    None = 0,
    /// A batch, published if its CRC and its allocations' values check.
    Batch = 1,
}

/// The batch log's header.
///
/// # Examples
///
/// ```
/// use pmem_typed::format::batch::{BatchHeader, LogKind};
/// use zerocopy::FromZeros;
///
/// let header = BatchHeader { kind: LogKind::Batch, seq: 7.into(), ..BatchHeader::new_zeroed() };
/// let sealed = header.sealed(&[]);
/// assert!(sealed.seals(&[]));
/// assert!(!sealed.seals(&[0; 8])); // other entries: another CRC
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromZeros, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
pub struct BatchHeader {
    /// Whether a batch is logged.
    pub kind: LogKind,
    /// Zero: with `kind`, a little-endian `u32`.
    pub kind_padding: [ZeroByte; 3],
    /// Sequence number, shared with the redo records: the older of two
    /// valid logs is replayed first.
    pub seq: U32,
    /// Bytes of entries, inline and in the extent.
    pub bytes: U32,
    /// CRC32 of the header's first 12 bytes and of every entry byte: a torn
    /// log is no log.
    pub crc: U32,
}

impl BatchHeader {
    /// The CRC32 of the header's fields but `crc`, and of `entries`.
    #[must_use]
    pub fn computed_crc(&self, entries: &[u8]) -> u32 {
        let mut hasher = crc32fast::Hasher::new();
        hasher.update(&self.as_bytes()[..12]);
        hasher.update(entries);
        hasher.finalize()
    }

    /// The header with its `crc` filled in for `entries`.
    #[must_use]
    pub fn sealed(mut self, entries: &[u8]) -> Self {
        self.crc = self.computed_crc(entries).into();
        self
    }

    /// Whether the header's `crc` is the one of its fields and `entries`.
    #[must_use]
    pub fn seals(&self, entries: &[u8]) -> bool {
        self.crc.get() == self.computed_crc(entries)
    }
}

/// What an entry does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, TryFromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(u8)]
pub enum EntryKind {
    /// Mark a block allocated.
    Alloc = 1,
    /// Mark a block free.
    Free = 2,
    /// Store bytes.
    Store = 3,
    /// The entries continue in the extent.
    Overflow = 4,
}

/// An allocation's or a free's entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, TryFromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
pub struct BlockEntry {
    /// [`EntryKind::Alloc`] or [`EntryKind::Free`].
    pub kind: EntryKind,
    /// Zero.
    pub kind_padding: [ZeroByte; 3],
    /// Alloc: bytes of the block that `value_crc` covers.
    pub value_len: U32,
    /// Offset of the block.
    pub block: U64,
    /// Its size: a class size, or whole chunks.
    pub block_size: U32,
    /// Alloc: CRC32 of the block's initial value. A block that does not
    /// match after a crash never became durable: the batch is rolled back.
    pub value_crc: U32,
}

/// A store's entry; its value follows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, TryFromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
pub struct StoreEntry {
    /// [`EntryKind::Store`].
    pub kind: EntryKind,
    /// Zero.
    pub kind_padding: [ZeroByte; 3],
    /// Bytes stored.
    pub len: U32,
    /// Where.
    pub dest: U64,
}

/// The entry that sends the reader to the extent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, TryFromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
pub struct OverflowEntry {
    /// [`EntryKind::Overflow`].
    pub kind: EntryKind,
    /// Zero.
    pub kind_padding: [ZeroByte; 7],
    /// Offset of the extent.
    pub extent: U64,
}

/// One decoded entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Entry<'a> {
    /// Mark `block` allocated; its first `value_len` bytes hash to `value_crc`.
    Alloc {
        /// Offset of the block.
        block: u64,
        /// Its size.
        block_size: u64,
        /// Bytes of its initial value.
        value_len: u32,
        /// Their CRC32.
        value_crc: u32,
    },
    /// Mark `block` free.
    Free {
        /// Offset of the block.
        block: u64,
        /// Its size.
        block_size: u64,
    },
    /// Store `bytes` at `dest`.
    Store {
        /// Where.
        dest: u64,
        /// What.
        bytes: &'a [u8],
    },
    /// The entries continue at `extent`.
    Overflow {
        /// Offset of the extent.
        extent: u64,
    },
}

/// Bytes an entry of a store of `len` bytes takes.
#[must_use]
pub const fn store_entry_len(len: usize) -> usize {
    size_of::<StoreEntry>() + len.next_multiple_of(8)
}

/// Bytes an allocation's or a free's entry takes.
pub const BLOCK_ENTRY_LEN: usize = size_of::<BlockEntry>();
/// Bytes the overflow entry takes.
pub const OVERFLOW_ENTRY_LEN: usize = size_of::<OverflowEntry>();

impl<'a> Entry<'a> {
    /// The entry at the start of `bytes` and the bytes it takes, or `None`
    /// if they hold no whole entry.
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_typed::format::batch::Entry;
    ///
    /// let store = Entry::Store { dest: 4096, bytes: &[1, 2, 3] };
    /// let mut bytes = Vec::new();
    /// store.encode(&mut bytes);
    /// assert_eq!(bytes.len(), 24);
    /// assert_eq!(Entry::decode(&bytes), Some((store, 24)));
    /// assert_eq!(Entry::decode(&bytes[..20]), None); // cut short
    /// bytes[0] = 0;
    /// assert_eq!(Entry::decode(&bytes), None); // no kind
    /// ```
    #[must_use]
    pub fn decode(bytes: &'a [u8]) -> Option<(Self, usize)> {
        let kind = EntryKind::try_read_from_bytes(bytes.get(..1)?).ok()?;
        match kind {
            EntryKind::Alloc | EntryKind::Free => {
                let (e, _) = BlockEntry::try_read_from_prefix(bytes).ok()?;
                let (block, block_size) = (e.block.get(), u64::from(e.block_size.get()));
                let entry = if kind == EntryKind::Alloc {
                    Entry::Alloc {
                        block,
                        block_size,
                        value_len: e.value_len.get(),
                        value_crc: e.value_crc.get(),
                    }
                } else {
                    Entry::Free { block, block_size }
                };
                Some((entry, BLOCK_ENTRY_LEN))
            }
            EntryKind::Store => {
                let (e, rest) = StoreEntry::try_read_from_prefix(bytes).ok()?;
                let len = e.len.get() as usize;
                let taken = store_entry_len(len);
                let value = rest.get(..len)?;
                (bytes.len() >= taken).then_some((
                    Entry::Store {
                        dest: e.dest.get(),
                        bytes: value,
                    },
                    taken,
                ))
            }
            EntryKind::Overflow => {
                let (e, _) = OverflowEntry::try_read_from_prefix(bytes).ok()?;
                Some((
                    Entry::Overflow {
                        extent: e.extent.get(),
                    },
                    OVERFLOW_ENTRY_LEN,
                ))
            }
        }
    }

    /// Appends the entry's bytes to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match *self {
            Entry::Alloc {
                block,
                block_size,
                value_len,
                value_crc,
            } => out.extend_from_slice(
                BlockEntry {
                    kind: EntryKind::Alloc,
                    kind_padding: [ZeroByte::Zero; 3],
                    value_len: value_len.into(),
                    block: block.into(),
                    block_size: (block_size as u32).into(),
                    value_crc: value_crc.into(),
                }
                .as_bytes(),
            ),
            Entry::Free { block, block_size } => out.extend_from_slice(
                BlockEntry {
                    kind: EntryKind::Free,
                    kind_padding: [ZeroByte::Zero; 3],
                    value_len: 0.into(),
                    block: block.into(),
                    block_size: (block_size as u32).into(),
                    value_crc: 0.into(),
                }
                .as_bytes(),
            ),
            Entry::Store { dest, bytes } => {
                out.extend_from_slice(
                    StoreEntry {
                        kind: EntryKind::Store,
                        kind_padding: [ZeroByte::Zero; 3],
                        len: (bytes.len() as u32).into(),
                        dest: dest.into(),
                    }
                    .as_bytes(),
                );
                out.extend_from_slice(bytes);
                out.resize(out.len() + bytes.len().next_multiple_of(8) - bytes.len(), 0);
            }
            Entry::Overflow { extent } => out.extend_from_slice(
                OverflowEntry {
                    kind: EntryKind::Overflow,
                    kind_padding: [ZeroByte::Zero; 7],
                    extent: extent.into(),
                }
                .as_bytes(),
            ),
        }
    }
}

/// Writes a batch log of `entries` numbered `seq` into `page` (a pool's
/// first page or more), sealed with its CRC, as a publish leaves it before
/// its commit fence. For tests and tools that build logs by hand; entries
/// beyond [`INLINE_BYTES`] are written past the first page's end, so a
/// longer log needs an extent instead.
///
/// # Examples
///
/// ```
/// use pmem_typed::format::batch::{BATCH_OFFSET, BatchHeader, Entry, write_log};
/// use zerocopy::TryFromBytes;
///
/// let mut page = vec![0u8; 4096];
/// write_log(&mut page, 3, &[Entry::Store { dest: 4096, bytes: &[1; 8] }]);
/// let (header, entries) = BatchHeader::try_read_from_prefix(&page[BATCH_OFFSET..]).unwrap();
/// assert_eq!((header.seq.get(), header.bytes.get()), (3, 24));
/// assert!(header.seals(&entries[..24]));
/// ```
pub fn write_log(page: &mut [u8], seq: u32, entries: &[Entry<'_>]) {
    let mut bytes = Vec::new();
    for entry in entries {
        entry.encode(&mut bytes);
    }
    let header = BatchHeader {
        kind: LogKind::Batch,
        seq: seq.into(),
        bytes: (bytes.len() as u32).into(),
        ..BatchHeader::new_zeroed()
    }
    .sealed(&bytes);
    let at = BATCH_OFFSET + size_of::<BatchHeader>();
    page[BATCH_OFFSET..at].copy_from_slice(header.as_bytes());
    page[at..at + bytes.len()].copy_from_slice(&bytes);
}

/// Recomputes the CRC of the batch log in `page` (a pool's first page or
/// more) over the entries its header counts that lie in the first page, so
/// that damage behind the CRC is what a reader finds. A header whose kind
/// does not decode is sealed all the same, through its bytes.
///
/// # Examples
///
/// ```
/// use pmem_typed::format::batch::{BATCH_OFFSET, BatchHeader, Entry, reseal, write_log};
/// use zerocopy::TryFromBytes;
///
/// let mut page = vec![0u8; 4096];
/// write_log(&mut page, 3, &[Entry::Free { block: 1 << 16, block_size: 64 }]);
/// page[BATCH_OFFSET + 24] ^= 1; // the block
/// reseal(&mut page);
/// let (header, entries) = BatchHeader::try_read_from_prefix(&page[BATCH_OFFSET..]).unwrap();
/// assert!(header.seals(&entries[..24]));
/// ```
pub fn reseal(page: &mut [u8]) {
    let at = BATCH_OFFSET + size_of::<BatchHeader>();
    let Some(head) = page.get(BATCH_OFFSET..at) else {
        return;
    };
    let bytes = u32::from_le_bytes([head[8], head[9], head[10], head[11]]) as usize;
    let end = at + bytes.min(INLINE_BYTES);
    let Some(entries) = page.get(at..end) else {
        return;
    };
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&head[..12]);
    hasher.update(entries);
    let crc = hasher.finalize();
    page[BATCH_OFFSET + 12..at].copy_from_slice(&crc.to_le_bytes());
}

const _: () = assert!(size_of::<BatchHeader>() == 16);
const _: () = assert!(BLOCK_ENTRY_LEN == 24 && OVERFLOW_ENTRY_LEN == 16);
const _: () = assert!(size_of::<BatchHeader>() + BLOCK_ENTRY_LEN + store_entry_len(8) == LINE);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip() {
        let entries = [
            Entry::Alloc {
                block: 1 << 20,
                block_size: 64,
                value_len: 24,
                value_crc: 0xdead_beef,
            },
            Entry::Free {
                block: 3 << 14,
                block_size: 1 << 15,
            },
            Entry::Store {
                dest: 4096,
                bytes: &[9; 16],
            },
            Entry::Store {
                dest: 4100,
                bytes: &[1, 2, 3, 4],
            },
            Entry::Overflow { extent: 1 << 21 },
        ];
        let mut bytes = Vec::new();
        for e in &entries {
            e.encode(&mut bytes);
        }
        let mut at = 0;
        for e in &entries {
            let (decoded, len) = Entry::decode(&bytes[at..]).expect("an entry");
            assert_eq!(decoded, *e);
            at += len;
        }
        assert_eq!(at, bytes.len());
        assert_eq!(bytes.len() % 8, 0);
    }

    #[test]
    fn damaged_entries_do_not_decode() {
        let mut bytes = Vec::new();
        Entry::Free {
            block: 4096,
            block_size: 64,
        }
        .encode(&mut bytes);
        bytes[1] = 1; // padding must be zero
        assert_eq!(Entry::decode(&bytes), None);
        bytes[1] = 0;
        bytes[0] = 5;
        assert_eq!(Entry::decode(&bytes), None);
        assert_eq!(Entry::decode(&[]), None);
    }
}
