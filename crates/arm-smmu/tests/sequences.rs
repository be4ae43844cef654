//! Register writes of probe/reset, attach, map/unmap and shutdown, write by write, against what
//! Linux writes (reference arm-smmu-v2.md §6, §7, §8.4, §9, §13), on three configurations: the
//! LS1028A MMU-500, an MMU-401 and a stream-indexing SMMUv2. Also the probe notices, fault
//! handler lines and the TLB sync timeout.

mod common;

use arm_smmu::testing::{BusOp, FakeSmmu, IdRegs};
use arm_smmu::{FirmwareDesc, ModuleParams, ShutdownPolicy};
use common::*;
use iommu::{
    DeviceId, DomainKind, DriverError, FwSpec, Gather, IommuDriver, MasterInfo, PgTableError, Prot,
};
use klog::Level;
use smmu_addr::{Iova, PageCount, PageSize, PhysAddr};
use smmu_arch::IrqReturn;

type W = (u64, u64, u8);

const LS: &str = "arm-smmu 5000000.iommu";
const FAULT: u64 = 0x2_0000;
const BYPASS: u64 = 0x1_0000;

fn w(off: u64, v: u64) -> W {
    (off, v, 32)
}
fn q(off: u64, v: u64) -> W {
    (off, v, 64)
}

fn master(id: u32, name: &str, ids: &[u32]) -> MasterInfo {
    MasterInfo {
        id: DeviceId(id),
        log_name: name.into(),
        fwspec: FwSpec { ids: ids.to_vec() },
    }
}

fn ls_cb(i: u64) -> u64 {
    0x40_0000 + i * 0x1_0000
}

fn ls1028a(params: ModuleParams, policy: ShutdownPolicy) -> Rig<FakeSmmu> {
    fake(IdRegs::LS1028A, &FirmwareDesc::ls1028a(), params, policy)
}

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

/// Probe, reset, a master with SID 0x29 / mask 0x7c00, and a DMA domain attached to it.
fn ls1028a_attached(policy: ShutdownPolicy) -> (Rig<FakeSmmu>, iommu::DriverDomain, u64) {
    let r = ls1028a(ModuleParams::default(), policy);
    r.smmu.device_reset();
    r.smmu.test_smr_masks();
    r.bus.clear();
    r.smmu
        .probe_device(&master(1, "fsl_enetc 0000:00:00.0", &[0x7c00_0029]))
        .unwrap();
    assert_writes(
        &mmu500::Mmu500Config::mmu500_ls1028a(),
        &r.bus.writes(),
        &[w(0xc00, FAULT), w(0x800, 0xfc00_0029)],
    );
    r.bus.clear();
    let dom = r.smmu.domain_alloc(DomainKind::Dma).unwrap();
    r.smmu.attach_dev(dom, DeviceId(1)).unwrap();
    let writes = r.bus.writes();
    let pgd = writes
        .iter()
        .find(|x| x.0 == ls_cb(0) + 0x20)
        .map(|x| x.1)
        .unwrap();
    assert_eq!(pgd & 0xfff, 0);
    assert!((PT_BASE..RAM_BASE + RAM_SIZE).contains(&pgd));
    let cb = ls_cb(0);
    assert_eq!(
        writes,
        vec![
            w(0x1_0800, 0x1),          // CBA2R: VA64
            w(0x1_0000, 0x0001_f300),  // CBAR: S1_TRANS_S2_BYPASS, NSH, WB
            w(cb + 0x10, 0x0003_8015), // TCR2
            w(cb + 0x30, 0x0080_3510), // TCR
            q(cb + 0x20, pgd),         // TTBR0 (ASID 0)
            q(cb + 0x28, 0),           // TTBR1
            w(cb + 0x38, 0xf404_ff44), // MAIR0
            w(cb + 0x3c, 0xffff_ffff), // MAIR1: Linux's sign-extended 0xf4 << 24
            w(cb, 0x1067),             // SCTLR
            w(0xc00, 0x0),             // S2CR(0): TRANS to CB 0
        ]
    );
    r.bus.clear();
    (r, dom, pgd)
}

