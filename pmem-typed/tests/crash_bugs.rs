//! The crash simulator's teeth: deliberately wrong persistence code, each
//! with its fixed twin. Every wrong program must be caught, with the report
//! naming the line (and field) that broke; every twin must pass under the
//! profile it targets.
//!
//! The bugs are those of `crash-model.md`: missing flush, missing fence,
//! pointer published before its object, torn 16-byte update, flush range
//! that misses the last line, reliance on same-line ordering, non-temporal
//! stores without a fence, recovery that writes without persisting, a hash
//! table's valid token set first, a log's length bumped first; plus an
//! unaligned 8-byte store torn by the compiler.

use pmem_typed::sim::{Explorer, Failure, Profile, Scenario, SimMedium, pool_labels};
use pmem_typed::{PPtr, Persist, Pool};

/// Offsets used by the raw programs: each in its own cache line unless a
/// bug needs otherwise.
const FLAG: usize = 0;
const VALUE: usize = 64;
const FAR: usize = 256;

fn labels(_: &[u8], offset: usize) -> Option<String> {
    Some(
        match offset {
            0 => "flag",
            64 => "value",
            128 => "second value line",
            256 => "far flag",
            _ => return None,
        }
        .into(),
    )
}

/// A raw program on a 4 KiB medium, checked with `invariant` (which only
/// reads the medium).
fn raw<'a>(
    run: impl Fn(&mut SimMedium) + Send + Sync + 'a,
    invariant: impl Fn(&SimMedium) -> Result<(), String> + Send + Sync + 'a,
) -> Scenario<'a> {
    Scenario::new(4096)
        .run(move |m| {
            run(m);
            Ok(())
        })
        .check(move |m| Ok(invariant(m)?))
        .labels(labels)
}

fn flag_implies_value(m: &SimMedium) -> Result<(), String> {
    match (m.read_u64(FLAG), m.read_u64(VALUE)) {
        (1, 42) | (0, _) => Ok(()),
        (flag, value) => Err(format!("flag is {flag} but value is {value}")),
    }
}

/// Explores `scenario` under `profile` and returns the failure it must find.
#[track_caller]
fn caught(scenario: &Scenario<'_>, profile: Profile) -> Failure {
    match Explorer::new().profile(profile).explore(scenario) {
        Err(failure) => {
            let report = failure.to_string();
            // Shown with `--nocapture`: what a person reading a failure sees.
            eprintln!("{report}");
            assert!(
                report.contains("crash point"),
                "the report names the crash point:\n{report}"
            );
            assert!(
                report.contains("replay:"),
                "the report says how to replay:\n{report}"
            );
            failure
        }
        Ok(summary) => panic!("the bug was not caught ({summary})"),
    }
}

#[track_caller]
fn passes(scenario: &Scenario<'_>, profile: Profile) {
    if let Err(failure) = Explorer::new().profile(profile).explore(scenario) {
        panic!("false positive under {profile:?}:\n{failure}");
    }
}

/// Asserts the report says line `offset` (its label containing `label`) was lost (no
/// pending store kept) or kept.
#[track_caller]
fn names_line(failure: &Failure, offset: usize, label: &str, lost: bool) {
    let point = failure
        .point
        .as_deref()
        .or(failure.recovery_points.first())
        .expect("a crash point");
    let line = point
        .lines
        .iter()
        .find(|l| l.offset == offset)
        .unwrap_or_else(|| panic!("line {offset:#x} not named:\n{failure}"));
    assert!(
        line.label.as_deref().is_some_and(|l| l.contains(label)),
        "line {offset:#x} is not `{label}`:\n{failure}"
    );
    assert_eq!(
        line.kept == 0,
        lost,
        "line {offset:#x} should be {}:\n{failure}",
        if lost { "lost" } else { "kept" }
    );
    assert!(failure.to_string().contains(label), "{failure}");
}

