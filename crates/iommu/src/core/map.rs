//! Mapping through the core: `iommu_map` / `iommu_unmap` on unmanaged domains, `iova_to_phys`,
//! the live DMA domains.

use super::IommuCore;
use crate::domain::Domain;
use crate::error::CoreError;
use crate::ops::*;
use smmu_addr::{Iova, PhysAddr};
use smmu_sync::Arc;

impl IommuCore {
    /// `iommu_map` on an unmanaged domain: `size` bytes at `iova` to `paddr`, all aligned to the
    /// domain's smallest page size.
    pub fn iommu_map(
        &self,
        domain: &Arc<Domain>,
        iova: Iova,
        paddr: PhysAddr,
        size: u64,
        prot: Prot,
    ) -> Result<(), CoreError> {
        if domain.kind() != DomainKind::Unmanaged {
            return Err(CoreError::WrongKind(domain.kind()));
        }
        Self::check_not_freed(domain, "iommu_map")?;
        if iova.checked_add(size).is_none() || paddr.checked_add(size).is_none() {
            return Err(CoreError::Invalid("range overflows"));
        }
        domain.map_range(iova, paddr, size, prot)?;
        Ok(())
    }

    /// `iommu_unmap` on an unmanaged domain (strict). Returns the bytes unmapped.
    pub fn iommu_unmap(
        &self,
        domain: &Arc<Domain>,
        iova: Iova,
        size: u64,
    ) -> Result<u64, CoreError> {
        if domain.kind() != DomainKind::Unmanaged {
            return Err(CoreError::WrongKind(domain.kind()));
        }
        Self::check_not_freed(domain, "iommu_unmap")?;
        if iova.checked_add(size).is_none() {
            return Err(CoreError::Invalid("range overflows"));
        }
        Ok(domain.unmap_range(iova, size, true))
    }

    /// `iommu_iova_to_phys`: `None` where Linux returns 0 (nothing mapped).
    pub fn iova_to_phys(&self, domain: &Arc<Domain>, iova: Iova) -> Option<PhysAddr> {
        domain.driver().iova_to_phys(domain.driver_domain(), iova)
    }

    /// Every live DMA default domain (for draining and statistics).
    pub fn dma_domains(&self) -> Vec<Arc<Domain>> {
        let st = self.state.lock();
        st.groups
            .values()
            .filter_map(|g| g.default_domain())
            .filter(|d| matches!(d.kind(), DomainKind::Dma | DomainKind::DmaFq))
            .collect()
    }
}
