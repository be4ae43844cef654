//! DMA through the SMMU on the LS1028A model: probe, attach, map, DMA into the right page, the
//! fault after unmap, the model's writes against the fake's, and domains on every CPU.

use super::*;

#[test]
fn probe_on_model_reports_its_configuration() {
    let b = ls1028a(ModuleParams::default(), ShutdownPolicy::Linux61);
    let lines = b.log.lines();
    for l in [
        "SMMUv2 with:",
        "\tcoherent table walk",
        // ID0.CTTW reads 0 on the MMU-500; the DT's dma-coherent wins.
        "\t(IDR0.CTTW overridden by FW configuration)",
        "\tstream matching with 128 register groups",
        "\t64 context banks (0 stage-2 only)",
        // As LS1028A boot logs show it: 4K and 64K granules only.
        "\tSupported page sizes: 0x61311000",
        "\tpreserved 0 boot mappings",
    ] {
        assert!(
            lines.contains(&format!("{LS}: {l}")),
            "missing {l:?} in {lines:#?}"
        );
    }
    // ID0.ATOSNS is set on the LS1028A: no hardware iova_to_phys, no line for it.
    assert!(!lines.iter().any(|l| l.contains("address translation ops")));
    assert_eq!(b.smmu.stream_masks(), (0x7fff, 0x7fff));
}

#[test]
fn dma_lands_in_mapped_page_then_faults_after_unmap() {
    let b = ls1028a(ModuleParams::default(), ShutdownPolicy::Linux61);
    let dom = attach_enetc(&b);
    let iova = 0x1000_0000;
    let pa = RAM_BASE + 0x20_0000;
    b.smmu
        .map_pages(
            dom,
            Iova::new(iova),
            PhysAddr::new(pa),
            PageSize::SZ_4K,
            PageCount::new(2),
            Prot::READ | Prot::WRITE,
        )
        .unwrap();
    let t = b
        .model
        .dma_write(ENETC_SID, Iova::new(iova + 0xff8), b"0123456789abcdef")
        .unwrap();
    assert!(t.iter().all(|x| x.is_translated()));
    assert_eq!(t.len(), 2, "crosses into the second page");
    assert_eq!(read(&b, pa + 0xff8, 16), b"0123456789abcdef");
    // iova_to_phys agrees (a software walk: the LS1028A's MMU-500 has no ATS1PR).
    assert_eq!(
        b.smmu
            .iova_to_phys(dom, Iova::new(iova + 0x1234))
            .map_or(0, PhysAddr::as_u64),
        pa + 0x1234
    );

    let mut g = Gather::new();
    assert_eq!(
        b.smmu.unmap_pages(
            dom,
            Iova::new(iova),
            PageSize::SZ_4K,
            PageCount::new(2),
            &mut g
        ),
        0x2000
    );
    b.smmu.iotlb_sync(dom, &mut g);
    b.events.lock().unwrap().clear();
    b.log.clear();
    let e = b
        .model
        .dma_write(ENETC_SID, Iova::new(iova + 0x10), b"late")
        .unwrap_err();
    assert!(matches!(
        e,
        BusError::Fault {
            fault: DmaFault::Context { cb: 0, .. },
            done: 0
        }
    ));
    assert_eq!(read(&b, pa + 0x10, 4), vec![0; 4], "nothing written");
    let (fsr, far, fsynr0) = b
        .events
        .lock()
        .unwrap()
        .iter()
        .find_map(|e| match *e {
            TraceEvent::ContextFaultRecorded {
                fsr, far, fsynr0, ..
            } => Some((fsr, far, fsynr0)),
            _ => None,
        })
        .unwrap();
    assert_eq!(fsr & 0x2, 0x2, "translation fault");
    assert_eq!(fsynr0 & 0x10, 0x10, "write");
    assert_eq!(far, iova + 0x10);
    assert_eq!(
        b.log.lines(),
        vec![format!(
            "{LS}: Unhandled context fault: fsr=0x{fsr:x}, iova=0x10000010, fsynr=0x{fsynr0:x}, cbfrsynra=0x429, cb=0"
        )]
    );
    // The handler cleared FSR: the next fault is reported again (rate limit permitting).
    b.model
        .dma_write(ENETC_SID, Iova::new(iova), b"x")
        .unwrap_err();
    assert_eq!(b.log.lines().len(), 2);
    b.smmu.domain_free(dom);
    assert_eq!(b.frames.outstanding_bytes(), 0);
}

