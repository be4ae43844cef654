//! The simulated machine of smmu-lab: boards read from real device trees (or the built-in
//! Kontron KBox A-230-LS), the kernel device model with Linux's shutdown ordering, and a
//! dmesg-format kernel log with the Oops/panic report; the ENETC-like NIC and the seed's reboot
//! scenario that wires every layer of smmu-lab into one machine.

#![warn(missing_docs)]

pub mod board;
pub mod dmesg;
pub mod drivers;
pub mod enetc;
pub mod error;
pub mod fdt;
pub mod kbox;
pub mod kernel;
pub mod report;
pub mod scenario;

pub use board::{Board, Bus, FwId, Master, MemRegion, SmmuDesc, SmmuModel, SmmuVersion};
pub use dmesg::{Dmesg, Oops, TaskInfo};
pub use error::BoardError;
pub use kbox::kbox_a230_ls;
pub use kernel::{DeviceId, Driver, GenericDriver, Kernel, KernelError};
pub use report::board_report;
