//! iova_to_phys through the ATS1PR operation: polling ATSR, and the software walk when it stays
//! active.

use super::*;

fn generic_fw(cfg: &Mmu500Config) -> FirmwareDesc {
    FirmwareDesc {
        compatible: "arm,smmu-v2".into(),
        reg_base: PhysAddr::new(0x2b40_0000),
        reg_size: cfg.window_size(),
        dev_name: "2b400000.iommu".into(),
        num_global_irqs: Some(1),
        num_context_irqs: cfg.num_cb,
        dma_coherent: true,
    }
}

/// A stage-1 domain for stream 5 with one page mapped at IOVA 0x8000 on a generic SMMUv2 whose
/// ATS1PR operations take `ats_polls` ATSR reads.
fn ats_rig(ats_polls: u32) -> (ModelRig, iommu::DriverDomain, u64) {
    let cfg = Mmu500Config {
        ats_polls,
        ..Mmu500Config::smmuv2_generic()
    };
    let fw = generic_fw(&cfg);
    let r = on_model(cfg, &fw, LinuxVersion::V6_12.behaviour());
    assert!(r
        .log
        .lines()
        .contains(&"arm-smmu 2b400000.iommu: \taddress translation ops".to_string()));
    let m = MasterInfo {
        id: DeviceId(9),
        log_name: "m".into(),
        fwspec: FwSpec { ids: vec![0x5] },
    };
    r.smmu.probe_device(&m).unwrap();
    let dom = r.smmu.domain_alloc(DomainKind::Dma).unwrap();
    r.smmu.attach_dev(dom, DeviceId(9)).unwrap();
    let pa = RAM_BASE + 0x60_0000;
    r.smmu
        .map_pages(
            dom,
            Iova::new(0x8000),
            PhysAddr::new(pa),
            PageSize::SZ_4K,
            PageCount::new(1),
            Prot::READ | Prot::WRITE,
        )
        .unwrap();
    r.bus.clear();
    r.log.clear();
    (r, dom, pa)
}

#[test]
fn iova_to_phys_polls_atsr_until_the_translation_operation_completes() {
    let (r, dom, pa) = ats_rig(2);
    let bank = u64::from(r.smmu.domain_context_bank(dom).unwrap());
    let cb = (r.model.config().num_pages() + bank) * r.model.config().page_size();
    assert_eq!(
        r.smmu
            .iova_to_phys(dom, Iova::new(0x8123))
            .map_or(0, PhysAddr::as_u64),
        pa + 0x123
    );
    assert_eq!(
        r.bus.ops(),
        vec![
            wq(cb + 0x800, 0x8000), // ATS1PR = iova & ~0xfff
            rd(cb + 0x8f0, 1),      // ATSR.ACTIVE
            rd(cb + 0x8f0, 1),
            rd(cb + 0x8f0, 0), // done
            // PAR: the PA, attribute index 0's MAIR byte 0x44 and outer shareable (SH 2), as
            // io-pgtable maps a page without IOMMU_CACHE.
            rq(cb + 0x50, pa | (0x44 << 56) | (2 << 7)),
        ]
    );
    assert!(r.log.lines().is_empty());
    // An unmapped address: PAR.F, Linux's two lines, 0.
    r.bus.clear();
    assert_eq!(
        r.smmu
            .iova_to_phys(dom, Iova::new(0x9000))
            .map_or(0, PhysAddr::as_u64),
        0
    );
    let lines = r.log.lines();
    assert_eq!(lines[0], "arm-smmu 2b400000.iommu: translation fault!");
    assert!(lines[1].starts_with("arm-smmu 2b400000.iommu: PAR = 0x"));
}

#[test]
fn iova_to_phys_falls_back_to_the_software_walk_when_atsr_stays_active() {
    // Linux polls every 5 µs for 50 µs: eleven reads. Ten ACTIVE reads still succeed...
    let (r, dom, pa) = ats_rig(10);
    assert_eq!(
        r.smmu
            .iova_to_phys(dom, Iova::new(0x8010))
            .map_or(0, PhysAddr::as_u64),
        pa + 0x10
    );
    let atsr_reads = |r: &ModelRig| {
        r.bus
            .ops()
            .iter()
            .filter(|o| o.offset & 0xfff == 0x8f0)
            .count()
    };
    assert_eq!(atsr_reads(&r), 11);
    assert!(r.log.lines().is_empty());
    // ...eleven time out: the message, and the answer of the software walk (no PAR read).
    let (r, dom, pa) = ats_rig(11);
    assert_eq!(
        r.smmu
            .iova_to_phys(dom, Iova::new(0x8010))
            .map_or(0, PhysAddr::as_u64),
        pa + 0x10
    );
    assert_eq!(atsr_reads(&r), 11);
    assert!(!r.bus.ops().iter().any(|o| o.offset & 0xfff == 0x50));
    assert_eq!(
        r.log.lines(),
        vec!["arm-smmu 2b400000.iommu: iova to phys timed out on 0x0000000000008010. Falling back to software table walk.".to_string()]
    );
    // An operation that never completes: the same fallback.
    let (r, dom, pa) = ats_rig(u32::MAX);
    assert_eq!(
        r.smmu
            .iova_to_phys(dom, Iova::new(0x8fff))
            .map_or(0, PhysAddr::as_u64),
        pa + 0xfff
    );
    let mut g = Gather::new();
    r.smmu.unmap_pages(
        dom,
        Iova::new(0x8000),
        PageSize::SZ_4K,
        PageCount::new(1),
        &mut g,
    );
    r.smmu.iotlb_sync(dom, &mut g);
}
