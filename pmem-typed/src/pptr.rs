//! Persistent pointers: [`PPtr<T>`], an 8-byte offset into a pool, and
//! [`PSlice<T>`], an offset and a length.
//!
//! Both are plain data ([`Pod`]), so they can live inside persistent
//! structs, and both are position-independent: the pool may be mapped at a
//! different address on every run. Resolving one goes through the
//! [`Pool`](crate::Pool), which checks bounds and alignment, so a corrupted
//! pointer is an error, never undefined behaviour.

use core::fmt;
use core::hash::{Hash, Hasher};
use core::marker::PhantomData;

use bytemuck::{Pod, Zeroable};

/// A pointer to a `T` in a pool: the byte offset of the `T` from the start of
/// the pool. Offset 0 (the pool header) is the null pointer.
///
/// # Examples
///
/// ```
/// use pmem_typed::PPtr;
/// let p: PPtr<u64> = PPtr::null();
/// assert!(p.is_null());
/// assert_eq!(size_of::<PPtr<u64>>(), 8);
/// ```
#[repr(transparent)]
pub struct PPtr<T> {
    offset: u64,
    // `fn() -> T`: covariant, and Send + Sync whatever T is (it is only an offset).
    _type: PhantomData<fn() -> T>,
}

impl<T> PPtr<T> {
    /// The null pointer.
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_typed::PPtr;
    /// let end: PPtr<u64> = PPtr::null();
    /// assert!(end.is_null());
    /// assert_eq!(end, PPtr::default());
    /// ```
    #[must_use]
    pub const fn null() -> Self {
        Self {
            offset: 0,
            _type: PhantomData,
        }
    }

    /// A pointer to offset `offset`. Any value is accepted: resolution checks it.
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_typed::{Error, PPtr, Persist, Pool};
    /// use pmem_typed::sim::SimMedium;
    ///
    /// #[derive(Clone, Copy, Persist)]
    /// #[repr(C)]
    /// struct Root { value: u64 }
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let medium = SimMedium::new(64 << 10, 64 << 10);
    /// let pool = Pool::create_on(medium, "demo", Root { value: 7 })?;
    /// // The root lives at offset 4096, so this is a pointer to it...
    /// let root: PPtr<Root> = PPtr::from_offset(4096);
    /// assert_eq!(pool.get(root)?.value, 7);
    /// // ...while an offset past the end is refused when resolved.
    /// let wild: PPtr<Root> = PPtr::from_offset(1 << 40);
    /// assert!(matches!(pool.get(wild), Err(Error::BadPointer { .. })));
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub const fn from_offset(offset: u64) -> Self {
        Self {
            offset,
            _type: PhantomData,
        }
    }

    /// The byte offset from the start of the pool (0 for null).
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_typed::PPtr;
    /// assert_eq!(PPtr::<u32>::from_offset(8192).offset(), 8192);
    /// assert_eq!(PPtr::<u32>::null().offset(), 0);
    /// ```
    #[must_use]
    pub const fn offset(self) -> u64 {
        self.offset
    }

    /// Whether this is the null pointer.
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_typed::{PPtr, Persist};
    ///
    /// #[derive(Clone, Copy, Persist)]
    /// #[repr(C)]
    /// struct Node { value: u64, next: PPtr<Node> }
    ///
    /// // The end of a list is a null `next`.
    /// let last = Node { value: 3, next: PPtr::null() };
    /// assert!(last.next.is_null());
    /// assert!(!PPtr::<Node>::from_offset(4096).is_null());
    /// ```
    #[must_use]
    pub const fn is_null(self) -> bool {
        self.offset == 0
    }

    /// The same offset as a pointer to `U`.
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_typed::PPtr;
    /// let word: PPtr<u64> = PPtr::from_offset(4096);
    /// let bytes: PPtr<[u8; 8]> = word.cast();
    /// assert_eq!(bytes.offset(), word.offset());
    /// ```
    #[must_use]
    pub const fn cast<U>(self) -> PPtr<U> {
        PPtr::from_offset(self.offset)
    }

