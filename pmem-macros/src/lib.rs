//! Procedural macros for pmem-typed. `derive(Persist)` is being built.
