//! Writes seed inputs for the `open_pool` fuzz target: valid pools in a few
//! shapes (empty, a list, small and large slices, two zones, a record
//! pending), each
//! prefixed by the flags byte and with its all-zero tail cut off.
//!
//! `cargo run --release --example seeds -- corpus/open_pool`

use std::path::PathBuf;

use pmem_rs_fuzz::{
    LAYOUT, MIN_IMAGE, Node, RESEAL_RECORDS, RESEAL_SLOTS, RESEAL_SUPERBLOCK, Root,
};
use pmem_typed::layout::{REDO_OFFSET, RedoKind, RedoRecord};
use pmem_typed::sim::SimMedium;
use pmem_typed::{PPtr, Pool};

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
        kind: RedoKind::Free as u32,
        dest_len: 8,
        block: head,
        block_size: 64,
        dest: 4096 + 8,
        seq: 9,
        ..bytemuck::Zeroable::zeroed()
    }
    .sealed();
    pending[REDO_OFFSET..REDO_OFFSET + 64].copy_from_slice(bytemuck::bytes_of(&record));
    seeds.push(("pending-free", pending));

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
