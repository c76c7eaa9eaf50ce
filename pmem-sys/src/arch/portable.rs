//! Fallback for architectures without known cache-flush instructions.
//!
//! Flushing is a no-op and draining a full fence: on such machines only
//! `msync` (see [`crate::raw::msync`]) makes data durable, and no mapping is
//! ever reported as persistent memory unless `PMEM_IS_PMEM_FORCE=1`.

use core::sync::atomic::{Ordering, fence};

use crate::config::{CopyVariant, FlushInstruction};
use crate::memops::ops::NoFlush;
use crate::memops::{self, MemFns};

/// Whether flushing reaches the media: not here, so no mapping is detected
/// as persistent memory (see [`crate::raw::is_pmem`]) and persisting takes
/// `msync`, even for `MAP_SYNC` and Device DAX mappings.
pub(crate) const FLUSH_REACHES_MEDIA: bool = false;

pub(crate) fn sfence() {
    fence(Ordering::SeqCst);
}

pub(crate) fn mfence() {
    fence(Ordering::SeqCst);
}

/// # Safety
/// Nothing is accessed; any arguments are fine.
pub(crate) unsafe fn flush_range(_instruction: FlushInstruction, _addr: *const u8, _len: usize) {}

/// # Safety
/// `dst` is valid for 8 bytes of writes.
pub(crate) unsafe fn stream_u64(dst: *mut u8, value: u64) {
    // SAFETY: forwarded from the caller.
    unsafe { core::ptr::write_unaligned(dst.cast(), value) }
}

/// # Safety
/// `dst` is valid for 4 bytes of writes.
pub(crate) unsafe fn stream_u32(dst: *mut u8, value: u32) {
    // SAFETY: forwarded from the caller.
    unsafe { core::ptr::write_unaligned(dst.cast(), value) }
}

pub(crate) fn mem_fns(variant: CopyVariant, _flush: FlushInstruction, _skip: bool) -> MemFns {
    memops::generic_fns::<NoFlush>(variant == CopyVariant::GenericBulk)
}
