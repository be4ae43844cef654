//! The Linux `arm-smmu-v3` driver for smmu-lab, as in v6.1 and v6.12.
//!
//! It reaches the SMMU only through [`smmuv3_arch::Mmio`], memory it allocates from its frame
//! allocator (queues, stream table, context descriptors, page tables through `pgtable`), and
//! interrupts delivered to [`ArmSmmuV3::handle_irq`]. What it does that Linux does — register
//! writes and their order, commands and their order, queue and table sizes, log lines — follows
//! `drivers/iommu/arm/arm-smmu-v3/arm-smmu-v3.c` of the selected [`KernelVersion`]; the tests
//! pin them write by write and command by command.
//!
//! Entry points: [`ArmSmmuV3::probe`] (hardware probe, queues, stream table, device reset, IRQ
//! setup), the [`iommu::IommuDriver`] implementation for the core, [`ArmSmmuV3::handle_irq`],
//! and [`ArmSmmuV3::shutdown`] / [`ArmSmmuV3::remove`] under a [`ShutdownPolicy`].
//!
//! A booted machine is restored in place: [`ArmSmmuV3::snapshot`] / [`ArmSmmuV3::restore`]
//! cover the driver's mutable state (stream-table bookkeeping, masters, domains with their
//! state and page tables, the next domain id, ASID and VMID maps, `quiesced`, the command and
//! event queue shadows, the rate limiters; the driver has no kernel mutex) and refuse another
//! instance's snapshot with [`ArmSmmuV3SnapshotError::OtherInstance`], changing nothing.
//! `domain_free` frees a table's pages itself, as Linux's `free_io_pgtable_ops`, since a
//! snapshot may hold the table. Restore the driver before memory, frame allocator and model;
//! a [`trace::TracingMmio`] on the bus keeps a copy of CMDQ_PROD and is restored with them
//! ([`trace::TracingMmio::restore`]).
//!
//! # Example
//!
//! Probe on the QEMU-virt SMMUv3 model:
//!
//! ```
//! use arm_smmu_v3::{ArmSmmuV3, FirmwareDesc, KernelVersion, ModuleParams, RateLimits, ShutdownPolicy, SmmuEnv};
//! use klog::MemLog;
//! use physmem::{FrameAllocator, PhysMem, Region};
//! use std::sync::Arc;
//!
//! let mem = Arc::new(PhysMem::new(&[Region::new(physmem::PhysAddr::new(0x4000_0000), 64 << 20)])?);
//! let frames = Arc::new(FrameAllocator::new(mem.clone(), physmem::PhysAddr::new(0x4000_0000), 64 << 20)?);
//! let model = smmuv3::SmmuV3::new(smmuv3::SmmuV3Config::qemu_virt(), mem)?;
//! let log = Arc::new(MemLog::new());
//! let env = SmmuEnv { mmio: model.clone(), log: log.clone(), frames, limits: Arc::new(RateLimits::default()) };
//! let smmu = ArmSmmuV3::probe(&FirmwareDesc::qemu_virt(), ModuleParams::default(), KernelVersion::V6_1, ShutdownPolicy::Linux62, env)?;
//! assert_eq!(log.lines(), [
//!     "arm-smmu-v3 9050000.smmuv3: ias 44-bit, oas 44-bit (features 0x00008305)",
//!     "arm-smmu-v3 9050000.smmuv3: allocated 262144 entries for cmdq",
//!     "arm-smmu-v3 9050000.smmuv3: allocated 131072 entries for evtq",
//! ]);
//! assert_eq!(smmu.info().sid_bits, 16);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod driver;
pub mod fw;
mod hw;
mod io;
mod irq;
pub mod probe;
mod shutdown;
pub mod ste;
pub mod trace;

pub use driver::{ArmSmmuV3, ArmSmmuV3Snapshot, ArmSmmuV3SnapshotError, SmmuEnv};
pub use fw::{
    BootContext, EnabledAtProbe, FirmwareDesc, KernelVersion, ModuleParams, ParamError,
    ShutdownPolicy,
};
pub use hw::{QueueShadow, RateLimits};
pub use probe::{HwInfo, ProbeError};
