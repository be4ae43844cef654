//! The simulated machine of smmu-lab: boards read from real device trees (or the built-in
//! Kontron KBox A-230-LS), the kernel device model with Linux's shutdown ordering, and a
//! dmesg-format kernel log with the Oops/panic report; the ENETC-like NIC and the seed's reboot
//! scenario that wires every layer of smmu-lab into one machine.
//!
//! # Example
//!
//! The seed's `reboot -f` under ping flood on the built-in board, once under Linux 6.1 and once
//! under smmu-lab's quiesce policy, with the same seeded interleaving:
//!
//! ```
//! use explore::{run_one, RunResult, Strategy};
//! use sim::scenario::{KernelBehaviour, Property, RebootConfig, RebootScenario};
//! use std::sync::Arc;
//!
//! let board = sim::kbox_a230_ls();
//! assert_eq!(board.hardware_name(), "Kontron KBox A-230-LS (DT)");
//! let verdict = |kernel| {
//!     let mut config = RebootConfig::new(kernel, board.clone());
//!     if kernel == KernelBehaviour::Linux61 {
//!         // The build of the seed's second report (default_domain at 0xa8).
//!         config.build = sim::builds::SEED_A8;
//!     }
//!     let scenario = RebootScenario {
//!         config,
//!         properties: Property::DEFAULT.to_vec(),
//!         boot_cache: Default::default(),
//!     };
//!     let rec = run_one(Arc::new(scenario), Strategy::Random, 20, 2_000_000);
//!     match rec.outcome {
//!         RunResult::Completed(Ok(outcome)) => (outcome.verdict, rec.violations),
//!         _ => panic!("the run did not complete"),
//!     }
//! };
//! let (v61, violated) = verdict(KernelBehaviour::Linux61);
//! assert!(violated.contains(&"no-oops".to_string()));
//! let oops = v61.oops.expect("the seed's NULL dereference");
//! // This interleaving hits the seed's second manifestation: the unmap path in ksoftirqd/0.
//! assert_eq!(
//!     (oops.fault_addr, oops.dma_call.as_str(), oops.comm.as_str()),
//!     (0xa8, "dma_unmap_page_attrs", "ksoftirqd/0")
//! );
//! let (vq, violated) = verdict(KernelBehaviour::Quiesce);
//! assert!(violated.is_empty() && vq.completed && vq.stray_dma_writes == 0);
//! ```

#![warn(missing_docs)]

pub mod board;
pub mod builds;
pub mod dma_engine;
pub mod dmesg;
pub mod drivers;
pub mod enetc;
pub mod error;
pub mod exec;
pub mod fdt;
pub mod firmware;
pub mod kbox;
pub mod kernel;
pub mod mmio_log;
mod ownership;
pub mod pci_enum;
pub mod report;
pub mod scenario;
mod smmu_platform;
pub mod snapshot;
pub mod v3;

pub use board::{
    Board, Bus, FwId, IommuMapEntry, Master, MemRegion, MsiController, PciHost, SmmuDesc,
    SmmuModel, SmmuVersion, GITS_TRANSLATER,
};
pub use dmesg::{Dmesg, OopsReport, TaskInfo};
pub use error::{BoardError, FdtParserError};
pub use kbox::kbox_a230_ls;
pub use kernel::{DeviceIndex, Driver, GenericDriver, Kernel, KernelError};
pub use ownership::{DmaEvidence, RetiredContexts};
pub use report::board_report;
pub use snapshot::SnapshotError;
