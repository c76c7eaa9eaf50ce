//! The C ABI, driven the way C programs use it.
//!
//! Cargo builds `libpmem_capi.so` (this crate is a `cdylib`) next to this test
//! binary. These tests check that it exports exactly the 23 functions of
//! `libpmem.h` 1.1 and carries PMDK's SONAME, then compile the C programs in
//! `tests/c/` with the system C compiler (`$CC`, default `cc`), link them to
//! a copy of the `.so` named `libpmem.so.1` beside them and run them, under
//! several `PMEM_*` environments:
//!
//! - `libpmem_api.c` against our `include/libpmem.h`, and again against
//!   PMDK's `/usr/include/libpmem.h` when it is installed, which shows that a
//!   program written for standard libpmem compiles unchanged;
//! - `cxx_linkage.cpp` with the C++ compiler (`$CXX`, default `c++`), when
//!   there is one, which shows that the header gives every function C linkage.
//!
//! Run with `cargo test -p pmem-capi --test capi`.

use std::env;
use std::ffi::{CStr, c_char, c_uint};
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Every function of `libpmem.h` 1.1.
const API: [&str; 23] = [
    "pmem_map_file",
    "pmem_unmap",
    "pmem_is_pmem",
    "pmem_persist",
    "pmem_msync",
    "pmem_has_auto_flush",
    "pmem_flush",
    "pmem_deep_flush",
    "pmem_deep_drain",
    "pmem_deep_persist",
    "pmem_drain",
    "pmem_has_hw_drain",
    "pmem_memmove_persist",
    "pmem_memcpy_persist",
    "pmem_memset_persist",
    "pmem_memmove_nodrain",
    "pmem_memcpy_nodrain",
    "pmem_memset_nodrain",
    "pmem_memmove",
    "pmem_memcpy",
    "pmem_memset",
    "pmem_check_version",
    "pmem_errormsg",
];

/// The variables the library reads; cleared in each child so that a run sees
/// only what it sets, whatever the environment of `cargo test`.
const PMEM_VARS: [&str; 10] = [
    "PMEM_IS_PMEM_FORCE",
    "PMEM_NO_CLWB",
    "PMEM_NO_CLFLUSHOPT",
    "PMEM_NO_FLUSH",
    "PMEM_NO_MOVNT",
    "PMEM_MOVNT_THRESHOLD",
    "PMEM_AVX",
    "PMEM_AVX512F",
    "PMEM_NO_GENERIC_MEMCPY",
    "PMEM_MMAP_HINT",
];

/// The environments the C program runs under.
const RUNS: [&[(&str, &str)]; 8] = [
    &[],
    // Mappings of ordinary files count as persistent memory; the program
    // checks that is_pmem says 1 for them.
    &[("PMEM_IS_PMEM_FORCE", "1")],
    &[("PMEM_IS_PMEM_FORCE", "0")],
    // The generic copy routines instead of the SSE2/AVX ones.
    &[("PMEM_NO_MOVNT", "1")],
    &[("PMEM_AVX", "0"), ("PMEM_AVX512F", "0")],
    &[("PMEM_MOVNT_THRESHOLD", "0")],
    &[("PMEM_NO_CLWB", "1"), ("PMEM_NO_CLFLUSHOPT", "1")],
    &[("PMEM_NO_FLUSH", "1")],
];

/// `tests/c/` of this package.
fn c_sources() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("c")
}

/// The `libpmem_capi.so` cargo built for this test run.
///
/// The test binary lives in `target/<profile>/deps/`, where cargo also puts
/// the library's cdylib; the copy one level up is used if that is missing.
fn cdylib() -> PathBuf {
    let name = format!(
        "{}pmem_capi{}",
        env::consts::DLL_PREFIX,
        env::consts::DLL_SUFFIX
    );
    let exe = env::current_exe().expect("the path of this test binary");
    let deps = exe
        .parent()
        .expect("the test binary is in a directory")
        .to_path_buf();
    let candidates = [Some(deps.join(&name)), deps.parent().map(|d| d.join(&name))];
    candidates
        .iter()
        .flatten()
        .find(|path| path.is_file())
        .cloned()
        .unwrap_or_else(|| {
            panic!(
                "{name} not found in {} or its parent. Cargo builds it beside this test binary \
                 because pmem-capi has crate-type \"cdylib\"; was that removed from \
                 pmem-capi/Cargo.toml?",
                deps.display()
            )
        })
}

