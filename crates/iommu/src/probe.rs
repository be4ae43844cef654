//! A device's probe onto an IOMMU (`iommu_probe_device`), in the steps where Linux can be
//! preempted: the driver takes the master, the driver's `device_group` names its group, the
//! core finds or allocates that group, the group's default domain is allocated, the device is
//! attached to it and the reserved regions it must see are identity-mapped. Between the steps
//! sit scheduling points, and the locks each step holds are the era's: one switch per Linux
//! fix in [`CoreConfig`](crate::CoreConfig) —
//!
//! * `probe_serialised` (b54240ad4943): `iommu_probe_device_lock` around the whole probe;
//! * `default_domain_under_group_mutex` (211ff31b3d33): the default domain's lookup and
//!   allocation under `group->mutex`;
//! * `attach_under_group_mutex` (556f99ac8866): `group->mutex` kept over the attach and the
//!   direct mappings.
//!
//! The DMA-ownership claim (`iommu_device_claim_dma_owner`, a6a9a5da6808) is here too: it
//! takes and puts a reference to the device's group.

use crate::core::{Device, DeviceDesc, Group, InstanceId, IommuCore};
use crate::domain::{Domain, DomainId};
use crate::error::CoreError;
use crate::ops::*;
use klog::{dev_line, Level};
use smmu_addr::{Iova, PageSize, PhysAddr};
use smmu_sync::atomic::{AtomicBool, Ordering};
use smmu_sync::{sched_point, Arc, Mutex, Point, RwLock};
use std::collections::BTreeMap;

/// The granule the direct mappings are made in.
const DIRECT_PAGE: PageSize = PageSize::SZ_4K;

impl IommuCore {
    /// Probe a device onto an instance (`iommu_probe_device`): the driver takes the master
    /// (`probe_device`), names its group (`device_group`), the device joins the group of that
    /// key or a new one (lowest free number), the group's default domain is allocated by its
    /// first member, the device is attached to the group's domain and its direct regions are
    /// mapped. Prints `Adding to iommu group N` when the device joins its group, before the
    /// default domain and the attach (see [`Self::join_point_line`]); a probe that fails after
    /// that leaves the group as a release does, with its `Removing` line where the era prints
    /// one. Up to v6.4 a device joining a group that already has a domain is attached to it at
    /// the join, before the line; if that fails it prints `Failed to add to iommu group N: ERR`
    /// instead and the probe fails without a release of the group
    /// ([`crate::CoreConfig::join_attaches_to_group_domain`]).
    pub fn probe_device(&self, desc: DeviceDesc, inst: InstanceId) -> Result<DeviceId, CoreError> {
        let serial = self.cfg.probe_serialised.then(|| self.probe_lock.lock());
        let (driver, id) = {
            let mut st = self.state.lock();
            let driver = st
                .instances
                .get(&inst)
                .cloned()
                .ok_or(CoreError::NoInstance(inst.0))?;
            let id = DeviceId(st.next_device);
            st.next_device += 1;
            (driver, id)
        };
        self.dev_iommu_get(&desc.log_name);
        let info = MasterInfo {
            id,
            log_name: desc.log_name.clone(),
            fwspec: desc.fwspec.clone(),
        };
        if let Err(e) = driver.probe_device(&info) {
            self.dev_iommu_free(&desc.log_name);
            return Err(e.into());
        }
        sched_point(Point::Kernel);
        let key = match driver.device_group(id) {
            Ok(k) => k,
            Err(e) => {
                driver.release_device(id);
                self.dev_iommu_free(&desc.log_name);
                return Err(e.into());
            }
        };
        // The device now holds a reference to its group until it leaves it.
        let group = self.group_of_key(inst, key);
        if !self.cfg.domains_freed_with_last_member {
            // iommu_group_add_device: on the group's device list right after device_group,
            // attached to the group's domain if it has one (up to v6.4).
            if let Err(e) = self.join_group_at_probe(&driver, &group, id) {
                if let Some(errno) = e.errno() {
                    self.log.printk(
                        Level::Err,
                        &dev_line(
                            &desc.log_name,
                            &format!("Failed to add to iommu group {}: {errno}", group.id),
                        ),
                    );
                }
                // iommu_group_get_for_dev's put, then __iommu_probe_device's out_release.
                self.put_device_ref(&group);
                driver.release_device(id);
                self.dev_iommu_free(&desc.log_name);
                return Err(e.into());
            }
        }
        self.join_point_line(&desc.log_name, group.id);
        sched_point(Point::Kernel);
        let attached = self.default_domain_and_attach(&driver, &group, &desc, id);
        // The IOMMU probe is over; of_dma_configure() sets up the DMA ops outside its lock.
        drop(serial);
        let joined = attached.and_then(|dom| self.setup_dma_ops(&driver, &dom));
        if let Err(e) = joined {
            // v6.1's err_release: iommu_release_device, the device's whole release (its group
            // pointer was never published).
            self.release_steps(&*driver, &desc.log_name, &group, id, || {});
            return Err(e);
        }
        let direct = group
            .default_domain()
            .is_some_and(|d| d.kind() == DomainKind::Identity);
        let attached = group.domain.lock().as_ref().map(|d| d.id());
        let dev = Arc::new(Device {
            id,
            desc,
            instance: inst,
            driver,
            group: RwLock::new(Some(group.clone())),
            released: AtomicBool::new(false),
            direct,
            direct_maps: Mutex::new(BTreeMap::new()),
            attached: Mutex::new(attached),
        });
        self.state.lock().devices.insert(id, dev.clone());
        Ok(id)
    }

