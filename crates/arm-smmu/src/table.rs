//! The driver's view of an I/O page table (Linux's `io_pgtable_ops` + `io_pgtable_cfg`), and
//! its implementation on the `pgtable` crate ([`LpaeTables`]). The indirection lets tests build
//! domains on other tables, and keeps the register packing (TCR/TCR2/VTCR) in the driver, as in
//! Linux, with `pgtable`'s own values used as a cross-check in tests.

use crate::context::{CtxFmt, TableHw};
use iommu::{DriverError, Gather, Prot};
use pgtable::TlbOps;
use physmem::FrameAllocator;
use smmu_addr::{Iova, PageCount, PageSize, PhysAddr};
use smmu_arch::Stage;
use smmu_sync::{Arc, RwLock};
use std::any::Any;
use thiserror::Error;

/// What a domain asks of its page table (Linux's `io_pgtable_cfg` inputs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableRequest {
    /// The translation stage whose format the table uses (stage 2: VTCR/VTTBR).
    pub stage: Stage,
    /// Context (table) format.
    pub fmt: CtxFmt,
    /// Page sizes the SMMU supports.
    pub pgsize_bitmap: u64,
    /// Input address bits.
    pub ias: u32,
    /// Output address bits.
    pub oas: u32,
    /// Walk is cache coherent.
    pub coherent_walk: bool,
}

/// The TLB maintenance a table issues, shareable across threads.
pub type SharedTlb = Arc<dyn TlbOps + Send + Sync>;

/// One domain's page table as the driver uses it (Linux's `io_pgtable_ops`). It owns its TLB
/// callbacks, as io-pgtable does. `pgtable::PageTable` is one implementation ([`LpaeTables`]).
pub trait IoPgtableOps: Send + Sync {
    /// Map `pgcount` pages of `pgsize` at `iova` to `paddr`; returns bytes mapped.
    fn map_pages(
        &self,
        iova: Iova,
        paddr: PhysAddr,
        pgsize: PageSize,
        pgcount: PageCount,
        prot: Prot,
    ) -> Result<u64, DriverError>;
    /// Unmap; leaf invalidations are queued through the TLB callbacks into `gather`. Returns the
    /// bytes unmapped.
    fn unmap_pages(
        &self,
        iova: Iova,
        pgsize: PageSize,
        pgcount: PageCount,
        gather: &mut Gather,
    ) -> u64;
    /// Software walk; `None` when unmapped.
    fn iova_to_phys(&self, iova: Iova) -> Option<PhysAddr>;
    /// Values for programming the context bank.
    fn hw(&self) -> TableHw;
    /// Page sizes the table actually supports (after granule selection).
    fn pgsize_bitmap(&self) -> u64;
    /// Give every table page back now (Linux's `free_io_pgtable_ops` after its flush). The
    /// object stays, owning nothing, for whoever still holds it (a driver snapshot); it is
    /// not used again unless [`restore`](Self::restore) brings it back.
    fn free(&self);
    /// The table object's own mutable state now (for [`LpaeTables`]' tables: the walk cache),
    /// not what it keeps in simulated memory (descriptors and table pages are physmem's to
    /// save). Taken while no map or unmap runs.
    fn snapshot(&self) -> TableSnapshot;
    /// Put the state of `snap` back into this table. Refused, changing nothing, when `snap`
    /// was taken of another table or another kind of table. Restore it with the memory and
    /// frame allocator of the same moment, while no map, unmap or lookup runs.
    fn restore(&self, snap: &TableSnapshot) -> Result<(), TableSnapshotError>;
}

/// One table's state at one moment ([`IoPgtableOps::snapshot`]), opaque to the driver: each
/// table implementation puts its own snapshot type in and takes it out again.
#[derive(Clone)]
pub struct TableSnapshot(Arc<dyn Any + Send + Sync>);

impl TableSnapshot {
    /// Wrap an implementation's snapshot.
    pub fn new<S: Any + Send + Sync>(snap: S) -> TableSnapshot {
        TableSnapshot(Arc::new(snap))
    }

    /// The implementation's snapshot, if it is an `S`.
    pub fn get<S: Any>(&self) -> Option<&S> {
        self.0.downcast_ref()
    }
}

impl std::fmt::Debug for TableSnapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.get::<pgtable::PageTableSnapshot>() {
            Some(s) => f.debug_tuple("TableSnapshot").field(s).finish(),
            None => f.write_str("TableSnapshot(..)"),
        }
    }
}

/// A [`TableSnapshot`] cannot be put back into this table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum TableSnapshotError {
    /// The snapshot is of another implementation of [`IoPgtableOps`].
    #[error("page-table snapshot of another kind of table")]
    OtherKind,
    /// The snapshot is of another LPAE table.
    #[error(transparent)]
    Lpae(#[from] pgtable::PageTableSnapshotError),
}

/// Makes page tables for new domains out of the driver's frame allocator (Linux's
/// `alloc_io_pgtable_ops`).
pub trait IoPgtableFactory: Send + Sync {
    /// A new, empty table for `req`, calling `tlb` for its invalidations.
    fn alloc(
        &self,
        req: &TableRequest,
        frames: &Arc<FrameAllocator>,
        tlb: SharedTlb,
    ) -> Result<Box<dyn IoPgtableOps>, DriverError>;
}

