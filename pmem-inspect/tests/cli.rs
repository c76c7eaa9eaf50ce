//! `pmem-inspect`, run as a program on pools made with the library: what
//! `info` and `check` print (text and JSON), and their exit status on good
//! pools, damaged pools, files that are not pools, and bad command lines.

use std::os::unix::fs::{FileExt, FileTypeExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, MutexGuard, PoisonError};

use pmem_testkit::scratch;
use pmem_typed::format::redo::{RedoKind, RedoRecord};
use pmem_typed::format::{CHUNK, PAGE, REDO_OFFSET};
use pmem_typed::inspect::inspect;
use pmem_typed::{PPtr, PSlice, Persist, Pool};
use proptest::prelude::Rng;
use proptest::test_runner::{RngAlgorithm, TestRng};
use serde_json::Value;
use zerocopy::IntoBytes;

#[derive(Clone, Copy, Persist)]
#[repr(C)]
struct Root {
    count: u64,
    head: PPtr<Node>,
    big: PPtr<Big>,
    name: PPtr<Name>,
    items: PSlice<u64>,
}

/// 16 bytes: the 64-byte class.
#[derive(Clone, Copy, Persist)]
#[repr(C)]
struct Node {
    value: u64,
    next: PPtr<Node>,
}

/// 200 bytes: the 256-byte class.
#[derive(Clone, Copy, Persist)]
#[repr(C)]
struct Name {
    bytes: [u8; 200],
}

/// 40000 bytes: a run of three chunks.
#[derive(Clone, Copy, Persist)]
#[repr(C)]
struct Big {
    words: [u64; 5000],
}

/// A root with more fields than the header records (29).
#[derive(Clone, Copy, Persist)]
#[repr(C)]
struct Wide {
    f00: u64,
    f01: u64,
    f02: u64,
    f03: u64,
    f04: u64,
    f05: u64,
    f06: u64,
    f07: u64,
    f08: u64,
    f09: u64,
    f10: u64,
    f11: u64,
    f12: u64,
    f13: u64,
    f14: u64,
    f15: u64,
    f16: u64,
    f17: u64,
    f18: u64,
    f19: u64,
    f20: u64,
    f21: u64,
    f22: u64,
    f23: u64,
    f24: u64,
    f25: u64,
    f26: u64,
    f27: u64,
    f28: u64,
    f29: u64,
    f30: u64,
}

const LAYOUT: &str = "cli-test";
const SIZE: usize = 1 << 20;
/// Offset of `Root::head` in the pool.
const HEAD: u64 = PAGE as u64 + 8;

/// The tests take turns. A pool's lock belongs to its open file description,
/// and a child forked by one test shares every descriptor this process has
/// open until it execs: another test that closed its pool and reopened it in
/// that window would find it "already open". One test at a time keeps each
/// test's pools to its own children.
static ONE_TEST_AT_A_TIME: Mutex<()> = Mutex::new(());

fn take_turn() -> MutexGuard<'static, ()> {
    ONE_TEST_AT_A_TIME
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
}

/// A scratch directory, and this test's turn for as long as it lives.
struct Dir {
    tmp: tempfile::TempDir,
    _turn: MutexGuard<'static, ()>,
}

impl Dir {
    fn new() -> Self {
        let turn = take_turn();
        Self {
            tmp: scratch::scratch("pmem-inspect"),
            _turn: turn,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }

    /// A pool holding three nodes, a name, a big object and a slice of 100
    /// numbers; closed again.
    fn pool(&self, name: &str) -> PathBuf {
        let path = self.path(name);
        let mut pool = Pool::<Root>::create(&path, LAYOUT, SIZE).expect("create pool");
        let root = pool.root();
        pool.set(root.fields().count, 3).unwrap();
        for value in 1..=3 {
            let next = pool.get(root).unwrap().head;
            pool.alloc(root.fields().head, Node { value, next })
                .unwrap();
        }
        pool.alloc(root.fields().name, Name { bytes: [b'x'; 200] })
            .unwrap();
        pool.alloc(root.fields().big, Big { words: [7; 5000] })
            .unwrap();
        let items: Vec<u64> = (0..100).collect();
        pool.alloc_slice(root.fields().items, &items).unwrap();
        path
    }
}

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pmem-inspect"))
        .args(args)
        .output()
        .expect("run pmem-inspect")
}

fn run_on(args: &[&str], pool: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pmem-inspect"))
        .args(args)
        .arg(pool)
        .output()
        .expect("run pmem-inspect")
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).expect("UTF-8 output")
}

fn stderr(out: &Output) -> String {
    String::from_utf8(out.stderr.clone()).expect("UTF-8 errors")
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", stdout(out)))
}

#[track_caller]
fn assert_status(out: &Output, code: i32) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "stdout:\n{}\nstderr:\n{}",
        stdout(out),
        stderr(out)
    );
}

fn patch(path: &Path, offset: u64, bytes: &[u8]) {
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .expect("open pool file");
    file.write_all_at(bytes, offset).expect("patch pool file");
}