    /// `Adding to iommu group N`, printed where the device joins its group, before its group's
    /// default domain is looked at and before the attach. Up to v6.5 that is the end of
    /// `iommu_group_add_device`, called by `__iommu_probe_device` once `device_group` named the
    /// group and after the device went on the group's list; from fa0828036488 ("iommu: Split
    /// iommu_group_add_device()", v6.6) it is the end of `iommu_group_alloc_device`, just
    /// before the list add under `group->mutex`. Either way a probe that then fails to attach
    /// has printed it.
    fn join_point_line(&self, dev_name: &str, group: u32) {
        self.log.printk(
            Level::Info,
            &dev_line(dev_name, &format!("Adding to iommu group {group}")),
        );
    }

    /// `dev_iommu_get`: the device's `dev->iommu`, allocated if it has none.
    fn dev_iommu_get(&self, name: &str) -> u32 {
        let mut st = self.state.lock();
        if let Some(&id) = st.dev_iommu.get(name) {
            return id;
        }
        st.next_dev_iommu += 1;
        let id = st.next_dev_iommu;
        st.dev_iommu.insert(name.to_string(), id);
        id
    }

    /// `dev_iommu_free` after a failed probe: `dev->iommu` is freed and cleared.
    fn dev_iommu_free(&self, name: &str) {
        let mut st = self.state.lock();
        if let Some(id) = st.dev_iommu.remove(name) {
            st.dev_iommu_freed.insert(id);
        }
    }

    /// `of_iommu_configure` for a device (the driver core's probe, or its deferred-probe
    /// work, before `iommu_probe_device`): load `dev->iommu` (allocating one if the device has
    /// none), then read the fwspec through it. Serialised with probe by
    /// `iommu_probe_device_lock` with `probe_serialised` (b54240ad4943); without it a failed
    /// probe can free `dev->iommu` between the load and the read: [`CoreError::UseAfterFree`].
    pub fn of_iommu_configure(&self, desc: &DeviceDesc) -> Result<(), CoreError> {
        let _serial = self.cfg.probe_serialised.then(|| self.probe_lock.lock());
        let loaded = self.dev_iommu_get(&desc.log_name);
        sched_point(Point::Kernel);
        if self.state.lock().dev_iommu_freed.contains(&loaded) {
            return Err(CoreError::UseAfterFree {
                object: "dev->iommu",
                function: "of_iommu_configure",
            });
        }
        Ok(())
    }

    /// The group of `key` on `inst`, or a new one (lowest free number) with no default domain
    /// yet, with a reference for the probing device (`iommu_group_ref_get` of the group found,
    /// or the reference `iommu_group_alloc` returns). One step: finding and allocating are one
    /// critical section of the core's state.
    fn group_of_key(&self, inst: InstanceId, key: Option<u64>) -> Arc<Group> {
        let mut st = self.state.lock();
        if let Some(k) = key {
            if let Some(g) = st
                .groups
                .values()
                .find(|g| g.instance == inst && g.key == Some(k))
            {
                *g.device_refs.lock() += 1;
                return g.clone();
            }
        }
        // ida_alloc: the lowest free number.
        let mut gid = 0;
        for &used in st.groups.keys() {
            if used != gid {
                break;
            }
            gid += 1;
        }
        let group = Arc::new(Group::new(gid, inst, key));
        st.groups.insert(gid, group.clone());
        self.counters.groups_created.fetch_add(1, Ordering::Relaxed);
        group
    }