/// A compiler command from the environment variable `var` (which may hold
/// arguments, as in `CC="ccache gcc"`), or `default`.
fn compiler(var: &str, default: &str) -> Vec<String> {
    let from_env = env::var(var).unwrap_or_default();
    let words: Vec<String> = from_env.split_whitespace().map(str::to_owned).collect();
    if words.is_empty() {
        vec![default.to_owned()]
    } else {
        words
    }
}

/// Everything about a finished process, for failure messages.
fn describe(what: &str, output: &Output) -> String {
    format!(
        "{what}: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The library's SONAME, PMDK's: what programs linked against it look for.
const SONAME: &str = "libpmem.so.1";

/// Copies the cdylib into `dir` under its SONAME, so that a program linked
/// against the copy, with `dir` as its run path, loads exactly this library.
///
/// The copy goes in a directory of the test's own rather than beside the
/// cdylib: `cargo test` puts `target/<profile>/deps` on `LD_LIBRARY_PATH`, and
/// a `libpmem.so.1` there would stand in for PMDK's in the side-by-side tests.
fn stage_library(dir: &Path) -> PathBuf {
    let staged = dir.join(SONAME);
    if !staged.is_file() {
        std::fs::copy(cdylib(), &staged)
            .unwrap_or_else(|e| panic!("copy the library to {}: {e}", staged.display()));
    }
    staged
}

/// Compiles and links `source` into `out`, against the cdylib (staged in
/// `out`'s directory, see [`stage_library`]).
///
/// Returns `Ok(false)` if the compiler does not exist and `optional` is set.
fn build(
    compiler: &[String],
    flags: &[&str],
    source: &Path,
    out: &Path,
    optional: bool,
) -> io::Result<bool> {
    let lib_dir = out.parent().expect("the program is in a directory");
    let lib = stage_library(lib_dir);
    let mut command = Command::new(&compiler[0]);
    command
        .args(&compiler[1..])
        .args(flags)
        .arg(source)
        .arg("-o")
        .arg(out)
        // Link the .so by path, so that no other libpmem can be picked up,
        // and let the program find it at run time without LD_LIBRARY_PATH.
        .arg(&lib)
        .arg(format!("-Wl,-rpath,{}", lib_dir.display()))
        .arg("-pthread");
    let output = match command.output() {
        Ok(output) => output,
        Err(e) if optional && e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => {
            return Err(io::Error::new(
                e.kind(),
                format!("cannot run {command:?} (set CC/CXX to a C/C++ compiler): {e}"),
            ));
        }
    };
    assert!(
        output.status.success(),
        "{}",
        describe(&format!("compiling: {command:?}"), &output)
    );
    Ok(true)
}

/// Runs `program DIR` in a fresh temporary directory for each of [`RUNS`],
/// asserting that it exits 0 and prints its summary line.
fn run_everywhere(program: &Path, summary: &str) {
    for run in RUNS {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let mut command = Command::new(program);
        command.arg(dir.path()).current_dir(dir.path());
        for var in PMEM_VARS {
            command.env_remove(var);
        }
        command.envs(run.iter().copied());
        let output = command
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()));
        let what = format!("{} with {run:?}", program.display());
        assert!(output.status.success(), "{}", describe(&what, &output));
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            stdout.contains(summary),
            "{}",
            describe(&format!("{what} did not report {summary:?}"), &output)
        );
    }
}

/// Builds and runs `libpmem_api.c` with the given header choice.
fn c_program(header_flags: &[&str]) {
    let work = tempfile::tempdir().expect("a temporary directory");
    let program = work.path().join("libpmem_api");
    let mut flags = vec!["-std=c11", "-O2", "-Wall", "-Wextra", "-Wstrict-prototypes"];
    flags.extend_from_slice(header_flags);
    build(
        &compiler("CC", "cc"),
        &flags,
        &c_sources().join("libpmem_api.c"),
        &program,
        false,
    )
    .expect("compile libpmem_api.c");
    run_everywhere(&program, ", 0 failed");
}

