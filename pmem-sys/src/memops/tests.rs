//! The algorithms run against a recording implementation of the primitive
//! operations, which logs every store, non-temporal store, flush and fence.
//! The log is then checked against what the algorithms promise.

use std::cell::RefCell;

use proptest::prelude::*;

use super::ops::{FlushLine, LineOps, StreamOps, Word};
use super::{Path, flushing_path, memmove_flushing, memset_flushing, no_flush_path};
use crate::flags::CopyFlags;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Event {
    Store { addr: usize, width: usize },
    Stream { addr: usize, width: usize },
    Flush { line: usize },
    Fence,
}

thread_local! {
    static LOG: RefCell<Vec<Event>> = const { RefCell::new(Vec::new()) };
}

fn log(event: Event) {
    LOG.with(|l| l.borrow_mut().push(event));
}

fn take_log() -> Vec<Event> {
    LOG.with(|l| std::mem::take(&mut *l.borrow_mut()))
}

/// Performs each operation on real memory and records it.
enum Rec {}

// SAFETY: plain memory accesses only.
unsafe impl LineOps for Rec {
    type Line = [u8; 64];

    unsafe fn load_line(src: *const u8) -> Self::Line {
        // SAFETY: the algorithm guarantees 64 readable bytes.
        unsafe { src.cast::<[u8; 64]>().read_unaligned() }
    }

    unsafe fn store_line(dst: *mut u8, line: Self::Line) {
        log(Event::Store {
            addr: dst as usize,
            width: 64,
        });
        // SAFETY: the algorithm guarantees 64 writable bytes.
        unsafe { dst.cast::<[u8; 64]>().write_unaligned(line) }
    }

    unsafe fn splat_line(byte: u8) -> Self::Line {
        [byte; 64]
    }

    unsafe fn store<W: Word>(dst: *mut u8, value: W) {
        log(Event::Store {
            addr: dst as usize,
            width: size_of::<W>(),
        });
        // SAFETY: the algorithm guarantees the bytes are writable.
        unsafe { dst.cast::<W>().write_unaligned(value) }
    }
}

// SAFETY: plain memory accesses only.
unsafe impl StreamOps for Rec {
    // Exercises the wide-batch loops as well as the 4-line and 1-line ones.
    const NT_BATCH: usize = 8;

    unsafe fn stream_line(dst: *mut u8, line: Self::Line) {
        assert!(
            (dst as usize).is_multiple_of(64),
            "streamed line at {dst:p} is not 64-aligned"
        );
        log(Event::Stream {
            addr: dst as usize,
            width: 64,
        });
        // SAFETY: the algorithm guarantees 64 writable bytes.
        unsafe { dst.cast::<[u8; 64]>().write_unaligned(line) }
    }

    unsafe fn stream_u64(dst: *mut u8, value: u64) {
        assert!(
            (dst as usize).is_multiple_of(8),
            "MOVNTI at {dst:p} is not 8-aligned"
        );
        log(Event::Stream {
            addr: dst as usize,
            width: 8,
        });
        // SAFETY: the algorithm guarantees 8 writable bytes.
        unsafe { dst.cast::<u64>().write_unaligned(value) }
    }

    unsafe fn stream_u32(dst: *mut u8, value: u32) {
        assert!(
            (dst as usize).is_multiple_of(4),
            "MOVNTI at {dst:p} is not 4-aligned"
        );
        log(Event::Stream {
            addr: dst as usize,
            width: 4,
        });
        // SAFETY: the algorithm guarantees 4 writable bytes.
        unsafe { dst.cast::<u32>().write_unaligned(value) }
    }
}

enum RecFlush {}

impl FlushLine for RecFlush {
    unsafe fn flush_line(addr: *const u8) {
        log(Event::Flush {
            line: addr as usize & !63,
        });
    }

    fn after_nt_stores() {
        log(Event::Fence);
    }
}

/// A buffer with a recognisable pattern, 64-aligned, with room around the
/// ranges under test.
struct Arena {
    storage: Vec<u64>,
}

