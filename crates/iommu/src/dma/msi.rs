//! MSI doorbells behind the IOMMU (dma-iommu, v6.1 behaviour).
//!
//! A device's MSI is a memory write to the interrupt controller's doorbell (the GIC ITS's
//! `GITS_TRANSLATER`), translated by the IOMMU like any DMA write. So the MSI controller's
//! domain allocation (v6.1 `drivers/irqchip/irq-gic-v3-its.c`, `its_irq_domain_alloc`) calls
//! `iommu_dma_prepare_msi` with the doorbell's physical address; for a domain with a DMA
//! cookie that maps one IOVA granule onto the doorbell's page, once per domain and page
//! (`drivers/iommu/dma-iommu.c`, `iommu_dma_get_msi_page`: the page list is searched first;
//! a new page gets its IOVA from `iommu_dma_alloc_iova` with the device's DMA mask and is
//! mapped write + no-exec + MMIO). `iommu_dma_compose_msi_msg` then writes that IOVA, plus
//! the doorbell's offset in the granule, into the message the device sends. The page stays
//! mapped as long as the domain lives (nothing in v6.1 unmaps it before `iommu_put_dma_cookie`).
//!
//! Without a DMA cookie (identity or unmanaged domain, dma-direct, no IOMMU) the message keeps
//! the doorbell's physical address.

use super::*;
use crate::domain::MsiPage;
use smmu_addr::PageSize;

/// What `iommu_dma_prepare_msi` left in the MSI descriptor (`desc->iommu_cookie`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MsiCookie {
    /// No DMA cookie on the device's domain: the message's address is the doorbell itself.
    Untranslated,
    /// The doorbell's page is mapped into the device's DMA domain.
    Mapped(MsiPage),
}

impl MsiCookie {
    /// `iommu_dma_compose_msi_msg`: the address the device writes its MSI to, for the doorbell
    /// at `doorbell` (the MSI controller's own message address).
    pub fn compose(self, doorbell: PhysAddr) -> DmaAddr {
        match self {
            MsiCookie::Untranslated => DmaAddr::new(doorbell.as_u64()),
            // The page's IOVA with the doorbell's offset in the granule (address_lo keeps the
            // offset bits, the IOVA is added; address_hi is the IOVA's upper half).
            MsiCookie::Mapped(p) => {
                let off = doorbell.as_u64() & p.granule.mask();
                DmaAddr::from_iova(Iova::new(p.iova.as_u64() + off))
            }
        }
    }
}

impl IommuCore {
    /// `iommu_dma_prepare_msi` for the device `dev` and the doorbell at `doorbell`. Called at
    /// interrupt allocation (`pci_alloc_irq_vectors` → the ITS's domain allocation), before
    /// the driver maps any buffer.
    pub fn iommu_dma_prepare_msi(
        &self,
        dev: DeviceId,
        doorbell: PhysAddr,
    ) -> Result<MsiCookie, DmaError> {
        let dev = self.device(dev).ok_or(DmaError::NoDevice)?;
        // `iommu_get_domain_for_dev`: the group's current domain.
        let group = dev.group.read().clone();
        let Some(dom) = group.and_then(|g| g.domain.lock().clone()) else {
            return Ok(MsiCookie::Untranslated);
        };
        if !matches!(dom.kind(), DomainKind::Dma | DomainKind::DmaFq) {
            return Ok(MsiCookie::Untranslated);
        }
        let shift = Self::granule_shift(&dom)?;
        let granule = PageSize::from_shift(shift)
            .map_err(|_| DmaError::Invalid("domain granule is not a page size"))?;
        let page = doorbell.align_down(granule);
        // Held from the lookup to the page's insertion, as `iommu_dma_prepare_msi` holds
        // `msi_prepare_lock` around `iommu_dma_get_msi_page`.
        let _prepare = self.msi_prepare_lock.lock();
        if let Some(p) = dom.lock().msi_pages.iter().find(|p| p.phys == page) {
            return Ok(MsiCookie::Mapped(*p));
        }
        let pfn = self.iova_alloc(&dev, &dom, PageCount::new(1))?;
        let iova = Iova::new(pfn.get() << shift);
        let prot = Prot::WRITE | Prot::NOEXEC | Prot::MMIO;
        if let Err(e) = dom.map_range(iova, page, granule.bytes(), prot) {
            if let Some(i) = dom.lock().iova.as_mut() {
                i.free_fast(pfn, PageCount::new(1));
            }
            return Err(e.into());
        }
        let p = MsiPage {
            phys: page,
            iova,
            granule,
        };
        dom.lock().msi_pages.push(p);
        Ok(MsiCookie::Mapped(p))
    }
}
