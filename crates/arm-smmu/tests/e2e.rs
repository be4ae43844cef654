//! End to end on the `mmu500` model: probe, attach, map, DMA through the SMMU into the right
//! page, unmap, the same DMA faults with Linux's log line; TLB maintenance leaves nothing stale
//! in the model's finite TLB; the seed's global fault after release; shutdown policies seen
//! from the DMA side.

mod common;

use arm_smmu::testing::RecordingMmio;
use arm_smmu::{
    ArmSmmu, FirmwareDesc, LpaeTables, ModuleParams, RateLimits, ShutdownPolicy, SmmuEnv,
};
use common::{RAM_BASE, RAM_SIZE};
use iommu::{DeviceId, DomainKind, DriverDomain, FwSpec, Gather, IommuDriver, MasterInfo, Prot};
use klog::MemLog;
use mmu500::{BusError, BypassReason, DmaFault, Event, Mmu500, Mmu500Config, Translation};
use physmem::{FrameAllocator, PhysMem, Region};
use smmu_addr::{Iova, PageCount, PageSize, PhysAddr};
use smmu_arch::IrqLine;
use std::sync::{Arc, Mutex};

const LS: &str = "arm-smmu 5000000.iommu";
const ENETC_SID: u32 = 0x429;

struct Board {
    model: Arc<Mmu500>,
    smmu: Arc<ArmSmmu>,
    log: Arc<MemLog>,
    mem: Arc<PhysMem>,
    frames: Arc<FrameAllocator>,
    events: Arc<Mutex<Vec<Event>>>,
}

fn board_with(
    cfg: Mmu500Config,
    fw: &FirmwareDesc,
    params: ModuleParams,
    policy: ShutdownPolicy,
) -> Board {
    let mem = Arc::new(PhysMem::new(&[Region::new(PhysAddr::new(RAM_BASE), RAM_SIZE)]).unwrap());
    let frames = Arc::new(
        FrameAllocator::new(
            mem.clone(),
            PhysAddr::new(RAM_BASE + RAM_SIZE / 2),
            RAM_SIZE / 2,
        )
        .unwrap(),
    );
    let model = Mmu500::new(cfg, mem.clone()).unwrap();
    let log = Arc::new(MemLog::new());
    let smmu = ArmSmmu::probe_and_reset(
        fw,
        params,
        common::behaviour(policy),
        SmmuEnv {
            mmio: model.clone(),
            log: log.clone(),
            frames: frames.clone(),
            tables: Arc::new(LpaeTables::SAFE),
            limits: Arc::new(RateLimits::default()),
        },
    )
    .unwrap();
    let s = Arc::downgrade(&smmu);
    model.set_irq_handler(Arc::new(move |line| {
        if let Some(s) = s.upgrade() {
            match line {
                IrqLine::Global(_) => s.handle_global_fault(),
                IrqLine::Context(cb) => s.handle_context_fault(cb),
            };
        }
    }));
    let events = Arc::new(Mutex::new(Vec::new()));
    let ev = events.clone();
    model.set_event_sink(Arc::new(move |e: &Event| {
        if !matches!(e, Event::MmioWrite { .. }) {
            ev.lock().unwrap().push(e.clone());
        }
    }));
    Board {
        model,
        smmu,
        log,
        mem,
        frames,
        events,
    }
}

fn ls1028a(params: ModuleParams, policy: ShutdownPolicy) -> Board {
    board_with(
        Mmu500Config::mmu500_ls1028a(),
        &FirmwareDesc::ls1028a(),
        params,
        policy,
    )
}

fn enetc() -> MasterInfo {
    MasterInfo {
        id: DeviceId(4),
        log_name: "fsl_enetc 0000:00:00.0".into(),
        // ICID 0x29 with the SMMU node's stream-match-mask 0x7c00.
        fwspec: FwSpec {
            ids: vec![0x7c00_0029],
        },
    }
}

fn attach_enetc(b: &Board) -> DriverDomain {
    b.smmu.probe_device(&enetc()).unwrap();
    let dom = b.smmu.domain_alloc(DomainKind::Dma).unwrap();
    b.smmu.attach_dev(dom, DeviceId(4)).unwrap();
    dom
}

