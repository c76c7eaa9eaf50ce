//! Crash consistency of every pmem-typed protocol, checked with the crash
//! simulator under the x86 ADR, eADR and conservative profiles: pool
//! creation, header updates (grow), guard persist, atomic publication,
//! allocation and free with their recovery, bulk slice copies.
//!
//! Each scenario's invariant is checked on every crash image (exhaustively,
//! or a seeded sample where there are too many), after recovery, including
//! crashes during recovery; `Pool::check` must also find no leak and no
//! dangling pointer.

use pmem_typed::sim::{Explorer, Profile, Scenario, SimMedium, Summary, pool_labels};
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

type SimPool = Pool<Root, SimMedium>;

fn text(e: Error) -> String {
    e.to_string()
}

fn open(m: &SimMedium) -> Result<SimPool, String> {
    Pool::open_on(m.clone(), LAYOUT).map_err(text)
}

fn node(value: u64) -> Node {
    Node {
        value,
        next: PPtr::null(),
        payload: [value; 6],
    }
}

/// The list from the root, checking each node is whole (payload = value).
fn list(pool: &SimPool) -> Result<Vec<u64>, String> {
    let mut values = Vec::new();
    let mut at = pool.get(pool.root()).map_err(text)?.head;
    while !at.is_null() {
        let n = pool.get(at).map_err(text)?;
        if n.payload != [n.value; 6] {
            return Err(format!(
                "node {at:?} is torn: value {} payload {:?}",
                n.value, n.payload
            ));
        }
        values.push(n.value);
        at = n.next;
    }
    Ok(values)
}

fn consistent(pool: &SimPool) -> Result<(), String> {
    let report = pool.check();
    if report.is_consistent() {
        Ok(())
    } else {
        Err(report.to_string())
    }
}

