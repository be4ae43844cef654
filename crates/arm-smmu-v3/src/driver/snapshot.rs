//! Saving the driver's state and putting it back in place, for the schedule explorer's
//! booted-machine snapshot (see arm-smmu's `driver::snapshot`, which this follows).
//!
//! Covered: the stream-table bookkeeping, the masters, every domain (kind, state, masters and,
//! for a paging domain, its page table's own state), the next domain id, the ASID and VMID
//! maps, `quiesced`, the command and event queue shadows, and the rate limiters. Not covered:
//! the registers (the model's), the memory the driver owns (stream table, CDs, queues, page
//! tables: physmem's), and the interrupt wiring.
//!
//! The snapshot holds the domains and contexts of its moment, so `domain_free` frees a
//! table's pages explicitly ([`pgtable::PageTable::free_tables`]) and a restore makes the
//! table live again; what a run made since is dropped by the restore, and its tables give
//! their pages back: restore the driver before memory and frame allocator, and the model
//! last (arm-smmu's `driver::snapshot` says what the order with the IOMMU core implies).

use super::{ArmSmmuV3, DomainState, SmmuDomain, SmmuMaster, Strtab};
use crate::hw::{Hw, QueueShadow};
use iommu::DeviceId;
use klog::{RateLimitSnapshot, RateLimitSnapshotError};
use smmu_sync::atomic::Ordering;
use smmu_sync::Arc;
use std::collections::BTreeMap;
use thiserror::Error;

/// The driver's state at one moment ([`ArmSmmuV3::snapshot`]).
#[derive(Clone)]
pub struct ArmSmmuV3Snapshot {
    /// The instance it was taken of (and may only be restored into).
    hw: Arc<Hw>,
    strtab: Strtab,
    masters: BTreeMap<DeviceId, SmmuMaster>,
    domains: BTreeMap<u32, DomainSnapshot>,
    next_domain: u32,
    asids: Vec<bool>,
    vmids: Vec<bool>,
    quiesced: bool,
    cmdq: QueueShadow,
    evtq: QueueShadow,
    limits: [RateLimitSnapshot; 2],
}

#[derive(Clone)]
struct DomainSnapshot {
    domain: Arc<SmmuDomain>,
    state: DomainState,
    masters: Vec<DeviceId>,
    table: Option<pgtable::PageTableSnapshot>,
}

/// A driver snapshot cannot be put back.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ArmSmmuV3SnapshotError {
    /// The snapshot is of another driver instance.
    #[error("snapshot of the driver of {snapshot} restored into another driver instance ({smmu})")]
    OtherInstance {
        /// Log prefix of the instance the snapshot was taken of.
        snapshot: String,
        /// Log prefix of the instance restored into.
        smmu: String,
    },
    /// A domain's page table refused its snapshot.
    #[error("page table of domain {domain}: {source}")]
    Table {
        /// The domain id.
        domain: u32,
        /// Why the table refused.
        #[source]
        source: pgtable::PageTableSnapshotError,
    },
    /// A rate limiter refused its snapshot.
    #[error(transparent)]
    RateLimit(#[from] RateLimitSnapshotError),
}

impl ArmSmmuV3 {
    /// The driver's state now (see the module docs for what it covers). Take it while no
    /// other task uses the driver.
    pub fn snapshot(&self) -> ArmSmmuV3Snapshot {
        let domains = self
            .domains
            .read()
            .iter()
            .map(|(&id, d)| {
                let state = d.state.lock().clone();
                let table = match &state {
                    DomainState::Paging(c) => Some(c.table.lock().snapshot()),
                    _ => None,
                };
                let snap = DomainSnapshot {
                    domain: d.clone(),
                    state,
                    masters: d.masters.lock().clone(),
                    table,
                };
                (id, snap)
            })
            .collect();
        ArmSmmuV3Snapshot {
            hw: self.hw.clone(),
            strtab: self.strtab.lock().clone(),
            masters: self.masters.lock().clone(),
            domains,
            next_domain: self.next_domain.load(Ordering::Relaxed),
            asids: self.asids.lock().clone(),
            vmids: self.vmids.lock().clone(),
            quiesced: self.quiesced.load(Ordering::SeqCst),
            cmdq: *self.hw.cmdq.lock(),
            evtq: *self.hw.evtq.lock(),
            limits: [
                self.hw.limits.events.snapshot(),
                self.hw.limits.sync_timeout.snapshot(),
            ],
        }
    }

    /// Put the state of `snap` back, dropping the domains made since (see the module docs
    /// for the order of restores this needs). Refused, changing nothing, when `snap` was
    /// taken of another driver instance. Restore while no other task uses the driver.
    pub fn restore(&self, snap: &ArmSmmuV3Snapshot) -> Result<(), ArmSmmuV3SnapshotError> {
        if !Arc::ptr_eq(&snap.hw, &self.hw) {
            return Err(ArmSmmuV3SnapshotError::OtherInstance {
                snapshot: snap.hw.prefix.clone(),
                smmu: self.hw.prefix.clone(),
            });
        }
        let limits = [&self.hw.limits.events, &self.hw.limits.sync_timeout];
        for (l, s) in limits.iter().zip(&snap.limits) {
            l.snapshot_fits(s)?;
        }
        // The tables are the snapshot's own objects: this cannot refuse, and comes before any
        // other change all the same.
        for (&id, d) in &snap.domains {
            if let (DomainState::Paging(c), Some(t)) = (&d.state, &d.table) {
                c.table
                    .lock()
                    .restore(t)
                    .map_err(|source| ArmSmmuV3SnapshotError::Table { domain: id, source })?;
            }
        }
        for (l, s) in limits.iter().zip(&snap.limits) {
            l.restore(s)?;
        }
        // What the run made is dropped only at the end (its tables give pages back).
        let mut dropped: Vec<DomainState> = Vec::new();
        let mut domains = BTreeMap::new();
        for (&id, d) in &snap.domains {
            dropped.push(std::mem::replace(
                &mut *d.domain.state.lock(),
                d.state.clone(),
            ));
            d.domain.masters.lock().clone_from(&d.masters);
            domains.insert(id, d.domain.clone());
        }
        let old_domains = std::mem::replace(&mut *self.domains.write(), domains);
        self.strtab.lock().clone_from(&snap.strtab);
        self.masters.lock().clone_from(&snap.masters);
        self.next_domain.store(snap.next_domain, Ordering::Relaxed);
        self.asids.lock().clone_from(&snap.asids);
        self.vmids.lock().clone_from(&snap.vmids);
        self.quiesced.store(snap.quiesced, Ordering::SeqCst);
        *self.hw.cmdq.lock() = snap.cmdq;
        *self.hw.evtq.lock() = snap.evtq;
        drop((old_domains, dropped));
        Ok(())
    }
}