#[test]
fn ls1028a_attach_map_unmap_flush() {
    let (r, dom, _) = ls1028a_attached(ShutdownPolicy::Linux61);
    let s = &r.smmu;
    let iova = 0x1000_0000;
    let pa = RAM_BASE + 0x5000;
    assert_eq!(
        s.map_pages(
            dom,
            Iova::new(iova),
            PhysAddr::new(pa),
            PageSize::SZ_4K,
            PageCount::new(1),
            Prot::READ | Prot::WRITE
        ),
        Ok(0x1000)
    );
    assert!(r.bus.writes().is_empty(), "map issues no register write");
    // LS1028A preset has ATOSNS set: software walk, no register access.
    assert_eq!(
        s.iova_to_phys(dom, Iova::new(iova + 0x123))
            .map_or(0, PhysAddr::as_u64),
        pa + 0x123
    );
    assert!(r.bus.ops().is_empty());
    let mut g = Gather::new();
    assert_eq!(
        s.unmap_pages(
            dom,
            Iova::new(iova),
            PageSize::SZ_4K,
            PageCount::new(1),
            &mut g
        ),
        0x1000
    );
    assert_writes(
        &mmu500::Mmu500Config::mmu500_ls1028a(),
        &r.bus.writes(),
        &[q(ls_cb(0) + 0x620, iova >> 12)],
    );
    s.iotlb_sync(dom, &mut g);
    assert_writes(
        &mmu500::Mmu500Config::mmu500_ls1028a(),
        &r.bus.writes(),
        &[
            q(ls_cb(0) + 0x620, iova >> 12),
            w(ls_cb(0) + 0x7f0, 0xffff_ffff),
        ],
    );
    assert_eq!(
        s.iova_to_phys(dom, Iova::new(iova))
            .map_or(0, PhysAddr::as_u64),
        0
    );
    r.bus.clear();
    s.flush_iotlb_all(dom);
    assert_writes(
        &mmu500::Mmu500Config::mmu500_ls1028a(),
        &r.bus.writes(),
        &[w(ls_cb(0) + 0x610, 0), w(ls_cb(0) + 0x7f0, 0xffff_ffff)],
    );
    let geo = s.geometry(dom).unwrap();
    assert_eq!((geo.aperture_start, geo.aperture_end), (0, (1 << 48) - 1));
    assert_eq!(geo.pgsize_bitmap, 0x4020_1000);
    // Freeing the domain (arm_smmu_destroy_domain_context): SCTLR = 0 disables the bank, then
    // free_io_pgtable_ops flushes it (tlb_flush_all: TLBIASID = ASID 0, TLBSYNC, poll
    // TLBSTATUS until SACTIVE clears), then the tables go back.
    r.bus.clear();
    s.domain_free(dom);
    let op = |write: bool, offset: u64, value: u64| BusOp {
        write,
        width: 32,
        offset,
        value,
    };
    assert_eq!(
        r.bus.ops(),
        vec![
            op(true, ls_cb(0), 0),                   // CB0.SCTLR = 0
            op(true, ls_cb(0) + 0x610, 0),           // CB0.TLBIASID = 0
            op(true, ls_cb(0) + 0x7f0, 0xffff_ffff), // CB0.TLBSYNC
            op(false, ls_cb(0) + 0x7f4, 0),          // CB0.TLBSTATUS: done
        ]
    );
    assert_eq!(r.frames.outstanding_bytes(), 0);
}

#[test]
fn map_errors_are_typed() {
    let (r, dom, _) = ls1028a_attached(ShutdownPolicy::Linux61);
    let s = &r.smmu;
    s.map_pages(
        dom,
        Iova::new(0x2000),
        PhysAddr::new(RAM_BASE),
        PageSize::SZ_4K,
        PageCount::new(1),
        Prot::READ,
    )
    .unwrap();
    assert_eq!(
        s.map_pages(
            dom,
            Iova::new(0x2000),
            PhysAddr::new(RAM_BASE),
            PageSize::SZ_4K,
            PageCount::new(1),
            Prot::READ
        ),
        Err(DriverError::PgTable(PgTableError::Exists {
            iova: Iova::new(0x2000)
        }))
    );
    assert!(matches!(
        s.map_pages(
            dom,
            Iova::new(1 << 48),
            PhysAddr::new(RAM_BASE),
            PageSize::SZ_4K,
            PageCount::new(1),
            Prot::READ
        ),
        Err(DriverError::PgTable(PgTableError::IovaRange { .. }))
    ));
    let unattached = s.domain_alloc(DomainKind::Dma).unwrap();
    assert_eq!(
        s.map_pages(
            unattached,
            Iova::new(0),
            PhysAddr::new(RAM_BASE),
            PageSize::SZ_4K,
            PageCount::new(1),
            Prot::READ
        ),
        Err(DriverError::NoDevice)
    );
    assert_eq!(
        s.unmap_pages(
            unattached,
            Iova::new(0),
            PageSize::SZ_4K,
            PageCount::new(1),
            &mut Gather::new()
        ),
        0
    );
}

