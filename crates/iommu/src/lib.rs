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
//!    `dma_alloc_coherent` / `dma_free_coherent`, which take physical addresses
//!    ([`smmu_addr::PhysAddr`]) and hand back DMA addresses ([`smmu_addr::DmaAddr`]: an IOVA
//!    behind a translating domain, the physical address under dma-direct); `run_timers()`
//!    fires expired flush queues;
//! 4. shutdown: `unregister(inst)` releases every device (platform bus, then PCI, each in
//!    `bus_pos` order) when `unregister_releases_devices` is set, printing
//!    `<dev>: Removing from iommu group N` for each.
//!
//! Concurrency: every DMA API call may run on any simulated CPU concurrently with
//! `release_device`/`unregister`. Scheduling points (`Point::Kernel`) sit before and after the
//! group-pointer load of a DMA call (Linux-faithful mode) and after the driver release and the
//! group-pointer clear of a release, which is where v6.1 can interleave.
//!
//! # Example
//!
//! The seed bug in miniature: a device maps DMA, the IOMMU instance unregisters (as v6.1's
//! arm-smmu shutdown did) and releases the device from its group, and the device driver's next
//! `dma_map_page` is the NULL group dereference, returned as a value.
//!
//! ```
//! use iommu::{fake::FakeDriver, Bus, CoreConfig, DeviceDesc, DmaDirection, DmaError, IommuCore};
//! use klog::MemLog;
//! use physmem::{FrameAllocator, PhysMem, Region};
//! use smmu_addr::{DmaAddr, PhysAddr};
//! use std::sync::Arc;
//!
//! let mem = Arc::new(PhysMem::new(&[Region::new(physmem::PhysAddr::new(0x8000_0000), 16 << 20)])?);
//! let coherent = Arc::new(FrameAllocator::new(mem.clone(), physmem::PhysAddr::new(0x8080_0000), 8 << 20)?);
//! let log = Arc::new(MemLog::new());
//! let cfg = CoreConfig { linux_faithful: true, ..CoreConfig::default() };
//! let core = IommuCore::new(cfg, mem, coherent, log.clone());
//! let inst = core.register(Arc::new(FakeDriver::new("fake-iommu")));
//! let enetc = core.probe_device(DeviceDesc::new("fsl_enetc 0000:00:00.0", Bus::Pci, 0, &[0x29]), inst)?;
//!
//! let buf = PhysAddr::new(0x8000_1000);
//! let iova = core.dma_map_page(enetc, buf, 1500, DmaDirection::ToDevice)?;
//! assert_ne!(iova, DmaAddr::from_phys(buf), "translated: an IOVA, not the physical address");
//! core.dma_unmap_page(enetc, iova, 1500, DmaDirection::ToDevice)?;
//!
//! core.unregister(inst)?;
//! assert!(log.lines().iter().any(|l| l.ends_with("fsl_enetc 0000:00:00.0: Removing from iommu group 0")));
//! match core.dma_map_page(enetc, buf, 1500, DmaDirection::ToDevice) {
//!     Err(DmaError::Oops(oops)) => assert_eq!(oops.fault_addr, 0x98),
//!     other => panic!("expected the seed's oops, got {other:?}"),
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

// The crate under its own name for unit tests that share a module with the integration
// tests (`iova/tests.rs` includes `tests/iova_raw`, which names `iommu::`).
#[cfg(test)]
extern crate self as iommu;

mod core;
mod dma;
pub mod domain;
mod error;
pub mod fake;
pub mod iova;
mod oops;
pub mod ops;
mod probe;
mod unmanaged;

pub use crate::core::{
    Bus, CoreConfig, CoreSnapshot, CoreStats, DeviceDesc, InstanceId, IommuCore, ReleaseSteps,
};
pub use dma::{DirectKind, DmaDirection, MsiCookie};
pub use domain::{Domain, DomainId, MsiPage};
pub use error::{CoreError, CoreSnapshotError, DmaError};
pub use oops::{ldr_x0_x0, Oops, OopsPath, OOPS_PC, SEED_DEFAULT_DOMAIN_OFFSET};
pub use ops::*;
