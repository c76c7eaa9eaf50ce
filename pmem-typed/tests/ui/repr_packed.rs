use pmem_typed::Persist;

#[derive(Clone, Copy, Persist)]
#[repr(C, packed)]
struct Packed {
    a: u8,
    b: u64,
}

fn main() {}
