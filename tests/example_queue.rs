//! The `queue` example's persistent FIFO queue (examples/queue/pqueue.rs):
//! push/pop order, the empty and one-element cases, reopening; and crash
//! consistency under the crash simulator: after any crash, the queue is one
//! of the states the program went through, the pool has no leaked node and
//! no dangling pointer, `tail` is null or a node of the list, opening makes
//! it exact, and the queue then works (a push lands at the back).

#[path = "../examples/queue/pqueue.rs"]
mod pqueue;

use pmem::typed::sim::proptest::crash_choices;
use pmem::typed::sim::{Explorer, FailureKind, Profile, Scenario, SimMedium, pool_labels};
use pmem::typed::{PPtr, Pool};
use pqueue::{LAYOUT, Node, PQueue, QueueRoot};
use proptest::prelude::*;

const SIZE: usize = 64 * 1024;

/// A pool, and a queue, on a medium they borrow.
type SimPool<'m> = Pool<QueueRoot, &'m mut SimMedium>;
type SimQueue<'m> = PQueue<&'m mut SimMedium>;

/// An error of a step or a helper: `?` takes pmem-typed's errors and messages.
type Failed = Box<dyn std::error::Error>;

fn empty_root() -> QueueRoot {
    QueueRoot {
        head: PPtr::null(),
        tail: PPtr::null(),
    }
}

/// A new queue on `medium`, which it borrows until it is dropped.
fn new_sim_queue(medium: &mut SimMedium) -> SimQueue<'_> {
    let pool = Pool::create_on(medium, LAYOUT, empty_root()).expect("create");
    PQueue::open(pool).expect("open")
}

fn open_pool(m: &mut SimMedium) -> pmem::typed::Result<SimPool<'_>> {
    Pool::open_on(m, LAYOUT)
}

fn open_queue(m: &mut SimMedium) -> pmem::typed::Result<SimQueue<'_>> {
    PQueue::open(open_pool(m)?)
}

fn values(queue: &SimQueue<'_>) -> Vec<u64> {
    queue.to_vec().expect("to_vec")
}

fn pop(queue: &mut SimQueue<'_>) -> Option<u64> {
    queue.pop_front().expect("pop_front")
}

/// The nodes of a list, with where they are.
type Nodes = Vec<(PPtr<Node>, Node)>;

/// Root and nodes of the list from `head`, in order.
fn nodes(pool: &SimPool<'_>) -> Result<(QueueRoot, Nodes), Failed> {
    let root = *pool.get(pool.root())?;
    let mut nodes = Vec::new();
    let mut at = root.head;
    while !at.is_null() {
        let node = *pool.get(at)?;
        nodes.push((at, node));
        if nodes.len() > 1000 {
            return Err("the list does not end".into());
        }
        at = node.next;
    }
    Ok((root, nodes))
}

#[test]
fn first_in_first_out() {
    let mut medium = SimMedium::new(SIZE, SIZE);
    let mut queue = new_sim_queue(&mut medium);
    assert_eq!(pop(&mut queue), None);
    for v in 1..=5 {
        queue.push_back(v).expect("push");
    }
    assert_eq!(values(&queue), [1, 2, 3, 4, 5]);
    assert_eq!(pop(&mut queue), Some(1));
    assert_eq!(pop(&mut queue), Some(2));
    queue.push_back(6).expect("push");
    assert_eq!(values(&queue), [3, 4, 5, 6]);
    let (root, list) = nodes(queue.pool()).expect("nodes");
    assert_eq!(root.tail, list[3].0, "tail is the last node");
    assert!(queue.pool().check().is_consistent());
}

#[test]
fn emptying_and_refilling() {
    let mut medium = SimMedium::new(SIZE, SIZE);
    let mut queue = new_sim_queue(&mut medium);
    for round in 0..3 {
        queue.push_back(round).expect("push");
        let (root, list) = nodes(queue.pool()).expect("nodes");
        assert_eq!((root.head, root.tail), (list[0].0, list[0].0), "one node");
        assert_eq!(pop(&mut queue), Some(round));
        assert_eq!(nodes(queue.pool()).expect("nodes").0, empty_root());
        assert_eq!(pop(&mut queue), None);
        let report = queue.pool().check();
        assert_eq!(report.allocated_blocks, 0, "{report}");
    }
}

