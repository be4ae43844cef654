//! Error cases: every bad input is a typed error (or 0 for unmap), never a panic.

mod common;

use common::{allocator, CheckingTlb, TlbEvent};
use pgtable::{
    Config, Gather, NoTlb, PageTable, PartialUnmap, PgTableError, Prot, Stage, PGSIZES_4K,
    PGSIZES_64K, SZ_1G, SZ_2M, SZ_4K,
};
use physmem::PhysAddr;

fn table(ias: u32, oas: u32) -> PageTable<NoTlb> {
    PageTable::new(
        Config::new(Stage::S1, PGSIZES_4K, ias, oas),
        allocator(),
        NoTlb,
    )
    .unwrap()
}

const RW: Prot = Prot(Prot::READ.0 | Prot::WRITE.0);

#[test]
fn bad_page_size() {
    let mut pt = table(48, 48);
    for pgsize in [0, 0x800, 0x3000, 0x2000, 0x1_0000, 1 << 39, u64::MAX] {
        assert_eq!(
            pt.map_pages(0, 0, pgsize, 1, RW),
            Err(PgTableError::BadPageSize {
                pgsize,
                bitmap: PGSIZES_4K
            })
        );
        assert_eq!(pt.unmap_pages(0, pgsize, 1, &mut Gather::new()), 0);
    }
    assert_eq!(
        PgTableError::BadPageSize {
            pgsize: 0x2000,
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
        pt.map_pages(1 << 32, 0, SZ_4K, 1, RW),
        Err(PgTableError::IovaRange {
            iova: 1 << 32,
            size: SZ_4K,
            ias: 32
        })
    );
    // The last page fits; one more page does not, nor does an overflowing count.
    assert_eq!(pt.map_pages((1 << 32) - SZ_4K, 0, SZ_4K, 1, RW), Ok(SZ_4K));
    assert!(matches!(
        pt.map_pages((1 << 32) - 2 * SZ_4K, 0, SZ_4K, 3, RW),
        Err(PgTableError::IovaRange { .. })
    ));
    assert!(matches!(
        pt.map_pages(0, 0, SZ_4K, u64::MAX, RW),
        Err(PgTableError::IovaRange { .. })
    ));
    assert_eq!(pt.unmap_pages(1 << 32, SZ_4K, 1, &mut Gather::new()), 0);
    assert_eq!(
        pt.iova_to_phys(1 << 32),
        0,
        "no aliasing of out-of-range IOVAs"
    );
    assert_eq!(pt.iova_to_phys(u64::MAX), 0);
    // Unmap is clipped at the end of the IAS.
    assert_eq!(
        pt.unmap_pages((1 << 32) - SZ_4K, SZ_4K, 10, &mut Gather::new()),
        SZ_4K
    );
}

#[test]
fn pa_beyond_oas() {
    let mut pt = table(48, 40);
    assert_eq!(
        pt.map_pages(0, 1 << 40, SZ_4K, 1, RW),
        Err(PgTableError::PaddrRange {
            paddr: 1 << 40,
            size: SZ_4K,
            oas: 40
        })
    );
    assert!(matches!(
        pt.map_pages(0, (1 << 40) - SZ_4K, SZ_4K, 2, RW),
        Err(PgTableError::PaddrRange { .. })
    ));
    assert_eq!(pt.map_pages(0, (1 << 40) - SZ_4K, SZ_4K, 1, RW), Ok(SZ_4K));
}

#[test]
fn misaligned_and_no_access() {
    let mut pt = table(48, 48);
    assert_eq!(
        pt.map_pages(0x1000, 0, SZ_2M, 1, RW),
        Err(PgTableError::Misaligned {
            iova: 0x1000,
            paddr: 0,
            pgsize: SZ_2M
        })
    );
    assert!(matches!(
        pt.map_pages(0, 0x10, SZ_4K, 1, RW),
        Err(PgTableError::Misaligned { .. })
    ));
    assert_eq!(
        pt.map_pages(0, 0, SZ_4K, 1, Prot::CACHE | Prot::NOEXEC),
        Err(PgTableError::NoAccess)
    );
    assert_eq!(pt.unmap_pages(0x800, SZ_4K, 1, &mut Gather::new()), 0);
    assert_eq!(pt.map_pages(0, 0, SZ_4K, 0, RW), Ok(0));
    assert_eq!(pt.unmap_pages(0, SZ_4K, 0, &mut Gather::new()), 0);
}

#[test]
fn overlap_is_eexist_at_every_level() {
    let mut pt = table(48, 48);
    pt.map_pages(SZ_2M, 0, SZ_4K, 4, RW).unwrap();
    // Same page.
    assert_eq!(
        pt.map_pages(SZ_2M + 3 * SZ_4K, 0, SZ_4K, 1, RW),
        Err(PgTableError::Exists {
            iova: SZ_2M + 3 * SZ_4K
        })
    );
    // A run whose last page collides maps nothing.
    assert_eq!(
        pt.map_pages(SZ_2M - 2 * SZ_4K, 0, SZ_4K, 3, RW),
        Err(PgTableError::Exists { iova: SZ_2M })
    );
    assert_eq!(pt.iova_to_phys(SZ_2M - 2 * SZ_4K), 0);
    assert_eq!(pt.iova_to_phys(SZ_2M - SZ_4K), 0);
    // A page under a block.
    pt.map_pages(SZ_1G, 0, SZ_2M, 1, RW).unwrap();
    assert_eq!(
        pt.map_pages(SZ_1G + SZ_4K, 0, SZ_4K, 1, RW),
        Err(PgTableError::Exists {
            iova: SZ_1G + SZ_4K
        })
    );
    // A block over a block, and a 1G block over a 2M block inside a table: the table holding
    // the block is replaced (Linux frees the subtree), which is not an overlap at 1G level.
    assert_eq!(
        pt.map_pages(SZ_1G, 0, SZ_2M, 1, RW),
        Err(PgTableError::Exists { iova: SZ_1G })
    );
    assert_eq!(
        PgTableError::Exists { iova: 0x1000 }.to_string(),
        "iova 0x1000 is already mapped (-EEXIST)"
    );
}

#[test]
fn failed_multi_table_map_is_rolled_back_with_one_flush_all() {
    let alloc = allocator();
    let tlb = CheckingTlb::new(3, PGSIZES_4K);
    let mut pt = PageTable::new(
        Config::new(Stage::S1, PGSIZES_4K, 48, 48),
        alloc.clone(),
        tlb.clone(),
    )
    .unwrap();
    // A page in the third last-level table blocks a 1500-page map starting in the first.
    pt.map_pages(2 * SZ_2M + 100 * SZ_4K, 0x5000, SZ_4K, 1, RW)
        .unwrap();
    assert_eq!(
        pt.map_pages(0, 0x100_0000, SZ_4K, 1500, RW),
        Err(PgTableError::Exists {
            iova: 2 * SZ_2M + 100 * SZ_4K
        })
    );
    for page in (0..1500).step_by(37) {
        let iova = page * SZ_4K;
        let expect = if iova == 2 * SZ_2M + 100 * SZ_4K {
            0x5000
        } else {
            0
        };
        assert_eq!(pt.iova_to_phys(iova), expect, "page {page}");
    }
    assert_eq!(tlb.take_events(), vec![TlbEvent::FlushAll]);
    assert!(tlb.failures().is_empty());
}

#[test]
fn unmap_of_empty_is_zero_and_stops_at_holes() {
    let mut pt = table(48, 48);
    let mut g = Gather::new();
    assert_eq!(pt.unmap_pages(0, SZ_4K, 1, &mut g), 0);
    assert_eq!(pt.unmap_pages(SZ_1G, SZ_1G, 1, &mut g), 0);
    pt.map_pages(0, 0, SZ_4K, 10, RW).unwrap();
    pt.map_pages(11 * SZ_4K, 0, SZ_4K, 5, RW).unwrap();
    assert_eq!(pt.unmap_pages(0, SZ_4K, 16, &mut g), 10 * SZ_4K);
    assert_eq!(pt.unmap_pages(10 * SZ_4K, SZ_4K, 6, &mut g), 0);
    assert_eq!(pt.unmap_pages(11 * SZ_4K, SZ_4K, 6, &mut g), 5 * SZ_4K);
}

#[test]
fn refuse_mode_does_not_split() {
    let mut cfg = Config::new(Stage::S1, PGSIZES_4K, 48, 48);
    cfg.partial_unmap = PartialUnmap::Refuse;
    let alloc = allocator();
    let mut pt = PageTable::new(cfg, alloc.clone(), NoTlb).unwrap();
    pt.map_pages(SZ_1G, SZ_1G, SZ_2M, 1, RW).unwrap();
    let before = alloc.outstanding_bytes();
    assert_eq!(pt.unmap_pages(SZ_1G, SZ_4K, 1, &mut Gather::new()), 0);
    assert_eq!(pt.iova_to_phys(SZ_1G + 5), SZ_1G + 5);
    assert_eq!(alloc.outstanding_bytes(), before);
    assert_eq!(pt.unmap_pages(SZ_1G, SZ_2M, 1, &mut Gather::new()), SZ_2M);
}

#[test]
fn lazy_gather_skips_add_page() {
    let alloc = allocator();
    let tlb = CheckingTlb::new(3, PGSIZES_4K);
    let mut pt = PageTable::new(
        Config::new(Stage::S1, PGSIZES_4K, 48, 48),
        alloc,
        tlb.clone(),
    )
    .unwrap();
    pt.map_pages(0, 0, SZ_4K, 8, RW).unwrap();
    let mut lazy = Gather {
        queued: true,
        ..Gather::new()
    };
    assert_eq!(pt.unmap_pages(0, SZ_4K, 4, &mut lazy), 4 * SZ_4K);
    assert!(tlb.take_events().is_empty());
    assert_eq!(
        pt.unmap_pages(4 * SZ_4K, SZ_4K, 4, &mut Gather::new()),
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
    let bad = |c: Config| {
        matches!(
            PageTable::new(c, a.clone(), NoTlb),
            Err(PgTableError::BadConfig(_))
        )
    };
    assert!(bad(Config::new(Stage::S1, SZ_2M, 48, 48)));
    assert!(bad(Config::new(Stage::S1, 0, 48, 48)));
    assert!(bad(Config::new(Stage::S1, PGSIZES_4K, 31, 48)));
    assert!(bad(Config::new(Stage::S1, PGSIZES_4K, 48, 39)));
    let mut s2 = Config::new(Stage::S2, PGSIZES_64K, 48, 48);
    s2.quirks.arm_ns = true;
    assert!(bad(s2));
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
        Config::new(Stage::S1, PGSIZES_4K, 48, 48),
        alloc.clone(),
        NoTlb,
    )
    .unwrap();
    assert!(matches!(
        pt.map_pages(0, 0, SZ_4K, 1, RW),
        Err(PgTableError::NoMemory(_))
    ));
    assert_eq!(pt.iova_to_phys(0), 0);
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
        Config::new(Stage::S2, PGSIZES_64K, 48, 48),
        alloc.clone(),
        tlb.clone(),
    )
    .unwrap();
    let blk = 1u64 << 29;
    pt.map_pages(blk, 0, 0x1_0000, 1, RW).unwrap();
    pt.unmap_pages(blk, 0x1_0000, 1, &mut Gather::new());
    tlb.take_events();
    let with_table = alloc.outstanding_bytes();
    pt.map_pages(blk, blk, blk, 1, RW).unwrap();
    assert_eq!(
        tlb.take_events(),
        vec![TlbEvent::FlushWalk {
            iova: blk,
            size: blk,
            granule: 0x1_0000
        }]
    );
    assert_eq!(alloc.outstanding_bytes(), with_table - 0x1_0000);
    assert_eq!(pt.iova_to_phys(blk + 0x1234_5678), blk + 0x1234_5678);
}