fn read_at(path: &Path, offset: u64, len: usize) -> Vec<u8> {
    let file = std::fs::File::open(path).expect("open pool file");
    let mut buf = vec![0; len];
    file.read_exact_at(&mut buf, offset)
        .expect("read pool file");
    buf
}

/// The line of `text` that starts (after indentation) with `key`.
#[track_caller]
fn line_of<'a>(text: &'a str, key: &str) -> &'a str {
    text.lines()
        .find(|l| l.trim_start().starts_with(key))
        .unwrap_or_else(|| panic!("no line starting with {key:?} in:\n{text}"))
}

/// Normalises runs of spaces, so tests do not depend on column widths.
fn squeeze(line: &str) -> String {
    line.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[test]
fn info_describes_the_pool() {
    let dir = Dir::new();
    let path = dir.pool("pool");
    let lib = inspect(&path).unwrap();
    let out = run_on(&["info"], &path);
    assert_status(&out, 0);
    assert_eq!(stderr(&out), "");
    let text = stdout(&out);
    println!("{text}");

    assert_eq!(
        text.lines().next(),
        Some(&*format!("pool {}", path.display()))
    );
    assert_eq!(
        squeeze(line_of(&text, "magic")),
        r#"magic "PMEMRS\x00\x01", format version 1"#
    );
    assert_eq!(
        squeeze(line_of(&text, "uuid")),
        format!("uuid {}", lib.info.uuid_string())
    );
    assert_eq!(squeeze(line_of(&text, "layout")), r#"layout "cli-test""#);
    assert_eq!(
        squeeze(line_of(&text, "pool size")),
        "pool size 1.0 MiB (1048576 bytes)"
    );
    assert_eq!(
        squeeze(line_of(&text, "file size")),
        "file size 1.0 MiB (1048576 bytes)"
    );

    // The root type and its fields, as recorded.
    assert!(text.contains("\nroot type \"Root\"\n"), "{text}");
    assert_eq!(squeeze(line_of(&text, "offset  ")), "offset 0x1000");
    assert_eq!(
        squeeze(line_of(&text, "size  ")),
        "size 48 bytes, aligned to 8"
    );
    assert_eq!(
        squeeze(line_of(&text, "fingerprint")),
        format!("fingerprint {:#018x}", lib.info.root_fingerprint)
    );
    assert_eq!(squeeze(line_of(&text, "fields")), "fields 5");
    for (name, offset, size) in [
        ("count", "0x0", 8),
        ("head", "0x8", 8),
        ("big", "0x10", 8),
        ("name", "0x18", 8),
        ("items", "0x20", 16),
    ] {
        let row = format!("{offset} {size} {name}");
        assert!(
            text.lines().any(|l| squeeze(l) == row),
            "no row {row:?} in:\n{text}"
        );
    }
    assert!(!text.contains("not recorded"), "{text}");

    // Geometry: 4 KiB of root, a 64-chunk zone cut short by the pool's end.
    assert_eq!(
        squeeze(line_of(&text, "heap offset")),
        "heap offset 0x2000 (8.0 KiB)"
    );
    assert_eq!(squeeze(line_of(&text, "chunk size")), "chunk size 16.0 KiB");
    assert_eq!(
        squeeze(line_of(&text, "zones")),
        "zones 1, with 63 of its 64 chunks (the pool ends inside it)"
    );
    assert_eq!(
        squeeze(line_of(&text, "chunks  ")),
        "chunks 63 (1008.0 KiB)"
    );
    assert_eq!(
        squeeze(line_of(&text, "unused tail")),
        "unused tail 4.0 KiB (too short for another chunk)"
    );

    // Allocator: one chunk each of 64, 256 and 1024-byte blocks, one run.
    assert_eq!(
        squeeze(line_of(&text, "block size")),
        "block size chunks used blocks total blocks fill"
    );
    assert_eq!(squeeze(line_of(&text, "64 B")), "64 B 1 3 256 1.2%");
    assert_eq!(squeeze(line_of(&text, "128 B")), "128 B - - - -");
    assert_eq!(squeeze(line_of(&text, "256 B")), "256 B 1 1 64 1.6%");
    assert_eq!(squeeze(line_of(&text, "1.0 KiB")), "1.0 KiB 1 1 16 6.2%");
    assert_eq!(squeeze(line_of(&text, "8.0 KiB")), "8.0 KiB - - - -");
    assert_eq!(
        squeeze(line_of(&text, "large blocks")),
        "large blocks 1 (3 chunks, 48.0 KiB)"
    );
    assert_eq!(
        squeeze(line_of(&text, "free chunks")),
        "free chunks 57 of 63 (90.5%)"
    );
    let allocated = 3 * 64 + 256 + 1024 + 3 * CHUNK;
    assert_eq!(allocated, 50_624);
    assert_eq!(
        squeeze(line_of(&text, "allocated  ")),
        "allocated 49.4 KiB in 6 blocks, 4.9% of 1008.0 KiB"
    );

    assert_eq!(squeeze(line_of(&text, "A (0x880)")), "A (0x880) empty");
    assert_eq!(squeeze(line_of(&text, "B (0x8c0)")), "B (0x8c0) empty");
    assert!(text.ends_with("\nproblems\n  none\n"), "{text}");
    assert!(!text.contains("allocated blocks"), "only with --blocks");
}

#[test]
fn info_lists_blocks_on_request() {
    let dir = Dir::new();
    let path = dir.pool("pool");
    let lib = inspect(&path).unwrap();
    let blocks = lib.blocks.unwrap();
    assert_eq!(blocks.len(), 6);

    let out = run(&["info", path.to_str().unwrap(), "--blocks"]);
    assert_status(&out, 0);
    let text = stdout(&out);
    let listing = &text[text.find("\nallocated blocks\n").expect("a block list")..];
    assert_eq!(
        squeeze(listing.lines().nth(2).unwrap()),
        "offset size bytes"
    );
    for (offset, size) in &blocks {
        let row = listing
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("{offset:#x} ")))
            .unwrap_or_else(|| panic!("no row for block {offset:#x} in:\n{listing}"));
        assert!(squeeze(row).ends_with(&format!(" {size}")), "{row}");
    }
    assert!(listing.contains(" 48.0 KiB  49152\n"), "{listing}");

    let out = run(&["info", "--json", "--blocks", path.to_str().unwrap()]);
    assert_status(&out, 0);
    let value = json(&out);
    let listed: Vec<(u64, u64)> = value["blocks"]
        .as_array()
        .expect("blocks array")
        .iter()
        .map(|b| (b["offset"].as_u64().unwrap(), b["size"].as_u64().unwrap()))
        .collect();
    assert_eq!(listed, blocks);
}

