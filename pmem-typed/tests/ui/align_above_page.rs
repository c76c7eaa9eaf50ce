//! Pools only guarantee page (4096-byte) alignment: a larger `align(N)` is refused.
use pmem_typed::Persist;

#[derive(Clone, Copy, Persist)]
#[repr(C, align(8192))]
struct Huge {
    a: u64,
}

fn main() {}
