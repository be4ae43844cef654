//! A hypervisor that traps the SMMU's global register space and emulates the accesses, as some
//! Qualcomm platforms' firmware does: a board quirk between the driver and the SMMU, not part
//! of the SMMU. The deployed emulation goes wrong on stores of the zero register (what a
//! compiler emits for the constant 0); the fix 4e4abae311e4 only says such stores "go horribly
//! wrong". Our reading, recorded in docs/linux-iommu-bugs.md: a zero store to a TLB
//! maintenance register of the global space never reaches the SMMU, and after a lost
//! sTLBGSYNC the emulated sTLBGSTATUS keeps reporting the sync active.

use smmu_arch::regs::{gr0, tlbstatus};
use smmu_arch::Mmio;
use std::sync::atomic::{AtomicBool, Ordering};

/// The global TLB maintenance registers whose zero stores are lost.
const TRAPPED: [u64; 3] = [gr0::TLBIALLNSNH, gr0::TLBIALLH, gr0::STLBGSYNC];

/// A bus with the trapping hypervisor in front of `inner`.
pub struct ZeroStoreLosingHypervisor<M> {
    inner: M,
    /// A zero store to sTLBGSYNC was lost: the emulated status stays active.
    sync_stuck: AtomicBool,
    /// Zero stores lost so far.
    lost: std::sync::atomic::AtomicU64,
}

impl<M: Mmio> ZeroStoreLosingHypervisor<M> {
    /// Put the hypervisor in front of `inner`.
    pub fn new(inner: M) -> Self {
        ZeroStoreLosingHypervisor {
            inner,
            sync_stuck: AtomicBool::new(false),
            lost: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// Zero stores the emulation has lost.
    pub fn lost_stores(&self) -> u64 {
        self.lost.load(Ordering::Relaxed)
    }

    /// Whether the store is one the emulation loses.
    fn loses(&self, offset: u64, value: u64) -> bool {
        if value != 0 || !TRAPPED.contains(&offset) {
            return false;
        }
        self.lost.fetch_add(1, Ordering::Relaxed);
        if offset == gr0::STLBGSYNC {
            self.sync_stuck.store(true, Ordering::Relaxed);
        }
        true
    }

    fn status(&self, offset: u64, value: u64) -> u64 {
        if offset == gr0::STLBGSTATUS && self.sync_stuck.load(Ordering::Relaxed) {
            value | u64::from(tlbstatus::SACTIVE)
        } else {
            value
        }
    }
}

impl<M: Mmio> Mmio for ZeroStoreLosingHypervisor<M> {
    fn read32(&self, offset: u64) -> u32 {
        let v = self.inner.read32(offset);
        self.status(offset, u64::from(v)) as u32
    }
    fn write32(&self, offset: u64, value: u32) {
        if !self.loses(offset, u64::from(value)) {
            self.inner.write32(offset, value)
        }
    }
    fn read64(&self, offset: u64) -> u64 {
        let v = self.inner.read64(offset);
        self.status(offset, v)
    }
    fn write64(&self, offset: u64, value: u64) {
        if !self.loses(offset, value) {
            self.inner.write64(offset, value)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use smmu_sync::Mutex;

    /// A register file that remembers stores.
    #[derive(Default)]
    struct Regs(Mutex<std::collections::BTreeMap<u64, u64>>);

    impl Mmio for Regs {
        fn read32(&self, offset: u64) -> u32 {
            self.read64(offset) as u32
        }
        fn write32(&self, offset: u64, value: u32) {
            self.write64(offset, u64::from(value))
        }
        fn read64(&self, offset: u64) -> u64 {
            self.0.lock().get(&offset).copied().unwrap_or(0)
        }
        fn write64(&self, offset: u64, value: u64) {
            self.0.lock().insert(offset, value);
        }
    }

    #[test]
    fn zero_tlb_maintenance_stores_are_lost_and_a_lost_sync_stays_active() {
        let h = ZeroStoreLosingHypervisor::new(Regs::default());
        h.write32(gr0::TLBIALLH, 0xffff_ffff);
        assert_eq!(h.inner.read32(gr0::TLBIALLH), 0xffff_ffff);
        assert_eq!(h.read32(gr0::STLBGSTATUS), 0);
        h.write32(gr0::STLBGSYNC, 0xffff_ffff);
        assert_eq!(h.read32(gr0::STLBGSTATUS), 0, "a non-zero sync completes");
        h.write32(gr0::TLBIALLNSNH, 0);
        h.write32(gr0::STLBGSYNC, 0);
        assert_eq!(h.lost_stores(), 2);
        assert_eq!(
            h.inner.read32(gr0::STLBGSYNC),
            0xffff_ffff,
            "never reached the SMMU"
        );
        assert_eq!(h.read32(gr0::STLBGSTATUS), tlbstatus::SACTIVE);
        // Other registers' zero stores pass.
        h.write32(gr0::SCR0, 0);
        assert_eq!(h.lost_stores(), 2);
    }
}
