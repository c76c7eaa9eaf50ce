//! Typed pools in persistent memory, without transactions.
//!
//! A [`Pool<R>`](Pool) is a file (persistent memory, or any file standing in
//! for it) holding a root object of type `R` and a heap of objects reachable
//! from it through persistent pointers. Every update follows one discipline:
//! **write, then persist, then publish**.
//!
//! - [`PPtr<T>`] is an 8-byte offset, itself plain data, so it lives inside
//!   persistent structs; [`PSlice<T>`] is an offset and a length. Resolving
//!   either through the pool checks bounds and alignment: a corrupted pointer
//!   is an [`Error`], never undefined behaviour.
//! - [`Pool::get_mut`] returns a [`Guard`] that dereferences to `&mut T` and,
//!   when dropped, flushes exactly the cache lines that changed and fences
//!   once. [`Pool::set`] writes and persists one field; 8-byte fields are
//!   written with one store, so they are failure-atomic, which is how
//!   [`Pool::publish`] makes an object reachable.
//! - [`Pool::alloc`] writes an object's initial value, persists it, and then
//!   publishes its pointer into a persistent location, failure-atomically
//!   with the allocation itself; [`Pool::free`] unpublishes and frees. After a
//!   crash at any point, opening the pool finishes or rolls back the
//!   interrupted operation: no block is both reachable and free, none leaks.
//! - `#[derive(Persist)]` checks a struct's layout at compile time (`repr(C)`,
//!   plain-data fields, no padding, no small field straddling an 8-byte
//!   boundary), records a stable fingerprint of it, and generates field
//!   projections: `ptr.fields().balance` is a `PPtr<u64>`.
//!
//! # Example
//!
//! ```
//! use pmem_typed::{PPtr, Persist, Pool};
//!
//! #[derive(Clone, Copy, Persist)]
//! #[repr(C)]
//! struct Account { id: u64, balance: u64 }
//!
//! #[derive(Clone, Copy, Persist)]
//! #[repr(C)]
//! struct Bank { accounts: u64, newest: PPtr<Account> }
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let path = dir.path().join("bank.pool");
//! {
//!     let mut pool = Pool::<Bank>::create(&path, "bank", 1 << 20)?;
//!     let bank = pool.root();
//!     // Allocate, initialise and publish in one failure-atomic step.
//!     let account = pool.alloc(bank.fields().newest, Account { id: 1, balance: 100 })?;
//!     // Update one field: written and persisted, nothing else flushed.
//!     pool.set(account.fields().balance, 150)?;
//!     pool.set(bank.fields().accounts, 1)?;
//! }
//! let pool = Pool::<Bank>::open(&path, "bank")?;        // checks layout and root type
//! let newest = pool.get(pool.root())?.newest;
//! assert_eq!(pool.get(newest)?.balance, 150);
//! assert!(pool.check().is_consistent());                 // no leaks, no dangling pointers
//! # Ok(()) }
//! ```
//!
//! # Safety model
//!
//! No sequence of safe calls, whatever the pool file holds, produces
//! undefined behaviour. What that rests on:
//!
//! - **Borrows, at compile time.** Reads go through `&Pool`, writes through
//!   `&mut Pool`, so no `&mut T` into the pool aliases another reference
//!   ([`Pool::get_disjoint_mut`] checks overlap at run time for several
//!   objects at once). A guard keeps a raw pointer and lends `&mut T` only
//!   for the borrows of its `deref_mut`, so its own flushes never meet a live
//!   reference.
//! - **One owner per medium.** A pool owns its medium, or borrows it with
//!   `&mut`; the crash simulator's medium is not `Clone`, and its raw stores
//!   take `&mut self`, so nothing writes under a `&T` the pool handed out.
//! - **One mapping per file.** The pool's pmem-sys [`Mapping`](pmem_sys::Mapping)
//!   holds an exclusive `flock` on its file while it is open, so another
//!   pool, [`inspect`](inspect::inspect) or `Mapping` of the file, in any
//!   process and by any name, is refused ([`Error::AlreadyOpen`]), and the
//!   file grows only through the pool's own descriptor, never by its path.
//!   As with any advisory lock, writers that ignore it (another process, a
//!   `std::fs::write` of the path, `/proc/self/mem`) are outside this
//!   guarantee (see pmem-sys's
//!   [one mapping per file](pmem_sys::Mapping#one-mapping-per-file)).
//! - **Checked pointers.** Every [`PPtr`] and [`PSlice`] is resolved against
//!   the pool: not null, past the header, in bounds, aligned, and for a
//!   write clear of the allocator's chunk tables ([`PointerProblem`]), so a
//!   hostile pointer read from media can neither reach unmapped memory nor
//!   rewrite the allocator's state (a read of a table's bytes is harmless:
//!   plain data that nothing writes while the pool is borrowed);
//!   [`Pool::free`] frees only the start of an allocated block.
//! - **Plain data, aligned.** Stored types are [`bytemuck::Pod`], so any
//!   bytes are a valid value, and aligned to at most 4096 (refused at
//!   compile time otherwise), which every medium's base guarantees.
//! - **Validated files.** Opening refuses what is not a regular file or a
//!   Device DAX without reading it, reads nothing beyond what the header
//!   describes, checks every header field, chunk descriptor and redo record
//!   before writing anything (a refused file is left as found), and accepts
//!   only what the pool's own operations keep openable and consistent.
//!
//! The unsafe code is in the medium (raw stores), the pool's pointer
//! resolution and the guards; every block says what it relies on.
//!
//! What survives a crash is decided by the order of persists: see
//! `docs/layout.md` for the on-media format and the allocation protocol.
//!
//! # The medium
//!
//! Pools are generic over a [`Medium`]: the file-backed [`FileMedium`] by
//! default (inlined to pmem-sys calls), or a simulated medium that records
//! every store, flush and fence for crash-consistency testing.

