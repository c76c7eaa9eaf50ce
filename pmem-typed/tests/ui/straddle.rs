use pmem_typed::Persist;

#[derive(Clone, Copy, Persist)]
#[repr(C)]
struct Shorts {
    a: [u16; 3],
    // 4 bytes at offset 6: crosses offset 8.
    b: [u8; 4],
}

#[derive(Clone, Copy, Persist)]
#[repr(C)]
struct Bytes {
    a: [u8; 7],
    // 2 bytes at offset 7.
    b: [u8; 2],
    c: [u8; 7],
}

fn main() {}
