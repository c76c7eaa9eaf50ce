//! Which instructions to use: chosen once from the CPU, the environment
//! variables libpmem honours, and the platform's persistence domain.

use std::ffi::OsString;

use crate::cpu::CpuFeatures;
use crate::sysfs::{AutoFlush, Sysfs};

/// The instruction that writes a cache line back to memory.
///
/// # Examples
///
/// ```
/// use pmem_sys::{AutoFlush, Config, CpuFeatures, FlushInstruction};
/// // A CPU from before CLFLUSHOPT and CLWB gets CLFLUSH.
/// let old = CpuFeatures { clflush: true, sse2: true, ..CpuFeatures::default() };
/// let config = Config::choose(&old, |_| None, || AutoFlush::No);
/// assert_eq!(config.flush, FlushInstruction::Clflush);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FlushInstruction {
    /// `CLWB`: writes back and keeps the line cached (best).
    Clwb,
    /// `CLFLUSHOPT`: writes back and evicts, without ordering.
    ClflushOpt,
    /// `CLFLUSH`: writes back and evicts, serialised with stores on Intel.
    Clflush,
    /// No flush instruction on this architecture: flushing is a no-op and only
    /// `msync` makes data durable.
    Unavailable,
}

/// The routines used by the persistent copies (`memmove`, `memset`).
///
/// # Examples
///
/// ```
/// use pmem_sys::{Config, CopyFlags, CopyVariant, CpuFeatures, Engine};
/// // Every variant this CPU runs fills memory the same way.
/// let cpu = CpuFeatures::detect();
/// for variant in CopyVariant::ALL.into_iter().filter(|v| v.is_supported_by(&cpu)) {
///     let engine = Engine::new(Config { variant, ..Config::from_env() })?;
///     let mut buf = [0u8; 512];
///     // SAFETY: `buf` is writable for 512 bytes.
///     unsafe { engine.memset(buf.as_mut_ptr(), 0x5A, buf.len(), CopyFlags::empty()) };
///     assert!(buf.iter().all(|&b| b == 0x5A), "{variant:?}");
/// }
/// # Ok::<(), pmem_sys::UnsupportedConfig>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CopyVariant {
    /// 8-byte ordinary stores, each line flushed as soon as written; never
    /// non-temporal (`PMEM_NO_MOVNT=1`).
    Generic,
    /// 8-byte ordinary stores, the whole range flushed at the end
    /// (`PMEM_NO_MOVNT=1 PMEM_NO_GENERIC_MEMCPY=1`, libpmem's "libc" mode).
    GenericBulk,
    /// 16-byte SSE2 vectors, non-temporal `MOVNTDQ` for large copies.
    Sse2,
    /// 32-byte AVX vectors (`PMEM_AVX=0` disables).
    Avx,
    /// 64-byte AVX-512F vectors: a cache line per instruction (`PMEM_AVX512F=0` disables).
    Avx512f,
}

impl CopyVariant {
    /// Every variant, from the most portable to the widest.
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_sys::{CopyVariant, CpuFeatures};
    /// let cpu = CpuFeatures::detect();
    /// let usable: Vec<_> = CopyVariant::ALL
    ///     .into_iter()
    ///     .filter(|v| v.is_supported_by(&cpu))
    ///     .collect();
    /// assert!(usable.starts_with(&[CopyVariant::Generic, CopyVariant::GenericBulk]));
    /// ```
    pub const ALL: [CopyVariant; 5] = [
        Self::Generic,
        Self::GenericBulk,
        Self::Sse2,
        Self::Avx,
        Self::Avx512f,
    ];

    /// Whether `cpu` can run this variant.
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_sys::{CopyVariant, CpuFeatures};
    /// let sse2_only = CpuFeatures { sse2: true, ..CpuFeatures::default() };
    /// assert!(CopyVariant::Generic.is_supported_by(&sse2_only));
    /// assert!(CopyVariant::Sse2.is_supported_by(&sse2_only));
    /// assert!(!CopyVariant::Avx.is_supported_by(&sse2_only));
    /// ```
    #[must_use]
    pub fn is_supported_by(self, cpu: &CpuFeatures) -> bool {
        match self {
            Self::Generic | Self::GenericBulk => true,
            Self::Sse2 => cpu.sse2,
            Self::Avx => cpu.avx,
            Self::Avx512f => cpu.avx512f,
        }
    }
}

