//! The explorer: runs a scenario once while recording, then checks every
//! image a crash could leave (or a seeded sample of them), each after
//! recovery, including images of crashes during recovery.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

use proptest::prelude::RngExt;
use proptest::test_runner::{RngAlgorithm, TestRng};

use super::explorer::Explorer;
use super::medium::{Log, SimMedium, Site, WORD};
use super::model::{CrashPoint, Durable, crash_points};
use super::report::{CrashChoice, Failure, FailureKind, LineReport, PointReport, Summary};
use super::scenario::Scenario;
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
    let radix: Vec<usize> = point.units.iter().map(|u| u.stores.len() + 1).collect();
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

impl Explorer {
    fn record(&self, scenario: &Scenario<'_>) -> Result<(SimMedium, Vec<u8>, usize, Log), Failure> {
        let mut medium = SimMedium::new(scenario.size, scenario.capacity);
        medium.set_recording(false);
        (scenario.setup)(&mut medium)
            .map_err(|e| Failure::plain(FailureKind::Setup, e.to_string(), self))?;
        medium.set_recording(true);
        let base_len = medium_len(&medium);
        let mut base = medium.live();
        base.resize(scenario.capacity, 0);
        let _ = medium.take_log();
        (scenario.run)(&mut medium)
            .map_err(|e| Failure::plain(FailureKind::Program, e.to_string(), self))?;
        let log = medium.take_log();
        Ok((medium, base, base_len, log))
    }

    /// Checks every image a crash in `scenario`'s workload could leave (or a
    /// seeded sample where there are too many), after recovery.
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
    pub fn explore(&self, scenario: &Scenario<'_>) -> Result<Summary, Failure> {
        let started = Instant::now();
        let (medium, base, base_len, log) = self.record(scenario)?;

        // Without any crash, recovery and the invariant must hold.
        let live = medium.live();
        // (Crashes during that recovery are explored with the crash points.)
        let mut checker = SimMedium::new(live.len(), scenario.capacity);
        let no_crash = Self {
            recovery_crashes: false,
            ..self.clone()
        };
        no_crash
            .recover_and_check(scenario, &mut checker, &live, &mut Scratch::default())
            .map_err(|(message, _)| Failure::plain(FailureKind::NoCrash, message, self))?;

        let points = crash_points(&base, base_len, &log, self.profile, self.every_store);
        let mut summary = Summary {
            crash_points: points.len(),
            ..Summary::default()
        };
        // Every image to check, in order: crash points in program order, and
        // within each the images keeping fewer lines first. Duplicates (also
        // across points) are dropped by hash.
        let mut seen = HashSet::new();
        let mut work: Vec<(usize, Vec<usize>)> = Vec::new();
        let mut durable = Durable::new(&base);
        for (index, point) in points.iter().enumerate() {
            durable.advance(&points, index);
            let (all, exhaustive) = choices(point, self.budget, self.seed ^ index as u64);
            if exhaustive {
                summary.exhaustive_points += 1;
            } else {
                summary.sampled_points += 1;
            }
            work.extend(
                all.into_iter()
                    .filter(|kept| seen.insert(point.hash_of(durable.bytes(), kept)))
                    .map(|kept| (index, kept)),
            );
        }
        summary.images = work.len();
        let outcome = self.check_all(scenario, &base, &points, &work);
        summary.recovery_images = outcome.recovery_images;
        if let Some(found) = outcome.failure {
            let (index, kept) = work[found.position].clone();
            return Err(Failure {
                kind: FailureKind::Crash,
                message: found.message,
                point: Some(Box::new(
                    self.report(scenario, &base, &points, index, &kept),
                )),
                recovery_point: found.recovery.map(Box::new),
                replay: Some(CrashChoice { point: index, kept }),
                explorer: Box::new(self.clone()),
            });
        }
        summary.elapsed = started.elapsed();
        Ok(summary)
    }

