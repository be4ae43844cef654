//! Stream matching outcomes, global and context faults with exact register values, bypass
//! paths, interrupts, and the ATS1PR translation operation.

mod common;

use common::*;
use mmu500::{
    BypassReason, ContextFaultKind, DmaFault, GlobalFaultKind, Mmu500Config, Translation,
};
use pgtable::Prot;
use smmu_addr::{Iova, PageCount, PageSize, PhysAddr};
use smmu_arch::regs::{cb, gr0, gr1};
use smmu_arch::{Access, IrqLine, LookupLevel, Mmio, Stage};
use std::sync::{Arc, Mutex};

const ENETC_ICID: u32 = 0x29;
/// ENETC PF0's stream as it arrives (TBU bit 10 set).
const ENETC_SID: u32 = 0x429;
const IOVA: u64 = 0x1000_0000;
const DATA: u64 = 0x9000_0000;

/// Linux's view of the global fault registers, formatted as its handler prints them.
fn gfsr_line(s: &impl Mmio) -> String {
    format!(
        "GFSR 0x{:08x}, GFSYNR0 0x{:08x}, GFSYNR1 0x{:08x}, GFSYNR2 0x{:08x}",
        s.read32(gr0::SGFSR),
        s.read32(gr0::SGFSYNR0),
        s.read32(gr0::SGFSYNR1),
        s.read32(gr0::SGFSYNR2)
    )
}

/// Linux's global fault handler minus printing: read, then W1C the value read.
fn handle_global(s: &impl Mmio) -> String {
    let line = gfsr_line(s);
    let v = s.read32(gr0::SGFSR);
    s.write32(gr0::SGFSR, v);
    line
}

/// The seed's GFSR lines, from ../shared (`None`, with a message, on a clone with nothing
/// beside it).
fn seed_gfsr_lines() -> Option<Vec<String>> {
    let text = lab_fixtures::shared::seed_patch()?;
    Some(
        text.lines()
            .filter_map(|l| l.find("GFSR 0x").map(|i| l[i..].trim_end().to_string()))
            .collect(),
    )
}

/// An LS1028A SMMU after Linux's reset, with the ENETC stream translated by bank 0.
fn booted() -> (Rig, pgtable::PageTable<pgtable::NoTlb>) {
    booted_with(Mmu500Config::mmu500_ls1028a())
}

