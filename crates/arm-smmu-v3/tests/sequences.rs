//! Probe, attach, unmap and shutdown, register write by register write and command by command,
//! per kernel version, against our reading of Linux's arm-smmu-v3.c (v6.1 and v6.12).

mod common;

use arm_smmu_v3::{KernelVersion, ShutdownPolicy};
use common::*;
use iommu::{DeviceId, DomainKind, Gather, IommuDriver, Prot};
use smmu_addr::{Iova, PageCount, PageSize, PhysAddr};
use smmuv3::{AbortReason, Access, BypassReason, Outcome, SmmuV3Config};

const SYNC: &str = "CMD_SYNC cs=sev msiaddr=0x0 msidata=0x0";

/// `arm_smmu_device_reset` on the QEMU preset: every access in order (v6.1 and v6.12 agree).
fn qemu_reset_trace(iidr: bool) -> Vec<String> {
    let mut v = vec![
        "R32 0x00000 IDR0 0x0d44101a",
        "R32 0x00004 IDR1 0x02730010",
        "R32 0x0000c IDR3 0x00000404",
        "R32 0x00014 IDR5 0x00000074",
    ];
    if iidr {
        v.push("R32 0x00018 IIDR 0x00000000");
    }
    v.extend([
        // Clear CR0 and wait for the acknowledgement.
        "R32 0x00020 CR0 0x00000000",
        "W32 0x00020 CR0 0x00000000",
        "R32 0x00024 CR0ACK 0x00000000",
        // CR1: tables and queues WB, inner shareable; CR2: PTM | RECINVSID.
        "W32 0x00028 CR1 0x00000d75",
        "W32 0x0002c CR2 0x00000006",
        // 2-level stream table: RA | L1 address; FMT 2LVL, SPLIT 8, LOG2SIZE 16.
        "W64 0x00080 STRTAB_BASE 0x4000000040800000",
        "W32 0x00088 STRTAB_BASE_CFG 0x00010210",
        // 2^18-entry command queue (CMDQS 19 capped by the 4 MiB allocation limit).
        "W64 0x00090 CMDQ_BASE 0x4000000040000012",
        "W32 0x00098 CMDQ_PROD 0x00000000",
        "W32 0x0009c CMDQ_CONS 0x00000000",
        "W32 0x00020 CR0 0x00000008",
        "R32 0x00024 CR0ACK 0x00000008",
        "W32 0x00098 CMDQ_PROD 0x00000002",
        "CMD CMD_CFGI_ALL",
        "CMD CMD_SYNC cs=sev msiaddr=0x0 msidata=0x0",
        "R32 0x0009c CMDQ_CONS 0x00000002",
        "W32 0x00098 CMDQ_PROD 0x00000004",
        "CMD CMD_TLBI_NSNH_ALL",
        "CMD CMD_SYNC cs=sev msiaddr=0x0 msidata=0x0",
        "R32 0x0009c CMDQ_CONS 0x00000004",
        // 2^17-entry event queue, then EVTQEN.
        "W64 0x000a0 EVENTQ_BASE 0x4000000040400011",
        "W32 0x100a8 EVENTQ_PROD 0x00000000",
        "W32 0x100ac EVENTQ_CONS 0x00000000",
        "W32 0x00020 CR0 0x0000000c",
        "R32 0x00024 CR0ACK 0x0000000c",
        // arm_smmu_setup_irqs: disable, clear the MSI addresses (wired lines), enable.
        "W32 0x00050 IRQ_CTRL 0x00000000",
        "R32 0x00054 IRQ_CTRLACK 0x00000000",
        "W64 0x00068 GERROR_IRQ_CFG0 0x0000000000000000",
        "W64 0x000b0 EVENTQ_IRQ_CFG0 0x0000000000000000",
        "W32 0x00050 IRQ_CTRL 0x00000005",
        "R32 0x00054 IRQ_CTRLACK 0x00000005",
        // SMMUEN last.
        "W32 0x00020 CR0 0x0000000d",
        "R32 0x00024 CR0ACK 0x0000000d",
    ]);
    v.into_iter().map(String::from).collect()
}

