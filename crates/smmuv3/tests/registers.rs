//! Register semantics, stream table and STE/CD decode, caches stale until invalidated.

mod common;

use common::*;
use pgtable::{NoTlb, PageTable, Prot, Stage};
use smmu_addr::{Iova, PageCount, PageSize, PhysAddr};
use smmuv3::{AbortReason, Access, BypassReason, Mmio, Outcome, SmmuV3, SmmuV3Config};
use smmuv3_arch::cmd::{Command, SyncCs, TlbiRange, CFGI_ALL};
use smmuv3_arch::event::id;
use smmuv3_arch::regs::*;
use smmuv3_arch::IrqLine;
use std::sync::{Arc, Mutex};

#[test]
fn reset_values_of_the_qemu_preset() {
    let mem = Arc::new(
        physmem::PhysMem::new(&[physmem::Region::new(PhysAddr::new(RAM), 1 << 20)]).unwrap(),
    );
    let s = SmmuV3::new(SmmuV3Config::qemu_virt(), mem).unwrap();
    assert_eq!(s.read32(IDR0), 0x0d44_101a);
    assert_eq!(s.read32(IDR1), 0x0273_0010);
    assert_eq!(s.read32(IDR3), 0x404);
    assert_eq!(s.read32(IDR5), 0x74);
    assert_eq!(s.read32(AIDR), 1);
    assert_eq!(s.read32(GBPA), 0x1000);
    assert_eq!(
        (s.read32(CR0), s.read32(CR0ACK), s.read32(GERROR)),
        (0, 0, 0)
    );
    assert_eq!(
        s.read64(CMDQ_BASE),
        19,
        "LOG2SIZE reads as the maximum at reset"
    );
    // SMMUEN = 0, GBPA bypass: the IOVA goes out as the PA.
    assert_eq!(
        s.translate(8, Iova::new(0x1234), Access::Read),
        Outcome::Bypassed {
            pa: PhysAddr::new(0x1234),
            why: BypassReason::Disabled
        }
    );
    // Unimplemented offsets are RAZ/WI.
    s.write32(0xe00, 0xffff_ffff);
    assert_eq!(s.read32(0xe00), 0);
}

#[test]
fn gbpa_update_and_abort_while_disabled() {
    let mem = Arc::new(
        physmem::PhysMem::new(&[physmem::Region::new(PhysAddr::new(RAM), 1 << 20)]).unwrap(),
    );
    let s = SmmuV3::new(SmmuV3Config::qemu_virt(), mem).unwrap();
    s.write32(GBPA, gbpa::ABORT);
    assert_eq!(s.read32(GBPA), 0x1000, "a write without UPDATE is ignored");
    s.write32(GBPA, gbpa::ABORT | gbpa::UPDATE | 0x1000);
    assert_eq!(
        s.read32(GBPA),
        0x0010_1000,
        "UPDATE reads 0 once the value is in force"
    );
    assert_eq!(
        s.translate(8, Iova::new(0x1234), Access::Write),
        Outcome::Aborted(AbortReason::GlobalAbort)
    );
    s.write32(CR0, cr0::SMMUEN);
    assert_eq!(s.read32(CR0ACK), cr0::SMMUEN);
    // Enabled with no stream table: StreamID 8 is out of range (LOG2SIZE 0).
    assert_eq!(
        s.translate(8, Iova::new(0x1234), Access::Read),
        Outcome::Aborted(AbortReason::Event(id::C_BAD_STREAMID))
    );
}

