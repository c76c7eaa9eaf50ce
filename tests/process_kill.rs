//! Crash consistency under `SIGKILL`: a child process works on a real pool
//! file and is killed at a random moment, again and again; after each kill
//! the pool is reopened (recovery runs) and must be consistent, and the next
//! child carries on from what the last one left.
//!
//! # What this tests, and what it does not
//!
//! Killing a process loses nothing it has stored: its stores are in the page
//! cache (or, with `PMEM_IS_PMEM_FORCE=1`, in the mapping of a file the
//! kernel still holds), and the kernel keeps them. So this tests the pool's
//! state as the kernel sees it when a process stops between any two of its
//! instructions: that every operation has a single commit point in program
//! order, that recovery finishes or rolls back what was cut short, and that
//! locks and files behave across processes. It does not test what a power
//! failure loses (unflushed cache lines, stores persisted out of order):
//! that is the crash simulator's job (`pmem_typed::sim`, and the crash tests
//! of pmem-typed).
//!
//! # The workload
//!
//! The child is this test binary run again with [`WORKER`] set (the test
//! [`kill_worker`] does nothing without it). It opens the pool and loops
//! forever: operation `n` (`n` is the durable counter in the root) is chosen
//! and parameterised by a hash of `n`: push a node, pop one with
//! `free_and_publish`, rewrite a node's value with `set` or through a guard,
//! allocate a slice (small, or a run of chunks) or free it. Then the
//! counter is set to `n + 1`, with `set` or a guard.
//!
//! Every node carries a checksum of its value and sequence number in the same
//! 8-byte word as the value. The list and the slice after `n` operations
//! follow from `n` alone ([`Model`]), so the parent checks the pool exactly:
//! it must be the model after `counter` operations, or after `counter + 1`
//! (the operation done, the counter not yet bumped; the next child finds that
//! out the same way and bumps it). Besides: `check` finds no leak and no
//! dangling pointer, every node's checksum holds, and the counter never goes
//! back.
//!
//! One run flushes with `msync` (an ordinary file), the other with the
//! cache-flush instructions (`PMEM_IS_PMEM_FORCE=1` in the child). The kill
//! comes after a random delay: from the child's start (so it may land during
//! open and recovery), or from when it reports it is running.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use pmem::typed::inspect::{RedoState, inspect};
use pmem::typed::{PPtr, PSlice, Persist, Pool};
use pmem_testkit::scratch;
use proptest::prelude::RngExt;
use proptest::test_runner::{RngAlgorithm, TestRng};

/// The environment variable that makes [`kill_worker`] the child's workload:
/// the pool file's path.
const WORKER: &str = "PMEM_RS_KILL_WORKER";
const LAYOUT: &str = "process-kill";
const POOL_SIZE: usize = 4 << 20;
/// Kills per run.
const KILLS: usize = 100;
/// The list is kept below this many nodes.
const MAX_NODES: usize = 400;
/// What the worker prints once it is running.
const READY: &str = "kill-worker ready";

#[derive(Clone, Copy, Debug, Persist)]
#[repr(C)]
struct Root {
    /// Operations done (durably).
    counter: u64,
    head: PPtr<Node>,
    blob: PSlice<u64>,
}

#[derive(Clone, Copy, Debug, Persist)]
#[repr(C)]
struct Node {
    /// The operation that made it.
    seq: u64,
    /// Its value (high 40 bits) and a checksum of value and `seq` (low 24),
    /// in one word so that one store changes both.
    word: u64,
    next: PPtr<Node>,
}

fn mix(mut z: u64) -> u64 {
    // splitmix64's finaliser
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn pack(seq: u64, value: u64) -> u64 {
    value << 24 | (mix(seq ^ value.rotate_left(32)) & 0xff_ffff)
}

/// The value of a node's word, if its checksum holds.
fn unpack(seq: u64, word: u64) -> Option<u64> {
    let value = word >> 24;
    (pack(seq, value) == word).then_some(value)
}

/// Element `i` of the slice operation `seq` allocated.
fn blob_elem(seq: u64, i: u64) -> u64 {
    mix(seq << 20 | i)
}

/// What operation `n` does, given the list's length and whether the slice exists.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Op {
    Push {
        value: u64,
    },
    Pop,
    /// Sets the value of the node at `index` (from the head) with `set`.
    Set {
        index: usize,
        value: u64,
    },
    /// The same through a guard.
    Guard {
        index: usize,
        value: u64,
    },
    AllocBlob {
        len: u64,
    },
    FreeBlob,
    Nothing,
}

