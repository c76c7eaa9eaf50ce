//! libpmem's memmove/memset: path choice by flags and size, over the
//! algorithms in [`algo`].

pub(crate) mod algo;
pub(crate) mod ops;

#[cfg(test)]
mod tests;

use crate::flags::CopyFlags;
use ops::{FlushLine, NoFlush, StreamOps};

/// A `memmove`-without-drain for one instruction-set and flush flavour.
/// Arguments: destination, source, length, flags (without `NODRAIN`), threshold.
pub(crate) type MoveFn = unsafe fn(*mut u8, *const u8, usize, u32, usize);
/// A `memset`-without-drain: destination, byte, length, flags, threshold.
pub(crate) type SetFn = unsafe fn(*mut u8, u8, usize, u32, usize);

/// The pair of routines an [`Engine`](crate::Engine) calls.
#[derive(Clone, Copy, Debug)]
pub(crate) struct MemFns {
    pub(crate) memmove: MoveFn,
    pub(crate) memset: SetFn,
}

const NOFLUSH: u32 = CopyFlags::NOFLUSH.bits();
const TO_NONTEMPORAL: u32 = CopyFlags::NONTEMPORAL.bits() | CopyFlags::WC.bits();
const TO_TEMPORAL: u32 = CopyFlags::TEMPORAL.bits() | CopyFlags::WB.bits();

/// Which way to write, decided from the flags and the length as libpmem does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Path {
    /// Ordinary stores, no flush (`NOFLUSH`).
    Plain,
    /// Ordinary stores, each line flushed.
    Temporal,
    /// Non-temporal stores for whole lines.
    NonTemporal,
}

/// The path for a machine that flushes: `NOFLUSH` wins, then an explicit
/// non-temporal request, then an explicit temporal one, then the size.
#[inline(always)]
pub(crate) fn flushing_path(flags: u32, len: usize, threshold: usize) -> Path {
    if flags & NOFLUSH != 0 {
        Path::Plain
    } else if flags & TO_NONTEMPORAL != 0 {
        Path::NonTemporal
    } else if flags & TO_TEMPORAL != 0 || len < threshold {
        Path::Temporal
    } else {
        Path::NonTemporal
    }
}

/// The path when caches are persistent (eADR) or flushing is disabled: only
/// an explicit `NONTEMPORAL` request still bypasses the cache.
#[inline(always)]
pub(crate) fn no_flush_path(flags: u32) -> Path {
    if flags & NOFLUSH == 0 && flags & CopyFlags::NONTEMPORAL.bits() != 0 {
        Path::NonTemporal
    } else {
        Path::Plain
    }
}

/// memmove for an instruction set with non-temporal stores.
///
/// # Safety
/// `src` readable and `dst` writable for `len` bytes; the CPU supports `O` and `F`.
#[inline(always)]
pub(crate) unsafe fn memmove_flushing<O: StreamOps, F: FlushLine>(
    dst: *mut u8,
    src: *const u8,
    len: usize,
    flags: u32,
    threshold: usize,
) {
    if len == 0 || core::ptr::eq(dst, src) {
        return;
    }
    // SAFETY: forwarded from the caller.
    unsafe {
        match flushing_path(flags, len, threshold) {
            Path::Plain => algo::move_temporal::<O, NoFlush>(dst, src, len),
            Path::Temporal => algo::move_temporal::<O, F>(dst, src, len),
            Path::NonTemporal => algo::move_nontemporal::<O, F>(dst, src, len),
        }
    }
}

/// memmove when nothing is flushed (eADR or `PMEM_NO_FLUSH=1`).
///
/// # Safety
/// As for [`memmove_flushing`].
#[inline(always)]
pub(crate) unsafe fn memmove_no_flush<O: StreamOps>(
    dst: *mut u8,
    src: *const u8,
    len: usize,
    flags: u32,
    _threshold: usize,
) {
    if len == 0 || core::ptr::eq(dst, src) {
        return;
    }
    // SAFETY: forwarded from the caller.
    unsafe {
        match no_flush_path(flags) {
            Path::NonTemporal => algo::move_nontemporal::<O, NoFlush>(dst, src, len),
            _ => algo::move_temporal::<O, NoFlush>(dst, src, len),
        }
    }
}

