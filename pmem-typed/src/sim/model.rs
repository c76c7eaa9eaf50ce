//! What a power failure can leave: from a recording, the crash points and,
//! at each, the durable image plus the writes that may or may not have made
//! it, grouped into units that persist as prefixes.

use std::collections::{BTreeMap, HashMap};

use super::medium::{Event, Log, WORD};
use crate::format::LINE;

/// Which hardware the durable images model.
///
/// # Examples
///
/// A value and the flag that publishes it, stored without flushing in
/// between, are safe only where the hardware keeps their order:
///
/// ```
/// use pmem_typed::sim::{Explorer, Profile, Scenario};
///
/// let publish = |value_at: usize| {
///     Scenario::new(4096)
///         .run(move |m| {
///             m.store_u64(value_at, 42);
///             m.store_u64(0, 1);
///             m.flush_range(0, value_at + 8);
///             m.sfence();
///             Ok(())
///         })
///         .check(move |m| match (m.read_u64(0), m.read_u64(value_at)) {
///             (0, _) | (1, 42) => Ok(()),
///             (flag, value) => Err(format!("flag {flag} with value {value}").into()),
///         })
/// };
/// let safe_on = |profile, value_at| Explorer::new().profile(profile).explore(&publish(value_at)).is_ok();
/// // In other lines: lines are written back in any order, unless caches are persistent.
/// assert!(safe_on(Profile::Eadr, 64));
/// assert!(!safe_on(Profile::X86Adr, 64));
/// // In the flag's line: x86 persists one line's stores in order; a weaker model need not.
/// assert!(safe_on(Profile::X86Adr, 8));
/// assert!(!safe_on(Profile::Conservative, 8));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Profile {
    /// x86 with ADR (Optane, NVDIMM-N): 64-byte lines; 8-byte failure
    /// atomicity; stores to one line persist in program order; a dirty line
    /// may be written back at any time, flushed or not; a flushed line is
    /// guaranteed only after a fence; non-temporal stores are guaranteed
    /// after a fence, any subset of them before.
    #[default]
    X86Adr,
    /// Persistent caches (eADR): every cached store is durable once made,
    /// so only the crash position matters; non-temporal stores still wait in
    /// write-combining buffers, outside the caches, until a fence (any subset
    /// of them persists before it).
    Eadr,
    /// Like [`X86Adr`](Self::X86Adr), but stores to one line may persist in
    /// any order (compiler reordering of plain stores, weaker memory models):
    /// any subset of the unfenced 8-byte words may persist.
    Conservative,
}

/// Which flush instruction the model assumes: whether a flush must be
/// waited for by a fence.
///
/// pmem-sys picks CLWB where the CPU has it, then CLFLUSHOPT, then CLFLUSH
/// (`PMEM_NO_CLWB`, `PMEM_NO_CLFLUSHOPT` steer it), and fences accordingly:
/// SFENCE after CLWB and CLFLUSHOPT, MFENCE after CLFLUSH on AMD, and
/// nothing after CLFLUSH on Intel, which is ordered by itself. A program
/// checked with the default, [`Flush::Clwb`], is correct with any of them.
///
/// # Examples
///
/// A flush of the value without a fence before the flag is enough only where
/// CLFLUSH runs, on Intel:
///
/// ```
/// use pmem_typed::sim::{Explorer, Flush, Scenario};
///
/// let scenario = Scenario::new(4096)
///     .run(|m| {
///         m.store_u64(64, 42);
///         m.flush_range(64, 8); // no fence: relies on CLFLUSH's order
///         m.store_u64(0, 1);
///         m.flush_range(0, 8);
///         m.sfence();
///         Ok(())
///     })
///     .check(|m| match (m.read_u64(0), m.read_u64(64)) {
///         (0, _) | (1, 42) => Ok(()),
///         (flag, value) => Err(format!("flag {flag} with value {value}").into()),
///     });
/// assert!(Explorer::new().flush(Flush::Clflush).explore(&scenario).is_ok());
/// assert!(Explorer::new().flush(Flush::Clwb).explore(&scenario).is_err());
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Flush {
    /// CLWB or CLFLUSHOPT, or CLFLUSH on AMD: a flush starts a write-back,
    /// and only the next fence waits for it.
    #[default]
    Clwb,
    /// CLFLUSH on Intel: ordered with the stores around it, the line is
    /// written back when the flush completes, with no fence.
    Clflush,
}