// The `sim` badge on docs.rs (which builds with `--cfg docsrs` on nightly).
#![cfg_attr(docsrs, feature(doc_cfg))]

// `derive(Persist)` names this crate `::pmem_typed`; this makes that path work inside it too.
#[allow(unused_extern_crates)]
extern crate self as pmem_typed;

// Each item has one path: these modules are private and their public items
// are re-exported below; the public modules hold what does not belong at the
// root (the inspector, the on-media format, the crash simulator).
mod check;
mod error;
pub mod format;
mod guard;
mod heap;
pub mod inspect;
mod medium;
mod persist;
mod pool;
mod pptr;
mod redo;
mod resolve;
#[cfg(feature = "sim")]
#[cfg_attr(docsrs, doc(cfg(feature = "sim")))]
pub mod sim;

pub use check::{BadTarget, CheckReport, TargetProblem};
pub use error::{Error, Expected, FieldDifference, FileKind, PointerProblem, Result, Structure};
pub use guard::{DisjointGuard, Guard, PodView};
pub use heap::{ClassStats, HeapStats, RunStats};
pub use medium::{FileMedium, Medium};
pub use persist::{FieldInfo, Persist, Tracer, TypeLayout};
// What `derive(Persist)` expands to; not public API.
#[doc(hidden)]
pub use persist::__private;

/// # Examples
///
/// ```
/// use pmem_typed::{PPtr, PSlice, Persist};
///
/// #[derive(Clone, Copy, Persist)]
/// #[repr(C)]
/// struct Node {
///     key: u64,
///     next: PPtr<Node>,
///     values: PSlice<u32>,
/// }
///
/// // One persistent pointer per field, at the field's offset.
/// let node: PPtr<Node> = PPtr::from_offset(4096);
/// let fields: NodeFields = node.fields();
/// assert_eq!(fields.next.offset(), 4096 + 8);
/// assert_eq!(fields.values.offset(), 4096 + 16);
///
/// // The layout recorded in pools (its fingerprint ignores the struct's name).
/// assert_eq!(Node::LAYOUT.size, 32);
/// assert_eq!(Node::LAYOUT.fields[1].name, "next");
/// ```
///
pub use pmem_macros::Persist;
pub use pool::{Batch, Pool, PoolInfo};
pub use pptr::{PPtr, PSlice};

/// `n` and `noun`, plural unless `n` is 1: "1 block", "2 blocks".
pub(crate) fn counted(n: u64, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}
