//! Unmaps that find nothing, or a block they may not split, and the invalidations they skip.

use super::*;

#[test]
fn unmap_of_empty_is_zero_and_stops_at_holes() {
    let mut pt = table(48, 48);
    let mut g = Gather::new();
    assert_eq!(
        pt.unmap_pages(Iova::new(0), PageSize::SZ_4K, PageCount::ONE, &mut g),
        0
    );
    assert_eq!(
        pt.unmap_pages(Iova::new(SZ_1G), PageSize::SZ_1G, PageCount::ONE, &mut g),
        0
    );
    pt.map_pages(
        Iova::new(0),
        PhysAddr::new(0),
        PageSize::SZ_4K,
        PageCount::new(10),
        RW,
    )
    .unwrap();
    pt.map_pages(
        Iova::new(11 * SZ_4K),
        PhysAddr::new(0),
        PageSize::SZ_4K,
        PageCount::new(5),
        RW,
    )
    .unwrap();
    assert_eq!(
        pt.unmap_pages(Iova::new(0), PageSize::SZ_4K, PageCount::new(16), &mut g),
        10 * SZ_4K
    );
    assert_eq!(
        pt.unmap_pages(
            Iova::new(10 * SZ_4K),
            PageSize::SZ_4K,
            PageCount::new(6),
            &mut g
        ),
        0
    );
    assert_eq!(
        pt.unmap_pages(
            Iova::new(11 * SZ_4K),
            PageSize::SZ_4K,
            PageCount::new(6),
            &mut g
        ),
        5 * SZ_4K
    );
}

#[test]
fn refuse_mode_does_not_split() {
    let mut cfg = PgTableRequest::new(Stage::S1, PGSIZES_4K, 48, 48);
    cfg.partial_unmap = PartialUnmap::Refuse;
    let alloc = allocator();
    let mut pt = PageTable::new(cfg, alloc.clone(), NoTlb).unwrap();
    pt.map_pages(
        Iova::new(SZ_1G),
        PhysAddr::new(SZ_1G),
        PageSize::SZ_2M,
        PageCount::ONE,
        RW,
    )
    .unwrap();
    let before = alloc.outstanding_bytes();
    assert_eq!(
        pt.unmap_pages(
            Iova::new(SZ_1G),
            PageSize::SZ_4K,
            PageCount::ONE,
            &mut Gather::new()
        ),
        0
    );
    assert_eq!(
        pt.iova_to_phys(Iova::new(SZ_1G + 5))
            .map_or(0, PhysAddr::as_u64),
        SZ_1G + 5
    );
    assert_eq!(alloc.outstanding_bytes(), before);
    assert_eq!(
        pt.unmap_pages(
            Iova::new(SZ_1G),
            PageSize::SZ_2M,
            PageCount::ONE,
            &mut Gather::new()
        ),
        SZ_2M
    );
}

#[test]
fn lazy_gather_skips_add_page() {
    let alloc = allocator();
    let tlb = CheckingTlb::new(3, PGSIZES_4K);
    let mut pt = PageTable::new(
        PgTableRequest::new(Stage::S1, PGSIZES_4K, 48, 48),
        alloc,
        tlb.clone(),
    )
    .unwrap();
    pt.map_pages(
        Iova::new(0),
        PhysAddr::new(0),
        PageSize::SZ_4K,
        PageCount::new(8),
        RW,
    )
    .unwrap();
    let mut lazy = Gather {
        queued: true,
        ..Gather::new()
    };
    assert_eq!(
        pt.unmap_pages(Iova::new(0), PageSize::SZ_4K, PageCount::new(4), &mut lazy),
        4 * SZ_4K
    );
    assert!(tlb.take_events().is_empty());
    assert_eq!(
        pt.unmap_pages(
            Iova::new(4 * SZ_4K),
            PageSize::SZ_4K,
            PageCount::new(4),
            &mut Gather::new()
        ),
        4 * SZ_4K
    );
    let ev = tlb.take_events();
    assert_eq!(ev.len(), 4);
    assert_eq!(
        ev[3],
        TlbEvent::AddPage {
            iova: 7 * SZ_4K,
            granule: SZ_4K
        }
    );
}
