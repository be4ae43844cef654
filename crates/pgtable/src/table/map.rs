//! `map_pages`, read top to bottom: check the request, then map it one table at a time — walk
//! down to the leaf level (creating tables), clear what is in the way, write the leaves — and
//! undo everything if a table fails.
//!
//! [`Fidelity`] is a decision at three points of this one path, each marked `Fidelity::Linux`:
//! which checks the request gets up front and which each one-table step gets ([`check_request`],
//! [`check_step`]); how many entries one step may write ([`PageTable::run_room`]); and what
//! happens to tables in the way of a block map ([`PageTable::map_table`]).
//!
//! [`check_request`]: PageTable::check_request
//! [`check_step`]: PageTable::check_step

use super::PageTable;
use crate::config::{Fidelity, MAX_LEVELS};
use crate::error::PgTableError;
use crate::pte::{is_leaf, is_table, is_valid, leaf_type, pte_addr, ADDR_MASK};
use crate::{Gather, Prot, TlbOps};
use smmu_addr::{Iova, PageCount, PageSize, PhysAddr};
use std::sync::atomic::{AtomicU64, Ordering};

/// A request that passed [`PageTable::check_request`], in the plain numbers the walk uses.
#[derive(Clone, Copy)]
struct MapRequest {
    iova: u64,
    paddr: u64,
    pgsize: PageSize,
    pgcount: u64,
    /// The level whose entries are `pgsize` bytes; `None` makes the first step fail with
    /// `BadPageSize` (after the checks Linux makes first).
    level: Option<u32>,
    /// Leaf descriptor bits other than the output address (attributes and type).
    desc: u64,
}

impl<T: TlbOps> PageTable<T> {
    /// Map `pgcount` pages of `pgsize` bytes from `iova` to `paddr` with `prot`; returns the
    /// bytes mapped (`pgsize * pgcount`) — except with [`PgdRunBound::TableMinusIndex`] at a
    /// concatenated PGD's later pages, where it returns what Linux ≤ v6.12 adds to `*mapped`:
    /// the pages mapped before plus (entries per table − PGD index) pages, a count that is zero
    /// or negative, wrapped to `u64` as Linux's `size_t` (the IOMMU core then moves its IOVA
    /// and size by that much).
    ///
    /// [`PgdRunBound::TableMinusIndex`]: crate::PgdRunBound::TableMinusIndex
    ///
    /// Unlike Linux's op, which stops at a table boundary, this loops until every page is
    /// mapped (as the IOMMU core's map loop does around it). It is all-or-nothing: on error,
    /// pages this call had already mapped are unmapped again (with a lazy gather followed by
    /// one `tlb_flush_all`), so no leaf of it remains.
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
    // Inlined like the shortcut it wraps; the general path stays out of line.
    #[inline(always)]
    pub fn map_pages(
        &mut self,
        iova: Iova,
        paddr: PhysAddr,
        pgsize: PageSize,
        pgcount: PageCount,
        prot: Prot,
    ) -> Result<u64, PgTableError> {
        // The one measured shortcut (see `fast.rs`): it does the whole request or nothing.
        if let Some(bytes) = self.map_fast(iova, paddr, pgsize, pgcount, prot) {
            return Ok(bytes);
        }
        self.map_general(iova, paddr, pgsize, pgcount, prot)
    }

    /// The map path itself: every request [`map_fast`](Self::map_fast) does not finish.
    #[inline(never)]
    pub(super) fn map_general(
        &mut self,
        iova: Iova,
        paddr: PhysAddr,
        pgsize: PageSize,
        pgcount: PageCount,
        prot: Prot,
    ) -> Result<u64, PgTableError> {
        let req = self.check_request(iova, paddr, pgsize, pgcount, prot)?;
        let shift = req.pgsize.shift();
        let mut done = 0u64;
        while done < req.pgcount {
            let (iova, paddr) = (req.iova + (done << shift), req.paddr + (done << shift));
            if let Err(e) = self.check_step(req, iova, paddr, done) {
                self.undo_map(req, done);
                return Err(e);
            }
            // Before d71fa842d33c: a block at a concatenated PGD's second table page or later
            // gets a bound of zero or less entries; io-pgtable-arm writes none and adds
            // bound × pgsize to `mapped`, which ends its call (the pages of earlier steps stay).
            if let Some(room) = req
                .level
                .and_then(|lvl| self.pgd_room_before_fix(lvl, self.idx(iova, lvl)))
            {
                return Ok(done
                    .wrapping_add(room as u64)
                    .wrapping_mul(req.pgsize.bytes()));
            }
            let step = self.map_table(req, iova, paddr, req.pgcount - done);
            match step {
                Ok(n) => done += n,
                Err(e) => {
                    self.undo_map(req, done);
                    return Err(e);
                }
            }
        }
        Ok(req.pgcount << shift)
    }

