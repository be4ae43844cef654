//! ARM VMSAv8-64 long-descriptor (LPAE) I/O page tables with Linux `io-pgtable-arm`
//! semantics, stored in simulated physical memory ([`physmem::PhysMem`]).
//!
//! * [`PgTableRequest`] → [`PgTableCfg`]: granule choice, geometry (levels, start level, stage-2
//!   concatenation under the v6.1 or current rule) and the register values a driver programs
//!   (`smmu_tcr`, `smmu_tcr2`, `vtcr`, `mair`, and TTBRs from [`PageTable`]).
//! * [`PageTable`]: `map_pages` / `unmap_pages` / `iova_to_phys` with Linux's descriptor
//!   encoding, block splitting, `-EEXIST` on overlap, and TLB maintenance through [`TlbOps`] and
//!   a [`Gather`].
//! * [`Pte`]: a typed descriptor with per-stage leaf attributes ([`pte::S1Attrs`],
//!   [`pte::S2Attrs`]) on `smmu_arch::desc`'s layout, Linux's `prot` → attributes rule, and a
//!   decoder used by [`PageTable::dump`].
//! * [`PageTable::snapshot`] / [`PageTable::restore`]: the table object's own bookkeeping (its
//!   walk cache), put back in place for the schedule explorer's booted-machine snapshot. The
//!   descriptors and table pages are not covered: they are in `physmem`, whose `PhysMem` and
//!   `FrameAllocator` snapshots must be restored with it.
//!
//! Addresses and sizes are typed (`smmu_addr`): `map_pages(Iova, PhysAddr, PageSize,
//! PageCount, Prot)`, `unmap_pages(Iova, PageSize, PageCount, &mut Gather)`,
//! `iova_to_phys(Iova) -> Option<PhysAddr>`.
//!
//! Formats: ARM_64_LPAE_S1 and ARM_64_LPAE_S2 with 4K, 16K and 64K granules, IAS 32–48 and OAS
//! 32–48. Not modelled: 32-bit LPAE formats, 52-bit addresses, the TTBR1 and HD quirks.

#![warn(missing_docs)]

mod config;
mod dump;
mod error;
mod gather;
mod prot;
pub mod pte;
mod table;

pub use config::{
    choose_granule, ips_of, Fidelity, Granule, PartialUnmap, PgTableCfg, PgTableRequest,
    PgdRunBound, Quirks, S2Concat, TableGeometry, TableReclaim, MAIR, MAIR_IDX_CACHE, MAIR_IDX_DEV,
    MAIR_IDX_INC_OCACHE, MAIR_IDX_NC, MAX_ADDR_BITS, MAX_LEVELS, MIN_IAS, PGSIZES_16K, PGSIZES_4K,
    PGSIZES_64K, RGN_NC, RGN_WBWA, S2_MAX_CONCAT_PAGES, SH_IS, SH_OS,
};
pub use error::{PgTableError, PgTableRequestError};
pub use gather::{Gather, NoTlb, TlbOps};
pub use prot::Prot;
pub use pte::Pte;
/// The translation stage a table is built for (its descriptor attributes and control
/// register): `smmu_arch`'s one `Stage`, re-exported so pgtable's users need not name smmu-arch.
pub use smmu_arch::Stage;
pub use table::{Leaf, PageTable, PageTableSnapshot, PageTableSnapshotError, SplitRace, WalkStep};
