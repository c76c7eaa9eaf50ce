//! Creating a pool and opening one: the header is checked, then the redo
//! records are recovered, before a [`Pool`] exists.

use std::marker::PhantomData;
use std::panic::Location;
use std::path::Path;

use zerocopy::{FromZeros, IntoBytes};

use super::{Pool, PoolInfo};
use crate::error::{Error, Expected, FieldDifference, Result, Structure};
use crate::format::dynamic::DynamicSlot;
use crate::format::heap::{Geometry, zone_chunks_for};
use crate::format::superblock::{FieldRecord, Superblock};
use crate::format::{
    CHUNK, DYNAMIC_SLOTS_OFFSET, FORMAT_VERSION, LINE, MAGIC, MAX_LAYOUT_NAME, MAX_RECORDED_FIELDS,
    MAX_ZONE_CHUNKS, MIN_POOL_SIZE, MIN_ZONE_CHUNKS, PAGE, padded, unpadded,
};
use crate::medium::read;
use crate::medium::{FileMedium, Medium, OpenedFile};
use crate::persist::{Persist, TypeLayout};
use crate::redo::{RedoLog, recover};
use crate::resolve::UserData;

impl<R: Persist> Pool<R, FileMedium> {
    /// Creates a pool file of `size` bytes at `path` (which must not exist),
    /// with a zeroed root.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a bad layout name or size;
    /// [`Error::Io`] if the file cannot be created. A failed creation removes
    /// the file it created.
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_typed::{Error, Persist, Pool};
    ///
    /// #[derive(Clone, Copy, Persist)]
    /// #[repr(C)]
    /// struct Counter { hits: u64 }
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// let path = dir.path().join("counter.pool");
    /// let pool = Pool::<Counter>::create(&path, "counter", 1 << 20)?;
    /// assert_eq!(pool.get(pool.root())?.hits, 0); // the root starts zeroed
    /// assert_eq!(std::fs::metadata(&path)?.len(), 1 << 20);
    /// drop(pool);
    /// // An existing file is never overwritten...
    /// let again = Pool::<Counter>::create(&path, "counter", 1 << 20);
    /// assert!(matches!(again, Err(Error::Io { .. })));
    /// // ...and a size too small for the header, root and heap is refused.
    /// let tiny = Pool::<Counter>::create(dir.path().join("tiny.pool"), "counter", 4096);
    /// assert!(matches!(tiny, Err(Error::InvalidArgument { .. })));
    /// # Ok(()) }
    /// ```
    #[track_caller]
    pub fn create(path: impl AsRef<Path>, layout: &str, size: usize) -> Result<Self> {
        Self::create_with(path, layout, size, R::zeroed())
    }

    /// [`create`](Self::create) with an initial root value.
    ///
    /// # Errors
    /// As for [`create`](Self::create).
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_typed::{Persist, Pool};
    ///
    /// #[derive(Clone, Copy, Persist)]
    /// #[repr(C)]
    /// struct Config { version: u64, max_clients: u64 }
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// let path = dir.path().join("config.pool");
    /// // The pool exists only once its root holds this value: a crash during
    /// // creation never leaves a pool with a zeroed root.
    /// let defaults = Config { version: 1, max_clients: 64 };
    /// drop(Pool::create_with(&path, "config", 1 << 20, defaults)?);
    ///
    /// let pool = Pool::<Config>::open(&path, "config")?;
    /// let config = pool.get(pool.root())?;
    /// assert_eq!((config.version, config.max_clients), (1, 64));
    /// # Ok(()) }
    /// ```
    #[track_caller]
    pub fn create_with(path: impl AsRef<Path>, layout: &str, size: usize, root: R) -> Result<Self> {
        let path = path.as_ref();
        check_creation::<R>(layout, size)?;
        let medium = FileMedium::create(path, size)?;
        Self::create_on(medium, layout, root).inspect_err(|_| {
            // Only `FileMedium::create` made the file (it refuses existing ones).
            let _ = std::fs::remove_file(path);
        })
    }