#[test]
fn missing_flush() {
    let wrong = raw(
        |m| {
            m.store_u64(VALUE, 42);
            m.sfence(); // the value's line was never flushed
            m.store_u64(FLAG, 1);
            m.flush_range(FLAG, 8);
            m.sfence();
        },
        flag_implies_value,
    );
    let failure = caught(&wrong, Profile::X86Adr);
    names_line(&failure, VALUE, "value", true);
    names_line(&failure, FLAG, "flag", false);

    let fixed = raw(
        |m| {
            m.store_u64(VALUE, 42);
            m.flush_range(VALUE, 8);
            m.sfence();
            m.store_u64(FLAG, 1);
            m.flush_range(FLAG, 8);
            m.sfence();
        },
        flag_implies_value,
    );
    passes(&fixed, Profile::X86Adr);
    passes(&fixed, Profile::Conservative);
}

#[test]
fn missing_fence() {
    let wrong = raw(
        |m| {
            m.store_u64(VALUE, 42);
            m.flush_range(VALUE, 8); // flushed, but nothing waits for it
            m.store_u64(FLAG, 1);
            m.flush_range(FLAG, 8);
            m.sfence();
        },
        flag_implies_value,
    );
    names_line(&caught(&wrong, Profile::X86Adr), VALUE, "value", true);

    let fixed = raw(
        |m| {
            m.store_u64(VALUE, 42);
            m.flush_range(VALUE, 8);
            m.sfence();
            m.store_u64(FLAG, 1);
            m.flush_range(FLAG, 8);
            m.sfence();
        },
        flag_implies_value,
    );
    passes(&fixed, Profile::X86Adr);
}

#[derive(Clone, Copy, Persist)]
#[repr(C)]
struct ListRoot {
    head: PPtr<Item>,
    spare: PPtr<Item>,
}

#[derive(Clone, Copy, Persist)]
#[repr(C)]
struct Item {
    value: u64,
    check: u64,
}

/// The publish scenario's pool, on the step's medium.
fn open(m: &mut SimMedium) -> pmem_typed::Result<Pool<ListRoot, &mut SimMedium>> {
    Pool::open_on(m, "bugs")
}

/// A pool scenario: `spare` holds an allocated zeroed item; `run` fills it
/// and publishes it into `head`.
fn publish_scenario<'a>(persist_first: bool) -> Scenario<'a> {
    Scenario::new(64 * 1024)
        .setup(move |m| {
            let mut pool = Pool::<ListRoot, _>::create_on(
                m,
                "bugs",
                ListRoot {
                    head: PPtr::null(),
                    spare: PPtr::null(),
                },
            )?;
            let spare = pool.root().fields().spare;
            pool.alloc(spare, Item { value: 0, check: 0 })?;
            Ok(())
        })
        .run(move |m| {
            let mut pool = open(m)?;
            let root = pool.root();
            let spare = pool.get(root)?.spare;
            let mut guard = pool.get_mut(spare)?;
            *guard = Item {
                value: 7,
                check: 7 * 3,
            };
            if persist_first {
                drop(guard); // flush and fence the item
            } else {
                std::mem::forget(guard); // the bug: the item is never persisted
            }
            pool.publish(root.fields().head, spare)?;
            Ok(())
        })
        .recover(move |m| {
            open(m)?;
            Ok(())
        })
        .check(move |m| {
            let pool = open(m)?;
            let head = pool.get(pool.root())?.head;
            if head.is_null() {
                return Ok(());
            }
            let item = pool.get(head)?;
            if item.check == item.value * 3 && item.value == 7 {
                Ok(())
            } else {
                Err(format!(
                    "published item holds value {} check {}",
                    item.value, item.check
                )
                .into())
            }
        })
        .labels(pool_labels::<ListRoot>)
}

#[test]
fn pointer_published_before_its_object() {
    let failure = caught(&publish_scenario(false), Profile::X86Adr);
    names_line(&failure, 4096, "`head`", false);
    assert!(
        failure.to_string().contains("Pool::get_mut"),
        "the item's stores are traced to the guard:\n{failure}"
    );
    let item_line = failure
        .point
        .as_ref()
        .unwrap()
        .lines
        .iter()
        .find(|l| l.label.as_deref().is_some_and(|l| l.starts_with("heap")));
    assert!(
        item_line.is_some_and(|l| l.kept < l.pending),
        "the item's line was not (fully) kept:\n{failure}"
    );
    passes(&publish_scenario(true), Profile::X86Adr);
    passes(&publish_scenario(true), Profile::Conservative);
}

