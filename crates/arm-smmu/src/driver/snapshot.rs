//! Saving the driver's state and putting it back in place, for the schedule explorer's
//! booted-machine snapshot: every schedule starts from the same booted machine, restored into
//! the one a worker already has, so the driver object, its `Arc`s and the closures wired to it
//! stay and only the state behind its locks moves.
//!
//! Covered: the stream map and masters, the context-bank shadows, the bank owners and bitmap,
//! every domain (its kind, state, pending fault handler and, for a paging domain, its
//! context's fault handler and its page table's own state through
//! [`IoPgtableOps::snapshot`](crate::IoPgtableOps::snapshot)), `irptndx`, the next domain id,
//! `quiesced`, `cpre_warned`, `bound`, the rate limiters and `stream_map_mutex` (a snapshot
//! is taken with it unlocked, and a restore unlocks it). Not covered: the registers (the
//! hardware model's to save), the page-table descriptors and pages (physmem's), and the
//! [`ContextReleaseHook`](crate::ContextReleaseHook), which is wiring.
//!
//! The snapshot holds the `Arc`s of the domains and contexts that existed when it was taken,
//! so freeing a domain cannot rely on the last reference to free its page table: the driver
//! frees the table's pages explicitly ([`IoPgtableOps::free`](crate::IoPgtableOps::free),
//! where Linux calls `free_io_pgtable_ops`), and the restore brings the table object back to
//! life with the memory and allocator restores. What a run made since (domains, contexts,
//! their page tables) is dropped by the restore. Dropping a
//! page table walks its descriptors and gives its pages back to the frame allocator, so:
//! **restore the driver before the memory and the frame allocator** (their restores then
//! overwrite what those drops did). Before or after the IOMMU core: restored first, the
//! driver makes the core's drops of the run's domains find their ids unknown and change
//! nothing; restored after, those drops free the run's domains here first (register writes,
//! [`ContextReleaseHook`](crate::ContextReleaseHook) calls), so whatever the hook feeds must
//! be restored after them too. The register writes are undone by restoring the hardware
//! model last.

use super::{ArmSmmu, Cbs, DomainCtx, DomainState, FaultHandler, SmmuDomain, Streams};
use crate::hw::{Hw, RateLimitsSnapshot};
use crate::table::{TableSnapshot, TableSnapshotError};
use klog::RateLimitSnapshotError;
use smmu_sync::atomic::Ordering;
use smmu_sync::Arc;
use std::collections::BTreeMap;
use thiserror::Error;

/// The driver's state at one moment ([`ArmSmmu::snapshot`]).
#[derive(Clone)]
pub struct ArmSmmuSnapshot {
    /// The instance it was taken of (and may only be restored into).
    hw: Arc<Hw>,
    streams: Streams,
    cbs: Cbs,
    owners: Vec<Option<Arc<DomainCtx>>>,
    context_map: Vec<bool>,
    irptndx: u32,
    domains: BTreeMap<u32, DomainSnapshot>,
    next_domain: u32,
    quiesced: bool,
    cpre_warned: bool,
    bound: bool,
    limits: RateLimitsSnapshot,
}

/// One domain at the snapshot.
#[derive(Clone)]
struct DomainSnapshot {
    domain: Arc<SmmuDomain>,
    state: DomainState,
    pending_handler: Option<Arc<FaultHandler>>,
    /// For a paging domain: its context's fault handler and its table's state.
    ctx: Option<(Option<Arc<FaultHandler>>, TableSnapshot)>,
}

impl ArmSmmuSnapshot {
    /// Domain ids the snapshot holds, ascending.
    pub fn domains(&self) -> Vec<u32> {
        self.domains.keys().copied().collect()
    }
}

/// A driver snapshot cannot be taken or put back.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ArmSmmuSnapshotError {
    /// The snapshot is of another driver instance: its domains and contexts belong to that
    /// instance's hardware.
    #[error("snapshot of the driver of {snapshot} restored into another driver instance ({smmu})")]
    OtherInstance {
        /// Log prefix of the instance the snapshot was taken of.
        snapshot: String,
        /// Log prefix of the instance restored into.
        smmu: String,
    },
    /// `stream_map_mutex` is held: a task is inside a stream-map update (or leaked the lock),
    /// so the state behind it is not a state boot could end in.
    #[error("{smmu}: cannot snapshot the driver while stream_map_mutex is held")]
    StreamMapMutexHeld {
        /// Log prefix of the instance.
        smmu: String,
    },
    /// A domain's page table refused its snapshot.
    #[error("page table of domain {domain}: {source}")]
    Table {
        /// The domain id.
        domain: u32,
        /// Why the table refused.
        #[source]
        source: TableSnapshotError,
    },
    /// A rate limiter refused its snapshot.
    #[error(transparent)]
    RateLimit(#[from] RateLimitSnapshotError),
}