const ARENA: usize = 16 * 1024;

impl Arena {
    fn new() -> Self {
        let mut arena = Self {
            storage: vec![0; ARENA / 8 + 8],
        };
        for (i, b) in arena.bytes_mut().iter_mut().enumerate() {
            *b = (i * 7 + i / 251) as u8;
        }
        arena
    }

    /// 64-aligned window of ARENA bytes.
    fn bytes_mut(&mut self) -> &mut [u8] {
        let base = self.storage.as_mut_ptr().cast::<u8>();
        let skew = base.align_offset(64);
        // SAFETY: `storage` holds ARENA + 64 bytes, so ARENA bytes from a
        // 64-aligned point within its first 64 bytes are in bounds.
        unsafe { std::slice::from_raw_parts_mut(base.add(skew), ARENA) }
    }
}

/// What a run must satisfy, given the path it should take.
fn check_log(events: &[Event], dst: usize, len: usize, path: Path) {
    let end = dst + len;
    let mut covered = vec![false; len];
    let aligned_words = dst.is_multiple_of(8) && len.is_multiple_of(8);
    let mut last_stream = None;
    for (i, event) in events.iter().enumerate() {
        let (addr, width, streamed) = match *event {
            Event::Store { addr, width } => (addr, width, false),
            Event::Stream { addr, width } => (addr, width, true),
            _ => continue,
        };
        assert!(
            addr >= dst && addr + width <= end,
            "{event:?} outside {dst:#x}..{end:#x}"
        );
        if aligned_words {
            assert!(
                width >= 8 && addr.is_multiple_of(8),
                "{event:?} narrower than a word"
            );
        }
        for b in &mut covered[addr - dst..addr - dst + width] {
            *b = true;
        }
        if streamed {
            assert_eq!(path, Path::NonTemporal, "streamed on the {path:?} path");
            last_stream = Some(i);
        } else if path != Path::Plain {
            // Every line an ordinary store touches is flushed later.
            for line in (addr & !63..addr + width).step_by(64) {
                assert!(
                    events[i + 1..].contains(&Event::Flush { line }),
                    "line {line:#x} stored by {event:?} is never flushed afterwards"
                );
            }
        }
    }
    assert!(
        covered.iter().all(|&c| c),
        "not every byte of {dst:#x}..{end:#x} was written"
    );
    if path == Path::Plain {
        assert!(
            !events.iter().any(|e| matches!(e, Event::Flush { .. })),
            "NOFLUSH flushed"
        );
    }
    if let Some(i) = last_stream {
        assert!(
            events[i + 1..].contains(&Event::Fence),
            "non-temporal stores never fenced"
        );
    }
    // Flushes stay within the lines of the range.
    for e in events {
        if let Event::Flush { line } = *e {
            assert!(
                line + 64 > dst && line < end,
                "flushed {line:#x}, outside the range"
            );
        }
    }
}

fn run_move(dst_off: usize, src_off: usize, len: usize, flags: u32, threshold: usize) {
    let mut arena = Arena::new();
    let bytes = arena.bytes_mut();
    let mut expected = bytes.to_vec();
    expected.copy_within(src_off..src_off + len, dst_off);
    let base = bytes.as_mut_ptr();
    take_log();
    // SAFETY: both ranges lie inside the arena.
    unsafe {
        memmove_flushing::<Rec, RecFlush>(
            base.add(dst_off),
            base.add(src_off),
            len,
            flags,
            threshold,
        )
    };
    let events = take_log();
    assert!(
        bytes == &expected[..],
        "memmove({dst_off}, {src_off}, {len}, {flags:#x}) wrong bytes"
    );
    if len == 0 || dst_off == src_off {
        assert!(events.is_empty());
        return;
    }
    check_log(
        &events,
        base as usize + dst_off,
        len,
        flushing_path(flags, len, threshold),
    );
}

