//! While a pool borrows a medium, a raw store to the medium cannot run: it
//! would change the bytes under the `&u64` the pool handed out.
#![forbid(unsafe_code)]
use pmem_typed::sim::SimMedium;
use pmem_typed::{Persist, Pool};

#[derive(Clone, Copy, Persist)]
#[repr(C)]
struct Root {
    counter: u64,
}

fn main() -> pmem_typed::Result<()> {
    let mut medium = SimMedium::new(64 << 10, 64 << 10);
    let pool = Pool::create_on(&mut medium, "ui", Root { counter: 1 })?;
    let at = pool.root().offset() as usize;
    let counter: &u64 = &pool.get(pool.root())?.counter;
    medium.store_u64(at, 2);
    assert_eq!(*counter, 1);
    Ok(())
}