    /// `id` goes on `group`'s device list under `group->mutex` (the model goes on without the
    /// lock when waiting for it can never end: the waiting task reports the deadlock).
    fn join_group(&self, group: &Arc<Group>, id: DeviceId) {
        let held = group.mutex.lock().ok();
        group.members.lock().push(id);
        drop(held);
    }

    /// `id` joins `group` at its probe (v6.5 and before): on the device list under
    /// `group->mutex` and, with `join_attaches_to_group_domain`, attached there to the group's
    /// current domain if it has one. A failed attach takes the device off the list again, in
    /// a second critical section as Linux's error path does.
    fn join_group_at_probe(
        &self,
        driver: &Arc<dyn IommuDriver>,
        group: &Arc<Group>,
        id: DeviceId,
    ) -> Result<(), DriverError> {
        let held = group.mutex.lock().ok();
        group.members.lock().push(id);
        let domain = self
            .cfg
            .join_attaches_to_group_domain
            .then(|| group.domain.lock().clone())
            .flatten();
        let Some(domain) = domain else {
            return Ok(());
        };
        let attached = driver.attach_dev(domain.driver_domain(), id);
        drop(held);
        if attached.is_err() {
            sched_point(Point::Kernel);
            let held = group.mutex.lock().ok();
            group.members.lock().retain(|&d| d != id);
            drop(held);
        }
        attached
    }

    /// The default domain (allocated once per group), the attach and the direct mappings,
    /// under `group->mutex` as far as the kernel's switches say. Returns the attached domain.
    fn default_domain_and_attach(
        &self,
        driver: &Arc<dyn IommuDriver>,
        group: &Arc<Group>,
        desc: &DeviceDesc,
        id: DeviceId,
    ) -> Result<Arc<Domain>, CoreError> {
        let mut held = if self.cfg.default_domain_under_group_mutex {
            Some(group.mutex.lock().map_err(DriverError::from)?)
        } else {
            None
        };
        if self.cfg.domains_freed_with_last_member {
            // __iommu_probe_device puts the device on the list before it looks at the
            // default domain, which a release that emptied the list in between has freed.
            match &held {
                Some(_) => group.members.lock().push(id),
                None => self.join_group(group, id),
            }
        }
        if group.default_domain().is_none() {
            // iommu_alloc_default_domain() found none: allocate one, then set it.
            sched_point(Point::Kernel);
            let dom = self.alloc_default_domain(driver, group.instance, id)?;
            *group.default_domain.write() = Some(dom.clone());
            *group.domain.lock() = Some(dom);
        }
        if !self.cfg.attach_under_group_mutex {
            held.take();
        }
        sched_point(Point::Kernel);
        let domain = group
            .domain
            .lock()
            .clone()
            .ok_or(CoreError::NoGroup(id.0))?;
        driver
            .attach_dev(domain.driver_domain(), id)
            .map_err(CoreError::from)?;
        if driver.geometry(domain.driver_domain()).is_none()
            && matches!(domain.kind(), DomainKind::Dma | DomainKind::DmaFq)
        {
            return Err(CoreError::Geometry("driver gave no geometry after attach"));
        }
        self.direct_mappings(&domain, desc);
        drop(held);
        Ok(domain)
    }

    /// `of_dma_configure` → `iommu_setup_dma_ops` once the IOMMU probe has returned (outside
    /// `group->mutex`): `iommu_dma_init_domain` of the attached domain.
    fn setup_dma_ops(
        &self,
        driver: &Arc<dyn IommuDriver>,
        domain: &Arc<Domain>,
    ) -> Result<(), CoreError> {
        sched_point(Point::Kernel);
        match driver.geometry(domain.driver_domain()) {
            Some(g) => domain.init_dma(&self.cfg, g),
            None => Ok(()),
        }
    }

    /// io-pgtable's `WARN_ON` when a map meets a live leaf (the -EEXIST of
    /// `arm_lpae_init_pte`): printed, and counted in [`CoreStats::warnings`](crate::CoreStats).
    pub(crate) fn warn_if_already_mapped(&self, dev_name: &str, e: &DriverError) {
        if let DriverError::PgTable(PgTableError::Exists { iova }) = e {
            self.counters.warnings.fetch_add(1, Ordering::Relaxed);
            self.log.printk(
                Level::Warning,
                &format!(
                    "WARNING: at drivers/iommu/io-pgtable-arm.c: {dev_name}: map of IOVA {iova:#x} met a live entry: {e}"
                ),
            );
        }
    }