    /// Opens the pool at `path`, recovering from an interrupted allocation or
    /// free, and checks that it has layout `layout` and root type `R`.
    ///
    /// # Errors
    /// [`Error::NotAPool`], [`Error::UnsupportedVersion`],
    /// [`Error::ChecksumMismatch`], [`Error::WrongLayout`],
    /// [`Error::RootTypeMismatch`], [`Error::Truncated`],
    /// [`Error::AlreadyOpen`], [`Error::Corrupt`], [`Error::Io`];
    /// [`Error::NotAFile`], at once, for a directory, FIFO, socket or device
    /// (nothing is read from it, and a file refused is left as it was).
    ///
    /// # Examples
    ///
    /// ```
    /// use pmem_typed::{Error, FieldDifference, Persist, Pool};
    ///
    /// #[derive(Clone, Copy, Persist)]
    /// #[repr(C)]
    /// struct Counter { hits: u64 }
    ///
    /// // A later version of the program's root type.
    /// #[derive(Clone, Copy, Persist)]
    /// #[repr(C)]
    /// struct CounterV2 { hits: u64, misses: u64 }
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// let path = dir.path().join("counter.pool");
    /// drop(Pool::create_with(&path, "counter", 1 << 20, Counter { hits: 3 })?);
    ///
    /// let pool = Pool::<Counter>::open(&path, "counter")?;
    /// assert_eq!(pool.get(pool.root())?.hits, 3);
    /// drop(pool); // it is locked while open
    /// // The layout name keeps a program from opening another program's pool...
    /// let other = Pool::<Counter>::open(&path, "metrics");
    /// assert!(matches!(other, Err(Error::WrongLayout { found, .. }) if found == "counter"));
    /// // ...and the recorded root type, from reading it as a changed type.
    /// let changed = Pool::<CounterV2>::open(&path, "counter");
    /// let Err(Error::RootTypeMismatch { differences, .. }) = changed else {
    ///     panic!("the root type changed");
    /// };
    /// let added = FieldDifference::Added { name: "misses".into(), offset: 8, size: 8 };
    /// assert!(differences.contains(&added));
    /// # Ok(()) }
    /// ```
    #[track_caller]
    pub fn open(path: impl AsRef<Path>, layout: &str) -> Result<Self> {
        let file = OpenedFile::open(path.as_ref())?;
        precheck_file(&file)?;
        Self::open_on(file.map(PAGE)?, layout)
    }
}

/// Tells a regular file shorter than a page apart as "not a pool" or
/// "truncated" from its first 8 bytes, read from the open descriptor: a
/// short file is never mapped, and nothing more of it is read.
pub(crate) fn precheck_file(file: &OpenedFile) -> Result<()> {
    let Some(len) = file.size() else {
        return Ok(()); // a Device DAX: its mapping's length is checked
    };
    if len >= PAGE as u64 {
        return Ok(());
    }
    let mut magic = [0u8; 8];
    let read = file.read_start(&mut magic)?;
    if read == magic.len() && magic != MAGIC {
        return Err(Error::NotAPool { found: magic });
    }
    Err(Error::Truncated {
        expected: PAGE as u64,
        found: len,
    })
}

fn check_creation<R: Persist>(layout: &str, size: usize) -> Result<()> {
    if layout.len() > MAX_LAYOUT_NAME || layout.contains('\0') {
        return Err(Error::InvalidArgument {
            argument: "layout name",
            found: layout.len() as u64,
            expected: Expected::AtMost(MAX_LAYOUT_NAME as u64),
        });
    }
    if R::LAYOUT.align > PAGE {
        return Err(Error::InvalidArgument {
            argument: "root alignment",
            found: R::LAYOUT.align as u64,
            expected: Expected::AtMost(PAGE as u64),
        });
    }
    let needed = heap_offset_for(R::LAYOUT.size) + MIN_POOL_SIZE - 2 * PAGE;
    if size < needed {
        return Err(Error::InvalidArgument {
            argument: "pool size",
            found: size as u64,
            expected: Expected::AtLeast(needed as u64),
        });
    }
    Ok(())
}

/// The heap starts at the page after the root object.
fn heap_offset_for(root_size: usize) -> usize {
    PAGE + root_size.max(1).next_multiple_of(PAGE)
}

fn new_uuid() -> [u8; 16] {
    use std::io::Read;
    let mut uuid = [0u8; 16];
    let random = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut uuid));
    if random.is_err() {
        // No /dev/urandom: time and process id still tell pools apart.
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        uuid[..8].copy_from_slice(&(now.as_nanos() as u64).to_le_bytes());
        uuid[8..12].copy_from_slice(&std::process::id().to_le_bytes());
    }
    uuid[6] = (uuid[6] & 0x0f) | 0x40; // version 4
    uuid[8] = (uuid[8] & 0x3f) | 0x80; // RFC 4122 variant
    uuid
}

