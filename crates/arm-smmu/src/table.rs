//! The driver's view of an I/O page table (Linux's `io_pgtable_ops` + `io_pgtable_cfg`), and
//! its implementation on the `pgtable` crate ([`LpaeTables`]). The indirection lets tests build
//! domains on other tables, and keeps the register packing (TCR/TCR2/VTCR) in the driver, as in
//! Linux, with `pgtable`'s own values used as a cross-check in tests.

use crate::context::{CtxFmt, TableHw};
use iommu::{DriverError, Gather, Prot};
use pgtable::{PgTableError, TlbOps};
use physmem::FrameAllocator;
use smmu_sync::{Arc, Mutex};

/// What a domain asks of its page table (Linux's `io_pgtable_cfg` inputs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableRequest {
    /// Stage 2 (VTCR/VTTBR) rather than stage 1.
    pub stage2: bool,
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

/// One domain's page table. It owns its TLB callbacks, as io-pgtable does.
pub trait PageTable: Send + Sync {
    /// Map `pgcount` pages of `pgsize` at `iova` to `paddr`; returns bytes mapped.
    fn map_pages(
        &self,
        iova: u64,
        paddr: u64,
        pgsize: u64,
        pgcount: u64,
        prot: Prot,
    ) -> Result<u64, DriverError>;
    /// Unmap; leaf invalidations are queued through the TLB callbacks into `gather`. Returns the
    /// bytes unmapped.
    fn unmap_pages(&self, iova: u64, pgsize: u64, pgcount: u64, gather: &mut Gather) -> u64;
    /// Software walk; 0 when unmapped.
    fn iova_to_phys(&self, iova: u64) -> u64;
    /// Values for programming the context bank.
    fn hw(&self) -> TableHw;
    /// Page sizes the table actually supports (after granule selection).
    fn pgsize_bitmap(&self) -> u64;
}

/// Makes page tables for new domains out of the driver's frame allocator.
pub trait PageTableFactory: Send + Sync {
    /// A new, empty table for `req`, calling `tlb` for its invalidations.
    fn alloc(
        &self,
        req: &TableRequest,
        frames: &Arc<FrameAllocator>,
        tlb: SharedTlb,
    ) -> Result<Box<dyn PageTable>, DriverError>;
}

/// Adapter so a shared callback object can be a `pgtable` TLB parameter.
pub struct DynTlb(pub SharedTlb);

impl TlbOps for DynTlb {
    fn tlb_flush_all(&self) {
        self.0.tlb_flush_all()
    }
    fn tlb_flush_walk(&self, iova: u64, size: u64, granule: u64) {
        self.0.tlb_flush_walk(iova, size, granule)
    }
    fn tlb_add_page(&self, gather: &mut Gather, iova: u64, granule: u64) {
        self.0.tlb_add_page(gather, iova, granule)
    }
}

/// Page tables from the `pgtable` crate (ARM_64_LPAE_S1/S2, Linux v6.1 defaults).
#[derive(Debug, Default, Clone, Copy)]
pub struct LpaeTables;

struct Lpae {
    pt: Mutex<pgtable::PageTable<DynTlb>>,
    hw: TableHw,
    pgsizes: u64,
}

fn pgtable_error(e: PgTableError) -> DriverError {
    match e {
        PgTableError::Exists { iova } => DriverError::Exists { iova },
        PgTableError::IovaRange { .. } | PgTableError::PaddrRange { .. } => {
            DriverError::Range(e.to_string())
        }
        PgTableError::NoMemory(_) => DriverError::NoSpace(e.to_string()),
        other => DriverError::Invalid(other.to_string()),
    }
}

impl PageTableFactory for LpaeTables {
    fn alloc(
        &self,
        req: &TableRequest,
        frames: &Arc<FrameAllocator>,
        tlb: SharedTlb,
    ) -> Result<Box<dyn PageTable>, DriverError> {
        if req.fmt != CtxFmt::AArch64 {
            return Err(DriverError::Invalid(
                "only the AArch64 LPAE formats are implemented".into(),
            ));
        }
        let stage = if req.stage2 {
            pgtable::Stage::S2
        } else {
            pgtable::Stage::S1
        };
        let mut cfg = pgtable::Config::new(stage, req.pgsize_bitmap, req.ias, req.oas);
        cfg.coherent_walk = req.coherent_walk;
        let pt =
            pgtable::PageTable::new(cfg, frames.clone(), DynTlb(tlb)).map_err(pgtable_error)?;
        let c = pt.cfg();
        let hw = TableHw {
            pgd: pt.ttbr(),
            granule: c.granule(),
            ias: c.ias,
            oas: c.oas,
            start_level: c.geom.start_level,
            coherent: c.coherent_walk,
            mair: c.mair(),
        };
        let pgsizes = c.pgsize_bitmap;
        Ok(Box::new(Lpae {
            pt: Mutex::new(pt),
            hw,
            pgsizes,
        }))
    }
}

impl PageTable for Lpae {
    fn map_pages(
        &self,
        iova: u64,
        paddr: u64,
        pgsize: u64,
        pgcount: u64,
        prot: Prot,
    ) -> Result<u64, DriverError> {
        self.pt
            .lock()
            .map_pages(iova, paddr, pgsize, pgcount, prot)
            .map_err(pgtable_error)
    }

    fn unmap_pages(&self, iova: u64, pgsize: u64, pgcount: u64, gather: &mut Gather) -> u64 {
        self.pt.lock().unmap_pages(iova, pgsize, pgcount, gather)
    }

    fn iova_to_phys(&self, iova: u64) -> u64 {
        self.pt.lock().iova_to_phys(iova)
    }

    fn hw(&self) -> TableHw {
        self.hw
    }

    fn pgsize_bitmap(&self) -> u64 {
        self.pgsizes
    }
}
