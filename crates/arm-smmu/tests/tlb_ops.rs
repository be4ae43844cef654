//! TLB operation encodings (reference §9.2) that the LPAE tables rarely trigger (walk flushes)
//! or that need a format the `pgtable` crate does not implement (AArch32-L), driven through a
//! scripted page table that issues exactly the callbacks a test asks for.

mod common;

use arm_smmu::context::{CtxFmt, TableHw};
use arm_smmu::testing::{FakeSmmu, IdRegs, RecordingMmio};
use arm_smmu::{
    ArmSmmu, FirmwareDesc, IoPgtableFactory, IoPgtableOps, LinuxVersion, ModuleParams, RateLimits,
    SharedTlb, SmmuEnv, TableRequest, TableSnapshot, TableSnapshotError,
};
use common::*;
use iommu::{DeviceId, DomainKind, DriverError, FwSpec, Gather, IommuDriver, MasterInfo, Prot};
use klog::MemLog;
use physmem::FrameAllocator;
use smmu_addr::{Iova, PageCount, PageSize, PhysAddr};
use smmu_arch::regs::{self, cb, gr0, gr1, id0, id1, s2cr, DUMMY_VAL};
use std::sync::{Arc, Mutex};

/// A table that maps nothing; its unmap issues a walk flush (`walk == true`) or one leaf
/// invalidation per page, as io-pgtable would when tearing down a table or leaves.
struct Scripted {
    tlb: SharedTlb,
    walk: bool,
    req: TableRequest,
}

impl IoPgtableOps for Scripted {
    fn map_pages(
        &self,
        _: Iova,
        _: PhysAddr,
        pgsize: PageSize,
        n: PageCount,
        _: Prot,
    ) -> Result<u64, DriverError> {
        Ok(pgsize.bytes() * n.get())
    }
    fn unmap_pages(&self, iova: Iova, pgsize: PageSize, n: PageCount, gather: &mut Gather) -> u64 {
        let bytes = pgsize.bytes() * n.get();
        if self.walk {
            self.tlb.tlb_flush_walk(iova, bytes, pgsize);
        } else {
            for i in 0..n.get() {
                let page = Iova::new(iova.as_u64() + i * pgsize.bytes());
                self.tlb.tlb_add_page(gather, page, pgsize);
            }
        }
        bytes
    }
    fn iova_to_phys(&self, _: Iova) -> Option<PhysAddr> {
        None
    }
    fn hw(&self) -> TableHw {
        TableHw {
            pgd: PhysAddr::new(0x8100_0000),
            granule: PageSize::SZ_4K,
            ias: self.req.ias,
            oas: self.req.oas,
            start_level: 1,
            coherent: self.req.coherent_walk,
            mair: 0xf404_ff44,
        }
    }
    fn pgsize_bitmap(&self) -> u64 {
        0x4020_1000
    }
    // Nothing to free or save: the scripted table owns no pages and keeps no state.
    fn free(&self) {}
    fn snapshot(&self) -> TableSnapshot {
        TableSnapshot::new(())
    }
    fn restore(&self, snap: &TableSnapshot) -> Result<(), TableSnapshotError> {
        snap.get::<()>().ok_or(TableSnapshotError::OtherKind)?;
        Ok(())
    }
}

struct Factory {
    walk: bool,
    seen: Mutex<Vec<TableRequest>>,
}

impl IoPgtableFactory for Factory {
    fn alloc(
        &self,
        req: &TableRequest,
        _: &Arc<FrameAllocator>,
        tlb: SharedTlb,
    ) -> Result<Box<dyn IoPgtableOps>, DriverError> {
        self.seen.lock().unwrap().push(*req);
        Ok(Box::new(Scripted {
            tlb,
            walk: self.walk,
            req: *req,
        }))
    }
}

struct Setup {
    smmu: Arc<ArmSmmu>,
    bus: Arc<RecordingMmio<FakeSmmu>>,
    factory: Arc<Factory>,
    /// The mmu500 model's register map with the fake's page geometry: it names the
    /// registers when a test's expected writes differ (`assert_writes`).
    map: mmu500::Mmu500Config,
}

impl Setup {
    /// Offset of GR1 (register page 1).
    fn gr1(&self) -> u64 {
        regs::page_size(self.map.page_64k)
    }

