//! The on-media format, version 1: every structure a pool file holds, with
//! its byte layout, and the constants that place them. `docs/layout.md`
//! draws the whole file; each module here draws its own structure.
//!
//! ```text
//! 0            4 KiB              heap_offset
//! | superblock | root object ...  | zone 0: chunk table | chunks ... | zone 1 ...
//! ```
//!
//! | structure | module | where |
//! |---|---|---|
//! | [`Superblock`](superblock::Superblock), [`FieldRecord`](superblock::FieldRecord) | [`superblock`] | `0..2048`, written once |
//! | [`DynamicSlot`](dynamic::DynamicSlot) | [`dynamic`] | [`DYNAMIC_SLOTS_OFFSET`], two of them |
//! | [`RedoRecord`](redo::RedoRecord) | [`redo`] | [`REDO_OFFSET`], [`REDO_SLOTS`] of them |
//! | [`BatchHeader`](batch::BatchHeader) and its entries | [`batch`] | [`BATCH_OFFSET`](batch::BATCH_OFFSET) to the end of the first page, and an extent in the heap |
//! | [`ChunkDescriptor`](heap::ChunkDescriptor), [`Geometry`](heap::Geometry) | [`heap`] | each zone's chunk table |
//!
//! # For tools
//!
//! This module is public so that tools (an inspector, a fuzzer, tests that
//! damage pools on purpose) can read and write pool files byte for byte. A
//! program that only uses pools does not need it: [`Pool`](crate::Pool)
//! reads and writes all of it.
//!
//! Every integer is little-endian on media, whatever the machine: the
//! fields are zerocopy's [`little_endian`](zerocopy::little_endian) types,
//! which compile to plain loads and stores on x86-64. States (a chunk's
//! kind, a redo record's kind) are `repr(u8)` enums, so the bytes of a
//! structure are decoded once, with
//! [`TryFromBytes`](zerocopy::TryFromBytes), where they are read, and a
//! value no state has is refused there.
//!
//! # Examples
//!
//! The constants and structures locate everything in a pool file:
//!
//! ```
//! use pmem_typed::format::dynamic::DynamicSlot;
//! use pmem_typed::format::superblock::Superblock;
//! use pmem_typed::format::{CHUNK, DYNAMIC_SLOTS_OFFSET, LINE, MAGIC, PAGE, REDO_OFFSET, REDO_SLOTS};
//! use pmem_typed::{Persist, Pool};
//! use zerocopy::FromBytes;
//!
//! #[derive(Clone, Copy, Persist)]
//! #[repr(C)]
//! struct Root { n: u64 }
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let path = dir.path().join("pool");
//! drop(Pool::<Root>::create(&path, "layout", 1 << 20)?);
//! let bytes = std::fs::read(&path)?;
//!
//! assert_eq!(bytes[..8], MAGIC);
//! let (sb, _) = Superblock::read_from_prefix(&bytes).map_err(|_| "short")?;
//! assert_eq!(sb.root_offset.get(), PAGE as u64); // the root follows the superblock page,
//! assert_eq!(sb.heap_offset.get(), 2 * PAGE as u64); // padded to a page: then the heap
//! // The rest of the first page: the header's changing part, then the redo records.
//! let (slot, _) = DynamicSlot::read_from_prefix(&bytes[DYNAMIC_SLOTS_OFFSET..]).map_err(|_| "short")?;
//! assert_eq!(slot.pool_size.get(), 1 << 20);
//! assert!(REDO_OFFSET + REDO_SLOTS * LINE <= PAGE);
//! // Zone 0: one 64-byte descriptor per chunk, then the chunks.
//! let first_chunk = sb.heap_offset.get() + sb.zone_chunks.get() * LINE as u64;
//! assert!(first_chunk + CHUNK as u64 <= bytes.len() as u64);
//! # Ok(()) }
//! ```

pub mod batch;
pub mod dynamic;
pub mod heap;
pub mod redo;
pub mod superblock;

use zerocopy::{FromZeros, Immutable, IntoBytes, KnownLayout};

