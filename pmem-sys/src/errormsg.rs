//! libpmem's per-thread "last error" text.
//!
//! Errors are returned as `std::io::Error` carrying the exact errno libpmem
//! would set; the text (which names the failing step and path, as in
//! `open /pool: No such file or directory`) is kept per thread, as
//! `pmem_errormsg` does. It is never cleared, only replaced.

use std::cell::RefCell;
use std::ffi::CString;
use std::fmt::Display;
use std::io;

thread_local! {
    static LAST: RefCell<CString> = RefCell::new(CString::default());
}

/// The text of the last error reported on this thread, or `""` if none.
///
/// # Examples
///
/// ```
/// let err = pmem_sys::map_file("/nonexistent/pool", 0, pmem_sys::MapFlags::empty(), 0)
///     .unwrap_err();
/// assert_eq!(err.raw_os_error(), Some(libc::ENOENT));
/// assert!(pmem_sys::errormsg().contains("/nonexistent/pool"));
/// ```
#[must_use]
pub fn errormsg() -> String {
    LAST.with(|last| last.borrow().to_string_lossy().into_owned())
}

/// Replaces this thread's last error text.
pub(crate) fn set(message: impl Display) {
    let text = message.to_string().replace('\0', "\\0");
    // The replacement above removed every NUL, so this cannot fail.
    if let Ok(text) = CString::new(text) {
        LAST.with(|last| *last.borrow_mut() = text);
    }
}

/// Records `context: <strerror(errno)>` and returns `err` unchanged.
pub(crate) fn os(context: impl Display, err: io::Error) -> io::Error {
    set(format_args!("{context}: {}", strerror(&err)));
    err
}

/// Records `message` and returns an error with errno `errno`.
pub(crate) fn errno(errno: i32, message: impl Display) -> io::Error {
    set(message);
    io::Error::from_raw_os_error(errno)
}

/// Records `message` and returns an error of `kind` that displays it, with
/// `source` (the errno behind it, if any) as its
/// [`source`](std::error::Error::source). For the errors of the owning
/// [`Mapping`](crate::Mapping) that libpmem does not have, whose
/// message a caller should see without asking [`errormsg`].
pub(crate) fn described(
    kind: io::ErrorKind,
    message: impl Display,
    source: Option<io::Error>,
) -> io::Error {
    let message = message.to_string();
    set(&message);
    io::Error::new(kind, Described { message, source })
}

/// The payload of [`described`] errors.
#[derive(Debug)]
struct Described {
    message: String,
    source: Option<io::Error>,
}

impl Display for Described {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Described {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_ref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// The C library's text for an error, without std's " (os error N)" suffix.
pub(crate) fn strerror(err: &io::Error) -> String {
    let text = err.to_string();
    match (err.raw_os_error(), text.rfind(" (os error ")) {
        (Some(_), Some(cut)) => text[..cut].to_owned(),
        _ => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_thread_and_replaced() {
        set("first");
        let err = os("open /x", io::Error::from_raw_os_error(libc::ENOENT));
        assert_eq!(err.raw_os_error(), Some(libc::ENOENT));
        assert_eq!(errormsg(), "open /x: No such file or directory");
        std::thread::spawn(|| assert_eq!(errormsg(), ""))
            .join()
            .unwrap();
        let err = errno(libc::EINVAL, "invalid flag specified 0x10");
        assert_eq!(err.raw_os_error(), Some(libc::EINVAL));
        assert_eq!(errormsg(), "invalid flag specified 0x10");
    }

    #[test]
    fn described_errors_show_their_message_and_errno() {
        let err = described(
            io::ErrorKind::WouldBlock,
            "/p is locked",
            Some(io::Error::from_raw_os_error(libc::EWOULDBLOCK)),
        );
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
        assert_eq!(err.to_string(), "/p is locked");
        assert_eq!(errormsg(), "/p is locked");
        let errno = std::error::Error::source(&err)
            .and_then(|s| s.downcast_ref::<io::Error>())
            .and_then(io::Error::raw_os_error);
        assert_eq!(errno, Some(libc::EWOULDBLOCK));
        let plain = described(io::ErrorKind::InvalidInput, "no", None);
        assert!(std::error::Error::source(&plain).is_none());
    }

    #[test]
    fn nul_bytes_do_not_lose_the_message() {
        set("a\0b");
        assert_eq!(errormsg(), "a\\0b");
    }
}