/// A pair (start, end) that readers take as one value: end = start + 100.
fn pair_consistent(m: &SimMedium, at: usize) -> Result<(), String> {
    let (start, end) = (m.read_u64(at), m.read_u64(at + 8));
    if (start, end) == (0, 0) || end == start + 100 {
        Ok(())
    } else {
        Err(format!("torn pair ({start}, {end})"))
    }
}

#[test]
fn torn_16_byte_update() {
    let wrong = raw(
        |m| {
            let mut pair = [0u8; 16];
            pair[..8].copy_from_slice(&5u64.to_le_bytes());
            pair[8..].copy_from_slice(&105u64.to_le_bytes());
            m.store(VALUE, &pair); // one 16-byte copy: two 8-byte chunks
            m.flush_range(VALUE, 16);
            m.sfence();
        },
        |m| pair_consistent(m, VALUE),
    );
    let failure = caught(&wrong, Profile::X86Adr);
    let line = &failure.point.as_ref().unwrap().lines[0];
    assert_eq!(
        (line.offset, line.kept, line.pending),
        (VALUE, 1, 2),
        "kept one chunk of two:\n{failure}"
    );
    assert!(failure.to_string().contains("TORN"), "{failure}");

    // Fixed: write the pair into a free slot, persist, then switch an 8-byte index.
    let fixed = raw(
        |m| {
            let mut pair = [0u8; 16];
            pair[..8].copy_from_slice(&5u64.to_le_bytes());
            pair[8..].copy_from_slice(&105u64.to_le_bytes());
            m.store(128, &pair);
            m.flush_range(128, 16);
            m.sfence();
            m.store_u64(FLAG, 128);
            m.flush_range(FLAG, 8);
            m.sfence();
        },
        |m| match m.read_u64(FLAG) {
            0 => Ok(()),
            at => pair_consistent(m, at as usize),
        },
    );
    passes(&fixed, Profile::X86Adr);
    passes(&fixed, Profile::Conservative);
}

#[test]
fn flush_range_misses_the_last_line() {
    // 16 bytes at 120..136 straddle lines 64..128 and 128..192.
    let data = |m: &SimMedium| (m.read_u64(120), m.read_u64(128));
    let complete = move |m: &SimMedium| match (m.read_u64(FAR), data(m)) {
        (0, _) | (1, (1, 2)) => Ok(()),
        (_, (a, b)) => Err(format!("far flag set with data ({a}, {b})")),
    };
    let write = |m: &mut SimMedium, flush_whole: bool| {
        m.store_u64(120, 1);
        m.store_u64(128, 2);
        if flush_whole {
            m.flush_range(120, 16);
        } else {
            // The bug: one line from the line-aligned start.
            m.flush_range(120 & !63, 64);
        }
        m.sfence();
        m.store_u64(FAR, 1);
        m.flush_range(FAR, 8);
        m.sfence();
    };
    let wrong = raw(move |m| write(m, false), complete);
    names_line(
        &caught(&wrong, Profile::X86Adr),
        128,
        "second value line",
        true,
    );
    passes(&raw(move |m| write(m, true), complete), Profile::X86Adr);
}

