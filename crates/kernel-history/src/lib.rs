//! Kernels as history. A kernel is a Linux release ([`Preset`]) plus named fixes added or
//! removed ([`KernelSpec`], written `v6.1+ce31e6ca68bd`); a fix ([`Fix`]) is one Linux commit
//! (12-hex id and exact subject) or one change of smmu-lab's own. [`Switches`] maps a kernel
//! onto the behaviour switches each layer exposes, one fix to one code path; the layers
//! themselves never see commit ids.
//!
//! The research record of the Linux IOMMU bugs the corpus is to reproduce (ids, subjects,
//! versions, mechanisms, what was verified) is `docs/linux-iommu-bugs.md`; a commit enters
//! [`Fix`] only once a layer has a switch for it.
//!
//! # Example
//!
//! ```
//! use kernel_history::{Fix, KernelSpec, KernelSpecError, Preset, Switches};
//! use arm_smmu::ShutdownPolicy;
//!
//! let k = KernelSpec::parse("v6.1+ce31e6ca68bd")?;
//! assert!(k.contains(Fix::MoveBusSetupToRegistration) && k.contains(Fix::DontUnregisterOnShutdown));
//! assert!(k.contains(Fix::GroupCreationRace), "v5.15's fixes are in v6.1");
//! assert!(!k.contains(Fix::DeferClientsUntilSmmuBound), "v6.13's is not");
//! assert_eq!(Switches::of(&k).shutdown_policy(), Ok(ShutdownPolicy::Linux62));
//! // v6.2 also has a6a9a5da6808, dcdb3ba7e2a8 and the series' arm-smmu-v3 half, 32ea2c57dc21.
//! let v62 = KernelSpec::parse("v6.2-32ea2c57dc21-a6a9a5da6808-dcdb3ba7e2a8")?;
//! assert_eq!(k.fixes(), v62.fixes(), "the same kernel as v6.2 without those three");
//! assert_eq!(k.to_string(), "v6.1+ce31e6ca68bd");
//!
//! let v62 = KernelSpec::parse("v6.2-ce31e6ca68bd")?;
//! assert_eq!(Switches::of(&v62).shutdown_policy(), Ok(ShutdownPolicy::Linux61));
//! assert_eq!(
//!     KernelSpec::parse("v6.0-ce31e6ca68bd"),
//!     Err(KernelSpecError::NotInPreset { preset: Preset::V6_0, fix: Fix::DontUnregisterOnShutdown })
//! );
//! # Ok::<(), KernelSpecError>(())
//! ```

#![warn(missing_docs)]

pub mod fix;
pub mod preset;
pub mod spec;
pub mod switches;

pub use fix::{Fix, Origin};
pub use preset::Preset;
pub use spec::{KernelSpec, KernelSpecError};
pub use switches::{NoCodePath, SmmuOff, Switches};