#[test]
fn config_errors_are_recorded_as_events() {
    let r = Rig::new(SmmuV3Config::qemu_virt(), 6, 4, 4);
    // Out of the table's range.
    assert_eq!(
        r.smmu.translate(64, Iova::new(0), Access::Read),
        Outcome::Aborted(AbortReason::Event(id::C_BAD_STREAMID))
    );
    // Invalid STE.
    assert_eq!(
        r.smmu.translate(1, Iova::new(0), Access::Read),
        Outcome::Aborted(AbortReason::Event(id::C_BAD_STE))
    );
    // Stage 2 on a stage-1-only SMMU.
    r.ste_s2(2, 1, 0, 24, 1, 2);
    assert_eq!(
        r.smmu.translate(2, Iova::new(0), Access::Read),
        Outcome::Aborted(AbortReason::Event(id::C_BAD_STE))
    );
    // Reserved Config 0b001.
    r.write_ste(3, [1 | (1 << 1), 0, 0, 0]);
    assert_eq!(
        r.smmu.translate(3, Iova::new(0), Access::Read),
        Outcome::Aborted(AbortReason::Event(id::C_BAD_STE))
    );
    // Abort STE: terminated, no event.
    r.ste_abort(4);
    assert_eq!(
        r.smmu.translate(4, Iova::new(0), Access::Read),
        Outcome::Aborted(AbortReason::SteAbort)
    );
    let ev: Vec<(u8, u32)> = r.drain_events().iter().map(|e| (e.id, e.sid)).collect();
    assert_eq!(
        ev,
        vec![
            (id::C_BAD_STREAMID, 64),
            (id::C_BAD_STE, 1),
            (id::C_BAD_STE, 2),
            (id::C_BAD_STE, 3)
        ]
    );
}

#[test]
fn two_level_stream_table() {
    let mut r = Rig::new(SmmuV3Config::qemu_virt(), 6, 4, 4);
    let l1 = r.alloc(4096);
    let l2 = r.alloc(256 * 64);
    // SPLIT 8: L1 entry 1 covers StreamIDs 0x100..0x1ff with 2^(9-1) STEs.
    r.mem.write_u64(PhysAddr::new(l1 + 8), l2 | 9).unwrap();
    r.mem
        .write_u64(PhysAddr::new(l2 + 8 * 64), ste_bypass_word())
        .unwrap();
    r.smmu.write32(CR0, cr0::CMDQEN | cr0::EVTQEN);
    r.smmu.write64(STRTAB_BASE, l1);
    r.smmu.write32(
        STRTAB_BASE_CFG,
        (strtab_base_cfg::FMT_2LVL << strtab_base_cfg::FMT_SHIFT) | (8 << 6) | 16,
    );
    r.smmu.write32(CR0, cr0::CMDQEN | cr0::EVTQEN | cr0::SMMUEN);
    r.issue_sync(&[CFGI_ALL]);
    assert_eq!(
        r.smmu.translate(0x108, Iova::new(0x5000), Access::Read),
        Outcome::Bypassed {
            pa: PhysAddr::new(0x5000),
            why: BypassReason::Ste
        }
    );
    // L1 entry 0 has SPAN 0: no STEs there.
    assert_eq!(
        r.smmu.translate(0x8, Iova::new(0), Access::Read),
        Outcome::Aborted(AbortReason::Event(id::C_BAD_STREAMID))
    );
}

fn ste_bypass_word() -> u64 {
    smmuv3_arch::ste::V | (smmuv3_arch::ste::CFG_BYPASS << smmuv3_arch::ste::CFG_SHIFT)
}

fn s1_table(r: &Rig) -> PageTable<NoTlb> {
    let cfg = pgtable::PgTableRequest::new(Stage::S1, 0x4020_1000, 48, 44);
    PageTable::new(cfg, r.frames.clone(), NoTlb).unwrap()
}