    /// The pointer to the member `offset` bytes into `*self`: what field
    /// projections are made of. Null stays null, and an offset beyond
    /// `u64::MAX` (a hostile pointer read from media) saturates there, where
    /// nothing resolves.
    ///
    /// Projecting to a wrong type or offset is not unsafe (resolution checks
    /// bounds and alignment, and all types involved are plain data) but gives
    /// meaningless values; the generated projections of
    /// [`derive(Persist)`](macro@crate::Persist) are always right.
    ///
    /// # Examples
    ///
    /// Arrays have no field projections; `project` reaches their elements:
    ///
    /// ```
    /// use pmem_typed::{PPtr, Persist, Pool};
    /// use pmem_typed::sim::SimMedium;
    ///
    /// #[derive(Clone, Copy, Persist)]
    /// #[repr(C)]
    /// struct Root { slots: [u64; 4] }
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let medium = SimMedium::new(64 << 10, 64 << 10);
    /// let mut pool = Pool::create_on(medium, "slots", Root { slots: [0; 4] })?;
    /// let slots: PPtr<[u64; 4]> = pool.root().fields().slots;
    /// let third: PPtr<u64> = slots.project(2 * size_of::<u64>());
    /// pool.set(third, 9)?;
    /// assert_eq!(pool.get(pool.root())?.slots, [0, 0, 9, 0]);
    /// // Projecting from null stays null.
    /// assert!(PPtr::<[u64; 4]>::null().project::<u64>(16).is_null());
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub const fn project<U>(self, offset: usize) -> PPtr<U> {
        if self.offset == 0 {
            return PPtr::null();
        }
        // A pointer read from media may be anything: past `u64::MAX` it
        // saturates there, which no pool resolves (it has no room for a `U`).
        match self.offset.checked_add(offset as u64) {
            Some(field) => PPtr::from_offset(field),
            None => PPtr::from_offset(u64::MAX),
        }
    }
}

impl<T> Clone for PPtr<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for PPtr<T> {}
impl<T> PartialEq for PPtr<T> {
    fn eq(&self, other: &Self) -> bool {
        self.offset == other.offset
    }
}
impl<T> Eq for PPtr<T> {}
impl<T> Hash for PPtr<T> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.offset.hash(state);
    }
}
impl<T> Default for PPtr<T> {
    fn default() -> Self {
        Self::null()
    }
}
impl<T> fmt::Debug for PPtr<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_null() {
            f.write_str("PPtr(null)")
        } else {
            write!(f, "PPtr({:#x})", self.offset)
        }
    }
}

// SAFETY: repr(transparent) over a u64 (the PhantomData is a ZST); all zeros is the null pointer.
unsafe impl<T: 'static> Zeroable for PPtr<T> {}
// SAFETY: repr(transparent) over a u64: no padding, every bit pattern valid, Copy + 'static.
unsafe impl<T: 'static> Pod for PPtr<T> {}

/// A persistent slice: `len` consecutive `T`s starting at `offset` in a pool.
///
/// # Examples
///
/// ```
/// use pmem_typed::PSlice;
/// let s: PSlice<u32> = PSlice::from_raw_parts(4096, 10);
/// assert_eq!(s.len(), 10);
/// assert_eq!(s.at(3).unwrap().offset(), 4096 + 12);
/// assert!(s.at(10).is_none());
/// ```
#[repr(C)]
pub struct PSlice<T> {
    offset: u64,
    len: u64,
    _type: PhantomData<fn() -> T>,
}

impl<T> PSlice<T> {
    /// The empty slice (null offset, no elements).
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_typed::PSlice;
    /// let none: PSlice<u32> = PSlice::empty();
    /// assert!(none.is_empty());
    /// assert!(none.as_pptr().is_null());
    /// assert_eq!(none, PSlice::default());
    /// ```
    #[must_use]
    pub const fn empty() -> Self {
        Self {
            offset: 0,
            len: 0,
            _type: PhantomData,
        }
    }

    /// A slice of `len` elements at `offset`. Any values are accepted:
    /// resolution checks them.
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_typed::PSlice;
    /// let s: PSlice<u16> = PSlice::from_raw_parts(4096, 3);
    /// assert_eq!((s.offset(), s.len()), (4096, 3));
    /// assert_eq!(s.byte_len(), Some(6));
    /// ```
    #[must_use]
    pub const fn from_raw_parts(offset: u64, len: u64) -> Self {
        Self {
            offset,
            len,
            _type: PhantomData,
        }
    }

    /// Offset of the first element.
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_typed::PSlice;
    /// let s: PSlice<u64> = PSlice::from_raw_parts(8192, 4);
    /// assert_eq!(s.offset(), 8192);
    /// assert_eq!(s.offset(), s.at(0).unwrap().offset());
    /// ```
    #[must_use]
    pub const fn offset(self) -> u64 {
        self.offset
    }

    /// Number of elements.
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_typed::{PSlice, Pool, Persist};
    /// use pmem_typed::sim::SimMedium;
    ///
    /// #[derive(Clone, Copy, Persist)]
    /// #[repr(C)]
    /// struct Root { samples: PSlice<u32> }
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let medium = SimMedium::new(64 << 10, 64 << 10);
    /// let mut pool = Pool::create_on(medium, "samples", Root { samples: PSlice::empty() })?;
    /// let samples = pool.alloc_slice(pool.root().fields().samples, &[3, 1, 4, 1, 5])?;
    /// assert_eq!(samples.len(), 5);
    /// assert_eq!(pool.get_slice(samples)?.len(), 5);
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub const fn len(self) -> u64 {
        self.len
    }

