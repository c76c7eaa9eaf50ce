//! Choosing where an allocation goes, before anything durable changes, and
//! keeping the volatile summary in step with the records the redo protocol
//! applies.

use super::classes::{class_for, class_of_block, first_clear_bit};
use super::{ChunkInfo, Heap, read_bitmap};
use crate::error::{Error, Expected, Result};
use crate::format::heap::{ChunkDescriptor, ChunkKind, blocks_per_chunk};
use crate::format::{CHUNK, LINE, PAGE, SIZE_CLASSES};
use crate::medium::Medium;
use crate::redo::BlockChange;

/// Where an allocation will go, chosen before anything durable changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Reservation {
    /// Offset of the block.
    pub(crate) offset: u64,
    /// Its size in bytes.
    pub(crate) size: u64,
}

impl Heap {
    /// Chooses a block of at least `size` bytes aligned to `align`. A free
    /// chunk taken for a size class is made durable as such here (harmless
    /// if nothing is ever allocated in it).
    ///
    /// # Errors
    /// [`Error::OutOfSpace`], or [`Error::InvalidArgument`] for an alignment above 4096.
    pub(crate) fn reserve<M: Medium>(
        &mut self,
        medium: &M,
        size: usize,
        align: usize,
    ) -> Result<Reservation> {
        if align > PAGE {
            return Err(Error::InvalidArgument {
                argument: "alignment",
                found: align as u64,
                expected: Expected::AtMost(PAGE as u64),
            });
        }
        match class_for(size, align) {
            Some(class) => self.reserve_small(medium, class, size),
            None => self.reserve_run(size),
        }
    }

    fn reserve_small<M: Medium>(
        &mut self,
        medium: &M,
        class: usize,
        size: usize,
    ) -> Result<Reservation> {
        let blocks = blocks_per_chunk(class);
        while let Some(&global) = self.with_room[class].last() {
            let global = global as usize;
            let info = self.chunks[global].unwrap_or_default();
            if info.kind != ChunkKind::Small
                || usize::from(info.class) != class
                || usize::from(info.used) >= blocks
            {
                self.with_room[class].pop();
                continue;
            }
            let (zone, index) = self.position(global);
            // SAFETY: the descriptor of an existing chunk is inside the pool.
            let mut bitmap =
                unsafe { read_bitmap(medium, self.geometry.descriptor_offset(zone, index)) };
            if let Some(held) = self.held.get(&global) {
                for (word, held) in bitmap.iter_mut().zip(held) {
                    *word |= held;
                }
            }
            if let Some(bit) = first_clear_bit(&bitmap, blocks) {
                let offset = self.geometry.chunk_offset(zone, index) + bit * SIZE_CLASSES[class];
                return Ok(Reservation {
                    offset: offset as u64,
                    size: SIZE_CLASSES[class] as u64,
                });
            }
            self.with_room[class].pop();
        }
        // No chunk of the class has room: dedicate a free one to it.
        let Some(global) = self.find_free_chunks(1) else {
            return Err(self.out_of_space(size));
        };
        let (zone, index) = self.position(global);
        let at = self.geometry.descriptor_offset(zone, index);
        // The previous operation's redo record may still be on its way to
        // media; it must be cleared before this chunk changes class, or its
        // replay would find the chunk unlike what it recorded. (A fence with
        // nothing pending costs about a nanosecond.)
        medium.fence();
        // SAFETY: the descriptor is inside the pool; nothing references the chunk table.
        unsafe { medium.store_u64(at, ChunkDescriptor::small_state(class).to_le()) };
        medium.persist(at, LINE);
        self.chunks[global] = Some(ChunkInfo {
            kind: ChunkKind::Small,
            class: class as u8,
            used: 0,
            run: 0,
        });
        self.with_room[class].push(global as u32);
        let offset = self.geometry.chunk_offset(zone, index);
        Ok(Reservation {
            offset: offset as u64,
            size: SIZE_CLASSES[class] as u64,
        })
    }

    fn reserve_run(&mut self, size: usize) -> Result<Reservation> {
        let chunks = size.div_ceil(CHUNK);
        let Some(global) = self.find_free_chunks(chunks) else {
            return Err(self.out_of_space(size));
        };
        let (zone, index) = self.position(global);
        Ok(Reservation {
            offset: self.geometry.chunk_offset(zone, index) as u64,
            size: (chunks * CHUNK) as u64,
        })
    }

