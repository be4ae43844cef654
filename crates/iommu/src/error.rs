//! Typed errors of the core and of the DMA API.

use crate::oops::Oops;
use crate::ops::DriverError;
use thiserror::Error;

/// Errors of instance and device management.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CoreError {
    #[error("no IOMMU instance {0}")]
    NoInstance(u32),
    #[error("no device {0}")]
    NoDevice(u32),
    #[error("device {0} has no group")]
    NoGroup(u32),
    #[error("domain belongs to another IOMMU instance")]
    WrongInstance,
    #[error("domain kind {0:?} cannot be used here")]
    WrongKind(crate::ops::DomainKind),
    #[error("domain geometry unusable: {0}")]
    Geometry(&'static str),
    #[error("invalid argument: {0}")]
    Invalid(&'static str),
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
    NotMapped { addr: u64 },
    /// The mapping exists with another size.
    #[error("mapping at {addr:#x} has size {mapped:#x}, unmap asked for {requested:#x}")]
    WrongSize {
        addr: u64,
        mapped: u64,
        requested: u64,
    },
    /// The mapping exists with another direction.
    #[error("mapping at {addr:#x} was made with another DMA direction")]
    WrongDirection { addr: u64 },
    /// The mapping at this address was made by another call (page vs sg vs coherent).
    #[error("mapping at {addr:#x} was made by another kind of DMA call")]
    WrongKind { addr: u64 },
    /// Zero size, overflow, `DmaDirection::None`, an empty scatterlist...
    #[error("invalid argument: {0}")]
    Invalid(&'static str),
    /// No IOVA space below the device's DMA limit.
    #[error("no IOVA space for {size:#x} bytes")]
    NoIovaSpace { size: u64 },
    /// Direct (identity) DMA of memory the device cannot address.
    #[error("physical address {paddr:#x} is beyond the device's DMA mask")]
    BeyondMask { paddr: u64 },
    /// The domain's driver refused.
    #[error("driver: {0}")]
    Driver(#[from] DriverError),
    /// Coherent memory could not be allocated.
    #[error("coherent allocation: {0}")]
    Alloc(#[from] physmem::AllocError),
    /// Linux-faithful mode: the simulated kernel dereferenced a NULL group here.
    #[error("kernel oops: NULL pointer dereference at {:#x}", .0.fault_addr)]
    Oops(Oops),
}
