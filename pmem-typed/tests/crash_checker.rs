//! The checker's own verdicts: programs the simulator once got wrong, each
//! missed bug now caught and each false alarm now passed, under the
//! profiles where it applies. One test per way it went wrong: writes
//! through guards in program order, a value overwritten while a guard
//! lives, the end of recovery, the recovery of a crashed recovery, images
//! that differ only in the medium's length, panics, durability promises
//! (milestones), and the flush instruction modelled.

use std::sync::atomic::{Ordering, compiler_fence};

use pmem_typed::sim::{
    CrashChoice, Explorer, Failure, FailureKind, Flush, Profile, Scenario, SimMedium,
};
use pmem_typed::{Medium, PSlice, Persist, Pool};

const PROFILES: [Profile; 3] = [Profile::X86Adr, Profile::Eadr, Profile::Conservative];

/// Offsets of the raw programs, each in its own line.
const FLAG: usize = 0;
const VALUE: usize = 64;

fn verdict(scenario: &Scenario<'_>, explorer: &Explorer) -> Result<(), Failure> {
    explorer.explore(scenario).map(|_| ())
}

#[track_caller]
fn caught_under(scenario: &Scenario<'_>, profile: Profile) -> Failure {
    match verdict(scenario, &Explorer::new().profile(profile)) {
        Err(failure) => {
            eprintln!("{failure}");
            failure
        }
        Ok(()) => panic!("missed under {profile:?}"),
    }
}

#[track_caller]
fn passes_under(scenario: &Scenario<'_>, profile: Profile) {
    if let Err(failure) = verdict(scenario, &Explorer::new().profile(profile)) {
        panic!("false alarm under {profile:?}:\n{failure}");
    }
}

/// Two words in one line of the root: the value and the flag that says it
/// is there.
#[derive(Clone, Copy, Persist)]
#[repr(C)]
struct Published {
    value: u64,
    ready: u64,
}

fn open(m: &mut SimMedium) -> pmem_typed::Result<Pool<Published, &mut SimMedium>> {
    Pool::open_on(m, "checker")
}

/// A pool scenario on `Published`: `run` writes through the pool, the
/// check requires `ready` to imply `value == 42`.
fn published<'a>(
    run: impl Fn(&mut Pool<Published, &mut SimMedium>) -> pmem_typed::Result<()> + Send + Sync + 'a,
) -> Scenario<'a> {
    Scenario::new(64 << 10)
        .setup(|m| {
            Pool::create_on(m, "checker", Published { value: 0, ready: 0 })?;
            Ok(())
        })
        .run(move |m| {
            run(&mut open(m)?)?;
            Ok(())
        })
        .check(|m| {
            let pool = open(m)?;
            match *pool.get(pool.root())? {
                Published { ready: 0, .. } | Published { value: 42, .. } => Ok(()),
                Published { value, .. } => Err(format!("ready, with value {value}").into()),
            }
        })
}

#[test]
fn a_guard_writing_the_flag_before_its_value_in_one_line_is_caught() {
    let flag_first = published(|pool| {
        let mut root = pool.get_mut(pool.root())?;
        root.ready = 1;
        compiler_fence(Ordering::SeqCst);
        root.value = 42;
        Ok(())
    });
    // Program order is what a line keeps under x86 and eADR: the flag
    // without its value is a prefix.
    for profile in PROFILES {
        caught_under(&flag_first, profile);
    }
}

#[test]
fn a_guard_writing_the_value_before_its_flag_in_one_line_passes_where_lines_keep_order() {
    let value_first = published(|pool| {
        let mut root = pool.get_mut(pool.root())?;
        root.value = 42;
        compiler_fence(Ordering::SeqCst);
        root.ready = 1;
        Ok(())
    });
    passes_under(&value_first, Profile::X86Adr);
    passes_under(&value_first, Profile::Eadr);
    // Only the conservative model lets a line keep a later store alone.
    caught_under(&value_first, Profile::Conservative);
}

