//! Copy and fill algorithms, written once over [`LineOps`], [`StreamOps`] and
//! [`FlushLine`].
//!
//! Every routine splits the destination into a head (up to the first line
//! boundary), whole 64-byte lines, and a tail. Lines are written either with
//! ordinary stores followed by a flush of each line ("temporal"), or with
//! non-temporal stores that need no flush. Heads and tails use ordinary stores
//! and are flushed.
//!
//! Two guarantees hold on every path, and the recording tests check both:
//! - overlap-safety: a chunk's source is fully loaded before any of its
//!   destination is stored, and chunks are walked away from the overlap;
//! - width: when the destination is 8-aligned and the length a multiple of 8,
//!   no store is narrower than 8 bytes (so each aligned 8-byte word is written
//!   by one store, which is what makes it failure-atomic).

use super::ops::{FlushLine, LineOps, StreamOps, Word};

/// Bytes in a cache line, the unit of flushing.
pub(crate) const LINE: usize = 64;
/// Lines moved per iteration of the main loops: loads are issued in a batch
/// ahead of the stores, which keeps more of them in flight.
const BATCH: usize = 4;

/// `true` when copying front to back is safe: the destination does not start
/// inside the source.
#[inline(always)]
pub(crate) fn copies_forward(dst: *const u8, src: *const u8, len: usize) -> bool {
    (dst as usize).wrapping_sub(src as usize) >= len
}

/// Bytes from `dst` to the next line boundary, at most `len`.
#[inline(always)]
fn head_len(dst: *const u8, len: usize) -> usize {
    let misalign = dst as usize % LINE;
    if misalign == 0 {
        0
    } else {
        (LINE - misalign).min(len)
    }
}

/// Flushes every line overlapping `[addr, addr + len)`.
///
/// # Safety
/// The range is mapped; the CPU supports `F`'s instruction.
#[inline(always)]
pub(crate) unsafe fn flush_range<F: FlushLine>(addr: *const u8, len: usize) {
    let end = (addr as usize).saturating_add(len);
    let mut line = addr.wrapping_sub(addr as usize % LINE);
    while (line as usize) < end {
        // SAFETY: `line` is the start of a line overlapping the caller's mapped range.
        unsafe { F::flush_line(line) };
        line = line.wrapping_add(LINE);
    }
}

/// Copies `len <= 64` bytes with ordinary stores, loading all of the source
/// before storing any of it, so any overlap is fine.
///
/// Two possibly-overlapping words cover each size class (the classic trick),
/// so when `dst` is 8-aligned and `len` a multiple of 8 every store is an
/// aligned 8-byte store.
///
/// # Safety
/// `src` is readable and `dst` writable for `len` bytes.
#[inline(always)]
pub(crate) unsafe fn copy_small<O: LineOps>(dst: *mut u8, src: *const u8, len: usize) {
    debug_assert!(len <= LINE);
    // SAFETY: every access below is at an offset `o` with `o + width <= len`,
    // which the size class of each arm guarantees.
    unsafe {
        match len {
            0 => {}
            1 => O::store::<u8>(dst, O::load::<u8>(src)),
            2..=3 => copy_two::<O, u16>(dst, src, len),
            4..=7 => copy_two::<O, u32>(dst, src, len),
            8..=16 => copy_two::<O, u64>(dst, src, len),
            17..=32 => {
                let w: [u64; 4] = [
                    O::load(src),
                    O::load(src.add(8)),
                    O::load(src.add(len - 16)),
                    O::load(src.add(len - 8)),
                ];
                O::store(dst, w[0]);
                O::store(dst.add(8), w[1]);
                O::store(dst.add(len - 16), w[2]);
                O::store(dst.add(len - 8), w[3]);
            }
            _ => {
                let mut w = [0u64; 8];
                for i in 0..4 {
                    w[i] = O::load(src.add(8 * i));
                    w[4 + i] = O::load(src.add(len - 32 + 8 * i));
                }
                for i in 0..4 {
                    O::store(dst.add(8 * i), w[i]);
                    O::store(dst.add(len - 32 + 8 * i), w[4 + i]);
                }
            }
        }
    }
}

