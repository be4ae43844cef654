//! The IOMMU core of smmu-lab: IOMMU instances, devices and groups, domains, the DMA API a
//! device driver calls, and the IOVA allocator behind it (Linux v6.1 `iommu.c`,
//! `dma-iommu.c` and `iova.c` behaviour).
//!
//! * [`IommuCore`] is shared by every simulated CPU (`Arc<IommuCore>`); it talks to IOMMU
//!   drivers through the [`IommuDriver`] trait ([`ops`]).
//! * Every misuse of the DMA API is a typed [`DmaError`]. In Linux-faithful mode
//!   ([`CoreConfig::linux_faithful`]) the seed bug's NULL group dereference is returned as
//!   [`DmaError::Oops`] with the exact values Linux prints ([`Oops`]).
//! * [`iova::IovaDomain`] is the allocator (top-down, size-aligned, with Linux's rcache).
//! * [`fake::FakeDriver`] is an in-memory driver for tests and benchmarks.

mod core;
mod dma;
pub mod domain;
mod error;
pub mod fake;
pub mod iova;
mod oops;
pub mod ops;

pub use crate::core::{Bus, CoreConfig, CoreStats, DeviceDesc, InstanceId, IommuCore};
pub use dma::DmaDirection;
pub use domain::{Domain, DomainId};
pub use error::{CoreError, DmaError};
pub use oops::{Oops, OopsPath, OOPS_PC};
pub use ops::*;
