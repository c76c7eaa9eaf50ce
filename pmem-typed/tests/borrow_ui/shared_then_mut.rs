//! A `&T` read from the pool must not outlive a write to the pool.
use pmem_typed::{Persist, Pool};

#[derive(Clone, Copy, Persist)]
#[repr(C)]
struct Root {
    counter: u64,
}

fn main() -> pmem_typed::Result<()> {
    let mut pool = Pool::<Root>::create("/nonexistent/pool", "ui", 1 << 20)?;
    let root = pool.root();
    let read: &Root = pool.get(root)?;
    let mut guard = pool.get_mut(root)?;
    guard.counter = read.counter + 1;
    Ok(())
}