/// Copies `size_of::<W>() <= len <= 2 * size_of::<W>()` bytes as a first and a last word.
///
/// # Safety
/// As for [`copy_small`], with `len` in that range.
#[inline(always)]
unsafe fn copy_two<O: LineOps, W: Word>(dst: *mut u8, src: *const u8, len: usize) {
    let last = len - size_of::<W>();
    // SAFETY: both words lie within the first `len` bytes of `src` and `dst`.
    unsafe {
        let first_word: W = O::load(src);
        let last_word: W = O::load(src.add(last));
        O::store(dst, first_word);
        O::store(dst.add(last), last_word);
    }
}

/// Fills `len <= 64` bytes with `byte`, with the same store widths as [`copy_small`].
///
/// # Safety
/// `dst` is writable for `len` bytes.
#[inline(always)]
pub(crate) unsafe fn set_small<O: LineOps>(dst: *mut u8, byte: u8, len: usize) {
    debug_assert!(len <= LINE);
    // SAFETY: every store is at an offset `o` with `o + width <= len`.
    unsafe {
        match len {
            0 => {}
            1 => O::store(dst, byte),
            2..=3 => set_two::<O, u16>(dst, byte, len),
            4..=7 => set_two::<O, u32>(dst, byte, len),
            8..=16 => set_two::<O, u64>(dst, byte, len),
            17..=32 => {
                let w = u64::splat(byte);
                O::store(dst, w);
                O::store(dst.add(8), w);
                O::store(dst.add(len - 16), w);
                O::store(dst.add(len - 8), w);
            }
            _ => {
                let w = u64::splat(byte);
                for i in 0..4 {
                    O::store(dst.add(8 * i), w);
                    O::store(dst.add(len - 32 + 8 * i), w);
                }
            }
        }
    }
}

/// # Safety
/// As for [`set_small`], with `size_of::<W>() <= len <= 2 * size_of::<W>()`.
#[inline(always)]
unsafe fn set_two<O: LineOps, W: Word>(dst: *mut u8, byte: u8, len: usize) {
    let w = W::splat(byte);
    // SAFETY: both words lie within the first `len` bytes of `dst`.
    unsafe {
        O::store(dst, w);
        O::store(dst.add(len - size_of::<W>()), w);
    }
}

/// Loads `BATCH` consecutive lines from `src`.
///
/// # Safety
/// `src` is readable for `BATCH * LINE` bytes.
#[inline(always)]
unsafe fn load_batch<O: LineOps>(src: *const u8) -> [O::Line; BATCH] {
    // SAFETY: each line is within the `BATCH * LINE` readable bytes.
    unsafe {
        [
            O::load_line(src),
            O::load_line(src.add(LINE)),
            O::load_line(src.add(2 * LINE)),
            O::load_line(src.add(3 * LINE)),
        ]
    }
}

/// Copies with ordinary stores, flushing each line once it is written
/// (`F = NoFlush`: no flushing at all).
///
/// # Safety
/// `src` is readable and `dst` writable for `len` bytes (they may overlap);
/// the CPU supports `O` and `F`.
#[inline(always)]
pub(crate) unsafe fn move_temporal<O: LineOps, F: FlushLine>(
    dst: *mut u8,
    src: *const u8,
    len: usize,
) {
    // SAFETY: forwarded from the caller; the direction is chosen for the overlap.
    unsafe {
        if len <= LINE {
            copy_small::<O>(dst, src, len);
            flush_range::<F>(dst, len);
        } else if copies_forward(dst, src, len) {
            temporal_forward::<O, F>(dst, src, len);
        } else {
            temporal_backward::<O, F>(dst, src, len);
        }
    }
}

/// # Safety
/// As for [`move_temporal`], with the destination not starting inside the source.
#[inline(always)]
unsafe fn temporal_forward<O: LineOps, F: FlushLine>(
    mut dst: *mut u8,
    mut src: *const u8,
    mut len: usize,
) {
    // SAFETY: each step stays within the remaining `len` bytes. Walking forward
    // with every chunk loaded before it is stored never overwrites source bytes
    // not yet read, because the destination lies before or outside the source.
    unsafe {
        let head = head_len(dst, len);
        if head != 0 {
            copy_small::<O>(dst, src, head);
            F::flush_line(dst);
            (dst, src, len) = (dst.add(head), src.add(head), len - head);
        }
        while len >= BATCH * LINE {
            let lines = load_batch::<O>(src);
            for (i, &line) in lines.iter().enumerate() {
                O::store_line(dst.add(i * LINE), line);
                F::flush_line(dst.add(i * LINE));
            }
            (dst, src, len) = (
                dst.add(BATCH * LINE),
                src.add(BATCH * LINE),
                len - BATCH * LINE,
            );
        }
        while len >= LINE {
            O::store_line(dst, O::load_line(src));
            F::flush_line(dst);
            (dst, src, len) = (dst.add(LINE), src.add(LINE), len - LINE);
        }
        if len != 0 {
            copy_small::<O>(dst, src, len);
            F::flush_line(dst);
        }
    }
}

