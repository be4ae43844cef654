//! `Fidelity::Linux` against `Fidelity::Safe`: each place where Linux io-pgtable-arm (v6.1 to
//! v6.12, under the IOMMU core's map loop) checks less than smmu-lab does, pinned by its
//! minimal case, with what each mode returns and leaves in the tables.

mod common;

use common::{SZ_1G, SZ_4K};
use pgtable::{
    Fidelity, Gather, NoTlb, PageTable, PgTableError, PgTableRequest, Prot, Stage, PGSIZES_16K,
    PGSIZES_4K,
};
use smmu_addr::{Iova, PageCount, PageSize, PhysAddr};
use std::sync::Arc;

const RW: Prot = Prot(Prot::READ.0 | Prot::WRITE.0);

fn table(
    stage: Stage,
    bitmap: u64,
    ias: u32,
    oas: u32,
    fidelity: Fidelity,
) -> (PageTable<NoTlb>, Arc<physmem::FrameAllocator>) {
    let alloc = common::allocator();
    let cfg = PgTableRequest {
        fidelity,
        ..PgTableRequest::new(stage, bitmap, ias, oas)
    };
    (PageTable::new(cfg, alloc.clone(), NoTlb).unwrap(), alloc)
}

const MODES: [Fidelity; 2] = [Fidelity::Safe, Fidelity::Linux];

/// Item 1: a block map over a table and then a leaf frees the table before it meets the leaf.
#[test]
fn a_failed_block_map_destroys_the_mappings_under_a_table_it_met_first() {
    for mode in MODES {
        let (mut pt, _a) = table(Stage::S2, PGSIZES_16K, 40, 40, mode);
        pt.map_pages(
            Iova::new(0xfff063c000),
            PhysAddr::new(0x8000_4000),
            PageSize::SZ_16K,
            PageCount::ONE,
            RW,
        )
        .unwrap();
        pt.map_pages(
            Iova::new(0xfff2000000),
            PhysAddr::new(0x9000_0000),
            PageSize::SZ_32M,
            PageCount::ONE,
            RW,
        )
        .unwrap();
        let r = pt.map_pages(
            Iova::new(0xfff0000000),
            PhysAddr::new(0xa000_0000),
            PageSize::SZ_32M,
            PageCount::new(2),
            RW,
        );
        assert_eq!(
            r,
            Err(PgTableError::Exists {
                iova: Iova::new(0xfff2000000)
            }),
            "{mode:?}"
        );
        let left = pt
            .iova_to_phys(Iova::new(0xfff063c000))
            .map_or(0, PhysAddr::as_u64);
        match mode {
            Fidelity::Safe => assert_eq!(left, 0x8000_4000, "nothing changed"),
            Fidelity::Linux => assert_eq!(left, 0, "the 16K page went with its table"),
        }
        assert_eq!(
            pt.iova_to_phys(Iova::new(0xfff2000000))
                .map_or(0, PhysAddr::as_u64),
            0x9000_0000,
            "{mode:?}"
        );
    }
}

/// Item 2: only the first PA of a call is checked against the OAS.
#[test]
fn only_the_first_pa_is_checked_against_the_oas() {
    for mode in MODES {
        let (mut pt, _a) = table(Stage::S1, PGSIZES_4K, 32, 32, mode);
        let r = pt.map_pages(
            Iova::new(0x386af000),
            PhysAddr::new(0xfffff000),
            PageSize::SZ_4K,
            PageCount::new(3),
            RW,
        );
        match mode {
            Fidelity::Safe => {
                assert_eq!(
                    r,
                    Err(PgTableError::PaddrRange {
                        paddr: PhysAddr::new(0xfffff000),
                        size: 0x3000,
                        oas: 32
                    })
                );
                assert_eq!(
                    pt.iova_to_phys(Iova::new(0x386af000))
                        .map_or(0, PhysAddr::as_u64),
                    0
                );
            }
            Fidelity::Linux => {
                assert_eq!(r, Ok(0x3000));
                // Pages 2 and 3 map above 4 GiB, past the 32-bit OAS.
                assert_eq!(
                    pt.iova_to_phys(Iova::new(0x386b0000))
                        .map_or(0, PhysAddr::as_u64),
                    0x1_0000_0000
                );
                assert_eq!(
                    pt.iova_to_phys(Iova::new(0x386b1000))
                        .map_or(0, PhysAddr::as_u64),
                    0x1_0000_1000
                );
            }
        }
    }
}

