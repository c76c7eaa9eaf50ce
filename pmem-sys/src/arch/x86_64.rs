//! x86-64 instructions: cache-line flushes, fences, and 64-byte line moves in
//! SSE2, AVX and AVX-512F flavours.
//!
//! Everything here is a thin `unsafe` wrapper around one or a few instructions.
//! The algorithms that use them live in [`crate::memops`], written once and
//! instantiated per instruction set.

use core::arch::asm;
use core::arch::x86_64::{
    __m128i, __m256i, __m512i, _mm_loadu_si128, _mm_mfence, _mm_set1_epi8, _mm_sfence,
    _mm_storeu_si128, _mm_stream_si32, _mm_stream_si64, _mm_stream_si128, _mm256_loadu_si256,
    _mm256_set1_epi8, _mm256_storeu_si256, _mm256_stream_si256, _mm512_loadu_si512,
    _mm512_set1_epi8, _mm512_storeu_si512, _mm512_stream_si512,
};

use crate::config::{CopyVariant, FlushInstruction};
use crate::memops::ops::{FlushLine, LineOps, NoFlush, StreamOps};
use crate::memops::{self, MemFns, algo};

/// Whether flushing reaches the media: CLWB, CLFLUSHOPT and CLFLUSH write
/// cache lines back to it, so `MAP_SYNC` and Device DAX mappings are
/// persistent memory.
pub(crate) const FLUSH_REACHES_MEDIA: bool = true;

/// `SFENCE`: waits for earlier `CLWB`/`CLFLUSHOPT` write-backs and non-temporal stores.
#[inline(always)]
pub(crate) fn sfence() {
    // SAFETY: SFENCE is part of SSE, which every x86-64 processor has.
    unsafe { _mm_sfence() }
}

/// `MFENCE`: the only fence that orders `CLFLUSH` on AMD processors.
#[inline(always)]
pub(crate) fn mfence() {
    // SAFETY: MFENCE is part of SSE2, which every x86-64 processor has.
    unsafe { _mm_mfence() }
}

/// `CLWB`: write the line back, keeping it cached.
#[derive(Debug)]
pub(crate) enum Clwb {}
/// `CLFLUSHOPT`: write the line back and evict it, weakly ordered.
#[derive(Debug)]
pub(crate) enum ClflushOpt {}
/// `CLFLUSH`: write the line back and evict it, ordered with other stores (on Intel).
#[derive(Debug)]
pub(crate) enum Clflush {}

// The asm blocks below deliberately omit `nomem`/`readonly`: the compiler must treat
// a flush as touching memory, or it could sink the stores being flushed past it.

impl FlushLine for Clwb {
    #[inline(always)]
    unsafe fn flush_line(addr: *const u8) {
        // SAFETY:
        // - the caller checked CPUID for CLWB (the `Engine` only selects it then);
        // - CLWB takes any address in a mapped line and changes no data.
        unsafe { asm!("clwb [{}]", in(reg) addr, options(nostack, preserves_flags)) }
    }

    #[inline(always)]
    fn after_nt_stores() {
        // The caller's drain (SFENCE) also orders the non-temporal stores.
    }
}

impl FlushLine for ClflushOpt {
    #[inline(always)]
    unsafe fn flush_line(addr: *const u8) {
        // SAFETY:
        // - the caller checked CPUID for CLFLUSHOPT;
        // - CLFLUSHOPT takes any address in a mapped line and changes no data.
        unsafe { asm!("clflushopt [{}]", in(reg) addr, options(nostack, preserves_flags)) }
    }

    #[inline(always)]
    fn after_nt_stores() {}
}

impl FlushLine for Clflush {
    #[inline(always)]
    unsafe fn flush_line(addr: *const u8) {
        // SAFETY:
        // - CLFLUSH is part of SSE2, present on every x86-64 processor;
        // - it takes any address in a mapped line and changes no data.
        unsafe { asm!("clflush [{}]", in(reg) addr, options(nostack, preserves_flags)) }
    }

    #[inline(always)]
    fn after_nt_stores() {
        // With CLFLUSH, drain issues no SFENCE (Intel), so non-temporal stores
        // must be fenced here or nothing would ever wait for them.
        sfence();
    }
}

/// 64-byte moves with four 16-byte SSE2 registers (the x86-64 baseline).
#[derive(Debug)]
pub(crate) enum Sse2 {}

// SAFETY: SSE2 is part of x86-64: every method is usable on every x86-64 CPU.
unsafe impl LineOps for Sse2 {
    type Line = [__m128i; 4];