/// # Safety
/// As for [`move_temporal`], with the destination starting inside the source.
#[inline(always)]
unsafe fn temporal_backward<O: LineOps, F: FlushLine>(
    dst: *mut u8,
    src: *const u8,
    mut len: usize,
) {
    // SAFETY: as in `temporal_forward`, mirrored: walking backward is safe
    // because the destination lies after the source.
    unsafe {
        let (mut dst_end, mut src_end) = (dst.add(len), src.add(len));
        let tail = (dst_end as usize % LINE).min(len);
        if tail != 0 {
            (dst_end, src_end, len) = (dst_end.sub(tail), src_end.sub(tail), len - tail);
            copy_small::<O>(dst_end, src_end, tail);
            F::flush_line(dst_end);
        }
        while len >= BATCH * LINE {
            (dst_end, src_end, len) = (
                dst_end.sub(BATCH * LINE),
                src_end.sub(BATCH * LINE),
                len - BATCH * LINE,
            );
            let lines = load_batch::<O>(src_end);
            for (i, &line) in lines.iter().enumerate().rev() {
                let at = dst_end.add(i * LINE);
                O::store_line(at, line);
                F::flush_line(at);
            }
        }
        while len >= LINE {
            (dst_end, src_end, len) = (dst_end.sub(LINE), src_end.sub(LINE), len - LINE);
            O::store_line(dst_end, O::load_line(src_end));
            F::flush_line(dst_end);
        }
        if len != 0 {
            copy_small::<O>(dst, src, len);
            F::flush_line(dst);
        }
    }
}

/// Copies with non-temporal stores for whole lines; the unaligned head and
/// tail are written with ordinary stores and flushed.
///
/// # Safety
/// As for [`move_temporal`].
#[inline(always)]
pub(crate) unsafe fn move_nontemporal<O: StreamOps, F: FlushLine>(
    dst: *mut u8,
    src: *const u8,
    len: usize,
) {
    // SAFETY: forwarded from the caller; the direction is chosen for the overlap.
    unsafe {
        if copies_forward(dst, src, len) {
            nontemporal_forward::<O, F>(dst, src, len);
        } else {
            nontemporal_backward::<O, F>(dst, src, len);
        }
    }
    F::after_nt_stores();
}

/// # Safety
/// As for [`temporal_forward`].
#[inline(always)]
unsafe fn nontemporal_forward<O: StreamOps, F: FlushLine>(
    mut dst: *mut u8,
    mut src: *const u8,
    mut len: usize,
) {
    // SAFETY: as in `temporal_forward`; `dst` is 64-aligned once the head is done,
    // as `stream_line` and `stream_tail` require.
    unsafe {
        let head = head_len(dst, len);
        if head != 0 {
            copy_small::<O>(dst, src, head);
            F::flush_line(dst);
            (dst, src, len) = (dst.add(head), src.add(head), len - head);
        }
        // A wide batch first (as many lines as the registers hold), then 4,
        // then single lines.
        (dst, src, len) = match O::NT_BATCH {
            32 => stream_batches_forward::<O, 32>(dst, src, len),
            16 => stream_batches_forward::<O, 16>(dst, src, len),
            8 => stream_batches_forward::<O, 8>(dst, src, len),
            _ => (dst, src, len),
        };
        (dst, src, len) = stream_batches_forward::<O, BATCH>(dst, src, len);
        while len >= LINE {
            O::stream_line(dst, O::load_line(src));
            (dst, src, len) = (dst.add(LINE), src.add(LINE), len - LINE);
        }
        if len != 0 {
            stream_tail::<O, F>(dst, src, len);
        }
    }
}

