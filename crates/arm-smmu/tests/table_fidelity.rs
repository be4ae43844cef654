//! The page-table factory passes its `pgtable::Fidelity` to every table it builds: the Linux
//! factory's tables translate an IOVA above the IAS by ignoring the high bits (as
//! io-pgtable-arm does), the safe factory's return 0.

use arm_smmu::context::CtxFmt;
use arm_smmu::{LpaeTables, PageTableFactory, TableRequest};
use iommu::Prot;
use physmem::{FrameAllocator, PhysMem, Region};
use std::sync::Arc;

#[test]
fn the_factory_passes_its_fidelity_to_the_tables() {
    let mem = Arc::new(PhysMem::new(&[Region::new(0x8000_0000, 0x100_0000)]).unwrap());
    let frames = Arc::new(FrameAllocator::new(mem, 0x8000_0000, 0x100_0000).unwrap());
    let req = TableRequest {
        stage2: false,
        fmt: CtxFmt::AArch64,
        pgsize_bitmap: 0x4020_1000,
        ias: 32,
        oas: 40,
        coherent_walk: true,
    };
    for (factory, beyond_ias) in [(LpaeTables::SAFE, 0), (LpaeTables::LINUX, 0x8020_0123)] {
        let tlb: arm_smmu::SharedTlb = Arc::new(pgtable::NoTlb);
        let pt = factory.alloc(&req, &frames, tlb).unwrap();
        pt.map_pages(
            0x386a_f000,
            0x8020_0000,
            0x1000,
            1,
            Prot::READ | Prot::WRITE,
        )
        .unwrap();
        assert_eq!(pt.iova_to_phys(0x386a_f123), 0x8020_0123);
        assert_eq!(pt.iova_to_phys(0x1_386a_f123), beyond_ias, "{factory:?}");
    }
}
