//! The context fault handler per version: which registers it reads, in which order, and the
//! lines it prints.

use super::*;

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