#[test]
fn recorded_model_writes_match_fake_writes_for_attach() {
    // The same driver steps against the model and against the fake register file produce the
    // same writes (the model's registers behave as the fake assumes).
    let mem = Arc::new(PhysMem::new(&[Region::new(PhysAddr::new(RAM_BASE), RAM_SIZE)]).unwrap());
    let frames = Arc::new(
        FrameAllocator::new(
            mem.clone(),
            PhysAddr::new(RAM_BASE + RAM_SIZE / 2),
            RAM_SIZE / 2,
        )
        .unwrap(),
    );
    let model = Mmu500::new(Mmu500Config::mmu500_ls1028a(), mem).unwrap();
    let bus = Arc::new(RecordingMmio::new(model));
    let smmu = ArmSmmu::probe(
        &FirmwareDesc::ls1028a(),
        ModuleParams::default(),
        common::behaviour(ShutdownPolicy::Linux61),
        SmmuEnv {
            mmio: bus.clone(),
            log: Arc::new(MemLog::new()),
            frames,
            tables: Arc::new(LpaeTables::SAFE),
            limits: Arc::new(RateLimits::default()),
        },
    )
    .unwrap();
    smmu.device_reset();
    let w = bus.writes();
    use smmu_arch::regs::gr0::{SCR0, SGFSR};
    assert_eq!(w[0], (SGFSR, 0, 32));
    assert_eq!(
        w.last(),
        Some(&(SCR0, 0x0020_1c36, 32)),
        "Linux's worked sCR0 value"
    );
    smmu.test_smr_masks();
    assert_eq!(smmu.stream_masks(), (0x7fff, 0x7fff));
}

#[test]
fn shared_across_cpus() {
    // Four simulated CPUs, each with its own master and domain, map/DMA/unmap concurrently.
    let b = ls1028a(ModuleParams::default(), ShutdownPolicy::Linux62);
    let mut doms = Vec::new();
    for i in 0..4u32 {
        b.smmu
            .probe_device(&MasterInfo {
                id: DeviceId(10 + i),
                log_name: format!("m{i}"),
                fwspec: FwSpec {
                    ids: vec![0x100 + i],
                },
            })
            .unwrap();
        let d = b.smmu.domain_alloc(DomainKind::Dma).unwrap();
        b.smmu.attach_dev(d, DeviceId(10 + i)).unwrap();
        doms.push(d);
    }
    let handles: Vec<_> = doms
        .iter()
        .enumerate()
        .map(|(i, &d)| {
            let smmu = b.smmu.clone();
            let model = b.model.clone();
            let mem = b.mem.clone();
            smmu_sync::thread::spawn(move || {
                let sid = 0x100 + i as u32;
                for k in 0..100u64 {
                    let iova = 0x10_0000 + k * 0x1000;
                    let pa = RAM_BASE + 0x100_0000 + (i as u64) * 0x10_0000 + k * 0x1000;
                    smmu.map_pages(
                        d,
                        Iova::new(iova),
                        PhysAddr::new(pa),
                        PageSize::SZ_4K,
                        PageCount::new(1),
                        Prot::READ | Prot::WRITE,
                    )
                    .unwrap();
                    model
                        .dma_write(sid, Iova::new(iova), &[i as u8, k as u8])
                        .unwrap();
                    let mut v = [0u8; 2];
                    mem.read_bytes(PhysAddr::new(pa), &mut v).unwrap();
                    assert_eq!(v, [i as u8, k as u8]);
                    let mut g = Gather::new();
                    assert_eq!(
                        smmu.unmap_pages(
                            d,
                            Iova::new(iova),
                            PageSize::SZ_4K,
                            PageCount::new(1),
                            &mut g
                        ),
                        0x1000
                    );
                    smmu.iotlb_sync(d, &mut g);
                    assert_eq!(
                        smmu.iova_to_phys(d, Iova::new(iova))
                            .map_or(0, PhysAddr::as_u64),
                        0
                    );
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let banks: Vec<_> = doms
        .iter()
        .map(|&d| b.smmu.domain_context_bank(d).unwrap())
        .collect();
    assert_eq!(banks, vec![0, 1, 2, 3]);
}
