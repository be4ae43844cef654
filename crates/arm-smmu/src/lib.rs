//! The Linux `arm-smmu` driver (SMMUv2, MMU-400/401/500) for smmu-lab.
//!
//! It reaches the hardware only through [`smmu_arch::Mmio`] (wrapped in a (page, offset)
//! accessor, [`io::SmmuIo`]) and is told about interrupts through
//! [`ArmSmmu::handle_global_fault`] / [`ArmSmmu::handle_context_fault`], so the same code could
//! drive silicon; the project runs it on the `mmu500` model. Everything it does that Linux does
//! (register values and their order, log lines, allocation rules) follows
//! `shared/reference/arm-smmu-v2.md`; where that file and Linux's source disagree the source wins
//! and the module says so.
//!
//! Entry points: [`ArmSmmu::probe`] (+ [`ArmSmmu::device_reset`], [`ArmSmmu::test_smr_masks`]),
//! the [`iommu::IommuDriver`] implementation for the core, [`ArmSmmu::shutdown`] /
//! [`ArmSmmu::remove`] under a [`ShutdownPolicy`], and [`ModuleParams::from_cmdline`].
//!
//! [`ArmSmmu::snapshot`] / [`ArmSmmu::restore`] save the driver's state and put it back in
//! place, for the schedule explorer's booted-machine snapshot. They cover every piece of state
//! that changes after probe (streams, banks, domains with their page tables' own state through
//! [`IoPgtableOps::snapshot`], counters, flags, rate limiters, `stream_map_mutex`), not the
//! registers (the hardware model's), the descriptors (physmem's) or the context-release hook
//! (wiring). A restore drops the domains a run made since, whose page tables give their pages
//! back: restore the driver before memory and frame allocator (`driver::snapshot` has the
//! rule).
//!
//! # Example
//!
//! Probe and reset the driver on the LS1028A's MMU-500 model, with the kernel command line's
//! `arm-smmu.*` parameters:
//!
//! ```
//! use arm_smmu::{
//!     ArmSmmu, FirmwareDesc, LinuxVersion, LpaeTables, ModuleParams, RateLimits, ShutdownPolicy,
//!     SmmuEnv,
//! };
//! use klog::MemLog;
//! use physmem::{FrameAllocator, PhysMem, Region};
//! use smmu_arch::{regs::{gr0, scr0}, Mmio};
//! use std::sync::Arc;
//!
//! let mem = Arc::new(PhysMem::new(&[Region::new(physmem::PhysAddr::new(0x8000_0000), 16 << 20)])?);
//! let frames = Arc::new(FrameAllocator::new(mem.clone(), physmem::PhysAddr::new(0x8080_0000), 8 << 20)?);
//! let model = mmu500::Mmu500::new(mmu500::Mmu500Config::mmu500_ls1028a(), mem)?;
//! let log = Arc::new(MemLog::new());
//! let params = ModuleParams::from_cmdline("arm-smmu.disable_bypass=1")?;
//! let smmu = ArmSmmu::probe_and_reset(
//!     &FirmwareDesc::ls1028a(),
//!     params,
//!     LinuxVersion::V6_2.behaviour(),
//!     SmmuEnv {
//!         mmio: model.clone(),
//!         log: log.clone(),
//!         frames,
//!         tables: Arc::new(LpaeTables::SAFE),
//!         limits: Arc::new(RateLimits::default()),
//!     },
//! )?;
//! let lines = log.lines();
//! assert_eq!(lines[0], "arm-smmu 5000000.iommu: probing hardware configuration...");
//! assert!(lines.contains(&"arm-smmu 5000000.iommu: \tstream matching with 128 register groups".to_string()));
//! // Reset left the SMMU enabled, faulting streams that match no SMR.
//! let s = model.read32(gr0::SCR0);
//! assert_eq!((s & scr0::CLIENTPD, s & scr0::USFCFG), (0, scr0::USFCFG));
//! assert_eq!(smmu.policy(), ShutdownPolicy::Linux62);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![deny(missing_docs)]

pub mod config;
pub mod context;
pub mod driver;
mod fault;
pub mod fw;
pub mod hw;
pub mod io;
pub mod kernel;
pub mod params;
pub mod shutdown;
pub mod streams;
pub mod table;
pub mod testing;

pub use config::{Features, ProbeError, SmmuConfig};
pub use driver::{
    ArmSmmu, ArmSmmuSnapshot, ArmSmmuSnapshotError, ContextReleaseHook, FaultHandler, SmmuEnv,
};
pub use fw::{FirmwareDesc, Model, Version};
pub use hw::{RateLimits, RateLimitsSnapshot};
pub use kernel::{ContextFaultReport, DriverBehaviour, LinuxVersion};
pub use params::{ModuleParams, ParamError};
pub use shutdown::ShutdownPolicy;
pub use table::{
    IoPgtableFactory, IoPgtableOps, LpaeTables, SharedTlb, TableRequest, TableSnapshot,
    TableSnapshotError,
};
