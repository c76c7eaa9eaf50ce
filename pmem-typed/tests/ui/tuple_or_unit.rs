use pmem_typed::Persist;

#[derive(Clone, Copy, Persist)]
#[repr(C)]
struct Pair(u64, u64);

#[derive(Clone, Copy, Persist)]
#[repr(C)]
struct Unit;

#[derive(Clone, Copy, Persist)]
#[repr(C)]
struct Empty {}

fn main() {}
