//! The contract between the IOMMU core and an IOMMU driver (Linux's `struct iommu_ops` plus
//! `iommu_domain_ops`). The core owns devices, groups and DMA domains; a driver owns hardware
//! and page tables, and names its domains by [`DriverDomain`] handles.

pub use pgtable::{Gather, PgTableError, Prot};
use smmu_addr::{Iova, PageCount, PageSize, PhysAddr};
use thiserror::Error;

/// Core-assigned identifier of a device (stable for the device's lifetime).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeviceId(pub u32);

/// A driver's handle for one of its domains.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DriverDomain(pub u32);

/// What the firmware (device tree `iommus` / `iommu-map`) says about a master.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FwSpec {
    /// Stream IDs as Linux's fwspec holds them: for `#iommu-cells = 2` (or a
    /// `stream-match-mask`) the SMR mask sits in bits 31:16 and the ID in 15:0.
    pub ids: Vec<u32>,
}

/// A master as the core presents it to a driver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MasterInfo {
    pub id: DeviceId,
    /// Linux's dev_printk prefix, e.g. `fsl_enetc 0000:00:00.0`.
    pub log_name: String,
    pub fwspec: FwSpec,
}

/// Kinds of domain (Linux's IOMMU_DOMAIN_*).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DomainKind {
    /// Translated, used through the DMA API (IOMMU_DOMAIN_DMA).
    Dma,
    /// Translated, lazy invalidation through a flush queue (IOMMU_DOMAIN_DMA_FQ).
    DmaFq,
    /// Translated, driven by the device's driver directly (IOMMU_DOMAIN_UNMANAGED).
    Unmanaged,
    /// Pass-through (IOMMU_DOMAIN_IDENTITY).
    Identity,
    /// Everything blocked (IOMMU_DOMAIN_BLOCKED).
    Blocked,
}

/// A domain's input address range and page sizes, known after the driver finalises it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    /// The first IOVA the domain translates.
    pub aperture_start: Iova,
    /// The last IOVA it translates (inclusive, so the aperture may end at the top of the space).
    pub aperture_end: Iova,
    pub pgsize_bitmap: u64,
}

/// What a driver ran out of (-ENOSPC / -ENOMEM).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Resource {
    /// SMMUv2: every stream-map entry (SMR/S2CR pair) is in use.
    StreamMapEntries,
    /// SMMUv2: every context bank the domain's stage may use is taken.
    ContextBanks,
    /// SMMUv3: every ASID is taken.
    Asids,
    /// SMMUv3: every VMID is taken.
    Vmids,
    /// SMMUv3: no memory for a level-2 stream table.
    L2StreamTable,
    /// SMMUv3: no memory for a context-descriptor table.
    CdTable,
    /// A test driver told to fail its mappings.
    InjectedFailure,
}

impl std::fmt::Display for Resource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Resource::StreamMapEntries => "stream map entries",
            Resource::ContextBanks => "context banks",
            Resource::Asids => "ASIDs",
            Resource::Vmids => "VMIDs",
            Resource::L2StreamTable => "level-2 stream table memory",
            Resource::CdTable => "context descriptor table memory",
            Resource::InjectedFailure => "memory (injected failure)",
        })
    }
}