#[test]
fn probe_on_qemu_virt_v6_1() {
    let r = rig(
        SmmuV3Config::qemu_virt(),
        KernelVersion::V6_1,
        ShutdownPolicy::Linux62,
    );
    assert_eq!(r.bus.lines(), qemu_reset_trace(false));
    assert_eq!(
        r.log.lines(),
        prefixed(&[
            "ias 44-bit, oas 44-bit (features 0x00008305)",
            "allocated 262144 entries for cmdq",
            "allocated 131072 entries for evtq",
        ])
    );
}

#[test]
fn probe_on_qemu_virt_v6_12_reads_iidr() {
    let r = rig(
        SmmuV3Config::qemu_virt(),
        KernelVersion::V6_12,
        ShutdownPolicy::Linux62,
    );
    assert_eq!(r.bus.lines(), qemu_reset_trace(true));
}

#[test]
fn queues_shrink_when_memory_is_short() {
    // 7 MiB of frames: the 4 MiB command queue fits, the 4 MiB event queue is halved.
    let r = rig_with(
        SmmuV3Config::qemu_virt(),
        KernelVersion::V6_1,
        ShutdownPolicy::Linux62,
        arm_smmu_v3::FirmwareDesc::qemu_virt(),
        7 << 20,
    );
    assert_eq!(
        r.log.lines()[1..],
        prefixed(&[
            "allocated 262144 entries for cmdq",
            "allocated 65536 entries for evtq"
        ])[..]
    );
}

#[test]
fn probe_with_msi_and_sev_uses_msi_polling() {
    let r = rig(
        SmmuV3Config::s1s2_msi(),
        KernelVersion::V6_1,
        ShutdownPolicy::Linux62,
    );
    assert_eq!(
        r.log.lines(),
        prefixed(&[
            // 2LVL_STRTAB|2LVL_CDTAB|TT_LE|SEV|MSI|COHERENCY|TRANS_S1|TRANS_S2|RANGE_INV|NESTING
            "ias 48-bit, oas 48-bit (features 0x000887c7)",
            "allocated 256 entries for cmdq",
            "allocated 128 entries for evtq",
            "msi_domain absent - falling back to wired irqs",
        ])
    );
    // CMD_SYNC completes by an MSI write of 0 into its own queue slot (MSIPOLL): no CONS poll.
    let cmds = r.bus.commands();
    assert_eq!(
        cmds[1],
        format!(
            "CMD_SYNC cs=irq msiaddr={:#x} msidata=0x0",
            r.smmu.cmdq().base.as_u64() + 16
        )
    );
    assert!(!r.bus.lines().iter().any(|l| l.starts_with("R32 0x0009c")));
}

/// Attach a fresh DMA domain to a master with StreamID 8 and map one page.
fn attach(r: &Rig) -> iommu::DriverDomain {
    r.smmu
        .probe_device(&master(1, "e1000e 0000:00:01.0", &[8]))
        .unwrap();
    let d = r.smmu.domain_alloc(DomainKind::Dma).unwrap();
    r.bus.clear();
    r.smmu.attach_dev(d, DeviceId(1)).unwrap();
    d
}

#[test]
fn attach_commands_v6_1() {
    let r = rig(
        SmmuV3Config::qemu_virt(),
        KernelVersion::V6_1,
        ShutdownPolicy::Linux62,
    );
    attach(&r);
    assert_eq!(
        r.bus.commands(),
        [
            // arm_smmu_write_ctx_desc before the master joins the domain: empty CFGI_CD batches.
            SYNC,
            SYNC,
            // arm_smmu_write_strtab_ent: dwords 1.., sync, dword 0, sync, prefetch.
            "CMD_CFGI_STE sid=0x8 leaf=1",
            SYNC,
            "CMD_CFGI_STE sid=0x8 leaf=1",
            SYNC,
            "CMD_PREFETCH_CONFIG sid=0x8",
        ]
    );
    // Only queue traffic: PROD writes and CONS polls.
    assert!(r.bus.writes().iter().all(|w| w.contains("CMDQ_PROD")));
}

