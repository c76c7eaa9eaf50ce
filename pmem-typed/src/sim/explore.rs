//! The explorer: runs a scenario once while recording, then checks every
//! image a crash could leave (or a seeded sample of them), each after
//! recovery, including images of crashes during recovery.

use std::collections::HashSet;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use proptest::prelude::RngExt;
use proptest::test_runner::{RngAlgorithm, TestRng};

use super::explorer::Explorer;
use super::medium::{Log, SimMedium, Site, WORD};
use super::model::{CrashPoint, Durable, Model, crash_points, crash_points_hashed, image_hash};
use super::report::{CrashChoice, Failure, FailureKind, LineReport, PointReport, Summary};
use super::scenario::{Scenario, Step};
use crate::format::LINE;

/// The generator of one point's sample: ChaCha, keyed by `seed`, so that a
/// seed always gives the same sample, on every platform and proptest version
/// (`TestRng::from_seed` promises that stream).
fn sampler(seed: u64) -> TestRng {
    let mut key = [0; 32];
    key[..8].copy_from_slice(&seed.to_le_bytes());
    TestRng::from_seed(RngAlgorithm::ChaCha, &key)
}

/// The choices to check at one point: all of them within `budget`,
/// otherwise the two extremes and a seeded sample; ordered so that images
/// keeping fewer lines come first (the first failure found is then one with
/// the fewest lines kept).
fn choices(point: &CrashPoint, budget: usize, seed: u64) -> (Vec<Vec<usize>>, bool) {
    let (mut all, exhaustive) = unordered_choices(point, budget, seed);
    all.sort_by_key(|kept| {
        (
            kept.iter().filter(|&&k| k > 0).count(),
            kept.iter().sum::<usize>(),
        )
    });
    (all, exhaustive)
}

fn unordered_choices(point: &CrashPoint, budget: usize, seed: u64) -> (Vec<Vec<usize>>, bool) {
    let radix: Vec<usize> = point.units.iter().map(|u| u.choices()).collect();
    if point.combinations() <= budget as u128 {
        let mut all = Vec::new();
        let mut current = vec![0; radix.len()];
        loop {
            all.push(current.clone());
            let mut i = 0;
            while i < radix.len() {
                current[i] += 1;
                if current[i] < radix[i] {
                    break;
                }
                current[i] = 0;
                i += 1;
            }
            if i == radix.len() {
                return (all, true);
            }
        }
    }
    let mut rng = sampler(seed);
    let mut sample = vec![vec![0; radix.len()], radix.iter().map(|r| r - 1).collect()];
    while sample.len() < budget {
        sample.push(radix.iter().map(|&r| rng.random_range(0..r)).collect());
    }
    (sample, false)
}

/// A workload recorded: the medium after it, the durable image before it
/// (`capacity` bytes, of which the first `len` are the medium), and the log.
struct Recording {
    medium: SimMedium,
    base: Vec<u8>,
    len: usize,
    log: Log,
}

impl Recording {
    /// The names of the workload's milestones, in order.
    fn milestones(&self) -> Arc<[String]> {
        self.log
            .milestones
            .iter()
            .map(|(_, name)| name.clone())
            .collect()
    }

    /// How many milestones a crash at `point` has passed: those marked
    /// before its next event.
    fn reached(&self, point: &CrashPoint) -> usize {
        self.log
            .milestones
            .iter()
            .take_while(|(at, _)| *at <= point.event)
            .count()
    }
}

/// Runs one step, turning a panic into an error message.
fn run_step(step: &Step<'_>, medium: &mut SimMedium) -> Result<(), StepError> {
    match catch_unwind(AssertUnwindSafe(|| step(medium))) {
        Ok(Ok(())) => Ok(()),
        Ok(Err(error)) => Err(StepError::Failed(error.to_string())),
        Err(payload) => Err(StepError::Panicked(panic_message(payload.as_ref()))),
    }
}

/// How a step went wrong.
enum StepError {
    Failed(String),
    Panicked(String),
}

impl StepError {
    /// The message, as "{what} failed: .." or "{what} panicked: ..".
    fn describe(self, failed: &str, what: &str) -> String {
        match self {
            Self::Failed(message) => format!("{failed}: {message}"),
            Self::Panicked(message) => format!("{what} panicked: {message}"),
        }
    }

