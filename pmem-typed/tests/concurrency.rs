//! One pool shared by several threads: `Pool` is `Send + Sync` (asserted at
//! compile time), so it can sit in an `Arc<Mutex<_>>` or an `Arc<RwLock<_>>`.
//!
//! Four threads each own a list and a slice in the root and allocate, write
//! and free in them, taking the lock for each operation so that their
//! operations interleave. Each keeps a model of what its list and slice
//! hold; afterwards (and after reopening the file) the pool must hold
//! exactly that, and `check` must find no leak and no dangling pointer. With
//! an `RwLock`, reader threads walk the whole pool under the read lock while
//! the writers run, and every time find it consistent.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use pmem_testkit::scratch;
use pmem_typed::sim::SimMedium;
use pmem_typed::{PPtr, PSlice, Persist, Pool};
use proptest::prelude::RngExt;
use proptest::test_runner::{RngAlgorithm, TestRng};

const THREADS: usize = 4;
const OPS_PER_THREAD: u64 = 1000;
const LAYOUT: &str = "threads";

#[derive(Clone, Copy, Debug, Persist)]
#[repr(C)]
struct Root {
    /// One list per thread.
    lists: [PPtr<Node>; THREADS],
    /// One slice per thread.
    slices: [PSlice<u64>; THREADS],
}

#[derive(Clone, Copy, Debug, Persist)]
#[repr(C)]
struct Node {
    value: u64,
    /// `checksum(value)`: a node written in part is found.
    check: u64,
    next: PPtr<Node>,
}

// Shared between threads: the pool must be Send + Sync, on any medium.
const _: () = {
    const fn send_sync<T: Send + Sync>() {}
    send_sync::<Pool<Root>>();
    send_sync::<Pool<Root, SimMedium>>();
};

fn checksum(value: u64) -> u64 {
    value.rotate_left(17) ^ 0x9e37_79b9_7f4a_7c15
}

/// A deterministic generator for `thread`, from proptest's ChaCha.
fn rng_for(thread: u64) -> TestRng {
    let mut seed = [0; 32];
    seed[..8].copy_from_slice(&thread.to_le_bytes());
    TestRng::from_seed(RngAlgorithm::ChaCha, &seed)
}

/// What a thread believes its list (head first) and slice hold.
#[derive(Debug, Default, PartialEq)]
struct Model {
    list: Vec<u64>,
    slice: Vec<u64>,
}

/// Where `thread`'s list head is: element `thread` of the root's array.
fn list_ptr(root: PPtr<Root>, thread: usize) -> PPtr<PPtr<Node>> {
    root.fields()
        .lists
        .project(thread * size_of::<PPtr<Node>>())
}

/// Where `thread`'s slice is.
fn slice_ptr(root: PPtr<Root>, thread: usize) -> PPtr<PSlice<u64>> {
    root.fields()
        .slices
        .project(thread * size_of::<PSlice<u64>>())
}

/// One operation of `thread` on its own list and slice, mirrored in `model`.
fn step(pool: &mut Pool<Root>, thread: usize, rng: &mut TestRng, model: &mut Model) {
    let head_at = list_ptr(pool.root(), thread);
    let slice_at = slice_ptr(pool.root(), thread);
    let value = (thread as u64) << 56 | rng.random::<u64>() >> 8;
    match rng.random::<u64>() % 8 {
        // Push a node.
        0..=2 => {
            let head = *pool.get(head_at).unwrap();
            pool.alloc(
                head_at,
                Node {
                    value,
                    check: checksum(value),
                    next: head,
                },
            )
            .unwrap();
            model.list.insert(0, value);
        }
        // Pop one, unlinking and freeing in one step.
        3 => {
            let head = *pool.get(head_at).unwrap();
            if !head.is_null() {
                let next = pool.get(head).unwrap().next;
                pool.free_and_publish(head_at, next).unwrap();
                model.list.remove(0);
            }
        }
        // Rewrite a node through a guard.
        4 => {
            let head = *pool.get(head_at).unwrap();
            if !head.is_null() {
                let mut node = pool.get_mut(head).unwrap();
                node.value = value;
                node.check = checksum(value);
                model.list[0] = value;
            }
        }
        // Set one element of the slice.
        5 => {
            let slice = *pool.get(slice_at).unwrap();
            if !slice.is_empty() {
                pool.set_elem(slice, 0, value).unwrap();
                model.slice[0] = value;
            }
        }
        // Replace the slice, small or large (a run of chunks).
        6 => {
            pool.free_slice(slice_at).unwrap();
            let len = if rng.random::<u64>().is_multiple_of(4) {
                3000
            } else {
                20
            };
            let data: Vec<u64> = (0..len).map(|i| value ^ i).collect();
            pool.alloc_slice(slice_at, &data).unwrap();
            model.slice = data;
        }
        // Free the slice.
        _ => {
            pool.free_slice(slice_at).unwrap();
            model.slice.clear();
        }
    }
}

