//! The per-thread C string behind `pmem_errormsg`.
//!
//! pmem-sys records the text of every error it reports (read with
//! [`pmem_sys::errormsg`]); C callers need it as a pointer that stays valid
//! until the next error on their thread. This module owns that string: each
//! entry point that fails copies pmem-sys's text here (or sets its own, for
//! the errors only the C ABI has), and `pmem_errormsg` hands out a pointer to
//! it. Successful calls leave it alone, so earlier pointers stay valid, and it
//! is never cleared, only replaced.

use std::cell::RefCell;
use std::ffi::{CString, c_char};
use std::fmt::Display;

thread_local! {
    static LAST: RefCell<CString> = RefCell::new(CString::default());
}

/// Replaces this thread's message. NUL bytes are shown as `\0`, as pmem-sys
/// shows them, so that nothing after one is lost.
pub(crate) fn set(message: impl Display) {
    let text = message.to_string().replace('\0', "\\0");
    // The replacement above removed every NUL, so this cannot fail.
    if let Ok(text) = CString::new(text) {
        LAST.with(|last| *last.borrow_mut() = text);
    }
}

/// Takes over the message pmem-sys recorded for the call that just failed on
/// this thread.
pub(crate) fn take_from_sys() {
    set(pmem_sys::errormsg());
}

/// This thread's message ("" if none yet), NUL-terminated. The pointer stays
/// valid until the next [`set`] on this thread or the thread's exit: the
/// string's buffer is only ever dropped by being replaced.
pub(crate) fn as_ptr() -> *const c_char {
    LAST.with(|last| last.borrow().as_ptr())
}

#[cfg(test)]
mod tests {
    use std::ffi::CStr;

    use super::*;

    /// The current message, read through the pointer C callers get.
    fn current() -> String {
        // SAFETY: `as_ptr` returns a NUL-terminated string that stays valid
        // until the next `set` on this thread; it is copied at once.
        unsafe { CStr::from_ptr(as_ptr()) }
            .to_string_lossy()
            .into_owned()
    }

    #[test]
    fn per_thread_and_replaced() {
        assert_eq!(current(), "");
        set("first");
        assert_eq!(current(), "first");
        std::thread::spawn(|| assert_eq!(current(), ""))
            .join()
            .unwrap();
        set(format_args!("invalid flags {:#x}", 0x40));
        assert_eq!(current(), "invalid flags 0x40");
    }

    #[test]
    fn takes_the_message_pmem_sys_recorded() {
        let err =
            pmem_sys::map_file("/nonexistent/pool", 0, pmem_sys::MapFlags::empty(), 0).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENOENT));
        set("older");
        take_from_sys();
        assert_eq!(current(), pmem_sys::errormsg());
        assert!(current().contains("/nonexistent/pool"), "{}", current());
    }

    #[test]
    fn a_pointer_stays_valid_until_the_next_message() {
        set("kept");
        let kept = as_ptr();
        assert_eq!(as_ptr(), kept, "reading again hands out the same string");
        // SAFETY: no `set` ran on this thread since `kept` was taken.
        assert_eq!(unsafe { CStr::from_ptr(kept) }.to_str(), Ok("kept"));
    }

    #[test]
    fn nul_bytes_do_not_lose_the_message() {
        set("a\0b");
        assert_eq!(current(), "a\\0b");
    }
}
