//! The IOMMU core's device lifecycle as a step model: client probe (`of_iommu_configure`,
//! `arm_smmu_probe_device`, `arm_smmu_device_group`, default-domain allocation and attach,
//! direct mappings of reserved regions), the SMMU's own probe (register, then bind, then the
//! global TLB invalidation of its reset), release on hot-unplug, DMA-ownership claims,
//! `dma_map_page`/`dma_map_sg` with their IOVAs, strict and lazy unmap with the flush-queue
//! timer, and device DMA through the mappings.
//!
//! Each kernel operation is a sequence of steps on shared state, with a scheduling point
//! (`smmu_sync::sched_point`) between steps, so the schedule explorer can interleave the
//! actors exactly where a real CPU could be preempted. Kernel locks (`stream_map_mutex`,
//! `group->mutex`, `iommu_probe_device_lock`) are part of the modelled state: an actor that
//! waits for one yields, and a wait that can never end (the holder returned without releasing
//! it, or a cycle) is a deadlock *verdict* that names the threads and the locks.
//!
//! Every Linux fix the corpus reproduces switches exactly one code path here ([`Switches`]),
//! written from the commit's description; `kernel-history` maps commit ids onto the switches.
//!
//! # Example
//!
//! A probe fails (the master's stream IDs are in two groups already) and frees `dev->iommu`
//! while the deferred-probe work reads the fwspec through it; from `b54240ad4943` one lock
//! serialises the two.
//!
//! ```
//! use explore::{explore, ExploreOptions, Strategy};
//! use lifecycle::{Actor, Config, Device, Op, Property, Step, Switches};
//! use std::sync::Arc;
//!
//! let usb = "3100000.usb";
//! let mut cfg = Config::new(
//!     vec![
//!         Device::platform("f0c0000.gpu", &[0x47]),
//!         Device::platform("3200000.sata", &[0x4]),
//!         Device::platform(usb, &[0x47, 0x4]),
//!     ],
//!     vec![
//!         Actor::new("probe", vec![Step::new(Op::Probe, usb)]),
//!         Actor::new("deferred_probe_work_func", vec![Step::new(Op::DeferredProbe, usb)]),
//!     ],
//! );
//! cfg.boot_probed = vec!["f0c0000.gpu".into(), "3200000.sata".into()];
//! cfg.properties = vec![Property::NoUseAfterFree];
//! cfg.switches = Switches::all_fixed();
//! cfg.switches.probe_serialised_with_iommu_configure = false;
//! let opts = ExploreOptions { strategy: Strategy::Dfs { preemption_bound: 2 }, runs: 1000, ..Default::default() };
//! let report = explore(Arc::new(cfg.clone()), opts, &|_, _| {});
//! assert_eq!(report.first_failure.unwrap().violations, ["no-use-after-free"]);
//!
//! cfg.switches.probe_serialised_with_iommu_configure = true;
//! let report = explore(Arc::new(cfg), ExploreOptions { stop_at_first: false, ..opts }, &|_, _| {});
//! assert!(report.exhausted && report.failing_runs == 0);
//! ```

#![warn(missing_docs)]

mod dma;
mod kernel;
mod model;
mod probe;

pub use model::{
    Actor, Config, Device, DirectRegion, Finding, Op, Outcome, Property, Step, Switches,
};
