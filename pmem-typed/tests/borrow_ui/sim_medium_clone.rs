//! A `SimMedium` has one owner: a clone would be a second handle that could
//! write under the references a pool on the first one hands out.
#![forbid(unsafe_code)]
use pmem_typed::sim::SimMedium;

fn main() {
    let medium = SimMedium::new(64 << 10, 64 << 10);
    let _second = medium.clone();
}
