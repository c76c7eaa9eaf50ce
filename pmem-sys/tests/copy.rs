//! The persistent copy family against `copy_within`/`fill` on a shadow buffer.
//!
//! Ported from PMDK's memcpy/memmove/memset tests: destination and source
//! offsets 0..63, lengths from 0 to beyond 256 KiB, overlap in both
//! directions, every flag combination, every variant and flush instruction
//! the CPU supports, thresholds 0, 5, 256, 1024 and "never". The copies run
//! on a real mapping of a file (in /dev/shm when there is one), so the flush
//! instructions act on file pages. The shadow and the mapping are compared
//! over a window wider than the range written, so a stray byte before or past
//! the end is caught.

use pmem_sys::{Config, CopyFlags, CopyVariant, CpuFeatures, Engine, FlushInstruction, Mapping};
use proptest::prelude::*;

const THRESHOLDS: [usize; 5] = [0, 5, 256, 1024, usize::MAX];

/// A mapped file and a heap shadow of it, always equal between operations.
struct Shadowed {
    mapping: Mapping,
    shadow: Vec<u8>,
    _dir: tempfile::TempDir,
}

fn temp_dir() -> tempfile::TempDir {
    let shm = std::path::Path::new("/dev/shm");
    if shm.is_dir() {
        tempfile::Builder::new()
            .prefix("pmem-copy")
            .tempdir_in(shm)
            .expect("temp dir in /dev/shm")
    } else {
        tempfile::tempdir().expect("temp dir")
    }
}

impl Shadowed {
    fn new(len: usize) -> Self {
        let dir = temp_dir();
        let mut mapping = Mapping::create(dir.path().join("pool"), len).expect("map a pool file");
        let shadow: Vec<u8> = (0..len).map(|i| (i * 131 + i / 509) as u8).collect();
        mapping.as_mut_slice().copy_from_slice(&shadow);
        Self {
            mapping,
            shadow,
            _dir: dir,
        }
    }

    /// memmove `len` bytes from `src` to `dst` (offsets) on both, then compare.
    fn memmove(&mut self, engine: &Engine, dst: usize, src: usize, len: usize, flags: CopyFlags) {
        let base = self.mapping.as_mut_ptr();
        assert!(dst.max(src) + len <= self.shadow.len());
        // SAFETY: both ranges are inside the mapping (asserted); memmove allows overlap.
        unsafe { engine.memmove(base.add(dst), base.add(src), len, flags) };
        self.shadow.copy_within(src..src + len, dst);
        self.compare(dst.min(src), dst.max(src) + len, || {
            format!(
                "{:?} memmove(dst {dst}, src {src}, len {len}, {flags:?})",
                engine.config()
            )
        });
    }

    /// memcpy from a separate heap buffer.
    fn memcpy_in(&mut self, engine: &Engine, dst: usize, data: &[u8], flags: CopyFlags) {
        let base = self.mapping.as_mut_ptr();
        assert!(dst + data.len() <= self.shadow.len());
        // SAFETY: the destination is inside the mapping; `data` is a distinct heap buffer.
        unsafe { engine.memcpy(base.add(dst), data.as_ptr(), data.len(), flags) };
        self.shadow[dst..dst + data.len()].copy_from_slice(data);
        self.compare(dst, dst + data.len(), || {
            format!(
                "{:?} memcpy(dst {dst}, len {}, {flags:?})",
                engine.config(),
                data.len()
            )
        });
    }

    fn memset(&mut self, engine: &Engine, dst: usize, byte: u8, len: usize, flags: CopyFlags) {
        let base = self.mapping.as_mut_ptr();
        assert!(dst + len <= self.shadow.len());
        // SAFETY: the range is inside the mapping (asserted).
        unsafe { engine.memset(base.add(dst), byte, len, flags) };
        self.shadow[dst..dst + len].fill(byte);
        self.compare(dst, dst + len, || {
            format!(
                "{:?} memset(dst {dst}, {byte:#x}, len {len}, {flags:?})",
                engine.config()
            )
        });
    }

    /// Compares `[start - 64, end + 64)` (clamped), reporting the first difference.
    fn compare(&self, start: usize, end: usize, what: impl Fn() -> String) {
        let lo = start.saturating_sub(64);
        let hi = (end + 64).min(self.shadow.len());
        let live = &self.mapping.as_slice()[lo..hi];
        let expected = &self.shadow[lo..hi];
        if live != expected {
            let at = live
                .iter()
                .zip(expected)
                .position(|(a, b)| a != b)
                .unwrap_or(0)
                + lo;
            panic!(
                "{}: byte {at} is {:#x}, expected {:#x} (range {start}..{end})",
                what(),
                self.mapping.as_slice()[at],
                self.shadow[at]
            );
        }
    }
}

