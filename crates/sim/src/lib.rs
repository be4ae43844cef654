//! The simulated machine of smmu-lab: boards read from real device trees (or the built-in
//! Kontron KBox A-230-LS), the kernel device model with Linux's shutdown ordering, and a
//! dmesg-format kernel log with the Oops/panic report.

pub mod board;
pub mod drivers;
pub mod error;
pub mod fdt;
pub mod report;

pub use board::{Board, Bus, FwId, Master, MemRegion, SmmuDesc, SmmuModel, SmmuVersion};
pub use error::BoardError;
pub use report::board_report;
