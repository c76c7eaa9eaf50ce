use pmem_typed::Persist;

#[derive(Clone, Copy, Persist)]
#[repr(C)]
struct Gap {
    a: u8,
    b: u32,
}

fn main() {}
