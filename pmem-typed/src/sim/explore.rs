//! The explorer: runs a scenario once while recording, then checks every
//! image a crash could leave (or a seeded sample of them), each after
//! recovery, including images of crashes during recovery.

use std::collections::HashSet;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::medium::{CHUNK, Log, SimMedium, Site};
use super::model::{CrashPoint, Durable, Profile, crash_points};
use crate::format::LINE;

/// What a scenario's steps return: `Ok(())`, or any error, so that `?` works
/// on pmem-typed's errors and `Err("why".into())` on a message.
///
/// # Examples
///
/// A step as a function: it gets the medium with `&mut`, so a pool it opens
/// borrows the medium for the step.
///
/// ```
/// use pmem_typed::sim::{Explorer, FailureKind, Scenario, SimMedium, StepResult};
/// use pmem_typed::{Persist, Pool};
///
/// #[derive(Clone, Copy, Persist)]
/// #[repr(C)]
/// struct Root { n: u64 }
///
/// fn check(m: &mut SimMedium) -> StepResult {
///     let pool = Pool::<Root, _>::open_on(m, "steps")?; // `?` on pmem-typed's error
///     match pool.get(pool.root())?.n {
///         0 | 1 => Ok(()),
///         n => Err(format!("n is {n}").into()), // a message
///     }
/// }
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let scenario = Scenario::new(64 << 10)
///     .setup(|m| {
///         Pool::create_on(m, "steps", Root { n: 0 })?;
///         Ok(())
///     })
///     .run(|m| {
///         let mut pool = Pool::<Root, _>::open_on(m, "steps")?;
///         pool.set(pool.root().fields().n, 1)?;
///         Ok(())
///     })
///     .check(check);
/// Explorer::default().explore(&scenario)?;
///
/// // Without the set-up there is no pool: the error `?` passed on fails the check.
/// let failure = Explorer::default()
///     .explore(&Scenario::new(64 << 10).check(check))
///     .expect_err("nothing to open");
/// assert_eq!(failure.kind, FailureKind::NoCrash);
/// assert!(failure.message.starts_with("invariant violated: "), "{failure}");
/// # Ok(()) }
/// ```
pub type StepResult = Result<(), Box<dyn std::error::Error>>;

type Step<'a> = Box<dyn Fn(&mut SimMedium) -> StepResult + Send + Sync + 'a>;
type Labeler<'a> = Box<dyn Fn(&[u8], usize) -> Option<String> + Send + Sync + 'a>;

/// A program to check for crash consistency, in four steps.
///
/// - `setup` runs first and is taken as durable (it is not crashed);
/// - `run` is the workload: it is recorded, and crashes are placed in it;
/// - `recover` runs on every crash image (for a pool: opening it);
/// - `check` then states the invariant, on the recovered memory.
///
/// # Examples
///
/// ```
/// use pmem_typed::sim::{Explorer, Scenario};
/// // Publish a value behind a flag: value first, persisted, then the flag.
/// let scenario = Scenario::new(4096)
///     .run(|m| {
///         m.store_u64(64, 42);
///         m.flush_range(64, 8);
///         m.sfence();
///         m.store_u64(0, 1);
///         m.flush_range(0, 8);
///         m.sfence();
///         Ok(())
///     })
///     .check(|m| match (m.read_u64(0), m.read_u64(64)) {
///         (1, 42) | (0, _) => Ok(()),
///         (flag, value) => Err(format!("flag {flag} with value {value}").into()),
///     });
/// let summary = Explorer::default().explore(&scenario).expect("consistent");
/// assert!(summary.images >= 3);
/// ```
pub struct Scenario<'a> {
    size: usize,
    capacity: usize,
    setup: Step<'a>,
    run: Step<'a>,
    recover: Step<'a>,
    check: Step<'a>,
    labels: Labeler<'a>,
}

impl fmt::Debug for Scenario<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scenario")
            .field("size", &self.size)
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

impl<'a> Scenario<'a> {
    /// A scenario on a zeroed medium of `size` bytes, whose steps do nothing.
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_typed::sim::{Explorer, Scenario};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// // Nothing to crash: one crash point (the end), one image.
    /// let empty = Scenario::new(4096).check(|m| match m.live().iter().all(|&b| b == 0) {
    ///     true => Ok(()),
    ///     false => Err("not zeroed".into()),
    /// });
    /// let summary = Explorer::default().explore(&empty)?;
    /// assert_eq!((summary.crash_points, summary.images), (1, 1));
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn new(size: usize) -> Self {
        let nothing = || -> Step<'a> { Box::new(|_| Ok(())) };
        Self {
            size,
            capacity: size,
            setup: nothing(),
            run: nothing(),
            recover: nothing(),
            check: nothing(),
            labels: Box::new(|_, _| None),
        }
    }

