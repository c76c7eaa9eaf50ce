//! [`Guard`]: write access to a persistent object that persists what changed
//! when it is dropped.

use core::fmt;
use core::ops::{Deref, DerefMut};
use core::panic::Location;

use bytemuck::Pod;

use crate::layout::LINE;
use crate::medium::Medium;

/// Types a guard can cover: plain data, or slices of it.
///
/// # Examples
///
/// ```
/// use pmem_typed::guard::PodView;
/// // A guard compares these bytes before and after to find the lines that changed.
/// assert_eq!(0x0102_u16.pod_bytes(), &0x0102_u16.to_ne_bytes());
/// assert_eq!([7_u32; 3][..].pod_bytes().len(), 12);
/// ```
pub trait PodView {
    /// The bytes of the value.
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_typed::guard::PodView;
    /// use pmem_typed::{PPtr, Persist};
    ///
    /// #[derive(Clone, Copy, Persist)]
    /// #[repr(C)]
    /// struct Pair { a: u32, b: u32 }
    ///
    /// let pair = Pair { a: 1, b: 2 };
    /// assert_eq!(pair.pod_bytes(), [1, 0, 0, 0, 2, 0, 0, 0]); // little-endian x86-64
    /// assert_eq!(PPtr::<Pair>::null().pod_bytes(), [0; 8]);
    /// ```
    fn pod_bytes(&self) -> &[u8];
}

impl<T: Pod> PodView for T {
    fn pod_bytes(&self) -> &[u8] {
        bytemuck::bytes_of(self)
    }
}

impl<T: Pod> PodView for [T] {
    fn pod_bytes(&self) -> &[u8] {
        bytemuck::cast_slice(self)
    }
}

/// The object's bytes as last persisted, to find the lines that change: in
/// a buffer the pool lends (so a guard costs no allocation), or, for guards
/// taken together, one of their own.
pub(crate) enum Snapshot<'a> {
    Lent(&'a mut Vec<u8>),
    Own(Vec<u8>),
}

impl Snapshot<'_> {
    fn buffer(&mut self) -> &mut Vec<u8> {
        match self {
            Self::Lent(buffer) => buffer,
            Self::Own(buffer) => buffer,
        }
    }
}

/// Whether two equally long byte strings differ, compared a word at a time
/// (the lines compared are short: a call to `memcmp` per line would dominate).
#[inline]
fn differs(a: &[u8], b: &[u8]) -> bool {
    let (a_words, a_rest) = a.as_chunks::<8>();
    let (b_words, b_rest) = b.as_chunks::<8>();
    a_words.iter().zip(b_words).any(|(x, y)| x != y) || a_rest != b_rest
}

/// Write access to a persistent `T` (or `[T]`), from
/// [`Pool::get_mut`](crate::Pool::get_mut) and friends.
///
/// Dereferences to `&mut T`. When dropped, or when
/// [`persist`](Self::persist) is called, it flushes exactly the cache lines
/// whose bytes changed and fences once, so the changes are durable. Several
/// changes to one object become durable together only in the sense that they
/// are flushed together: a crash before the fence may keep any subset of the
/// changed lines (use [`Pool::set`](crate::Pool::set) or allocation for
/// failure-atomic updates).
///
/// # Examples
///
/// ```
/// use pmem_typed::{Persist, Pool};
///
/// #[derive(Clone, Copy, Persist)]
/// #[repr(C)]
/// struct Stats { reads: u64, writes: u64 }
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("stats.pool");
/// {
///     let mut pool = Pool::<Stats>::create(&path, "stats", 1 << 20)?;
///     let mut stats = pool.get_mut(pool.root())?;
///     stats.reads += 10;
///     stats.writes += 1;
/// } // the guard dropped first: its changes were flushed, then fenced once
/// let pool = Pool::<Stats>::open(&path, "stats")?;
/// let stats = pool.get(pool.root())?;
/// assert_eq!((stats.reads, stats.writes), (10, 1));
/// # Ok(()) }
/// ```
pub struct Guard<'a, T: ?Sized + PodView, M: Medium> {
    value: &'a mut T,
    medium: &'a M,
    offset: usize,
    snapshot: Snapshot<'a>,
    /// Where the guard was taken, for the crash simulator's reports.
    taken_at: &'static Location<'static>,
}

