//! libpmem's C ABI: every function of `libpmem.h` 1.1, implemented by
//! [`pmem_sys`] and exported unmangled from a C library, so that programs
//! written for PMDK's libpmem link against it unchanged.
//!
//! `cargo build --release -p pmem-capi` gives
//! `target/release/libpmem_capi.so`, whose SONAME is `libpmem.so.1`, like
//! PMDK's. The header is `pmem-capi/include/libpmem.h`. Rust code uses
//! [`pmem_sys`] directly and never gets these symbols: only a crate that
//! depends on pmem-capi does.
//!
//! Each function converts its arguments, calls the Rust implementation and
//! reports errors the C way: a NULL or -1 return, `errno`, and a per-thread
//! message from [`pmem_errormsg`]. No panic unwinds across the boundary: every
//! entry point runs under [`catch_unwind`].
//!
//! Unlike libpmem's release build, which ignores unknown copy flags, the
//! copies here reject them: nothing is written, `errno` is `EINVAL`, and NULL
//! is returned.

#![allow(clippy::missing_safety_doc)] // each function's safety section is its C contract, documented in the header

use std::ffi::{CStr, OsStr, c_char, c_int, c_uint, c_void};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::ptr;

use pmem_sys::{CopyFlags, Engine, MapFlags, map_file, raw};

mod errormsg;

fn set_errno(code: c_int) {
    // SAFETY: __errno_location returns this thread's errno slot, always valid.
    unsafe { *libc::__errno_location() = code };
}

/// Runs `f`, turning a panic into `on_panic` with `errno = EINVAL` and a message.
fn guarded<R>(on_panic: R, f: impl FnOnce() -> R) -> R {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(value) => value,
        Err(payload) => {
            let what = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_owned());
            errormsg::set(format_args!("pmem-sys internal error: {what}"));
            set_errno(libc::EINVAL);
            on_panic
        }
    }
}

/// 0 on success; -1 with `errno` and the message set otherwise.
fn status(result: io::Result<()>) -> c_int {
    match result {
        Ok(()) => 0,
        Err(e) => {
            errormsg::take_from_sys();
            set_errno(e.raw_os_error().unwrap_or(libc::EINVAL));
            -1
        }
    }
}

/// Copy flags from C, or `None` (with errno and message set) for unknown bits.
fn copy_flags(flags: c_uint) -> Option<CopyFlags> {
    let parsed = CopyFlags::from_bits(flags);
    if parsed.is_none() {
        errormsg::set(format_args!(
            "invalid flags {flags:#x}: valid flags are {:#x}",
            CopyFlags::all().bits()
        ));
        set_errno(libc::EINVAL);
    }
    parsed
}

/// `pmem_map_file`: see [`map_file`]. Returns NULL with `errno` on error,
/// leaving the out-parameters untouched.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pmem_map_file(
    path: *const c_char,
    len: usize,
    flags: c_int,
    mode: libc::mode_t,
    mapped_lenp: *mut usize,
    is_pmemp: *mut c_int,
) -> *mut c_void {
    guarded(ptr::null_mut(), || {
        if path.is_null() {
            errormsg::set("invalid (NULL) path");
            set_errno(libc::EINVAL);
            return ptr::null_mut();
        }
        // SAFETY: the caller passes a NUL-terminated string (C contract), checked non-NULL.
        let path = Path::new(OsStr::from_bytes(
            unsafe { CStr::from_ptr(path) }.to_bytes(),
        ));
        match map_file(path, len, MapFlags::from_bits_retain(flags), mode) {
            Ok(mapping) => {
                // SAFETY: non-NULL out-parameters point to writable objects (C contract).
                unsafe {
                    if !mapped_lenp.is_null() {
                        *mapped_lenp = mapping.len;
                    }
                    if !is_pmemp.is_null() {
                        *is_pmemp = c_int::from(mapping.is_pmem);
                    }
                }
                mapping.addr.cast()
            }
            Err(e) => {
                errormsg::take_from_sys();
                set_errno(e.raw_os_error().unwrap_or(libc::EINVAL));
                ptr::null_mut()
            }
        }
    })
}

/// `pmem_unmap`: 0, or -1 with `errno`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pmem_unmap(addr: *mut c_void, len: usize) -> c_int {
    guarded(-1, || {
        // SAFETY: the caller no longer uses the range (C contract).
        status(unsafe { raw::unmap(addr.cast(), len) })
    })
}

/// `pmem_is_pmem`: 1 if the whole range is persistent memory, else 0.
#[unsafe(no_mangle)]
pub extern "C" fn pmem_is_pmem(addr: *const c_void, len: usize) -> c_int {
    guarded(0, || c_int::from(raw::is_pmem(addr.cast(), len)))
}

/// `pmem_persist`: flush and drain.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pmem_persist(addr: *const c_void, len: usize) {
    // SAFETY: the range is mapped (C contract). Flushing cannot panic.
    unsafe { Engine::global().persist(addr.cast(), len) }
}

/// `pmem_flush`: write back without waiting.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pmem_flush(addr: *const c_void, len: usize) {
    // SAFETY: the range is mapped (C contract). Flushing cannot panic.
    unsafe { Engine::global().flush(addr.cast(), len) }
}

/// `pmem_drain`: wait for earlier flushes.
#[unsafe(no_mangle)]
pub extern "C" fn pmem_drain() {
    Engine::global().drain();
}

/// `pmem_msync`: 0, or -1 with `errno`.
#[unsafe(no_mangle)]
pub extern "C" fn pmem_msync(addr: *const c_void, len: usize) -> c_int {
    guarded(-1, || status(raw::msync(addr.cast(), len)))
}

