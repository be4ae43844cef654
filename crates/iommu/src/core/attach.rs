//! Domain attach: unmanaged domain allocation, attaching and detaching a device's group.

use super::{Group, InstanceId, IommuCore};
use crate::domain::Domain;
use crate::error::CoreError;
use crate::ops::*;
use smmu_sync::Arc;

impl IommuCore {
    /// Allocate an unmanaged domain on an instance (`iommu_domain_alloc`), for a driver that
    /// manages its own IOVAs with [`Self::iommu_map`].
    pub fn alloc_unmanaged(&self, inst: InstanceId) -> Result<Arc<Domain>, CoreError> {
        let driver = self
            .state
            .lock()
            .instances
            .get(&inst)
            .cloned()
            .ok_or(CoreError::NoInstance(inst.0))?;
        let handle = driver.domain_alloc(DomainKind::Unmanaged)?;
        Ok(self
            .state
            .lock()
            .new_domain(DomainKind::Unmanaged, inst, driver, handle))
    }

    /// Attach `domain` to the device's whole group (`iommu_attach_device`).
    pub fn attach_device(&self, dev: DeviceId, domain: &Arc<Domain>) -> Result<(), CoreError> {
        let d = self.device(dev).ok_or(CoreError::NoDevice(dev.0))?;
        let g = d.group.read().clone().ok_or(CoreError::NoGroup(dev.0))?;
        if domain.instance() != g.instance.0 {
            return Err(CoreError::WrongInstance);
        }
        Self::check_not_freed(domain, "iommu_attach_device")?;
        self.attach_group(&g, domain)
    }

    /// Detach the device's group from a driver-attached domain: back to the default domain.
    pub fn detach_device(&self, dev: DeviceId) -> Result<(), CoreError> {
        let d = self.device(dev).ok_or(CoreError::NoDevice(dev.0))?;
        let g = d.group.read().clone().ok_or(CoreError::NoGroup(dev.0))?;
        let def = g.default_domain().ok_or(CoreError::NoGroup(dev.0))?;
        self.attach_group(&g, &def)
    }

    fn attach_group(&self, g: &Arc<Group>, domain: &Arc<Domain>) -> Result<(), CoreError> {
        let members = g.members.lock().clone();
        let driver = domain.driver().clone();
        for &m in &members {
            driver.attach_dev(domain.driver_domain(), m)?;
        }
        if let Some(geo) = driver.geometry(domain.driver_domain()) {
            domain.init_dma(&self.cfg, geo)?;
        }
        *g.domain.lock() = Some(domain.clone());
        let st = self.state.lock();
        for m in &members {
            if let Some(d) = st.devices.get(m) {
                *d.attached.lock() = Some(domain.id());
            }
        }
        Ok(())
    }
}
