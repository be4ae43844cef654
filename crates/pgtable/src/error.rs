//! Typed errors of the page-table code (Linux's errno values, with the facts that explain them).

use crate::config::{Granule, Quirks, MIN_IAS};
use physmem::{AllocError, PhysError};
use smmu_addr::{Iova, PageSize, PhysAddr};
use thiserror::Error;

/// Why io-pgtable-arm refuses a [`PgTableRequest`](crate::PgTableRequest): one variant per
/// check `PgTableCfg::new` makes, carrying the values that failed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum PgTableRequestError {
    /// No 4K, 16K or 64K granule can be chosen from the page-size bitmap.
    #[error("page-size bitmap {bitmap:#x} has no usable granule")]
    NoGranule {
        /// The bitmap asked for.
        bitmap: u64,
    },
    /// The granule chosen from the bitmap is not itself one of the bitmap's sizes once the
    /// bitmap is restricted to that granule's family.
    #[error("page-size bitmap {bitmap:#x} lacks its granule")]
    GranuleNotInBitmap {
        /// The bitmap asked for.
        bitmap: u64,
        /// The granule chosen from it.
        granule: Granule,
    },
    /// The input address size is below the smallest io-pgtable-arm accepts.
    #[error("ias {ias} below {MIN_IAS} bits")]
    IasTooSmall {
        /// Input address bits asked for.
        ias: u32,
    },
    /// The output address size has no IPS/PS encoding.
    #[error("oas {oas} is not 32, 36, 40, 42, 44 or 48 bits")]
    UnsupportedOas {
        /// Output address bits asked for.
        oas: u32,
    },
    /// A stage-1-only quirk was asked for a stage-2 table.
    #[error("quirks are stage-1 only")]
    Stage2Quirks {
        /// The quirks asked for.
        quirks: Quirks,
    },
    /// Stage-2 concatenation is mandatory for this geometry but the PGD would need more
    /// pages than may be concatenated.
    #[error("stage-2 concatenation is mandatory but needs {pages} pages")]
    Stage2ConcatTooLarge {
        /// PGD entries (pages at the next level) that concatenation would need.
        pages: u64,
    },
}

/// Why a page table could not be created or a mapping could not be made.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PgTableError {
    /// The requested configuration is not one io-pgtable-arm accepts (Linux: allocation
    /// returns NULL).
    #[error("unsupported page-table configuration: {0}")]
    BadConfig(#[from] PgTableRequestError),
    /// `pgsize` is not exactly one size of the page-size bitmap (-EINVAL).
    #[error("page size {pgsize:#x} is not in the page-size bitmap {bitmap:#x} (-EINVAL)")]
    BadPageSize {
        /// The size asked for.
        pgsize: PageSize,
        /// The supported sizes.
        bitmap: u64,
    },
    /// The IOVA range does not fit in the input address size (-ERANGE).
    #[error(
        "iova {iova:#x} + {size:#x} bytes is beyond the {ias}-bit input address space (-ERANGE)"
    )]
    IovaRange {
        /// Start of the range.
        iova: Iova,
        /// Bytes (`u64::MAX` when `pgsize * pgcount` overflows).
        size: u64,
        /// Input address bits.
        ias: u32,
    },
    /// The physical range does not fit in the output address size (-ERANGE).
    #[error(
        "pa {paddr:#x} + {size:#x} bytes is beyond the {oas}-bit output address space (-ERANGE)"
    )]
    PaddrRange {
        /// Start of the range.
        paddr: PhysAddr,
        /// Bytes.
        size: u64,
        /// Output address bits.
        oas: u32,
    },
    /// IOVA or PA not aligned to the page size (the IOMMU core guarantees this in Linux).
    #[error("iova {iova:#x} / pa {paddr:#x} not aligned to page size {pgsize:#x} (-EINVAL)")]
    Misaligned {
        /// IOVA asked for.
        iova: Iova,
        /// PA asked for.
        paddr: PhysAddr,
        /// Page size asked for.
        pgsize: PageSize,
    },
    /// Neither READ nor WRITE requested (current Linux: -EINVAL).
    #[error("mapping with neither read nor write permission (-EINVAL)")]
    NoAccess,
    /// A live leaf already translates `iova`: unmap it first (-EEXIST).
    #[error("iova {iova:#x} is already mapped (-EEXIST)")]
    Exists {
        /// First IOVA found mapped.
        iova: Iova,
    },
    /// No memory for a table page (-ENOMEM).
    #[error("cannot allocate a table page: {0} (-ENOMEM)")]
    NoMemory(#[from] AllocError),
    /// A table access hit unbacked simulated memory (cannot happen for tables this crate
    /// allocated; reported rather than panicking).
    #[error("page-table memory access failed: {0}")]
    Phys(#[from] PhysError),
}
