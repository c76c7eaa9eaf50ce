//! The quick start's data and update (examples/quickstart/guestbook.rs): the
//! state carries over between opens; and crash consistency under the crash
//! simulator: after any crash, the counter says `r` runs completed and the
//! record is run `r`'s, or (while run `r + 1` was writing it) a mix of run
//! `r`'s and run `r + 1`'s, 8 bytes at a time. Never older than the counter.

#[path = "../examples/quickstart/guestbook.rs"]
mod guestbook;

use guestbook::{LAYOUT, Root, Visitor, name_bytes, visit};
use pmem::typed::Pool;
use pmem::typed::sim::proptest::crash_choices;
use pmem::typed::sim::{
    Explorer, FailureKind, Profile, Scenario, SimMedium, StepResult, Summary, pool_labels,
};
use proptest::prelude::*;

const SIZE: usize = 64 * 1024;

/// A pool on a scenario step's medium, borrowed for the step.
type SimPool<'m> = Pool<Root, &'m mut SimMedium>;

fn zero_root() -> Root {
    Root {
        runs: 0,
        visitor: Visitor {
            name: [0; 32],
            visits: 0,
            last_visit: 0,
        },
    }
}

#[test]
fn the_state_carries_over_between_opens() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("quickstart.pool");
    {
        let mut pool = Pool::<Root>::create(&path, LAYOUT, 1 << 20)?;
        let before = visit(&mut pool, "ada", 100)?;
        assert_eq!(before, zero_root());
    }
    let mut pool = Pool::<Root>::open(&path, LAYOUT)?;
    let before = visit(&mut pool, "ada", 160)?;
    assert_eq!((before.runs, before.visitor.visits), (1, 1));
    assert_eq!(before.visitor.last_visit, 100);
    assert_eq!(before.visitor.name(), "ada");
    let before = visit(&mut pool, "bob", 200)?;
    assert_eq!((before.runs, before.visitor.visits), (2, 2));
    drop(pool);

    let pool = Pool::<Root>::open(&path, LAYOUT)?;
    let root = *pool.get(pool.root())?;
    assert_eq!(root.runs, 3);
    assert_eq!(root.visitor.name(), "bob");
    assert_eq!((root.visitor.visits, root.visitor.last_visit), (1, 200));
    Ok(())
}

#[test]
fn long_names_are_cut_at_a_character_boundary() {
    let name = "é".repeat(20); // 40 bytes
    let visitor = Visitor {
        name: name_bytes(&name),
        visits: 1,
        last_visit: 0,
    };
    assert_eq!(visitor.name(), "é".repeat(16));
    // 31 bytes of 'a' and a two-byte 'é': the 'é' does not fit.
    let name = format!("{}é", "a".repeat(31));
    assert_eq!(name_bytes(&name)[31], 0);
}

/// The root after each run (`states[i]` after `i` runs): worked out here,
/// not with the code under test.
fn states(visits: &[(&str, u64)]) -> Vec<Root> {
    let mut root = zero_root();
    let mut states = vec![root];
    for &(name, now) in visits {
        let name = name_bytes(name);
        root.visitor.visits = if root.visitor.name == name {
            root.visitor.visits + 1
        } else {
            1
        };
        root.visitor.name = name;
        root.visitor.last_visit = now;
        root.runs += 1;
        states.push(root);
    }
    states
}

/// The invariant: the counter `r` is a state's, and each 8 bytes of the
/// record are run `r`'s or run `r + 1`'s.
fn consistent(root: &Root, states: &[Root]) -> Result<(), String> {
    let r = root.runs as usize;
    let done = states
        .get(r)
        .ok_or_else(|| format!("{r} runs counted, {} made", states.len() - 1))?;
    let next = states.get(r + 1).unwrap_or(done);
    let words = |v: &Visitor| -> Vec<u64> {
        let name = v.name.chunks_exact(8);
        name.map(|w| u64::from_le_bytes(w.try_into().unwrap_or_default()))
            .chain([v.visits, v.last_visit])
            .collect()
    };
    let (found, old, new) = (
        words(&root.visitor),
        words(&done.visitor),
        words(&next.visitor),
    );
    for (i, word) in found.iter().enumerate() {
        if *word != old[i] && *word != new[i] {
            return Err(format!(
                "after {r} runs the record is {}: neither run {r}'s {} nor the next one's {}",
                describe(&root.visitor),
                describe(&done.visitor),
                describe(&next.visitor)
            ));
        }
    }
    Ok(())
}

