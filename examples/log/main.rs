//! An append-only log in persistent memory: appends the lines given on the
//! command line, then prints every entry, each checked against its CRC.
//!
//! ```text
//! cargo run --example log -- "first line" "second line"
//! cargo run --example log -- "one more"        # the earlier lines are still there
//! cargo run --example log -- --reset           # start over
//! cargo run --example log -- --pool PATH ...   # another pool file
//! ```
//!
//! The log itself is in `plog.rs`.

mod plog;

use std::error::Error;
use std::path::PathBuf;
use std::process::ExitCode;

use plog::{LAYOUT, LogError, PLog};
use pmem::typed::Pool;

/// Bytes of the pool file, and of the log's area in it.
const POOL_SIZE: usize = 1 << 20;
const CAPACITY: u64 = 64 * 1024;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("log: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), Box<dyn Error>> {
    let (mut path, mut reset, mut lines) = (None, false, Vec::new());
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--reset" => reset = true,
            "--pool" => path = Some(PathBuf::from(args.next().ok_or("--pool needs a path")?)),
            _ => lines.push(arg),
        }
    }
    let path = path.unwrap_or_else(|| default_path("pmem-rs-log.pool"));
    if reset && path.exists() {
        std::fs::remove_file(&path)?;
        println!("removed {}", path.display());
    }

    let pool = if path.exists() {
        Pool::open(&path, LAYOUT)?
    } else {
        println!("creating {}", path.display());
        Pool::create(&path, LAYOUT, POOL_SIZE)?
    };
    let mut log = PLog::open(pool, CAPACITY)?;
    for line in &lines {
        match log.append(line.as_bytes()) {
            Err(full @ LogError::Full { .. }) => {
                return Err(format!("{full}: start over with --reset").into());
            }
            other => other?,
        }
    }

    let (used, capacity) = log.usage()?;
    let medium = if log.pool().medium().is_pmem() {
        "persistent memory"
    } else {
        "not persistent memory"
    };
    println!(
        "{} ({medium}): {} entries, {} of them new; {used} of {capacity} bytes used",
        path.display(),
        log.len(),
        lines.len()
    );
    for (i, entry) in log.iter().enumerate() {
        println!("{i:4}  {}", String::from_utf8_lossy(entry?));
    }
    if log.is_empty() {
        println!("(empty: give some lines to append)");
    }
    Ok(())
}

/// A file in /dev/shm (memory, like persistent memory) or the temp directory.
fn default_path(name: &str) -> PathBuf {
    let shm = PathBuf::from("/dev/shm");
    let dir = if shm.is_dir() {
        shm
    } else {
        std::env::temp_dir()
    };
    dir.join(name)
}