#[test]
fn attach_commands_v6_12() {
    let r = rig(
        SmmuV3Config::qemu_virt(),
        KernelVersion::V6_12,
        ShutdownPolicy::Linux62,
    );
    attach(&r);
    assert_eq!(
        r.bus.commands(),
        [
            // arm_smmu_write_cd_entry, hitless: unused bits (sync), critical qword 0 (sync).
            "CMD_CFGI_CD sid=0x8 ssid=0x0 leaf=1",
            SYNC,
            "CMD_CFGI_CD sid=0x8 ssid=0x0 leaf=1",
            SYNC,
            // arm_smmu_write_ste from abort, hitless: unused bits, critical qword; then prefetch.
            "CMD_CFGI_STE sid=0x8 leaf=1",
            SYNC,
            "CMD_CFGI_STE sid=0x8 leaf=1",
            SYNC,
            "CMD_PREFETCH_CONFIG sid=0x8",
        ]
    );
}

#[test]
fn ste_and_cd_values_are_linux_values() {
    for v in [KernelVersion::V6_1, KernelVersion::V6_12] {
        let r = rig(SmmuV3Config::qemu_virt(), v, ShutdownPolicy::Linux62);
        attach(&r);
        let pa = r.smmu.ste_address(8).unwrap();
        let s: Vec<u64> = (0..4)
            .map(|i| r.mem.read_u64(pa.checked_add(8 * i).unwrap()).unwrap())
            .collect();
        // V | Config S1 | S1ContextPtr; S1DSS SSID0 | S1CIR/S1COR WBRA | S1CSH ISH.
        assert_eq!(s[0] & 0xf, 0xb, "{v:?}");
        assert_eq!(s[1], 0xd6, "{v:?}");
        assert_eq!((s[2], s[3]), (0, 0));
        let cd = s[0] & smmuv3_arch::ste::S1CTXPTR_MASK;
        let d0 = r.mem.read_u64(PhysAddr::new(cd)).unwrap();
        // ASID 1 | ASET | A | R | AA64 | IPS 44-bit | V | EPD1 | SH ISH | ORGN/IRGN WBWA | T0SZ 16.
        assert_eq!(d0, 0x0001_e204_c000_3510, "{v:?}");
        // Linux copies io-pgtable's MAIR, sign-extended to 0xfffffffff404ff44 (see pgtable::MAIR).
        assert_eq!(
            r.mem.read_u64(PhysAddr::new(cd + 24)).unwrap(),
            0xffff_ffff_f404_ff44,
            "MAIR"
        );
    }
}

#[test]
fn unmap_invalidates_by_range_then_dma_faults() {
    for v in [KernelVersion::V6_1, KernelVersion::V6_12] {
        let r = rig(SmmuV3Config::qemu_virt(), v, ShutdownPolicy::Linux62);
        let d = attach(&r);
        r.smmu
            .map_pages(
                d,
                Iova::new(0x10_0000),
                PhysAddr::new(RAM + 0x80_0000),
                PageSize::SZ_4K,
                PageCount::new(4),
                Prot::READ | Prot::WRITE,
            )
            .unwrap();
        assert_eq!(
            r.model.translate(8, Iova::new(0x10_3008), Access::Write),
            Outcome::Translated {
                pa: PhysAddr::new(RAM + 0x80_3008)
            }
        );
        r.bus.clear();
        let mut g = Gather::new();
        assert_eq!(
            r.smmu.unmap_pages(
                d,
                Iova::new(0x10_0000),
                PageSize::SZ_4K,
                PageCount::new(4),
                &mut g
            ),
            0x4000
        );
        r.smmu.iotlb_sync(d, &mut g);
        // RIL: one command for 4 pages: NUM 0, SCALE 2, TG 4K, TTL 3 (leaf at level 3).
        assert_eq!(
            r.bus.commands(),
            [
                "CMD_TLBI_NH_VA vmid=0 asid=1 addr=0x100000 leaf=1 num=0 scale=2 tg=1 ttl=3",
                SYNC
            ]
        );
        assert_eq!(
            r.model.translate(8, Iova::new(0x10_3008), Access::Write),
            Outcome::Aborted(AbortReason::Event(0x10))
        );
    }
}