fn op(n: u64, len: usize, blob: bool) -> Op {
    let r = mix(n);
    let value = mix(r) >> 24;
    let index = if len == 0 {
        0
    } else {
        (r >> 32) as usize % len
    };
    match r % 16 {
        0..=5 if len < MAX_NODES => Op::Push { value },
        0..=8 if len > 0 => Op::Pop,
        9..=10 if len > 0 => Op::Set { index, value },
        11 if len > 0 => Op::Guard { index, value },
        12..=13 if !blob => Op::AllocBlob {
            // Mostly small blocks, sometimes a run of up to 4 chunks.
            len: if r >> 60 < 4 {
                2000 + (r >> 40) % 6000
            } else {
                1 + (r >> 40) % 500
            },
        },
        14 if blob => Op::FreeBlob,
        _ => Op::Nothing,
    }
}

/// The list (head first, as (seq, value)) and the slice (the operation that
/// made it, and its length) after `done` operations.
#[derive(Clone, Debug, Default, PartialEq)]
struct Model {
    done: u64,
    list: VecDeque<(u64, u64)>,
    blob: Option<(u64, u64)>,
}

impl Model {
    fn next_op(&self) -> Op {
        op(self.done, self.list.len(), self.blob.is_some())
    }

    fn step(&mut self) {
        let n = self.done;
        match self.next_op() {
            Op::Push { value } => self.list.push_front((n, value)),
            Op::Pop => {
                self.list.pop_front();
            }
            Op::Set { index, value } | Op::Guard { index, value } => self.list[index].1 = value,
            Op::AllocBlob { len } => self.blob = Some((n, len)),
            Op::FreeBlob => self.blob = None,
            Op::Nothing => {}
        }
        self.done += 1;
    }

    fn advance_to(&mut self, done: u64) {
        while self.done < done {
            self.step();
        }
    }

    /// Whether the pool holds what this model says (the counter aside).
    fn matches(&self, seen: &Seen) -> bool {
        let blob_ok = match (self.blob, &seen.blob) {
            (None, blob) => blob.is_empty(),
            (Some((seq, len)), blob) => {
                blob.len() as u64 == len
                    && blob.iter().zip(0..).all(|(&x, i)| x == blob_elem(seq, i))
            }
        };
        blob_ok && self.list.iter().eq(seen.list.iter())
    }
}

/// What a pool holds.
#[derive(Debug)]
struct Seen {
    counter: u64,
    list: Vec<(u64, u64)>,
    blob: Vec<u64>,
}

/// Reads the pool, checking every node's checksum.
fn read_pool(pool: &Pool<Root>) -> Result<Seen, String> {
    let root = *pool.get(pool.root()).map_err(|e| e.to_string())?;
    let mut list = Vec::new();
    let mut at = root.head;
    while !at.is_null() {
        let node = pool
            .get(at)
            .map_err(|e| format!("node {}: {e}", list.len()))?;
        let value = unpack(node.seq, node.word).ok_or_else(|| {
            format!(
                "node {} at {at:?}: checksum of seq {} and word {:#x} does not hold",
                list.len(),
                node.seq,
                node.word
            )
        })?;
        list.push((node.seq, value));
        if list.len() > MAX_NODES {
            return Err(format!(
                "the list has more than {MAX_NODES} nodes (a cycle?)"
            ));
        }
        at = node.next;
    }
    let blob = pool
        .get_slice(root.blob)
        .map_err(|e| e.to_string())?
        .to_vec();
    Ok(Seen {
        counter: root.counter,
        list,
        blob,
    })
}

/// The node `index` steps from the head.
fn nth(pool: &Pool<Root>, index: usize) -> pmem::typed::Result<PPtr<Node>> {
    let mut at = pool.get(pool.root())?.head;
    for _ in 0..index {
        at = pool.get(at)?.next;
    }
    Ok(at)
}

