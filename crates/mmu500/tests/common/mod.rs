//! Shared test fixtures: memory, a model, and driver-style programming helpers written from the
//! reference's worked values (arm-smmu-v2.md §6, §8.4).
#![allow(dead_code)]

use mmu500::{Mmu500, Mmu500Config};
use physmem::{FrameAllocator, PhysMem, Region};
use smmu_addr::{Iova, PageSize, PhysAddr};
use smmu_arch::regs::{self, cb, cbar, gr0, gr1, smr};
use smmu_arch::Mmio;
use std::sync::Arc;

pub const DRAM: u64 = 0x8000_0000;
pub const DRAM_SIZE: u64 = 0x4000_0000;
/// Page tables come from the first 64 MiB; data buffers live above.
pub const PT_SIZE: u64 = 0x400_0000;

/// Page sizes in bytes, for address arithmetic in the tests: `smmu_addr::PageSize`'s constants
/// (the one home of the page sizes), as `u64`.
pub const SZ_4K: u64 = PageSize::SZ_4K.bytes();
/// See [`SZ_4K`].
pub const SZ_16K: u64 = PageSize::SZ_16K.bytes();
/// See [`SZ_4K`].
pub const SZ_2M: u64 = PageSize::SZ_2M.bytes();
/// See [`SZ_4K`].
pub const SZ_1G: u64 = PageSize::SZ_1G.bytes();

pub struct Rig {
    pub mem: Arc<PhysMem>,
    pub alloc: Arc<FrameAllocator>,
    pub smmu: Arc<Mmu500>,
}

pub fn rig(cfg: Mmu500Config) -> Rig {
    let mem = Arc::new(PhysMem::new(&[Region::new(PhysAddr::new(DRAM), DRAM_SIZE)]).unwrap());
    let alloc = Arc::new(FrameAllocator::new(mem.clone(), PhysAddr::new(DRAM), PT_SIZE).unwrap());
    let smmu = Mmu500::new(cfg, mem.clone()).unwrap();
    Rig { mem, alloc, smmu }
}

/// Byte offset of context bank `n`'s page.
pub fn cbo(s: &Mmu500, n: u32) -> u64 {
    let c = s.config();
    (c.num_pages() + u64::from(n)) * c.page_size()
}

/// GR1 offset.
pub fn gr1o(s: &Mmu500, off: u64) -> u64 {
    s.config().page_size() + off
}

/// Linux's reset value of sCR0 from 0x00200001 with disable_bypass = 1.
pub const SCR0_LINUX: u32 = 0x0020_1c36;

/// Linux's sCR0 write (disable_bypass = 1): translation on, unmatched streams fault.
pub fn enable(s: &Mmu500) {
    let v = s.read32(gr0::SCR0);
    let mut v = v | regs::scr0::GFRE | regs::scr0::GFIE | regs::scr0::GCFGFRE | regs::scr0::GCFGFIE;
    v |= regs::scr0::VMIDPNE | regs::scr0::PTM | regs::scr0::USFCFG;
    v &= !(regs::scr0::CLIENTPD | regs::scr0::FB | regs::scr0::BSU_MASK);
    s.write32(gr0::SCR0, v);
}

/// Install stream map entry `idx`: S2CR (TRANS to `cbn`) then SMR.
pub fn map_stream(s: &Mmu500, idx: u32, sid: u32, mask: u32, cbn: u32) {
    s.write32(gr0::s2cr(idx), cbn);
    s.write32(
        gr0::smr(idx),
        smr::VALID
            | regs::make(mask, smr::MASK_SHIFT, smr::MASK_WIDTH)
            | regs::make(sid, smr::ID_SHIFT, smr::ID_WIDTH),
    );
}

/// CBAR of a stage-1 bank as arm-smmu writes it: stage 1 with stage 2 bypassed, write-back
/// memory attributes and non-shareable bypass shareability for the bypassed stage (0x0001_f300).
pub const S1_CBAR: u32 = (regs::cbar::TYPE_S1_TRANS_S2_BYPASS << regs::cbar::TYPE_SHIFT)
    | (regs::cbar::S1_MEMATTR_WB << regs::cbar::S1_MEMATTR_SHIFT)
    | (regs::cbar::S1_BPSHCFG_NSH << regs::cbar::S1_BPSHCFG_SHIFT);

/// CBAR of a stage-2 bank before its VMID: TYPE = S2_TRANS (0), all else 0.
pub const S2_CBAR: u32 = regs::cbar::TYPE_S2_TRANS << regs::cbar::TYPE_SHIFT;

