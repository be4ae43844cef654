//! Nested (stage 1 + stage 2) translation and the AArch32 long-descriptor stage-1 format.

mod common;

use common::*;
use mmu500::{ContextFaultKind, DmaFault, Mmu500Config};
use pgtable::Prot;
use smmu_addr::{Iova, PageCount, PageSize, PhysAddr};
use smmu_arch::regs::{self, cb, fsynr0, gr1};
use smmu_arch::{Access, LookupLevel, Mmio, Stage};

const SID: u32 = 0x29;

#[test]
fn nested_translation_composes_stages_and_reports_stage2_walk_faults() {
    let r = rig(Mmu500Config::mmu500_ls1028a());
    let s = &r.smmu;
    // Stage 2 (bank 1, VMID 2): IPA = PA over the page-table memory (so stage-1 table
    // addresses, which are IPAs, resolve), and IPA 0x4000_0000 → PA 0x9abc_0000.
    let mut s2 = s2_table(&r, pgtable::PGSIZES_4K, 40, 48);
    s2.map_pages(
        Iova::new(DRAM),
        PhysAddr::new(DRAM),
        PageSize::SZ_2M,
        PageCount::new(PT_SIZE / SZ_2M),
        Prot::READ | Prot::WRITE,
    )
    .unwrap();
    s2.map_pages(
        Iova::new(0x4000_0000),
        PhysAddr::new(0x9abc_0000),
        PageSize::SZ_4K,
        PageCount::ONE,
        Prot::READ | Prot::WRITE,
    )
    .unwrap();
    program_from(s, 1, &s2, 0);
    // Stage 1 (bank 0): VA 0x1000_0000 → IPA 0x4000_0000; VA 0x1000_1000 → IPA 0x5000_0000
    // (no stage-2 mapping).
    let mut s1 = s1_table(&r, pgtable::PGSIZES_4K, 48, 40);
    s1.map_pages(
        Iova::new(0x1000_0000),
        PhysAddr::new(0x4000_0000),
        PageSize::SZ_4K,
        PageCount::ONE,
        Prot::READ | Prot::WRITE,
    )
    .unwrap();
    s1.map_pages(
        Iova::new(0x1000_1000),
        PhysAddr::new(0x5000_0000),
        PageSize::SZ_4K,
        PageCount::ONE,
        Prot::READ,
    )
    .unwrap();
    program_from(s, 0, &s1, 5);
    // CBAR: TYPE = S1 translate, S2 translate; bits 15:8 name the stage-2 bank.
    s.write32(gr1o(s, gr1::cbar(0)), (3 << 16) | (1 << 8));
    map_stream(s, 0, SID, 0, 0);
    enable(s);
    let t = s
        .translate(SID, Iova::new(0x1000_0123), Access::Write)
        .unwrap();
    assert_eq!(t.pa(), PhysAddr::new(0x9abc_0123));
    // The stage-1 output has no stage-2 mapping: a stage-2 fault in bank 1.
    let f = s
        .translate(SID, Iova::new(0x1000_1000), Access::Read)
        .unwrap_err();
    assert!(matches!(
        f,
        DmaFault::Context {
            kind: ContextFaultKind::Translation,
            cb: 1,
            stage: Stage::S2,
            ..
        }
    ));
    assert_eq!(s.read32(cbo(s, 1) + cb::FSR) & 0x1fe, regs::fsr::TF);
    assert_eq!(s.read32(cbo(s, 0) + cb::FSR), 0);
    s.write32(cbo(s, 1) + cb::FSR, 0xc000_01fe);
    // Remove the identity mapping of the table memory: the stage-1 walk itself faults at
    // stage 2 (PTWF, S1CBNDX = 0) — after invalidating the cached stage-2 translations.
    let mut g = pgtable::Gather::default();
    s2.unmap_pages(
        Iova::new(DRAM),
        PageSize::SZ_2M,
        PageCount::new(PT_SIZE / SZ_2M),
        &mut g,
    );
    s.write32(regs::gr0::TLBIVMID, 2);
    let f = s
        .translate(SID, Iova::new(0x1000_0000), Access::Read)
        .unwrap_err();
    assert!(matches!(
        f,
        DmaFault::Context {
            cb: 1,
            stage: Stage::S2,
            ..
        }
    ));
    let syn = s.read32(cbo(s, 1) + cb::FSYNR0);
    assert_ne!(syn & fsynr0::PTWF, 0);
    assert_eq!((syn >> fsynr0::S1CBNDX_SHIFT) & 0xff, 0);
}

