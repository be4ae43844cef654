//! A domain's mutable state, saved for [`crate::IommuCore::snapshot`] and put back by
//! [`crate::IommuCore::restore`].
//!
//! The snapshot holds the domain weakly. Dropping a domain calls the driver's `domain_free`
//! (arm-smmu then disables and gives back the context bank), so a strong reference in the
//! snapshot would move that call out of the run that drops the domain, and a run with a
//! snapshot would differ from one without. A domain the run dropped is revived instead: a new
//! object with the same identity (id, kind, instance, driver and driver handle) and the saved
//! state. Its driver context is the driver's to restore, after the core's restore. The snapshot
//! then follows the revival, so the next restore finds it alive.
//!
//! The mapping records are most of a DMA domain's state (4,096 for the booted NIC). A restore
//! into the domain the snapshot was taken of puts back only the records the run changed
//! ([`MapTable`](super::MapTable) keeps the list, from the snapshot on); a revival, a table
//! that changed too much, or a table last tracked against another snapshot gets a copy of
//! the whole table. `Restore::Whole` forces the copy: the tests pin the two to each other.

use super::{DmaState, Domain, DomainId};
use crate::error::CoreSnapshotError;
use crate::ops::{DomainKind, DriverDomain, IommuDriver};
use smmu_sync::atomic::Ordering;
use smmu_sync::{Arc, Mutex};
use std::sync::Weak;

/// How a restore puts the mapping records back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Restore {
    /// Only the records changed since the snapshot, where the table tracked them.
    Changes,
    /// A copy of every record.
    Whole,
}

/// One domain's state at the snapshot.
pub(crate) struct DomainSnapshot {
    /// The domain, or its latest revival.
    domain: Mutex<Weak<Domain>>,
    id: DomainId,
    kind: DomainKind,
    instance: u32,
    driver: Arc<dyn IommuDriver>,
    handle: DriverDomain,
    dying: bool,
    freed: bool,
    /// With the record table tracked against `token`.
    state: DmaState,
    token: u64,
    fq_start: u64,
    fq_finish: u64,
    pgsizes: u64,
}

impl Domain {
    /// Save the domain's mutable state as part of snapshot `token`, and track the mapping
    /// records' changes against it from now on. Refused while the DMA cookie's mutex is held.
    pub(crate) fn snapshot(
        self: &Arc<Domain>,
        token: u64,
    ) -> Result<DomainSnapshot, CoreSnapshotError> {
        if self.cookie_mutex.is_locked() {
            return Err(CoreSnapshotError::Locked {
                lock: self.cookie_mutex.name().to_string(),
            });
        }
        Ok(DomainSnapshot {
            domain: Mutex::new(Arc::downgrade(self)),
            id: self.id,
            kind: self.kind,
            instance: self.instance,
            driver: self.driver.clone(),
            handle: self.handle,
            dying: self.dying.load(Ordering::Acquire),
            freed: self.freed.load(Ordering::Acquire),
            state: {
                let mut st = self.state.lock();
                st.maps.track(token);
                st.clone()
            },
            token,
            fq_start: self.fq_start.load(Ordering::Acquire),
            fq_finish: self.fq_finish.load(Ordering::Acquire),
            pgsizes: self.pgsizes.load(Ordering::Acquire),
        })
    }
}

impl DomainSnapshot {
    /// DMA mapping records saved.
    pub(crate) fn mappings(&self) -> usize {
        self.state.maps.len()
    }

    /// The domain, if something still holds it.
    pub(crate) fn live(&self) -> Option<Arc<Domain>> {
        self.domain.lock().upgrade()
    }

    /// The domain, or (if the run dropped it) a new one with its identity, which the snapshot
    /// follows from now on. Either way without its saved state yet: [`Self::put_back`].
    pub(crate) fn revive(&self) -> Arc<Domain> {
        let mut w = self.domain.lock();
        if let Some(d) = w.upgrade() {
            return d;
        }
        let d = Arc::new(Domain::new(
            self.id,
            self.kind,
            self.instance,
            self.driver.clone(),
            self.handle,
        ));
        *w = Arc::downgrade(&d);
        d
    }

    /// Put the saved state into `d` (this snapshot's domain, or its revival). Returns what
    /// the run left of the DMA state, for the caller to drop once every lock is released.
    pub(crate) fn put_back(&self, d: &Domain, how: Restore) -> Option<DmaState> {
        d.cookie_mutex.restore_unlocked();
        d.dying.store(self.dying, Ordering::Release);
        d.freed.store(self.freed, Ordering::Release);
        d.fq_start.store(self.fq_start, Ordering::Release);
        d.fq_finish.store(self.fq_finish, Ordering::Release);
        d.pgsizes.store(self.pgsizes, Ordering::Release);
        let mut st = d.state.lock();
        if how == Restore::Whole || !st.maps.tracks(self.token) {
            return Some(std::mem::replace(&mut *st, self.state.clone()));
        }
        // Destructured so that a new field cannot be left out.
        let DmaState {
            iova,
            maps,
            fq,
            fq_timer_running,
            fq_freed,
            msi_pages,
        } = &mut *st;
        maps.rewind(&self.state.maps);
        iova.clone_from(&self.state.iova);
        fq.clone_from(&self.state.fq);
        *fq_timer_running = self.state.fq_timer_running;
        *fq_freed = self.state.fq_freed;
        msi_pages.clone_from(&self.state.msi_pages);
        None
    }
}

#[cfg(test)]
impl DomainSnapshot {
    pub(crate) fn token(&self) -> u64 {
        self.token
    }
}

#[cfg(test)]
impl Domain {
    pub(crate) fn state(&self) -> smmu_sync::MutexGuard<'_, DmaState> {
        self.state.lock()
    }

    pub(crate) fn cookie_mutex(&self) -> &smmu_sync::KernelMutex {
        &self.cookie_mutex
    }

    /// Everything the domain holds, for tests that compare two cores.
    pub(crate) fn dump(&self) -> String {
        let st = self.state.lock();
        format!(
            "domain {} {:?} inst {} handle {:?} dying={} freed={} cookie_locked={} fq_start={} fq_finish={} pgsizes={:#x}\n maps {:?}\n fq {:?} timer_running={} fq_freed={}\n msi {:?}\n iova {}",
            self.id.0,
            self.kind,
            self.instance,
            self.handle,
            self.dying.load(Ordering::Acquire),
            self.freed.load(Ordering::Acquire),
            self.cookie_mutex.is_locked(),
            self.fq_start.load(Ordering::Acquire),
            self.fq_finish.load(Ordering::Acquire),
            self.pgsizes.load(Ordering::Acquire),
            st.maps,
            st.fq,
            st.fq_timer_running,
            st.fq_freed,
            st.msi_pages,
            st.iova.as_ref().map_or_else(|| "none".to_string(), |i| i.dump()),
        )
    }
}
