//! MSI doorbells behind the IOMMU: `iommu_dma_prepare_msi` and `iommu_dma_compose_msi_msg`
//! (v6.1 dma-iommu), with Linux's IOVA choice.

mod common;
use common::*;
use iommu::*;

use DmaDirection::FromDevice;

/// The LS1028A GIC ITS's `GITS_TRANSLATER` (ITS at 0x0602_0000, register at +0x1_0040).
const ITS_DOORBELL: u64 = 0x0603_0040;

fn enetc(r: &Rig) -> DeviceId {
    r.core
        .probe_device(pci("fsl_enetc 0000:00:00.0", 0, 0x429), r.inst)
        .unwrap()
}

#[test]
fn the_doorbell_page_gets_the_first_iova_below_4g_and_the_message_keeps_the_offset() {
    let r = rig(CoreConfig::default());
    let d = enetc(&r);
    let dom = r.core.default_domain(d).unwrap();
    let cookie = r
        .core
        .iommu_dma_prepare_msi(d, paddr(ITS_DOORBELL))
        .unwrap();
    // PCI with a 64-bit mask: iommu_dma_alloc_iova tries below 4 GiB first, top-down, so the
    // doorbell's one granule is the domain's first IOVA page.
    assert_eq!(
        cookie,
        MsiCookie::Mapped(MsiPage {
            phys: paddr(0x0603_0000),
            iova: iova(0xffff_f000),
            granule: smmu_addr::PageSize::SZ_4K,
        })
    );
    assert_eq!(cookie.compose(paddr(ITS_DOORBELL)), da(0xffff_f040));
    // The page translates to the doorbell's page, write + no-exec + MMIO, and is not a DMA
    // mapping of the device's (nothing for dma_unmap to find).
    assert_eq!(phys(&r, &dom, 0xffff_f040u64, 0), ITS_DOORBELL);
    assert_eq!(r.fake.mapped_pages(dom.driver_domain()), 1);
    assert_eq!(r.core.live_mappings(d), 0);
    // The first buffer the driver maps after it takes the next IOVA page down.
    let buf = r
        .core
        .dma_map_page(d, paddr(RAM + 0x3000), 1536, FromDevice)
        .unwrap();
    assert_eq!(buf, da(0xffff_e000));
}

#[test]
fn one_page_per_domain_and_doorbell_page() {
    let r = rig(CoreConfig::default());
    let d = enetc(&r);
    let dom = r.core.default_domain(d).unwrap();
    let a = r
        .core
        .iommu_dma_prepare_msi(d, paddr(ITS_DOORBELL))
        .unwrap();
    // Every vector's allocation prepares again: the page list answers, nothing new is mapped.
    let b = r.core.iommu_dma_prepare_msi(d, paddr(0x0603_0000)).unwrap();
    assert_eq!(a, b);
    assert_eq!(r.fake.mapped_pages(dom.driver_domain()), 1);
    // Another doorbell page of the same domain gets its own granule, below the first.
    let c = r.core.iommu_dma_prepare_msi(d, paddr(0x0604_0040)).unwrap();
    assert_eq!(c.compose(paddr(0x0604_0040)), da(0xffff_e040));
    assert_eq!(r.fake.mapped_pages(dom.driver_domain()), 2);
    // Another device has its own domain and its own page at its domain's first IOVA.
    let d2 = r
        .core
        .probe_device(pci("fsl_enetc 0000:00:00.1", 1, 0x42a), r.inst)
        .unwrap();
    let e = r
        .core
        .iommu_dma_prepare_msi(d2, paddr(ITS_DOORBELL))
        .unwrap();
    assert_eq!(e.compose(paddr(ITS_DOORBELL)), da(0xffff_f040));
}

#[test]
fn a_platform_device_gets_the_top_of_its_mask() {
    let r = rig(CoreConfig::default());
    let mut desc = platform("ffe0000.dma", 0, 0x10);
    desc.dma_mask = (1 << 40) - 1;
    let d = r.core.probe_device(desc, r.inst).unwrap();
    let c = r
        .core
        .iommu_dma_prepare_msi(d, paddr(ITS_DOORBELL))
        .unwrap();
    // Not PCI: no 32-bit first try; the top of the 40-bit mask.
    assert_eq!(
        c.compose(paddr(ITS_DOORBELL)),
        da((1 << 40) - 0x1000 + 0x40)
    );
}

#[test]
fn without_a_dma_cookie_the_message_is_the_doorbell_itself() {
    let r = rig(CoreConfig {
        passthrough: true,
        ..CoreConfig::default()
    });
    let d = enetc(&r);
    let c = r
        .core
        .iommu_dma_prepare_msi(d, paddr(ITS_DOORBELL))
        .unwrap();
    assert_eq!(c, MsiCookie::Untranslated);
    assert_eq!(c.compose(paddr(ITS_DOORBELL)), da(ITS_DOORBELL));
    assert_eq!(
        r.core
            .iommu_dma_prepare_msi(DeviceId(99), paddr(ITS_DOORBELL)),
        Err(DmaError::NoDevice)
    );
}

#[test]
fn the_doorbell_page_survives_a_snapshot_restore() {
    let r = rig(CoreConfig::default());
    let d = enetc(&r);
    let dom = r.core.default_domain(d).unwrap();
    let (snap, tables) = (r.core.snapshot().unwrap(), r.fake.snapshot());
    let a = r
        .core
        .iommu_dma_prepare_msi(d, paddr(ITS_DOORBELL))
        .unwrap();
    r.core.restore(&snap).unwrap();
    r.fake.restore(&tables);
    // Restored to before the prepare: no page, and the allocator gives the same IOVA again.
    assert_eq!(r.fake.mapped_pages(dom.driver_domain()), 0);
    let b = r
        .core
        .iommu_dma_prepare_msi(d, paddr(ITS_DOORBELL))
        .unwrap();
    assert_eq!(a, b);
    assert_eq!(r.fake.mapped_pages(dom.driver_domain()), 1);
    // A snapshot taken after it keeps the page: the next prepare finds it, maps nothing.
    let (snap2, tables2) = (r.core.snapshot().unwrap(), r.fake.snapshot());
    r.core
        .dma_map_page(d, paddr(RAM), 4096, FromDevice)
        .unwrap();
    r.core.restore(&snap2).unwrap();
    r.fake.restore(&tables2);
    let c = r
        .core
        .iommu_dma_prepare_msi(d, paddr(ITS_DOORBELL))
        .unwrap();
    assert_eq!(c, b);
    assert_eq!(r.fake.mapped_pages(dom.driver_domain()), 1);
}
