//! The engine: the flush, drain and copy routines chosen for a [`Config`].

use std::fmt;
use std::sync::OnceLock;

use crate::arch;
use crate::config::{Config, CopyVariant, FlushInstruction};
use crate::cpu::CpuFeatures;
use crate::flags::CopyFlags;
use crate::memops::MemFns;

/// The fence that makes earlier flushes and non-temporal stores durable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fence {
    /// `SFENCE`: orders `CLWB`, `CLFLUSHOPT` and non-temporal stores.
    Store,
    /// `MFENCE`: needed for `CLFLUSH` on AMD.
    Full,
    /// Nothing: `CLFLUSH` is ordered by itself on Intel.
    None,
}

/// A [`Config`] asked for something this CPU cannot do.
///
/// # Examples
///
/// ```
/// use pmem_sys::{Config, CpuFeatures, Engine, FlushInstruction};
/// let clwb = Config { flush: FlushInstruction::Clwb, ..Config::from_env() };
/// match Engine::new(clwb) {
///     Ok(_) => assert!(CpuFeatures::detect().clwb),
///     Err(e) => assert_eq!(e.to_string(), "this CPU does not support CLWB"),
/// }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnsupportedConfig {
    /// What is missing, e.g. "CLWB" or "AVX-512F".
    pub missing: &'static str,
}

impl fmt::Display for UnsupportedConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "this CPU does not support {}", self.missing)
    }
}

impl std::error::Error for UnsupportedConfig {}

/// The persistence routines selected for one [`Config`]: libpmem's function
/// table, as a value.
///
/// The process-wide engine ([`Engine::global`]) is what the free functions in
/// [`raw`](crate::raw), [`Mapping`](crate::Mapping) and the C ABI use. Other
/// engines let a test run every variant side by side.
///
/// # Examples
///
/// ```
/// use pmem_sys::{Config, CopyFlags, CopyVariant, Engine};
/// let engine = Engine::new(Config { variant: CopyVariant::Generic, ..Config::from_env() })?;
/// let src = [7u8; 100];
/// let mut dst = [0u8; 100];
/// // SAFETY: both buffers are valid for 100 bytes and do not overlap.
/// unsafe { engine.memcpy(dst.as_mut_ptr(), src.as_ptr(), 100, CopyFlags::empty()) };
/// assert_eq!(dst, src);
/// # Ok::<(), pmem_sys::UnsupportedConfig>(())
/// ```
#[derive(Clone, Copy)]
pub struct Engine {
    config: Config,
    fence: Fence,
    fns: MemFns,
}

impl fmt::Debug for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Engine")
            .field("config", &self.config)
            .field("fence", &self.fence)
            .finish()
    }
}