/// Item 3: where a leaf is in the way and the range also leaves the IAS, Linux meets the leaf
/// first (-EEXIST); smmu-lab checks the range first (-ERANGE).
#[test]
fn exists_wins_over_out_of_range_in_linux() {
    for mode in MODES {
        let (mut pt, _a) = table(Stage::S1, PGSIZES_4K, 32, 32, mode);
        pt.map_pages(
            Iova::new(0xfffff000),
            PhysAddr::new(0x8000_0000),
            PageSize::SZ_4K,
            PageCount::ONE,
            RW,
        )
        .unwrap();
        let r = pt.map_pages(
            Iova::new(0xfffff000),
            PhysAddr::new(0x8010_0000),
            PageSize::SZ_4K,
            PageCount::new(2),
            RW,
        );
        let want = match mode {
            Fidelity::Safe => PgTableError::IovaRange {
                iova: Iova::new(0xfffff000),
                size: 0x2000,
                ias: 32,
            },
            Fidelity::Linux => PgTableError::Exists {
                iova: Iova::new(0xfffff000),
            },
        };
        assert_eq!(r, Err(want));
    }
}

/// Item 4: a range crossing the top of the IAS maps up to it, fails, is unmapped again, and
/// its new tables stay behind.
#[test]
fn a_range_crossing_the_top_of_the_ias_leaves_empty_tables_in_linux() {
    for mode in MODES {
        let (mut pt, alloc) = table(Stage::S1, PGSIZES_4K, 32, 32, mode);
        let before = alloc.outstanding_bytes();
        let r = pt.map_pages(
            Iova::new(0xfffff000),
            PhysAddr::new(0x8000_0000),
            PageSize::SZ_4K,
            PageCount::new(2),
            RW,
        );
        let tables = alloc.outstanding_bytes() - before;
        match mode {
            Fidelity::Safe => {
                assert_eq!(
                    r,
                    Err(PgTableError::IovaRange {
                        iova: Iova::new(0xfffff000),
                        size: 0x2000,
                        ias: 32
                    })
                );
                assert_eq!(tables, 0, "nothing allocated");
            }
            Fidelity::Linux => {
                // The second call starts at 4 GiB: out of range.
                assert_eq!(
                    r,
                    Err(PgTableError::IovaRange {
                        iova: Iova::new(0x1_0000_0000),
                        size: 0x1000,
                        ias: 32
                    })
                );
                assert_eq!(
                    tables,
                    2 * SZ_4K,
                    "a level-2 and a level-3 table, both empty"
                );
            }
        }
        assert_eq!(
            pt.iova_to_phys(Iova::new(0xfffff000))
                .map_or(0, PhysAddr::as_u64),
            0,
            "{mode:?}"
        );
    }
}

/// Item 4, the stage-1 IAS-32 PGD of 4 entries: one call of 1G x 3 at 3 GiB writes entries 3,
/// 4 and 5, the last two past the PGD, into the rest of the page it was allocated in.
#[test]
fn a_run_at_the_start_level_overruns_a_small_pgd_in_linux() {
    for mode in MODES {
        let (mut pt, alloc) = table(Stage::S1, PGSIZES_4K, 32, 32, mode);
        let r = pt.map_pages(
            Iova::new(0xc000_0000),
            PhysAddr::new(0),
            PageSize::SZ_1G,
            PageCount::new(3),
            RW,
        );
        let pgd = pt.ttbr().as_u64();
        let word = |i: u64| {
            let pa = pgd + 8 * i;
            alloc.mem().frame(physmem::PhysAddr::new(pa)).unwrap()[((pa >> 3) & 511) as usize]
                .load(std::sync::atomic::Ordering::Acquire)
        };
        match mode {
            Fidelity::Safe => {
                assert!(matches!(r, Err(PgTableError::IovaRange { .. })), "{r:?}");
                assert_eq!((word(3), word(4), word(5)), (0, 0, 0));
            }
            Fidelity::Linux => {
                assert_eq!(r, Ok(3 * SZ_1G));
                assert_eq!(
                    pt.iova_to_phys(Iova::new(0xc000_0000))
                        .map_or(0, PhysAddr::as_u64),
                    0
                );
                // Entries 4 and 5 hold blocks for 1 GiB and 2 GiB that no walk reaches.
                use pgtable::{pte::PteKind, Pte};
                let leaf = |pa| PteKind::Leaf(PhysAddr::new(pa));
                assert_eq!(Pte::from_bits(word(4)).kind(1), leaf(0x4000_0000));
                assert_eq!(Pte::from_bits(word(5)).kind(1), leaf(0x8000_0000));
            }
        }
        // Unmapping the same range: Linux clears the same three entries; Safe, which mapped
        // nothing, unmaps nothing (the range is clipped at the IAS, and entry 3 is empty).
        let mut g = Gather::new();
        let unmapped = pt.unmap_pages(
            Iova::new(0xc000_0000),
            PageSize::SZ_1G,
            PageCount::new(3),
            &mut g,
        );
        match mode {
            Fidelity::Safe => assert_eq!(unmapped, 0),
            Fidelity::Linux => assert_eq!(unmapped, 3 * SZ_1G),
        }
        assert_eq!((word(3), word(4), word(5)), (0, 0, 0), "{mode:?}");
    }
}

