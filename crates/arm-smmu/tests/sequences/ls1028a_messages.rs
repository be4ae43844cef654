//! The LS1028A MMU-500's log lines: the seed's global fault lines and their rate limit, the
//! context fault line, the TLB sync timeout.

use super::*;

#[test]
fn seed_global_fault_lines_and_rate_limit() {
    let r = ls1028a(ModuleParams::default(), ShutdownPolicy::Linux61);
    r.smmu.device_reset();
    r.log.clear();
    let dev = r.bus.inner();
    assert_eq!(r.smmu.handle_global_fault(), IrqReturn::None);
    dev.poke(0x48, 0x8000_0002);
    dev.poke(0x50, 0x2);
    dev.poke(0x54, 0x429);
    assert_eq!(r.smmu.handle_global_fault(), IrqReturn::Handled);
    assert_eq!(
        r.log.lines(),
        prefixed(
            LS,
            &[
                "Blocked unknown Stream ID 0x429; boot with \"arm-smmu.disable_bypass=0\" to allow, but this may have security implications",
                "\tGFSR 0x80000002, GFSYNR0 0x00000002, GFSYNR1 0x00000429, GFSYNR2 0x00000000",
            ]
        )
    );
    assert!(r.log.records().iter().all(|x| x.level == Level::Err));
    assert_eq!(
        dev.peek(0x48),
        0,
        "sGFSR cleared by writing back what was read"
    );
    // Non-USF faults use the other first line.
    dev.poke(0x48, 0x4);
    r.smmu.handle_global_fault();
    assert_eq!(
        r.log.lines()[2],
        format!("{LS}: Unexpected global fault, this could be serious")
    );
    // Burst of 10 per 5 s: 12 more faults print 8 more pairs (10 in all), then time passes.
    for _ in 0..12 {
        dev.poke(0x48, 0x2);
        r.smmu.handle_global_fault();
    }
    assert_eq!(r.log.lines().len(), 20);
    r.log.advance_ns(5_000_000_000);
    dev.poke(0x48, 0x2);
    r.smmu.handle_global_fault();
    assert_eq!(r.log.lines().len(), 22);
}

#[test]
fn context_fault_line() {
    let (r, _dom, _) = ls1028a_attached(ShutdownPolicy::Linux61);
    let dev = r.bus.inner();
    assert_eq!(r.smmu.handle_context_fault(0), IrqReturn::None);
    assert_eq!(
        r.smmu.handle_context_fault(5),
        IrqReturn::None,
        "unowned bank"
    );
    dev.poke(ls_cb(0) + 0x58, 0x2);
    dev.poke(ls_cb(0) + 0x68, 0x10);
    dev.poke(ls_cb(0) + 0x60, 0x1000_0000);
    dev.poke(0x1_0400, 0x29);
    assert_eq!(r.smmu.handle_context_fault(0), IrqReturn::Handled);
    assert_eq!(
        r.log.lines().last().unwrap(),
        "arm-smmu 5000000.iommu: Unhandled context fault: fsr=0x2, iova=0x10000000, fsynr=0x10, cbfrsynra=0x29, cb=0"
    );
    assert_eq!(dev.peek(ls_cb(0) + 0x58), 0);
}

#[test]
fn tlb_sync_timeout_message() {
    let r = probe_on(
        FakeSmmu::new(IdRegs::LS1028A).with_stuck_sync(),
        &FirmwareDesc::ls1028a(),
        ModuleParams::default(),
        ShutdownPolicy::Linux61,
        frames(),
    )
    .unwrap();
    r.smmu.device_reset();
    let status_reads = r
        .bus
        .ops()
        .iter()
        .filter(|o| !o.write && o.offset == 0x74)
        .count();
    assert_eq!(status_reads, 200, "20 rounds of 10 polls");
    assert_eq!(
        r.log.lines().last().unwrap(),
        "arm-smmu 5000000.iommu: TLB sync timed out -- SMMU may be deadlocked"
    );
    // sCR0 is still written after the timeout.
    assert_eq!(r.bus.writes().last(), Some(&w(0, 0x0020_1c36)));
}
