//! A restored core continues as one that never ran the abandoned operations: every result and
//! IOVA it returns, every field of its state, the driver's and the log.

use super::*;
use crate::fake::{FakeDriver, FakeSnapshot};
use crate::{Bus, CoreConfig, DeviceDesc};
use klog::{Level, Printk};
use physmem::{AllocSnapshot, FrameAllocator, MemSnapshot, PhysMem, Region};
use proptest::prelude::*;
use smmu_addr::{Iova, PhysAddr};
use std::fmt::Write;

const RAM: u64 = 0x8000_0000;

/// A log whose clock and lines can be saved and put back (the simulated kernel's log is
/// restored by its owner, like this).
#[derive(Default)]
struct TestLog {
    inner: Mutex<(u64, Vec<String>)>,
}

impl Printk for TestLog {
    fn printk(&self, _level: Level, line: &str) {
        self.inner.lock().1.push(line.to_string());
    }
    fn now_ns(&self) -> u64 {
        self.inner.lock().0
    }
}

struct Rig {
    core: Arc<IommuCore>,
    fake: Arc<FakeDriver>,
    mem: Arc<PhysMem>,
    frames: Arc<FrameAllocator>,
    log: Arc<TestLog>,
    inst: InstanceId,
    h: Harness,
}

/// What the test (a device driver) holds.
#[derive(Clone, Default)]
struct Harness {
    devs: Vec<DeviceId>,
    live: Vec<(DeviceId, Live)>,
    unmanaged: Vec<Arc<Domain>>,
    probes: u32,
}

#[derive(Clone, Debug)]
enum Live {
    Page(DmaAddr, u64, DmaDirection),
    Sg(Vec<(DmaAddr, u64)>, DmaDirection),
    Coherent(PhysAddr, DmaAddr, u64),
}

/// Everything a machine restores, the core first.
struct Saved {
    core: CoreSnapshot,
    fake: FakeSnapshot,
    mem: MemSnapshot,
    frames: AllocSnapshot,
    log: (u64, Vec<String>),
    h: Harness,
}

impl Rig {
    fn new(cfg: CoreConfig) -> Rig {
        let mem = Arc::new(PhysMem::new(&[Region::new(PhysAddr::new(RAM), 16 << 20)]).unwrap());
        let frames =
            Arc::new(FrameAllocator::new(mem.clone(), PhysAddr::new(RAM), 16 << 20).unwrap());
        let log = Arc::new(TestLog::default());
        let core = IommuCore::new(cfg, mem.clone(), frames.clone(), log.clone());
        let fake = Arc::new(FakeDriver::new("arm-smmu 5000000.iommu"));
        let inst = core.register(fake.clone());
        Rig {
            core,
            fake,
            mem,
            frames,
            log,
            inst,
            h: Harness::default(),
        }
    }

    fn save(&self) -> Saved {
        Saved {
            core: self.core.snapshot().unwrap(),
            fake: self.fake.snapshot(),
            mem: self.mem.snapshot(),
            frames: self.frames.snapshot(),
            log: self.log.inner.lock().clone(),
            h: self.h.clone(),
        }
    }

    fn restore(&mut self, s: &Saved) {
        self.restore_as(s, Restore::Changes);
    }

    fn restore_as(&mut self, s: &Saved, how: Restore) {
        self.core.restore_as(&s.core, how).unwrap();
        self.fake.restore(&s.fake);
        self.mem.restore(&s.mem).unwrap();
        self.frames.restore(&s.frames).unwrap();
        self.log.inner.lock().clone_from(&s.log);
        self.h = s.h.clone();
    }
}

