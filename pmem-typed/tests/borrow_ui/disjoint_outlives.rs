//! The `&mut` from `DisjointGuard::each_mut` live only while the guard does:
//! none survives the drop that persists them (or a second use of the pool).
use pmem_typed::{Persist, Pool};

#[derive(Clone, Copy, Persist)]
#[repr(C)]
struct Root {
    a: u64,
    b: u64,
}

fn main() -> pmem_typed::Result<()> {
    let mut pool = Pool::<Root>::create("/nonexistent/pool", "ui", 1 << 20)?;
    let root = pool.root().fields();
    let mut both = pool.get_disjoint_mut([root.a, root.b])?;
    let [a, _b] = both.each_mut();
    drop(both);
    *a += 1;
    Ok(())
}
