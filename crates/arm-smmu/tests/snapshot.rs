//! A driver restored to a snapshot, with the MMU-500 model, memory and frame allocator it ran
//! on, continues exactly as a twin that never ran the abandoned operations: every result, log
//! line, register access, DMA outcome and translation agrees.

mod common;

use arm_smmu::testing::RecordingMmio;
use arm_smmu::{
    ArmSmmu, ArmSmmuSnapshotError, DriverBehaviour, FirmwareDesc, LinuxVersion, LpaeTables,
    ModuleParams, RateLimits, ShutdownPolicy, SmmuEnv,
};
use iommu::{DeviceId, DomainKind, DriverDomain, FwSpec, Gather, IommuDriver, MasterInfo, Prot};
use klog::{MemLog, Printk};
use mmu500::{Mmu500, Mmu500Config};
use physmem::{FrameAllocator, PhysMem};
use proptest::prelude::*;
use smmu_addr::{Iova, PageCount, PageSize, PhysAddr};
use smmu_arch::regs::gr0;
use smmu_arch::Mmio;
use std::sync::Arc;

/// Where devices DMA: IOVAs (identity domains reach the same address as PA) and the frames
/// mappings point at, both in the low half of RAM (page tables are in the top half).
const IOVA0: u64 = common::RAM_BASE + 0x100_0000;
const PA0: u64 = common::RAM_BASE + 0x80_0000;
const PAGES: u64 = 12;

/// The masters: the ENETC (a masked stream ID), two single streams, and one that shares both
/// of their stream-map entries (so its group lookup can find two groups).
fn master(d: usize) -> MasterInfo {
    let (ids, name) = match d {
        0 => (vec![0x7c00_0029], "fsl_enetc 0000:00:00.0"),
        1 => (vec![0x11], "dev-11"),
        2 => (vec![0x12], "dev-12"),
        _ => (vec![0x11, 0x12], "dev-11-12"),
    };
    MasterInfo {
        id: DeviceId(4 + d as u32),
        log_name: name.into(),
        fwspec: FwSpec { ids },
    }
}

/// The stream ID a master's DMA carries.
fn stream(d: usize) -> u32 {
    [0x429, 0x11, 0x12, 0x12][d]
}

#[derive(Debug, Clone, Copy)]
enum Op {
    Alloc(u8),
    Free(usize),
    Probe(usize),
    Release(usize),
    Group(usize),
    Attach(usize, usize),
    Map(usize, u64, u64),
    Unmap(usize, u64),
    Dma(usize, u64, u8),
    Xlate(usize, u64),
    Handler(usize),
    Reset,
    Bound(bool),
    Shutdown,
}

fn op() -> impl Strategy<Value = Op> {
    let dom = 0usize..4;
    let dev = 0usize..4;
    prop_oneof![
        2 => (0u8..3).prop_map(Op::Alloc),
        1 => dom.clone().prop_map(Op::Free),
        2 => dev.clone().prop_map(Op::Probe),
        1 => dev.clone().prop_map(Op::Release),
        1 => dev.clone().prop_map(Op::Group),
        3 => (dom.clone(), dev.clone()).prop_map(|(a, b)| Op::Attach(a, b)),
        4 => (dom.clone(), 0..PAGES, 0..PAGES).prop_map(|(a, b, c)| Op::Map(a, b, c)),
        2 => (dom.clone(), 0..PAGES).prop_map(|(a, b)| Op::Unmap(a, b)),
        4 => (dev, 0..PAGES, any::<u8>()).prop_map(|(a, b, c)| Op::Dma(a, b, c)),
        1 => (dom.clone(), 0..PAGES).prop_map(|(a, b)| Op::Xlate(a, b)),
        3 => dom.prop_map(Op::Handler),
        1 => Just(Op::Reset),
        1 => any::<bool>().prop_map(Op::Bound),
        1 => Just(Op::Shutdown),
    ]
}

fn ops(max: usize) -> impl Strategy<Value = Vec<Op>> {
    proptest::collection::vec(op(), 0..max)
}

/// A driver probed on the LS1028A's MMU-500 model, its interrupts wired, its bus recorded.
struct Rig {
    model: Arc<Mmu500>,
    bus: Arc<RecordingMmio<Arc<Mmu500>>>,
    smmu: Arc<ArmSmmu>,
    log: Arc<MemLog>,
    mem: Arc<PhysMem>,
    frames: Arc<FrameAllocator>,
    /// The domains the test allocated, in order (the test's own state: saved with the rest).
    doms: Vec<DriverDomain>,
}

