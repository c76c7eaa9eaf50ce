//! Benchmarks of pmem-sys (being written).

fn main() {}