#[test]
fn reliance_on_same_line_ordering() {
    // Value and flag in one line, flushed together: x86 keeps a line's stores
    // in order, so flag implies value there; not where stores may reorder.
    let same_line = |m: &mut SimMedium| {
        m.store_u64(8, 42);
        m.store_u64(16, 1);
        m.flush_range(0, 64);
        m.sfence();
    };
    let invariant = |m: &SimMedium| match (m.read_u64(16), m.read_u64(8)) {
        (1, 42) | (0, _) => Ok(()),
        (flag, value) => Err(format!("flag {flag} with value {value}")),
    };
    let wrong = raw(same_line, invariant);
    passes(&wrong, Profile::X86Adr);
    let failure = caught(&wrong, Profile::Conservative);
    assert!(failure.to_string().contains("line 0x0 (flag)"), "{failure}");

    let fixed = raw(
        |m| {
            m.store_u64(8, 42);
            m.flush_range(8, 8);
            m.sfence();
            m.store_u64(16, 1);
            m.flush_range(16, 8);
            m.sfence();
        },
        invariant,
    );
    passes(&fixed, Profile::Conservative);
}

#[test]
fn nontemporal_stores_without_a_fence() {
    let block: Vec<u8> = (0..64).collect();
    let expected = block.clone();
    let invariant = move |m: &SimMedium| {
        let mut got = [0u8; 64];
        m.read(VALUE, &mut got);
        match m.read_u64(FLAG) {
            1 if got[..] != expected[..] => {
                Err("flag set but the streamed block is incomplete".into())
            }
            _ => Ok(()),
        }
    };
    let write = |fence: bool| {
        let block = block.clone();
        move |m: &mut SimMedium| {
            m.store_nontemporal(VALUE, &block);
            if fence {
                m.sfence();
            }
            m.store_u64(FLAG, 1);
            m.flush_range(FLAG, 8);
            m.sfence();
        }
    };
    let wrong = raw(write(false), invariant.clone());
    names_line(&caught(&wrong, Profile::X86Adr), VALUE, "value", true);
    passes(&raw(write(true), invariant), Profile::X86Adr);
}

/// An interrupted operation left `marker = 1`, A = 1, B = 0; recovery must
/// copy A into B and clear the marker.
fn recovery_scenario<'a>(persist_fix: bool) -> Scenario<'a> {
    Scenario::new(4096)
        .setup(|m| {
            m.store_u64(FLAG, 1);
            m.store_u64(VALUE, 1);
            m.store_u64(128, 0);
            Ok(())
        })
        .recover(move |m| {
            if m.read_u64(FLAG) == 1 {
                m.store_u64(128, m.read_u64(VALUE));
                if persist_fix {
                    m.flush_range(128, 8);
                    m.sfence();
                }
                m.store_u64(FLAG, 0);
                m.flush_range(FLAG, 8);
                m.sfence();
            }
            Ok(())
        })
        .check(
            |m| match (m.read_u64(FLAG), m.read_u64(VALUE), m.read_u64(128)) {
                (0, a, b) if a != b => Err(format!("marker cleared with A = {a}, B = {b}").into()),
                _ => Ok(()),
            },
        )
        .labels(labels)
}

#[test]
fn recovery_that_writes_without_persisting() {
    let failure = caught(&recovery_scenario(false), Profile::X86Adr);
    let during = failure
        .recovery_points
        .first()
        .expect("found by crashing recovery");
    let b = during
        .lines
        .iter()
        .find(|l| l.offset == 128)
        .expect("B's line is named");
    assert_eq!(b.kept, 0, "{failure}");
    assert!(failure.to_string().contains("during recovery"), "{failure}");
    passes(&recovery_scenario(true), Profile::X86Adr);
    // Without crashing recovery, the bug is invisible.
    let blind = Explorer::new().recovery_depth(0);
    assert!(blind.explore(&recovery_scenario(false)).is_ok());
}

/// Buckets of 3 words (valid, key, value) at 64-byte strides from 512.
fn bucket(i: usize) -> usize {
    512 + 64 * i
}

fn table_invariant(m: &SimMedium) -> Result<(), String> {
    for i in 0..4 {
        let (valid, key, value) = (
            m.read_u64(bucket(i)),
            m.read_u64(bucket(i) + 8),
            m.read_u64(bucket(i) + 16),
        );
        if valid == 1 && (key != i as u64 + 10 || value != key * key) {
            return Err(format!("bucket {i} valid with key {key}, value {value}"));
        }
    }
    Ok(())
}