    /// The error's own message, or "{what} panicked: ..".
    fn plain(self, what: &str) -> String {
        match self {
            Self::Failed(message) => message,
            Self::Panicked(message) => format!("{what} panicked: {message}"),
        }
    }
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned())
}

/// Recovers `image` on `medium` and checks the invariant, recording
/// recovery if `record` (checking the invariant is never recorded: it runs
/// on a copy that is then discarded). Returns the recording.
fn recover_checked(
    scenario: &Scenario<'_>,
    medium: &mut SimMedium,
    image: &[u8],
    context: Context<'_>,
    record: bool,
) -> Result<Log, Found> {
    medium.reset_to(image, record);
    medium.set_reached(context.milestones, context.reached);
    let after = context.after();
    run_step(&scenario.recover, medium).map_err(|e| {
        Found::new(
            e.describe(&format!("recovery{after} failed"), "recovery"),
            image,
        )
    })?;
    let log = if record {
        medium.finish_recording()
    } else {
        Log::default()
    };
    run_step(&scenario.check, medium).map_err(|e| {
        Found::new(
            e.describe(&format!("invariant violated{after}"), "the check"),
            image,
        )
    })?;
    Ok(log)
}

/// A crash image to recover: its bytes and, if the caller knows it, its
/// [`image_hash`] (of the bytes zero-extended to the capacity), which
/// exploring recovery's crashes needs.
#[derive(Clone, Copy)]
struct Image<'a> {
    bytes: &'a [u8],
    hash: Option<u64>,
}

impl<'a> Image<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, hash: None }
    }
}

/// What recovery and the check get of the crash they are about: the
/// milestones reached, how many crashes during recovery led to it, and how
/// many more may come.
#[derive(Clone, Copy)]
struct Context<'m> {
    milestones: &'m Arc<[String]>,
    reached: usize,
    crashes: usize,
    depth: usize,
}

impl Context<'_> {
    /// How a failure's message says which recovery failed.
    fn after(&self) -> &'static str {
        if self.crashes == 0 {
            ""
        } else {
            " after a crash during recovery"
        }
    }
}

impl Explorer {
    fn record(&self, scenario: &Scenario<'_>) -> Result<Recording, Failure> {
        let mut medium = SimMedium::new(scenario.size, scenario.capacity);
        medium.set_recording(false);
        run_step(&scenario.setup, &mut medium)
            .map_err(|e| Failure::plain(FailureKind::Setup, e.plain("the set-up"), self))?;
        medium.set_recording(true);
        let len = medium_len(&medium);
        let mut base = medium.live();
        base.resize(scenario.capacity, 0);
        let _ = medium.take_log();
        run_step(&scenario.run, &mut medium)
            .map_err(|e| Failure::plain(FailureKind::Program, e.plain("the workload"), self))?;
        let log = medium.take_log();
        Ok(Recording {
            medium,
            base,
            len,
            log,
        })
    }