/// # Safety
/// As for [`temporal_backward`].
#[inline(always)]
unsafe fn nontemporal_backward<O: StreamOps, F: FlushLine>(
    dst: *mut u8,
    src: *const u8,
    mut len: usize,
) {
    // SAFETY: as in `temporal_backward`; once the unaligned end is done, `dst_end`
    // is 64-aligned, so every streamed line is too, and the remainder at the
    // front ends on a line boundary.
    unsafe {
        let (mut dst_end, mut src_end) = (dst.add(len), src.add(len));
        let tail = (dst_end as usize % LINE).min(len);
        if tail != 0 {
            (dst_end, src_end, len) = (dst_end.sub(tail), src_end.sub(tail), len - tail);
            copy_small::<O>(dst_end, src_end, tail);
            F::flush_line(dst_end);
        }
        (dst_end, src_end, len) = match O::NT_BATCH {
            32 => stream_batches_backward::<O, 32>(dst_end, src_end, len),
            16 => stream_batches_backward::<O, 16>(dst_end, src_end, len),
            8 => stream_batches_backward::<O, 8>(dst_end, src_end, len),
            _ => (dst_end, src_end, len),
        };
        (dst_end, src_end, len) = stream_batches_backward::<O, BATCH>(dst_end, src_end, len);
        while len >= LINE {
            (dst_end, src_end, len) = (dst_end.sub(LINE), src_end.sub(LINE), len - LINE);
            O::stream_line(dst_end, O::load_line(src_end));
        }
        if len != 0 {
            stream_tail::<O, F>(dst, src, len);
        }
    }
}

/// Loads `N` consecutive lines. (A loop with a constant count, which the
/// compiler unrolls into registers: `core::array::from_fn` is not inlined for
/// large `N` and would go through memory, without the vector extension.)
///
/// # Safety
/// `src` is readable for `N * LINE` bytes; the CPU supports `O`.
#[inline(always)]
unsafe fn load_lines<O: LineOps, const N: usize>(src: *const u8) -> [O::Line; N] {
    // SAFETY: the CPU supports `O` (caller); every load is within the
    // `N * LINE` readable bytes.
    unsafe {
        let mut lines = [O::splat_line(0); N];
        for (i, line) in lines.iter_mut().enumerate() {
            *line = O::load_line(src.add(i * LINE));
        }
        lines
    }
}

/// Streams batches of `N` lines front to back while `N` remain, loading each
/// batch into registers before storing it: more loads in flight is what
/// keeps a copy from memory at full speed. Returns where it stopped.
///
/// # Safety
/// As for [`nontemporal_forward`], with `dst` 64-aligned.
#[inline(always)]
unsafe fn stream_batches_forward<O: StreamOps, const N: usize>(
    mut dst: *mut u8,
    mut src: *const u8,
    mut len: usize,
) -> (*mut u8, *const u8, usize) {
    // SAFETY: each batch lies within the remaining `len` bytes; `dst` stays
    // 64-aligned; the batch is loaded before any of it is stored.
    unsafe {
        while len >= N * LINE {
            let lines = load_lines::<O, N>(src);
            for (i, &line) in lines.iter().enumerate() {
                O::stream_line(dst.add(i * LINE), line);
            }
            (dst, src, len) = (dst.add(N * LINE), src.add(N * LINE), len - N * LINE);
        }
    }
    (dst, src, len)
}

/// [`stream_batches_forward`] from the end backwards, taking `dst_end` and
/// `src_end` (one past the last byte) and returning them moved down.
///
/// # Safety
/// As for [`nontemporal_backward`], with `dst_end` 64-aligned.
#[inline(always)]
unsafe fn stream_batches_backward<O: StreamOps, const N: usize>(
    mut dst_end: *mut u8,
    mut src_end: *const u8,
    mut len: usize,
) -> (*mut u8, *const u8, usize) {
    // SAFETY: as for the forward direction, mirrored.
    unsafe {
        while len >= N * LINE {
            (dst_end, src_end, len) =
                (dst_end.sub(N * LINE), src_end.sub(N * LINE), len - N * LINE);
            let lines = load_lines::<O, N>(src_end);
            for (i, &line) in lines.iter().enumerate().rev() {
                O::stream_line(dst_end.add(i * LINE), line);
            }
        }
    }
    (dst_end, src_end, len)
}

