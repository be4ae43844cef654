//! From a kernel (a set of fixes) to each layer's own behaviour switches. The layers never
//! know commit ids: `iommu` has [`CoreConfig`] flags and `arm-smmu` a [`ShutdownPolicy`];
//! this is the one place that says which fix flips which switch, one fix to one code path.

use crate::fix::Fix;
use crate::spec::Kernel;
use arm_smmu::ShutdownPolicy;
use iommu::CoreConfig;
use thiserror::Error;

/// What arm-smmu writes when it turns the SMMU off (shutdown or remove).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmmuOff {
    /// sCR0.CLIENTPD: every stream bypasses translation (Linux).
    Bypass,
    /// Every S2CR faults and the SMMU stays enabled (`quiesce`).
    BlockStreams,
}

/// Every switch the model's fixes control, one field per fix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Switches {
    /// iommu: `iommu_device_unregister()` releases every device of the instance
    /// (`57365a04c921`).
    pub unregister_releases_devices: bool,
    /// arm-smmu: `.shutdown` runs `.remove`, which unregisters (absent `ce31e6ca68bd`).
    pub shutdown_runs_remove: bool,
    /// arm-smmu: how the SMMU is turned off (`quiesce`).
    pub smmu_off: SmmuOff,
    /// iommu: the DMA API reads the group pointer unguarded and a NULL group is Linux's oops
    /// (absent `guarded_dma_domain`).
    pub unguarded_dma_domain: bool,
}

/// A combination of switches for which a layer has no code path yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum NoCodePath {
    /// arm-smmu's shutdown policies cover shutdown-runs-remove only with the CLIENTPD bypass.
    #[error("arm-smmu has no shutdown path that both runs .remove (no ce31e6ca68bd) and blocks every stream (quiesce)")]
    RemoveWithBlockedStreams,
}

impl Switches {
    /// The switches of `kernel`.
    pub fn of(kernel: &Kernel) -> Switches {
        Switches {
            unregister_releases_devices: kernel.contains(Fix::MoveBusSetupToRegistration),
            shutdown_runs_remove: !kernel.contains(Fix::DontUnregisterOnShutdown),
            smmu_off: if kernel.contains(Fix::Quiesce) {
                SmmuOff::BlockStreams
            } else {
                SmmuOff::Bypass
            },
            unguarded_dma_domain: !kernel.contains(Fix::GuardedDmaDomain),
        }
    }

    /// The iommu core's configuration: `base` (command line, sizes) with this kernel's
    /// switches applied.
    pub fn core_config(&self, base: CoreConfig) -> CoreConfig {
        CoreConfig {
            unregister_releases_devices: self.unregister_releases_devices,
            linux_faithful: self.unguarded_dma_domain,
            ..base
        }
    }

    /// arm-smmu's `.shutdown`/`.remove` behaviour.
    pub fn shutdown_policy(&self) -> Result<ShutdownPolicy, NoCodePath> {
        match (self.shutdown_runs_remove, self.smmu_off) {
            (true, SmmuOff::Bypass) => Ok(ShutdownPolicy::Linux61),
            (false, SmmuOff::Bypass) => Ok(ShutdownPolicy::Linux62),
            (false, SmmuOff::BlockStreams) => Ok(ShutdownPolicy::Quiesce),
            (true, SmmuOff::BlockStreams) => Err(NoCodePath::RemoveWithBlockedStreams),
        }
    }
}