    #[inline(always)]
    unsafe fn load_line(src: *const u8) -> Self::Line {
        let p = src.cast::<__m128i>();
        // SAFETY: the caller guarantees 64 readable bytes at `src`; loadu takes any alignment.
        unsafe {
            [
                _mm_loadu_si128(p),
                _mm_loadu_si128(p.add(1)),
                _mm_loadu_si128(p.add(2)),
                _mm_loadu_si128(p.add(3)),
            ]
        }
    }

    #[inline(always)]
    unsafe fn store_line(dst: *mut u8, line: Self::Line) {
        let p = dst.cast::<__m128i>();
        // SAFETY: the caller guarantees 64 writable bytes at `dst`; storeu takes any alignment.
        unsafe {
            _mm_storeu_si128(p, line[0]);
            _mm_storeu_si128(p.add(1), line[1]);
            _mm_storeu_si128(p.add(2), line[2]);
            _mm_storeu_si128(p.add(3), line[3]);
        }
    }

    #[inline(always)]
    unsafe fn splat_line(byte: u8) -> Self::Line {
        // SAFETY: SSE2 is baseline on x86-64.
        let v = unsafe { _mm_set1_epi8(byte as i8) };
        [v; 4]
    }
}

// SAFETY: as for `LineOps`: MOVNTDQ and MOVNTI are SSE2 instructions.
unsafe impl StreamOps for Sse2 {
    #[inline(always)]
    unsafe fn stream_line(dst: *mut u8, line: Self::Line) {
        debug_assert!((dst as usize).is_multiple_of(64));
        let p = dst.cast::<__m128i>();
        // SAFETY: the caller guarantees 64 writable bytes at the 64-aligned `dst`,
        // so each 16-byte part is 16-aligned as MOVNTDQ requires.
        unsafe {
            _mm_stream_si128(p, line[0]);
            _mm_stream_si128(p.add(1), line[1]);
            _mm_stream_si128(p.add(2), line[2]);
            _mm_stream_si128(p.add(3), line[3]);
        }
    }
}

/// 64-byte moves with two 32-byte AVX registers.
#[derive(Debug)]
pub(crate) enum Avx {}

// SAFETY: every method runs AVX instructions only; the trait's contract makes the
// caller check that the CPU and OS support AVX before calling any of them.
unsafe impl LineOps for Avx {
    type Line = [__m256i; 2];

    #[inline(always)]
    unsafe fn load_line(src: *const u8) -> Self::Line {
        let p = src.cast::<__m256i>();
        // SAFETY: AVX is present (trait contract); 64 readable bytes at `src`; any alignment.
        unsafe { [_mm256_loadu_si256(p), _mm256_loadu_si256(p.add(1))] }
    }

    #[inline(always)]
    unsafe fn store_line(dst: *mut u8, line: Self::Line) {
        let p = dst.cast::<__m256i>();
        // SAFETY: AVX is present (trait contract); 64 writable bytes at `dst`; any alignment.
        unsafe {
            _mm256_storeu_si256(p, line[0]);
            _mm256_storeu_si256(p.add(1), line[1]);
        }
    }

    #[inline(always)]
    unsafe fn splat_line(byte: u8) -> Self::Line {
        // SAFETY: AVX is present (trait contract).
        let v = unsafe { _mm256_set1_epi8(byte as i8) };
        [v; 2]
    }
}

// SAFETY: as for `LineOps`: VMOVNTDQ ymm is an AVX instruction.
unsafe impl StreamOps for Avx {
    /// 16 YMM registers: 8 lines.
    const NT_BATCH: usize = 8;

    #[inline(always)]
    unsafe fn stream_line(dst: *mut u8, line: Self::Line) {
        debug_assert!((dst as usize).is_multiple_of(64));
        let p = dst.cast::<__m256i>();
        // SAFETY: AVX is present; 64 writable bytes at the 64-aligned `dst`, so both
        // halves are 32-aligned as VMOVNTDQ requires.
        unsafe {
            _mm256_stream_si256(p, line[0]);
            _mm256_stream_si256(p.add(1), line[1]);
        }
    }
}

/// 64-byte moves with one AVX-512 register: a cache line per instruction.
#[derive(Debug)]
pub(crate) enum Avx512f {}

// SAFETY: every method runs AVX-512F instructions only; the trait's contract makes
// the caller check that the CPU and OS support AVX-512F before calling any of them.
unsafe impl LineOps for Avx512f {
    type Line = __m512i;

