//! d71fa842d33c "iommu/io-pgtable-arm: Fix stage-2 map/unmap for concatenated tables": a
//! stage-2 table with a 4K granule and a 40-bit IAS has a level-1 PGD of two concatenated
//! pages (1024 entries). Before the fix, a step at that PGD may touch 512 − index entries,
//! which is zero or negative from index 512 on: map writes nothing and reports that count of
//! 1 GiB pages as mapped (wrapped, as Linux's `size_t`), unmap clears nothing and returns 0.
//! The fix bounds the step by the entries left in the index's own page.

mod common;

use common::{allocator, CheckingTlb, TlbEvent};
use pgtable::{Gather, NoTlb, PageTable, PgTableRequest, PgdRunBound, Prot, Stage, PGSIZES_4K};
use smmu_addr::{Iova, PageCount, PageSize, PhysAddr};

const SZ_1G: u64 = PageSize::SZ_1G.bytes();
const SZ_2M: u64 = PageSize::SZ_2M.bytes();

const RW: Prot = Prot(Prot::READ.0 | Prot::WRITE.0);
/// The example: PGD index 0x3fa = 1018.
const HIGH: u64 = 0xfe_8000_0000;
/// A 1 GiB-aligned PA below 506 GiB, as DRAM is on every built-in board.
const PA: u64 = 0x40_0000_0000;

fn s2_ias40(bound: PgdRunBound) -> PageTable<NoTlb> {
    let mut cfg = PgTableRequest::new(Stage::S2, PGSIZES_4K, 40, 48);
    cfg.pgd_run_bound = bound;
    PageTable::new(cfg, allocator(), NoTlb).unwrap()
}

fn map(pt: &mut PageTable<impl pgtable::TlbOps>, iova: u64, pa: u64, size: u64, n: u64) -> u64 {
    pt.map_pages(
        Iova::new(iova),
        PhysAddr::new(pa),
        PageSize::new(size).unwrap(),
        PageCount::new(n),
        RW,
    )
    .unwrap()
}

#[test]
fn geometry_is_a_two_page_level_1_pgd_with_sl0_1_and_t0sz_24() {
    let pt = s2_ias40(PgdRunBound::TableMinusIndex);
    let c = pt.cfg();
    assert_eq!(c.geom.start_level, 1);
    assert_eq!(c.geom.pgd_entries(), 1024);
    assert_eq!(c.geom.pgd_size(), 0x2000);
    assert_eq!(c.geom.index(HIGH, 1), 1018);
    assert_eq!(c.sl0(), 1);
    // RES1 | PS 48-bit (5) | TG0 4K | SH IS | ORGN/IRGN WBWA | SL0 1 | T0SZ 24.
    assert_eq!(c.vtcr(), 0x8005_3558);
}

#[test]
fn before_the_fix_a_1g_map_at_pgd_index_1018_maps_nothing_and_reports_minus_506_gib() {
    let mut pt = s2_ias40(PgdRunBound::TableMinusIndex);
    let before = pt.allocator().outstanding_bytes();
    let mapped = map(&mut pt, HIGH, PA, SZ_1G, 1);
    assert_eq!(mapped, 0u64.wrapping_sub(506 * SZ_1G));
    assert_eq!(mapped as i64, -506 * SZ_1G as i64);
    assert_eq!(pt.iova_to_phys(Iova::new(HIGH)), None);
    assert_eq!(
        pt.allocator().outstanding_bytes(),
        before,
        "nothing allocated"
    );
    // Exactly at the second page's first entry the bound is 0: nothing, and 0 reported.
    assert_eq!(map(&mut pt, 512 * SZ_1G, PA, SZ_1G, 1), 0);
    // From the last entry of the first page, one page fits and the call ends there.
    assert_eq!(map(&mut pt, 511 * SZ_1G, PA, SZ_1G, 4), SZ_1G);
    assert_eq!(
        pt.iova_to_phys(Iova::new(511 * SZ_1G + 42)),
        Some(PhysAddr::new(PA + 42))
    );
    assert_eq!(pt.iova_to_phys(Iova::new(512 * SZ_1G)), None);
}

#[test]
fn below_the_pgd_level_the_index_only_descends_so_2m_maps_work_before_the_fix() {
    let mut pt = s2_ias40(PgdRunBound::TableMinusIndex);
    assert_eq!(map(&mut pt, HIGH, PA, SZ_2M, 3), 3 * SZ_2M);
    assert_eq!(
        pt.iova_to_phys(Iova::new(HIGH + SZ_2M + 7)),
        Some(PhysAddr::new(PA + SZ_2M + 7))
    );
}