#[test]
fn tcr_packing_matches_pgtable() {
    // Differential: the driver packs TCR/TCR2 itself (as Linux's arm_smmu_lpae_tcr does); the
    // pgtable crate computes the same registers independently.
    let (r, _dom, _) = ls1028a_attached(ShutdownPolicy::Linux61);
    drop(r);
    let cfg = pgtable::PgTableCfg::new(pgtable::PgTableRequest::new(
        pgtable::Stage::S1,
        0x6131_1000,
        48,
        48,
    ))
    .unwrap();
    assert_eq!(cfg.smmu_tcr(), 0x0080_3510);
    assert_eq!(cfg.smmu_tcr2(), 0x0003_8015);
    let s2 = pgtable::PgTableCfg::new(pgtable::PgTableRequest::new(
        pgtable::Stage::S2,
        0x4020_1000,
        44,
        44,
    ))
    .unwrap();
    assert_eq!(s2.vtcr(), 0x8004_3594);
}

#[test]
fn release_returns_entries_to_reset_type_and_shares_groups() {
    let (r, dom, _) = ls1028a_attached(ShutdownPolicy::Linux61);
    let s = &r.smmu;
    // A second master whose pattern is covered by entry 0 shares it (and its group).
    s.probe_device(&master(2, "fsl_enetc 0000:00:00.1", &[0x0400_0429]))
        .unwrap();
    assert_writes(
        &mmu500::Mmu500Config::mmu500_ls1028a(),
        &r.bus.writes(),
        &[w(0xc00, 0x0), w(0x800, 0xfc00_0029)],
    );
    let k1 = s.device_group(DeviceId(1)).unwrap().unwrap();
    assert_eq!(s.device_group(DeviceId(2)), Ok(Some(k1)));
    // Partial overlap refused, nothing written.
    r.bus.clear();
    assert_eq!(
        s.probe_device(&master(3, "x", &[0x0000_0429, 0x0001_0028])),
        Err(DriverError::StreamMatchOverlap {
            sid: 0x28,
            mask: 0x1,
            sme: 0
        })
    );
    assert!(r.bus.writes().is_empty());
    // Out-of-range stream ID: Linux's message with the master's prefix.
    assert_eq!(
        s.probe_device(&master(4, "dev 4", &[0x8000])),
        Err(DriverError::StreamIdRange {
            sid: 0x8000,
            limit: 0x7fff
        })
    );
    assert_eq!(
        r.log.lines().last().unwrap(),
        "dev 4: stream ID 0x8000 out of range for SMMU (0x7fff)"
    );
    r.bus.clear();
    s.release_device(DeviceId(2));
    assert!(r.bus.writes().is_empty(), "entry still referenced");
    s.release_device(DeviceId(1));
    assert_writes(
        &mmu500::Mmu500Config::mmu500_ls1028a(),
        &r.bus.writes(),
        &[w(0xc00, FAULT), w(0x800, 0x7c00_0029)],
    );
    let _ = dom;
}

#[test]
fn shutdown_linux61_unregisters_then_clientpd() {
    let (r, _dom, _) = ls1028a_attached(ShutdownPolicy::Linux61);
    let s = r.smmu.clone();
    let bus = r.bus.clone();
    let mut writes_at_unregister = None;
    r.smmu.shutdown(&mut || {
        writes_at_unregister = Some(bus.writes().len());
        s.release_device(DeviceId(1));
    });
    assert_eq!(writes_at_unregister, Some(0));
    assert_writes(
        &mmu500::Mmu500Config::mmu500_ls1028a(),
        &r.bus.writes(),
        &[w(0xc00, FAULT), w(0x800, 0x7c00_0029), w(0x0, 0x1)],
    );
    assert_eq!(
        r.log.lines().last().unwrap(),
        "arm-smmu 5000000.iommu: disabling translation"
    );
}

#[test]
fn shutdown_linux62_only_disables_translation_remove_unregisters() {
    let (r, _dom, _) = ls1028a_attached(ShutdownPolicy::Linux62);
    let mut called = 0;
    r.smmu.shutdown(&mut || called += 1);
    assert_eq!(called, 0);
    assert_writes(
        &mmu500::Mmu500Config::mmu500_ls1028a(),
        &r.bus.writes(),
        &[w(0x0, 0x1)],
    );
    let n = r.log.lines().len();
    assert_eq!(r.log.lines()[n - 1], format!("{LS}: disabling translation"));
    r.bus.clear();
    let s = r.smmu.clone();
    r.smmu.remove(&mut || {
        called += 1;
        s.release_device(DeviceId(1));
    });
    assert_eq!(called, 1);
    assert_writes(
        &mmu500::Mmu500Config::mmu500_ls1028a(),
        &r.bus.writes(),
        &[w(0xc00, FAULT), w(0x800, 0x7c00_0029), w(0x0, 0x1)],
    );
}

