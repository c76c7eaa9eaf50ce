use pmem_typed::Persist;

#[derive(Clone, Copy, Persist)]
#[repr(C)]
struct Tail {
    a: u64,
    b: u8,
}

// `align(N)` rounds the size up too.
#[derive(Clone, Copy, Persist)]
#[repr(C, align(64))]
struct Line {
    words: [u64; 4],
}

fn main() {}
