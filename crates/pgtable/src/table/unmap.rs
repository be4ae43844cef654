//! `unmap_pages`: clearing leaves, splitting blocks, reclaiming emptied tables.
use super::PageTable;
use crate::config::{Fidelity, PartialUnmap, TableReclaim, MAX_LEVELS};
use crate::error::PgTableError;
use crate::pte::{is_leaf, is_table, is_valid, pte_addr};
use crate::{Gather, TlbOps};
use smmu_addr::{Iova, PageCount, PageSize, PhysAddr};
use std::sync::atomic::Ordering;

impl<T: TlbOps> PageTable<T> {
    /// Unmap `pgcount` pages of `pgsize` bytes from `iova`; returns the bytes unmapped.
    ///
    /// Stops at the first hole (Linux warns there and returns what it had done). Loops across
    /// table boundaries, so the result is the whole request unless there is a hole. Returns 0
    /// for a `pgsize` not in the bitmap, `pgcount` 0, an unaligned IOVA or one beyond IAS.
    /// `Fidelity::Safe` clips the range at the top of the IAS; `Fidelity::Linux` checks, as
    /// each io-pgtable-arm call does, only each one-table step's first IOVA, and bounds a step
    /// at the start level by a full table (see [`run_room`](Self::run_room)).
    ///
    /// TLB maintenance: each cleared leaf gets `tlb_add_page` unless `gather.queued`; each
    /// cleared table gets a `tlb_flush_walk` before its pages are freed. A partial unmap of a
    /// block splits it ([`PartialUnmap::Split`], v6.1: the left-out entries get `tlb_add_page`
    /// whatever `queued` says, as in Linux) or returns 0 ([`PartialUnmap::Refuse`]).
    // Inlined like the shortcut it wraps; the general path stays out of line.
    #[inline(always)]
    pub fn unmap_pages(
        &mut self,
        iova: Iova,
        pgsize: PageSize,
        pgcount: PageCount,
        gather: &mut Gather,
    ) -> u64 {
        // The one measured shortcut (see `fast.rs`); it stops where the general path goes on.
        let done = self.unmap_fast(iova, pgsize, pgcount, gather);
        if done.finished {
            return done.pages << pgsize.shift();
        }
        let rest = PageCount::new(pgcount.get() - done.pages);
        let at = Iova::new(iova.as_u64() + (done.pages << pgsize.shift()));
        (done.pages << pgsize.shift()) + self.unmap_general(at, pgsize, rest, gather)
    }

    /// The unmap path itself: every request [`unmap_fast`](Self::unmap_fast) does not finish.
    #[inline(never)]
    pub(super) fn unmap_general(
        &mut self,
        iova: Iova,
        pgsize: PageSize,
        pgcount: PageCount,
        gather: &mut Gather,
    ) -> u64 {
        self.unmap_range::<true>(iova, pgsize, pgcount, gather)
    }

    /// [`unmap_pages`](Self::unmap_pages) for callers that do not serialise unmaps (Linux's
    /// io-pgtable-arm has run without a lock since v4.13, 2c3d273eabe8): the same checks,
    /// descent, results and TLB callbacks, but the walk cache is only read, never filled, so
    /// concurrent calls cannot leave it pointing at a table no walk reaches. Concurrent callers
    /// must unmap disjoint ranges, as the IOMMU API requires; two of them may still meet on one
    /// block, whose split is then decided by a compare-and-exchange (see [`SplitRace`]).
    /// Nothing else may run on the table meanwhile but other concurrent unmaps and
    /// [`iova_to_phys`](Self::iova_to_phys) (a driver takes a shared lock here and an
    /// exclusive one for [`map_pages`](Self::map_pages)).
    ///
    /// [`SplitRace`]: crate::SplitRace
    #[inline]
    pub fn unmap_pages_concurrent(
        &self,
        iova: Iova,
        pgsize: PageSize,
        pgcount: PageCount,
        gather: &mut Gather,
    ) -> u64 {
        let done = self.unmap_fast(iova, pgsize, pgcount, gather);
        if done.finished {
            return done.pages << pgsize.shift();
        }
        let rest = PageCount::new(pgcount.get() - done.pages);
        let at = Iova::new(iova.as_u64() + (done.pages << pgsize.shift()));
        (done.pages << pgsize.shift()) + self.unmap_range::<false>(at, pgsize, rest, gather)
    }

