//! The page table itself: map, unmap, translate and free, in simulated physical memory.

use crate::config::{Config, Fidelity, PartialUnmap, PgTableCfg, TableReclaim, MAX_LEVELS};
use crate::error::PgTableError;
use crate::pte::{
    is_leaf, is_table, is_valid, leaf_type, prot_to_pte, pte_addr, ATTR_MASK, NSTABLE, SW_SYNC,
    TYPE_TABLE,
};
use crate::{Gather, Prot, TlbOps};
use physmem::{FrameAllocator, FrameWords, PhysAddr, PhysMem, WORDS_PER_FRAME};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

mod linux;

/// One step of a software walk: the descriptor read at `level` from `table[index]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WalkStep {
    /// Translation level (0..=3).
    pub level: u32,
    /// PA of the table read.
    pub table: u64,
    /// Index of the descriptor in that table.
    pub index: u64,
    /// Descriptor value.
    pub pte: u64,
}

/// The leaf translating an IOVA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Leaf {
    /// Level of the leaf (3 for a page, lower for a block).
    pub level: u32,
    /// PA of the descriptor itself.
    pub pte_pa: u64,
    /// Descriptor value.
    pub pte: u64,
    /// Bytes the leaf maps (page or block size).
    pub size: u64,
}

/// An ARM LPAE (VMSAv8-64 long-descriptor) I/O page table with Linux io-pgtable-arm semantics,
/// stored in simulated physical memory.
///
/// Concurrency: [`map_pages`](Self::map_pages) and [`unmap_pages`](Self::unmap_pages) take
/// `&mut self` (a driver wraps the table in its lock, as Linux's callers serialise per range);
/// [`iova_to_phys`](Self::iova_to_phys) takes `&self`. Hardware models walk the same tables
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
/// use pgtable::{Config, Gather, NoTlb, PageTable, Prot, Stage, PGSIZES_4K};
///
/// let mem = Arc::new(PhysMem::new(&[Region::new(physmem::PhysAddr::new(0x8000_0000), 0x100_0000)]).unwrap());
/// let alloc = Arc::new(FrameAllocator::new(mem, physmem::PhysAddr::new(0x8000_0000), 0x10_0000).unwrap());
/// let cfg = Config::new(Stage::S1, PGSIZES_4K, 48, 48);
/// let mut pt = PageTable::new(cfg, alloc.clone(), NoTlb).unwrap();
///
/// // 1024 pages in one call (crossing a last-level table boundary).
/// let mapped = pt.map_pages(0x10_0000, 0x4000_0000, 0x1000, 1024, Prot::READ | Prot::WRITE).unwrap();
/// assert_eq!(mapped, 0x40_0000);
/// assert_eq!(pt.iova_to_phys(0x12_3456), 0x4002_3456);
/// assert_eq!(pt.cfg().smmu_tcr(), 0x0080_3510);
///
/// let mut gather = Gather::new();
/// assert_eq!(pt.unmap_pages(0x10_0000, 0x1000, 1024, &mut gather), 0x40_0000);
/// assert_eq!(pt.iova_to_phys(0x12_3456), 0);
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
    /// Last tables reached by map/unmap (see [`WalkCache`]).
    cache: WalkCache,
}

/// `level_of_shift` entry of a size no level maps.
const NO_LEVEL: u8 = u8::MAX;

/// Key of an empty [`WalkCache`] slot: no IOVA prefix is this large.
const NO_PREFIX: u64 = u64::MAX;

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
/// write it. `iova_to_phys` (`&self`) only reads it: while any `&self` exists no `&mut self`
/// call can run, so the invariant holds for every reader. `leaf` and `walk` always walk from
/// the PGD (`walk` reports every step; tests use it as the cache-free reference). `unmap` with
/// [`TableReclaim::FreeEmpty`] walks from the PGD too, because reclaim needs the whole path.
/// Relaxed atomics keep the table `Sync` at the cost of plain loads and stores.
struct WalkCache {
    prefix: [AtomicU64; MAX_LEVELS as usize],
    table: [AtomicU64; MAX_LEVELS as usize],
}

