//! Saving a table's own bookkeeping and putting it back in place, for the schedule explorer's
//! booted-machine snapshot (every schedule starts from the same booted machine, restored into
//! the one a worker already has).
//!
//! A [`PageTable`] keeps its descriptors in [`PhysMem`](physmem::PhysMem) and its table pages
//! in a [`FrameAllocator`](physmem::FrameAllocator): those are physmem's to save and restore.
//! What the table object itself holds that changes after creation is the software walk cache
//! and whether it still owns its pages (everything else is fixed by the configuration and the
//! PGD). A snapshot keeps the table object alive, so a run that is done with the table frees
//! its pages with [`PageTable::free_tables`] rather than by dropping it, exactly when a
//! table nobody else held would have freed them; the restore makes it live again, its pages
//! coming back with the allocator and memory restores. The cache is only a hint, but
//! a hint about *these* tables: restore it together with the memory and allocator it was taken
//! with, or a later walk could start from a table page that the restored memory no longer has.

use super::walk_cache::WalkCache;
use super::PageTable;
use crate::config::{PgTableCfg, MAX_LEVELS};
use crate::TlbOps;
use smmu_addr::PhysAddr;
use thiserror::Error;

/// A table's bookkeeping at one moment ([`PageTable::snapshot`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageTableSnapshot {
    cfg: PgTableCfg,
    pgd: u64,
    /// Whether the table owned its pages ([`PageTable::free_tables`] not called yet).
    live: bool,
    /// The walk cache's slots, level by level: (key, table PA).
    walks: [(u64, u64); MAX_LEVELS as usize],
}

impl PageTableSnapshot {
    /// The PGD of the table the snapshot was taken of.
    pub fn pgd(&self) -> PhysAddr {
        PhysAddr::new(self.pgd)
    }
}

/// A snapshot cannot be put back into this table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum PageTableSnapshotError {
    /// The snapshot is of another table (another PGD or configuration): its walk cache would
    /// point into someone else's tables.
    #[error(
        "snapshot of the page table at {snapshot:#x} restored into the page table at {table:#x}"
    )]
    OtherTable {
        /// PGD of the table the snapshot was taken of.
        snapshot: PhysAddr,
        /// PGD of the table it was restored into.
        table: PhysAddr,
    },
}

impl<T: TlbOps> PageTable<T> {
    /// The table's own bookkeeping now (its walk cache; the descriptors are in memory). Take
    /// it while no map or unmap runs.
    pub fn snapshot(&self) -> PageTableSnapshot {
        PageTableSnapshot {
            cfg: self.cfg,
            pgd: self.pgd,
            live: self.live,
            walks: self.cache.slots(),
        }
    }

    /// Put the bookkeeping of `s` back: the walk cache, and whether the table owns its pages
    /// (a table freed by [`free_tables`](Self::free_tables) since the snapshot is live again).
    /// Refused, changing nothing, when `s` was taken of another table. Restore it with the
    /// memory and frame allocator of the same moment (see the module docs), while no map,
    /// unmap or lookup runs.
    pub fn restore(&mut self, s: &PageTableSnapshot) -> Result<(), PageTableSnapshotError> {
        if s.pgd != self.pgd || s.cfg != self.cfg {
            return Err(PageTableSnapshotError::OtherTable {
                snapshot: PhysAddr::new(s.pgd),
                table: PhysAddr::new(self.pgd),
            });
        }
        self.cache.set_slots(&s.walks);
        self.live = s.live;
        Ok(())
    }
}

impl WalkCache {
    /// Every slot, as (key, table) per level.
    pub(super) fn slots(&self) -> [(u64, u64); MAX_LEVELS as usize] {
        use std::sync::atomic::Ordering;
        std::array::from_fn(|l| {
            (
                self.key[l].load(Ordering::Relaxed),
                self.table[l].load(Ordering::Relaxed),
            )
        })
    }

    /// Overwrite every slot.
    pub(super) fn set_slots(&self, slots: &[(u64, u64); MAX_LEVELS as usize]) {
        use std::sync::atomic::Ordering;
        for (l, &(key, table)) in slots.iter().enumerate() {
            self.key[l].store(key, Ordering::Relaxed);
            self.table[l].store(table, Ordering::Relaxed);
        }
    }
}
