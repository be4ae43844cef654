//! A domain's TLB maintenance (`DomainTlb`): the per-stage, per-version invalidation ops.

use super::DomainTlb;
use crate::context::{CtxFmt, DomainStage};
use crate::fw::Version;
use crate::io::Page;
use iommu::Gather;
use pgtable::TlbOps;
use smmu_addr::{Iova, PageSize};
use smmu_arch::regs::{cb, gr0, tlbi};

impl DomainTlb {
    fn page(&self) -> Page {
        Page::Cb(self.cfg.cbndx)
    }

    fn asid(&self) -> u64 {
        u64::from(self.cfg.asid_vmid)
    }

    /// S1 range invalidation by VA (TLBIVA / TLBIVAL), one write per granule.
    fn inv_range_s1(&self, iova: u64, size: u64, granule: u64, reg: u64) {
        let io = &self.hw.io;
        if granule == 0 {
            return;
        }
        let steps = size.div_ceil(granule).max(1);
        if self.cfg.fmt != CtxFmt::AArch64 {
            let mut v = ((iova >> tlbi::ADDR_SHIFT) << tlbi::ADDR_SHIFT) | self.asid();
            for _ in 0..steps {
                io.write(self.page(), reg, v as u32);
                v = v.wrapping_add(granule);
            }
        } else {
            let mut v = (iova >> tlbi::ADDR_SHIFT) | (self.asid() << tlbi::ASID_SHIFT);
            for _ in 0..steps {
                io.writeq(self.page(), reg, v);
                v = v.wrapping_add(granule >> tlbi::ADDR_SHIFT);
            }
        }
    }

    /// S2 range invalidation by IPA (TLBIIPAS2 / TLBIIPAS2L).
    fn inv_range_s2(&self, iova: u64, size: u64, granule: u64, reg: u64) {
        let io = &self.hw.io;
        if granule == 0 {
            return;
        }
        let steps = size.div_ceil(granule).max(1);
        let mut v = iova >> tlbi::ADDR_SHIFT;
        for _ in 0..steps {
            if self.cfg.fmt == CtxFmt::AArch64 {
                io.writeq(self.page(), reg, v);
            } else {
                io.write(self.page(), reg, v as u32);
            }
            v = v.wrapping_add(granule >> tlbi::ADDR_SHIFT);
        }
    }

    fn sync_context(&self) {
        let _g = self.cb_lock.lock();
        self.hw.tlb_sync_context(self.cfg.cbndx);
    }

    fn v2(&self) -> bool {
        self.hw.cfg.version == Version::V2
    }

    /// Linux `arm_smmu_iotlb_sync`.
    pub(super) fn iotlb_sync(&self) {
        if self.v2() || self.stage == DomainStage::S1 {
            self.sync_context();
        } else {
            self.hw.tlb_sync_global();
        }
    }
}

impl TlbOps for DomainTlb {
    fn tlb_flush_all(&self) {
        if self.stage == DomainStage::S1 {
            self.hw
                .io
                .write(self.page(), cb::S1_TLBIASID, u32::from(self.cfg.asid_vmid));
            self.sync_context();
        } else {
            self.hw
                .io
                .write(Page::Gr0, gr0::TLBIVMID, u32::from(self.cfg.asid_vmid));
            self.hw.tlb_sync_global();
        }
    }

    fn tlb_flush_walk(&self, iova: Iova, size: u64, granule: PageSize) {
        let (iova, granule) = (iova.as_u64(), granule.bytes());
        match (self.stage, self.v2()) {
            (DomainStage::S1, _) => {
                self.inv_range_s1(iova, size, granule, cb::S1_TLBIVA);
                self.sync_context();
            }
            (_, true) => {
                self.inv_range_s2(iova, size, granule, cb::S2_TLBIIPAS2);
                self.sync_context();
            }
            (_, false) => {
                self.hw
                    .io
                    .write(Page::Gr0, gr0::TLBIVMID, u32::from(self.cfg.asid_vmid));
                self.hw.tlb_sync_global();
            }
        }
    }

    fn tlb_add_page(&self, _gather: &mut Gather, iova: Iova, granule: PageSize) {
        let (iova, granule) = (iova.as_u64(), granule.bytes());
        match (self.stage, self.v2()) {
            (DomainStage::S1, _) => self.inv_range_s1(iova, granule, granule, cb::S1_TLBIVAL),
            (_, true) => self.inv_range_s2(iova, granule, granule, cb::S2_TLBIIPAS2L),
            (_, false) => self
                .hw
                .io
                .write(Page::Gr0, gr0::TLBIVMID, u32::from(self.cfg.asid_vmid)),
        }
    }
}
