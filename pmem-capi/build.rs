//! Gives the C library the SONAME of PMDK's libpmem, `libpmem.so.1`, so that
//! programs linked against it record that name and, installed in its place
//! (or found first on the run-time search path), load it instead.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let linux = std::env::var("CARGO_CFG_TARGET_OS").is_ok_and(|os| os == "linux");
    if linux {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libpmem.so.1");
    }
}