#[derive(Debug, Clone)]
enum Op {
    /// A device with stream ID `sid` (devices with one stream ID share a group).
    Probe {
        sid: u32,
        platform: bool,
    },
    Map {
        dev: prop::sample::Index,
        off: u64,
        size: u64,
        dir: u8,
    },
    MapSg {
        dev: prop::sample::Index,
        n: usize,
        size: u64,
    },
    Coherent {
        dev: prop::sample::Index,
        size: u64,
    },
    Unmap {
        pick: prop::sample::Index,
    },
    Release {
        dev: prop::sample::Index,
    },
    Unregister,
    AllocUnmanaged,
    Attach {
        dev: prop::sample::Index,
        dom: prop::sample::Index,
    },
    Detach {
        dev: prop::sample::Index,
    },
    DomainFree {
        dom: prop::sample::Index,
    },
    IommuMap {
        dom: prop::sample::Index,
        page: u64,
    },
    Claim {
        dev: prop::sample::Index,
        owner: Option<u8>,
    },
    ReleaseOwner {
        dev: prop::sample::Index,
    },
    Drain,
    Tick {
        ns: u64,
    },
    FqExpiry {
        dev: prop::sample::Index,
    },
}

fn op() -> impl Strategy<Value = Op> {
    use prop::sample::Index;
    prop_oneof![
        2 => (0x10u32..0x14, any::<bool>()).prop_map(|(sid, platform)| Op::Probe { sid, platform }),
        8 => (any::<Index>(), 0u64..0x10_0000, 1u64..0x6000, 0u8..3)
            .prop_map(|(dev, off, size, dir)| Op::Map { dev, off, size, dir }),
        1 => (any::<Index>(), 1usize..4, 1u64..0x3000).prop_map(|(dev, n, size)| Op::MapSg { dev, n, size }),
        1 => (any::<Index>(), 1u64..0x5000).prop_map(|(dev, size)| Op::Coherent { dev, size }),
        6 => any::<Index>().prop_map(|pick| Op::Unmap { pick }),
        1 => any::<Index>().prop_map(|dev| Op::Release { dev }),
        1 => Just(Op::Unregister),
        1 => Just(Op::AllocUnmanaged),
        1 => (any::<Index>(), any::<Index>()).prop_map(|(dev, dom)| Op::Attach { dev, dom }),
        1 => any::<Index>().prop_map(|dev| Op::Detach { dev }),
        1 => any::<Index>().prop_map(|dom| Op::DomainFree { dom }),
        1 => (any::<Index>(), 0u64..64).prop_map(|(dom, page)| Op::IommuMap { dom, page }),
        1 => (any::<Index>(), prop::option::of(0u8..2)).prop_map(|(dev, owner)| Op::Claim { dev, owner }),
        1 => any::<Index>().prop_map(|dev| Op::ReleaseOwner { dev }),
        1 => Just(Op::Drain),
        1 => (0u64..20_000_000).prop_map(|ns| Op::Tick { ns }),
        1 => any::<Index>().prop_map(|dev| Op::FqExpiry { dev }),
    ]
}

fn dir_of(d: u8) -> DmaDirection {
    [
        DmaDirection::ToDevice,
        DmaDirection::FromDevice,
        DmaDirection::Bidirectional,
    ][d as usize % 3]
}

fn pick<T: Clone>(v: &[T], i: &prop::sample::Index) -> Option<T> {
    (!v.is_empty()).then(|| v[i.index(v.len())].clone())
}

