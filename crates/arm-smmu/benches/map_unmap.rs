//! Map + unmap (strict: unmap, then iotlb_sync) of one 4 KiB page through the driver on the
//! LS1028A `mmu500` model.

use arm_smmu::{
    ArmSmmu, FirmwareDesc, LinuxVersion, LpaeTables, ModuleParams, RateLimits, SmmuEnv,
};
use criterion::{criterion_group, criterion_main, Criterion};
use iommu::{DeviceId, DomainKind, FwSpec, Gather, IommuDriver, MasterInfo, Prot};
use klog::MemLog;
use mmu500::{Mmu500, Mmu500Config};
use physmem::{FrameAllocator, PhysMem, Region};
use smmu_addr::{Iova, PageCount, PageSize, PhysAddr};
use std::hint::black_box;
use std::sync::Arc;

fn bench(c: &mut Criterion) {
    let base = 0x8000_0000;
    let mem = Arc::new(PhysMem::new(&[Region::new(PhysAddr::new(base), 0x400_0000)]).unwrap());
    let frames = Arc::new(
        FrameAllocator::new(mem.clone(), PhysAddr::new(base + 0x200_0000), 0x200_0000).unwrap(),
    );
    let model = Mmu500::new(Mmu500Config::mmu500_ls1028a(), mem).unwrap();
    let smmu = ArmSmmu::probe_and_reset(
        &FirmwareDesc::ls1028a(),
        ModuleParams::default(),
        LinuxVersion::V6_2.behaviour(),
        SmmuEnv {
            mmio: model,
            log: Arc::new(MemLog::new()),
            frames,
            tables: Arc::new(LpaeTables::SAFE),
            limits: Arc::new(RateLimits::default()),
        },
    )
    .unwrap();
    smmu.probe_device(&MasterInfo {
        id: DeviceId(1),
        log_name: "m".into(),
        fwspec: FwSpec {
            ids: vec![0x7c00_0029],
        },
    })
    .unwrap();
    let dom = smmu.domain_alloc(DomainKind::Dma).unwrap();
    smmu.attach_dev(dom, DeviceId(1)).unwrap();
    let iova = 0x1000_0000;
    c.bench_function("map+unmap 4K strict (mmu500 model)", |b| {
        b.iter(|| {
            smmu.map_pages(
                dom,
                Iova::new(iova),
                PhysAddr::new(base + 0x1000),
                PageSize::SZ_4K,
                PageCount::new(1),
                Prot::READ | Prot::WRITE,
            )
            .unwrap();
            let mut g = Gather::new();
            let n = smmu.unmap_pages(
                dom,
                Iova::new(black_box(iova)),
                PageSize::SZ_4K,
                PageCount::new(1),
                &mut g,
            );
            smmu.iotlb_sync(dom, &mut g);
            black_box(n)
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