    #[inline(always)]
    unsafe fn load_line(src: *const u8) -> Self::Line {
        // SAFETY: AVX-512F is present (trait contract); 64 readable bytes; any alignment.
        unsafe { _mm512_loadu_si512(src.cast()) }
    }

    #[inline(always)]
    unsafe fn store_line(dst: *mut u8, line: Self::Line) {
        // SAFETY: AVX-512F is present (trait contract); 64 writable bytes; any alignment.
        unsafe { _mm512_storeu_si512(dst.cast(), line) }
    }

    #[inline(always)]
    unsafe fn splat_line(byte: u8) -> Self::Line {
        // SAFETY: AVX-512F is present (trait contract).
        unsafe { _mm512_set1_epi8(byte as i8) }
    }
}

// SAFETY: as for `LineOps`: VMOVNTDQ zmm is an AVX-512F instruction.
unsafe impl StreamOps for Avx512f {
    /// 32 ZMM registers: 32 lines.
    const NT_BATCH: usize = 32;

    #[inline(always)]
    unsafe fn stream_line(dst: *mut u8, line: Self::Line) {
        debug_assert!((dst as usize).is_multiple_of(64));
        // SAFETY: AVX-512F is present; 64 writable bytes at the 64-aligned `dst`.
        unsafe { _mm512_stream_si512(dst.cast(), line) }
    }
}

/// `MOVNTI` of 8 bytes; shared by every vector flavour for short tails.
///
/// # Safety
/// `dst` is 8-aligned and valid for 8 bytes of writes.
#[inline(always)]
pub(crate) unsafe fn stream_u64(dst: *mut u8, value: u64) {
    debug_assert!((dst as usize).is_multiple_of(8));
    // SAFETY: MOVNTI is SSE2 (baseline); the caller guarantees the 8 bytes are writable.
    unsafe { _mm_stream_si64(dst.cast(), value as i64) }
}

/// `MOVNTI` of 4 bytes.
///
/// # Safety
/// `dst` is 4-aligned and valid for 4 bytes of writes.
#[inline(always)]
pub(crate) unsafe fn stream_u32(dst: *mut u8, value: u32) {
    debug_assert!((dst as usize).is_multiple_of(4));
    // SAFETY: MOVNTI is SSE2 (baseline); the caller guarantees the 4 bytes are writable.
    unsafe { _mm_stream_si32(dst.cast(), value as i32) }
}

/// Flushes every line overlapping `[addr, addr + len)` with `instruction`.
///
/// # Safety
/// The range is mapped; the CPU supports `instruction`.
#[inline(always)]
pub(crate) unsafe fn flush_range(instruction: FlushInstruction, addr: *const u8, len: usize) {
    // SAFETY: forwarded from the caller.
    unsafe {
        match instruction {
            FlushInstruction::Clwb => algo::flush_range::<Clwb>(addr, len),
            FlushInstruction::ClflushOpt => algo::flush_range::<ClflushOpt>(addr, len),
            FlushInstruction::Clflush => algo::flush_range::<Clflush>(addr, len),
            FlushInstruction::Unavailable => {}
        }
    }
}

// Entry points per vector width. `target_feature` lets the compiler emit the
// extension's instructions in the inlined algorithm bodies; the `Engine` only
// selects them after checking CPUID.