impl<R: Persist, M: Medium> Pool<R, M> {
    /// Creates a pool on `medium`, which becomes the pool's size.
    ///
    /// Creation is crash-atomic: everything is written and made durable
    /// first, and the magic number last, with one 8-byte store. A crash at
    /// any point leaves either a complete pool or "not a pool".
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a bad layout name or a medium too small.
    ///
    /// # Examples
    ///
    /// A pool in simulated persistent memory, as crash tests use:
    ///
    /// ```
    /// use pmem_typed::sim::SimMedium;
    /// use pmem_typed::{Error, Persist, Pool};
    ///
    /// #[derive(Clone, Copy, Persist)]
    /// #[repr(C)]
    /// struct Root { generation: u64 }
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let medium = SimMedium::new(64 << 10, 64 << 10);
    /// let pool = Pool::create_on(medium, "sim", Root { generation: 1 })?;
    /// assert_eq!(pool.size(), 64 << 10); // the whole medium
    /// assert_eq!(pool.get(pool.root())?.generation, 1);
    ///
    /// // The medium must hold the header, the root and some heap.
    /// let tiny = SimMedium::new(8 << 10, 8 << 10);
    /// let refused = Pool::create_on(tiny, "sim", Root { generation: 1 });
    /// assert!(matches!(refused, Err(Error::InvalidArgument { .. })));
    /// # Ok(()) }
    /// ```
    #[track_caller]
    pub fn create_on(medium: M, layout: &str, root: R) -> Result<Self> {
        medium.note("Pool::create", Location::caller());
        let size = medium.len();
        check_creation::<R>(layout, size)?;
        let heap_offset = heap_offset_for(R::LAYOUT.size);
        let zone_chunks = zone_chunks_for(size);
        let geometry = Geometry {
            heap_offset,
            zone_chunks,
            pool_size: size,
        };

        let mut sb = Superblock::new_zeroed();
        sb.version = FORMAT_VERSION.into();
        sb.uuid = new_uuid();
        sb.layout_name = padded(layout);
        sb.root_offset = (PAGE as u64).into();
        sb.root_size = (R::LAYOUT.size as u64).into();
        sb.root_align = (R::LAYOUT.align as u64).into();
        sb.root_fingerprint = R::LAYOUT.fingerprint.into();
        sb.chunk_size = (CHUNK as u64).into();
        sb.zone_chunks = (zone_chunks as u64).into();
        sb.heap_offset = (heap_offset as u64).into();
        sb.root_field_count = (R::LAYOUT.fields.len() as u32).into();
        sb.root_name = padded(R::LAYOUT.name);
        for (record, field) in sb.root_fields.iter_mut().zip(R::LAYOUT.fields) {
            *record = FieldRecord {
                name: padded(field.name),
                offset: (field.offset as u64).into(),
                size: (field.size as u64).into(),
            };
        }
        sb.crc = sb.computed_crc().into();
        let slot = DynamicSlot::sealed(1, size as u64);

        // Whatever the medium held, it is not a pool from here on: with the
        // magic durably gone, no crash below can leave a half-written pool
        // that looks like one.
        // SAFETY: offset 0 is 8-aligned and inside the medium; no reference into it exists.
        unsafe { medium.store_u64(0, 0) };
        medium.persist(0, 8);
        // SAFETY: every range is inside the medium (its size was
        // checked against the geometry), and no reference into it exists yet.
        unsafe {
            medium.fill(0, 0, PAGE, false);
            medium.write(0, sb.as_bytes(), false);
            // Both slots start equal, so either survives damage to the other.
            medium.write(DYNAMIC_SLOTS_OFFSET, slot.as_bytes(), false);
            medium.write(DYNAMIC_SLOTS_OFFSET + LINE, slot.as_bytes(), false);
            medium.write(PAGE, bytemuck::bytes_of(&root), false);
            for zone in 0..geometry.zones() {
                medium.fill(
                    geometry.table_offset(zone),
                    0,
                    geometry.table_bytes(),
                    false,
                );
            }
        }
        medium.fence();
        // SAFETY: offset 0 is 8-aligned and inside the medium.
        unsafe { medium.store_u64(0, u64::from_le_bytes(MAGIC).to_le()) };
        medium.persist(0, 8);

        Self::open_on(medium, layout)
    }