#[test]
fn config_cache_and_tlb_stay_stale_until_invalidated() {
    let mut r = Rig::new(SmmuV3Config::qemu_virt(), 6, 4, 4);
    let mut pt = s1_table(&r);
    pt.map_pages(
        Iova::new(0x10_0000),
        PhysAddr::new(RAM + 0x10_0000),
        PageSize::SZ_4K,
        PageCount::ONE,
        Prot::READ | Prot::WRITE,
    )
    .unwrap();
    r.ste_bypass(8);
    assert!(matches!(
        r.smmu.translate(8, Iova::new(0x10_0000), Access::Read),
        Outcome::Bypassed { .. }
    ));
    // Rewrite the STE to stage 1 without CFGI: the cached bypass config is still used.
    r.ste_s1(8, 1, pt.ttbr().as_u64(), 16);
    assert!(matches!(
        r.smmu.translate(8, Iova::new(0x10_0000), Access::Read),
        Outcome::Bypassed { .. }
    ));
    r.issue_sync(&[Command::CfgiSte { sid: 8, leaf: true }]);
    assert_eq!(
        r.smmu.translate(8, Iova::new(0x10_0000), Access::Read),
        Outcome::Translated {
            pa: PhysAddr::new(RAM + 0x10_0000)
        }
    );
    // Unmap without TLBI: the TLB still answers.
    let mut g = pgtable::Gather::new();
    pt.unmap_pages(
        Iova::new(0x10_0000),
        PageSize::SZ_4K,
        PageCount::ONE,
        &mut g,
    );
    assert_eq!(
        r.smmu.translate(8, Iova::new(0x10_0123), Access::Write),
        Outcome::Translated {
            pa: PhysAddr::new(RAM + 0x10_0123)
        }
    );
    // A TLBI for another ASID changes nothing; the right one (range form) does.
    r.issue_sync(&[Command::TlbiNhAsid { vmid: 0, asid: 2 }]);
    assert!(r
        .smmu
        .translate(8, Iova::new(0x10_0000), Access::Read)
        .pa()
        .is_some());
    let range = TlbiRange {
        num: 0,
        scale: 0,
        tg: 1,
        ttl: 3,
    };
    r.issue_sync(&[Command::TlbiNhVa {
        vmid: 0,
        asid: 1,
        addr: 0x10_0000,
        leaf: true,
        range,
    }]);
    assert_eq!(
        r.smmu.translate(8, Iova::new(0x10_0000), Access::Read),
        Outcome::Aborted(AbortReason::Event(id::F_TRANSLATION))
    );
    let ev = r.drain_events();
    assert_eq!(ev.len(), 1);
    assert_eq!(
        (ev[0].id, ev[0].sid, ev[0].addr),
        (id::F_TRANSLATION, 8, 0x10_0000)
    );
    assert_ne!(ev[0].syndrome & smmuv3_arch::event::RNW, 0, "a read");
}

#[test]
fn permission_fault_on_read_only_page() {
    let mut r = Rig::new(SmmuV3Config::qemu_virt(), 6, 4, 4);
    let mut pt = s1_table(&r);
    pt.map_pages(
        Iova::new(0x20_0000),
        PhysAddr::new(RAM + 0x20_0000),
        PageSize::SZ_4K,
        PageCount::ONE,
        Prot::READ,
    )
    .unwrap();
    r.ste_s1(9, 3, pt.ttbr().as_u64(), 16);
    r.issue_sync(&[CFGI_ALL]);
    assert!(r
        .smmu
        .translate(9, Iova::new(0x20_0000), Access::Read)
        .pa()
        .is_some());
    assert_eq!(
        r.smmu.translate(9, Iova::new(0x20_0000), Access::Write),
        Outcome::Aborted(AbortReason::Event(id::F_PERMISSION))
    );
    assert_eq!(r.drain_events()[0].id, id::F_PERMISSION);
}