    /// Checks every image a crash in `scenario`'s workload could leave (or a
    /// seeded sample where there are too many), after recovery; and, to
    /// the [`recovery_depth`](Self::recovery_depth), every image a crash
    /// during that recovery could leave. A panic in recovery or the check
    /// is a failure like any other.
    ///
    /// # Errors
    /// The first failure, at the earliest crash point, described.
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_typed::sim::{Explorer, FailureKind, Scenario};
    ///
    /// let publish = |value_first: bool| {
    ///     Scenario::new(4096)
    ///         .run(move |m| {
    ///             let order = if value_first { [(64, 42), (0, 1)] } else { [(0, 1), (64, 42)] };
    ///             for (at, value) in order {
    ///                 m.store_u64(at, value);
    ///                 m.flush_range(at, 8);
    ///                 m.sfence();
    ///             }
    ///             Ok(())
    ///         })
    ///         .check(|m| match (m.read_u64(0), m.read_u64(64)) {
    ///             (0, _) | (1, 42) => Ok(()),
    ///             (flag, value) => Err(format!("flag {flag} with value {value}").into()),
    ///         })
    /// };
    /// match Explorer::default().explore(&publish(true)) {
    ///     Ok(summary) => assert_eq!(summary.exhaustive_points, summary.crash_points),
    ///     Err(failure) => panic!("{failure}"),
    /// }
    /// let failure = Explorer::default().explore(&publish(false)).expect_err("flag first");
    /// assert_eq!(failure.kind, FailureKind::Crash);
    /// ```
    ///
    /// A recovery that panics on a crash image is reported with that image:
    ///
    /// ```
    /// use pmem_typed::sim::{Explorer, Scenario};
    ///
    /// let scenario = Scenario::new(4096)
    ///     .run(|m| {
    ///         m.store_u64(0, 3); // an index, published before its table
    ///         m.flush_range(0, 8);
    ///         m.sfence();
    ///         m.store_u64(64, 4); // the table's length
    ///         m.flush_range(64, 8);
    ///         m.sfence();
    ///         Ok(())
    ///     })
    ///     .recover(|m| {
    ///         let (index, table) = (m.read_u64(0) as usize, vec![0u64; m.read_u64(64) as usize]);
    ///         if index > 0 {
    ///             let _ = table[index - 1]; // out of bounds on a crash image
    ///         }
    ///         Ok(())
    ///     });
    /// let failure = Explorer::default().explore(&scenario).expect_err("recovery panics");
    /// assert!(failure.message.starts_with("recovery panicked: index out of bounds"), "{failure}");
    /// let image = failure.image.as_ref().expect("the image recovery panicked on");
    /// assert_eq!((image[0], image[64]), (3, 0));
    /// ```
    pub fn explore(&self, scenario: &Scenario<'_>) -> Result<Summary, Failure> {
        let started = Instant::now();
        let recording = self.record(scenario)?;
        let milestones = recording.milestones();

        // Without any crash, recovery and the invariant must hold. (Crashes
        // during that recovery are explored with the last crash point.)
        let live = recording.medium.live();
        let mut checker = SimMedium::new(live.len(), scenario.capacity);
        let everything = Context {
            milestones: &milestones,
            reached: milestones.len(),
            crashes: 0,
            depth: 0,
        };
        self.recover_and_check(
            scenario,
            &mut checker,
            Image::new(&live),
            everything,
            &mut [],
            &mut Seen::default(),
        )
        .map_err(|found| Failure {
            image: Some(live.clone().into_boxed_slice()),
            ..Failure::plain(FailureKind::NoCrash, found.message, self)
        })?;

        let points = crash_points(&recording.base, recording.len, &recording.log, self.model());
        let mut summary = Summary {
            crash_points: points.len(),
            ..Summary::default()
        };
        // Every image to check, in order: crash points in program order, and
        // within each the images keeping fewer lines first. Duplicates (also
        // across points) are dropped: same length, same milestones, same bytes.
        let mut seen = HashSet::new();
        let mut work: Vec<(usize, Vec<usize>)> = Vec::new();
        let mut durable = Durable::new(&recording.base);
        for (index, point) in points.iter().enumerate() {
            durable.advance(&points, index);
            let (all, exhaustive) = choices(point, self.budget, self.seed ^ index as u64);
            if exhaustive {
                summary.exhaustive_points += 1;
            } else {
                summary.sampled_points += 1;
            }
            let reached = recording.reached(point);
            work.extend(
                all.into_iter()
                    .filter(|kept| {
                        seen.insert((point.len, reached, point.hash_of(durable.bytes(), kept)))
                    })
                    .map(|kept| (index, kept)),
            );
        }
        summary.images = work.len();
        let outcome = self.check_all(scenario, &recording, &milestones, &points, &work);
        summary.recovery_images = outcome.recovery.images;
        summary.sampled_recovery_points = outcome.recovery.sampled_points;
        if let Some(found) = outcome.failure {
            let (index, kept) = work[found.position].clone();
            return Err(self.failure(scenario, &recording, &points, index, kept, found.failure));
        }
        summary.elapsed = started.elapsed();
        Ok(summary)
    }