impl Engine {
    /// The engine libpmem would choose for this process ([`Config::from_env`]),
    /// set up on first use.
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_sys::{Config, Engine};
    /// let engine = Engine::global();
    /// assert!(std::ptr::eq(engine, Engine::global()), "set up once");
    /// assert_eq!(*engine.config(), Config::from_env());
    /// ```
    #[inline]
    pub fn global() -> &'static Engine {
        static GLOBAL: OnceLock<Engine> = OnceLock::new();
        GLOBAL.get_or_init(|| {
            // `from_env` only picks what the CPU supports.
            Engine::new(Config::from_env()).unwrap_or_else(|e| unreachable_config(&e))
        })
    }

    /// Builds the engine for `config`.
    ///
    /// # Errors
    /// The CPU lacks the flush instruction or the vector extension `config` names.
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_sys::{Config, CopyVariant, CpuFeatures, Engine};
    /// let cpu = CpuFeatures::detect();
    /// let widest = Config { variant: CopyVariant::Avx512f, ..Config::from_env() };
    /// match Engine::new(widest) {
    ///     Ok(engine) => assert!(cpu.avx512f && engine.config().variant == CopyVariant::Avx512f),
    ///     Err(e) => assert_eq!((cpu.avx512f, e.missing), (false, "AVX-512F")),
    /// }
    /// ```
    pub fn new(config: Config) -> Result<Self, UnsupportedConfig> {
        let cpu = CpuFeatures::detect();
        if !config.flush.is_supported_by(&cpu) {
            return Err(UnsupportedConfig {
                missing: flush_name(config.flush),
            });
        }
        if !config.variant.is_supported_by(&cpu) {
            return Err(UnsupportedConfig {
                missing: variant_name(config.variant),
            });
        }
        let fence = match config.flush {
            FlushInstruction::Clflush if cpu.amd => Fence::Full,
            FlushInstruction::Clflush => Fence::None,
            FlushInstruction::Clwb | FlushInstruction::ClflushOpt => Fence::Store,
            FlushInstruction::Unavailable => Fence::Full,
        };
        // The copy routines' own flushes follow `skip_flush`; deep_flush does not.
        let fns = arch::mem_fns(config.variant, config.flush, config.skip_flush);
        Ok(Self { config, fence, fns })
    }

    /// The choices this engine was built from.
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_sys::{Config, Engine};
    /// let config = Config { movnt_threshold: 4096, ..Config::from_env() };
    /// let engine = Engine::new(config)?;
    /// assert_eq!(engine.config(), &config);
    /// # Ok::<(), pmem_sys::UnsupportedConfig>(())
    /// ```
    #[must_use]
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Writes back every cache line overlapping `[addr, addr + len)`, unless
    /// flushing is skipped (eADR, `PMEM_NO_FLUSH=1`). Does not wait: see
    /// [`drain`](Self::drain).
    ///
    /// # Safety
    /// The range is mapped (it need not be writable).
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_sys::{Engine, Mapping};
    /// let dir = tempfile::tempdir()?;
    /// let mut pool = Mapping::create(dir.path().join("pool"), 4096)?;
    /// pool.as_mut_slice()[..3].copy_from_slice(b"abc");
    /// pool.as_mut_slice()[1024..1027].copy_from_slice(b"xyz");
    /// let engine = Engine::global();
    /// // SAFETY: bytes 0..3 and 1024..1027 lie inside the mapping, which `pool` keeps
    /// // alive.
    /// unsafe {
    ///     engine.flush(pool.as_ptr(), 3);
    ///     engine.flush(pool.as_ptr().add(1024), 3);
    /// }
    /// engine.drain(); // one fence for both flushes
    /// assert_eq!(&pool.as_slice()[1024..1027], b"xyz");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[inline]
    pub unsafe fn flush(&self, addr: *const u8, len: usize) {
        if !self.config.skip_flush {
            // SAFETY: forwarded from the caller.
            unsafe { self.deep_flush(addr, len) }
        }
    }

    /// Writes back every cache line overlapping the range, even when flushing
    /// is otherwise skipped.
    ///
    /// # Safety
    /// The range is mapped.
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_sys::{Config, Engine, Mapping};
    /// let dir = tempfile::tempdir()?;
    /// let mut pool = Mapping::create(dir.path().join("pool"), 4096)?;
    /// pool.as_mut_slice()[..8].copy_from_slice(&5u64.to_le_bytes());
    /// // As on an eADR platform, where ordinary flushes are skipped:
    /// let eadr = Engine::new(Config { skip_flush: true, ..Config::from_env() })?;
    /// // SAFETY: bytes 0..8 lie inside the mapping, which `pool` keeps alive.
    /// unsafe {
    ///     eadr.flush(pool.as_ptr(), 8); // does nothing
    ///     eadr.deep_flush(pool.as_ptr(), 8); // writes the line back all the same
    /// }
    /// eadr.drain();
    /// assert_eq!(pool.as_slice()[..8], 5u64.to_le_bytes());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[inline]
    pub unsafe fn deep_flush(&self, addr: *const u8, len: usize) {
        // SAFETY: the range is mapped (caller); `new` checked the CPU has the instruction.
        unsafe { arch::flush_range(self.config.flush, addr, len) }
    }

    /// Waits until earlier flushes and non-temporal stores are durable.
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_sys::{CopyFlags, Engine};
    /// let engine = Engine::global();
    /// let mut buf = [0u8; 128];
    /// // SAFETY: bytes 0..64 and 64..128 lie in `buf`.
    /// unsafe {
    ///     engine.memset(buf.as_mut_ptr(), 1, 64, CopyFlags::NODRAIN);
    ///     engine.memset(buf.as_mut_ptr().add(64), 2, 64, CopyFlags::NODRAIN);
    /// }
    /// engine.drain(); // one fence for both
    /// assert_eq!((buf[63], buf[64]), (1, 2));
    /// ```
    #[inline]
    pub fn drain(&self) {
        match self.fence {
            Fence::Store => arch::sfence(),
            Fence::Full => arch::mfence(),
            Fence::None => core::sync::atomic::compiler_fence(core::sync::atomic::Ordering::SeqCst),
        }
    }

    /// Flushes the range and drains: on return, its contents are durable.
    ///
    /// # Safety
    /// The range is mapped.
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_sys::{Engine, Mapping};
    /// let dir = tempfile::tempdir()?;
    /// let mut pool = Mapping::create(dir.path().join("pool"), 4096)?;
    /// pool.as_mut_slice()[..4].copy_from_slice(b"done");
    /// // SAFETY: bytes 0..4 lie inside the mapping, which `pool` keeps alive.
    /// unsafe { Engine::global().persist(pool.as_ptr(), 4) };
    /// assert_eq!(&pool.as_slice()[..4], b"done");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[inline]
    pub unsafe fn persist(&self, addr: *const u8, len: usize) {
        // SAFETY: forwarded from the caller.
        unsafe { self.flush(addr, len) };
        self.drain();
    }

    /// libpmem's `pmem_memmove`: copies `len` bytes (the ranges may overlap)
    /// so that they are durable on return, unless `flags` say otherwise.
    ///
    /// # Safety
    /// `src` is readable and `dst` writable for `len` bytes; both lie in
    /// mapped memory.
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_sys::{CopyFlags, Engine};
    /// let mut buf: Vec<u8> = (0..=255).cycle().take(1024).collect();
    /// let mut expected = buf.clone();
    /// expected.copy_within(0..1000, 24);
    /// let p = buf.as_mut_ptr();
    /// // SAFETY: bytes 0..1000 and 24..1024 lie in `buf`; memmove allows overlap.
    /// unsafe { Engine::global().memmove(p.add(24), p, 1000, CopyFlags::empty()) };
    /// assert_eq!(buf, expected);
    /// ```
    #[inline]
    pub unsafe fn memmove(&self, dst: *mut u8, src: *const u8, len: usize, flags: CopyFlags) {
        let bits = flags.bits() & !CopyFlags::NODRAIN.bits();
        // SAFETY: forwarded from the caller; `new` checked the CPU runs these routines.
        unsafe { (self.fns.memmove)(dst, src, len, bits, self.config.movnt_threshold) };
        self.drain_unless(flags);
    }

    /// libpmem's `pmem_memcpy`: the same as [`memmove`](Self::memmove),
    /// overlap included.
    ///
    /// # Safety
    /// As for [`memmove`](Self::memmove).
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_sys::{Config, CopyFlags, CopyVariant, Engine};
    /// let engine = Engine::new(Config { variant: CopyVariant::Generic, ..Config::from_env() })?;
    /// let src = vec![0xA5u8; 4096];
    /// let mut dst = vec![0u8; 4096];
    /// // SAFETY: `src` is readable and `dst` writable for 4096 bytes.
    /// unsafe { engine.memcpy(dst.as_mut_ptr(), src.as_ptr(), 4096, CopyFlags::TEMPORAL) };
    /// assert_eq!(dst, src);
    /// # Ok::<(), pmem_sys::UnsupportedConfig>(())
    /// ```
    #[inline]
    pub unsafe fn memcpy(&self, dst: *mut u8, src: *const u8, len: usize, flags: CopyFlags) {
        // SAFETY: forwarded from the caller.
        unsafe { self.memmove(dst, src, len, flags) }
    }

    /// libpmem's `pmem_memset`: fills `len` bytes with `byte`, durably on
    /// return unless `flags` say otherwise.
    ///
    /// # Safety
    /// `dst` is writable for `len` bytes in mapped memory.
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_sys::{CopyFlags, Engine};
    /// let mut buf = [0u8; 300];
    /// // SAFETY: `buf` is writable for 300 bytes.
    /// unsafe { Engine::global().memset(buf.as_mut_ptr(), 0x7F, 300, CopyFlags::NONTEMPORAL) };
    /// assert!(buf.iter().all(|&b| b == 0x7F));
    /// ```
    #[inline]
    pub unsafe fn memset(&self, dst: *mut u8, byte: u8, len: usize, flags: CopyFlags) {
        let bits = flags.bits() & !CopyFlags::NODRAIN.bits();
        // SAFETY: forwarded from the caller; `new` checked the CPU runs these routines.
        unsafe { (self.fns.memset)(dst, byte, len, bits, self.config.movnt_threshold) };
        self.drain_unless(flags);
    }

    #[inline(always)]
    fn drain_unless(&self, flags: CopyFlags) {
        if !flags.intersects(CopyFlags::NODRAIN | CopyFlags::NOFLUSH) {
            self.drain();
        }
    }
}

#[cold]
#[track_caller]
fn unreachable_config(error: &UnsupportedConfig) -> ! {
    panic!("Config::from_env chose an unsupported configuration: {error}")
}

fn flush_name(flush: FlushInstruction) -> &'static str {
    match flush {
        FlushInstruction::Clwb => "CLWB",
        FlushInstruction::ClflushOpt => "CLFLUSHOPT",
        FlushInstruction::Clflush => "CLFLUSH",
        FlushInstruction::Unavailable => "no flush",
    }
}

fn variant_name(variant: CopyVariant) -> &'static str {
    match variant {
        CopyVariant::Generic | CopyVariant::GenericBulk => "generic copies",
        CopyVariant::Sse2 => "SSE2",
        CopyVariant::Avx => "AVX",
        CopyVariant::Avx512f => "AVX-512F",
    }
}
