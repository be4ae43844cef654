//! A smaller input address size (ID2.IAS) and the concatenated stage-2 PGD it leads to.
//!
//! With IAS 40 and the 4K granule Linux's stage-2 tables start at level 1 with two
//! concatenated level-1 tables (1024 entries; VTCR.SL0 = 1, T0SZ = 24); with IAS 42, eight
//! (4096 entries). The model's walker (written from the architecture, not from pgtable) must
//! index the whole concatenation from VTTBR, so these tests build tables with pgtable and
//! compare every answer, and pin the registers a driver reads and writes.

mod common;

use common::*;
use mmu500::{ContextFaultKind, DmaFault, Mmu500Config, Translation};
use pgtable::{Prot, PGSIZES_4K};

const SZ_4K: u64 = PageSize::SZ_4K.bytes();
const SZ_2M: u64 = PageSize::SZ_2M.bytes();
const SZ_1G: u64 = PageSize::SZ_1G.bytes();
use smmu_addr::{Iova, PageCount, PageSize, PhysAddr};
use smmu_arch::regs::{cb, gr0};
use smmu_arch::{Access, LookupLevel, Mmio};

fn ls1028a_with_ias(ias: u32) -> Mmu500Config {
    Mmu500Config {
        ias,
        ..Mmu500Config::mmu500_ls1028a()
    }
}

#[test]
fn id2_reports_the_configured_ias_and_the_driver_view_decodes_it_back() {
    // IAS 3:0, OAS 7:4, UBS 11:8 (size codes: 40 → 2, 42 → 3, 48 → 5), PTFS_4K bit 12,
    // PTFS_64K bit 14; the LS1028A preset's value is 0x5555.
    for (ias, id2) in [
        (48, 0x5555),
        (44, 0x5554),
        (42, 0x5553),
        (40, 0x5552),
        (36, 0x5551),
    ] {
        let r = rig(ls1028a_with_ias(ias));
        assert_eq!(r.smmu.read32(gr0::ID2), id2, "IAS {ias}");
        let back = Mmu500Config::decode_ids(
            mmu500::ArchVersion::V2,
            false,
            [gr0::ID0, gr0::ID1, gr0::ID2, gr0::ID7].map(|o| r.smmu.read32(o)),
        );
        assert_eq!((back.ias, back.oas, back.ubs), (ias, 48, 48));
    }
}

#[test]
fn an_ias_without_an_id2_encoding_is_refused() {
    let mem = std::sync::Arc::new(
        physmem::PhysMem::new(&[physmem::Region::new(PhysAddr::new(DRAM), 0x1000)]).unwrap(),
    );
    let err = mmu500::Mmu500::new(ls1028a_with_ias(39), mem).unwrap_err();
    assert_eq!(
        err.to_string(),
        "address size 39 bits has no ID2 encoding (32, 36, 40, 42, 44, 48)"
    );
}

/// A stage-2 context over a pgtable S2 table of `ias` bits, stream 0x11 → bank 0.
fn s2_rig(ias: u32) -> (Rig, pgtable::PageTable<pgtable::NoTlb>) {
    let r = rig(ls1028a_with_ias(ias));
    let pt = s2_table(&r, PGSIZES_4K, ias, 48);
    (r, pt)
}

fn program(r: &Rig, pt: &pgtable::PageTable<pgtable::NoTlb>) {
    program_from(&r.smmu, 0, pt, 0);
    map_stream(&r.smmu, 0, 0x11, 0, 0);
    enable(&r.smmu);
}

fn map(pt: &mut pgtable::PageTable<pgtable::NoTlb>, iova: u64, pa: u64, size: u64) {
    pt.map_pages(
        Iova::new(iova),
        PhysAddr::new(pa),
        PageSize::new(size).unwrap(),
        PageCount::ONE,
        Prot::READ | Prot::WRITE,
    )
    .unwrap();
}

/// (pa, leaf size) from the model, or the fault level.
fn walk(r: &Rig, iova: u64) -> Result<(u64, u64), LookupLevel> {
    match r.smmu.translate(0x11, Iova::new(iova), Access::Read) {
        Ok(Translation::Translated { pa, leaf_size, .. }) => Ok((pa.as_u64(), leaf_size.bytes())),
        Err(DmaFault::Context {
            kind: ContextFaultKind::Translation,
            level,
            ..
        }) => {
            r.smmu.write32(cbo(&r.smmu, 0) + cb::FSR, 0xc000_01fe);
            Err(level)
        }
        other => panic!("{iova:#x}: {other:?}"),
    }
}