impl FlushInstruction {
    /// Whether `cpu` can execute this instruction.
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_sys::{CpuFeatures, FlushInstruction};
    /// let old = CpuFeatures { clflush: true, ..CpuFeatures::default() };
    /// assert!(FlushInstruction::Clflush.is_supported_by(&old));
    /// assert!(!FlushInstruction::Clwb.is_supported_by(&old));
    /// assert!(FlushInstruction::Unavailable.is_supported_by(&old), "nothing to execute");
    /// ```
    #[must_use]
    pub fn is_supported_by(self, cpu: &CpuFeatures) -> bool {
        match self {
            Self::Clwb => cpu.clwb,
            Self::ClflushOpt => cpu.clflushopt,
            Self::Clflush => cpu.clflush,
            Self::Unavailable => true,
        }
    }
}

/// libpmem's default `PMEM_MOVNT_THRESHOLD`: copies this long or longer use
/// non-temporal stores.
///
/// # Examples
///
/// ```
/// use pmem_sys::{AutoFlush, Config, CpuFeatures, DEFAULT_MOVNT_THRESHOLD};
/// // Without PMEM_MOVNT_THRESHOLD in the environment:
/// let config = Config::choose(&CpuFeatures::detect(), |_| None, || AutoFlush::No);
/// assert_eq!(config.movnt_threshold, DEFAULT_MOVNT_THRESHOLD);
/// ```
pub const DEFAULT_MOVNT_THRESHOLD: usize = 256;

/// The choices an [`Engine`](crate::Engine) is built from.
///
/// [`Config::from_env`] makes libpmem's choices; tests and benchmarks build
/// others to exercise every variant in one process.
///
/// # Examples
///
/// ```
/// use pmem_sys::{Config, CopyVariant};
/// let config = Config { variant: CopyVariant::Generic, ..Config::from_env() };
/// assert_eq!(config.variant, CopyVariant::Generic);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Config {
    /// How lines are written back.
    pub flush: FlushInstruction,
    /// Skip flushes (`PMEM_NO_FLUSH=1`, or caches in the persistence domain).
    /// [`deep_flush`](crate::raw::deep_flush) still flushes.
    pub skip_flush: bool,
    /// The copy routines.
    pub variant: CopyVariant,
    /// Lengths at or above this use non-temporal stores unless flags say otherwise.
    pub movnt_threshold: usize,
}

impl Config {
    /// libpmem's choice for this process: the CPU's best instructions, as
    /// restricted by the `PMEM_*` environment variables, and flushing skipped
    /// when `PMEM_NO_FLUSH=1` or the platform reports auto-flush (eADR).
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_sys::{Config, CpuFeatures, DEFAULT_MOVNT_THRESHOLD};
    /// let config = Config::from_env();
    /// let cpu = CpuFeatures::detect();
    /// assert!(config.flush.is_supported_by(&cpu), "only what the CPU can do");
    /// assert!(config.variant.is_supported_by(&cpu));
    /// if std::env::var_os("PMEM_MOVNT_THRESHOLD").is_none() {
    ///     assert_eq!(config.movnt_threshold, DEFAULT_MOVNT_THRESHOLD);
    /// }
    /// ```
    #[must_use]
    pub fn from_env() -> Self {
        Self::choose(
            &CpuFeatures::detect(),
            |name| std::env::var_os(name),
            || Sysfs::system().auto_flush(),
        )
    }

