//! Linux's io-pgtable-arm selftests, both forms (reference io-pgtable-arm.md §9 and §10), run
//! against this crate with dummy TLB ops that check what Linux's check.

mod common;

use common::SZ_1G;
use common::{allocator, CheckingTlb};
use pgtable::{
    PageTable, PgTableError, PgTableRequest, PgdRunBound, Prot, S2Concat, Stage, PGSIZES_16K,
    PGSIZES_4K, PGSIZES_64K,
};
use smmu_addr::{Iova, PageCount, PageSize, PhysAddr};
use std::sync::atomic::Ordering;

const PGSIZES: [u64; 3] = [PGSIZES_4K, PGSIZES_16K, PGSIZES_64K];
const IAS: [u32; 6] = [32, 36, 40, 42, 44, 48];
const FMTS: [Stage; 2] = [Stage::S1, Stage::S2];

/// Which form of the selftest.
#[derive(Clone, Copy, PartialEq)]
enum Form {
    /// v6.1 built-in selftest: includes partial unmap and its remap.
    V6_1,
    /// Current KUnit test: no partial unmap, plus the last-page-of-IAS step.
    Kunit,
}

fn sizes_of(bitmap: u64) -> Vec<u64> {
    (0..64)
        .map(|b| 1u64 << b)
        .filter(|s| bitmap & s != 0)
        .collect()
}

/// One format's steps; `Err` names the failed check.
fn run_fmt(pt: &mut PageTable<CheckingTlb>, form: Form) -> Result<(), String> {
    let bitmap = pt.cfg().pgsize_bitmap;
    let ias = pt.cfg().ias;
    let check = |ok: bool, what: &str| if ok { Ok(()) } else { Err(what.to_string()) };
    // 1. Empty table.
    for iova in [42, SZ_1G + 42, 2 * SZ_1G + 42] {
        check(
            pt.iova_to_phys(Iova::new(iova)).map_or(0, PhysAddr::as_u64) == 0,
            "empty table translates",
        )?;
    }
    // 2. Map each page size, at 1 GiB strides.
    let rwxc = Prot::READ | Prot::WRITE | Prot::NOEXEC | Prot::CACHE;
    let mut iova = 0;
    for &size in &sizes_of(bitmap) {
        check(
            pt.map_pages(
                Iova::new(iova),
                PhysAddr::new(iova),
                PageSize::new(size).unwrap(),
                PageCount::ONE,
                rwxc,
            ) == Ok(size),
            "map",
        )?;
        check(
            matches!(
                pt.map_pages(
                    Iova::new(iova),
                    PhysAddr::new(iova + size),
                    PageSize::new(size).unwrap(),
                    PageCount::ONE,
                    Prot::READ | Prot::NOEXEC
                ),
                Err(PgTableError::Exists { .. })
            ),
            "overlapping mapping accepted",
        )?;
        check(
            pt.iova_to_phys(Iova::new(iova + 42))
                .map_or(0, PhysAddr::as_u64)
                == iova + 42,
            "iova_to_phys after map",
        )?;
        iova += SZ_1G;
    }
    let size = 1u64 << bitmap.trailing_zeros();
    let mut gather = pgtable::Gather::new();
    if form == Form::V6_1 {
        // 3. Partial unmap: splits the block at 1 GiB.
        check(
            pt.unmap_pages(
                Iova::new(SZ_1G + size),
                PageSize::new(size).unwrap(),
                PageCount::ONE,
                &mut gather,
            ) == size,
            "partial unmap",
        )?;
        // 4. Remap of the partial unmap.
        check(
            pt.map_pages(
                Iova::new(SZ_1G + size),
                PhysAddr::new(size),
                PageSize::new(size).unwrap(),
                PageCount::ONE,
                Prot::READ,
            ) == Ok(size),
            "remap of partial unmap",
        )?;
        check(
            pt.iova_to_phys(Iova::new(SZ_1G + size + 42))
                .map_or(0, PhysAddr::as_u64)
                == size + 42,
            "iova_to_phys after partial remap",
        )?;
    }
    // 5. Full unmap and remap.
    let mut iova = 0;
    for &size in &sizes_of(bitmap) {
        check(
            pt.unmap_pages(
                Iova::new(iova),
                PageSize::new(size).unwrap(),
                PageCount::ONE,
                &mut gather,
            ) == size,
            "full unmap",
        )?;
        check(
            pt.iova_to_phys(Iova::new(iova + 42))
                .map_or(0, PhysAddr::as_u64)
                == 0,
            "iova_to_phys after unmap",
        )?;
        check(
            pt.map_pages(
                Iova::new(iova),
                PhysAddr::new(iova),
                PageSize::new(size).unwrap(),
                PageCount::ONE,
                Prot::WRITE,
            ) == Ok(size),
            "remap",
        )?;
        check(
            pt.iova_to_phys(Iova::new(iova + 42))
                .map_or(0, PhysAddr::as_u64)
                == iova + 42,
            "iova_to_phys after remap",
        )?;
        iova += SZ_1G;
    }
    if form == Form::Kunit {
        // The last largest page of the IAS (concatenated stage-2 PGD corner cases).
        let size = 1u64 << (63 - bitmap.leading_zeros());
        let iova = (1u64 << ias) - size;
        check(
            pt.map_pages(
                Iova::new(iova),
                PhysAddr::new(iova),
                PageSize::new(size).unwrap(),
                PageCount::ONE,
                rwxc,
            ) == Ok(size),
            "map last page",
        )?;
        check(
            pt.unmap_pages(
                Iova::new(iova),
                PageSize::new(size).unwrap(),
                PageCount::ONE,
                &mut gather,
            ) == size,
            "unmap last page",
        )?;
    }
    Ok(())
}

