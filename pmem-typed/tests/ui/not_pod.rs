use pmem_typed::Persist;

#[derive(Clone, Copy, Persist)]
#[repr(C)]
struct Mixed {
    name: &'static str,
    count: u32,
    flag: bool,
    rest: [u8; 3],
}

fn main() {}