/// The LS1028A's MMU-500 has no address translation operations (ID0.ATOSNS): the ATS tests
/// run on the same model with them implemented.
fn with_atos(ats_polls: u32) -> Mmu500Config {
    Mmu500Config {
        atos: true,
        ats_polls,
        ..Mmu500Config::mmu500_ls1028a()
    }
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

#[test]
fn seed_unknown_stream_fault_sequence_is_reproduced_exactly() {
    let (r, _pt) = booted();
    let s = &r.smmu;
    // While the SMR is valid, 0x429 matches ICID 0x29 under mask 0x7c00 and is translated.
    let t = s.translate(ENETC_SID, IOVA + 0x10, Access::Write).unwrap();
    assert_eq!(t.pa(), DATA + 0x10);
    assert!(t.is_translated());
    // release_device: S2CR to FAULT first, then the SMR invalid (reference §7.5). A
    // transaction in between still matches the SMR and meets its fault context: an invalid
    // context fault, recorded in sGFSR (ICF, bit 0) like any global fault.
    s.write32(gr0::s2cr(0), 0x0002_0000);
    assert_eq!(
        s.translate(ENETC_SID, IOVA, Access::Write),
        Err(DmaFault::Global {
            kind: GlobalFaultKind::InvalidContext { nested: false },
            sid: ENETC_SID,
            iova: IOVA,
            recorded: true,
            client_abort: true
        })
    );
    assert_eq!(
        handle_global(&**s),
        "GFSR 0x00000001, GFSYNR0 0x00000002, GFSYNR1 0x00000429, GFSYNR2 0x00000000"
    );
    assert_eq!(s.counters().fault_icf, 1);
    s.write32(gr0::smr(0), 0);

    let dma = |access| s.translate(ENETC_SID, IOVA, access);
    let mut lines = Vec::new();
    // 1: a transmit (write) then another before the handler runs.
    let first = dma(Access::Write).unwrap_err();
    assert_eq!(
        first,
        DmaFault::Global {
            kind: GlobalFaultKind::UnidentifiedStream,
            sid: ENETC_SID,
            iova: IOVA,
            recorded: true,
            client_abort: true
        }
    );
    assert!(matches!(
        dma(Access::Write),
        Err(DmaFault::Global {
            recorded: false,
            ..
        })
    ));
    lines.push(handle_global(&**s));
    // 2: write, then read: the syndrome keeps the first (write).
    dma(Access::Write).unwrap_err();
    dma(Access::Read).unwrap_err();
    lines.push(handle_global(&**s));
    // 3: read first, then write.
    dma(Access::Read).unwrap_err();
    dma(Access::Write).unwrap_err();
    lines.push(handle_global(&**s));
    // 4: a single read.
    dma(Access::Read).unwrap_err();
    lines.push(handle_global(&**s));
    if let Some(seed) = seed_gfsr_lines() {
        assert_eq!(lines, seed);
    }
    assert_eq!(s.read32(gr0::SGFSR), 0);
    // sGFAR holds the first faulting address; Linux's message uses GFSYNR1's low 16 bits.
    assert_eq!(s.read64(gr0::SGFAR), IOVA);
    assert_eq!(s.counters().fault_usf, 7);
}

#[test]
fn global_interrupt_rises_once_per_recorded_fault_and_handler_may_read_registers() {
    let (r, _pt) = booted();
    let s = r.smmu.clone();
    s.write32(gr0::smr(0), 0);
    let log = Arc::new(Mutex::new(Vec::new()));
    let (l2, s2) = (log.clone(), Arc::downgrade(&s));
    s.set_irq_handler(Arc::new(move |line| {
        let s = s2.upgrade().unwrap();
        // The handler runs outside the model's lock: it can read registers.
        l2.lock().unwrap().push((line, s.read32(gr0::SGFSR)));
    }));
    let line = IrqLine::Global(2);
    assert!(!s.irq_pending(line));
    s.translate(ENETC_SID, 0, Access::Write).unwrap_err();
    s.translate(ENETC_SID, 0, Access::Write).unwrap_err();
    assert!(s.irq_pending(line));
    assert_eq!(*log.lock().unwrap(), [(line, 0x2)]);
    s.write32(gr0::SGFSR, 0x8000_0002);
    assert!(!s.irq_pending(line));
    s.translate(ENETC_SID, 0, Access::Read).unwrap_err();
    assert_eq!(log.lock().unwrap().len(), 2);
    // With GFIE clear the fault is recorded but the line stays low; setting GFIE raises it.
    s.write32(gr0::SGFSR, 0x2);
    s.write32(gr0::SCR0, SCR0_LINUX & !smmu_arch::regs::scr0::GFIE);
    s.translate(ENETC_SID, 0, Access::Read).unwrap_err();
    assert_eq!(s.read32(gr0::SGFSR), 0x2);
    assert!(!s.irq_pending(line));
    assert_eq!(log.lock().unwrap().len(), 2);
    s.write32(gr0::SCR0, SCR0_LINUX);
    assert!(s.irq_pending(line));
    assert_eq!(log.lock().unwrap().len(), 3);
}

#[test]
fn stream_match_conflict_is_a_global_fault() {
    let (r, _pt) = booted();
    let s = &r.smmu;
    map_stream(s, 1, ENETC_SID, 0, 0);
    let f = s.translate(ENETC_SID, IOVA, Access::Read).unwrap_err();
    assert!(matches!(
        f,
        DmaFault::Global {
            kind: GlobalFaultKind::StreamMatchConflict,
            recorded: true,
            ..
        }
    ));
    assert_eq!(
        gfsr_line(&**s),
        "GFSR 0x00000004, GFSYNR0 0x00000000, GFSYNR1 0x00000429, GFSYNR2 0x00000000"
    );
    // 0x29 itself matches only SMR 0.
    assert!(s.translate(ENETC_ICID, IOVA, Access::Read).is_ok());
    // MMU-500 with sCR0.SMCFCFG clear takes the lowest matching entry instead.
    s.write32(gr0::SGFSR, 0x4);
    s.write32(gr0::SCR0, SCR0_LINUX & !smmu_arch::regs::scr0::SMCFCFG);
    assert_eq!(
        s.translate(ENETC_SID, IOVA, Access::Read).unwrap().pa(),
        DATA
    );
    assert_eq!(s.read32(gr0::SGFSR), 0);
    // An S2CR naming a context bank that does not exist.
    map_stream(s, 2, 0x55, 0, 200);
    assert!(matches!(
        s.translate(0x55, IOVA, Access::Read),
        Err(DmaFault::Global {
            kind: GlobalFaultKind::UnimplementedContextBank,
            ..
        })
    ));
    assert_eq!(s.read32(gr0::SGFSR), 0x8);
}

/// SMMUv2 spec §3.8 and the S2CR "Fault context, type 0b10": a transaction that maps to a
/// fault context incurs an invalid context fault — a global fault (sGFSR.ICF) that raises the
/// global interrupt under sCR0.GFIE and aborts the client under sCR0.GFRE. The reserved TYPE 3
/// is "treated as a fault context"; a bank of CBAR.TYPE stage 1 with stage 2 fault gives the
/// same fault with sGFSYNR0.Nested set.
#[test]
fn a_fault_type_s2cr_is_an_invalid_context_fault() {
    let (r, _pt) = booted();
    let s = r.smmu.clone();
    let raised = Arc::new(Mutex::new(0));
    let r2 = raised.clone();
    s.set_irq_handler(Arc::new(move |line| {
        assert_eq!(line, IrqLine::Global(2));
        *r2.lock().unwrap() += 1;
    }));
    let icf = |nested| DmaFault::Global {
        kind: GlobalFaultKind::InvalidContext { nested },
        sid: ENETC_SID,
        iova: IOVA,
        recorded: true,
        client_abort: true,
    };
    // TYPE = FAULT: a read records ICF with the read's syndrome and raises the interrupt.
    s.write32(gr0::s2cr(0), 0x0002_0000);
    assert_eq!(s.translate(ENETC_SID, IOVA, Access::Read), Err(icf(false)));
    assert_eq!(*raised.lock().unwrap(), 1);
    assert!(s.irq_pending(IrqLine::Global(2)));
    // A second one before the handler only sets MULTI.
    assert!(matches!(
        s.translate(ENETC_SID, IOVA, Access::Write),
        Err(DmaFault::Global {
            recorded: false,
            ..
        })
    ));
    assert_eq!(
        handle_global(&*s),
        "GFSR 0x80000001, GFSYNR0 0x00000000, GFSYNR1 0x00000429, GFSYNR2 0x00000000"
    );
    assert!(!s.irq_pending(IrqLine::Global(2)));
    // The reserved TYPE 3 is treated as a fault context; PRIVCFG = PRIV does not reach the
    // syndrome (a global fault records the input attributes).
    s.write32(gr0::s2cr(0), 0x0103_0000);
    assert_eq!(s.translate(ENETC_SID, IOVA, Access::Write), Err(icf(false)));
    assert_eq!(
        handle_global(&*s),
        "GFSR 0x00000001, GFSYNR0 0x00000002, GFSYNR1 0x00000429, GFSYNR2 0x00000000"
    );
    // Bank 0 as stage 1 followed by a faulting stage 2: ICF with Nested.
    s.write32(gr0::s2cr(0), 0);
    s.write32(
        gr1o(&s, gr1::cbar(0)),
        (smmu_arch::regs::cbar::TYPE_S1_TRANS_S2_FAULT << smmu_arch::regs::cbar::TYPE_SHIFT)
            | S1_CBAR & !(3 << smmu_arch::regs::cbar::TYPE_SHIFT),
    );
    assert_eq!(s.translate(ENETC_SID, IOVA, Access::Read), Err(icf(true)));
    assert_eq!(
        handle_global(&*s),
        "GFSR 0x00000001, GFSYNR0 0x00000001, GFSYNR1 0x00000429, GFSYNR2 0x00000000"
    );
    assert_eq!(s.counters().fault_icf, 4);
    // With GFRE clear the client gets RAZ/WI instead of an abort; still recorded.
    s.write32(gr0::SCR0, SCR0_LINUX & !smmu_arch::regs::scr0::GFRE);
    assert!(matches!(
        s.translate(ENETC_SID, IOVA, Access::Read),
        Err(DmaFault::Global {
            kind: GlobalFaultKind::InvalidContext { nested: true },
            recorded: true,
            client_abort: false,
            ..
        })
    ));
    assert_eq!(s.read32(gr0::SGFSR), 0x1);
}

#[test]
fn bypass_paths_say_why() {
    let r = rig(Mmu500Config::mmu500_ls1028a());
    let s = &r.smmu;
    // Reset: CLIENTPD = 1, everything passes untranslated.
    assert_eq!(
        s.translate(ENETC_SID, 0x1234, Access::Write),
        Ok(Translation::Bypass {
            pa: 0x1234,
            reason: BypassReason::ClientPd
        })
    );
    let (r, _pt) = booted();
    let s = &r.smmu;
    // Unmatched with USFCFG = 0.
    s.write32(gr0::SCR0, SCR0_LINUX & !smmu_arch::regs::scr0::USFCFG);
    assert_eq!(
        s.translate(0x7, 0x5000, Access::Read),
        Ok(Translation::Bypass {
            pa: 0x5000,
            reason: BypassReason::UnmatchedBypass
        })
    );
    // S2CR BYPASS.
    s.write32(gr0::s2cr(3), 0x1_0000);
    s.write32(gr0::smr(3), 0x8000_0007);
    assert_eq!(
        s.translate(0x7, 0x5000, Access::Read),
        Ok(Translation::Bypass {
            pa: 0x5000,
            reason: BypassReason::S2crBypass
        })
    );
    // Bank with SCTLR.M = 0.
    s.write32(cbo(s, 0) + cb::SCTLR, 0);
    assert_eq!(
        s.translate(ENETC_SID, IOVA, Access::Read),
        Ok(Translation::Bypass {
            pa: IOVA,
            reason: BypassReason::CbDisabled
        })
    );
    s.write32(cbo(s, 0) + cb::SCTLR, 0x1067);
    assert_eq!(
        s.translate(ENETC_SID, IOVA, Access::Read).unwrap().pa(),
        DATA
    );
    // v6.1 shutdown: sCR0 = 0x1 (CLIENTPD) with SMRs and banks intact: DMA goes untranslated.
    s.write32(gr0::SCR0, 0x1);
    assert_eq!(
        s.translate(ENETC_SID, IOVA, Access::Write),
        Ok(Translation::Bypass {
            pa: IOVA,
            reason: BypassReason::ClientPd
        })
    );
    let c = s.counters();
    assert_eq!(
        (
            c.bypass_clientpd,
            c.bypass_unmatched,
            c.bypass_s2cr,
            c.bypass_cb_disabled
        ),
        (1, 1, 1, 1)
    );
    assert_eq!(s.read32(gr0::SGFSR), 0);
}

#[test]
fn context_faults_record_exact_fsr_far_fsynr0_and_raise_the_bank_line() {
    let (r, mut pt) = booted();
    let s = r.smmu.clone();
    let raised = Arc::new(Mutex::new(Vec::new()));
    let r2 = raised.clone();
    s.set_irq_handler(Arc::new(move |l| r2.lock().unwrap().push(l)));
    let b = cbo(&s, 0);
    // Unmapped page next to a mapped one: the level-3 entry is invalid.
    let f = s
        .translate(ENETC_SID, IOVA + 0x2000, Access::Write)
        .unwrap_err();
    assert_eq!(
        f,
        DmaFault::Context {
            kind: ContextFaultKind::Translation,
            cb: 0,
            stage: Stage::S1,
            level: LookupLevel::L3,
            iova: IOVA + 0x2000,
            recorded: true,
            client_abort: true
        }
    );
    // TF with FORMAT = AArch64 (the "fsr=0x402" of real logs); WNR | PLVL 3.
    assert_eq!(s.read32(b + cb::FSR), 0x402);
    assert_eq!(s.read64(b + cb::FAR), IOVA + 0x2000);
    assert_eq!(s.read32(b + cb::FSYNR0), 0x13);
    assert_eq!(s.read32(gr1o(&s, gr1::cbfrsynra(0))), ENETC_SID);
    assert!(s.irq_pending(IrqLine::Context(0)));
    assert_eq!(*raised.lock().unwrap(), [IrqLine::Context(0)]);
    // A second fault before the handler clears: MULTI, syndrome unchanged, no new edge.
    s.translate(ENETC_SID, 0x40_0000_0000, Access::Read)
        .unwrap_err();
    assert_eq!(s.read32(b + cb::FSR), 0x8000_0402);
    assert_eq!(s.read64(b + cb::FAR), IOVA + 0x2000);
    assert_eq!(raised.lock().unwrap().len(), 1);
    s.write32(b + cb::FSR, 0x8000_0402);
    assert!(!s.irq_pending(IrqLine::Context(0)));
    // Level-1 hole, read.
    s.translate(ENETC_SID, 0x40_0000_0000, Access::Read)
        .unwrap_err();
    assert_eq!(
        (s.read32(b + cb::FSR), s.read32(b + cb::FSYNR0)),
        (0x402, 0x01)
    );
    s.write32(b + cb::FSR, 0xc000_01fe);
    // Write to a read-only page: permission fault.
    let f = s
        .translate(ENETC_SID, IOVA + 0x1008, Access::Write)
        .unwrap_err();
    assert!(matches!(
        f,
        DmaFault::Context {
            kind: ContextFaultKind::Permission,
            level: LookupLevel::L3,
            ..
        }
    ));
    assert_eq!(
        (s.read32(b + cb::FSR), s.read32(b + cb::FSYNR0)),
        (0x408, 0x13)
    );
    assert_eq!(
        s.translate(ENETC_SID, IOVA + 0x1008, Access::Read)
            .unwrap()
            .pa(),
        DATA + 0x1008
    );
    s.write32(b + cb::FSR, 0xc000_01fe);
    // Access flag clear in a never-used leaf.
    pt.map_pages(
        Iova::new(IOVA + 0x3000),
        PhysAddr::new(DATA + 0x3000),
        PageSize::SZ_4K,
        PageCount::ONE,
        Prot::READ,
    )
    .unwrap();
    let leaf = pt.leaf(Iova::new(IOVA + 0x3000)).unwrap();
    r.mem
        .write_u64(leaf.pte_pa, leaf.pte.bits() & !(1 << 10))
        .unwrap();
    s.translate(ENETC_SID, IOVA + 0x3000, Access::Read)
        .unwrap_err();
    assert_eq!(
        (s.read32(b + cb::FSR), s.read32(b + cb::FSYNR0)),
        (0x404, 0x03)
    );
    s.write32(b + cb::FSR, 0xc000_01fe);
    // A privileged-only mapping refuses the default (unprivileged) stream, and admits it once
    // S2CR.PRIVCFG forces privileged.
    pt.map_pages(
        Iova::new(IOVA + 0x4000),
        PhysAddr::new(DATA + 0x4000),
        PageSize::SZ_4K,
        PageCount::ONE,
        Prot::READ | Prot::PRIV,
    )
    .unwrap();
    assert!(matches!(
        s.translate(ENETC_SID, IOVA + 0x4000, Access::Read),
        Err(DmaFault::Context {
            kind: ContextFaultKind::Permission,
            ..
        })
    ));
    s.write32(b + cb::FSR, 0xc000_01fe);
    s.write32(gr0::s2cr(0), 3 << 24);
    assert_eq!(
        s.translate(ENETC_SID, IOVA + 0x4000, Access::Read)
            .unwrap()
            .pa(),
        DATA + 0x4000
    );
    // Without CFIE the fault is recorded, the line stays low; CFRE decides the client abort.
    s.write32(b + cb::SCTLR, 0x1001);
    let f = s
        .translate(ENETC_SID, IOVA + 0x9000, Access::Read)
        .unwrap_err();
    assert!(matches!(
        f,
        DmaFault::Context {
            client_abort: false,
            ..
        }
    ));
    assert_eq!(s.read32(b + cb::FSR), 0x402);
    assert!(!s.irq_pending(IrqLine::Context(0)));
    let c = s.counters();
    assert_eq!(
        (c.fault_translation, c.fault_permission, c.fault_access_flag),
        (4, 2, 1)
    );
}

#[test]
fn dma_helpers_move_data_and_stop_at_the_fault() {
    let (r, mut pt) = booted();
    let s = &r.smmu;
    // Two discontiguous pages behind one IOVA range.
    pt.map_pages(
        Iova::new(IOVA + 0x2000),
        PhysAddr::new(DATA + 0x8000),
        PageSize::SZ_4K,
        PageCount::ONE,
        Prot::READ | Prot::WRITE,
    )
    .unwrap();
    pt.map_pages(
        Iova::new(IOVA + 0x3000),
        PhysAddr::new(DATA + 0x5000),
        PageSize::SZ_4K,
        PageCount::ONE,
        Prot::READ | Prot::WRITE,
    )
    .unwrap();
    let packet: Vec<u8> = (0..1500u32).map(|i| i as u8).collect();
    let ts = s
        .dma_write(ENETC_SID, Iova::new(IOVA + 0x2e00), &packet)
        .unwrap();
    assert_eq!(ts.len(), 2);
    let mut a = vec![0u8; 0x200];
    r.mem
        .read_bytes(PhysAddr::new(DATA + 0x8e00), &mut a)
        .unwrap();
    assert_eq!(a, packet[..0x200]);
    let mut b = vec![0u8; 1500 - 0x200];
    r.mem
        .read_bytes(PhysAddr::new(DATA + 0x5000), &mut b)
        .unwrap();
    assert_eq!(b, packet[0x200..]);
    let mut back = vec![0u8; 1500];
    s.dma_read(ENETC_SID, Iova::new(IOVA + 0x2e00), &mut back)
        .unwrap();
    assert_eq!(back, packet);
    // Running into an unmapped page stops there; what came before was written.
    let err = s
        .dma_write(ENETC_SID, Iova::new(IOVA + 0x3f00), &packet)
        .unwrap_err();
    assert!(matches!(
        err,
        mmu500::BusError::Fault {
            done: 0x100,
            fault: DmaFault::Context { .. }
        }
    ));
}

#[test]
fn ats1pr_writes_par_and_records_no_fault() {
    let (r, _pt) = booted_with(with_atos(0));
    let s = &r.smmu;
    let b = cbo(s, 0);
    s.write64(b + cb::ATS1PR, IOVA + 0x123);
    assert_eq!(s.read32(b + cb::ATSR), 0);
    let par = s.read64(b + cb::PAR);
    assert_eq!(par & 1, 0);
    assert_eq!(par & smmu_arch::regs::par::PA_MASK, DATA);
    // IOMMU_CACHE → AttrIndx 1 → MAIR byte 0xff; inner shareable.
    assert_eq!(par >> 56, 0xff);
    // 32-bit halves (low then high) work too.
    s.write32(b + cb::ATS1PR, (IOVA + 0x1000) as u32);
    s.write32(b + cb::ATS1PR + 4, 0);
    assert_eq!(
        s.read64(b + cb::PAR) & smmu_arch::regs::par::PA_MASK,
        DATA + 0x1000
    );
    // A hole: F = 1, FST = translation fault level 3; FSR untouched.
    s.write64(b + cb::ATS1PR, IOVA + 0x7000);
    assert_eq!(s.read64(b + cb::PAR), 1 | (0x7 << 1));
    assert_eq!(s.read32(b + cb::FSR), 0);
    // ATS1PW on a read-only page: permission fault level 3.
    s.write64(b + cb::ATS1PW, IOVA + 0x1000);
    assert_eq!(s.read64(b + cb::PAR), 1 | (0xf << 1));
}

#[test]
fn atsr_reads_active_while_the_operation_runs_then_par_holds_the_result() {
    let (r, _pt) = booted_with(with_atos(3));
    let s = &r.smmu;
    let b = cbo(s, 0);
    s.write64(b + cb::PAR, 0);
    s.write64(b + cb::ATS1PR, IOVA);
    // Three reads see ACTIVE; PAR keeps its old value until the operation completes.
    for i in 0..3 {
        assert_eq!(s.read64(b + cb::PAR), 0, "read {i}: PAR before completion");
        assert_eq!(s.read32(b + cb::ATSR), 1, "read {i}: ATSR.ACTIVE");
    }
    assert_eq!(s.read32(b + cb::ATSR), 0);
    assert_eq!(s.read64(b + cb::PAR) & smmu_arch::regs::par::PA_MASK, DATA);
    // Without ATOS the whole interface is RAZ/WI.
    let (r, _pt) = booted();
    let s = &r.smmu;
    s.write64(b + cb::ATS1PR, IOVA);
    assert_eq!((s.read32(b + cb::ATSR), s.read64(b + cb::PAR)), (0, 0));
}

#[test]
fn transactions_faults_and_invalidations_are_traced() {
    use mmu500::{Event, TlbiOp};
    let (r, _pt) = booted();
    let s = &r.smmu;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    s.set_event_sink(Arc::new(move |e: &Event| {
        if !matches!(e, Event::MmioWrite { .. }) {
            sink.lock().unwrap().push(e.clone());
        }
    }));
    s.translate(ENETC_SID, IOVA, Access::Read).unwrap();
    s.translate(ENETC_SID, IOVA + 0x7000, Access::Write)
        .unwrap_err();
    s.write64(cbo(s, 0) + cb::S1_TLBIVA, IOVA >> 12);
    s.write32(gr0::SCR0, 1);
    s.translate(ENETC_SID, IOVA, Access::Read).unwrap();
    let ev = seen.lock().unwrap().clone();
    let f = DmaFault::Context {
        kind: ContextFaultKind::Translation,
        cb: 0,
        stage: Stage::S1,
        level: LookupLevel::L3,
        iova: IOVA + 0x7000,
        recorded: true,
        client_abort: true,
    };
    assert_eq!(
        ev,
        [
            Event::Translated {
                sid: ENETC_SID,
                iova: IOVA,
                access: Access::Read,
                pa: DATA,
                cb: 0,
                tlb_hit: false
            },
            Event::ContextFaultRecorded {
                cb: 0,
                fsr: 0x402,
                far: IOVA + 0x7000,
                fsynr0: 0x13
            },
            Event::Faulted {
                sid: ENETC_SID,
                iova: IOVA + 0x7000,
                access: Access::Write,
                fault: f
            },
            Event::TlbInvalidate {
                op: TlbiOp::Va {
                    cb: 0,
                    asid: 0,
                    va: IOVA
                },
                removed: 1
            },
            Event::Bypassed {
                sid: ENETC_SID,
                iova: IOVA,
                access: Access::Read,
                reason: BypassReason::ClientPd
            },
        ]
    );
}

/// The typed stage and level print as the numbers fault reports have always shown.
#[test]
fn context_fault_message_names_stage_and_level_as_numbers() {
    let f = DmaFault::Context {
        kind: ContextFaultKind::Permission,
        cb: 3,
        stage: Stage::S2,
        level: LookupLevel::L2,
        iova: 0x8000_1000,
        recorded: true,
        client_abort: false,
    };
    assert_eq!(
        f.to_string(),
        "context fault Permission in bank 3 (stage 2, level 2) at 0x80001000"
    );
}
