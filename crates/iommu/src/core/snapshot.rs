//! The core's snapshot: every mutable thing of the core saved ([`IommuCore::snapshot`]) and put
//! back into the same objects ([`IommuCore::restore`]), so that the schedule explorer can boot
//! one machine and start every schedule from the end of its boot.
//!
//! What is saved: the core's state (instances, devices, groups, the `next_*` numbers,
//! `dev->iommu` allocations and their frees, orphaned domains, the domain registry), for each
//! device its group pointer, `released`, direct mappings and attached domain; for each group
//! its members, `group->mutex` (unlocked), default and attached domain, references, `freed`
//! and DMA owner; for each domain `dying`, `freed`, the cookie's mutex (unlocked), the DMA
//! state (IOVA allocator with its rcache and depot, mapping records, flush queue and its
//! timer), the flush counters and the page sizes; and the core's counters. The configuration
//! and the memory, allocator and log the core was built with are not state of the core.
//!
//! Devices never die while the core lives (the core keeps every probed device), so the
//! snapshot holds them. Groups and domains it holds weakly: dropping a domain calls the
//! driver's `domain_free`, and a strong reference would move that call out of the run that
//! drops it (a group holds its domains). A group or domain a run dropped is revived by the
//! restore: a new object with the same identity and the saved state.

use super::{CoreState, CoreStats, Device, Group, InstanceId, IommuCore};
use crate::dma::{DirectKind, DmaDirection};
use crate::domain::{Domain, DomainId, DomainSnapshot, Restore};
use crate::error::CoreSnapshotError;
use crate::ops::{DeviceId, IommuDriver};
use smmu_addr::DmaAddr;
use smmu_sync::atomic::{AtomicU64, Ordering};
use smmu_sync::{Arc, Mutex};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Weak;

/// A device's direct mappings (see [`Device::direct_maps`]).
type DirectMaps = BTreeMap<(DmaAddr, u64, DmaDirection), Vec<DirectKind>>;

/// The mutable state of an [`IommuCore`] at one moment ([`IommuCore::snapshot`]).
pub struct CoreSnapshot {
    /// The core it was taken of.
    core: u64,
    instances: BTreeMap<InstanceId, Arc<dyn IommuDriver>>,
    next_instance: u32,
    next_device: u32,
    next_domain: u32,
    next_dev_iommu: u32,
    dev_iommu: BTreeMap<String, u32>,
    dev_iommu_freed: BTreeSet<u32>,
    /// Ascending device id.
    devices: Vec<DeviceSnap>,
    /// The listed groups in number order, then any only a device still points at.
    groups: Vec<GroupSnap>,
    /// Domains the core's state holds (revived if dropped), then from `revive` on those only
    /// the registry names (put back only if still alive: nothing in the core would hold a
    /// revival).
    domains: Vec<DomainSnapshot>,
    revive: usize,
    /// Indices into `domains`.
    orphans: Vec<usize>,
    counters: CoreStats,
}

impl std::fmt::Debug for CoreSnapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CoreSnapshot")
            .field("core", &self.core)
            .field("devices", &self.devices.len())
            .field("groups", &self.groups.len())
            .field("domains", &self.domains.len())
            .field("counters", &self.counters)
            .finish()
    }
}

impl CoreSnapshot {
    /// Domains saved.
    pub fn domains(&self) -> usize {
        self.domains.len()
    }

    /// DMA mapping records saved, over every domain.
    pub fn mappings(&self) -> usize {
        self.domains.iter().map(DomainSnapshot::mappings).sum()
    }
}

struct DeviceSnap {
    dev: Arc<Device>,
    /// Index into the snapshot's groups.
    group: Option<usize>,
    released: bool,
    direct_maps: DirectMaps,
    attached: Option<DomainId>,
}

struct GroupSnap {
    /// The group, or its latest revival.
    group: Mutex<Weak<Group>>,
    id: u32,
    instance: InstanceId,
    key: Option<u64>,
    /// In the core's list of live groups.
    listed: bool,
    members: Vec<DeviceId>,
    /// Indices into the snapshot's domains.
    default_domain: Option<usize>,
    domain: Option<usize>,
    refs: i64,
    device_refs: u64,
    freed: bool,
    owner: (Option<String>, u32),
}

/// Numbers each group and domain once, by object.
struct Builder {
    /// Tells snapshots apart (a domain's record table tracks its changes against one).
    token: u64,
    groups: Vec<GroupSnap>,
    group_at: BTreeMap<usize, usize>,
    domains: Vec<DomainSnapshot>,
    domain_at: BTreeMap<usize, usize>,
}

