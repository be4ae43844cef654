//! The page-table factory passes its `pgtable::Fidelity` to every table it builds: the Linux
//! factory's tables translate an IOVA above the IAS by ignoring the high bits (as
//! io-pgtable-arm does), the safe factory's do not translate it.

use arm_smmu::context::CtxFmt;
use arm_smmu::{IoPgtableFactory, LpaeTables, TableRequest};
use iommu::Prot;
use physmem::{FrameAllocator, PhysAddr, PhysMem, Region};
use smmu_addr::{Iova, PageCount, PageSize};
use smmu_arch::Stage;
use std::sync::Arc;

#[test]
fn the_factory_passes_its_fidelity_to_the_tables() {
    let base = PhysAddr::new(0x8000_0000);
    let mem = Arc::new(PhysMem::new(&[Region::new(base, 0x100_0000)]).unwrap());
    let frames = Arc::new(FrameAllocator::new(mem, base, 0x100_0000).unwrap());
    let req = TableRequest {
        stage: Stage::S1,
        fmt: CtxFmt::AArch64,
        pgsize_bitmap: 0x4020_1000,
        ias: 32,
        oas: 40,
        coherent_walk: true,
    };
    let beyond = Some(PhysAddr::new(0x8020_0123));
    for (factory, beyond_ias) in [(LpaeTables::SAFE, None), (LpaeTables::LINUX, beyond)] {
        let tlb: arm_smmu::SharedTlb = Arc::new(pgtable::NoTlb);
        let pt = factory.alloc(&req, &frames, tlb).unwrap();
        pt.map_pages(
            Iova::new(0x386a_f000),
            PhysAddr::new(0x8020_0000),
            PageSize::SZ_4K,
            PageCount::ONE,
            Prot::READ | Prot::WRITE,
        )
        .unwrap();
        assert_eq!(pt.iova_to_phys(Iova::new(0x386a_f123)), beyond);
        assert_eq!(
            pt.iova_to_phys(Iova::new(0x1_386a_f123)),
            beyond_ias,
            "{factory:?}"
        );
    }
}
