//! A native Rust implementation of [PMDK]'s **libpmem** 1.1: the low-level
//! persistent memory library.
//!
//! - **Mapping**: [`map_file`] opens or creates a file (or a Device DAX) and
//!   maps it with `MAP_SYNC` where possible, exactly as `pmem_map_file` does:
//!   same flags, same sizing, same errno on every error. [`Mapping`] owns the
//!   result and the file (locked against a second `Mapping` of it), unmaps
//!   it on drop and checks the bounds of every access.
//! - **Flush and fence**: [`raw::flush`], [`raw::drain`], [`raw::persist`],
//!   [`raw::msync`] and the deep variants, with `CLWB`, `CLFLUSHOPT` or
//!   `CLFLUSH` chosen once at run time.
//! - **Persistent copies**: [`raw::memcpy`], [`raw::memmove`],
//!   [`raw::memset`] with libpmem's flags, using non-temporal SSE2, AVX or
//!   AVX-512F stores for large copies. An 8-byte-aligned destination with a
//!   length that is a multiple of 8 is always written with stores of at least
//!   8 bytes, so each aligned word is failure-atomic.
//!
//! This crate exports no C symbols. libpmem's C ABI, a drop-in
//! `libpmem.so.1` built from this crate, is the separate `pmem-capi` crate.
//!
//! # Example
//!
//! ```
//! use pmem_sys::{CopyFlags, Mapping};
//! # fn main() -> std::io::Result<()> {
//! let dir = tempfile::tempdir()?;
//! let mut pool = Mapping::create(dir.path().join("pool"), 1 << 20)?;
//! pool.write(0, b"persistent hello", CopyFlags::empty())?;
//! if !pool.is_pmem() {
//!     pool.msync(..)?; // not real PM: let the kernel write the page back
//! }
//! drop(pool);
//!
//! let pool = Mapping::open(dir.path().join("pool"))?;
//! assert_eq!(&pool.as_slice()[..16], b"persistent hello");
//! # Ok(()) }
//! ```
//!
//! # Safety model
//!
//! The raw functions in [`raw`] take pointers and are `unsafe`, like their C
//! counterparts. [`Mapping`] is the safe surface: it owns its mapping and
//! the file's descriptor, checks every range, and requires `&mut self` to
//! write. The bytes it lends out change only through it because it holds
//! an exclusive `flock` on the file for its whole life: a second `Mapping`
//! of the file, in any process and by any name, fails with
//! [`WouldBlock`](std::io::ErrorKind::WouldBlock) instead of aliasing it, and
//! the file changes length only through [`Mapping::resize`]. What an
//! advisory lock cannot stop is outside that guarantee: writers that ignore
//! it ([`map_file`], like libpmem's `pmem_map_file`, takes no lock), other
//! descriptors of this process (`std::fs::write`), and `/proc/self/mem`.
//! The system calls and instructions are in a few small modules (`arch`,
//! `sys`, `memops`) behind these two.
//!
//! # Environment
//!
//! The `PMEM_*` variables libpmem reads are honoured with libpmem's parsing:
//! `PMEM_IS_PMEM_FORCE`, `PMEM_NO_CLWB`, `PMEM_NO_CLFLUSHOPT`,
//! `PMEM_NO_FLUSH`, `PMEM_NO_MOVNT`, `PMEM_MOVNT_THRESHOLD`, `PMEM_AVX`,
//! `PMEM_AVX512F`, `PMEM_NO_GENERIC_MEMCPY`, `PMEM_MMAP_HINT`. They are read
//! once, when first needed. [`Engine`] and [`Config`] make the same choices
//! explicitly, which is how the tests run every variant in one process.
//!
//! [PMDK]: https://pmem.io/pmdk/

#![cfg_attr(docsrs, feature(doc_cfg))]

// Unsupported platforms fail here, with the reason, rather than deep in libc
// or, worse, at run time.
#[cfg(not(target_os = "linux"))]
compile_error!(
    "pmem-sys supports Linux only: it maps with Linux's MAP_SYNC and \
     MAP_SHARED_VALIDATE, locks with flock, and reads /sys and /proc"
);
#[cfg(not(target_pointer_width = "64"))]
compile_error!(
    "pmem-sys needs a 64-bit target: mapping lengths and pool offsets are 64-bit \
     values used directly as addresses and sizes"
);

mod arch;
mod config;
mod cpu;
mod engine;
mod errormsg;
mod flags;
mod map;
mod mapping;
pub(crate) mod memops;
pub mod raw;
mod registry;
mod sys;
mod sysfs;

pub use config::{Config, CopyVariant, DEFAULT_MOVNT_THRESHOLD, FlushInstruction};
pub use cpu::CpuFeatures;
pub use engine::{Engine, UnsupportedConfig};
pub use errormsg::errormsg;
pub use flags::{CopyFlags, MapFlags};
pub use map::{RawMapping, map_file, map_file_with_sysfs};
pub use mapping::{Mapping, OutOfBounds};
pub use sysfs::{AutoFlush, Sysfs};
