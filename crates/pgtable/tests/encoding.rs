//! Encodings against the reference (io-pgtable-arm.md §2–4, arm-smmu-v2.md §8.3–8.4):
//! geometry, descriptor bits, MAIR and the TCR/TCR2/VTCR/TTBR values a driver programs.

mod common;

use common::allocator;
use common::{SZ_16K, SZ_2M, SZ_4K};
use pgtable::{
    choose_granule, Granule, NoTlb, PageTable, PgTableCfg, PgTableError, PgTableRequest,
    PgTableRequestError, Prot, S2Concat, Stage, PGSIZES_16K, PGSIZES_4K, PGSIZES_64K,
};
use smmu_addr::{Iova, PageCount, PageSize, PhysAddr};

/// Reference §2.2, one row per (granule, IAS), with OAS 48 and a coherent walk, plus the
/// S1 TCR and S2 VTCR computed by hand from the field layout of arm-smmu-v2.md §2.3:
/// (granule, ias, levels, S1 start, S1 PGD entries, S2 start, S2 PGD entries, SL0, TCR, VTCR).
#[rustfmt::skip]
type Row = (&'static str, u32, u32, u32, u64, u32, u64, u64, u32, u32);
const TABLE: [Row; 18] = [
    ("4K", 32, 3, 1, 4, 1, 4, 1, 0x00803520, 0x80053560),
    ("4K", 36, 3, 1, 64, 1, 64, 1, 0x0080351c, 0x8005355c),
    ("4K", 40, 4, 0, 2, 1, 1024, 1, 0x00803518, 0x80053558),
    ("4K", 42, 4, 0, 8, 1, 4096, 1, 0x00803516, 0x80053556),
    ("4K", 44, 4, 0, 32, 0, 32, 2, 0x00803514, 0x80053594),
    ("4K", 48, 4, 0, 512, 0, 512, 2, 0x00803510, 0x80053590),
    ("16K", 32, 2, 2, 128, 2, 128, 1, 0x0080b520, 0x8005b560),
    ("16K", 36, 2, 2, 2048, 2, 2048, 1, 0x0080b51c, 0x8005b55c),
    ("16K", 40, 3, 1, 16, 1, 16, 2, 0x0080b518, 0x8005b598),
    ("16K", 42, 3, 1, 64, 1, 64, 2, 0x0080b516, 0x8005b596),
    ("16K", 44, 3, 1, 256, 1, 256, 2, 0x0080b514, 0x8005b594),
    ("16K", 48, 4, 0, 2, 1, 4096, 2, 0x0080b510, 0x8005b590),
    ("64K", 32, 2, 2, 8, 2, 8, 1, 0x00807520, 0x80057560),
    ("64K", 36, 2, 2, 128, 2, 128, 1, 0x0080751c, 0x8005755c),
    ("64K", 40, 2, 2, 2048, 2, 2048, 1, 0x00807518, 0x80057558),
    ("64K", 42, 2, 2, 8192, 2, 8192, 1, 0x00807516, 0x80057556),
    ("64K", 44, 3, 1, 4, 1, 4, 2, 0x00807514, 0x80057594),
    ("64K", 48, 3, 1, 64, 1, 64, 2, 0x00807510, 0x80057590),
];

fn bitmap(g: &str) -> u64 {
    match g {
        "4K" => PGSIZES_4K,
        "16K" => PGSIZES_16K,
        _ => PGSIZES_64K,
    }
}

#[test]
fn geometry_and_control_registers_match_the_reference_table_row_by_row() {
    for (g, ias, levels, s1_start, s1_pgd, s2_start, s2_pgd, sl0, tcr, vtcr) in TABLE {
        let s1 = PgTableCfg::new(PgTableRequest::new(Stage::S1, bitmap(g), ias, 48)).unwrap();
        let s2 = PgTableCfg::new(PgTableRequest::new(Stage::S2, bitmap(g), ias, 48)).unwrap();
        let row = format!("{g} ias {ias}");
        assert_eq!(s1.geom.levels(), levels, "{row}");
        assert_eq!(s1.geom.start_level, s1_start, "{row}");
        assert_eq!(s1.geom.pgd_entries(), s1_pgd, "{row}");
        assert_eq!(s1.geom.pgd_size(), 8 * s1_pgd, "{row}");
        assert_eq!(s2.geom.start_level, s2_start, "{row}");
        assert_eq!(s2.geom.pgd_entries(), s2_pgd, "{row}");
        assert_eq!(s2.sl0(), sl0, "{row}");
        assert_eq!(s1.smmu_tcr(), tcr, "{row}");
        assert_eq!(s1.s1_tcr(), tcr, "{row}");
        assert_eq!(s2.smmu_tcr(), vtcr, "{row}");
        assert_eq!(s2.vtcr(), vtcr, "{row}");
        assert_eq!(s1.smmu_tcr2(), 0x0003_8015, "{row}: PASIZE 5 | AS | SEP 7");
        assert_eq!(s2.smmu_tcr2(), 0, "{row}: no TCR2 for stage 2");
        assert_eq!(s1.tsz(), 64 - ias as u64);
    }
}

#[test]
fn worked_stage1_bank_values() {
    // arm-smmu-v2.md §8.4: 4K, coherent, ias = oas = 48, ASID 0.
    let alloc = allocator();
    let pt = PageTable::new(
        PgTableRequest::new(Stage::S1, PGSIZES_4K, 48, 48),
        alloc,
        NoTlb,
    )
    .unwrap();
    let c = pt.cfg();
    assert_eq!(c.smmu_tcr(), 0x0080_3510);
    assert_eq!(c.smmu_tcr2(), 0x0003_8015);
    // Linux's sign-extended value: 0xf4 << 24 is a negative int in io-pgtable-arm.
    assert_eq!(c.mair(), 0xffff_ffff_f404_ff44);
    assert_eq!(c.smmu_mair0(), 0xf404_ff44);
    assert_eq!(c.smmu_mair1(), 0xffff_ffff);
    assert_eq!(pt.smmu_ttbr0(0), pt.ttbr().as_u64());
    assert_eq!(pt.smmu_ttbr0(5), (5u64 << 48) | pt.ttbr().as_u64());
    assert_eq!(pt.smmu_ttbr1(5), 5u64 << 48);
    assert_eq!(pt.ttbr().as_u64() % 4096, 0);
}

#[test]
fn stage2_ttbr_is_the_pgd_and_has_no_mair() {
    let alloc = allocator();
    let pt = PageTable::new(
        PgTableRequest::new(Stage::S2, PGSIZES_4K, 40, 48),
        alloc.clone(),
        NoTlb,
    )
    .unwrap();
    assert_eq!(pt.smmu_ttbr0(9), pt.ttbr().as_u64());
    assert_eq!(pt.smmu_ttbr1(9), 0);
    assert_eq!(pt.cfg().mair(), 0);
    // A concatenated 1024-entry PGD is 8 KiB, aligned to its size.
    assert_eq!(pt.ttbr().as_u64() % 0x2000, 0);
    assert_eq!(alloc.outstanding_bytes(), 0x2000);
}

#[test]
fn ips_encodes_every_oas() {
    for (oas, ips) in [(32, 0), (36, 1), (40, 2), (42, 3), (44, 4), (48, 5)] {
        let c = PgTableCfg::new(PgTableRequest::new(Stage::S1, PGSIZES_4K, 48, oas)).unwrap();
        assert_eq!(c.ips(), ips);
        assert_eq!(c.smmu_tcr2(), ips as u32 | 0x10 | 7 << 15);
        let c = PgTableCfg::new(PgTableRequest::new(Stage::S2, PGSIZES_4K, 48, oas)).unwrap();
        assert_eq!((c.vtcr() >> 16) & 7, ips as u32);
    }
}

#[test]
fn non_coherent_walk_attributes() {
    let mut cfg = PgTableRequest::new(Stage::S1, PGSIZES_4K, 48, 48);
    cfg.coherent_walk = false;
    let c = PgTableCfg::new(cfg).unwrap();
    // SH0 2 (outer), IRGN0 0, ORGN0 0, T0SZ 16, EPD1.
    assert_eq!(c.smmu_tcr(), 0x0080_2010);
    cfg.quirks.outer_wbwa = true;
    assert_eq!(PgTableCfg::new(cfg).unwrap().smmu_tcr(), 0x0080_2410);
    let mut s2 = PgTableRequest::new(Stage::S2, PGSIZES_4K, 48, 48);
    s2.coherent_walk = false;
    assert_eq!(PgTableCfg::new(s2).unwrap().vtcr(), 0x8005_2090);
}

#[test]
fn tg_codes() {
    assert_eq!(
        [Granule::G4K.tg0(), Granule::G64K.tg0(), Granule::G16K.tg0()],
        [0, 1, 2]
    );
    assert_eq!(
        [Granule::G16K.tg1(), Granule::G4K.tg1(), Granule::G64K.tg1()],
        [1, 2, 3]
    );
}

#[test]
fn current_concatenation_rule() {
    let geo = |g, ias, oas| {
        let mut c = PgTableRequest::new(Stage::S2, g, ias, oas);
        c.s2_concat = S2Concat::Mandatory;
        PgTableCfg::new(c).map(|c| (c.geom.start_level, c.geom.pgd_entries(), c.sl0()))
    };
    // 4K start 0: only oas 40/42 force it.
    assert_eq!(geo(PGSIZES_4K, 40, 48), Ok((0, 2, 2)));
    assert_eq!(geo(PGSIZES_4K, 40, 40), Ok((1, 1024, 1)));
    assert_eq!(geo(PGSIZES_4K, 42, 42), Ok((1, 4096, 1)));
    // 16K start 0: oas or ias 48.
    assert_eq!(geo(PGSIZES_16K, 48, 48), Ok((1, 4096, 2)));
    // 16K start 1 with oas 40: 16 entries → 16 × 2048 at level 2.
    assert_eq!(geo(PGSIZES_16K, 40, 40), Ok((2, 32768, 1)));
    assert_eq!(geo(PGSIZES_16K, 44, 48), Ok((1, 256, 2)));
    // Mandatory but too many pages: allocation fails.
    let too_many = geo(PGSIZES_16K, 42, 40).unwrap_err();
    assert_eq!(
        too_many,
        PgTableError::BadConfig(PgTableRequestError::Stage2ConcatTooLarge { pages: 64 })
    );
    assert_eq!(
        too_many.to_string(),
        "unsupported page-table configuration: \
         stage-2 concatenation is mandatory but needs 64 pages"
    );
    // v6.1 would concatenate 4K ias 40 whatever the oas.
    let c = PgTableCfg::new(PgTableRequest::new(Stage::S2, PGSIZES_4K, 40, 48)).unwrap();
    assert_eq!((c.geom.start_level, c.geom.pgd_entries()), (1, 1024));
}

#[test]
fn granule_choice_and_bitmap_restriction() {
    assert_eq!(choose_granule(PGSIZES_4K | SZ_16K), Some(Granule::G4K));
    assert_eq!(choose_granule(SZ_16K | SZ_2M), Some(Granule::G16K));
    assert_eq!(choose_granule(PGSIZES_64K), Some(Granule::G64K));
    assert_eq!(choose_granule(SZ_2M), None);
    let c = PgTableCfg::new(PgTableRequest::new(
        Stage::S1,
        SZ_16K | SZ_2M | SZ_4K << 20,
        48,
        48,
    ));
    assert_eq!(c.unwrap().pgsize_bitmap, SZ_16K);
    let c = PgTableCfg::new(PgTableRequest::new(
        Stage::S1,
        SZ_4K | SZ_2M | SZ_16K,
        48,
        48,
    ))
    .unwrap();
    assert_eq!(c.pgsize_bitmap, SZ_4K | SZ_2M);
    // ias/oas above 48 clamp to 48, as restrict_pgsizes does.
    let c = PgTableCfg::new(PgTableRequest::new(Stage::S1, PGSIZES_4K, 52, 52)).unwrap();
    assert_eq!((c.ias, c.oas), (48, 48));
}

/// Leaf descriptor of a fresh mapping of `size` at 1 GiB with `prot`.
fn leaf_pte(stage: Stage, size: u64, prot: Prot) -> u64 {
    let alloc = allocator();
    let mut pt =
        PageTable::new(PgTableRequest::new(stage, PGSIZES_4K, 48, 48), alloc, NoTlb).unwrap();
    pt.map_pages(
        Iova::new(1 << 30),
        PhysAddr::new(0x1234 << 21),
        PageSize::new(size).unwrap(),
        PageCount::ONE,
        prot,
    )
    .unwrap();
    let leaf = pt.leaf(Iova::new((1 << 30) + 5)).unwrap();
    assert_eq!(leaf.size.bytes(), size);
    assert_eq!(
        leaf.pte.bits() & 0x0000_ffff_ffff_f000 & !(size - 1),
        0x1234 << 21
    );
    leaf.pte.bits() & !(0x0000_ffff_ffff_f000)
}

#[test]
fn worked_descriptor_values() {
    let rwc = Prot::READ | Prot::WRITE | Prot::CACHE;
    assert_eq!(leaf_pte(Stage::S1, SZ_4K, rwc), 0xF47);
    assert_eq!(leaf_pte(Stage::S2, SZ_4K, rwc), 0x7FF);
    assert_eq!(
        leaf_pte(Stage::S1, SZ_4K, rwc | Prot::NOEXEC),
        0x0060_0000_0000_0F47
    );
    assert_eq!(
        leaf_pte(Stage::S2, SZ_4K, rwc | Prot::NOEXEC),
        0x0060_0000_0000_07FF
    );
    // A 2 MiB block: type 1 instead of 3.
    assert_eq!(leaf_pte(Stage::S1, SZ_2M, rwc), 0xF45);
    // Hand-computed from the §3.1 table.
    assert_eq!(leaf_pte(Stage::S1, SZ_4K, Prot::READ), 0xEC3); // RDONLY, NC, outer
    assert_eq!(
        leaf_pte(Stage::S1, SZ_4K, Prot::READ | Prot::WRITE | Prot::MMIO),
        0xE4B
    );
    assert_eq!(leaf_pte(Stage::S1, SZ_4K, rwc | Prot::PRIV), 0xF07);
    assert_eq!(leaf_pte(Stage::S1, SZ_4K, Prot::WRITE), 0xE43);
    assert_eq!(leaf_pte(Stage::S2, SZ_4K, Prot::READ), 0x657);
    assert_eq!(leaf_pte(Stage::S2, SZ_4K, Prot::WRITE), 0x697);
    assert_eq!(
        leaf_pte(Stage::S2, SZ_4K, Prot::READ | Prot::WRITE | Prot::MMIO),
        0x6C7
    );
}

/// Every prot combination, checked bit-group by bit-group against the §3.1 table.
#[test]
fn every_prot_combination_follows_the_table() {
    for bits in 0u32..64 {
        let prot = Prot(bits);
        if !prot.contains(Prot::READ) && !prot.contains(Prot::WRITE) {
            continue;
        }
        let (r, w) = (prot.contains(Prot::READ), prot.contains(Prot::WRITE));
        let (cache, mmio) = (prot.contains(Prot::CACHE), prot.contains(Prot::MMIO));
        let sh = if cache { 0x300 } else { 0x200 };
        let xn = if prot.contains(Prot::NOEXEC) {
            3u64 << 53
        } else {
            0
        };
        let s1 = leaf_pte(Stage::S1, SZ_4K, prot);
        let attrindx = if mmio {
            2
        } else if cache {
            1
        } else {
            0
        };
        let expect_s1 = 0x800
            | 0x400
            | sh
            | if r && !w { 0x80 } else { 0 }
            | if prot.contains(Prot::PRIV) { 0 } else { 0x40 }
            | attrindx << 2
            | 3
            | xn;
        assert_eq!(s1, expect_s1, "S1 {prot:?}");
        let s2 = leaf_pte(Stage::S2, SZ_4K, prot);
        let memattr = if mmio {
            0x1
        } else if cache {
            0xf
        } else {
            0x5
        };
        let expect_s2 = 0x400
            | sh
            | if r { 0x40 } else { 0 }
            | if w { 0x80 } else { 0 }
            | memattr << 2
            | 3
            | xn;
        assert_eq!(s2, expect_s2, "S2 {prot:?}");
    }
}

#[test]
fn table_descriptors_and_ns_quirk() {
    let alloc = allocator();
    let mut cfg = PgTableRequest::new(Stage::S1, PGSIZES_4K, 48, 48);
    cfg.quirks.arm_ns = true;
    let mut pt = PageTable::new(cfg, alloc, NoTlb).unwrap();
    pt.map_pages(
        Iova::new(0x1000),
        PhysAddr::new(0x1000),
        PageSize::SZ_4K,
        PageCount::ONE,
        Prot::READ,
    )
    .unwrap();
    let steps = pt.walk(Iova::new(0x1000));
    assert_eq!(steps.len(), 4);
    for s in &steps[..3] {
        assert_eq!(s.pte.bits() & 0xfff, 3, "table type");
        assert_eq!(s.pte.bits() >> 63, 1, "NSTABLE");
    }
    assert_eq!(steps[3].pte.bits(), 0x1000 | 0xEC3 | 0x20, "leaf with NS");
    assert_eq!(steps[3].index, 1);
}

#[test]
fn non_coherent_tables_carry_sw_sync() {
    let alloc = allocator();
    let mut cfg = PgTableRequest::new(Stage::S1, PGSIZES_4K, 48, 48);
    cfg.coherent_walk = false;
    let mut pt = PageTable::new(cfg, alloc, NoTlb).unwrap();
    pt.map_pages(
        Iova::new(0x1000),
        PhysAddr::new(0x1000),
        PageSize::SZ_4K,
        PageCount::ONE,
        Prot::READ,
    )
    .unwrap();
    for s in &pt.walk(Iova::new(0x1000))[..3] {
        assert_eq!(s.pte.bits() & (1 << 55), 1 << 55);
    }
    assert_eq!(
        pt.iova_to_phys(Iova::new(0x1234))
            .map_or(0, PhysAddr::as_u64),
        0x1234
    );
}

#[test]
fn dump_lists_tables_and_folds_runs() {
    let alloc = allocator();
    let mut pt = PageTable::new(
        PgTableRequest::new(Stage::S1, PGSIZES_4K, 32, 48),
        alloc,
        NoTlb,
    )
    .unwrap();
    pt.map_pages(
        Iova::new(0x20_0000),
        PhysAddr::new(0x8000_0000),
        PageSize::SZ_4K,
        PageCount::new(3),
        Prot::READ | Prot::WRITE | Prot::CACHE,
    )
    .unwrap();
    pt.map_pages(
        Iova::new(0x4000_0000),
        PhysAddr::new(0x4000_0000),
        PageSize::SZ_2M,
        PageCount::ONE,
        Prot::READ,
    )
    .unwrap();
    let d = pt.dump();
    let pgd = pt.ttbr().as_u64();
    let lines: Vec<&str> = d.lines().collect();
    assert_eq!(
        lines[0],
        format!("S1 4K granule, ias 32 oas 48: 3 levels from level 1, pgd {pgd:#x} (4 entries)")
    );
    assert_eq!(lines[1], format!("L1 table @ {pgd:#x}"));
    let l2 = pt.walk(Iova::new(0x20_0000))[1].table.as_u64();
    assert_eq!(
        lines[2],
        format!(
            "  [0] {:#018x} iova 0x0..0x40000000: table -> {l2:#x}",
            l2 | 3
        )
    );
    assert_eq!(lines[3], format!("  L2 table @ {l2:#x}"));
    println!("{d}");
    assert!(
        d.contains("      [0..=2] 0x0000000080000f47 (x3) iova 0x200000..0x203000: page pa 0x80000000 RW EL0 attr1(WB) nG IS AF"),
        "{d}"
    );
    assert!(
        d.contains("    [0] 0x0000000040000ec1 iova 0x40000000..0x40200000: block pa 0x40000000 RO EL0 attr0(NC) nG OS AF"),
        "{d}"
    );
}