    /// The failure at workload crash `index`, keeping `kept`, after the
    /// crashes during recovery in `found`.
    fn failure(
        &self,
        scenario: &Scenario<'_>,
        recording: &Recording,
        points: &[CrashPoint],
        index: usize,
        kept: Vec<usize>,
        found: Found,
    ) -> Failure {
        let point = self.describe(scenario, recording, points, index, &kept);
        let mut replay = CrashChoice::new(index, kept);
        let mut link = &mut replay;
        let mut recovery_points = Vec::new();
        for (report, choice) in found.chain {
            recovery_points.push(report);
            link = link.in_recovery.insert(Box::new(choice));
        }
        Failure {
            kind: FailureKind::Crash,
            message: found.message,
            point: Some(Box::new(point)),
            recovery_points: recovery_points.into_boxed_slice(),
            image: Some(found.image.into_boxed_slice()),
            replay: Some(replay),
            explorer: Box::new(self.clone()),
        }
    }

    /// Replays one crash of `scenario`: the point and kept stores of
    /// `choice` (reduced modulo what exists), then recovery, crashed as
    /// `choice` says (and no further), and the check.
    ///
    /// # Errors
    /// The failure, described.
    ///
    /// # Examples
    ///
    /// Reproducing a failure from what it reports:
    ///
    /// ```
    /// use pmem_typed::sim::{Explorer, Scenario};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// // Wrong: the flag is persisted before the value it publishes.
    /// let scenario = Scenario::new(4096)
    ///     .run(|m| {
    ///         m.store_u64(0, 1);
    ///         m.flush_range(0, 8);
    ///         m.sfence();
    ///         m.store_u64(64, 42);
    ///         m.flush_range(64, 8);
    ///         m.sfence();
    ///         Ok(())
    ///     })
    ///     .check(|m| match (m.read_u64(0), m.read_u64(64)) {
    ///         (0, _) | (1, 42) => Ok(()),
    ///         (flag, value) => Err(format!("flag {flag} with value {value}").into()),
    ///     });
    /// let explorer = Explorer::default();
    /// let failure = explorer.explore(&scenario).expect_err("the value can be lost");
    /// // The one crash again, e.g. as a regression test once the protocol is fixed.
    /// let choice = failure.replay.clone().ok_or("a crash to replay")?;
    /// let again = explorer.replay(&scenario, &choice).expect_err("the same crash");
    /// assert_eq!(again.message, failure.message);
    /// # Ok(()) }
    /// ```
    pub fn replay(&self, scenario: &Scenario<'_>, choice: &CrashChoice) -> Result<(), Failure> {
        let recording = self.record(scenario)?;
        let milestones = recording.milestones();
        let points = crash_points(&recording.base, recording.len, &recording.log, self.model());
        let (index, kept) = reduce(&points, choice);
        let mut durable = Durable::new(&recording.base);
        durable.advance(&points, index);
        let (image, _) = points[index].image(durable.bytes(), &kept);
        let mut medium = SimMedium::new(scenario.size, scenario.capacity);
        let context = Context {
            milestones: &milestones,
            reached: recording.reached(&points[index]),
            crashes: 0,
            depth: 0,
        };
        let image = &image[..points[index].len];
        match self.replay_recovery(
            scenario,
            &mut medium,
            image,
            context,
            choice.in_recovery.as_deref(),
        ) {
            Ok(()) => Ok(()),
            Err(found) => Err(self.failure(scenario, &recording, &points, index, kept, found)),
        }
    }