/// What the pool holds for `thread`, checking every node's checksum.
fn read_back(pool: &Pool<Root>, thread: usize) -> Model {
    let mut list = Vec::new();
    let mut at = *pool.get(list_ptr(pool.root(), thread)).unwrap();
    while !at.is_null() {
        let node = pool.get(at).unwrap();
        assert_eq!(
            node.check,
            checksum(node.value),
            "thread {thread}: node at {at:?} is torn"
        );
        list.push(node.value);
        at = node.next;
    }
    let slice = pool
        .get_slice(*pool.get(slice_ptr(pool.root(), thread)).unwrap())
        .unwrap()
        .to_vec();
    Model { list, slice }
}

fn pool_path() -> (tempfile::TempDir, PathBuf) {
    let dir = scratch::scratch("pmem-threads");
    let path = dir.path().join("pool");
    (dir, path)
}

/// Checks the pool against the threads' models, now and after reopening.
fn verify(pool: Pool<Root>, path: &Path, models: &[Model]) {
    let report = pool.check();
    assert!(report.is_consistent(), "{report}");
    let expected_blocks: usize = models
        .iter()
        .map(|m| m.list.len() + usize::from(!m.slice.is_empty()))
        .sum();
    assert_eq!(report.allocated_blocks, expected_blocks as u64, "{report}");
    for (thread, model) in models.iter().enumerate() {
        assert_eq!(&read_back(&pool, thread), model, "thread {thread}");
    }
    drop(pool);
    let pool = Pool::<Root>::open(path, LAYOUT).expect("reopen");
    assert!(pool.check().is_consistent());
    for (thread, model) in models.iter().enumerate() {
        assert_eq!(
            &read_back(&pool, thread),
            model,
            "thread {thread} after reopening"
        );
    }
}

#[test]
fn threads_sharing_a_pool_in_a_mutex_keep_their_own_lists() {
    let (_dir, path) = pool_path();
    let pool = Pool::<Root>::create(&path, LAYOUT, 8 << 20).expect("create");
    let pool = Arc::new(Mutex::new(pool));
    let workers: Vec<_> = (0..THREADS)
        .map(|thread| {
            let pool = Arc::clone(&pool);
            std::thread::spawn(move || {
                let mut rng = rng_for(thread as u64 + 1);
                let mut model = Model::default();
                for _ in 0..OPS_PER_THREAD {
                    let mut pool = pool.lock().unwrap();
                    step(&mut pool, thread, &mut rng, &mut model);
                }
                model
            })
        })
        .collect();
    let models: Vec<Model> = workers.into_iter().map(|w| w.join().unwrap()).collect();
    assert!(
        models.iter().any(|m| !m.list.is_empty()),
        "the workload left nothing to compare"
    );
    let pool = Arc::into_inner(pool).unwrap().into_inner().unwrap();
    verify(pool, &path, &models);
}

#[test]
fn readers_under_an_rwlock_always_find_the_pool_consistent() {
    let (_dir, path) = pool_path();
    let pool = Pool::<Root>::create(&path, LAYOUT, 8 << 20).expect("create");
    let pool = Arc::new(RwLock::new(pool));
    let done = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let pool = Arc::clone(&pool);
            let done = Arc::clone(&done);
            std::thread::spawn(move || {
                let mut reads = 0u64;
                loop {
                    // Read before testing `done`: at least one read sees the end.
                    let finished = done.load(Ordering::Acquire);
                    let pool = pool.read().unwrap();
                    let report = pool.check();
                    assert!(report.is_consistent(), "read {reads}: {report}");
                    for thread in 0..THREADS {
                        read_back(&pool, thread);
                    }
                    reads += 1;
                    if finished {
                        return reads;
                    }
                }
            })
        })
        .collect();
    let writers: Vec<_> = (0..THREADS)
        .map(|thread| {
            let pool = Arc::clone(&pool);
            std::thread::spawn(move || {
                let mut rng = rng_for(thread as u64 + 100);
                let mut model = Model::default();
                for _ in 0..OPS_PER_THREAD {
                    let mut pool = pool.write().unwrap();
                    step(&mut pool, thread, &mut rng, &mut model);
                }
                model
            })
        })
        .collect();
    let models: Vec<Model> = writers.into_iter().map(|w| w.join().unwrap()).collect();
    done.store(true, Ordering::Release);
    for reader in readers {
        assert!(reader.join().unwrap() >= 1);
    }
    let pool = Arc::into_inner(pool).unwrap().into_inner().unwrap();
    verify(pool, &path, &models);
}
