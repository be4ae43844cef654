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
//! Lazy unmapping leaves an IOVA in the flush queue with its timer armed; the device is
//! removed and the last member out of the group frees the queue while the timer's handler
//! runs. Before `d7061627d701` the teardown does not wait for a running handler.
//!
//! ```
//! use explore::{explore, ExploreOptions, Strategy};
//! use lifecycle::{Actor, Config, Device, Op, Property, Step, Switches};
//! use std::sync::Arc;
//!
//! let dev = "0000:00:00.2";
//! let buffer = "tx".to_string();
//! let mut cfg = Config::new(
//!     vec![Device::platform(dev, &[0x42b])],
//!     vec![
//!         Actor::new("unplug", vec![
//!             Step::new(Op::DmaMapPage { size: 4096, buffer: buffer.clone() }, dev),
//!             Step::new(Op::DmaUnmap { buffer }, dev),
//!             Step::new(Op::Remove, dev),
//!         ]),
//!         Actor::new("fq_flush_timeout", vec![Step::new(Op::FqTimerExpiry, dev)]),
//!     ],
//! );
//! cfg.lazy = true;
//! cfg.properties = vec![Property::NoUseAfterFree];
//! cfg.switches = Switches::all_fixed();
//! cfg.switches.fq_teardown_waits_for_timer = false;
//! let opts = ExploreOptions { strategy: Strategy::Dfs { preemption_bound: 2 }, runs: 1000, ..Default::default() };
//! let report = explore(Arc::new(cfg.clone()), opts, &|_, _| {});
//! assert_eq!(report.first_failure.unwrap().violations, ["no-use-after-free"]);
//!
//! cfg.switches.fq_teardown_waits_for_timer = true;
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
