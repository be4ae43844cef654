//! Devices and groups: release (`iommu_release_device`, in bus order on unregister) and
//! the device/group queries.

use super::{Bus, Device, Group, InstanceId, IommuCore, ReleaseSteps};
use crate::domain::Domain;
use crate::ops::*;
use klog::{dev_line, Level};
use smmu_sync::atomic::Ordering;
use smmu_sync::{sched_point, Arc, Point};

impl IommuCore {
    /// The order in which `unregister` releases the devices of `inst` (bus walk order).
    pub fn release_order(&self, inst: InstanceId) -> Vec<DeviceId> {
        let st = self.state.lock();
        let mut devs: Vec<(Bus, u64, DeviceId)> = st
            .devices
            .values()
            .filter(|d| d.instance == inst && !d.released.load(Ordering::Acquire))
            .map(|d| (d.desc.bus, d.desc.bus_pos, d.id))
            .collect();
        devs.sort();
        devs.into_iter().map(|(_, _, id)| id).collect()
    }

    /// Release a device from its IOMMU (`iommu_release_device`): the driver forgets the master
    /// and the device leaves its group, in the era's order ([`crate::ReleaseSteps`]; up to v6.3
    /// with `Removing from iommu group N`), and its group pointer becomes NULL; an empty group
    /// is freed with its domains. A second release is a no-op.
    pub fn release_device(&self, dev: DeviceId) {
        let _p = self.probe_lock.lock();
        self.release_locked(dev);
    }

    pub(super) fn release_locked(&self, id: DeviceId) {
        let Some(dev) = self.state.lock().devices.get(&id).cloned() else {
            return;
        };
        if dev.released.swap(true, Ordering::AcqRel) {
            return;
        }
        self.counters
            .devices_released
            .fetch_add(1, Ordering::Relaxed);
        let Some(group) = dev.group.read().clone() else {
            // A device without a group has nothing to unlink; the driver still forgets it.
            dev.driver.release_device(id);
            return;
        };
        // dev->iommu_group = NULL. In safe mode DMA API calls hold the read side for their
        // whole duration, so this waits for calls in flight and later calls see the release.
        self.release_steps(&*dev.driver, &dev.desc.log_name, &group, id, || {
            *dev.group.write() = None;
        });
    }

    /// The steps of `iommu_release_device` for `id`, a member of `group`, in this era's order
    /// ([`crate::CoreConfig::release_steps`]); `clear_group` is the store of NULL into
    /// `dev->iommu_group`. Ends with the put of the reference the device held since its probe.
    pub(crate) fn release_steps(
        &self,
        driver: &dyn IommuDriver,
        dev_name: &str,
        group: &Arc<Group>,
        id: DeviceId,
        clear_group: impl FnOnce(),
    ) {
        match self.cfg.release_steps {
            ReleaseSteps::DriverThenGroup => {
                driver.release_device(id);
                sched_point(Point::Kernel);
                // iommu_group_remove_device.
                self.group_removal_line(dev_name, group.id);
                self.leave_group(group, id, || {}, || {});
                clear_group();
            }
            ReleaseSteps::UnlinkThenDriver => {
                self.leave_group(group, id, || driver.release_device(id), || {});
                sched_point(Point::Kernel);
                // __iommu_group_release_device, after the mutex is dropped.
                clear_group();
            }
            // iommu_deinit_device clears the pointer under the mutex, after the domains' free.
            ReleaseSteps::Deinit => {
                self.leave_group(group, id, || driver.release_device(id), clear_group);
            }
        }
        sched_point(Point::Kernel);
        // iommu_group_put.
        self.put_device_ref(group);
    }

    /// `Removing from iommu group N` of a device's release, in the eras whose release prints it
    /// ([`crate::ReleaseSteps::prints_removal`]).
    pub(crate) fn group_removal_line(&self, dev_name: &str, group: u32) {
        if self.cfg.release_steps.prints_removal() {
            self.log.printk(
                Level::Info,
                &dev_line(dev_name, &format!("Removing from iommu group {group}")),
            );
        }
    }