#[test]
fn info_json_has_the_same_facts() {
    let dir = Dir::new();
    let path = dir.pool("pool");
    let lib = inspect(&path).unwrap();
    let out = run_on(&["info", "--json"], &path);
    assert_status(&out, 0);
    assert_eq!(stderr(&out), "");
    let v = json(&out);
    println!("{}", stdout(&out));

    assert_eq!(v["path"], path.to_str().unwrap());
    assert_eq!(v["file_size"], 1 << 20);
    let header = &v["header"];
    assert_eq!(header["magic"], r"PMEMRS\x00\x01");
    assert_eq!(header["version"], 1);
    assert_eq!(header["uuid"], lib.info.uuid_string());
    assert_eq!(header["layout"], LAYOUT);
    assert_eq!(header["pool_size"], 1 << 20);

    let root = &v["root"];
    assert_eq!(root["type"], "Root");
    assert_eq!(root["offset"], 4096);
    assert_eq!(root["size"], 48);
    assert_eq!(root["align"], 8);
    assert_eq!(
        root["fingerprint"].as_u64(),
        Some(lib.info.root_fingerprint)
    );
    assert_eq!(
        root["fingerprint_hex"],
        format!("{:#018x}", lib.info.root_fingerprint)
    );
    assert_eq!(root["field_count"], 5);
    assert_eq!(root["unrecorded_fields"], 0);
    let fields: Vec<(&str, u64, u64)> = root["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["name"].as_str().unwrap(),
                f["offset"].as_u64().unwrap(),
                f["size"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        fields,
        [
            ("count", 0, 8),
            ("head", 8, 8),
            ("big", 16, 8),
            ("name", 24, 8),
            ("items", 32, 16)
        ]
    );

    let geometry = &v["geometry"];
    assert_eq!(geometry["heap_offset"], 8192);
    assert_eq!(geometry["chunk_size"], 16384);
    assert_eq!(geometry["zone_chunks"], 64);
    assert_eq!(geometry["chunk_table_bytes"], 4096);
    assert_eq!(geometry["zone_bytes"], 4096 + 64 * 16384);
    assert_eq!(geometry["zones"], 1);
    assert_eq!(geometry["last_zone_chunks"], 63);
    assert_eq!(geometry["chunks"], 63);
    assert_eq!(geometry["unused_tail_bytes"], 4096);

    let heap = &v["heap"];
    let stats = lib.stats.as_ref().unwrap();
    assert_eq!(heap["chunks"], 63);
    assert_eq!(heap["free_chunks"], 57);
    assert_eq!(heap["allocated_blocks"], 6);
    assert_eq!(
        heap["allocated_bytes"].as_u64(),
        Some(stats.allocated_bytes)
    );
    assert_eq!(heap["allocated_bytes"], 50_624);
    assert_eq!(heap["capacity_bytes"], 63 * 16384);
    assert_eq!(heap["allocated_percent"], 4.9);
    assert_eq!(heap["runs"]["count"], 1);
    assert_eq!(heap["runs"]["chunks"], 3);
    assert_eq!(heap["runs"]["bytes"], 3 * 16384);
    let classes = heap["classes"].as_array().unwrap();
    assert_eq!(classes.len(), 8);
    for (class, expected) in classes.iter().zip(&stats.classes) {
        assert_eq!(class["block_size"].as_u64(), Some(expected.block_size));
        assert_eq!(class["chunks"].as_u64(), Some(expected.chunks));
        assert_eq!(class["blocks_used"].as_u64(), Some(expected.used_blocks));
        assert_eq!(class["blocks_total"].as_u64(), Some(expected.total_blocks));
    }
    assert_eq!(classes[0]["blocks_used"], 3);
    assert_eq!(classes[0]["blocks_total"], 256);
    assert_eq!(classes[0]["fill_percent"], 1.17);
    assert_eq!(
        classes[1]["fill_percent"],
        Value::Null,
        "no chunks, no fill"
    );

    let redo = v["redo"].as_array().unwrap();
    assert_eq!(redo.len(), 2);
    assert_eq!(redo[0]["slot"], "A");
    assert_eq!(redo[0]["offset"], 2176);
    assert_eq!(redo[1]["offset"], 2240);
    for r in redo {
        assert_eq!(r["state"], "empty");
        assert_eq!(r["outcome"], Value::Null);
        assert!(r.get("operation").is_none());
    }
    assert_eq!(v["problems"], Value::Array(vec![]));
    assert_eq!(v["consistent"], true);
    assert!(v.get("blocks").is_none(), "only with --blocks");
}

#[test]
fn info_notes_unrecorded_fields_and_a_longer_file() {
    let dir = Dir::new();
    let path = dir.path("wide");
    drop(Pool::<Wide>::create(&path, "wide", SIZE).unwrap());
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(SIZE as u64 + 64 * 1024)
        .unwrap();

    let out = run_on(&["info"], &path);
    assert_status(&out, 0);
    let text = stdout(&out);
    assert_eq!(
        squeeze(line_of(&text, "fields")),
        "fields 31 (29 recorded in the header, 2 not recorded)"
    );
    assert_eq!(
        squeeze(line_of(&text, "(+")),
        "(+ 2 more fields: the header records the first 29)"
    );
    assert_eq!(squeeze(line_of(&text, "0xe0")), "0xe0 8 f28");
    assert!(!text.contains(" f29"), "{text}");
    assert_eq!(
        squeeze(line_of(&text, "file size")),
        "file size 1.1 MiB (1114112 bytes), 64.0 KiB beyond the pool (unused; a growth that did not finish?)"
    );

    let v = json(&run_on(&["info", "--json"], &path));
    assert_eq!(v["root"]["field_count"], 31);
    assert_eq!(v["root"]["unrecorded_fields"], 2);
    assert_eq!(v["root"]["fields"].as_array().unwrap().len(), 29);
    assert_eq!(v["file_size"], SIZE + 64 * 1024);
    assert_eq!(v["header"]["pool_size"], SIZE);
}

#[test]
fn info_on_a_pool_of_several_zones() {
    let dir = Dir::new();
    let path = dir.path("zones");
    let size = 130 << 20;
    {
        let mut pool = Pool::<Root>::create(&path, LAYOUT, size).unwrap();
        let items = pool.root().fields().items;
        // 5 MiB: a run of 320 chunks.
        pool.alloc_slice_zeroed(items, 5 << 17).unwrap();
    }
    let out = run_on(&["info"], &path);
    assert_status(&out, 0);
    let text = stdout(&out);
    println!("{text}");
    assert_eq!(
        squeeze(line_of(&text, "pool size")),
        "pool size 130.0 MiB (136314880 bytes)"
    );
    assert_eq!(
        squeeze(line_of(&text, "zone  ")),
        "zone 4096 chunks after a 256.0 KiB chunk table (64.2 MiB)"
    );
    assert_eq!(
        squeeze(line_of(&text, "zones")),
        "zones 3, the last with 79 of its 4096 chunks"
    );
    assert_eq!(
        squeeze(line_of(&text, "chunks  ")),
        "chunks 8271 (129.2 MiB)"
    );
    assert_eq!(
        squeeze(line_of(&text, "large blocks")),
        "large blocks 1 (320 chunks, 5.0 MiB)"
    );
    assert_eq!(
        squeeze(line_of(&text, "allocated  ")),
        "allocated 5.0 MiB in 1 block, 3.9% of 129.2 MiB"
    );

    let v = json(&run_on(&["info", "--json"], &path));
    assert_eq!(v["geometry"]["zone_chunks"], 4096);
    assert_eq!(v["geometry"]["chunk_table_bytes"], 4096 * 64);
    assert_eq!(v["geometry"]["zones"], 3);
    assert_eq!(v["geometry"]["last_zone_chunks"], 79);
    assert_eq!(v["geometry"]["chunks"], 2 * 4096 + 79);
    assert_eq!(v["geometry"]["unused_tail_bytes"], 8192);
    assert_eq!(v["heap"]["chunks"], 2 * 4096 + 79);
    assert_eq!(v["heap"]["runs"]["chunks"], 320);
    assert_eq!(v["heap"]["allocated_bytes"], 5 << 20);
}

#[test]
fn check_passes_a_good_pool() {
    let dir = Dir::new();
    let path = dir.pool("pool");
    let out = run_on(&["check"], &path);
    assert_status(&out, 0);
    assert_eq!(stderr(&out), "");
    let text = stdout(&out);
    println!("{text}");
    assert_eq!(
        text.lines().next(),
        Some(&*format!("{}: consistent", path.display()))
    );
    assert_eq!(
        squeeze(line_of(&text, "header")),
        r#"header ok: version 1, layout "cli-test", 1.0 MiB, root "Root" (48 bytes)"#
    );
    assert_eq!(
        squeeze(line_of(&text, "allocator")),
        "allocator ok: 63 chunks in 1 zone, 6 blocks allocated (49.4 KiB), 57 chunks free"
    );
    assert_eq!(
        squeeze(line_of(&text, "redo")),
        "redo no operation in flight"
    );
    assert!(!text.contains("problem"), "{text}");

    let out = run_on(&["check", "--json"], &path);
    assert_status(&out, 0);
    let v = json(&out);
    assert_eq!(v["status"], "consistent");
    assert_eq!(v["consistent"], true);
    assert_eq!(v["problems"], Value::Array(vec![]));
    assert_eq!(v["notes"], Value::Array(vec![]));
    assert_eq!(v["error"], Value::Null);
}

#[test]
fn check_reports_a_corrupted_chunk_descriptor() {
    let dir = Dir::new();
    let path = dir.pool("pool");
    // Chunk 10 is free; give its descriptor a kind that does not exist.
    let descriptor = 8192 + 10 * 64;
    patch(&path, descriptor, &[9]);

    let out = run_on(&["check"], &path);
    assert_status(&out, 1);
    let text = stdout(&out);
    println!("{text}");
    let problem = "corrupt pool: the descriptor of chunk 10 of zone 0 at 0x2280: \
                   state is 0x9, expected a known kind";
    assert_eq!(
        text.lines().next(),
        Some(&*format!("{}: 1 problem", path.display()))
    );
    assert_eq!(
        squeeze(line_of(&text, "allocator")),
        "allocator inconsistent chunk tables (see the problem below)"
    );
    assert_eq!(
        squeeze(line_of(&text, "problem ")),
        format!("problem {problem}")
    );

    let out = run_on(&["check", "--json"], &path);
    assert_status(&out, 1);
    let v = json(&out);
    assert_eq!(v["status"], "problems");
    assert_eq!(v["consistent"], false);
    assert_eq!(v["problems"], serde_json::json!([problem]));
    assert_eq!(v["error"], Value::Null);

    // `info` still describes what it can, and says what is wrong.
    let out = run_on(&["info"], &path);
    assert_status(&out, 0);
    let text = stdout(&out);
    assert!(
        text.contains("  no statistics: the chunk tables are inconsistent (see problems)\n"),
        "{text}"
    );
    assert!(
        text.ends_with(&format!("\nproblems\n  {problem}\n")),
        "{text}"
    );
    let v = json(&run_on(&["info", "--json"], &path));
    assert_eq!(v["heap"], Value::Null);
    assert_eq!(v["consistent"], false);
    assert_eq!(v["problems"][0], problem);
}

#[test]
fn check_refuses_files_that_are_not_pools() {
    let dir = Dir::new();
    let good = dir.pool("pool");
    let bytes = std::fs::read(&good).unwrap();

    // Random bytes.
    let random = dir.path("random");
    let mut noise = vec![0u8; 8192];
    TestRng::deterministic_rng(RngAlgorithm::ChaCha).fill_bytes(&mut noise);
    std::fs::write(&random, &noise).unwrap();
    let out = run_on(&["check"], &random);
    assert_status(&out, 1);
    assert_eq!(stdout(&out), "");
    let expected = format!(
        "pmem-inspect: {}: not a pool: expected magic b\"PMEMRS\\x00\\x01\", found b\"{}\"\n",
        random.display(),
        noise[..8].escape_ascii()
    );
    assert_eq!(stderr(&out), expected);
    let v = json(&run_on(&["check", "--json"], &random));
    assert_eq!(v["status"], "error");
    assert_eq!(v["consistent"], false);
    assert_eq!(v["error"]["kind"], "not_a_pool");
    assert_eq!(v["error"]["expected"], r"PMEMRS\x00\x01");
    assert_eq!(v["error"]["found"], noise[..8].escape_ascii().to_string());

    // An empty file.
    let empty = dir.path("empty");
    std::fs::write(&empty, b"").unwrap();
    let out = run_on(&["check"], &empty);
    assert_status(&out, 1);
    assert!(
        stderr(&out).ends_with("empty: pool truncated: expected at least 4096 bytes, found 0\n"),
        "{}",
        stderr(&out)
    );

    // A pool cut in half, and one cut inside its header page.
    let half = dir.path("half");
    std::fs::write(&half, &bytes[..SIZE / 2]).unwrap();
    let out = run_on(&["check"], &half);
    assert_status(&out, 1);
    assert!(
        stderr(&out).ends_with("pool truncated: expected at least 1048576 bytes, found 524288\n"),
        "{}",
        stderr(&out)
    );
    let v = json(&run_on(&["check", "--json"], &half));
    assert_eq!(v["error"]["kind"], "truncated");
    assert_eq!(v["error"]["expected"], 1 << 20);
    assert_eq!(v["error"]["found"], 1 << 19);
    let stub = dir.path("stub");
    std::fs::write(&stub, &bytes[..100]).unwrap();
    let out = run_on(&["check"], &stub);
    assert_status(&out, 1);
    assert!(
        stderr(&out).ends_with("pool truncated: expected at least 4096 bytes, found 100\n"),
        "{}",
        stderr(&out)
    );

    // One flipped bit in the layout name: the superblock's checksum fails.
    let flipped = dir.path("flipped");
    let mut damaged = bytes.clone();
    damaged[40] ^= 0x01;
    std::fs::write(&flipped, &damaged).unwrap();
    let out = run_on(&["check"], &flipped);
    assert_status(&out, 1);
    let message = stderr(&out);
    assert!(
        message.starts_with(&format!(
            "pmem-inspect: {}: superblock checksum mismatch: contents sum to 0x",
            flipped.display()
        )),
        "{message}"
    );
    assert!(message.contains(", stored 0x"), "{message}");
    let v = json(&run_on(&["check", "--json"], &flipped));
    assert_eq!(v["error"]["kind"], "checksum_mismatch");
    assert_eq!(v["error"]["region"], "superblock");
    assert_ne!(v["error"]["expected"], v["error"]["found"]);
    assert_eq!(
        v["error"]["message"],
        message
            .trim_end()
            .split_once(": ")
            .unwrap()
            .1
            .split_once(": ")
            .unwrap()
            .1
    );

    // `info` refuses them the same way.
    for file in [&random, &empty, &half, &flipped] {
        let out = run_on(&["info"], file);
        assert_status(&out, 1);
        assert_eq!(stdout(&out), "");
        assert!(stderr(&out).starts_with("pmem-inspect: "));
        let out = run_on(&["info", "--json"], file);
        assert_status(&out, 1);
        assert_eq!(json(&out)["status"], "error");
    }
}

#[test]
fn absurd_header_values_are_a_message_not_a_panic() {
    let dir = Dir::new();
    let good = std::fs::read(dir.pool("pool")).unwrap();
    // Root sizes whose heap offset overflows; the header's checksum is
    // recomputed, so only the values themselves are wrong.
    for root_size in [u64::MAX - 100, u64::MAX - 3 * 4096 + 1] {
        let path = dir.path(&format!("absurd-{root_size:x}"));
        let mut bytes = good.clone();
        bytes[104..112].copy_from_slice(&root_size.to_le_bytes());
        let crc = crc32fast::hash(&bytes[16..2048]);
        bytes[12..16].copy_from_slice(&crc.to_le_bytes());
        std::fs::write(&path, &bytes).unwrap();
        for command in ["info", "check"] {
            let out = run_on(&[command], &path);
            assert_status(&out, 1);
            let err = stderr(&out);
            assert!(
                err.starts_with(&format!("pmem-inspect: {}: ", path.display())),
                "{err}"
            );
            assert_eq!(err.lines().count(), 1, "{err}");
            assert!(
                !err.contains("panicked") && !err.contains("RUST_BACKTRACE"),
                "{err}"
            );
        }
    }
}

#[test]
fn unreadable_files_are_exit_status_2() {
    let dir = Dir::new();
    let missing = dir.path("missing");
    let out = run_on(&["check"], &missing);
    assert_status(&out, 2);
    assert_eq!(
        stderr(&out),
        format!(
            "pmem-inspect: stat {}: No such file or directory (os error 2)\n",
            missing.display()
        )
    );
    let out = run_on(&["info", "--json"], &missing);
    assert_status(&out, 2);
    let v = json(&out);
    assert_eq!(v["status"], "error");
    assert_eq!(v["error"]["kind"], "io");

    let out = run_on(&["info"], dir.tmp.path());
    assert_status(&out, 2);

    // A pool open in this process is locked.
    let path = dir.pool("pool");
    let pool = Pool::<Root>::open(&path, LAYOUT).unwrap();
    let out = run_on(&["check"], &path);
    assert_status(&out, 2);
    assert_eq!(
        stderr(&out),
        format!("pmem-inspect: {} is already open\n", path.display())
    );
    drop(pool);
    assert_status(&run_on(&["check"], &path), 0);
}

/// `run_on`, failing after ten seconds instead of waiting for a program
/// that blocks (as opening a FIFO for reading would).
fn run_briefly(args: &[&str], path: &Path) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_pmem-inspect"))
        .args(args)
        .arg(path)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run pmem-inspect");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while child.try_wait().expect("wait for pmem-inspect").is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "pmem-inspect {args:?} {} still running after 10 s",
                path.display()
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    child.wait_with_output().expect("pmem-inspect's output")
}