#[test]
fn before_the_fix_a_1g_unmap_over_a_table_at_index_1018_returns_0_and_leaves_it_mapped() {
    let mut pt = s2_ias40(PgdRunBound::TableMinusIndex);
    map(&mut pt, HIGH, PA, SZ_2M, 1);
    let tables = pt.allocator().outstanding_bytes();
    let mut gather = Gather::new();
    let unmapped = pt.unmap_pages(
        Iova::new(HIGH),
        PageSize::SZ_1G,
        PageCount::ONE,
        &mut gather,
    );
    assert_eq!(unmapped, 0);
    assert_eq!(
        pt.iova_to_phys(Iova::new(HIGH)),
        Some(PhysAddr::new(PA)),
        "still mapped"
    );
    assert_eq!(pt.allocator().outstanding_bytes(), tables, "no table freed");
}

#[test]
fn with_the_fix_the_same_map_and_unmap_do_what_they_say() {
    let cfg = {
        let mut c = PgTableRequest::new(Stage::S2, PGSIZES_4K, 40, 48);
        c.pgd_run_bound = PgdRunBound::WithinPage;
        c
    };
    let alloc = allocator();
    let tlb = CheckingTlb::new(1, PGSIZES_4K);
    let mut pt = PageTable::new(cfg, alloc.clone(), tlb.clone()).unwrap();
    let pgd_only = alloc.outstanding_bytes();
    assert_eq!(map(&mut pt, HIGH, PA, SZ_1G, 1), SZ_1G);
    let leaf = pt.leaf(Iova::new(HIGH + 0x1234)).unwrap();
    assert_eq!((leaf.level, leaf.size.bytes()), (1, SZ_1G));
    assert_eq!(
        leaf.pte_pa.as_u64(),
        pt.ttbr().as_u64() + 8 * 1018,
        "the entry sits in the PGD's second page"
    );
    // 1 GiB blocks across the two pages: 510..=513 in one call.
    assert_eq!(map(&mut pt, 510 * SZ_1G, PA, SZ_1G, 4), 4 * SZ_1G);
    let mut gather = Gather::new();
    assert_eq!(
        pt.unmap_pages(
            Iova::new(510 * SZ_1G),
            PageSize::SZ_1G,
            PageCount::new(4),
            &mut gather
        ),
        4 * SZ_1G
    );
    // A table under a 1 GiB unmap at index 1018 is cleared and freed.
    let mut gather = Gather::new();
    assert_eq!(
        pt.unmap_pages(
            Iova::new(HIGH),
            PageSize::SZ_1G,
            PageCount::ONE,
            &mut gather
        ),
        SZ_1G
    );
    map(&mut pt, HIGH, PA, SZ_2M, 1);
    tlb.events.lock().unwrap().clear();
    let mut gather = Gather::new();
    assert_eq!(
        pt.unmap_pages(
            Iova::new(HIGH),
            PageSize::SZ_1G,
            PageCount::ONE,
            &mut gather
        ),
        SZ_1G
    );
    assert_eq!(
        *tlb.events.lock().unwrap(),
        [TlbEvent::FlushWalk {
            iova: HIGH,
            size: SZ_1G,
            granule: 0x1000
        }]
    );
    assert_eq!(pt.iova_to_phys(Iova::new(HIGH)), None);
    assert_eq!(alloc.outstanding_bytes(), pgd_only);
    assert!(tlb.failures().is_empty());
}

#[test]
fn the_bound_only_matters_where_the_pgd_is_concatenated() {
    // Stage 1 at IAS 40 has a 2-entry level-0 PGD: nothing to overrun, same result either way.
    for bound in [PgdRunBound::TableMinusIndex, PgdRunBound::WithinPage] {
        let mut cfg = PgTableRequest::new(Stage::S1, PGSIZES_4K, 40, 48);
        cfg.pgd_run_bound = bound;
        let mut pt = PageTable::new(cfg, allocator(), NoTlb).unwrap();
        assert_eq!(pt.cfg().geom.start_level, 0);
        assert_eq!(map(&mut pt, HIGH, PA, SZ_1G, 1), SZ_1G);
        // Stage 2 at IAS 48: level-0 PGD of 512 entries, not concatenated.
        let mut cfg = PgTableRequest::new(Stage::S2, PGSIZES_4K, 48, 48);
        cfg.pgd_run_bound = bound;
        let mut pt = PageTable::new(cfg, allocator(), NoTlb).unwrap();
        assert_eq!(pt.cfg().geom.start_level, 0);
        assert_eq!(map(&mut pt, HIGH, PA, SZ_1G, 1), SZ_1G);
    }
}