/// Errors a driver reports to the core (Linux's errno values, typed). Each variant names one
/// problem and carries the values that show it; the errno is part of the message.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DriverError {
    #[error("device is not handled by this IOMMU (-ENODEV)")]
    NoDevice,
    /// SMMUv2: a firmware stream ID has bits the SMMU's stream IDs do not have.
    #[error("stream ID {sid:#x} out of range for the SMMU (stream ID mask {limit:#x}) (-EINVAL)")]
    StreamIdRange { sid: u32, limit: u32 },
    /// SMMUv2: a firmware SMR mask has bits the SMMU's SMRs do not implement.
    #[error("SMR mask {mask:#x} out of range for the SMMU (SMR mask bits {limit:#x}) (-EINVAL)")]
    SmrMaskRange { mask: u32, limit: u32 },
    /// SMMUv2: a stream ID and mask match some, but not all, of the IDs a live stream-map
    /// entry matches, so neither entry can serve both.
    #[error("stream ID {sid:#x} mask {mask:#x} partly overlaps stream map entry {sme} (-EINVAL)")]
    StreamMatchOverlap { sid: u16, mask: u16, sme: usize },
    /// A stream ID beyond the stream table (SMMUv2 stream indexing: the S2CR array; SMMUv3:
    /// the stream table's `entries`).
    #[error("stream ID {sid:#x} beyond the stream table of {entries} entries (-ERANGE)")]
    StreamBeyondTable { sid: u32, entries: u64 },
    /// SMMUv3: another master already owns the stream ID.
    #[error("stream ID {sid:#x} already belongs to another master (-EINVAL)")]
    StreamInUse { sid: u32 },
    /// SMMUv2 `device_group`: the master's stream-map entries already belong to two
    /// different groups.
    #[error("stream IDs already in two different groups (-EINVAL)")]
    StreamsInTwoGroups,
    /// SMMUv2: the master already holds stream-map entries.
    #[error("master already has stream map entries (-EEXIST)")]
    AlreadyProbed,
    /// The domain handle names no domain of this driver.
    #[error("no domain {id} (-EINVAL)")]
    NoDomain { id: u32 },
    /// The domain has no geometry yet: nothing was attached to it.
    #[error("domain not finalised (-EINVAL)")]
    NotFinalised,
    /// A map request not aligned to the domain's smallest page size.
    #[error(
        "unaligned map: iova {iova:#x} pa {paddr:#x} size {size:#x} (smallest page {min_page:#x}) (-EINVAL)"
    )]
    Unaligned {
        iova: Iova,
        paddr: PhysAddr,
        size: u64,
        min_page: PageSize,
    },
    /// SMMUv2: the SMMU implements no context format the driver can use.
    #[error("no usable context format (-EINVAL)")]
    NoContextFormat,
    /// The page-table provider implements only the AArch64 LPAE formats.
    #[error("only the AArch64 LPAE page-table formats are implemented (-EINVAL)")]
    TableFormat,
    #[error("{0} exhausted (-ENOSPC/-ENOMEM)")]
    Exhausted(Resource),
    /// The driver's `map_pages` returned success having mapped nothing. Linux's `__iommu_map`
    /// would call it again with the same arguments forever (a soft lockup); the model stops.
    #[error("driver mapped nothing at {iova:#x}: Linux's map loop would not progress")]
    MappedNothing { iova: Iova },
    #[error("mapping already present at {iova:#x} (-EEXIST)")]
    Exists { iova: Iova },
    #[error("operation not supported (-EOPNOTSUPP)")]
    NotSupported,
    #[error("device busy (-EBUSY)")]
    Busy,
    /// The IOMMU is not ready for the device yet (-EPROBE_DEFER): the driver core retries.
    #[error("IOMMU not ready for the device yet (-EPROBE_DEFER)")]
    ProbeDefer,
    /// The driver dereferenced a NULL pointer: the simulated kernel's oops, as a value.
    #[error("Unable to handle kernel NULL pointer dereference in {function}")]
    NullDereference {
        /// The function that faulted.
        function: &'static str,
    },
    /// A kernel mutex the call needs can never be taken (the simulated kernel hangs here).
    #[error(transparent)]
    Deadlock(#[from] smmu_sync::Deadlock),
    /// The page-table code refused the request; its error says why and carries the errno.
    #[error(transparent)]
    PgTable(#[from] PgTableError),
}

impl DriverError {
    /// The errno Linux returns for this failure, as `%d` prints it (`-22` for -EINVAL); `None`
    /// for the outcomes where Linux returns nothing: its map loop spins, it oopses or it hangs.
    pub fn errno(&self) -> Option<i32> {
        const ENOMEM: i32 = -12;
        const EBUSY: i32 = -16;
        const EEXIST: i32 = -17;
        const ENODEV: i32 = -19;
        const EINVAL: i32 = -22;
        const ENOSPC: i32 = -28;
        const ERANGE: i32 = -34;
        const EOPNOTSUPP: i32 = -95;
        const EPROBE_DEFER: i32 = -517;
        Some(match self {
            DriverError::NoDevice => ENODEV,
            DriverError::StreamIdRange { .. }
            | DriverError::SmrMaskRange { .. }
            | DriverError::StreamMatchOverlap { .. }
            | DriverError::StreamInUse { .. }
            | DriverError::StreamsInTwoGroups
            | DriverError::NoDomain { .. }
            | DriverError::NotFinalised
            | DriverError::Unaligned { .. }
            | DriverError::NoContextFormat
            | DriverError::TableFormat => EINVAL,
            DriverError::StreamBeyondTable { .. } => ERANGE,
            DriverError::AlreadyProbed | DriverError::Exists { .. } => EEXIST,
            // arm_smmu_find_sme and __arm_smmu_alloc_bitmap (-ENOSPC); arm-smmu-v3's ASID
            // xa_alloc (-EBUSY), its VMID bitmap (-ENOSPC), its table allocations (-ENOMEM).
            DriverError::Exhausted(r) => match r {
                Resource::StreamMapEntries | Resource::ContextBanks | Resource::Vmids => ENOSPC,
                Resource::Asids => EBUSY,
                Resource::L2StreamTable | Resource::CdTable | Resource::InjectedFailure => ENOMEM,
            },
            DriverError::NotSupported => EOPNOTSUPP,
            DriverError::Busy => EBUSY,
            DriverError::ProbeDefer => EPROBE_DEFER,
            DriverError::MappedNothing { .. }
            | DriverError::NullDereference { .. }
            | DriverError::Deadlock(_) => return None,
            DriverError::PgTable(e) => match e {
                // alloc_io_pgtable_ops returned NULL: the caller's -ENOMEM.
                PgTableError::BadConfig(_) | PgTableError::NoMemory(_) => ENOMEM,
                PgTableError::BadPageSize { .. }
                | PgTableError::Misaligned { .. }
                | PgTableError::NoAccess => EINVAL,
                PgTableError::IovaRange { .. } | PgTableError::PaddrRange { .. } => ERANGE,
                PgTableError::Exists { .. } => EEXIST,
                PgTableError::Phys(_) => return None,
            },
        })
    }
}

/// An IOMMU driver as the core drives it. All methods take `&self`: a driver locks internally
/// (through the sync facade), as Linux drivers do.
pub trait IommuDriver: Send + Sync {
    /// The IOMMU's dev_printk prefix, e.g. `arm-smmu 5000000.iommu`.
    fn log_name(&self) -> &str;
    /// Take a master described by firmware (`probe_device`).
    fn probe_device(&self, master: &MasterInfo) -> Result<(), DriverError>;
    /// Forget a master (`release_device`): its stream-map entries go back to the reset type.
    fn release_device(&self, dev: DeviceId);
    /// `device_group`: a key saying which masters must share a group (masters whose
    /// stream-map entries overlap); the core finds or allocates the group of that key.
    /// `Ok(None)`: a group of its own. An error fails the probe.
    fn device_group(&self, dev: DeviceId) -> Result<Option<u64>, DriverError>;
    /// The domain kind the driver insists on for this device, if any (`def_domain_type`).
    fn def_domain_kind(&self, _dev: DeviceId) -> Option<DomainKind> {
        None
    }
    fn domain_alloc(&self, kind: DomainKind) -> Result<DriverDomain, DriverError>;
    fn domain_free(&self, dom: DriverDomain);
    /// Attach `dev` to `dom`. The first attach finalises the domain (context bank, page tables).
    fn attach_dev(&self, dom: DriverDomain, dev: DeviceId) -> Result<(), DriverError>;
    /// Input range and page sizes; `None` before the domain is finalised.
    fn geometry(&self, dom: DriverDomain) -> Option<Geometry>;
    /// Map `pgcount` pages of `pgsize` from `iova` to `paddr`; returns the bytes mapped.
    fn map_pages(
        &self,
        dom: DriverDomain,
        iova: Iova,
        paddr: PhysAddr,
        pgsize: PageSize,
        pgcount: PageCount,
        prot: Prot,
    ) -> Result<u64, DriverError>;
    /// Unmap `pgcount` pages of `pgsize` from `iova`; returns the bytes unmapped.
    fn unmap_pages(
        &self,
        dom: DriverDomain,
        iova: Iova,
        pgsize: PageSize,
        pgcount: PageCount,
        gather: &mut Gather,
    ) -> u64;
    /// Complete the invalidations queued in `gather`.
    fn iotlb_sync(&self, dom: DriverDomain, gather: &mut Gather);
    /// Invalidate everything for the domain.
    fn flush_iotlb_all(&self, dom: DriverDomain);
    /// The physical address `iova` translates to, `None` when unmapped (Linux returns 0).
    fn iova_to_phys(&self, dom: DriverDomain, iova: Iova) -> Option<PhysAddr>;
}
