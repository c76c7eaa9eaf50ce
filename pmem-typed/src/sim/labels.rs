//! Names for the lines of a pool image, for failure reports.

use std::mem::offset_of;

use crate::format::superblock::Superblock;
use crate::format::{CHUNK, DYNAMIC_SLOTS_OFFSET, LINE, PAGE, REDO_OFFSET, REDO_SLOTS};
use crate::persist::Persist;

/// Labels lines of a [`Pool<R>`](crate::Pool) image: superblock, header
/// slots, redo record, root fields (by name), chunk tables and heap blocks.
/// Pass it to [`Scenario::labels`](super::Scenario::labels).
///
/// # Examples
///
/// ```
/// use pmem_typed::format::{PAGE, REDO_OFFSET};
/// use pmem_typed::sim::{SimMedium, pool_labels};
/// use pmem_typed::{PPtr, Persist, Pool};
///
/// #[derive(Clone, Copy, Persist)]
/// #[repr(C)]
/// struct Root { count: u64, head: PPtr<u64> }
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let medium = SimMedium::new(64 << 10, 64 << 10);
/// let pool = Pool::create_on(medium, "labels", Root { count: 0, head: PPtr::null() })?;
/// let heap = pool.info().heap_offset as usize;
/// let image = pool.medium().live();
/// let label = |offset| pool_labels::<Root>(&image, offset);
/// assert_eq!(label(0).as_deref(), Some("superblock (magic)"));
/// assert_eq!(label(REDO_OFFSET).as_deref(), Some("redo record A"));
/// assert_eq!(label(PAGE).as_deref(), Some("root fields `count`, `head`")); // one line, two fields
/// assert_eq!(label(heap).as_deref(), Some("chunk table of zone 0 (chunk 0)"));
/// assert_eq!(label(heap + 4096 + 64).as_deref(), Some("heap: zone 0 chunk 0, +0x40"));
/// # Ok(()) }
/// ```
#[must_use]
pub fn pool_labels<R: Persist>(image: &[u8], offset: usize) -> Option<String> {
    let u64_at = |at: usize| {
        image
            .get(at..at + 8)
            .map(|b| u64::from_le_bytes(b.try_into().unwrap_or_default()))
    };
    let line_end = offset + LINE;
    if offset < DYNAMIC_SLOTS_OFFSET {
        return Some(if offset == 0 {
            "superblock (magic)".into()
        } else {
            "superblock".into()
        });
    }
    if offset < REDO_OFFSET {
        let slot = if offset < DYNAMIC_SLOTS_OFFSET + LINE {
            'A'
        } else {
            'B'
        };
        return Some(format!("dynamic header slot {slot}"));
    }
    if offset < REDO_OFFSET + REDO_SLOTS * LINE {
        let slot = if offset < REDO_OFFSET + LINE {
            'A'
        } else {
            'B'
        };
        return Some(format!("redo record {slot}"));
    }
    if offset < PAGE {
        return Some("superblock page".into());
    }
    let root_end = PAGE + R::LAYOUT.size;
    if offset < root_end {
        let fields: Vec<&str> = R::LAYOUT
            .fields
            .iter()
            .filter(|f| PAGE + f.offset < line_end && offset < PAGE + f.offset + f.size)
            .map(|f| f.name)
            .collect();
        return Some(match fields.as_slice() {
            [] => format!("root `{}`", R::LAYOUT.name),
            [one] => format!("root field `{one}`"),
            many => format!("root fields `{}`", many.join("`, `")),
        });
    }
    let heap_offset = u64_at(offset_of!(Superblock, heap_offset))? as usize;
    let zone_chunks = u64_at(offset_of!(Superblock, zone_chunks))? as usize;
    if offset < heap_offset {
        return Some(format!("root `{}` (padding)", R::LAYOUT.name));
    }
    let table = zone_chunks * LINE;
    let zone_bytes = table + zone_chunks * CHUNK;
    let rel = offset - heap_offset;
    let (zone, in_zone) = (rel / zone_bytes, rel % zone_bytes);
    if in_zone < table {
        return Some(format!(
            "chunk table of zone {zone} (chunk {})",
            in_zone / LINE
        ));
    }
    let chunk = (in_zone - table) / CHUNK;
    Some(format!(
        "heap: zone {zone} chunk {chunk}, +{:#x}",
        (in_zone - table) % CHUNK
    ))
}
