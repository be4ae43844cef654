//! Error cases: every bad input is a typed error (or 0 for unmap), never a panic.

mod common;

use common::{allocator, CheckingTlb, TlbEvent};
use common::{SZ_1G, SZ_2M, SZ_4K};
use pgtable::{
    Gather, NoTlb, PageTable, PartialUnmap, PgTableError, PgTableRequest, PgTableRequestError,
    Prot, Stage, PGSIZES_4K, PGSIZES_64K,
};
use smmu_addr::{Iova, PageCount, PageSize, PhysAddr};

fn table(ias: u32, oas: u32) -> PageTable<NoTlb> {
    PageTable::new(
        PgTableRequest::new(Stage::S1, PGSIZES_4K, ias, oas),
        allocator(),
        NoTlb,
    )
    .unwrap()
}

const RW: Prot = Prot(Prot::READ.0 | Prot::WRITE.0);

#[test]
fn bad_page_size() {
    let mut pt = table(48, 48);
    // A size that is not a power of two cannot be asked for at all any more.
    for bytes in [0, 0x3000, u64::MAX] {
        assert!(PageSize::new(bytes).is_err(), "{bytes:#x}");
    }
    for bytes in [0x800, 0x2000, 0x1_0000, 1 << 39] {
        let pgsize = PageSize::new(bytes).unwrap();
        assert_eq!(
            pt.map_pages(Iova::new(0), PhysAddr::new(0), pgsize, PageCount::ONE, RW),
            Err(PgTableError::BadPageSize {
                pgsize,
                bitmap: PGSIZES_4K
            })
        );
        assert_eq!(
            pt.unmap_pages(Iova::new(0), pgsize, PageCount::ONE, &mut Gather::new()),
            0
        );
    }
    assert_eq!(
        PgTableError::BadPageSize {
            pgsize: PageSize::new(0x2000).unwrap(),
            bitmap: PGSIZES_4K
        }
        .to_string(),
        "page size 0x2000 is not in the page-size bitmap 0x40201000 (-EINVAL)"
    );
}

#[test]
fn iova_beyond_ias() {
    let mut pt = table(32, 48);
    assert_eq!(
        pt.map_pages(
            Iova::new(1 << 32),
            PhysAddr::new(0),
            PageSize::SZ_4K,
            PageCount::ONE,
            RW
        ),
        Err(PgTableError::IovaRange {
            iova: Iova::new(1 << 32),
            size: SZ_4K,
            ias: 32
        })
    );
    // The last page fits; one more page does not, nor does an overflowing count.
    assert_eq!(
        pt.map_pages(
            Iova::new((1 << 32) - SZ_4K),
            PhysAddr::new(0),
            PageSize::SZ_4K,
            PageCount::ONE,
            RW
        ),
        Ok(SZ_4K)
    );
    assert!(matches!(
        pt.map_pages(
            Iova::new((1 << 32) - 2 * SZ_4K),
            PhysAddr::new(0),
            PageSize::SZ_4K,
            PageCount::new(3),
            RW
        ),
        Err(PgTableError::IovaRange { .. })
    ));
    assert!(matches!(
        pt.map_pages(
            Iova::new(0),
            PhysAddr::new(0),
            PageSize::SZ_4K,
            PageCount::new(u64::MAX),
            RW
        ),
        Err(PgTableError::IovaRange { .. })
    ));
    assert_eq!(
        pt.unmap_pages(
            Iova::new(1 << 32),
            PageSize::SZ_4K,
            PageCount::ONE,
            &mut Gather::new()
        ),
        0
    );
    assert_eq!(
        pt.iova_to_phys(Iova::new(1 << 32))
            .map_or(0, PhysAddr::as_u64),
        0,
        "no aliasing of out-of-range IOVAs"
    );
    assert_eq!(
        pt.iova_to_phys(Iova::new(u64::MAX))
            .map_or(0, PhysAddr::as_u64),
        0
    );
    // Unmap is clipped at the end of the IAS.
    assert_eq!(
        pt.unmap_pages(
            Iova::new((1 << 32) - SZ_4K),
            PageSize::SZ_4K,
            PageCount::new(10),
            &mut Gather::new()
        ),
        SZ_4K
    );
}