    /// The choice for a given CPU, environment and auto-flush probe (called
    /// only when `PMEM_NO_FLUSH` leaves the question open).
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_sys::{Config, CopyVariant, CpuFeatures, FlushInstruction, AutoFlush};
    /// let cpu = CpuFeatures { clflush: true, clflushopt: true, clwb: true, sse2: true,
    ///                         avx: true, ..CpuFeatures::default() };
    /// let env = |name: &str| (name == "PMEM_NO_CLWB").then(|| "1".into());
    /// let config = Config::choose(&cpu, env, || AutoFlush::No);
    /// assert_eq!(config.flush, FlushInstruction::ClflushOpt);
    /// assert_eq!(config.variant, CopyVariant::Avx);
    /// assert!(!config.skip_flush);
    /// ```
    pub fn choose(
        cpu: &CpuFeatures,
        env: impl Fn(&str) -> Option<OsString>,
        auto_flush: impl FnOnce() -> AutoFlush,
    ) -> Self {
        let is = |name: &str, value: &str| env(name).is_some_and(|v| v == value);

        let flush = if cpu.clwb && !is("PMEM_NO_CLWB", "1") {
            FlushInstruction::Clwb
        } else if cpu.clflushopt && !is("PMEM_NO_CLFLUSHOPT", "1") {
            FlushInstruction::ClflushOpt
        } else if cpu.clflush {
            FlushInstruction::Clflush
        } else {
            FlushInstruction::Unavailable
        };

        let variant = if is("PMEM_NO_MOVNT", "1") || !cpu.sse2 {
            if is("PMEM_NO_GENERIC_MEMCPY", "1") {
                CopyVariant::GenericBulk
            } else {
                CopyVariant::Generic
            }
        } else if cpu.avx512f && !is("PMEM_AVX512F", "0") {
            CopyVariant::Avx512f
        } else if cpu.avx && !is("PMEM_AVX", "0") {
            CopyVariant::Avx
        } else {
            CopyVariant::Sse2
        };

        let skip_flush = if is("PMEM_NO_FLUSH", "1") {
            true
        } else if is("PMEM_NO_FLUSH", "0") {
            false
        } else {
            auto_flush() == AutoFlush::Yes
        };

        // libpmem reads the threshold with atoll() and ignores negative values.
        let movnt_threshold = env("PMEM_MOVNT_THRESHOLD")
            .map(|v| parse_c_integer(&v.to_string_lossy()))
            .and_then(|v| usize::try_from(v).ok())
            .unwrap_or(DEFAULT_MOVNT_THRESHOLD);

        Config {
            flush,
            skip_flush,
            variant,
            movnt_threshold,
        }
    }
}

