//! The `iommu::IommuDriver` contract for the core: masters, groups, domains, attach, map/unmap.

use super::{ArmSmmu, DomainState, MasterCfg, SmmuDomain};
use crate::config::Features;
use crate::context::DomainStage;
use crate::streams::{S2crType, SmeError};
use iommu::{
    DeviceId, DomainKind, DriverDomain, DriverError, Gather, Geometry, IommuDriver, MasterInfo,
    Prot,
};
use klog::{dev_line, Level};
use pgtable::TlbOps;
use smmu_addr::{Iova, PageCount, PageSize, PhysAddr};
use smmu_arch::regs::{field, smr};
use smmu_sync::atomic::Ordering;
use smmu_sync::{sched_point, Arc, Mutex, Point};

impl IommuDriver for ArmSmmu {
    fn log_name(&self) -> &str {
        &self.hw.prefix
    }

    fn probe_device(&self, master: &MasterInfo) -> Result<(), DriverError> {
        if self.quiesced.load(Ordering::SeqCst) {
            return Err(DriverError::Busy);
        }
        // arm_smmu_get_by_fwnode(): the SMMU's device must be bound to this driver.
        if !self.bound.load(Ordering::SeqCst) {
            return Err(if self.behaviour.defer_client_until_bound {
                // Since 229e6ee43d2a: "smmu dev has not bound yet", -EPROBE_DEFER.
                DriverError::ProbeDefer
            } else {
                DriverError::NullDereference {
                    function: "arm_smmu_probe_device",
                }
            });
        }
        // arm_smmu_master_alloc_smes() runs under stream_map_mutex.
        let _map = self.stream_map_mutex.lock()?;
        let mut s = self.streams.lock();
        for &fwid in &master.fwspec.ids {
            // A firmware ID packs the stream ID and mask as an SMR does.
            let sid = field(fwid, smr::ID_SHIFT, smr::ID_WIDTH);
            let mask = field(fwid, smr::MASK_SHIFT, smr::MASK_WIDTH);
            if sid & !s.map.streamid_mask != 0 {
                self.hw.log.printk(
                    Level::Err,
                    &dev_line(
                        &master.log_name,
                        &format!(
                            "stream ID 0x{sid:x} out of range for SMMU (0x{:x})",
                            s.map.streamid_mask
                        ),
                    ),
                );
                return Err(DriverError::StreamIdRange {
                    sid,
                    limit: s.map.streamid_mask,
                });
            }
            if mask & !s.map.smr_mask_mask != 0 {
                self.hw.log.printk(
                    Level::Err,
                    &dev_line(
                        &master.log_name,
                        &format!(
                            "SMR mask 0x{mask:x} out of range for SMMU (0x{:x})",
                            s.map.smr_mask_mask
                        ),
                    ),
                );
                return Err(DriverError::SmrMaskRange {
                    mask,
                    limit: s.map.smr_mask_mask,
                });
            }
        }
        if s.masters.contains_key(&master.id) {
            return Err(SmeError::AlreadyAllocated.into());
        }
        let smendx = s.map.alloc(&master.fwspec.ids)?;
        for &idx in &smendx {
            self.write_sme(&s.map, idx);
        }
        s.masters.insert(master.id, MasterCfg { smendx });
        Ok(())
    }

    fn release_device(&self, dev: DeviceId) {
        // arm_smmu_master_free_smes() runs under stream_map_mutex; a wait that can never end
        // leaves the entries taken (the kernel would hang here).
        let Ok(_map) = self.stream_map_mutex.lock() else {
            return;
        };
        let mut s = self.streams.lock();
        let Some(m) = s.masters.remove(&dev) else {
            return;
        };
        for idx in m.smendx {
            if s.map.free(idx) {
                self.write_sme(&s.map, idx);
            }
        }
    }

