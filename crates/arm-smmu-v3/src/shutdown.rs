//! `.shutdown` and `.remove`, per [`ShutdownPolicy`].
//!
//! `unregister` is the IOMMU core's `iommu_device_unregister` (it releases every master, which
//! calls back into `release_device`); the caller passes it in so the driver calls it exactly
//! where Linux does.

use crate::driver::ArmSmmuV3;
use crate::fw::ShutdownPolicy;
use crate::ste;
use klog::Level;
use smmu_sync::atomic::Ordering;
use smmu_sync::{sched_point, Point};
use smmuv3_arch::cmd::CFGI_ALL;
use smmuv3_arch::regs::gbpa;

impl ArmSmmuV3 {
    /// The platform driver's `.shutdown`.
    pub fn shutdown(&self, unregister: &mut dyn FnMut()) {
        sched_point(Point::Kernel);
        match self.policy() {
            // Before 32ea2c57dc21, shutdown called remove.
            ShutdownPolicy::Linux61 => self.remove(unregister),
            // 32ea2c57dc21: "Don't unregister on shutdown".
            ShutdownPolicy::Linux62 => {
                self.device_disable();
            }
            ShutdownPolicy::Quiesce => self.quiesce(),
        }
    }

    /// The platform driver's `.remove` (`arm_smmu_device_remove`): unregister from the core
    /// (which releases every master), then disable.
    pub fn remove(&self, unregister: &mut dyn FnMut()) {
        sched_point(Point::Kernel);
        unregister();
        if self.policy() == ShutdownPolicy::Quiesce {
            self.quiesce();
        } else {
            self.device_disable();
        }
    }

    /// Ours: make every stream abort before the SMMU is disabled, and make "disabled" mean
    /// abort. Every initialised STE becomes abort and one CFGI_ALL + SYNC drops every cached
    /// configuration (so no transaction can still use an old one), then GBPA.ABORT is set (so
    /// what arrives after SMMUEN = 0 is aborted rather than bypassed), then CR0 := 0.
    pub fn quiesce(&self) {
        self.quiesced.store(true, Ordering::SeqCst);
        self.print(Level::Notice, "blocking all streams");
        let abort = match self.version() {
            crate::fw::KernelVersion::V6_1 => ste::v61_bypass_or_abort(true),
            crate::fw::KernelVersion::V6_12 => ste::v612_abort(),
        };
        for sid in self.initialised_sids() {
            self.write_ste_raw(sid, &abort);
        }
        let _ = self.hw.issue_sync(CFGI_ALL);
        self.update_gbpa(gbpa::ABORT, 0);
        self.device_disable();
    }
}