/// # Safety
/// As for [`memops::memmove_flushing`], on a CPU with AVX.
#[target_feature(enable = "avx")]
unsafe fn memmove_avx<F: FlushLine>(d: *mut u8, s: *const u8, n: usize, f: u32, t: usize) {
    // SAFETY: forwarded; this function only runs where AVX is present.
    unsafe { memops::memmove_flushing::<Avx, F>(d, s, n, f, t) }
}
/// # Safety
/// As for [`memops::memset_flushing`], on a CPU with AVX.
#[target_feature(enable = "avx")]
unsafe fn memset_avx<F: FlushLine>(d: *mut u8, b: u8, n: usize, f: u32, t: usize) {
    // SAFETY: forwarded; this function only runs where AVX is present.
    unsafe { memops::memset_flushing::<Avx, F>(d, b, n, f, t) }
}
/// # Safety
/// As for [`memops::memmove_no_flush`], on a CPU with AVX.
#[target_feature(enable = "avx")]
unsafe fn memmove_avx_no_flush(d: *mut u8, s: *const u8, n: usize, f: u32, t: usize) {
    // SAFETY: forwarded; this function only runs where AVX is present.
    unsafe { memops::memmove_no_flush::<Avx>(d, s, n, f, t) }
}
/// # Safety
/// As for [`memops::memset_no_flush`], on a CPU with AVX.
#[target_feature(enable = "avx")]
unsafe fn memset_avx_no_flush(d: *mut u8, b: u8, n: usize, f: u32, t: usize) {
    // SAFETY: forwarded; this function only runs where AVX is present.
    unsafe { memops::memset_no_flush::<Avx>(d, b, n, f, t) }
}
/// # Safety
/// As for [`memops::memmove_flushing`], on a CPU with AVX-512F.
#[target_feature(enable = "avx512f")]
unsafe fn memmove_avx512f<F: FlushLine>(d: *mut u8, s: *const u8, n: usize, f: u32, t: usize) {
    // SAFETY: forwarded; this function only runs where AVX-512F is present.
    unsafe { memops::memmove_flushing::<Avx512f, F>(d, s, n, f, t) }
}
/// # Safety
/// As for [`memops::memset_flushing`], on a CPU with AVX-512F.
#[target_feature(enable = "avx512f")]
unsafe fn memset_avx512f<F: FlushLine>(d: *mut u8, b: u8, n: usize, f: u32, t: usize) {
    // SAFETY: forwarded; this function only runs where AVX-512F is present.
    unsafe { memops::memset_flushing::<Avx512f, F>(d, b, n, f, t) }
}
/// # Safety
/// As for [`memops::memmove_no_flush`], on a CPU with AVX-512F.
#[target_feature(enable = "avx512f")]
unsafe fn memmove_avx512f_no_flush(d: *mut u8, s: *const u8, n: usize, f: u32, t: usize) {
    // SAFETY: forwarded; this function only runs where AVX-512F is present.
    unsafe { memops::memmove_no_flush::<Avx512f>(d, s, n, f, t) }
}
/// # Safety
/// As for [`memops::memset_no_flush`], on a CPU with AVX-512F.
#[target_feature(enable = "avx512f")]
unsafe fn memset_avx512f_no_flush(d: *mut u8, b: u8, n: usize, f: u32, t: usize) {
    // SAFETY: forwarded; this function only runs where AVX-512F is present.
    unsafe { memops::memset_no_flush::<Avx512f>(d, b, n, f, t) }
}

/// The routines of `variant` flushing with `F`.
fn fns_with<F: FlushLine>(variant: CopyVariant) -> MemFns {
    match variant {
        CopyVariant::Generic => memops::generic_fns::<F>(false),
        CopyVariant::GenericBulk => memops::generic_fns::<F>(true),
        CopyVariant::Sse2 => MemFns {
            memmove: memops::memmove_flushing::<Sse2, F>,
            memset: memops::memset_flushing::<Sse2, F>,
        },
        CopyVariant::Avx => MemFns {
            memmove: memmove_avx::<F>,
            memset: memset_avx::<F>,
        },
        CopyVariant::Avx512f => MemFns {
            memmove: memmove_avx512f::<F>,
            memset: memset_avx512f::<F>,
        },
    }
}

/// The copy routines for `variant` and `flush`; with `skip_flush`, the ones
/// for persistent caches, which never flush.
///
/// Callers check that the CPU supports `variant` and `flush` before calling
/// the returned functions.
pub(crate) fn mem_fns(variant: CopyVariant, flush: FlushInstruction, skip_flush: bool) -> MemFns {
    if skip_flush {
        return match variant {
            CopyVariant::Generic => memops::generic_fns::<NoFlush>(false),
            CopyVariant::GenericBulk => memops::generic_fns::<NoFlush>(true),
            CopyVariant::Sse2 => MemFns {
                memmove: memops::memmove_no_flush::<Sse2>,
                memset: memops::memset_no_flush::<Sse2>,
            },
            CopyVariant::Avx => MemFns {
                memmove: memmove_avx_no_flush,
                memset: memset_avx_no_flush,
            },
            CopyVariant::Avx512f => MemFns {
                memmove: memmove_avx512f_no_flush,
                memset: memset_avx512f_no_flush,
            },
        };
    }
    match flush {
        FlushInstruction::Clwb => fns_with::<Clwb>(variant),
        FlushInstruction::ClflushOpt => fns_with::<ClflushOpt>(variant),
        FlushInstruction::Clflush => fns_with::<Clflush>(variant),
        FlushInstruction::Unavailable => fns_with::<NoFlush>(variant),
    }
}