    /// Lets the medium grow to `capacity` bytes (for `Pool::grow`).
    ///
    /// # Examples
    ///
    /// A crash while a pool grows leaves it at its old size or its new one:
    ///
    /// ```
    /// use pmem_typed::sim::{Explorer, Scenario};
    /// use pmem_typed::{Persist, Pool};
    ///
    /// #[derive(Clone, Copy, Persist)]
    /// #[repr(C)]
    /// struct Root { n: u64 }
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let scenario = Scenario::new(64 << 10)
    ///     .capacity(128 << 10)
    ///     .setup(|m| {
    ///         Pool::create_on(m, "grow", Root { n: 0 })?;
    ///         Ok(())
    ///     })
    ///     .run(|m| {
    ///         Pool::<Root, _>::open_on(m, "grow")?.grow(128 << 10)?;
    ///         Ok(())
    ///     })
    ///     .check(|m| {
    ///         let pool = Pool::<Root, _>::open_on(m, "grow")?;
    ///         match pool.size() {
    ///             size if size == 64 << 10 || size == 128 << 10 => Ok(()),
    ///             size => Err(format!("size {size}").into()),
    ///         }
    ///     });
    /// Explorer::default().explore(&scenario)?;
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity.max(self.size);
        self
    }

    /// The set-up, taken as durable.
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_typed::sim::{Explorer, Scenario, SimMedium, StepResult};
    ///
    /// let seven = |m: &mut SimMedium| -> StepResult {
    ///     match m.read_u64(0) {
    ///         7 => Ok(()),
    ///         other => Err(format!("found {other}").into()),
    ///     }
    /// };
    /// // Stored in the set-up, never flushed, yet never lost.
    /// let store = |m: &mut SimMedium| -> StepResult {
    ///     m.store_u64(0, 7);
    ///     Ok(())
    /// };
    /// let in_setup = Scenario::new(4096).setup(store).check(seven);
    /// assert!(Explorer::default().explore(&in_setup).is_ok());
    /// // The same store in the workload can be.
    /// let in_run = Scenario::new(4096).run(store).check(seven);
    /// assert!(Explorer::default().explore(&in_run).is_err());
    /// ```
    #[must_use]
    pub fn setup(mut self, f: impl Fn(&mut SimMedium) -> StepResult + Send + Sync + 'a) -> Self {
        self.setup = Box::new(f);
        self
    }

    /// The workload to crash.
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_typed::sim::{Explorer, Scenario};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// // A counter bumped three times, each bump persisted.
    /// let scenario = Scenario::new(4096)
    ///     .run(|m| {
    ///         for n in 1..=3 {
    ///             m.store_u64(0, n);
    ///             m.flush_range(0, 8);
    ///             m.sfence();
    ///         }
    ///         Ok(())
    ///     })
    ///     .check(|m| match m.read_u64(0) {
    ///         0..=3 => Ok(()),
    ///         n => Err(format!("counter {n}").into()),
    ///     });
    /// let summary = Explorer::default().explore(&scenario)?;
    /// assert_eq!(summary.images, 4); // the counter at 0, 1, 2 and 3
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn run(mut self, f: impl Fn(&mut SimMedium) -> StepResult + Send + Sync + 'a) -> Self {
        self.run = Box::new(f);
        self
    }

    /// Recovery, run on every crash image before the check.
    ///
    /// # Examples
    ///
    /// Rolling back what was not committed:
    ///
    /// ```
    /// use pmem_typed::sim::{Explorer, Scenario};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let scenario = |recover: bool| {
    ///     Scenario::new(4096)
    ///         .run(|m| {
    ///             m.store_u64(64, 42);
    ///             m.flush_range(64, 8);
    ///             m.sfence();
    ///             m.store_u64(0, 1); // commit
    ///             m.flush_range(0, 8);
    ///             m.sfence();
    ///             Ok(())
    ///         })
    ///         .recover(move |m| {
    ///             if recover && m.read_u64(0) == 0 {
    ///                 m.store_u64(64, 0); // not committed: roll back
    ///                 m.flush_range(64, 8);
    ///                 m.sfence();
    ///             }
    ///             Ok(())
    ///         })
    ///         .check(|m| match (m.read_u64(0), m.read_u64(64)) {
    ///             (0, 0) | (1, 42) => Ok(()),
    ///             (flag, value) => Err(format!("flag {flag} with value {value}").into()),
    ///         })
    /// };
    /// assert!(Explorer::default().explore(&scenario(false)).is_err());
    /// let summary = Explorer::default().explore(&scenario(true))?;
    /// assert!(summary.recovery_images > 0); // recovery was crashed too
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn recover(mut self, f: impl Fn(&mut SimMedium) -> StepResult + Send + Sync + 'a) -> Self {
        self.recover = Box::new(f);
        self
    }

    /// The invariant, checked after recovery.
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_typed::sim::{Explorer, Scenario};
    ///
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
    /// let failure = Explorer::default().explore(&scenario).expect_err("the value can be lost");
    /// assert_eq!(failure.message, "invariant violated: flag 1 with value 0");
    /// ```
    #[must_use]
    pub fn check(mut self, f: impl Fn(&mut SimMedium) -> StepResult + Send + Sync + 'a) -> Self {
        self.check = Box::new(f);
        self
    }

    /// Names what lives at an offset (for reports): given the image and the
    /// offset of a line, a label such as "root field `head`".
    ///
    /// # Examples
    ///
    /// See [`pool_labels`](super::pool_labels) for pools.
    ///
    /// ```
    /// use pmem_typed::sim::{Explorer, Scenario};
    ///
    /// // Wrong: the flag (line 0) and the value (line 0x40) are persisted together.
    /// let scenario = Scenario::new(4096)
    ///     .run(|m| {
    ///         m.store_u64(0, 1);
    ///         m.store_u64(64, 42);
    ///         m.flush_range(0, 128);
    ///         m.sfence();
    ///         Ok(())
    ///     })
    ///     .check(|m| match (m.read_u64(0), m.read_u64(64)) {
    ///         (0, _) | (1, 42) => Ok(()),
    ///         (flag, value) => Err(format!("flag {flag} with value {value}").into()),
    ///     })
    ///     .labels(|_image, offset| match offset {
    ///         0 => Some("flag".to_string()),
    ///         64 => Some("value".to_string()),
    ///         _ => None,
    ///     });
    /// let failure = Explorer::default().explore(&scenario).expect_err("no order");
    /// let report = failure.to_string();
    /// assert!(report.contains("line 0x40 (value): LOST its pending store"), "{report}");
    /// ```
    #[must_use]
    pub fn labels(mut self, f: impl Fn(&[u8], usize) -> Option<String> + Send + Sync + 'a) -> Self {
        self.labels = Box::new(f);
        self
    }
}

