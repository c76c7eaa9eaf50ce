//! libpmem's flag sets, as typed bit sets with libpmem's exact bit values.

use bitflags::bitflags;

bitflags! {
    /// Flags of [`map_file`](crate::map_file) (`PMEM_FILE_*`).
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_sys::MapFlags;
    /// let flags = MapFlags::CREATE | MapFlags::EXCL;
    /// assert_eq!(flags.bits(), 3);
    /// assert_eq!(MapFlags::from_bits(16), None, "unknown bits are rejected");
    /// ```
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
    pub struct MapFlags: i32 {
        /// Create the file if it does not exist, and size it to the requested length.
        const CREATE = 1 << 0;
        /// With `CREATE`: fail with `EEXIST` if the file already exists.
        const EXCL = 1 << 1;
        /// With `CREATE`: do not allocate the blocks (no `posix_fallocate`).
        const SPARSE = 1 << 2;
        /// With `CREATE`: `path` names a directory; map an unnamed temporary file in it.
        const TMPFILE = 1 << 3;
    }
}

bitflags! {
    /// Flags of the persistent copies ([`memmove`](crate::raw::memmove) and friends,
    /// `PMEM_F_MEM_*`).
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_sys::CopyFlags;
    /// let flags = CopyFlags::NONTEMPORAL | CopyFlags::NODRAIN;
    /// assert_eq!(flags.bits(), 3);
    /// assert_eq!(CopyFlags::from_bits(64), None, "unknown bits are rejected");
    /// ```
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
    pub struct CopyFlags: u32 {
        /// Skip the final drain (fence); the caller will call [`drain`](crate::raw::drain).
        const NODRAIN = 1 << 0;
        /// Use non-temporal (cache-bypassing) stores whatever the length.
        const NONTEMPORAL = 1 << 1;
        /// Use ordinary stores plus flushes whatever the length.
        const TEMPORAL = 1 << 2;
        /// Prefer write-combining stores: treated as `NONTEMPORAL`.
        const WC = 1 << 3;
        /// Prefer write-back stores: treated as `TEMPORAL`.
        const WB = 1 << 4;
        /// Neither flush nor drain: the data is only written to the caches.
        const NOFLUSH = 1 << 5;
    }
}
