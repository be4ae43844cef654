//! Probe and reset per version: the RMR boot-mapping step (on the fake, and after a quiesce on
//! the model, where it lets DMA bypass until the reset), and the TLB maintenance stores' value.

use super::*;

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
                    pa: PhysAddr::new(iova),
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
        use smmu_arch::regs::{
            gr0::{STLBGSYNC, TLBIALLH, TLBIALLNSNH},
            DUMMY_VAL,
        };
        let want = if zero { 0 } else { DUMMY_VAL.into() };
        let stores: Vec<(u64, u64)> = r
            .bus
            .writes()
            .into_iter()
            .filter(|(off, _, _)| [TLBIALLNSNH, TLBIALLH, STLBGSYNC].contains(off))
            .map(|(off, v, _)| (off, v))
            .collect();
        assert_eq!(
            stores,
            [(TLBIALLH, want), (TLBIALLNSNH, want), (STLBGSYNC, want)]
        );
    }
}
