//! Batches: what they publish, what they refuse, and what a log left by a
//! crash makes of the pool at open. (Their crash-atomicity is proven in
//! `crash_protocols.rs`.)

use pmem_testkit::counting::Counting;
use pmem_typed::format::PAGE;
use pmem_typed::format::batch::{BATCH_OFFSET, Entry, write_log};
use pmem_typed::sim::SimMedium;
use pmem_typed::{Error, Medium, PPtr, PSlice, Persist, Pool};

#[derive(Clone, Copy, Debug, PartialEq, Persist)]
#[repr(C)]
struct Root {
    head: PPtr<Node>,
    items: PSlice<u64>,
    count: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Persist)]
#[repr(C)]
struct Node {
    key: u64,
    next: PPtr<Node>,
}

const EMPTY: Root = Root {
    head: PPtr::null(),
    items: PSlice::empty(),
    count: 0,
};

fn pool() -> Pool<Root, SimMedium> {
    Pool::create_on(SimMedium::new(1 << 20, 4 << 20), "batch", EMPTY).unwrap()
}

/// A pool whose list is one node, of key 1.
fn pool_with_one_node() -> (Pool<Root, SimMedium>, PPtr<Node>) {
    let mut pool = pool();
    let node = Node {
        key: 1,
        next: PPtr::null(),
    };
    let node = pool.alloc(pool.root().fields().head, node).unwrap();
    (pool, node)
}

fn reopen(pool: Pool<Root, SimMedium>) -> Pool<Root, SimMedium> {
    Pool::open_on(pool.into_medium(), "batch").unwrap()
}

/// The keys of the list, head first.
fn keys<M: Medium>(pool: &Pool<Root, M>) -> Vec<u64> {
    let mut keys = Vec::new();
    let mut at = pool.get(pool.root()).unwrap().head;
    while !at.is_null() {
        let node = pool.get(at).unwrap();
        keys.push(node.key);
        at = node.next;
    }
    keys
}

#[test]
fn a_published_batch_survives_reopening() {
    let mut pool = pool();
    let root = pool.root().fields();
    let mut batch = pool.batch();
    let mut next = PPtr::null();
    for key in (0..10).rev() {
        next = batch.alloc(Node { key, next }).unwrap();
    }
    let items = batch.alloc_slice(&[7, 8, 9]).unwrap();
    batch.set(root.head, next).unwrap();
    batch.set(root.items, items).unwrap();
    batch.set(root.count, 10).unwrap();
    batch.publish();
    let pool = reopen(pool);
    assert_eq!(keys(&pool), (0..10).collect::<Vec<_>>());
    let r = pool.get(pool.root()).unwrap();
    assert_eq!(
        (pool.get_slice(r.items).unwrap(), r.count),
        (&[7, 8, 9][..], 10)
    );
    assert!(pool.check().is_consistent(), "{}", pool.check());
}

#[test]
fn a_cancelled_or_dropped_batch_changes_nothing() {
    let mut pool = pool();
    let root = pool.root().fields();
    let before = pool.medium().live().to_vec();
    let mut batch = pool.batch();
    let node = batch
        .alloc(Node {
            key: 1,
            next: PPtr::null(),
        })
        .unwrap();
    batch.set(root.head, node).unwrap();
    batch.cancel();
    {
        let mut batch = pool.batch();
        batch.alloc_slice_zeroed::<u64>(10_000).unwrap();
        batch.set(root.count, 5).unwrap();
    }
    assert!(pool.allocated_blocks().is_empty());
    assert_eq!(*pool.get(pool.root()).unwrap(), EMPTY);
    // Only chunks dedicated to a size class may have changed: no block,
    // no log, no root.
    let after = pool.medium().live();
    assert_eq!(after[..PAGE * 2], before[..PAGE * 2]);
    // The next allocation takes the same block.
    let again = pool
        .alloc(
            root.head,
            Node {
                key: 2,
                next: PPtr::null(),
            },
        )
        .unwrap();
    assert_eq!(again, node);
}

