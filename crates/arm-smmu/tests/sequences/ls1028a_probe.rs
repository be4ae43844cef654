//! The LS1028A MMU-500's probe: its notices in Linux's order, the reset and SMR test writes,
//! forced stages and probe errors.

use super::*;

/// Expected reset writes (§6) for the LS1028A personality.
fn ls1028a_reset_writes(s2cr_init: u64, scr0: u64) -> Vec<W> {
    let mut e = vec![w(0x48, 0)];
    for i in 0..128 {
        e.push(w(0xc00 + 4 * i, s2cr_init));
        e.push(w(0x800 + 4 * i, 0));
    }
    for i in 0..64 {
        e.push(w(ls_cb(i), 0));
        e.push(w(ls_cb(i) + 0x58, 0xC000_01FE));
    }
    e.push(w(0x6c, 0xffff_ffff));
    e.push(w(0x68, 0xffff_ffff));
    // MMU-500 hook: r2 clears CACHE_LOCK, sets SMTNMB_TLBEN | S2CRB_TLBEN; ACTLR.CPRE cleared.
    e.push(w(0x10, 0x500));
    for i in 0..64 {
        e.push(w(ls_cb(i) + 0x4, 0));
    }
    e.push(w(0x70, 0xffff_ffff));
    e.push(w(0x0, scr0));
    e
}

#[test]
fn ls1028a_probe_notices_in_linux_order() {
    let r = ls1028a(ModuleParams::default(), ShutdownPolicy::Linux61);
    let want = prefixed(
        LS,
        &[
            "probing hardware configuration...",
            "SMMUv2 with:",
            "\tstage 1 translation",
            "\tstage 2 translation",
            "\tnested translation",
            "\tcoherent table walk",
            "\t(IDR0.CTTW overridden by FW configuration)",
            "\tstream matching with 128 register groups",
            "\t64 context banks (0 stage-2 only)",
            "\tSupported page sizes: 0x61311000",
            "\tStage-1: 48-bit VA -> 48-bit IPA",
            "\tStage-2: 48-bit IPA -> 48-bit PA",
        ],
    );
    assert_eq!(r.log.lines(), want);
    assert!(r.log.records().iter().all(|x| x.level == Level::Notice));
    // Probe reads only: no write before reset.
    assert!(r.bus.writes().is_empty());
    let c = r.smmu.config();
    assert_eq!(
        (
            c.num_mapping_groups,
            c.num_context_banks,
            c.pgshift,
            c.numpage
        ),
        (128, 64, 16, 64)
    );
    assert_eq!(c.num_context_irqs, 64);
}

#[test]
fn ls1028a_reset_and_smr_test_writes() {
    for (bypass, init, scr0) in [(true, FAULT, 0x0020_1c36), (false, BYPASS, 0x0020_1836)] {
        let params = ModuleParams {
            disable_bypass: bypass,
            force_stage: 0,
        };
        let r = ls1028a(params, ShutdownPolicy::Linux61);
        r.smmu.device_reset();
        assert_writes(
            &mmu500::Mmu500Config::mmu500_ls1028a(),
            &r.bus.writes(),
            &ls1028a_reset_writes(init, scr0),
        );
        r.bus.clear();
        r.smmu.test_smr_masks();
        assert_writes(
            &mmu500::Mmu500Config::mmu500_ls1028a(),
            &r.bus.writes(),
            &[w(0x800, 0x7fff), w(0x800, 0x7fff_0000)],
        );
        assert_eq!(r.smmu.stream_masks(), (0x7fff, 0x7fff));
    }
}

#[test]
fn force_stage_and_probe_errors() {
    let p = ModuleParams::from_cmdline("quiet arm-smmu.force_stage=1").unwrap();
    let r = ls1028a(p, ShutdownPolicy::Linux61);
    let lines = r.log.lines();
    assert!(lines.contains(&format!("{LS}: \tstage 1 translation")));
    assert!(!lines
        .iter()
        .any(|l| l.contains("stage 2") || l.contains("nested") || l.contains("Stage-2")));

    let mut fw = FirmwareDesc::ls1028a();
    fw.num_context_irqs = 4;
    let e = probe_on(
        FakeSmmu::new(IdRegs::LS1028A),
        &fw,
        ModuleParams::default(),
        ShutdownPolicy::Linux61,
        frames(),
    )
    .err()
    .unwrap();
    assert_eq!(e.to_string(), "found only 4 context irq(s) but 64 required");

    let mut fw = FirmwareDesc::ls1028a();
    fw.num_global_irqs = None;
    assert!(probe_on(
        FakeSmmu::new(IdRegs::LS1028A),
        &fw,
        ModuleParams::default(),
        ShutdownPolicy::Linux61,
        frames()
    )
    .is_err());

    let mut fw = FirmwareDesc::ls1028a();
    fw.reg_size = 0x1_0000;
    let r = probe_on(
        FakeSmmu::new(IdRegs::LS1028A),
        &fw,
        ModuleParams::default(),
        ShutdownPolicy::Linux61,
        frames(),
    )
    .unwrap();
    let warn = r
        .log
        .records()
        .into_iter()
        .find(|x| x.level == Level::Warning)
        .unwrap();
    assert_eq!(
        warn.line,
        "arm-smmu 5000000.iommu: SMMU address space size (0x800000) differs from mapped region size (0x10000)!"
    );
}