/// What the explorer models: the hardware, the flush, where to crash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Model {
    pub(crate) profile: Profile,
    pub(crate) flush: Flush,
    /// Crash before every step of the program, not only before fences.
    pub(crate) every_store: bool,
}

/// One pending store: the word it writes, the value, where it came from,
/// and the step (group) it was made in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Pending {
    pub(crate) word: u32,
    pub(crate) value: u64,
    pub(crate) site: u32,
    pub(crate) raw: bool,
    pub(crate) nt: bool,
    pub(crate) group: u32,
}

/// Stores that persist in program order: the pending stores of a line
/// (ADR) or of a word (conservative, non-temporal). They come in steps,
/// the stores of one operation or one borrow, whose order among themselves
/// is unknown: a crash keeps every store of some first steps and any subset
/// of the next one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Unit {
    pub(crate) line: u32,
    pub(crate) stores: Vec<Pending>,
    /// The sizes of the steps, in order; empty when every step is one store
    /// (the common case: a choice is then a prefix).
    steps: Vec<u8>,
}

/// What one choice of a unit keeps: its first `prefix` stores, and those
/// of the next step whose bit is set in `mask`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Kept {
    pub(crate) prefix: usize,
    pub(crate) mask: u8,
}

impl Unit {
    /// A unit of `stores`, its steps the runs of one group.
    pub(crate) fn new(line: u32, stores: Vec<Pending>) -> Self {
        let mut steps: Vec<u8> = Vec::new();
        let mut last = None;
        for store in &stores {
            match steps.last_mut() {
                // A word is written once per group, so a step within one
                // line has at most eight stores.
                Some(len) if last == Some(store.group) && *len < 8 => *len += 1,
                _ => steps.push(1),
            }
            last = Some(store.group);
        }
        if steps.iter().all(|&len| len == 1) {
            steps.clear();
        }
        Self {
            line,
            stores,
            steps,
        }
    }

    /// The number of distinct choices: keeping nothing, or for each step,
    /// the steps before it and a non-empty subset of it.
    pub(crate) fn choices(&self) -> usize {
        if self.steps.is_empty() {
            return self.stores.len() + 1;
        }
        1 + self
            .steps
            .iter()
            .map(|&len| (1usize << len) - 1)
            .sum::<usize>()
    }

    /// What choice `index` (below [`choices`](Self::choices)) keeps.
    pub(crate) fn kept(&self, index: usize) -> Kept {
        if self.steps.is_empty() {
            return Kept {
                prefix: index.min(self.stores.len()),
                mask: 0,
            };
        }
        let (mut rest, mut start) = (index, 0);
        for &len in &self.steps {
            if rest == 0 {
                break;
            }
            let subsets = (1usize << len) - 1;
            if rest < subsets {
                return Kept {
                    prefix: start,
                    mask: rest as u8,
                };
            }
            rest -= subsets;
            start += usize::from(len);
        }
        Kept {
            prefix: start,
            mask: 0,
        }
    }

    /// The stores choice `index` keeps, in program order.
    pub(crate) fn kept_stores(&self, index: usize) -> impl Iterator<Item = &Pending> {
        let Kept { prefix, mask } = self.kept(index);
        let step = self.stores[prefix..]
            .iter()
            .take(8)
            .enumerate()
            .filter(move |(bit, _)| mask >> bit & 1 == 1)
            .map(|(_, store)| store);
        self.stores[..prefix].iter().chain(step)
    }
}

/// A place where the program may crash, and what the durable state is there.
///
/// The durable image itself is not stored (it would be a copy of the whole
/// medium per point): each point records the stores that became durable
/// since the previous one, and a [`Durable`] walks the points in order.
#[derive(Clone, Debug)]
pub(crate) struct CrashPoint {
    /// Events `0..event` happened.
    pub(crate) event: usize,
    /// The site of the next event (the fence about to run), or of the last one.
    pub(crate) site: u32,
    /// How many fences completed before this point.
    pub(crate) fences: usize,
    /// Bytes of the medium at this point.
    pub(crate) len: usize,
    /// Stores (word, value) that became durable since the previous point.
    pub(crate) delta: Vec<(u32, u64)>,
    /// Hash of the durable image at this point (see [`image_hash`]).
    pub(crate) durable_hash: u64,
    /// Stores that may or may not have persisted.
    pub(crate) units: Vec<Unit>,
}

