//! Crash consistency of every pmem-typed protocol, checked with the crash
//! simulator under the x86 ADR, eADR and conservative profiles: pool
//! creation, header updates (grow), guard persist, atomic publication,
//! allocation and free with their recovery, bulk slice copies.
//!
//! Each scenario's invariant is checked on every crash image (exhaustively,
//! or a seeded sample where there are too many), after recovery, including
//! crashes during recovery; `Pool::check` must also find no leak and no
//! dangling pointer.

use pmem_typed::sim::{Explorer, Profile, Scenario, SimMedium, StepResult, Summary, pool_labels};
use pmem_typed::{Error, PPtr, PSlice, Persist, Pool};

#[derive(Clone, Copy, Debug, PartialEq, Persist)]
#[repr(C)]
struct Root {
    counter: u64,
    flag: u64,
    head: PPtr<Node>,
    spare: PPtr<Node>,
    numbers: PSlice<u64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Persist)]
#[repr(C)]
struct Node {
    value: u64,
    next: PPtr<Node>,
    payload: [u64; 6],
}

const LAYOUT: &str = "crash";
const SIZE: usize = 64 * 1024;

/// A pool on a scenario step's medium, borrowed for the step.
type SimPool<'m> = Pool<Root, &'m mut SimMedium>;

fn open(m: &mut SimMedium) -> pmem_typed::Result<SimPool<'_>> {
    Pool::open_on(m, LAYOUT)
}

fn node(value: u64) -> Node {
    Node {
        value,
        next: PPtr::null(),
        payload: [value; 6],
    }
}

/// The list from the root, checking each node is whole (payload = value).
fn list(pool: &SimPool<'_>) -> Result<Vec<u64>, Box<dyn std::error::Error>> {
    let mut values = Vec::new();
    let mut at = pool.get(pool.root())?.head;
    while !at.is_null() {
        let n = pool.get(at)?;
        if n.payload != [n.value; 6] {
            return Err(format!(
                "node {at:?} is torn: value {} payload {:?}",
                n.value, n.payload
            )
            .into());
        }
        values.push(n.value);
        at = n.next;
    }
    Ok(values)
}

fn consistent(pool: &SimPool<'_>) -> StepResult {
    let report = pool.check();
    if report.is_consistent() {
        Ok(())
    } else {
        Err(report.to_string().into())
    }
}