    /// The general unmap loop; `CACHE` says whether walks may be recorded in the walk cache
    /// (only with `&mut self`, see [`WalkCache`](super::walk_cache::WalkCache)).
    fn unmap_range<const CACHE: bool>(
        &self,
        iova: Iova,
        pgsize: PageSize,
        pgcount: PageCount,
        gather: &mut Gather,
    ) -> u64 {
        let cfg = &self.cfg;
        let (iova, pgcount, shift) = (iova.as_u64(), pgcount.get(), pgsize.shift());
        let Some(target) = self.level_of(pgsize.bytes()) else {
            return 0;
        };
        if pgcount == 0 || iova & pgsize.mask() != 0 || iova >> cfg.ias != 0 {
            return 0;
        }
        let count = match cfg.fidelity {
            Fidelity::Safe => pgcount.min(((1u64 << cfg.ias) - iova) >> shift),
            Fidelity::Linux => pgcount,
        };
        // FreeEmpty reclaims bottom-up along the walked path, so it walks from the PGD.
        let from_cache = cfg.reclaim == TableReclaim::Keep;
        let mut done = 0u64;
        while done < count {
            let at = iova + (done << shift);
            if at >> self.cfg.ias != 0 {
                break;
            }
            let (table, lvl) = if from_cache {
                self.walk_start(at, target)
            } else {
                (self.pgd, self.cfg.geom.start_level)
            };
            // From the leaf level (a walk-cache hit there) there is nothing to descend.
            let bytes = if lvl == target {
                let idx = self.idx(at, lvl);
                let n = (count - done).min(self.run_room(lvl, idx));
                self.clear_entries(table, lvl, idx, n, at, gather)
            } else {
                self.unmap_at::<CACHE>(table, lvl, at, pgsize.bytes(), count - done, gather)
            }
            .unwrap_or(0);
            if bytes == 0 {
                break;
            }
            done += bytes >> shift;
        }
        done << shift
    }

    /// Unmap from the table at `table` (level `lvl`) downwards; returns bytes unmapped.
    /// Iterative descent, remembering the path so that `FreeEmpty` can reclaim tables the unmap
    /// emptied, bottom-up, on the way back.
    #[inline(never)]
    pub(super) fn unmap_at<const CACHE: bool>(
        &self,
        table: u64,
        lvl: u32,
        iova: u64,
        pgsize: u64,
        count: u64,
        gather: &mut Gather,
    ) -> Result<u64, PgTableError> {
        let g = self.cfg.geom;
        // (table, index, descriptor, level) of each table entry walked through.
        let mut path = [(0u64, 0u64, 0u64, 0u32); MAX_LEVELS as usize];
        let mut depth = 0usize;
        let (mut table, mut lvl) = (table, lvl);
        let bytes = loop {
            let idx = self.idx(iova, lvl);
            let bs = self.bsize(lvl);
            if bs == pgsize {
                // clear_entries returns 0 when the first entry is already empty.
                let n = count.min(self.run_room(lvl, idx));
                break self.clear_entries(table, lvl, idx, n, iova, gather)?;
            }
            let slot = self.slot(table, idx)?;
            let pte = slot.load(Ordering::Acquire);
            if !is_valid(pte) {
                return Ok(0);
            }
            if is_leaf(pte, lvl) {
                if self.cfg.partial_unmap == PartialUnmap::Refuse {
                    return Ok(0);
                }
                let bytes =
                    self.split_blk_unmap::<CACHE>(slot, pte, lvl + 1, iova, pgsize, count, gather)?;
                // A split that cut out every entry leaves an empty table behind.
                let now = slot.load(Ordering::Acquire);
                if bytes > 0
                    && self.cfg.reclaim == TableReclaim::FreeEmpty
                    && is_valid(now)
                    && is_table(now, lvl)
                    && self.table_is_empty(pte_addr(now), lvl + 1, 0)?
                    && slot
                        .compare_exchange(now, 0, Ordering::AcqRel, Ordering::Acquire)
                        .is_ok()
                {
                    self.forget_walks();
                    self.flush_reclaimed(iova & !(bs - 1), lvl);
                    self.alloc
                        .free(PhysAddr::new(pte_addr(now)), self.cfg.granule())?;
                } else {
                    return Ok(bytes);
                }
                break bytes;
            }
            if !is_table(pte, lvl) || depth >= path.len() {
                return Ok(0);
            }
            path[depth] = (table, idx, pte, lvl);
            depth += 1;
            table = pte_addr(pte);
            lvl += 1;
            if CACHE {
                self.remember_walk(iova, lvl, table);
            }
        };
        if bytes == 0 || self.cfg.reclaim != TableReclaim::FreeEmpty {
            return Ok(bytes);
        }
        while depth > 0 {
            depth -= 1;
            let (parent, idx, pte, plvl) = path[depth];
            let child = pte_addr(pte);
            let hint = g.index(iova + bytes - 1, plvl + 1);
            if !self.table_is_empty(child, plvl + 1, hint)? {
                break;
            }
            let slot = self.slot(parent, idx)?;
            if slot
                .compare_exchange(pte, 0, Ordering::AcqRel, Ordering::Acquire)
                .is_err()
            {
                break;
            }
            self.forget_walks();
            self.flush_reclaimed(iova & !(g.block_size(plvl) - 1), plvl);
            self.alloc.free(PhysAddr::new(child), self.cfg.granule())?;
        }
        Ok(bytes)
    }

