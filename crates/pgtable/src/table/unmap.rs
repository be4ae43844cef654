//! `unmap_pages`: clearing leaves, splitting blocks, reclaiming emptied tables.
use super::{PageTable, NO_LEVEL};
use crate::config::{Fidelity, PartialUnmap, TableReclaim, MAX_LEVELS};
use crate::error::PgTableError;
use crate::pte::{
    is_leaf, is_table, is_valid, leaf_type, pte_addr, ATTR_MASK, NSTABLE, SW_SYNC, TYPE_TABLE,
};
use crate::{Gather, TlbOps};
use physmem::PhysAddr;
use std::sync::atomic::{AtomicU64, Ordering};

impl<T: TlbOps> PageTable<T> {
    /// Unmap `pgcount` pages of `pgsize` bytes from `iova`; returns the bytes unmapped.
    ///
    /// Stops at the first hole (Linux warns there and returns what it had done). Loops across
    /// table boundaries, so the result is the whole request unless there is a hole. Returns 0
    /// for a `pgsize` not in the bitmap, `pgcount` 0, an unaligned IOVA or one beyond IAS (the
    /// range is clipped at the end of the IAS).
    ///
    /// TLB maintenance: each cleared leaf gets `tlb_add_page` unless `gather.queued`; each
    /// cleared table gets a `tlb_flush_walk` before its pages are freed. A partial unmap of a
    /// block splits it ([`PartialUnmap::Split`], v6.1: the left-out entries get `tlb_add_page`
    /// whatever `queued` says, as in Linux) or returns 0 ([`PartialUnmap::Refuse`]).
    #[inline]
    pub fn unmap_pages(
        &mut self,
        iova: u64,
        pgsize: u64,
        pgcount: u64,
        gather: &mut Gather,
    ) -> u64 {
        match self.unmap_fast(iova, pgsize, pgcount, gather) {
            (done, true) => done * pgsize,
            (done, false) => {
                done * pgsize
                    + self.unmap_slow(iova + done * pgsize, pgsize, pgcount - done, gather)
            }
        }
    }

    /// The common case of [`unmap_pages`](Self::unmap_pages) in few instructions: with
    /// [`TableReclaim::Keep`], a valid request whose pages all fall in one table the walk cache
    /// holds (or the PGD). Clears leaves in order, as the general path does, and returns
    /// `(pages cleared, finished)`. Not finished means the general path must do the rest from
    /// there: a request outside the fast case (then 0 pages were touched) or a table entry met
    /// at the leaf level (a block-sized unmap over a table).
    #[inline(always)]
    pub(super) fn unmap_fast(
        &self,
        iova: u64,
        pgsize: u64,
        pgcount: u64,
        gather: &mut Gather,
    ) -> (u64, bool) {
        let shift = pgsize.trailing_zeros() & 63;
        let lvl = self.level_of_shift[shift as usize];
        if self.cfg.reclaim == TableReclaim::FreeEmpty
            || lvl == NO_LEVEL
            || pgsize != 1 << shift
            || iova & (pgsize - 1) != 0
            || iova >> self.cfg.ias != 0
        {
            return (0, false);
        }
        let lvl = u32::from(lvl);
        let idx = self.idx(iova, lvl);
        // Inside one table, hence below the IAS limit: no clipping needed.
        if pgcount == 0 || pgcount > self.entries[lvl as usize & 3] - idx {
            return (0, false);
        }
        let table = if lvl == self.cfg.geom.start_level {
            self.pgd
        } else {
            match self
                .cache
                .get(lvl, iova >> self.shift[(lvl - 1) as usize & 3])
            {
                Some(t) => t,
                None => return (0, false),
            }
        };
        let Ok(run) = self.run(table, idx, pgcount) else {
            return (0, false);
        };
        if run.len() as u64 != pgcount {
            return (0, false);
        }
        let mut va = iova;
        for (i, e) in run.iter().enumerate() {
            let pte = e.load(Ordering::Acquire);
            if !is_valid(pte) {
                return (i as u64, true);
            }
            if !is_leaf(pte, lvl) {
                return (i as u64, false);
            }
            e.store(0, Ordering::Release);
            if !gather.queued {
                self.tlb.tlb_add_page(gather, va, pgsize);
            }
            va += pgsize;
        }
        (pgcount, true)
    }