#[test]
fn hash_table_valid_token_first() {
    let wrong = raw(
        |m| {
            for i in 0..4 {
                let key = i as u64 + 10;
                m.store_u64(bucket(i), 1); // valid first
                m.store_u64(bucket(i) + 8, key);
                m.store_u64(bucket(i) + 16, key * key);
                m.flush_range(bucket(i), 24);
                m.sfence();
            }
        },
        table_invariant,
    );
    let failure = caught(&wrong, Profile::X86Adr);
    let line = &failure.point.as_ref().unwrap().lines[0];
    assert!(
        line.offset == bucket(0) && line.kept >= 1 && line.kept < line.pending,
        "{failure}"
    );

    let fixed = raw(
        |m| {
            for i in 0..4 {
                let key = i as u64 + 10;
                m.store_u64(bucket(i) + 8, key);
                m.store_u64(bucket(i) + 16, key * key);
                m.flush_range(bucket(i) + 8, 16);
                m.sfence();
                m.store_u64(bucket(i), 1);
                m.flush_range(bucket(i), 8);
                m.sfence();
            }
        },
        table_invariant,
    );
    passes(&fixed, Profile::X86Adr);
    passes(&fixed, Profile::Conservative);
}

fn log_invariant(m: &SimMedium) -> Result<(), String> {
    let len = m.read_u64(FLAG) as usize;
    (0..len).try_for_each(|i| {
        let entry = m.read_u64(VALUE + 64 * i);
        if entry == 1000 + i as u64 {
            Ok(())
        } else {
            Err(format!("length {len} but entry {i} is {entry}"))
        }
    })
}

#[test]
fn log_length_bumped_before_the_entry() {
    let wrong = raw(
        |m| {
            for i in 0..3 {
                m.store_u64(FLAG, i as u64 + 1);
                m.flush_range(FLAG, 8);
                m.sfence();
                m.store_u64(VALUE + 64 * i, 1000 + i as u64);
                m.flush_range(VALUE + 64 * i, 8);
                m.sfence();
            }
        },
        log_invariant,
    );
    let failure = caught(&wrong, Profile::X86Adr);
    names_line(&failure, FLAG, "flag", false);

    let fixed = raw(
        |m| {
            for i in 0..3 {
                m.store_u64(VALUE + 64 * i, 1000 + i as u64);
                m.flush_range(VALUE + 64 * i, 8);
                m.sfence();
                m.store_u64(FLAG, i as u64 + 1);
                m.flush_range(FLAG, 8);
                m.sfence();
            }
        },
        log_invariant,
    );
    passes(&fixed, Profile::X86Adr);
    passes(&fixed, Profile::Conservative);
}

#[test]
fn unaligned_u64_torn_by_the_compiler() {
    let check = |at: usize| {
        move |m: &SimMedium| {
            let mut bytes = [0u8; 8];
            m.read(at, &mut bytes);
            match u64::from_le_bytes(bytes) {
                0 | 0x1111_2222_3333_4444 => Ok(()),
                other => Err(format!("counter reads {other:#x}: half old, half new")),
            }
        }
    };
    let write = |at: usize| {
        move |m: &mut SimMedium| {
            m.store(at, &0x1111_2222_3333_4444u64.to_le_bytes());
            m.flush_range(at, 8);
            m.sfence();
        }
    };
    let failure = caught(&raw(write(VALUE + 4), check(VALUE + 4)), Profile::X86Adr);
    assert!(failure.to_string().contains("TORN"), "{failure}");
    passes(&raw(write(VALUE + 8), check(VALUE + 8)), Profile::X86Adr);
    passes(
        &raw(write(VALUE + 8), check(VALUE + 8)),
        Profile::Conservative,
    );
}

#[test]
fn every_twin_passes_under_eadr_too() {
    // With persistent caches, only the crash position matters: the fixed
    // programs above are correct there as well.
    passes(&publish_scenario(true), Profile::Eadr);
    passes(&recovery_scenario(true), Profile::Eadr);
}
