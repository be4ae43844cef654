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
//!
//! Typical use by the simulated kernel:
//!
//! 1. `IommuCore::new(cfg, mem, coherent_frames, log)`, `register(driver) -> InstanceId`;
//! 2. `probe_device(DeviceDesc { log_name, bus, bus_pos, fwspec, dma_mask, .. }, inst)` for each
//!    master, in the order the kernel probes them (that order numbers the groups);
//! 3. device drivers call `dma_map_page` / `dma_unmap_page`, `dma_map_sg` / `dma_unmap_sg`,
//!    `dma_alloc_coherent` / `dma_free_coherent`; `run_timers()` fires expired flush queues;
//! 4. shutdown: `unregister(inst)` releases every device (platform bus, then PCI, each in
//!    `bus_pos` order) when `unregister_releases_devices` is set, printing
//!    `<dev>: Removing from iommu group N` for each.
//!
//! Concurrency: every DMA API call may run on any simulated CPU concurrently with
//! `release_device`/`unregister`. Scheduling points (`Point::Kernel`) sit before and after the
//! group-pointer load of a DMA call (Linux-faithful mode) and after the driver release and the
//! group-pointer clear of a release, which is where v6.1 can interleave.

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
