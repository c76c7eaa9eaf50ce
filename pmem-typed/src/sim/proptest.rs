//! Property-test integration: a runner that explores generated workloads
//! and reduces a failure to the fewest operations, the smallest values and
//! the fewest lines kept; and strategies for crash choices.
//!
//! Two ways to use it:
//!
//! - [`check_workloads`]: each generated case is explored as
//!   [`Explorer::explore`] would explore it (every crash point, every image
//!   the profile allows within the explorer's budget, crashes during
//!   recovery to its depth), so it finds what exhaustive exploration finds.
//!   A failing case is shrunk by proptest (fewer operations, smaller
//!   values), then operations are removed one at a time while the failure
//!   stays; the report is the earliest failing crash point, keeping the
//!   fewest lines. Where a crash point has more images than the budget, it
//!   is sampled, and the [`Summary`] says so (`sampled_points`, and
//!   `sampled_recovery_points` for recovery's crash points).
//! - [`crash_choices`] in your own `proptest!` tests, replaying each case
//!   with [`Explorer::replay`]: one crash per case, cheaper but weaker (it
//!   may miss a crash the explorer would find). Put the crash choice first
//!   among the inputs, so it shrinks first.
//!
//! ```
//! use pmem_typed::sim::proptest::crash_choices;
//! use pmem_typed::sim::{Explorer, Scenario};
//! use proptest::prelude::*;
//!
//! proptest!(|(crash in crash_choices(), values in prop::collection::vec(any::<u64>(), 1..4))| {
//!     // Append values to a log: entry first (persisted), then the length.
//!     let scenario = Scenario::new(4096)
//!         .run(|m| {
//!             for (i, v) in values.iter().enumerate() {
//!                 m.store_u64(64 + 8 * i, *v);
//!                 m.flush_range(64 + 8 * i, 8);
//!                 m.sfence();
//!                 m.store_u64(0, i as u64 + 1);
//!                 m.flush_range(0, 8);
//!                 m.sfence();
//!             }
//!             Ok(())
//!         })
//!         .check(|m| {
//!             let len = m.read_u64(0) as usize;
//!             (0..len).try_for_each(|i| if m.read_u64(64 + 8 * i) == values[i] { Ok(()) } else {
//!                 Err(format!("entry {i} not durable").into())
//!             })
//!         });
//!     Explorer::default().replay(&scenario, &crash).map_err(|f| TestCaseError::fail(f.to_string()))?;
//! });
//! ```

use std::fmt;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestError, TestRunner};

use std::cell::RefCell;

use super::{CrashChoice, Explorer, Failure, Scenario, Summary};

/// Crash choices: a crash point, for up to 64 pending units which of their
/// choices each kept, and perhaps a crash during the recovery that follows.
/// Shrinks toward the first point, toward keeping nothing, and toward no
/// crash in recovery.
///
/// # Examples
///
/// Proptest finds a crash that breaks a wrong protocol; replaying it says
/// which crash it is, with the values reduced to what exists:
///
/// ```
/// use pmem_typed::sim::proptest::crash_choices;
/// use pmem_typed::sim::{CrashChoice, Explorer, Scenario};
/// use proptest::test_runner::{TestCaseError, TestError, TestRunner};
///
/// // The flag (line 0) and the value (line 1) are flushed and fenced together.
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
/// let result = TestRunner::deterministic().run(&crash_choices(), |crash| {
///     explorer.replay(&scenario, &crash).map_err(|f| TestCaseError::fail(f.to_string()))
/// });
/// let Err(TestError::Fail(_, crash)) = result else { panic!("the value can be lost") };
/// let failure = explorer.replay(&scenario, &crash).expect_err("replays");
/// // Before the fence, with the flag's line kept and the value's lost.
/// assert_eq!(failure.replay, Some(CrashChoice::new(0, vec![1, 0])));
/// ```
pub fn crash_choices() -> impl Strategy<Value = CrashChoice> {
    let crash = || {
        (any::<u32>(), prop::collection::vec(0usize..64, 0..64))
            .prop_map(|(point, kept)| CrashChoice::new(point as usize, kept))
    };
    (crash(), prop::option::of(crash())).prop_map(|(crash, in_recovery)| match in_recovery {
        Some(then) => crash.with_recovery_crash(then),
        None => crash,
    })
}

