//! The quick start's persistent data, a run counter and a record of the
//! last visitor, and how one run updates them.

use pmem::typed::{Medium, Persist, Pool, Result};

/// The layout name: opening a pool made for something else fails.
pub(crate) const LAYOUT: &str = "pmem-rs quickstart";

/// The pool's root object: the entry point to everything in it.
#[derive(Clone, Copy, Debug, PartialEq, Persist)]
#[repr(C)]
pub(crate) struct Root {
    /// Runs completed.
    pub(crate) runs: u64,
    /// Who ran the program last.
    pub(crate) visitor: Visitor,
}

/// A record with a few fields.
#[derive(Clone, Copy, Debug, PartialEq, Persist)]
#[repr(C)]
pub(crate) struct Visitor {
    /// The name, UTF-8, padded with zeros.
    pub(crate) name: [u8; 32],
    /// Runs in a row by this visitor.
    pub(crate) visits: u64,
    /// Time of the last visit, in seconds since 1970.
    pub(crate) last_visit: u64,
}

impl Visitor {
    /// The name as text.
    pub(crate) fn name(&self) -> String {
        let end = self.name.iter().position(|&b| b == 0).unwrap_or(32);
        String::from_utf8_lossy(&self.name[..end]).into_owned()
    }
}

/// `name` as a record stores it: at most 32 bytes, cut at a character boundary.
pub(crate) fn name_bytes(name: &str) -> [u8; 32] {
    let mut end = name.len().min(32);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    let mut bytes = [0; 32];
    bytes[..end].copy_from_slice(&name.as_bytes()[..end]);
    bytes
}

/// Records a run by `name` at time `now`; returns the root as it was before.
///
/// # Errors
/// From the pool (a corrupted root pointer, say); none on a healthy pool.
pub(crate) fn visit<M: Medium>(pool: &mut Pool<Root, M>, name: &str, now: u64) -> Result<Root> {
    let root = pool.root();
    let before = *pool.get(root)?;
    let name = name_bytes(name);
    {
        // A guard is a `&mut Visitor` that, when dropped, flushes the cache
        // lines that changed and fences: the record is durable after the `}`.
        let mut visitor = pool.get_mut(root.fields().visitor)?;
        visitor.visits = if visitor.name == name {
            visitor.visits + 1
        } else {
            1
        };
        visitor.name = name;
        visitor.last_visit = now;
    }
    // One 8-byte field: stored with one instruction and persisted, so a crash
    // leaves the old count or the new one. Bumped last, it also says that
    // the record is complete: a crash inside the guard above may keep some of
    // its changes and not others, but then the count still says "not done".
    pool.set(root.fields().runs, before.runs + 1)?;
    Ok(before)
}