/// A scenario on a pool created in set-up.
fn pool_scenario<'a>(
    prepare: impl Fn(&mut SimPool<'_>) -> StepResult + Send + Sync + 'a,
    run: impl Fn(&mut SimPool<'_>) -> StepResult + Send + Sync + 'a,
    invariant: impl Fn(&SimPool<'_>) -> StepResult + Send + Sync + 'a,
) -> Scenario<'a> {
    Scenario::new(SIZE)
        .setup(move |m| {
            let mut pool = Pool::create_on(
                m,
                LAYOUT,
                Root {
                    counter: 0,
                    flag: 0,
                    head: PPtr::null(),
                    spare: PPtr::null(),
                    numbers: PSlice::empty(),
                },
            )?;
            prepare(&mut pool)
        })
        .run(move |m| run(&mut open(m)?))
        .recover(|m| {
            open(m)?;
            Ok(())
        })
        .check(move |m| {
            let pool = open(m)?;
            consistent(&pool)?;
            invariant(&pool)
        })
        .labels(pool_labels::<Root>)
}

const PROFILES: [Profile; 3] = [Profile::X86Adr, Profile::Eadr, Profile::Conservative];

fn explore_all(scenario: &Scenario<'_>) -> Vec<Summary> {
    PROFILES
        .iter()
        .map(|&profile| {
            Explorer::new()
                .profile(profile)
                .explore(scenario)
                .unwrap_or_else(|failure| panic!("{profile:?}: {failure}"))
        })
        .collect()
}

/// Bytes of an "old pool": the magic, then junk.
fn old_pool() -> Vec<u8> {
    let mut image: Vec<u8> = (0..SIZE).map(|i| (i * 131 + 7) as u8).collect();
    image[..8].copy_from_slice(b"PMEMRS\x00\x01");
    image
}

#[test]
fn creation_is_all_or_nothing() {
    for garbage in [false, true] {
        let scenario = Scenario::new(SIZE)
            .setup(move |m| {
                if garbage {
                    // An old pool's bytes, magic and all: creation must not resurrect them.
                    m.store(0, &old_pool());
                }
                Ok(())
            })
            .run(|m| {
                let root = Root {
                    counter: 5,
                    flag: 6,
                    head: PPtr::null(),
                    spare: PPtr::null(),
                    numbers: PSlice::empty(),
                };
                Pool::create_on(m, LAYOUT, root)?;
                Ok(())
            })
            .check(move |m| {
                let e = match Pool::<Root, _>::open_on(&mut *m, LAYOUT) {
                    Err(Error::NotAPool { .. }) => return Ok(()),
                    Err(e) => e,
                    Ok(pool) => {
                        consistent(&pool)?;
                        let root = pool.get(pool.root())?;
                        return if (root.counter, root.flag) == (5, 6) {
                            Ok(())
                        } else {
                            Err(format!("root {root:?}").into())
                        };
                    }
                };
                // Nothing of the creation persisted: the old bytes, as they were.
                if garbage && m.live() == old_pool() {
                    Ok(())
                } else {
                    Err(format!("half-created pool: {e}").into())
                }
            })
            .labels(pool_labels::<Root>);
        for summary in explore_all(&scenario) {
            assert!(summary.crash_points >= 3, "{summary}");
        }
    }
}

#[test]
fn guards_persist_before_what_follows() {
    let scenario = pool_scenario(
        |_| Ok(()),
        |pool| {
            let root = pool.root();
            {
                let mut guard = pool.get_mut(root)?;
                guard.counter = 11;
                guard.flag = 0; // unchanged: not flushed
            }
            pool.set(root.fields().flag, 1)?;
            Ok(())
        },
        |pool| {
            let root = pool.get(pool.root())?;
            if root.flag == 1 && root.counter != 11 {
                return Err(format!("flag set but the guard's write was lost: {root:?}").into());
            }
            Ok(())
        },
    );
    explore_all(&scenario);
}

#[test]
fn publication_follows_the_object() {
    let scenario = pool_scenario(
        |pool| {
            pool.alloc(pool.root().fields().spare, node(0))?;
            Ok(())
        },
        |pool| {
            let root = pool.root();
            let spare = pool.get(root)?.spare;
            {
                let mut guard = pool.get_mut(spare)?;
                *guard = node(42);
            }
            pool.publish(root.fields().head, spare)?;
            pool.set(root.fields().spare, PPtr::null())?;
            Ok(())
        },
        |pool| {
            let values = list(pool)?;
            if values.is_empty() || values == [42] {
                Ok(())
            } else {
                Err(format!("list {values:?}").into())
            }
        },
    );
    explore_all(&scenario);
}

#[test]
fn allocation_and_free_are_failure_atomic() {
    let scenario = pool_scenario(
        |pool| {
            let root = pool.root();
            for v in [1, 2] {
                let head = pool.get(root)?.head;
                pool.alloc(
                    root.fields().head,
                    Node {
                        next: head,
                        ..node(v)
                    },
                )?;
            }
            Ok(())
        },
        |pool| {
            let root = pool.root();
            // Push 3, pop it and 2 (free then publish the rest), push 4.
            let head = pool.get(root)?.head;
            pool.alloc(
                root.fields().head,
                Node {
                    next: head,
                    ..node(3)
                },
            )?;
            for _ in 0..2 {
                let head = pool.get(root)?.head;
                let next = pool.get(head)?.next;
                pool.free_and_publish(root.fields().head, next)?;
            }
            let head = pool.get(root)?.head;
            pool.alloc(
                root.fields().head,
                Node {
                    next: head,
                    ..node(4)
                },
            )?;
            Ok(())
        },
        |pool| {
            let values = list(pool)?;
            // The list after each step of the run, and nothing else.
            let states: [&[u64]; 4] = [&[2, 1], &[3, 2, 1], &[1], &[4, 1]];
            if states.contains(&values.as_slice()) {
                Ok(())
            } else {
                Err(format!("list {values:?} is no state of the program").into())
            }
        },
    );
    for summary in explore_all(&scenario) {
        assert!(summary.images > 10, "{summary}");
    }
}

#[test]
fn interrupted_recovery_is_repeated() {
    // Crashes during the allocation leave a redo record; recovery applies it,
    // and the explorer crashes that recovery too.
    let scenario = pool_scenario(
        |_| Ok(()),
        |pool| {
            pool.alloc(pool.root().fields().head, node(9))?;
            Ok(())
        },
        |pool| {
            let values = list(pool)?;
            if values.is_empty() || values == [9] {
                Ok(())
            } else {
                Err(format!("list {values:?}").into())
            }
        },
    );
    let summary = Explorer::default()
        .explore(&scenario)
        .unwrap_or_else(|f| panic!("{f}"));
    assert!(
        summary.recovery_images > 0,
        "no crash during recovery was explored: {summary}"
    );
}

#[test]
fn bulk_slice_copy_then_flag() {
    let scenario = pool_scenario(
        |pool| {
            pool.alloc_slice_zeroed::<u64>(pool.root().fields().numbers, 64)?;
            Ok(())
        },
        |pool| {
            let root = pool.root();
            let numbers = pool.get(root)?.numbers;
            let values: Vec<u64> = (1..=64).collect();
            pool.copy_to_slice(numbers, 0, &values)?;
            pool.set(root.fields().flag, 1)?;
            Ok(())
        },
        |pool| {
            let root = pool.get(pool.root())?;
            let numbers = pool.get_slice(root.numbers)?;
            if root.flag == 1 && numbers.iter().enumerate().any(|(i, &n)| n != i as u64 + 1) {
                return Err(format!("flag set with numbers {numbers:?}").into());
            }
            Ok(())
        },
    );
    explore_all(&scenario);
}

#[test]
fn grow_then_allocate_in_the_new_space() {
    let scenario = pool_scenario(
        |pool| {
            // Fill the first zone so the next large allocation needs the new space.
            pool.alloc_slice_zeroed::<u64>(pool.root().fields().numbers, 2048)?;
            Ok(())
        },
        |pool| {
            pool.grow(160 * 1024)?;
            let root = pool.root();
            pool.alloc(root.fields().head, node(77))?;
            Ok(())
        },
        |pool| {
            let values = list(pool)?;
            if values.is_empty() || values == [77] {
                Ok(())
            } else {
                Err(format!("list {values:?}").into())
            }
        },
    )
    .capacity(160 * 1024);
    explore_all(&scenario);
}

#[test]
fn free_that_empties_its_chunk() {
    // Found by the stack property test: a free whose apply returns the chunk
    // to the free pool must still be redone by recovery.
    let scenario = pool_scenario(
        |pool| {
            pool.alloc(pool.root().fields().head, node(5))?;
            Ok(())
        },
        |pool| Ok(pool.free(pool.root().fields().head)?),
        |pool| {
            let values = list(pool)?;
            if values.is_empty() || values == [5] {
                Ok(())
            } else {
                Err(format!("list {values:?}").into())
            }
        },
    );
    explore_all(&scenario);
}

#[derive(Clone, Copy, Debug, PartialEq, Persist)]
#[repr(C)]
struct Big {
    words: [u64; 20],
}

#[test]
fn emptied_chunk_changes_class_after_a_free() {
    // The free's redo record is cleared lazily; the chunk it emptied is then
    // taken for another size class. Recovery must never see that record
    // with the chunk already changed.
    let scenario = Scenario::new(SIZE)
        .setup(|m| {
            let root = Root {
                counter: 0,
                flag: 0,
                head: PPtr::null(),
                spare: PPtr::null(),
                numbers: PSlice::empty(),
            };
            let mut pool = Pool::create_on(m, LAYOUT, root)?;
            pool.alloc(pool.root().fields().head, node(1))?;
            Ok(())
        })
        .run(|m| {
            let mut pool = open(m)?;
            pool.free(pool.root().fields().head)?;
            // 160 bytes: the 256-byte class, which needs a chunk of its own.
            let dest = pool.root().fields().spare.cast::<PPtr<Big>>();
            pool.alloc(dest, Big { words: [7; 20] })?;
            Ok(())
        })
        .recover(|m| {
            open(m)?;
            Ok(())
        })
        .check(|m| {
            let pool = open(m)?;
            let root = pool.get(pool.root())?;
            if !root.spare.is_null() {
                let big = pool.get(root.spare.cast::<Big>())?;
                if big.words != [7; 20] {
                    return Err(format!("published Big holds {:?}", big.words).into());
                }
            }
            // `spare` is typed PPtr<Node> in Root, so `check` cannot trace the
            // Big through it: count blocks instead of calling it.
            let blocks = pool.allocated_blocks().len();
            let reachable = usize::from(!root.head.is_null()) + usize::from(!root.spare.is_null());
            if blocks == reachable {
                Ok(())
            } else {
                Err(format!("{blocks} blocks, {reachable} reachable").into())
            }
        })
        .labels(pool_labels::<Root>);
    explore_all(&scenario);
}

/// The list and the numbers, as a batch's invariant sees them.
fn list_and_numbers(
    pool: &SimPool<'_>,
) -> Result<(Vec<u64>, Vec<u64>), Box<dyn std::error::Error>> {
    let numbers = pool.get_slice(pool.get(pool.root())?.numbers)?.to_vec();
    Ok((list(pool)?, numbers))
}

/// Fails unless the pool is in one of `states` (list, numbers).
fn one_of(pool: &SimPool<'_>, states: &[(&[u64], &[u64])]) -> StepResult {
    let (values, numbers) = list_and_numbers(pool)?;
    if states
        .iter()
        .any(|(l, n)| *l == values.as_slice() && *n == numbers.as_slice())
    {
        Ok(())
    } else {
        Err(format!("list {values:?} with numbers {numbers:?} is no state of the program").into())
    }
}

/// Prepares the list [1].
fn list_of_one(pool: &mut SimPool<'_>) -> StepResult {
    pool.alloc(pool.root().fields().head, node(1))?;
    Ok(())
}

#[test]
fn batch_publish_is_all_or_nothing() {
    // A batch replaces the list [1] by [3, 2] and sets the numbers (a
    // 16-byte slice, allocated in the batch); a second batch pushes 4 and
    // empties the numbers; then a single allocation pushes 5, its redo
    // record ordered after the batch log.
    let scenario = pool_scenario(
        list_of_one,
        |pool| {
            let root = pool.root().fields();
            let old = pool.get(pool.root())?.head;
            let mut batch = pool.batch();
            let two = batch.alloc(node(2))?;
            let three = batch.alloc(Node {
                next: two,
                ..node(3)
            })?;
            let numbers = batch.alloc_slice(&[7, 8])?;
            batch.set(root.head, three)?;
            batch.set(root.numbers, numbers)?;
            batch.free(old)?;
            batch.publish();

            let mut batch = pool.batch();
            let four = batch.alloc(Node {
                next: three,
                ..node(4)
            })?;
            batch.set(root.head, four)?;
            batch.set(root.numbers, PSlice::empty())?;
            batch.free_slice(numbers)?;
            batch.publish();

            pool.alloc(
                root.head,
                Node {
                    next: four,
                    ..node(5)
                },
            )?;
            Ok(())
        },
        |pool| {
            one_of(
                pool,
                &[
                    (&[1], &[]),
                    (&[3, 2], &[7, 8]),
                    (&[4, 3, 2], &[]),
                    (&[5, 4, 3, 2], &[]),
                ],
            )
        },
    );
    for summary in explore_all(&scenario) {
        assert!(
            summary.images > 10 && summary.recovery_images > 0,
            "{summary}"
        );
    }
}

#[test]
fn a_cancelled_or_dropped_batch_leaves_nothing_after_a_crash() {
    let scenario = pool_scenario(
        list_of_one,
        |pool| {
            let root = pool.root().fields();
            let mut batch = pool.batch();
            let n = batch.alloc(node(8))?;
            batch.set(root.head, n)?;
            batch.cancel();
            {
                let mut batch = pool.batch();
                let numbers = batch.alloc_slice_zeroed::<u64>(100)?;
                batch.set(root.numbers, numbers)?;
            }
            // The released block is taken again.
            let head = pool.get(pool.root())?.head;
            pool.alloc(
                root.head,
                Node {
                    next: head,
                    ..node(5)
                },
            )?;
            Ok(())
        },
        |pool| one_of(pool, &[(&[1], &[]), (&[5, 1], &[])]),
    );
    for summary in explore_all(&scenario) {
        assert!(summary.images > 5, "{summary}");
    }
}

#[test]
fn a_batch_out_of_space_midway_publishes_nothing_it_gathered() {
    let scenario = pool_scenario(
        list_of_one,
        |pool| {
            let root = pool.root().fields();
            let mut batch = pool.batch();
            let head = batch.alloc(node(2))?;
            batch.set(root.head, head)?;
            let err = loop {
                if let Err(e) = batch.alloc_slice_zeroed::<u64>(1024) {
                    break e;
                }
            };
            if !matches!(err, Error::OutOfSpace { .. }) {
                return Err(format!("expected OutOfSpace, got {err}").into());
            }
            batch.cancel();
            let mut batch = pool.batch();
            let old = pool_head(&batch)?;
            let nine = batch.alloc(Node {
                next: old,
                ..node(9)
            })?;
            batch.set(root.head, nine)?;
            batch.publish();
            Ok(())
        },
        |pool| one_of(pool, &[(&[1], &[]), (&[9, 1], &[])]),
    );
    for summary in explore_all(&scenario) {
        assert!(summary.images > 5, "{summary}");
    }
}

/// The list's head, read through a batch.
fn pool_head(
    batch: &pmem_typed::Batch<'_, Root, &mut SimMedium>,
) -> pmem_typed::Result<PPtr<Node>> {
    Ok(batch.get(batch.root())?.head)
}

#[test]
fn a_store_whose_log_overflows_the_first_page_is_all_or_nothing() {
    // One store of 1 800 bytes: past the first page's 1 776 bytes of log,
    // so the log continues in a held extent. Twice, the second log's
    // extent taken where the first one's was.
    const N: usize = 225;
    let scenario = pool_scenario(
        |pool| {
            pool.alloc_slice_zeroed(pool.root().fields().numbers, N as u64)?;
            Ok(())
        },
        |pool| {
            let numbers = pool.get(pool.root())?.numbers;
            let whole: PPtr<[u64; N]> = PPtr::from_offset(numbers.offset());
            for v in 1..=2 {
                pool.set(whole, [v; N])?;
            }
            Ok(())
        },
        |pool| {
            let numbers = pool.get_slice(pool.get(pool.root())?.numbers)?;
            if numbers.len() == N && numbers.iter().all(|&v| v == numbers[0] && v <= 2) {
                Ok(())
            } else {
                Err(format!("numbers {numbers:?}").into())
            }
        },
    );
    for summary in explore_all(&scenario) {
        assert!(
            summary.images > 5 && summary.recovery_images > 0,
            "{summary}"
        );
    }
}

#[test]
fn a_wide_set_is_failure_atomic() {
    // The whole root, 48 bytes, in one `Pool::set`: logged, never torn.
    let scenario = pool_scenario(
        |_| Ok(()),
        |pool| {
            let root = pool.root();
            let before = *pool.get(root)?;
            for k in 1..=2 {
                pool.set(
                    root,
                    Root {
                        counter: k,
                        flag: k,
                        ..before
                    },
                )?;
            }
            Ok(())
        },
        |pool| {
            let r = pool.get(pool.root())?;
            if r.counter == r.flag && r.counter <= 2 {
                Ok(())
            } else {
                Err(format!("counter {} with flag {}", r.counter, r.flag).into())
            }
        },
    );
    for summary in explore_all(&scenario) {
        assert!(summary.images > 5, "{summary}");
    }
}