fn rig(behaviour: DriverBehaviour) -> Rig {
    let (mem, frames) = common::ram();
    let model = Mmu500::new(Mmu500Config::mmu500_ls1028a(), mem.clone()).unwrap();
    let bus = Arc::new(RecordingMmio::new(model.clone()));
    let log = Arc::new(MemLog::new());
    let smmu = ArmSmmu::probe_and_reset(
        &FirmwareDesc::ls1028a(),
        ModuleParams::default(),
        behaviour,
        SmmuEnv {
            mmio: bus.clone(),
            log: log.clone(),
            frames: frames.clone(),
            tables: Arc::new(LpaeTables::LINUX),
            limits: Arc::new(RateLimits::default()),
        },
    )
    .unwrap();
    common::wire_irqs(&model, &smmu);
    Rig {
        model,
        bus,
        smmu,
        log,
        mem,
        frames,
        doms: Vec::new(),
    }
}

impl Rig {
    fn dom(&self, i: usize) -> Option<DriverDomain> {
        (!self.doms.is_empty()).then(|| self.doms[i % self.doms.len()])
    }

    /// Run `ops`, returning each one's result.
    fn apply(&mut self, ops: &[Op]) -> Vec<String> {
        let s = &self.smmu;
        let mut out = Vec::new();
        for &o in ops {
            let r = match o {
                Op::Alloc(k) => {
                    let kind = [DomainKind::Dma, DomainKind::Identity, DomainKind::Blocked]
                        [usize::from(k)];
                    let r = s.domain_alloc(kind);
                    if let Ok(d) = r {
                        self.doms.push(d);
                    }
                    format!("{r:?}")
                }
                Op::Free(i) => match self.dom(i) {
                    Some(d) => {
                        s.domain_free(d);
                        self.doms.retain(|&x| x != d);
                        "freed".into()
                    }
                    None => "none".into(),
                },
                Op::Probe(d) => format!("{:?}", s.probe_device(&master(d))),
                Op::Release(d) => {
                    s.release_device(master(d).id);
                    "released".into()
                }
                Op::Group(d) => format!("{:?}", s.device_group(master(d).id)),
                Op::Attach(i, d) => match self.dom(i) {
                    Some(dom) => format!("{:?}", s.attach_dev(dom, master(d).id)),
                    None => "none".into(),
                },
                Op::Map(i, page, frame) => match self.dom(i) {
                    Some(dom) => format!(
                        "{:?}",
                        s.map_pages(
                            dom,
                            Iova::new(IOVA0 + page * 0x1000),
                            PhysAddr::new(PA0 + frame * 0x1000),
                            PageSize::SZ_4K,
                            PageCount::ONE,
                            Prot::READ | Prot::WRITE,
                        )
                    ),
                    None => "none".into(),
                },
                Op::Unmap(i, page) => match self.dom(i) {
                    Some(dom) => {
                        let mut g = Gather::new();
                        let iova = Iova::new(IOVA0 + page * 0x1000);
                        let n = s.unmap_pages(dom, iova, PageSize::SZ_4K, PageCount::ONE, &mut g);
                        s.iotlb_sync(dom, &mut g);
                        n.to_string()
                    }
                    None => "none".into(),
                },
                Op::Dma(d, page, byte) => {
                    let iova = Iova::new(IOVA0 + page * 0x1000 + 8);
                    format!("{:?}", self.model.dma_write(stream(d), iova, &[byte]))
                }
                Op::Xlate(i, page) => match self.dom(i) {
                    Some(dom) => format!(
                        "{:?}",
                        s.iova_to_phys(dom, Iova::new(IOVA0 + page * 0x1000 + 0x10))
                    ),
                    None => "none".into(),
                },
                Op::Handler(i) => match self.dom(i) {
                    Some(dom) => {
                        let log = self.log.clone();
                        s.set_fault_handler(
                            dom,
                            Box::new(move |iova, access| {
                                log.printk(
                                    klog::Level::Info,
                                    &format!("handler of {}: {iova:#x} {access:?}", dom.0),
                                )
                            }),
                        );
                        "handler".into()
                    }
                    None => "none".into(),
                },
                Op::Reset => {
                    // Reprograms every entry and bank from the driver's shadows.
                    s.device_reset();
                    "reset".into()
                }
                Op::Bound(b) => {
                    s.set_bound(b);
                    "bound".into()
                }
                Op::Shutdown => {
                    // The core's unregister: every master released.
                    let smmu = s.clone();
                    s.shutdown(&mut || (0..4).for_each(|d| smmu.release_device(master(d).id)));
                    "shutdown".into()
                }
            };
            out.push(r);
        }
        out
    }