#[test]
fn paths_that_are_not_files_are_exit_status_2() {
    let dir = Dir::new();
    let fifo = dir.path("fifo");
    let c_path = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: `c_path` is a NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
    let cases = [
        (fifo.clone(), "a FIFO", "fifo"),
        ("/dev/zero".into(), "a character device", "character_device"),
        (dir.tmp.path().to_owned(), "a directory", "directory"),
    ];
    for (path, found, kind) in cases {
        for command in ["info", "check"] {
            let out = run_briefly(&[command], &path);
            assert_status(&out, 2);
            assert_eq!(stdout(&out), "");
            assert_eq!(
                stderr(&out),
                format!(
                    "pmem-inspect: {}: expected a regular file or a Device DAX, found {found}\n",
                    path.display()
                )
            );
        }
        let out = run_briefly(&["check", "--json"], &path);
        assert_status(&out, 2);
        let v = json(&out);
        assert_eq!(v["status"], "error");
        assert_eq!(v["error"]["kind"], "not_a_file");
        assert_eq!(v["error"]["found"], kind);
        assert_eq!(v["error"]["expected"], "regular file or Device DAX");
    }
    assert!(std::fs::metadata(&fifo).unwrap().file_type().is_fifo());
}

/// A redo record for allocating `block` (64 bytes) into `Root::head`.
fn alloc_record(path: &Path, block: u64, seq: u32) -> RedoRecord {
    let value = read_at(path, block, 16);
    RedoRecord {
        kind: RedoKind::Alloc,
        kind_padding: Default::default(),
        dest_len: 8.into(),
        block: block.into(),
        block_size: 64.into(),
        dest: HEAD.into(),
        dest_value: [block.into(), 0.into()],
        value_crc: crc32fast::hash(&value).into(),
        value_len: 16.into(),
        seq: seq.into(),
        crc: 0.into(),
    }
    .sealed()
}