/// How to explore.
///
/// # Examples
///
/// ```
/// use pmem_typed::sim::{Explorer, Profile, Scenario};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let scenario = Scenario::new(4096).run(|m| {
///     for i in 0..4 {
///         m.store_u64(8 * i, 1);
///     }
///     m.flush_range(0, 32);
///     m.sfence();
///     Ok(())
/// });
/// // Crashes before the fence and at the end, by default.
/// assert_eq!(Explorer::default().explore(&scenario)?.crash_points, 2);
/// let thorough = Explorer {
///     every_store: true, // and before each store
///     threads: 1,
///     ..Explorer::new(Profile::X86Adr)
/// };
/// assert_eq!(thorough.explore(&scenario)?.crash_points, 6);
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Explorer {
    /// The persistence model.
    pub profile: Profile,
    /// Images checked per crash point before switching to sampling.
    pub budget: usize,
    /// Seed of the sampling; reports quote it.
    pub seed: u64,
    /// Also crash before every store, not only before every fence.
    pub every_store: bool,
    /// Also crash recovery itself, on images whose recovery writes.
    pub recovery_crashes: bool,
    /// Images per crash point of a recovery.
    pub recovery_budget: usize,
    /// Worker threads checking images.
    pub threads: usize,
}

impl Default for Explorer {
    fn default() -> Self {
        Self {
            profile: Profile::X86Adr,
            budget: 4096,
            seed: 0x5eed_cafe,
            every_store: false,
            recovery_crashes: true,
            recovery_budget: 64,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get().min(4)),
        }
    }
}

