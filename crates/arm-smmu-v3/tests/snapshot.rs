//! A driver restored to a snapshot, with the SMMUv3 model, memory and frame allocator it ran
//! on, continues exactly as a twin that never ran the abandoned operations: every result, log
//! line, DMA outcome and translation agrees.

mod common;

use arm_smmu_v3::{ArmSmmuV3SnapshotError, KernelVersion, ShutdownPolicy};
use common::*;
use iommu::{DomainKind, DriverDomain, Gather, IommuDriver, MasterInfo, Prot};
use proptest::prelude::*;
use smmu_addr::{Iova, PageCount, PageSize, PhysAddr};
use smmuv3::SmmuV3Config;

const IOVA0: u64 = 0x100_0000;
const PA0: u64 = RAM + 0x80_0000;
const PAGES: u64 = 8;

/// Four masters with one stream each; the last one's stream needs a level-2 stream table of
/// its own, allocated when it is probed.
fn dev(d: usize) -> MasterInfo {
    let sid = if d == 3 { 0x308 } else { 8 + d as u32 };
    master(4 + d as u32, &format!("dev{d}"), &[sid])
}

const DEVS: usize = 4;

#[derive(Debug, Clone, Copy)]
enum Op {
    Alloc(u8),
    Free(usize),
    Probe(usize),
    Release(usize),
    Attach(usize, usize),
    Map(usize, u64, u64),
    Unmap(usize, u64),
    Dma(usize, u64, u8),
    Xlate(usize, u64),
    Shutdown,
}

fn op() -> impl Strategy<Value = Op> {
    let dom = 0usize..4;
    let d = 0usize..DEVS;
    prop_oneof![
        2 => (0u8..3).prop_map(Op::Alloc),
        1 => dom.clone().prop_map(Op::Free),
        2 => d.clone().prop_map(Op::Probe),
        1 => d.clone().prop_map(Op::Release),
        3 => (dom.clone(), d.clone()).prop_map(|(a, b)| Op::Attach(a, b)),
        4 => (dom.clone(), 0..PAGES, 0..PAGES).prop_map(|(a, b, c)| Op::Map(a, b, c)),
        2 => (dom.clone(), 0..PAGES).prop_map(|(a, b)| Op::Unmap(a, b)),
        4 => (d, 0..PAGES, any::<u8>()).prop_map(|(a, b, c)| Op::Dma(a, b, c)),
        1 => (dom, 0..PAGES).prop_map(|(a, b)| Op::Xlate(a, b)),
        1 => Just(Op::Shutdown),
    ]
}

fn ops(max: usize) -> impl Strategy<Value = Vec<Op>> {
    proptest::collection::vec(op(), 0..max)
}

/// Masters probed, a paging domain attached to two of them with pages mapped, an identity
/// domain on the third, and a domain not finalised yet.
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

struct T {
    r: Rig,
    doms: Vec<DriverDomain>,
}

impl T {
    fn new(v: KernelVersion, p: ShutdownPolicy) -> T {
        T {
            r: rig(SmmuV3Config::qemu_virt(), v, p),
            doms: Vec::new(),
        }
    }

    fn dom(&self, i: usize) -> Option<DriverDomain> {
        (!self.doms.is_empty()).then(|| self.doms[i % self.doms.len()])
    }

    fn apply(&mut self, ops: &[Op]) -> Vec<String> {
        let s = self.r.smmu.clone();
        let mut out = Vec::new();
        for &o in ops {
            out.push(match o {
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
                Op::Probe(d) => format!("{:?}", s.probe_device(&dev(d))),
                Op::Release(d) => {
                    s.release_device(dev(d).id);
                    "released".into()
                }
                Op::Attach(i, d) => match self.dom(i) {
                    Some(dom) => format!("{:?}", s.attach_dev(dom, dev(d).id)),
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
                    let sid = dev(d).fwspec.ids[0];
                    format!("{:?}", self.r.model.dma_write(sid, iova, &[byte]))
                }
                Op::Xlate(i, page) => match self.dom(i) {
                    Some(dom) => format!(
                        "{:?}",
                        s.iova_to_phys(dom, Iova::new(IOVA0 + page * 0x1000 + 0x10))
                    ),
                    None => "none".into(),
                },
                Op::Shutdown => {
                    let smmu = s.clone();
                    s.shutdown(&mut || (0..DEVS).for_each(|d| smmu.release_device(dev(d).id)));
                    "shutdown".into()
                }
            });
        }
        out
    }

