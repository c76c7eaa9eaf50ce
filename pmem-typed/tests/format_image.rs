//! The on-media format, pinned a second way: a 1 MiB pool with a small and
//! a large allocation, field by field and as a checksum of the whole image
//! (computed from the format before it was written with little-endian
//! types, so it shows the rewrite kept every byte). A change here is a
//! format change: it needs a new `FORMAT_VERSION`, not a new expected value.

use pmem_typed::sim::SimMedium;
use pmem_typed::{PPtr, PSlice, Persist, Pool};

#[derive(Clone, Copy, Persist)]
#[repr(C)]
struct Root {
    count: u64,
    first: PPtr<u64>,
    big: PSlice<u8>,
}

const SIZE: usize = 1 << 20;

/// A pool created, given a root field, one small and one large allocation.
fn known_pool() -> Vec<u8> {
    let mut medium = SimMedium::new(SIZE, SIZE);
    {
        let mut pool =
            Pool::<Root, _>::create_on(&mut medium, "pinned", bytemuck::Zeroable::zeroed())
                .unwrap();
        let root = pool.root().fields();
        pool.set(root.count, 2).unwrap();
        pool.alloc(root.first, 0x1122_3344_5566_7788_u64).unwrap();
        pool.alloc_slice_zeroed(root.big, 20_000).unwrap();
    }
    let mut image = vec![0; SIZE];
    medium.read(0, &mut image);
    image
}

fn u32_at(image: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(image[at..at + 4].try_into().unwrap())
}

fn u64_at(image: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(image[at..at + 8].try_into().unwrap())
}

#[test]
fn superblock_fields_sit_where_the_format_says() {
    let image = known_pool();
    assert_eq!(&image[0..8], b"PMEMRS\x00\x01", "magic");
    assert_eq!(u32_at(&image, 8), 1, "version");
    assert_eq!(&image[32..39], b"pinned\0", "layout name");
    assert_eq!(u64_at(&image, 96), 4096, "root offset");
    assert_eq!(u64_at(&image, 104), 32, "root size");
    assert_eq!(u64_at(&image, 112), 8, "root align");
    assert_eq!(u64_at(&image, 128), 16 * 1024, "chunk size");
    assert_eq!(u64_at(&image, 136), 64, "chunks per zone");
    assert_eq!(u64_at(&image, 144), 8192, "heap offset");
    assert_eq!(u32_at(&image, 152), 3, "recorded root fields");
    assert_eq!(&image[160..165], b"Root\0", "root name");
    // The first recorded field: name, offset, size.
    assert_eq!(&image[192..198], b"count\0");
    assert_eq!((u64_at(&image, 240), u64_at(&image, 248)), (0, 8));
    assert_eq!(&image[256..262], b"first\0");
    assert_eq!((u64_at(&image, 304), u64_at(&image, 312)), (8, 8));
}

#[test]
fn header_slot_redo_records_and_chunk_table_are_pinned() {
    let image = known_pool();
    // Dynamic slot 0: sequence 1, the pool's size, zero, then its CRC;
    // creation writes slot 1 equal to it, so either survives damage to the other.
    assert_eq!(u64_at(&image, 2048), 1, "slot sequence");
    assert_eq!(u64_at(&image, 2056), SIZE as u64, "slot pool size");
    assert!(
        image[2064..2104].iter().all(|&b| b == 0),
        "slot reserved words"
    );
    assert_eq!(
        u32_at(&image, 2104),
        crc32fast::hash(&image[2048..2104]),
        "slot CRC over the bytes before it"
    );
    assert_eq!(image[2048..2112], image[2112..2176], "second slot");
    // Both redo records cleared once their operations finished.
    assert!(image[2176..2304].iter().all(|&b| b == 0), "redo records");
    // The root: count, then the pointer to the first block, then the slice.
    let first_block = 8192 + 64 * 64; // zone 0's first chunk, after its table
    assert_eq!(u64_at(&image, 4096), 2);
    assert_eq!(u64_at(&image, 4104), first_block as u64);
    assert_eq!(u64_at(&image, 4112), (first_block + 16 * 1024) as u64);
    assert_eq!(u64_at(&image, 4120), 20_000);
    assert_eq!(u64_at(&image, first_block), 0x1122_3344_5566_7788);
    // Chunk 0: small, class 0 (64-byte blocks), block 0 allocated.
    assert_eq!(u64_at(&image, 8192), 0x0001, "chunk 0 state");
    assert_eq!(u64_at(&image, 8192 + 8), 1, "chunk 0 bitmap");
    // Chunks 1 and 2: a run of two chunks (head, then tail).
    assert_eq!(u64_at(&image, 8192 + 64), 2 | 2 << 32, "run head state");
    assert_eq!(u64_at(&image, 8192 + 128), 3, "run tail state");
    assert_eq!(u64_at(&image, 8192 + 192), 0, "chunk 3 free");
}

#[test]
fn the_whole_image_is_pinned() {
    let mut image = known_pool();
    // The uuid is random, and the superblock's CRC covers it.
    image[12..32].fill(0);
    assert_eq!(
        crc32fast::hash(&image),
        PINNED_CRC,
        "{:#010x}",
        crc32fast::hash(&image)
    );
}

/// CRC32 of the image of `known_pool` with the uuid and superblock CRC zeroed.
const PINNED_CRC: u32 = 0x7491_fddc;
