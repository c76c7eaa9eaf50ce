//! A FIFO queue in persistent memory: pushes and pops, then prints the
//! queue, which the next run finds again.
//!
//! ```text
//! cargo run --example queue                  # push three numbers, pop one
//! cargo run --example queue -- 7 8 pop 9     # push 7 and 8, pop, push 9
//! cargo run --example queue -- --reset       # start over
//! cargo run --example queue -- --pool PATH   # another pool file
//! ```
//!
//! The queue itself is in `pqueue.rs`.

mod pqueue;

use std::error::Error;
use std::path::PathBuf;
use std::process::ExitCode;

use pmem::typed::Pool;
use pqueue::{LAYOUT, PQueue};

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("queue: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), Box<dyn Error>> {
    let (mut path, mut reset, mut ops) = (None, false, Vec::new());
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--reset" => reset = true,
            "--pool" => path = Some(PathBuf::from(args.next().ok_or("--pool needs a path")?)),
            "pop" => ops.push(None),
            number => ops.push(Some(number.parse::<u64>().map_err(|_| {
                format!("{number:?}: expected a number to push, `pop`, --reset or --pool PATH")
            })?)),
        }
    }
    let path = path.unwrap_or_else(|| default_path("pmem-rs-queue.pool"));
    if reset && path.exists() {
        std::fs::remove_file(&path)?;
        println!("removed {}", path.display());
    }

    let pool = if path.exists() {
        Pool::open(&path, LAYOUT)?
    } else {
        println!("creating {}", path.display());
        Pool::create(&path, LAYOUT, 1 << 20)?
    };
    let mut queue = PQueue::open(pool)?;
    println!("queue: {:?}", queue.to_vec()?);
    if ops.is_empty() {
        // Push the next three numbers, pop one.
        let last = queue.to_vec()?.last().copied().unwrap_or(0);
        ops = (1..=3).map(|i| Some(last.saturating_add(i))).collect();
        ops.push(None);
    }
    for op in ops {
        match op {
            Some(value) => {
                queue.push_back(value)?;
                println!("  push {value}");
            }
            None => match queue.pop_front()? {
                Some(value) => println!("  pop -> {value}"),
                None => println!("  pop -> (empty)"),
            },
        }
    }
    let report = queue.pool().check();
    println!(
        "queue: {:?} (pool check: {} blocks allocated, {} leaked)",
        queue.to_vec()?,
        report.allocated_blocks,
        report.leaked.len()
    );
    println!("Every step was durable when it returned: run again and the queue carries on.");
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