#[test]
fn publish_costs_two_fences_whatever_the_batch_holds() {
    for n in [1u64, 4, 64, 300] {
        let mut pool = Pool::create_on(
            Counting::new(SimMedium::new(1 << 20, 1 << 20)),
            "batch",
            EMPTY,
        )
        .unwrap();
        let root = pool.root().fields();
        // The first round dedicates chunks to size classes (a fence each);
        // cancelled, it leaves them for the second, which is counted.
        for round in 0..2 {
            pool.medium().take();
            let mut batch = pool.batch();
            let mut next = PPtr::null();
            for key in 0..n {
                next = batch.alloc(Node { key, next }).unwrap();
            }
            batch.set(root.head, next).unwrap();
            batch.set(root.count, n).unwrap();
            if round == 0 {
                batch.cancel();
            } else {
                batch.publish();
            }
        }
        let counts = pool.medium().take();
        assert_eq!(counts.fences, 2, "{n} allocations: {counts:?}");
        assert_eq!(keys(&pool).len() as u64, n);
    }
}

#[test]
fn a_long_batch_continues_its_log_in_an_extent() {
    let mut pool = pool();
    let root = pool.root().fields();
    let items = pool.alloc_slice_zeroed(root.items, 500).unwrap();
    let mut batch = pool.batch();
    // 500 stores of 8 bytes: 12 000 bytes of log, past the first page.
    for i in 0..500 {
        batch.set(items.at(i).unwrap(), i * 3).unwrap();
    }
    batch.set(root.count, 500).unwrap();
    batch.publish();
    let pool = reopen(pool);
    let values = pool
        .get_slice(pool.get(pool.root()).unwrap().items)
        .unwrap();
    assert!(values.iter().enumerate().all(|(i, &v)| v == i as u64 * 3));
    // The extent was held, not allocated: one block, the slice.
    assert_eq!(pool.allocated_blocks().len(), 1);
}

#[test]
fn a_batch_that_runs_out_of_space_is_refused_before_anything_is_written() {
    let mut pool = Pool::create_on(SimMedium::new(256 << 10, 256 << 10), "batch", EMPTY).unwrap();
    let root = pool.root().fields();
    let mut batch = pool.batch();
    let mut taken = Vec::new();
    let err = loop {
        match batch.alloc_slice_zeroed::<u8>(8 << 10) {
            Ok(s) => taken.push(s),
            Err(e) => break e,
        }
    };
    assert!(matches!(err, Error::OutOfSpace { .. }), "{err}");
    assert!(!taken.is_empty());
    // What was gathered still publishes.
    batch.set(root.count, taken.len() as u64).unwrap();
    batch.publish();
    assert_eq!(pool.allocated_blocks().len(), taken.len());
    assert_eq!(pool.get(pool.root()).unwrap().count, taken.len() as u64);
}

#[test]
fn stores_are_checked_like_every_access() {
    let (mut pool, old) = pool_with_one_node();
    let root = pool.root().fields();
    let mut batch = pool.batch();
    // Null, the header, out of bounds, misaligned: bad pointers.
    for bad in [0, 64, 8 << 20, PAGE as u64 + 1] {
        let dest: PPtr<u64> = PPtr::from_offset(bad);
        assert!(
            matches!(batch.set(dest, 1), Err(Error::BadPointer { .. })),
            "{bad}"
        );
    }
    // In the heap, but in no allocated block.
    let stray: PPtr<u64> = PPtr::from_offset(old.offset() + 4096);
    assert!(matches!(
        batch.set(stray, 1),
        Err(Error::NotAllocated { .. })
    ));
    // Only reserved objects are lent out.
    assert!(matches!(batch.get_mut(old), Err(Error::NotReserved { .. })));
    // Freed in the batch: neither stored into nor pointed to.
    batch.free(old).unwrap();
    assert!(matches!(batch.free(old), Err(Error::NotAllocated { .. })));
    assert!(matches!(
        batch.set(old.fields().key, 2),
        Err(Error::FreedInBatch { .. })
    ));
    assert!(matches!(
        batch.set(root.head, old),
        Err(Error::FreedInBatch { .. })
    ));
    let node = Node { key: 3, next: old };
    assert!(matches!(batch.alloc(node).map(|_| ()), Ok(())));
    batch.set(root.head, PPtr::null()).unwrap();
    batch.publish();
    assert!(pool.allocated_blocks().len() == 1);
}

