//! A domain's TLB maintenance (`DomainTlb`): context and range invalidation by command.

use super::DomainTlb;
use iommu::Gather;
use pgtable::{Stage, TlbOps};
use smmu_addr::{Iova, PageSize};
use smmuv3_arch::cmd::{Command, TlbiRange};

impl DomainTlb {
    /// `arm_smmu_tlb_inv_context`.
    pub(super) fn inv_context(&self) {
        let cmd = match self.stage {
            Stage::S1 => Command::TlbiNhAsid {
                vmid: 0,
                asid: self.asid,
            },
            Stage::S2 => Command::TlbiS12Vmall { vmid: self.vmid },
        };
        let _ = self.hw.issue_sync(cmd);
    }

    /// `__arm_smmu_tlb_inv_range` through `arm_smmu_tlb_inv_range_domain`.
    pub(crate) fn inv_range(&self, mut iova: u64, size: u64, granule: u64, leaf: bool) {
        if size == 0 {
            return;
        }
        let end = iova.saturating_add(size);
        let ril = self.hw.range_inv();
        let tg = self.pgshift;
        let mut num_pages = 0u64;
        let mut range = TlbiRange::default();
        if ril {
            num_pages = size >> tg;
            range.tg = ((tg - 10) / 2) as u8;
            if leaf {
                let g = granule.max(1).ilog2();
                range.ttl = 4u32.saturating_sub(g.saturating_sub(3) / (tg - 3)) as u8;
            } else if num_pages & 31 == 1 {
                num_pages += 1;
            }
        }
        let mut cmds = Vec::new();
        while iova < end {
            let mut inv = granule.max(1);
            if ril {
                if num_pages == 0 {
                    break;
                }
                let scale = num_pages.trailing_zeros();
                let num = (num_pages >> scale) & 31;
                range.scale = scale as u8;
                range.num = (num as u8).wrapping_sub(1);
                inv = num << (scale + tg);
                num_pages -= num << scale;
            }
            let cmd = match self.stage {
                Stage::S1 => Command::TlbiNhVa {
                    vmid: 0,
                    asid: self.asid,
                    addr: iova,
                    leaf,
                    range,
                },
                Stage::S2 => Command::TlbiS2Ipa {
                    vmid: self.vmid,
                    addr: iova,
                    leaf,
                    range,
                },
            };
            cmds.push(cmd);
            iova = iova.saturating_add(inv);
        }
        let _ = self.hw.batch_submit(&cmds);
    }
}

impl TlbOps for DomainTlb {
    fn tlb_flush_all(&self) {
        self.inv_context()
    }
    fn tlb_flush_walk(&self, iova: Iova, size: u64, granule: PageSize) {
        self.inv_range(iova.as_u64(), size, granule.bytes(), false)
    }
    fn tlb_add_page(&self, gather: &mut Gather, iova: Iova, granule: PageSize) {
        // iommu_iotlb_gather_add_page: widen the gather; a different page size or a disjoint
        // range first completes what is gathered (iommu_iotlb_sync).
        let other_size = gather.pgsize.is_some_and(|size| size != granule);
        if other_size || gather.is_disjoint(iova, granule.bytes()) {
            if let (Some((start, len)), Some(size)) = (gather.span(), gather.pgsize) {
                self.inv_range(start.as_u64(), len, size.bytes(), true);
            }
            let queued = gather.queued;
            *gather = Gather::new();
            gather.queued = queued;
        }
        gather.pgsize = Some(granule);
        gather.add_range(iova, granule.bytes());
    }
}
