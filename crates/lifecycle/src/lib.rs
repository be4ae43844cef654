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
//! A client probes while its SMMU runs its own probe; before `229e6ee43d2a` a client that
//! finds the SMMU registered but not yet bound dereferences its NULL driver data.
//!
//! ```
//! use explore::{explore, ExploreOptions, Strategy};
//! use lifecycle::{Actor, Config, Device, Op, Property, Step, Switches};
//! use std::sync::Arc;
//!
//! let mut cfg = Config::new(
//!     vec![Device::platform("3200000.sata", &[0x4])],
//!     vec![
//!         Actor::new("smmu-probe", vec![Step::new(Op::Probe, "5000000.iommu")]),
//!         Actor::new("sata-probe", vec![Step::new(Op::Probe, "3200000.sata")]),
//!     ],
//! );
//! cfg.properties = vec![Property::NoOops];
//! cfg.switches = Switches::all_fixed();
//! cfg.switches.defer_client_until_smmu_bound = false;
//! let opts = ExploreOptions { strategy: Strategy::Dfs { preemption_bound: 1 }, runs: 1000, ..Default::default() };
//! let report = explore(Arc::new(cfg.clone()), opts, &|_, _| {});
//! assert_eq!(report.first_failure.unwrap().violations, ["no-oops"]);
//!
//! cfg.switches.defer_client_until_smmu_bound = true;
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
