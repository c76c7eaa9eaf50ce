//! PMDK's libraries loaded at run time, for the tests and benchmarks that
//! compare pmem-rs with them side by side.
//!
//! They are loaded with `dlopen` rather than linked, so that a machine
//! without PMDK still builds everything and skips only the comparisons. The
//! Debian/Ubuntu path is tried before the bare name, so that a library of the
//! same SONAME earlier on the search path (pmem-capi's `libpmem.so.1`, say)
//! is not taken for PMDK's.

use std::ffi::{CStr, c_char};

use libloading::Library;

/// Where PMDK's libpmem is on Debian and Ubuntu; the bare name is tried next.
pub const LIBPMEM: &[&str] = &["/usr/lib/x86_64-linux-gnu/libpmem.so.1", "libpmem.so.1"];

/// Where PMDK's libpmemobj is on Debian and Ubuntu; the bare name is tried next.
pub const LIBPMEMOBJ: &[&str] = &[
    "/usr/lib/x86_64-linux-gnu/libpmemobj.so.1",
    "libpmemobj.so.1",
];

/// The type of `pmem_errormsg` and `pmemobj_errormsg`.
pub type ErrormsgFn = unsafe extern "C" fn() -> *const c_char;

/// A PMDK library, loaded from the first of its candidate paths that loads.
///
/// Function pointers taken from it with [`function`](Self::function) are
/// valid only while it is loaded: keep it beside them.
#[derive(Debug)]
pub struct PmdkLibrary {
    path: &'static str,
    lib: Library,
}

impl PmdkLibrary {
    /// Loads the first of `candidates` (such as [`LIBPMEM`]) that loads.
    ///
    /// # Safety
    /// Loading runs the library's initialisers, which for PMDK read the
    /// environment, CPUID and sysfs: no other thread may change the
    /// environment meanwhile.
    ///
    /// # Errors
    /// Every candidate's loader error, as `path: error`, joined by `; `.
    pub unsafe fn load(candidates: &[&'static str]) -> Result<Self, String> {
        let mut errors = Vec::new();
        for &path in candidates {
            // SAFETY: the caller keeps the environment unchanged while the
            // initialisers run, which is all they need.
            match unsafe { Library::new(path) } {
                Ok(lib) => return Ok(Self { path, lib }),
                Err(e) => errors.push(format!("{path}: {e}")),
            }
        }
        Err(errors.join("; "))
    }

    /// The candidate path the library was loaded from.
    #[must_use]
    pub fn path(&self) -> &'static str {
        self.path
    }

    /// The function `name`, as the function pointer type `F`.
    ///
    /// # Safety
    /// - `F` is an `unsafe extern "C" fn` type matching the C prototype of
    ///   `name` in PMDK's headers;
    /// - the pointer is called only while `self` is loaded.
    ///
    /// # Errors
    /// The library does not export `name`.
    pub unsafe fn function<F: Copy>(&self, name: &str) -> Result<F, libloading::Error> {
        // SAFETY: the caller vouches for the type and for calling it only
        // while the library stays loaded.
        unsafe { self.lib.get::<F>(name).map(|symbol| *symbol) }
    }
}

/// The text of a PMDK `*_errormsg` function: the last error on this thread.
///
/// # Safety
/// `errormsg` was taken from a library that is still loaded.
#[must_use]
pub unsafe fn last_error(errormsg: ErrormsgFn) -> String {
    // SAFETY: PMDK's errormsg functions take nothing and return a
    // NUL-terminated, thread-local string; the library is loaded (caller).
    unsafe { CStr::from_ptr(errormsg()) }
        .to_string_lossy()
        .into_owned()
}