    /// The general path of [`unmap_pages`](Self::unmap_pages).
    #[inline(never)]
    pub(super) fn unmap_slow(
        &mut self,
        iova: u64,
        pgsize: u64,
        pgcount: u64,
        gather: &mut Gather,
    ) -> u64 {
        let cfg = &self.cfg;
        if !pgsize.is_power_of_two()
            || cfg.pgsize_bitmap & pgsize != pgsize
            || pgcount == 0
            || iova & (pgsize - 1) != 0
            || iova >> cfg.ias != 0
        {
            return 0;
        }
        // pgsize is a power of two: shifts, not divisions, on this hot path.
        let pg_shift = pgsize.trailing_zeros();
        // Safe: clip at the top of the IAS. Linux: each one-table call checks only its first
        // IOVA (below), and a run at the start level may pass a small PGD's end.
        let count = if cfg.fidelity == Fidelity::Linux {
            pgcount
        } else {
            pgcount.min(((1u64 << cfg.ias) - iova) >> pg_shift)
        };
        let Some(target) = self.level_of(pgsize).filter(|&l| l >= cfg.geom.start_level) else {
            return 0;
        };
        // FreeEmpty reclaims bottom-up along the walked path, so it needs the whole walk.
        let cached = cfg.reclaim != TableReclaim::FreeEmpty;
        let mut done = 0u64;
        while done < count {
            let at = iova + done * pgsize;
            if at >> cfg.ias != 0 {
                break;
            }
            let (table, lvl) = if cached {
                self.walk_start(at, target)
            } else {
                (self.pgd, cfg.geom.start_level)
            };
            let bytes = if lvl == target {
                // Walk-cache hit on the leaf's table (only in Keep mode, so nothing to
                // reclaim): clear the entries straight away.
                let idx = self.idx(at, lvl);
                let n = (count - done).min(self.run_room(lvl, idx));
                self.clear_entries(table, lvl, idx, n, at, gather)
            } else {
                self.unmap_at(table, lvl, at, pgsize, count - done, gather)
            }
            .unwrap_or(0);
            if bytes == 0 {
                break;
            }
            done += bytes >> pg_shift;
        }
        done * pgsize
    }

    /// Entries from `idx` to the end of a run at level `lvl`: the table's end, or under
    /// [`Fidelity::Linux`] a full table's worth whatever the level (Linux's bound, which at the
    /// start level passes the end of a PGD smaller than a table; past a concatenated PGD's
    /// first table the PGD's own end, see `table/linux.rs`).
    #[inline]
    pub(super) fn run_room(&self, lvl: u32, idx: u64) -> u64 {
        let g = &self.cfg.geom;
        let full_table = 1u64 << g.bits_per_level;
        if self.cfg.fidelity == Fidelity::Linux && idx < full_table {
            full_table - idx
        } else {
            g.entries(lvl) - idx
        }
    }

    /// Unmap from the table at `table` (level `lvl`) downwards; returns bytes unmapped.
    /// Iterative descent, remembering the path so that `FreeEmpty` can reclaim tables the unmap
    /// emptied, bottom-up, on the way back.
    pub(super) fn unmap_at(
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
                    self.split_blk_unmap(slot, pte, lvl + 1, iova, pgsize, count, gather)?;
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
            self.remember_walk(iova, lvl, table);
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
            self.tlb.tlb_flush_walk(iova, size, self.cfg.granule());
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
        let size = self.cfg.geom.block_size(lvl);
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
                        self.tlb.tlb_add_page(gather, va, size);
                    }
                } else if is_table(pte, lvl) {
                    self.forget_walks();
                    self.tlb.tlb_flush_walk(va, size, self.cfg.granule());
                    self.free_subtree(pte_addr(pte), lvl + 1)?;
                }
                i += 1;
            }
        }
        Ok(i * size)
    }

    /// Replace the block `blk_pte` in `slot` by a table of level `lvl` that maps the same
    /// memory except the pages being unmapped (Linux ≤ 6.12 `arm_lpae_split_blk_unmap`).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn split_blk_unmap(
        &self,
        slot: &AtomicU64,
        blk_pte: u64,
        lvl: u32,
        iova: u64,
        pgsize: u64,
        count: u64,
        gather: &mut Gather,
    ) -> Result<u64, PgTableError> {
        if lvl >= MAX_LEVELS {
            return Ok(0);
        }
        let g = self.cfg.geom;
        let Ok(table) = self.alloc.alloc(self.cfg.granule()).map(PhysAddr::as_u64) else {
            return Ok(0);
        };
        let split_sz = g.block_size(lvl);
        let entries = g.entries(lvl);
        let (start, num) = if pgsize == split_sz {
            let s = g.index(iova, lvl);
            (s, count.min(entries - s))
        } else {
            (entries, 0)
        };
        let desc = (blk_pte & ATTR_MASK) | leaf_type(lvl);
        let base = pte_addr(blk_pte);
        let mut i = 0;
        while i < entries {
            let run = self.run(table, i, entries - i)?;
            for e in run {
                if !(start..start + num).contains(&i) {
                    e.store(desc | (base + i * split_sz), Ordering::Relaxed);
                }
                i += 1;
            }
        }
        let mut new = table | TYPE_TABLE;
        if self.cfg.quirks.arm_ns {
            new |= NSTABLE;
        }
        match slot.compare_exchange(blk_pte, new, Ordering::AcqRel, Ordering::Acquire) {
            Err(actual) => {
                self.alloc.free(PhysAddr::new(table), self.cfg.granule())?;
                if is_valid(actual) && is_table(actual, lvl - 1) {
                    self.unmap_at(pte_addr(actual), lvl, iova, pgsize, count, gather)
                } else {
                    Ok(0)
                }
            }
            Ok(_) => {
                if !self.cfg.coherent_walk {
                    slot.store(new | SW_SYNC, Ordering::Release);
                }
                if num > 0 {
                    for k in 0..num {
                        self.tlb.tlb_add_page(gather, iova + k * pgsize, pgsize);
                    }
                    Ok(num * pgsize)
                } else {
                    self.unmap_at(table, lvl, iova, pgsize, count, gather)
                }
            }
        }
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
