//! The one shortcut in front of the map and unmap paths, kept because the benchmark needs it,
//! and pinned to the general paths by the differential proptest below.
//!
//! Why it exists: `cargo bench -p pgtable --bench pgtable` measured, in one alternating sitting
//! (BENCHMARKS.md, "h24"), the general paths alone at 16.4 ns per single-page map, 9.4 ns per
//! single-page unmap and 21.4 ns per 2 MiB block map+unmap, against 5.1 / 4.7 / 10.5 ns with
//! this shortcut — below 2× Linux's 17.99 / 14.16 / 27.29 ns. The general path pays for its
//! generality on every call (validation in both fidelities, the walk, the
//! what-is-in-the-way pass, loops set up for runs across frames); a one-page call needs none of
//! it.
//!
//! What it does: a valid request whose pages all fall in one table that the walk cache holds
//! (or the PGD), over entries that are all empty (map) or all leaves (unmap). Anything else —
//! any error, any table to create or free, a block to split, `TableReclaim::FreeEmpty` — goes to
//! the general path, which then does the whole request (map) or the rest of it (unmap), so the
//! results, errors, TLB callbacks and tables are the general path's.

use super::{PageTable, NO_LEVEL};
use crate::config::TableReclaim;
use crate::pte::{is_leaf, is_valid, leaf_type};
use crate::{Gather, Prot, TlbOps};
use smmu_addr::{Iova, PageCount, PageSize, PhysAddr};
use std::sync::atomic::Ordering;

/// How far [`PageTable::unmap_fast`] got.
pub(super) struct FastUnmap {
    /// Pages cleared, in order from the first.
    pub(super) pages: u64,
    /// Whether the request is complete (all pages, or a hole: Linux stops at a hole too).
    pub(super) finished: bool,
}

impl<T: TlbOps> PageTable<T> {
    /// The table of `iova`'s entries at level `lvl` when the walk cache holds it (or it is the
    /// PGD).
    #[inline(always)]
    fn cached_table(&self, iova: u64, lvl: u32) -> Option<u64> {
        if lvl == self.cfg.geom.start_level {
            Some(self.pgd)
        } else {
            self.cache.get(lvl, iova)
        }
    }

    /// Whether `pgcount` entries from `idx` at level `lvl` are a non-empty run a shortcut may
    /// take: inside one table and before `no_room_from`. One compare: `pgcount - 1` wraps to
    /// the largest value for an empty run, and the room saturates to zero past `fast_end`.
    #[inline(always)]
    fn fits_fast_run(&self, lvl: u32, idx: u64, pgcount: u64) -> bool {
        pgcount.wrapping_sub(1) < self.fast_end[lvl as usize & 3].saturating_sub(idx)
    }

    /// `map_pages` for a valid request inside one cached table over empty entries; `None`,
    /// having changed nothing, for anything else.
    #[inline(always)]
    pub(super) fn map_fast(
        &self,
        iova: Iova,
        paddr: PhysAddr,
        pgsize: PageSize,
        pgcount: PageCount,
        prot: Prot,
    ) -> Option<u64> {
        let (iova, paddr, pgcount, shift) =
            (iova.as_u64(), paddr.as_u64(), pgcount.get(), pgsize.shift());
        let lvl = self.level_of_shift[shift as usize & 63];
        if lvl == NO_LEVEL
            || (iova | paddr) & pgsize.mask() != 0
            || prot.0 & (Prot::READ.0 | Prot::WRITE.0) == 0
            || iova >> self.cfg.ias != 0
        {
            return None;
        }
        let lvl = u32::from(lvl);
        let idx = self.idx(iova, lvl);
        // Inside one table below the IAS (every table's span ends at or below it), so the IOVA
        // range fits and its size cannot overflow. (A step with no room before d71fa842d33c is
        // the general path's to report: `fast_end` stops there.)
        if !self.fits_fast_run(lvl, idx, pgcount) {
            return None;
        }
        let size = pgcount << shift;
        let oas_end = 1u64 << self.cfg.oas;
        if size > oas_end || paddr > oas_end - size {
            return None;
        }
        let table = self.cached_table(iova, lvl)?;
        let run = self.run(table, idx, pgcount).ok()?;
        if run.len() as u64 != pgcount || run.iter().any(|e| is_valid(e.load(Ordering::Acquire))) {
            return None;
        }
        let desc = self.prot_pte[prot.0 as usize & 63] | leaf_type(lvl);
        let mut pa = paddr;
        for e in run {
            e.store(desc | pa, Ordering::Release);
            pa += pgsize.bytes();
        }
        Some(size)
    }

