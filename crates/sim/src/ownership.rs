//! The DMA masters' ownership evidence, shared by the ENETC and the generic DMA engine: which
//! physical page each DMA page was mapped to by the driver, and the classification of every
//! chunk of a transaction against it (stray: bypassed translation; foreign: translated
//! somewhere the mapping does not own).

use mmu500::{BusError, Translation};
use smmu_addr::{DmaAddr, PageSize, PhysAddr};
use smmu_sync::Mutex;
use std::collections::BTreeMap;

/// How many stray write addresses a master keeps for the verdict.
pub const STRAY_ADDRS_KEPT: usize = 8;

/// The ownership granule: a physical frame.
const PAGE: PageSize = PageSize::SZ_4K;

/// DMA page → physical page, as the driver mapped it.
#[derive(Default)]
pub(crate) struct OwnershipMap(Mutex<BTreeMap<DmaAddr, PhysAddr>>);

impl OwnershipMap {
    /// The driver mapped the page of `dma` to the page of `pa`.
    pub(crate) fn insert(&self, dma: DmaAddr, pa: PhysAddr) {
        self.0
            .lock()
            .insert(dma.align_down(PAGE), pa.align_down(PAGE));
    }

    /// The driver gave up the page of `dma` (before unmapping it).
    pub(crate) fn remove(&self, dma: DmaAddr) {
        self.0.lock().remove(&dma.align_down(PAGE));
    }

    /// Every owned page now (for the booted-machine snapshot).
    pub(crate) fn snapshot(&self) -> BTreeMap<DmaAddr, PhysAddr> {
        self.0.lock().clone()
    }

    /// Put the pages of [`OwnershipMap::snapshot`] back.
    pub(crate) fn restore(&self, s: &BTreeMap<DmaAddr, PhysAddr>) {
        self.0.lock().clone_from(s);
    }

    /// The physical page the page of `dma` is owned as, if any.
    pub(crate) fn get(&self, dma: DmaAddr) -> Option<PhysAddr> {
        self.0.lock().get(&dma.align_down(PAGE)).copied()
    }
}

/// The context epochs of one SMMU's banks that freed domains left behind: for each bank, the
/// bank's context epoch (see [`mmu500::Mmu500::context_epoch`]) read when the driver had torn
/// a domain's context down. A translation whose epoch is not newer than that was produced by
/// a freed domain's tables or TLB entries: the model says which programming produced it, this
/// says which programmings are dead.
#[derive(Debug, Default)]
pub struct RetiredContexts(Mutex<BTreeMap<u16, u64>>);

impl RetiredContexts {
    /// Bank `cb`'s context up to `epoch` belongs to freed domains.
    pub fn retire(&self, cb: u16, epoch: u64) {
        let mut m = self.0.lock();
        let e = m.entry(cb).or_insert(0);
        *e = (*e).max(epoch);
    }

    /// The retired epochs now, by bank (for the booted-machine snapshot).
    pub fn snapshot(&self) -> BTreeMap<u16, u64> {
        self.0.lock().clone()
    }

    /// Put the epochs of [`RetiredContexts::snapshot`] back.
    pub fn restore(&self, s: &BTreeMap<u16, u64>) {
        self.0.lock().clone_from(s);
    }

    /// Whether a translation by bank `cb` at context epoch `epoch` came from a freed domain.
    pub fn is_retired(&self, cb: u16, epoch: u64) -> bool {
        self.0.lock().get(&cb).is_some_and(|&e| epoch <= e)
    }
}

/// Counters every DMA master keeps about where its transactions went.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DmaEvidence {
    /// Transactions issued, whatever became of them.
    pub transactions: u64,
    /// Transactions the SMMU terminated with a fault.
    pub blocked: u64,
    /// Writes that bypassed translation.
    pub stray_writes: u64,
    /// Reads that bypassed translation.
    pub stray_reads: u64,
    /// The first few physical addresses stray writes landed at.
    pub stray_write_addrs: Vec<PhysAddr>,
    /// Translated writes outside the mapping.
    pub foreign_writes: u64,
    /// Translated reads outside the mapping.
    pub foreign_reads: u64,
    /// Transactions translated by a freed domain's tables or TLB entries.
    pub freed_domain: u64,
}

