//! Command-queue round trips of the driver on the model.
//!
//! * `cmd_sync_poll_cons`: `flush_iotlb_all` on the QEMU-virt preset: TLBI_NH_ASID + CMD_SYNC
//!   written into the queue, one CMDQ_PROD write, the model consumes both, the driver polls
//!   CMDQ_CONS once (no MSI on QEMU's SMMUv3).
//! * `cmd_sync_msi_poll`: the same on the MSI preset: the sync completes by an MSI write into
//!   its own queue slot, which the driver polls in memory.
//! * `unmap_page_and_sync`: map one page, unmap it and `iotlb_sync` (one range TLBI + sync).
//!
//! Clock: the benchmark thread's CPU time (`bench_clock`).

use arm_smmu_v3::{
    ArmSmmuV3, FirmwareDesc, KernelVersion, ModuleParams, RateLimits, ShutdownPolicy, SmmuEnv,
};
use criterion::{criterion_group, criterion_main, Criterion};
use iommu::{DeviceId, DomainKind, FwSpec, Gather, IommuDriver, MasterInfo, Prot};
use physmem::{FrameAllocator, PhysMem, Region};
use smmu_addr::{Iova, PageCount, PageSize, PhysAddr};
use smmuv3::{SmmuV3, SmmuV3Config};
use std::hint::black_box;
use std::sync::Arc;

const RAM: u64 = 0x4000_0000;

fn setup(cfg: SmmuV3Config) -> (Arc<ArmSmmuV3>, iommu::DriverDomain) {
    let mem = Arc::new(PhysMem::new(&[Region::new(PhysAddr::new(RAM), 64 << 20)]).unwrap());
    let frames = Arc::new(FrameAllocator::new(mem.clone(), PhysAddr::new(RAM), 64 << 20).unwrap());
    let model = SmmuV3::new(cfg, mem).unwrap();
    let env = SmmuEnv {
        mmio: model,
        log: Arc::new(klog::MemLog::new()),
        frames,
        limits: Arc::new(RateLimits::default()),
    };
    let s = ArmSmmuV3::probe(
        &FirmwareDesc::qemu_virt(),
        ModuleParams::default(),
        KernelVersion::V6_12,
        ShutdownPolicy::Linux62,
        env,
    )
    .unwrap();
    s.probe_device(&MasterInfo {
        id: DeviceId(1),
        log_name: "nic".into(),
        fwspec: FwSpec { ids: vec![8] },
    })
    .unwrap();
    let d = s.domain_alloc(DomainKind::Dma).unwrap();
    s.attach_dev(d, DeviceId(1)).unwrap();
    (s, d)
}

fn benches(c: &mut Criterion) {
    let (s, d) = setup(SmmuV3Config::qemu_virt());
    c.bench_function("cmd_sync_poll_cons", |b| {
        b.iter_custom(|n| bench_clock::time_iters(n, || s.flush_iotlb_all(black_box(d))))
    });
    let (m, dm) = setup(SmmuV3Config::s1s2_msi());
    c.bench_function("cmd_sync_msi_poll", |b| {
        b.iter_custom(|n| bench_clock::time_iters(n, || m.flush_iotlb_all(black_box(dm))))
    });
    c.bench_function("unmap_page_and_sync", |b| {
        b.iter_custom(|n| {
            bench_clock::time_iters(n, || {
                s.map_pages(
                    d,
                    Iova::new(0x10_0000),
                    PhysAddr::new(RAM + 0x100_0000),
                    PageSize::SZ_4K,
                    PageCount::new(1),
                    Prot::READ,
                )
                .unwrap();
                let mut g = Gather::new();
                s.unmap_pages(
                    d,
                    Iova::new(0x10_0000),
                    PageSize::SZ_4K,
                    PageCount::new(1),
                    &mut g,
                );
                s.iotlb_sync(d, &mut g);
            })
        })
    });
}

criterion_group!(group, benches);
criterion_main!(group);
