//! What differs between the Linux versions the driver models, access by access (register,
//! value, order) and line by line, plus the version-independent fixes that came with them:
//! the RMR boot-mapping step at probe, the context fault handler's reads and report, the TLB
//! flush when a domain is freed (stage 1 and stage 2, and the domain-reuse DMA it prevents on
//! the model), and the ATS1PR/ATSR iova_to_phys path with its timeout fallback.

mod common;

use arm_smmu::testing::{BusOp, FakeSmmu, IdRegs, RecordingMmio};
use arm_smmu::{
    ArmSmmu, ContextFaultReport, DriverBehaviour, FirmwareDesc, LinuxVersion, LpaeTables,
    ModuleParams, RateLimits, SmmuEnv,
};
use common::*;
use iommu::{DeviceId, DomainKind, FwSpec, Gather, IommuDriver, MasterInfo, Prot};
use klog::MemLog;
use mmu500::{BusError, DmaFault, Mmu500, Mmu500Config, Translation};
use physmem::{FrameAllocator, PhysMem, Region};
use smmu_addr::{Iova, PageCount, PageSize, PhysAddr};
use smmu_arch::{IrqLine, IrqReturn};
use std::sync::Arc;

const LS: &str = "arm-smmu 5000000.iommu";
const ENETC_SID: u32 = 0x429;

fn ls_cb(i: u64) -> u64 {
    0x40_0000 + i * 0x1_0000
}

fn rd(offset: u64, value: u64) -> BusOp {
    BusOp {
        write: false,
        width: 32,
        offset,
        value,
    }
}
fn rq(offset: u64, value: u64) -> BusOp {
    BusOp {
        width: 64,
        ..rd(offset, value)
    }
}
fn wr(offset: u64, value: u64) -> BusOp {
    BusOp {
        write: true,
        ..rd(offset, value)
    }
}
fn wq(offset: u64, value: u64) -> BusOp {
    BusOp {
        write: true,
        width: 64,
        ..rd(offset, value)
    }
}

fn fake_with(behaviour: DriverBehaviour, params: ModuleParams) -> Rig<FakeSmmu> {
    let bus = Arc::new(RecordingMmio::new(FakeSmmu::new(IdRegs::LS1028A)));
    let log = Arc::new(MemLog::new());
    let frames = frames();
    let smmu = ArmSmmu::probe(
        &FirmwareDesc::ls1028a(),
        params,
        behaviour,
        SmmuEnv {
            mmio: bus.clone(),
            log: log.clone(),
            frames: frames.clone(),
            tables: Arc::new(LpaeTables::SAFE),
            limits: Arc::new(RateLimits::default()),
        },
    )
    .unwrap();
    // Forget probe's ID register reads.
    bus.clear();
    Rig {
        smmu,
        bus,
        log,
        frames,
    }
}

fn enetc() -> MasterInfo {
    MasterInfo {
        id: DeviceId(4),
        log_name: "fsl_enetc 0000:00:00.0".into(),
        fwspec: FwSpec {
            ids: vec![0x7c00_0029],
        },
    }
}

// ------------------------------------------------------------------------------ probe: RMR

#[test]
fn every_modelled_version_sets_clientpd_before_reset_and_reports_boot_mappings() {
    for v in LinuxVersion::ALL {
        let r = fake_with(v.behaviour(), ModuleParams::default());
        let probe_lines = r.log.lines().len();
        r.smmu.reset_at_probe();
        let ops = r.bus.ops();
        // Linux arm_smmu_rmr_install_bypass_smr: sCR0 read, then written back with CLIENTPD.
        assert_eq!(ops[0], rd(0x0, 0x0020_0001), "{v}");
        assert_eq!(ops[1], wr(0x0, 0x0020_0001), "{v}: sCR0 | CLIENTPD");
        // Then the reset, which starts by clearing sGFSR, and ends with translation enabled.
        assert_eq!(ops[2], rd(0x48, 0), "{v}");
        let writes: Vec<_> = ops.iter().filter(|o| o.write).collect();
        assert!(writes.contains(&&wr(0x0, 0x0020_1c36)), "{v}");
        let lines = r.log.lines();
        assert_eq!(lines.len(), probe_lines + 1, "{v}");
        assert_eq!(
            lines[probe_lines],
            format!("{LS}: \tpreserved 0 boot mappings")
        );
    }
}

