//! The event and global-error handlers, driven by the model's interrupts, print Linux's lines.

mod common;

use arm_smmu_v3::{KernelVersion, ShutdownPolicy};
use common::*;
use iommu::{DeviceId, DomainKind, IommuDriver, Prot};
use smmu_addr::{Iova, PageCount, PageSize, PhysAddr};
use smmuv3::{Access, Mmio, SmmuV3Config};
use smmuv3_arch::regs;

#[test]
fn translation_fault_event_is_printed() {
    for v in [KernelVersion::V6_1, KernelVersion::V6_12] {
        let r = rig(SmmuV3Config::qemu_virt(), v, ShutdownPolicy::Linux62);
        r.smmu
            .probe_device(&master(1, "e1000e 0000:00:01.0", &[8]))
            .unwrap();
        let d = r.smmu.domain_alloc(DomainKind::Dma).unwrap();
        r.smmu.attach_dev(d, DeviceId(1)).unwrap();
        r.smmu
            .map_pages(
                d,
                Iova::new(0xffff_f000),
                PhysAddr::new(RAM + 0x10_0000),
                PageSize::SZ_4K,
                PageCount::new(1),
                Prot::READ,
            )
            .unwrap();
        r.log.clear();
        // A read of an unmapped IOVA: F_TRANSLATION (CD.R is set), delivered on the eventq line.
        r.model.translate(8, Iova::new(0xdead_0000), Access::Read);
        // A StreamID with no level-2 table: C_BAD_STREAMID.
        r.model.translate(0x300, Iova::new(0x1000), Access::Write);
        assert_eq!(
            r.log.lines(),
            prefixed(&[
                "event 0x10 received:",
                "\t0x0000000800000010",
                "\t0x0000020800000000",
                "\t0x00000000dead0000",
                "\t0x0000000000000000",
                "event 0x02 received:",
                "\t0x0000030000000002",
                "\t0x0000000000000000",
                "\t0x0000000000000000",
                "\t0x0000000000000000",
            ]),
            "{v:?}"
        );
        // Consumed: CONS caught up with PROD.
        assert_eq!(
            r.model.read32(regs::EVTQ_CONS),
            r.model.read32(regs::EVTQ_PROD)
        );
    }
}

#[test]
fn event_storm_is_rate_limited_and_overflow_reported() {
    let r = rig(
        SmmuV3Config::s1s2_msi(),
        KernelVersion::V6_1,
        ShutdownPolicy::Linux62,
    );
    // Interrupts held off (as while the CPU that would take them is busy): 200 bad StreamIDs
    // into a 128-entry queue.
    r.model.clear_irq_handler();
    for i in 0..200u32 {
        r.model.translate(0x1000 + i, Iova::new(0), Access::Read);
    }
    r.log.clear();
    r.smmu.evtq_thread();
    let lines = r.log.lines();
    let received = lines.iter().filter(|l| l.ends_with("received:")).count();
    assert_eq!(received, 10, "DEFAULT_RATELIMIT_BURST");
    // The thread first finds its copy of PROD stale, re-reads it and sees OVFLG toggled: the
    // overflow is reported before the records are.
    assert_eq!(
        lines[0],
        format!("{PREFIX}: EVTQ overflow detected -- events lost")
    );
    assert_eq!(lines.iter().filter(|l| l.contains("overflow")).count(), 1);
    let prod = r.model.read32(regs::EVTQ_PROD);
    let cons = r.model.read32(regs::EVTQ_CONS);
    assert_eq!(
        prod, cons,
        "caught up and overflow acknowledged (OVACKFLG = OVFLG)"
    );
    assert_ne!(prod & regs::q_idx::OVF, 0);
    assert_eq!(r.model.counters().events_lost, 72);
}

#[test]
fn illegal_command_is_skipped_by_the_gerror_handler() {
    let r = rig(
        SmmuV3Config::qemu_virt(),
        KernelVersion::V6_1,
        ShutdownPolicy::Linux62,
    );
    r.log.clear();
    // Someone (a buggy path) publishes an illegal command behind the driver's back.
    let q = r.smmu.cmdq();
    let slot = q.base.checked_add(u64::from(q.prod) * 16).unwrap();
    r.mem.write_u64(slot, 0x7f).unwrap();
    r.mem
        .write_u64(slot.checked_add(8).unwrap(), 0x1234)
        .unwrap();
    r.model.write32(regs::CMDQ_PROD, q.prod + 1);
    assert_eq!(
        r.log.lines(),
        prefixed(&[
            "unexpected global error reported (0x00000001), this could be serious",
            "CMDQ error (cons 0x01000004): Illegal command",
            "skipping command in error state:",
            "\t0x000000000000007f",
            "\t0x0000000000001234",
        ])
    );
    // The command became a CMD_SYNC and the queue moved on.
    assert_eq!(r.model.read32(regs::CMDQ_CONS), 5);
    assert_eq!(r.model.read32(regs::GERROR), r.model.read32(regs::GERRORN));
}
