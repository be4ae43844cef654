//! End to end on the `mmu500` model: probe, attach, map, DMA through the SMMU into the right
//! page, unmap, the same DMA faults with Linux's log line; TLB maintenance leaves nothing stale
//! in the model's finite TLB; the seed's global fault after release; shutdown policies seen
//! from the DMA side.

mod dma;
mod presets;
mod prop;
mod teardown;
mod tlb;

#[path = "../common/mod.rs"]
mod common;

use common::enetc;

use arm_smmu::testing::RecordingMmio;
use arm_smmu::{
    ArmSmmu, FirmwareDesc, LpaeTables, ModuleParams, RateLimits, ShutdownPolicy, SmmuEnv,
};
use common::{RAM_BASE, RAM_SIZE};
use iommu::{DeviceId, DomainKind, DriverDomain, FwSpec, Gather, IommuDriver, MasterInfo, Prot};
use klog::MemLog;
use mmu500::{BusError, BypassReason, DmaFault, Mmu500, Mmu500Config, TraceEvent, Translation};
use physmem::{FrameAllocator, PhysMem, Region};
use smmu_addr::{Iova, PageCount, PageSize, PhysAddr};
use std::sync::{Arc, Mutex};

const LS: &str = "arm-smmu 5000000.iommu";
const ENETC_SID: u32 = 0x429;

struct Board {
    model: Arc<Mmu500>,
    smmu: Arc<ArmSmmu>,
    log: Arc<MemLog>,
    mem: Arc<PhysMem>,
    frames: Arc<FrameAllocator>,
    events: Arc<Mutex<Vec<TraceEvent>>>,
}

fn board_with(
    cfg: Mmu500Config,
    fw: &FirmwareDesc,
    params: ModuleParams,
    policy: ShutdownPolicy,
) -> Board {
    let (mem, frames) = common::ram();
    let model = Mmu500::new(cfg, mem.clone()).unwrap();
    let log = Arc::new(MemLog::new());
    let smmu = ArmSmmu::probe_and_reset(
        fw,
        params,
        common::behaviour(policy),
        SmmuEnv {
            mmio: model.clone(),
            log: log.clone(),
            frames: frames.clone(),
            tables: Arc::new(LpaeTables::SAFE),
            limits: Arc::new(RateLimits::default()),
        },
    )
    .unwrap();
    common::wire_irqs(&model, &smmu);
    let events = Arc::new(Mutex::new(Vec::new()));
    let ev = events.clone();
    model.set_event_sink(Arc::new(move |e: &TraceEvent| {
        if !matches!(e, TraceEvent::MmioWrite { .. }) {
            ev.lock().unwrap().push(e.clone());
        }
    }));
    Board {
        model,
        smmu,
        log,
        mem,
        frames,
        events,
    }
}

fn ls1028a(params: ModuleParams, policy: ShutdownPolicy) -> Board {
    board_with(
        Mmu500Config::mmu500_ls1028a(),
        &FirmwareDesc::ls1028a(),
        params,
        policy,
    )
}

fn attach_enetc(b: &Board) -> DriverDomain {
    b.smmu.probe_device(&enetc()).unwrap();
    let dom = b.smmu.domain_alloc(DomainKind::Dma).unwrap();
    b.smmu.attach_dev(dom, DeviceId(4)).unwrap();
    dom
}

fn read(b: &Board, pa: u64, n: usize) -> Vec<u8> {
    let mut v = vec![0; n];
    b.mem.read_bytes(PhysAddr::new(pa), &mut v).unwrap();
    v
}
