//! The `log` example's persistent log (examples/log/plog.rs): appending,
//! iterating, reopening, a full log, damaged entries; and crash consistency
//! under the crash simulator: after any crash, every entry below the durable
//! length is whole (its CRC checks) and is what was appended, in order.

#[path = "../examples/log/plog.rs"]
mod plog;

use plog::{LAYOUT, LogError, LogRoot, PLog};
use pmem::typed::sim::proptest::crash_choices;
use pmem::typed::sim::{
    Explorer, FailureKind, Profile, Scenario, SimMedium, StepResult, Summary, pool_labels,
};
use pmem::typed::{PSlice, Pool};
use proptest::prelude::*;

const SIZE: usize = 64 * 1024;
const CAPACITY: u64 = 160;

fn empty_root() -> LogRoot {
    LogRoot {
        used: 0,
        area: PSlice::empty(),
    }
}

/// A new log on `medium`, which it borrows until it is dropped.
fn new_sim_log(medium: &mut SimMedium, capacity: u64) -> PLog<&mut SimMedium> {
    let pool = Pool::create_on(medium, LAYOUT, empty_root()).expect("create");
    PLog::open(pool, capacity).expect("open")
}

fn open_pool(m: &mut SimMedium) -> Pool<LogRoot, &mut SimMedium> {
    Pool::open_on(m, LAYOUT).expect("open")
}

fn open_sim(m: &mut SimMedium, capacity: u64) -> Result<PLog<&mut SimMedium>, LogError> {
    let pool = Pool::open_on(m, LAYOUT)?;
    PLog::open(pool, capacity)
}

/// The entries, each checked against its CRC.
fn entries<M: pmem::typed::Medium>(log: &PLog<M>) -> Result<Vec<Vec<u8>>, LogError> {
    log.iter().map(|e| e.map(<[u8]>::to_vec)).collect()
}

#[test]
fn append_iterate_len() {
    let mut medium = SimMedium::new(SIZE, SIZE);
    let mut log = new_sim_log(&mut medium, 1024);
    assert!(log.is_empty());
    let lines: [&[u8]; 6] = [
        b"",
        b"a",
        b"seven b",
        b"eight by",
        b"nine byte",
        &[0xff; 40],
    ];
    for (i, line) in lines.iter().enumerate() {
        log.append(line).expect("append");
        assert_eq!(log.len(), i as u64 + 1);
    }
    assert!(!log.is_empty());
    assert_eq!(entries(&log).expect("entries"), lines);
    // Header (8) plus the payload rounded up to 8 bytes, per entry.
    let (used, capacity) = log.usage().expect("usage");
    assert_eq!(used, 8 + 16 + 16 + 16 + 24 + 48);
    assert_eq!(capacity, 1024);
}

#[test]
fn reopening_a_file_keeps_the_entries() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("log.pool");
    {
        let mut log = PLog::open(Pool::create(&path, LAYOUT, 1 << 20)?, 4096)?;
        log.append(b"first")?;
        log.append(b"second")?;
    }
    let mut log = PLog::open(Pool::open(&path, LAYOUT)?, 4096)?;
    assert_eq!(log.len(), 2);
    log.append(b"third")?;
    drop(log);
    let log = PLog::open(Pool::open(&path, LAYOUT)?, 4096)?;
    assert_eq!(
        entries(&log)?,
        [b"first".to_vec(), b"second".to_vec(), b"third".to_vec()]
    );
    assert_eq!(log.usage()?, (48, 4096));
    assert!(log.pool().check().is_consistent());
    Ok(())
}