#[test]
fn illegal_command_raises_cerror_and_resumes_after_ack() {
    let mut r = Rig::new(SmmuV3Config::qemu_virt(), 6, 4, 4);
    let lines = Arc::new(Mutex::new(Vec::new()));
    let l2 = lines.clone();
    r.smmu
        .set_irq_handler(Arc::new(move |l| l2.lock().unwrap().push(l)));
    r.smmu
        .write32(IRQ_CTRL, irq_ctrl::GERROR_IRQEN | irq_ctrl::EVTQ_IRQEN);
    assert_eq!(r.smmu.read32(IRQ_CTRLACK), 0x5);
    r.push_raw(&[[0x7f, 0], Command::TlbiNsnhAll.encode()]);
    assert_eq!(
        r.smmu.read32(CMDQ_CONS),
        1 << 24,
        "CONS at the bad command, ERR = CERROR_ILL"
    );
    assert_eq!(
        r.smmu.read32(GERROR) ^ r.smmu.read32(GERRORN),
        gerror::CMDQ_ERR
    );
    assert_eq!(*lines.lock().unwrap(), vec![IrqLine::Gerror]);
    // Software replaces the command with a CMD_SYNC and acknowledges.
    let sync = Command::Sync {
        cs: SyncCs::None,
        msh: 0,
        msiattr: 0,
        msidata: 0,
        msiaddr: 0,
    }
    .encode();
    r.mem.write_u64(PhysAddr::new(r.cmdq), sync[0]).unwrap();
    r.smmu.write32(GERRORN, r.smmu.read32(GERROR));
    assert_eq!(r.smmu.read32(CMDQ_CONS), 2);
}

#[test]
fn cmd_sync_completes_by_msi_write() {
    let mut r = Rig::new(SmmuV3Config::s1s2_msi(), 6, 4, 4);
    let slot = r.cmdq + 16;
    r.issue(&[
        Command::TlbiNsnhAll,
        Command::Sync {
            cs: SyncCs::Irq,
            msh: 3,
            msiattr: 0xf,
            msidata: 0,
            msiaddr: slot,
        },
    ]);
    assert_eq!(
        r.mem.read_u32(PhysAddr::new(slot)).unwrap(),
        0,
        "MSIDATA 0 written over the sync's first word"
    );
    assert_eq!(r.smmu.counters().msis, 1);
    r.issue(&[Command::Sync {
        cs: SyncCs::Sev,
        msh: 3,
        msiattr: 0xf,
        msidata: 0,
        msiaddr: 0,
    }]);
    assert_eq!(r.smmu.counters().sevs, 1);
}

