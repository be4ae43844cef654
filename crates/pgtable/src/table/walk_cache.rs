//! The software walk cache map and unmap consult (a starting hint for walks, never the truth).

use super::PageTable;
use crate::config::MAX_LEVELS;
use crate::TlbOps;
use std::sync::atomic::{AtomicU64, Ordering};

/// Key of an empty [`WalkCache`] slot: every key has its low (below-the-prefix) bits set, so
/// none is 0.
const NO_KEY: u64 = 0;

/// A software walk cache: per level, the PA of the last table map or unmap reached at that
/// level and the IOVA prefix (the bits above the level's index) that leads to it. Consecutive
/// single-page operations in one last-level table then skip the upper levels, as a hardware
/// walk cache does.
///
/// Invariant: a filled slot `(prefix, table)` of level `l` means that walking any IOVA with
/// that prefix from the PGD reaches `table` at level `l` now. Tables are only ever added where
/// nothing was (which keeps every cached path valid) or removed, and every removal
/// ([`PageTable::forget_walks`]: free_subtree, replace_tables, reclaim, destroy) empties the
/// whole cache before the table is unlinked and its page goes back to the allocator (and
/// before any TLB callback, so a panicking callback cannot leave a stale entry behind).
///
/// Only `map_pages` / `unmap_pages` (`&mut self`, so one at a time, with no reader alongside)
/// fill it. `unmap_pages_concurrent` (`&self`) reads it and, like every path, empties it before
/// unlinking a table; concurrent unmaps are of disjoint ranges, so none unlinks a table on
/// another's path. `iova_to_phys` (`&self`) only reads it: while any `&self` exists no `&mut self`
/// call can run, so the invariant holds for every reader. `leaf` and `walk` always walk from
/// the PGD (`walk` reports every step; tests use it as the cache-free reference). `unmap` with
/// [`TableReclaim::FreeEmpty`] walks from the PGD too, because reclaim needs the whole path.
/// Relaxed atomics keep the table `Sync` at the cost of plain loads and stores.
///
/// A slot's key is an IOVA of the prefix with every bit below the prefix set (`iova |
/// below_prefix[l]`): one OR and one compare per probe, where the prefix itself would take a
/// variable shift (94 → 89 instructions per random `iova_to_phys`, with the probes of
/// levels 3 and 2).
pub(super) struct WalkCache {
    pub(super) key: [AtomicU64; MAX_LEVELS as usize],
    pub(super) table: [AtomicU64; MAX_LEVELS as usize],
    /// Per level, the IOVA bits below its prefix: those one entry of the level above maps
    /// (level 0, never cached, has none and no prefix either).
    below_prefix: [u64; MAX_LEVELS as usize],
}

impl WalkCache {
    /// An empty cache for a table where an entry of level `l` maps the IOVA bits
    /// `offset_mask[l]`.
    pub(super) fn new(offset_mask: &[u64; MAX_LEVELS as usize]) -> Self {
        WalkCache {
            key: std::array::from_fn(|_| AtomicU64::new(NO_KEY)),
            table: std::array::from_fn(|_| AtomicU64::new(0)),
            below_prefix: std::array::from_fn(|l| match l {
                0 => u64::MAX,
                _ => offset_mask[l - 1],
            }),
        }
    }

    /// The key of `iova`'s prefix at `lvl`.
    #[inline(always)]
    fn key_of(&self, lvl: u32, iova: u64) -> u64 {
        iova | self.below_prefix[lvl as usize & 3]
    }

    /// The table cached at `lvl` for the prefix of `iova`, if any.
    #[inline(always)]
    pub(super) fn get(&self, lvl: u32, iova: u64) -> Option<u64> {
        let l = lvl as usize & 3;
        if self.key[l].load(Ordering::Relaxed) == self.key_of(lvl, iova) {
            Some(self.table[l].load(Ordering::Relaxed))
        } else {
            None
        }
    }

    #[inline(always)]
    pub(super) fn set(&self, lvl: u32, iova: u64, table: u64) {
        let l = lvl as usize & 3;
        self.key[l].store(self.key_of(lvl, iova), Ordering::Relaxed);
        self.table[l].store(table, Ordering::Relaxed);
    }

    #[inline]
    pub(super) fn clear(&self) {
        for k in &self.key {
            k.store(NO_KEY, Ordering::Relaxed);
        }
    }
}

impl<T: TlbOps> PageTable<T> {
    /// Empty the walk cache: a table is about to be unlinked or freed.
    #[inline]
    pub(super) fn forget_walks(&self) {
        self.cache.clear();
    }

    /// Where a walk of `iova` down to level `target` can start: the deepest table the walk
    /// cache holds on the way (at most `target`), else the PGD.
    ///
    /// The probes run down to level 1 whatever the start level: no slot at or above the PGD's
    /// level is ever filled ([`remember_walk`](Self::remember_walk)), so probing one finds
    /// nothing, and with a constant `target` the probes unroll into a few compares.
    #[inline(always)]
    pub(super) fn walk_start(&self, iova: u64, target: u32) -> (u64, u32) {
        let mut lvl = target;
        while lvl > 0 {
            if let Some(table) = self.cache.get(lvl, iova) {
                return (table, lvl);
            }
            lvl -= 1;
        }
        (self.pgd, self.cfg.geom.start_level)
    }

    /// Record that the walk of `iova` reached `table` at level `lvl` (below the PGD).
    #[inline(always)]
    pub(super) fn remember_walk(&self, iova: u64, lvl: u32, table: u64) {
        debug_assert!(lvl > self.cfg.geom.start_level, "the PGD is never cached");
        self.cache.set(lvl, iova, table);
    }
}
