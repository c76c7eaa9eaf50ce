//! A word counter on a persistent hash map (see `phashmap.rs` for the map,
//! and why a crash at any point leaves it consistent).
//!
//! ```text
//! cargo run --example hashmap [-- [--pool PATH] [WORD ...]]
//! ```
//!
//! Counts the words given (or a built-in text) in a map stored in a pool
//! file, shows lookups, removes the most common short words, resizes the
//! bucket array to about one bucket per word, then closes the pool, reopens
//! it and lists what persisted.
//!
//! With `--pool PATH` the pool is kept, and the next run with the same path
//! adds its counts to it; without, the pool goes to /dev/shm (or the temp
//! directory) and is removed at the end.
//!
//! Keys are the FNV-1a hash of each word; values hold the word (up to 24
//! bytes) and its count, so a collision of two words would be noticed.
//!
//! Crash consistency comes from the map, not from this program: once `open`
//! has repaired what a crash left (a stale count, the old half of an update,
//! an interrupted resize), each `insert` and `remove` has either happened or
//! not. Kill this program at any point and run it again with the same
//! `--pool`: the map is as a prefix of the run's inserts and removes left it.

use std::error::Error;
use std::path::{Path, PathBuf};

// The tests use the parts the demo does not (the simulated medium).
#[allow(dead_code)]
mod phashmap;

use phashmap::{PHashMap, Value};

const TEXT: &str = "Persistent memory is memory that keeps its contents when the power \
    goes away. A program writes to it with ordinary stores, and a store reaches the \
    media when its cache line is written back: a crash can keep some stores and lose \
    others. A persistent data structure must therefore be consistent after a crash \
    at any point. This map is a hash map of buckets of linked entries; each insert \
    allocates an entry and publishes it with one atomic store, each remove unlinks \
    and frees an entry in one atomic step, and a resize moves the entries one at a \
    time. The count of entries may be stale after a crash, and it is repaired when \
    the map is opened again.";

/// Bytes of the word kept in a value; the rest is the count.
const WORD_BYTES: usize = 24;
const POOL_SIZE: usize = 8 << 20;

fn main() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args().skip(1).peekable();
    let mut pool = None;
    if args.peek().map(String::as_str) == Some("--pool") {
        args.next();
        pool = Some(PathBuf::from(args.next().ok_or("--pool needs a path")?));
    }
    let given: Vec<String> = args.collect();
    let text = if given.is_empty() {
        TEXT.to_owned()
    } else {
        given.join(" ")
    };
    let keep = pool.is_some();
    let path = pool.unwrap_or_else(default_path);

    let mut map = open_or_create(&path)?;
    count_words(&mut map, &text)?;

    println!("\nlookups:");
    for word in ["persistent", "memory", "crash", "unicorn"] {
        match map.get(key_of(word))? {
            Some(value) => println!("  {word:?}: {}", decode(&value).1),
            None => println!("  {word:?}: not in the map"),
        }
    }

    println!("\nremoving short common words:");
    for word in ["a", "the", "of", "and", "it", "is", "an", "to"] {
        if let Some(value) = map.remove(key_of(word))? {
            println!("  removed {word:?} (count {})", decode(&value).1);
        }
    }

    // About one bucket per word: a lower load than growth keeps (a shrink
    // after many removes, a grow otherwise).
    let before = map.buckets()?;
    map.resize(map.len().next_power_of_two().max(4))?;
    println!(
        "\nresized from {before} to {} buckets ({} words, load {:.2})",
        map.buckets()?,
        map.len(),
        map.len() as f64 / map.buckets()? as f64
    );
    drop(map);

    let map = PHashMap::open(&path)?;
    println!(
        "\nreopened {}: {} words in {} buckets; recovery: {}",
        path.display(),
        map.len(),
        map.buckets()?,
        map.recovery()
    );
    let mut entries: Vec<(String, u64)> = map
        .entries()?
        .iter()
        .map(|(_, value)| decode(value))
        .collect();
    entries.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    println!("most frequent:");
    for (word, count) in entries.iter().take(10) {
        println!("  {count:4}  {word}");
    }
    let report = map.check();
    print!("pool check: {report}");
    if !report.is_consistent() {
        return Err("the pool is inconsistent".into());
    }
    drop(map);
    if !keep {
        std::fs::remove_file(&path)?;
    }
    Ok(())
}

fn open_or_create(path: &Path) -> Result<PHashMap, Box<dyn Error>> {
    if path.exists() {
        let map = PHashMap::open(path)?;
        println!(
            "opened {}: {} words from earlier runs; recovery: {}",
            path.display(),
            map.len(),
            map.recovery()
        );
        Ok(map)
    } else {
        let map = PHashMap::create(path, POOL_SIZE, 4)?;
        println!(
            "created {} ({} MiB) with {} buckets",
            path.display(),
            POOL_SIZE >> 20,
            map.buckets()?
        );
        Ok(map)
    }
}

/// Adds the counts of the words of `text` to the map.
fn count_words(map: &mut PHashMap, text: &str) -> Result<(), Box<dyn Error>> {
    let mut total = 0;
    let mut buckets = map.buckets()?;
    for word in text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        let word = word.to_lowercase();
        let key = key_of(&word);
        let count = match map.get(key)? {
            Some(value) => {
                let (stored, count) = decode(&value);
                if stored != truncated(&word) {
                    println!("  hash collision: {word:?} and {stored:?}; skipping {word:?}");
                    continue;
                }
                count
            }
            None => 0,
        };
        map.insert(key, encode(&word, count + 1))?;
        total += 1;
        if map.buckets()? != buckets {
            println!(
                "  grew from {buckets} to {} buckets at {} words",
                map.buckets()?,
                map.len()
            );
            buckets = map.buckets()?;
        }
    }
    println!(
        "counted {total} words: {} distinct, {} buckets",
        map.len(),
        map.buckets()?
    );
    Ok(())
}

/// FNV-1a of the word.
fn key_of(word: &str) -> u64 {
    word.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The word as a value keeps it: its first 24 bytes, cut at a character boundary.
fn truncated(word: &str) -> &str {
    let mut end = word.len().min(WORD_BYTES);
    while !word.is_char_boundary(end) {
        end -= 1;
    }
    &word[..end]
}

fn encode(word: &str, count: u64) -> Value {
    let mut value = [0u8; 32];
    let word = truncated(word).as_bytes();
    value[..word.len()].copy_from_slice(word);
    value[WORD_BYTES..].copy_from_slice(&count.to_le_bytes());
    value
}

fn decode(value: &Value) -> (String, u64) {
    let (word, count) = value.split_at(WORD_BYTES);
    let len = word.iter().position(|&b| b == 0).unwrap_or(WORD_BYTES);
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(count);
    (
        String::from_utf8_lossy(&word[..len]).into_owned(),
        u64::from_le_bytes(bytes),
    )
}

fn default_path() -> PathBuf {
    let dir = if Path::new("/dev/shm").is_dir() {
        PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    dir.join(format!("pmem-rs-hashmap-{}", std::process::id()))
}
