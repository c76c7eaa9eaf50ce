use pmem_typed::Persist;

#[derive(Persist)]
#[repr(C)]
struct NotCopy {
    a: u64,
}

fn main() {}