/// The first 64-byte block after the allocated nodes.
fn free_node_block(path: &Path) -> u64 {
    let blocks = inspect(path).unwrap().blocks.unwrap();
    let last = blocks
        .iter()
        .filter(|&&(_, size)| size == 64)
        .map(|&(offset, _)| offset)
        .max()
        .unwrap();
    assert!(!blocks.iter().any(|&(offset, _)| offset == last + 64));
    last + 64
}

#[test]
fn pending_redo_records_are_notes() {
    let dir = Dir::new();
    let path = dir.pool("pool");
    let block = free_node_block(&path);
    let record = alloc_record(&path, block, 7);
    patch(&path, REDO_OFFSET as u64, record.as_bytes());

    let described = format!(
        "allocation of 64 bytes at {block:#x} published into 0x1008 (will be finished on next open)"
    );
    let out = run_on(&["info"], &path);
    assert_status(&out, 0);
    let text = stdout(&out);
    println!("{text}");
    assert_eq!(
        squeeze(line_of(&text, "A (0x880)")),
        format!("A (0x880) {described}")
    );
    assert_eq!(squeeze(line_of(&text, "B (0x8c0)")), "B (0x8c0) empty");

    let out = run_on(&["check"], &path);
    assert_status(&out, 0);
    let text = stdout(&out);
    println!("{text}");
    assert!(text.starts_with(&format!("{}: consistent\n", path.display())));
    assert_eq!(
        squeeze(line_of(&text, "redo")),
        "redo 1 record to replay or clear on next open (see notes)"
    );
    assert_eq!(
        squeeze(line_of(&text, "note ")),
        format!("note redo record A: {described}")
    );

    let v = json(&run_on(&["info", "--json"], &path));
    let a = &v["redo"][0];
    assert_eq!(a["state"], "pending");
    assert_eq!(a["outcome"], "finish");
    assert_eq!(a["description"], described);
    assert_eq!(a["operation"]["kind"], "alloc");
    assert_eq!(a["operation"]["seq"], 7);
    assert_eq!(a["operation"]["block"].as_u64(), Some(block));
    assert_eq!(a["operation"]["block_size"], 64);
    assert_eq!(a["operation"]["dest"], HEAD);
    assert_eq!(a["operation"]["dest_len"], 8);
    assert_eq!(a["operation"]["dest_value"][0].as_u64(), Some(block));
    let v = json(&run_on(&["check", "--json"], &path));
    assert_eq!(v["consistent"], true);
    assert_eq!(v["notes"][0], format!("redo record A: {described}"));

    // What the note says is what the next open does.
    {
        let pool = Pool::<Root>::open(&path, LAYOUT).unwrap();
        assert_eq!(pool.get(pool.root()).unwrap().head.offset(), block);
    }
    let out = run_on(&["check"], &path);
    assert_status(&out, 0);
    assert_eq!(
        squeeze(line_of(&stdout(&out), "redo")),
        "redo no operation in flight"
    );
}