    /// Recovers `image`, crashed as `crash` says, and checks.
    fn replay_recovery(
        &self,
        scenario: &Scenario<'_>,
        medium: &mut SimMedium,
        image: &[u8],
        context: Context<'_>,
        crash: Option<&CrashChoice>,
    ) -> Result<(), Found> {
        let Some(crash) = crash else {
            return self
                .recover_and_check(
                    scenario,
                    medium,
                    Image::new(image),
                    context,
                    &mut [],
                    &mut Seen::default(),
                )
                .map(drop);
        };
        medium.reset_to(image, true);
        medium.set_reached(context.milestones, context.reached);
        let recovered = run_step(&scenario.recover, medium);
        let log = medium.finish_recording();
        if let Err(e) = recovered {
            // It failed before the crash could come: that is the failure.
            return Err(Found::new(
                e.describe(&format!("recovery{} failed", context.after()), "recovery"),
                image,
            ));
        }
        let mut base = image.to_vec();
        base.resize(scenario.capacity, 0);
        let recording = Recording {
            medium: SimMedium::new(0, 0),
            base,
            len: image.len(),
            log,
        };
        let points = crash_points(
            &recording.base,
            recording.len,
            &recording.log,
            self.recovery_model(),
        );
        let (index, kept) = reduce(&points, crash);
        let mut durable = Durable::new(&recording.base);
        durable.advance(&points, index);
        let (crashed, _) = points[index].image(durable.bytes(), &kept);
        let context = Context {
            crashes: context.crashes + 1,
            ..context
        };
        self.replay_recovery(
            scenario,
            medium,
            &crashed[..points[index].len],
            context,
            crash.in_recovery.as_deref(),
        )
        .map_err(|mut found| {
            let report = self.describe(scenario, &recording, &points, index, &kept);
            found
                .chain
                .insert(0, (report, CrashChoice::new(index, kept)));
            found
        })
    }

    /// Checks the images of `work` on a pool of workers. Each worker builds
    /// its images in place: it copies a point's durable image once, then for
    /// each choice applies the kept stores and afterwards puts those words
    /// back. The failure reported is the first in `work` order, whatever the
    /// threads' timing.
    fn check_all(
        &self,
        scenario: &Scenario<'_>,
        recording: &Recording,
        milestones: &Arc<[String]>,
        points: &[CrashPoint],
        work: &[(usize, Vec<usize>)],
    ) -> Outcome {
        let next = AtomicUsize::new(0);
        let first_failure = AtomicUsize::new(usize::MAX);
        let failure: Mutex<Option<Positioned>> = Mutex::new(None);
        let recovery = Mutex::new(Checked::default());
        std::thread::scope(|s| {
            for _ in 0..self.threads.max(1) {
                s.spawn(|| {
                    let mut medium = SimMedium::new(scenario.size, scenario.capacity);
                    let mut durable = Durable::new(&recording.base);
                    let mut image: Vec<u8> = Vec::new();
                    let mut current = usize::MAX;
                    let mut applied = Vec::new();
                    let mut scratch: Vec<Scratch> = (0..self.recovery_depth)
                        .map(|_| Scratch::default())
                        .collect();
                    let mut seen = Seen::default();
                    loop {
                        let position = next.fetch_add(1, Ordering::Relaxed);
                        if position >= work.len()
                            || position > first_failure.load(Ordering::Relaxed)
                        {
                            return;
                        }
                        let (index, kept) = &work[position];
                        let point = &points[*index];
                        if current == *index {
                            restore(&mut image, durable.bytes(), &applied);
                        } else {
                            durable.advance(points, *index);
                            image.clear();
                            image.extend_from_slice(durable.bytes());
                            current = *index;
                        }
                        applied = apply_kept(&mut image, point, kept);
                        let context = Context {
                            milestones,
                            reached: recording.reached(point),
                            crashes: 0,
                            depth: self.recovery_depth,
                        };
                        match self.recover_and_check(
                            scenario,
                            &mut medium,
                            Image {
                                bytes: &image[..point.len],
                                hash: Some(point.hash_of(durable.bytes(), kept)),
                            },
                            context,
                            &mut scratch,
                            &mut seen,
                        ) {
                            Ok(more) => {
                                recovery
                                    .lock()
                                    .unwrap_or_else(PoisonError::into_inner)
                                    .add(more);
                            }
                            Err(found) => {
                                let mut slot =
                                    failure.lock().unwrap_or_else(PoisonError::into_inner);
                                if slot.as_ref().is_none_or(|f| f.position > position) {
                                    *slot = Some(Positioned {
                                        position,
                                        failure: found,
                                    });
                                    first_failure.fetch_min(position, Ordering::Relaxed);
                                }
                            }
                        }
                    }
                });
            }
        });
        Outcome {
            failure: failure.into_inner().unwrap_or_else(PoisonError::into_inner),
            recovery: recovery
                .into_inner()
                .unwrap_or_else(PoisonError::into_inner),
        }
    }

