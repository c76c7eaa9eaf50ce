//! `set` writes, so it cannot run while a reference into the pool is alive.
use pmem_typed::{Persist, Pool};

#[derive(Clone, Copy, Persist)]
#[repr(C)]
struct Root {
    counter: u64,
}

fn main() -> pmem_typed::Result<()> {
    let mut pool = Pool::<Root>::create("/nonexistent/pool", "ui", 1 << 20)?;
    let root = pool.root();
    let counter: &u64 = &pool.get(root)?.counter;
    pool.set(root.fields().counter, 5)?;
    assert_eq!(*counter, 5);
    Ok(())
}