impl DmaEvidence {
    /// Add `other`'s counts (keeping at most [`STRAY_ADDRS_KEPT`] stray write addresses).
    pub fn merge(&mut self, other: &DmaEvidence) {
        self.transactions += other.transactions;
        self.blocked += other.blocked;
        self.stray_writes += other.stray_writes;
        self.stray_reads += other.stray_reads;
        self.foreign_writes += other.foreign_writes;
        self.foreign_reads += other.foreign_reads;
        self.freed_domain += other.freed_domain;
        let room = STRAY_ADDRS_KEPT.saturating_sub(self.stray_write_addrs.len());
        self.stray_write_addrs
            .extend(other.stray_write_addrs.iter().take(room));
    }

    /// Foreign transactions, reads and writes.
    pub fn foreign(&self) -> u64 {
        self.foreign_writes + self.foreign_reads
    }
}

/// Classify one transaction at `dma` (its result `r`) against `owned` and `retired` and count
/// it into `ev`. Returns whether the transaction completed.
pub(crate) fn account(
    owned: &OwnershipMap,
    retired: &RetiredContexts,
    dma: DmaAddr,
    write: bool,
    r: Result<Vec<Translation>, BusError>,
    ev: &mut DmaEvidence,
) -> bool {
    ev.transactions += 1;
    let (translations, ok): (Vec<Translation>, bool) = match r {
        Ok(t) => (t, true),
        Err(BusError::Fault { .. }) => {
            ev.blocked += 1;
            return false;
        }
        Err(BusError::Unbacked { translation, .. }) => (vec![translation], false),
        Err(_) => return false,
    };
    let own = owned.get(dma);
    for t in &translations {
        if let Translation::Translated { cb, epoch, .. } = *t {
            if retired.is_retired(cb, epoch) {
                ev.freed_domain += 1;
            }
        }
    }
    for t in translations {
        if Some(t.pa().align_down(PAGE)) == own {
            continue;
        }
        match (t, write) {
            (Translation::Bypass { pa, .. }, true) => {
                ev.stray_writes += 1;
                if ev.stray_write_addrs.len() < STRAY_ADDRS_KEPT {
                    ev.stray_write_addrs.push(pa);
                }
            }
            (Translation::Bypass { .. }, false) => ev.stray_reads += 1,
            (Translation::Translated { .. }, true) => ev.foreign_writes += 1,
            (Translation::Translated { .. }, false) => ev.foreign_reads += 1,
        }
    }
    ok
}

#[cfg(test)]
mod tests {
    use super::*;

    fn translated(cb: u16, epoch: u64, pa: u64) -> Translation {
        Translation::Translated {
            pa: PhysAddr::new(pa),
            cb,
            leaf_size: PAGE,
            tlb_hit: true,
            epoch,
        }
    }

    #[test]
    fn translations_by_a_retired_context_epoch_count_as_freed_domain_dma() {
        let owned = OwnershipMap::default();
        owned.insert(DmaAddr::new(0x1000_0000), PhysAddr::new(0x8000_0000));
        let retired = RetiredContexts::default();
        // Bank 0's first domain was freed when the bank's epoch was 10.
        retired.retire(0, 10);
        retired.retire(0, 7); // an older record never lowers it
        assert!(retired.is_retired(0, 10) && retired.is_retired(0, 3));
        assert!(!retired.is_retired(0, 11) && !retired.is_retired(1, 3));
        let mut ev = DmaEvidence::default();
        // A stale TLB hit from the freed domain, even into the page the address is owned as.
        let ok = account(
            &owned,
            &retired,
            DmaAddr::new(0x1000_0000),
            true,
            Ok(vec![translated(0, 9, 0x8000_0000)]),
            &mut ev,
        );
        assert!(ok);
        assert_eq!((ev.freed_domain, ev.foreign()), (1, 0));
        // The live domain (a newer epoch) and another bank are not.
        account(
            &owned,
            &retired,
            DmaAddr::new(0x1000_0000),
            true,
            Ok(vec![
                translated(0, 12, 0x8000_0000),
                translated(1, 2, 0x8000_0000),
            ]),
            &mut ev,
        );
        assert_eq!(ev.freed_domain, 1);
        let mut total = DmaEvidence::default();
        total.merge(&ev);
        total.merge(&ev);
        assert_eq!(total.freed_domain, 2);
    }
}
