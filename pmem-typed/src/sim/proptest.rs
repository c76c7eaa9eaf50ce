//! Property-test integration: strategies for crash choices, and a runner
//! that checks generated workloads under generated crashes and reduces a
//! failure to the fewest operations and the fewest lines kept.
//!
//! Two ways to use it:
//!
//! - [`crash_choices`] in your own `proptest!` tests, replaying each case with
//!   [`Explorer::replay`]. Put the crash choice first among the inputs, so it
//!   shrinks first (crash points do not move when later operations are
//!   removed).
//! - [`check_workloads`], which runs proptest and then minimises what it
//!   found with exhaustive exploration: operations are removed one at a time
//!   while some crash still breaks the invariant, and at the earliest failing
//!   crash point the image keeping the fewest lines is reported.
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
//!                 Err(format!("entry {i} not durable"))
//!             })
//!         });
//!     Explorer::default().replay(&scenario, &crash).map_err(|f| TestCaseError::fail(f.to_string()))?;
//! });
//! ```

use std::fmt;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestError, TestRunner};

use super::{CrashChoice, Explorer, Failure, Scenario};

/// Crash choices: a crash point and, for up to 64 pending units, how many
/// stores each kept. Shrinks toward the first point and toward keeping nothing.
pub fn crash_choices() -> impl Strategy<Value = CrashChoice> {
    (any::<u32>(), prop::collection::vec(0usize..64, 0..64)).prop_map(|(point, kept)| CrashChoice {
        point: point as usize,
        kept,
    })
}

/// A workload that breaks crash consistency, reduced.
#[derive(Clone, Debug)]
pub struct Counterexample<Op> {
    /// The operations: removing any one of them makes every crash pass.
    pub ops: Vec<Op>,
    /// The failure at the earliest failing crash point, keeping the fewest lines.
    pub failure: Failure,
}

impl<Op: fmt::Debug> fmt::Display for Counterexample<Op> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "minimal workload ({} operations): {:?}",
            self.ops.len(),
            self.ops
        )?;
        write!(f, "{}", self.failure)
    }
}

impl<Op: fmt::Debug> std::error::Error for Counterexample<Op> {}

/// Checks generated workloads, each under a generated crash, with
/// `config.cases` cases. On a failure, proptest shrinks it, then the
/// workload is minimised with exhaustive exploration (see the module docs).
///
/// # Errors
/// The minimised [`Counterexample`].
///
/// # Panics
/// If proptest aborts (for instance when a strategy rejects too many values).
pub fn check_workloads<Op: Clone + fmt::Debug>(
    explorer: &Explorer,
    config: Config,
    ops: impl Strategy<Value = Vec<Op>>,
    scenario: impl Fn(&[Op]) -> Scenario<'static>,
) -> Result<(), Counterexample<Op>> {
    let mut runner = TestRunner::new(config);
    let result = runner.run(&(crash_choices(), ops), |(crash, ops)| {
        explorer
            .replay(&scenario(&ops), &crash)
            .map_err(|failure| TestCaseError::fail(failure.to_string()))
    });
    let (crash, mut ops) = match result {
        Ok(()) => return Ok(()),
        Err(TestError::Fail(_, (crash, ops))) => (crash, ops),
        Err(TestError::Abort(reason)) => panic!("proptest aborted: {reason}"),
    };
    let mut failure = match explorer.explore(&scenario(&ops)) {
        Err(failure) => failure,
        // The sampled crash failed but sampling at that point missed it: keep it.
        Ok(_) => match explorer.replay(&scenario(&ops), &crash) {
            Err(failure) => return Err(Counterexample { ops, failure }),
            Ok(()) => unreachable_pass(),
        },
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
        return Err(Counterexample { ops, failure });
    }
}

#[cold]
fn unreachable_pass() -> ! {
    panic!("a crash that failed under proptest passed on replay: the scenario is not deterministic")
}