    /// The checks a whole request gets before anything is written.
    ///
    /// `Fidelity::Safe`: the whole IOVA and PA ranges against the IAS and OAS, before the
    /// alignment. `Fidelity::Linux`: the IOMMU core's alignment check first, and only an
    /// overflowing range here; each step checks its own first addresses ([`check_step`]).
    ///
    /// [`check_step`]: PageTable::check_step
    #[inline(always)]
    fn check_request(
        &self,
        iova: Iova,
        paddr: PhysAddr,
        pgsize: PageSize,
        pgcount: PageCount,
        prot: Prot,
    ) -> Result<MapRequest, PgTableError> {
        let cfg = &self.cfg;
        if !pgsize.in_bitmap(cfg.pgsize_bitmap) {
            return Err(PgTableError::BadPageSize {
                pgsize,
                bitmap: cfg.pgsize_bitmap,
            });
        }
        let (va, pa) = (iova.as_u64(), paddr.as_u64());
        let misaligned = (va | pa) & pgsize.mask() != 0;
        // `None` when pgsize * pgcount overflows.
        let size = pgcount.get().checked_mul(pgsize.bytes());
        match cfg.fidelity {
            Fidelity::Safe => {
                // [addr, addr + size) inside [0, 2^bits).
                let fits = |addr: u64, bits: u32| {
                    size.is_some_and(|s| addr >> bits == 0 && s <= (1u64 << bits) - addr)
                };
                if !fits(va, cfg.ias) {
                    return Err(PgTableError::IovaRange {
                        iova,
                        size: size.unwrap_or(u64::MAX),
                        ias: cfg.ias,
                    });
                }
                if !fits(pa, cfg.oas) {
                    return Err(PgTableError::PaddrRange {
                        paddr,
                        size: size.unwrap_or(u64::MAX),
                        oas: cfg.oas,
                    });
                }
                if misaligned {
                    return Err(PgTableError::Misaligned {
                        iova,
                        paddr,
                        pgsize,
                    });
                }
            }
            Fidelity::Linux => {
                if misaligned {
                    return Err(PgTableError::Misaligned {
                        iova,
                        paddr,
                        pgsize,
                    });
                }
                // io-pgtable-arm's own checks of the first IOVA and PA (its WARN and -ERANGE)
                // come before anything about the range's end.
                if va >> cfg.ias != 0 {
                    return Err(PgTableError::IovaRange {
                        iova,
                        size: size.unwrap_or(u64::MAX),
                        ias: cfg.ias,
                    });
                }
                if pa >> cfg.oas != 0 {
                    return Err(PgTableError::PaddrRange {
                        paddr,
                        size: size.unwrap_or(u64::MAX),
                        oas: cfg.oas,
                    });
                }
                let wraps =
                    size.is_none_or(|s| va.checked_add(s).is_none() || pa.checked_add(s).is_none());
                if wraps {
                    return Err(PgTableError::IovaRange {
                        iova,
                        size: u64::MAX,
                        ias: cfg.ias,
                    });
                }
            }
        }
        if prot.0 & (Prot::READ.0 | Prot::WRITE.0) == 0 {
            return Err(PgTableError::NoAccess);
        }
        let level = self.level_of(pgsize.bytes());
        Ok(MapRequest {
            iova: va,
            paddr: pa,
            pgsize,
            pgcount: pgcount.get(),
            level,
            // Attributes precomputed per `prot`; the type bits follow from the level.
            desc: self.prot_pte[prot.0 as usize & 63] | leaf_type(level.unwrap_or(MAX_LEVELS - 1)),
        })
    }