/// C's `atoll`: optional leading whitespace and sign, then decimal digits up to
/// the first other character; no digits gives 0; overflow saturates.
pub(crate) fn parse_c_integer(text: &str) -> i64 {
    let text = text.trim_start_matches([' ', '\t', '\n', '\x0b', '\x0c', '\r']);
    let (negative, digits) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let mut value: i64 = 0;
    for digit in digits.bytes().take_while(u8::is_ascii_digit) {
        let d = i64::from(digit - b'0');
        value = if negative {
            value.saturating_mul(10).saturating_sub(d)
        } else {
            value.saturating_mul(10).saturating_add(d)
        };
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full_cpu() -> CpuFeatures {
        CpuFeatures {
            clflush: true,
            clflushopt: true,
            clwb: true,
            sse2: true,
            avx: true,
            avx512f: true,
            amd: false,
        }
    }

    fn with_env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<OsString> + use<> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.into())
    }

    fn choose(cpu: CpuFeatures, vars: &[(&str, &str)]) -> Config {
        Config::choose(&cpu, with_env(vars), || AutoFlush::No)
    }

    #[test]
    fn best_instructions_by_default() {
        let c = choose(full_cpu(), &[]);
        assert_eq!(c.flush, FlushInstruction::Clwb);
        assert_eq!(c.variant, CopyVariant::Avx512f);
        assert_eq!(c.movnt_threshold, 256);
        assert!(!c.skip_flush);
    }

    #[test]
    fn flush_instruction_fallbacks() {
        assert_eq!(
            choose(full_cpu(), &[("PMEM_NO_CLWB", "1")]).flush,
            FlushInstruction::ClflushOpt
        );
        assert_eq!(
            choose(
                full_cpu(),
                &[("PMEM_NO_CLWB", "1"), ("PMEM_NO_CLFLUSHOPT", "1")]
            )
            .flush,
            FlushInstruction::Clflush
        );
        // Only the exact value "1" disables, as in libpmem.
        assert_eq!(
            choose(full_cpu(), &[("PMEM_NO_CLWB", "yes")]).flush,
            FlushInstruction::Clwb
        );
        let old = CpuFeatures {
            clwb: false,
            clflushopt: false,
            ..full_cpu()
        };
        assert_eq!(choose(old, &[]).flush, FlushInstruction::Clflush);
        let no_clwb = CpuFeatures {
            clwb: false,
            ..full_cpu()
        };
        assert_eq!(choose(no_clwb, &[]).flush, FlushInstruction::ClflushOpt);
    }

    #[test]
    fn variant_selection_matches_libpmem() {
        // PMEM_AVX=0 alone leaves AVX-512F on (observed with PMDK 1.12).
        assert_eq!(
            choose(full_cpu(), &[("PMEM_AVX", "0")]).variant,
            CopyVariant::Avx512f
        );
        assert_eq!(
            choose(full_cpu(), &[("PMEM_AVX512F", "0")]).variant,
            CopyVariant::Avx
        );
        assert_eq!(
            choose(full_cpu(), &[("PMEM_AVX512F", "0"), ("PMEM_AVX", "0")]).variant,
            CopyVariant::Sse2
        );
        assert_eq!(
            choose(full_cpu(), &[("PMEM_NO_MOVNT", "1")]).variant,
            CopyVariant::Generic
        );
        assert_eq!(
            choose(
                full_cpu(),
                &[("PMEM_NO_MOVNT", "1"), ("PMEM_NO_GENERIC_MEMCPY", "1")]
            )
            .variant,
            CopyVariant::GenericBulk
        );
        let avx_only = CpuFeatures {
            avx512f: false,
            ..full_cpu()
        };
        assert_eq!(choose(avx_only, &[]).variant, CopyVariant::Avx);
        assert_eq!(
            choose(avx_only, &[("PMEM_AVX", "2")]).variant,
            CopyVariant::Avx
        );
    }

    #[test]
    fn no_flush_modes() {
        assert!(choose(full_cpu(), &[("PMEM_NO_FLUSH", "1")]).skip_flush);
        let eadr = |vars: &[(&str, &str)]| {
            Config::choose(&full_cpu(), with_env(vars), || AutoFlush::Yes).skip_flush
        };
        assert!(eadr(&[]), "auto-flush platforms skip flushes");
        assert!(!eadr(&[("PMEM_NO_FLUSH", "0")]), "0 forces flushing");
        assert!(
            eadr(&[("PMEM_NO_FLUSH", "2")]),
            "other values defer to the platform"
        );
        let broken = Config::choose(&full_cpu(), with_env(&[]), || AutoFlush::Unknown);
        assert!(
            !broken.skip_flush,
            "an unreadable platform is assumed to need flushes"
        );
    }

    #[test]
    fn auto_flush_probe_only_when_needed() {
        let probed = std::cell::Cell::new(false);
        let _ = Config::choose(&full_cpu(), with_env(&[("PMEM_NO_FLUSH", "1")]), || {
            probed.set(true);
            AutoFlush::Yes
        });
        assert!(!probed.get());
    }

    #[test]
    fn threshold_parsed_like_atoll() {
        let t = |v: &str| choose(full_cpu(), &[("PMEM_MOVNT_THRESHOLD", v)]).movnt_threshold;
        assert_eq!(t("1024"), 1024);
        assert_eq!(t("  12x"), 12);
        assert_eq!(t("abc"), 0, "atoll gives 0 and libpmem takes it");
        assert_eq!(t("-5"), 256, "negative values are ignored");
        assert_eq!(t("+7"), 7);
        assert_eq!(
            t("99999999999999999999999"),
            usize::try_from(i64::MAX).unwrap()
        );
    }

    #[test]
    fn parse_c_integer_edges() {
        assert_eq!(parse_c_integer(""), 0);
        assert_eq!(parse_c_integer("-"), 0);
        assert_eq!(parse_c_integer("\t-42z"), -42);
        assert_eq!(parse_c_integer("-99999999999999999999"), i64::MIN);
    }
}
