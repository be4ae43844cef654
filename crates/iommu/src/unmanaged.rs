//! What a device driver that manages its own domain calls besides map and unmap:
//! `iommu_domain_free`, `iommu_detach_device`, and the driver core's
//! `iommu_device_use_default_domain`/`iommu_device_unuse_default_domain` around a bind.
//!
//! Linux's semantics, misuse included: `iommu_domain_free` of a domain still attached frees it
//! anyway (the group keeps the dangling pointer, the device's streams keep pointing at the
//! context bank the driver just gave back); a detach of a domain the group is not attached
//! to, and an unbind of a device whose group has no claim left, are kernel warnings.

use crate::core::IommuCore;
use crate::domain::Domain;
use crate::error::CoreError;
use crate::ops::{DeviceId, DomainKind};
use klog::Level;
use smmu_sync::atomic::Ordering;
use smmu_sync::Arc;

/// The use-after-free of an unmanaged domain by `function` (KASAN's report).
fn freed(function: &'static str) -> CoreError {
    CoreError::UseAfterFree {
        object: "struct iommu_domain",
        function,
    }
}

impl IommuCore {
    /// A kernel warning (`WARN_ON`) of `iommu.c` about `dev`: printed and counted.
    fn warn(&self, dev: &str, what: &str) {
        self.counters.warnings.fetch_add(1, Ordering::Relaxed);
        self.log.printk(
            Level::Warning,
            &format!("WARNING: at drivers/iommu/iommu.c: {dev}: {what}"),
        );
    }

    /// `Err` when `domain` was freed: `function` used it after `iommu_domain_free`.
    pub(crate) fn check_not_freed(
        domain: &Domain,
        function: &'static str,
    ) -> Result<(), CoreError> {
        if domain.is_freed() {
            return Err(freed(function));
        }
        Ok(())
    }

    /// `iommu_domain_free` of an unmanaged domain: the driver destroys its context (arm-smmu
    /// clears the context bank and gives it back) now, whoever still holds the domain.
    ///
    /// Linux does not look at attachments here, and neither does the Linux-faithful core: a
    /// group still attached keeps pointing at the freed domain, its streams at the freed bank.
    /// The safe core refuses ([`CoreError::DomainAttached`]) and frees nothing. A second free
    /// is [`CoreError::UseAfterFree`].
    pub fn iommu_domain_free(&self, domain: &Arc<Domain>) -> Result<(), CoreError> {
        if domain.kind() != DomainKind::Unmanaged {
            return Err(CoreError::WrongKind(domain.kind()));
        }
        Self::check_not_freed(domain, "iommu_domain_free")?;
        if !self.cfg.linux_faithful {
            if let Some(group) = self.groups_attached_to(domain).first() {
                return Err(CoreError::DomainAttached { group: *group });
            }
        }
        if !domain.set_freed() {
            return Err(freed("iommu_domain_free"));
        }
        domain.driver().domain_free(domain.driver_domain());
        Ok(())
    }

    /// The live groups whose attached domain is `domain`.
    pub fn groups_attached_to(&self, domain: &Arc<Domain>) -> Vec<u32> {
        let groups: Vec<_> = self.state.lock().groups.values().cloned().collect();
        groups
            .iter()
            .filter(|g| {
                g.domain
                    .lock()
                    .as_ref()
                    .is_some_and(|d| Arc::ptr_eq(d, domain))
            })
            .map(|g| g.id)
            .collect()
    }

    /// `iommu_detach_device(domain, dev)`: the device's group goes back to its default
    /// domain. A domain the group is not attached to, or a group of more than one device, is
    /// a kernel warning and nothing changes (`Ok(false)`); `Ok(true)` when it detached.
    pub fn iommu_detach_device(
        &self,
        dev: DeviceId,
        domain: &Arc<Domain>,
    ) -> Result<bool, CoreError> {
        let d = self.device(dev).ok_or(CoreError::NoDevice(dev.0))?;
        // No group (released): nothing to detach from.
        let Some(g) = d.group.read().clone() else {
            return Ok(false);
        };
        let attached = g.domain.lock().clone();
        if !attached.is_some_and(|a| Arc::ptr_eq(&a, domain)) {
            self.warn(
                &d.desc.log_name,
                "iommu_detach_device of a domain its group is not attached to",
            );
            return Ok(false);
        }
        if g.members.lock().len() != 1 {
            self.warn(
                &d.desc.log_name,
                "iommu_detach_device on a group of more than one device",
            );
            return Ok(false);
        }
        self.detach_device(dev)?;
        Ok(true)
    }

    /// `iommu_device_use_default_domain`, what the driver core's `dma_configure` calls
    /// before a driver's `.probe` (drivers without `driver_managed_dma`): one more claim on
    /// the group's default domain; `-EBUSY` ([`CoreError::DefaultDomainBusy`]) when the group is owned
    /// by a user or attached to another domain. A device with no group needs no claim.
    pub fn use_default_domain(&self, dev: DeviceId) -> Result<(), CoreError> {
        let d = self.device(dev).ok_or(CoreError::NoDevice(dev.0))?;
        let Some(g) = d.group.read().clone() else {
            return Ok(());
        };
        let mut o = g.owner.lock();
        if o.1 > 0 {
            let on_default = match (g.domain.lock().as_ref(), g.default_domain()) {
                (Some(a), Some(def)) => Arc::ptr_eq(a, &def),
                (None, None) => true,
                _ => false,
            };
            if o.0.is_some() || !on_default {
                return Err(CoreError::DefaultDomainBusy);
            }
        }
        o.1 += 1;
        Ok(())
    }

    /// `iommu_device_unuse_default_domain`, after a driver's `.remove` on unbind: drops the
    /// bind's claim; a group with no claim left is a kernel warning.
    pub fn unuse_default_domain(&self, dev: DeviceId) {
        let Some(d) = self.device(dev) else { return };
        let Some(g) = d.group.read().clone() else {
            return;
        };
        let mut o = g.owner.lock();
        if o.1 == 0 {
            drop(o);
            self.warn(
                &d.desc.log_name,
                "iommu_device_unuse_default_domain with no claim on the group",
            );
            return;
        }
        o.1 -= 1;
    }
}
