//! `map_pages`: validation, then one walk per run of leaves, from the top of the call down
//! to the descriptors it writes (the Linux-mode variant is in `linux.rs`).
use super::{PageTable, NO_LEVEL};
use crate::config::Fidelity;
use crate::error::PgTableError;
use crate::pte::{is_leaf, is_table, is_valid, leaf_type, pte_addr};
use crate::{Gather, Prot, TlbOps};
use std::sync::atomic::Ordering;

impl<T: TlbOps> PageTable<T> {
    /// Map `pgcount` pages of `pgsize` bytes from `iova` to `paddr` with `prot`; returns the
    /// bytes mapped (`pgsize * pgcount`).
    ///
    /// Unlike Linux's op, which stops at a table boundary, this loops until every page is
    /// mapped. It is all-or-nothing: on error, pages this call had already mapped are unmapped
    /// again (with a lazy gather followed by one `tlb_flush_all`), so nothing of it remains.
    ///
    /// Errors ([`Fidelity::Safe`], the default; [`Fidelity::Linux`] checks less, see there),
    /// checked in this order: `pgsize` not in the bitmap → [`BadPageSize`]; range past
    /// IAS / OAS → [`IovaRange`] / [`PaddrRange`]; unaligned → [`Misaligned`]; neither READ nor
    /// WRITE → [`NoAccess`]; a live leaf in the way → [`Exists`]; no table memory →
    /// [`NoMemory`]. A table in the way of a block is freed (with `tlb_flush_walk`) and
    /// replaced, as Linux does.
    ///
    /// [`BadPageSize`]: PgTableError::BadPageSize
    /// [`IovaRange`]: PgTableError::IovaRange
    /// [`PaddrRange`]: PgTableError::PaddrRange
    /// [`Misaligned`]: PgTableError::Misaligned
    /// [`NoAccess`]: PgTableError::NoAccess
    /// [`Exists`]: PgTableError::Exists
    /// [`NoMemory`]: PgTableError::NoMemory
    #[inline]
    pub fn map_pages(
        &mut self,
        iova: u64,
        paddr: u64,
        pgsize: u64,
        pgcount: u64,
        prot: Prot,
    ) -> Result<u64, PgTableError> {
        match self.map_fast(iova, paddr, pgsize, pgcount, prot) {
            Some(bytes) => Ok(bytes),
            None => self.map_slow(iova, paddr, pgsize, pgcount, prot),
        }
    }

    /// The common case of [`map_pages`](Self::map_pages) in few instructions: a valid request
    /// whose pages all fall in one table the walk cache holds (or the PGD), over entries that
    /// are all invalid. Returns `None`, having changed nothing, for anything else; the general
    /// path then does the whole request (and reports any error) exactly as before.
    #[inline(always)]
    pub(super) fn map_fast(
        &self,
        iova: u64,
        paddr: u64,
        pgsize: u64,
        pgcount: u64,
        prot: Prot,
    ) -> Option<u64> {
        let shift = pgsize.trailing_zeros() & 63;
        let lvl = self.level_of_shift[shift as usize];
        if lvl == NO_LEVEL
            || pgsize != 1 << shift
            || (iova | paddr) & (pgsize - 1) != 0
            || prot.0 & (Prot::READ.0 | Prot::WRITE.0) == 0
            || iova >> self.cfg.ias != 0
        {
            return None;
        }
        let lvl = u32::from(lvl);
        let idx = self.idx(iova, lvl);
        // Inside one table below the IAS limit (every table's span ends at or below it), so
        // the IOVA range is in space; the size cannot overflow either.
        if pgcount == 0 || pgcount > self.entries[lvl as usize & 3] - idx {
            return None;
        }
        let size = pgcount << shift;
        let oas_end = 1u64 << self.cfg.oas;
        if size > oas_end || paddr > oas_end - size {
            return None;
        }
        let table = if lvl == self.cfg.geom.start_level {
            self.pgd
        } else {
            self.cache
                .get(lvl, iova >> self.shift[(lvl - 1) as usize & 3])?
        };
        let run = self.run(table, idx, pgcount).ok()?;
        if run.len() as u64 != pgcount || run.iter().any(|e| is_valid(e.load(Ordering::Acquire))) {
            return None;
        }
        let desc = self.prot_pte[prot.0 as usize & 63] | leaf_type(lvl);
        let mut pa = paddr;
        for e in run {
            e.store(desc | pa, Ordering::Release);
            pa += pgsize;
        }
        Some(size)
    }

