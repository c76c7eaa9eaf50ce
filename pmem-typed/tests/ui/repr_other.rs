use pmem_typed::Persist;

#[derive(Clone, Copy, Persist)]
#[repr(transparent)]
struct Transparent {
    a: u64,
}

fn main() {}