    /// Offset of context bank `n`'s page.
    fn cb(&self, n: u64) -> u64 {
        let page = regs::page_size(self.map.page_64k);
        page * (regs::num_pages(self.map.numpagendxb) + n)
    }

    /// Assert the writes recorded since the last `bus.clear()`, naming registers on failure.
    #[track_caller]
    fn assert_writes(&self, got: &[Write], want: &[Write]) {
        assert_writes(&self.map, got, want);
    }
}

fn setup(ids: IdRegs, fw: &FirmwareDesc, params: ModuleParams, walk: bool) -> Setup {
    let bus = Arc::new(RecordingMmio::new(FakeSmmu::new(ids)));
    let factory = Arc::new(Factory {
        walk,
        seen: Mutex::new(Vec::new()),
    });
    let smmu = ArmSmmu::probe_and_reset(
        fw,
        params,
        LinuxVersion::V6_2.behaviour(),
        SmmuEnv {
            mmio: bus.clone(),
            log: Arc::new(MemLog::new()),
            frames: frames(),
            tables: factory.clone(),
            limits: Arc::new(RateLimits::default()),
        },
    )
    .unwrap();
    let map = mmu500::Mmu500Config {
        page_64k: ids.id1 & id1::PAGESIZE != 0,
        numpagendxb: regs::field(ids.id1, id1::NUMPAGENDXB_SHIFT, id1::NUMPAGENDXB_WIDTH),
        ..mmu500::Mmu500Config::smmuv2_generic()
    };
    Setup {
        smmu,
        bus,
        factory,
        map,
    }
}

/// Attach `n` masters to `n` domains; returns the last domain.
fn domains(s: &Setup, n: u32) -> iommu::DriverDomain {
    let mut last = None;
    for i in 0..n {
        s.smmu
            .probe_device(&MasterInfo {
                id: DeviceId(i),
                log_name: format!("m{i}"),
                fwspec: FwSpec {
                    ids: vec![0x10 + i],
                },
            })
            .unwrap();
        let d = s.smmu.domain_alloc(DomainKind::Dma).unwrap();
        s.smmu.attach_dev(d, DeviceId(i)).unwrap();
        last = Some(d);
    }
    s.bus.clear();
    last.unwrap()
}

fn unmap_and_sync(s: &Setup, d: iommu::DriverDomain, iova: u64, n: u64) -> Vec<Write> {
    let mut g = Gather::new();
    s.smmu.unmap_pages(
        d,
        Iova::new(iova),
        PageSize::SZ_4K,
        PageCount::new(n),
        &mut g,
    );
    s.smmu.iotlb_sync(d, &mut g);
    s.bus.writes()
}

#[test]
fn s1_walk_flush_is_tlbiva_per_granule_with_asid() {
    let s = setup(
        IdRegs::LS1028A,
        &FirmwareDesc::ls1028a(),
        ModuleParams::default(),
        true,
    );
    let d = domains(&s, 2); // second domain: CB 1, ASID 1
    let cb = s.cb(1);
    let v = (0x12_3000u64 >> 12) | (1 << 48);
    s.assert_writes(
        &unmap_and_sync(&s, d, 0x12_3000, 3),
        &[
            (cb + cb::S1_TLBIVA, v, 64),
            (cb + cb::S1_TLBIVA, v + 1, 64),
            (cb + cb::S1_TLBIVA, v + 2, 64),
            (cb + cb::TLBSYNC, DUMMY_VAL.into(), 32), // flush_walk's own sync
            (cb + cb::TLBSYNC, DUMMY_VAL.into(), 32), // iotlb_sync
        ],
    );
}

#[test]
fn s2_v2_walk_flush_is_tlbiipas2() {
    let s = setup(
        IdRegs::INDEXED,
        &indexed_fw(),
        ModuleParams::default(),
        true,
    );
    let d = domains(&s, 1);
    let cb = s.cb(0);
    s.assert_writes(
        &unmap_and_sync(&s, d, 0x40_0000, 2),
        &[
            (cb + cb::S2_TLBIIPAS2, 0x400, 64),
            (cb + cb::S2_TLBIIPAS2, 0x401, 64),
            (cb + cb::TLBSYNC, DUMMY_VAL.into(), 32),
            (cb + cb::TLBSYNC, DUMMY_VAL.into(), 32),
        ],
    );
}

