//! `Pool::medium` lends the medium for reading: its raw stores need `&mut`,
//! so they cannot write under the `&u64` the pool handed out.
#![forbid(unsafe_code)]
use pmem_typed::sim::SimMedium;
use pmem_typed::{Persist, Pool};

#[derive(Clone, Copy, Persist)]
#[repr(C)]
struct Root {
    counter: u64,
}

fn main() -> pmem_typed::Result<()> {
    let medium = SimMedium::new(64 << 10, 64 << 10);
    let pool = Pool::create_on(medium, "ui", Root { counter: 1 })?;
    let counter: &u64 = &pool.get(pool.root())?.counter;
    pool.medium().store_u64(pool.root().offset() as usize, 2);
    assert_eq!(*counter, 1);
    Ok(())
}