#[test]
fn a_full_log_refuses_and_loses_nothing() {
    let mut medium = SimMedium::new(SIZE, SIZE);
    let mut log = new_sim_log(&mut medium, 64);
    log.append(&[1; 20]).expect("fits"); // 8 + 24 = 32 bytes
    log.append(&[2; 16]).expect("fits"); // 8 + 16: 56 bytes used
    match log.append(&[3; 1]) {
        Err(LogError::Full {
            needed: 16,
            free: 8,
        }) => {}
        other => panic!("expected Full {{ needed: 16, free: 8 }}, got {other:?}"),
    }
    // Nothing changed, in memory or on media.
    assert_eq!(log.len(), 2);
    let expected = [vec![1; 20], vec![2; 16]];
    assert_eq!(entries(&log).expect("entries"), expected);
    log.append(b"").expect("an empty entry still fits");
    drop(log);
    let mut log = open_sim(&mut medium, 64).expect("reopen");
    assert_eq!(log.usage().expect("usage"), (64, 64));
    assert_eq!(log.len(), 3);
    assert!(matches!(
        log.append(b""),
        Err(LogError::Full { needed: 8, free: 0 })
    ));
    assert_eq!(log.len(), 3);
}

#[test]
fn a_capacity_below_one_header_is_refused() {
    let mut medium = SimMedium::new(SIZE, SIZE);
    let pool = Pool::create_on(&mut medium, LAYOUT, empty_root()).expect("create");
    let error = PLog::open(pool, 7).expect_err("7 bytes cannot hold an entry");
    assert_eq!(
        error.to_string(),
        "invalid capacity: 7, expected at least 8"
    );
    // Nothing was allocated.
    assert_eq!(open_pool(&mut medium).allocated_blocks(), []);
}

#[test]
fn damaged_entries_are_reported() {
    let mut medium = SimMedium::new(SIZE, SIZE);
    let mut log = new_sim_log(&mut medium, 256);
    for line in [&b"intact"[..], b"damaged", b"after"] {
        log.append(line).expect("append");
    }
    let area = log
        .pool()
        .get(log.pool().root())
        .expect("root")
        .area
        .offset() as usize;
    drop(log);
    // Flip a bit in the second entry's payload (it starts at 16 + 8).
    let at = area + 16 + 8;
    let mut byte = [0u8];
    medium.read(at, &mut byte);
    medium.store(at, &[byte[0] ^ 1]);
    let log = open_sim(&mut medium, 256).expect("the lengths still add up");
    let found: Vec<_> = log.iter().collect();
    assert_eq!(found.len(), 2, "iteration stops at the damaged entry");
    assert_eq!(found[0].as_deref().ok(), Some(&b"intact"[..]));
    match &found[1] {
        Err(LogError::Corrupt { offset: 16, what }) => assert!(what.contains("CRC"), "{what}"),
        other => panic!("expected a CRC error at 16, got {other:?}"),
    }
    drop(found);
    drop(log);

    // A length that runs past the durable length is refused when opening.
    medium.store(area + 16, &200u32.to_le_bytes());
    match open_sim(&mut medium, 256) {
        Err(error) => assert!(error.to_string().contains("offset 16"), "{error}"),
        Ok(_) => panic!("opened a log whose entry lengths run past its length"),
    }
}

/// The entries of `appends` a log of `capacity` bytes accepts, in order.
fn accepted(appends: &[Vec<u8>], capacity: u64) -> Vec<Vec<u8>> {
    let mut used = 0;
    let mut kept = Vec::new();
    for entry in appends {
        let size = 8 + entry.len().next_multiple_of(8) as u64;
        if used + size <= capacity {
            used += size;
            kept.push(entry.clone());
        }
    }
    kept
}

