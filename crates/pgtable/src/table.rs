//! The page table itself: map, unmap, translate and free, in simulated physical memory.

use crate::config::{Fidelity, PgTableCfg, PgTableRequest, PgdRunBound, MAX_LEVELS};
use crate::error::PgTableError;
use crate::pte::{is_table, is_valid, prot_to_pte, pte_addr, Pte, NSTABLE, SW_SYNC, TYPE_TABLE};
use crate::{Prot, TlbOps};
use physmem::{FrameAllocator, FrameWords, PhysMem, WORDS_PER_FRAME};
use smmu_addr::{Iova, PageSize, PhysAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

mod fast;
mod lookup;
mod map;
mod snapshot;
mod split;
mod unmap;
mod walk_cache;

use lookup::LevelDecode;
pub use snapshot::{PageTableSnapshot, PageTableSnapshotError};
pub use split::SplitRace;
use walk_cache::WalkCache;

/// One step of a software walk: the descriptor read at `level` from `table[index]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WalkStep {
    /// Translation level (0..=3).
    pub level: u32,
    /// PA of the table read.
    pub table: PhysAddr,
    /// Index of the descriptor in that table.
    pub index: u64,
    /// Descriptor value.
    pub pte: Pte,
}

/// The leaf translating an IOVA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Leaf {
    /// Level of the leaf (3 for a page, lower for a block).
    pub level: u32,
    /// PA of the descriptor itself.
    pub pte_pa: PhysAddr,
    /// Descriptor value.
    pub pte: Pte,
    /// Bytes the leaf maps (page or block size).
    pub size: PageSize,
}

/// An ARM LPAE (VMSAv8-64 long-descriptor) I/O page table with Linux io-pgtable-arm semantics,
/// stored in simulated physical memory.
///
/// Concurrency: [`map_pages`](Self::map_pages) and [`unmap_pages`](Self::unmap_pages) take
/// `&mut self`; [`unmap_pages_concurrent`](Self::unmap_pages_concurrent) and
/// [`iova_to_phys`](Self::iova_to_phys) take `&self`, so unmaps of disjoint ranges can run at
/// once as in Linux (two of them may race to split one block: [`SplitRace`]). Hardware models walk the same tables
/// concurrently through [`PhysMem`]: every descriptor update is one single-copy-atomic 64-bit
/// store (release), and a new table is zeroed first and then installed with a
/// compare-and-exchange, so a walker sees either the old or the new descriptor and, behind a
/// table descriptor, a fully initialised table.
///
/// Table pages come from the [`FrameAllocator`] and go back to it: when a subtree is replaced or
/// unmapped, on [`destroy`](Self::destroy), and on drop.
///
/// Speed: the table keeps a small software walk cache (the last table reached at each level),
/// so a map, unmap or lookup next to the previous one skips the upper levels, and single-table
/// map/unmap requests take a short path that falls back to the general one for anything
/// unusual. The cache is emptied whenever a table is unlinked, so it never changes a result.
///
/// ```
/// use std::sync::Arc;
/// use physmem::{FrameAllocator, PhysMem, Region};
/// use pgtable::{PgTableRequest, Gather, NoTlb, PageTable, Prot, Stage, PGSIZES_4K};
/// use smmu_addr::{Iova, PageCount, PageSize, PhysAddr};
///
/// let mem = Arc::new(PhysMem::new(&[Region::new(PhysAddr::new(0x8000_0000), 0x100_0000)]).unwrap());
/// let alloc = Arc::new(FrameAllocator::new(mem, PhysAddr::new(0x8000_0000), 0x10_0000).unwrap());
/// let cfg = PgTableRequest::new(Stage::S1, PGSIZES_4K, 48, 48);
/// let mut pt = PageTable::new(cfg, alloc.clone(), NoTlb).unwrap();
///
/// // 1024 pages in one call (crossing a last-level table boundary).
/// let (iova, pa) = (Iova::new(0x10_0000), PhysAddr::new(0x4000_0000));
/// let (sz, n) = (PageSize::SZ_4K, PageCount::new(1024));
/// let mapped = pt.map_pages(iova, pa, sz, n, Prot::READ | Prot::WRITE).unwrap();
/// assert_eq!(mapped, 0x40_0000);
/// assert_eq!(pt.iova_to_phys(Iova::new(0x12_3456)), Some(PhysAddr::new(0x4002_3456)));
/// assert_eq!(pt.cfg().smmu_tcr(), 0x0080_3510);
///
/// let mut gather = Gather::new();
/// assert_eq!(pt.unmap_pages(iova, sz, n, &mut gather), 0x40_0000);
/// assert_eq!(pt.iova_to_phys(Iova::new(0x12_3456)), None);
/// pt.destroy().unwrap();
/// assert_eq!(alloc.outstanding_bytes(), 0);
/// ```
pub struct PageTable<T: TlbOps> {
    cfg: PgTableCfg,
    alloc: Arc<FrameAllocator>,
    mem: Arc<PhysMem>,
    tlb: T,
    pgd: u64,
    live: bool,
    /// Per-level IOVA shift and index mask, from the geometry (saves recomputing per step).
    shift: [u32; MAX_LEVELS as usize],
    mask: [u64; MAX_LEVELS as usize],
    /// Leaf attributes for each of the 64 combinations of the six [`Prot`] flags (what
    /// `prot_to_pte` returns; the stage and quirks are fixed at creation).
    prot_pte: [u64; 64],
    /// Level whose entries map `1 << s` bytes, indexed by `s`; [`NO_LEVEL`] when none does
    /// or `1 << s` is not in the page-size bitmap.
    level_of_shift: [u8; 64],
    /// Entries of a table at each level (the PGD's at the start level).
    entries: [u64; MAX_LEVELS as usize],
    /// The index from which a step at each level has no room ([`PgdRunBound::TableMinusIndex`]
    /// at a concatenated PGD: its second table page); `u64::MAX` where there is none.
    no_room_from: [u64; MAX_LEVELS as usize],
    /// Where the shortcuts' one-table runs at each level must end: the lower of `entries` and
    /// `no_room_from`, precomputed so that `fast.rs` checks a request's room with one compare.
    fast_end: [u64; MAX_LEVELS as usize],
    /// The IOVA bits [`iova_to_phys`](Self::iova_to_phys) refuses: those above the IAS under
    /// [`Fidelity::Safe`], none under [`Fidelity::Linux`] (one test instead of two per lookup).
    refused_iova_bits: u64,
    /// Last tables reached by map/unmap (see [`WalkCache`]).
    cache: WalkCache,
    /// Per-level descriptor decode for [`iova_to_phys`](Self::iova_to_phys).
    decode: LevelDecode,
    /// The granule, as the TLB callbacks take it.
    granule: PageSize,
    /// Bytes one entry of each level maps, as the TLB callbacks take it.
    level_size: [PageSize; MAX_LEVELS as usize],
}

