//! The dynamic header slots: the changing part of the header (today, the
//! pool's size), double-buffered at [`DYNAMIC_SLOTS_OFFSET`] and the line
//! after it.
//!
//! ```text
//!  0 | seq (u64): bumped by every update; 0 = never written
//!  8 | pool_size (u64): bytes in use (the file may be longer)
//! 16 | reserved (5 x u64) = 0
//! 56 | crc (u32): CRC32 of bytes 0..56  | pad (u32) = 0
//! 64
//! ```
//!
//! All integers little-endian. An update writes the slot not in use with
//! `seq + 1`; the valid slot with the larger `seq` is the one in force.
//!
//! [`DYNAMIC_SLOTS_OFFSET`]: super::DYNAMIC_SLOTS_OFFSET

use zerocopy::little_endian::{U32, U64};
use zerocopy::{FromBytes, FromZeros, Immutable, IntoBytes, KnownLayout};

use super::LINE;

/// The changing part of the header, double-buffered: updates go to the slot
/// not in use, and the valid slot with the higher sequence number wins.
///
/// # Examples
///
/// Growing a pool writes the other slot, with the next sequence number:
///
/// ```
/// use pmem_typed::format::dynamic::DynamicSlot;
/// use pmem_typed::format::{DYNAMIC_SLOTS_OFFSET, LINE};
/// use pmem_typed::{Persist, Pool};
/// use zerocopy::FromBytes;
///
/// #[derive(Clone, Copy, Persist)]
/// #[repr(C)]
/// struct Root { n: u64 }
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("pool");
/// Pool::<Root>::create(&path, "grow", 1 << 20)?.grow(2 << 20)?;
///
/// let bytes = std::fs::read(&path)?;
/// let slot = |i: usize| {
///     DynamicSlot::read_from_bytes(&bytes[DYNAMIC_SLOTS_OFFSET + i * LINE..][..LINE]).unwrap()
/// };
/// assert_eq!((slot(0).seq.get(), slot(0).pool_size.get()), (1, 1 << 20)); // as created
/// assert_eq!((slot(1).seq.get(), slot(1).pool_size.get()), (2, 2 << 20)); // newer: in force
/// assert!(slot(0).is_valid() && slot(1).is_valid());
/// # Ok(()) }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
pub struct DynamicSlot {
    /// Bumped by every update.
    pub seq: U64,
    /// Bytes of the pool in use (the file may be longer).
    pub pool_size: U64,
    /// Reserved, zero.
    pub reserved: [U64; 5],
    /// CRC32 of the bytes above.
    pub crc: U32,
    /// Zero.
    pub pad: U32,
}

const _: () = assert!(size_of::<DynamicSlot>() == LINE);

impl DynamicSlot {
    /// A slot with its `crc` filled in.
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_typed::format::dynamic::DynamicSlot;
    ///
    /// // What `grow` to 2 MiB writes into the slot not in use.
    /// let slot = DynamicSlot::sealed(2, 2 << 20);
    /// assert!(slot.is_valid());
    /// assert_eq!((slot.seq.get(), slot.pool_size.get()), (2, 2 << 20));
    /// assert!(slot.reserved.iter().all(|w| w.get() == 0));
    /// ```
    #[must_use]
    pub fn sealed(seq: u64, pool_size: u64) -> Self {
        let mut slot = Self {
            seq: seq.into(),
            pool_size: pool_size.into(),
            ..Self::new_zeroed()
        };
        slot.crc = slot.computed_crc().into();
        slot
    }

    /// The CRC32 of the bytes before the `crc` field.
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_typed::format::dynamic::DynamicSlot;
    ///
    /// let slot = DynamicSlot::sealed(3, 1 << 20);
    /// assert_eq!(slot.computed_crc(), slot.crc.get());
    /// // A crash that kept the new size but not the new CRC:
    /// let torn = DynamicSlot { pool_size: (4 << 20).into(), ..slot };
    /// assert_ne!(torn.computed_crc(), torn.crc.get());
    /// ```
    #[must_use]
    pub fn computed_crc(&self) -> u32 {
        crc32fast::hash(&self.as_bytes()[..core::mem::offset_of!(DynamicSlot, crc)])
    }

    /// Whether the slot was written whole.
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_typed::format::dynamic::DynamicSlot;
    ///
    /// assert!(DynamicSlot::sealed(1, 1 << 20).is_valid());
    /// assert!(!DynamicSlot::sealed(0, 1 << 20).is_valid(), "sequence 0: never written");
    /// let torn = DynamicSlot { seq: 5.into(), ..DynamicSlot::sealed(4, 1 << 20) };
    /// assert!(!torn.is_valid());
    /// ```
    #[must_use]
    pub fn is_valid(&self) -> bool {
        self.seq.get() != 0 && self.crc.get() == self.computed_crc()
    }
}