/// What an exploration did.
///
/// # Examples
///
/// ```
/// use pmem_typed::sim::{Explorer, Scenario};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// // Eight lines, each with one store pending at the fence: 2^8 images.
/// let scenario = Scenario::new(4096).run(|m| {
///     for line in 0..8 {
///         m.store_u64(64 * line, 1);
///     }
///     m.flush_range(0, 512);
///     m.sfence();
///     Ok(())
/// });
/// let all = Explorer::default().explore(&scenario)?;
/// assert_eq!((all.crash_points, all.exhaustive_points, all.images), (2, 2, 256));
/// let sampled = Explorer { budget: 16, ..Explorer::default() }.explore(&scenario)?;
/// assert_eq!(sampled.sampled_points, 1);
/// assert!(sampled.images <= 16);
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Crash points in the workload.
    pub crash_points: usize,
    /// Distinct images checked (after recovery) from workload crashes.
    pub images: usize,
    /// Crash points whose images were all checked.
    pub exhaustive_points: usize,
    /// Crash points where images were sampled.
    pub sampled_points: usize,
    /// Distinct images checked from crashes during recovery.
    pub recovery_images: usize,
    /// Time spent.
    pub elapsed: Duration,
}

impl Summary {
    /// Images (of both kinds) checked per second.
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_typed::sim::{Explorer, Scenario};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let scenario = Scenario::new(4096).run(|m| {
    ///     m.store(0, &[1; 512]);
    ///     m.flush_range(0, 512);
    ///     m.sfence();
    ///     Ok(())
    /// });
    /// let summary = Explorer::default().explore(&scenario)?;
    /// assert!(summary.images_per_second() > 0.0);
    /// println!("{summary}"); // "... images, ... images/s"
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn images_per_second(&self) -> f64 {
        (self.images + self.recovery_images) as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} crash points ({} exhaustive, {} sampled), {} images, {} recovery-crash images, {:.0} images/s",
            self.crash_points,
            self.exhaustive_points,
            self.sampled_points,
            self.images,
            self.recovery_images,
            self.images_per_second()
        )
    }
}

/// A crash to replay: the crash point, and how many of each pending unit's
/// stores persisted. Values are reduced modulo what exists, so any value is
/// a valid choice (which is what lets proptest generate and shrink them).
///
/// # Examples
///
/// ```
/// use pmem_typed::sim::{CrashChoice, Explorer, Scenario};
///
/// // Wrong: the flag (line 0) and the value (line 0x40) are persisted together.
/// let scenario = Scenario::new(4096)
///     .run(|m| {
///         m.store_u64(0, 1);
///         m.store_u64(64, 42);
///         m.flush_range(0, 128);
///         m.sfence();
///         Ok(())
///     })
///     .check(|m| match (m.read_u64(0), m.read_u64(64)) {
///         (0, _) | (1, 42) => Ok(()),
///         (flag, value) => Err(format!("flag {flag} with value {value}").into()),
///     });
/// let explorer = Explorer::default();
/// // Point 0 is before the fence; the pending units are the flag's line, then the value's.
/// let flag_only = CrashChoice { point: 0, kept: vec![1, 0] };
/// assert!(explorer.replay(&scenario, &flag_only).is_err());
/// let value_only = CrashChoice { point: 0, kept: vec![0, 1] };
/// assert!(explorer.replay(&scenario, &value_only).is_ok());
/// // Values wrap around (2 points; 1 store pending per line): `flag_only` again.
/// let wrapped = CrashChoice { point: 2, kept: vec![3, 2] };
/// assert!(explorer.replay(&scenario, &wrapped).is_err());
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct CrashChoice {
    /// Index of the crash point (modulo their number).
    pub point: usize,
    /// Per pending unit, stores kept (modulo its pending count + 1); missing
    /// entries keep none.
    pub kept: Vec<usize>,
}