/// The durable image, walked forward through the crash points of one
/// recording (its buffer is reused, never reallocated).
#[derive(Debug, Default)]
pub(crate) struct Durable {
    bytes: Vec<u8>,
    /// The next point whose delta is not applied yet.
    next: usize,
}

impl Durable {
    /// The image before any crash point: `base`.
    pub(crate) fn new(base: &[u8]) -> Self {
        Self {
            bytes: base.to_vec(),
            next: 0,
        }
    }

    /// Starts over from `image` zero-extended to `len` bytes, reusing the
    /// buffer.
    pub(crate) fn reset_extended(&mut self, image: &[u8], len: usize) {
        self.bytes.clear();
        self.bytes.extend_from_slice(image);
        self.bytes.resize(len.max(image.len()), 0);
        self.next = 0;
    }

    /// Brings the image to point `index`; points must be visited in order.
    pub(crate) fn advance(&mut self, points: &[CrashPoint], index: usize) {
        debug_assert!(
            index + 1 >= self.next,
            "crash points are walked forward only"
        );
        for point in &points[self.next.min(index + 1)..=index] {
            for &(word, value) in &point.delta {
                let at = word as usize * WORD;
                self.bytes[at..at + WORD].copy_from_slice(&value.to_le_bytes());
            }
        }
        self.next = self.next.max(index + 1);
    }

    /// The image at the point last advanced to.
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.bytes
    }
}

impl CrashPoint {
    /// Number of distinct choices (saturating).
    pub(crate) fn combinations(&self) -> u128 {
        self.units
            .iter()
            .fold(1u128, |n, u| n.saturating_mul(u.choices() as u128))
    }

    /// The image where unit `i` kept `kept[i]` of its stores, given the
    /// durable image at this point, and its hash.
    pub(crate) fn image(&self, durable: &[u8], kept: &[usize]) -> (Vec<u8>, u64) {
        let mut image = durable.to_vec();
        let hash = self.apply(durable, &mut image, kept);
        (image, hash)
    }

    /// Applies the kept stores to `image` (which holds `durable`), returning
    /// the hash of the result.
    pub(crate) fn apply(&self, durable: &[u8], image: &mut [u8], kept: &[usize]) -> u64 {
        let mut touched: Vec<u32> = Vec::new();
        for (unit, &k) in self.units.iter().zip(kept) {
            for store in unit.kept_stores(k) {
                let at = store.word as usize * WORD;
                image[at..at + WORD].copy_from_slice(&store.value.to_le_bytes());
            }
            if k > 0 {
                touched.push(unit.line);
            }
        }
        touched.sort_unstable();
        touched.dedup();
        let mut hash = self.durable_hash;
        for &line in &touched {
            let at = line as usize * LINE;
            hash ^=
                line_hash(line, &durable[at..at + LINE]) ^ line_hash(line, &image[at..at + LINE]);
        }
        hash
    }

    /// The hash of the image for `kept`, without building it.
    pub(crate) fn hash_of(&self, durable: &[u8], kept: &[usize]) -> u64 {
        // The lines kept, each once (a line's units are few: a linear search).
        let mut lines: Vec<(u32, [u8; LINE])> = Vec::new();
        for (unit, &k) in self.units.iter().zip(kept) {
            if k == 0 {
                continue;
            }
            let at = unit.line as usize * LINE;
            let slot = match lines.iter().position(|(line, _)| *line == unit.line) {
                Some(slot) => slot,
                None => {
                    let mut copy = [0u8; LINE];
                    copy.copy_from_slice(&durable[at..at + LINE]);
                    lines.push((unit.line, copy));
                    lines.len() - 1
                }
            };
            let line = &mut lines[slot].1;
            for store in unit.kept_stores(k) {
                let off = store.word as usize * WORD - at;
                line[off..off + WORD].copy_from_slice(&store.value.to_le_bytes());
            }
        }
        let mut hash = self.durable_hash;
        for (line, bytes) in &lines {
            let line = *line;
            let at = line as usize * LINE;
            hash ^= line_hash(line, &durable[at..at + LINE]) ^ line_hash(line, bytes);
        }
        hash
    }
}

