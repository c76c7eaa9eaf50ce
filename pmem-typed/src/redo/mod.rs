//! The redo protocol: what makes "allocate and publish" and "unpublish and
//! free" failure-atomic. The records' bytes are
//! [`format::redo`](crate::format::redo)'s; this module writes them
//! ([`RedoLog::run`]), applies them ([`apply`]) and recovers from them at
//! open ([`recover`]).
//!
//! # Protocol
//!
//! Allocation of block `B`, published into pointer `D`:
//! 1. `B`'s initial value is written, and the redo record
//!    `{Alloc, B, D, crc(value)}` with its own CRC; one fence makes both
//!    durable. This is the commit point.
//! 2. The record is applied: `B`'s bit (or its run of chunks) is set in the
//!    chunk table and `D` is written; one fence.
//! 3. The record is cleared; one fence. Only then does `alloc` return.
//!
//! After a crash, `open` replays a valid record: if `B`'s contents still match
//! the record's CRC, step 2 is redone (it is idempotent), otherwise the value
//! never became durable and the allocation is dropped. Freeing is the same
//! with `{Free, B, D}`: step 2 clears the bit and nulls `D`. A torn record
//! fails its CRC and is ignored. The record must be cleared before returning
//! because once the caller has the pointer it may change `D` again, and a
//! stale record replayed later would undo that.

pub(crate) mod apply;
pub(crate) mod batch;
pub(crate) mod recover;

pub(crate) use apply::{BlockChange, apply, replayed, validate};
pub(crate) use recover::{RecordLine, read_line, recover, value_intact};

use zerocopy::IntoBytes;

use crate::format::redo::RedoRecord;
use crate::format::{LINE, REDO_OFFSET, REDO_SLOTS};
use crate::heap::Heap;
use crate::medium::Medium;

/// Where the next record goes: the slot and sequence number the next
/// operation uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RedoLog {
    slot: usize,
    seq: u32,
}

impl RedoLog {
    /// A log whose next record is numbered `seq` and goes to slot 0.
    pub(crate) fn starting_at(seq: u32) -> Self {
        Self { slot: 0, seq }
    }

    /// The next sequence number, for a record or a batch, which the one
    /// after it follows.
    pub(crate) fn take_seq(&mut self) -> u32 {
        let seq = self.seq;
        self.seq = seq.wrapping_add(1);
        seq
    }

    /// Writes, applies and clears a redo record: two fences.
    ///
    /// The clear is flushed but not fenced: the next fence of any write
    /// method makes it durable, and until then the operation that follows
    /// has not returned, so replaying this record (which is idempotent) can
    /// only undo that unfinished operation. The two record slots are used in
    /// turn so that the next record does not rewrite a line still being
    /// written back.
    ///
    /// # Safety
    /// `record` was built by the allocator for `heap` (its block reserved
    /// from it, its destination resolved for writing and outside the
    /// block), and no reference into the record slots, the chunk table or
    /// the destination is alive.
    pub(crate) unsafe fn run<M: Medium>(
        &mut self,
        medium: &M,
        heap: &mut Heap,
        record: RedoRecord,
    ) {
        let record = RedoRecord {
            seq: self.seq.into(),
            ..record
        }
        .sealed();
        let at = REDO_OFFSET + self.slot * LINE;
        // SAFETY:
        // - the record slot is inside the first page, and the chunk table
        //   and destination inside the pool (the caller's precondition);
        // - no reference into any of them is alive (the caller's).
        unsafe {
            medium.write(at, record.as_bytes(), false);
            // Commit point; also makes the previous record's clear durable.
            medium.fence();
            apply(medium, heap.geometry(), &record);
            medium.fence();
            // Zero the whole record, not just its kind: a torn write of a
            // later record into this slot must not complete this one's CRC.
            medium.fill(at, 0, LINE, false);
        }
        self.slot = (self.slot + 1) % REDO_SLOTS;
        self.take_seq();
        heap.note_applied(&BlockChange::of(&record));
    }
}