    /// The model recovery is crashed under: the explorer's, crashing at
    /// fences and flushes (eADR: every step).
    fn recovery_model(&self) -> Model {
        Model {
            every_store: false,
            ..self.model()
        }
    }

    /// Recovers `image` on `medium` and checks the invariant; then, while
    /// `context.depth` allows and recovery wrote, crashes recovery at each
    /// of its crash points (its end included) and does the same with each
    /// image. Returns what it checked of recovery's crashes.
    fn recover_and_check(
        &self,
        scenario: &Scenario<'_>,
        medium: &mut SimMedium,
        image: Image<'_>,
        context: Context<'_>,
        scratch: &mut [Scratch],
        seen: &mut Seen,
    ) -> Result<Checked, Found> {
        // Record recovery only if its crashes are explored.
        let record = context.depth > 0 && !scratch.is_empty();
        let log = recover_checked(scenario, medium, image.bytes, context, record)?;
        self.crash_recovery(scenario, medium, image, log, context, scratch, seen)
    }

    /// Crashes the recovery of `image`, recorded in `log`, at each of its
    /// crash points, and checks each image as [`Self::recover_and_check`]
    /// does (`scratch` holds one buffer set per depth still to explore).
    #[allow(clippy::too_many_arguments)] // the recursion's state, each used
    fn crash_recovery(
        &self,
        scenario: &Scenario<'_>,
        medium: &mut SimMedium,
        image: Image<'_>,
        log: Log,
        context: Context<'_>,
        scratch: &mut [Scratch],
        seen: &mut Seen,
    ) -> Result<Checked, Found> {
        let Image { bytes: image, hash } = image;
        if log.events.is_empty() {
            return Ok(Checked::default());
        }
        let Some((level, deeper)) = scratch.split_first_mut() else {
            return Ok(Checked::default());
        };
        let Scratch { durable, crashed } = level;
        let extended = || {
            let mut base = image.to_vec();
            base.resize(scenario.capacity, 0);
            base
        };
        // The images to check: distinct, and neither the image recovered
        // (a crash that kept nothing new: what this call explores already)
        // nor the end of recovery with everything kept (checked already).
        let recovered = (image.len(), hash.unwrap_or_else(|| image_hash(&extended())));
        let points =
            crash_points_hashed(image, recovered.1, image.len(), &log, self.recovery_model());
        let last = points.len() - 1;
        // (point, kept, the image's hash)
        let mut images: Vec<(usize, Vec<usize>, u64)> = Vec::new();
        let mut distinct = HashSet::new();
        let mut checked = Checked::default();
        durable.reset_extended(image, scenario.capacity);
        for (index, point) in points.iter().enumerate() {
            durable.advance(&points, index);
            let (all, exhaustive) = choices(
                point,
                self.recovery_budget,
                self.seed ^ 0x7265_636f ^ index as u64,
            );
            checked.sampled_points += usize::from(!exhaustive);
            for kept in all {
                let complete = point
                    .units
                    .iter()
                    .zip(&kept)
                    .all(|(unit, &k)| k + 1 == unit.choices());
                let key = (point.len, point.hash_of(durable.bytes(), &kept));
                if !(index == last && complete) && key != recovered && distinct.insert(key) {
                    images.push((index, kept, key.1));
                }
            }
        }
        // Shallow first: every image recovered without a further crash, and
        // only then crashed deeper, so a failure needs the fewest crashes.
        // The shallow pass records recovery when a deeper one follows, so
        // that pass need not run it again.
        let deep = (context.depth > 1 && !deeper.is_empty()).then(|| context.depth - 1);
        let mut logs: Vec<Option<Log>> = Vec::with_capacity(images.len());
        for depth in std::iter::once(0).chain(deep) {
            durable.reset_extended(image, scenario.capacity);
            let mut current = usize::MAX;
            for (position, (index, kept, hash)) in images.iter().enumerate() {
                let point = &points[*index];
                if current != *index {
                    durable.advance(&points, *index);
                    crashed.clear();
                    crashed.extend_from_slice(durable.bytes());
                    current = *index;
                }
                let key = SeenKey {
                    depth,
                    reached: context.reached,
                    len: point.len,
                    hash: *hash,
                };
                if !seen.insert(key) {
                    if depth == 0 {
                        logs.push(None);
                    }
                    continue;
                }
                let touched = apply_kept(crashed, point, kept);
                let crashed_image = Image {
                    bytes: &crashed[..point.len],
                    hash: Some(*hash),
                };
                let inner = Context {
                    crashes: context.crashes + 1,
                    depth,
                    ..context
                };
                let outcome = if depth == 0 {
                    recover_checked(scenario, medium, crashed_image.bytes, inner, deep.is_some())
                        .map(|log| {
                            logs.push(Some(log));
                            Checked {
                                images: 1,
                                sampled_points: 0,
                            }
                        })
                } else {
                    let recorded = match logs[position].take() {
                        Some(log) => Ok(log),
                        // Skipped by the shallow pass (seen elsewhere): recorded now.
                        None => recover_checked(scenario, medium, crashed_image.bytes, inner, true),
                    };
                    recorded.and_then(|log| {
                        self.crash_recovery(
                            scenario,
                            medium,
                            crashed_image,
                            log,
                            inner,
                            deeper,
                            seen,
                        )
                    })
                };
                restore(crashed, durable.bytes(), &touched);
                match outcome {
                    Ok(more) => checked.add(more),
                    Err(mut found) => {
                        let recording = Recording {
                            medium: SimMedium::new(0, 0),
                            base: extended(),
                            len: image.len(),
                            log,
                        };
                        let report = self.describe(scenario, &recording, &points, *index, kept);
                        found
                            .chain
                            .insert(0, (report, CrashChoice::new(*index, kept.clone())));
                        return Err(found);
                    }
                }
            }
        }
        Ok(checked)
    }