    /// Opens the pool on `medium`, as [`open`](Pool::open) does for a file.
    ///
    /// # Errors
    /// As for [`open`](Pool::open).
    ///
    /// # Examples
    ///
    /// A copy of a pool's bytes (a backup, say) opens as the same pool:
    ///
    /// ```
    /// use pmem_typed::sim::SimMedium;
    /// use pmem_typed::{Error, Persist, Pool};
    ///
    /// #[derive(Clone, Copy, Persist)]
    /// #[repr(C)]
    /// struct Root { value: u64 }
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let medium = SimMedium::new(64 << 10, 64 << 10);
    /// let mut pool = Pool::create_on(medium, "backup", Root { value: 0 })?;
    /// pool.set(pool.root().fields().value, 42)?;
    ///
    /// // The pool's bytes, read through the pool (which owns the medium):
    /// let copy = SimMedium::from_image(&pool.medium().live(), 64 << 10);
    /// let restored = Pool::<Root, _>::open_on(copy, "backup")?;
    /// assert_eq!(restored.get(restored.root())?.value, 42);
    /// assert_eq!(restored.info().uuid, pool.info().uuid);
    ///
    /// // Bytes that are not a pool are refused.
    /// let blank = SimMedium::new(64 << 10, 64 << 10);
    /// let refused = Pool::<Root, _>::open_on(blank, "backup");
    /// assert!(matches!(refused, Err(Error::NotAPool { found }) if found == [0; 8]));
    /// # Ok(()) }
    /// ```
    #[track_caller]
    pub fn open_on(medium: M, layout: &str) -> Result<Self> {
        medium.note("Pool::open (recovery)", Location::caller());
        let (info, slot) = read_header(&medium)?;
        if info.layout != layout {
            return Err(Error::WrongLayout {
                expected: layout.to_owned(),
                found: info.layout,
            });
        }
        check_root_type(&info, &R::LAYOUT)?;
        let geometry = Geometry {
            heap_offset: info.heap_offset as usize,
            zone_chunks: info.zone_chunks as usize,
            pool_size: info.size as usize,
        };
        let (next_seq, heap) = recover(&medium, &geometry)?;
        // A handle closed earlier in this process may have left its last redo
        // record's clear flushed but not fenced (see `run_record`). This handle
        // numbers its records afresh from slot 0, so that clear must be durable
        // before it writes one: else a crash could leave the stale record valid
        // beside the new one, in no telling order, and replay it second.
        medium.fence();
        Ok(Self {
            medium,
            user: UserData::of(&geometry),
            heap,
            info,
            slot,
            redo: RedoLog::starting_at(next_seq),
            scratch: Vec::new(),
            batch_parts: Default::default(),
            _root: PhantomData,
        })
    }
}

