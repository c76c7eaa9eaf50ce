//! The explorer's settings: what to crash, how many images, which model.
//! The search itself is `explore`'s.

use super::model::{Flush, Model, Profile};

/// How to explore: the settings, and the search itself.
///
/// Build one with [`Explorer::new`] and the methods that set one setting
/// each; the fields are public to read (a [`Failure`](super::Failure) carries the explorer
/// that found it), and new settings may be added, so a struct literal is
/// not possible outside this crate.
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
/// let thorough = Explorer::new()
///     .profile(Profile::X86Adr)
///     .every_store(true) // and before each store
///     .threads(1);
/// assert_eq!(thorough.explore(&scenario)?.crash_points, 6);
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Explorer {
    /// The persistence model.
    pub profile: Profile,
    /// The flush instruction modelled.
    pub flush: Flush,
    /// Images checked per crash point before switching to sampling.
    pub budget: usize,
    /// Seed of the sampling; reports quote it.
    pub seed: u64,
    /// Also crash before every store, not only before every fence.
    pub every_store: bool,
    /// How deep to crash recovery: 0 never, 1 crashes recovery, 2 also the
    /// recovery of a crashed recovery, and so on.
    pub recovery_depth: usize,
    /// Images per crash point of a recovery.
    pub recovery_budget: usize,
    /// Worker threads checking images.
    pub threads: usize,
}

impl Default for Explorer {
    fn default() -> Self {
        Self {
            profile: Profile::X86Adr,
            flush: Flush::Clwb,
            budget: 4096,
            seed: 0x5eed_cafe,
            every_store: false,
            recovery_depth: 2,
            recovery_budget: 64,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get().min(4)),
        }
    }
}

impl Explorer {
    /// An explorer with the default settings: the x86 ADR profile with
    /// CLWB, 4096 images per crash point, crashes before fences (not
    /// stores), recovery crashed too, two deep (64 images per point), up to
    /// four threads. The methods below change one setting each.
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_typed::sim::{Explorer, Profile, Scenario};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let eadr = Explorer::new().profile(Profile::Eadr);
    /// assert_eq!(eadr.profile, Profile::Eadr);
    /// assert_eq!(eadr.budget, Explorer::default().budget);
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
    pub fn new() -> Self {
        Self::default()
    }

    /// The persistence model (default [`Profile::X86Adr`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_typed::sim::{Explorer, Profile, Scenario};
    ///
    /// // Two stores to one line, flushed and fenced together.
    /// let scenario = Scenario::new(4096).run(|m| {
    ///     m.store_u64(0, 1);
    ///     m.store_u64(8, 2);
    ///     m.flush_range(0, 16);
    ///     m.sfence();
    ///     Ok(())
    /// });
    /// let images = |profile| Explorer::new().profile(profile).explore(&scenario).map(|s| s.images);
    /// // x86 persists a line's stores in order: none, the first, or both.
    /// assert_eq!(images(Profile::X86Adr).ok(), Some(3));
    /// // The conservative model lets any subset of the words persist.
    /// assert_eq!(images(Profile::Conservative).ok(), Some(4));
    /// ```
    #[must_use]
    pub fn profile(mut self, profile: Profile) -> Self {
        self.profile = profile;
        self
    }

    /// Images checked per crash point before switching to seeded sampling
    /// (default 4096); a sample holds this many choices, duplicates dropped.
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
    /// let sampled = Explorer::new().budget(16).explore(&scenario)?;
    /// assert_eq!((sampled.exhaustive_points, sampled.sampled_points), (1, 1));
    /// assert!(sampled.images <= 16); // the end is the sample's image keeping all
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn budget(mut self, images: usize) -> Self {
        self.budget = images;
        self
    }

    /// The seed of the sampling (default `0x5eed_cafe`): one seed, one
    /// sample. Reports quote it, so a sampled failure can be found again.
    #[must_use]
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Whether to crash before every store too, not only before every fence
    /// (default `false`; the eADR profile always does).
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_typed::sim::{Explorer, Scenario};
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
    /// // Before the fence and at the end, then also before each of the four stores.
    /// assert_eq!(Explorer::new().explore(&scenario)?.crash_points, 2);
    /// assert_eq!(Explorer::new().every_store(true).explore(&scenario)?.crash_points, 6);
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn every_store(mut self, every_store: bool) -> Self {
        self.every_store = every_store;
        self
    }

    /// The flush instruction modelled (default [`Flush::Clwb`], which
    /// needs a fence; see [`Flush`]).
    #[must_use]
    pub fn flush(mut self, flush: Flush) -> Self {
        self.flush = flush;
        self
    }

    /// How deep to crash recovery (default 2): at depth 1 every recovery
    /// that writes is crashed at each of its crash points, and the images
    /// recovered and checked; at depth 2 the recovery of each of those is
    /// crashed too; 0 never crashes recovery. A failure reports the crash at
    /// each depth it needed.
    ///
    /// # Examples
    ///
    /// A recovery that adds a logged amount, then clears the log: crashed
    /// between the two, it runs again and adds it twice.
    ///
    /// ```
    /// use pmem_typed::sim::{Explorer, Scenario};
    ///
    /// let scenario = Scenario::new(4096)
    ///     .setup(|m| {
    ///         m.store_u64(0, 5); // the balance
    ///         m.store_u64(64, 1); // a logged deposit of 1, not yet applied
    ///         Ok(())
    ///     })
    ///     .recover(|m| {
    ///         let deposit = m.read_u64(64);
    ///         if deposit != 0 {
    ///             let balance = m.read_u64(0);
    ///             m.store_u64(0, balance + deposit); // not idempotent
    ///             m.flush_range(0, 8);
    ///             m.sfence();
    ///             m.store_u64(64, 0);
    ///             m.flush_range(64, 8);
    ///             m.sfence();
    ///         }
    ///         Ok(())
    ///     })
    ///     .check(|m| match m.read_u64(0) {
    ///         6 => Ok(()),
    ///         balance => Err(format!("balance {balance}").into()),
    ///     });
    /// assert!(Explorer::new().recovery_depth(0).explore(&scenario).is_ok());
    /// let failure = Explorer::new().explore(&scenario).expect_err("applied twice");
    /// assert_eq!(failure.recovery_points.len(), 1, "one crash in recovery");
    /// assert!(failure.message.contains("balance 7"), "{failure}");
    /// ```
    #[must_use]
    pub fn recovery_depth(mut self, depth: usize) -> Self {
        self.recovery_depth = depth;
        self
    }

    /// Images checked per crash point of a recovery before sampling
    /// (default 64).
    #[must_use]
    pub fn recovery_budget(mut self, images: usize) -> Self {
        self.recovery_budget = images;
        self
    }

    /// Worker threads checking images (default: the available parallelism,
    /// at most four; 0 counts as 1). Results do not depend on it: the
    /// failure reported is the first in a fixed order.
    #[must_use]
    pub fn threads(mut self, threads: usize) -> Self {
        self.threads = threads;
        self
    }

    /// The model the settings describe.
    pub(super) fn model(&self) -> Model {
        Model {
            profile: self.profile,
            flush: self.flush,
            every_store: self.every_store,
        }
    }
}