#[test]
fn stale_and_torn_redo_records() {
    let dir = Dir::new();
    let path = dir.pool("pool");
    let before = inspect(&path).unwrap();
    let block = free_node_block(&path);

    // The block does not hold the recorded value: the open drops it.
    let mut stale = alloc_record(&path, block, 8);
    stale.value_crc = (stale.value_crc.get() ^ 1).into();
    let stale = stale.sealed();
    patch(&path, (REDO_OFFSET + 64) as u64, stale.as_bytes());
    // Slot A: a record whose last bytes never made it.
    let mut torn = alloc_record(&path, block, 9);
    torn.seq = 10.into();
    patch(&path, REDO_OFFSET as u64, torn.as_bytes());

    let out = run_on(&["info"], &path);
    assert_status(&out, 0);
    let text = stdout(&out);
    println!("{text}");
    assert_eq!(
        squeeze(line_of(&text, "A (0x880)")),
        "A (0x880) torn: a record write interrupted by a crash (ignored on next open)"
    );
    assert_eq!(
        squeeze(line_of(&text, "B (0x8c0)")),
        format!(
            "B (0x8c0) allocation of 64 bytes at {block:#x} published into 0x1008, \
             but the block no longer holds the recorded value (will be dropped on next open)"
        )
    );
    let v = json(&run_on(&["info", "--json"], &path));
    assert_eq!(v["redo"][0]["state"], "torn");
    assert_eq!(v["redo"][0]["outcome"], "ignore");
    assert!(v["redo"][0].get("operation").is_none());
    assert_eq!(v["redo"][1]["state"], "stale");
    assert_eq!(v["redo"][1]["outcome"], "drop");

    let out = run_on(&["check"], &path);
    assert_status(&out, 0);
    assert_eq!(stdout(&out).matches("\n  note  ").count(), 2);

    {
        let pool = Pool::<Root>::open(&path, LAYOUT).unwrap();
        assert_ne!(pool.get(pool.root()).unwrap().head.offset(), block);
        assert_eq!(pool.allocated_blocks(), before.blocks.unwrap());
    }
}

