//! What to check: a [`Scenario`]'s four steps (set-up, workload, recovery,
//! invariant) and what they return.

use std::fmt;

use super::medium::SimMedium;

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

pub(super) type Step<'a> = Box<dyn Fn(&mut SimMedium) -> StepResult + Send + Sync + 'a>;
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
    pub(super) size: usize,
    pub(super) capacity: usize,
    pub(super) setup: Step<'a>,
    pub(super) run: Step<'a>,
    pub(super) recover: Step<'a>,
    pub(super) check: Step<'a>,
    pub(super) labels: Labeler<'a>,
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
