//! An MMU-401: probe, reset and attach, and stage 2 with its VMID and global sync.

use super::*;

#[test]
fn mmu401_probe_reset_attach() {
    let r = fake(
        IdRegs::MMU401,
        &mmu401_fw(),
        ModuleParams::default(),
        ShutdownPolicy::Linux61,
    );
    let p = "arm-smmu 2b400000.iommu";
    assert_eq!(
        r.log.lines(),
        prefixed(
            p,
            &[
                "probing hardware configuration...",
                "SMMUv1 with:",
                "\tstage 1 translation",
                "\tstage 2 translation",
                "\taddress translation ops",
                "\tcoherent table walk",
                "\tstream matching with 8 register groups",
                "\t8 context banks (2 stage-2 only)",
                "\tSupported page sizes: 0x61311000",
                "\tStage-1: 40-bit VA -> 40-bit IPA",
                "\tStage-2: 40-bit IPA -> 40-bit PA",
            ]
        )
    );
    r.smmu.device_reset();
    let cbb = |i: u64| (16 + i) << 12;
    let mut want = vec![w(0x48, 0)];
    for i in 0..8 {
        want.push(w(0xc00 + 4 * i, FAULT));
        want.push(w(0x800 + 4 * i, 0));
    }
    for i in 0..8 {
        want.push(w(cbb(i), 0));
        want.push(w(cbb(i) + 0x58, 0xC000_01FE));
    }
    want.extend([
        w(0x6c, 0xffff_ffff),
        w(0x68, 0xffff_ffff),
        w(0x70, 0xffff_ffff),
        w(0x0, 0x1c36),
    ]);
    assert_writes(&mmu500::Mmu500Config::mmu401(), &r.bus.writes(), &want);
    r.smmu.test_smr_masks();
    r.bus.clear();
    r.smmu.probe_device(&master(7, "m", &[0x12])).unwrap();
    let dom = r.smmu.domain_alloc(DomainKind::Unmanaged).unwrap();
    r.smmu.attach_dev(dom, DeviceId(7)).unwrap();
    let writes = r.bus.writes();
    let cb = cbb(2);
    let pgd = writes.iter().find(|x| x.0 == cb + 0x20).unwrap().1 & 0xffff_ffff_ffff;
    assert_eq!(
        writes,
        vec![
            w(0xc00, FAULT),
            w(0x800, 0x8000_0012),
            w(0x1000 + 0x808, 0x1), // CBA2R(2): Linux writes it for V1_64K too
            w(0x1000 + 0x8, 0x0101_f300), // CBAR(2): IRPTNDX 1 (V1 round-robin), S1
            w(cb + 0x10, 0x0003_8012), // TCR2: PASIZE 40
            w(cb + 0x30, 0x0080_3518), // TCR: T0SZ 24
            q(cb + 0x20, (2 << 48) | pgd), // TTBR0: ASID 2
            q(cb + 0x28, 2 << 48),
            w(cb + 0x38, 0xf404_ff44),
            w(cb + 0x3c, 0xffff_ffff),
            w(cb, 0x1067),
            w(0xc00, 0x2), // S2CR(0): TRANS, CB 2
        ]
    );
    // Hardware iova_to_phys (TRANS_OPS on SMMUv1): ATS1PR, ATSR poll, PAR.
    r.bus
        .inner()
        .poke(cb + 0x50, 0x0000_00ab_cdef_1000 | (0xff << 56));
    r.bus.clear();
    assert_eq!(
        r.smmu
            .iova_to_phys(dom, Iova::new(0x4567))
            .map_or(0, PhysAddr::as_u64),
        0xab_cdef_1567
    );
    assert_writes(
        &mmu500::Mmu500Config::mmu401(),
        &r.bus.writes(),
        &[q(cb + 0x800, 0x4000)],
    );
    r.bus.inner().poke(cb + 0x50, 0x9);
    assert_eq!(
        r.smmu
            .iova_to_phys(dom, Iova::new(0x4567))
            .map_or(0, PhysAddr::as_u64),
        0
    );
    let n = r.log.lines().len();
    assert_eq!(
        r.log.lines()[n - 2..],
        prefixed(p, &["translation fault!", "PAR = 0x9"])[..]
    );
}

#[test]
fn mmu401_stage2_uses_vmid_and_global_sync() {
    let p = ModuleParams::from_cmdline("arm-smmu.force_stage=2").unwrap();
    let r = fake(IdRegs::MMU401, &mmu401_fw(), p, ShutdownPolicy::Linux61);
    r.smmu.device_reset();
    r.smmu.test_smr_masks();
    r.smmu.probe_device(&master(7, "m", &[0x12])).unwrap();
    let dom = r.smmu.domain_alloc(DomainKind::Dma).unwrap();
    r.smmu.attach_dev(dom, DeviceId(7)).unwrap();
    assert_eq!(
        r.smmu.domain_context_bank(dom),
        Some(0),
        "S2 banks start at 0"
    );
    r.smmu
        .map_pages(
            dom,
            Iova::new(0x10_0000),
            PhysAddr::new(RAM_BASE),
            PageSize::SZ_4K,
            PageCount::new(1),
            Prot::READ,
        )
        .unwrap();
    r.bus.clear();
    let mut g = Gather::new();
    r.smmu.unmap_pages(
        dom,
        Iova::new(0x10_0000),
        PageSize::SZ_4K,
        PageCount::new(1),
        &mut g,
    );
    r.smmu.iotlb_sync(dom, &mut g);
    // S2 on SMMUv1: TLBIVMID (VMID = cb + 1) and a global sync.
    assert_writes(
        &mmu500::Mmu500Config::mmu401(),
        &r.bus.writes(),
        &[w(0x64, 1), w(0x70, 0xffff_ffff)],
    );
}