    /// `unmap_pages` for a valid request inside one cached table, with `TableReclaim::Keep`:
    /// clears leaves in order as the general path does, up to the first hole (finished) or the
    /// first entry that is not a leaf (a table under a block-sized unmap: the general path goes
    /// on from there). Touches nothing for a request outside that case.
    #[inline(always)]
    pub(super) fn unmap_fast(
        &self,
        iova: Iova,
        pgsize: PageSize,
        pgcount: PageCount,
        gather: &mut Gather,
    ) -> FastUnmap {
        let not_here = FastUnmap {
            pages: 0,
            finished: false,
        };
        let (iova, pgcount, shift) = (iova.as_u64(), pgcount.get(), pgsize.shift());
        let lvl = self.level_of_shift[shift as usize & 63];
        if self.cfg.reclaim == TableReclaim::FreeEmpty
            || lvl == NO_LEVEL
            || iova & pgsize.mask() != 0
            || iova >> self.cfg.ias != 0
        {
            return not_here;
        }
        let lvl = u32::from(lvl);
        let idx = self.idx(iova, lvl);
        if !self.fits_fast_run(lvl, idx, pgcount) {
            return not_here;
        }
        let Some(table) = self.cached_table(iova, lvl) else {
            return not_here;
        };
        let Ok(run) = self.run(table, idx, pgcount) else {
            return not_here;
        };
        if run.len() as u64 != pgcount {
            return not_here;
        }
        let mut va = iova;
        for (i, e) in run.iter().enumerate() {
            let pte = e.load(Ordering::Acquire);
            if !is_valid(pte) || !is_leaf(pte, lvl) {
                return FastUnmap {
                    pages: i as u64,
                    finished: !is_valid(pte),
                };
            }
            e.store(0, Ordering::Release);
            if !gather.queued {
                self.tlb.tlb_add_page(gather, Iova::new(va), pgsize);
            }
            va += pgsize.bytes();
        }
        FastUnmap {
            pages: pgcount,
            finished: true,
        }
    }
}

#[cfg(test)]
mod tests {
    //! The shortcut against the general paths: the same operations on three tables, one through
    //! `map_pages`/`unmap_pages` (shortcut first), one through `map_general`/`unmap_general`
    //! only, and one through `map_pages`/`unmap_pages_concurrent` (shortcut, then the general
    //! path without walk-cache fills), must give the same results, the same TLB callbacks and
    //! the same tables.

    use crate::{Fidelity, Gather, PageTable, PgTableRequest, Prot, Stage, TlbOps, PGSIZES_4K};
    use physmem::{FrameAllocator, PhysMem, Region};
    use proptest::prelude::*;
    use smmu_addr::{Iova, PageCount, PageSize, PhysAddr};
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Log(Arc<Mutex<Vec<(u8, u64, u64)>>>);

    impl TlbOps for Log {
        fn tlb_flush_all(&self) {
            self.0.lock().unwrap().push((0, 0, 0));
        }
        fn tlb_flush_walk(&self, iova: Iova, size: u64, _granule: PageSize) {
            self.0.lock().unwrap().push((1, iova.as_u64(), size));
        }
        fn tlb_add_page(&self, _gather: &mut Gather, iova: Iova, granule: PageSize) {
            self.0
                .lock()
                .unwrap()
                .push((2, iova.as_u64(), granule.bytes()));
        }
    }

    #[derive(Debug, Clone)]
    enum Op {
        Map {
            page: u64,
            n: u64,
            block: bool,
            pa: u64,
        },
        Unmap {
            page: u64,
            n: u64,
            block: bool,
            queued: bool,
        },
    }

