//! The crash simulator inside property tests: workloads and crashes are both
//! generated, and failures shrink to the fewest operations and the fewest
//! lines kept.

use pmem_typed::sim::proptest::{check_workloads, crash_choices};
use pmem_typed::sim::{CrashChoice, Explorer, Profile, Scenario, SimMedium, pool_labels};
use pmem_typed::{Medium, PPtr, PSlice, Persist, Pool};
use proptest::prelude::*;
use proptest::test_runner::Config;

/// A log on a raw medium: entries at 64-byte strides from 64, length at 0.
/// With `length_first`, the length is bumped (and persisted) before the entry.
fn log_scenario(values: &[u64], length_first: bool) -> Scenario<'static> {
    let entry = |i: usize| 64 + 64 * i;
    let (written, expected) = (values.to_vec(), values.to_vec());
    Scenario::new(4096)
        .run(move |m| {
            for (i, &v) in written.iter().enumerate() {
                let write_entry = |m: &mut SimMedium| {
                    m.store_u64(entry(i), v);
                    m.flush_range(entry(i), 8);
                    m.sfence();
                };
                if !length_first {
                    write_entry(m);
                }
                m.store_u64(0, i as u64 + 1);
                m.flush_range(0, 8);
                m.sfence();
                if length_first {
                    write_entry(m);
                }
            }
            Ok(())
        })
        .check(move |m| {
            let len = m.read_u64(0) as usize;
            (0..len).try_for_each(|i| {
                if m.read_u64(entry(i)) == expected[i] {
                    Ok(())
                } else {
                    Err(format!("entry {i} of {len} is not durable").into())
                }
            })
        })
}

fn values() -> impl Strategy<Value = Vec<u64>> {
    prop::collection::vec(1u64..1000, 1..6)
}

#[test]
fn failures_shrink_to_one_operation_and_one_line() {
    let config = Config {
        cases: 200,
        failure_persistence: None,
        ..Config::default()
    };
    let result = check_workloads(&Explorer::default(), config, values(), |values| {
        log_scenario(values, true)
    });
    let Err(counterexample) = result else {
        panic!("the length-first log was not caught")
    };
    assert_eq!(
        counterexample.ops.len(),
        1,
        "one append is enough:\n{counterexample}"
    );
    let failure = &counterexample.failure;
    let kept: Vec<_> = failure
        .point
        .as_ref()
        .unwrap()
        .lines
        .iter()
        .filter(|l| l.kept > 0)
        .collect();
    assert_eq!(kept.len(), 1, "one kept line is enough:\n{counterexample}");
    assert_eq!(kept[0].offset, 0, "the length's line:\n{counterexample}");
    // And the correct log passes the same search.
    let config = Config {
        cases: 200,
        failure_persistence: None,
        ..Config::default()
    };
    check_workloads(&Explorer::default(), config, values(), |values| {
        log_scenario(values, false)
    })
    .unwrap_or_else(|c| panic!("{c}"));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn entry_first_log_survives_any_crash(crash in crash_choices(), values in values()) {
        Explorer::default()
            .replay(&log_scenario(&values, false), &crash)
            .map_err(|failure| TestCaseError::fail(failure.to_string()))?;
    }
}

#[derive(Clone, Copy, Debug, Persist)]
#[repr(C)]
struct Root {
    head: PPtr<Node>,
}

#[derive(Clone, Copy, Debug, Persist)]
#[repr(C)]
struct Node {
    value: u64,
    next: PPtr<Node>,
}

#[derive(Clone, Debug)]
enum Op {
    Push(u64),
    Pop,
    Bump,
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec(
        prop_oneof![3 => (1u64..100).prop_map(Op::Push), 2 => Just(Op::Pop), 1 => Just(Op::Bump)],
        1..8,
    )
}

/// The stack after each operation (the states a crash may leave).
fn states(ops: &[Op]) -> Vec<Vec<u64>> {
    let mut stack = Vec::new();
    let mut states = vec![stack.clone()];
    for op in ops {
        match op {
            Op::Push(v) => stack.push(*v),
            Op::Pop => {
                stack.pop();
            }
            Op::Bump => {
                if let Some(top) = stack.last_mut() {
                    *top += 1;
                }
            }
        }
        states.push(stack.clone());
    }
    states
}

fn open(m: &mut SimMedium) -> pmem_typed::Result<Pool<Root, &mut SimMedium>> {
    Pool::open_on(m, "stack")
}

fn stack_scenario(ops: &[Op]) -> Scenario<'_> {
    let states = states(ops);
    Scenario::new(64 * 1024)
        .setup(|m| {
            Pool::create_on(m, "stack", Root { head: PPtr::null() })?;
            Ok(())
        })
        .run(move |m| {
            let mut pool = open(m)?;
            let head = pool.root().fields().head;
            for op in ops {
                let top = pool.get(pool.root())?.head;
                match op {
                    Op::Push(v) => drop(pool.alloc(
                        head,
                        Node {
                            value: *v,
                            next: top,
                        },
                    )?),
                    Op::Pop if !top.is_null() => {
                        let next = pool.get(top)?.next;
                        pool.free_and_publish(head, next)?;
                    }
                    Op::Bump if !top.is_null() => {
                        let value = pool.get(top)?.value;
                        pool.set(top.fields().value, value + 1)?;
                    }
                    _ => {}
                }
            }
            Ok(())
        })
        .recover(|m| {
            open(m)?;
            Ok(())
        })
        .check(move |m| {
            let pool = open(m)?;
            let report = pool.check();
            if !report.is_consistent() {
                return Err(report.to_string().into());
            }
            let mut values = Vec::new();
            let mut at = pool.get(pool.root())?.head;
            while !at.is_null() {
                let node = pool.get(at)?;
                values.push(node.value);
                at = node.next;
            }
            values.reverse();
            if states.contains(&values) {
                Ok(())
            } else {
                Err(format!("stack {values:?} is no state of the program").into())
            }
        })
        .labels(pool_labels::<Root>)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Random pushes, pops and updates on a persistent stack, crashed anywhere,
    /// under every profile.
    #[test]
    fn stack_operations_survive_any_crash(crash in crash_choices(), ops in ops(),
                                          profile in prop::sample::select(vec![Profile::X86Adr, Profile::Eadr, Profile::Conservative])) {
        Explorer::new().profile(profile)
            .replay(&stack_scenario(&ops), &crash)
            .map_err(|failure| TestCaseError::fail(failure.to_string()))?;
    }
}