fn read(b: &Board, pa: u64, n: usize) -> Vec<u8> {
    let mut v = vec![0; n];
    b.mem.read_bytes(PhysAddr::new(pa), &mut v).unwrap();
    v
}

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
            Event::ContextFaultRecorded {
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
fn tlb_maintenance_leaves_nothing_stale() {
    let b = ls1028a(ModuleParams::default(), ShutdownPolicy::Linux61);
    let dom = attach_enetc(&b);
    let iova = 0x4000_0000;
    let (pa1, pa2) = (RAM_BASE + 0x30_0000, RAM_BASE + 0x31_0000);
    // Fill the model's TLB with translations of more pages than it holds.
    let n = 600u64;
    b.smmu
        .map_pages(
            dom,
            Iova::new(iova),
            PhysAddr::new(pa1 - 0x1000 * 300),
            PageSize::SZ_4K,
            PageCount::new(n),
            Prot::READ | Prot::WRITE,
        )
        .unwrap();
    for i in 0..n {
        b.model
            .dma_write(ENETC_SID, Iova::new(iova + i * 0x1000), &[i as u8])
            .unwrap();
    }
    let cap = b.model.config().tlb_entries;
    assert!(b.model.tlb_entries() <= cap);
    // Strict unmap of everything, then remap one page elsewhere: DMA must follow the new PTE.
    let mut g = Gather::new();
    assert_eq!(
        b.smmu.unmap_pages(
            dom,
            Iova::new(iova),
            PageSize::SZ_4K,
            PageCount::new(n),
            &mut g
        ),
        n * 0x1000
    );
    b.smmu.iotlb_sync(dom, &mut g);
    for i in 0..n {
        assert!(b
            .model
            .dma_write(ENETC_SID, Iova::new(iova + i * 0x1000), &[0xee])
            .is_err());
    }
    b.smmu
        .map_pages(
            dom,
            Iova::new(iova + 300 * 0x1000),
            PhysAddr::new(pa2),
            PageSize::SZ_4K,
            PageCount::new(1),
            Prot::READ | Prot::WRITE,
        )
        .unwrap();
    b.model
        .dma_write(ENETC_SID, Iova::new(iova + 300 * 0x1000), b"new")
        .unwrap();
    assert_eq!(read(&b, pa2, 3), b"new");
    assert_eq!(
        read(&b, pa1, 3),
        vec![44, 0, 0],
        "old page untouched since its own write"
    );

    // Negative control: a lazy unmap (no leaf invalidation) leaves the model's TLB stale until
    // flush_iotlb_all, proving the checks above are not vacuous.
    b.model
        .dma_write(ENETC_SID, Iova::new(iova + 300 * 0x1000), b"hit")
        .unwrap();
    let mut lazy = Gather::new();
    lazy.queued = true;
    b.smmu.unmap_pages(
        dom,
        Iova::new(iova + 300 * 0x1000),
        PageSize::SZ_4K,
        PageCount::new(1),
        &mut lazy,
    );
    let stale = b
        .model
        .dma_write(ENETC_SID, Iova::new(iova + 300 * 0x1000), b"old");
    assert!(
        matches!(
            stale.as_deref(),
            Ok([Translation::Translated { tlb_hit: true, .. }])
        ),
        "{stale:?}"
    );
    b.smmu.flush_iotlb_all(dom);
    assert!(b
        .model
        .dma_write(ENETC_SID, Iova::new(iova + 300 * 0x1000), b"no")
        .is_err());
}

#[test]
fn seed_global_fault_after_release() {
    let b = ls1028a(ModuleParams::default(), ShutdownPolicy::Linux61);
    let dom = attach_enetc(&b);
    b.smmu
        .map_pages(
            dom,
            Iova::new(0x1000),
            PhysAddr::new(RAM_BASE),
            PageSize::SZ_4K,
            PageCount::new(1),
            Prot::READ | Prot::WRITE,
        )
        .unwrap();
    b.model
        .dma_write(ENETC_SID, Iova::new(0x1000), b"ok")
        .unwrap();
    b.smmu.release_device(DeviceId(4));
    b.log.clear();
    let e = b
        .model
        .dma_write(ENETC_SID, Iova::new(0x1000), b"tx")
        .unwrap_err();
    assert!(matches!(
        e,
        BusError::Fault {
            fault: DmaFault::Global { sid: 0x429, .. },
            ..
        }
    ));
    assert_eq!(
        b.log.lines(),
        vec![
            format!("{LS}: Blocked unknown Stream ID 0x429; boot with \"arm-smmu.disable_bypass=0\" to allow, but this may have security implications"),
            format!("{LS}: \tGFSR 0x00000002, GFSYNR0 0x00000002, GFSYNR1 0x00000429, GFSYNR2 0x00000000"),
        ]
    );
    // The seed's MULTI variant: a write and then a read arrive before the handler runs.
    b.model.clear_irq_handler();
    b.log.clear();
    b.model
        .dma_write(ENETC_SID, Iova::new(0x1000), b"tx")
        .unwrap_err();
    let mut buf = [0u8; 4];
    b.model
        .dma_read(ENETC_SID, Iova::new(0x1000), &mut buf)
        .unwrap_err();
    b.smmu.handle_global_fault();
    assert_eq!(
        b.log.lines(),
        vec![
            format!("{LS}: Blocked unknown Stream ID 0x429; boot with \"arm-smmu.disable_bypass=0\" to allow, but this may have security implications"),
            format!("{LS}: \tGFSR 0x80000002, GFSYNR0 0x00000002, GFSYNR1 0x00000429, GFSYNR2 0x00000000"),
        ]
    );
}

#[test]
fn shutdown_policies_seen_from_dma() {
    for policy in [
        ShutdownPolicy::Linux61,
        ShutdownPolicy::Linux62,
        ShutdownPolicy::Quiesce,
    ] {
        let b = ls1028a(ModuleParams::default(), policy);
        let dom = attach_enetc(&b);
        // An IOVA that is also a RAM address, so untranslated DMA visibly lands somewhere.
        let iova = RAM_BASE + 0x50_0000;
        let pa = RAM_BASE + 0x40_0000;
        b.smmu
            .map_pages(
                dom,
                Iova::new(iova),
                PhysAddr::new(pa),
                PageSize::SZ_4K,
                PageCount::new(1),
                Prot::READ | Prot::WRITE,
            )
            .unwrap();
        b.model
            .dma_write(ENETC_SID, Iova::new(iova), b"before")
            .unwrap();
        let s = b.smmu.clone();
        let mut unregistered = false;
        b.smmu.shutdown(&mut || {
            unregistered = true;
            s.release_device(DeviceId(4));
        });
        assert_eq!(unregistered, policy == ShutdownPolicy::Linux61);
        assert!(b
            .log
            .lines()
            .iter()
            .any(|l| l == &format!("{LS}: disabling translation")
                || l == &format!("{LS}: blocking all streams")));
        let r = b.model.dma_write(ENETC_SID, Iova::new(iova), b"after!");
        match policy {
            // sCR0 = CLIENTPD: the IOVA is used as a physical address.
            ShutdownPolicy::Linux61 | ShutdownPolicy::Linux62 => {
                assert!(
                    matches!(
                        r.as_deref(),
                        Ok([Translation::Bypass {
                            reason: BypassReason::ClientPd,
                            ..
                        }])
                    ),
                    "{policy:?}: {r:?}"
                );
                assert_eq!(read(&b, iova, 6), b"after!", "stray DMA at PA = IOVA");
            }
            ShutdownPolicy::Quiesce => {
                assert!(r.is_err(), "{r:?}");
                // And an unknown stream is blocked too.
                assert!(b.model.dma_write(0x7, Iova::new(iova), b"x").is_err());
            }
        }
        assert_eq!(read(&b, pa, 6), b"before");
    }
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
    assert_eq!(w[0], (0x48, 0, 32));
    assert_eq!(
        w.last(),
        Some(&(0x0, 0x0020_1c36, 32)),
        "Linux's worked sCR0 value"
    );
    smmu.test_smr_masks();
    assert_eq!(smmu.stream_masks(), (0x7fff, 0x7fff));
}

fn fw_for(cfg: &Mmu500Config, compatible: &str) -> FirmwareDesc {
    FirmwareDesc {
        compatible: compatible.into(),
        reg_base: 0x2b40_0000,
        reg_size: cfg.window_size(),
        dev_name: "2b400000.iommu".into(),
        num_global_irqs: Some(1),
        num_context_irqs: cfg.num_context_irqs,
        dma_coherent: cfg.coherent_walk,
    }
}

#[test]
fn other_model_presets_translate_dma() {
    for (cfg, compat) in [
        (Mmu500Config::mmu401(), "arm,mmu-401"),
        (Mmu500Config::smmuv2_generic(), "arm,smmu-v2"),
    ] {
        let fw = fw_for(&cfg, compat);
        let b = board_with(cfg, &fw, ModuleParams::default(), ShutdownPolicy::Linux62);
        assert!(
            !b.log.lines().iter().any(|l| l.contains("differs")),
            "{compat}: {:#?}",
            b.log.lines()
        );
        let m = MasterInfo {
            id: DeviceId(9),
            log_name: "m".into(),
            fwspec: FwSpec { ids: vec![0x5] },
        };
        b.smmu.probe_device(&m).unwrap();
        let dom = b.smmu.domain_alloc(DomainKind::Dma).unwrap();
        b.smmu.attach_dev(dom, DeviceId(9)).unwrap();
        let pa = RAM_BASE + 0x60_0000;
        b.smmu
            .map_pages(
                dom,
                Iova::new(0x8000),
                PhysAddr::new(pa),
                PageSize::SZ_4K,
                PageCount::new(1),
                Prot::READ | Prot::WRITE,
            )
            .unwrap();
        let t = b.model.dma_write(0x5, Iova::new(0x8010), b"v1v2").unwrap();
        assert!(t[0].is_translated(), "{compat}: {t:?}");
        assert_eq!(read(&b, pa + 0x10, 4), b"v1v2", "{compat}");
        assert_eq!(
            b.smmu
                .iova_to_phys(dom, Iova::new(0x8010))
                .map_or(0, PhysAddr::as_u64),
            pa + 0x10,
            "{compat}"
        );
        let mut g = Gather::new();
        b.smmu.unmap_pages(
            dom,
            Iova::new(0x8000),
            PageSize::SZ_4K,
            PageCount::new(1),
            &mut g,
        );
        b.smmu.iotlb_sync(dom, &mut g);
        b.log.clear();
        assert!(
            b.model.dma_write(0x5, Iova::new(0x8010), b"x").is_err(),
            "{compat}"
        );
        // The context interrupt (IRPTNDX on SMMUv1, the bank on v2) reaches the right bank.
        let bank = b.smmu.domain_context_bank(dom).unwrap();
        let lines = b.log.lines();
        assert_eq!(lines.len(), 1, "{compat}: {lines:#?}");
        assert!(
            lines[0].starts_with("arm-smmu 2b400000.iommu: Unhandled context fault: fsr=0x")
                && lines[0].ends_with(&format!(
                    ", iova=0x00008010, fsynr=0x{:x}, cbfrsynra=0x5, cb={bank}",
                    0x13
                )),
            "{compat}: {lines:?}"
        );
    }
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

mod prop {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    #[derive(Debug, Clone)]
    enum Op {
        Map { page: u64, frame: u64 },
        Unmap { page: u64 },
        Dma { page: u64, byte: u8 },
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0u64..32, 0u64..64).prop_map(|(page, frame)| Op::Map { page, frame }),
            (0u64..32).prop_map(|page| Op::Unmap { page }),
            (0u64..32, any::<u8>()).prop_map(|(page, byte)| Op::Dma { page, byte }),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        /// Any sequence of strict map/unmap/DMA through the driver on the model behaves like a
        /// plain page map: DMA lands exactly where the current mapping says, faults when there
        /// is none, never through a stale TLB entry.
        #[test]
        fn dma_follows_the_current_mapping(ops in proptest::collection::vec(op(), 1..80)) {
            let b = ls1028a(ModuleParams::default(), ShutdownPolicy::Linux62);
            let dom = attach_enetc(&b);
            let iova0 = 0x2000_0000u64;
            let pa0 = RAM_BASE + 0x80_0000;
            let mut map: BTreeMap<u64, u64> = BTreeMap::new();
            for o in ops {
                match o {
                    Op::Map { page, frame } => {
                        let r = b.smmu.map_pages(dom, Iova::new(iova0 + page * 0x1000), PhysAddr::new(pa0 + frame * 0x1000), PageSize::SZ_4K, PageCount::new(1), Prot::READ | Prot::WRITE);
                        match map.entry(page) {
                            std::collections::btree_map::Entry::Occupied(_) => {
                                prop_assert!(r.is_err());
                            }
                            std::collections::btree_map::Entry::Vacant(v) => {
                                prop_assert_eq!(r, Ok(0x1000));
                                v.insert(frame);
                            }
                        }
                    }
                    Op::Unmap { page } => {
                        let mut g = Gather::new();
                        let n = b.smmu.unmap_pages(dom, Iova::new(iova0 + page * 0x1000), PageSize::SZ_4K, PageCount::new(1), &mut g);
                        b.smmu.iotlb_sync(dom, &mut g);
                        prop_assert_eq!(n, if map.remove(&page).is_some() { 0x1000 } else { 0 });
                    }
                    Op::Dma { page, byte } => {
                        let r = b.model.dma_write(ENETC_SID, Iova::new(iova0 + page * 0x1000 + 8), &[byte]);
                        match map.get(&page) {
                            Some(&f) => {
                                prop_assert!(r.is_ok(), "{:?}", r);
                                prop_assert_eq!(read(&b, pa0 + f * 0x1000 + 8, 1), vec![byte]);
                                prop_assert_eq!(b.smmu.iova_to_phys(dom, Iova::new(iova0 + page * 0x1000 + 8)).map_or(0, PhysAddr::as_u64),
                                    pa0 + f * 0x1000 + 8);
                            }
                            None => prop_assert!(r.is_err(), "{:?}", r),
                        }
                    }
                }
            }
        }
    }
}