fn describe(v: &Visitor) -> String {
    format!(
        "{{name {:?}, visits {}, last visit {}}}",
        v.name(),
        v.visits,
        v.last_visit
    )
}

fn open(m: &mut SimMedium) -> pmem::typed::Result<SimPool<'_>> {
    Pool::open_on(m, LAYOUT)
}

/// One run's update: the example's, or a broken one.
type VisitFn = fn(&mut SimPool<'_>, &str, u64) -> StepResult;

/// Runs `visits` one after the other on a pool created in set-up.
fn quickstart_scenario(visits: Vec<(&'static str, u64)>, run: VisitFn) -> Scenario<'static> {
    let states = states(&visits);
    Scenario::new(SIZE)
        .setup(|m| {
            Pool::create_on(m, LAYOUT, zero_root())?;
            Ok(())
        })
        .run(move |m| {
            let mut pool = open(m)?;
            visits
                .iter()
                .try_for_each(|&(name, now)| run(&mut pool, name, now))
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
            consistent(pool.get(pool.root())?, &states)?;
            Ok(())
        })
        .labels(pool_labels::<Root>)
}

fn the_example(pool: &mut SimPool<'_>, name: &str, now: u64) -> StepResult {
    visit(pool, name, now)?;
    Ok(())
}

const WORKLOAD: [(&str, u64); 4] = [
    ("ada", 100),
    ("ada", 160),
    ("a visitor with a long name", 200),
    ("ada", 300),
];

#[test]
fn counter_and_record_survive_any_crash() {
    let scenario = quickstart_scenario(WORKLOAD.to_vec(), the_example);
    for profile in [Profile::X86Adr, Profile::Eadr, Profile::Conservative] {
        let summary: Summary = Explorer::new()
            .profile(profile)
            .explore(&scenario)
            .unwrap_or_else(|failure| panic!("{profile:?}: {failure}"));
        println!("quickstart, {profile:?}: {summary}");
        // Two fences per run (the guard's and the counter's), and more
        // than one image each.
        assert!(summary.crash_points >= 8, "{profile:?}: {summary}");
        assert!(summary.images >= 8, "{profile:?}: {summary}");
    }
}

/// The wrong order: the counter first, then the record.
fn counter_first(pool: &mut SimPool<'_>, name: &str, now: u64) -> StepResult {
    let root = pool.root();
    let runs = pool.get(root)?.runs;
    pool.set(root.fields().runs, runs + 1)?;
    let mut visitor = pool.get_mut(root.fields().visitor)?;
    let name = name_bytes(name);
    visitor.visits = if visitor.name == name {
        visitor.visits + 1
    } else {
        1
    };
    visitor.name = name;
    visitor.last_visit = now;
    Ok(())
}

#[test]
fn the_invariant_catches_a_counter_bumped_first() {
    let scenario = quickstart_scenario(WORKLOAD.to_vec(), counter_first);
    for profile in [Profile::X86Adr, Profile::Conservative] {
        let failure = Explorer::new()
            .profile(profile)
            .explore(&scenario)
            .expect_err("a counter bumped before the record must be caught");
        assert_eq!(failure.kind, FailureKind::Crash, "{failure}");
        assert!(failure.message.contains("neither"), "{failure}");
    }
}

const NAMES: [&str; 3] = ["ada", "bob", "a visitor with a name of 32 bytes"];

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
    fn generated_runs_survive_a_generated_crash(
        crash in crash_choices(),
        profile in profiles(),
        runs in prop::collection::vec((0..NAMES.len(), 1u64..1000), 1..6),
    ) {
        let mut now = 0;
        let visits = runs
            .into_iter()
            .map(|(name, gap)| {
                now += gap;
                (NAMES[name], now)
            })
            .collect();
        Explorer::new().profile(profile)
            .replay(&quickstart_scenario(visits, the_example), &crash)
            .map_err(|failure| TestCaseError::fail(failure.to_string()))?;
    }
}
