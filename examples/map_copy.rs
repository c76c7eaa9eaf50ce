//! pmem-sys in a few lines: map a file, copy into it persistently, read it back.
//!
//! ```text
//! cargo run --example map_copy [PATH]
//! ```
//!
//! Without a path the file goes to /dev/shm (or the temp directory). Set
//! `PMEM_IS_PMEM_FORCE=1` to exercise the flush instructions on such a file.

use std::path::PathBuf;

use pmem::sys::{CopyFlags, Engine, Mapping};

fn main() -> std::io::Result<()> {
    let path = std::env::args_os()
        .nth(1)
        .map_or_else(default_path, PathBuf::from);
    let config = Engine::global().config();
    println!(
        "engine: {:?} flushes, {:?} copies, non-temporal from {} bytes{}",
        config.flush,
        config.variant,
        config.movnt_threshold,
        if config.skip_flush {
            " (flushes skipped: persistent caches)"
        } else {
            ""
        }
    );

    let message = b"Hello, persistent memory!";
    {
        let mut pool = Mapping::create(&path, 1 << 20)?;
        println!(
            "mapped {} bytes of {} (is_pmem: {})",
            pool.len(),
            path.display(),
            pool.is_pmem()
        );
        // Non-temporal copy, flushed and fenced before `write` returns.
        pool.write(4096, message, CopyFlags::NONTEMPORAL)?;
        // On a file that is not persistent memory, the kernel writes the page back.
        pool.sync(4096..4096 + message.len())?;
    } // unmapped here

    let pool = Mapping::open(&path)?;
    let mut back = vec![0u8; message.len()];
    pool.read(4096, &mut back)?;
    println!(
        "read back after remapping: {:?}",
        String::from_utf8_lossy(&back)
    );
    assert_eq!(back, message);
    std::fs::remove_file(&path)?;
    Ok(())
}

fn default_path() -> PathBuf {
    let dir = if std::path::Path::new("/dev/shm").is_dir() {
        PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    dir.join(format!("pmem-rs-demo-{}", std::process::id()))
}