#[test]
fn stage2_and_nested() {
    let mut r = Rig::new(SmmuV3Config::s1s2_msi(), 6, 4, 4);
    let s2cfg = pgtable::PgTableRequest::new(Stage::S2, 0x4020_1000, 40, 48);
    let mut s2 = PageTable::new(s2cfg, r.frames.clone(), NoTlb).unwrap();
    let sl0 = s2.cfg().sl0();
    // Identity-map 8 MiB of RAM at IPA = PA through stage 2.
    s2.map_pages(
        Iova::new(RAM),
        PhysAddr::new(RAM),
        PageSize::SZ_2M,
        PageCount::new(4),
        Prot::READ | Prot::WRITE,
    )
    .unwrap();
    s2.map_pages(
        Iova::new(0x1000_0000),
        PhysAddr::new(RAM + 0x30_0000),
        PageSize::SZ_4K,
        PageCount::ONE,
        Prot::READ,
    )
    .unwrap();
    r.ste_s2(5, 7, s2.ttbr().as_u64(), 24, sl0, 2);
    r.issue_sync(&[CFGI_ALL]);
    assert_eq!(
        r.smmu.translate(5, Iova::new(0x1000_0010), Access::Read),
        Outcome::Translated {
            pa: PhysAddr::new(RAM + 0x30_0010)
        }
    );
    assert_eq!(
        r.smmu.translate(5, Iova::new(0x1000_0010), Access::Write),
        Outcome::Aborted(AbortReason::Event(id::F_PERMISSION))
    );
    let ev = r.drain_events();
    assert_ne!(ev[0].syndrome & smmuv3_arch::event::S2, 0);
    // Nested: stage 1 tables live in IPA space (identity here), output goes through stage 2.
    let mut s1 = s1_table(&r);
    s1.map_pages(
        Iova::new(0x7000),
        PhysAddr::new(0x1000_0000),
        PageSize::SZ_4K,
        PageCount::ONE,
        Prot::READ,
    )
    .unwrap();
    let cdp = r.ste_s1(6, 9, s1.ttbr().as_u64(), 16);
    let vtcr = 24 | (sl0 << 6) | (2 << 16);
    let d2 = 7 | (vtcr << 32) | smmuv3_arch::ste::S2AA64 | smmuv3_arch::ste::S2R;
    r.write_ste(
        6,
        [
            smmuv3_arch::ste::V | (smmuv3_arch::ste::CFG_NESTED << 1) | cdp,
            0,
            d2,
            s2.ttbr().as_u64(),
        ],
    );
    r.issue_sync(&[CFGI_ALL]);
    assert_eq!(
        r.smmu.translate(6, Iova::new(0x7004), Access::Read),
        Outcome::Translated {
            pa: PhysAddr::new(RAM + 0x30_0004)
        }
    );
    // TLBI_S2_IPA leaves the combined entry; S12_VMALL removes it.
    s2.unmap_pages(
        Iova::new(0x1000_0000),
        PageSize::SZ_4K,
        PageCount::ONE,
        &mut pgtable::Gather::new(),
    );
    r.issue_sync(&[Command::TlbiS2Ipa {
        vmid: 7,
        addr: 0x1000_0000,
        leaf: true,
        range: TlbiRange::default(),
    }]);
    assert!(r
        .smmu
        .translate(6, Iova::new(0x7004), Access::Read)
        .pa()
        .is_some());
    r.issue_sync(&[Command::TlbiS12Vmall { vmid: 7 }]);
    assert_eq!(
        r.smmu.translate(6, Iova::new(0x7004), Access::Read),
        Outcome::Aborted(AbortReason::Event(id::F_TRANSLATION))
    );
}

#[test]
fn fetch_and_address_size_faults() {
    let r = Rig::new(SmmuV3Config::qemu_virt(), 6, 4, 4);
    let mut pt = PageTable::new(
        pgtable::PgTableRequest::new(Stage::S1, 0x4020_1000, 48, 48),
        r.frames.clone(),
        NoTlb,
    )
    .unwrap();
    // Output address at 2^44: beyond QEMU's 44-bit OAS.
    pt.map_pages(
        Iova::new(0x30_0000),
        PhysAddr::new(1 << 44),
        PageSize::SZ_4K,
        PageCount::ONE,
        Prot::READ,
    )
    .unwrap();
    pt.map_pages(
        Iova::new(0x40_0000),
        PhysAddr::new(RAM + 0x40_0000),
        PageSize::SZ_4K,
        PageCount::ONE,
        Prot::READ,
    )
    .unwrap();
    // Clear the access flag of the second mapping behind pgtable's back.
    let leaf = pt.leaf(Iova::new(0x40_0000)).unwrap();
    r.mem
        .write_u64(leaf.pte_pa, leaf.pte.bits() & !(1 << 10))
        .unwrap();
    let cdp = r.ste_s1(10, 4, pt.ttbr().as_u64(), 16);
    assert_eq!(
        r.smmu.translate(10, Iova::new(0x30_0000), Access::Read),
        Outcome::Aborted(AbortReason::Event(id::F_ADDR_SIZE))
    );
    assert_eq!(
        r.smmu.translate(10, Iova::new(0x40_0000), Access::Read),
        Outcome::Aborted(AbortReason::Event(id::F_ACCESS))
    );
    let _ = cdp;
    // StreamID 11 has no valid STE.
    assert_eq!(
        r.smmu.translate(11, Iova::new(0), Access::Read),
        Outcome::Aborted(AbortReason::Event(id::C_BAD_STE))
    );
    // An invalid CD.
    r.ste_s1(12, 5, pt.ttbr().as_u64(), 16);
    let cd12 = r.mem.read_u64(PhysAddr::new(r.strtab + 12 * 64)).unwrap()
        & smmuv3_arch::ste::S1CTXPTR_MASK;
    r.mem.write_u64(PhysAddr::new(cd12), 0).unwrap();
    assert_eq!(
        r.smmu.translate(12, Iova::new(0), Access::Read),
        Outcome::Aborted(AbortReason::Event(id::C_BAD_CD))
    );
    // A stream table that is not memory.
    r.smmu.write32(CR0, 0);
    r.smmu.write64(STRTAB_BASE, 0x10_0000_0000);
    r.smmu.write32(CR0, cr0::CMDQEN | cr0::EVTQEN | cr0::SMMUEN);
    assert_eq!(
        r.smmu.translate(3, Iova::new(0), Access::Read),
        Outcome::Aborted(AbortReason::Event(id::F_STE_FETCH))
    );
    let ev: Vec<(u8, u64)> = r.drain_events().iter().map(|e| (e.id, e.addr)).collect();
    assert_eq!(
        ev,
        vec![
            (id::F_ADDR_SIZE, 0x30_0000),
            (id::F_ACCESS, 0x40_0000),
            (id::C_BAD_STE, 0),
            (id::C_BAD_CD, 0),
            (id::F_STE_FETCH, 0x10_0000_0000 + 3 * 64),
        ]
    );
}