#[test]
fn reopening_a_file_keeps_the_queue() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("queue.pool");
    {
        let mut queue = PQueue::open(Pool::create(&path, LAYOUT, 1 << 20)?)?;
        for v in [10, 20, 30] {
            queue.push_back(v)?;
        }
        assert_eq!(queue.pop_front()?, Some(10));
    }
    let mut queue = PQueue::open(Pool::open(&path, LAYOUT)?)?;
    assert_eq!(queue.to_vec()?, [20, 30]);
    queue.push_back(40)?;
    drop(queue);
    let queue = PQueue::open(Pool::open(&path, LAYOUT)?)?;
    assert_eq!(queue.to_vec()?, [20, 30, 40]);
    assert!(queue.pool().check().is_consistent());
    Ok(())
}

#[test]
fn opening_repairs_a_lagging_tail() {
    // What a crash can leave: `tail` one node behind, or null with nodes.
    for stale in [Some(1), None] {
        let mut medium = SimMedium::new(SIZE, SIZE);
        let mut queue = new_sim_queue(&mut medium);
        for v in [1, 2, 3] {
            queue.push_back(v).expect("push");
        }
        let (_, list) = nodes(queue.pool()).expect("nodes");
        let tail_at = queue.pool().root().fields().tail.offset() as usize;
        drop(queue);
        let stale = stale.map_or(PPtr::null(), |i| list[i].0);
        medium.store_u64(tail_at, stale.offset());

        let mut queue = open_queue(&mut medium).expect("open");
        assert_eq!(nodes(queue.pool()).expect("nodes").0.tail, list[2].0);
        queue.push_back(4).expect("push");
        assert_eq!(values(&queue), [1, 2, 3, 4]);
        assert!(queue.pool().check().is_consistent());
    }
}

#[derive(Clone, Copy, Debug)]
enum Op {
    Push(u64),
    Pop,
}

/// The queue after each operation, from `initial`: the states a crash may leave.
fn states(initial: &[u64], ops: &[Op]) -> Vec<Vec<u64>> {
    let mut queue = initial.to_vec();
    let mut states = vec![queue.clone()];
    for op in ops {
        match *op {
            Op::Push(v) => queue.push(v),
            Op::Pop if !queue.is_empty() => drop(queue.remove(0)),
            Op::Pop => {}
        }
        states.push(queue.clone());
    }
    states
}

/// Runs operations on the queue in a medium, returning what the pops gave.
type RunFn = fn(&mut SimMedium, &[Op]) -> Result<Vec<Option<u64>>, Failed>;

fn the_example(m: &mut SimMedium, ops: &[Op]) -> Result<Vec<Option<u64>>, Failed> {
    let mut queue = open_queue(m)?;
    let mut popped = Vec::new();
    for op in ops {
        match *op {
            Op::Push(v) => queue.push_back(v)?,
            Op::Pop => popped.push(queue.pop_front()?),
        }
    }
    Ok(popped)
}

/// Pushes `initial` in set-up, then runs `ops` with `run`. After a crash,
/// recovery opens the pool, and the queue too if `repair`.
fn queue_scenario(initial: Vec<u64>, ops: Vec<Op>, run: RunFn, repair: bool) -> Scenario<'static> {
    let states = states(&initial, &ops);
    let pops: Vec<Option<u64>> = ops
        .iter()
        .zip(&states)
        .filter(|(op, _)| matches!(op, Op::Pop))
        .map(|(_, before)| before.first().copied())
        .collect();
    Scenario::new(SIZE)
        .setup(move |m| {
            let pool = Pool::create_on(m, LAYOUT, empty_root())?;
            let mut queue = PQueue::open(pool)?;
            initial.iter().try_for_each(|&v| queue.push_back(v))?;
            Ok(())
        })
        .run(move |m| {
            let popped = run(m, &ops)?;
            if popped == pops {
                Ok(())
            } else {
                Err(format!("the pops gave {popped:?}, not {pops:?}").into())
            }
        })
        .recover(move |m| {
            if repair {
                open_queue(m)?;
            } else {
                open_pool(m)?;
            }
            Ok(())
        })
        .check(move |m| {
            let pool = open_pool(m)?;
            // No leaked node, no pointer (`tail` included) to freed memory.
            let report = pool.check();
            if !report.is_consistent() {
                return Err(report.to_string().into());
            }
            let (root, list) = nodes(&pool)?;
            let found: Vec<u64> = list.iter().map(|(_, n)| n.value).collect();
            if !states.contains(&found) {
                return Err(format!("the queue holds {found:?}: no state of {states:?}").into());
            }
            let last = list.last().map_or(PPtr::null(), |(at, _)| *at);
            if repair && root.tail != last {
                return Err(format!(
                    "after opening, tail is {:?}, not the last node {last:?}",
                    root.tail
                )
                .into());
            }
            if !root.tail.is_null() && !list.iter().any(|(at, _)| *at == root.tail) {
                return Err(format!("tail {:?} is not a node of the list", root.tail).into());
            }
            // And the queue works: a push lands at the back, nothing leaks.
            let mut queue = PQueue::open(pool)?;
            queue.push_back(u64::MAX)?;
            let after = queue.to_vec()?;
            if after[..after.len() - 1] != found[..] || after.last() != Some(&u64::MAX) {
                return Err(format!("pushing onto {found:?} gave {after:?}").into());
            }
            let report = queue.pool().check();
            if report.is_consistent() {
                Ok(())
            } else {
                Err(format!("after a push: {report}").into())
            }
        })
        .labels(pool_labels::<QueueRoot>)
}

