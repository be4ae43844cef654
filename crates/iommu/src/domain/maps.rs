//! A DMA domain's live mapping records by handle, and which handles changed since the snapshot
//! the table is tracked against: a restore then puts back only those records, not the whole
//! table (a booted NIC domain holds 4,096 records; a run changes a few dozen). Nothing is
//! recorded until a snapshot is taken.

use super::Mapping;
use smmu_addr::DmaAddr;
use std::collections::BTreeMap;

/// Handles changed beyond the table's own size: the record is dropped, and the next restore
/// copies the whole table (cheaper by then than replaying the changes).
const SLACK: usize = 1024;

/// The records, with the changes since a snapshot.
#[derive(Clone, Default)]
pub(crate) struct MapTable {
    map: BTreeMap<DmaAddr, Mapping>,
    journal: Journal,
}

#[derive(Clone, Default)]
struct Journal {
    /// The snapshot the table is tracked against (0: none, nothing is recorded).
    base: u64,
    /// Handles inserted or removed since, repeats included.
    touched: Vec<DmaAddr>,
    /// Too many changes: `touched` is incomplete.
    lost: bool,
}

/// The records only: two tables with equal records are equal whatever their journals say.
impl std::fmt::Debug for MapTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.map.fmt(f)
    }
}

impl MapTable {
    pub(crate) fn get(&self, addr: &DmaAddr) -> Option<&Mapping> {
        self.map.get(addr)
    }

    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    pub(crate) fn insert(&mut self, addr: DmaAddr, m: Mapping) -> Option<Mapping> {
        self.note(addr);
        self.map.insert(addr, m)
    }

    pub(crate) fn remove(&mut self, addr: &DmaAddr) -> Option<Mapping> {
        self.note(*addr);
        self.map.remove(addr)
    }

    fn note(&mut self, addr: DmaAddr) {
        let j = &mut self.journal;
        if j.base == 0 || j.lost {
            return;
        }
        if j.touched.len() >= self.map.len() + SLACK {
            j.lost = true;
            j.touched = Vec::new();
            return;
        }
        j.touched.push(addr);
    }

    /// Record changes from now on against snapshot `token` (forgetting any earlier one).
    pub(crate) fn track(&mut self, token: u64) {
        self.journal = Journal {
            base: token,
            touched: Vec::new(),
            lost: false,
        };
    }

    /// Whether every change since snapshot `token` is recorded.
    pub(crate) fn tracks(&self, token: u64) -> bool {
        self.journal.base == token && !self.journal.lost
    }

    /// Put back `saved` (the table as snapshot [`Self::tracks`] says it tracks saved it) by
    /// undoing the recorded changes only. The table then tracks that snapshot afresh.
    pub(crate) fn rewind(&mut self, saved: &MapTable) {
        for addr in self.journal.touched.drain(..) {
            match saved.map.get(&addr) {
                Some(m) => {
                    self.map.insert(addr, m.clone());
                }
                None => {
                    self.map.remove(&addr);
                }
            }
        }
    }
}
