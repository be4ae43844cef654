//! The other model presets translate DMA the same way.

use super::*;

fn fw_for(cfg: &Mmu500Config, compatible: &str) -> FirmwareDesc {
    FirmwareDesc {
        compatible: compatible.into(),
        reg_base: PhysAddr::new(0x2b40_0000),
        reg_size: cfg.window_size(),
        dev_name: "2b400000.iommu".into(),
        num_global_irqs: Some(1),
        num_context_irqs: cfg.num_context_irqs,
        dma_coherent: cfg.coherent_walk,
    }
}

#[test]
fn other_model_presets_translate_dma() {
    for (cfg, compat) in [
        (Mmu500Config::mmu401(), "arm,mmu-401"),
        (Mmu500Config::smmuv2_generic(), "arm,smmu-v2"),
    ] {
        let fw = fw_for(&cfg, compat);
        let b = board_with(cfg, &fw, ModuleParams::default(), ShutdownPolicy::Linux62);
        assert!(
            !b.log.lines().iter().any(|l| l.contains("differs")),
            "{compat}: {:#?}",
            b.log.lines()
        );
        let m = MasterInfo {
            id: DeviceId(9),
            log_name: "m".into(),
            fwspec: FwSpec { ids: vec![0x5] },
        };
        b.smmu.probe_device(&m).unwrap();
        let dom = b.smmu.domain_alloc(DomainKind::Dma).unwrap();
        b.smmu.attach_dev(dom, DeviceId(9)).unwrap();
        let pa = RAM_BASE + 0x60_0000;
        b.smmu
            .map_pages(
                dom,
                Iova::new(0x8000),
                PhysAddr::new(pa),
                PageSize::SZ_4K,
                PageCount::new(1),
                Prot::READ | Prot::WRITE,
            )
            .unwrap();
        let t = b.model.dma_write(0x5, Iova::new(0x8010), b"v1v2").unwrap();
        assert!(t[0].is_translated(), "{compat}: {t:?}");
        assert_eq!(read(&b, pa + 0x10, 4), b"v1v2", "{compat}");
        assert_eq!(
            b.smmu
                .iova_to_phys(dom, Iova::new(0x8010))
                .map_or(0, PhysAddr::as_u64),
            pa + 0x10,
            "{compat}"
        );
        let mut g = Gather::new();
        b.smmu.unmap_pages(
            dom,
            Iova::new(0x8000),
            PageSize::SZ_4K,
            PageCount::new(1),
            &mut g,
        );
        b.smmu.iotlb_sync(dom, &mut g);
        b.log.clear();
        assert!(
            b.model.dma_write(0x5, Iova::new(0x8010), b"x").is_err(),
            "{compat}"
        );
        // The context interrupt (IRPTNDX on SMMUv1, the bank on v2) reaches the right bank.
        let bank = b.smmu.domain_context_bank(dom).unwrap();
        let lines = b.log.lines();
        assert_eq!(lines.len(), 1, "{compat}: {lines:#?}");
        assert!(
            lines[0].starts_with("arm-smmu 2b400000.iommu: Unhandled context fault: fsr=0x")
                && lines[0].ends_with(&format!(
                    ", iova=0x00008010, fsynr=0x{:x}, cbfrsynra=0x5, cb={bank}",
                    0x13
                )),
            "{compat}: {lines:?}"
        );
    }
}