    /// Describes crash `index` of `recording`, keeping `kept`.
    fn describe(
        &self,
        scenario: &Scenario<'_>,
        recording: &Recording,
        points: &[CrashPoint],
        index: usize,
        kept: &[usize],
    ) -> PointReport {
        let log = &recording.log;
        let point = &points[index];
        let site = |s: u32| {
            log.sites.get(s as usize).copied().unwrap_or(Site {
                operation: "?",
                location: std::panic::Location::caller(),
            })
        };
        let mut durable = Durable::new(&recording.base);
        durable.advance(points, index);
        let (image, _) = point.image(durable.bytes(), kept);
        let mut lines: Vec<LineReport> = Vec::new();
        for (unit, &k) in point.units.iter().zip(kept) {
            let offset = unit.line as usize * LINE;
            let sites = unit.stores.iter().map(|s| site(s.site)).collect();
            let kept_stores = unit.kept_stores(k).count();
            match lines.iter_mut().find(|l| l.offset == offset) {
                Some(line) => {
                    line.kept += kept_stores;
                    line.pending += unit.stores.len();
                }
                None => lines.push(LineReport {
                    offset,
                    label: (scenario.labels)(&image, offset),
                    kept: kept_stores,
                    pending: unit.stores.len(),
                    sites,
                }),
            }
        }
        let reached = recording.reached(point);
        PointReport {
            index,
            of: points.len(),
            event: point.event,
            fences: point.fences,
            site: site(point.site),
            milestone: reached.checked_sub(1).map(|i| log.milestones[i].1.clone()),
            lines,
        }
    }
}

/// The point and kept stores `choice` names, reduced modulo what exists.
fn reduce(points: &[CrashPoint], choice: &CrashChoice) -> (usize, Vec<usize>) {
    let index = choice.point % points.len();
    let kept = points[index]
        .units
        .iter()
        .enumerate()
        .map(|(i, unit)| choice.kept.get(i).copied().unwrap_or(0) % unit.choices())
        .collect();
    (index, kept)
}

/// Writes the stores `kept` keeps into `image` (which holds `point`'s
/// durable image), returning the words written.
fn apply_kept(image: &mut [u8], point: &CrashPoint, kept: &[usize]) -> Vec<u32> {
    let mut touched = Vec::new();
    for (unit, &k) in point.units.iter().zip(kept) {
        for store in unit.kept_stores(k) {
            let at = store.word as usize * WORD;
            image[at..at + WORD].copy_from_slice(&store.value.to_le_bytes());
            touched.push(store.word);
        }
    }
    touched
}