/// `level_of_shift` entry of a size no level maps.
const NO_LEVEL: u8 = u8::MAX;

impl<T: TlbOps> std::fmt::Debug for PageTable<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PageTable")
            .field("cfg", &self.cfg)
            .field("pgd", &format_args!("{:#x}", self.pgd))
            .finish()
    }
}

impl<T: TlbOps> PageTable<T> {
    /// Finalise `config` (see [`PgTableCfg::new`]) and allocate a zeroed PGD from `alloc`.
    pub fn new(
        config: PgTableRequest,
        alloc: Arc<FrameAllocator>,
        tlb: T,
    ) -> Result<Self, PgTableError> {
        let cfg = PgTableCfg::new(config)?;
        let pgd = alloc.alloc(cfg.geom.pgd_alloc_size())?.as_u64();
        let mem = alloc.mem().clone();
        let entries: [u64; MAX_LEVELS as usize] =
            std::array::from_fn(|l| cfg.geom.entries(l as u32));
        let no_room_from = std::array::from_fn(|l| {
            let full_table = 1u64 << cfg.geom.bits_per_level;
            let concatenated = entries[l] > full_table;
            if cfg.pgd_run_bound == PgdRunBound::TableMinusIndex && concatenated {
                full_table
            } else {
                u64::MAX
            }
        });
        let shift = std::array::from_fn(|l| cfg.geom.level_shift(l as u32));
        let decode = LevelDecode::new(&shift);
        let pt = PageTable {
            cfg,
            alloc,
            mem,
            tlb,
            pgd,
            live: true,
            shift,
            mask: std::array::from_fn(|l| cfg.geom.entries(l as u32).wrapping_sub(1)),
            prot_pte: std::array::from_fn(|p| prot_to_pte(cfg.stage, cfg.quirks, Prot(p as u32))),
            level_of_shift: std::array::from_fn(|s| {
                (cfg.geom.start_level..MAX_LEVELS)
                    .find(|&l| {
                        cfg.geom.level_shift(l) as usize == s
                            && cfg.pgsize_bitmap & cfg.geom.block_size(l) != 0
                    })
                    .map_or(NO_LEVEL, |l| l as u8)
            }),
            entries,
            no_room_from,
            fast_end: std::array::from_fn(|l| entries[l].min(no_room_from[l])),
            refused_iova_bits: match cfg.fidelity {
                Fidelity::Safe => u64::MAX.checked_shl(cfg.ias).unwrap_or(0),
                Fidelity::Linux => 0,
            },
            cache: WalkCache::new(&decode.offset_mask),
            decode,
            granule: cfg.geom.granule_size(),
            level_size: std::array::from_fn(|l| cfg.geom.level_page_size(l as u32)),
        };
        Ok(pt)
    }

