// `#[pmem(crate = "...")]` is where the generated code looks for pmem_typed.
use pmem_typed::Persist;

#[derive(Clone, Copy, Persist)]
#[repr(C)]
#[pmem(crate = "not_pmem_typed")]
struct Elsewhere {
    a: u64,
}

fn main() {}
