//! Guards flush exactly the cache lines whose bytes changed, and fence once.

use std::panic::Location;
use std::sync::Mutex;

use pmem_typed::sim::SimMedium;
use pmem_typed::{Medium, Persist, Pool, Result};

/// A medium that counts what the pool asks of it.
struct Counting {
    inner: SimMedium,
    flushes: Mutex<Vec<(usize, usize)>>,
    fences: Mutex<usize>,
}

// SAFETY: every method forwards to `inner`, whose guarantees it inherits.
unsafe impl Medium for Counting {
    fn base(&self) -> *mut u8 {
        self.inner.base()
    }
    fn len(&self) -> usize {
        self.inner.len()
    }
    fn flush(&self, offset: usize, len: usize) {
        self.flushes.lock().unwrap().push((offset, len));
        Medium::flush(&self.inner, offset, len);
    }
    fn fence(&self) {
        *self.fences.lock().unwrap() += 1;
        Medium::fence(&self.inner);
    }
    unsafe fn write(&self, offset: usize, bytes: &[u8], nontemporal: bool) {
        // SAFETY: forwarded from the caller.
        unsafe { Medium::write(&self.inner, offset, bytes, nontemporal) }
    }
    unsafe fn fill(&self, offset: usize, byte: u8, len: usize, nontemporal: bool) {
        // SAFETY: forwarded from the caller.
        unsafe { Medium::fill(&self.inner, offset, byte, len, nontemporal) }
    }
    unsafe fn store_u64(&self, offset: usize, value: u64) {
        // SAFETY: forwarded from the caller.
        unsafe { Medium::store_u64(&self.inner, offset, value) }
    }
    fn grow(&mut self, new_len: usize) -> Result<()> {
        Medium::grow(&mut self.inner, new_len)
    }
    fn note(&self, operation: &'static str, at: &'static Location<'static>) {
        Medium::note(&self.inner, operation, at);
    }
}

/// 48 words: 384 bytes, six lines when 64-aligned.
#[derive(Clone, Copy, Persist)]
#[repr(C)]
struct Root {
    words: [u64; 48],
}

fn pool() -> Pool<Root, Counting> {
    let medium = Counting {
        inner: SimMedium::new(64 * 1024, 64 * 1024),
        flushes: Mutex::default(),
        fences: Mutex::default(),
    };
    Pool::create_on(medium, "guard", Root { words: [0; 48] }).expect("create")
}

/// Runs `change` through a guard on the root and returns the flushes and
/// fences it caused.
fn flushes_of(change: impl FnOnce(&mut Root)) -> (Vec<(usize, usize)>, usize) {
    let mut pool = pool();
    pool.medium().flushes.lock().unwrap().clear();
    *pool.medium().fences.lock().unwrap() = 0;
    {
        let mut guard = pool.get_mut(pool.root()).expect("root");
        change(&mut guard);
    }
    let flushes = pool.medium().flushes.lock().unwrap().clone();
    let fences = *pool.medium().fences.lock().unwrap();
    (flushes, fences)
}

const ROOT: usize = 4096;

#[test]
fn one_changed_word_flushes_its_line() {
    assert_eq!(flushes_of(|r| r.words[17] = 5), (vec![(ROOT + 128, 64)], 1));
}

#[test]
fn adjacent_lines_flush_together_and_gaps_apart() {
    let (flushes, fences) = flushes_of(|r| {
        r.words[0] = 1; // line 0
        r.words[9] = 1; // line 1
        r.words[40] = 1; // line 5
    });
    assert_eq!(flushes, vec![(ROOT, 128), (ROOT + 320, 64)]);
    assert_eq!(fences, 1);
}

#[test]
fn writing_the_same_value_flushes_nothing() {
    assert_eq!(flushes_of(|r| r.words[3] = 0), (vec![], 1));
}

#[test]
fn persist_midway_then_drop() {
    let mut pool = pool();
    pool.medium().flushes.lock().unwrap().clear();
    {
        let mut guard = pool.get_mut(pool.root()).expect("root");
        guard.words[0] = 1;
        guard.persist();
        guard.words[47] = 1; // line 5 only: line 0 was persisted already
    }
    assert_eq!(
        *pool.medium().flushes.lock().unwrap(),
        vec![(ROOT, 64), (ROOT + 320, 64)]
    );
}