/// A 64-bit hash of one line and its index; an image's hash is the XOR of
/// its lines' hashes, so changing a line updates it in O(1).
pub(crate) fn line_hash(line: u32, bytes: &[u8]) -> u64 {
    let mut h = u64::from(line)
        .wrapping_add(1)
        .wrapping_mul(0x9e37_79b9_7f4a_7c15);
    for word in bytes.chunks_exact(8) {
        let w = u64::from_le_bytes(word.try_into().unwrap_or_default());
        h = (h ^ w).wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 29;
    }
    h ^ (h >> 32)
}

/// The hash of a whole image.
pub(crate) fn image_hash(image: &[u8]) -> u64 {
    image
        .chunks_exact(LINE)
        .enumerate()
        .fold(0, |h, (i, line)| h ^ line_hash(i as u32, line))
}

/// Per-line bookkeeping while walking the recording.
#[derive(Clone, Debug, Default)]
struct LineState {
    /// Stores not yet guaranteed, in program order.
    pending: Vec<Pending>,
    /// How many of `pending` the next fence guarantees (flushed, or up to a
    /// non-temporal store).
    covered: usize,
}

/// Walks `log` from the durable image `base` and returns the crash points:
/// just before every fence (the moment with the most undecided stores,
/// whose images include those of every earlier moment since the previous
/// fence), before every flush that completes by itself ([`Flush::Clflush`]),
/// optionally before every step, and at the end.
pub(crate) fn crash_points(
    base: &[u8],
    base_len: usize,
    log: &Log,
    model: Model,
) -> Vec<CrashPoint> {
    crash_points_hashed(base, image_hash(base), base_len, log, model)
}

/// [`crash_points`], given `base_hash`, the [`image_hash`] of `base`, which
/// the explorer knows already for the images whose recovery it crashes.
pub(crate) fn crash_points_hashed(
    base: &[u8],
    base_hash: u64,
    base_len: usize,
    log: &Log,
    model: Model,
) -> Vec<CrashPoint> {
    let Model {
        profile,
        flush,
        every_store,
    } = model;
    let mut walk = Walk {
        base,
        changed: HashMap::new(),
        hash: base_hash,
        delta: Vec::new(),
        lines: BTreeMap::new(),
        points: Vec::new(),
        fences: 0,
        len: base_len,
        profile,
    };
    let eadr = profile == Profile::Eadr;
    let mut last_group = None;
    for (index, event) in log.events.iter().enumerate() {
        match *event {
            Event::Store {
                word,
                value,
                nt,
                raw,
                site,
                group,
            } => {
                if last_group != Some(group) {
                    last_group = Some(group);
                    if eadr {
                        // A crash within the step keeps any subset of its
                        // cached stores: each is a unit of its own.
                        let step = log.events[index..]
                            .iter()
                            .map_while(|e| match *e {
                                Event::Store {
                                    word,
                                    value,
                                    nt: false,
                                    raw,
                                    site,
                                    group: g,
                                } if g == group => Some(Pending {
                                    word,
                                    value,
                                    site,
                                    raw,
                                    nt: false,
                                    group,
                                }),
                                _ => None,
                            })
                            .map(|store| {
                                Unit::new(store.word * WORD as u32 / LINE as u32, vec![store])
                            });
                        let units: Vec<Unit> = step.collect();
                        walk.snapshot_with(index, site, units);
                    } else if every_store {
                        walk.snapshot(index, site);
                    }
                }
                if eadr && !nt {
                    walk.write_durable(word, value);
                    continue;
                }
                let line = word * WORD as u32 / LINE as u32;
                let state = walk.lines.entry(line).or_default();
                state.pending.push(Pending {
                    word,
                    value,
                    site,
                    raw,
                    nt,
                    group,
                });
                if nt {
                    state.covered = state.pending.len();
                }
            }
            Event::Flush { line, site } => {
                let Some(state) = walk.lines.get_mut(&line) else {
                    continue;
                };
                state.covered = state.pending.len();
                if flush == Flush::Clflush && !eadr && state.covered > 0 {
                    // The line is written back before anything after the flush.
                    walk.snapshot(index, site);
                    walk.guarantee(|l| l == line);
                }
            }
            Event::Resize { len } => walk.len = len as usize,
            Event::Fence { site } => {
                walk.snapshot(index, site);
                walk.fences += 1;
                walk.guarantee(|_| true);
            }
        }
    }
    let last_site = log.events.iter().rev().find_map(|e| match *e {
        Event::Store { site, .. } | Event::Flush { site, .. } | Event::Fence { site } => Some(site),
        Event::Resize { .. } => None,
    });
    walk.snapshot(log.events.len(), last_site.unwrap_or(0));
    walk.points
}