#[test]
fn replay_is_deterministic() {
    let values = [5, 6, 7];
    let crash = CrashChoice::new(2, vec![1]);
    let first = Explorer::default().replay(&log_scenario(&values, true), &crash);
    let second = Explorer::default().replay(&log_scenario(&values, true), &crash);
    assert_eq!(first, second);
    assert!(first.is_err());
}

#[derive(Clone, Copy, Debug, Persist)]
#[repr(C)]
struct Lists {
    /// The published list.
    items: PSlice<u64>,
    /// Where a new list is allocated before it is published.
    spare: PSlice<u64>,
}

/// A newcomer's list replacement: each operation allocates a list of `len`
/// copies of `len` into `spare`, then publishes it through a guard on the
/// root: 16 bytes in one step, which can tear (the new offset with the old
/// length).
fn replace_lists(lens: &[u64]) -> Scenario<'static> {
    let lens = lens.to_vec();
    Scenario::new(64 * 1024)
        .setup(|m| {
            let empty = PSlice::empty();
            Pool::create_on(
                m,
                "lists",
                Lists {
                    items: empty,
                    spare: empty,
                },
            )?;
            Ok(())
        })
        .run(move |m| {
            let mut pool = Pool::<Lists, _>::open_on(m, "lists")?;
            let fields = pool.root().fields();
            for &len in &lens {
                let spare = pool.alloc_slice(fields.spare, &vec![len; len as usize])?;
                // Two words through a guard, one step: tearable (`set`
                // would log them).
                pool.get_mut(pool.root())?.items = spare;
            }
            Ok(())
        })
        .check(|m| {
            let pool = Pool::<Lists, _>::open_on(m, "lists")?;
            let items = pool.get_slice(pool.get(pool.root())?.items)?;
            match items.first() {
                Some(&len) if items.len() as u64 != len || items.iter().any(|&v| v != len) => {
                    Err(format!(
                        "a list of {} that is not one written: {items:?}",
                        items.len()
                    )
                    .into())
                }
                _ => Ok(()),
            }
        })
        .labels(pool_labels::<Lists>)
}

#[test]
fn a_torn_slice_is_found_and_shrinks_to_the_smallest_value() {
    let config = Config {
        cases: 16,
        failure_persistence: None,
        ..Config::default()
    };
    let lens = prop::collection::vec(3u64..40, 1..4);
    let Err(counterexample) = check_workloads(&Explorer::default(), config, lens, replace_lists)
    else {
        panic!("the torn slice was not found")
    };
    assert_eq!(
        counterexample.ops,
        [3],
        "one list, of the fewest elements:\n{counterexample}"
    );
    let report = counterexample.to_string();
    assert!(report.contains("replay: Explorer::new()"), "{report}");
    eprintln!("{report}");
}

/// A log of `values` (entry `i` at `64 * (i + 2)`) with a record to apply
/// (at 0): recovery copies the entries to `2048 + ...` and clears the
/// record, flushing but never fencing.
fn copied_on_recovery(values: &[u64]) -> Scenario<'static> {
    let (written, expected) = (values.to_vec(), values.to_vec());
    let entry = |i: usize| 64 * (i + 2);
    Scenario::new(4096)
        .run(move |m| {
            for (i, &v) in written.iter().enumerate() {
                m.store_u64(entry(i), v);
                m.persist(entry(i), 8);
            }
            m.store_u64(0, written.len() as u64);
            m.persist(0, 8);
            m.milestone("record left");
            Ok(())
        })
        .recover(move |m| {
            let count = m.read_u64(0) as usize;
            for i in 0..count {
                let v = m.read_u64(entry(i));
                m.store_u64(2048 + entry(i), v);
                m.flush_range(2048 + entry(i), 8);
            }
            m.store_u64(0, 0);
            m.flush_range(0, 8);
            Ok(())
        })
        .check(move |m| {
            if !m.reached("record left") {
                return Ok(());
            }
            for (i, &v) in expected.iter().enumerate() {
                if m.read_u64(2048 + entry(i)) != v {
                    return Err(format!("entry {i} was not copied").into());
                }
            }
            Ok(())
        })
}

#[test]
fn a_bug_only_a_crash_during_recovery_shows_is_found() {
    let config = Config {
        cases: 16,
        failure_persistence: None,
        ..Config::default()
    };
    let values = prop::collection::vec(1u64..1000, 1..4);
    let Err(counterexample) =
        check_workloads(&Explorer::default(), config, values, copied_on_recovery)
    else {
        panic!("recovery's missing fence was not found")
    };
    assert_eq!(counterexample.ops, [1], "{counterexample}");
    assert_eq!(
        counterexample.failure.recovery_points.len(),
        1,
        "{counterexample}"
    );
}