/// Unmapping a range that crosses the top of the IAS stops there in both modes.
#[test]
fn an_unmap_crossing_the_top_of_the_ias_stops_there() {
    for mode in MODES {
        let (mut pt, _a) = table(Stage::S1, PGSIZES_4K, 32, 32, mode);
        pt.map_pages(
            Iova::new(0xffffe000),
            PhysAddr::new(0x8000_0000),
            PageSize::SZ_4K,
            PageCount::new(2),
            RW,
        )
        .unwrap();
        let mut g = Gather::new();
        assert_eq!(
            pt.unmap_pages(
                Iova::new(0xffffe000),
                PageSize::SZ_4K,
                PageCount::new(4),
                &mut g
            ),
            2 * SZ_4K,
            "{mode:?}"
        );
    }
}

/// Item 5: `iova_to_phys` beyond the IAS ignores the high bits in Linux.
#[test]
fn iova_to_phys_beyond_the_ias_ignores_the_high_bits_in_linux() {
    for mode in MODES {
        let (mut pt, _a) = table(Stage::S1, PGSIZES_4K, 32, 32, mode);
        pt.map_pages(
            Iova::new(0x386af000),
            PhysAddr::new(0x8000_0000),
            PageSize::SZ_4K,
            PageCount::ONE,
            RW,
        )
        .unwrap();
        let got = pt
            .iova_to_phys(Iova::new(0x1_386a_f123))
            .map_or(0, PhysAddr::as_u64);
        match mode {
            Fidelity::Safe => assert_eq!(got, 0),
            Fidelity::Linux => assert_eq!(got, 0x8000_0123),
        }
        let mut g = Gather::new();
        assert_eq!(
            pt.unmap_pages(
                Iova::new(0x386af000),
                PageSize::SZ_4K,
                PageCount::ONE,
                &mut g
            ),
            SZ_4K
        );
    }
}

/// Valid requests leave the same tables in both modes.
#[test]
fn valid_requests_agree() {
    let (mut safe, _a) = table(Stage::S1, PGSIZES_4K, 48, 48, Fidelity::Safe);
    let (mut linux, _b) = table(Stage::S1, PGSIZES_4K, 48, 48, Fidelity::Linux);
    for pt in [&mut safe, &mut linux] {
        pt.map_pages(
            Iova::new(0x10_0000),
            PhysAddr::new(0x4000_0000),
            PageSize::SZ_4K,
            PageCount::new(1024),
            RW,
        )
        .unwrap();
        pt.map_pages(
            Iova::new(0x4000_0000),
            PhysAddr::new(0x8000_0000),
            PageSize::new(2 << 20).unwrap(),
            PageCount::new(3),
            RW,
        )
        .unwrap();
        // A block over a table of pages: both replace the table.
        pt.map_pages(
            Iova::new(0),
            PhysAddr::new(0x1000_0000),
            PageSize::new(2 << 20).unwrap(),
            PageCount::ONE,
            RW,
        )
        .unwrap();
    }
    for iova in [0x10_0000, 0x12_3456, 0x4000_0000, 0x4040_1234, 0x1_2345] {
        assert_eq!(
            safe.iova_to_phys(Iova::new(iova))
                .map_or(0, PhysAddr::as_u64),
            linux
                .iova_to_phys(Iova::new(iova))
                .map_or(0, PhysAddr::as_u64),
            "{iova:#x}"
        );
    }
}
