//! Typed errors of the core and of the DMA API.

use crate::oops::Oops;
use crate::ops::DriverError;
use smmu_addr::{DmaAddr, PhysAddr};
use thiserror::Error;

/// Errors of instance and device management.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CoreError {
    /// The instance id is not registered.
    #[error("no IOMMU instance {0}")]
    NoInstance(u32),
    /// The device id was never probed.
    #[error("no device {0}")]
    NoDevice(u32),
    /// The device has no group (released).
    #[error("device {0} has no group")]
    NoGroup(u32),
    /// The domain and the device belong to different IOMMUs.
    #[error("domain belongs to another IOMMU instance")]
    WrongInstance,
    /// The operation does not apply to this kind of domain.
    #[error("domain kind {0:?} cannot be used here")]
    WrongKind(crate::ops::DomainKind),
    /// The driver reported a geometry the core cannot use.
    #[error("domain geometry unusable: {0}")]
    Geometry(&'static str),
    /// Bad arguments.
    #[error("invalid argument: {0}")]
    Invalid(&'static str),
    /// Memory used after it was freed (what KASAN reports; the simulated kernel's verdict).
    #[error("KASAN: use-after-free of {object} in {function}")]
    UseAfterFree {
        /// The freed object.
        object: &'static str,
        /// The function that used it.
        function: &'static str,
    },
    /// Safe core: `iommu_domain_free` of a domain a group is still attached to.
    #[error("domain is still attached to group {group}")]
    DomainAttached {
        /// The group.
        group: u32,
    },
    /// `iommu_device_use_default_domain`: the group is owned by a user or attached to a
    /// domain other than its default one (-EBUSY).
    #[error("the group is owned or attached to another domain (-EBUSY)")]
    DefaultDomainBusy,
    /// The group's DMA is owned by another owner (-EPERM).
    #[error("the group's DMA is owned by another owner (-EPERM)")]
    OwnerBusy,
    /// The driver refused.
    #[error("driver: {0}")]
    Driver(#[from] DriverError),
}

/// Errors of the DMA API. Every misuse a device driver can make is one of these; the simulated
/// kernel's crash is the [`DmaError::Oops`] value, never a Rust panic.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DmaError {
    /// The device id was never probed.
    #[error("unknown device")]
    NoDevice,
    /// The device has no IOMMU group (safe mode).
    #[error("device has no IOMMU group")]
    NoGroup,
    /// The device was released from its IOMMU (safe mode).
    #[error("device was released from its IOMMU")]
    DeviceReleased,
    /// The domain is being torn down (its group was freed while the call was in flight).
    #[error("DMA domain is being torn down")]
    DomainDying,
    /// Nothing is mapped at this DMA address (never mapped, or already unmapped).
    #[error("no mapping at DMA address {addr:#x}")]
    NotMapped {
        /// The DMA address.
        addr: DmaAddr,
    },
    /// The mapping exists with another size.
    #[error("mapping at {addr:#x} has size {mapped:#x}, unmap asked for {requested:#x}")]
    WrongSize {
        /// The DMA address.
        addr: DmaAddr,
        /// Size of the live mapping.
        mapped: u64,
        /// Size the caller passed.
        requested: u64,
    },
    /// The mapping exists with another direction.
    #[error("mapping at {addr:#x} was made with another DMA direction")]
    WrongDirection {
        /// The DMA address.
        addr: DmaAddr,
    },
    /// The mapping at this address was made by another call (page vs sg vs coherent).
    #[error("mapping at {addr:#x} was made by another kind of DMA call")]
    WrongKind {
        /// The DMA address.
        addr: DmaAddr,
    },
    /// Zero size, overflow, `DmaDirection::None`, an empty scatterlist...
    #[error("invalid argument: {0}")]
    Invalid(&'static str),
    /// No IOVA space below the device's DMA limit.
    #[error("no IOVA space for {size:#x} bytes")]
    NoIovaSpace {
        /// Bytes asked for (granule aligned).
        size: u64,
    },
    /// Direct (identity) DMA of a range that is not system memory (safe core): a huge size, or
    /// an address no RAM backs.
    #[error("physical range {paddr:#x}+{size:#x} is not system memory")]
    NotSystemMemory {
        /// The physical address.
        paddr: PhysAddr,
        /// The size asked for.
        size: u64,
    },
    /// Direct (identity) DMA of memory the device cannot address.
    #[error("physical address {paddr:#x} is beyond the device's DMA mask")]
    BeyondMask {
        /// The physical address.
        paddr: PhysAddr,
    },
    /// The domain's driver refused.
    #[error("driver: {0}")]
    Driver(#[from] DriverError),
    /// Coherent memory could not be allocated.
    #[error("coherent allocation: {0}")]
    Alloc(#[from] physmem::AllocError),
    /// Linux-faithful mode: the simulated kernel dereferenced a NULL group here.
    #[error("kernel oops: NULL pointer dereference at {:#x}", .0.fault_addr)]
    Oops(Oops),
    /// Linux-faithful mode: the call loaded the group pointer before a concurrent release and
    /// then used the domain that release freed (KASAN would report a use-after-free here).
    #[error("use-after-free: {function} used a {object} freed by a concurrent release")]
    UseAfterFree {
        /// The freed object (`struct iommu_domain`).
        object: &'static str,
        /// The function that used it (`iommu_dma_map_page`, `iommu_dma_unmap_page`).
        function: &'static str,
    },
}

/// A snapshot of the IOMMU core cannot be taken or put back ([`crate::IommuCore::snapshot`],
/// [`crate::IommuCore::restore`]). Either way nothing changed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CoreSnapshotError {
    /// The snapshot was taken of another core.
    #[error("snapshot of IOMMU core #{snapshot} cannot be restored into IOMMU core #{core}")]
    ForeignCore {
        /// The core the snapshot was taken of.
        snapshot: u64,
        /// The core it was offered to.
        core: u64,
    },
    /// A kernel mutex of the core is held: a snapshot is of a quiescent core, and restoring
    /// one would leave the mutex held by a task that no longer exists.
    #[error("kernel mutex `{lock}` is held: the IOMMU core is not quiescent")]
    Locked {
        /// The mutex's kernel name.
        lock: String,
    },
}
