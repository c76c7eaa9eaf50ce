use pmem_typed::Persist;

#[derive(Clone, Copy, Persist)]
#[repr(C)]
enum State {
    Empty,
    Full(u64),
}

#[derive(Clone, Copy, Persist)]
#[repr(C)]
union Either {
    int: u64,
    float: f64,
}

fn main() {}