/// Operation `model.done` on the pool.
fn apply(pool: &mut Pool<Root>, model: &Model) -> pmem::typed::Result<()> {
    let n = model.done;
    let root = pool.root();
    match model.next_op() {
        Op::Push { value } => {
            let head = pool.get(root)?.head;
            pool.alloc(
                root.fields().head,
                Node {
                    seq: n,
                    word: pack(n, value),
                    next: head,
                },
            )?;
        }
        Op::Pop => {
            let head = pool.get(root)?.head;
            let next = pool.get(head)?.next;
            pool.free_and_publish(root.fields().head, next)?;
        }
        Op::Set { index, value } => {
            let node = nth(pool, index)?;
            let seq = pool.get(node)?.seq;
            pool.set(node.fields().word, pack(seq, value))?;
        }
        Op::Guard { index, value } => {
            let node = nth(pool, index)?;
            let mut guard = pool.get_mut(node)?;
            guard.word = pack(guard.seq, value);
        }
        Op::AllocBlob { len } => {
            let data: Vec<u64> = (0..len).map(|i| blob_elem(n, i)).collect();
            pool.alloc_slice(root.fields().blob, &data)?;
        }
        Op::FreeBlob => pool.free_slice(root.fields().blob)?,
        Op::Nothing => {}
    }
    Ok(())
}

/// The child's workload (does nothing unless [`WORKER`] is set): opens the
/// pool, finds where the last child stopped, and works until it is killed.
#[test]
fn kill_worker() {
    let Some(path) = std::env::var_os(WORKER) else {
        return;
    };
    let mut pool = Pool::<Root>::open(&path, LAYOUT).expect("worker: open");
    let seen = read_pool(&pool).expect("worker: read");
    let mut model = Model::default();
    model.advance_to(seen.counter);
    if !model.matches(&seen) {
        // The last operation was done but the counter not bumped.
        model.step();
        assert!(
            model.matches(&seen),
            "worker: the pool is not what the counter says"
        );
        pool.set(pool.root().fields().counter, model.done)
            .expect("worker: bump");
    }
    println!("{READY}");
    loop {
        apply(&mut pool, &model).expect("worker: operation");
        model.step();
        let root = pool.root();
        if model.done % 2 == 0 {
            pool.set(root.fields().counter, model.done)
                .expect("worker: set");
        } else {
            pool.get_mut(root).expect("worker: guard").counter = model.done;
        }
    }
}

/// The parent's state across kills.
struct Parent {
    path: PathBuf,
    /// The model after as many operations as the pool's counter said last.
    model: Model,
    kills: usize,
    /// Kills after which the operation was done but the counter not bumped.
    between: usize,
    /// Kills that left a redo record for recovery to replay.
    pending: usize,
    inconsistencies: Vec<String>,
}

impl Parent {
    /// Reopens the pool after a kill and checks it.
    fn verify(&mut self) -> Result<(), String> {
        // What recovery will find (read without changing anything; the chunk
        // tables may be half-way through an operation, so their problems are
        // not counted here: recovery finishes the operation).
        let inspection = inspect(&self.path).map_err(|e| format!("inspect: {e}"))?;
        if inspection
            .redo
            .iter()
            .any(|r| matches!(r, RedoState::Pending(_) | RedoState::Stale(_)))
        {
            self.pending += 1;
        }
        let pool = Pool::<Root>::open(&self.path, LAYOUT).map_err(|e| format!("open: {e}"))?;
        let report = pool.check();
        if !report.is_consistent() {
            return Err(format!("check: {report}"));
        }
        let seen = read_pool(&pool)?;
        if seen.counter < self.model.done {
            return Err(format!(
                "the counter went back from {} to {}",
                self.model.done, seen.counter
            ));
        }
        self.model.advance_to(seen.counter);
        if self.model.matches(&seen) {
            return Ok(());
        }
        let mut next = self.model.clone();
        next.step();
        if next.matches(&seen) {
            self.between += 1;
            return Ok(());
        }
        Err(format!(
            "after {} operations the pool holds {} nodes and a slice of {}; the model says {:?} or {:?}",
            seen.counter,
            seen.list.len(),
            seen.blob.len(),
            (self.model.list.len(), self.model.blob),
            (next.list.len(), next.blob),
        ))
    }
}