/// Reads and checks the header: magic, version, checksums, geometry and the
/// current dynamic slot. Layout and root type are the caller's to check.
pub(crate) fn read_header<M: Medium>(medium: &M) -> Result<(PoolInfo, (usize, u64))> {
    let len = medium.len();
    if len < 8 {
        return Err(Error::Truncated {
            expected: PAGE as u64,
            found: len as u64,
        });
    }
    // SAFETY: 8 bytes at offset 0 are inside the medium.
    let magic: [u8; 8] = unsafe { read(medium, 0) };
    if magic != MAGIC {
        return Err(Error::NotAPool { found: magic });
    }
    if len < PAGE {
        return Err(Error::Truncated {
            expected: PAGE as u64,
            found: len as u64,
        });
    }
    // SAFETY: the superblock lies within the first page, checked present.
    let sb: Superblock = unsafe { read(medium, 0) };
    if sb.version.get() != FORMAT_VERSION {
        return Err(Error::UnsupportedVersion {
            expected: FORMAT_VERSION,
            found: sb.version.get(),
        });
    }
    let crc = sb.computed_crc();
    if crc != sb.crc.get() {
        return Err(Error::ChecksumMismatch {
            region: "superblock",
            expected: crc,
            found: sb.crc.get(),
        });
    }
    // Decoded once: the checks and the record below use native integers.
    let chunk_size = sb.chunk_size.get();
    let zone_chunks = sb.zone_chunks.get();
    let root_offset = sb.root_offset.get();
    let root_size = sb.root_size.get();
    let root_align = sb.root_align.get();
    let heap_offset = sb.heap_offset.get();
    let superblock = |field, found, expected| {
        Err(Error::corrupt(
            Structure::Superblock,
            0,
            field,
            found,
            expected,
        ))
    };
    let zone_range = (MIN_ZONE_CHUNKS as u64, MAX_ZONE_CHUNKS as u64);
    if chunk_size != CHUNK as u64 {
        return superblock("chunk_size", chunk_size, Expected::Value(CHUNK as u64));
    }
    if !zone_chunks.is_power_of_two() || !(zone_range.0..=zone_range.1).contains(&zone_chunks) {
        let (min, max) = zone_range;
        return superblock(
            "zone_chunks",
            zone_chunks,
            Expected::PowerOfTwoIn { min, max },
        );
    }
    if root_offset != PAGE as u64 {
        return superblock("root_offset", root_offset, Expected::Value(PAGE as u64));
    }
    if !root_align.is_power_of_two() || root_align > PAGE as u64 {
        let (min, max) = (1, PAGE as u64);
        return superblock(
            "root_align",
            root_align,
            Expected::PowerOfTwoIn { min, max },
        );
    }
    // A root larger than the medium cannot fit, and rounding a size near
    // u64::MAX up to pages would overflow.
    if root_size > len as u64 {
        return superblock("root_size", root_size, Expected::AtMost(len as u64));
    }
    let expected_heap = heap_offset_for(root_size as usize) as u64;
    if heap_offset != expected_heap {
        return superblock("heap_offset", heap_offset, Expected::Value(expected_heap));
    }
    let slots: [DynamicSlot; 2] = [0, 1].map(|i| {
        // SAFETY: both slots lie within the first page.
        unsafe { read(medium, DYNAMIC_SLOTS_OFFSET + i * LINE) }
    });
    let valid = |i: usize| slots[i].is_valid();
    let index = match (valid(0), valid(1)) {
        (true, true) => usize::from(slots[1].seq.get() > slots[0].seq.get()),
        (true, false) => 0,
        (false, true) => 1,
        (false, false) => {
            return Err(Error::ChecksumMismatch {
                region: "dynamic header (both copies)",
                expected: slots[0].computed_crc(),
                found: slots[0].crc.get(),
            });
        }
    };
    let slot = slots[index];
    let (pool_size, seq) = (slot.pool_size.get(), slot.seq.get());
    if pool_size > len as u64 {
        return Err(Error::Truncated {
            expected: pool_size,
            found: len as u64,
        });
    }
    let minimum = heap_offset + (zone_chunks * LINE as u64) + CHUNK as u64;
    if pool_size < minimum {
        let at = (DYNAMIC_SLOTS_OFFSET + index * LINE) as u64;
        let expected = Expected::AtLeast(minimum);
        return Err(Error::corrupt(
            Structure::DynamicSlot,
            at,
            "pool_size",
            pool_size,
            expected,
        ));
    }
    let recorded = (sb.root_field_count.get() as usize).min(MAX_RECORDED_FIELDS);
    let info = PoolInfo {
        version: sb.version.get(),
        uuid: sb.uuid,
        layout: unpadded(&sb.layout_name),
        size: pool_size,
        root_name: unpadded(&sb.root_name),
        root_size,
        root_align,
        root_fingerprint: sb.root_fingerprint.get(),
        root_field_count: sb.root_field_count.get(),
        root_fields: sb.root_fields[..recorded]
            .iter()
            .map(|f| (unpadded(&f.name), f.offset.get(), f.size.get()))
            .collect(),
        zone_chunks,
        heap_offset,
    };
    Ok((info, (index, seq)))
}

/// Compares the recorded root type with `layout`, listing the differences.
fn check_root_type(info: &PoolInfo, layout: &TypeLayout) -> Result<()> {
    if info.root_fingerprint == layout.fingerprint
        && info.root_size == layout.size as u64
        && info.root_align == layout.align as u64
    {
        return Ok(());
    }
    let mut differences = Vec::new();
    if info.root_size != layout.size as u64 {
        differences.push(FieldDifference::Size {
            expected: layout.size as u64,
            found: info.root_size,
        });
    }
    let truncated = info.root_field_count as usize > info.root_fields.len();
    for (name, offset, size) in &info.root_fields {
        match layout.fields.iter().find(|f| f.name == name.as_str()) {
            None if !truncated || layout.fields.len() <= info.root_fields.len() => {
                differences.push(FieldDifference::Removed {
                    name: name.clone(),
                    offset: *offset,
                    size: *size,
                });
            }
            Some(f) if (f.offset as u64, f.size as u64) != (*offset, *size) => {
                differences.push(FieldDifference::Changed {
                    name: name.clone(),
                    expected: (f.offset as u64, f.size as u64),
                    found: (*offset, *size),
                })
            }
            _ => {}
        }
    }
    if !truncated {
        for f in layout.fields {
            if !info.root_fields.iter().any(|(name, ..)| name == f.name) {
                differences.push(FieldDifference::Added {
                    name: f.name.to_owned(),
                    offset: f.offset as u64,
                    size: f.size as u64,
                });
            }
        }
    }
    if differences.is_empty() {
        differences.push(FieldDifference::Unrecorded);
    }
    Err(Error::RootTypeMismatch {
        expected: layout.fingerprint,
        found: info.root_fingerprint,
        differences,
    })
}