/// Every engine this CPU can run: each variant with the default flush, each
/// flush instruction with the default variant, and the no-flush (eADR) mode.
fn engines(threshold: usize) -> Vec<Engine> {
    let cpu = CpuFeatures::detect();
    let base = Config {
        movnt_threshold: threshold,
        skip_flush: false,
        ..Config::from_env()
    };
    let mut configs: Vec<Config> = CopyVariant::ALL
        .into_iter()
        .filter(|v| v.is_supported_by(&cpu))
        .map(|variant| Config { variant, ..base })
        .collect();
    for flush in [
        FlushInstruction::Clwb,
        FlushInstruction::ClflushOpt,
        FlushInstruction::Clflush,
    ] {
        if flush.is_supported_by(&cpu) && flush != base.flush {
            configs.push(Config { flush, ..base });
        }
    }
    for variant in [CopyVariant::Generic, base.variant] {
        configs.push(Config {
            variant,
            skip_flush: true,
            ..base
        });
    }
    configs
        .into_iter()
        .map(|c| Engine::new(c).expect("supported config"))
        .collect()
}

/// Representative flag sets: none, each path request, the no-flush and
/// no-drain forms, and contradictory combinations.
fn flag_sets() -> Vec<CopyFlags> {
    let f = |bits| CopyFlags::from_bits(bits).expect("valid flags");
    vec![
        f(0),
        f(1),
        f(2),
        f(4),
        f(8),
        f(16),
        f(32),
        f(2 | 4),
        f(8 | 16),
        f(1 | 2),
        f(32 | 2),
        f(63),
    ]
}

#[test]
fn every_variant_reports_its_config() {
    for engine in engines(256) {
        assert_eq!(engine.config().movnt_threshold, 256);
    }
    assert!(
        engines(256).len() >= 3,
        "at least generic, bulk and one no-flush engine"
    );
}

#[test]
fn short_copies_every_offset() {
    let mut arena = Shadowed::new(64 * 1024);
    for engine in engines(256) {
        for flags in [
            CopyFlags::empty(),
            CopyFlags::NONTEMPORAL,
            CopyFlags::TEMPORAL,
        ] {
            for dst_off in 0..64 {
                for len in (0..=160).chain([255, 256, 257, 300]) {
                    let dst = 4096 + dst_off;
                    for src in [
                        dst + 1,
                        dst - 9,
                        dst + 64,
                        dst - 64,
                        20_000 + (dst_off * 7) % 64,
                    ] {
                        arena.memmove(&engine, dst, src, len, flags);
                    }
                    arena.memset(&engine, dst, len as u8, len, flags);
                }
            }
        }
    }
}

#[test]
fn source_offsets_against_destination_offsets() {
    let mut arena = Shadowed::new(32 * 1024);
    let engines = engines(256);
    for dst_off in 0..64 {
        for src_off in 0..64 {
            for &len in &[8, 24, 64, 100, 264, 1000] {
                let engine = &engines[(dst_off + src_off) % engines.len()];
                arena.memmove(
                    engine,
                    8192 + dst_off,
                    16384 + src_off,
                    len,
                    CopyFlags::empty(),
                );
            }
        }
    }
}

#[test]
fn every_flag_set_and_threshold() {
    let mut arena = Shadowed::new(256 * 1024);
    let data: Vec<u8> = (0..70_000u32).map(|i| (i * 37) as u8).collect();
    for threshold in THRESHOLDS {
        for engine in engines(threshold) {
            for flags in flag_sets() {
                for (dst_off, len) in [
                    (0, 0),
                    (3, 7),
                    (0, 64),
                    (8, 256),
                    (17, 1000),
                    (0, 4096),
                    (5, 65_537),
                ] {
                    arena.memcpy_in(&engine, 1024 + dst_off, &data[..len], flags);
                    arena.memmove(&engine, 1024 + dst_off, 100_000 + dst_off / 2, len, flags);
                    arena.memset(&engine, 1024 + dst_off, 0x5a, len, flags);
                }
            }
        }
    }
}