#[test]
fn rmr_step_keeps_whatever_scr0_held_and_only_adds_clientpd() {
    // A previous kernel left the SMMU translating (smmu-lab's quiesce, or a kexec'd kernel
    // that never shut it down): the first write turns every stream into bypass.
    let r = fake_with(LinuxVersion::V6_12.behaviour(), ModuleParams::default());
    r.bus.inner().poke(0x0, 0x0020_1c36);
    r.smmu.rmr_install_bypass_smr();
    assert_eq!(
        r.bus.ops(),
        vec![rd(0x0, 0x0020_1c36), wr(0x0, 0x0020_1c37)]
    );
}

#[test]
fn a_kernel_without_the_rmr_step_goes_straight_to_reset() {
    let pre_6_0 = DriverBehaviour {
        rmr_bypass_at_probe: false,
        ..LinuxVersion::V6_1.behaviour()
    };
    let r = fake_with(pre_6_0, ModuleParams::default());
    let probe_lines = r.log.lines();
    r.smmu.reset_at_probe();
    assert_eq!(
        r.bus.ops()[0],
        rd(0x48, 0),
        "reset's sGFSR read comes first"
    );
    assert_eq!(r.log.lines(), probe_lines);
}

// -------------------------------------------------------------------- context fault handler

/// A translation fault on CB0 as the model records one for the ENETC's write at 0x10000010:
/// FSR TF with Format 2 (AArch64), FSYNR0 WNR and PLVL 3.
fn fault_on_cb0(r: &Rig<FakeSmmu>) {
    let dev = r.bus.inner();
    dev.poke(ls_cb(0) + 0x58, 0x402);
    dev.poke(ls_cb(0) + 0x68, 0x13);
    dev.poke(ls_cb(0) + 0x60, 0x1000_0010);
    dev.poke(0x1_0400, 0x429);
}

fn attached(behaviour: DriverBehaviour) -> Rig<FakeSmmu> {
    let r = fake_with(behaviour, ModuleParams::default());
    r.smmu.reset_at_probe();
    r.smmu.probe_device(&enetc()).unwrap();
    let dom = r.smmu.domain_alloc(DomainKind::Dma).unwrap();
    r.smmu.attach_dev(dom, DeviceId(4)).unwrap();
    r.bus.clear();
    r.log.clear();
    r
}

#[test]
fn v6_1_and_v6_2_read_fsr_first_and_print_one_line() {
    for v in [LinuxVersion::V6_1, LinuxVersion::V6_2] {
        let r = attached(v.behaviour());
        // No fault: one FSR read, not handled.
        assert_eq!(r.smmu.handle_context_fault(0), IrqReturn::None);
        assert_eq!(r.bus.ops(), vec![rd(ls_cb(0) + 0x58, 0)], "{v}");
        r.bus.clear();
        fault_on_cb0(&r);
        assert_eq!(r.smmu.handle_context_fault(0), IrqReturn::Handled);
        assert_eq!(
            r.bus.ops(),
            vec![
                rd(ls_cb(0) + 0x58, 0x402),       // FSR
                rd(ls_cb(0) + 0x68, 0x13),        // FSYNR0
                rq(ls_cb(0) + 0x60, 0x1000_0010), // FAR
                rd(0x1_0400, 0x429),              // CBFRSYNRA(0)
                wr(ls_cb(0) + 0x58, 0x402),       // FSR write-back (W1C)
            ],
            "{v}"
        );
        assert_eq!(
            r.log.lines(),
            vec![format!(
                "{LS}: Unhandled context fault: fsr=0x402, iova=0x10000010, fsynr=0x13, cbfrsynra=0x429, cb=0"
            )],
            "{v}"
        );
    }
}

#[test]
fn v6_12_reads_far_fsr_fsynr0_cbfrsynra_and_prints_three_lines() {
    let r = attached(LinuxVersion::V6_12.behaviour());
    // No fault: all four registers are read before FSR is looked at.
    assert_eq!(r.smmu.handle_context_fault(0), IrqReturn::None);
    assert_eq!(
        r.bus.ops(),
        vec![
            rq(ls_cb(0) + 0x60, 0),
            rd(ls_cb(0) + 0x58, 0),
            rd(ls_cb(0) + 0x68, 0),
            rd(0x1_0400, 0),
        ]
    );
    r.bus.clear();
    fault_on_cb0(&r);
    assert_eq!(r.smmu.handle_context_fault(0), IrqReturn::Handled);
    assert_eq!(
        r.bus.ops(),
        vec![
            rq(ls_cb(0) + 0x60, 0x1000_0010), // FAR
            rd(ls_cb(0) + 0x58, 0x402),       // FSR
            rd(ls_cb(0) + 0x68, 0x13),        // FSYNR0
            rd(0x1_0400, 0x429),              // CBFRSYNRA(0)
            wr(ls_cb(0) + 0x58, 0x402),       // FSR write-back
        ]
    );
    assert_eq!(
        r.log.lines(),
        prefixed(
            LS,
            &[
                "Unhandled context fault: fsr=0x402, iova=0x10000010, fsynr=0x13, cbfrsynra=0x429, cb=0",
                "FSR    = 00000402 [Format=2 TF], SID=0x429",
                "FSYNR0 = 00000013 [S1CBNDX=0 WNR PLVL=3]",
            ]
        )
    );
}

