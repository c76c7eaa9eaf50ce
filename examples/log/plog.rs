//! An append-only persistent log: variable-length entries, each with a
//! CRC32, in a fixed-capacity byte area of a pool, behind a durable length.
//!
//! # The protocol
//!
//! An entry is written after the last one and persisted *before* the log's
//! length (`used`, one 8-byte field of the root) is bumped to cover it, with
//! one failure-atomic store. A crash at any point leaves the log as it was
//! before the append or as it is after: bytes past `used` are ignored, and
//! the next append overwrites them. Reading checks each entry's CRC, which
//! catches damage the protocol cannot prevent (a bad block, a stray write).
//!
//! # Layout
//!
//! ```text
//! root   | used (u64): bytes of the area holding whole entries
//!        | area (PSlice<u8>): offset and capacity, allocated once
//! area   | entry 0 | entry 1 | ... | free space
//! entry  | len (u32) | crc (u32) | payload (len bytes) | zeros to a multiple of 8
//! ```
//!
//! `crc` is the CRC32 of `len` (4 bytes, little-endian) followed by the
//! payload. The number of entries is not stored: opening the log counts them.

use std::fmt;

use pmem::typed::{self, FileMedium, Medium, PSlice, Persist, Pool};

/// The layout name of log pools.
pub(crate) const LAYOUT: &str = "pmem-rs example: log";

/// Bytes of an entry's header (length and CRC).
const HEADER: usize = 8;

/// The root of a log pool.
#[derive(Clone, Copy, Debug, Persist)]
#[repr(C)]
pub(crate) struct LogRoot {
    /// Bytes of `area` holding whole entries: the durable length.
    pub(crate) used: u64,
    /// Where the entries go.
    pub(crate) area: PSlice<u8>,
}

/// What can go wrong with a log.
#[derive(Debug)]
#[non_exhaustive]
pub(crate) enum LogError {
    /// The pool failed.
    Pool(typed::Error),
    /// The entry does not fit in the space left.
    Full {
        /// Bytes the entry needs, header and padding included.
        needed: u64,
        /// Bytes left.
        free: u64,
    },
    /// The entry is longer than a header can say (4 GiB).
    TooLong {
        /// Its length.
        len: usize,
    },
    /// An entry below the durable length is damaged.
    Corrupt {
        /// Offset of the entry in the area.
        offset: u64,
        /// What is wrong.
        what: String,
    },
}

impl fmt::Display for LogError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Pool(e) => write!(f, "{e}"),
            Self::Full { needed, free } => {
                write!(
                    f,
                    "the log is full: the entry needs {needed} bytes, {free} are free"
                )
            }
            Self::TooLong { len } => write!(f, "an entry of {len} bytes is too long"),
            Self::Corrupt { offset, what } => write!(f, "entry at offset {offset}: {what}"),
        }
    }
}

impl std::error::Error for LogError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Pool(e) => Some(e),
            _ => None,
        }
    }
}

impl From<typed::Error> for LogError {
    fn from(e: typed::Error) -> Self {
        Self::Pool(e)
    }
}

/// An append-only log in a pool of its own, on a file by default.
#[derive(Debug)]
pub(crate) struct PLog<M: Medium = FileMedium> {
    pool: Pool<LogRoot, M>,
    /// Entries below `used`: counted at open, then kept up to date.
    len: u64,
}

impl<M: Medium> PLog<M> {
    /// Opens the log held by `pool`, giving it an area of `capacity` bytes
    /// (rounded down to a multiple of 8) if it has none yet.
    ///
    /// # Errors
    /// [`LogError::Pool`] if the area cannot be allocated (or `capacity` is
    /// below 8) or resolved;
    /// [`LogError::Corrupt`] if the entries' lengths do not add up to `used`.
    pub(crate) fn open(mut pool: Pool<LogRoot, M>, capacity: u64) -> Result<Self, LogError> {
        let root = pool.root();
        if pool.get(root)?.area.is_empty() {
            if capacity < 8 {
                return Err(LogError::Pool(typed::Error::InvalidArgument {
                    argument: "capacity",
                    found: capacity,
                    expected: typed::Expected::AtLeast(8),
                }));
            }
            let capacity = capacity / 8 * 8;
            // Allocated and published in one failure-atomic step.
            pool.alloc_slice_zeroed(root.fields().area, capacity)?;
        }
        let mut log = Self { pool, len: 0 };
        let used = log.used()?;
        let (mut at, mut len) = (0, 0);
        while at < used.len() {
            (_, at) = entry_at(used, at).map_err(|what| LogError::Corrupt {
                offset: at as u64,
                what,
            })?;
            len += 1;
        }
        log.len = len;
        Ok(log)
    }

