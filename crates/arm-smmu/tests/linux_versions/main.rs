//! What differs between the Linux versions the driver models, access by access (register,
//! value, order) and line by line, plus the version-independent fixes that came with them:
//! the RMR boot-mapping step at probe, the context fault handler's reads and report, the TLB
//! flush when a domain is freed (stage 1 and stage 2, and the domain-reuse DMA it prevents on
//! the model), and the ATS1PR/ATSR iova_to_phys path with its timeout fallback.

mod domain_free;
mod fault_handler;
mod iova_to_phys;
mod probe;

#[path = "../common/mod.rs"]
mod common;

use common::enetc;

use arm_smmu::testing::{BusOp, FakeSmmu, IdRegs, RecordingMmio};
use arm_smmu::{
    ArmSmmu, ContextFaultReport, DriverBehaviour, FirmwareDesc, LinuxVersion, LpaeTables,
    ModuleParams, RateLimits, SmmuEnv,
};
use common::*;
use iommu::{DeviceId, DomainKind, FwSpec, Gather, IommuDriver, MasterInfo, Prot};
use klog::MemLog;
use mmu500::{BusError, DmaFault, Mmu500, Mmu500Config, Translation};
use physmem::{FrameAllocator, PhysMem};
use smmu_addr::{Iova, PageCount, PageSize, PhysAddr};
use smmu_arch::IrqReturn;
use std::sync::Arc;

const LS: &str = "arm-smmu 5000000.iommu";
const ENETC_SID: u32 = 0x429;

fn ls_cb(i: u64) -> u64 {
    0x40_0000 + i * 0x1_0000
}

fn rd(offset: u64, value: u64) -> BusOp {
    BusOp {
        write: false,
        width: 32,
        offset,
        value,
    }
}
fn rq(offset: u64, value: u64) -> BusOp {
    BusOp {
        width: 64,
        ..rd(offset, value)
    }
}
fn wr(offset: u64, value: u64) -> BusOp {
    BusOp {
        write: true,
        ..rd(offset, value)
    }
}
fn wq(offset: u64, value: u64) -> BusOp {
    BusOp {
        write: true,
        width: 64,
        ..rd(offset, value)
    }
}

fn fake_with(behaviour: DriverBehaviour, params: ModuleParams) -> Rig<FakeSmmu> {
    let r = probe_as(
        FakeSmmu::new(IdRegs::LS1028A),
        &FirmwareDesc::ls1028a(),
        params,
        behaviour,
        frames(),
    )
    .unwrap();
    // Forget probe's ID register reads.
    r.bus.clear();
    r
}

struct ModelRig {
    model: Arc<Mmu500>,
    smmu: Arc<ArmSmmu>,
    bus: Arc<RecordingMmio<Arc<Mmu500>>>,
    log: Arc<MemLog>,
    mem: Arc<PhysMem>,
}

fn on_model(cfg: Mmu500Config, fw: &FirmwareDesc, behaviour: DriverBehaviour) -> ModelRig {
    let (mem, frames) = common::ram();
    let model = Mmu500::new(cfg, mem.clone()).unwrap();
    let bus = Arc::new(RecordingMmio::new(model.clone()));
    let log = Arc::new(MemLog::new());
    let smmu = ArmSmmu::probe_and_reset(
        fw,
        ModuleParams::default(),
        behaviour,
        SmmuEnv {
            mmio: bus.clone(),
            log: log.clone(),
            frames,
            tables: Arc::new(LpaeTables::SAFE),
            limits: Arc::new(RateLimits::default()),
        },
    )
    .unwrap();
    common::wire_irqs(&model, &smmu);
    ModelRig {
        model,
        smmu,
        bus,
        log,
        mem,
    }
}