    /// The general path of [`map_pages`](Self::map_pages): full validation, any number of
    /// tables, replacement of tables by blocks, errors and rollback.
    #[inline(never)]
    pub(super) fn map_slow(
        &mut self,
        iova: u64,
        paddr: u64,
        pgsize: u64,
        pgcount: u64,
        prot: Prot,
    ) -> Result<u64, PgTableError> {
        if self.cfg.fidelity == Fidelity::Linux {
            return self.map_linux(iova, paddr, pgsize, pgcount, prot);
        }
        let cfg = &self.cfg;
        if !pgsize.is_power_of_two() || cfg.pgsize_bitmap & pgsize != pgsize {
            return Err(PgTableError::BadPageSize {
                pgsize,
                bitmap: cfg.pgsize_bitmap,
            });
        }
        let size = pgsize.checked_mul(pgcount);
        let in_space = |addr: u64, bits: u32| {
            size.is_some_and(|s| s <= 1u64 << bits && addr <= (1u64 << bits) - s)
        };
        if !in_space(iova, cfg.ias) {
            return Err(PgTableError::IovaRange {
                iova,
                size: size.unwrap_or(u64::MAX),
                ias: cfg.ias,
            });
        }
        if !in_space(paddr, cfg.oas) {
            return Err(PgTableError::PaddrRange {
                paddr,
                size: size.unwrap_or(u64::MAX),
                oas: cfg.oas,
            });
        }
        if (iova | paddr) & (pgsize - 1) != 0 {
            return Err(PgTableError::Misaligned {
                iova,
                paddr,
                pgsize,
            });
        }
        if prot.0 & (Prot::READ.0 | Prot::WRITE.0) == 0 {
            return Err(PgTableError::NoAccess);
        }
        // prot_to_pte only looks at the six flags: precomputed for each combination.
        let attrs = self.prot_pte[prot.0 as usize & 63];
        let mut done = 0u64;
        while done < pgcount {
            let off = done * pgsize;
            match self.map_chunk(iova + off, paddr + off, pgsize, pgcount - done, attrs) {
                Ok(n) => done += n,
                Err(e) => {
                    if done > 0 {
                        let mut lazy = Gather {
                            queued: true,
                            ..Gather::new()
                        };
                        self.unmap_pages(iova, pgsize, done, &mut lazy);
                        self.tlb.tlb_flush_all();
                    }
                    return Err(e);
                }
            }
        }
        Ok(pgcount * pgsize)
    }

    /// Map up to `count` pages that fit in the table holding `iova`'s leaf; returns the number
    /// of pages mapped (≥ 1). Starts from the walk cache and refills it on the way down.
    #[inline]
    pub(super) fn map_chunk(
        &self,
        iova: u64,
        paddr: u64,
        pgsize: u64,
        count: u64,
        attrs: u64,
    ) -> Result<u64, PgTableError> {
        let g = self.cfg.geom;
        let target = match self.level_of(pgsize) {
            Some(l) if l >= g.start_level => l,
            _ => {
                return Err(PgTableError::BadPageSize {
                    pgsize,
                    bitmap: self.cfg.pgsize_bitmap,
                })
            }
        };
        let (mut table, mut lvl) = self.walk_start(iova, target);
        while lvl < target {
            let slot = self.slot(table, self.idx(iova, lvl))?;
            let mut pte = slot.load(Ordering::Acquire);
            if !is_valid(pte) {
                pte = self.install_table(slot, pte)?;
            }
            if !is_table(pte, lvl) {
                // A block (or anything but a table) already covers this IOVA.
                return Err(PgTableError::Exists { iova });
            }
            table = pte_addr(pte);
            lvl += 1;
            self.remember_walk(iova, lvl, table);
        }
        let idx = self.idx(iova, target);
        let n = count.min(g.entries(target) - idx);
        self.install_leaves(table, target, idx, n, iova, paddr, attrs)?;
        Ok(n)
    }

    /// Write `n` leaves `table[idx..idx + n]` at level `lvl`: first check that none is a live
    /// leaf (→ `Exists`), then free tables in the way, then store the leaves.
    #[allow(clippy::too_many_arguments)]
    #[inline]
    pub(super) fn install_leaves(
        &self,
        table: u64,
        lvl: u32,
        idx: u64,
        n: u64,
        iova: u64,
        paddr: u64,
        attrs: u64,
    ) -> Result<(), PgTableError> {
        let size = self.cfg.geom.block_size(lvl);
        let desc = attrs | leaf_type(lvl);
        let first = self.run(table, idx, n)?;
        if first.len() as u64 == n {
            // Common case: the whole run shares one frame.
            let mut tables = false;
            for (i, e) in first.iter().enumerate() {
                let pte = e.load(Ordering::Acquire);
                if is_valid(pte) {
                    if is_leaf(pte, lvl) {
                        return Err(PgTableError::Exists {
                            iova: iova + i as u64 * size,
                        });
                    }
                    tables = true;
                }
            }
            if tables {
                self.replace_tables(table, lvl, idx, n, iova)?;
            }
            let mut pa = paddr;
            for e in first {
                e.store(desc | pa, Ordering::Release);
                pa += size;
            }
            return Ok(());
        }
        let mut tables = false;
        let mut i = 0;
        while i < n {
            let run = self.run(table, idx + i, n - i)?;
            for (j, e) in run.iter().enumerate() {
                let pte = e.load(Ordering::Acquire);
                if is_valid(pte) {
                    if is_leaf(pte, lvl) {
                        return Err(PgTableError::Exists {
                            iova: iova + (i + j as u64) * size,
                        });
                    }
                    tables = true;
                }
            }
            i += run.len() as u64;
        }
        if tables {
            self.replace_tables(table, lvl, idx, n, iova)?;
        }
        let mut i = 0;
        let mut pa = paddr;
        while i < n {
            let run = self.run(table, idx + i, n - i)?;
            for e in run {
                e.store(desc | pa, Ordering::Release);
                pa += size;
            }
            i += run.len() as u64;
        }
        Ok(())
    }

    /// Clear the table descriptors among `table[idx..idx + n]`, flush their walks and free
    /// their subtrees (what Linux does before a block overwrites a table).
    pub(super) fn replace_tables(
        &self,
        table: u64,
        lvl: u32,
        idx: u64,
        n: u64,
        iova: u64,
    ) -> Result<(), PgTableError> {
        let size = self.cfg.geom.block_size(lvl);
        for i in 0..n {
            let slot = self.slot(table, idx + i)?;
            let pte = slot.load(Ordering::Acquire);
            if is_valid(pte) && is_table(pte, lvl) {
                self.forget_walks();
                slot.store(0, Ordering::Release);
                self.tlb
                    .tlb_flush_walk(iova + i * size, size, self.cfg.granule());
                self.free_subtree(pte_addr(pte), lvl + 1)?;
            }
        }
        Ok(())
    }
}
