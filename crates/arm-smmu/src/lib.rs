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

#![deny(missing_docs)]

pub mod config;
pub mod context;
pub mod driver;
mod fault;
pub mod fw;
pub mod hw;
pub mod io;
pub mod params;
pub mod shutdown;
pub mod streams;
pub mod table;
pub mod testing;

pub use config::{Features, ProbeError, SmmuConfig};
pub use driver::{ArmSmmu, FaultHandler, SmmuEnv};
pub use fw::{FirmwareDesc, Model, Version};
pub use hw::RateLimits;
pub use params::{ModuleParams, ParamError};
pub use shutdown::ShutdownPolicy;
pub use table::{LpaeTables, PageTable, PageTableFactory, SharedTlb, TableRequest};