    /// Replays one crash of `scenario`: the point and kept stores of
    /// `choice` (reduced modulo what exists), then recovery and the check.
    /// Crashes during recovery are not explored here.
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
        let (_, base, base_len, log) = self.record(scenario)?;
        let points = crash_points(&base, base_len, &log, self.profile, self.every_store);
        let index = choice.point % points.len();
        let point = &points[index];
        let kept: Vec<usize> = point
            .units
            .iter()
            .enumerate()
            .map(|(i, unit)| choice.kept.get(i).copied().unwrap_or(0) % (unit.stores.len() + 1))
            .collect();
        let mut durable = Durable::new(&base);
        durable.advance(&points, index);
        let (image, _) = point.image(durable.bytes(), &kept);
        let mut checker = SimMedium::new(scenario.size, scenario.capacity);
        let quiet = Self {
            recovery_crashes: false,
            ..self.clone()
        };
        quiet
            .recover_and_check(
                scenario,
                &mut checker,
                &image[..point.len],
                &mut Scratch::default(),
            )
            .map_err(|(message, _)| Failure {
                kind: FailureKind::Crash,
                message,
                point: Some(Box::new(
                    self.report(scenario, &base, &points, index, &kept),
                )),
                recovery_point: None,
                replay: Some(CrashChoice { point: index, kept }),
                explorer: Box::new(self.clone()),
            })?;
        Ok(())
    }

    /// Checks the images of `work` on a pool of workers. Each worker builds
    /// its images in place: it copies a point's durable image once, then for
    /// each choice applies the kept stores and afterwards puts those words
    /// back. The failure reported is the first in `work` order, whatever the
    /// threads' timing.
    fn check_all(
        &self,
        scenario: &Scenario<'_>,
        base: &[u8],
        points: &[CrashPoint],
        work: &[(usize, Vec<usize>)],
    ) -> Outcome {
        let next = AtomicUsize::new(0);
        let first_failure = AtomicUsize::new(usize::MAX);
        let failure: Mutex<Option<Found>> = Mutex::new(None);
        let recovery_images = AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..self.threads.max(1) {
                s.spawn(|| {
                    let mut medium = SimMedium::new(scenario.size, scenario.capacity);
                    let mut durable = Durable::new(base);
                    let mut image: Vec<u8> = Vec::new();
                    let mut current = usize::MAX;
                    let mut applied = Vec::new();
                    let mut scratch = Scratch::default();
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
                        match self.recover_and_check(
                            scenario,
                            &mut medium,
                            &image[..point.len],
                            &mut scratch,
                        ) {
                            Ok(n) => {
                                recovery_images.fetch_add(n, Ordering::Relaxed);
                            }
                            Err((message, recovery)) => {
                                let mut slot =
                                    failure.lock().unwrap_or_else(PoisonError::into_inner);
                                if slot.as_ref().is_none_or(|f| f.position > position) {
                                    *slot = Some(Found {
                                        position,
                                        message,
                                        recovery,
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
            recovery_images: recovery_images.into_inner(),
        }
    }

    /// Recovers `image` on `medium` and checks the invariant; then, if
    /// recovery wrote and fenced, crashes it at each of its fences and checks
    /// those images too. Returns the number of recovery-crash images checked.
    fn recover_and_check(
        &self,
        scenario: &Scenario<'_>,
        medium: &mut SimMedium,
        image: &[u8],
        scratch: &mut Scratch,
    ) -> Result<usize, (String, Option<PointReport>)> {
        // Record recovery only if its crashes are explored; checking the
        // invariant is never recorded (it runs on a copy that is then discarded).
        medium.reset_to(image, self.recovery_crashes);
        (scenario.recover)(medium).map_err(|e| (format!("recovery failed: {e}"), None))?;
        let log = if self.recovery_crashes {
            medium.finish_recording()
        } else {
            Log::default()
        };
        (scenario.check)(medium).map_err(|e| (format!("invariant violated: {e}"), None))?;
        if log.events.is_empty() {
            return Ok(0);
        }
        let Scratch {
            base,
            durable,
            crashed,
        } = scratch;
        base.clear();
        base.extend_from_slice(image);
        base.resize(medium_capacity(scenario), 0);
        let mut points = crash_points(base, image.len(), &log, self.profile, false);
        points.pop(); // the end of recovery: already checked above
        let mut seen = HashSet::new();
        let mut checked = 0;
        durable.reset(base);
        for (index, point) in points.iter().enumerate() {
            durable.advance(&points, index);
            let (all, _) = choices(
                point,
                self.recovery_budget,
                self.seed ^ 0x7265_636f ^ index as u64,
            );
            crashed.clear();
            crashed.extend_from_slice(durable.bytes());
            for kept in all {
                if !seen.insert(point.hash_of(durable.bytes(), &kept)) {
                    continue;
                }
                let touched = apply_kept(crashed, point, &kept);
                medium.reset_to(&crashed[..point.len], false);
                restore(crashed, durable.bytes(), &touched);
                let outcome = (scenario.recover)(medium)
                    .map_err(|e| format!("recovery after a crash during recovery failed: {e}"))
                    .and_then(|()| {
                        (scenario.check)(medium).map_err(|e| {
                            format!("invariant violated after a crash during recovery: {e}")
                        })
                    });
                if let Err(message) = outcome {
                    return Err((
                        message,
                        Some(self.describe(scenario, &log, base, &points, index, &kept)),
                    ));
                }
                checked += 1;
            }
        }
        Ok(checked)
    }

    fn report(
        &self,
        scenario: &Scenario<'_>,
        base: &[u8],
        points: &[CrashPoint],
        index: usize,
        kept: &[usize],
    ) -> PointReport {
        // Re-record to get the sites (the recording is deterministic).
        let log = self
            .record(scenario)
            .map(|(_, _, _, log)| log)
            .unwrap_or_default();
        self.describe(scenario, &log, base, points, index, kept)
    }

    fn describe(
        &self,
        scenario: &Scenario<'_>,
        log: &Log,
        base: &[u8],
        points: &[CrashPoint],
        index: usize,
        kept: &[usize],
    ) -> PointReport {
        let point = &points[index];
        let site = |s: u32| {
            log.sites.get(s as usize).copied().unwrap_or(Site {
                operation: "?",
                location: std::panic::Location::caller(),
            })
        };
        let mut durable = Durable::new(base);
        durable.advance(points, index);
        let (image, _) = point.image(durable.bytes(), kept);
        let mut lines: Vec<LineReport> = Vec::new();
        for (unit, &k) in point.units.iter().zip(kept) {
            let offset = unit.line as usize * LINE;
            let sites = unit.stores.iter().map(|s| site(s.site)).collect();
            match lines.iter_mut().find(|l| l.offset == offset) {
                Some(line) => {
                    line.kept += k;
                    line.pending += unit.stores.len();
                }
                None => lines.push(LineReport {
                    offset,
                    label: (scenario.labels)(&image, offset),
                    kept: k,
                    pending: unit.stores.len(),
                    sites,
                }),
            }
        }
        PointReport {
            index,
            of: points.len(),
            event: point.event,
            fences: point.fences,
            site: site(point.site),
            lines,
        }
    }
}

/// Writes the stores `kept` keeps into `image` (which holds `point`'s
/// durable image), returning the words written.
fn apply_kept(image: &mut [u8], point: &CrashPoint, kept: &[usize]) -> Vec<u32> {
    let mut touched = Vec::new();
    for (unit, &k) in point.units.iter().zip(kept) {
        for store in &unit.stores[..k] {
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

/// Buffers a worker reuses from image to image. (Allocating them per image
/// made the allocator hand pages back to the kernel and fault them in again:
/// most of the time went there.)
#[derive(Default)]
struct Scratch {
    base: Vec<u8>,
    durable: Durable,
    crashed: Vec<u8>,
}

/// A failing image found by a worker, with its position in the list of work
/// (the first position wins, whatever the threads did).
struct Found {
    position: usize,
    message: String,
    recovery: Option<PointReport>,
}

struct Outcome {
    failure: Option<Found>,
    recovery_images: usize,
}

fn medium_len(medium: &SimMedium) -> usize {
    crate::medium::Medium::len(medium)
}

fn medium_capacity(scenario: &Scenario<'_>) -> usize {
    scenario.capacity
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
        crash_points(&base, 4096, &log, Profile::X86Adr, false).remove(0)
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
        let radix: Vec<usize> = point.units.iter().map(|u| u.stores.len() + 1).collect();
        assert!(
            sample
                .iter()
                .all(|kept| kept.iter().zip(&radix).all(|(k, r)| k < r))
        );
        assert!(sample.contains(&vec![0; radix.len()]));
        assert!(sample.contains(&radix.iter().map(|r| r - 1).collect()));
    }
}