#[test]
fn exports_exactly_the_libpmem_api() {
    let path = cdylib();
    // SAFETY: loading runs the library's initialisers; pmem-sys has none of
    // its own (its state is set up lazily), and Rust's std is sound when
    // loaded a second time as a separate copy.
    let lib = unsafe { libloading::Library::new(&path) }
        .unwrap_or_else(|e| panic!("cannot load {}: {e}", path.display()));
    for name in API {
        // SAFETY: only the symbol's address is looked up; the type given is
        // not used to call it.
        let symbol = unsafe { lib.get::<unsafe extern "C" fn()>(name) };
        assert!(
            symbol.is_ok(),
            "{} does not export {name} ({:?})",
            path.display(),
            symbol.err()
        );
    }

    // The loaded functions are callable.
    // SAFETY: pmem_check_version has this C signature in libpmem.h.
    let check_version = unsafe {
        lib.get::<unsafe extern "C" fn(c_uint, c_uint) -> *const c_char>("pmem_check_version")
    }
    .expect("pmem_check_version is exported");
    // SAFETY: the function takes two integers and has no preconditions.
    assert!(unsafe { check_version(1, 1) }.is_null());
    // SAFETY: as above.
    let message = unsafe { check_version(2, 0) };
    assert!(!message.is_null(), "version 2.0 must be refused");
    // SAFETY: a non-NULL result is a NUL-terminated string that stays valid
    // until the next error on this thread; it is read right away.
    let message = unsafe { CStr::from_ptr(message) };
    assert_eq!(
        message.to_str(),
        Ok("libpmem major version mismatch (need 2, found 1)")
    );
}

#[test]
fn nm_lists_only_the_api() {
    let path = cdylib();
    let output = match Command::new("nm")
        .args(["-D", "--defined-only"])
        .arg(&path)
        .output()
    {
        Ok(output) => output,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            println!("note: nm is not installed; the exports are checked by libloading only");
            return;
        }
        Err(e) => panic!("cannot run nm: {e}"),
    };
    assert!(output.status.success(), "{}", describe("nm", &output));
    let text = String::from_utf8_lossy(&output.stdout);
    let mut exported: Vec<&str> = text
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace().rev();
            let name = fields.next()?;
            let kind = fields.next()?;
            // Code and data symbols; not the versioning markers (`A`).
            (kind != "A").then_some(name)
        })
        .collect();
    exported.sort_unstable();
    let mut expected = API.to_vec();
    expected.sort_unstable();
    assert_eq!(
        exported,
        expected,
        "`nm -D --defined-only {}` should list exactly the libpmem API",
        path.display()
    );
}

#[test]
fn soname_is_pmdks() {
    let path = cdylib();
    let output = match Command::new("readelf").arg("-d").arg(&path).output() {
        Ok(output) => output,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            println!("note: readelf is not installed; the SONAME is not checked");
            return;
        }
        Err(e) => panic!("cannot run readelf: {e}"),
    };
    assert!(output.status.success(), "{}", describe("readelf", &output));
    let text = String::from_utf8_lossy(&output.stdout);
    let sonames: Vec<&str> = text
        .lines()
        .filter(|line| line.contains("(SONAME)"))
        .collect();
    assert!(
        sonames.len() == 1 && sonames[0].contains(&format!("[{SONAME}]")),
        "`readelf -d {}` should show the SONAME {SONAME}, found {sonames:?}",
        path.display()
    );
}

#[test]
fn c_program_with_our_header() {
    let include = Path::new(env!("CARGO_MANIFEST_DIR")).join("include");
    let include = format!("-I{}", include.display());
    // Our header must be warning-free even under -pedantic.
    c_program(&[&include, "-DEXPECT_PMEM_SYS_HEADER", "-pedantic", "-Werror"]);
}