/// Run one operation; the result as the caller saw it (IOVAs and errors included).
fn step(r: &mut Rig, op: &Op) -> String {
    let core = r.core.clone();
    let h = &mut r.h;
    match op {
        Op::Probe { sid, platform } => {
            h.probes += 1;
            let bus = if *platform { Bus::Platform } else { Bus::Pci };
            let desc = DeviceDesc::new(&format!("dev{}", h.probes), bus, u64::from(*sid), &[*sid]);
            let res = core.probe_device(desc, r.inst);
            if let Ok(d) = res {
                h.devs.push(d);
            }
            format!("probe {res:?}")
        }
        Op::Map {
            dev,
            off,
            size,
            dir,
        } => {
            let Some(d) = pick(&h.devs, dev) else {
                return "no device".into();
            };
            let res = core.dma_map_page(d, PhysAddr::new(RAM + off), *size, dir_of(*dir));
            if let Ok(a) = res {
                h.live.push((d, Live::Page(a, *size, dir_of(*dir))));
            }
            format!("map {res:?}")
        }
        Op::MapSg { dev, n, size } => {
            let Some(d) = pick(&h.devs, dev) else {
                return "no device".into();
            };
            let segs: Vec<_> = (0..*n as u64)
                .map(|i| (PhysAddr::new(RAM + 0x20_0000 + i * 0x4000), *size))
                .collect();
            let res = core.dma_map_sg(d, &segs, DmaDirection::ToDevice);
            if let Ok(list) = &res {
                h.live
                    .push((d, Live::Sg(list.clone(), DmaDirection::ToDevice)));
            }
            format!("sg {res:?}")
        }
        Op::Coherent { dev, size } => {
            let Some(d) = pick(&h.devs, dev) else {
                return "no device".into();
            };
            let res = core.dma_alloc_coherent(d, *size);
            if let Ok((pa, a)) = res {
                h.live.push((d, Live::Coherent(pa, a, *size)));
            }
            format!("coherent {res:?}")
        }
        Op::Unmap { pick: p } => {
            if h.live.is_empty() {
                return "nothing live".into();
            }
            let (d, l) = h.live.remove(p.index(h.live.len()));
            let res = match &l {
                Live::Page(a, size, dir) => core.dma_unmap_page(d, *a, *size, *dir),
                Live::Sg(list, dir) => core.dma_unmap_sg(d, list, *dir),
                Live::Coherent(pa, a, size) => core.dma_free_coherent(d, *size, *pa, *a),
            };
            format!("unmap {l:?} {res:?}")
        }
        Op::Release { dev } => match pick(&h.devs, dev) {
            Some(d) => {
                core.release_device(d);
                format!("release {d:?}")
            }
            None => "no device".into(),
        },
        Op::Unregister => format!("unregister {:?}", core.unregister(r.inst)),
        Op::AllocUnmanaged => {
            let res = core.alloc_unmanaged(r.inst);
            let s = format!("alloc {:?}", res.as_ref().map(|d| d.id()));
            if let Ok(d) = res {
                h.unmanaged.push(d);
            }
            s
        }
        Op::Attach { dev, dom } => match (pick(&h.devs, dev), pick(&h.unmanaged, dom)) {
            (Some(d), Some(u)) => format!("attach {:?}", core.attach_device(d, &u)),
            _ => "nothing to attach".into(),
        },
        Op::Detach { dev } => match pick(&h.devs, dev) {
            Some(d) => format!("detach {:?}", core.detach_device(d)),
            None => "no device".into(),
        },
        Op::DomainFree { dom } => match pick(&h.unmanaged, dom) {
            Some(u) => format!("free {:?}", core.iommu_domain_free(&u)),
            None => "no domain".into(),
        },
        Op::IommuMap { dom, page } => match pick(&h.unmanaged, dom) {
            Some(u) => {
                let at = page << 12;
                let res = core.iommu_map(
                    &u,
                    Iova::new(at),
                    PhysAddr::new(RAM + at),
                    0x1000,
                    crate::Prot::READ,
                );
                format!("iommu_map {res:?}")
            }
            None => "no domain".into(),
        },
        Op::Claim { dev, owner } => match pick(&h.devs, dev) {
            Some(d) => {
                let name = owner.map(|o| format!("owner{o}"));
                format!("claim {:?}", core.claim_dma_owner(d, name.as_deref()))
            }
            None => "no device".into(),
        },
        Op::ReleaseOwner { dev } => match pick(&h.devs, dev) {
            Some(d) => {
                core.release_dma_owner(d);
                "release owner".into()
            }
            None => "no device".into(),
        },
        Op::Drain => {
            core.flush_queue_drain();
            "drain".into()
        }
        Op::Tick { ns } => {
            r.log.inner.lock().0 += ns;
            core.run_timers();
            "tick".into()
        }
        Op::FqExpiry { dev } => match pick(&h.devs, dev) {
            Some(d) => format!("fq expiry {:?}", core.fq_timer_expiry(d)),
            None => "no device".into(),
        },
    }
}

/// Names one object per id, and says so when one id has two objects.
#[derive(Default)]
struct Ids(BTreeMap<(char, u32), usize>, Vec<String>);

impl Ids {
    fn see<T>(&mut self, kind: char, id: u32, a: &Arc<T>) {
        let p = Arc::as_ptr(a) as usize;
        if *self.0.entry((kind, id)).or_insert(p) != p {
            self.1.push(format!("two objects are {kind}{id}"));
        }
    }
}