/// A scenario on a pool created in set-up.
fn pool_scenario<'a>(
    prepare: impl Fn(&mut SimPool) -> Result<(), String> + Send + Sync + 'a,
    run: impl Fn(&mut SimPool) -> Result<(), String> + Send + Sync + 'a,
    invariant: impl Fn(&SimPool) -> Result<(), String> + Send + Sync + 'a,
) -> Scenario<'a> {
    Scenario::new(SIZE)
        .setup(move |m| {
            let mut pool = Pool::create_on(
                m.clone(),
                LAYOUT,
                Root {
                    counter: 0,
                    flag: 0,
                    head: PPtr::null(),
                    spare: PPtr::null(),
                    numbers: PSlice::empty(),
                },
            )
            .map_err(text)?;
            prepare(&mut pool)
        })
        .run(move |m| run(&mut open(m)?))
        .recover(|m| open(m).map(drop))
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
            Explorer::new(profile)
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
                Pool::create_on(m.clone(), LAYOUT, root)
                    .map(drop)
                    .map_err(text)
            })
            .check(move |m| match Pool::<Root, _>::open_on(m.clone(), LAYOUT) {
                Err(Error::NotAPool { .. }) => Ok(()),
                // Nothing of the creation persisted: the old bytes, as they were.
                Err(_) if garbage && m.live() == old_pool() => Ok(()),
                Err(e) => Err(format!("half-created pool: {e}")),
                Ok(pool) => {
                    consistent(&pool)?;
                    let root = pool.get(pool.root()).map_err(text)?;
                    if (root.counter, root.flag) == (5, 6) {
                        Ok(())
                    } else {
                        Err(format!("root {root:?}"))
                    }
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
                let mut guard = pool.get_mut(root).map_err(text)?;
                guard.counter = 11;
                guard.flag = 0; // unchanged: not flushed
            }
            pool.set(root.fields().flag, 1).map_err(text)
        },
        |pool| {
            let root = pool.get(pool.root()).map_err(text)?;
            if root.flag == 1 && root.counter != 11 {
                return Err(format!("flag set but the guard's write was lost: {root:?}"));
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
            pool.alloc(pool.root().fields().spare, node(0))
                .map(drop)
                .map_err(text)
        },
        |pool| {
            let root = pool.root();
            let spare = pool.get(root).map_err(text)?.spare;
            {
                let mut guard = pool.get_mut(spare).map_err(text)?;
                *guard = node(42);
            }
            pool.publish(root.fields().head, spare).map_err(text)?;
            pool.set(root.fields().spare, PPtr::null()).map_err(text)
        },
        |pool| {
            let values = list(pool)?;
            if values.is_empty() || values == [42] {
                Ok(())
            } else {
                Err(format!("list {values:?}"))
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
                let head = pool.get(root).map_err(text)?.head;
                pool.alloc(
                    root.fields().head,
                    Node {
                        next: head,
                        ..node(v)
                    },
                )
                .map_err(text)?;
            }
            Ok(())
        },
        |pool| {
            let root = pool.root();
            // Push 3, pop it and 2 (free then publish the rest), push 4.
            let head = pool.get(root).map_err(text)?.head;
            pool.alloc(
                root.fields().head,
                Node {
                    next: head,
                    ..node(3)
                },
            )
            .map_err(text)?;
            for _ in 0..2 {
                let head = pool.get(root).map_err(text)?.head;
                let next = pool.get(head).map_err(text)?.next;
                pool.free_and_publish(root.fields().head, next)
                    .map_err(text)?;
            }
            let head = pool.get(root).map_err(text)?.head;
            pool.alloc(
                root.fields().head,
                Node {
                    next: head,
                    ..node(4)
                },
            )
            .map_err(text)
            .map(drop)
        },
        |pool| {
            let values = list(pool)?;
            // The list after each step of the run, and nothing else.
            let states: [&[u64]; 4] = [&[2, 1], &[3, 2, 1], &[1], &[4, 1]];
            if states.contains(&values.as_slice()) {
                Ok(())
            } else {
                Err(format!("list {values:?} is no state of the program"))
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
            pool.alloc(pool.root().fields().head, node(9))
                .map(drop)
                .map_err(text)
        },
        |pool| {
            let values = list(pool)?;
            if values.is_empty() || values == [9] {
                Ok(())
            } else {
                Err(format!("list {values:?}"))
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
            pool.alloc_slice_zeroed::<u64>(pool.root().fields().numbers, 64)
                .map(drop)
                .map_err(text)
        },
        |pool| {
            let root = pool.root();
            let numbers = pool.get(root).map_err(text)?.numbers;
            let values: Vec<u64> = (1..=64).collect();
            pool.copy_to_slice(numbers, 0, &values).map_err(text)?;
            pool.set(root.fields().flag, 1).map_err(text)
        },
        |pool| {
            let root = pool.get(pool.root()).map_err(text)?;
            let numbers = pool.get_slice(root.numbers).map_err(text)?;
            if root.flag == 1 && numbers.iter().enumerate().any(|(i, &n)| n != i as u64 + 1) {
                return Err(format!("flag set with numbers {numbers:?}"));
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
            pool.alloc_slice_zeroed::<u64>(pool.root().fields().numbers, 2048)
                .map(drop)
                .map_err(text)
        },
        |pool| {
            pool.grow(160 * 1024).map_err(text)?;
            let root = pool.root();
            pool.alloc(root.fields().head, node(77))
                .map(drop)
                .map_err(text)
        },
        |pool| {
            let values = list(pool)?;
            if values.is_empty() || values == [77] {
                Ok(())
            } else {
                Err(format!("list {values:?}"))
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
            pool.alloc(pool.root().fields().head, node(5))
                .map(drop)
                .map_err(text)
        },
        |pool| pool.free(pool.root().fields().head).map_err(text),
        |pool| {
            let values = list(pool)?;
            if values.is_empty() || values == [5] {
                Ok(())
            } else {
                Err(format!("list {values:?}"))
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
            let mut pool = Pool::create_on(m.clone(), LAYOUT, root).map_err(text)?;
            pool.alloc(pool.root().fields().head, node(1))
                .map(drop)
                .map_err(text)
        })
        .run(|m| {
            let mut pool = open(m)?;
            pool.free(pool.root().fields().head).map_err(text)?;
            // 160 bytes: the 256-byte class, which needs a chunk of its own.
            let dest = pool.root().fields().spare.cast::<PPtr<Big>>();
            pool.alloc(dest, Big { words: [7; 20] })
                .map(drop)
                .map_err(text)
        })
        .recover(|m| open(m).map(drop))
        .check(|m| {
            let pool = open(m)?;
            let root = pool.get(pool.root()).map_err(text)?;
            if !root.spare.is_null() {
                let big = pool.get(root.spare.cast::<Big>()).map_err(text)?;
                if big.words != [7; 20] {
                    return Err(format!("published Big holds {:?}", big.words));
                }
            }
            // `spare` is typed PPtr<Node> in Root, so `check` cannot trace the
            // Big through it: count blocks instead of calling it.
            let blocks = pool.allocated_blocks().len();
            let reachable = usize::from(!root.head.is_null()) + usize::from(!root.spare.is_null());
            if blocks == reachable {
                Ok(())
            } else {
                Err(format!("{blocks} blocks, {reachable} reachable"))
            }
        })
        .labels(pool_labels::<Root>);
    explore_all(&scenario);
}
