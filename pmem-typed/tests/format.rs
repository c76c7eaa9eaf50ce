//! The bytes of a known pool, pinned: format version 1 is little-endian and
//! laid out exactly as `docs/layout.md` draws it. A change to any structure's
//! bytes fails here, whatever the code that reads it agrees to.
//!
//! The pool's uuid is random, so its 16 bytes (and the superblock CRC, which
//! covers them) are checked for what they must be, not pinned.

use pmem_typed::format::redo::{RedoKind, RedoRecord};
use pmem_typed::format::{DYNAMIC_SLOTS_OFFSET, REDO_OFFSET};
use pmem_typed::sim::SimMedium;
use pmem_typed::{PPtr, Persist, Pool};
use zerocopy::{FromZeros, IntoBytes};

#[derive(Clone, Copy, Persist)]
#[repr(C)]
struct Root {
    count: u64,
    first: PPtr<u64>,
}

/// `bytes` as space-separated hex, 16 to a line.
fn hex(bytes: &[u8]) -> String {
    bytes
        .chunks(16)
        .map(|line| {
            line.iter()
                .map(|b| format!("{b:02x}"))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// 64 KiB on the simulator, one 8-byte object allocated and published.
fn known_pool() -> Vec<u8> {
    let medium = SimMedium::new(64 << 10, 64 << 10);
    medium.set_recording(false);
    let mut pool = Pool::create_on(
        medium,
        "pinned",
        Root {
            count: 7,
            first: PPtr::null(),
        },
    )
    .expect("create");
    let first = pool.root().fields().first;
    pool.alloc(first, 0x1122_3344_5566_7788u64).expect("alloc");
    pool.into_medium().live()
}

#[test]
fn the_superblock_is_pinned() {
    let image = known_pool();
    // magic, version 1, then the CRC (of bytes 16..2048).
    assert_eq!(hex(&image[..12]), "50 4d 45 4d 52 53 00 01 01 00 00 00");
    let crc = u32::from_le_bytes(image[8 + 4..16].try_into().unwrap());
    assert_eq!(crc, crc32fast::hash(&image[16..2048]));
    // The uuid: random, of version 4 and the RFC 4122 variant.
    assert_eq!(image[16 + 6] >> 4, 4);
    assert_eq!(image[16 + 8] >> 6, 0b10);
    // The layout name, NUL-padded to 64 bytes.
    assert_eq!(&image[32..38], b"pinned");
    assert!(image[38..96].iter().all(|&b| b == 0));
    let fingerprint = Root::LAYOUT.fingerprint.to_le_bytes();
    let expected = [
        // root_offset 4096, root_size 16, root_align 8
        "00 10 00 00 00 00 00 00 10 00 00 00 00 00 00 00",
        "08 00 00 00 00 00 00 00 ff ff ff ff ff ff ff ff",
        // chunk_size 16384, zone_chunks 64
        "00 40 00 00 00 00 00 00 40 00 00 00 00 00 00 00",
        // heap_offset 8192, root_field_count 2, reserved 0
        "00 20 00 00 00 00 00 00 02 00 00 00 00 00 00 00",
        // the root type's name, 32 bytes
        "52 6f 6f 74 00 00 00 00 00 00 00 00 00 00 00 00",
        "00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00",
    ]
    .join("\n");
    // The fingerprint is the derive's; its place (bytes 120..128) is pinned.
    let mut header = image[96..192].to_vec();
    header[24..32].fill(0xff);
    assert_eq!(hex(&header), expected);
    assert_eq!(image[120..128], fingerprint);
    // The first field record: name (48 bytes), offset 0, size 8; then `first` at 8.
    assert_eq!(&image[192..197], b"count");
    assert!(image[197..240].iter().all(|&b| b == 0));
    assert_eq!(
        hex(&image[240..256]),
        "00 00 00 00 00 00 00 00 08 00 00 00 00 00 00 00"
    );
    assert_eq!(&image[256..261], b"first");
    assert_eq!(
        hex(&image[304..320]),
        "08 00 00 00 00 00 00 00 08 00 00 00 00 00 00 00"
    );
    assert!(image[320..DYNAMIC_SLOTS_OFFSET].iter().all(|&b| b == 0));
}

#[test]
fn the_dynamic_slots_are_pinned() {
    let image = known_pool();
    for slot in 0..2 {
        let at = DYNAMIC_SLOTS_OFFSET + slot * 64;
        let line = &image[at..at + 64];
        // seq 1, pool_size 65536, five reserved words, crc, pad.
        assert_eq!(
            hex(&line[..16]),
            "01 00 00 00 00 00 00 00 00 00 01 00 00 00 00 00"
        );
        assert!(line[16..56].iter().all(|&b| b == 0));
        let crc = crc32fast::hash(&line[..56]);
        assert_eq!(line[56..60], crc.to_le_bytes());
        assert_eq!(line[60..64], [0; 4]);
    }
}

#[test]
fn the_redo_records_and_chunk_table_are_pinned() {
    let image = known_pool();
    // Both redo records are cleared once the allocation returns.
    assert!(
        image[REDO_OFFSET..REDO_OFFSET + 128]
            .iter()
            .all(|&b| b == 0)
    );
    // Zone 0's table at 8192: chunk 0 is small (kind 1), of class 0 (64-byte
    // blocks), with block 0 allocated; the other 63 descriptors are zero.
    let table = 8192;
    assert_eq!(
        hex(&image[table..table + 64]),
        [
            "01 00 00 00 00 00 00 00 01 00 00 00 00 00 00 00",
            "00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00",
            "00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00",
            "00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00",
        ]
        .join("\n")
    );
    assert!(image[table + 64..table + 64 * 64].iter().all(|&b| b == 0));
    // The block: the first chunk, after the 4 KiB table; the root points at it.
    let block = table + 64 * 64;
    assert_eq!(
        image[block..block + 8],
        0x1122_3344_5566_7788u64.to_le_bytes()
    );
    assert_eq!(image[4096..4104], 7u64.to_le_bytes());
    assert_eq!(image[4104..4112], (block as u64).to_le_bytes());
}

#[test]
fn a_redo_record_is_pinned() {
    let record = RedoRecord {
        kind: RedoKind::Alloc,
        dest_len: 16.into(),
        block: 0x0102_0304_0506_0708.into(),
        block_size: 0x40.into(),
        dest: 0x1008.into(),
        dest_value: [0x3000.into(), 5.into()],
        value_crc: 0xdead_beef.into(),
        value_len: 40.into(),
        seq: 0x0a0b_0c0d.into(),
        ..RedoRecord::new_zeroed()
    }
    .sealed();
    let bytes = record.as_bytes();
    assert_eq!(
        hex(&bytes[..60]),
        [
            // kind 1 as the u32 it was, dest_len 16, block
            "01 00 00 00 10 00 00 00 08 07 06 05 04 03 02 01",
            // block_size, dest
            "40 00 00 00 00 00 00 00 08 10 00 00 00 00 00 00",
            // dest_value
            "00 30 00 00 00 00 00 00 05 00 00 00 00 00 00 00",
            // value_crc, value_len, seq
            "ef be ad de 28 00 00 00 0d 0c 0b 0a",
        ]
        .join("\n")
    );
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&bytes[..60]);
    assert_eq!(bytes[60..], hasher.finalize().to_le_bytes());
}