/// A child working on the pool at `path`.
fn spawn_worker(path: &Path, force_pmem: bool) -> Child {
    let mut command = Command::new(std::env::current_exe().expect("test binary"));
    command
        .args(["--exact", "kill_worker", "--nocapture", "--test-threads=1"])
        .env(WORKER, path)
        .env("RUST_BACKTRACE", "0")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if force_pmem {
        command.env("PMEM_IS_PMEM_FORCE", "1");
    } else {
        command.env_remove("PMEM_IS_PMEM_FORCE");
    }
    command.spawn().expect("spawn worker")
}

/// Waits for the worker's ready line; false if its output ended first.
fn wait_ready(child: &mut Child) -> bool {
    let Some(stdout) = child.stdout.take() else {
        return false;
    };
    // The harness starts the line with "test kill_worker ... ".
    BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .any(|line| line.ends_with(READY))
}

/// A seed for the delays from the clock and the process, so that runs differ
/// (and a failure reports the seed that reproduces its delays).
fn delay_seed() -> u64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    now.as_nanos() as u64 ^ u64::from(std::process::id()) << 32
}

/// The generator for the delays: proptest's ChaCha, seeded with `seed`.
fn delay_rng(seed: u64) -> TestRng {
    let mut bytes = [0; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    TestRng::from_seed(RngAlgorithm::ChaCha, &bytes)
}

/// The two runs take turns: a child forked while the other run has its pool
/// open would hold that pool's lock (an inherited descriptor) until it
/// execs, and the other run could find its pool "already open".
static ONE_RUN_AT_A_TIME: Mutex<()> = Mutex::new(());

fn run(force_pmem: bool) {
    let _turn = ONE_RUN_AT_A_TIME
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    let dir = scratch::scratch("pmem-kill");
    let path = dir.path().join("pool");
    drop(Pool::<Root>::create(&path, LAYOUT, POOL_SIZE).expect("create"));
    let seed = delay_seed();
    let mut rng = delay_rng(seed);
    let mut parent = Parent {
        path,
        model: Model::default(),
        kills: 0,
        between: 0,
        pending: 0,
        inconsistencies: Vec::new(),
    };
    for round in 0..KILLS {
        let mut child = spawn_worker(&parent.path, force_pmem);
        // Every other round the delay runs from the start, so the kill may
        // come during open and recovery; otherwise from the ready line.
        let ready = round % 2 == 0 || wait_ready(&mut child);
        if ready {
            std::thread::sleep(Duration::from_micros(rng.random_range(0..20_000)));
        }
        match child.try_wait().expect("try_wait") {
            None if ready => {
                child.kill().expect("kill");
                child.wait().expect("wait");
                parent.kills += 1;
            }
            _ => {
                let status = child.wait().expect("wait");
                let mut stderr = String::new();
                if let Some(mut pipe) = child.stderr.take() {
                    let _ = pipe.read_to_string(&mut stderr);
                }
                parent.inconsistencies.push(format!(
                    "round {round}: the worker stopped by itself ({status}): {stderr}"
                ));
                continue;
            }
        }
        if let Err(e) = parent.verify() {
            parent.inconsistencies.push(format!("round {round}: {e}"));
        }
        if parent.inconsistencies.len() >= 10 {
            // The rest would only repeat the first ones.
            break;
        }
    }
    println!(
        "process kill ({}): {} kills, {} inconsistencies; {} operations done; after {} kills recovery \
         found a redo record, after {} the last operation was done but not counted (seed {seed:#x})",
        if force_pmem {
            "flush instructions"
        } else {
            "msync"
        },
        parent.kills,
        parent.inconsistencies.len(),
        parent.model.done,
        parent.pending,
        parent.between,
    );
    assert!(
        parent.inconsistencies.is_empty(),
        "{} inconsistencies:\n{}",
        parent.inconsistencies.len(),
        parent.inconsistencies.join("\n")
    );
    assert_eq!(parent.kills, KILLS, "every round ends with a kill");
    assert!(parent.model.done > 0, "the workers did no operation");
}

#[test]
fn killed_workers_leave_consistent_pools_msync() {
    run(false);
}

#[test]
fn killed_workers_leave_consistent_pools_flush_instructions() {
    run(true);
}