#[test]
fn aarch32_long_descriptor_stage1_walk() {
    let r = rig(Mmu500Config::mmu500_ls1028a());
    let s = &r.smmu;
    // 32-bit VA, T0SZ = 0: start at level 1 with a 4-entry table (hand-built, no pgtable).
    let l1 = r.alloc.alloc(SZ_4K).unwrap().as_u64();
    let l2 = r.alloc.alloc(SZ_4K).unwrap().as_u64();
    let l3 = r.alloc.alloc(SZ_4K).unwrap().as_u64();
    let af = 1 << 10;
    r.mem.write_u64(PhysAddr::new(l1 + 8 * 3), l2 | 3).unwrap(); // VA [3G, 4G)
    r.mem.write_u64(PhysAddr::new(l2 + 8 * 5), l3 | 3).unwrap(); // + 5 * 2M
    r.mem
        .write_u64(PhysAddr::new(l3 + 8 * 7), 0x9876_5000 | af | (1 << 6) | 3)
        .unwrap();
    r.mem
        .write_u64(
            PhysAddr::new(l2 + 8 * 6),
            0x9a00_0000 | af | (1 << 6) | (1 << 7) | 1,
        )
        .unwrap(); // RO 2M block
    let b = cbo(s, 2);
    s.write32(gr1o(s, gr1::cba2r(2)), 0); // AArch32
    s.write32(gr1o(s, gr1::cbar(2)), 0x0001_f300);
    s.write32(b + cb::TCR, regs::tcr::EAE | regs::tcr::EPD1);
    s.write64(b + cb::TTBR0, l1 | (9 << 48));
    s.write32(b + cb::SCTLR, 0x67);
    map_stream(s, 0, SID, 0, 2);
    enable(s);
    let va = 0xc000_0000u64 + 5 * SZ_2M + 7 * SZ_4K + 0x44;
    assert_eq!(
        s.translate(SID, Iova::new(va), Access::Read)
            .unwrap()
            .pa()
            .as_u64(),
        0x9876_5044
    );
    let vb = 0xc000_0000u64 + 6 * SZ_2M + 0x1234;
    assert_eq!(
        s.translate(SID, Iova::new(vb), Access::Read)
            .unwrap()
            .pa()
            .as_u64(),
        0x9a00_1234
    );
    assert!(matches!(
        s.translate(SID, Iova::new(vb), Access::Write),
        Err(DmaFault::Context {
            kind: ContextFaultKind::Permission,
            level: LookupLevel::L2,
            ..
        })
    ));
    // FORMAT = AArch32 LPAE (1).
    assert_eq!(s.read32(b + cb::FSR), regs::fsr::PF | (1 << 9));
    s.write32(b + cb::FSR, 0xc000_01fe);
    // Beyond 32 bits and in an empty slot: translation faults.
    assert!(s.translate(SID, Iova::new(1 << 32), Access::Read).is_err());
    assert!(s.translate(SID, Iova::new(0x1000), Access::Read).is_err());
    // AArch32 TLBIVA encoding: VA[31:12] | ASID[7:0] in one 32-bit write.
    r.mem
        .write_u64(PhysAddr::new(l3 + 8 * 7), 0x9876_6000 | af | (1 << 6) | 3)
        .unwrap();
    assert_eq!(
        s.translate(SID, Iova::new(va), Access::Read)
            .unwrap()
            .pa()
            .as_u64(),
        0x9876_5044
    );
    s.write32(b + cb::S1_TLBIVA, ((va as u32) & !0xfff) | 9);
    assert_eq!(
        s.translate(SID, Iova::new(va), Access::Read)
            .unwrap()
            .pa()
            .as_u64(),
        0x9876_6044
    );
}

