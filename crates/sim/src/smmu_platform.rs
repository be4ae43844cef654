//! The SMMU's platform driver as the kernel model sees it, for both drivers (arm-smmu and
//! arm-smmu-v3): its `.shutdown` and `.remove` call the driver's own, which decides per kernel
//! version whether to unregister the instance from the IOMMU core (the seed's patch).

use crate::kernel::{Driver, Kernel};
use crate::DeviceIndex;
use iommu::{InstanceId, IommuCore};
use smmu_sync::Arc;

/// What an SMMU driver offers its platform device's `.shutdown` and `.remove`.
pub(crate) trait SmmuTeardown: Send + Sync {
    /// The driver name (`dev_printk` prefix).
    const NAME: &'static str;
    /// The driver's `.shutdown`; `unregister` takes the instance out of the IOMMU core.
    fn shutdown(&self, unregister: &mut dyn FnMut());
    /// The driver's `.remove`.
    fn remove(&self, unregister: &mut dyn FnMut());
}

impl SmmuTeardown for arm_smmu::ArmSmmu {
    const NAME: &'static str = "arm-smmu";
    fn shutdown(&self, unregister: &mut dyn FnMut()) {
        arm_smmu::ArmSmmu::shutdown(self, unregister)
    }
    fn remove(&self, unregister: &mut dyn FnMut()) {
        arm_smmu::ArmSmmu::remove(self, unregister)
    }
}

impl SmmuTeardown for arm_smmu_v3::ArmSmmuV3 {
    const NAME: &'static str = "arm-smmu-v3";
    fn shutdown(&self, unregister: &mut dyn FnMut()) {
        arm_smmu_v3::ArmSmmuV3::shutdown(self, unregister)
    }
    fn remove(&self, unregister: &mut dyn FnMut()) {
        arm_smmu_v3::ArmSmmuV3::remove(self, unregister)
    }
}

/// The platform driver bound to an SMMU's device, registered as `inst` with the core.
pub(crate) struct SmmuPlatformDriver<S> {
    pub(crate) smmu: Arc<S>,
    pub(crate) core: Arc<IommuCore>,
    pub(crate) inst: InstanceId,
}

impl<S: SmmuTeardown> SmmuPlatformDriver<S> {
    fn unregister(&self) -> impl FnMut() {
        let (core, inst) = (self.core.clone(), self.inst);
        move || {
            let _ = core.unregister(inst);
        }
    }
}

impl<S: SmmuTeardown> Driver for SmmuPlatformDriver<S> {
    fn name(&self) -> &str {
        S::NAME
    }
    fn has_shutdown(&self) -> bool {
        true
    }
    fn shutdown(&self, _k: &Kernel, _dev: DeviceIndex) {
        self.smmu.shutdown(&mut self.unregister());
    }
    fn remove(&self, _k: &Kernel, _dev: DeviceIndex) {
        self.smmu.remove(&mut self.unregister());
    }
}