#[test]
fn one_borrow_is_one_step_whose_stores_have_no_order() {
    // Both stores through one `&mut`: the compiler may reorder them, and
    // the model takes them as unordered, even in one line.
    let one_borrow = published(|pool| {
        let mut root = pool.get_mut(pool.root())?;
        let both = &mut *root;
        both.value = 42;
        both.ready = 1;
        Ok(())
    });
    for profile in PROFILES {
        caught_under(&one_borrow, profile);
    }
}

#[test]
fn disjoint_guards_keep_program_order_across_index_mut() {
    #[derive(Clone, Copy, Persist)]
    #[repr(C)]
    struct Cells {
        cells: PSlice<u64>,
    }
    let scenario = |flag_first: bool| {
        Scenario::new(64 << 10)
            .setup(|m| {
                let mut pool = Pool::create_on(
                    m,
                    "cells",
                    Cells {
                        cells: PSlice::empty(),
                    },
                )?;
                let cells = pool.root().fields().cells;
                pool.alloc_slice(cells, &[0u64, 0])?;
                Ok(())
            })
            .run(move |m| {
                let mut pool = Pool::<Cells, _>::open_on(m, "cells")?;
                let cells = pool.get(pool.root())?.cells;
                let (value, ready) = (cells.at(0).ok_or("empty")?, cells.at(1).ok_or("empty")?);
                assert_eq!(value.offset() / 64, ready.offset() / 64, "one line");
                let mut both = pool.get_disjoint_mut([value, ready])?;
                if flag_first {
                    both[1] = 1;
                    compiler_fence(Ordering::SeqCst);
                    both[0] = 42;
                } else {
                    both[0] = 42;
                    compiler_fence(Ordering::SeqCst);
                    both[1] = 1;
                }
                Ok(())
            })
            .check(|m| {
                let pool = Pool::<Cells, _>::open_on(m, "cells")?;
                let cells = pool.get(pool.root())?.cells;
                match pool.get_slice(cells)? {
                    [_, 0] | [42, 1] => Ok(()),
                    other => Err(format!("cells {other:?}").into()),
                }
            })
    };
    for profile in PROFILES {
        caught_under(&scenario(true), profile);
    }
    passes_under(&scenario(false), Profile::X86Adr);
    passes_under(&scenario(false), Profile::Eadr);
}

#[test]
fn a_tentative_value_overwritten_while_the_guard_lives_can_persist() {
    // `ready = 1` is tentative and reverted before the guard persists; the
    // hardware may write the line back in between.
    let tentative = published(|pool| {
        let mut root = pool.get_mut(pool.root())?;
        root.ready = 1;
        compiler_fence(Ordering::SeqCst);
        root.ready = 0;
        compiler_fence(Ordering::SeqCst);
        root.value = 7;
        Ok(())
    });
    for profile in PROFILES {
        let failure = caught_under(&tentative, profile);
        assert!(failure.message.contains("ready, with value"), "{failure}");
    }
}

/// `run` leaves a record to apply (`FLAG` = 1); `recover` applies it:
/// `VALUE` = 42, then clears the flag. `fence` says whether recovery fences
/// between them (it never fences at its end).
fn apply_on_recovery(fence: bool) -> Scenario<'static> {
    Scenario::new(4096)
        .run(|m| {
            m.store_u64(FLAG, 1);
            m.persist(FLAG, 8);
            m.milestone("record left");
            Ok(())
        })
        .recover(move |m| {
            if m.read_u64(FLAG) == 1 {
                m.store_u64(VALUE, 42);
                m.flush_range(VALUE, 8);
                if fence {
                    m.sfence();
                }
                m.store_u64(FLAG, 0);
                m.flush_range(FLAG, 8);
            }
            Ok(())
        })
        .check(|m| match (m.read_u64(FLAG), m.read_u64(VALUE)) {
            (1, _) | (0, 42) => Ok(()),
            (0, 0) if !m.reached("record left") => Ok(()),
            (flag, value) => Err(format!("flag {flag}, value {value}").into()),
        })
}

