//! A field whose own type is aligned beyond a page makes the struct so too.
use pmem_typed::Persist;

#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C, align(16384))]
struct Page16K {
    bytes: [u8; 16384],
}

#[derive(Clone, Copy, Persist)]
#[repr(C)]
struct Holder {
    page: Page16K,
}

fn main() {}
