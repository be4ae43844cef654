//! Shared test setup: a driver on a recorded bus, a memory log and simulated RAM.
#![allow(dead_code)]

use arm_smmu::testing::{FakeSmmu, IdRegs, RecordingMmio};
use arm_smmu::{
    ArmSmmu, DriverBehaviour, FirmwareDesc, LinuxVersion, LpaeTables, ModuleParams, RateLimits,
    ShutdownPolicy, SmmuEnv,
};
use klog::MemLog;
use physmem::PhysAddr;
use physmem::{FrameAllocator, PhysMem, Region};
use smmu_arch::Mmio;
use std::sync::Arc;

/// DRAM as on LS1028A: 0x8000_0000, 64 MiB here; page tables live in its top half.
pub const RAM_BASE: u64 = 0x8000_0000;
pub const RAM_SIZE: u64 = 0x400_0000;
pub const PT_BASE: u64 = RAM_BASE + RAM_SIZE / 2;

/// Simulated DRAM, and the page-table frame allocator over its top half.
pub fn ram() -> (Arc<PhysMem>, Arc<FrameAllocator>) {
    let mem = Arc::new(PhysMem::new(&[Region::new(PhysAddr::new(RAM_BASE), RAM_SIZE)]).unwrap());
    let frames =
        Arc::new(FrameAllocator::new(mem.clone(), PhysAddr::new(PT_BASE), RAM_SIZE / 2).unwrap());
    (mem, frames)
}

pub fn frames() -> Arc<FrameAllocator> {
    ram().1
}

/// The LS1028A's ENETC PF0 as its driver registers it: ICID 0x29 with the SMMU node's
/// stream-match-mask 0x7c00.
pub fn enetc() -> iommu::MasterInfo {
    iommu::MasterInfo {
        id: iommu::DeviceId(4),
        log_name: "fsl_enetc 0000:00:00.0".into(),
        fwspec: iommu::FwSpec {
            ids: vec![0x7c00_0029],
        },
    }
}

/// The model's interrupt outputs call the driver's handlers, as the kernel's IRQ wiring does
/// (the model holds the driver weakly: a dropped driver takes no interrupts).
pub fn wire_irqs(model: &mmu500::Mmu500, smmu: &Arc<ArmSmmu>) {
    let s = Arc::downgrade(smmu);
    model.set_irq_handler(Arc::new(move |line| {
        if let Some(s) = s.upgrade() {
            match line {
                smmu_arch::FaultIrq::Global(_) => s.handle_global_fault(),
                smmu_arch::FaultIrq::Context(cb) => s.handle_context_fault(cb),
            };
        }
    }));
}

/// The kernel a shutdown policy belongs to (`Quiesce` on the 6.2 driver), so the older tests
/// keep their one-line context faults.
pub fn behaviour(policy: ShutdownPolicy) -> DriverBehaviour {
    match policy {
        ShutdownPolicy::Linux61 => LinuxVersion::V6_1.behaviour(),
        ShutdownPolicy::Linux62 => LinuxVersion::V6_2.behaviour(),
        ShutdownPolicy::Quiesce => LinuxVersion::V6_2.behaviour().with_shutdown(policy),
    }
}

pub struct Rig<M: Mmio + 'static> {
    pub smmu: Arc<ArmSmmu>,
    pub bus: Arc<RecordingMmio<M>>,
    pub log: Arc<MemLog>,
    pub frames: Arc<FrameAllocator>,
}

pub fn probe_on<M: Mmio + 'static>(
    dev: M,
    fw: &FirmwareDesc,
    params: ModuleParams,
    policy: ShutdownPolicy,
    frames: Arc<FrameAllocator>,
) -> Result<Rig<M>, arm_smmu::ProbeError> {
    probe_as(dev, fw, params, behaviour(policy), frames)
}

/// [`probe_on`] with the driver behaving as `behaviour` (a kernel version) says.
pub fn probe_as<M: Mmio + 'static>(
    dev: M,
    fw: &FirmwareDesc,
    params: ModuleParams,
    behaviour: DriverBehaviour,
    frames: Arc<FrameAllocator>,
) -> Result<Rig<M>, arm_smmu::ProbeError> {
    let bus = Arc::new(RecordingMmio::new(dev));
    let log = Arc::new(MemLog::new());
    let smmu = ArmSmmu::probe(
        fw,
        params,
        behaviour,
        SmmuEnv {
            mmio: bus.clone(),
            log: log.clone(),
            frames: frames.clone(),
            tables: Arc::new(LpaeTables::SAFE),
            limits: Arc::new(RateLimits::default()),
        },
    )?;
    Ok(Rig {
        smmu,
        bus,
        log,
        frames,
    })
}

pub fn fake(
    ids: IdRegs,
    fw: &FirmwareDesc,
    params: ModuleParams,
    policy: ShutdownPolicy,
) -> Rig<FakeSmmu> {
    probe_on(FakeSmmu::new(ids), fw, params, policy, frames()).unwrap()
}

pub fn mmu401_fw() -> FirmwareDesc {
    FirmwareDesc {
        compatible: "arm,mmu-401".into(),
        reg_base: PhysAddr::new(0x2b40_0000),
        reg_size: 0x2_0000,
        dev_name: "2b400000.iommu".into(),
        num_global_irqs: Some(1),
        num_context_irqs: 8,
        dma_coherent: true,
    }
}

pub fn indexed_fw() -> FirmwareDesc {
    FirmwareDesc {
        compatible: "arm,smmu-v2".into(),
        reg_base: PhysAddr::new(0x1000_0000),
        reg_size: 0x8000,
        dev_name: "10000000.iommu".into(),
        num_global_irqs: Some(1),
        num_context_irqs: 4,
        dma_coherent: true,
    }
}

/// Prefix every line with the device's dev_printk prefix.
pub fn prefixed(prefix: &str, lines: &[&str]) -> Vec<String> {
    lines.iter().map(|l| format!("{prefix}: {l}")).collect()
}

/// One recorded MMIO write: (offset, value, width in bits).
pub type Write = (u64, u64, u8);

fn describe(model: &mmu500::Mmu500Config, writes: &[Write]) -> String {
    writes
        .iter()
        .enumerate()
        .map(|(i, &(off, v, width))| {
            let name = model
                .reg_name(off)
                .map_or_else(|| "?".to_string(), |n| n.to_string());
            format!("  {i:3}: {name:<16} @{off:#08x} <- {v:#x} ({width}-bit)\n")
        })
        .collect()
}

/// Assert that the driver wrote exactly `want`, in order. On a mismatch the message lists both
/// sequences with each register's architected name (from the mmu500 model's register map for
/// `model`) and the first index where they differ, instead of two lists of numbers.
#[track_caller]
pub fn assert_writes(model: &mmu500::Mmu500Config, got: &[Write], want: &[Write]) {
    if got == want {
        return;
    }
    let first = got
        .iter()
        .zip(want)
        .position(|(g, w)| g != w)
        .unwrap_or(got.len().min(want.len()));
    panic!(
        "register writes differ from write {first} on\ngot ({} writes):\n{}want ({} writes):\n{}",
        got.len(),
        describe(model, got),
        want.len(),
        describe(model, want)
    );
}
