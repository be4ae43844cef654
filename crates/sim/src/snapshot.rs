//! Why a booted-machine snapshot could not be taken or put back (the explorer's boot cache).
//!
//! Every component of the simulated machine saves its mutable state with a `snapshot()` and puts
//! it back into the same object with a `restore(&snapshot)`: the objects, the `Arc`s between
//! them and the closures that wire them persist (ARCHITECTURE.md, "Snapshots are restored in
//! place"). A restore that does not fit refuses before changing anything where it can tell,
//! and a machine whose restore failed is never run again: the error reaches the explorer as a
//! scenario error, never as a silently wrong run.

use smmu_sync::Arc;
use std::fmt;
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
    /// The arm-smmu-v3 instance refused.
    #[error("arm-smmu-v3: {0}")]
    DriverV3(#[from] arm_smmu_v3::ArmSmmuV3SnapshotError),
    /// The SMMUv3 model refused.
    #[error("SMMUv3 model: {0}")]
    ModelV3(#[from] smmuv3::SmmuV3SnapshotError),
    /// The snapshot was taken of another machine: its parts name that machine's objects, so
    /// nothing of it is put back.
    #[error("snapshot of another machine: a machine is restored only from its own snapshots")]
    OtherMachine,
    /// The restore entered the explorer's scheduler, so the run after it would not start where
    /// a freshly booted one does.
    #[error(
        "the restore entered the explorer's scheduler {0} time(s): the run after it would draw \
         its decisions from another point"
    )]
    RestoreScheduled(u64),
}

impl SnapshotError {
    /// [`SnapshotError::Shape`] when the snapshot's count of `what` differs from the live one.
    pub(crate) fn misfit(
        component: &'static str,
        what: &'static str,
        snapshot: usize,
        live: usize,
    ) -> Option<SnapshotError> {
        (snapshot != live).then_some(SnapshotError::Shape {
            component,
            what,
            snapshot,
            live,
        })
    }
}

/// The shared objects of a list, compared by identity (which driver instances a machine runs).
pub(crate) struct SameArcs<T: ?Sized>(pub(crate) Vec<Arc<T>>);

impl<T: ?Sized> Clone for SameArcs<T> {
    fn clone(&self) -> Self {
        SameArcs(self.0.clone())
    }
}

impl<T: ?Sized> PartialEq for SameArcs<T> {
    fn eq(&self, o: &Self) -> bool {
        self.0.len() == o.0.len() && self.0.iter().zip(&o.0).all(|(a, b)| Arc::ptr_eq(a, b))
    }
}

impl<T: ?Sized> fmt::Debug for SameArcs<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} shared object(s)", self.0.len())
    }
}