#[test]
fn c_program_with_system_header() {
    let system_header = Path::new("/usr/include/libpmem.h");
    if !system_header.is_file() {
        println!(
            "note: {} is absent (install libpmem-dev); skipped compiling against PMDK's header",
            system_header.display()
        );
        return;
    }
    c_program(&["-DEXPECT_SYSTEM_HEADER"]);
}

#[test]
fn cxx_program_links_with_c_linkage() {
    let work = tempfile::tempdir().expect("a temporary directory");
    let program = work.path().join("cxx_linkage");
    let include = Path::new(env!("CARGO_MANIFEST_DIR")).join("include");
    let include = format!("-I{}", include.display());
    let cxx = compiler("CXX", "c++");
    let built = build(
        &cxx,
        &["-std=c++11", "-Wall", "-Wextra", "-Werror", &include],
        &c_sources().join("cxx_linkage.cpp"),
        &program,
        true,
    )
    .expect("compile cxx_linkage.cpp");
    if !built {
        println!("note: no C++ compiler ({cxx:?}); skipped the C++ linkage check");
        return;
    }
    let output = Command::new(&program)
        .current_dir(work.path())
        .output()
        .expect("run cxx_linkage");
    assert!(
        output.status.success(),
        "{}",
        describe("cxx_linkage", &output)
    );
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("0 failed"),
        "{}",
        describe("cxx_linkage did not report its summary", &output)
    );
}

/// The user-facing C example, `examples/capi/pmem_copy.c` at the top of the
/// repository: it builds warning-free against our header, copies a file that
/// is not a multiple of any copy size into a new pmem file under every
/// environment of [`RUNS`], and refuses to overwrite an existing file.
#[test]
fn pmem_copy_example() {
    let work = tempfile::tempdir().expect("a temporary directory");
    let program = work.path().join("pmem_copy");
    let include = Path::new(env!("CARGO_MANIFEST_DIR")).join("include");
    let include = format!("-I{}", include.display());
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/capi/pmem_copy.c");
    build(
        &compiler("CC", "cc"),
        &[
            "-std=c11",
            "-O2",
            "-Wall",
            "-Wextra",
            "-pedantic",
            "-Werror",
            &include,
        ],
        &source,
        &program,
        false,
    )
    .expect("compile pmem_copy.c");

    // 3 MiB and a few bytes: several read chunks, then a ragged tail.
    let data: Vec<u8> = (0..3 * 1024 * 1024 + 77u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let src = work.path().join("src");
    std::fs::write(&src, &data).expect("write the source file");

    let pmem_run = |run: &[(&str, &str)], dst: &Path| {
        let mut command = Command::new(&program);
        command.arg(&src).arg(dst);
        for var in PMEM_VARS {
            command.env_remove(var);
        }
        command.envs(run.iter().copied());
        command.output().expect("run pmem_copy")
    };
    for (i, run) in RUNS.iter().enumerate() {
        let dst = work.path().join(format!("dst{i}"));
        let output = pmem_run(run, &dst);
        let what = format!("pmem_copy with {run:?}");
        assert!(output.status.success(), "{}", describe(&what, &output));
        let stdout = String::from_utf8_lossy(&output.stdout);
        let forced = run.contains(&("PMEM_IS_PMEM_FORCE", "1"));
        let expected = if forced {
            "(persistent memory:"
        } else {
            "(not persistent memory:"
        };
        assert!(
            stdout.contains(expected),
            "{}",
            describe(&format!("{what}: expected {expected:?}"), &output)
        );
        assert!(
            std::fs::read(&dst).expect("read the copy") == data,
            "{what}: the copy differs from the source"
        );
    }

    // An existing destination is an error that names it and leaves it as it was.
    let existing = work.path().join("existing");
    std::fs::write(&existing, b"keep me").expect("write the existing file");
    let output = pmem_run(&[], &existing);
    assert_eq!(
        output.status.code(),
        Some(1),
        "{}",
        describe("pmem_copy onto an existing file", &output)
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&*existing.to_string_lossy()) && stderr.contains("exists"),
        "{}",
        describe("pmem_copy onto an existing file: message", &output)
    );
    assert_eq!(std::fs::read(&existing).expect("read it back"), b"keep me");
}