    /// Results of `ops` with the log lines and bus accesses they caused.
    fn run(&mut self, ops: &[Op]) -> (Vec<String>, Vec<String>, Vec<arm_smmu::testing::BusOp>) {
        let (lines, accesses) = (self.log.lines().len(), self.bus.ops().len());
        let out = self.apply(ops);
        (
            out,
            self.log.lines().split_off(lines),
            self.bus.ops().split_off(accesses),
        )
    }

    /// What the machine shows afterwards: the driver's stream map, each domain's bank and
    /// translations, the bytes DMA can reach, page-table memory in use, the model's counters,
    /// TLB occupancy and global registers.
    fn observe(&self) -> Vec<String> {
        let s = &self.smmu;
        // The stream-map entries in use or not at their initial value (the rest are all alike).
        let map = s.stream_map();
        let entries: Vec<String> = (0..map.len())
            .filter(|&i| {
                let smr = map.smrs.as_ref().map(|v| v[i]).unwrap_or_default();
                smr != Default::default() || map.s2crs[i] != map.init
            })
            .map(|i| {
                format!(
                    "{i}: {:?} {:?}",
                    map.smrs.as_ref().map(|v| v[i]),
                    map.s2crs[i]
                )
            })
            .collect();
        let mut v = vec![
            format!(
                "{entries:?} {:?}",
                (map.init, map.streamid_mask, map.smr_mask_mask)
            ),
            format!("{:?}", s.any_context_bank_in_use()),
            format!("{}", self.frames.outstanding_bytes()),
            format!("{:?}", self.model.counters()),
            format!("{}", self.model.tlb_entries()),
            format!("{:#x}", self.model.read32(gr0::SCR0)),
            format!("{:#x}", self.model.read32(gr0::SGFSR)),
        ];
        for &d in &self.doms {
            let xlate: Vec<_> = (0..PAGES)
                .map(|p| s.iova_to_phys(d, Iova::new(IOVA0 + p * 0x1000)))
                .collect();
            v.push(format!("{d:?} {:?} {xlate:?}", s.domain_context_bank(d)));
        }
        for base in [IOVA0, PA0] {
            let bytes: Vec<u8> = (0..PAGES)
                .map(|p| {
                    let mut b = [0u8];
                    self.mem
                        .read_bytes(PhysAddr::new(base + p * 0x1000 + 8), &mut b)
                        .unwrap();
                    b[0]
                })
                .collect();
            v.push(format!("{bytes:?}"));
        }
        v
    }
}

/// What every case starts with: three masters probed, a paging domain attached to two of
/// them with pages mapped, an identity domain on the third, and a domain not finalised yet.
const BOOT: [Op; 11] = [
    Op::Probe(0),
    Op::Probe(1),
    Op::Probe(2),
    Op::Alloc(0),
    Op::Attach(0, 0),
    Op::Attach(0, 1),
    Op::Map(0, 0, 3),
    Op::Map(0, 1, 4),
    Op::Alloc(1),
    Op::Attach(1, 2),
    Op::Alloc(0),
];

