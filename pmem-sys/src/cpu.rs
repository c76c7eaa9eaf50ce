//! What the processor offers for persistence: flush instructions and vector widths.
//!
//! Detected once per process (CPUID is a serialising instruction and costs
//! hundreds of cycles), then served from a `OnceLock`.

use std::sync::OnceLock;

/// The CPU features libpmem's choices depend on.
///
/// Obtain the running machine's with [`CpuFeatures::detect`]. The fields are
/// public so tests can describe other machines (a CPU without CLWB, say) and
/// check the choices [`Config`](crate::Config) makes for them.
///
/// # Examples
///
/// ```
/// let cpu = pmem_sys::CpuFeatures::detect();
/// if cpu.clwb {
///     println!("CLWB is available: flushes keep the line in cache");
/// }
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[allow(clippy::struct_excessive_bools)] // one flag per CPUID bit is the clearest shape
pub struct CpuFeatures {
    /// `CLFLUSH` (CPUID.1:EDX\[19\]).
    pub clflush: bool,
    /// `CLFLUSHOPT` (CPUID.7.0:EBX\[23\]).
    pub clflushopt: bool,
    /// `CLWB` (CPUID.7.0:EBX\[24\]).
    pub clwb: bool,
    /// SSE2: 16-byte vectors and `MOVNTDQ` (baseline on x86-64).
    pub sse2: bool,
    /// AVX (CPUID.1:ECX\[28\]) with the OS saving YMM state: 32-byte vectors.
    pub avx: bool,
    /// AVX-512F (CPUID.7.0:EBX\[16\]) with the OS saving ZMM state: 64-byte vectors.
    pub avx512f: bool,
    /// The vendor is AMD, where `CLFLUSH` is ordered only by `MFENCE`.
    pub amd: bool,
}

impl CpuFeatures {
    /// The features of the processor this process runs on, detected once.
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_sys::CpuFeatures;
    /// let cpu = CpuFeatures::detect();
    /// assert_eq!(cpu, CpuFeatures::detect(), "detected once, then cached");
    /// if cpu.avx512f {
    ///     assert!(cpu.avx, "AVX-512F comes with AVX");
    /// }
    /// #[cfg(target_arch = "x86_64")]
    /// assert!(cpu.sse2 && cpu.clflush, "every x86-64 CPU has both");
    /// ```
    #[must_use]
    pub fn detect() -> Self {
        static DETECTED: OnceLock<CpuFeatures> = OnceLock::new();
        *DETECTED.get_or_init(detect_uncached)
    }
}

#[cfg(target_arch = "x86_64")]
fn detect_uncached() -> CpuFeatures {
    let cpuid = raw_cpuid::CpuId::new();
    let leaf1 = cpuid.get_feature_info();
    let leaf7 = cpuid.get_extended_feature_info();
    // std's detection also checks XCR0, i.e. that the OS saves the wide registers.
    CpuFeatures {
        clflush: leaf1
            .as_ref()
            .is_some_and(raw_cpuid::FeatureInfo::has_clflush),
        clflushopt: leaf7
            .as_ref()
            .is_some_and(raw_cpuid::ExtendedFeatures::has_clflushopt),
        clwb: leaf7
            .as_ref()
            .is_some_and(raw_cpuid::ExtendedFeatures::has_clwb),
        sse2: leaf1.as_ref().is_some_and(raw_cpuid::FeatureInfo::has_sse2),
        avx: std::arch::is_x86_feature_detected!("avx"),
        avx512f: std::arch::is_x86_feature_detected!("avx512f"),
        amd: cpuid
            .get_vendor_info()
            .is_some_and(|v| v.as_str() == "AuthenticAMD"),
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn detect_uncached() -> CpuFeatures {
    CpuFeatures::default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detection_is_stable_and_consistent() {
        let a = CpuFeatures::detect();
        assert_eq!(a, CpuFeatures::detect());
        if a.avx512f {
            assert!(a.avx, "AVX-512F implies AVX");
        }
        #[cfg(target_arch = "x86_64")]
        {
            assert!(a.sse2, "SSE2 is part of x86-64");
            assert!(a.clflush, "every x86-64 CPU has CLFLUSH");
            assert_eq!(a.avx, std::arch::is_x86_feature_detected!("avx"));
        }
    }
}