#[test]
fn with_invalidation_latency_a_missing_sync_is_observable() {
    let mut cfg = SmmuV3Config::qemu_virt();
    cfg.inval_latency = Some(3);
    let mut r = Rig::new(cfg, 6, 4, 4);
    let mut pt = s1_table(&r);
    pt.map_pages(
        Iova::new(0x10_0000),
        PhysAddr::new(RAM + 0x10_0000),
        PageSize::SZ_4K,
        PageCount::ONE,
        Prot::READ,
    )
    .unwrap();
    r.ste_s1(8, 1, pt.ttbr().as_u64(), 16);
    r.issue_sync(&[CFGI_ALL]);
    assert!(r
        .smmu
        .translate(8, Iova::new(0x10_0000), Access::Read)
        .pa()
        .is_some());
    pt.unmap_pages(
        Iova::new(0x10_0000),
        PageSize::SZ_4K,
        PageCount::ONE,
        &mut pgtable::Gather::new(),
    );
    // TLBI without CMD_SYNC: still in flight for the next two transactions, done at the third.
    r.issue(&[Command::TlbiNhAsid { vmid: 0, asid: 1 }]);
    assert!(r
        .smmu
        .translate(8, Iova::new(0x10_0000), Access::Read)
        .pa()
        .is_some());
    assert!(r
        .smmu
        .translate(8, Iova::new(0x10_0000), Access::Read)
        .pa()
        .is_some());
    assert!(r
        .smmu
        .translate(8, Iova::new(0x10_0000), Access::Read)
        .pa()
        .is_none());
    // With the sync, complete at once.
    pt.map_pages(
        Iova::new(0x10_0000),
        PhysAddr::new(RAM + 0x10_0000),
        PageSize::SZ_4K,
        PageCount::ONE,
        Prot::READ,
    )
    .unwrap();
    assert!(r
        .smmu
        .translate(8, Iova::new(0x10_0000), Access::Read)
        .pa()
        .is_some());
    pt.unmap_pages(
        Iova::new(0x10_0000),
        PageSize::SZ_4K,
        PageCount::ONE,
        &mut pgtable::Gather::new(),
    );
    r.issue_sync(&[Command::TlbiNhAsid { vmid: 0, asid: 1 }]);
    assert!(r
        .smmu
        .translate(8, Iova::new(0x10_0000), Access::Read)
        .pa()
        .is_none());
}