/// Every field of the core's state, with groups and domains named by number.
fn dump(core: &IommuCore) -> String {
    let st = core.state.lock();
    let mut ids = Ids::default();
    let mut doms: BTreeMap<u32, Arc<Domain>> = BTreeMap::new();
    let mut s = String::new();
    let mut dom = |ids: &mut Ids, d: &Option<Arc<Domain>>| {
        d.as_ref().map(|d| {
            ids.see('d', d.id().0, d);
            doms.insert(d.id().0, d.clone());
            d.id().0
        })
    };
    let _ = writeln!(
        s,
        "instances {:?} next {} {} {} {} dev_iommu {:?} freed {:?}",
        st.instances.keys().collect::<Vec<_>>(),
        st.next_instance,
        st.next_device,
        st.next_domain,
        st.next_dev_iommu,
        st.dev_iommu,
        st.dev_iommu_freed
    );
    let mut groups: Vec<Arc<Group>> = st.groups.values().cloned().collect();
    for d in st.devices.values() {
        let g = d.group.read().clone();
        let gid = g.as_ref().map(|g| {
            ids.see('g', g.id, g);
            groups.push(g.clone());
            g.id
        });
        let _ = writeln!(
            s,
            "device {} {} group {gid:?} released {} direct {:?} attached {:?}",
            d.id.0,
            d.desc.log_name,
            d.released.load(Ordering::Acquire),
            d.direct_maps.lock(),
            d.attached.lock()
        );
    }
    for g in &groups {
        ids.see('g', g.id, g);
        let def = dom(&mut ids, &g.default_domain());
        let cur = dom(&mut ids, &g.domain.lock().clone());
        let _ = writeln!(
            s,
            "group {} listed {} inst {:?} key {:?} members {:?} locked {} default {def:?} domain {cur:?} refs {} device_refs {} freed {} owner {:?}",
            g.id,
            st.groups.get(&g.id).is_some_and(|l| Arc::ptr_eq(l, g)),
            g.instance,
            g.key,
            g.members.lock(),
            g.mutex.is_locked(),
            g.refs.lock(),
            g.device_refs.lock(),
            g.freed.load(Ordering::Acquire),
            g.owner.lock()
        );
    }
    let orphans: Vec<_> = st
        .orphans
        .iter()
        .map(|d| dom(&mut ids, &Some(d.clone())))
        .collect();
    let registry: Vec<_> = st
        .domains
        .iter()
        .filter_map(Weak::upgrade)
        .map(|d| dom(&mut ids, &Some(d)))
        .collect();
    let _ = writeln!(s, "orphans {orphans:?} registry {registry:?}");
    for d in doms.values() {
        let _ = writeln!(s, "{}", d.dump());
    }
    let _ = writeln!(s, "{:?} {:?}", core.stats(), ids.1);
    s
}

fn cfg_strategy() -> impl Strategy<Value = CoreConfig> {
    (any::<bool>(), any::<bool>(), any::<bool>(), 0u8..8).prop_map(
        |(strict, linux_faithful, domains_freed_with_last_member, passthrough)| CoreConfig {
            strict,
            linux_faithful,
            domains_freed_with_last_member,
            passthrough: passthrough == 0,
            fq_size: 4,
            ..CoreConfig::default()
        },
    )
}