    /// Whether the slice has no elements.
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_typed::PSlice;
    /// assert!(PSlice::<u8>::empty().is_empty());
    /// assert!(PSlice::<u8>::from_raw_parts(4096, 0).is_empty());
    /// assert!(!PSlice::<u8>::from_raw_parts(4096, 1).is_empty());
    /// ```
    #[must_use]
    pub const fn is_empty(self) -> bool {
        self.len == 0
    }

    /// Pointer to element `index`, or `None` past the end.
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_typed::{PSlice, Pool, Persist};
    /// use pmem_typed::sim::SimMedium;
    ///
    /// #[derive(Clone, Copy, Persist)]
    /// #[repr(C)]
    /// struct Root { scores: PSlice<u64> }
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let medium = SimMedium::new(64 << 10, 64 << 10);
    /// let mut pool = Pool::create_on(medium, "scores", Root { scores: PSlice::empty() })?;
    /// let scores = pool.alloc_slice(pool.root().fields().scores, &[10, 20, 30])?;
    /// let second = scores.at(1).expect("three elements");
    /// assert_eq!(*pool.get(second)?, 20);
    /// pool.set(second, 25)?;
    /// assert_eq!(pool.get_slice(scores)?, [10, 25, 30]);
    /// assert!(scores.at(3).is_none());
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn at(self, index: u64) -> Option<PPtr<T>> {
        if index >= self.len {
            return None;
        }
        let offset = index
            .checked_mul(size_of::<T>() as u64)?
            .checked_add(self.offset)?;
        Some(PPtr::from_offset(offset))
    }

    /// Pointer to the first element (null for the empty slice).
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_typed::PSlice;
    /// let s: PSlice<u32> = PSlice::from_raw_parts(4096, 8);
    /// assert_eq!(s.as_pptr(), s.at(0).unwrap());
    /// assert!(PSlice::<u32>::empty().as_pptr().is_null());
    /// ```
    #[must_use]
    pub const fn as_pptr(self) -> PPtr<T> {
        PPtr::from_offset(self.offset)
    }

    /// Size of the elements in bytes, or `None` if it overflows.
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_typed::PSlice;
    /// assert_eq!(PSlice::<u64>::from_raw_parts(4096, 10).byte_len(), Some(80));
    /// // A corrupted length is caught rather than wrapped around.
    /// assert_eq!(PSlice::<u64>::from_raw_parts(4096, u64::MAX).byte_len(), None);
    /// ```
    #[must_use]
    pub fn byte_len(self) -> Option<u64> {
        self.len.checked_mul(size_of::<T>() as u64)
    }
}

impl<T> Clone for PSlice<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for PSlice<T> {}
impl<T> PartialEq for PSlice<T> {
    fn eq(&self, other: &Self) -> bool {
        self.offset == other.offset && self.len == other.len
    }
}
impl<T> Eq for PSlice<T> {}
impl<T> Default for PSlice<T> {
    fn default() -> Self {
        Self::empty()
    }
}
impl<T> fmt::Debug for PSlice<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PSlice({:#x}, len {})", self.offset, self.len)
    }
}

// SAFETY: repr(C) of two u64 and a ZST: no padding; all zeros is the empty slice.
unsafe impl<T: 'static> Zeroable for PSlice<T> {}
// SAFETY: two u64 fields, no padding, every bit pattern valid, Copy + 'static.
unsafe impl<T: 'static> Pod for PSlice<T> {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn projection_past_the_end_of_the_address_space_saturates() {
        let hostile: PPtr<[u64; 4]> = PPtr::from_offset(u64::MAX - 4);
        assert_eq!(hostile.project::<u64>(8).offset(), u64::MAX);
        assert_eq!(hostile.project::<u64>(4).offset(), u64::MAX);
        assert_eq!(hostile.project::<u64>(3).offset(), u64::MAX - 1);
    }

    #[test]
    fn projection_keeps_null() {
        let p: PPtr<[u64; 4]> = PPtr::null();
        assert!(p.project::<u64>(8).is_null());
        assert_eq!(
            PPtr::<[u64; 4]>::from_offset(64).project::<u64>(8).offset(),
            72
        );
    }

    #[test]
    fn slice_element_overflow_is_none() {
        let s: PSlice<u64> = PSlice::from_raw_parts(u64::MAX - 4, 4);
        assert!(s.at(1).is_none());
        assert!(
            PSlice::<u64>::from_raw_parts(0, u64::MAX)
                .byte_len()
                .is_none()
        );
    }

    #[test]
    fn pod_roundtrip() {
        let p: PPtr<u32> = PPtr::from_offset(0x1234);
        let bytes = bytemuck::bytes_of(&p);
        assert_eq!(bytes, &0x1234u64.to_ne_bytes());
        // A byte array has alignment 1: read it unaligned (Miri places it anywhere).
        let s: PSlice<u8> =
            bytemuck::pod_read_unaligned(&[1u8, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!((s.offset(), s.len()), (1, 2));
    }
}
