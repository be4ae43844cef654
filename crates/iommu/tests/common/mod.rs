//! Shared setup: a core over 64 MiB of RAM at 0x8000_0000 with one fake IOMMU instance.
#![allow(dead_code)]

use iommu::fake::FakeDriver;
use iommu::*;
use klog::MemLog;
use physmem::{FrameAllocator, PhysMem, Region};
pub use smmu_addr::{DmaAddr, Iova, PhysAddr};
use std::sync::Arc;

pub const RAM: u64 = 0x8000_0000;
pub const SMMU: &str = "arm-smmu 5000000.iommu";

pub struct Rig {
    pub core: Arc<IommuCore>,
    pub fake: Arc<FakeDriver>,
    pub log: Arc<MemLog>,
    pub inst: InstanceId,
    pub frames: Arc<FrameAllocator>,
}

pub fn rig_with(cfg: CoreConfig, fake: FakeDriver) -> Rig {
    let mem = Arc::new(PhysMem::new(&[Region::new(PhysAddr::new(RAM), 64 << 20)]).unwrap());
    let frames = Arc::new(FrameAllocator::new(mem.clone(), PhysAddr::new(RAM), 64 << 20).unwrap());
    let log = Arc::new(MemLog::new());
    let core = IommuCore::new(cfg, mem, frames.clone(), log.clone());
    let fake = Arc::new(fake);
    let inst = core.register(fake.clone());
    Rig {
        core,
        fake,
        log,
        inst,
        frames,
    }
}

pub fn rig(cfg: CoreConfig) -> Rig {
    rig_with(cfg, FakeDriver::new(SMMU))
}

/// A PCI device with a 64-bit mask and its own stream ID.
pub fn pci(name: &str, pos: u64, sid: u32) -> DeviceDesc {
    DeviceDesc::new(name, Bus::Pci, pos, &[sid])
}

pub fn platform(name: &str, pos: u64, sid: u32) -> DeviceDesc {
    DeviceDesc::new(name, Bus::Platform, pos, &[sid])
}

/// The physical address `x`.
pub fn paddr(x: u64) -> PhysAddr {
    PhysAddr::new(x)
}

/// The DMA address `x`.
pub fn da(x: u64) -> DmaAddr {
    DmaAddr::new(x)
}

/// The IOVA `x`.
pub fn iova(x: u64) -> Iova {
    Iova::new(x)
}

/// `iommu_iova_to_phys` at `addr + off` as Linux returns it: 0 when nothing is mapped.
pub fn phys(r: &Rig, dom: &Arc<Domain>, addr: impl Into<u64>, off: u64) -> u64 {
    r.core
        .iova_to_phys(dom, Iova::new(addr.into() + off))
        .map_or(0, PhysAddr::as_u64)
}