/// Linux's `arm_lpae_run_tests` for one configuration: S1 then S2. Appends log lines.
fn run_tests(cfg: PgTableRequest, cookie: u64, form: Form, log: &mut Vec<String>) -> bool {
    for (idx, &stage) in FMTS.iter().enumerate() {
        let alloc = allocator();
        let tlb = CheckingTlb::new(cookie * 2 + idx as u64, cfg.pgsize_bitmap);
        tlb.under_test.store(tlb.cookie, Ordering::Relaxed);
        let mut pt =
            match PageTable::new(PgTableRequest { stage, ..cfg }, alloc.clone(), tlb.clone()) {
                Ok(pt) => pt,
                Err(_) => {
                    log.push("selftest: failed to allocate io pgtable ops".to_string());
                    return false;
                }
            };
        let result = run_fmt(&mut pt, form);
        let failures = tlb.failures();
        if result.is_err() || !failures.is_empty() {
            let g = pt.cfg().geom;
            log.push(format!("selftest: test failed for fmt idx {idx}"));
            log.push(format!(
                "cfg: pgsize_bitmap {:#x}, ias {}-bit",
                pt.cfg().pgsize_bitmap,
                pt.cfg().ias
            ));
            log.push(format!(
                "data: {} levels, {:#x} pgd_size, {} pg_shift, {} bits_per_level, pgd @ {:#x}",
                g.levels(),
                g.pgd_size(),
                g.pg_shift,
                g.bits_per_level,
                pt.ttbr().as_u64()
            ));
            log.push(format!("  why: {result:?} {failures:?}"));
            return false;
        }
        pt.destroy().unwrap();
        assert_eq!(alloc.outstanding_bytes(), 0, "table pages leaked");
    }
    true
}

#[test]
fn v6_1_selftest_18_configurations_pass() {
    let mut log = Vec::new();
    let (mut pass, mut fail) = (0, 0);
    let mut cookie = 0;
    for &bitmap in &PGSIZES {
        for &ias in &IAS {
            log.push(format!("selftest: pgsize_bitmap {bitmap:#010x}, IAS {ias}"));
            let cfg = PgTableRequest::new(Stage::S1, bitmap, ias, 48);
            if run_tests(cfg, cookie, Form::V6_1, &mut log) {
                pass += 1;
            } else {
                fail += 1;
            }
            cookie += 1;
        }
    }
    log.push(format!("selftest: completed with {pass} PASS {fail} FAIL"));
    assert_completed(&log, "selftest: completed with 18 PASS 0 FAIL");
    assert_eq!(log[0], "selftest: pgsize_bitmap 0x40201000, IAS 32");
    assert_eq!(log.len(), 19);
}

fn kunit(concat: S2Concat, bound: PgdRunBound) -> Vec<String> {
    let mut log = Vec::new();
    let (mut pass, mut fail) = (0, 0);
    let mut cookie = 0;
    for &bitmap in &PGSIZES {
        for &ias in &IAS {
            for &oas in IAS.iter().filter(|&&oas| ias <= oas) {
                log.push(format!("pgsize_bitmap {bitmap:#010x}, IAS {ias} OAS {oas}"));
                let mut cfg = PgTableRequest::new(Stage::S1, bitmap, ias, oas);
                cfg.s2_concat = concat;
                cfg.pgd_run_bound = bound;
                if run_tests(cfg, cookie, Form::Kunit, &mut log) {
                    pass += 1;
                } else {
                    fail += 1;
                }
                cookie += 1;
            }
        }
    }
    log.push(format!("completed with {pass} PASS {fail} FAIL"));
    log
}

/// The sweep's last line is `summary`.
fn assert_completed(log: &[String], summary: &str) {
    assert_eq!(log.last().unwrap(), summary, "{log:#?}");
}

/// The configurations whose line is followed by a failure of the stage-2 format (fmt idx 1).
fn failed_s2_configurations(log: &[String]) -> Vec<&str> {
    log.windows(2)
        .filter(|w| w[1].starts_with("selftest: test failed for fmt idx 1"))
        .map(|w| w[0].as_str())
        .collect()
}

#[test]
fn kunit_sweep_63_configurations_pass_with_v6_1_concatenation() {
    let log = kunit(S2Concat::V6_1, PgdRunBound::WithinPage);
    assert_completed(&log, "completed with 63 PASS 0 FAIL");
    assert_eq!(log.len(), 64);
}