/// Opens the log (allocating its area) and appends `appends` to it; a full
/// log must refuse exactly the entries that do not fit. The invariant: the
/// log holds a prefix of the accepted entries, each whole, and the pool has
/// no leak and no dangling pointer.
fn log_scenario(appends: Vec<Vec<u8>>, capacity: u64) -> Scenario<'static> {
    let expected = accepted(&appends, capacity);
    Scenario::new(SIZE)
        .setup(|m| {
            Pool::create_on(m, LAYOUT, empty_root())?;
            Ok(())
        })
        .run(move |m| {
            let mut log = open_sim(m, capacity)?;
            for entry in &appends {
                match log.append(entry) {
                    Ok(()) | Err(LogError::Full { .. }) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            let found = entries(&log)?;
            if found != accepted(&appends, capacity) {
                return Err(format!("without a crash the log holds {found:?}").into());
            }
            Ok(())
        })
        .recover(move |m| {
            open_sim(m, capacity)?;
            Ok(())
        })
        .check(move |m| {
            let log = open_sim(m, capacity)?;
            let report = log.pool().check();
            if !report.is_consistent() {
                return Err(report.to_string().into());
            }
            let found = entries(&log)?;
            if found.len() as u64 != log.len() {
                return Err(format!("len() is {}, {} entries", log.len(), found.len()).into());
            }
            if !expected.starts_with(&found) {
                return Err(
                    format!("the log holds {found:?}, not a prefix of {expected:?}").into(),
                );
            }
            Ok(())
        })
        .labels(pool_labels::<LogRoot>)
}

fn workload() -> Vec<Vec<u8>> {
    vec![
        b"first".to_vec(),
        Vec::new(),
        b"a longer entry over several 8-byte chunks".to_vec(),
        b"x".to_vec(),
        // Does not fit in CAPACITY (160): refused, the log unchanged.
        vec![7; 100],
        b"last".to_vec(),
    ]
}

const PROFILES: [Profile; 3] = [Profile::X86Adr, Profile::Eadr, Profile::Conservative];

fn explore(scenario: &Scenario<'_>, profile: Profile) -> Summary {
    let summary = Explorer::new()
        .profile(profile)
        .explore(scenario)
        .unwrap_or_else(|failure| panic!("{profile:?}: {failure}"));
    println!("log, {profile:?}: {summary}");
    summary
}

#[test]
fn appends_survive_any_crash() {
    let scenario = log_scenario(workload(), CAPACITY);
    for profile in PROFILES {
        let summary = explore(&scenario, profile);
        // The area's allocation and five appends: at least two fences each.
        assert!(summary.crash_points >= 12, "{profile:?}: {summary}");
        // At least the states between the appends.
        assert!(summary.images >= 5, "{profile:?}: {summary}");
    }
}

/// The wrong order: the length is bumped before the entry is written.
fn length_first_append(log_pool: &mut Pool<LogRoot, &mut SimMedium>, payload: &[u8]) -> StepResult {
    let root = log_pool.root();
    let LogRoot { used, area } = *log_pool.get(root)?;
    let len = payload.len() as u32;
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&len.to_le_bytes());
    hasher.update(payload);
    let mut entry = len.to_le_bytes().to_vec();
    entry.extend_from_slice(&hasher.finalize().to_le_bytes());
    entry.extend_from_slice(payload);
    entry.resize(8 + payload.len().next_multiple_of(8), 0);
    log_pool.set(root.fields().used, used + entry.len() as u64)?;
    log_pool.copy_to_slice(area, used, &entry)?;
    Ok(())
}

#[test]
fn the_invariant_catches_a_length_bumped_first() {
    let expected = vec![b"one".to_vec(), b"two".to_vec()];
    let appended = expected.clone();
    let scenario = Scenario::new(SIZE)
        .setup(|m| {
            let pool = Pool::create_on(m, LAYOUT, empty_root())?;
            PLog::open(pool, CAPACITY)?;
            Ok(())
        })
        .run(move |m| {
            let mut pool = Pool::open_on(m, LAYOUT)?;
            appended
                .iter()
                .try_for_each(|entry| length_first_append(&mut pool, entry))
        })
        .recover(|m| {
            open_sim(m, CAPACITY)?;
            Ok(())
        })
        .check(move |m| {
            let found = entries(&open_sim(m, CAPACITY)?)?;
            if expected.starts_with(&found) {
                Ok(())
            } else {
                Err(format!("the log holds {found:?}").into())
            }
        });
    for profile in [Profile::X86Adr, Profile::Conservative] {
        let failure = Explorer::new()
            .profile(profile)
            .explore(&scenario)
            .expect_err("a length bumped before its entry must be caught");
        assert_eq!(failure.kind, FailureKind::Crash, "{failure}");
        assert!(failure.message.contains("CRC"), "{failure}");
    }
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
    fn generated_appends_survive_a_generated_crash(
        crash in crash_choices(),
        profile in profiles(),
        appends in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..48), 1..7),
    ) {
        Explorer::new().profile(profile)
            .replay(&log_scenario(appends, CAPACITY), &crash)
            .map_err(|failure| TestCaseError::fail(failure.to_string()))?;
    }
}