    /// The finalised configuration, with the register values a driver programs.
    pub fn cfg(&self) -> &PgTableCfg {
        &self.cfg
    }

    /// PA of the PGD (Linux's `ttbr` / `vttbr` before the driver adds an ASID).
    pub fn ttbr(&self) -> PhysAddr {
        PhysAddr::new(self.pgd)
    }

    /// The value for CB_TTBR0: `(asid << 48) | pgd` for stage 1, the VTTBR (`pgd`) for stage 2.
    pub fn smmu_ttbr0(&self, asid: u16) -> u64 {
        match self.cfg.stage {
            crate::Stage::S1 => (u64::from(asid) << 48) | self.pgd,
            crate::Stage::S2 => self.pgd,
        }
    }

    /// The value for CB_TTBR1: `asid << 48` for stage 1 (no tables behind it); 0 for stage 2,
    /// where the driver does not write it.
    pub fn smmu_ttbr1(&self, asid: u16) -> u64 {
        match self.cfg.stage {
            crate::Stage::S1 => u64::from(asid) << 48,
            crate::Stage::S2 => 0,
        }
    }

    /// The TLB callbacks this table issues.
    pub fn tlb(&self) -> &T {
        &self.tlb
    }

    /// The allocator table pages come from.
    pub fn allocator(&self) -> &Arc<FrameAllocator> {
        &self.alloc
    }

    // ---------------------------------------------------------------- memory access helpers

    /// Index of `iova` at level `lvl`.
    #[inline(always)]
    fn idx(&self, iova: u64, lvl: u32) -> u64 {
        (iova >> self.shift[lvl as usize & 3]) & self.mask[lvl as usize & 3]
    }

    /// Bytes one entry of level `lvl` maps.
    #[inline(always)]
    fn bsize(&self, lvl: u32) -> u64 {
        1 << self.shift[lvl as usize & 3]
    }

    /// The words of the frame holding `pa`.
    #[inline(always)]
    fn frame(&self, pa: u64) -> Result<&FrameWords, PgTableError> {
        Ok(self.mem.frame(PhysAddr::new(pa))?)
    }

    /// The descriptor `table[idx]`.
    #[inline(always)]
    fn slot(&self, table: u64, idx: u64) -> Result<&AtomicU64, PgTableError> {
        let pa = table + (idx << 3);
        let frame = self.frame(pa)?;
        Ok(&frame[((pa >> 3) as usize) & (WORDS_PER_FRAME - 1)])
    }

    /// Descriptors `table[idx..idx + n]` that share the first one's 4 KiB frame (at least one).
    #[inline(always)]
    fn run(&self, table: u64, idx: u64, n: u64) -> Result<&[AtomicU64], PgTableError> {
        let pa = table + (idx << 3);
        let frame = self.frame(pa)?;
        let start = ((pa >> 3) as usize) & (WORDS_PER_FRAME - 1);
        let len = (n.max(1) as usize).min(WORDS_PER_FRAME - start);
        Ok(&frame[start..start + len])
    }

    #[inline]
    fn table_size(&self, lvl: u32) -> u64 {
        if lvl == self.cfg.geom.start_level {
            self.cfg.geom.pgd_alloc_size()
        } else {
            self.cfg.granule()
        }
    }

    /// Allocate a zeroed next-level table and install it in `slot` (expected `cur`) with a
    /// compare-and-exchange. Returns the descriptor now in the slot, and whether it is ours
    /// (then the table behind it is empty) rather than a concurrent winner's.
    #[inline(never)]
    fn install_table(&self, slot: &AtomicU64, cur: u64) -> Result<(u64, bool), PgTableError> {
        let table = self.alloc.alloc(self.cfg.granule())?.as_u64();
        self.publish_table(slot, cur, table)
    }

    /// Install the next-level table at `table` (allocated by the caller, its entries already
    /// written) in `slot` (expected `cur`) with a compare-and-exchange; on losing to a concurrent
    /// installer, free it. Returns what [`install_table`](Self::install_table) returns.
    fn publish_table(
        &self,
        slot: &AtomicU64,
        cur: u64,
        table: u64,
    ) -> Result<(u64, bool), PgTableError> {
        let mut new = table | TYPE_TABLE;
        if self.cfg.quirks.arm_ns {
            new |= NSTABLE;
        }
        match slot.compare_exchange(cur, new, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => {
                if !self.cfg.coherent_walk {
                    // Non-coherent protocol: the table has been "cleaned"; mark it so.
                    new |= SW_SYNC;
                    slot.store(new, Ordering::Release);
                }
                Ok((new, true))
            }
            Err(actual) => {
                self.alloc.free(PhysAddr::new(table), self.cfg.granule())?;
                Ok((actual, false))
            }
        }
    }