    /// The default domain's kind for the command line (or the driver's insistence), allocated
    /// by the driver; a DMA_FQ domain the driver cannot do falls back to strict.
    fn alloc_default_domain(
        &self,
        driver: &Arc<dyn IommuDriver>,
        inst: InstanceId,
        dev: DeviceId,
    ) -> Result<Arc<Domain>, CoreError> {
        let kind = driver
            .def_domain_kind(dev)
            .unwrap_or(if self.cfg.passthrough {
                DomainKind::Identity
            } else if self.cfg.strict {
                DomainKind::Dma
            } else {
                DomainKind::DmaFq
            });
        let (kind, handle) = match driver.domain_alloc(kind) {
            Ok(h) => (kind, h),
            Err(_) if kind == DomainKind::DmaFq => {
                (DomainKind::Dma, driver.domain_alloc(DomainKind::Dma)?)
            }
            Err(e) => return Err(e.into()),
        };
        Ok(self
            .state
            .lock()
            .new_domain(kind, inst, driver.clone(), handle))
    }

    /// `iommu_create_device_direct_mappings`: each page of the device's direct regions that
    /// does not translate yet is mapped to itself. A page mapped by someone else between the
    /// check and the map meets io-pgtable's "already mapped" warning (-EEXIST).
    fn direct_mappings(&self, domain: &Arc<Domain>, desc: &DeviceDesc) {
        if !matches!(domain.kind(), DomainKind::Dma | DomainKind::DmaFq) {
            return;
        }
        for &(base, size) in &desc.direct_regions {
            let (base, page_size) = (base.as_u64(), DIRECT_PAGE.bytes());
            let mut page = base & !(page_size - 1);
            while page < base.saturating_add(size) {
                // Identity: the page's IOVA is its physical address.
                let (iova, pa) = (Iova::new(page), PhysAddr::new(page));
                if self.iova_to_phys(domain, iova).is_none() {
                    sched_point(Point::Kernel);
                    let prot = Prot::READ | Prot::WRITE;
                    if let Err(e) = domain.map_range(iova, pa, page_size, prot) {
                        self.warn_if_already_mapped(&desc.log_name, &e);
                    }
                }
                page += page_size;
            }
        }
    }

    /// `iommu_device_claim_dma_owner(dev, owner)`: claim DMA ownership of the device's group
    /// for `owner` (`None` is a NULL owner, refused with -EINVAL). Takes a reference to the
    /// group (`iommu_group_get`) and puts it on the way out.
    pub fn claim_dma_owner(&self, dev: DeviceId, owner: Option<&str>) -> Result<(), CoreError> {
        let d = self.device(dev).ok_or(CoreError::NoDevice(dev.0))?;
        let g = d.group.read().clone().ok_or(CoreError::NoGroup(dev.0))?;
        *g.refs.lock() += 1;
        let put = || {
            *g.refs.lock() -= 1;
            self.put_if_unreferenced(&g);
        };
        let Some(owner) = owner else {
            // Before a6a9a5da6808 this return kept the reference.
            if self.cfg.claim_owner_puts_group_on_error {
                put();
            }
            return Err(CoreError::Invalid("NULL DMA owner"));
        };
        let r = {
            let mut o = g.owner.lock();
            match &o.0 {
                Some(cur) if o.1 > 0 && cur != owner => Err(CoreError::OwnerBusy),
                _ => {
                    o.0 = Some(owner.to_string());
                    o.1 += 1;
                    Ok(())
                }
            }
        };
        put();
        r
    }

    /// `iommu_device_release_dma_owner(dev)`: drop one claim.
    pub fn release_dma_owner(&self, dev: DeviceId) {
        let Some(g) = self.device(dev).and_then(|d| d.group.read().clone()) else {
            return;
        };
        let mut o = g.owner.lock();
        o.1 = o.1.saturating_sub(1);
        if o.1 == 0 {
            o.0 = None;
        }
    }

    /// References to `group` taken with `iommu_group_get` and never put (0 when every one was
    /// put; `None` for no such group).
    pub fn group_refs_outstanding(&self, group: u32) -> Option<i64> {
        let g = self.state.lock().groups.get(&group).cloned()?;
        let n = *g.refs.lock();
        Some(n)
    }

    /// The domain the driver attached `dev` to (`None` before an attach or for no such
    /// device).
    pub fn device_domain(&self, dev: DeviceId) -> Option<DomainId> {
        let d = self.device(dev)?;
        let id = *d.attached.lock();
        id
    }
}
