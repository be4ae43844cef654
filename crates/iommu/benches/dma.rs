//! dma_map_page + dma_unmap_page pairs through the core with the fake driver, strict and lazy.

use criterion::{criterion_group, criterion_main, Criterion};
use iommu::fake::FakeDriver;
use iommu::*;
use klog::MemLog;
use physmem::PhysAddr;
use physmem::{FrameAllocator, PhysMem, Region};
use std::hint::black_box;
use std::sync::Arc;

use bench_clock::Timer;

const RAM: u64 = 0x8000_0000;

fn setup(strict: bool) -> (Arc<IommuCore>, DeviceId) {
    let mem = Arc::new(PhysMem::new(&[Region::new(PhysAddr::new(RAM), 16 << 20)]).expect("region"));
    let frames = Arc::new(
        FrameAllocator::new(mem.clone(), PhysAddr::new(RAM), 16 << 20).expect("allocator"),
    );
    let core = IommuCore::new(
        CoreConfig {
            strict,
            ..CoreConfig::default()
        },
        mem,
        frames,
        Arc::new(MemLog::new()),
    );
    let inst = core.register(Arc::new(FakeDriver::new("arm-smmu 5000000.iommu")));
    let dev = core
        .probe_device(
            DeviceDesc::new("fsl_enetc 0000:00:00.0", Bus::Pci, 0, &[0x429]),
            inst,
        )
        .expect("probe");
    (core, dev)
}

fn benches(c: &mut Criterion) {
    let mut g = c.benchmark_group("dma");
    for (name, strict) in [
        ("map_unmap_pair_strict", true),
        ("map_unmap_pair_lazy", false),
    ] {
        g.bench_function(name, |b| {
            let (core, dev) = setup(strict);
            let mut i = 0u64;
            b.iter_custom(|iters| {
                let start = Timer::start();
                for _ in 0..iters {
                    i = i.wrapping_add(1);
                    let pa = PhysAddr::new(RAM + (i & 255) * 4096 + 0x40);
                    let a = core
                        .dma_map_page(dev, pa, 1500, DmaDirection::ToDevice)
                        .unwrap_or_default();
                    let _ = black_box(core.dma_unmap_page(dev, a, 1500, DmaDirection::ToDevice));
                }
                start.elapsed()
            })
        });
    }
    g.finish();
}

criterion_group!(dma, benches);
criterion_main!(dma);