    /// The level whose entries map `pgsize` bytes (a power of two in the page-size bitmap),
    /// if any.
    #[inline(always)]
    fn level_of(&self, pgsize: u64) -> Option<u32> {
        match self.level_of_shift[pgsize.trailing_zeros() as usize & 63] {
            NO_LEVEL => None,
            l => Some(u32::from(l)),
        }
    }

    /// Entries a one-table step at level `lvl` may touch from `idx`: to the table's end, or
    /// under `Fidelity::Linux` a full table's worth whatever the level — io-pgtable-arm's
    /// bound, which at the start level passes the end of a PGD smaller than a table (the rest
    /// of the PGD's page is written). Past a concatenated PGD's first table page the bound is
    /// the PGD's own end, which is what d71fa842d33c's per-page bound adds up to across steps;
    /// with [`PgdRunBound::TableMinusIndex`] (Linux ≤ v6.12) a step ends with the first page
    /// and has no room after it (see
    /// [`pgd_room_before_fix`](Self::pgd_room_before_fix) for what map makes of that).
    #[inline(always)]
    pub(super) fn run_room(&self, lvl: u32, idx: u64) -> u64 {
        let no_room_from = self.no_room_from[lvl as usize & 3];
        if idx >= no_room_from {
            return 0;
        }
        let g = &self.cfg.geom;
        let full_table = 1u64 << g.bits_per_level;
        let room = if self.cfg.fidelity == Fidelity::Linux && idx < full_table {
            full_table - idx
        } else {
            self.entries[lvl as usize & 3] - idx
        };
        // Before d71fa842d33c a step in a concatenated PGD's first page ends with that page.
        room.min(no_room_from - idx)
    }

    /// Linux ≤ v6.12's bound of a step at level `lvl` from `idx` when it is zero or negative
    /// (a table page's entry count minus an index in a later page of a concatenated PGD);
    /// `None` wherever a step has room.
    #[inline(always)]
    pub(super) fn pgd_room_before_fix(&self, lvl: u32, idx: u64) -> Option<i64> {
        (idx >= self.no_room_from[lvl as usize & 3])
            .then(|| (1i64 << self.cfg.geom.bits_per_level) - idx as i64)
    }

    /// Unlink the table descriptor `pte` in `slot` (at level `lvl`, translating `iova`), flush
    /// its walks and free its pages: what Linux does before a block overwrites a table.
    pub(super) fn free_table_entry(
        &self,
        slot: &AtomicU64,
        pte: u64,
        lvl: u32,
        iova: u64,
    ) -> Result<(), PgTableError> {
        self.forget_walks();
        slot.store(0, Ordering::Release);
        self.tlb
            .tlb_flush_walk(Iova::new(iova), self.bsize(lvl), self.granule);
        self.free_subtree(pte_addr(pte), lvl + 1)
    }

    /// Free the table at `table` (level `lvl`) and every table below it.
    fn free_subtree(&self, table: u64, lvl: u32) -> Result<(), PgTableError> {
        self.forget_walks();
        if lvl < MAX_LEVELS - 1 {
            let n = self.cfg.geom.entries(lvl);
            let mut i = 0;
            while i < n {
                let run = self.run(table, i, n - i)?;
                for e in run {
                    let pte = e.load(Ordering::Acquire);
                    if is_valid(pte) && is_table(pte, lvl) {
                        self.free_subtree(pte_addr(pte), lvl + 1)?;
                    }
                }
                i += run.len() as u64;
            }
        }
        self.alloc
            .free(PhysAddr::new(table), self.table_size(lvl))?;
        Ok(())
    }

    // ---------------------------------------------------------------------------- teardown

    /// Free every table page, the PGD included (Linux's `free_io_pgtable_ops`). Issues no TLB
    /// maintenance: the driver has already disabled the context.
    pub fn destroy(mut self) -> Result<(), PgTableError> {
        self.free_tables()
    }

    /// [`destroy`](Self::destroy) for a table object that something else still holds (a
    /// snapshot, see [`restore`](Self::restore)): every table page goes back to the allocator
    /// now and the object stays behind, owning nothing. It must not be used again unless a
    /// restore to a snapshot taken while it was live brings it back; a second call does
    /// nothing.
    pub fn free_tables(&mut self) -> Result<(), PgTableError> {
        if !self.live {
            return Ok(());
        }
        self.live = false;
        self.free_subtree(self.pgd, self.cfg.geom.start_level)
    }
}

impl<T: TlbOps> Drop for PageTable<T> {
    /// Frees the tables like [`destroy`](PageTable::destroy), ignoring errors (which cannot
    /// happen for tables this crate allocated).
    fn drop(&mut self) {
        if self.live {
            self.live = false;
            let _ = self.free_subtree(self.pgd, self.cfg.geom.start_level);
        }
    }
}