    /// The checks one step (one table's worth, from page `done` of the request at `iova` /
    /// `paddr`) gets. `Fidelity::Safe` checked the whole range up front; `Fidelity::Linux`
    /// checks, as each io-pgtable-arm call does, only the step's first IOVA against the IAS
    /// and first PA against the OAS — so later pages may map past the OAS, and a range
    /// crossing the top of the IAS maps up to it and then fails.
    #[inline(always)]
    fn check_step(
        &self,
        req: MapRequest,
        iova: u64,
        paddr: u64,
        done: u64,
    ) -> Result<(), PgTableError> {
        if self.cfg.fidelity == Fidelity::Safe {
            return Ok(());
        }
        let left = (req.pgcount - done) << req.pgsize.shift();
        if iova >> self.cfg.ias != 0 {
            return Err(PgTableError::IovaRange {
                iova: Iova::new(iova),
                size: left,
                ias: self.cfg.ias,
            });
        }
        if paddr >> self.cfg.oas != 0 {
            return Err(PgTableError::PaddrRange {
                paddr: PhysAddr::new(paddr),
                size: left,
                oas: self.cfg.oas,
            });
        }
        Ok(())
    }

    /// Unmap the first `done` pages of a failed request again (lazily, then one flush-all).
    /// Tables the request created stay, as Linux keeps empty tables.
    #[cold]
    fn undo_map(&mut self, req: MapRequest, done: u64) {
        if done == 0 {
            return;
        }
        let mut lazy = Gather {
            queued: true,
            ..Gather::new()
        };
        self.unmap_pages(
            Iova::new(req.iova),
            req.pgsize,
            PageCount::new(done),
            &mut lazy,
        );
        self.tlb.tlb_flush_all();
    }

    /// One step: map up to `count` pages of the request from `iova` (to `paddr`) into the one
    /// table that holds `iova`'s leaf; returns the pages mapped (≥ 1).
    ///
    /// 1. Walk from the deepest table the walk cache holds down to the leaf level, installing
    ///    a table wherever an entry is empty; a leaf above the leaf level is in the way. A new
    ///    leaves' table that the step fills entirely is written before it is installed
    ///    ([`map_new_full_table`](Self::map_new_full_table)), which ends the step.
    /// 2. Unless the walk has just created the leaves' table, look at the entries they go to ([`check_way`](Self::check_way)). A leaf there
    ///    → `Exists`. A table (a block map over smaller mappings) is freed — `Fidelity::Safe`:
    ///    only after every entry was checked, so a failing map changes nothing;
    ///    `Fidelity::Linux`: at once, so the tables before a leaf are lost, as in
    ///    io-pgtable-arm.
    /// 3. Write the leaves.
    ///
    /// The entries of one step share a 4 KiB frame except in the 16K/64K-granule tables, whose
    /// steps can span frames: `first` is the run in the first frame, `rest` walks the others.
    #[inline(always)]
    fn map_table(
        &self,
        req: MapRequest,
        iova: u64,
        paddr: u64,
        count: u64,
    ) -> Result<u64, PgTableError> {
        let Some(target) = req.level else {
            return Err(PgTableError::BadPageSize {
                pgsize: req.pgsize,
                bitmap: self.cfg.pgsize_bitmap,
            });
        };

        // 1. Down to the table of the leaves.
        let (mut table, mut lvl) = self.walk_start(iova, target);
        // Whether `table` was created by this walk (so it is empty).
        let mut fresh = false;
        while lvl < target {
            let slot = self.slot(table, self.idx(iova, lvl))?;
            let mut pte = slot.load(Ordering::Acquire);
            fresh = false;
            if !is_valid(pte) {
                let whole = self.entries[target as usize & 3];
                if lvl + 1 == target && self.idx(iova, target) == 0 && count >= whole {
                    match self.map_new_full_table(req, slot, pte, iova, paddr, target)? {
                        Ok(n) => return Ok(n),
                        // A concurrent installer's table: the step goes on in it.
                        Err(winner) => pte = winner,
                    }
                } else {
                    (pte, fresh) = self.install_table(slot, pte)?;
                }
            }
            if !is_table(pte, lvl) {
                return Err(PgTableError::Exists {
                    iova: Iova::new(iova),
                });
            }
            table = pte_addr(pte);
            lvl += 1;
            self.remember_walk(iova, lvl, table);
        }
        let idx = self.idx(iova, target);
        let n = count.min(self.run_room(target, idx));
        let size = req.pgsize.bytes();
        let first = self.run(table, idx, n)?;
        let in_first = first.len() as u64;

        // 2. What is in the way (nothing, in a table this walk has just created).
        let mut tables_in_way = !fresh && self.check_way(first, target, iova)?;
        let mut i = if fresh { n } else { in_first };
        while i < n {
            let run = self.run(table, idx + i, n - i)?;
            tables_in_way |= self.check_way(run, target, iova + i * size)?;
            i += run.len() as u64;
        }
        if tables_in_way {
            for k in 0..n {
                let slot = self.slot(table, idx + k)?;
                let pte = slot.load(Ordering::Acquire);
                if is_valid(pte) && is_table(pte, target) {
                    self.free_table_entry(slot, pte, target, iova + k * size)?;
                }
            }
        }

        // 3. The leaves.
        write_leaves(first, req.desc, paddr, size);
        let mut i = in_first;
        while i < n {
            let run = self.run(table, idx + i, n - i)?;
            write_leaves(run, req.desc, paddr.wrapping_add(i * size), size);
            i += run.len() as u64;
        }
        Ok(n)
    }

