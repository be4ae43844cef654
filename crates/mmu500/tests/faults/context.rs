//! Context faults: exact FSR, FAR and FSYNR0, the bank's interrupt line, the DMA helpers
//! stopping at the fault, and the fault's message.

use super::*;

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
        .translate(ENETC_SID, Iova::new(IOVA + 0x2000), Access::Write)
        .unwrap_err();
    assert_eq!(
        f,
        DmaFault::Context {
            kind: ContextFaultKind::Translation,
            cb: 0,
            stage: Stage::S1,
            level: LookupLevel::L3,
            iova: Iova::new(IOVA + 0x2000),
            recorded: true,
            client_abort: true
        }
    );
    // TF with FORMAT = AArch64 (the "fsr=0x402" of real logs); WNR | PLVL 3.
    assert_eq!(s.read32(b + cb::FSR), 0x402);
    assert_eq!(s.read64(b + cb::FAR), IOVA + 0x2000);
    assert_eq!(s.read32(b + cb::FSYNR0), 0x13);
    assert_eq!(s.read32(gr1o(&s, gr1::cbfrsynra(0))), ENETC_SID);
    assert!(s.irq_pending(FaultIrq::Context(0)));
    assert_eq!(*raised.lock().unwrap(), [FaultIrq::Context(0)]);
    // A second fault before the handler clears: MULTI, syndrome unchanged, no new edge.
    s.translate(ENETC_SID, Iova::new(0x40_0000_0000), Access::Read)
        .unwrap_err();
    assert_eq!(s.read32(b + cb::FSR), 0x8000_0402);
    assert_eq!(s.read64(b + cb::FAR), IOVA + 0x2000);
    assert_eq!(raised.lock().unwrap().len(), 1);
    s.write32(b + cb::FSR, 0x8000_0402);
    assert!(!s.irq_pending(FaultIrq::Context(0)));
    // Level-1 hole, read.
    s.translate(ENETC_SID, Iova::new(0x40_0000_0000), Access::Read)
        .unwrap_err();
    assert_eq!(
        (s.read32(b + cb::FSR), s.read32(b + cb::FSYNR0)),
        (0x402, 0x01)
    );
    s.write32(b + cb::FSR, 0xc000_01fe);
    // Write to a read-only page: permission fault.
    let f = s
        .translate(ENETC_SID, Iova::new(IOVA + 0x1008), Access::Write)
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
        s.translate(ENETC_SID, Iova::new(IOVA + 0x1008), Access::Read)
            .unwrap()
            .pa(),
        PhysAddr::new(DATA + 0x1008)
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
    s.translate(ENETC_SID, Iova::new(IOVA + 0x3000), Access::Read)
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
        s.translate(ENETC_SID, Iova::new(IOVA + 0x4000), Access::Read),
        Err(DmaFault::Context {
            kind: ContextFaultKind::Permission,
            ..
        })
    ));
    s.write32(b + cb::FSR, 0xc000_01fe);
    s.write32(gr0::s2cr(0), 3 << 24);
    assert_eq!(
        s.translate(ENETC_SID, Iova::new(IOVA + 0x4000), Access::Read)
            .unwrap()
            .pa(),
        PhysAddr::new(DATA + 0x4000)
    );
    // Without CFIE the fault is recorded, the line stays low; CFRE decides the client abort.
    s.write32(b + cb::SCTLR, 0x1001);
    let f = s
        .translate(ENETC_SID, Iova::new(IOVA + 0x9000), Access::Read)
        .unwrap_err();
    assert!(matches!(
        f,
        DmaFault::Context {
            client_abort: false,
            ..
        }
    ));
    assert_eq!(s.read32(b + cb::FSR), 0x402);
    assert!(!s.irq_pending(FaultIrq::Context(0)));
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

/// The typed stage and level print as the numbers fault reports have always shown.
#[test]
fn context_fault_message_names_stage_and_level_as_numbers() {
    let f = DmaFault::Context {
        kind: ContextFaultKind::Permission,
        cb: 3,
        stage: Stage::S2,
        level: LookupLevel::L2,
        iova: Iova::new(0x8000_1000),
        recorded: true,
        client_abort: false,
    };
    assert_eq!(
        f.to_string(),
        "context fault Permission in bank 3 (stage 2, level 2) at 0x80001000"
    );
}
