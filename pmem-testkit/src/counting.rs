//! A medium that counts what a pool asks of it: flushes, the ranges that
//! `write` and `fill` copied (and flushed), and fences. The tests that keep
//! the library from flushing a line twice, or fencing more than once, use it.

use std::panic::Location;
use std::sync::{Mutex, PoisonError};

use pmem_typed::{Medium, Result};

/// What a [`Counting`] medium was asked to do since the last
/// [`Counting::take`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// `flush(offset, len)` calls, in order.
    pub flushes: Vec<(usize, usize)>,
    /// `write` and `fill` ranges, in order: each flushes what it copies.
    pub copies: Vec<(usize, usize)>,
    /// Fences.
    pub fences: usize,
}

impl Counts {
    /// Cache lines flushed, by flushes and by copies, counting a line once
    /// per time it was flushed.
    #[must_use]
    pub fn lines_flushed(&self) -> usize {
        let lines = |&(offset, len): &(usize, usize)| {
            if len == 0 {
                0
            } else {
                (offset + len).div_ceil(64) - offset / 64
            }
        };
        self.flushes.iter().chain(&self.copies).map(lines).sum()
    }
}

/// Wraps a medium and counts the calls made on it (see [`Counts`]).
#[derive(Debug)]
pub struct Counting<M> {
    inner: M,
    counts: Mutex<Counts>,
}

impl<M> Counting<M> {
    /// Wraps `inner`, with nothing counted yet.
    pub fn new(inner: M) -> Self {
        Self {
            inner,
            counts: Mutex::default(),
        }
    }

    /// The counts since the last call, which starts counting afresh.
    pub fn take(&self) -> Counts {
        std::mem::take(&mut *self.counted())
    }

    fn counted(&self) -> std::sync::MutexGuard<'_, Counts> {
        self.counts.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

// SAFETY: every method forwards to `inner`, a `Medium`, with the same
// arguments; counting touches no byte of the medium.
unsafe impl<M: Medium> Medium for Counting<M> {
    fn base(&self) -> *mut u8 {
        self.inner.base()
    }
    fn len(&self) -> usize {
        self.inner.len()
    }
    fn flush(&self, offset: usize, len: usize) {
        self.counted().flushes.push((offset, len));
        self.inner.flush(offset, len);
    }
    fn fence(&self) {
        self.counted().fences += 1;
        self.inner.fence();
    }
    unsafe fn write(&self, offset: usize, bytes: &[u8], nontemporal: bool) {
        self.counted().copies.push((offset, bytes.len()));
        // SAFETY: the caller's promise, passed on.
        unsafe { self.inner.write(offset, bytes, nontemporal) }
    }
    unsafe fn fill(&self, offset: usize, byte: u8, len: usize, nontemporal: bool) {
        self.counted().copies.push((offset, len));
        // SAFETY: the caller's promise, passed on.
        unsafe { self.inner.fill(offset, byte, len, nontemporal) }
    }
    unsafe fn store_u64(&self, offset: usize, value: u64) {
        // SAFETY: the caller's promise, passed on.
        unsafe { self.inner.store_u64(offset, value) }
    }
    fn note(&self, operation: &'static str, at: &'static Location<'static>) {
        self.inner.note(operation, at);
    }
    fn lend_mut(&self, offset: usize, len: usize) {
        self.inner.lend_mut(offset, len);
    }
    fn grow(&mut self, new_len: usize) -> Result<()> {
        self.inner.grow(new_len)
    }
}