/// Writes a piece of fewer than 64 bytes that lies within one line: one
/// non-temporal run when it is exactly 4, 8, 16 or 32 bytes (as libpmem does),
/// otherwise ordinary stores and a flush. Loads everything before storing.
///
/// # Safety
/// `src` readable and `dst` writable for `len < 64` bytes within one line of
/// `dst`; `dst` aligned to `len` when `len` is one of the streamed sizes.
#[inline(always)]
unsafe fn stream_tail<O: StreamOps, F: FlushLine>(dst: *mut u8, src: *const u8, len: usize) {
    debug_assert!(len < LINE);
    // SAFETY: all accesses are within the first `len` bytes; for the streamed
    // sizes `dst` is `len`-aligned, hence 4- or 8-aligned as MOVNTI requires.
    unsafe {
        match len {
            4 => O::stream_u32(dst, O::load(src)),
            8 => stream_words::<O, 1>(dst, src),
            16 => stream_words::<O, 2>(dst, src),
            32 => stream_words::<O, 4>(dst, src),
            _ => {
                copy_small::<O>(dst, src, len);
                F::flush_line(dst);
            }
        }
    }
}

/// Streams `N` words, all loaded before any is stored. (A constant `N` keeps
/// the loads unrolled; a variable count becomes a call to `memcpy`.)
///
/// # Safety
/// `src` readable and `dst` writable for `8 * N` bytes; `dst` 8-aligned.
#[inline(always)]
unsafe fn stream_words<O: StreamOps, const N: usize>(dst: *mut u8, src: *const u8) {
    // SAFETY: every access is within the first `8 * N` bytes (caller).
    unsafe {
        let words: [u64; N] = core::array::from_fn(|i| O::load(src.add(8 * i)));
        for (i, &word) in words.iter().enumerate() {
            O::stream_u64(dst.add(8 * i), word);
        }
    }
}

/// Fills with ordinary stores, flushing each line once it is written.
///
/// # Safety
/// `dst` is writable for `len` bytes; the CPU supports `O` and `F`.
#[inline(always)]
pub(crate) unsafe fn set_temporal<O: LineOps, F: FlushLine>(
    mut dst: *mut u8,
    byte: u8,
    mut len: usize,
) {
    // SAFETY: each step stays within the remaining `len` bytes.
    unsafe {
        if len <= LINE {
            set_small::<O>(dst, byte, len);
            flush_range::<F>(dst, len);
            return;
        }
        let head = head_len(dst, len);
        if head != 0 {
            set_small::<O>(dst, byte, head);
            F::flush_line(dst);
            (dst, len) = (dst.add(head), len - head);
        }
        let line = O::splat_line(byte);
        while len >= LINE {
            O::store_line(dst, line);
            F::flush_line(dst);
            (dst, len) = (dst.add(LINE), len - LINE);
        }
        if len != 0 {
            set_small::<O>(dst, byte, len);
            F::flush_line(dst);
        }
    }
}

/// Fills whole lines with non-temporal stores; head and tail as in
/// [`move_nontemporal`].
///
/// # Safety
/// As for [`set_temporal`].
#[inline(always)]
pub(crate) unsafe fn set_nontemporal<O: StreamOps, F: FlushLine>(
    mut dst: *mut u8,
    byte: u8,
    mut len: usize,
) {
    // SAFETY: each step stays within the remaining `len` bytes; after the head,
    // `dst` is 64-aligned as streaming requires.
    unsafe {
        let head = head_len(dst, len);
        if head != 0 {
            set_small::<O>(dst, byte, head);
            F::flush_line(dst);
            (dst, len) = (dst.add(head), len - head);
        }
        let line = O::splat_line(byte);
        while len >= BATCH * LINE {
            for i in 0..BATCH {
                O::stream_line(dst.add(i * LINE), line);
            }
            (dst, len) = (dst.add(BATCH * LINE), len - BATCH * LINE);
        }
        while len >= LINE {
            O::stream_line(dst, line);
            (dst, len) = (dst.add(LINE), len - LINE);
        }
        match len {
            0 => {}
            4 => O::stream_u32(dst, u32::splat(byte)),
            8 | 16 | 32 => {
                for i in 0..len / 8 {
                    O::stream_u64(dst.add(8 * i), u64::splat(byte));
                }
            }
            _ => {
                set_small::<O>(dst, byte, len);
                F::flush_line(dst);
            }
        }
    }
    F::after_nt_stores();
}