#[test]
fn shutdown_quiesce_blocks_every_stream() {
    let params = ModuleParams {
        disable_bypass: false,
        force_stage: 0,
    };
    let r = ls1028a(params, ShutdownPolicy::Quiesce);
    r.smmu.device_reset();
    r.smmu.test_smr_masks();
    r.smmu
        .probe_device(&master(1, "m", &[0x7c00_0029]))
        .unwrap();
    let dom = r.smmu.domain_alloc(DomainKind::Dma).unwrap();
    r.smmu.attach_dev(dom, DeviceId(1)).unwrap();
    r.bus.clear();
    let mut called = 0;
    r.smmu.shutdown(&mut || called += 1);
    assert_eq!(called, 0, "Quiesce never unregisters on shutdown");
    let mut want: Vec<W> = (0..128).map(|i| w(0xc00 + 4 * i, FAULT)).collect();
    want.push(w(0x0, 0x0020_1c36)); // CLIENTPD stays clear, USFCFG set
    assert_writes(
        &mmu500::Mmu500Config::mmu500_ls1028a(),
        &r.bus.writes(),
        &want,
    );
    // Nothing can re-open a stream afterwards, even with disable_bypass=0.
    assert_eq!(r.smmu.attach_dev(dom, DeviceId(1)), Err(DriverError::Busy));
    assert_eq!(
        r.smmu.probe_device(&master(2, "n", &[0x7c00_0030])),
        Err(DriverError::Busy)
    );
    r.bus.clear();
    r.smmu.release_device(DeviceId(1));
    assert_writes(
        &mmu500::Mmu500Config::mmu500_ls1028a(),
        &r.bus.writes(),
        &[w(0xc00, FAULT), w(0x800, 0x7c00_0029)],
    );
    // The DMA API keeps working for software.
    assert_eq!(
        r.smmu.map_pages(
            dom,
            Iova::new(0x4000),
            PhysAddr::new(RAM_BASE),
            PageSize::SZ_4K,
            PageCount::new(1),
            Prot::READ
        ),
        Ok(0x1000)
    );
}

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

// ------------------------------------------------------------------------------- MMU-401

