//! The model the translation benchmarks run on, shared by `benches/translate.rs` and
//! `examples/hit_loop.rs` (which includes this file by path), so that the criterion rows and
//! the instruction-count loops measure the same set-up.

use mmu500::{Mmu500, Mmu500Config};
use pgtable::Prot;
use physmem::{FrameAllocator, PhysMem, Region};
use smmu_addr::{Iova, PageCount, PageSize, PhysAddr};
use smmu_arch::regs::{self, cb, gr0, gr1};
use smmu_arch::Mmio;
use std::sync::Arc;

/// The stream the benchmarks translate for.
pub const SID: u32 = 0x429;
/// The first mapped IOVA.
pub const IOVA: u64 = 0x10_0000_0000;

/// LS1028A preset, stream [`SID`] to bank 0, a stage-1 AArch64 context over a 48-bit 4 KiB
/// granule table mapping `pages` pages at [`IOVA`] (to PA 0x9000_0000 on).
pub fn setup(pages: u64) -> (Arc<Mmu500>, pgtable::PageTable<pgtable::NoTlb>) {
    let mem =
        Arc::new(PhysMem::new(&[Region::new(PhysAddr::new(0x8000_0000), 0x4000_0000)]).unwrap());
    let alloc =
        Arc::new(FrameAllocator::new(mem.clone(), PhysAddr::new(0x8000_0000), 0x400_0000).unwrap());
    let s = Mmu500::new(Mmu500Config::mmu500_ls1028a(), mem).unwrap();
    let c = pgtable::PgTableRequest::new(pgtable::Stage::S1, pgtable::PGSIZES_4K, 48, 48);
    let mut pt = pgtable::PageTable::new(c, alloc, pgtable::NoTlb).unwrap();
    pt.map_pages(
        Iova::new(IOVA),
        PhysAddr::new(0x9000_0000),
        PageSize::SZ_4K,
        PageCount::new(pages),
        Prot::READ | Prot::WRITE,
    )
    .unwrap();
    let cfg = *pt.cfg();
    let b = (s.config().num_pages()) * s.config().page_size();
    let p = s.config().page_size();
    s.write32(p + gr1::cba2r(0), regs::cba2r::VA64);
    s.write32(p + gr1::cbar(0), 0x0001_f300);
    s.write32(b + cb::TCR2, cfg.smmu_tcr2());
    s.write32(b + cb::TCR, cfg.smmu_tcr());
    s.write64(b + cb::TTBR0, pt.smmu_ttbr0(0));
    s.write32(b + cb::S1_MAIR0, cfg.smmu_mair0());
    s.write32(b + cb::SCTLR, 0x1067);
    s.write32(gr0::s2cr(0), 0);
    s.write32(gr0::smr(0), 0xfc00_0029);
    s.write32(gr0::SCR0, 0x0020_1c36);
    (s, pt)
}