impl<'a, T: ?Sized + PodView, M: Medium> Guard<'a, T, M> {
    /// # Safety
    /// `value` points to a valid, aligned `T` at `offset` of `medium`, and for
    /// `'a` nothing else accesses it.
    pub(crate) unsafe fn new(
        medium: &'a M,
        offset: usize,
        taken_at: &'static Location<'static>,
        value: *mut T,
        mut snapshot: Snapshot<'a>,
    ) -> Self {
        // SAFETY: forwarded from the caller.
        let value = unsafe { &mut *value };
        let buffer = snapshot.buffer();
        buffer.clear();
        buffer.extend_from_slice(value.pod_bytes());
        Self {
            value,
            medium,
            offset,
            snapshot,
            taken_at,
        }
    }

    /// Flushes the cache lines that changed since the guard was made (or last
    /// persisted) and fences: the changes are durable on return.
    ///
    /// # Examples
    ///
    /// A long-lived guard makes each step durable before starting the next:
    ///
    /// ```
    /// use pmem_typed::{Persist, Pool};
    /// use pmem_typed::sim::SimMedium;
    ///
    /// #[derive(Clone, Copy, Persist)]
    /// #[repr(C)]
    /// struct Job { step: u64, done: [u64; 3] }
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let medium = SimMedium::new(64 << 10, 64 << 10);
    /// let mut pool = Pool::create_on(medium, "job", Job { step: 0, done: [0; 3] })?;
    /// let mut job = pool.get_mut(pool.root())?;
    /// for step in 0..3 {
    ///     job.done[step] = 100 + step as u64;
    ///     job.step = step as u64 + 1;
    ///     job.persist(); // step `step` is durable here
    /// }
    /// drop(job); // nothing changed since the last persist: only a fence
    /// assert_eq!(pool.get(pool.root())?.done, [100, 101, 102]);
    /// # Ok(()) }
    /// ```
    pub fn persist(&mut self) {
        self.medium.note("Guard::persist", self.taken_at);
        let now = self.value.pod_bytes();
        let before = self.snapshot.buffer().as_mut_slice();
        // Lines are aligned to the medium, not to the object.
        let first_line = self.offset / LINE * LINE;
        let mut dirty: Option<(usize, usize)> = None;
        let mut line = first_line;
        while line < self.offset + now.len() {
            let lo = line.max(self.offset) - self.offset;
            let hi = (line + LINE).min(self.offset + now.len()) - self.offset;
            if differs(&now[lo..hi], &before[lo..hi]) {
                before[lo..hi].copy_from_slice(&now[lo..hi]);
                dirty = match dirty {
                    Some((start, end)) if end == line => Some((start, line + LINE)),
                    Some((start, end)) => {
                        self.medium.flush(start, end - start);
                        Some((line, line + LINE))
                    }
                    None => Some((line, line + LINE)),
                };
            }
            line += LINE;
        }
        if let Some((start, end)) = dirty {
            // Clip to the medium: the object's last line may be its last bytes.
            let end = end.min(self.medium.len());
            self.medium.flush(start, end - start);
        }
        self.medium.fence();
    }
}

impl<T: ?Sized + PodView, M: Medium> Deref for Guard<'_, T, M> {
    type Target = T;

    fn deref(&self) -> &T {
        self.value
    }
}

impl<T: ?Sized + PodView, M: Medium> DerefMut for Guard<'_, T, M> {
    fn deref_mut(&mut self) -> &mut T {
        self.value
    }
}

impl<T: ?Sized + PodView, M: Medium> Drop for Guard<'_, T, M> {
    fn drop(&mut self) {
        self.persist();
    }
}

impl<T: ?Sized + PodView + fmt::Debug, M: Medium> fmt::Debug for Guard<'_, T, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Guard")
            .field("offset", &self.offset)
            .field("value", &&*self.value)
            .finish()
    }
}