#[test]
fn a_block_stored_into_or_pointed_to_cannot_then_be_freed() {
    let (mut pool, a) = pool_with_one_node();
    let root = pool.root().fields();
    let mut batch = pool.batch();
    batch.set(a.fields().key, 5).unwrap();
    assert!(matches!(batch.free(a), Err(Error::FreedInBatch { .. })));
    drop(batch);
    let mut batch = pool.batch();
    let b = batch.alloc(Node { key: 2, next: a }).unwrap();
    batch.set(root.head, b).unwrap();
    batch.set(b.fields().next, a).unwrap(); // into a reserved block: written at once
    assert!(matches!(batch.free(a), Err(Error::FreedInBatch { .. })));
    batch.publish();
    assert_eq!(keys(&pool), [2, 1]);
}

#[test]
fn pool_set_of_a_wide_value_is_logged() {
    let mut pool = pool();
    let root = pool.root();
    let items = pool.alloc_slice(root.fields().items, &[1, 2]).unwrap();
    // The whole root, 32 bytes: logged, then written.
    pool.set(
        root,
        Root {
            head: PPtr::null(),
            items,
            count: 2,
        },
    )
    .unwrap();
    let pool = reopen(pool);
    assert_eq!(pool.get(pool.root()).unwrap().count, 2);
    // And the log is clear.
    assert!(
        pool.medium().live()[BATCH_OFFSET..BATCH_OFFSET + 64]
            .iter()
            .all(|&b| b == 0)
    );
}

#[test]
fn a_log_left_by_a_crash_is_replayed_at_open() {
    let mut pool = pool();
    let root = pool.root().fields();
    let items = pool.alloc_slice(root.items, &[1, 2, 3]).unwrap();
    let mut medium = pool.into_medium();
    // A batch whose commit fence completed: a free and two stores.
    let mut image = medium.live().to_vec();
    let count = 9u64.to_ne_bytes();
    let empty = [0u8; 16];
    write_log(
        &mut image,
        40,
        &[
            Entry::Free {
                block: items.offset(),
                block_size: 64,
            },
            Entry::Store {
                dest: PAGE as u64 + 8,
                bytes: &empty,
            },
            Entry::Store {
                dest: PAGE as u64 + 24,
                bytes: &count,
            },
        ],
    );
    medium = SimMedium::from_image(&image, 4 << 20);
    let pool = Pool::<Root, _>::open_on(medium, "batch").unwrap();
    let r = pool.get(pool.root()).unwrap();
    assert_eq!((r.items, r.count), (PSlice::empty(), 9));
    assert!(pool.allocated_blocks().is_empty());
    assert!(pool.check().is_consistent());
    assert!(
        pool.medium().live()[BATCH_OFFSET..BATCH_OFFSET + 64]
            .iter()
            .all(|&b| b == 0)
    );
}

#[test]
fn a_log_whose_new_block_lost_its_value_is_dropped_whole() {
    let mut pool = pool();
    let head = pool.root().fields().head;
    // A block of a chunk of its class, free again.
    let block = pool
        .alloc(
            head,
            Node {
                key: 1,
                next: PPtr::null(),
            },
        )
        .unwrap()
        .offset();
    pool.free(head).unwrap();
    let mut image = pool.into_medium().live().to_vec();
    let value = Node {
        key: 2,
        next: PPtr::null(),
    };
    let stored = block.to_ne_bytes();
    let count = 1u64.to_ne_bytes();
    let log = |value_crc| {
        [
            Entry::Alloc {
                block,
                block_size: 64,
                value_len: 16,
                value_crc,
            },
            Entry::Store {
                dest: PAGE as u64,
                bytes: &stored,
            },
            Entry::Store {
                dest: PAGE as u64 + 24,
                bytes: &count,
            },
        ]
    };
    let intact = crc32fast::hash(bytemuck::bytes_of(&value));
    // The block's value never became durable: its CRC does not match, and
    // none of the batch happens.
    image[block as usize..block as usize + 16].copy_from_slice(bytemuck::bytes_of(&value));
    write_log(&mut image, 2, &log(intact ^ 1));
    let pool = Pool::<Root, _>::open_on(SimMedium::from_image(&image, 4 << 20), "batch").unwrap();
    assert_eq!(
        *pool.get(pool.root()).unwrap(),
        EMPTY,
        "nothing of the batch"
    );
    assert!(pool.allocated_blocks().is_empty());
    // With the value intact, all of it.
    write_log(&mut image, 2, &log(intact));
    let pool = Pool::<Root, _>::open_on(SimMedium::from_image(&image, 4 << 20), "batch").unwrap();
    assert_eq!(keys(&pool), [2]);
    assert_eq!(pool.get(pool.root()).unwrap().count, 1);
    assert!(pool.check().is_consistent());
}
