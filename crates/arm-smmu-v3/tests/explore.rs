//! DMA against the driver under the schedule explorer (every MMIO access and DMA transaction is
//! a scheduling point):
//!
//! * unmap + `iotlb_sync` on one CPU, the NIC's DMA on another: once `iotlb_sync` has returned,
//!   no DMA that starts afterwards may still translate (the range TLBI + CMD_SYNC protocol);
//! * `.shutdown` on one CPU, the NIC (no `.shutdown`) still writing: after 32ea2c57dc21 the
//!   explorer finds DMA going out untranslated (GBPA bypass on QEMU's SMMUv3); quiesce holds.

use arm_smmu_v3::{
    ArmSmmuV3, FirmwareDesc, KernelVersion, ModuleParams, RateLimits, ShutdownPolicy, SmmuEnv,
};
use explore::{explore, ExploreOptions, Scenario, Strategy};
use iommu::{DeviceId, DomainKind, FwSpec, Gather, IommuDriver, MasterInfo, Prot};
use physmem::{FrameAllocator, PhysMem, Region};
use smmu_addr::{Iova, PageCount, PageSize, PhysAddr};
use smmu_sync::atomic::{AtomicBool, Ordering};
use smmu_sync::Arc;
use smmuv3::{Access, Outcome, SmmuV3, SmmuV3Config};

const RAM: u64 = 0x4000_0000;
const IOVA: u64 = 0x10_0000;

/// QEMU's SMMUv3 with small queues (the run is repeated thousands of times).
fn preset() -> SmmuV3Config {
    let mut c = SmmuV3Config::qemu_virt();
    c.idr[1] = 16 | (7 << 16) | (8 << 21);
    c
}

fn machine(policy: ShutdownPolicy) -> (Arc<SmmuV3>, Arc<ArmSmmuV3>, iommu::DriverDomain) {
    let mem = Arc::new(PhysMem::new(&[Region::new(PhysAddr::new(RAM), 16 << 20)]).unwrap());
    let frames = Arc::new(FrameAllocator::new(mem.clone(), PhysAddr::new(RAM), 16 << 20).unwrap());
    let model = SmmuV3::new(preset(), mem).unwrap();
    let env = SmmuEnv {
        mmio: model.clone(),
        log: Arc::new(klog::MemLog::new()),
        frames,
        limits: Arc::new(RateLimits::default()),
    };
    let smmu = smmu_sync::without_sched_points(|| {
        let s = ArmSmmuV3::probe(
            &FirmwareDesc::qemu_virt(),
            ModuleParams::default(),
            KernelVersion::V6_12,
            policy,
            env,
        )
        .unwrap();
        s.probe_device(&MasterInfo {
            id: DeviceId(1),
            log_name: "nic".into(),
            fwspec: FwSpec { ids: vec![8] },
        })
        .unwrap();
        s
    });
    let d = smmu.domain_alloc(DomainKind::Dma).unwrap();
    smmu_sync::without_sched_points(|| {
        smmu.attach_dev(d, DeviceId(1)).unwrap();
        smmu.map_pages(
            d,
            Iova::new(IOVA),
            PhysAddr::new(RAM + (8 << 20)),
            PageSize::SZ_4K,
            PageCount::new(1),
            Prot::READ | Prot::WRITE,
        )
        .unwrap();
    });
    (model, smmu, d)
}

/// The NIC: three DMA writes, each noting whether `done` was already set when it started.
fn nic(
    model: Arc<SmmuV3>,
    done: Arc<AtomicBool>,
) -> smmu_sync::thread::JoinHandle<Vec<(bool, Outcome)>> {
    smmu_sync::thread::spawn(move || {
        (0..3)
            .map(|_| {
                let after = done.load(Ordering::SeqCst);
                (after, model.translate(8, Iova::new(IOVA), Access::Write))
            })
            .collect()
    })
}

struct UnmapRace;

impl Scenario for UnmapRace {
    type Outcome = Vec<String>;

    fn run(&self) -> Vec<String> {
        let (model, smmu, d) = machine(ShutdownPolicy::Linux62);
        let done = Arc::new(AtomicBool::new(false));
        let t = nic(model, done.clone());
        let mut g = Gather::new();
        smmu.unmap_pages(
            d,
            Iova::new(IOVA),
            PageSize::SZ_4K,
            PageCount::new(1),
            &mut g,
        );
        smmu.iotlb_sync(d, &mut g);
        done.store(true, Ordering::SeqCst);
        let seen = t.join().unwrap_or_default();
        seen.iter()
            .map(|(after, o)| {
                format!(
                    "{} {:?}",
                    if *after { "after" } else { "during" },
                    o.pa().is_some()
                )
            })
            .collect()
    }

    fn violations(&self, out: &Vec<String>) -> Vec<String> {
        out.iter()
            .filter(|o| o.as_str() == "after true")
            .map(|_| "stale translation after iotlb_sync".to_string())
            .collect()
    }
}

struct ShutdownRace(ShutdownPolicy);

impl Scenario for ShutdownRace {
    type Outcome = Vec<String>;

    fn run(&self) -> Vec<String> {
        let (model, smmu, _d) = machine(self.0);
        let done = Arc::new(AtomicBool::new(false));
        let t = nic(model, done.clone());
        smmu.shutdown(&mut || {});
        done.store(true, Ordering::SeqCst);
        let seen = t.join().unwrap_or_default();
        seen.iter()
            .map(|(_, o)| match o {
                Outcome::Translated { .. } => "translated".to_string(),
                Outcome::Bypassed { .. } => "stray".to_string(),
                Outcome::Aborted(_) => "aborted".to_string(),
            })
            .collect()
    }

    fn violations(&self, out: &Vec<String>) -> Vec<String> {
        out.iter()
            .filter(|o| o.as_str() == "stray")
            .map(|_| "stray DMA".to_string())
            .collect()
    }
}

fn opts() -> ExploreOptions {
    ExploreOptions {
        strategy: Strategy::Pct { depth: 3 },
        runs: 300,
        seed: 1,
        jobs: 1,
        stop_at_first: false,
        max_steps: 200_000,
    }
}

#[test]
fn no_stale_translation_once_iotlb_sync_returns() {
    let rep = explore(Arc::new(UnmapRace), opts(), &|_, _| {});
    assert_eq!(rep.failing_runs, 0, "{:?}", rep.first_failure);
    assert!(!rep.failures.contains_key(explore::PANIC_PROPERTY));
}

#[test]
fn shutdown_race_stray_after_fix_none_with_quiesce() {
    let rep = explore(
        Arc::new(ShutdownRace(ShutdownPolicy::Linux62)),
        opts(),
        &|_, _| {},
    );
    assert!(rep.failures.contains_key("stray DMA"), "{:?}", rep.failures);
    let rep = explore(
        Arc::new(ShutdownRace(ShutdownPolicy::Quiesce)),
        opts(),
        &|_, _| {},
    );
    assert_eq!(rep.failing_runs, 0, "{:?}", rep.first_failure);
}