/// Push onto a non-empty queue, pop until empty (the one-element case), pop
/// an empty queue, push onto it, and pop again.
fn workload() -> (Vec<u64>, Vec<Op>) {
    let ops = vec![
        Op::Push(3),
        Op::Pop,
        Op::Pop,
        Op::Pop,
        Op::Pop,
        Op::Push(4),
        Op::Push(5),
        Op::Pop,
    ];
    (vec![1, 2], ops)
}

#[test]
fn the_queue_survives_any_crash() {
    for repair in [true, false] {
        let (initial, ops) = workload();
        let scenario = queue_scenario(initial, ops, the_example, repair);
        for profile in [Profile::X86Adr, Profile::Eadr, Profile::Conservative] {
            let summary = Explorer::new()
                .profile(profile)
                .explore(&scenario)
                .unwrap_or_else(|failure| panic!("{profile:?}, repair {repair}: {failure}"));
            println!("queue, {profile:?}, recovery opens the queue: {repair}: {summary}");
            assert!(summary.crash_points >= 15, "{profile:?}: {summary}");
            assert!(summary.images >= 20, "{profile:?}: {summary}");
            if repair {
                assert!(summary.recovery_images > 0, "{profile:?}: {summary}");
            }
        }
    }
}

/// The wrong order: pops free the node, then move `tail` off it.
fn free_then_move_tail(m: &mut SimMedium, ops: &[Op]) -> Result<Vec<Option<u64>>, Failed> {
    let mut pool = open_pool(m)?;
    let root = pool.root();
    let mut popped = Vec::new();
    for op in ops {
        if !matches!(op, Op::Pop) {
            return Err(format!("{op:?}: only pops here").into());
        }
        let QueueRoot { head, tail } = *pool.get(root)?;
        if head.is_null() {
            popped.push(None);
            continue;
        }
        let Node { value, next } = *pool.get(head)?;
        pool.free_and_publish(root.fields().head, next)?;
        if tail == head {
            pool.set(root.fields().tail, next)?;
        }
        popped.push(Some(value));
    }
    Ok(popped)
}

#[test]
fn the_invariant_catches_a_tail_moved_too_late() {
    for repair in [true, false] {
        let scenario = queue_scenario(
            vec![1, 2],
            vec![Op::Pop, Op::Pop],
            free_then_move_tail,
            repair,
        );
        for profile in [Profile::X86Adr, Profile::Conservative] {
            let failure = Explorer::new()
                .profile(profile)
                .explore(&scenario)
                .expect_err("a tail left on a freed node must be caught");
            assert_eq!(failure.kind, FailureKind::Crash, "{failure}");
            assert!(
                failure.message.contains("not inside an allocated block"),
                "{failure}"
            );
        }
    }
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec(
        prop_oneof![3 => (1u64..1000).prop_map(Op::Push), 2 => Just(Op::Pop)],
        1..9,
    )
}

fn profiles() -> impl Strategy<Value = Profile> {
    prop_oneof![
        Just(Profile::X86Adr),
        Just(Profile::Eadr),
        Just(Profile::Conservative)
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn generated_operations_survive_a_generated_crash(
        crash in crash_choices(),
        profile in profiles(),
        initial in prop::collection::vec(1u64..1000, 0..3),
        ops in ops(),
        repair in any::<bool>(),
    ) {
        Explorer::new().profile(profile)
            .replay(&queue_scenario(initial, ops, the_example, repair), &crash)
            .map_err(|failure| TestCaseError::fail(failure.to_string()))?;
    }
}