impl ArmSmmu {
    /// The driver's state now (see the module docs for what it covers). Take it while no
    /// other task uses the driver; refused while `stream_map_mutex` is held.
    pub fn snapshot(&self) -> Result<ArmSmmuSnapshot, ArmSmmuSnapshotError> {
        if self.stream_map_mutex.is_locked() {
            return Err(ArmSmmuSnapshotError::StreamMapMutexHeld {
                smmu: self.hw.prefix.clone(),
            });
        }
        let domains = self
            .domains
            .read()
            .iter()
            .map(|(&id, d)| {
                let state = d.state.lock().clone();
                let ctx = match &state {
                    DomainState::Paging(c) => {
                        Some((c.fault_handler.lock().clone(), c.table.snapshot()))
                    }
                    _ => None,
                };
                let snap = DomainSnapshot {
                    domain: d.clone(),
                    state,
                    pending_handler: d.pending_handler.lock().clone(),
                    ctx,
                };
                (id, snap)
            })
            .collect();
        Ok(ArmSmmuSnapshot {
            hw: self.hw.clone(),
            streams: self.streams.lock().clone(),
            cbs: self.cbs.lock().clone(),
            owners: self.owners.read().clone(),
            context_map: self.context_map.lock().clone(),
            irptndx: self.irptndx.load(Ordering::Relaxed),
            domains,
            next_domain: self.next_domain.load(Ordering::Relaxed),
            quiesced: self.quiesced.load(Ordering::SeqCst),
            cpre_warned: self.cpre_warned.load(Ordering::Relaxed),
            bound: self.bound.load(Ordering::SeqCst),
            limits: self.hw.limits.snapshot(),
        })
    }

    /// Put the state of `snap` back, dropping the domains and contexts made since (see the
    /// module docs for the order of restores this needs). Refused, changing nothing, when
    /// `snap` was taken of another driver instance. Restore while no other task uses the
    /// driver.
    pub fn restore(&self, snap: &ArmSmmuSnapshot) -> Result<(), ArmSmmuSnapshotError> {
        if !Arc::ptr_eq(&snap.hw, &self.hw) {
            return Err(ArmSmmuSnapshotError::OtherInstance {
                snapshot: snap.hw.prefix.clone(),
                smmu: self.hw.prefix.clone(),
            });
        }
        // The tables are the snapshot's own objects, so neither step below can refuse; they
        // come first all the same, so that a refusal would leave the driver state untouched.
        for (&id, d) in &snap.domains {
            if let (DomainState::Paging(c), Some((_, table))) = (&d.state, &d.ctx) {
                c.table
                    .restore(table)
                    .map_err(|source| ArmSmmuSnapshotError::Table { domain: id, source })?;
            }
        }
        self.hw.limits.restore(&snap.limits)?;

        // What the run made is moved out here and dropped only at the end (its page tables
        // give their pages back to the allocator: see the module docs).
        let mut dropped: Vec<DomainState> = Vec::new();
        let mut domains = BTreeMap::new();
        for (&id, d) in &snap.domains {
            let now = std::mem::replace(&mut *d.domain.state.lock(), d.state.clone());
            dropped.push(now);
            *d.domain.pending_handler.lock() = d.pending_handler.clone();
            if let (DomainState::Paging(c), Some((handler, _))) = (&d.state, &d.ctx) {
                *c.fault_handler.lock() = handler.clone();
            }
            domains.insert(id, d.domain.clone());
        }
        let old_domains = std::mem::replace(&mut *self.domains.write(), domains);
        let old_owners = std::mem::replace(&mut *self.owners.write(), snap.owners.clone());
        self.streams.lock().clone_from(&snap.streams);
        self.cbs.lock().clone_from(&snap.cbs);
        self.context_map.lock().clone_from(&snap.context_map);
        self.irptndx.store(snap.irptndx, Ordering::Relaxed);
        self.next_domain.store(snap.next_domain, Ordering::Relaxed);
        self.quiesced.store(snap.quiesced, Ordering::SeqCst);
        self.cpre_warned.store(snap.cpre_warned, Ordering::Relaxed);
        self.bound.store(snap.bound, Ordering::SeqCst);
        self.stream_map_mutex.restore_unlocked();
        drop((old_domains, old_owners, dropped));
        Ok(())
    }
}
