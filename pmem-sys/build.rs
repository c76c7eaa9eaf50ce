//! Gives the C library (`--features capi`) a SONAME, so that programs linked
//! against it record `libpmem_sys.so` and find it again at run time.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let linux = std::env::var("CARGO_CFG_TARGET_OS").is_ok_and(|os| os == "linux");
    if linux && std::env::var_os("CARGO_FEATURE_CAPI").is_some() {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libpmem_sys.so");
    }
}
