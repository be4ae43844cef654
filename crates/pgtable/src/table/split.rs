//! Splitting a block on a partial unmap, and what an unmapper that loses the race to split the
//! same block does (85c7a0f1ef62).
use super::PageTable;
use crate::config::MAX_LEVELS;
use crate::error::PgTableError;
use crate::pte::{
    is_table, is_valid, leaf_type, pte_addr, ATTR_MASK, NSTABLE, SW_SYNC, TYPE_TABLE,
};
use crate::{Gather, TlbOps};
use smmu_addr::{Iova, PhysAddr};
use std::sync::atomic::{AtomicU64, Ordering};

/// What an unmapper does when another one replaced the block it is splitting first.
///
/// Since io-pgtable-arm runs without a lock (v4.13, 2c3d273eabe8), two unmaps of different
/// parts of one block can both build a next-level table and try to install it with a
/// compare-and-exchange; the loser frees its own table and goes on with the winner's, which
/// maps everything but the winner's part, the loser's part included.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SplitRace {
    /// Since 85c7a0f1ef62 (v4.20): the loser unmaps its part from the winner's table.
    #[default]
    UnmapFromWinner,
    /// v4.13–v4.19: when the split is to the unmap's own page size (the last step of a split,
    /// where the loser's index into the new table is valid), the loser queues its pages'
    /// invalidations and reports them unmapped without clearing them in the winner's table,
    /// so they stay mapped. A loser splitting to a larger size still unmaps from the winner's
    /// table, as both versions do.
    ReportWithoutClearing,
}

impl<T: TlbOps> PageTable<T> {
    /// Replace the block `blk_pte` in `slot` by a table of level `lvl` that maps the same
    /// memory except the pages being unmapped (Linux ≤ 6.12 `arm_lpae_split_blk_unmap`).
    ///
    /// The compare-and-exchange that installs the table is a scheduling point
    /// ([`smmu_sync::sched_point`]), so the schedule explorer can run another unmapper of the
    /// same block between this one's read of the block and its install.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn split_blk_unmap<const CACHE: bool>(
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
        smmu_sync::sched_point(smmu_sync::Point::Kernel);
        let (table, won) =
            match slot.compare_exchange(blk_pte, new, Ordering::AcqRel, Ordering::Acquire) {
                Err(actual) => {
                    self.alloc.free(PhysAddr::new(table), self.cfg.granule())?;
                    if !is_valid(actual) || !is_table(actual, lvl - 1) {
                        return Ok(0);
                    }
                    (pte_addr(actual), false)
                }
                Ok(_) => {
                    if !self.cfg.coherent_walk {
                        slot.store(new | SW_SYNC, Ordering::Release);
                    }
                    (table, true)
                }
            };
        let done_by_split = won || self.cfg.split_race == SplitRace::ReportWithoutClearing;
        if num > 0 && done_by_split {
            for k in 0..num {
                self.tlb.tlb_add_page(
                    gather,
                    Iova::new(iova + k * pgsize),
                    self.level_size[lvl as usize & 3],
                );
            }
            Ok(num * pgsize)
        } else {
            self.unmap_at::<CACHE>(table, lvl, iova, pgsize, count, gather)
        }
    }
}