impl Builder {
    fn domain(&mut self, d: &Arc<Domain>) -> Result<usize, CoreSnapshotError> {
        // The address only names the object: the map is never iterated.
        let key = Arc::as_ptr(d) as usize;
        if let Some(&i) = self.domain_at.get(&key) {
            return Ok(i);
        }
        self.domains.push(d.snapshot(self.token)?);
        self.domain_at.insert(key, self.domains.len() - 1);
        Ok(self.domains.len() - 1)
    }

    fn group(&mut self, g: &Arc<Group>, listed: bool) -> Result<usize, CoreSnapshotError> {
        let key = Arc::as_ptr(g) as usize;
        if let Some(&i) = self.group_at.get(&key) {
            return Ok(i);
        }
        if g.mutex.is_locked() {
            return Err(CoreSnapshotError::Locked {
                lock: g.mutex.name().to_string(),
            });
        }
        let default_domain = g.default_domain().map(|d| self.domain(&d)).transpose()?;
        let attached = g.domain.lock().clone();
        let domain = attached.map(|d| self.domain(&d)).transpose()?;
        self.groups.push(GroupSnap {
            group: Mutex::new(Arc::downgrade(g)),
            id: g.id,
            instance: g.instance,
            key: g.key,
            listed,
            members: g.members.lock().clone(),
            default_domain,
            domain,
            refs: *g.refs.lock(),
            device_refs: *g.device_refs.lock(),
            freed: g.freed.load(Ordering::Acquire),
            owner: g.owner.lock().clone(),
        });
        self.group_at.insert(key, self.groups.len() - 1);
        Ok(self.groups.len() - 1)
    }
}

impl GroupSnap {
    /// The group, or a new one with its identity that the snapshot follows from now on.
    fn revive(&self) -> Arc<Group> {
        let mut w = self.group.lock();
        if let Some(g) = w.upgrade() {
            return g;
        }
        let g = Arc::new(Group::new(self.id, self.instance, self.key));
        *w = Arc::downgrade(&g);
        g
    }

    /// Put the saved state into `g`; the run's domain pointers go to `run`.
    fn put_back(&self, g: &Group, domains: &[Arc<Domain>], run: &mut Vec<Option<Arc<Domain>>>) {
        let at = |i: Option<usize>| i.and_then(|i| domains.get(i).cloned());
        g.mutex.restore_unlocked();
        g.members.lock().clone_from(&self.members);
        run.push(std::mem::replace(
            &mut *g.default_domain.write(),
            at(self.default_domain),
        ));
        run.push(std::mem::replace(&mut *g.domain.lock(), at(self.domain)));
        *g.refs.lock() = self.refs;
        *g.device_refs.lock() = self.device_refs;
        g.freed.store(self.freed, Ordering::Release);
        g.owner.lock().clone_from(&self.owner);
    }
}

impl IommuCore {
    /// The core's mutable state now (what it covers: the [module docs](self)). Take it of a
    /// quiescent core: no call in flight. Refused ([`CoreSnapshotError::Locked`]) while a
    /// group's or a DMA cookie's kernel mutex is held.
    ///
    /// The snapshot holds the core's devices and instances, and its groups and domains only
    /// weakly: taking one changes nothing about when the core frees them.
    pub fn snapshot(&self) -> Result<CoreSnapshot, CoreSnapshotError> {
        static NEXT_SNAPSHOT: AtomicU64 = AtomicU64::new(1);
        let token = NEXT_SNAPSHOT.fetch_add(1, Ordering::Relaxed);
        let st = self.state.lock();
        let mut b = Builder {
            token,
            groups: Vec::new(),
            group_at: BTreeMap::new(),
            domains: Vec::new(),
            domain_at: BTreeMap::new(),
        };
        for g in st.groups.values() {
            b.group(g, true)?;
        }
        let mut devices = Vec::with_capacity(st.devices.len());
        for d in st.devices.values() {
            let held = d.group.read().clone();
            let group = held.map(|g| b.group(&g, false)).transpose()?;
            devices.push(DeviceSnap {
                dev: d.clone(),
                group,
                released: d.released.load(Ordering::Acquire),
                direct_maps: d.direct_maps.lock().clone(),
                attached: *d.attached.lock(),
            });
        }
        let orphans = st
            .orphans
            .iter()
            .map(|d| b.domain(d))
            .collect::<Result<_, _>>()?;
        let revive = b.domains.len();
        for d in st.domains.iter().filter_map(Weak::upgrade) {
            b.domain(&d)?;
        }
        Ok(CoreSnapshot {
            core: self.id,
            instances: st.instances.clone(),
            next_instance: st.next_instance,
            next_device: st.next_device,
            next_domain: st.next_domain,
            next_dev_iommu: st.next_dev_iommu,
            dev_iommu: st.dev_iommu.clone(),
            dev_iommu_freed: st.dev_iommu_freed.clone(),
            devices,
            groups: b.groups,
            domains: b.domains,
            revive,
            orphans,
            counters: self.stats(),
        })
    }