/// Puts the durable bytes back into the words `apply_kept` wrote.
fn restore(image: &mut [u8], durable: &[u8], touched: &[u32]) {
    for &word in touched {
        let at = word as usize * WORD;
        image[at..at + WORD].copy_from_slice(&durable[at..at + WORD]);
    }
}

/// Buffers a worker reuses from image to image, one set per depth of
/// recovery crashes. (Allocating them per image made the allocator hand
/// pages back to the kernel and fault them in again: most of the time went
/// there.)
#[derive(Default)]
struct Scratch {
    durable: Durable,
    crashed: Vec<u8>,
}

/// A recovery-crash image already checked by a worker: what recovery and
/// the check can observe (the bytes, the length, the milestones) and how
/// deep it was still to be crashed.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct SeenKey {
    depth: usize,
    reached: usize,
    len: usize,
    hash: u64,
}

type Seen = HashSet<SeenKey>;

/// A failing image: the message, the image recovery failed on, and the
/// crashes during recovery that led there (outermost first).
struct Found {
    message: String,
    image: Vec<u8>,
    chain: Vec<(PointReport, CrashChoice)>,
}

impl Found {
    fn new(message: String, image: &[u8]) -> Self {
        Self {
            message,
            image: image.to_vec(),
            chain: Vec::new(),
        }
    }
}

/// A failure found by a worker, with its position in the list of work
/// (the first position wins, whatever the threads did).
struct Positioned {
    position: usize,
    failure: Found,
}

struct Outcome {
    failure: Option<Positioned>,
    recovery: Checked,
}

/// What exploring recovery's crashes checked: the images, and the crash
/// points of recovery whose images were sampled (over the recovery budget).
#[derive(Clone, Copy, Debug, Default)]
struct Checked {
    images: usize,
    sampled_points: usize,
}

impl Checked {
    fn add(&mut self, other: Checked) {
        self.images += other.images;
        self.sampled_points += other.sampled_points;
    }
}

fn medium_len(medium: &SimMedium) -> usize {
    crate::medium::Medium::len(medium)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::Profile;

    /// The crash point before the fence of a run that stores once into each
    /// of `lines` lines and two more times into the first: `3 * 2^(lines-1)`
    /// images.
    fn point_before_fence(lines: usize) -> CrashPoint {
        let mut medium = SimMedium::new(4096, 4096);
        for line in 0..lines {
            medium.store_u64(64 * line, 1);
        }
        medium.store_u64(8, 2);
        medium.flush_range(0, 64 * lines);
        medium.sfence();
        let log = medium.take_log();
        let base = vec![0; 4096];
        crash_points(
            &base,
            4096,
            &log,
            Explorer::new().profile(Profile::X86Adr).model(),
        )
        .remove(0)
    }

    #[test]
    fn within_budget_every_choice_once() {
        let point = point_before_fence(3);
        let (all, exhaustive) = choices(&point, 12, 1);
        assert!(exhaustive);
        assert_eq!(all.len(), 12);
        let distinct: HashSet<_> = all.iter().collect();
        assert_eq!(distinct.len(), 12);
        assert_eq!(all[0], [0, 0, 0], "the image keeping nothing comes first");
    }

    #[test]
    fn sampling_is_seeded_and_in_range() {
        let point = point_before_fence(8);
        let (sample, exhaustive) = choices(&point, 64, 0x5eed);
        assert!(!exhaustive);
        assert_eq!(sample.len(), 64);
        // The same seed gives the same sample; another seed, another one.
        assert_eq!(choices(&point, 64, 0x5eed).0, sample);
        assert_ne!(choices(&point, 64, 0x5eee).0, sample);
        // Every choice is valid, and both extremes are among them.
        let radix: Vec<usize> = point.units.iter().map(|u| u.choices()).collect();
        assert!(
            sample
                .iter()
                .all(|kept| kept.iter().zip(&radix).all(|(k, r)| k < r))
        );
        assert!(sample.contains(&vec![0; radix.len()]));
        assert!(sample.contains(&radix.iter().map(|r| r - 1).collect()));
    }
}