#[test]
fn v6_12_decodes_every_fsr_and_fsynr0_flag_in_linux_order() {
    let r = attached(DriverBehaviour {
        context_fault_report: ContextFaultReport::Decoded,
        ..LinuxVersion::V6_1.behaviour()
    });
    let dev = r.bus.inner();
    dev.poke(ls_cb(0) + 0x58, 0xc000_05fe); // MULTI SS Format=2 UUT..TF
    dev.poke(ls_cb(0) + 0x68, 0x0005_0d72); // S1CBNDX 5, AFR PTWF NSATTR IND PNU WNR, PLVL 2
    dev.poke(ls_cb(0) + 0x60, 0x1_2345_6000);
    dev.poke(0x1_0400, 0x29);
    r.smmu.handle_context_fault(0);
    assert_eq!(
        r.log.lines(),
        prefixed(
            LS,
            &[
                "Unhandled context fault: fsr=0xc00005fe, iova=0x123456000, fsynr=0x50d72, cbfrsynra=0x29, cb=0",
                "FSR    = c00005fe [MULTI SS Format=2 UUT ASF TLBLKF TLBMCF EF PF AFF TF], SID=0x29",
                "FSYNR0 = 00050d72 [S1CBNDX=5 AFR PTWF NSATTR IND PNU WNR PLVL=2]",
            ]
        )
    );
}

// ------------------------------------------------------------------------- domain free flush

#[test]
fn freeing_a_stage2_domain_flushes_by_vmid_with_a_global_sync() {
    let p = ModuleParams::from_cmdline("arm-smmu.force_stage=2").unwrap();
    let r = fake_with(LinuxVersion::V6_2.behaviour(), p);
    r.smmu.reset_at_probe();
    r.smmu.probe_device(&enetc()).unwrap();
    let dom = r.smmu.domain_alloc(DomainKind::Dma).unwrap();
    r.smmu.attach_dev(dom, DeviceId(4)).unwrap();
    assert_eq!(r.smmu.domain_context_bank(dom), Some(0));
    r.bus.clear();
    r.smmu.domain_free(dom);
    // S2 on bank 0 has VMID 1 (cbndx + 1): arm_smmu_tlb_inv_context_s2.
    assert_eq!(
        r.bus.ops(),
        vec![
            wr(ls_cb(0), 0),       // CB0.SCTLR = 0
            wr(0x64, 1),           // GR0 TLBIVMID = 1
            wr(0x70, 0xffff_ffff), // sTLBGSYNC
            rd(0x74, 0),           // sTLBGSTATUS: done
        ]
    );
    assert_eq!(r.frames.outstanding_bytes(), 0);
}

// ------------------------------------------------------- on the model: domain reuse, ATS

struct ModelRig {
    model: Arc<Mmu500>,
    smmu: Arc<ArmSmmu>,
    bus: Arc<RecordingMmio<Arc<Mmu500>>>,
    log: Arc<MemLog>,
    mem: Arc<PhysMem>,
}

