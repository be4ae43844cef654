//! A stream-indexing SMMUv2 (no SMRs): probe, reset, attach and map.

use super::*;

#[test]
fn indexed_probe_reset_attach_map() {
    let r = fake(
        IdRegs::INDEXED,
        &indexed_fw(),
        ModuleParams::default(),
        ShutdownPolicy::Linux61,
    );
    let p = "arm-smmu 10000000.iommu";
    assert_eq!(
        r.log.lines(),
        prefixed(
            p,
            &[
                "probing hardware configuration...",
                "SMMUv2 with:",
                "\tstage 2 translation",
                "\tcoherent table walk",
                "\t4 context banks (0 stage-2 only)",
                "\tSupported page sizes: 0x41311000",
                "\tStage-2: 44-bit IPA -> 44-bit PA",
            ]
        )
    );
    r.smmu.device_reset();
    let cbb = |i: u64| (4 + i) << 12;
    let mut want = vec![w(0x48, 0)];
    for i in 0..64 {
        want.push(w(0xc00 + 4 * i, FAULT));
    }
    for i in 0..4 {
        want.push(w(cbb(i), 0));
        want.push(w(cbb(i) + 0x58, 0xC000_01FE));
    }
    want.extend([
        w(0x6c, 0xffff_ffff),
        w(0x68, 0xffff_ffff),
        w(0x70, 0xffff_ffff),
        w(0x0, 0x1c36),
    ]);
    assert_writes(
        &mmu500::Mmu500Config::smmuv2_generic(),
        &r.bus.writes(),
        &want,
    );
    r.bus.clear();
    r.smmu.test_smr_masks();
    assert!(r.bus.writes().is_empty(), "no SMRs, no width test");
    r.smmu.probe_device(&master(3, "m", &[0x2a])).unwrap();
    assert_writes(
        &mmu500::Mmu500Config::smmuv2_generic(),
        &r.bus.writes(),
        &[w(0xc00 + 4 * 0x2a, FAULT)],
    );
    assert!(r.smmu.probe_device(&master(4, "n", &[0x40])).is_err());
    r.bus.clear();
    let dom = r.smmu.domain_alloc(DomainKind::Dma).unwrap();
    r.smmu.attach_dev(dom, DeviceId(3)).unwrap();
    let writes = r.bus.writes();
    let cb = cbb(0);
    let pgd = writes.iter().find(|x| x.0 == cb + 0x20).unwrap().1;
    assert_eq!(
        writes,
        vec![
            w(0x1000 + 0x800, 0x1),    // CBA2R: VA64
            w(0x1000, 0x1),            // CBAR: S2_TRANS, VMID 1
            w(cb + 0x30, 0x8004_3594), // VTCR: PS 44, 4K, IS WBWA, SL0 2, T0SZ 20
            q(cb + 0x20, pgd),         // VTTBR
            w(cb, 0x67),               // SCTLR
            w(0xc00 + 4 * 0x2a, 0x0),  // S2CR(0x2a): TRANS CB 0
        ]
    );
    r.smmu
        .map_pages(
            dom,
            Iova::new(0x20_0000),
            PhysAddr::new(RAM_BASE),
            PageSize::SZ_4K,
            PageCount::new(2),
            Prot::READ | Prot::WRITE,
        )
        .unwrap();
    r.bus.clear();
    let mut g = Gather::new();
    assert_eq!(
        r.smmu.unmap_pages(
            dom,
            Iova::new(0x20_0000),
            PageSize::SZ_4K,
            PageCount::new(2),
            &mut g
        ),
        0x2000
    );
    r.smmu.iotlb_sync(dom, &mut g);
    assert_writes(
        &mmu500::Mmu500Config::smmuv2_generic(),
        &r.bus.writes(),
        &[
            q(cb + 0x638, 0x200),
            q(cb + 0x638, 0x201),
            w(cb + 0x7f0, 0xffff_ffff),
        ],
    );
    // Identity domain: S2CR BYPASS, iova_to_phys is the identity.
    let id = r.smmu.domain_alloc(DomainKind::Identity).unwrap();
    r.bus.clear();
    r.smmu.attach_dev(id, DeviceId(3)).unwrap();
    assert_writes(
        &mmu500::Mmu500Config::smmuv2_generic(),
        &r.bus.writes(),
        &[w(0xc00 + 4 * 0x2a, BYPASS)],
    );
    assert_eq!(
        r.smmu
            .iova_to_phys(id, Iova::new(0x1234))
            .map_or(0, PhysAddr::as_u64),
        0x1234
    );
}
