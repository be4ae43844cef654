//! `IommuCore::restore` of a booted machine's core, as the explorer runs it before every
//! schedule: ENETC's two 2,048-buffer RX rings mapped (4,096 `dma_map_page`s in one DMA
//! domain) beside a few other devices, then a run's changes, then the restore. Only the
//! restore is timed; the run and the fake driver's own restore are not.

use criterion::{criterion_group, criterion_main, Criterion};
use iommu::fake::{FakeDriver, FakeSnapshot};
use iommu::*;
use klog::MemLog;
use physmem::PhysAddr;
use physmem::{FrameAllocator, PhysMem, Region};
use smmu_addr::DmaAddr;
use std::sync::Arc;

use bench_clock::Timer;

const RAM: u64 = 0x8000_0000;
/// Two RX rings of 2,048 buffers (ENETC's default ring size).
const RX_BUFFERS: u64 = 4096;
const RX_LEN: u64 = 1536;

struct Booted {
    core: Arc<IommuCore>,
    fake: Arc<FakeDriver>,
    inst: InstanceId,
    nic: DeviceId,
    rx: Vec<DmaAddr>,
    core_snap: CoreSnapshot,
    fake_snap: FakeSnapshot,
}

fn boot() -> Booted {
    let mem = Arc::new(PhysMem::new(&[Region::new(PhysAddr::new(RAM), 64 << 20)]).expect("region"));
    let frames = Arc::new(
        FrameAllocator::new(mem.clone(), PhysAddr::new(RAM), 64 << 20).expect("allocator"),
    );
    let core = IommuCore::new(CoreConfig::default(), mem, frames, Arc::new(MemLog::new()));
    let fake = Arc::new(FakeDriver::new("arm-smmu 5000000.iommu"));
    let inst = core.register(fake.clone());
    for (i, sid) in [0x4000u32, 0x4001, 0x4002, 0x4003, 0x4004]
        .into_iter()
        .enumerate()
    {
        let desc = DeviceDesc::new(&format!("dev{i}"), Bus::Platform, i as u64, &[sid]);
        core.probe_device(desc, inst).expect("probe");
    }
    let nic = core
        .probe_device(
            DeviceDesc::new("fsl_enetc 0000:00:00.0", Bus::Pci, 0, &[0x4029]),
            inst,
        )
        .expect("probe");
    let rx = (0..RX_BUFFERS)
        .map(|i| {
            core.dma_map_page(
                nic,
                PhysAddr::new(RAM + i * 4096),
                RX_LEN,
                DmaDirection::FromDevice,
            )
            .expect("map")
        })
        .collect();
    let core_snap = core.snapshot().expect("snapshot");
    let fake_snap = fake.snapshot();
    Booted {
        core,
        fake,
        inst,
        nic,
        rx,
        core_snap,
        fake_snap,
    }
}

/// NAPI's RX refill: `n` buffers unmapped and mapped again.
fn remap(b: &Booted, n: usize) {
    for (i, &a) in b.rx.iter().take(n).enumerate() {
        let _ = b
            .core
            .dma_unmap_page(b.nic, a, RX_LEN, DmaDirection::FromDevice);
        let pa = PhysAddr::new(RAM + (RX_BUFFERS + i as u64) * 4096);
        let _ = b
            .core
            .dma_map_page(b.nic, pa, RX_LEN, DmaDirection::FromDevice);
    }
}

fn benches(c: &mut Criterion) {
    let b = boot();
    let mut g = c.benchmark_group("core_restore");
    type Run = fn(&Booted);
    let runs: [(&str, Run); 4] = [
        ("untouched", |_| {}),
        ("after_64_remaps", |b| remap(b, 64)),
        ("after_unregister", |b| {
            let _ = b.core.unregister(b.inst);
        }),
        ("after_64_remaps_and_unregister", |b| {
            remap(b, 64);
            let _ = b.core.unregister(b.inst);
        }),
    ];
    for (name, run) in runs {
        g.bench_function(name, |bn| {
            bn.iter_custom(|iters| {
                let mut spent = std::time::Duration::ZERO;
                for _ in 0..iters {
                    run(&b);
                    let t = Timer::start();
                    b.core.restore(&b.core_snap).expect("restore");
                    spent += t.elapsed();
                    b.fake.restore(&b.fake_snap);
                }
                spent
            })
        });
    }
    g.bench_function("snapshot", |bn| {
        bn.iter_custom(|iters| {
            let t = Timer::start();
            for _ in 0..iters {
                std::hint::black_box(b.core.snapshot().expect("snapshot"));
            }
            t.elapsed()
        })
    });
    g.finish();
}

criterion_group!(snapshot, benches);
criterion_main!(snapshot);