/// A workload that breaks crash consistency, reduced.
///
/// # Examples
///
/// Counting an entry before it is durable loses it in a crash; the failure
/// is reduced to one append:
///
/// ```
/// use pmem_typed::Medium;
/// use pmem_typed::sim::proptest::check_workloads;
/// use pmem_typed::sim::{Explorer, FailureKind, Scenario};
/// use proptest::prelude::*;
/// use proptest::test_runner::Config;
///
/// /// Appends `values` to a log: their count at offset 0, entries from 64.
/// fn append(values: &[u64]) -> Scenario<'static> {
///     let (written, expected) = (values.to_vec(), values.to_vec());
///     Scenario::new(4096)
///         .run(move |m| {
///             for (i, &value) in written.iter().enumerate() {
///                 m.store_u64(0, i as u64 + 1); // wrong: counted first
///                 m.persist(0, 8);
///                 m.store_u64(64 + 8 * i, value);
///                 m.persist(64 + 8 * i, 8);
///             }
///             Ok(())
///         })
///         .check(move |m| {
///             let count = m.read_u64(0) as usize;
///             if (0..count).all(|i| m.read_u64(64 + 8 * i) == expected[i]) {
///                 Ok(())
///             } else {
///                 Err(format!("an entry of {count} is lost").into())
///             }
///         })
/// }
///
/// let config = Config { cases: 32, failure_persistence: None, ..Config::default() };
/// let values = prop::collection::vec(1..1000_u64, 1..5);
/// let found = check_workloads(&Explorer::default(), config, values, append)
///     .expect_err("the count can be durable before the entry");
/// assert_eq!(found.ops.len(), 1);
/// assert_eq!(found.failure.kind, FailureKind::Crash);
/// assert!(found.to_string().starts_with("minimal workload (1 operation): ["));
/// ```
#[derive(Clone, Debug)]
pub struct Counterexample<Op> {
    /// The operations: removing any one of them makes every crash pass.
    pub ops: Vec<Op>,
    /// The failure at the earliest failing crash point, keeping the fewest lines.
    pub failure: Box<Failure>,
}

impl<Op: fmt::Debug> fmt::Display for Counterexample<Op> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "minimal workload ({}): {:?}",
            crate::counted(self.ops.len() as u64, "operation"),
            self.ops
        )?;
        write!(f, "{}", self.failure)
    }
}

impl<Op: fmt::Debug> std::error::Error for Counterexample<Op> {}

/// Checks `config.cases` generated workloads, exploring each as
/// [`Explorer::explore`] does. On a failure, proptest shrinks it, then
/// operations are removed one at a time while the failure stays (see the
/// module docs).
///
/// # Errors
/// The minimised [`Counterexample`].
///
/// # Panics
/// If proptest aborts (for instance when a strategy rejects too many values).
///
/// # Examples
///
/// Appending to a log, each entry durable before it is counted:
///
/// ```
/// use pmem_typed::Medium;
/// use pmem_typed::sim::proptest::check_workloads;
/// use pmem_typed::sim::{Explorer, Scenario};
/// use proptest::prelude::*;
/// use proptest::test_runner::Config;
///
/// /// Appends `values` to a log: their count at offset 0, entries from 64.
/// fn append(values: &[u64]) -> Scenario<'static> {
///     let (written, expected) = (values.to_vec(), values.to_vec());
///     Scenario::new(4096)
///         .run(move |m| {
///             for (i, &value) in written.iter().enumerate() {
///                 m.store_u64(64 + 8 * i, value);
///                 m.persist(64 + 8 * i, 8); // durable before it is counted
///                 m.store_u64(0, i as u64 + 1);
///                 m.persist(0, 8);
///             }
///             Ok(())
///         })
///         .check(move |m| {
///             let count = m.read_u64(0) as usize;
///             if (0..count).all(|i| m.read_u64(64 + 8 * i) == expected[i]) {
///                 Ok(())
///             } else {
///                 Err(format!("an entry of {count} is lost").into())
///             }
///         })
/// }
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let config = Config { cases: 32, failure_persistence: None, ..Config::default() };
/// let values = prop::collection::vec(1..1000_u64, 1..5);
/// let summary = check_workloads(&Explorer::default(), config, values, append)?;
/// assert_eq!(summary.sampled_points, 0, "every crash point of every case was exhaustive");
/// assert_eq!(summary.sampled_recovery_points, 0);
/// # Ok(()) }
/// ```
pub fn check_workloads<Op: Clone + fmt::Debug>(
    explorer: &Explorer,
    config: Config,
    ops: impl Strategy<Value = Vec<Op>>,
    scenario: impl Fn(&[Op]) -> Scenario<'static>,
) -> Result<Summary, Counterexample<Op>> {
    let mut runner = TestRunner::new(config);
    let total = RefCell::new(Summary::default());
    let result = runner.run(&ops, |ops| {
        let summary = explorer
            .explore(&scenario(&ops))
            .map_err(|failure| TestCaseError::fail(failure.to_string()))?;
        total.borrow_mut().add(&summary);
        Ok(())
    });
    let mut ops = match result {
        Ok(()) => return Ok(total.into_inner()),
        Err(TestError::Fail(_, ops)) => ops,
        Err(TestError::Abort(reason)) => panic!("proptest aborted: {reason}"),
    };
    let mut failure = match explorer.explore(&scenario(&ops)) {
        Err(failure) => failure,
        Ok(_) => unreachable_pass(),
    };
    'reduce: loop {
        for i in 0..ops.len() {
            let mut fewer = ops.clone();
            fewer.remove(i);
            if let Err(smaller) = explorer.explore(&scenario(&fewer)) {
                (ops, failure) = (fewer, smaller);
                continue 'reduce;
            }
        }
        return Err(Counterexample {
            ops,
            failure: Box::new(failure),
        });
    }
}

#[cold]
fn unreachable_pass() -> ! {
    panic!(
        "a workload that failed under proptest passed when explored again: the scenario is not deterministic"
    )
}