    /// The part of the area in use.
    fn used(&self) -> Result<&[u8], LogError> {
        let root = self.pool.get(self.pool.root())?;
        let area = self.pool.get_slice(root.area)?;
        area.get(..root.used as usize).ok_or(LogError::Corrupt {
            offset: root.used,
            what: format!("the length is past the capacity, {}", area.len()),
        })
    }

    /// Appends `payload`: when this returns, the entry is durable.
    ///
    /// # Errors
    /// [`LogError::Full`] or [`LogError::TooLong`], leaving the log as it
    /// was; [`LogError::Pool`].
    pub(crate) fn append(&mut self, payload: &[u8]) -> Result<(), LogError> {
        let len =
            u32::try_from(payload.len()).map_err(|_| LogError::TooLong { len: payload.len() })?;
        let root = self.pool.root();
        let LogRoot { used, area } = *self.pool.get(root)?;
        let size = (HEADER + payload.len().next_multiple_of(8)) as u64;
        let free = area.len().saturating_sub(used);
        if size > free {
            return Err(LogError::Full { needed: size, free });
        }
        let mut entry = Vec::with_capacity(size as usize);
        entry.extend_from_slice(&len.to_le_bytes());
        entry.extend_from_slice(&crc(len, payload).to_le_bytes());
        entry.extend_from_slice(payload);
        entry.resize(size as usize, 0);
        // 1. The entry, past the durable length: written and persisted.
        self.pool.copy_to_slice(area, used, &entry)?;
        // 2. Then the length, with one failure-atomic 8-byte store: the commit.
        self.pool.set(root.fields().used, used + size)?;
        self.len += 1;
        Ok(())
    }

    /// The entries, oldest first, each checked against its CRC (iteration
    /// stops after an error).
    pub(crate) fn iter(&self) -> Iter<'_> {
        match self.used() {
            Ok(used) => Iter {
                used,
                at: 0,
                error: None,
            },
            Err(e) => Iter {
                used: &[],
                at: 0,
                error: Some(e),
            },
        }
    }

    /// Number of entries.
    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    /// Whether the log has no entries.
    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes in use and the capacity.
    ///
    /// # Errors
    /// [`LogError::Pool`] if the root cannot be read.
    pub(crate) fn usage(&self) -> Result<(u64, u64), LogError> {
        let root = self.pool.get(self.pool.root())?;
        Ok((root.used, root.area.len()))
    }

    /// The pool, to inspect it.
    pub(crate) fn pool(&self) -> &Pool<LogRoot, M> {
        &self.pool
    }
}

/// The CRC of an entry: its length, then its payload.
fn crc(len: u32, payload: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&len.to_le_bytes());
    hasher.update(payload);
    hasher.finalize()
}

/// The entry at `at` of `used` (without checking its CRC) and where the next
/// one starts.
fn entry_at(used: &[u8], at: usize) -> Result<(&[u8], usize), String> {
    let header = used
        .get(at..at + HEADER)
        .ok_or_else(|| format!("a header of {HEADER} bytes does not fit in {}", used.len()))?;
    let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
    let next = at + HEADER + len.next_multiple_of(8);
    if next > used.len() {
        return Err(format!(
            "its {len} bytes end past the durable length, {}",
            used.len()
        ));
    }
    Ok((&used[at..at + HEADER + len], next))
}

/// The entries of a [`PLog`], from [`PLog::iter`].
#[derive(Debug)]
pub(crate) struct Iter<'a> {
    used: &'a [u8],
    at: usize,
    error: Option<LogError>,
}

impl<'a> Iterator for Iter<'a> {
    type Item = Result<&'a [u8], LogError>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(e) = self.error.take() {
            self.at = self.used.len();
            return Some(Err(e));
        }
        if self.at >= self.used.len() {
            return None;
        }
        let offset = self.at as u64;
        let corrupt = |what| LogError::Corrupt { offset, what };
        let (entry, next) = match entry_at(self.used, self.at) {
            Ok(found) => found,
            Err(what) => {
                self.at = self.used.len();
                return Some(Err(corrupt(what)));
            }
        };
        let (header, payload) = entry.split_at(HEADER);
        let stored = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
        let computed = crc(payload.len() as u32, payload);
        if stored != computed {
            self.at = self.used.len();
            return Some(Err(corrupt(format!(
                "CRC {computed:#010x} of its {} bytes, {stored:#010x} stored",
                payload.len()
            ))));
        }
        self.at = next;
        Some(Ok(payload))
    }
}