#[test]
fn long_copies_and_overlaps() {
    // Powers of two, their neighbours, and beyond 256 KiB; both overlap directions.
    let mut arena = Shadowed::new(2 * 1024 * 1024);
    let mut lengths: Vec<usize> = Vec::new();
    for shift in 0..=19 {
        let p = 1usize << shift;
        lengths.extend([p - 1, p, p + 1]);
    }
    lengths.extend([300 * 1024, 4096 + 4, 4096 + 32, 4096 + 24]);
    for engine in engines(256) {
        for &len in &lengths {
            for dst_off in [0, 1, 8, 63] {
                let dst = 65_536 + dst_off;
                for src in [dst + 8, dst + 100, dst - 8, dst - 4097, dst + len + 64] {
                    arena.memmove(&engine, dst, src, len, CopyFlags::empty());
                }
                arena.memset(&engine, dst, 0xC3, len, CopyFlags::empty());
            }
        }
    }
}

#[test]
fn raw_functions_and_mapping_methods_use_the_global_engine() {
    let mut arena = Shadowed::new(16 * 1024);
    let base = arena.mapping.as_mut_ptr();
    // SAFETY: all ranges are inside the 16 KiB mapping.
    unsafe {
        assert_eq!(
            pmem_sys::raw::memcpy_persist(base.add(100), base.add(5000), 1000),
            base.add(100)
        );
        assert_eq!(
            pmem_sys::raw::memmove_nodrain(base.add(200), base.add(100), 1000),
            base.add(200)
        );
        pmem_sys::raw::drain();
        assert_eq!(
            pmem_sys::raw::memset_persist(base.add(9000), 0xEE, 333),
            base.add(9000)
        );
        pmem_sys::raw::memset_nodrain(base.add(9500), 0x11, 3);
        pmem_sys::raw::memcpy(base.add(12_000), base.add(1), 64, CopyFlags::WC);
    }
    arena.shadow.copy_within(5000..6000, 100);
    arena.shadow.copy_within(100..1100, 200);
    arena.shadow[9000..9333].fill(0xEE);
    arena.shadow[9500..9503].fill(0x11);
    arena.shadow.copy_within(1..65, 12_000);
    arena.compare(0, 16 * 1024 - 64, || "raw functions".to_owned());

    arena
        .mapping
        .write(3, b"abc", CopyFlags::empty())
        .expect("in bounds");
    arena
        .mapping
        .copy_within(0..8, 4, CopyFlags::empty())
        .expect("in bounds");
    arena
        .mapping
        .fill(10..20, 7, CopyFlags::NONTEMPORAL)
        .expect("in bounds");
    arena.shadow[3..6].copy_from_slice(b"abc");
    arena.shadow.copy_within(0..8, 4);
    arena.shadow[10..20].fill(7);
    arena.compare(0, 64, || "Mapping methods".to_owned());

    let len = arena.mapping.len();
    assert!(
        arena
            .mapping
            .write(len - 2, b"abc", CopyFlags::empty())
            .is_err()
    );
    assert!(
        arena
            .mapping
            .fill(len..len + 1, 0, CopyFlags::empty())
            .is_err()
    );
    assert!(
        arena
            .mapping
            .copy_within(0..10, len - 9, CopyFlags::empty())
            .is_err()
    );
    assert!(arena.mapping.persist(usize::MAX..).is_err());
    arena.compare(len - 64, len, || {
        "out-of-bounds calls changed nothing".to_owned()
    });
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Random copies and fills with random flags on a random engine.
    #[test]
    fn random_operations_match_the_shadow(
        ops in prop::collection::vec(
            (0usize..3, 0usize..60_000, 0usize..60_000, 0usize..5000, 0u32..64, any::<u8>()),
            1..20),
        engine_pick in any::<prop::sample::Index>(),
        threshold in prop::sample::select(THRESHOLDS.to_vec()),
    ) {
        let engines = engines(threshold);
        let engine = engine_pick.get(&engines);
        let mut arena = Shadowed::new(65_536);
        for (kind, dst, src, len, bits, byte) in ops {
            let flags = CopyFlags::from_bits(bits).expect("6 valid bits");
            let (dst, src) = (dst % (65_536 - len), src % (65_536 - len));
            match kind {
                0 => arena.memmove(engine, dst, src, len, flags),
                1 => arena.memset(engine, dst, byte, len, flags),
                _ => {
                    let data = vec![byte; len];
                    arena.memcpy_in(engine, dst, &data, flags);
                }
            }
        }
    }
}
