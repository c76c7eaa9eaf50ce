//! Writes seed inputs for the `open_pool` fuzz target: valid pools in a few
//! shapes (empty, a list, small and large slices, two zones, a record
//! pending), each
//! prefixed by the flags byte and with its all-zero tail cut off.
//!
//! `cargo run --release --example seeds -- corpus/open_pool`

use std::path::PathBuf;

use pmem_testkit::hostile::{
    LAYOUT, MIN_IMAGE, Node, RESEAL_RECORDS, RESEAL_SLOTS, RESEAL_SUPERBLOCK, Root,
};
use pmem_typed::format::redo::{RedoKind, RedoRecord};
use pmem_typed::format::superblock::Superblock;
use pmem_typed::format::{DYNAMIC_SLOTS_OFFSET, REDO_OFFSET};
use pmem_typed::sim::SimMedium;
use pmem_typed::{PPtr, Pool};
use zerocopy::{FromZeros, IntoBytes};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "corpus/open_pool".into()),
    );
    std::fs::create_dir_all(&dir)?;
    let mut seeds: Vec<(&str, Vec<u8>)> = Vec::new();

    let empty = pool(MIN_IMAGE, |_| Ok(()))?;
    seeds.push(("empty", empty));
    let list = pool(MIN_IMAGE, |p| {
        let root = p.root();
        for value in 0..5 {
            let head = p.get(root)?.head;
            p.alloc(root.fields().head, Node { value, next: head })?;
        }
        p.alloc_slice(root.fields().numbers, &[1u64, 2, 3, 4])?;
        Ok(())
    })?;
    seeds.push(("list", list.clone()));
    let large = pool(MIN_IMAGE, |p| {
        let root = p.root();
        p.alloc(
            root.fields().head,
            Node {
                value: 1,
                next: PPtr::null(),
            },
        )?;
        let blob = p.alloc_slice_zeroed::<u8>(root.fields().blob, 20_000)?;
        p.set_elem(blob, 0, 7)?;
        Ok(())
    })?;
    seeds.push(("large", large));
    // Two zones; what is allocated lies in the first, so the input stays
    // short (the image is padded to the size the header records).
    let two_zones = pool(1200 * 1024, |p| {
        let root = p.root();
        p.alloc(
            root.fields().head,
            Node {
                value: 9,
                next: PPtr::null(),
            },
        )?;
        p.alloc_slice_zeroed::<u64>(root.fields().numbers, 5000)?;
        Ok(())
    })?;
    seeds.push(("two-zones", two_zones));

    // The list with a pending free of its head in a redo record.
    let mut pending = list;
    let head: u64 = bytemuck::pod_read_unaligned(&pending[4096 + 8..4096 + 16]);
    let record = RedoRecord {
        kind: RedoKind::Free,
        dest_len: 8.into(),
        block: head.into(),
        block_size: 64.into(),
        dest: (4096 + 8).into(),
        seq: 9.into(),
        ..RedoRecord::new_zeroed()
    }
    .sealed();
    pending[REDO_OFFSET..REDO_OFFSET + 64].copy_from_slice(record.as_bytes());
    seeds.push(("pending-free", pending));

    // The soundness issue's hostile files: a chunk table larger than the
    // pool has chunks for, with a stray descriptor past the last chunk (it
    // comes into use when the pool grows), and a header whose sequence
    // number is one short of the largest.
    let mut wide_table = pool(MIN_IMAGE, |_| Ok(()))?;
    let zone_chunks_at = std::mem::offset_of!(Superblock, zone_chunks);
    wide_table[zone_chunks_at..zone_chunks_at + 8].copy_from_slice(&128u64.to_le_bytes());
    let stray = 2 * 4096 + 70 * 64;
    wide_table[stray..stray + 16]
        .copy_from_slice(&[1, 0, 0, 0, 0, 0, 0, 0, 0xff, 0, 0, 0, 0, 0, 0, 0]);
    seeds.push(("wide-table", wide_table));
    let mut last_seq = pool(MIN_IMAGE, |_| Ok(()))?;
    last_seq[DYNAMIC_SLOTS_OFFSET..DYNAMIC_SLOTS_OFFSET + 8]
        .copy_from_slice(&(u64::MAX - 1).to_le_bytes());
    seeds.push(("last-seq", last_seq));

    for (name, image) in seeds {
        let end = image.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
        for flags in [0, RESEAL_SUPERBLOCK | RESEAL_SLOTS | RESEAL_RECORDS] {
            let mut input = vec![flags];
            input.extend_from_slice(&image[..end]);
            std::fs::write(dir.join(format!("{name}-{flags}")), input)?;
        }
    }
    Ok(())
}

type Fill = fn(&mut Pool<Root, SimMedium>) -> pmem_typed::Result<()>;

/// A pool of `size` bytes filled by `fill`, as an image.
fn pool(size: usize, fill: Fill) -> Result<Vec<u8>, Box<dyn std::error::Error>> {
    let medium = SimMedium::new(size, size);
    medium.set_recording(false);
    let mut pool = Pool::<Root, _>::create_on(medium, LAYOUT, bytemuck::Zeroable::zeroed())?;
    fill(&mut pool)?;
    Ok(pool.into_medium().live())
}