/// memmove without non-temporal stores (`PMEM_NO_MOVNT=1`): ordinary stores,
/// each line flushed as soon as it is written. `F = NoFlush` in no-flush mode.
///
/// # Safety
/// As for [`memmove_flushing`].
pub(crate) unsafe fn memmove_generic<F: FlushLine>(
    dst: *mut u8,
    src: *const u8,
    len: usize,
    flags: u32,
    _threshold: usize,
) {
    if len == 0 || core::ptr::eq(dst, src) {
        return;
    }
    // SAFETY: forwarded from the caller; `Generic` runs on every CPU.
    unsafe {
        if flags & NOFLUSH != 0 {
            algo::move_temporal::<ops::Generic, NoFlush>(dst, src, len);
        } else {
            algo::move_temporal::<ops::Generic, F>(dst, src, len);
        }
    }
}

/// memmove that writes everything first and flushes the range afterwards
/// (`PMEM_NO_MOVNT=1 PMEM_NO_GENERIC_MEMCPY=1`, libpmem's "libc" mode), still
/// with 8-byte stores where the guarantee asks for them.
///
/// # Safety
/// As for [`memmove_flushing`].
pub(crate) unsafe fn memmove_bulk<F: FlushLine>(
    dst: *mut u8,
    src: *const u8,
    len: usize,
    flags: u32,
    _threshold: usize,
) {
    if len == 0 || core::ptr::eq(dst, src) {
        return;
    }
    // SAFETY: forwarded from the caller.
    unsafe {
        algo::move_temporal::<ops::Generic, NoFlush>(dst, src, len);
        if flags & NOFLUSH == 0 {
            algo::flush_range::<F>(dst, len);
        }
    }
}

/// memset counterpart of [`memmove_flushing`].
///
/// # Safety
/// `dst` writable for `len` bytes; the CPU supports `O` and `F`.
#[inline(always)]
pub(crate) unsafe fn memset_flushing<O: StreamOps, F: FlushLine>(
    dst: *mut u8,
    byte: u8,
    len: usize,
    flags: u32,
    threshold: usize,
) {
    if len == 0 {
        return;
    }
    // SAFETY: forwarded from the caller.
    unsafe {
        match flushing_path(flags, len, threshold) {
            Path::Plain => algo::set_temporal::<O, NoFlush>(dst, byte, len),
            Path::Temporal => algo::set_temporal::<O, F>(dst, byte, len),
            Path::NonTemporal => algo::set_nontemporal::<O, F>(dst, byte, len),
        }
    }
}

/// memset counterpart of [`memmove_no_flush`].
///
/// # Safety
/// As for [`memset_flushing`].
#[inline(always)]
pub(crate) unsafe fn memset_no_flush<O: StreamOps>(
    dst: *mut u8,
    byte: u8,
    len: usize,
    flags: u32,
    _threshold: usize,
) {
    if len == 0 {
        return;
    }
    // SAFETY: forwarded from the caller.
    unsafe {
        match no_flush_path(flags) {
            Path::NonTemporal => algo::set_nontemporal::<O, NoFlush>(dst, byte, len),
            _ => algo::set_temporal::<O, NoFlush>(dst, byte, len),
        }
    }
}

/// memset counterpart of [`memmove_generic`].
///
/// # Safety
/// As for [`memset_flushing`].
pub(crate) unsafe fn memset_generic<F: FlushLine>(
    dst: *mut u8,
    byte: u8,
    len: usize,
    flags: u32,
    _threshold: usize,
) {
    if len == 0 {
        return;
    }
    // SAFETY: forwarded from the caller; `Generic` runs on every CPU.
    unsafe {
        if flags & NOFLUSH != 0 {
            algo::set_temporal::<ops::Generic, NoFlush>(dst, byte, len);
        } else {
            algo::set_temporal::<ops::Generic, F>(dst, byte, len);
        }
    }
}

/// memset counterpart of [`memmove_bulk`].
///
/// # Safety
/// As for [`memset_flushing`].
pub(crate) unsafe fn memset_bulk<F: FlushLine>(
    dst: *mut u8,
    byte: u8,
    len: usize,
    flags: u32,
    _threshold: usize,
) {
    if len == 0 {
        return;
    }
    // SAFETY: forwarded from the caller.
    unsafe {
        algo::set_temporal::<ops::Generic, NoFlush>(dst, byte, len);
        if flags & NOFLUSH == 0 {
            algo::flush_range::<F>(dst, len);
        }
    }
}

/// The generic (no-movnt) routines for flush flavour `F`.
pub(crate) fn generic_fns<F: FlushLine>(bulk: bool) -> MemFns {
    if bulk {
        MemFns {
            memmove: memmove_bulk::<F>,
            memset: memset_bulk::<F>,
        }
    } else {
        MemFns {
            memmove: memmove_generic::<F>,
            memset: memset_generic::<F>,
        }
    }
}