/// Devices probed at boot (stream IDs: two share a group) and their boot mappings.
fn boot(r: &mut Rig, maps: &[(u64, u64)]) {
    for (i, sid) in [0x10u32, 0x11, 0x11, 0x12].into_iter().enumerate() {
        let d = r
            .core
            .probe_device(
                DeviceDesc::new(&format!("boot{i}"), Bus::Pci, i as u64, &[sid]),
                r.inst,
            )
            .unwrap();
        r.h.devs.push(d);
    }
    for &(off, size) in maps {
        let d = r.h.devs[(off % 4) as usize];
        let a = r
            .core
            .dma_map_page(d, PhysAddr::new(RAM + off), size, DmaDirection::FromDevice)
            .unwrap();
        r.h.live
            .push((d, Live::Page(a, size, DmaDirection::FromDevice)));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    /// Boot, snapshot, then rounds of abandoned operations each followed by a restore, then a
    /// continuation: the restored core returns what a twin that only booted returns, and ends
    /// with the same state, driver and log.
    #[test]
    fn a_restored_core_continues_as_one_that_never_left(
        cfg in cfg_strategy(),
        boot_maps in prop::collection::vec((0u64..0x40_0000, 1u64..0x3000), 0..24),
        abandoned in prop::collection::vec(prop::collection::vec(op(), 0..24), 1..4),
        cont in prop::collection::vec(op(), 0..32),
    ) {
        let mut a = Rig::new(cfg.clone());
        let mut b = Rig::new(cfg);
        boot(&mut a, &boot_maps);
        boot(&mut b, &boot_maps);
        let saved = a.save();
        prop_assert_eq!(saved.core.mappings(), a.core.dma_domains().iter().map(|d| d.live_mappings()).sum::<usize>());
        for round in &abandoned {
            for op in round {
                step(&mut a, op);
            }
            a.restore(&saved);
            prop_assert_eq!(dump(&a.core), dump(&b.core));
        }
        for op in &cont {
            let (ra, rb) = (step(&mut a, op), step(&mut b, op));
            prop_assert_eq!(ra, rb, "{:?}", op);
        }
        prop_assert_eq!(dump(&a.core), dump(&b.core));
        prop_assert_eq!(a.fake.snapshot(), b.fake.snapshot());
        prop_assert_eq!(a.log.inner.lock().clone(), b.log.inner.lock().clone());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// The restore that puts back only the changed mapping records leaves every core, driver
    /// and continuation as the restore that copies every record.
    #[test]
    fn restoring_the_changes_is_restoring_everything(
        cfg in cfg_strategy(),
        boot_maps in prop::collection::vec((0u64..0x40_0000, 1u64..0x3000), 0..48),
        abandoned in prop::collection::vec(prop::collection::vec(op(), 0..32), 1..4),
        cont in prop::collection::vec(op(), 0..32),
    ) {
        let mut a = Rig::new(cfg.clone());
        let mut b = Rig::new(cfg);
        boot(&mut a, &boot_maps);
        boot(&mut b, &boot_maps);
        let (sa, sb) = (a.save(), b.save());
        for round in &abandoned {
            for op in round {
                prop_assert_eq!(step(&mut a, op), step(&mut b, op));
            }
            a.restore_as(&sa, Restore::Changes);
            b.restore_as(&sb, Restore::Whole);
            prop_assert_eq!(dump(&a.core), dump(&b.core));
        }
        for op in &cont {
            prop_assert_eq!(step(&mut a, op), step(&mut b, op), "{:?}", op);
        }
        prop_assert_eq!(dump(&a.core), dump(&b.core));
        prop_assert_eq!(a.fake.snapshot(), b.fake.snapshot());
    }
}

/// The NIC's case: many records, a few changed, the domain kept: only the changes are put
/// back, and the table tracks the snapshot again for the next run.
#[test]
fn a_few_changes_are_rewound_and_tracked_again() {
    let mut r = Rig::new(CoreConfig::default());
    let maps: Vec<(u64, u64)> = (0..256).map(|i| (i * 4 * 0x1000, 0x600)).collect();
    boot(&mut r, &maps);
    let saved = r.save();
    let want = dump(&r.core);
    let dom = r.core.default_domain(r.h.devs[0]).unwrap();
    for round in 0..3u64 {
        let (d, Live::Page(a, size, dir)) = r.h.live[round as usize].clone() else {
            unreachable!("boot maps pages")
        };
        r.core.dma_unmap_page(d, a, size, dir).unwrap();
        r.core
            .dma_map_page(d, PhysAddr::new(RAM + 0x80_0000), 0x600, dir)
            .unwrap();
        assert!(dom.state().maps.tracks(saved.core.domains[0].token()));
        r.restore(&saved);
        assert_eq!(dump(&r.core), want, "round {round}");
    }
}

/// A run that frees a domain frees it in the driver during the run, as without a snapshot:
/// the snapshot holds groups and domains weakly.
#[test]
fn a_snapshot_does_not_delay_a_domain_free() {
    let mut r = Rig::new(CoreConfig::default());
    boot(&mut r, &[]);
    let saved = r.save();
    let freed = || r.fake.counters.domains_freed.load(Ordering::Relaxed);
    let before = freed();
    r.core.unregister(r.inst).unwrap();
    // Three groups (two devices share one): each default domain is freed as its group goes.
    assert_eq!(freed(), before + 3);
    r.restore(&saved);
    assert_eq!(
        r.fake.counters.domains_freed.load(Ordering::Relaxed),
        before
    );
    // The revived domains are freed again by the next run, once each.
    r.core.unregister(r.inst).unwrap();
    assert_eq!(
        r.fake.counters.domains_freed.load(Ordering::Relaxed),
        before + 3
    );
}

#[test]
fn a_snapshot_of_another_core_is_refused_and_changes_nothing() {
    let mut a = Rig::new(CoreConfig::default());
    let mut b = Rig::new(CoreConfig::default());
    boot(&mut a, &[(0x1000, 0x1000)]);
    boot(&mut b, &[]);
    let before = dump(&a.core);
    let err = a.core.restore(&b.core.snapshot().unwrap()).unwrap_err();
    assert_eq!(
        err,
        CoreSnapshotError::ForeignCore {
            snapshot: b.core.id,
            core: a.core.id
        }
    );
    assert_eq!(
        err.to_string(),
        format!(
            "snapshot of IOMMU core #{} cannot be restored into IOMMU core #{}",
            b.core.id, a.core.id
        )
    );
    assert_eq!(dump(&a.core), before);
}

#[test]
fn a_held_group_mutex_refuses_a_snapshot_and_a_restore_unlocks_it() {
    let mut r = Rig::new(CoreConfig::default());
    boot(&mut r, &[]);
    let saved = r.save();
    let g = r.core.state.lock().groups.get(&1).cloned().unwrap();
    g.mutex.lock().unwrap().leak();
    assert_eq!(
        r.core.snapshot().unwrap_err(),
        CoreSnapshotError::Locked {
            lock: "group 1->mutex".into()
        }
    );
    r.restore(&saved);
    assert!(!g.mutex.is_locked());
    assert!(r.core.snapshot().is_ok());
}

#[test]
fn a_held_cookie_mutex_refuses_a_snapshot() {
    let mut r = Rig::new(CoreConfig::default());
    boot(&mut r, &[]);
    let dom = r.core.default_domain(r.h.devs[0]).unwrap();
    let held = dom.cookie_mutex().lock().unwrap();
    assert_eq!(
        r.core.snapshot().unwrap_err(),
        CoreSnapshotError::Locked {
            lock: format!("domain {}->iova_cookie->mutex", dom.id().0)
        }
    );
    drop(held);
    assert!(r.core.snapshot().is_ok());
}

/// What a run probes is gone after a restore: its device, group and domain (freed in the
/// driver by the restore), and the numbers it took are handed out again.
#[test]
fn objects_a_run_creates_vanish_on_restore() {
    let mut r = Rig::new(CoreConfig::default());
    boot(&mut r, &[]);
    let saved = r.save();
    let live = r.fake.live_domains();
    let d = r
        .core
        .probe_device(DeviceDesc::new("late", Bus::Pci, 9, &[0x20]), r.inst)
        .unwrap();
    assert_eq!(r.core.group_of(d), Some(3));
    assert_eq!(r.fake.live_domains(), live + 1);
    r.core.restore(&saved.core).unwrap();
    // The core's restore dropped the run's domain: freed in the (not yet restored) driver.
    assert_eq!(r.fake.live_domains(), live);
    assert_eq!(r.core.group_of(d), None);
    assert_eq!(r.core.groups(), vec![0, 1, 2]);
    r.restore(&saved);
    let again = r
        .core
        .probe_device(DeviceDesc::new("late", Bus::Pci, 9, &[0x20]), r.inst)
        .unwrap();
    assert_eq!((again, r.core.group_of(again)), (d, Some(3)));
}

/// A worker may build its machine's snapshot on one thread and restore on another.
#[test]
fn a_snapshot_is_send_and_sync() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<CoreSnapshot>();
}
