use pmem_typed::Persist;

#[derive(Clone, Copy, Persist)]
#[repr(C)]
struct Wrapper<T: Copy> {
    value: T,
}

#[derive(Clone, Copy, Persist)]
#[repr(C)]
struct Constrained
where
    u64: Copy,
{
    value: u64,
}

fn main() {}