#[test]
fn pa_beyond_oas() {
    let mut pt = table(48, 40);
    assert_eq!(
        pt.map_pages(
            Iova::new(0),
            PhysAddr::new(1 << 40),
            PageSize::SZ_4K,
            PageCount::ONE,
            RW
        ),
        Err(PgTableError::PaddrRange {
            paddr: PhysAddr::new(1 << 40),
            size: SZ_4K,
            oas: 40
        })
    );
    assert!(matches!(
        pt.map_pages(
            Iova::new(0),
            PhysAddr::new((1 << 40) - SZ_4K),
            PageSize::SZ_4K,
            PageCount::new(2),
            RW
        ),
        Err(PgTableError::PaddrRange { .. })
    ));
    assert_eq!(
        pt.map_pages(
            Iova::new(0),
            PhysAddr::new((1 << 40) - SZ_4K),
            PageSize::SZ_4K,
            PageCount::ONE,
            RW
        ),
        Ok(SZ_4K)
    );
}

#[test]
fn misaligned_and_no_access() {
    let mut pt = table(48, 48);
    assert_eq!(
        pt.map_pages(
            Iova::new(0x1000),
            PhysAddr::new(0),
            PageSize::SZ_2M,
            PageCount::ONE,
            RW
        ),
        Err(PgTableError::Misaligned {
            iova: Iova::new(0x1000),
            paddr: PhysAddr::new(0),
            pgsize: PageSize::SZ_2M
        })
    );
    assert!(matches!(
        pt.map_pages(
            Iova::new(0),
            PhysAddr::new(0x10),
            PageSize::SZ_4K,
            PageCount::ONE,
            RW
        ),
        Err(PgTableError::Misaligned { .. })
    ));
    assert_eq!(
        pt.map_pages(
            Iova::new(0),
            PhysAddr::new(0),
            PageSize::SZ_4K,
            PageCount::ONE,
            Prot::CACHE | Prot::NOEXEC
        ),
        Err(PgTableError::NoAccess)
    );
    assert_eq!(
        pt.unmap_pages(
            Iova::new(0x800),
            PageSize::SZ_4K,
            PageCount::ONE,
            &mut Gather::new()
        ),
        0
    );
    assert_eq!(
        pt.map_pages(
            Iova::new(0),
            PhysAddr::new(0),
            PageSize::SZ_4K,
            PageCount::new(0),
            RW
        ),
        Ok(0)
    );
    assert_eq!(
        pt.unmap_pages(
            Iova::new(0),
            PageSize::SZ_4K,
            PageCount::new(0),
            &mut Gather::new()
        ),
        0
    );
}

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

#[test]
fn bad_configurations_are_errors() {
    let a = allocator();
    let err = |c: PgTableRequest| match PageTable::new(c, a.clone(), NoTlb) {
        Err(PgTableError::BadConfig(e)) => {
            // The user sees the typed reason behind one fixed prefix.
            let shown = PgTableError::BadConfig(e).to_string();
            assert_eq!(shown, format!("unsupported page-table configuration: {e}"));
            Some((e, e.to_string()))
        }
        _ => None,
    };
    assert_eq!(
        err(PgTableRequest::new(Stage::S1, SZ_2M, 48, 48)),
        Some((
            PgTableRequestError::NoGranule { bitmap: SZ_2M },
            "page-size bitmap 0x200000 has no usable granule".into()
        ))
    );
    assert_eq!(
        err(PgTableRequest::new(Stage::S1, 0, 48, 48)),
        Some((
            PgTableRequestError::NoGranule { bitmap: 0 },
            "page-size bitmap 0x0 has no usable granule".into()
        ))
    );
    assert_eq!(
        err(PgTableRequest::new(Stage::S1, PGSIZES_4K, 31, 48)),
        Some((
            PgTableRequestError::IasTooSmall { ias: 31 },
            "ias 31 below 32 bits".into()
        ))
    );
    assert_eq!(
        err(PgTableRequest::new(Stage::S1, PGSIZES_4K, 48, 39)),
        Some((
            PgTableRequestError::UnsupportedOas { oas: 39 },
            "oas 39 is not 32, 36, 40, 42, 44 or 48 bits".into()
        ))
    );
    let mut s2 = PgTableRequest::new(Stage::S2, PGSIZES_64K, 48, 48);
    s2.quirks.arm_ns = true;
    assert_eq!(
        err(s2),
        Some((
            PgTableRequestError::Stage2Quirks { quirks: s2.quirks },
            "quirks are stage-1 only".into()
        ))
    );
    assert_eq!(a.outstanding_bytes(), 0);
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