/// The state of [`crash_points`]'s walk through a recording.
struct Walk<'a> {
    /// The durable image is `base` (zero-extended) with the `changed` lines
    /// in place of its own: recovery's recordings touch a few lines of a
    /// large image.
    base: &'a [u8],
    changed: HashMap<u32, [u8; LINE]>,
    hash: u64,
    /// Stores made durable since the last snapshot.
    delta: Vec<(u32, u64)>,
    lines: BTreeMap<u32, LineState>,
    points: Vec<CrashPoint>,
    fences: usize,
    len: usize,
    profile: Profile,
}

impl Walk<'_> {
    fn snapshot(&mut self, event: usize, site: u32) {
        self.snapshot_with(event, site, Vec::new());
    }

    /// A crash point where `extra` units are undecided besides the pending stores.
    fn snapshot_with(&mut self, event: usize, site: u32, extra: Vec<Unit>) {
        let mut units = units_of(&self.lines, self.profile);
        units.extend(extra);
        self.points.push(CrashPoint {
            event,
            site,
            fences: self.fences,
            len: self.len,
            delta: std::mem::take(&mut self.delta),
            durable_hash: self.hash,
            units,
        });
    }

    /// Makes the covered stores of the lines `which` selects durable.
    fn guarantee(&mut self, which: impl Fn(u32) -> bool) {
        let mut guaranteed = Vec::new();
        self.lines.retain(|&line, state| {
            if which(line) {
                guaranteed.extend(
                    state
                        .pending
                        .drain(..state.covered)
                        .map(|s| (s.word, s.value)),
                );
                state.covered = 0;
            }
            !state.pending.is_empty()
        });
        for (word, value) in guaranteed {
            self.write_durable(word, value);
        }
    }

    fn write_durable(&mut self, word: u32, value: u64) {
        let line = word * WORD as u32 / LINE as u32;
        let base = self.base;
        let bytes = self.changed.entry(line).or_insert_with(|| {
            // Beyond `base`, the image holds zeros.
            let mut bytes = [0; LINE];
            let at = (line as usize * LINE).min(base.len());
            let end = (at + LINE).min(base.len());
            bytes[..end - at].copy_from_slice(&base[at..end]);
            bytes
        });
        let before = line_hash(line, bytes);
        let c = word as usize * WORD % LINE;
        bytes[c..c + WORD].copy_from_slice(&value.to_le_bytes());
        self.hash ^= before ^ line_hash(line, bytes);
        self.delta.push((word, value));
    }
}

