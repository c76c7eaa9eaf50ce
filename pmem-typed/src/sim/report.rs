//! What an exploration found: the [`Summary`] of a success, and for a
//! failure the crash point, the lines it kept or lost, and the choice that
//! replays it, each with the text a person reads.

use std::fmt;
use std::time::Duration;

use super::explorer::Explorer;
use super::medium::Site;
use super::model::Flush;

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
/// let sampled = Explorer::new().budget(16).explore(&scenario)?;
/// assert_eq!(sampled.sampled_points, 1);
/// assert!(sampled.images <= 16);
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Summary {
    /// Crash points in the workload.
    pub crash_points: usize,
    /// Distinct images checked (after recovery) from workload crashes.
    pub images: usize,
    /// Crash points whose images were all checked.
    pub exhaustive_points: usize,
    /// Crash points where images were sampled.
    pub sampled_points: usize,
    /// Images checked from crashes during recovery. Each worker thread
    /// skips the images it has checked already, so with several threads an
    /// image may be counted (and checked) more than once, and the count can
    /// vary from run to run; the verdict and the failure reported do not.
    pub recovery_images: usize,
    /// Crash points of recovery where images were sampled, over the
    /// explorer's [`recovery_budget`](super::Explorer::recovery_budget); a
    /// recovery crashed from several images counts each time.
    pub sampled_recovery_points: usize,
    /// Time spent.
    pub elapsed: Duration,
}

impl Summary {
    /// Adds another exploration's counts (and time) to these.
    pub(super) fn add(&mut self, other: &Summary) {
        self.crash_points += other.crash_points;
        self.images += other.images;
        self.exhaustive_points += other.exhaustive_points;
        self.sampled_points += other.sampled_points;
        self.recovery_images += other.recovery_images;
        self.sampled_recovery_points += other.sampled_recovery_points;
        self.elapsed += other.elapsed;
    }

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
            "{} crash points ({} exhaustive, {} sampled), {} images, {} recovery-crash images ({} recovery points sampled), {:.0} images/s",
            self.crash_points,
            self.exhaustive_points,
            self.sampled_points,
            self.images,
            self.recovery_images,
            self.sampled_recovery_points,
            self.images_per_second()
        )
    }
}

/// A crash to replay: the crash point, how many of each pending unit's
/// stores persisted and, for a failure that needed one, the crash during
/// the recovery that followed. Values are reduced modulo what exists, so
/// any value is a valid choice (which is what lets proptest generate and
/// shrink them).
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
/// let flag_only = CrashChoice::new(0, vec![1, 0]);
/// assert!(explorer.replay(&scenario, &flag_only).is_err());
/// let value_only = CrashChoice::new(0, vec![0, 1]);
/// assert!(explorer.replay(&scenario, &value_only).is_ok());
/// // Values wrap around (2 points; 1 store pending per line): `flag_only` again.
/// let wrapped = CrashChoice::new(2, vec![3, 2]);
/// assert!(explorer.replay(&scenario, &wrapped).is_err());
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct CrashChoice {
    /// Index of the crash point (modulo their number).
    pub point: usize,
    /// Per pending unit, which of its choices persisted (modulo their
    /// number): 0 keeps none of its stores; for a unit whose stores were
    /// made one at a time, `k` keeps the first `k`. Missing entries keep none.
    pub kept: Vec<usize>,
    /// The crash during the recovery of this image, if any.
    pub in_recovery: Option<Box<CrashChoice>>,
}

impl CrashChoice {
    /// A crash at `point`, keeping `kept` of each unit; recovery is not crashed.
    ///
    /// # Examples
    ///
    /// See [`CrashChoice`].
    #[must_use]
    pub fn new(point: usize, kept: Vec<usize>) -> Self {
        Self {
            point,
            kept,
            in_recovery: None,
        }
    }

    /// The same crash, then `crash` during the recovery of its image.
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_typed::sim::CrashChoice;
    ///
    /// let twice = CrashChoice::new(0, vec![1]).with_recovery_crash(CrashChoice::new(1, vec![0]));
    /// assert_eq!(twice.depth(), 1);
    /// ```
    #[must_use]
    pub fn with_recovery_crash(mut self, crash: CrashChoice) -> Self {
        self.in_recovery = Some(Box::new(crash));
        self
    }

    /// How many crashes during recovery follow this one.
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_typed::sim::CrashChoice;
    ///
    /// assert_eq!(CrashChoice::new(3, vec![]).depth(), 0);
    /// ```
    #[must_use]
    pub fn depth(&self) -> usize {
        self.in_recovery.as_ref().map_or(0, |c| 1 + c.depth())
    }
}

/// The Rust expression that builds the choice, to paste into a regression test.
///
/// # Examples
///
/// ```
/// use pmem_typed::sim::CrashChoice;
///
/// let choice = CrashChoice::new(2, vec![1, 0]).with_recovery_crash(CrashChoice::new(0, vec![3]));
/// assert_eq!(
///     choice.to_string(),
///     "CrashChoice::new(2, vec![1, 0]).with_recovery_crash(CrashChoice::new(0, vec![3]))"
/// );
/// ```
impl fmt::Display for CrashChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CrashChoice::new({}, vec!{:?})", self.point, self.kept)?;
        if let Some(crash) = &self.in_recovery {
            write!(f, ".with_recovery_crash({crash})")?;
        }
        Ok(())
    }
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
#[non_exhaustive]
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
#[non_exhaustive]
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
    /// The last milestone the workload had marked before the crash.
    pub milestone: Option<String>,
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
/// assert!(report.contains("replay: Explorer::new().profile(Profile::X86Adr).seed("));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Failure {
    /// What failed.
    pub kind: FailureKind,
    /// The error from the step that failed.
    pub message: String,
    /// The crash in the workload.
    pub point: Option<Box<PointReport>>,
    /// The crashes during recovery the failure needed, one per depth: the
    /// first crashed the recovery of the workload's crash image, the next
    /// the recovery of that, and so on.
    pub recovery_points: Box<[PointReport]>,
    /// The image recovery failed on: the medium as the last crash left it.
    pub image: Option<Box<[u8]>>,
    /// The choice that replays the failure with [`Explorer::replay`].
    pub replay: Option<CrashChoice>,
    /// The explorer's settings.
    pub explorer: Box<Explorer>,
}

impl Failure {
    pub(super) fn plain(kind: FailureKind, message: String, explorer: &Explorer) -> Self {
        Self {
            kind,
            message,
            point: None,
            recovery_points: Box::default(),
            image: None,
            replay: None,
            explorer: Box::new(explorer.clone()),
        }
    }
}

impl fmt::Display for PointReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let milestone = self
            .milestone
            .as_deref()
            .map(|m| format!(", past milestone \"{m}\""))
            .unwrap_or_default();
        writeln!(
            f,
            "crash point {} of {} (after {} events, {} fences{milestone}), at {}",
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
        for (depth, point) in self.recovery_points.iter().enumerate() {
            let whose = if depth == 0 { "" } else { "that " };
            write!(
                f,
                "  then, during {whose}recovery (depth {}), {point}",
                depth + 1
            )?;
        }
        if let Some(choice) = &self.replay {
            let flush = match self.explorer.flush {
                Flush::Clwb => String::new(),
                other => format!(".flush(Flush::{other:?})"),
            };
            writeln!(
                f,
                "  replay: Explorer::new().profile(Profile::{:?}){flush}.seed({:#x}).replay(&scenario, &{choice})",
                self.explorer.profile, self.explorer.seed
            )?;
        }
        Ok(())
    }
}

impl std::error::Error for Failure {}
