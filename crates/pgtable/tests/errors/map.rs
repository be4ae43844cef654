//! Maps that meet something in the way or run out of table memory: the error, and what is left behind.

use super::*;

#[test]
fn overlap_is_eexist_at_every_level() {
    let mut pt = table(48, 48);
    pt.map_pages(
        Iova::new(SZ_2M),
        PhysAddr::new(0),
        PageSize::SZ_4K,
        PageCount::new(4),
        RW,
    )
    .unwrap();
    // Same page.
    assert_eq!(
        pt.map_pages(
            Iova::new(SZ_2M + 3 * SZ_4K),
            PhysAddr::new(0),
            PageSize::SZ_4K,
            PageCount::ONE,
            RW
        ),
        Err(PgTableError::Exists {
            iova: Iova::new(SZ_2M + 3 * SZ_4K)
        })
    );
    // A run whose last page collides maps nothing.
    assert_eq!(
        pt.map_pages(
            Iova::new(SZ_2M - 2 * SZ_4K),
            PhysAddr::new(0),
            PageSize::SZ_4K,
            PageCount::new(3),
            RW
        ),
        Err(PgTableError::Exists {
            iova: Iova::new(SZ_2M)
        })
    );
    assert_eq!(
        pt.iova_to_phys(Iova::new(SZ_2M - 2 * SZ_4K))
            .map_or(0, PhysAddr::as_u64),
        0
    );
    assert_eq!(
        pt.iova_to_phys(Iova::new(SZ_2M - SZ_4K))
            .map_or(0, PhysAddr::as_u64),
        0
    );
    // A page under a block.
    pt.map_pages(
        Iova::new(SZ_1G),
        PhysAddr::new(0),
        PageSize::SZ_2M,
        PageCount::ONE,
        RW,
    )
    .unwrap();
    assert_eq!(
        pt.map_pages(
            Iova::new(SZ_1G + SZ_4K),
            PhysAddr::new(0),
            PageSize::SZ_4K,
            PageCount::ONE,
            RW
        ),
        Err(PgTableError::Exists {
            iova: Iova::new(SZ_1G + SZ_4K)
        })
    );
    // A block over a block, and a 1G block over a 2M block inside a table: the table holding
    // the block is replaced (Linux frees the subtree), which is not an overlap at 1G level.
    assert_eq!(
        pt.map_pages(
            Iova::new(SZ_1G),
            PhysAddr::new(0),
            PageSize::SZ_2M,
            PageCount::ONE,
            RW
        ),
        Err(PgTableError::Exists {
            iova: Iova::new(SZ_1G)
        })
    );
    assert_eq!(
        PgTableError::Exists {
            iova: Iova::new(0x1000)
        }
        .to_string(),
        "iova 0x1000 is already mapped (-EEXIST)"
    );
}

#[test]
fn failed_multi_table_map_is_rolled_back_with_one_flush_all() {
    let alloc = allocator();
    let tlb = CheckingTlb::new(3, PGSIZES_4K);
    let mut pt = PageTable::new(
        PgTableRequest::new(Stage::S1, PGSIZES_4K, 48, 48),
        alloc.clone(),
        tlb.clone(),
    )
    .unwrap();
    // A page in the third last-level table blocks a 1500-page map starting in the first.
    pt.map_pages(
        Iova::new(2 * SZ_2M + 100 * SZ_4K),
        PhysAddr::new(0x5000),
        PageSize::SZ_4K,
        PageCount::ONE,
        RW,
    )
    .unwrap();
    assert_eq!(
        pt.map_pages(
            Iova::new(0),
            PhysAddr::new(0x100_0000),
            PageSize::SZ_4K,
            PageCount::new(1500),
            RW
        ),
        Err(PgTableError::Exists {
            iova: Iova::new(2 * SZ_2M + 100 * SZ_4K)
        })
    );
    for page in (0..1500).step_by(37) {
        let iova = page * SZ_4K;
        let expect = if iova == 2 * SZ_2M + 100 * SZ_4K {
            0x5000
        } else {
            0
        };
        assert_eq!(
            pt.iova_to_phys(Iova::new(iova)).map_or(0, PhysAddr::as_u64),
            expect,
            "page {page}"
        );
    }
    assert_eq!(tlb.take_events(), vec![TlbEvent::FlushAll]);
    assert!(tlb.failures().is_empty());
}

#[test]
fn out_of_table_memory_is_enomem_and_leaks_nothing() {
    use physmem::{FrameAllocator, PhysMem, Region};
    use std::sync::Arc;
    let mem =
        Arc::new(PhysMem::new(&[Region::new(PhysAddr::new(0x8000_0000), 0x10_0000)]).unwrap());
    // Room for the PGD and two more tables only.
    let alloc = Arc::new(FrameAllocator::new(mem, PhysAddr::new(0x8000_0000), 0x3000).unwrap());
    let mut pt = PageTable::new(
        PgTableRequest::new(Stage::S1, PGSIZES_4K, 48, 48),
        alloc.clone(),
        NoTlb,
    )
    .unwrap();
    assert!(matches!(
        pt.map_pages(
            Iova::new(0),
            PhysAddr::new(0),
            PageSize::SZ_4K,
            PageCount::ONE,
            RW
        ),
        Err(PgTableError::NoMemory(_))
    ));
    assert_eq!(pt.iova_to_phys(Iova::new(0)).map_or(0, PhysAddr::as_u64), 0);
    drop(pt);
    assert_eq!(
        alloc.outstanding_bytes(),
        0,
        "drop frees what destroy would"
    );
}

#[test]
fn map_over_an_empty_table_replaces_it_with_a_flush_walk() {
    let alloc = allocator();
    let tlb = CheckingTlb::new(3, PGSIZES_64K);
    let mut pt = PageTable::new(
        PgTableRequest::new(Stage::S2, PGSIZES_64K, 48, 48),
        alloc.clone(),
        tlb.clone(),
    )
    .unwrap();
    let blk = 1u64 << 29;
    pt.map_pages(
        Iova::new(blk),
        PhysAddr::new(0),
        PageSize::new(0x1_0000).unwrap(),
        PageCount::ONE,
        RW,
    )
    .unwrap();
    pt.unmap_pages(
        Iova::new(blk),
        PageSize::new(0x1_0000).unwrap(),
        PageCount::ONE,
        &mut Gather::new(),
    );
    tlb.take_events();
    let with_table = alloc.outstanding_bytes();
    pt.map_pages(
        Iova::new(blk),
        PhysAddr::new(blk),
        PageSize::new(blk).unwrap(),
        PageCount::ONE,
        RW,
    )
    .unwrap();
    assert_eq!(
        tlb.take_events(),
        vec![TlbEvent::FlushWalk {
            iova: blk,
            size: blk,
            granule: 0x1_0000
        }]
    );
    assert_eq!(alloc.outstanding_bytes(), with_table - 0x1_0000);
    assert_eq!(
        pt.iova_to_phys(Iova::new(blk + 0x1234_5678))
            .map_or(0, PhysAddr::as_u64),
        blk + 0x1234_5678
    );
}
