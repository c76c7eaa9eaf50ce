//! Quick start: a counter and a record in persistent memory, which the next
//! run of the program finds again.
//!
//! ```text
//! cargo run --example quickstart              # run it twice: the count goes on
//! cargo run --example quickstart -- --reset   # start over
//! cargo run --example quickstart -- PATH      # another pool file
//! ```
//!
//! Without a path, the pool is a file in /dev/shm (or the temp directory).
//! `PMEM_IS_PMEM_FORCE=1` makes the library treat it as persistent memory and
//! flush with CPU instructions instead of `msync`. The data and the update
//! are in `guestbook.rs`.

mod guestbook;

use std::error::Error;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use guestbook::{LAYOUT, Root};
use pmem::typed::Pool;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("quickstart: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), Box<dyn Error>> {
    let mut path = default_path();
    let mut reset = false;
    for arg in std::env::args_os().skip(1) {
        match arg.to_str() {
            Some("--reset") => reset = true,
            _ => path = PathBuf::from(arg),
        }
    }
    if reset && path.exists() {
        std::fs::remove_file(&path)?;
        println!("removed {}", path.display());
    }

    // Open the pool, or create it (1 MiB, with a zeroed root) the first time.
    let (mut pool, what) = if path.exists() {
        (Pool::<Root>::open(&path, LAYOUT)?, "opened")
    } else {
        (Pool::<Root>::create(&path, LAYOUT, 1 << 20)?, "created")
    };
    let medium = if pool.medium().is_pmem() {
        "persistent memory: flushes are CPU instructions"
    } else {
        "not persistent memory: flushes are msync calls"
    };
    println!("{what} {} ({medium})", path.display());

    let name = std::env::var("USER").unwrap_or_else(|_| "friend".into());
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    let before = guestbook::visit(&mut pool, &name, now)?;

    let run = before.runs + 1;
    let last = before.visitor;
    if run == 1 {
        println!("run #1: hello, {name}! The counter and your record are now in the pool.");
    } else if last.name == guestbook::name_bytes(&name) {
        let ago = now.saturating_sub(last.last_visit);
        let visits = last.visits + 1;
        println!("run #{run}: welcome back, {name}: visit #{visits}, the last one {ago} s ago.");
    } else {
        let other = last.name();
        println!("run #{run}: hello, {name}! The last visitor was {other}.");
    }
    println!("Both are durable: run again and they carry on (--reset starts over).");
    Ok(())
}

/// A fixed file in /dev/shm (memory, like persistent memory) or the temp
/// directory, so that the next run finds it.
fn default_path() -> PathBuf {
    let shm = PathBuf::from("/dev/shm");
    let dir = if shm.is_dir() {
        shm
    } else {
        std::env::temp_dir()
    };
    dir.join("pmem-rs-quickstart.pool")
}