#[test]
fn s2_v1_walk_flush_is_tlbivmid_and_global_sync() {
    let p = ModuleParams::from_cmdline("arm-smmu.force_stage=2").unwrap();
    let s = setup(IdRegs::MMU401, &mmu401_fw(), p, true);
    let d = domains(&s, 2); // second S2 domain: CB 1, VMID 2
    s.assert_writes(
        &unmap_and_sync(&s, d, 0x40_0000, 2),
        &[
            (gr0::TLBIVMID, 2, 32),
            (gr0::STLBGSYNC, DUMMY_VAL.into(), 32),
            (gr0::STLBGSYNC, DUMMY_VAL.into(), 32),
        ],
    );
}

/// An SMMUv2 with only the AArch32 long-descriptor format (no ID2.PTFS bits).
const AARCH32_ONLY: IdRegs = IdRegs {
    id0: id0::S1TS | id0::SMS | id0::CTTW | (15 << id0::NUMSIDB_SHIFT) | 4,
    id1: (1 << 28) | 2,
    id2: 0x0000_0555,
    id7: 0,
    scr0: 1,
};

#[test]
fn aarch32_long_format_context_and_tlbival() {
    let fw = FirmwareDesc {
        reg_size: 0x8000,
        num_context_irqs: 2,
        ..indexed_fw()
    };
    let s = setup(AARCH32_ONLY, &fw, ModuleParams::default(), false);
    s.smmu
        .probe_device(&MasterInfo {
            id: DeviceId(1),
            log_name: "m".into(),
            fwspec: FwSpec { ids: vec![0x10] },
        })
        .unwrap();
    s.bus.clear();
    let d = s.smmu.domain_alloc(DomainKind::Dma).unwrap();
    s.smmu.attach_dev(d, DeviceId(1)).unwrap();
    let req = s.factory.seen.lock().unwrap()[0];
    assert_eq!(req.fmt, CtxFmt::AArch32L);
    assert_eq!((req.ias, req.oas), (32, 40), "ARM_32_LPAE_S1 limits");
    let (g1, cb) = (s.gr1(), s.cb(0));
    s.assert_writes(
        &s.bus.writes(),
        &[
            (g1 + gr1::cba2r(0), 0x0, 32),        // no VA64
            (g1 + gr1::cbar(0), 0x0001_f300, 32), // S1_TRANS_S2_BYPASS, WB, NSH
            (cb + cb::TCR2, 0x0003_8002, 32),     // PASIZE 40, no AS
            (cb + cb::TCR, 0x8080_3520, 32),      // EAE | EPD1 | T0SZ 32
            (cb + cb::TTBR0, 0x8100_0000, 64),    // ASID 0
            (cb + cb::TTBR1, 0, 64),
            (cb + cb::S1_MAIR0, 0xf404_ff44, 32),
            (cb + cb::S1_MAIR1, 0, 32),
            (cb + cb::SCTLR, 0x1067, 32),
            (gr0::s2cr(0), 0x0, 32),
        ],
    );
    s.bus.clear();
    s.assert_writes(
        &unmap_and_sync(&s, d, 0x5000, 2),
        &[
            (cb + cb::S1_TLBIVAL, 0x5000, 32), // (iova & ~0xfff) | asid, 32-bit
            (cb + cb::S1_TLBIVAL, 0x6000, 32),
            (cb + cb::TLBSYNC, DUMMY_VAL.into(), 32),
        ],
    );
}

/// S2CR.TYPE = BYPASS, everything else 0.
const S2CR_BYPASS: u32 = regs::make(s2cr::TYPE_BYPASS, s2cr::TYPE_SHIFT, s2cr::TYPE_WIDTH);

#[test]
fn release_with_bypass_default_returns_to_bypass() {
    let p = ModuleParams::from_cmdline("arm-smmu.disable_bypass=n").unwrap();
    let s = setup(IdRegs::LS1028A, &FirmwareDesc::ls1028a(), p, false);
    domains(&s, 1);
    s.smmu.release_device(DeviceId(0));
    s.assert_writes(
        &s.bus.writes(),
        &[
            (gr0::s2cr(0), S2CR_BYPASS.into(), 32),
            (gr0::smr(0), 0x0000_0010, 32), // stream 0x10, VALID clear
        ],
    );
}
