//! The system calls pmem-sys makes, each in a small safe wrapper that
//! returns `io::Error` with the call's errno.

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::ptr;
use std::sync::OnceLock;

/// The system page size.
pub(crate) fn page_size() -> usize {
    static PAGE: OnceLock<usize> = OnceLock::new();
    *PAGE.get_or_init(|| {
        // SAFETY: sysconf has no preconditions.
        let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        usize::try_from(size)
            .ok()
            .filter(|&s| s.is_power_of_two())
            .unwrap_or(4096)
    })
}

fn check(ret: libc::c_int) -> io::Result<()> {
    if ret == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// `posix_fallocate(fd, 0, len)`; its return value is the errno.
pub(crate) fn fallocate(file: &File, len: u64) -> io::Result<()> {
    let len = libc::off_t::try_from(len).map_err(|_| io::Error::from_raw_os_error(libc::EFBIG))?;
    // SAFETY: the descriptor is open for as long as `file` is borrowed.
    let ret = unsafe { libc::posix_fallocate(file.as_raw_fd(), 0, len) };
    if ret == 0 {
        Ok(())
    } else {
        Err(io::Error::from_raw_os_error(ret))
    }
}

/// An unlinked temporary file in `dir` made with `mkstemp` (for file systems
/// without `O_TMPFILE`).
pub(crate) fn mkstemp_unlinked(dir: &Path) -> io::Result<File> {
    let mut template = dir.as_os_str().as_bytes().to_vec();
    template.extend_from_slice(b"/pmem.XXXXXX\0");
    let template = CString::from_vec_with_nul(template)
        .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    let mut buf = template.into_bytes_with_nul();
    // SAFETY: `buf` is a writable NUL-terminated template ending in XXXXXX.
    let fd = unsafe { libc::mkstemp(buf.as_mut_ptr().cast()) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: mkstemp returned a fresh descriptor that nothing else owns.
    let file = File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    // SAFETY: `buf` still holds the NUL-terminated name mkstemp filled in.
    check(unsafe { libc::unlink(buf.as_ptr().cast()) })?;
    Ok(file)
}

/// `mmap(hint, len, PROT_READ|PROT_WRITE, flags, fd, 0)`.
pub(crate) fn mmap_shared(
    hint: usize,
    len: usize,
    flags: libc::c_int,
    file: &File,
) -> io::Result<*mut u8> {
    // SAFETY: without MAP_FIXED the hint is only advice, so no existing mapping
    // is replaced; the descriptor is valid while `file` is borrowed.
    let addr = unsafe {
        libc::mmap(
            hint as *mut libc::c_void,
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            flags,
            file.as_raw_fd(),
            0,
        )
    };
    if addr == libc::MAP_FAILED {
        Err(io::Error::last_os_error())
    } else {
        Ok(addr.cast())
    }
}

/// Reserves and releases `len` bytes of address space, returning where the
/// kernel put them: a free spot to aim a mapping at.
pub(crate) fn free_address_space(len: usize) -> Option<usize> {
    // SAFETY: a fresh private anonymous PROT_NONE reservation touches nothing else.
    let addr = unsafe {
        libc::mmap(
            ptr::null_mut(),
            len,
            libc::PROT_NONE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if addr == libc::MAP_FAILED {
        return None;
    }
    // SAFETY: exactly the reservation made above, used by nothing.
    unsafe { libc::munmap(addr, len) };
    Some(addr as usize)
}

/// `munmap(addr, len)`.
///
/// # Safety
/// Nothing in the process uses the range any more.
pub(crate) unsafe fn munmap(addr: *mut u8, len: usize) -> io::Result<()> {
    // SAFETY: forwarded from the caller.
    check(unsafe { libc::munmap(addr.cast(), len) })
}

/// `msync(addr, len, MS_SYNC)`.
///
/// # Safety
/// `addr` is page-aligned. (The kernel validates the range itself: an
/// unmapped range yields `ENOMEM`, never undefined behaviour.)
pub(crate) unsafe fn msync(addr: *const u8, len: usize) -> io::Result<()> {
    // SAFETY: msync only writes back pages; the kernel checks the range.
    check(unsafe { libc::msync(addr.cast_mut().cast(), len, libc::MS_SYNC) })
}

/// `major(rdev)`, `minor(rdev)`.
pub(crate) fn device_numbers(rdev: u64) -> (u32, u32) {
    (libc::major(rdev), libc::minor(rdev))
}
