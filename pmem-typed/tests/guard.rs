//! Guards flush exactly the cache lines whose bytes changed, and fence once.

use pmem_testkit::counting::Counting;
use pmem_typed::sim::SimMedium;
use pmem_typed::{Persist, Pool};

/// 48 words: 384 bytes, six lines when 64-aligned.
#[derive(Clone, Copy, Persist)]
#[repr(C)]
struct Root {
    words: [u64; 48],
}

fn pool() -> Pool<Root, Counting<SimMedium>> {
    let medium = Counting::new(SimMedium::new(64 * 1024, 64 * 1024));
    Pool::create_on(medium, "guard", Root { words: [0; 48] }).expect("create")
}

/// Runs `change` through a guard on the root and returns the flushes and
/// fences it caused.
fn flushes_of(change: impl FnOnce(&mut Root)) -> (Vec<(usize, usize)>, usize) {
    let mut pool = pool();
    pool.medium().take();
    {
        let mut guard = pool.get_mut(pool.root()).expect("root");
        change(&mut guard);
    }
    let counts = pool.medium().take();
    (counts.flushes, counts.fences)
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
    pool.medium().take();
    {
        let mut guard = pool.get_mut(pool.root()).expect("root");
        guard.words[0] = 1;
        guard.persist();
        guard.words[47] = 1; // line 5 only: line 0 was persisted already
    }
    assert_eq!(
        pool.medium().take().flushes,
        vec![(ROOT, 64), (ROOT + 320, 64)]
    );
}