fn behaviour() -> impl Strategy<Value = DriverBehaviour> {
    prop_oneof![
        Just(LinuxVersion::V6_1.behaviour()),
        Just(LinuxVersion::V6_2.behaviour()),
        Just(
            LinuxVersion::V6_2
                .behaviour()
                .with_shutdown(ShutdownPolicy::Quiesce)
        ),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Driver, tables, model, memory and allocator restored after random abandoned operations
    /// (attach, map, unmap, DMA and its faults, fault handlers, domain free, reset, shutdown)
    /// continue as a twin that
    /// never ran them: every result, log line (rate limits included), register access, DMA
    /// outcome and translation of a random continuation agrees, and so does the state after.
    #[test]
    fn a_restored_driver_continues_as_one_that_never_left(
        behaviour in behaviour(),
        before in ops(30),
        after in ops(40),
        next in ops(40),
    ) {
        let (mut twin, mut m) = (rig(behaviour), rig(behaviour));
        // A boot like the machine's (masters probed, domains attached and mapped), then more.
        let before = [BOOT.as_slice(), &before].concat();
        prop_assert_eq!(twin.run(&before), m.run(&before));
        let driver = m.smmu.snapshot().unwrap();
        let (model, mem, frames) = (m.model.snapshot(), m.mem.snapshot(), m.frames.snapshot());
        let doms = m.doms.clone();
        m.apply(&after);
        // The driver first: it drops what the run made, whose tables give pages back to the
        // allocator that is restored next.
        m.smmu.restore(&driver).unwrap();
        m.frames.restore(&frames).unwrap();
        m.mem.restore(&mem).unwrap();
        m.model.restore(&model).unwrap();
        m.doms = doms;
        prop_assert_eq!(m.observe(), twin.observe());
        prop_assert_eq!(m.run(&next), twin.run(&next));
        prop_assert_eq!(m.observe(), twin.observe());
    }
}

#[test]
fn a_snapshot_of_another_driver_is_refused_and_changes_nothing() {
    let b = LinuxVersion::V6_2.behaviour();
    let (mut a, mut twin, other) = (rig(b), rig(b), rig(b));
    let setup = [
        Op::Probe(0),
        Op::Alloc(0),
        Op::Attach(0, 0),
        Op::Map(0, 1, 2),
    ];
    a.apply(&setup);
    twin.apply(&setup);
    let err = a.smmu.restore(&other.smmu.snapshot().unwrap()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "snapshot of the driver of arm-smmu 5000000.iommu restored into another driver instance (arm-smmu 5000000.iommu)"
    );
    assert!(matches!(err, ArmSmmuSnapshotError::OtherInstance { .. }));
    assert_eq!(a.observe(), twin.observe());
    let next = [
        Op::Alloc(0),
        Op::Attach(1, 0),
        Op::Map(1, 3, 4),
        Op::Dma(0, 3, 7),
    ];
    assert_eq!(a.run(&next), twin.run(&next));
}

/// A group lookup that finds two groups and (before 53f613134984) returns holding
/// `stream_map_mutex`: no snapshot can be taken then, and a restore to an earlier one releases
/// the lock, after which the driver takes it again as usual.
#[test]
fn a_held_stream_map_mutex_refuses_a_snapshot_and_a_restore_releases_it() {
    let mut b = LinuxVersion::V6_2.behaviour();
    b.unlock_on_group_conflict = false;
    let mut m = rig(b);
    m.apply(&[Op::Probe(1), Op::Probe(2), Op::Group(1), Op::Group(2)]);
    let snap = m.smmu.snapshot().unwrap();
    assert_eq!(
        m.apply(&[Op::Probe(3), Op::Group(3)]),
        ["Ok(())", "Err(StreamsInTwoGroups)"]
    );
    assert_eq!(
        m.smmu.snapshot().err(),
        Some(ArmSmmuSnapshotError::StreamMapMutexHeld {
            smmu: "arm-smmu 5000000.iommu".into()
        })
    );
    m.smmu.restore(&snap).unwrap();
    assert!(m.smmu.snapshot().is_ok());
    // dev-11-12 is unknown again, and probing takes the mutex without waiting.
    assert_eq!(
        m.apply(&[Op::Group(3), Op::Probe(3), Op::Release(3)]),
        ["Err(NoDevice)", "Ok(())", "released"]
    );
}

/// A run that gave a boot domain a bank and both domains fault handlers, abandoned: after the
/// restore the reset reprograms the banks boot left, and faults on both domains are the
/// driver's again (printed), as on the twin.
#[test]
fn a_restored_driver_forgets_the_banks_and_handlers_of_the_run() {
    let b = LinuxVersion::V6_2.behaviour();
    let (mut twin, mut m) = (rig(b), rig(b));
    // Domain 1 attached to the ENETC (a bank), domain 2 not finalised yet.
    let boot = [
        Op::Probe(0),
        Op::Probe(1),
        Op::Alloc(0),
        Op::Attach(0, 0),
        Op::Alloc(0),
    ];
    assert_eq!(twin.run(&boot), m.run(&boot));
    let driver = m.smmu.snapshot().unwrap();
    let (model, mem, frames) = (m.model.snapshot(), m.mem.snapshot(), m.frames.snapshot());
    m.apply(&[Op::Handler(0), Op::Handler(1), Op::Attach(1, 1)]);
    m.smmu.restore(&driver).unwrap();
    m.frames.restore(&frames).unwrap();
    m.mem.restore(&mem).unwrap();
    m.model.restore(&model).unwrap();
    let next = [
        Op::Reset,
        Op::Attach(1, 1),
        Op::Dma(0, 1, 1),
        Op::Dma(1, 2, 2),
    ];
    let (got, want) = (m.run(&next), twin.run(&next));
    assert_eq!(
        want.1,
        [
            "arm-smmu 5000000.iommu: Unhandled context fault: fsr=0x402, iova=0x81001008, fsynr=0x10, cbfrsynra=0x429, cb=0",
            "arm-smmu 5000000.iommu: Unhandled context fault: fsr=0x402, iova=0x81002008, fsynr=0x10, cbfrsynra=0x11, cb=1",
        ]
    );
    assert_eq!(got, want);
}