#[test]
fn an_impossible_redo_record_is_a_problem() {
    let dir = Dir::new();
    let path = dir.pool("pool");
    let block = free_node_block(&path);
    // Whole (its CRC matches), but its destination is outside the pool:
    // opening would refuse the pool, so `check` must too.
    let mut record = alloc_record(&path, block, 3);
    record.dest = (SIZE as u64).into();
    let record = record.sealed();
    patch(&path, REDO_OFFSET as u64, record.as_bytes());

    let out = run_on(&["check"], &path);
    assert_status(&out, 1);
    let text = stdout(&out);
    println!("{text}");
    let problem = squeeze(line_of(&text, "problem "));
    assert_eq!(
        problem,
        format!(
            "problem corrupt pool: redo record A at {REDO_OFFSET:#x}: dest is {SIZE:#x}, \
             expected an aligned pointer inside the pool, past the header"
        ),
        "{text}"
    );
    assert_eq!(
        squeeze(line_of(&text, "note ")),
        format!(
            "note redo record A: allocation of 64 bytes at {block:#x} published into 0x100000, \
             which is impossible in this pool (the next open will refuse the pool; see problems)"
        )
    );
    let v = json(&run_on(&["check", "--json"], &path));
    assert_eq!(v["status"], "problems");
    assert_eq!(v["redo"][0]["state"], "invalid");
    assert_eq!(v["redo"][0]["outcome"], "refuse");
    let Err(e) = Pool::<Root>::open(&path, LAYOUT) else {
        panic!("open accepted an impossible redo record");
    };
    assert_eq!(problem, format!("problem {e}"));
}