#[test]
fn a_recovery_that_flushes_but_never_fences_is_crashed_at_its_end() {
    // The run's crash images: the flag set or not. Recovery then flushes
    // both lines without a fence: a crash at its very end can keep the
    // cleared flag and lose the value.
    let unfenced = apply_on_recovery(false);
    for profile in [Profile::X86Adr, Profile::Conservative] {
        let failure = caught_under(&unfenced, profile);
        assert_eq!(failure.recovery_points.len(), 1, "{failure}");
        assert!(
            failure.to_string().contains("during recovery (depth 1)"),
            "{failure}"
        );
    }
    // Under eADR a store is durable once made; under CLFLUSH a flush is.
    passes_under(&unfenced, Profile::Eadr);
    let clflush = Explorer::new().flush(Flush::Clflush);
    assert!(verdict(&unfenced, &clflush).is_ok());
    for profile in PROFILES {
        passes_under(&apply_on_recovery(true), profile);
    }
}

/// A recovery in phases (`FLAG`): 1 after the workload, 2 once recovery
/// started, 3 once a resumed recovery started. Each path writes the
/// absolute value, except (if `buggy`) the one for a recovery resumed twice.
fn phased_recovery(buggy: bool) -> Scenario<'static> {
    Scenario::new(4096)
        .run(|m| {
            m.store_u64(FLAG, 1);
            m.persist(FLAG, 8);
            Ok(())
        })
        .recover(move |m| {
            let phase = m.read_u64(FLAG);
            if phase == 0 {
                return Ok(());
            }
            if phase < 3 {
                m.store_u64(FLAG, phase + 1);
                m.persist(FLAG, 8);
            }
            if phase == 3 && buggy {
                let count = m.read_u64(VALUE);
                m.store_u64(VALUE, count + 1);
            } else {
                m.store_u64(VALUE, 10);
            }
            m.persist(VALUE, 8);
            m.store_u64(FLAG, 0);
            m.persist(FLAG, 8);
            Ok(())
        })
        .check(|m| match m.read_u64(VALUE) {
            0 | 10 => Ok(()),
            n => Err(format!("count {n}").into()),
        })
}

#[test]
fn a_failure_two_recoveries_deep_is_found_and_says_its_depth() {
    let failure = caught_under(&phased_recovery(true), Profile::X86Adr);
    assert_eq!(failure.recovery_points.len(), 2, "{failure}");
    let report = failure.to_string();
    assert!(report.contains("recovery (depth 1)"), "{report}");
    assert!(report.contains("recovery (depth 2)"), "{report}");
    let choice = failure.replay.clone().expect("a replay");
    assert_eq!(choice.depth(), 2);
    let again = Explorer::new()
        .replay(&phased_recovery(true), &choice)
        .expect_err("the replay fails the same way");
    assert_eq!(again.message, failure.message);

    // One level deep, the bug is out of reach; the fixed twin passes at both depths.
    let shallow = Explorer::new().recovery_depth(1);
    assert!(verdict(&phased_recovery(true), &shallow).is_ok());
    for profile in PROFILES {
        passes_under(&phased_recovery(false), profile);
    }
}

/// Setup writes a header (`FLAG`) of 4096 bytes; the run grows the medium
/// to 8192 and then records the new length. The check wants the header to
/// match the medium; `repair` is a recovery that fixes the header up.
fn grown(repair: bool) -> Scenario<'static> {
    Scenario::new(4096)
        .capacity(8192)
        .setup(|m| {
            m.store_u64(FLAG, 4096);
            m.persist(FLAG, 8);
            Ok(())
        })
        .run(|m| {
            m.sfence(); // a crash point before the growth
            m.grow(8192)?;
            m.store_u64(FLAG, 8192);
            m.persist(FLAG, 8);
            Ok(())
        })
        .recover(move |m| {
            if repair && m.read_u64(FLAG) != m.len() as u64 {
                m.store_u64(FLAG, m.len() as u64);
                m.persist(FLAG, 8);
            }
            Ok(())
        })
        .check(|m| match m.read_u64(FLAG) {
            header if header == m.len() as u64 => Ok(()),
            header => Err(format!("header says {header} bytes, the medium has {}", m.len()).into()),
        })
}