#[test]
fn mmu401_probe_reset_attach() {
    let r = fake(
        IdRegs::MMU401,
        &mmu401_fw(),
        ModuleParams::default(),
        ShutdownPolicy::Linux61,
    );
    let p = "arm-smmu 2b400000.iommu";
    assert_eq!(
        r.log.lines(),
        prefixed(
            p,
            &[
                "probing hardware configuration...",
                "SMMUv1 with:",
                "\tstage 1 translation",
                "\tstage 2 translation",
                "\taddress translation ops",
                "\tcoherent table walk",
                "\tstream matching with 8 register groups",
                "\t8 context banks (2 stage-2 only)",
                "\tSupported page sizes: 0x61311000",
                "\tStage-1: 40-bit VA -> 40-bit IPA",
                "\tStage-2: 40-bit IPA -> 40-bit PA",
            ]
        )
    );
    r.smmu.device_reset();
    let cbb = |i: u64| (16 + i) << 12;
    let mut want = vec![w(0x48, 0)];
    for i in 0..8 {
        want.push(w(0xc00 + 4 * i, FAULT));
        want.push(w(0x800 + 4 * i, 0));
    }
    for i in 0..8 {
        want.push(w(cbb(i), 0));
        want.push(w(cbb(i) + 0x58, 0xC000_01FE));
    }
    want.extend([
        w(0x6c, 0xffff_ffff),
        w(0x68, 0xffff_ffff),
        w(0x70, 0xffff_ffff),
        w(0x0, 0x1c36),
    ]);
    assert_writes(&mmu500::Mmu500Config::mmu401(), &r.bus.writes(), &want);
    r.smmu.test_smr_masks();
    r.bus.clear();
    r.smmu.probe_device(&master(7, "m", &[0x12])).unwrap();
    let dom = r.smmu.domain_alloc(DomainKind::Unmanaged).unwrap();
    r.smmu.attach_dev(dom, DeviceId(7)).unwrap();
    let writes = r.bus.writes();
    let cb = cbb(2);
    let pgd = writes.iter().find(|x| x.0 == cb + 0x20).unwrap().1 & 0xffff_ffff_ffff;
    assert_eq!(
        writes,
        vec![
            w(0xc00, FAULT),
            w(0x800, 0x8000_0012),
            w(0x1000 + 0x808, 0x1), // CBA2R(2): Linux writes it for V1_64K too
            w(0x1000 + 0x8, 0x0101_f300), // CBAR(2): IRPTNDX 1 (V1 round-robin), S1
            w(cb + 0x10, 0x0003_8012), // TCR2: PASIZE 40
            w(cb + 0x30, 0x0080_3518), // TCR: T0SZ 24
            q(cb + 0x20, (2 << 48) | pgd), // TTBR0: ASID 2
            q(cb + 0x28, 2 << 48),
            w(cb + 0x38, 0xf404_ff44),
            w(cb + 0x3c, 0xffff_ffff),
            w(cb, 0x1067),
            w(0xc00, 0x2), // S2CR(0): TRANS, CB 2
        ]
    );
    // Hardware iova_to_phys (TRANS_OPS on SMMUv1): ATS1PR, ATSR poll, PAR.
    r.bus
        .inner()
        .poke(cb + 0x50, 0x0000_00ab_cdef_1000 | (0xff << 56));
    r.bus.clear();
    assert_eq!(
        r.smmu
            .iova_to_phys(dom, Iova::new(0x4567))
            .map_or(0, PhysAddr::as_u64),
        0xab_cdef_1567
    );
    assert_writes(
        &mmu500::Mmu500Config::mmu401(),
        &r.bus.writes(),
        &[q(cb + 0x800, 0x4000)],
    );
    r.bus.inner().poke(cb + 0x50, 0x9);
    assert_eq!(
        r.smmu
            .iova_to_phys(dom, Iova::new(0x4567))
            .map_or(0, PhysAddr::as_u64),
        0
    );
    let n = r.log.lines().len();
    assert_eq!(
        r.log.lines()[n - 2..],
        prefixed(p, &["translation fault!", "PAR = 0x9"])[..]
    );
}

#[test]
fn mmu401_stage2_uses_vmid_and_global_sync() {
    let p = ModuleParams::from_cmdline("arm-smmu.force_stage=2").unwrap();
    let r = fake(IdRegs::MMU401, &mmu401_fw(), p, ShutdownPolicy::Linux61);
    r.smmu.device_reset();
    r.smmu.test_smr_masks();
    r.smmu.probe_device(&master(7, "m", &[0x12])).unwrap();
    let dom = r.smmu.domain_alloc(DomainKind::Dma).unwrap();
    r.smmu.attach_dev(dom, DeviceId(7)).unwrap();
    assert_eq!(
        r.smmu.domain_context_bank(dom),
        Some(0),
        "S2 banks start at 0"
    );
    r.smmu
        .map_pages(
            dom,
            Iova::new(0x10_0000),
            PhysAddr::new(RAM_BASE),
            PageSize::SZ_4K,
            PageCount::new(1),
            Prot::READ,
        )
        .unwrap();
    r.bus.clear();
    let mut g = Gather::new();
    r.smmu.unmap_pages(
        dom,
        Iova::new(0x10_0000),
        PageSize::SZ_4K,
        PageCount::new(1),
        &mut g,
    );
    r.smmu.iotlb_sync(dom, &mut g);
    // S2 on SMMUv1: TLBIVMID (VMID = cb + 1) and a global sync.
    assert_writes(
        &mmu500::Mmu500Config::mmu401(),
        &r.bus.writes(),
        &[w(0x64, 1), w(0x70, 0xffff_ffff)],
    );
}

// ---------------------------------------------------------------------- stream indexing