fn on_model(cfg: Mmu500Config, fw: &FirmwareDesc, behaviour: DriverBehaviour) -> ModelRig {
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
    let bus = Arc::new(RecordingMmio::new(model.clone()));
    let log = Arc::new(MemLog::new());
    let smmu = ArmSmmu::probe_and_reset(
        fw,
        ModuleParams::default(),
        behaviour,
        SmmuEnv {
            mmio: bus.clone(),
            log: log.clone(),
            frames,
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
    ModelRig {
        model,
        smmu,
        bus,
        log,
        mem,
    }
}

#[test]
fn a_new_domain_on_a_freed_bank_never_hits_the_freed_domains_tlb_entries() {
    // The sequence of issue 17: a cached translation, the domain freed, a new domain given the
    // same context bank (and so the same ASID), DMA to the old IOVA.
    let r = on_model(
        Mmu500Config::mmu500_ls1028a(),
        &FirmwareDesc::ls1028a(),
        LinuxVersion::V6_12.behaviour(),
    );
    let (old_iova, old_buf) = (0x1000_0000, RAM_BASE + 0xa0_0000);
    r.smmu.probe_device(&enetc()).unwrap();
    let first = r.smmu.domain_alloc(DomainKind::Dma).unwrap();
    r.smmu.attach_dev(first, DeviceId(4)).unwrap();
    r.smmu
        .map_pages(
            first,
            Iova::new(old_iova),
            PhysAddr::new(old_buf),
            PageSize::SZ_4K,
            PageCount::new(1),
            Prot::READ | Prot::WRITE,
        )
        .unwrap();
    r.model
        .dma_write(ENETC_SID, Iova::new(old_iova + 0x40), b"ping")
        .unwrap();
    let t = r
        .model
        .dma_write(ENETC_SID, Iova::new(old_iova + 0x40), b"ping")
        .unwrap();
    let Translation::Translated {
        tlb_hit: true,
        epoch: first_epoch,
        cb: 0,
        ..
    } = t[0]
    else {
        panic!("not a cached translation: {t:?}");
    };
    // Freed without unmapping (the domain's tables go with it), as a default domain is when its
    // group goes away.
    r.smmu.domain_free(first);
    let freed_epoch = r.model.context_epoch(0).unwrap();
    assert!(freed_epoch > first_epoch);
    let second = r.smmu.domain_alloc(DomainKind::Dma).unwrap();
    r.smmu.attach_dev(second, DeviceId(4)).unwrap();
    assert_eq!(
        r.smmu.domain_context_bank(second),
        Some(0),
        "same bank, same ASID"
    );
    let new_buf = RAM_BASE + 0xb0_0000;
    r.smmu
        .map_pages(
            second,
            Iova::new(0x2000_0000),
            PhysAddr::new(new_buf),
            PageSize::SZ_4K,
            PageCount::new(1),
            Prot::READ | Prot::WRITE,
        )
        .unwrap();
    r.log.clear();
    r.mem
        .write_bytes(PhysAddr::new(old_buf + 0x40), b"....")
        .unwrap();
    let e = r
        .model
        .dma_write(ENETC_SID, Iova::new(old_iova + 0x40), b"late")
        .unwrap_err();
    assert!(
        matches!(
            e,
            BusError::Fault {
                fault: DmaFault::Context { cb: 0, .. },
                done: 0
            }
        ),
        "{e:?}"
    );
    let mut back = [0u8; 4];
    r.mem
        .read_bytes(PhysAddr::new(old_buf + 0x40), &mut back)
        .unwrap();
    assert_eq!(&back, b"....", "nothing reached the freed buffer");
    // The new domain's tables have no level-2 entry there: a translation fault at level 2.
    assert_eq!(
        r.log.lines()[0],
        format!("{LS}: Unhandled context fault: fsr=0x402, iova=0x10000040, fsynr=0x12, cbfrsynra=0x429, cb=0")
    );
    // The new domain's own DMA is translated by tables newer than the free.
    let t = r
        .model
        .dma_write(ENETC_SID, Iova::new(0x2000_0000), b"pong")
        .unwrap();
    let Translation::Translated { epoch, pa, .. } = t[0] else {
        panic!("{t:?}");
    };
    assert!(epoch > freed_epoch);
    assert_eq!(pa, new_buf);
}

fn generic_fw(cfg: &Mmu500Config) -> FirmwareDesc {
    FirmwareDesc {
        compatible: "arm,smmu-v2".into(),
        reg_base: 0x2b40_0000,
        reg_size: cfg.window_size(),
        dev_name: "2b400000.iommu".into(),
        num_global_irqs: Some(1),
        num_context_irqs: cfg.num_cb,
        dma_coherent: true,
    }
}

/// A stage-1 domain for stream 5 with one page mapped at IOVA 0x8000 on a generic SMMUv2 whose
/// ATS1PR operations take `ats_polls` ATSR reads.
fn ats_rig(ats_polls: u32) -> (ModelRig, iommu::DriverDomain, u64) {
    let cfg = Mmu500Config {
        ats_polls,
        ..Mmu500Config::smmuv2_generic()
    };
    let fw = generic_fw(&cfg);
    let r = on_model(cfg, &fw, LinuxVersion::V6_12.behaviour());
    assert!(r
        .log
        .lines()
        .contains(&"arm-smmu 2b400000.iommu: \taddress translation ops".to_string()));
    let m = MasterInfo {
        id: DeviceId(9),
        log_name: "m".into(),
        fwspec: FwSpec { ids: vec![0x5] },
    };
    r.smmu.probe_device(&m).unwrap();
    let dom = r.smmu.domain_alloc(DomainKind::Dma).unwrap();
    r.smmu.attach_dev(dom, DeviceId(9)).unwrap();
    let pa = RAM_BASE + 0x60_0000;
    r.smmu
        .map_pages(
            dom,
            Iova::new(0x8000),
            PhysAddr::new(pa),
            PageSize::SZ_4K,
            PageCount::new(1),
            Prot::READ | Prot::WRITE,
        )
        .unwrap();
    r.bus.clear();
    r.log.clear();
    (r, dom, pa)
}

#[test]
fn iova_to_phys_polls_atsr_until_the_translation_operation_completes() {
    let (r, dom, pa) = ats_rig(2);
    let bank = u64::from(r.smmu.domain_context_bank(dom).unwrap());
    let cb = (r.model.config().num_pages() + bank) * r.model.config().page_size();
    assert_eq!(
        r.smmu
            .iova_to_phys(dom, Iova::new(0x8123))
            .map_or(0, PhysAddr::as_u64),
        pa + 0x123
    );
    assert_eq!(
        r.bus.ops(),
        vec![
            wq(cb + 0x800, 0x8000), // ATS1PR = iova & ~0xfff
            rd(cb + 0x8f0, 1),      // ATSR.ACTIVE
            rd(cb + 0x8f0, 1),
            rd(cb + 0x8f0, 0), // done
            // PAR: the PA, attribute index 0's MAIR byte 0x44 and outer shareable (SH 2), as
            // io-pgtable maps a page without IOMMU_CACHE.
            rq(cb + 0x50, pa | (0x44 << 56) | (2 << 7)),
        ]
    );
    assert!(r.log.lines().is_empty());
    // An unmapped address: PAR.F, Linux's two lines, 0.
    r.bus.clear();
    assert_eq!(
        r.smmu
            .iova_to_phys(dom, Iova::new(0x9000))
            .map_or(0, PhysAddr::as_u64),
        0
    );
    let lines = r.log.lines();
    assert_eq!(lines[0], "arm-smmu 2b400000.iommu: translation fault!");
    assert!(lines[1].starts_with("arm-smmu 2b400000.iommu: PAR = 0x"));
}

#[test]
fn iova_to_phys_falls_back_to_the_software_walk_when_atsr_stays_active() {
    // Linux polls every 5 µs for 50 µs: eleven reads. Ten ACTIVE reads still succeed...
    let (r, dom, pa) = ats_rig(10);
    assert_eq!(
        r.smmu
            .iova_to_phys(dom, Iova::new(0x8010))
            .map_or(0, PhysAddr::as_u64),
        pa + 0x10
    );
    let atsr_reads = |r: &ModelRig| {
        r.bus
            .ops()
            .iter()
            .filter(|o| o.offset & 0xfff == 0x8f0)
            .count()
    };
    assert_eq!(atsr_reads(&r), 11);
    assert!(r.log.lines().is_empty());
    // ...eleven time out: the message, and the answer of the software walk (no PAR read).
    let (r, dom, pa) = ats_rig(11);
    assert_eq!(
        r.smmu
            .iova_to_phys(dom, Iova::new(0x8010))
            .map_or(0, PhysAddr::as_u64),
        pa + 0x10
    );
    assert_eq!(atsr_reads(&r), 11);
    assert!(!r.bus.ops().iter().any(|o| o.offset & 0xfff == 0x50));
    assert_eq!(
        r.log.lines(),
        vec!["arm-smmu 2b400000.iommu: iova to phys timed out on 0x0000000000008010. Falling back to software table walk.".to_string()]
    );
    // An operation that never completes: the same fallback.
    let (r, dom, pa) = ats_rig(u32::MAX);
    assert_eq!(
        r.smmu
            .iova_to_phys(dom, Iova::new(0x8fff))
            .map_or(0, PhysAddr::as_u64),
        pa + 0xfff
    );
    let mut g = Gather::new();
    r.smmu.unmap_pages(
        dom,
        Iova::new(0x8000),
        PageSize::SZ_4K,
        PageCount::new(1),
        &mut g,
    );
    r.smmu.iotlb_sync(dom, &mut g);
}

#[test]
fn after_quiesce_the_next_kernels_rmr_step_lets_dma_bypass_until_its_reset() {
    // Kernel 1 (smmu-lab's quiesce shutdown) leaves the SMMU on with every stream faulting;
    // kernel 2 (kexec'd) probes the same SMMU while the ENETC still writes to its old IOVA.
    use arm_smmu::ShutdownPolicy;
    use mmu500::BypassReason;
    for rmr in [true, false] {
        let first = on_model(
            Mmu500Config::mmu500_ls1028a(),
            &FirmwareDesc::ls1028a(),
            LinuxVersion::V6_12
                .behaviour()
                .with_shutdown(ShutdownPolicy::Quiesce),
        );
        first.smmu.probe_device(&enetc()).unwrap();
        let dom = first.smmu.domain_alloc(DomainKind::Dma).unwrap();
        first.smmu.attach_dev(dom, DeviceId(4)).unwrap();
        let iova = 0x8000_3000; // an IOVA that is also a DRAM address
        first
            .smmu
            .map_pages(
                dom,
                Iova::new(iova),
                PhysAddr::new(RAM_BASE + 0xc0_0000),
                PageSize::SZ_4K,
                PageCount::new(1),
                Prot::WRITE,
            )
            .unwrap();
        first.smmu.shutdown(&mut || {});
        assert!(
            first
                .model
                .dma_write(ENETC_SID, Iova::new(iova), b"q")
                .is_err(),
            "quiesced"
        );

        let next = DriverBehaviour {
            rmr_bypass_at_probe: rmr,
            ..LinuxVersion::V6_12.behaviour()
        };
        let bus = Arc::new(RecordingMmio::new(first.model.clone()));
        let frames = Arc::new(
            FrameAllocator::new(
                first.mem.clone(),
                PhysAddr::new(RAM_BASE + RAM_SIZE / 2),
                RAM_SIZE / 4,
            )
            .unwrap(),
        );
        let second = ArmSmmu::probe(
            &FirmwareDesc::ls1028a(),
            ModuleParams::default(),
            next,
            SmmuEnv {
                mmio: bus.clone(),
                log: Arc::new(MemLog::new()),
                frames,
                tables: Arc::new(LpaeTables::SAFE),
                limits: Arc::new(RateLimits::default()),
            },
        )
        .unwrap();
        second.rmr_install_bypass_smr();
        let during = first.model.dma_write(ENETC_SID, Iova::new(iova), b"stray");
        second.device_reset();
        second.test_smr_masks();
        let after = first.model.dma_write(ENETC_SID, Iova::new(iova), b"late");
        let mut at_iova_as_pa = [0u8; 5];
        first
            .mem
            .read_bytes(PhysAddr::new(iova), &mut at_iova_as_pa)
            .unwrap();
        if rmr {
            // The window: untranslated, the IOVA used as a physical address.
            assert_eq!(
                during.unwrap(),
                vec![Translation::Bypass {
                    pa: iova,
                    reason: BypassReason::ClientPd
                }]
            );
            assert_eq!(&at_iova_as_pa, b"stray");
        } else {
            // Without the RMR step the quiesced configuration holds until the reset replaces it.
            assert!(during.is_err());
            assert_eq!(at_iova_as_pa, [0; 5]);
        }
        // After the reset the stream matches no SMR: USF, blocked either way.
        assert!(matches!(
            after,
            Err(BusError::Fault {
                fault: DmaFault::Global { .. },
                ..
            })
        ));
    }
}

/// Before 4e4abae311e4 the reset's TLBIALLH/TLBIALLNSNH and the global sync are stores of the
/// constant 0; after it, of the all-ones dummy value.
#[test]
fn tlb_maintenance_writes_are_zero_only_before_4e4abae311e4() {
    for zero in [true, false] {
        let b = DriverBehaviour {
            zero_tlbi_writes: zero,
            ..LinuxVersion::V6_1.behaviour()
        };
        let r = fake_with(b, ModuleParams::default());
        r.bus.clear();
        r.smmu.reset_at_probe();
        let want = if zero { 0 } else { 0xffff_ffff };
        let stores: Vec<(u64, u64)> = r
            .bus
            .writes()
            .into_iter()
            .filter(|(off, _, _)| [0x68, 0x6c, 0x70].contains(off))
            .map(|(off, v, _)| (off, v))
            .collect();
        // TLBIALLH, TLBIALLNSNH, then sTLBGSYNC.
        assert_eq!(stores, [(0x6c, want), (0x68, want), (0x70, want)]);
    }
}