    /// Put the state of `s` back into this core: afterwards the core behaves as it did when
    /// `s` was taken, and whatever a run created since (devices, groups, domains) is gone from
    /// it. Refused, changing nothing, when `s` was taken of another core
    /// ([`CoreSnapshotError::ForeignCore`]). Restore a quiescent core: no call in flight.
    ///
    /// Order, within the restore: the saved groups and domains are found (or revived), the
    /// saved state is put into every object, then the core's own state is replaced; only then,
    /// with no lock held, is what the run left dropped. That drop is the restore's one side
    /// effect outside the core: each domain the run created and nothing else holds is freed in
    /// its driver (`domain_free`, which in arm-smmu writes the SMMU and frees page tables). So
    /// restore the core before the driver, the hardware model and the memory it touches; their
    /// own restores then overwrite what those frees did.
    pub fn restore(&self, s: &CoreSnapshot) -> Result<(), CoreSnapshotError> {
        self.restore_as(s, Restore::Changes)
    }

    /// [`Self::restore`], the mapping records put back as `how` says.
    pub(crate) fn restore_as(
        &self,
        s: &CoreSnapshot,
        how: Restore,
    ) -> Result<(), CoreSnapshotError> {
        if s.core != self.id {
            return Err(CoreSnapshotError::ForeignCore {
                snapshot: s.core,
                core: self.id,
            });
        }
        // The objects: those the core holds, revived if the run dropped them.
        let held: Vec<Arc<Domain>> = s.domains[..s.revive]
            .iter()
            .map(DomainSnapshot::revive)
            .collect();
        let groups: Vec<Arc<Group>> = s.groups.iter().map(GroupSnap::revive).collect();
        // What the run left, dropped at the end.
        let mut run_dma = Vec::with_capacity(s.domains.len());
        let mut run_domains = Vec::with_capacity(2 * groups.len());
        let mut run_groups = Vec::with_capacity(s.devices.len());
        for (snap, d) in s.domains.iter().zip(&held) {
            run_dma.push(snap.put_back(d, how));
        }
        let mut registered: Vec<Weak<Domain>> = held.iter().map(Arc::downgrade).collect();
        for snap in &s.domains[s.revive..] {
            if let Some(d) = snap.live() {
                run_dma.push(snap.put_back(&d, how));
                registered.push(Arc::downgrade(&d));
            }
        }
        for (snap, g) in s.groups.iter().zip(&groups) {
            snap.put_back(g, &held, &mut run_domains);
        }
        for snap in &s.devices {
            let d = &snap.dev;
            let group = snap.group.and_then(|i| groups.get(i).cloned());
            run_groups.push(std::mem::replace(&mut *d.group.write(), group));
            d.released.store(snap.released, Ordering::Release);
            d.direct_maps.lock().clone_from(&snap.direct_maps);
            *d.attached.lock() = snap.attached;
        }
        let state = CoreState {
            instances: s.instances.clone(),
            next_instance: s.next_instance,
            devices: s
                .devices
                .iter()
                .map(|d| (d.dev.id, d.dev.clone()))
                .collect(),
            next_device: s.next_device,
            groups: s
                .groups
                .iter()
                .zip(&groups)
                .filter(|(snap, _)| snap.listed)
                .map(|(snap, g)| (snap.id, g.clone()))
                .collect(),
            next_domain: s.next_domain,
            dev_iommu: s.dev_iommu.clone(),
            dev_iommu_freed: s.dev_iommu_freed.clone(),
            next_dev_iommu: s.next_dev_iommu,
            orphans: s
                .orphans
                .iter()
                .filter_map(|&i| held.get(i).cloned())
                .collect(),
            domains: registered,
        };
        let run_state = std::mem::replace(&mut *self.state.lock(), state);
        self.set_counters(&s.counters);
        // No lock is held: the run's objects go (a run's domain frees itself in its driver).
        drop(run_state);
        drop(run_groups);
        drop(run_domains);
        drop(run_dma);
        Ok(())
    }

    fn set_counters(&self, s: &CoreStats) {
        // Destructured so that a new counter cannot be left out.
        let CoreStats {
            maps,
            unmaps,
            dma_errors,
            oopses,
            fq_flushes,
            groups_created,
            groups_freed,
            devices_released,
            warnings,
        } = *s;
        let c = &self.counters;
        for (a, v) in [
            (&c.maps, maps),
            (&c.unmaps, unmaps),
            (&c.dma_errors, dma_errors),
            (&c.oopses, oopses),
            (&c.fq_flushes, fq_flushes),
            (&c.groups_created, groups_created),
            (&c.groups_freed, groups_freed),
            (&c.devices_released, devices_released),
            (&c.warnings, warnings),
        ] {
            a.store(v, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests;
