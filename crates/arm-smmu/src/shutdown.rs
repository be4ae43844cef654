//! Shutdown and remove, as a selectable kernel behaviour (reference §13).
//!
//! `unregister` is the core's business (`iommu_device_unregister`: release every master), so the
//! caller passes it in and the driver calls it exactly where Linux does.

use crate::driver::ArmSmmu;
use klog::Level;
use smmu_sync::{sched_point, Point};

/// Which kernel's `.shutdown`/`.remove` the driver behaves like.
///
/// | Policy | shutdown | remove | After shutdown |
/// |---|---|---|---|
/// | `Linux61` | = remove | notice, **unregister**, sCR0 := CLIENTPD | masters released while their drivers still run DMA: the seed's NULL-group oops, and USF global faults for streams whose SMR was freed; then everything bypasses |
/// | `Linux62` | notice, sCR0 := CLIENTPD | unregister, then shutdown | no oops, but DMA still in flight **bypasses translation** (IOVA used as PA): harmless on a full reset, memory corruption across kexec |
/// | `Quiesce` | every S2CR := FAULT, sCR0 keeps CLIENTPD clear and sets USFCFG | unregister, then shutdown | no oops and no untranslated DMA: every stream faults; the cost is fault storms (rate-limited logs) and devices seeing aborts until the next kernel resets the SMMU |
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ShutdownPolicy {
    /// v6.1 before `ce31e6ca68bd`: shutdown calls remove, which unregisters from the core.
    Linux61,
    /// v6.2 (the seed's patch): shutdown only disables translation.
    Linux62,
    /// Ours: do not unregister; block every stream instead of bypassing.
    Quiesce,
}

impl ArmSmmu {
    /// The platform driver's `.shutdown`.
    pub fn shutdown(&self, unregister: &mut dyn FnMut()) {
        sched_point(Point::Kernel);
        match self.policy() {
            ShutdownPolicy::Linux61 => self.remove(unregister),
            ShutdownPolicy::Linux62 => self.disable_translation(),
            ShutdownPolicy::Quiesce => self.quiesce(),
        }
    }

    /// The platform driver's `.remove`.
    pub fn remove(&self, unregister: &mut dyn FnMut()) {
        sched_point(Point::Kernel);
        match self.policy() {
            ShutdownPolicy::Linux61 => {
                self.notice_if_in_use();
                unregister();
                self.write_clientpd();
            }
            ShutdownPolicy::Linux62 => {
                unregister();
                self.disable_translation();
            }
            ShutdownPolicy::Quiesce => {
                unregister();
                self.quiesce();
            }
        }
    }

    fn notice_if_in_use(&self) {
        if self.any_context_bank_in_use() {
            self.print(Level::Notice, "disabling translation");
        }
    }

    /// v6.2 shutdown: notice, then sCR0 := CLIENTPD.
    fn disable_translation(&self) {
        self.notice_if_in_use();
        self.write_clientpd();
    }

    /// Our policy: block every stream, keep the SMMU enabled.
    fn quiesce(&self) {
        if self.any_context_bank_in_use() {
            self.print(Level::Notice, "blocking all streams");
        }
        self.block_all_streams();
    }
}
