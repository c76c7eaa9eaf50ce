//! Crash images checked per second by the simulator.
//!
//! Each benchmark explores one scenario on a 64 KiB pool under the x86 ADR
//! profile: the workload is recorded once, then every crash image (within
//! the default budget per crash point) is recovered and checked, including
//! crashes during recovery. The throughput counts images, both kinds.
//!
//! - `list`: 16 allocations publishing list nodes and a guard update per
//!   node; the invariant opens the pool and runs `Pool::check` (a full
//!   reachability walk) plus a list walk.
//! - `list_depth_1`: the same, crashing recovery but not the recovery of a
//!   crashed recovery (the default crashes both): what the second level
//!   costs.
//! - `raw`: a log of 64 appends on the raw medium, with an invariant that
//!   reads the log; this is the simulator's own cost with a cheap program.
//!
//! Target (issue): at least 100,000 images per second on a 64 KiB pool on
//! the 2-core machine.

use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use pmem_typed::sim::{Explorer, Scenario, SimMedium};
use pmem_typed::{PPtr, Persist, Pool};

#[derive(Clone, Copy, Persist)]
#[repr(C)]
struct Root {
    head: PPtr<Node>,
    count: u64,
}

#[derive(Clone, Copy, Persist)]
#[repr(C)]
struct Node {
    value: u64,
    next: PPtr<Node>,
    pad: [u64; 6],
}

fn open(m: &mut SimMedium) -> pmem_typed::Result<Pool<Root, &mut SimMedium>> {
    Pool::open_on(m, "bench")
}

fn list_scenario() -> Scenario<'static> {
    Scenario::new(64 * 1024)
        .setup(|m| {
            Pool::create_on(
                m,
                "bench",
                Root {
                    head: PPtr::null(),
                    count: 0,
                },
            )?;
            Ok(())
        })
        .run(|m| {
            let mut pool = open(m)?;
            let root = pool.root();
            for v in 0..16 {
                let head = pool.get(root)?.head;
                pool.alloc(
                    root.fields().head,
                    Node {
                        value: v,
                        next: head,
                        pad: [v; 6],
                    },
                )?;
                pool.get_mut(root)?.count += 1;
            }
            Ok(())
        })
        .recover(|m| {
            open(m)?;
            Ok(())
        })
        .check(|m| {
            let pool = open(m)?;
            let report = pool.check();
            if !report.is_consistent() {
                return Err(report.to_string().into());
            }
            let mut at = pool.get(pool.root())?.head;
            while !at.is_null() {
                let node = pool.get(at)?;
                if node.pad != [node.value; 6] {
                    return Err("torn node".into());
                }
                at = node.next;
            }
            Ok(())
        })
}

fn raw_scenario() -> Scenario<'static> {
    Scenario::new(64 * 1024)
        .run(|m| {
            for i in 0..64usize {
                m.store_u64(64 + 64 * i, 1000 + i as u64);
                m.flush_range(64 + 64 * i, 8);
                m.sfence();
                m.store_u64(0, i as u64 + 1);
                m.flush_range(0, 8);
                m.sfence();
            }
            Ok(())
        })
        .check(|m| {
            let len = m.read_u64(0) as usize;
            (0..len).try_for_each(|i| {
                if m.read_u64(64 + 64 * i) == 1000 + i as u64 {
                    Ok(())
                } else {
                    Err(format!("entry {i}").into())
                }
            })
        })
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("sim_images");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(5));
    let default = Explorer::default();
    let shallow = Explorer::default().recovery_depth(1);
    for (name, scenario, explorer) in [
        ("list", list_scenario(), default.clone()),
        ("list_depth_1", list_scenario(), shallow),
        ("raw", raw_scenario(), default),
    ] {
        let summary = explorer
            .explore(&scenario)
            .unwrap_or_else(|f| panic!("{f}"));
        let images = (summary.images + summary.recovery_images) as u64;
        println!("{name}: {summary}");
        group.throughput(Throughput::Elements(images));
        group.bench_function(name, |b| {
            b.iter(|| explorer.explore(&scenario).map(|s| s.images))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
