#![allow(dead_code)]

use arm_smmu_v3::trace::TracingMmio;
use arm_smmu_v3::{
    ArmSmmuV3, FirmwareDesc, KernelVersion, ModuleParams, RateLimits, ShutdownPolicy, SmmuEnv,
};
use iommu::{DeviceId, FwSpec, MasterInfo};
use klog::MemLog;
use physmem::PhysAddr;
use physmem::{FrameAllocator, PhysMem, Region};
use smmuv3::{SmmuV3, SmmuV3Config};
use std::sync::{Arc, OnceLock, Weak};

pub const RAM: u64 = 0x4000_0000;
pub const PREFIX: &str = "arm-smmu-v3 9050000.smmuv3";

pub struct Rig {
    pub mem: Arc<PhysMem>,
    pub frames: Arc<FrameAllocator>,
    pub model: Arc<SmmuV3>,
    pub bus: Arc<TracingMmio<Arc<SmmuV3>>>,
    pub log: Arc<MemLog>,
    pub smmu: Arc<ArmSmmuV3>,
}

pub fn rig(cfg: SmmuV3Config, version: KernelVersion, policy: ShutdownPolicy) -> Rig {
    rig_with(cfg, version, policy, FirmwareDesc::qemu_virt(), 64 << 20)
}

pub fn rig_with(
    cfg: SmmuV3Config,
    version: KernelVersion,
    policy: ShutdownPolicy,
    fw: FirmwareDesc,
    ram: u64,
) -> Rig {
    let mem = Arc::new(PhysMem::new(&[Region::new(PhysAddr::new(RAM), 256 << 20)]).unwrap());
    let frames = Arc::new(FrameAllocator::new(mem.clone(), PhysAddr::new(RAM), ram).unwrap());
    let model = SmmuV3::new(cfg, mem.clone()).unwrap();
    let bus = Arc::new(TracingMmio::new(model.clone(), mem.clone()));
    let log = Arc::new(MemLog::new());
    // Interrupts go to the driver's handlers once it exists (as request_irq does). The model
    // holds the handler and the driver the model (through its bus): a weak reference keeps
    // that loop from leaking every rig, its memory bank with it.
    let cell: Arc<OnceLock<Weak<ArmSmmuV3>>> = Arc::new(OnceLock::new());
    let c2 = cell.clone();
    model.set_irq_handler(Arc::new(move |line| {
        if let Some(s) = c2.get().and_then(Weak::upgrade) {
            s.handle_irq(line);
        }
    }));
    let env = SmmuEnv {
        mmio: bus.clone(),
        log: log.clone(),
        frames: frames.clone(),
        limits: Arc::new(RateLimits::default()),
    };
    let smmu = ArmSmmuV3::probe(&fw, ModuleParams::default(), version, policy, env).unwrap();
    let _ = cell.set(Arc::downgrade(&smmu));
    Rig {
        mem,
        frames,
        model,
        bus,
        log,
        smmu,
    }
}

pub fn master(id: u32, name: &str, sids: &[u32]) -> MasterInfo {
    MasterInfo {
        id: DeviceId(id),
        log_name: name.into(),
        fwspec: FwSpec { ids: sids.to_vec() },
    }
}

pub fn prefixed(lines: &[&str]) -> Vec<String> {
    lines.iter().map(|l| format!("{PREFIX}: {l}")).collect()
}
