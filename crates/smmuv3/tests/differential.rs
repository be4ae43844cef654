//! The model's walker against `pgtable`, two independent readings of VMSAv8-64: random
//! mappings built with `pgtable` (stage 1 through a CD, stage 2 through an STE) must translate
//! in the model exactly as `pgtable::iova_to_phys` says, including unmapped holes.

mod common;

use common::*;
use pgtable::{NoTlb, PageTable, Prot, Stage};
use proptest::prelude::*;
use smmu_addr::{Iova, PageCount, PageSize, PhysAddr};
use smmuv3::{Access, Outcome, SmmuV3Config};
use smmuv3_arch::cmd::CFGI_ALL;

#[derive(Debug, Clone)]
struct Map {
    slot: u64,
    size_sel: u8,
    write: bool,
}

fn maps() -> impl Strategy<Value = Vec<Map>> {
    proptest::collection::vec(
        (0u64..64, 0u8..3, any::<bool>()).prop_map(|(slot, size_sel, write)| Map {
            slot,
            size_sel,
            write,
        }),
        1..24,
    )
}

fn check(
    stage: Stage,
    granule_bitmap: u64,
    maps: &[Map],
    probes: &[u64],
) -> Result<(), TestCaseError> {
    let mut r = Rig::new(SmmuV3Config::s1s2_msi(), 6, 5, 6);
    let (ias, oas) = match stage {
        Stage::S1 => (48, 48),
        Stage::S2 => (40, 48),
    };
    let mut pt = PageTable::new(
        pgtable::PgTableRequest::new(stage, granule_bitmap, ias, oas),
        r.frames.clone(),
        NoTlb,
    )
    .unwrap();
    let page = 1u64 << granule_bitmap.trailing_zeros();
    // Sizes: a page, 4 pages, or the first block size; each slot owns a 2-block window of IOVA.
    let block = page << (page.trailing_zeros() - 3);
    for m in maps {
        let (size, count) = match m.size_sel {
            0 => (page, 1),
            1 => (page, 4),
            _ => (block, 1),
        };
        let iova = m.slot * 2 * block;
        let pa = RAM + (m.slot % 16) * block;
        let prot = if m.write {
            Prot::READ | Prot::WRITE
        } else {
            Prot::READ
        };
        let _ = pt.map_pages(
            Iova::new(iova),
            PhysAddr::new(pa),
            PageSize::new(size).unwrap(),
            PageCount::new(count),
            prot,
        );
    }
    match stage {
        Stage::S1 => {
            r.ste_s1(3, 1, pt.ttbr().as_u64(), 16);
            // The model's CD above uses a 4K TG0: rewrite it for other granules.
            if page != 4096 {
                let cd_words_addr = r.mem.read_u64(PhysAddr::new(r.strtab + 3 * 64)).unwrap()
                    & smmuv3_arch::ste::S1CTXPTR_MASK;
                let d0 = r.mem.read_u64(PhysAddr::new(cd_words_addr)).unwrap() & !(3 << 6);
                r.mem
                    .write_u64(
                        PhysAddr::new(cd_words_addr),
                        d0 | (smmuv3_arch::cd::TG0_64K << 6),
                    )
                    .unwrap();
            }
        }
        Stage::S2 => {
            let c = pt.cfg();
            let tg = if page == 4096 { 0 } else { 1 };
            let vtcr = c.tsz() | (c.sl0() << 6) | (tg << 14) | (5 << 16);
            let d2 = 1 | (vtcr << 32) | smmuv3_arch::ste::S2AA64 | smmuv3_arch::ste::S2R;
            r.write_ste(
                3,
                [
                    smmuv3_arch::ste::V | (smmuv3_arch::ste::CFG_S2_TRANS << 1),
                    0,
                    d2,
                    pt.ttbr().as_u64(),
                ],
            );
        }
    }
    r.issue_sync(&[CFGI_ALL]);
    // Random probes anywhere, plus probes inside every mapping's window.
    let mut all: Vec<u64> = probes.iter().map(|p| p % (128 * block)).collect();
    for (m, p) in maps.iter().zip(probes) {
        let span = if m.size_sel == 2 { block } else { page };
        all.push(m.slot * 2 * block + p % span);
    }
    let mut hits = 0;
    for iova in all {
        let want = pt.iova_to_phys(Iova::new(iova)).map_or(0, PhysAddr::as_u64);
        let got = r.smmu.translate(3, Iova::new(iova), Access::Read);
        match got {
            Outcome::Translated { pa } => {
                hits += 1;
                prop_assert_eq!(pa.as_u64(), want, "iova {:#x}", iova)
            }
            other => prop_assert_eq!(want, 0, "iova {:#x}: model {:?}", iova, other),
        }
        // Write permission agrees with the mapping's prot.
        if want != 0 {
            let w = r.smmu.translate(3, Iova::new(iova), Access::Write);
            let leaf = pt.leaf(Iova::new(iova)).unwrap();
            let ro = match stage {
                Stage::S1 => leaf.pte.bits() & (1 << 7) != 0,
                Stage::S2 => leaf.pte.bits() & (1 << 7) == 0,
            };
            prop_assert_eq!(w.pa().is_none(), ro, "write at {:#x}", iova);
        }
    }
    prop_assert!(hits > 0, "the first mapping always succeeds and is probed");
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    #[test]
    fn stage1_4k(m in maps(), probes in proptest::collection::vec(any::<u64>(), 64)) {
        check(Stage::S1, 0x4020_1000, &m, &probes)?;
    }

    #[test]
    fn stage1_64k(m in maps(), probes in proptest::collection::vec(any::<u64>(), 64)) {
        check(Stage::S1, 0x2001_0000, &m, &probes)?;
    }

    #[test]
    fn stage2_4k(m in maps(), probes in proptest::collection::vec(any::<u64>(), 64)) {
        check(Stage::S2, 0x4020_1000, &m, &probes)?;
    }

    #[test]
    fn stage2_64k(m in maps(), probes in proptest::collection::vec(any::<u64>(), 64)) {
        check(Stage::S2, 0x2001_0000, &m, &probes)?;
    }
}
