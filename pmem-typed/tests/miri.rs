//! End-to-end runs small enough for Miri, which checks them for undefined
//! behaviour: `cargo +nightly miri test -p pmem-typed --features sim --test miri`
//! (CI runs it, with the unit tests and `guard` and `pointers`). Each also
//! runs as an ordinary test.
//!
//! They cover what the unit tests cannot: a pool on the simulated medium
//! handing out references and guards while the medium compares its memory,
//! and the explorer's worker threads each recovering and checking crash
//! images through pools of their own.

use pmem_typed::sim::{Explorer, Profile, Scenario, SimMedium};
use pmem_typed::{PPtr, Persist, Pool};

#[derive(Clone, Copy, Debug, Persist)]
#[repr(C)]
struct Root {
    head: PPtr<Node>,
    count: u64,
}

#[derive(Clone, Copy, Debug, Persist)]
#[repr(C)]
struct Node {
    value: u64,
    next: PPtr<Node>,
}

const LAYOUT: &str = "miri";
const SIZE: usize = 64 << 10;

fn empty() -> Root {
    Root {
        head: PPtr::null(),
        count: 0,
    }
}

#[test]
fn references_guards_and_the_simulator_together() {
    let medium = SimMedium::new(SIZE, SIZE);
    let mut pool = Pool::create_on(medium, LAYOUT, empty()).expect("create");
    let head = pool.root().fields().head;
    let first = pool
        .alloc(
            head,
            Node {
                value: 1,
                next: PPtr::null(),
            },
        )
        .expect("alloc");
    let second = pool
        .alloc(
            head,
            Node {
                value: 2,
                next: first,
            },
        )
        .expect("alloc");
    {
        // Two guards' worth of `&mut`, used across each other's lifetime.
        let mut both = pool.get_disjoint_mut([first, second]).expect("disjoint");
        let [a, b] = both.each_mut();
        std::mem::swap(&mut a.value, &mut b.value);
        both.persist();
        both[0].value += 10;
    }
    {
        let mut root = pool.get_mut(pool.root()).expect("root");
        root.count += 1;
        root.persist();
        root.count += 1;
    }
    // Shared references while the medium is read through the pool.
    let (a, b) = (pool.get(first).expect("a"), pool.get(second).expect("b"));
    let image = pool.medium().live();
    assert_eq!((a.value, b.value), (12, 1));
    let copy = Pool::<Root, _>::open_on(SimMedium::from_image(&image, SIZE), LAYOUT)
        .expect("reopen a copy");
    assert_eq!(copy.get(copy.root()).expect("root").count, 2);
    pool.free_and_publish(head, first).expect("pop");
    assert!(pool.check().is_consistent());
}

#[test]
fn the_explorer_checks_a_pool_protocol_on_worker_threads() {
    let scenario = Scenario::new(SIZE)
        .setup(|m| {
            Pool::create_on(m, LAYOUT, empty())?;
            Ok(())
        })
        .run(|m| {
            let mut pool = Pool::<Root, _>::open_on(m, LAYOUT)?;
            let head = pool.root().fields().head;
            let node = pool.alloc(
                head,
                Node {
                    value: 7,
                    next: PPtr::null(),
                },
            )?;
            pool.get_mut(node)?.value = 8;
            Ok(())
        })
        .recover(|m| {
            Pool::<Root, _>::open_on(m, LAYOUT)?;
            Ok(())
        })
        .check(|m| {
            let pool = Pool::<Root, _>::open_on(m, LAYOUT)?;
            let head = pool.get(pool.root())?.head;
            if !head.is_null() && ![7, 8].contains(&pool.get(head)?.value) {
                return Err("a published node without its value".into());
            }
            if !pool.check().is_consistent() {
                return Err(pool.check().to_string().into());
            }
            Ok(())
        });
    let explorer = Explorer::new()
        .profile(Profile::X86Adr)
        .threads(2)
        .budget(8)
        .recovery_budget(2);
    let summary = explorer
        .explore(&scenario)
        .unwrap_or_else(|failure| panic!("{failure}"));
    assert!(summary.images > 1, "{summary}");
}