impl WalkCache {
    fn new() -> Self {
        WalkCache {
            prefix: std::array::from_fn(|_| AtomicU64::new(NO_PREFIX)),
            table: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }

    /// The table cached at `lvl` for `prefix`, if any.
    #[inline(always)]
    fn get(&self, lvl: u32, prefix: u64) -> Option<u64> {
        let l = lvl as usize & 3;
        if self.prefix[l].load(Ordering::Relaxed) == prefix {
            Some(self.table[l].load(Ordering::Relaxed))
        } else {
            None
        }
    }

    #[inline(always)]
    fn set(&self, lvl: u32, prefix: u64, table: u64) {
        let l = lvl as usize & 3;
        self.prefix[l].store(prefix, Ordering::Relaxed);
        self.table[l].store(table, Ordering::Relaxed);
    }

    #[inline]
    fn clear(&self) {
        for p in &self.prefix {
            p.store(NO_PREFIX, Ordering::Relaxed);
        }
    }
}

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
    pub fn new(config: Config, alloc: Arc<FrameAllocator>, tlb: T) -> Result<Self, PgTableError> {
        let cfg = PgTableCfg::new(config)?;
        let pgd = alloc.alloc(cfg.geom.pgd_alloc_size())?.as_u64();
        let mem = alloc.mem().clone();
        let pt = PageTable {
            cfg,
            alloc,
            mem,
            tlb,
            pgd,
            live: true,
            shift: std::array::from_fn(|l| cfg.geom.level_shift(l as u32)),
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
            entries: std::array::from_fn(|l| cfg.geom.entries(l as u32)),
            cache: WalkCache::new(),
        };
        Ok(pt)
    }

    /// The finalised configuration, with the register values a driver programs.
    pub fn cfg(&self) -> &PgTableCfg {
        &self.cfg
    }

