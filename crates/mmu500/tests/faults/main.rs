//! Stream matching outcomes, global and context faults with exact register values, bypass
//! paths, interrupts, and the ATS1PR translation operation.

mod ats;
mod bypass;
mod context;
mod global;
mod trace;

#[path = "../common/mod.rs"]
mod common;

use common::*;
use mmu500::{
    BypassReason, ContextFaultKind, DmaFault, GlobalFaultKind, Mmu500Config, Translation,
};
use pgtable::Prot;
use smmu_addr::{Iova, PageCount, PageSize, PhysAddr};
use smmu_arch::regs::{cb, gr0, gr1};
use smmu_arch::{Access, FaultIrq, LookupLevel, Mmio, Stage};
use std::sync::{Arc, Mutex};

const ENETC_ICID: u32 = 0x29;
/// ENETC PF0's stream as it arrives (TBU bit 10 set).
const ENETC_SID: u32 = 0x429;
const IOVA: u64 = 0x1000_0000;
const DATA: u64 = 0x9000_0000;

/// An LS1028A SMMU after Linux's reset, with the ENETC stream translated by bank 0.
fn booted() -> (Rig, pgtable::PageTable<pgtable::NoTlb>) {
    booted_with(Mmu500Config::mmu500_ls1028a())
}

fn booted_with(cfg: Mmu500Config) -> (Rig, pgtable::PageTable<pgtable::NoTlb>) {
    let r = rig(cfg);
    let mut pt = s1_table(&r, pgtable::PGSIZES_4K, 48, 48);
    pt.map_pages(
        Iova::new(IOVA),
        PhysAddr::new(DATA),
        PageSize::SZ_4K,
        PageCount::ONE,
        Prot::READ | Prot::WRITE | Prot::CACHE,
    )
    .unwrap();
    pt.map_pages(
        Iova::new(IOVA + 0x1000),
        PhysAddr::new(DATA + 0x1000),
        PageSize::SZ_4K,
        PageCount::ONE,
        Prot::READ,
    )
    .unwrap();
    program_from(&r.smmu, 0, &pt, 0);
    map_stream(&r.smmu, 0, ENETC_ICID, 0x7c00, 0);
    enable(&r.smmu);
    (r, pt)
}