#[test]
fn indexed_probe_reset_attach_map() {
    let r = fake(
        IdRegs::INDEXED,
        &indexed_fw(),
        ModuleParams::default(),
        ShutdownPolicy::Linux61,
    );
    let p = "arm-smmu 10000000.iommu";
    assert_eq!(
        r.log.lines(),
        prefixed(
            p,
            &[
                "probing hardware configuration...",
                "SMMUv2 with:",
                "\tstage 2 translation",
                "\tcoherent table walk",
                "\t4 context banks (0 stage-2 only)",
                "\tSupported page sizes: 0x41311000",
                "\tStage-2: 44-bit IPA -> 44-bit PA",
            ]
        )
    );
    r.smmu.device_reset();
    let cbb = |i: u64| (4 + i) << 12;
    let mut want = vec![w(0x48, 0)];
    for i in 0..64 {
        want.push(w(0xc00 + 4 * i, FAULT));
    }
    for i in 0..4 {
        want.push(w(cbb(i), 0));
        want.push(w(cbb(i) + 0x58, 0xC000_01FE));
    }
    want.extend([
        w(0x6c, 0xffff_ffff),
        w(0x68, 0xffff_ffff),
        w(0x70, 0xffff_ffff),
        w(0x0, 0x1c36),
    ]);
    assert_writes(
        &mmu500::Mmu500Config::smmuv2_generic(),
        &r.bus.writes(),
        &want,
    );
    r.bus.clear();
    r.smmu.test_smr_masks();
    assert!(r.bus.writes().is_empty(), "no SMRs, no width test");
    r.smmu.probe_device(&master(3, "m", &[0x2a])).unwrap();
    assert_writes(
        &mmu500::Mmu500Config::smmuv2_generic(),
        &r.bus.writes(),
        &[w(0xc00 + 4 * 0x2a, FAULT)],
    );
    assert!(r.smmu.probe_device(&master(4, "n", &[0x40])).is_err());
    r.bus.clear();
    let dom = r.smmu.domain_alloc(DomainKind::Dma).unwrap();
    r.smmu.attach_dev(dom, DeviceId(3)).unwrap();
    let writes = r.bus.writes();
    let cb = cbb(0);
    let pgd = writes.iter().find(|x| x.0 == cb + 0x20).unwrap().1;
    assert_eq!(
        writes,
        vec![
            w(0x1000 + 0x800, 0x1),    // CBA2R: VA64
            w(0x1000, 0x1),            // CBAR: S2_TRANS, VMID 1
            w(cb + 0x30, 0x8004_3594), // VTCR: PS 44, 4K, IS WBWA, SL0 2, T0SZ 20
            q(cb + 0x20, pgd),         // VTTBR
            w(cb, 0x67),               // SCTLR
            w(0xc00 + 4 * 0x2a, 0x0),  // S2CR(0x2a): TRANS CB 0
        ]
    );
    r.smmu
        .map_pages(
            dom,
            Iova::new(0x20_0000),
            PhysAddr::new(RAM_BASE),
            PageSize::SZ_4K,
            PageCount::new(2),
            Prot::READ | Prot::WRITE,
        )
        .unwrap();
    r.bus.clear();
    let mut g = Gather::new();
    assert_eq!(
        r.smmu.unmap_pages(
            dom,
            Iova::new(0x20_0000),
            PageSize::SZ_4K,
            PageCount::new(2),
            &mut g
        ),
        0x2000
    );
    r.smmu.iotlb_sync(dom, &mut g);
    assert_writes(
        &mmu500::Mmu500Config::smmuv2_generic(),
        &r.bus.writes(),
        &[
            q(cb + 0x638, 0x200),
            q(cb + 0x638, 0x201),
            w(cb + 0x7f0, 0xffff_ffff),
        ],
    );
    // Identity domain: S2CR BYPASS, iova_to_phys is the identity.
    let id = r.smmu.domain_alloc(DomainKind::Identity).unwrap();
    r.bus.clear();
    r.smmu.attach_dev(id, DeviceId(3)).unwrap();
    assert_writes(
        &mmu500::Mmu500Config::smmuv2_generic(),
        &r.bus.writes(),
        &[w(0xc00 + 4 * 0x2a, BYPASS)],
    );
    assert_eq!(
        r.smmu
            .iova_to_phys(id, Iova::new(0x1234))
            .map_or(0, PhysAddr::as_u64),
        0x1234
    );
}

/// A mismatch names the registers: the failure message of `assert_writes` says which register
/// each write went to, so a wrong sequence reads as register names rather than offsets.
#[test]
#[should_panic(expected = "CB0.TTBR0")]
fn assert_writes_names_the_registers_on_failure() {
    let model = mmu500::Mmu500Config::mmu500_ls1028a();
    assert_writes(
        &model,
        &[
            w(ls_cb(0) + 0x30, 0x8081_3510),
            q(ls_cb(0) + 0x20, 0x8100_0000),
        ],
        &[
            q(ls_cb(0) + 0x20, 0x8100_0000),
            w(ls_cb(0) + 0x30, 0x8081_3510),
        ],
    );
}
