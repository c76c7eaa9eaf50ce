//! A persistent FIFO queue of `u64`s: a singly linked list, built with
//! failure-atomic allocation and publication, with no transactions.
//!
//! # The protocol
//!
//! - `push_back` allocates a node holding its value and publishes it, in one
//!   failure-atomic step ([`Pool::alloc`]): into the last node's `next`, or
//!   into `head` when the queue is empty. The value is durable before the
//!   node is reachable. Then it points `tail` at the new node.
//! - `pop_front` unlinks the first node and frees it in one failure-atomic
//!   step ([`Pool::free_and_publish`]). If that node is also the one `tail`
//!   points to, `tail` moves off it first, so that it never points to freed
//!   memory.
//!
//! So after a crash the list from `head` is the queue before or after the
//! interrupted operation, with no leaked node and no dangling pointer. Only
//! `tail` may be behind: a push may have published its node and not yet
//! updated `tail`, and a pop of the last node may have cleared `tail` and
//! not yet unlinked the node. `tail` is therefore a hint, always null or a
//! node of the list, and [`PQueue::open`] walks from it to the real last node.
//!
//! ```text
//! root  | head: PPtr<Node> | tail: PPtr<Node> (a hint, exact once opened)
//! node  | value: u64       | next: PPtr<Node>
//! ```

use pmem::typed::{Error, FileMedium, Medium, PPtr, Persist, Pool, Result};

/// The layout name of queue pools.
pub(crate) const LAYOUT: &str = "pmem-rs example: queue";

/// The root of a queue pool.
#[derive(Clone, Copy, Debug, PartialEq, Persist)]
#[repr(C)]
pub(crate) struct QueueRoot {
    /// The first node, null when the queue is empty.
    pub(crate) head: PPtr<Node>,
    /// Null or a node of the list: the last one, except after a crash.
    pub(crate) tail: PPtr<Node>,
}

/// One element.
#[derive(Clone, Copy, Debug, PartialEq, Persist)]
#[repr(C)]
pub(crate) struct Node {
    /// The element.
    pub(crate) value: u64,
    /// The next node, null for the last one.
    pub(crate) next: PPtr<Node>,
}

/// A FIFO queue in a pool of its own, on a file by default.
#[derive(Debug)]
pub(crate) struct PQueue<M: Medium = FileMedium> {
    pool: Pool<QueueRoot, M>,
}

impl<M: Medium> PQueue<M> {
    /// Opens the queue held by `pool`, making `tail` exact again if a crash
    /// left it behind.
    ///
    /// # Errors
    /// From the pool; [`Error::Inconsistent`] if the list does not end.
    pub(crate) fn open(mut pool: Pool<QueueRoot, M>) -> Result<Self> {
        let root = pool.root();
        let QueueRoot { head, tail } = *pool.get(root)?;
        let mut last = if tail.is_null() { head } else { tail };
        // Every node takes at least 64 bytes: a longer walk is a cycle.
        let mut steps = pool.size() / 64;
        while !last.is_null() {
            let next = pool.get(last)?.next;
            if next.is_null() {
                break;
            }
            steps = steps.checked_sub(1).ok_or_else(|| {
                Error::inconsistent(format!("the list from {head:?} has a cycle"))
            })?;
            last = next;
        }
        if last != tail {
            pool.set(root.fields().tail, last)?;
        }
        Ok(Self { pool })
    }

    /// Adds `value` at the back; durable when this returns.
    ///
    /// # Errors
    /// [`Error::OutOfSpace`] when the pool is full; others from the pool.
    pub(crate) fn push_back(&mut self, value: u64) -> Result<()> {
        let root = self.pool.root();
        let tail = self.pool.get(root)?.tail;
        let dest = if tail.is_null() {
            root.fields().head
        } else {
            tail.fields().next
        };
        let node = Node {
            value,
            next: PPtr::null(),
        };
        // Written, persisted, then published: one failure-atomic step.
        let node = self.pool.alloc(dest, node)?;
        // A crash before this leaves `tail` one node behind: `open` repairs it.
        self.pool.set(root.fields().tail, node)
    }

    /// Removes and returns the front value, or `None` if the queue is empty;
    /// durable when this returns.
    ///
    /// # Errors
    /// From the pool.
    pub(crate) fn pop_front(&mut self) -> Result<Option<u64>> {
        let root = self.pool.root();
        let QueueRoot { head, tail } = *self.pool.get(root)?;
        if head.is_null() {
            return Ok(None);
        }
        let Node { value, next } = *self.pool.get(head)?;
        if tail == head {
            // The last node: `tail` moves off it before it is freed (`next` is
            // null). A crash in between leaves `tail` null with one node left,
            // which `open` finds again.
            self.pool.set(root.fields().tail, next)?;
        }
        // Unlinked and freed in one failure-atomic step.
        self.pool.free_and_publish(root.fields().head, next)?;
        Ok(Some(value))
    }

    /// The values, front to back.
    ///
    /// # Errors
    /// From the pool.
    pub(crate) fn to_vec(&self) -> Result<Vec<u64>> {
        let mut values = Vec::new();
        let mut at = self.pool.get(self.pool.root())?.head;
        while !at.is_null() {
            let node = self.pool.get(at)?;
            values.push(node.value);
            at = node.next;
        }
        Ok(values)
    }

    /// The pool, to inspect it.
    pub(crate) fn pool(&self) -> &Pool<QueueRoot, M> {
        &self.pool
    }
}