    /// The first of `count` consecutive free (or emptied) chunks within one zone.
    fn find_free_chunks(&mut self, count: usize) -> Option<usize> {
        let zone_chunks = self.geometry.zone_chunks;
        if count > zone_chunks {
            return None;
        }
        let total = self.chunks.len();
        // Single chunks: start at the hint; runs: scan everything.
        let start = if count == 1 {
            self.free_hint.min(total)
        } else {
            0
        };
        let mut run_start = start;
        let mut run_len = 0;
        for global in start..total {
            // An emptied small chunk is as good as a free one: its bitmap is
            // zero, so whoever takes it overwrites its state with one store.
            let free = self.chunks[global].is_some_and(|c| {
                c.kind == ChunkKind::Free || c.kind == ChunkKind::Small && c.used == 0
            }) && !self.held.contains_key(&global);
            if !free || (run_len > 0 && global % zone_chunks == 0) {
                run_len = 0;
            }
            if free {
                if run_len == 0 {
                    run_start = global;
                }
                run_len += 1;
                if run_len == count {
                    if count == 1 {
                        self.free_hint = global + 1;
                    }
                    return Some(run_start);
                }
            }
        }
        if count == 1 && start > 0 {
            self.free_hint = 0;
            return self.find_free_chunks(1);
        }
        None
    }

    fn out_of_space(&self, requested: usize) -> Error {
        Error::OutOfSpace {
            requested: requested as u64,
            largest: (self
                .geometry
                .zone_chunks
                .min(self.geometry.chunks_in_zone(0))
                * CHUNK) as u64,
        }
    }

    /// Holds a reserved block for an open batch: until it is released,
    /// [`reserve`](Self::reserve) chooses other blocks. Nothing durable
    /// changes: after a crash the block is free again.
    pub(crate) fn hold(&mut self, block: Reservation) {
        self.mark_held(block, true);
    }

    /// Releases a block [`hold`](Self::hold) held: the batch that held it
    /// published it (and `note_applied` counted it) or gave it up.
    pub(crate) fn release(&mut self, block: Reservation) {
        self.mark_held(block, false);
    }

    fn mark_held(&mut self, block: Reservation, held: bool) {
        let Some((zone, index)) = self.geometry.locate(block.offset as usize) else {
            return;
        };
        let global = zone * self.geometry.zone_chunks + index;
        if let Some(class) = class_of_block(block.size) {
            let bit = (block.offset as usize - self.geometry.chunk_offset(zone, index))
                / SIZE_CLASSES[class];
            let bits = self.held.entry(global).or_default();
            if held {
                bits[bit / 64] |= 1 << (bit % 64);
            } else {
                bits[bit / 64] &= !(1 << (bit % 64));
                if *bits == [0; 4] {
                    self.held.remove(&global);
                }
                // It may have looked full while the block was held. (Kept
                // off the top twice: batches release the chunk they took from.)
                if self.with_room[class].last() != Some(&(global as u32)) {
                    self.with_room[class].push(global as u32);
                }
            }
        } else {
            let run = (block.size / CHUNK as u64) as usize;
            for chunk in global..global + run {
                if held {
                    self.held.insert(chunk, [u64::MAX; 4]);
                } else {
                    self.held.remove(&chunk);
                }
            }
            if !held {
                self.free_hint = self.free_hint.min(global);
            }
        }
    }

    /// Whether any block is held.
    #[cfg(test)]
    pub(crate) fn holds_any(&self) -> bool {
        !self.held.is_empty()
    }

    /// Records in the volatile state that `change` was applied.
    pub(crate) fn note_applied(&mut self, change: &BlockChange) {
        let Some((zone, index)) = self.geometry.locate(change.block as usize) else {
            return;
        };
        let global = zone * self.geometry.zone_chunks + index;
        let alloc = change.alloc;
        let block_size = change.size;
        if let Some(class) = class_of_block(block_size) {
            let Some(info) = self.chunks[global].as_mut() else {
                return;
            };
            if alloc {
                info.used += 1;
            } else {
                let was_full = usize::from(info.used) == blocks_per_chunk(class);
                info.used -= 1;
                if was_full {
                    self.with_room[class].push(global as u32);
                }
                if info.used == 0 {
                    self.free_hint = self.free_hint.min(global);
                }
            }
        } else {
            let run = (block_size / CHUNK as u64) as usize;
            for (i, chunk) in self.chunks[global..global + run].iter_mut().enumerate() {
                *chunk = Some(match (alloc, i) {
                    (true, 0) => ChunkInfo {
                        kind: ChunkKind::Run,
                        class: 0,
                        used: 1,
                        run: run as u32,
                    },
                    (true, _) => ChunkInfo {
                        kind: ChunkKind::RunTail,
                        ..ChunkInfo::default()
                    },
                    (false, _) => ChunkInfo::default(),
                });
            }
            if !alloc {
                self.free_hint = self.free_hint.min(global);
            }
        }
    }
}
