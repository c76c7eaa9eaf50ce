use pmem_typed::Persist;

#[derive(Clone, Copy, Persist)]
#[repr(C)]
#[pmem(foo)]
struct Unknown {
    a: u64,
}

#[derive(Clone, Copy, Persist)]
#[repr(C)]
#[pmem(fields = "Ptrs", colour = "red")]
struct UnknownAfterKnown {
    a: u64,
}

#[derive(Clone, Copy, Persist)]
#[repr(C)]
#[pmem(fields = "Ptrs", fields = "Other")]
struct Duplicate {
    a: u64,
}

#[derive(Clone, Copy, Persist)]
#[repr(C)]
struct OnField {
    #[pmem(crate = "pmem_typed")]
    a: u64,
}

fn main() {}