fn run_set(dst_off: usize, len: usize, flags: u32, threshold: usize) {
    let mut arena = Arena::new();
    let bytes = arena.bytes_mut();
    let mut expected = bytes.to_vec();
    expected[dst_off..dst_off + len].fill(0xA5);
    let base = bytes.as_mut_ptr();
    take_log();
    // SAFETY: the range lies inside the arena.
    unsafe { memset_flushing::<Rec, RecFlush>(base.add(dst_off), 0xA5, len, flags, threshold) };
    let events = take_log();
    assert!(
        bytes == &expected[..],
        "memset({dst_off}, {len}, {flags:#x}) wrong bytes"
    );
    if len > 0 {
        check_log(
            &events,
            base as usize + dst_off,
            len,
            flushing_path(flags, len, threshold),
        );
    }
}

const NT: u32 = CopyFlags::NONTEMPORAL.bits();
const T: u32 = CopyFlags::TEMPORAL.bits();

#[test]
fn every_offset_and_short_length_both_paths() {
    for dst_off in 0..64 {
        for len in 0..=200 {
            for flags in [NT, T] {
                run_set(64 + dst_off, len, flags, 256);
                // Forward, backward (overlapping) and disjoint sources.
                let dst = 1024 + dst_off;
                for src in [dst + 3, dst - 5, dst + 17 * 64 + 9] {
                    run_move(dst, src, len, flags, 256);
                }
            }
        }
    }
}

#[test]
fn word_guarantee_on_aligned_copies() {
    // Every 8-aligned offset and multiple-of-8 length up to several lines,
    // on all three paths, in both directions.
    for dst_off in (0..128).step_by(8) {
        for len in (8..=1024).step_by(8) {
            for flags in [0, NT, T, CopyFlags::NOFLUSH.bits()] {
                run_move(2048 + dst_off, 2048 + dst_off + 24, len, flags, 256);
                run_move(2048 + dst_off, 2048 + dst_off - 40, len, flags, 256);
                run_set(2048 + dst_off, len, flags, 256);
            }
        }
    }
}

#[test]
fn threshold_decides_the_default_path() {
    assert_eq!(flushing_path(0, 255, 256), Path::Temporal);
    assert_eq!(flushing_path(0, 256, 256), Path::NonTemporal);
    assert_eq!(flushing_path(0, 0, 0), Path::NonTemporal);
    assert_eq!(
        flushing_path(CopyFlags::WC.bits(), 8, 256),
        Path::NonTemporal
    );
    assert_eq!(
        flushing_path(CopyFlags::WB.bits(), 1 << 20, 256),
        Path::Temporal
    );
    // NOFLUSH wins over everything; NONTEMPORAL over TEMPORAL.
    assert_eq!(
        flushing_path(CopyFlags::all().bits(), 1 << 20, 256),
        Path::Plain
    );
    assert_eq!(flushing_path(NT | T, 8, 256), Path::NonTemporal);
    // Without flushing only an explicit NONTEMPORAL bypasses the cache (WC does not).
    assert_eq!(no_flush_path(NT), Path::NonTemporal);
    assert_eq!(no_flush_path(CopyFlags::WC.bits()), Path::Plain);
    assert_eq!(no_flush_path(NT | CopyFlags::NOFLUSH.bits()), Path::Plain);
}

fn flag_bits() -> impl Strategy<Value = u32> {
    0u32..64
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn memmove_keeps_its_promises(dst_off in 0usize..4096, src_off in 0usize..4096,
                                  len in 0usize..4096, flags in flag_bits(),
                                  threshold in prop::sample::select(vec![0usize, 5, 256, 1024, usize::MAX])) {
        run_move(4096 + dst_off, 4096 + src_off, len, flags & !CopyFlags::NODRAIN.bits(), threshold);
    }

    #[test]
    fn memset_keeps_its_promises(dst_off in 0usize..8192, len in 0usize..8192, flags in flag_bits(),
                                 threshold in prop::sample::select(vec![0usize, 5, 256, 1024, usize::MAX])) {
        run_set(dst_off, len, flags & !CopyFlags::NODRAIN.bits(), threshold);
    }
}