/// The first 8 bytes of every pool. Written last when a pool is created, so a
/// crash during creation leaves "not a pool".
pub const MAGIC: [u8; 8] = *b"PMEMRS\x00\x01";
/// The format described here.
pub const FORMAT_VERSION: u32 = 1;
/// Size of the superblock page; the root object follows it.
pub const PAGE: usize = 4096;
/// Cache line: the unit of flushing, and the minimum allocation.
pub const LINE: usize = 64;
/// A heap chunk, 16 KiB: the unit of the chunk table, of a size class's
/// blocks and of large allocations. (Nothing else in the format is called a
/// chunk.)
pub const CHUNK: usize = 16 * 1024;
/// Longest layout name, in bytes (the field holds a terminating NUL).
pub const MAX_LAYOUT_NAME: usize = 63;
/// Root fields recorded in the superblock (for naming differences).
pub const MAX_RECORDED_FIELDS: usize = 29;
/// Smallest pool: superblock, one page of root, a chunk table and one chunk.
pub const MIN_POOL_SIZE: usize = 2 * PAGE + MIN_ZONE_CHUNKS * LINE + CHUNK;
/// Fewest chunks per zone (a 4 KiB chunk table).
pub const MIN_ZONE_CHUNKS: usize = 64;
/// Most chunks per zone (64 MiB zones: no allocation is larger).
pub const MAX_ZONE_CHUNKS: usize = 4096;

/// Block sizes of the small-object classes; larger requests take whole chunks.
pub const SIZE_CLASSES: [usize; 8] = [64, 128, 256, 512, 1024, 2048, 4096, 8192];

/// Offset of the first dynamic header slot; the second follows it.
pub const DYNAMIC_SLOTS_OFFSET: usize = 2048;
/// Offset of the first of the two redo records; the second follows it.
pub const REDO_OFFSET: usize = DYNAMIC_SLOTS_OFFSET + 2 * LINE;
/// Number of redo records, used in turn.
pub const REDO_SLOTS: usize = 2;

const _: () = assert!(REDO_OFFSET + REDO_SLOTS * LINE <= PAGE);

/// A byte that must be zero: padding that decoding checks, so that a
/// structure's bytes mean one thing only (a redo record's kind is one byte
/// followed by three of these, as the `u32` it was written as).
///
/// # Examples
///
/// ```
/// use pmem_typed::format::ZeroByte;
/// use zerocopy::TryFromBytes;
///
/// assert!(ZeroByte::try_read_from_bytes(&[0]).is_ok());
/// assert!(ZeroByte::try_read_from_bytes(&[1]).is_err());
/// ```
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromZeros, IntoBytes, KnownLayout, Immutable,
)]
#[repr(u8)]
pub enum ZeroByte {
    /// The only value.
    #[default]
    Zero = 0,
}

/// Bytes of a string field: `text` NUL-padded (the caller checked its length).
///
/// # Examples
///
/// ```
/// use pmem_typed::format::{MAX_LAYOUT_NAME, padded};
///
/// let name: [u8; MAX_LAYOUT_NAME + 1] = padded("bank");
/// assert_eq!(&name[..5], b"bank\0");
/// assert!(name[4..].iter().all(|&b| b == 0));
/// // Longer text is cut, keeping the terminating NUL.
/// assert_eq!(padded::<4>("bank"), *b"ban\0");
/// ```
#[must_use]
pub fn padded<const N: usize>(text: &str) -> [u8; N] {
    let mut out = [0u8; N];
    let n = text.len().min(N - 1);
    out[..n].copy_from_slice(&text.as_bytes()[..n]);
    out
}

/// The text of a NUL-padded string field (lossy for invalid UTF-8).
///
/// # Examples
///
/// ```
/// use pmem_typed::format::{padded, unpadded};
///
/// assert_eq!(unpadded(&padded::<64>("inventory")), "inventory");
/// assert_eq!(unpadded(b"no\xffnul"), "no\u{fffd}nul"); // invalid UTF-8 is replaced
/// ```
#[must_use]
pub fn unpadded(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

#[cfg(test)]
mod tests {
    use zerocopy::TryFromBytes;

    use super::*;

    #[test]
    fn strings_round_trip() {
        assert_eq!(unpadded(&padded::<8>("abcdefghij")), "abcdefg");
        assert_eq!(ZeroByte::try_read_from_bytes(&[2]).ok(), None);
    }
}