#[test]
fn usage_errors_are_exit_status_2() {
    let dir = Dir::new();
    let pool = dir.pool("pool");
    let pool = pool.to_str().unwrap();
    for (args, message) in [
        (&[][..], "no command given"),
        (&["frobnicate", pool][..], "unknown command 'frobnicate'"),
        (&["--json", "info", pool][..], "unknown option '--json'"),
        (&["info"][..], "'info' needs a POOL file"),
        (&["check", "--json"][..], "'check' needs a POOL file"),
        (
            &["info", "--verbose", pool][..],
            "unknown option '--verbose' for 'info'",
        ),
        (
            &["check", "--blocks", pool][..],
            "'--blocks' is an option of 'info'",
        ),
        (&["check", pool, pool][..], "more than one POOL given"),
    ] {
        let out = run(args);
        assert_status(&out, 2);
        assert_eq!(stdout(&out), "", "{args:?}");
        let err = stderr(&out);
        assert!(
            err.starts_with(&format!("pmem-inspect: {message}")),
            "{args:?}: {err}"
        );
        assert!(err.contains("\nUsage: pmem-inspect info"), "{err}");
        assert!(err.ends_with("Try 'pmem-inspect --help' for more information.\n"));
    }
}

#[test]
fn help_and_version() {
    let _turn = take_turn();
    for args in [&["--help"][..], &["-h"], &["help"], &["check", "--help"]] {
        let out = run(args);
        assert_status(&out, 0);
        let text = stdout(&out);
        assert!(text.contains("\nUsage:\n  pmem-inspect info [--json] [--blocks] POOL\n"));
        assert!(text.contains("\nExit status:\n"));
        assert_eq!(stderr(&out), "");
    }
    for args in [&["--version"][..], &["-V"]] {
        let out = run(args);
        assert_status(&out, 0);
        assert_eq!(
            stdout(&out),
            format!(
                "pmem-inspect {} (pool format version 1)\n",
                env!("CARGO_PKG_VERSION")
            )
        );
    }
}

#[test]
fn a_pool_named_like_an_option() {
    let dir = Dir::new();
    dir.pool("-pool");
    let out = Command::new(env!("CARGO_BIN_EXE_pmem-inspect"))
        .current_dir(dir.tmp.path())
        .args(["check", "--", "-pool"])
        .output()
        .unwrap();
    assert_status(&out, 0);
    assert_eq!(stdout(&out).lines().next(), Some("-pool: consistent"));
}