#[test]
fn unmap_without_range_invalidation_is_one_command_per_page() {
    let mut cfg = SmmuV3Config::qemu_virt();
    cfg.idr[3] = 0;
    let r = rig(cfg, KernelVersion::V6_1, ShutdownPolicy::Linux62);
    let d = attach(&r);
    r.smmu
        .map_pages(
            d,
            Iova::new(0x10_0000),
            PhysAddr::new(RAM + 0x80_0000),
            PageSize::SZ_4K,
            PageCount::new(3),
            Prot::READ,
        )
        .unwrap();
    r.bus.clear();
    let mut g = Gather::new();
    r.smmu.unmap_pages(
        d,
        Iova::new(0x10_0000),
        PageSize::SZ_4K,
        PageCount::new(3),
        &mut g,
    );
    r.smmu.iotlb_sync(d, &mut g);
    let va = |a: u64| {
        format!("CMD_TLBI_NH_VA vmid=0 asid=1 addr={a:#x} leaf=1 num=0 scale=0 tg=0 ttl=0")
    };
    assert_eq!(
        r.bus.commands(),
        [va(0x10_0000), va(0x10_1000), va(0x10_2000), SYNC.into()]
    );
    r.bus.clear();
    r.smmu.flush_iotlb_all(d);
    assert_eq!(r.bus.commands(), ["CMD_TLBI_NH_ASID vmid=0 asid=1", SYNC]);
}

#[test]
fn shutdown_sequences_and_what_dma_does_next() {
    // (policy, preset, expected register writes, outcome of the NIC's next DMA)
    let cases = [
        (
            ShutdownPolicy::Linux62,
            SmmuV3Config::qemu_virt(),
            vec!["W32 0x00020 CR0 0x00000000"],
            Outcome::Bypassed {
                pa: PhysAddr::new(0x10_0000),
                why: BypassReason::Disabled,
            },
        ),
        (
            ShutdownPolicy::Linux62,
            SmmuV3Config::s1s2_msi(),
            vec!["W32 0x00020 CR0 0x00000000"],
            Outcome::Aborted(AbortReason::GlobalAbort),
        ),
        (
            ShutdownPolicy::Quiesce,
            SmmuV3Config::qemu_virt(),
            vec![
                "W32 0x00098 CMDQ_PROD 0x0000000f",
                "W32 0x00044 GBPA 0x80101000",
                "W32 0x00020 CR0 0x00000000",
            ],
            Outcome::Aborted(AbortReason::GlobalAbort),
        ),
    ];
    for (policy, cfg, writes, dma) in cases {
        let r = rig(cfg, KernelVersion::V6_12, policy);
        let d = attach(&r);
        r.smmu
            .map_pages(
                d,
                Iova::new(0x10_0000),
                PhysAddr::new(RAM + 0x80_0000),
                PageSize::SZ_4K,
                PageCount::new(1),
                Prot::READ | Prot::WRITE,
            )
            .unwrap();
        r.bus.clear();
        r.smmu.shutdown(&mut || panic!("only Linux61 unregisters"));
        let w: Vec<String> = r.bus.writes();
        assert_eq!(w, writes, "{policy:?}");
        assert_eq!(
            r.model.translate(8, Iova::new(0x10_0000), Access::Write),
            dma,
            "{policy:?}"
        );
    }
}