/// The pending stores grouped as the profile says they persist.
fn units_of(lines: &BTreeMap<u32, LineState>, profile: Profile) -> Vec<Unit> {
    let mut units = Vec::new();
    for (&line, state) in lines {
        if state.pending.is_empty() {
            continue;
        }
        // Write-combining buffers drain in no particular order: pending
        // non-temporal stores persist as any subset (one unit per word),
        // where cached stores to a line persist as a prefix. A line with both
        // kinds pending keeps program order as one prefix, the stricter choice
        // that still applies its stores in order.
        // (Under eADR only non-temporal stores are ever pending.)
        let per_word = match profile {
            Profile::X86Adr | Profile::Eadr => state.pending.iter().all(|store| store.nt),
            Profile::Conservative => true,
        };
        if per_word {
            let mut by_word: BTreeMap<u32, Vec<Pending>> = BTreeMap::new();
            for store in &state.pending {
                by_word.entry(store.word).or_default().push(*store);
            }
            units.extend(by_word.into_values().map(|stores| Unit::new(line, stores)));
        } else {
            units.push(Unit::new(line, state.pending.clone()));
        }
    }
    units
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::medium::Site;

    /// A recording of `events`, each store a step of its own.
    fn log(mut events: Vec<Event>) -> Log {
        for (i, event) in events.iter_mut().enumerate() {
            if let Event::Store { group, .. } = event {
                *group = i as u32;
            }
        }
        Log {
            events,
            sites: vec![Site {
                operation: "test",
                location: std::panic::Location::caller(),
            }],
            milestones: Vec::new(),
        }
    }

    fn model(profile: Profile) -> Model {
        Model {
            profile,
            flush: Flush::Clwb,
            every_store: false,
        }
    }

    fn store(word: u32, value: u64) -> Event {
        Event::Store {
            word,
            value,
            nt: false,
            raw: false,
            site: 0,
            group: 0,
        }
    }

    #[test]
    fn flush_then_fence_guarantees_the_line() {
        let base = vec![0u8; 256];
        let events = vec![
            store(0, 1),
            store(1, 2),
            Event::Flush { line: 0, site: 0 },
            store(8, 3), // line 1, never flushed
            Event::Fence { site: 0 },
            store(1, 4),
        ];
        let points = crash_points(&base, 256, &log(events), model(Profile::X86Adr));
        assert_eq!(points.len(), 2);
        // Before the fence: line 0 has 2 pending stores, line 1 one.
        let p0 = &points[0];
        assert_eq!(
            p0.units
                .iter()
                .map(|u| (u.line, u.stores.len()))
                .collect::<Vec<_>>(),
            [(0, 2), (1, 1)]
        );
        assert_eq!(p0.combinations(), 6);
        // At the end: line 0's first two stores are durable; store(1, 4) and line 1 pending.
        let end = &points[1];
        let mut durable = Durable::new(&base);
        durable.advance(&points, 1);
        assert_eq!(
            &durable.bytes()[..16],
            &[1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0]
        );
        assert_eq!(end.durable_hash, image_hash(durable.bytes()));
        assert_eq!(
            end.units
                .iter()
                .map(|u| (u.line, u.stores.len()))
                .collect::<Vec<_>>(),
            [(0, 1), (1, 1)]
        );
        let (image, hash) = end.image(durable.bytes(), &[1, 0]);
        assert_eq!(image[8], 4);
        assert_eq!(hash, image_hash(&image));
        assert_eq!(end.hash_of(durable.bytes(), &[1, 0]), hash);
    }

    #[test]
    fn flush_covers_only_earlier_stores() {
        let events = vec![
            store(0, 1),
            Event::Flush { line: 0, site: 0 },
            store(1, 2),
            Event::Fence { site: 0 },
        ];
        let points = crash_points(&[0u8; 64], 64, &log(events), model(Profile::X86Adr));
        let end = points.last().unwrap();
        assert_eq!(end.delta, [(0, 1)], "the flushed store became durable");
        assert_eq!(
            end.units[0].stores.len(),
            1,
            "the store after the flush is still pending"
        );
    }

    #[test]
    fn nontemporal_stores_persist_in_any_subset() {
        let nt = |word| Event::Store {
            word,
            value: 1,
            nt: true,
            raw: false,
            site: 0,
            group: 0,
        };
        let points = crash_points(
            &[0u8; 64],
            64,
            &log(vec![nt(0), nt(1), nt(2)]),
            model(Profile::X86Adr),
        );
        assert_eq!(
            points[0].combinations(),
            8,
            "each of three words independently"
        );
    }

    #[test]
    fn nontemporal_stores_need_only_a_fence() {
        let events = vec![
            Event::Store {
                word: 0,
                value: 9,
                nt: true,
                raw: false,
                site: 0,
                group: 0,
            },
            Event::Fence { site: 0 },
        ];
        let points = crash_points(&[0u8; 64], 64, &log(events), model(Profile::X86Adr));
        assert_eq!(
            points[0].units.len(),
            1,
            "before the fence: may or may not persist"
        );
        assert!(points[1].units.is_empty());
        assert_eq!(points[1].delta, [(0, 9)]);
    }

    #[test]
    fn conservative_splits_lines_into_words() {
        let events = vec![store(0, 1), store(1, 2), store(0, 3)];
        let adr = crash_points(&[0u8; 64], 64, &log(events.clone()), model(Profile::X86Adr));
        let cons = crash_points(&[0u8; 64], 64, &log(events), model(Profile::Conservative));
        assert_eq!(adr[0].combinations(), 4, "a prefix of 3 stores");
        assert_eq!(cons[0].combinations(), 6, "word 0: 3 choices, word 1: 2");
    }

    #[test]
    fn eadr_crashes_between_stores() {
        let events = vec![store(0, 1), store(1, 2)];
        let points = crash_points(&[0u8; 64], 64, &log(events), model(Profile::Eadr));
        assert_eq!(points.len(), 3);
        // Before each store, the store itself is undecided (the crash may
        // come within its step); at the end nothing is.
        let undecided: Vec<usize> = points.iter().map(|p| p.units.len()).collect();
        assert_eq!(undecided, [1, 1, 0]);
        let mut durable = Durable::new(&[0u8; 64]);
        durable.advance(&points, 1);
        assert_eq!((durable.bytes()[0], durable.bytes()[8]), (1, 0));
        durable.advance(&points, 2);
        assert_eq!((durable.bytes()[0], durable.bytes()[8]), (1, 2));
    }

    /// Stores of one step (one borrow, one copy), in one line.
    fn step(group: u32, words: &[u32]) -> Vec<Event> {
        words
            .iter()
            .map(|&word| Event::Store {
                word,
                value: 1,
                nt: false,
                raw: true,
                site: 0,
                group,
            })
            .collect()
    }

    fn recorded(events: Vec<Event>) -> Log {
        Log {
            events,
            sites: vec![Site {
                operation: "test",
                location: std::panic::Location::caller(),
            }],
            milestones: Vec::new(),
        }
    }

    #[test]
    fn a_steps_stores_persist_in_any_subset() {
        // One step writes words 0 and 1; a later step word 2; all in line 0.
        let mut events = step(7, &[0, 1]);
        events.extend(step(8, &[2]));
        let points = crash_points(&[0u8; 64], 64, &recorded(events), model(Profile::X86Adr));
        let unit = &points[0].units[0];
        // Nothing; word 0 alone; word 1 alone; both; then word 2 too.
        assert_eq!(unit.choices(), 5);
        let kept: Vec<Vec<u32>> = (0..5)
            .map(|i| unit.kept_stores(i).map(|s| s.word).collect())
            .collect();
        assert_eq!(kept, [vec![], vec![0], vec![1], vec![0, 1], vec![0, 1, 2]]);
    }

    #[test]
    fn eadr_crashes_within_a_step() {
        let points = crash_points(
            &[0u8; 64],
            64,
            &recorded(step(3, &[0, 1, 2])),
            model(Profile::Eadr),
        );
        assert_eq!(points.len(), 2, "before the step, and the end");
        assert_eq!(points[0].combinations(), 8, "any subset of the three words");
    }

    #[test]
    fn eadr_keeps_nontemporal_stores_pending_until_a_fence() {
        let nt = Event::Store {
            word: 0,
            value: 9,
            nt: true,
            raw: false,
            site: 0,
            group: 0,
        };
        let events = vec![nt, store(8, 1), Event::Fence { site: 0 }];
        let points = crash_points(&[0u8; 128], 128, &log(events), model(Profile::Eadr));
        // Before the cached store: the streamed word is undecided, and so is
        // the cached store's own step.
        assert_eq!(points[1].combinations(), 4);
        assert!(points.last().is_some_and(|p| p.units.is_empty()));
    }

    #[test]
    fn clflush_is_durable_without_a_fence() {
        let events = vec![
            store(8, 42),
            Event::Flush { line: 1, site: 0 },
            store(0, 1),
            Event::Flush { line: 0, site: 0 },
        ];
        let clflush = Model {
            flush: Flush::Clflush,
            ..model(Profile::X86Adr)
        };
        let points = crash_points(&[0u8; 128], 128, &log(events.clone()), clflush);
        let mut durable = Durable::new(&[0u8; 128]);
        let end = points.len() - 1;
        durable.advance(&points, end);
        assert_eq!((durable.bytes()[0], durable.bytes()[64]), (1, 42));
        assert!(points[end].units.is_empty(), "nothing left to decide");
        // With CLWB nothing is durable without a fence.
        let clwb = crash_points(&[0u8; 128], 128, &log(events), model(Profile::X86Adr));
        assert_eq!(clwb.len(), 1);
        assert_eq!(clwb[0].combinations(), 4);
    }
}