    /// `id` leaves `group`'s device list under `group->mutex`, then `release` runs under it (the
    /// driver's release in the eras that release after the unlink); with
    /// `domains_freed_with_last_member` the leaver that empties the list frees the group's
    /// domains (`iommu_deinit_device`), and `last` runs before the mutex is dropped. The
    /// device still holds its reference.
    pub(crate) fn leave_group(
        &self,
        group: &Arc<Group>,
        id: DeviceId,
        release: impl FnOnce(),
        last: impl FnOnce(),
    ) {
        // A wait for the mutex that can never end would hang the kernel here; the model goes
        // on without it (the run's other task already reports the deadlock).
        let held = group.mutex.lock().ok();
        let now_empty = {
            let mut m = group.members.lock();
            m.retain(|&d| d != id);
            m.is_empty()
        };
        release();
        if now_empty && self.cfg.domains_freed_with_last_member {
            let default = group.default_domain.write().take();
            let current = group.domain.lock().take();
            for d in [&default, &current].into_iter().flatten() {
                d.set_dying();
                d.free_flush_queue(self.cfg.fq_teardown_waits_for_timer);
            }
            self.state.lock().orphan_mapped(&[&default, &current]);
        }
        last();
        drop(held);
    }

    /// Put a device's reference to `group`; the last reference frees it.
    pub(crate) fn put_device_ref(&self, group: &Arc<Group>) {
        {
            let mut n = group.device_refs.lock();
            *n = n.saturating_sub(1);
        }
        self.put_if_unreferenced(group);
    }

    /// `iommu_group_release` once no reference is left: unless the last member already freed
    /// them, the group's domains are freed with it, and its number is free again.
    pub(crate) fn put_if_unreferenced(&self, group: &Arc<Group>) {
        if *group.device_refs.lock() > 0 || *group.refs.lock() > 0 {
            return;
        }
        if group.freed.swap(true, Ordering::AcqRel) {
            return;
        }
        let default = group.default_domain();
        let current = group.domain.lock().clone();
        for d in [&default, &current].into_iter().flatten() {
            d.set_dying();
            d.free_flush_queue(self.cfg.fq_teardown_waits_for_timer);
        }
        let mut st = self.state.lock();
        let removed = match st.groups.get(&group.id) {
            Some(g) if Arc::ptr_eq(g, group) => st.groups.remove(&group.id),
            _ => None,
        };
        st.orphan_mapped(&[&default, &current]);
        drop(st);
        drop(current);
        self.counters.groups_freed.fetch_add(1, Ordering::Relaxed);
        // Otherwise the domains are freed in the driver when the last in-flight call drops
        // them.
        drop(removed);
    }

    /// Domains of freed groups kept alive because they still hold mappings.
    pub fn orphaned_domains(&self) -> Vec<Arc<Domain>> {
        self.state.lock().orphans.clone()
    }

    /// The group number of a device (`None` after release).
    pub fn group_of(&self, dev: DeviceId) -> Option<u32> {
        let d = self.state.lock().devices.get(&dev).cloned()?;
        let g = d.group.read().as_ref().map(|g| g.id);
        g
    }

    /// Devices of a group, in join order.
    pub fn group_members(&self, group: u32) -> Vec<DeviceId> {
        let g = self.state.lock().groups.get(&group).cloned();
        g.map(|g| g.members.lock().clone()).unwrap_or_default()
    }

    /// Live group numbers.
    pub fn groups(&self) -> Vec<u32> {
        self.state.lock().groups.keys().copied().collect()
    }

    /// The device's Linux name.
    pub fn log_name(&self, dev: DeviceId) -> Option<String> {
        self.state
            .lock()
            .devices
            .get(&dev)
            .map(|d| d.desc.log_name.clone())
    }

    /// Whether the device was released from its IOMMU.
    pub fn is_released(&self, dev: DeviceId) -> Option<bool> {
        self.state
            .lock()
            .devices
            .get(&dev)
            .map(|d| d.released.load(Ordering::Acquire))
    }

    /// The default domain of a device's group (`iommu_get_dma_domain`, checked).
    pub fn default_domain(&self, dev: DeviceId) -> Option<Arc<Domain>> {
        let d = self.device(dev)?;
        let g = d.group.read().as_ref().and_then(|g| g.default_domain());
        g
    }

    /// The domain currently attached to a device's group.
    pub fn attached_domain(&self, dev: DeviceId) -> Option<Arc<Domain>> {
        let d = self.device(dev)?;
        let g = d.group.read().clone()?;
        let dom = g.domain.lock().clone();
        dom
    }

    pub(crate) fn device(&self, dev: DeviceId) -> Option<Arc<Device>> {
        self.state.lock().devices.get(&dev).cloned()
    }
}