/// SCTLR of a stage-2 bank as arm-smmu writes it: translation, TEX remap, access flag
/// enable, fault reporting and fault interrupts (0x67).
pub const S2_SCTLR: u32 =
    regs::sctlr::CFIE | regs::sctlr::CFRE | regs::sctlr::AFE | regs::sctlr::TRE | regs::sctlr::M;

/// SCTLR of a stage-1 bank: the stage-2 bits plus ASID private namespace (0x1067).
pub const S1_SCTLR: u32 = S2_SCTLR | regs::sctlr::S1_ASIDPNE;

/// The 64-bit TLBIVA/TLBIVAL value (AArch64 encoding) for `iova` in address space `asid`:
/// VA[55:12] in the low bits and the ASID in bits 63:48.
pub fn tlbiva(iova: u64, asid: u16) -> u64 {
    (iova >> regs::tlbi::ADDR_SHIFT) | (u64::from(asid) << regs::tlbi::ASID_SHIFT)
}

/// Program bank `n` as an AArch64 stage-1 context over `pgd` (values as arm-smmu writes them).
pub fn program_s1(s: &Mmu500, n: u32, tcr: u32, tcr2: u32, ttbr0: u64, mair: u64, asid: u16) {
    let b = cbo(s, n);
    s.write32(gr1o(s, gr1::cba2r(n)), regs::cba2r::VA64);
    s.write32(gr1o(s, gr1::cbar(n)), S1_CBAR);
    s.write32(b + cb::TCR2, tcr2);
    s.write32(b + cb::TCR, tcr);
    s.write64(b + cb::TTBR0, ttbr0);
    s.write64(b + cb::TTBR1, u64::from(asid) << regs::ttbr::ASID_SHIFT);
    s.write32(b + cb::S1_MAIR0, mair as u32);
    s.write32(b + cb::S1_MAIR1, (mair >> 32) as u32);
    s.write32(b + cb::SCTLR, S1_SCTLR);
}

/// Program bank `n` as an AArch64 stage-2 context.
pub fn program_s2(s: &Mmu500, n: u32, vtcr: u32, vttbr: u64, vmid: u32) {
    let b = cbo(s, n);
    s.write32(gr1o(s, gr1::cba2r(n)), regs::cba2r::VA64);
    s.write32(
        gr1o(s, gr1::cbar(n)),
        S2_CBAR | regs::make(vmid, cbar::VMID_SHIFT, cbar::VMID_WIDTH),
    );
    s.write32(b + cb::TCR, vtcr);
    s.write64(b + cb::TTBR0, vttbr);
    s.write32(b + cb::SCTLR, S2_SCTLR);
}

/// A stage-1 or stage-2 pgtable for the model's sizes.
pub fn s1_table(
    r: &Rig,
    granule_sizes: u64,
    ias: u32,
    oas: u32,
) -> pgtable::PageTable<pgtable::NoTlb> {
    let c = pgtable::PgTableRequest::new(pgtable::Stage::S1, granule_sizes, ias, oas);
    pgtable::PageTable::new(c, r.alloc.clone(), pgtable::NoTlb).unwrap()
}

pub fn s2_table(
    r: &Rig,
    granule_sizes: u64,
    ias: u32,
    oas: u32,
) -> pgtable::PageTable<pgtable::NoTlb> {
    let c = pgtable::PgTableRequest::new(pgtable::Stage::S2, granule_sizes, ias, oas);
    pgtable::PageTable::new(c, r.alloc.clone(), pgtable::NoTlb).unwrap()
}

/// Program bank `n` from a pgtable (stage from the table's config).
pub fn program_from(s: &Mmu500, n: u32, pt: &pgtable::PageTable<pgtable::NoTlb>, asid: u16) {
    let c = pt.cfg();
    match c.stage {
        pgtable::Stage::S1 => program_s1(
            s,
            n,
            c.smmu_tcr(),
            c.smmu_tcr2(),
            pt.smmu_ttbr0(asid),
            c.mair(),
            asid,
        ),
        pgtable::Stage::S2 => program_s2(s, n, c.smmu_tcr(), pt.smmu_ttbr0(0), n + 1),
    }
}

/// Output address bits [47:12] of a leaf descriptor.
pub const DESC_ADDR: u64 = 0x0000_ffff_ffff_f000;

/// Point the leaf for `iova` at `pa` behind the SMMU's back (no TLBI), as a buggy driver would.
pub fn retarget(r: &Rig, pt: &pgtable::PageTable<pgtable::NoTlb>, iova: u64, pa: u64) {
    let leaf = pt.leaf(Iova::new(iova)).unwrap();
    r.mem
        .write_u64(leaf.pte_pa, (leaf.pte.bits() & !DESC_ADDR) | pa)
        .unwrap();
}