#[test]
fn stage2_permissions_access_flag_address_size_and_external_aborts() {
    let r = rig(Mmu500Config::mmu500_ls1028a());
    let s = &r.smmu;
    let mut s2 = s2_table(&r, pgtable::PGSIZES_4K, 40, 48);
    s2.map_pages(
        Iova::new(0x1000_0000),
        PhysAddr::new(0x9000_0000),
        PageSize::SZ_4K,
        PageCount::ONE,
        Prot::READ,
    )
    .unwrap();
    s2.map_pages(
        Iova::new(0x1000_1000),
        PhysAddr::new(0x9000_1000),
        PageSize::SZ_4K,
        PageCount::ONE,
        Prot::WRITE,
    )
    .unwrap();
    s2.map_pages(
        Iova::new(0x1000_2000),
        PhysAddr::new(0x9000_2000),
        PageSize::SZ_4K,
        PageCount::ONE,
        Prot::READ | Prot::WRITE,
    )
    .unwrap();
    s2.map_pages(
        Iova::new(0x1000_3000),
        PhysAddr::new(0x1_2000_0000),
        PageSize::SZ_4K,
        PageCount::ONE,
        Prot::READ,
    )
    .unwrap();
    program_from(s, 3, &s2, 0);
    map_stream(s, 0, SID, 0, 3);
    enable(s);
    let b = cbo(s, 3);
    let expect = |iova: u64, access, kind, fsr: u32, syn: u32| {
        let f = s.translate(SID, Iova::new(iova), access).unwrap_err();
        assert!(
            matches!(f, DmaFault::Context { kind: k, cb: 3, stage: Stage::S2, .. } if k == kind),
            "{f:?}"
        );
        assert_eq!(s.read32(b + cb::FSR), fsr, "FSR at {iova:#x}");
        assert_eq!(s.read32(b + cb::FSYNR0), syn, "FSYNR0 at {iova:#x}");
        s.write32(b + cb::FSR, 0xc000_01fe);
    };
    // S2AP: read-only refuses writes, write-only refuses reads.
    expect(
        0x1000_0000,
        Access::Write,
        ContextFaultKind::Permission,
        0x408,
        0x13,
    );
    expect(
        0x1000_1000,
        Access::Read,
        ContextFaultKind::Permission,
        0x408,
        0x03,
    );
    assert_eq!(
        s.translate(SID, Iova::new(0x1000_1000), Access::Write)
            .unwrap()
            .pa()
            .as_u64(),
        0x9000_1000
    );
    // Access flag clear at stage 2.
    let leaf = s2.leaf(Iova::new(0x1000_2000)).unwrap();
    r.mem
        .write_u64(leaf.pte_pa, leaf.pte.bits() & !(1 << 10))
        .unwrap();
    expect(
        0x1000_2000,
        Access::Read,
        ContextFaultKind::AccessFlag,
        0x404,
        0x03,
    );
    // Output address beyond VTCR.PS (set PS to 32 bits): address size fault.
    r.mem.write_u64(leaf.pte_pa, leaf.pte.bits()).unwrap();
    let vtcr = s.read32(b + cb::TCR);
    assert_eq!(
        s.translate(SID, Iova::new(0x1000_3000), Access::Read)
            .unwrap()
            .pa()
            .as_u64(),
        0x1_2000_0000
    );
    s.write32(b + cb::TCR, vtcr & !(7 << regs::vtcr::PS_SHIFT));
    s.write32(smmu_arch::regs::gr0::TLBIALLNSNH, 0);
    expect(
        0x1000_3000,
        Access::Read,
        ContextFaultKind::AddressSize,
        0x480,
        0x03,
    );
    s.write32(b + cb::TCR, vtcr);
    // A table in memory that does not exist: external abort on the walk at the start level.
    s.write64(b + cb::TTBR0, 0x7000_0000);
    s.write32(smmu_arch::regs::gr0::TLBIALLNSNH, 0);
    let start = (vtcr >> regs::vtcr::SL0_SHIFT) & 3; // SL0 1 → level 1 for 4K
    assert_eq!(start, 1);
    expect(
        0x1000_2000,
        Access::Read,
        ContextFaultKind::External,
        0x410,
        0x01,
    );
    assert_eq!(s.counters().fault_external, 1);
}