    fn device_group(&self, dev: DeviceId) -> Result<Option<u64>, DriverError> {
        // Since b1a1347912a7 the lookup and the record are one critical section of
        // stream_map_mutex; before it nothing is held between them.
        let held = if self.behaviour.group_lookup_under_stream_map_mutex {
            Some(self.stream_map_mutex.lock()?)
        } else {
            None
        };
        let looked_up = {
            let s = self.streams.lock();
            let Some(m) = s.masters.get(&dev) else {
                return Err(DriverError::NoDevice);
            };
            let mut group = None;
            let mut conflict = false;
            for &idx in &m.smendx {
                let g = s.map.s2crs.get(idx).and_then(|e| e.group);
                if let (Some(a), Some(b)) = (group, g) {
                    conflict |= a != b;
                }
                if g.is_some() {
                    group = g;
                }
            }
            if conflict {
                Err(m.smendx.clone())
            } else {
                Ok((group, m.smendx.clone()))
            }
        };
        let (found, smendx) = match looked_up {
            Ok(x) => x,
            Err(_) => {
                // The master's entries already belong to two different groups: -EINVAL.
                // Before 53f613134984 this return kept stream_map_mutex.
                if let Some(g) = held {
                    if self.behaviour.unlock_on_group_conflict {
                        drop(g);
                    } else {
                        g.leak();
                    }
                }
                return Err(DriverError::StreamsInTwoGroups);
            }
        };
        if found.is_some() {
            return Ok(found);
        }
        // No group recorded: generic_device_group()/pci_device_group() allocate one, a point
        // where another prober can run, then it is remembered in every entry of the master.
        sched_point(Point::Kernel);
        let key = u64::from(dev.0) + 1;
        let mut s = self.streams.lock();
        for &idx in &smendx {
            if let Some(e) = s.map.s2crs.get_mut(idx) {
                e.group = Some(key);
            }
        }
        drop(s);
        drop(held);
        Ok(Some(key))
    }

    fn domain_alloc(&self, kind: DomainKind) -> Result<DriverDomain, DriverError> {
        let id = self.next_domain.fetch_add(1, Ordering::Relaxed);
        let d = Arc::new(SmmuDomain {
            kind,
            state: Mutex::new(DomainState::Unfinalised),
            pending_handler: Mutex::new(None),
        });
        self.domains.write().insert(id, d);
        Ok(DriverDomain(id))
    }

    fn domain_free(&self, dom: DriverDomain) {
        let Some(d) = self.domains.write().remove(&dom.0) else {
            return;
        };
        let st = std::mem::replace(&mut *d.state.lock(), DomainState::Unfinalised);
        if let DomainState::Paging(ctx) = st {
            self.destroy_domain_context(&ctx);
        }
    }

    fn attach_dev(&self, dom: DriverDomain, dev: DeviceId) -> Result<(), DriverError> {
        if self.quiesced.load(Ordering::SeqCst) {
            return Err(DriverError::Busy);
        }
        if !self.streams.lock().masters.contains_key(&dev) {
            return Err(DriverError::NoDevice);
        }
        let Some(d) = self.domain(dom) else {
            return Err(DriverError::NoDomain { id: dom.0 });
        };
        let (ty, cbndx) = {
            let mut st = d.state.lock();
            if let DomainState::Unfinalised = &*st {
                *st = match d.kind {
                    DomainKind::Identity => DomainState::Bypass,
                    DomainKind::Blocked => DomainState::Blocked,
                    _ => DomainState::Paging(self.init_domain_context(&d)?),
                };
            }
            match &*st {
                DomainState::Bypass => (S2crType::Bypass, 0),
                DomainState::Blocked => (S2crType::Fault, 0),
                DomainState::Paging(c) => (S2crType::Trans, c.cfg.cbndx as u8),
                DomainState::Unfinalised => return Err(DriverError::NoDevice),
            }
        };
        self.install_s2crs(dev, ty, cbndx)
    }

    fn geometry(&self, dom: DriverDomain) -> Option<Geometry> {
        let c = self.ctx(dom)?;
        let hw = c.table.hw();
        Some(Geometry {
            aperture_start: Iova::ZERO,
            aperture_end: Iova::new(if hw.ias >= 64 {
                u64::MAX
            } else {
                (1u64 << hw.ias) - 1
            }),
            pgsize_bitmap: c.table.pgsize_bitmap(),
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
        let Some(c) = self.ctx(dom) else {
            return Err(DriverError::NoDevice);
        };
        c.table.map_pages(iova, paddr, pgsize, pgcount, prot)
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
        c.table.unmap_pages(iova, pgsize, pgcount, gather)
    }

    fn iotlb_sync(&self, dom: DriverDomain, _gather: &mut Gather) {
        if let Some(c) = self.ctx(dom) {
            c.tlb.iotlb_sync();
        }
    }

    fn flush_iotlb_all(&self, dom: DriverDomain) {
        if let Some(c) = self.ctx(dom) {
            c.tlb.tlb_flush_all();
        }
    }

    fn iova_to_phys(&self, dom: DriverDomain, iova: Iova) -> Option<PhysAddr> {
        let d = self.domain(dom)?;
        if d.kind == DomainKind::Identity {
            return Some(PhysAddr::new(iova.as_u64()));
        }
        let c = self.ctx(dom)?;
        if self.hw.cfg.features.has(Features::TRANS_OPS) && c.stage == DomainStage::S1 {
            self.iova_to_phys_hard(&c, iova)
        } else {
            c.table.iova_to_phys(iova)
        }
    }
}
