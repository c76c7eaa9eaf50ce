//! A crash simulator: checks that a program's persistent state survives a
//! power failure at any point (feature `sim`).
//!
//! A [`Scenario`] runs on a [`SimMedium`], which records every store (in
//! 8-byte words), flush and fence. The [`Explorer`] then places a crash
//! before every fence (and, optionally, before every store), works out every
//! durable image the hardware [`Profile`] allows there — each cache line with
//! pending writes keeps some prefix of them — and checks each image after
//! recovery: exhaustively while the count fits a budget, otherwise by seeded
//! sampling, with images deduplicated by hash. Recovery is crashed too.
//!
//! A failure names the crash point (the operation and source location of the
//! fence about to run), the lines and fields whose stores were lost or kept,
//! and the [`CrashChoice`] that replays it. [`proptest`] integrates it with
//! property tests, so a failing case shrinks to the fewest operations and the
//! fewest lines kept.
//!
//! # Example: a pool protocol
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
//!         let root = pool.root();
//!         pool.alloc(root.fields().head, Node { value: 7, next: PPtr::null() })?;
//!         Ok(())
//!     })
//!     .recover(|m| {
//!         Pool::<Root, _>::open_on(m, "list")?;
//!         Ok(())
//!     })
//!     .check(|m| {
//!         let pool = Pool::<Root, _>::open_on(m, "list")?;
//!         let head = pool.get(pool.root())?.head;
//!         if !head.is_null() && pool.get(head)?.value != 7 {
//!             return Err("published node without its value".into());
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
pub use model::Profile;
pub use report::{CrashChoice, Failure, FailureKind, LineReport, PointReport, Summary};
pub use scenario::{Scenario, StepResult};
