//! The walk cache must never outlive a table. Each scenario removes tables behind cached walks
//! in one of the ways the crate can (a 1 GiB block over a level-2 table, a two-level split of a
//! 1 GiB block, `FreeEmpty` reclaim of last-level and level-2 tables), then keeps mapping and
//! unmapping single pages through the cache. After every step the tables in memory, walked
//! from the TTBR by an independent SMMU-style walker, must translate exactly as expected, and
//! `iova_to_phys` (which may start from the cache) must agree.

mod common;

use common::allocator;
use common::{SZ_1G, SZ_2M, SZ_4K};
use pgtable::{
    Gather, NoTlb, PageTable, PgTableError, PgTableRequest, Prot, Stage, TableReclaim, PGSIZES_4K,
};
use physmem::{FrameAllocator, PhysMem};
use smmu_addr::{Iova, PageCount, PageSize, PhysAddr};
use std::collections::BTreeMap;
use std::sync::Arc;

/// A 4K-granule, 48-bit stage-1 walk from TTBR0, written from the architecture.
fn hw_walk(mem: &PhysMem, ttbr: u64, iova: u64) -> u64 {
    let mut table = ttbr & 0x0000_ffff_ffff_f000;
    for level in 0..4u32 {
        let shift = 39 - 9 * level;
        let desc = mem
            .read_u64(PhysAddr::new(table + ((iova >> shift) & 0x1ff) * 8))
            .expect("tables live in backed memory");
        let size = 1u64 << shift;
        match (desc & 3, level) {
            (1, 1 | 2) | (3, 3) => {
                return (desc & 0x0000_ffff_ffff_f000 & !(size - 1)) | (iova & (size - 1))
            }
            (3, _) => table = desc & 0x0000_ffff_ffff_f000,
            _ => return 0,
        }
    }
    0
}

/// The table under test and what each 4 KiB page should translate to.
struct Fixture {
    alloc: Arc<FrameAllocator>,
    pt: PageTable<NoTlb>,
    want: BTreeMap<u64, u64>,
}

/// Base of the GiB the scenarios work in (a non-zero index at every level).
const G: u64 = 0x40_4000_0000;
const PA: u64 = 0x9_0000_0000;
const RW: Prot = Prot(Prot::READ.0 | Prot::WRITE.0);

impl Fixture {
    fn new(reclaim: TableReclaim) -> Self {
        let alloc = allocator();
        let mut cfg = PgTableRequest::new(Stage::S1, PGSIZES_4K, 48, 48);
        cfg.reclaim = reclaim;
        let pt = PageTable::new(cfg, alloc.clone(), NoTlb).unwrap();
        Fixture {
            alloc,
            pt,
            want: BTreeMap::new(),
        }
    }

    fn map(&mut self, iova: u64, pa: u64, pgsize: u64) {
        assert_eq!(
            self.pt.map_pages(
                Iova::new(iova),
                PhysAddr::new(pa),
                PageSize::new(pgsize).unwrap(),
                PageCount::ONE,
                RW
            ),
            Ok(pgsize)
        );
        for p in (0..pgsize).step_by(SZ_4K as usize) {
            self.want.insert(iova + p, pa + p);
        }
    }

    fn unmap(&mut self, iova: u64, pgsize: u64) {
        assert_eq!(
            self.pt.unmap_pages(
                Iova::new(iova),
                PageSize::new(pgsize).unwrap(),
                PageCount::ONE,
                &mut Gather::new()
            ),
            pgsize
        );
        for p in (0..pgsize).step_by(SZ_4K as usize) {
            self.want.remove(&(iova + p));
        }
    }

    /// Every expected page, plus a sample of the GiB, in memory and through `iova_to_phys`.
    fn check(&self, what: &str) {
        let mem = self.alloc.mem();
        let ttbr = self.pt.ttbr().as_u64();
        let sample = (0..SZ_1G / SZ_4K)
            .step_by(509)
            .map(|p| G + p * SZ_4K)
            .chain(self.want.keys().copied());
        for iova in sample {
            let want = self.want.get(&iova).map_or(0, |pa| pa + 0x18);
            let va = iova + 0x18;
            assert_eq!(hw_walk(mem, ttbr, va), want, "{what}: memory, iova {va:#x}");
            assert_eq!(
                self.pt
                    .iova_to_phys(Iova::new(va))
                    .map_or(0, PhysAddr::as_u64),
                want,
                "{what}: iova_to_phys {va:#x}"
            );
        }
    }

