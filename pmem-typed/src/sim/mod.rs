//! A crash simulator: checks that a program's persistent state survives a
//! power failure at any point (feature `sim`).
//!
//! A [`Scenario`] runs on a [`SimMedium`], which records every store (in
//! 8-byte words, in steps: see [what the model sees](SimMedium#what-the-model-sees)),
//! flush and fence. The [`Explorer`] then places a crash before every fence
//! (and, optionally, before every store), works out every durable image the
//! hardware [`Profile`] and [`Flush`] instruction allow there — each cache
//! line with pending writes keeps some of them — and checks each image after
//! recovery: exhaustively while the count fits a budget, otherwise by seeded
//! sampling, with images deduplicated. Recovery is crashed too, at every
//! point including its end, and so is the recovery of a crashed recovery, to
//! a [depth](Explorer::recovery_depth). A panic in recovery or in the check
//! is a failure like any other.
//!
//! The program marks [milestones](SimMedium::milestone) as it goes ("insert
//! 3 returned"); the check, run on each crash image, asks which ones the
//! crash came after ([`SimMedium::reached`]), so it can test durability
//! ("what returned survives") as well as consistency.
//!
//! A failure names the crash point (the operation and source location of the
//! fence about to run), the lines and fields whose stores were lost or kept,
//! and the [`CrashChoice`] that replays it. [`proptest`] integrates it with
//! property tests, so a failing case shrinks to the fewest operations, the
//! smallest values and the fewest lines kept.
//!
//! # Example: a pool protocol
//!
//! A list whose insertions are durable once `alloc` returns:
//!
//! ```
//! use pmem_typed::sim::{Explorer, Scenario, pool_labels};
//! use pmem_typed::{PPtr, Persist, Pool};
//!
//! #[derive(Clone, Copy, Persist)]
//! #[repr(C)]
//! struct Root { head: PPtr<Node> }
//! #[derive(Clone, Copy, Persist)]
//! #[repr(C)]
//! struct Node { value: u64, next: PPtr<Node> }
//!
//! let scenario = Scenario::new(64 * 1024)
//!     .setup(|m| {
//!         Pool::<Root, _>::create_on(m, "list", Root { head: PPtr::null() })?;
//!         Ok(())
//!     })
//!     .run(|m| {
//!         let mut pool = Pool::<Root, _>::open_on(m, "list")?;
//!         let head = pool.root().fields().head;
//!         for value in [7, 8] {
//!             let next = *pool.get(head)?;
//!             pool.alloc(head, Node { value, next })?;
//!             pool.medium().milestone(format!("insert {value} returned"));
//!         }
//!         Ok(())
//!     })
//!     .recover(|m| {
//!         Pool::<Root, _>::open_on(m, "list")?;
//!         Ok(())
//!     })
//!     .check(|m| {
//!         let pool = Pool::<Root, _>::open_on(m, "list")?;
//!         let mut values = Vec::new();
//!         let mut node = pool.get(pool.root())?.head;
//!         while !node.is_null() {
//!             let n = pool.get(node)?;
//!             values.push(n.value);
//!             node = n.next;
//!         }
//!         // Durability: every insertion that returned before the crash is there.
//!         for value in [7, 8] {
//!             if pool.medium().reached(&format!("insert {value} returned")) && !values.contains(&value) {
//!                 return Err(format!("insert {value} returned but {value} is lost").into());
//!             }
//!         }
//!         let report = pool.check();
//!         if report.is_consistent() { Ok(()) } else { Err(report.to_string().into()) }
//!     })
//!     .labels(pool_labels::<Root>);
//! let summary = Explorer::default().explore(&scenario).unwrap_or_else(|f| panic!("{f}"));
//! assert!(summary.images > 1);
//! ```

mod explore;
mod explorer;
mod labels;
mod medium;
mod model;
pub mod proptest;
mod report;
mod scenario;

pub use explorer::Explorer;
pub use labels::pool_labels;
pub use medium::{SimMedium, Site};
pub use model::{Flush, Profile};
pub use report::{CrashChoice, Failure, FailureKind, LineReport, PointReport, Summary};
pub use scenario::{Scenario, StepResult};
