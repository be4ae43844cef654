//! Why a booted-machine snapshot could not be taken or put back (the explorer's boot cache).
//!
//! Every component of the simulated machine saves its mutable state with a `snapshot()` and puts
//! it back into the same object with a `restore(&snapshot)`: the objects, the `Arc`s between
//! them and the closures that wire them persist (ARCHITECTURE.md, "Snapshots are restored in
//! place"). A restore that does not fit refuses before changing anything where it can tell,
//! and a machine whose restore failed is never run again: the error reaches the explorer as a
//! scenario error, never as a silently wrong run.

use thiserror::Error;

/// A snapshot of the simulated machine could not be taken or restored.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SnapshotError {
    /// The snapshot is of a component with another shape (ring count, CPUs, devices).
    #[error("{component}: snapshot with {snapshot} {what} restored into one with {live}")]
    Shape {
        /// The component (`exec`, `kernel`, `fsl_enetc`).
        component: &'static str,
        /// What differs in number.
        what: &'static str,
        /// How many the snapshot has.
        snapshot: usize,
        /// How many the live component has.
        live: usize,
    },
    /// Simulated memory or a frame allocator refused.
    #[error("simulated memory: {0}")]
    Memory(#[from] physmem::SnapshotError),
    /// An MMU-500 model refused.
    #[error("MMU-500 model: {0}")]
    Model(#[from] mmu500::ModelSnapshotError),
    /// The boot entered the explorer's scheduler, so its decisions would be skipped with it
    /// (ARCHITECTURE.md, "The boot prefix is schedule-independent").
    #[error(
        "the boot entered the explorer's scheduler {0} time(s): skipping it would move every \
         later scheduling decision"
    )]
    BootScheduled(u64),
    /// The IOMMU core refused.
    #[error("IOMMU core: {0}")]
    Core(#[from] iommu::CoreSnapshotError),
    /// An arm-smmu instance refused.
    #[error("arm-smmu: {0}")]
    Driver(#[from] arm_smmu::ArmSmmuSnapshotError),
}
