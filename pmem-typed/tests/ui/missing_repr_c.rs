use pmem_typed::Persist;

#[derive(Clone, Copy, Persist)]
struct NoRepr {
    a: u64,
    b: u64,
}

fn main() {}
