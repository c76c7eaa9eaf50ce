//! Two guards at once need `get_disjoint_mut`, which checks overlap at run time.
use pmem_typed::{Persist, Pool};

#[derive(Clone, Copy, Persist)]
#[repr(C)]
struct Root {
    a: u64,
    b: u64,
}

fn main() -> pmem_typed::Result<()> {
    let mut pool = Pool::<Root>::create("/nonexistent/pool", "ui", 1 << 20)?;
    let root = pool.root();
    let mut first = pool.get_mut(root.fields().a)?;
    let mut second = pool.get_mut(root.fields().a)?;
    *first += 1;
    *second += 1;
    Ok(())
}
