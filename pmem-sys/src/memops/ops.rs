//! The primitive operations the copy algorithms are written in.
//!
//! An instruction-set flavour implements [`LineOps`] (and [`StreamOps`] if it
//! has non-temporal stores); a flush flavour implements [`FlushLine`]. The
//! algorithms in [`super::algo`] are generic over both, so each combination is
//! compiled into straight-line code with no indirect calls, and a recording
//! implementation in the tests can check exactly which stores and flushes an
//! algorithm issues.

use core::ptr;

/// The scalar widths small copies use: `u8`, `u16`, `u32` and `u64`.
pub(crate) trait Word: Copy + sealed::Sealed {
    /// `byte` repeated across the word, for memset.
    fn splat(byte: u8) -> Self;
}

mod sealed {
    pub(crate) trait Sealed {}
}

macro_rules! impl_word {
    ($($t:ty),*) => {$(
        impl sealed::Sealed for $t {}
        impl Word for $t {
            #[inline(always)]
            fn splat(byte: u8) -> Self {
                <$t>::from_ne_bytes([byte; size_of::<$t>()])
            }
        }
    )*};
}
impl_word!(u8, u16, u32, u64);

/// Moves of whole 64-byte lines and of single words.
///
/// # Safety
///
/// Implementations may execute instructions of a CPU extension (AVX, AVX-512F).
/// Implementing the trait asserts that the methods do nothing else; *calling*
/// them requires that the running CPU supports the extension, which the
/// [`Engine`](crate::Engine) checks once before it selects an implementation.
pub(crate) unsafe trait LineOps {
    /// 64 bytes held in registers.
    type Line: Copy;

    /// Loads 64 bytes from `src` (any alignment).
    ///
    /// # Safety
    /// `src` is valid for 64 bytes of reads; the CPU supports the extension.
    unsafe fn load_line(src: *const u8) -> Self::Line;

    /// Stores 64 bytes to `dst` (any alignment) with ordinary, cached stores.
    ///
    /// # Safety
    /// `dst` is valid for 64 bytes of writes; the CPU supports the extension.
    unsafe fn store_line(dst: *mut u8, line: Self::Line);

    /// 64 copies of `byte`.
    ///
    /// # Safety
    /// The CPU supports the extension.
    unsafe fn splat_line(byte: u8) -> Self::Line;

    /// Loads one word from `src` (any alignment).
    ///
    /// # Safety
    /// `src` is valid for `size_of::<W>()` bytes of reads.
    #[inline(always)]
    unsafe fn load<W: Word>(src: *const u8) -> W {
        // SAFETY: the caller guarantees the bytes are readable; unaligned reads are allowed.
        unsafe { ptr::read_unaligned(src.cast::<W>()) }
    }

    /// Stores one word to `dst` (any alignment) with one ordinary store.
    ///
    /// # Safety
    /// `dst` is valid for `size_of::<W>()` bytes of writes.
    #[inline(always)]
    unsafe fn store<W: Word>(dst: *mut u8, value: W) {
        // SAFETY: the caller guarantees the bytes are writable; unaligned writes are allowed.
        unsafe { ptr::write_unaligned(dst.cast::<W>(), value) }
    }
}

/// Non-temporal (cache-bypassing, write-combining) stores.
///
/// # Safety
/// As for [`LineOps`].
pub(crate) unsafe trait StreamOps: LineOps {
    /// Lines a non-temporal copy loads into registers before storing them:
    /// as many as the vector registers hold (8, 16 or 32; otherwise 4).
    const NT_BATCH: usize = 4;

    /// Stores 64 bytes to the 64-aligned `dst`, bypassing the cache.
    ///
    /// # Safety
    /// `dst` is 64-aligned and valid for 64 bytes of writes; the CPU supports the extension.
    unsafe fn stream_line(dst: *mut u8, line: Self::Line);

    /// Stores 8 bytes to the 8-aligned `dst`, bypassing the cache.
    ///
    /// # Safety
    /// `dst` is 8-aligned and valid for 8 bytes of writes.
    #[inline(always)]
    unsafe fn stream_u64(dst: *mut u8, value: u64) {
        // SAFETY: forwarded from the caller.
        unsafe { crate::arch::stream_u64(dst, value) }
    }

    /// Stores 4 bytes to the 4-aligned `dst`, bypassing the cache.
    ///
    /// # Safety
    /// `dst` is 4-aligned and valid for 4 bytes of writes.
    #[inline(always)]
    unsafe fn stream_u32(dst: *mut u8, value: u32) {
        // SAFETY: forwarded from the caller.
        unsafe { crate::arch::stream_u32(dst, value) }
    }
}

/// How to write back one cache line.
pub(crate) trait FlushLine {
    /// Starts (or, for `CLFLUSH`, performs) the write-back of the line holding `addr`.
    ///
    /// # Safety
    /// `addr` points into mapped memory; the CPU supports the instruction.
    unsafe fn flush_line(addr: *const u8);

    /// Called after a run of non-temporal stores: fences them if the matching
    /// drain would not.
    fn after_nt_stores();
}

/// No write-back: for platforms whose caches are persistent (eADR) and for
/// `PMEM_F_MEM_NOFLUSH`.
#[derive(Debug)]
pub(crate) enum NoFlush {}

impl FlushLine for NoFlush {
    #[inline(always)]
    unsafe fn flush_line(_addr: *const u8) {}

    #[inline(always)]
    fn after_nt_stores() {}
}

/// Portable 64-byte moves as eight 8-byte words: the `PMEM_NO_MOVNT` flavour.
#[derive(Debug)]
pub(crate) enum Generic {}

// SAFETY: plain Rust reads and writes only; usable on every CPU.
unsafe impl LineOps for Generic {
    type Line = [u64; 8];

    #[inline(always)]
    unsafe fn load_line(src: *const u8) -> Self::Line {
        let mut line = [0u64; 8];
        for (i, word) in line.iter_mut().enumerate() {
            // SAFETY: the caller guarantees 64 readable bytes at `src`; i * 8 + 8 <= 64.
            *word = unsafe { Self::load::<u64>(src.add(i * 8)) };
        }
        line
    }

    #[inline(always)]
    unsafe fn store_line(dst: *mut u8, line: Self::Line) {
        for (i, word) in line.into_iter().enumerate() {
            // SAFETY: the caller guarantees 64 writable bytes at `dst`; i * 8 + 8 <= 64.
            unsafe { Self::store::<u64>(dst.add(i * 8), word) }
        }
    }

    #[inline(always)]
    unsafe fn splat_line(byte: u8) -> Self::Line {
        [u64::splat(byte); 8]
    }
}