    /// Results of `ops` with the log lines they printed and every bus access and command
    /// they made.
    fn run(&mut self, ops: &[Op]) -> (Vec<String>, Vec<String>, Vec<String>) {
        let lines = self.r.log.lines().len();
        self.r.bus.clear();
        let out = self.apply(ops);
        (out, self.r.log.lines().split_off(lines), self.r.bus.lines())
    }

    /// Translations of every domain, the bytes DMA can reach, allocator use and the model's
    /// counters.
    fn observe(&self) -> Vec<String> {
        let s = &self.r.smmu;
        let mut v = vec![
            format!("{}", self.r.frames.outstanding_bytes()),
            format!("{:?}", self.r.model.counters()),
            format!("{:?}", self.r.model.cached()),
        ];
        let stes: Vec<_> = (0..DEVS)
            .map(|d| s.ste_address(dev(d).fwspec.ids[0]))
            .collect();
        v.push(format!("{stes:?}"));
        for &d in &self.doms {
            let x: Vec<_> = (0..PAGES)
                .map(|p| s.iova_to_phys(d, Iova::new(IOVA0 + p * 0x1000)))
                .collect();
            v.push(format!("{d:?} {x:?}"));
        }
        let bytes: Vec<u8> = (0..PAGES)
            .map(|p| {
                let mut b = [0u8];
                self.r
                    .mem
                    .read_bytes(PhysAddr::new(PA0 + p * 0x1000 + 8), &mut b)
                    .unwrap();
                b[0]
            })
            .collect();
        v.push(format!("{bytes:?}"));
        v
    }
}

fn kernel() -> impl Strategy<Value = (KernelVersion, ShutdownPolicy)> {
    prop_oneof![
        Just((KernelVersion::V6_1, ShutdownPolicy::Linux61)),
        Just((KernelVersion::V6_12, ShutdownPolicy::Linux62)),
        Just((KernelVersion::V6_12, ShutdownPolicy::Quiesce)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Driver, tables, model, memory and allocator restored after random abandoned operations
    /// (attach, map, unmap, DMA faults and their events, domain free, shutdown) continue as a
    /// twin that never ran them.
    #[test]
    fn a_restored_driver_continues_as_one_that_never_left(
        (v, p) in kernel(),
        before in ops(20),
        after in ops(30),
        next in ops(30),
    ) {
        let (mut twin, mut m) = (T::new(v, p), T::new(v, p));
        let before = [BOOT.as_slice(), &before].concat();
        prop_assert_eq!(twin.run(&before), m.run(&before));
        let driver = m.r.smmu.snapshot();
        let (model, mem, frames) = (m.r.model.snapshot(), m.r.mem.snapshot(), m.r.frames.snapshot());
        let bus = m.r.bus.snapshot();
        let doms = m.doms.clone();
        m.apply(&after);
        m.r.smmu.restore(&driver).unwrap();
        m.r.frames.restore(&frames).unwrap();
        m.r.mem.restore(&mem).unwrap();
        m.r.model.restore(&model).unwrap();
        m.r.bus.restore(&bus);
        m.doms = doms;
        prop_assert_eq!(m.observe(), twin.observe());
        prop_assert_eq!(m.run(&next), twin.run(&next));
        prop_assert_eq!(m.observe(), twin.observe());
    }
}

/// A restore refused for another instance's snapshot leaves the driver as a twin that was
/// never asked: same results, log lines and bus accesses afterwards.
#[test]
fn a_snapshot_of_another_driver_is_refused_and_changes_nothing() {
    let (v, p) = (KernelVersion::V6_12, ShutdownPolicy::Linux62);
    let (mut a, mut twin, mut other) = (T::new(v, p), T::new(v, p), T::new(v, p));
    for t in [&mut a, &mut twin] {
        t.run(&BOOT);
    }
    // The other driver is somewhere else: a restore that took anything from it would show.
    other.run(
        &[
            BOOT.as_slice(),
            &[Op::Free(0), Op::Alloc(0), Op::Release(2)],
        ]
        .concat(),
    );
    let err = a.r.smmu.restore(&other.r.smmu.snapshot()).unwrap_err();
    assert!(matches!(err, ArmSmmuV3SnapshotError::OtherInstance { .. }));
    assert_eq!(
        err.to_string(),
        format!(
            "snapshot of the driver of {PREFIX} restored into another driver instance ({PREFIX})"
        )
    );
    assert_eq!(a.observe(), twin.observe());
    let next = [
        Op::Alloc(0),
        Op::Attach(3, 2),
        Op::Map(3, 2, 5),
        Op::Dma(2, 2, 7),
        Op::Dma(0, 0, 9),
        Op::Release(1),
        Op::Free(1),
        Op::Shutdown,
    ];
    assert_eq!(a.run(&next), twin.run(&next));
    assert_eq!(a.observe(), twin.observe());
}
