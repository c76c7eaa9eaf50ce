//! The superblock: the static part of the pool header, written once at
//! creation, in bytes `0..2048` of the first page.
//!
//! ```text
//!    0 | magic "PMEMRS\0\x01" (8 bytes, written last at creation)
//!    8 | version (u32) = 1            | crc (u32): CRC32 of bytes 16..2048
//!   16 | uuid (16 bytes)
//!   32 | layout name (64 bytes, UTF-8, NUL-padded)
//!   96 | root_offset (u64) = 4096
//!  104 | root_size (u64)
//!  112 | root_align (u64)
//!  120 | root_fingerprint (u64)
//!  128 | chunk_size (u64) = 16384
//!  136 | zone_chunks (u64)
//!  144 | heap_offset (u64)
//!  152 | root_field_count (u32)       | reserved (u32) = 0
//!  160 | root type name (32 bytes, NUL-padded)
//!  192 | 29 field records of 64 bytes: name (48 bytes) | offset (u64) | size (u64)
//! 2048
//! ```
//!
//! All integers little-endian.

use zerocopy::little_endian::{U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use super::MAX_RECORDED_FIELDS;

/// The static part of the pool header, written once at creation.
///
/// # Examples
///
/// ```
/// use pmem_typed::format::superblock::Superblock;
/// use pmem_typed::format::{FORMAT_VERSION, MAGIC, unpadded};
/// use pmem_typed::{Persist, Pool};
/// use zerocopy::FromBytes;
///
/// #[derive(Clone, Copy, Persist)]
/// #[repr(C)]
/// struct Account { id: u64, balance: u64 }
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("pool");
/// drop(Pool::<Account>::create(&path, "bank", 1 << 20)?);
///
/// let bytes = std::fs::read(&path)?;
/// let (sb, _) = Superblock::read_from_prefix(&bytes).map_err(|_| "short")?;
/// assert_eq!((sb.magic, sb.version.get()), (MAGIC, FORMAT_VERSION));
/// assert_eq!(unpadded(&sb.layout_name), "bank");
/// assert_eq!((unpadded(&sb.root_name).as_str(), sb.root_size.get()), ("Account", 16));
/// assert_eq!(sb.crc.get(), sb.computed_crc());
/// # Ok(()) }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
pub struct Superblock {
    /// [`MAGIC`](super::MAGIC).
    pub magic: [u8; 8],
    /// [`FORMAT_VERSION`](super::FORMAT_VERSION).
    pub version: U32,
    /// CRC32 of bytes 16..2048 of the page (everything below but the magic).
    pub crc: U32,
    /// Random identity of the pool, for telling copies apart.
    pub uuid: [u8; 16],
    /// The user's layout name, UTF-8, NUL-padded.
    pub layout_name: [u8; 64],
    /// Offset of the root object (always [`PAGE`](super::PAGE)).
    pub root_offset: U64,
    /// `size_of` the root type.
    pub root_size: U64,
    /// `align_of` the root type.
    pub root_align: U64,
    /// Fingerprint of the root type's layout.
    pub root_fingerprint: U64,
    /// [`CHUNK`](super::CHUNK).
    pub chunk_size: U64,
    /// Chunks per zone (a power of two, 64 to 4096, chosen at creation).
    pub zone_chunks: U64,
    /// Offset of zone 0.
    pub heap_offset: U64,
    /// Number of root fields (possibly more than recorded below).
    pub root_field_count: U32,
    /// Reserved, zero.
    pub reserved: U32,
    /// The root type's name, for messages.
    pub root_name: [u8; 32],
    /// The root type's first [`MAX_RECORDED_FIELDS`] fields.
    pub root_fields: [FieldRecord; MAX_RECORDED_FIELDS],
}

/// One recorded root field.
///
/// # Examples
///
/// ```
/// use pmem_typed::format::superblock::{FieldRecord, Superblock};
/// use pmem_typed::format::unpadded;
/// use pmem_typed::{Persist, Pool};
/// use zerocopy::FromBytes;
///
/// #[derive(Clone, Copy, Persist)]
/// #[repr(C)]
/// struct Account { id: u64, balance: u64 }
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("pool");
/// drop(Pool::<Account>::create(&path, "bank", 1 << 20)?);
///
/// let bytes = std::fs::read(&path)?;
/// let (sb, _) = Superblock::read_from_prefix(&bytes).map_err(|_| "short")?;
/// // What opening with a changed `Account` compares the new type with.
/// let balance: FieldRecord = sb.root_fields[1];
/// assert_eq!(unpadded(&balance.name), "balance");
/// assert_eq!((balance.offset.get(), balance.size.get()), (8, 8));
/// assert_eq!(sb.root_field_count.get(), 2);
/// # Ok(()) }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
pub struct FieldRecord {
    /// Field name, UTF-8, NUL-padded (truncated to 47 bytes).
    pub name: [u8; 48],
    /// Offset in the root type.
    pub offset: U64,
    /// Size in bytes.
    pub size: U64,
}

const _: () = assert!(size_of::<Superblock>() == 2048);
const _: () = assert!(size_of::<FieldRecord>() == 64);

impl Superblock {
    /// The CRC32 of everything after the magic, version and crc fields.
    ///
    /// # Examples
    ///
    /// Damage anywhere past the first 16 bytes shows, and opening refuses the pool:
    ///
    /// ```
    /// use pmem_typed::format::superblock::Superblock;
    /// use pmem_typed::{Error, Persist, Pool};
    /// use zerocopy::FromBytes;
    ///
    /// #[derive(Clone, Copy, Persist)]
    /// #[repr(C)]
    /// struct Root { n: u64 }
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// let path = dir.path().join("pool");
    /// drop(Pool::<Root>::create(&path, "crc", 1 << 20)?);
    /// let mut bytes = std::fs::read(&path)?;
    /// bytes[32] = b'x'; // the layout name's first byte
    /// std::fs::write(&path, &bytes)?;
    ///
    /// let (sb, _) = Superblock::read_from_prefix(&bytes).map_err(|_| "short")?;
    /// assert_ne!(sb.computed_crc(), sb.crc.get());
    /// assert!(matches!(
    ///     Pool::<Root>::open(&path, "crc"),
    ///     Err(Error::ChecksumMismatch { region: "superblock", .. })
    /// ));
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn computed_crc(&self) -> u32 {
        crc32fast::hash(&self.as_bytes()[16..])
    }
}
