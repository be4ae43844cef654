//! The `iommu::IommuDriver` contract for the core: masters, domains, attach, map/unmap.

use super::{ArmSmmuV3, DomainState, SmmuDomain, SmmuMaster};
use crate::fw::KernelVersion;
use crate::ste as stemod;
use iommu::{
    DeviceId, DomainKind, DriverDomain, DriverError, Gather, Geometry, IommuDriver, MasterInfo,
    Prot,
};
use klog::{dev_line, Level};
use pgtable::Stage;
use smmu_addr::{Iova, PageCount, PageSize, PhysAddr};
use smmu_sync::atomic::Ordering;
use smmu_sync::{Arc, Mutex};

impl IommuDriver for ArmSmmuV3 {
    fn log_name(&self) -> &str {
        &self.hw.prefix
    }

    fn probe_device(&self, m: &MasterInfo) -> Result<(), DriverError> {
        if self.quiesced.load(Ordering::SeqCst) {
            return Err(DriverError::Busy);
        }
        if self.masters.lock().contains_key(&m.id) {
            return Err(DriverError::Busy);
        }
        let sids: Vec<u32> = m.fwspec.ids.clone();
        for &sid in &sids {
            self.init_sid_strtab(sid)?;
            let taken = self.masters.lock().values().any(|o| o.sids.contains(&sid));
            if taken {
                self.hw.log.printk(
                    Level::Warning,
                    &dev_line(&m.log_name, &format!("stream {sid} already in tree")),
                );
                return Err(DriverError::StreamInUse { sid });
            }
        }
        self.masters.lock().insert(
            m.id,
            SmmuMaster {
                sids,
                domain: None,
                cdtab: None,
            },
        );
        Ok(())
    }

    fn release_device(&self, dev: DeviceId) {
        let Some(mut master) = self.masters.lock().remove(&dev) else {
            return;
        };
        // v6.1: arm_smmu_detach_dev; v6.12: attach the blocked domain. Both put the STE back to
        // what init set (abort with disable_bypass).
        if master.domain.take().is_some() {
            let target = stemod::initial(&self.hw);
            self.install_ste(&master, &target);
        }
        if let Some(d) = self
            .domains
            .read()
            .values()
            .find(|d| d.masters.lock().contains(&dev))
        {
            d.masters.lock().retain(|&x| x != dev);
        }
    }

    fn device_group(&self, _dev: DeviceId) -> Result<Option<u64>, DriverError> {
        // pci_device_group / generic_device_group: no StreamID sharing beyond PCI aliases.
        Ok(None)
    }

    fn domain_alloc(&self, kind: DomainKind) -> Result<DriverDomain, DriverError> {
        if kind == DomainKind::Blocked && self.hw.version == KernelVersion::V6_1 {
            return Err(DriverError::NotSupported);
        }
        let id = self.next_domain.fetch_add(1, Ordering::Relaxed);
        let d = Arc::new(SmmuDomain {
            kind,
            state: Mutex::new(DomainState::Unfinalised),
            masters: Mutex::new(Vec::new()),
        });
        self.domains.write().insert(id, d);
        Ok(DriverDomain(id))
    }

    fn domain_free(&self, dom: DriverDomain) {
        let Some(d) = self.domains.write().remove(&dom.0) else {
            return;
        };
        let old = std::mem::replace(&mut *d.state.lock(), DomainState::Unfinalised);
        if let DomainState::Paging(c) = old {
            // The tables go now rather than with the last reference to the context, which a
            // driver snapshot may hold. Cannot fail for pages the table allocated itself.
            let _ = c.table.lock().free_tables();
            match c.stage {
                Stage::S1 => {
                    if let Some(a) = self.asids.lock().get_mut(usize::from(c.asid)) {
                        *a = false;
                    }
                }
                Stage::S2 => {
                    if let Some(v) = self.vmids.lock().get_mut(usize::from(c.vmid)) {
                        *v = false;
                    }
                }
            }
        }
    }

    fn attach_dev(&self, dom: DriverDomain, dev: DeviceId) -> Result<(), DriverError> {
        if self.quiesced.load(Ordering::SeqCst) {
            return Err(DriverError::Busy);
        }
        let Some(d) = self.domain(dom) else {
            return Err(DriverError::NoDomain { id: dom.0 });
        };
        let Some(mut master) = self.masters.lock().get(&dev).cloned() else {
            return Err(DriverError::NoDevice);
        };
        let v61 = self.hw.version == KernelVersion::V6_1;
        if v61 && master.domain.is_some() {
            // arm_smmu_detach_dev: back to abort/bypass first.
            master.domain = None;
            self.install_ste(&master, &stemod::initial(&self.hw));
        }
        let mut st = d.state.lock();
        if let DomainState::Unfinalised = &*st {
            *st = self.finalise(d.kind)?;
        }
        if !v61 {
            if let DomainState::Paging(c) = &*st {
                if c.stage == Stage::S1 {
                    self.write_master_cd(&mut master, &c.cd)?;
                }
            }
        }
        let target = self.target_ste(&master, &st);
        drop(st);
        master.domain = Some(dom.0);
        self.install_ste(&master, &target);
        d.masters.lock().push(dev);
        self.masters.lock().insert(dev, master);
        Ok(())
    }

    fn geometry(&self, dom: DriverDomain) -> Option<Geometry> {
        let c = self.ctx(dom)?;
        Some(Geometry {
            aperture_start: Iova::ZERO,
            aperture_end: Iova::new(if c.ias >= 64 {
                u64::MAX
            } else {
                (1u64 << c.ias) - 1
            }),
            pgsize_bitmap: c.pgsizes,
        })
    }

    fn map_pages(
        &self,
        dom: DriverDomain,
        iova: Iova,
        paddr: PhysAddr,
        pgsize: PageSize,
        pgcount: PageCount,
        prot: Prot,
    ) -> Result<u64, DriverError> {
        let c = self.ctx(dom).ok_or(DriverError::NoDevice)?;
        let mapped = c
            .table
            .lock()
            .map_pages(iova, paddr, pgsize, pgcount, prot)?;
        Ok(mapped)
    }

    fn unmap_pages(
        &self,
        dom: DriverDomain,
        iova: Iova,
        pgsize: PageSize,
        pgcount: PageCount,
        gather: &mut Gather,
    ) -> u64 {
        let Some(c) = self.ctx(dom) else {
            return 0;
        };
        let unmapped = c.table.lock().unmap_pages(iova, pgsize, pgcount, gather);
        unmapped
    }

    fn iotlb_sync(&self, dom: DriverDomain, gather: &mut Gather) {
        let Some(c) = self.ctx(dom) else {
            return;
        };
        if let (Some((start, len)), Some(size)) = (gather.span(), gather.pgsize) {
            c.tlb.inv_range(start.as_u64(), len, size.bytes(), true);
        }
    }

    fn flush_iotlb_all(&self, dom: DriverDomain) {
        if let Some(c) = self.ctx(dom) {
            c.tlb.inv_context();
        }
    }

    fn iova_to_phys(&self, dom: DriverDomain, iova: Iova) -> Option<PhysAddr> {
        let d = self.domain(dom)?;
        if d.kind == DomainKind::Identity {
            return Some(PhysAddr::new(iova.as_u64()));
        }
        self.ctx(dom)?.table.lock().iova_to_phys(iova)
    }
}