    /// TLB maintenance before freeing an empty table reclaimed from a level-`lvl` entry at
    /// `iova`: a walk flush of the entry's range when the table was a last-level one (one
    /// invalidation per granule, as for any table Linux removes), otherwise a flush-all, since
    /// a per-granule walk flush of 1 GiB or more would be absurdly long.
    pub(super) fn flush_reclaimed(&self, iova: u64, lvl: u32) {
        if lvl + 1 == MAX_LEVELS - 1 {
            let size = self.cfg.geom.block_size(lvl);
            self.tlb.tlb_flush_walk(Iova::new(iova), size, self.granule);
        } else {
            self.tlb.tlb_flush_all();
        }
    }

    /// Clear up to `n` entries `table[idx..]` at the level whose block size is the page size,
    /// stopping at the first empty one; returns bytes cleared.
    #[inline]
    pub(super) fn clear_entries(
        &self,
        table: u64,
        lvl: u32,
        idx: u64,
        n: u64,
        iova: u64,
        gather: &mut Gather,
    ) -> Result<u64, PgTableError> {
        let size = self.bsize(lvl);
        let mut i = 0u64;
        'runs: while i < n {
            let run = self.run(table, idx + i, n - i)?;
            for e in run {
                let pte = e.load(Ordering::Acquire);
                if !is_valid(pte) {
                    break 'runs;
                }
                e.store(0, Ordering::Release);
                let va = iova + i * size;
                if is_leaf(pte, lvl) {
                    if !gather.queued {
                        self.tlb.tlb_add_page(
                            gather,
                            Iova::new(va),
                            self.level_size[lvl as usize & 3],
                        );
                    }
                } else if is_table(pte, lvl) {
                    self.forget_walks();
                    self.tlb.tlb_flush_walk(Iova::new(va), size, self.granule);
                    self.free_subtree(pte_addr(pte), lvl + 1)?;
                }
                i += 1;
            }
        }
        Ok(i * size)
    }

    /// Whether every entry of the table at `table` (level `lvl`) is zero; looks near `hint`
    /// first, where a dense table most likely still has a live entry.
    pub(super) fn table_is_empty(
        &self,
        table: u64,
        lvl: u32,
        hint: u64,
    ) -> Result<bool, PgTableError> {
        let n = self.cfg.geom.entries(lvl);
        let hint = hint.min(n - 1);
        for (from, to) in [(hint, n), (0, hint)] {
            let mut i = from;
            while i < to {
                let run = self.run(table, i, to - i)?;
                if run.iter().any(|e| e.load(Ordering::Acquire) != 0) {
                    return Ok(false);
                }
                i += run.len() as u64;
            }
        }
        Ok(true)
    }
}