#[test]
fn linux61_shutdown_unregisters_first() {
    let r = rig(
        SmmuV3Config::qemu_virt(),
        KernelVersion::V6_1,
        ShutdownPolicy::Linux61,
    );
    attach(&r);
    r.bus.clear();
    let smmu = r.smmu.clone();
    // The core's unregister releases every master: the STE goes back to abort.
    r.smmu.shutdown(&mut || smmu.release_device(DeviceId(1)));
    assert_eq!(r.bus.commands(), ["CMD_CFGI_STE sid=0x8 leaf=1", SYNC]);
    assert_eq!(r.bus.writes().last().unwrap(), "W32 0x00020 CR0 0x00000000");
    // QEMU's GBPA bypasses: in-flight DMA lands at the IOVA as a physical address.
    assert!(matches!(
        r.model.translate(8, Iova::new(0x10_0000), Access::Write),
        Outcome::Bypassed { .. }
    ));
}

#[test]
fn identity_domain_commands_per_version() {
    // v6.1: the bypass branch writes dwords 0-2 and syncs once, no prefetch.
    // v6.12: abort -> bypass changes qword 1 (SHCFG, unused by abort) then qword 0: two syncs.
    let cases = [
        (
            KernelVersion::V6_1,
            vec!["CMD_CFGI_STE sid=0x8 leaf=1", SYNC],
        ),
        (
            KernelVersion::V6_12,
            vec![
                "CMD_CFGI_STE sid=0x8 leaf=1",
                SYNC,
                "CMD_CFGI_STE sid=0x8 leaf=1",
                SYNC,
                "CMD_PREFETCH_CONFIG sid=0x8",
            ],
        ),
    ];
    for (v, want) in cases {
        let r = rig(SmmuV3Config::qemu_virt(), v, ShutdownPolicy::Linux62);
        r.smmu
            .probe_device(&master(1, "e1000e 0000:00:01.0", &[8]))
            .unwrap();
        let d = r.smmu.domain_alloc(DomainKind::Identity).unwrap();
        r.bus.clear();
        r.smmu.attach_dev(d, DeviceId(1)).unwrap();
        assert_eq!(r.bus.commands(), want, "{v:?}");
        assert_eq!(
            r.model.translate(8, Iova::new(0x1234), Access::Read),
            Outcome::Bypassed {
                pa: PhysAddr::new(0x1234),
                why: BypassReason::Ste
            }
        );
    }
}

#[test]
fn blocked_domain_is_v6_12_only() {
    let r = rig(
        SmmuV3Config::qemu_virt(),
        KernelVersion::V6_1,
        ShutdownPolicy::Linux62,
    );
    assert_eq!(
        r.smmu.domain_alloc(DomainKind::Blocked),
        Err(iommu::DriverError::NotSupported)
    );
    let r = rig(
        SmmuV3Config::qemu_virt(),
        KernelVersion::V6_12,
        ShutdownPolicy::Linux62,
    );
    let d = attach(&r);
    let b = r.smmu.domain_alloc(DomainKind::Blocked).unwrap();
    r.bus.clear();
    r.smmu.attach_dev(b, DeviceId(1)).unwrap();
    // S1 -> abort: the critical qword 0 first (sync), then qword 1 cleared (sync), prefetch.
    assert_eq!(
        r.bus.commands(),
        [
            "CMD_CFGI_STE sid=0x8 leaf=1",
            SYNC,
            "CMD_CFGI_STE sid=0x8 leaf=1",
            SYNC,
            "CMD_PREFETCH_CONFIG sid=0x8"
        ]
    );
    assert_eq!(
        r.model.translate(8, Iova::new(0x1234), Access::Read),
        Outcome::Aborted(AbortReason::SteAbort)
    );
    let _ = d;
}