/// `pmem_has_auto_flush`: 1, 0, or -1 if sysfs cannot be read.
#[unsafe(no_mangle)]
pub extern "C" fn pmem_has_auto_flush() -> c_int {
    guarded(-1, || raw::has_auto_flush().as_c_int())
}

/// `pmem_has_hw_drain`: always 0.
#[unsafe(no_mangle)]
pub extern "C" fn pmem_has_hw_drain() -> c_int {
    c_int::from(raw::has_hw_drain())
}

/// `pmem_deep_flush`: flush even where flushes are otherwise skipped.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pmem_deep_flush(addr: *const c_void, len: usize) {
    // SAFETY: the range is mapped (C contract). Flushing cannot panic.
    unsafe { Engine::global().deep_flush(addr.cast(), len) }
}

/// `pmem_deep_drain`: 0, or -1 with `errno`.
#[unsafe(no_mangle)]
pub extern "C" fn pmem_deep_drain(addr: *const c_void, len: usize) -> c_int {
    guarded(-1, || status(raw::deep_drain(addr.cast(), len)))
}

/// `pmem_deep_persist`: 0, or -1 with `errno`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pmem_deep_persist(addr: *const c_void, len: usize) -> c_int {
    guarded(-1, || {
        // SAFETY: the range is mapped (C contract).
        status(unsafe { raw::deep_persist(addr.cast(), len) })
    })
}

/// `pmem_memmove`: returns `pmemdest`, or NULL with `errno = EINVAL` for unknown flags.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pmem_memmove(
    pmemdest: *mut c_void,
    src: *const c_void,
    len: usize,
    flags: c_uint,
) -> *mut c_void {
    let Some(flags) = copy_flags(flags) else {
        return ptr::null_mut();
    };
    // SAFETY: the ranges are valid for `len` bytes (C contract). Copies cannot panic.
    unsafe { Engine::global().memmove(pmemdest.cast(), src.cast(), len, flags) };
    pmemdest
}

/// `pmem_memcpy`: as [`pmem_memmove`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pmem_memcpy(
    pmemdest: *mut c_void,
    src: *const c_void,
    len: usize,
    flags: c_uint,
) -> *mut c_void {
    // SAFETY: forwarded from the caller.
    unsafe { pmem_memmove(pmemdest, src, len, flags) }
}

/// `pmem_memset`: returns `pmemdest`, or NULL with `errno = EINVAL` for unknown flags.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pmem_memset(
    pmemdest: *mut c_void,
    c: c_int,
    len: usize,
    flags: c_uint,
) -> *mut c_void {
    let Some(flags) = copy_flags(flags) else {
        return ptr::null_mut();
    };
    // SAFETY: the range is valid for `len` bytes (C contract). C's memset
    // converts `c` to unsigned char, as does the cast.
    unsafe { Engine::global().memset(pmemdest.cast(), c as u8, len, flags) };
    pmemdest
}

/// `pmem_memmove_persist`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pmem_memmove_persist(
    pmemdest: *mut c_void,
    src: *const c_void,
    len: usize,
) -> *mut c_void {
    // SAFETY: forwarded from the caller.
    unsafe { Engine::global().memmove(pmemdest.cast(), src.cast(), len, CopyFlags::empty()) };
    pmemdest
}

/// `pmem_memcpy_persist`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pmem_memcpy_persist(
    pmemdest: *mut c_void,
    src: *const c_void,
    len: usize,
) -> *mut c_void {
    // SAFETY: forwarded from the caller.
    unsafe { pmem_memmove_persist(pmemdest, src, len) }
}

/// `pmem_memset_persist`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pmem_memset_persist(
    pmemdest: *mut c_void,
    c: c_int,
    len: usize,
) -> *mut c_void {
    // SAFETY: forwarded from the caller.
    unsafe { Engine::global().memset(pmemdest.cast(), c as u8, len, CopyFlags::empty()) };
    pmemdest
}

/// `pmem_memmove_nodrain`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pmem_memmove_nodrain(
    pmemdest: *mut c_void,
    src: *const c_void,
    len: usize,
) -> *mut c_void {
    // SAFETY: forwarded from the caller.
    unsafe { Engine::global().memmove(pmemdest.cast(), src.cast(), len, CopyFlags::NODRAIN) };
    pmemdest
}

/// `pmem_memcpy_nodrain`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pmem_memcpy_nodrain(
    pmemdest: *mut c_void,
    src: *const c_void,
    len: usize,
) -> *mut c_void {
    // SAFETY: forwarded from the caller.
    unsafe { pmem_memmove_nodrain(pmemdest, src, len) }
}

/// `pmem_memset_nodrain`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pmem_memset_nodrain(
    pmemdest: *mut c_void,
    c: c_int,
    len: usize,
) -> *mut c_void {
    // SAFETY: forwarded from the caller.
    unsafe { Engine::global().memset(pmemdest.cast(), c as u8, len, CopyFlags::NODRAIN) };
    pmemdest
}

/// `pmem_check_version`: NULL if compatible, otherwise the reason (a
/// per-thread string, valid until the next error on this thread).
#[unsafe(no_mangle)]
pub extern "C" fn pmem_check_version(
    major_required: c_uint,
    minor_required: c_uint,
) -> *const c_char {
    guarded(ptr::null(), || {
        match raw::check_version(major_required, minor_required) {
            Ok(()) => ptr::null(),
            Err(problem) => {
                errormsg::set(problem);
                errormsg::as_ptr()
            }
        }
    })
}

/// `pmem_errormsg`: the last error on this thread ("" if none), valid until
/// the next error on this thread.
#[unsafe(no_mangle)]
pub extern "C" fn pmem_errormsg() -> *const c_char {
    errormsg::as_ptr()
}