    fn op() -> impl Strategy<Value = Op> {
        // 4 MiB of IOVA space (two last-level tables), so calls often land in a cached table,
        // sometimes cross into the next, and 2 MiB blocks meet pages.
        prop_oneof![
            (0..1024u64, 1..40u64, any::<bool>(), 0..64u64)
                .prop_map(|(page, n, block, pa)| { Op::Map { page, n, block, pa } }),
            (0..1024u64, 1..40u64, any::<bool>(), any::<bool>()).prop_map(
                |(page, n, block, queued)| Op::Unmap {
                    page,
                    n,
                    block,
                    queued
                }
            ),
        ]
    }

    fn table(fidelity: Fidelity) -> (PageTable<Log>, Log) {
        let base = PhysAddr::new(0x8000_0000);
        let mem = Arc::new(PhysMem::new(&[Region::new(base, 0x100_0000)]).unwrap());
        let alloc = Arc::new(FrameAllocator::new(mem, base, 0x100_0000).unwrap());
        let cfg = PgTableRequest {
            fidelity,
            ..PgTableRequest::new(Stage::S1, PGSIZES_4K, 48, 48)
        };
        let log = Log::default();
        (PageTable::new(cfg, alloc, log.clone()).unwrap(), log)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn shortcut_agrees_with_the_general_paths(
            ops in proptest::collection::vec(op(), 1..60),
            linux in any::<bool>(),
        ) {
            let fidelity = if linux { Fidelity::Linux } else { Fidelity::Safe };
            let (mut fast, fast_log) = table(fidelity);
            let (mut general, general_log) = table(fidelity);
            let (mut shared, shared_log) = table(fidelity);
            const BASE: u64 = 0x40_0000_0000;
            let rw = Prot::READ | Prot::WRITE;
            for op in &ops {
                let (got, want, third) = match *op {
                    Op::Map { page, n, block, pa } => {
                        let (size, iova, n) = if block {
                            (PageSize::SZ_2M, BASE + (page & 1) * (2 << 20), n.min(2))
                        } else {
                            (PageSize::SZ_4K, BASE + page * 0x1000, n)
                        };
                        let pa = PhysAddr::new(pa * (2 << 20));
                        let (iova, n) = (Iova::new(iova), PageCount::new(n));
                        let third = format!("{:?}", shared.map_pages(iova, pa, size, n, rw));
                        (
                            format!("{:?}", fast.map_pages(iova, pa, size, n, rw)),
                            format!("{:?}", general.map_general(iova, pa, size, n, rw)),
                            third,
                        )
                    }
                    Op::Unmap { page, n, block, queued } => {
                        let (size, iova, n) = if block {
                            (PageSize::SZ_2M, BASE + (page & 1) * (2 << 20), n.min(2))
                        } else {
                            (PageSize::SZ_4K, BASE + page * 0x1000, n)
                        };
                        let (iova, n) = (Iova::new(iova), PageCount::new(n));
                        let mut g1 = Gather { queued, ..Gather::new() };
                        let (mut g2, mut g3) = (g1, g1);
                        let third = shared.unmap_pages_concurrent(iova, size, n, &mut g3);
                        (
                            format!("{}", fast.unmap_pages(iova, size, n, &mut g1)),
                            format!("{}", general.unmap_general(iova, size, n, &mut g2)),
                            format!("{third}"),
                        )
                    }
                };
                prop_assert_eq!(&got, &want, "{:?}", op);
                prop_assert_eq!(&third, &want, "{:?}", op);
                prop_assert_eq!(fast.dump(), general.dump(), "{:?}", op);
                prop_assert_eq!(shared.dump(), general.dump(), "{:?}", op);
                prop_assert_eq!(
                    shared_log.0.lock().unwrap().clone(),
                    general_log.0.lock().unwrap().clone(),
                    "{:?}", op
                );
                prop_assert_eq!(
                    fast_log.0.lock().unwrap().clone(),
                    general_log.0.lock().unwrap().clone(),
                    "{:?}", op
                );
            }
        }
    }
}