/// Page tables from the `pgtable` crate (ARM_64_LPAE_S1/S2, Linux v6.1 defaults), with
/// Linux's or smmu-lab's input checks ([`pgtable::Fidelity`]), the kernel's partial-unmap
/// behaviour ([`pgtable::PartialUnmap`]), what the loser of a race to split one block does
/// ([`pgtable::SplitRace`]) and its bound at a concatenated stage-2 PGD
/// ([`pgtable::PgdRunBound`]).
///
/// Locking: Linux calls io-pgtable-arm without a lock (since v4.13), so unmaps run
/// concurrently here too ([`pgtable::PageTable::unmap_pages_concurrent`] under a shared lock)
/// and two of them can race to split one block. Maps take the table exclusively: a model
/// simplification (pgtable's `map_pages` fills its walk cache), which orders a map against
/// the unmaps of other ranges but changes no result of valid, non-overlapping calls.
#[derive(Debug, Default, Clone, Copy)]
pub struct LpaeTables {
    /// Input checks of every table this factory builds.
    pub fidelity: pgtable::Fidelity,
    /// What unmapping part of a block does (split before 33729a5fc0ca, refused after).
    pub partial_unmap: pgtable::PartialUnmap,
    /// What the loser of a race to split one block does (85c7a0f1ef62).
    pub split_race: pgtable::SplitRace,
    /// A step's bound at a concatenated stage-2 PGD (before and after d71fa842d33c).
    pub pgd_run_bound: pgtable::PgdRunBound,
}

impl LpaeTables {
    /// smmu-lab's stricter checks.
    pub const SAFE: LpaeTables = LpaeTables {
        fidelity: pgtable::Fidelity::Safe,
        partial_unmap: pgtable::PartialUnmap::Split,
        split_race: pgtable::SplitRace::UnmapFromWinner,
        pgd_run_bound: pgtable::PgdRunBound::WithinPage,
    };
    /// io-pgtable-arm's checks (the Linux-faithful kernels).
    pub const LINUX: LpaeTables = LpaeTables {
        fidelity: pgtable::Fidelity::Linux,
        partial_unmap: pgtable::PartialUnmap::Split,
        split_race: pgtable::SplitRace::UnmapFromWinner,
        pgd_run_bound: pgtable::PgdRunBound::WithinPage,
    };

    /// The same factory with `partial_unmap`.
    pub const fn with_partial_unmap(self, partial_unmap: pgtable::PartialUnmap) -> LpaeTables {
        LpaeTables {
            partial_unmap,
            ..self
        }
    }

    /// The same factory with `split_race`.
    pub const fn with_split_race(self, split_race: pgtable::SplitRace) -> LpaeTables {
        LpaeTables { split_race, ..self }
    }

    /// The same factory with `pgd_run_bound`.
    pub const fn with_pgd_run_bound(self, pgd_run_bound: pgtable::PgdRunBound) -> LpaeTables {
        LpaeTables {
            pgd_run_bound,
            ..self
        }
    }
}

struct Lpae {
    pt: RwLock<pgtable::PageTable<SharedTlb>>,
    hw: TableHw,
    pgsizes: u64,
}

impl IoPgtableFactory for LpaeTables {
    fn alloc(
        &self,
        req: &TableRequest,
        frames: &Arc<FrameAllocator>,
        tlb: SharedTlb,
    ) -> Result<Box<dyn IoPgtableOps>, DriverError> {
        if req.fmt != CtxFmt::AArch64 {
            return Err(DriverError::TableFormat);
        }
        let mut cfg = pgtable::PgTableRequest::new(req.stage, req.pgsize_bitmap, req.ias, req.oas);
        cfg.coherent_walk = req.coherent_walk;
        cfg.fidelity = self.fidelity;
        cfg.partial_unmap = self.partial_unmap;
        cfg.split_race = self.split_race;
        cfg.pgd_run_bound = self.pgd_run_bound;
        let pt = pgtable::PageTable::new(cfg, frames.clone(), tlb)?;
        let c = pt.cfg();
        let hw = TableHw {
            pgd: pt.ttbr(),
            granule: c.geom.granule_size(),
            ias: c.ias,
            oas: c.oas,
            start_level: c.geom.start_level,
            coherent: c.coherent_walk,
            mair: c.mair(),
        };
        let pgsizes = c.pgsize_bitmap;
        Ok(Box::new(Lpae {
            pt: RwLock::new(pt),
            hw,
            pgsizes,
        }))
    }
}

impl IoPgtableOps for Lpae {
    fn map_pages(
        &self,
        iova: Iova,
        paddr: PhysAddr,
        pgsize: PageSize,
        pgcount: PageCount,
        prot: Prot,
    ) -> Result<u64, DriverError> {
        Ok(self
            .pt
            .write()
            .map_pages(iova, paddr, pgsize, pgcount, prot)?)
    }

    fn unmap_pages(
        &self,
        iova: Iova,
        pgsize: PageSize,
        pgcount: PageCount,
        gather: &mut Gather,
    ) -> u64 {
        self.pt
            .read()
            .unmap_pages_concurrent(iova, pgsize, pgcount, gather)
    }

    fn iova_to_phys(&self, iova: Iova) -> Option<PhysAddr> {
        self.pt.read().iova_to_phys(iova)
    }

    fn hw(&self) -> TableHw {
        self.hw
    }

    fn pgsize_bitmap(&self) -> u64 {
        self.pgsizes
    }

    fn free(&self) {
        // Cannot fail for pages this table allocated from its own allocator; Linux's
        // free_io_pgtable_ops returns nothing either.
        let _ = self.pt.write().free_tables();
    }

    fn snapshot(&self) -> TableSnapshot {
        TableSnapshot::new(self.pt.read().snapshot())
    }

    fn restore(&self, snap: &TableSnapshot) -> Result<(), TableSnapshotError> {
        let Some(s) = snap.get::<pgtable::PageTableSnapshot>() else {
            return Err(TableSnapshotError::OtherKind);
        };
        Ok(self.pt.write().restore(s)?)
    }
}