/// Stores of one line that had not necessarily persisted at the crash.
///
/// # Examples
///
/// ```
/// use pmem_typed::sim::{Explorer, Scenario};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// // Wrong: the flag (line 0) and the value (line 0x40) are persisted together.
/// let scenario = Scenario::new(4096)
///     .run(|m| {
///         m.store_u64(0, 1);
///         m.store_u64(64, 42);
///         m.flush_range(0, 128);
///         m.sfence();
///         Ok(())
///     })
///     .check(|m| match (m.read_u64(0), m.read_u64(64)) {
///         (0, _) | (1, 42) => Ok(()),
///         (flag, value) => Err(format!("flag {flag} with value {value}").into()),
///     });
/// let failure = Explorer::default().explore(&scenario).expect_err("no order");
/// let point = failure.point.ok_or("a crash point")?;
/// let lines: Vec<_> = point.lines.iter().map(|l| (l.offset, l.kept, l.pending)).collect();
/// assert_eq!(lines, [(0, 1, 1), (64, 0, 1)]); // the flag kept, the value lost
/// assert_eq!(point.lines[1].sites[0].operation, "SimMedium::store_u64");
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LineReport {
    /// Offset of the line.
    pub offset: usize,
    /// What lives there, if the scenario says.
    pub label: Option<String>,
    /// Stores kept.
    pub kept: usize,
    /// Stores pending.
    pub pending: usize,
    /// Where the pending stores came from.
    pub sites: Vec<Site>,
}

/// A crash point, described.
///
/// # Examples
///
/// ```
/// use pmem_typed::sim::{Explorer, Scenario};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// // Wrong: the flag (line 0) and the value (line 0x40) are persisted together.
/// let scenario = Scenario::new(4096)
///     .run(|m| {
///         m.store_u64(0, 1);
///         m.store_u64(64, 42);
///         m.flush_range(0, 128);
///         m.sfence();
///         Ok(())
///     })
///     .check(|m| match (m.read_u64(0), m.read_u64(64)) {
///         (0, _) | (1, 42) => Ok(()),
///         (flag, value) => Err(format!("flag {flag} with value {value}").into()),
///     });
/// let failure = Explorer::default().explore(&scenario).expect_err("no order");
/// let point = failure.point.ok_or("a crash point")?;
/// assert_eq!((point.index, point.of, point.fences), (0, 2, 0));
/// assert_eq!(point.site.operation, "SimMedium::sfence");
/// let text = point.to_string();
/// let first_line = "crash point 0 of 2 (after 4 events, 0 fences), at `SimMedium::sfence`";
/// assert!(text.starts_with(first_line), "{text}");
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PointReport {
    /// Index of the crash point.
    pub index: usize,
    /// Number of crash points.
    pub of: usize,
    /// Events of the recording that happened before it.
    pub event: usize,
    /// Fences completed before it.
    pub fences: usize,
    /// The operation about to fence (or the last one).
    pub site: Site,
    /// The undecided lines and what the image kept of them.
    pub lines: Vec<LineReport>,
}

/// Why exploration stopped.
///
/// # Examples
///
/// ```
/// use pmem_typed::sim::{Explorer, FailureKind, Scenario};
///
/// let kind = |scenario: Scenario<'_>| Explorer::default().explore(&scenario).map_err(|f| f.kind);
/// // The workload reports an error of its own: nothing to crash.
/// let full_disk = Scenario::new(4096).run(|_| Err("no space left".into()));
/// assert_eq!(kind(full_disk), Err(FailureKind::Program));
/// // The invariant is wrong: it fails on the medium as the workload left it.
/// let wrong = Scenario::new(4096).check(|m| match m.read_u64(0) {
///     1 => Ok(()),
///     n => Err(format!("expected 1, found {n}").into()),
/// });
/// assert_eq!(kind(wrong), Err(FailureKind::NoCrash));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FailureKind {
    /// The set-up step failed.
    Setup,
    /// The workload failed without any crash.
    Program,
    /// Recovery or the invariant failed with no crash at all.
    NoCrash,
    /// Recovery or the invariant failed after a crash.
    Crash,
}

/// A crash-consistency failure, with what a person needs to understand and
/// replay it.
///
/// # Examples
///
/// ```
/// use pmem_typed::sim::{Explorer, Scenario};
///
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
/// let failure = Explorer::default().explore(&scenario).expect_err("the value can be lost");
/// let report = failure.to_string();
/// let first_line = "crash-consistency violation: invariant violated: flag 1 with value 0\n";
/// assert!(report.starts_with(first_line), "{report}");
/// assert!(report.contains("line 0x0: kept its pending store"));
/// assert!(report.contains("replay: Explorer { profile: Profile::X86Adr"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// What failed.
    pub kind: FailureKind,
    /// The error from the step that failed.
    pub message: String,
    /// The crash in the workload.
    pub point: Option<Box<PointReport>>,
    /// The crash during recovery, if the failure needed one.
    pub recovery_point: Option<Box<PointReport>>,
    /// The choice that replays the workload crash with [`Explorer::replay`].
    pub replay: Option<CrashChoice>,
    /// The explorer's settings.
    pub explorer: Box<Explorer>,
}

