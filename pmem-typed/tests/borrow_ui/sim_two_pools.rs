//! Two pools on one medium at once would hand out a `&T` and a `&mut T` (or a
//! write) to the same bytes: the medium can be lent to one pool at a time.
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
    Pool::create_on(&mut medium, "ui", Root { counter: 0 })?;
    let mut writer = Pool::<Root, _>::open_on(&mut medium, "ui")?;
    let reader = Pool::<Root, _>::open_on(&mut medium, "ui")?;
    let root = reader.root();
    let read: &Root = reader.get(root)?;
    writer.set(root.fields().counter, 5)?;
    assert_eq!(read.counter, 5);
    Ok(())
}