/// `.shutdown` of every policy on both driver versions, write by write and command by command
/// (the core's unregister releases the one master, as the IOMMU core would), and the STE it
/// leaves for StreamID 8: v6.1's release rewrites the STE in place (one CFGI_STE), v6.12's
/// blocked-domain attach makes a breaking update (two CFGI_STEs, then the prefetch); v6.2's fix
/// is one write on either; quiesce aborts every STE (memory writes), drops every cached
/// configuration, sets GBPA.ABORT and only then clears CR0.
#[test]
fn shutdown_sequences_per_version_and_policy() {
    let disable = "W32 0x00020 CR0 0x00000000";
    let cases: [(KernelVersion, ShutdownPolicy, Vec<&str>); 6] = [
        (
            KernelVersion::V6_1,
            ShutdownPolicy::Linux61,
            vec![
                "W32 0x00098 CMDQ_PROD 0x0000000d",
                "CMD CMD_CFGI_STE sid=0x8 leaf=1",
                "CMD CMD_SYNC cs=sev msiaddr=0x0 msidata=0x0",
                disable,
            ],
        ),
        (KernelVersion::V6_1, ShutdownPolicy::Linux62, vec![disable]),
        (
            KernelVersion::V6_1,
            ShutdownPolicy::Quiesce,
            vec![
                "W32 0x00098 CMDQ_PROD 0x0000000d",
                "CMD CMD_CFGI_ALL",
                "CMD CMD_SYNC cs=sev msiaddr=0x0 msidata=0x0",
                "W32 0x00044 GBPA 0x80101000",
                disable,
            ],
        ),
        (
            KernelVersion::V6_12,
            ShutdownPolicy::Linux61,
            vec![
                "W32 0x00098 CMDQ_PROD 0x0000000f",
                "CMD CMD_CFGI_STE sid=0x8 leaf=1",
                "CMD CMD_SYNC cs=sev msiaddr=0x0 msidata=0x0",
                "W32 0x00098 CMDQ_PROD 0x00000011",
                "CMD CMD_CFGI_STE sid=0x8 leaf=1",
                "CMD CMD_SYNC cs=sev msiaddr=0x0 msidata=0x0",
                "W32 0x00098 CMDQ_PROD 0x00000012",
                "CMD CMD_PREFETCH_CONFIG sid=0x8",
                disable,
            ],
        ),
        (KernelVersion::V6_12, ShutdownPolicy::Linux62, vec![disable]),
        (
            KernelVersion::V6_12,
            ShutdownPolicy::Quiesce,
            vec![
                "W32 0x00098 CMDQ_PROD 0x0000000f",
                "CMD CMD_CFGI_ALL",
                "CMD CMD_SYNC cs=sev msiaddr=0x0 msidata=0x0",
                "W32 0x00044 GBPA 0x80101000",
                disable,
            ],
        ),
    ];
    for (v, policy, expected) in cases {
        let r = rig(SmmuV3Config::qemu_virt(), v, policy);
        attach(&r);
        r.bus.clear();
        let smmu = r.smmu.clone();
        r.smmu.shutdown(&mut || smmu.release_device(DeviceId(1)));
        let got: Vec<String> = r
            .bus
            .lines()
            .into_iter()
            .filter(|l| l.starts_with('W') || l.starts_with("CMD"))
            .collect();
        assert_eq!(got, expected, "{v:?} {policy:?}");
        // STE.V (bit 0) and STE.Config (bits 3:1) of StreamID 8 afterwards.
        let ste = r.smmu.ste_address(8).expect("an L2 table for SID 8");
        let dw0 = r.mem.read_u64(ste).unwrap();
        let (valid, config) = (dw0 & 1, (dw0 >> 1) & 7);
        let want = match policy {
            // Released (abort, disable_bypass) or quiesced: valid, Config = abort.
            ShutdownPolicy::Linux61 | ShutdownPolicy::Quiesce => (1, 0),
            // 32ea2c57dc21 leaves the translating STE (S1 translate, bypass S2) in place.
            ShutdownPolicy::Linux62 => (1, 0b101),
        };
        assert_eq!((valid, config), want, "{v:?} {policy:?}");
    }
}