    /// Step 1 of [`map_table`](Self::map_table) when the leaves' table does not exist yet and
    /// the step fills all of it (a 512-page map over an empty 2 MiB range, say): take a frame
    /// without zeroing it, write every leaf, then publish the table in `slot` (expected `cur`).
    /// Every entry is written, so the table is byte for byte what zeroing, installing and then
    /// writing would leave, in one pass over the frame instead of two (measured in
    /// BENCHMARKS.md, issue 15), and a walker sees no table or the whole one. Returns the pages
    /// mapped, or the descriptor a concurrent installer won `slot` with.
    #[inline(never)]
    fn map_new_full_table(
        &self,
        req: MapRequest,
        slot: &AtomicU64,
        cur: u64,
        iova: u64,
        paddr: u64,
        target: u32,
    ) -> Result<Result<u64, u64>, PgTableError> {
        let n = self.entries[target as usize & 3];
        let size = req.pgsize.bytes();
        let table = self.alloc.alloc_uninit(self.cfg.granule())?.as_u64();
        let mut i = 0;
        while i < n {
            let run = match self.run(table, i, n - i) {
                Ok(run) => run,
                Err(e) => {
                    self.alloc.free(PhysAddr::new(table), self.cfg.granule())?;
                    return Err(e);
                }
            };
            write_leaves(run, req.desc, paddr.wrapping_add(i * size), size);
            i += run.len() as u64;
        }
        let (pte, ours) = self.publish_table(slot, cur, table)?;
        if !ours {
            return Ok(Err(pte));
        }
        self.remember_walk(iova, target, table);
        Ok(Ok(n))
    }

    /// Step 2 of [`map_table`](Self::map_table) for the entries `run` (level `lvl`, the first
    /// translating `iova`): `Exists` at the first leaf; a table is freed now under
    /// `Fidelity::Linux`, and reported (`true`) for freeing later under `Fidelity::Safe`.
    #[inline(always)]
    fn check_way(&self, run: &[AtomicU64], lvl: u32, iova: u64) -> Result<bool, PgTableError> {
        // Usually every entry is empty: one OR over the run decides that.
        if run.iter().fold(0, |acc, e| acc | e.load(Ordering::Acquire)) == 0 {
            return Ok(false);
        }
        self.resolve_way(run, lvl, iova)
    }

    /// The rest of [`check_way`](Self::check_way), for a run with something in it.
    #[cold]
    #[inline(never)]
    fn resolve_way(&self, run: &[AtomicU64], lvl: u32, iova: u64) -> Result<bool, PgTableError> {
        let size = self.bsize(lvl);
        let mut tables = false;
        for (j, e) in run.iter().enumerate() {
            let pte = e.load(Ordering::Acquire);
            let at = iova + j as u64 * size;
            if !is_valid(pte) {
                continue;
            }
            if is_leaf(pte, lvl) {
                return Err(PgTableError::Exists {
                    iova: Iova::new(at),
                });
            }
            match self.cfg.fidelity {
                Fidelity::Linux => self.free_table_entry(e, pte, lvl, at)?,
                Fidelity::Safe => tables = true,
            }
        }
        Ok(tables)
    }
}

/// Step 3 of [`PageTable::map_table`]: leaves `desc` for `run.len()` pages of `size` bytes from
/// `paddr`. The mask only matters under `Fidelity::Linux`, where a PA may run past the OAS
/// (the descriptor keeps its address bits and drops the rest, as Linux's does).
#[inline(always)]
fn write_leaves(run: &[AtomicU64], desc: u64, paddr: u64, size: u64) {
    let mut pa = paddr;
    for e in run {
        e.store(desc | (pa & ADDR_MASK), Ordering::Release);
        pa = pa.wrapping_add(size);
    }
}