    /// PA of the PGD (Linux's `ttbr` / `vttbr` before the driver adds an ASID).
    pub fn ttbr(&self) -> u64 {
        self.pgd
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
    /// compare-and-exchange. Returns the descriptor now in the slot: ours, or the winner's.
    fn install_table(&self, slot: &AtomicU64, cur: u64) -> Result<u64, PgTableError> {
        let table = self.alloc.alloc(self.cfg.granule())?.as_u64();
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
                Ok(new)
            }
            Err(actual) => {
                self.alloc.free(PhysAddr::new(table), self.cfg.granule())?;
                Ok(actual)
            }
        }
    }

    /// Empty the walk cache: a table is about to be unlinked or freed.
    #[inline]
    fn forget_walks(&self) {
        self.cache.clear();
    }

    /// Where a walk of `iova` down to level `target` can start: the deepest table the walk
    /// cache holds on the way (at most `target`), else the PGD.
    #[inline(always)]
    fn walk_start(&self, iova: u64, target: u32) -> (u64, u32) {
        let start = self.cfg.geom.start_level;
        let mut lvl = target;
        while lvl > start {
            if let Some(table) = self
                .cache
                .get(lvl, iova >> self.shift[(lvl - 1) as usize & 3])
            {
                return (table, lvl);
            }
            lvl -= 1;
        }
        (self.pgd, start)
    }

    /// Record that the walk of `iova` reached `table` at level `lvl` (below the PGD).
    #[inline(always)]
    fn remember_walk(&self, iova: u64, lvl: u32, table: u64) {
        self.cache
            .set(lvl, iova >> self.shift[(lvl - 1) as usize & 3], table);
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

    // ---------------------------------------------------------------------------- map

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
    fn map_fast(
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
    fn map_slow(
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
    fn map_chunk(
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
    fn install_leaves(
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
    fn replace_tables(
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

    // ---------------------------------------------------------------------------- unmap

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
    fn unmap_fast(&self, iova: u64, pgsize: u64, pgcount: u64, gather: &mut Gather) -> (u64, bool) {
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
    fn unmap_slow(&mut self, iova: u64, pgsize: u64, pgcount: u64, gather: &mut Gather) -> u64 {
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
    fn run_room(&self, lvl: u32, idx: u64) -> u64 {
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
    fn unmap_at(
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
    fn flush_reclaimed(&self, iova: u64, lvl: u32) {
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
    fn clear_entries(
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
    fn split_blk_unmap(
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
    fn table_is_empty(&self, table: u64, lvl: u32, hint: u64) -> Result<bool, PgTableError> {
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

    // ---------------------------------------------------------------------------- lookups

    /// The PA `iova` translates to, 0 when unmapped. Beyond the IAS: 0 ([`Fidelity::Safe`]),
    /// or the translation of `iova` with the bits above the IAS ignored ([`Fidelity::Linux`]:
    /// Linux indexes each level with a mask and never looks at them).
    #[inline]
    pub fn iova_to_phys(&self, iova: u64) -> u64 {
        if iova >> self.cfg.ias != 0 && self.cfg.fidelity == Fidelity::Safe {
            return 0;
        }
        // Reading the walk cache is sound here: `&self` excludes the `&mut self` map/unmap
        // calls, the only ones that change tables, and each of them leaves the cache valid.
        let (table, lvl) = self.walk_start(iova, MAX_LEVELS - 1);
        let (mut table, mut lvl) = (table, lvl as usize);
        while lvl < MAX_LEVELS as usize {
            let idx = (iova >> self.shift[lvl]) & self.mask[lvl];
            let pa = table + (idx << 3);
            let Ok(frame) = self.frame(pa) else {
                return 0;
            };
            let pte = frame[((pa >> 3) as usize) & (WORDS_PER_FRAME - 1)].load(Ordering::Acquire);
            if !is_valid(pte) {
                return 0;
            }
            if is_leaf(pte, lvl as u32) {
                return pte_addr(pte) | (iova & ((1u64 << self.shift[lvl]) - 1));
            }
            if !is_table(pte, lvl as u32) {
                return 0;
            }
            table = pte_addr(pte);
            lvl += 1;
        }
        0
    }

    /// The leaf descriptor translating `iova`, if any.
    #[inline]
    pub fn leaf(&self, iova: u64) -> Option<Leaf> {
        let g = &self.cfg.geom;
        if iova >> self.cfg.ias != 0 {
            return None;
        }
        let mut table = self.pgd;
        let mut lvl = g.start_level;
        while lvl < MAX_LEVELS {
            let idx = g.index(iova, lvl);
            let slot = self.slot(table, idx).ok()?;
            let pte = slot.load(Ordering::Acquire);
            if !is_valid(pte) {
                return None;
            }
            if is_leaf(pte, lvl) {
                return Some(Leaf {
                    level: lvl,
                    pte_pa: table + (idx << 3),
                    pte,
                    size: g.block_size(lvl),
                });
            }
            if !is_table(pte, lvl) {
                return None;
            }
            table = pte_addr(pte);
            lvl += 1;
        }
        None
    }

    /// Every descriptor a walk of `iova` reads, from the PGD down to the leaf or the first
    /// invalid entry.
    pub fn walk(&self, iova: u64) -> Vec<WalkStep> {
        let g = &self.cfg.geom;
        let mut steps = Vec::new();
        if iova >> self.cfg.ias != 0 {
            return steps;
        }
        let mut table = self.pgd;
        for lvl in g.start_level..MAX_LEVELS {
            let index = g.index(iova, lvl);
            let Ok(slot) = self.slot(table, index) else {
                break;
            };
            let pte = slot.load(Ordering::Acquire);
            steps.push(WalkStep {
                level: lvl,
                table,
                index,
                pte,
            });
            if !is_valid(pte) || !is_table(pte, lvl) {
                break;
            }
            table = pte_addr(pte);
        }
        steps
    }

    /// Read the descriptor `table[idx]` (for the pretty-printer).
    pub(crate) fn read_entry(&self, table: u64, idx: u64) -> u64 {
        self.slot(table, idx)
            .map(|s| s.load(Ordering::Acquire))
            .unwrap_or(0)
    }

    // ---------------------------------------------------------------------------- teardown

    /// Free every table page, the PGD included (Linux's `free_io_pgtable_ops`). Issues no TLB
    /// maintenance: the driver has already disabled the context.
    pub fn destroy(mut self) -> Result<(), PgTableError> {
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