#[test]
fn images_that_differ_only_in_the_mediums_length_are_checked_apart() {
    // The grown image with the old header has the same bytes as the image
    // before the growth: only its length tells them apart.
    for profile in [Profile::X86Adr, Profile::Conservative] {
        let failure = caught_under(&grown(false), profile);
        assert_eq!(
            failure.image.as_ref().map(|i| i.len()),
            Some(8192),
            "{failure}"
        );
        assert!(
            failure
                .message
                .contains("header says 4096 bytes, the medium has 8192")
        );
    }
    for profile in PROFILES {
        passes_under(&grown(true), profile);
    }
}

/// A (start, end) range published as two words in one line, with one fence.
fn torn_range() -> Scenario<'static> {
    Scenario::new(4096).run(|m| {
        m.store_u64(FLAG, 8);
        m.store_u64(FLAG + 8, 16);
        m.persist(FLAG, 16);
        Ok(())
    })
}

fn range(m: &SimMedium) -> std::ops::Range<usize> {
    m.read_u64(FLAG) as usize..m.read_u64(FLAG + 8) as usize
}

#[test]
fn a_recovery_that_panics_is_a_failure_with_its_image_and_replay() {
    let scenario = torn_range().recover(|m| {
        let buffer = [0u8; 16];
        let _ = &buffer[range(m)]; // panics on a start without its end
        Ok(())
    });
    let failure = caught_under(&scenario, Profile::X86Adr);
    assert_eq!(failure.kind, FailureKind::Crash);
    assert!(
        failure
            .message
            .starts_with("recovery panicked: slice index starts at 8 but ends at 0"),
        "{failure}"
    );
    let image = failure.image.as_deref().expect("the image");
    assert_eq!(
        image[..16],
        [8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
    );
    let choice = failure.replay.clone().expect("a replay");
    let again = Explorer::new()
        .replay(&scenario, &choice)
        .expect_err("replays");
    assert_eq!(again.message, failure.message);
}

#[test]
fn a_check_that_panics_is_a_failure_too() {
    let scenario = torn_range().check(|m| {
        let buffer = [0u8; 16];
        let _ = &buffer[range(m)];
        Ok(())
    });
    let failure = caught_under(&scenario, Profile::Conservative);
    assert!(
        failure.message.starts_with("the check panicked: "),
        "{failure}"
    );
    assert!(failure.replay.is_some());
}

#[test]
fn a_workload_that_panics_is_reported_without_a_crash() {
    let scenario = Scenario::new(4096).run(|_| panic!("out of ideas"));
    let failure = verdict(&scenario, &Explorer::new()).expect_err("panics");
    assert_eq!(failure.kind, FailureKind::Program);
    assert_eq!(failure.message, "the workload panicked: out of ideas");
}

/// Inserts `values` into a log (entry `i` at `VALUE + 8 * i`), marking
/// "insert i returned" after each; `early` marks it after the flush but
/// before the fence.
fn inserts(values: &'static [u64], early: bool) -> Scenario<'static> {
    Scenario::new(4096)
        .run(move |m| {
            for (i, &value) in values.iter().enumerate() {
                m.store_u64(VALUE + 64 * i, value);
                m.flush_range(VALUE + 64 * i, 8);
                if early {
                    m.milestone(format!("insert {i} returned"));
                }
                m.sfence();
                if !early {
                    m.milestone(format!("insert {i} returned"));
                }
            }
            Ok(())
        })
        .check(move |m| {
            for (i, &value) in values.iter().enumerate() {
                if m.reached(&format!("insert {i} returned")) && m.read_u64(VALUE + 64 * i) != value
                {
                    return Err(format!("insert {i} returned, but its value is lost").into());
                }
            }
            Ok(())
        })
}

#[test]
fn a_durability_promise_broken_by_returning_before_the_fence_is_caught() {
    const VALUES: &[u64] = &[5, 6];
    for profile in [Profile::X86Adr, Profile::Conservative] {
        let failure = caught_under(&inserts(VALUES, true), profile);
        assert_eq!(
            failure.message,
            "invariant violated: insert 0 returned, but its value is lost"
        );
        let point = failure.point.as_deref().expect("a crash point");
        assert_eq!(point.milestone.as_deref(), Some("insert 0 returned"));
        assert!(
            failure
                .to_string()
                .contains("past milestone \"insert 0 returned\""),
            "{failure}"
        );
    }
    // Under eADR the store was durable before the insert returned.
    passes_under(&inserts(VALUES, true), Profile::Eadr);
    for profile in PROFILES {
        passes_under(&inserts(VALUES, false), profile);
    }
}

#[test]
fn milestones_reached_are_those_before_the_crash() {
    let seen = std::sync::Mutex::new(std::collections::BTreeSet::new());
    let scenario = inserts(&[1, 2], true).check(|m| {
        seen.lock().unwrap().insert(m.milestones_reached());
        Ok(())
    });
    // The crash before the first fence comes after the first milestone.
    Explorer::new()
        .replay(&scenario, &CrashChoice::new(0, vec![]))
        .expect("passes");
    let first = vec!["insert 0 returned".to_owned()];
    assert_eq!(*seen.lock().unwrap(), [first.clone()].into());
    // Exploring adds the crash before the second fence, and no crash at all.
    Explorer::new().explore(&scenario).expect("passes");
    drop(scenario);
    let both = vec![first[0].clone(), "insert 1 returned".to_owned()];
    assert_eq!(seen.into_inner().unwrap(), [first, both].into());
}

/// The value flushed, then the flag stored and flushed, one fence for both:
/// right only where a flush is durable on its own (CLFLUSH).
fn ordered_by_clflush() -> Scenario<'static> {
    Scenario::new(4096)
        .run(|m| {
            m.store_u64(VALUE, 42);
            m.flush_range(VALUE, 8);
            m.store_u64(FLAG, 1);
            m.flush_range(FLAG, 8);
            m.sfence();
            Ok(())
        })
        .check(|m| match (m.read_u64(FLAG), m.read_u64(VALUE)) {
            (0, _) | (1, 42) => Ok(()),
            (flag, value) => Err(format!("flag {flag}, value {value}").into()),
        })
}

#[test]
fn the_flush_instruction_modelled_decides_what_a_flush_orders() {
    let clwb = Explorer::new().flush(Flush::Clwb);
    let failure = verdict(&ordered_by_clflush(), &clwb).expect_err("CLWB orders nothing");
    assert!(
        !failure.to_string().contains(".flush("),
        "the default is not spelled out"
    );
    let clflush = Explorer::new().flush(Flush::Clflush);
    assert!(verdict(&ordered_by_clflush(), &clflush).is_ok());
    // Under CLFLUSH an unflushed store is still lost, and the replay says
    // which flush the failure needs.
    let missing_flush = Scenario::new(4096)
        .run(|m| {
            m.store_u64(VALUE, 42);
            m.store_u64(FLAG, 1);
            m.flush_range(FLAG, 8);
            m.sfence();
            m.flush_range(VALUE, 8);
            m.sfence();
            Ok(())
        })
        .check(|m| match (m.read_u64(FLAG), m.read_u64(VALUE)) {
            (0, _) | (1, 42) => Ok(()),
            (flag, value) => Err(format!("flag {flag}, value {value}").into()),
        });
    let failure = verdict(&missing_flush, &clflush).expect_err("the value is not flushed");
    assert!(
        failure.to_string().contains(".flush(Flush::Clflush)"),
        "{failure}"
    );
}

#[test]
fn a_recovery_point_sampled_over_the_budget_is_counted() {
    // Recovery copies a whole line in one step: 2^8 images at its fence.
    let scenario = Scenario::new(4096)
        .run(|m| {
            m.store_u64(FLAG, 1);
            m.persist(FLAG, 8);
            Ok(())
        })
        .recover(|m| {
            if m.read_u64(FLAG) == 1 {
                m.store(VALUE, &[7; 64]);
                m.persist(VALUE, 64);
                m.store_u64(FLAG, 0);
                m.persist(FLAG, 8);
            }
            Ok(())
        });
    let sampled = Explorer::new().explore(&scenario).expect("passes");
    assert!(sampled.sampled_recovery_points > 0, "{sampled}");
    assert!(sampled.to_string().contains("recovery points sampled"));
    let all = Explorer::new()
        .recovery_budget(256)
        .explore(&scenario)
        .expect("passes");
    assert_eq!(all.sampled_recovery_points, 0, "{all}");
    assert!(all.recovery_images > sampled.recovery_images);
}
