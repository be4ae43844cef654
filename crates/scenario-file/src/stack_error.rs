//! Why the real stack ([`crate::stack`]) cannot run a file, or could not boot: each problem a
//! variant with its values, the lower crate's error kept as the source.

use thiserror::Error;

/// Why the real stack refuses a file or fails to boot it.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum StackError {
    /// The board has no enabled SMMUv2 (the real stack drives arm-smmu only).
    #[error("the board has no enabled SMMUv2 for the real stack")]
    NoSmmuV2,
    /// The kernel has no code path the driver could take.
    #[error(transparent)]
    Kernel(#[from] kernel_history::NoCodePath),
    /// A script step the real stack does not implement.
    #[error("the real stack has no '{op}'")]
    UnsupportedOp {
        /// The step's name.
        op: &'static str,
    },
    /// A script step on the SMMU itself other than its probe.
    #[error("the real stack has no '{op}' of the SMMU {smmu}")]
    UnsupportedSmmuOp {
        /// The step's name.
        op: &'static str,
        /// The SMMU's node name.
        smmu: String,
    },
    /// A step that needs a device names none, and its actor has none.
    #[error("'{op}' names no device")]
    NoDevice {
        /// The step's name.
        op: &'static str,
    },
    /// A script names a device that is not an attached master of the SMMU.
    #[error("'{device}' is not a master of {smmu}")]
    NotAMaster {
        /// The device the script names.
        device: String,
        /// The SMMU's node name.
        smmu: String,
    },
    /// A master without any stream ID.
    #[error("'{device}' has no stream ID")]
    NoStreamId {
        /// The master.
        device: String,
    },
    /// A script probes the SMMU while boot would probe masters onto it.
    #[error(
        "a file that probes the SMMU in a script must probe every master it uses in a script too (boot has no SMMU to probe them onto)"
    )]
    ProbeWithMasters,
    /// The simulated RAM could not be laid out.
    #[error(transparent)]
    Memory(#[from] physmem::PhysError),
    /// A frame pool (page tables, coherent DMA) could not be carved from RAM.
    #[error(transparent)]
    Pool(#[from] physmem::AllocError),
    /// The MMU-500 model refused its configuration.
    #[error(transparent)]
    Model(#[from] mmu500::Mmu500ConfigError),
    /// arm-smmu's probe failed.
    #[error(transparent)]
    Probe(#[from] arm_smmu::ProbeError),
    /// The IOMMU core refused a master at boot.
    #[error("{device}: probe: {source}")]
    DeviceProbe {
        /// The master.
        device: String,
        /// What the core said.
        #[source]
        source: iommu::CoreError,
    },
}