#[test]
fn kunit_sweep_63_configurations_pass_with_current_concatenation() {
    let log = kunit(S2Concat::Mandatory, PgdRunBound::WithinPage);
    assert_completed(&log, "completed with 63 PASS 0 FAIL");
}

/// d64c8053378e's point: its last-page step fails without d71fa842d33c exactly where a
/// 4K-granule stage-2 PGD is concatenated (IAS 40 and 42 with the v6.1 rule: 1024 and 4096
/// entries) and the largest page, 1 GiB, is the PGD's own block size. 16K at IAS 48 is
/// concatenated too, but its largest page (32 MiB) lives a level below the PGD.
#[test]
fn kunit_last_page_step_fails_before_d71fa842d33c_where_the_largest_page_is_a_pgd_entry() {
    let log = kunit(S2Concat::V6_1, PgdRunBound::TableMinusIndex);
    assert_completed(&log, "completed with 56 PASS 7 FAIL");
    assert_eq!(
        failed_s2_configurations(&log),
        [
            "pgsize_bitmap 0x40201000, IAS 40 OAS 40",
            "pgsize_bitmap 0x40201000, IAS 40 OAS 42",
            "pgsize_bitmap 0x40201000, IAS 40 OAS 44",
            "pgsize_bitmap 0x40201000, IAS 40 OAS 48",
            "pgsize_bitmap 0x40201000, IAS 42 OAS 42",
            "pgsize_bitmap 0x40201000, IAS 42 OAS 44",
            "pgsize_bitmap 0x40201000, IAS 42 OAS 48",
        ]
    );
    // Under the current rule 4K concatenates only for OAS 40 and 42, and 16K at IAS 40 with
    // OAS 40 folds its level-1 PGD into 16 concatenated level-2 pages, whose 32 MiB blocks
    // are then PGD entries too.
    let log = kunit(S2Concat::Mandatory, PgdRunBound::TableMinusIndex);
    assert_completed(&log, "completed with 59 PASS 4 FAIL");
    assert_eq!(
        failed_s2_configurations(&log),
        [
            "pgsize_bitmap 0x40201000, IAS 40 OAS 40",
            "pgsize_bitmap 0x40201000, IAS 40 OAS 42",
            "pgsize_bitmap 0x40201000, IAS 42 OAS 42",
            "pgsize_bitmap 0x02004000, IAS 40 OAS 40",
        ]
    );
}

/// The dummy ops really do catch a wrong cookie and a size outside the bitmap (so the passes
/// above mean something).
#[test]
fn dummy_tlb_checks_fire() {
    use pgtable::TlbOps;
    let tlb = CheckingTlb::new(7, PGSIZES_4K);
    tlb.tlb_flush_walk(Iova::new(0), 0x1000, PageSize::SZ_4K);
    assert!(tlb.failures().is_empty());
    tlb.tlb_flush_walk(Iova::new(0), 0x800, PageSize::SZ_4K);
    tlb.under_test.store(8, Ordering::Relaxed);
    tlb.tlb_flush_all();
    assert_eq!(tlb.failures().len(), 2);
}

/// The partial unmap of v6.1 issues exactly one add_page for the page cut out of the block,
/// and the later full unmap of the split block is one flush_walk of the whole block.
#[test]
fn partial_unmap_tlb_traffic_is_exact() {
    let alloc = allocator();
    let tlb = CheckingTlb::new(1, PGSIZES_4K);
    let mut pt = PageTable::new(
        PgTableRequest::new(Stage::S1, PGSIZES_4K, 48, 48),
        alloc,
        tlb.clone(),
    )
    .unwrap();
    pt.map_pages(
        Iova::new(SZ_1G),
        PhysAddr::new(SZ_1G),
        PageSize::SZ_2M,
        PageCount::ONE,
        Prot::READ,
    )
    .unwrap();
    let mut g = pgtable::Gather::new();
    assert_eq!(
        pt.unmap_pages(
            Iova::new(SZ_1G + 0x1000),
            PageSize::SZ_4K,
            PageCount::ONE,
            &mut g
        ),
        0x1000
    );
    use common::TlbEvent::*;
    assert_eq!(
        tlb.take_events(),
        vec![AddPage {
            iova: SZ_1G + 0x1000,
            granule: 0x1000
        }]
    );
    assert_eq!(
        pt.iova_to_phys(Iova::new(SZ_1G + 0x2042))
            .map_or(0, PhysAddr::as_u64),
        SZ_1G + 0x2042
    );
    assert_eq!(
        pt.iova_to_phys(Iova::new(SZ_1G + 0x1042))
            .map_or(0, PhysAddr::as_u64),
        0
    );
    assert_eq!(
        pt.unmap_pages(Iova::new(SZ_1G), PageSize::SZ_2M, PageCount::ONE, &mut g),
        0x20_0000
    );
    assert_eq!(
        tlb.take_events(),
        vec![FlushWalk {
            iova: SZ_1G,
            size: 0x20_0000,
            granule: 0x1000
        }]
    );
    assert!(tlb.failures().is_empty());
}