impl Failure {
    fn plain(kind: FailureKind, message: String, explorer: &Explorer) -> Self {
        Self {
            kind,
            message,
            point: None,
            recovery_point: None,
            replay: None,
            explorer: Box::new(explorer.clone()),
        }
    }
}

impl fmt::Display for PointReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "crash point {} of {} (after {} events, {} fences), at {}",
            self.index, self.of, self.event, self.fences, self.site
        )?;
        if self.lines.is_empty() {
            writeln!(f, "    every store before it had persisted")?;
        }
        for line in &self.lines {
            let verdict = match (line.kept, line.pending) {
                (0, 1) => "LOST its pending store".to_owned(),
                (1, 1) => "kept its pending store".to_owned(),
                (0, n) => format!("LOST all {n} pending stores"),
                (k, n) if k == n => format!("kept all {n} pending stores"),
                (k, n) => format!("kept {k} of {n} pending stores (TORN)"),
            };
            let label = line
                .label
                .as_deref()
                .map(|l| format!(" ({l})"))
                .unwrap_or_default();
            let mut sites: Vec<String> = line.sites.iter().map(ToString::to_string).collect();
            sites.dedup();
            writeln!(
                f,
                "    line {:#x}{label}: {verdict}, from {}",
                line.offset,
                sites.join(", ")
            )?;
        }
        Ok(())
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.kind {
            FailureKind::Setup => "set-up failed",
            FailureKind::Program => "the workload failed without a crash",
            FailureKind::NoCrash => "the invariant fails even without a crash",
            FailureKind::Crash => "crash-consistency violation",
        };
        writeln!(f, "{what}: {}", self.message)?;
        if let Some(point) = &self.point {
            write!(f, "  {point}")?;
        }
        if let Some(point) = &self.recovery_point {
            write!(f, "  then, during recovery, {point}")?;
        }
        if let Some(choice) = &self.replay {
            writeln!(
                f,
                "  replay: Explorer {{ profile: Profile::{:?}, seed: {:#x}, .. }}.replay(&scenario, &{choice:?})",
                self.explorer.profile, self.explorer.seed
            )?;
        }
        Ok(())
    }
}

impl std::error::Error for Failure {}

/// A small deterministic generator (SplitMix64) for sampling.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
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
    let mut rng = Rng(seed);
    let mut sample = vec![vec![0; radix.len()], radix.iter().map(|r| r - 1).collect()];
    while sample.len() < budget {
        sample.push(radix.iter().map(|&r| rng.below(r)).collect());
    }
    (sample, false)
}

impl Explorer {
    /// An explorer with default settings for `profile`.
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_typed::sim::{Explorer, Profile, Scenario};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let eadr = Explorer::new(Profile::Eadr);
    /// assert_eq!(eadr, Explorer { profile: Profile::Eadr, ..Explorer::default() });
    /// // With persistent caches, a crash can come between any two stores.
    /// let two_stores = Scenario::new(4096).run(|m| {
    ///     m.store_u64(0, 1);
    ///     m.store_u64(8, 2);
    ///     Ok(())
    /// });
    /// assert_eq!(eadr.explore(&two_stores)?.crash_points, 3);
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn new(profile: Profile) -> Self {
        Self {
            profile,
            ..Self::default()
        }
    }

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
    /// each choice applies the kept stores and afterwards puts those chunks
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
/// durable image), returning the chunks written.
fn apply_kept(image: &mut [u8], point: &CrashPoint, kept: &[usize]) -> Vec<u32> {
    let mut touched = Vec::new();
    for (unit, &k) in point.units.iter().zip(kept) {
        for store in &unit.stores[..k] {
            let at = store.chunk as usize * CHUNK;
            image[at..at + CHUNK].copy_from_slice(&store.value.to_le_bytes());
            touched.push(store.chunk);
        }
    }
    touched
}

/// Puts the durable bytes back into the chunks `apply_kept` wrote.
fn restore(image: &mut [u8], durable: &[u8], touched: &[u32]) {
    for &chunk in touched {
        let at = chunk as usize * CHUNK;
        image[at..at + CHUNK].copy_from_slice(&durable[at..at + CHUNK]);
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