    /// Map (after unmapping, if mapped) and unmap single pages at a few places of the GiB,
    /// checking as it goes.
    fn churn(&mut self, what: &str) {
        for (k, off) in [0x1234_5000u64, 0x1234_6000, 0x0000_0000, 0x3fff_f000]
            .into_iter()
            .enumerate()
        {
            if self.want.contains_key(&(G + off)) {
                self.unmap(G + off, SZ_4K);
            }
            self.map(G + off, PA + 0x1000_0000 + k as u64 * SZ_4K, SZ_4K);
        }
        self.check(&format!("{what}: after single-page maps"));
        self.unmap(G + 0x1234_5000, SZ_4K);
        self.check(&format!("{what}: after a single-page unmap"));
    }
}

#[test]
fn block_over_cached_tables_then_pages_again() {
    let mut f = Fixture::new(TableReclaim::Keep);
    f.churn("pages");
    let tables = f.alloc.outstanding_bytes();
    // The 1 GiB block replaces the level-2 table and the last-level tables below it.
    f.want.retain(|&k, _| !(G..G + SZ_1G).contains(&k));
    f.map(G, PA, SZ_1G);
    assert!(f.alloc.outstanding_bytes() < tables, "tables were freed");
    f.check("1 GiB block over the tables");
    assert_eq!(
        f.pt.map_pages(
            Iova::new(G + 0x1234_5000),
            PhysAddr::new(PA),
            PageSize::SZ_4K,
            PageCount::ONE,
            RW
        ),
        Err(PgTableError::Exists {
            iova: Iova::new(G + 0x1234_5000)
        })
    );
    f.unmap(G, SZ_1G);
    f.check("block unmapped");
    f.churn("pages again");
    // 2 MiB blocks over last-level tables (and the tables' pages freed), then pages again.
    f.want
        .retain(|&k, _| !(G + 0x1220_0000..G + 0x1240_0000).contains(&k));
    f.map(G + 0x1220_0000, PA, SZ_2M);
    f.check("2 MiB block over a cached last-level table");
    f.unmap(G + 0x1220_0000, SZ_2M);
    f.churn("pages after the 2 MiB block");
    f.pt.destroy().unwrap();
    assert_eq!(f.alloc.outstanding_bytes(), 0);
}

#[test]
fn two_level_split_then_pages_in_it() {
    let mut f = Fixture::new(TableReclaim::Keep);
    f.map(G, PA, SZ_1G);
    // One page out of the 1 GiB block: a level-2 table of blocks, one of them split again.
    f.unmap(G + 0x1234_5000, SZ_4K);
    f.check("1 GiB block split twice");
    for k in 0..4u64 {
        f.unmap(G + 0x1234_6000 + k * SZ_4K, SZ_4K);
        f.check("single pages out of the split table");
    }
    f.map(G + 0x1234_5000, PA + 0x7000, SZ_4K);
    f.check("a page back into the hole");
    // A different 2 MiB block of the split GiB, split in turn.
    f.unmap(G + 0x2000_0000, SZ_4K);
    f.check("a second block split");
    f.pt.destroy().unwrap();
    assert_eq!(f.alloc.outstanding_bytes(), 0);
}

#[test]
fn reclaimed_tables_are_not_reused_through_the_cache() {
    let mut f = Fixture::new(TableReclaim::FreeEmpty);
    let pgd = f.alloc.outstanding_bytes();
    f.churn("pages");
    // Unmap page by page: the last unmap of each table frees it, up to the level-1 table.
    let pages: Vec<u64> = f.want.keys().copied().collect();
    for iova in pages {
        f.unmap(iova, SZ_4K);
        f.check("reclaiming unmaps");
    }
    assert_eq!(f.alloc.outstanding_bytes(), pgd, "only the PGD remains");
    f.churn("pages after reclaim");
    // A 1 GiB block split down to a page and emptied by single-page unmaps of the rest of its
    // 2 MiB block and 2 MiB unmaps of the others.
    let pages: Vec<u64> = f.want.keys().copied().collect();
    for iova in pages {
        f.unmap(iova, SZ_4K);
    }
    f.map(G, PA, SZ_1G);
    f.unmap(G + 0x1234_5000, SZ_4K);
    f.check("1 GiB block split under FreeEmpty");
    for p in 0..512u64 {
        let iova = G + 0x1220_0000 + p * SZ_4K;
        if f.want.contains_key(&iova) {
            f.unmap(iova, SZ_4K);
        }
    }
    f.check("split last-level table emptied");
    for r in 0..512u64 {
        let iova = G + r * SZ_2M;
        if f.want.contains_key(&iova) {
            f.unmap(iova, SZ_2M);
        }
    }
    assert!(f.want.is_empty());
    f.check("split GiB emptied");
    assert_eq!(f.alloc.outstanding_bytes(), pgd, "only the PGD remains");
    f.churn("pages after the split GiB went away");
    f.pt.destroy().unwrap();
    assert_eq!(f.alloc.outstanding_bytes(), 0);
}