#[test]
fn ias_40_stage_2_walks_both_pages_of_the_concatenated_level_1_pgd() {
    let (r, mut pt) = s2_rig(40);
    assert_eq!(pt.cfg().geom.start_level, 1);
    assert_eq!(pt.cfg().geom.pgd_entries(), 1024);
    // The 1 GiB at PGD index 1018, a 2 MiB block under index 512, the last 4 KiB page
    // of the IAS (index 1023), and a 1 GiB block in the first page for contrast.
    map(&mut pt, 0xfe_8000_0000, 0x2_4000_0000, SZ_1G);
    map(&mut pt, 0x80_0020_0000, 0x9000_0000, SZ_2M);
    map(&mut pt, 0xff_ffff_f000, 0x8800_3000, SZ_4K);
    map(&mut pt, 0x40_0000_0000, 0x1_0000_0000, SZ_1G);
    program(&r, &pt);
    let b = cbo(&r.smmu, 0);
    // VTCR as Linux computes it: RES1 | PS 5 (48-bit) | TG0 4K | SH IS | WBWA | SL0 1 | T0SZ 24.
    assert_eq!(r.smmu.read32(b + cb::TCR), 0x8005_3558);
    assert_eq!(
        r.smmu.read64(b + cb::TTBR0) & 0x1fff,
        0,
        "8 KiB-aligned VTTBR"
    );

    assert_eq!(walk(&r, 0xfe_8000_0000), Ok((0x2_4000_0000, SZ_1G)));
    assert_eq!(walk(&r, 0xfe_bfff_fff8), Ok((0x2_7fff_fff8, SZ_1G)));
    assert_eq!(walk(&r, 0x80_0020_1234), Ok((0x9000_1234, SZ_2M)));
    assert_eq!(walk(&r, 0xff_ffff_fff8), Ok((0x8800_3ff8, SZ_4K)));
    assert_eq!(walk(&r, 0x40_0000_0040), Ok((0x1_0000_0040, SZ_1G)));
    // Empty PGD entries in either page fault at level 1; a hole under a table deeper.
    assert_eq!(walk(&r, 0xfe_c000_0000), Err(LookupLevel::L1));
    assert_eq!(walk(&r, 0x7f_c000_0000), Err(LookupLevel::L1));
    assert_eq!(walk(&r, 0x80_0000_0000), Err(LookupLevel::L2));
    assert_eq!(walk(&r, 0xff_ffff_e000), Err(LookupLevel::L3));
    // Beyond the 40-bit input range: a translation fault (the model reports level 0), not an
    // alias of PGD index 1.
    assert_eq!(walk(&r, 0x100_4000_0000), Err(LookupLevel::L0));
}

#[test]
fn ias_42_stage_2_has_eight_concatenated_pages_and_the_walker_reaches_the_last() {
    let (r, mut pt) = s2_rig(42);
    assert_eq!(pt.cfg().geom.pgd_entries(), 4096);
    assert_eq!(pt.cfg().vtcr() & 0xff, 0x56, "SL0 1, T0SZ 22");
    map(&mut pt, 0x3ff_c000_0000, 0x1_4000_0000, SZ_1G);
    map(&mut pt, 0x200_0000_0000, 0x1_8000_0000, SZ_1G);
    program(&r, &pt);
    assert_eq!(r.smmu.read64(cbo(&r.smmu, 0) + cb::TTBR0) & 0x7fff, 0);
    assert_eq!(walk(&r, 0x3ff_c000_1000), Ok((0x1_4000_1000, SZ_1G)));
    assert_eq!(walk(&r, 0x200_0000_0008), Ok((0x1_8000_0008, SZ_1G)));
    assert_eq!(walk(&r, 0x3ff_8000_0000), Err(LookupLevel::L1));
}

#[test]
fn a_vtcr_whose_sl0_needs_more_than_16_concatenated_tables_faults_every_access() {
    // T0SZ 24 (40 bits) with SL0 0 (start at level 2): 19 index bits, more than the 9 + 4 of
    // 16 concatenated tables, an inconsistent setting that only faults.
    let (r, mut pt) = s2_rig(40);
    map(&mut pt, 0x40_0000_0000, 0x1_0000_0000, SZ_1G);
    program(&r, &pt);
    let b = cbo(&r.smmu, 0);
    let vtcr = r.smmu.read32(b + cb::TCR);
    r.smmu.write32(b + cb::TCR, vtcr & !(3 << 6));
    assert!(walk(&r, 0x40_0000_0000).is_err());
    // SL0 back to 1: the same tables translate again.
    r.smmu.write32(b + cb::TCR, vtcr);
    assert_eq!(walk(&r, 0x40_0000_0000), Ok((0x1_0000_0000, SZ_1G)));
}

/// SplitMix64, seeded, so failures reproduce.
fn next(s: &mut u64) -> u64 {
    *s = s.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *s;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[test]
fn walker_agrees_with_pgtable_on_mappings_past_the_first_pgd_page() {
    for ias in [40u32, 42] {
        for seed in 0..4u64 {
            let (r, mut pt) = s2_rig(ias);
            let mut s = seed * 7919 + u64::from(ias);
            let pages = 1u64 << (ias - 30);
            let mut mapped = Vec::new();
            for _ in 0..40 {
                let size = [SZ_1G, SZ_2M, SZ_4K][(next(&mut s) % 3) as usize];
                // PGD indices from 512 up: the concatenation's later pages.
                let gib = 512 + next(&mut s) % (pages - 512);
                let iova = (gib << 30) + ((next(&mut s) % SZ_1G) & !(size - 1));
                let pa = (0x1_0000_0000 + next(&mut s) % (1 << 39)) & !(size - 1);
                if pt
                    .map_pages(
                        Iova::new(iova),
                        PhysAddr::new(pa),
                        PageSize::new(size).unwrap(),
                        PageCount::ONE,
                        Prot::READ | Prot::WRITE,
                    )
                    .is_ok()
                {
                    mapped.push((iova, size));
                }
            }
            program(&r, &pt);
            let mut probes: Vec<u64> = Vec::new();
            for &(iova, size) in &mapped {
                probes.extend([iova, iova + size - 8, iova + size, iova.wrapping_sub(8)]);
            }
            for _ in 0..100 {
                probes.push(((512 << 30) + next(&mut s) % ((pages - 512) << 30)) & !7);
            }
            for iova in probes {
                let want = pt.leaf(Iova::new(iova)).map(|l| {
                    (
                        pt.iova_to_phys(Iova::new(iova)).unwrap().as_u64(),
                        l.size.bytes(),
                    )
                });
                let got = walk(&r, iova).ok();
                assert_eq!(got, want, "IAS {ias} seed {seed}: {iova:#x}");
            }
        }
    }
}
