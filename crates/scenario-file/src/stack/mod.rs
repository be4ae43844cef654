//! The real stack runs a file: the board's first SMMUv2 as the MMU-500 model, the arm-smmu
//! driver probing it, the IOMMU core with the file's kernel switches, the file's masters probed
//! into it, and the actors calling the core's DMA API and the model's DMA port on threads of the
//! sync facade, so the explorer interleaves them at the real code's scheduling points.
//!
//! It runs the files whose every operation is one it has (probe of the SMMU or of a master,
//! bind and unbind of a master, unbind and remove of the SMMU, DMA-ownership claims, DMA
//! mapping and coherent allocation, unmanaged domains ([`domain`]), device reads and writes,
//! and the `fail-pgtable-alloc` fault injection) and whose every property it checks ([`StackProperty`]). Outcomes come
//! from the crates' own mechanisms: a failed page-table allocation is the frame allocator
//! running dry, a fault is the model's table walk finding nothing, two groups for one stream
//! are the core's groups after two probes raced in arm-smmu's `device_group`, a deadlock is a
//! kernel mutex whose holder returned without releasing it.

mod access;
mod act;
mod config;
pub mod domain;
mod lifecycle;
mod property;

pub use crate::stack_error::StackError;
pub use config::{config, runs_step};
pub use domain::DomainOp;
pub use property::StackProperty;

use arm_smmu::table::LpaeTables;
use arm_smmu::{ArmSmmu, DriverBehaviour, FirmwareDesc, ModuleParams, RateLimits, SmmuEnv};
use iommu::{CoreConfig, DeviceDesc, DeviceId, DmaDirection, InstanceId, IommuCore};
use klog::MemLog;
use mmu500::hyp::ZeroStoreLosingHypervisor;
use mmu500::Mmu500;
use physmem::{FrameAllocator, PhysAddr, PhysMem, Region};
use smmu_addr::DmaAddr;
use smmu_sync::{thread, Arc, Mutex};
use std::collections::BTreeMap;

/// DRAM the run uses, and the kernel pools in it (page tables, coherent DMA).
const RAM: PhysAddr = PhysAddr::new(0x8000_0000);
const RAM_SIZE: u64 = 32 << 20;
const TABLES: (PhysAddr, u64) = (PhysAddr::new(RAM.as_u64() + 0x10_0000), 0x10_0000);
const COHERENT: (PhysAddr, u64) = (PhysAddr::new(RAM.as_u64() + 0x20_0000), 0x20_0000);
/// Driver buffers: each actor's at its own 1 MiB.
const BUFFERS: PhysAddr = PhysAddr::new(RAM.as_u64() + (8 << 20));

/// One step of an actor on the real stack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StackOp {
    /// The SMMU's probe: the driver probes and resets it and registers it with the core.
    ProbeSmmu,
    /// `iommu_probe_device` of master `.0` (an index into [`StackConfig::devices`]).
    ProbeMaster(usize),
    /// `iommu_device_claim_dma_owner` of a master; `None` is a NULL owner.
    ClaimDmaOwner {
        /// Index into [`StackConfig::devices`].
        device: usize,
        /// The owner cookie.
        owner: Option<String>,
    },
    /// `iommu_device_release_dma_owner` of master `.0`.
    ReleaseDmaOwner(usize),
    /// The driver core's deferred-probe work retries master `.0`'s probe if it has no IOMMU
    /// group yet.
    DeferredProbe(usize),
    /// `dma_unmap_page`/`dma_unmap_sg` of a mapped buffer (its direction and kind as mapped).
    DmaUnmap {
        /// Handle.
        buffer: String,
    },
    /// Removal or PCI hot-unplug of master `.0`: `iommu_release_device`.
    Release(usize),
    /// The flush-queue timer of master `.0`'s default domain fires (`fq_flush_timeout`).
    FqTimerExpiry(usize),
    /// Fault injection: the page-table pool runs dry (every free frame is taken).
    FailPgtableAlloc,
    /// `dma_map_sg` of `nents` entries of `size` bytes, kept as `buffer`.
    DmaMapSg {
        /// Entries.
        nents: u32,
        /// Bytes per entry.
        size: u64,
        /// Direction.
        dir: DmaDirection,
        /// Handle.
        buffer: String,
    },
    /// `dma_map_page` of `size` bytes, kept as `buffer`.
    DmaMapPage {
        /// Bytes.
        size: u64,
        /// Direction.
        dir: DmaDirection,
        /// Handle.
        buffer: String,
    },
    /// The device writes (`true`) or reads the buffer through the SMMU.
    DeviceAccess {
        /// Write, else read.
        write: bool,
        /// Handle.
        buffer: String,
    },
    /// An unmanaged-domain operation.
    Domain(DomainOp),
    /// `bind` of master `.0`: `dma_configure` (its IOMMU probe if it has no group yet, then
    /// `iommu_device_use_default_domain`) before the driver's `.probe`.
    Bind(usize),
    /// `unbind` of master `.0`: `iommu_device_unuse_default_domain` after the driver's
    /// `.remove`.
    Unbind(usize),
    /// `unbind` or `remove` (`.0`, the file's name) of the SMMU: arm-smmu's `.remove`.
    RemoveSmmu(&'static str),
    /// `dma_alloc_coherent` of `size` bytes, kept as `buffer`.
    DmaAllocCoherent {
        /// Bytes.
        size: u64,
        /// Handle.
        buffer: String,
    },
    /// `dma_free_coherent` of a coherent buffer.
    DmaFreeCoherent {
        /// Handle.
        buffer: String,
    },
}

/// A master probed into the core at boot.
#[derive(Debug, Clone)]
pub struct StackDevice {
    /// Board name.
    pub name: String,
    /// The core's description (log prefix, bus, firmware IDs).
    pub desc: DeviceDesc,
    /// The stream ID its transactions carry into the SMMU.
    pub wire_sid: u32,
}

/// An actor: the device it works on and its script.
#[derive(Debug, Clone)]
pub struct StackActor {
    /// Its name.
    pub name: String,
    /// Index into [`StackConfig::devices`] (`None`: an actor that only probes the SMMU).
    pub device: Option<usize>,
    /// A device's DMA engine (it waits for its buffers), else a kernel actor.
    pub engine: bool,
    /// The steps.
    pub script: Vec<StackOp>,
}

/// A file ready to run on the real stack.
#[derive(Debug, Clone)]
pub struct StackConfig {
    /// The SMMU's firmware description.
    pub fw: FirmwareDesc,
    /// The model's configuration.
    pub model: mmu500::Mmu500Config,
    /// `arm-smmu.*` parameters.
    pub params: ModuleParams,
    /// The driver's behaviour for the kernel.
    pub behaviour: DriverBehaviour,
    /// The driver's page tables for the kernel (input checks, partial unmap).
    pub tables: LpaeTables,
    /// The core's switches and command line.
    pub core: CoreConfig,
    /// The masters.
    pub devices: Vec<StackDevice>,
    /// The actors.
    pub actors: Vec<StackActor>,
    /// Checked properties.
    pub properties: Vec<StackProperty>,
    /// The board's hypervisor loses zero stores to the global space ([`mmu500::hyp`]).
    pub hypervisor_loses_zero_stores: bool,
    /// An actor probes the SMMU (else boot does).
    pub smmu_probed_by_actor: bool,
    /// The masters boot probes (indices into `devices`); scripts probe the others.
    pub boot_probed: Vec<usize>,
}

/// What one run produced.
#[derive(Debug, Clone, Default)]
pub struct StackOutcome {
    /// The kernel log, then the actors' lines.
    pub log: Vec<String>,
    /// (property, message) of every violation seen.
    pub findings: Vec<(StackProperty, String)>,
}

/// State the actors share: mapped buffers and what they saw.
#[derive(Default)]
struct Shared {
    /// Each buffer's (DMA address, length) list as its device uses it.
    buffers: BTreeMap<String, Vec<(DmaAddr, u64)>>,
    /// Each mapped buffer's direction and whether it is a scatterlist.
    kinds: BTreeMap<String, (DmaDirection, bool)>,
    lines: Vec<String>,
    findings: Vec<(StackProperty, String)>,
    /// Kernel actors (not DMA engines) that have returned.
    kernel_actors_done: usize,
    /// Unmanaged domains by the name the file gives them.
    domains: BTreeMap<String, Arc<iommu::Domain>>,
    /// Coherent buffers: (CPU physical address, DMA address, size).
    coherent: BTreeMap<String, (PhysAddr, DmaAddr, u64)>,
    /// Buffers whose DMA addresses are IOVAs (mapped through a translating domain): a
    /// transaction on one that bypasses the SMMU is stray DMA.
    iova_buffers: std::collections::BTreeSet<String>,
}

/// The booted stack.
struct Stack {
    tables: Arc<FrameAllocator>,
    model: Arc<Mmu500>,
    /// The bus the driver sees: the model, or the trapping hypervisor in front of it.
    bus: Arc<dyn smmu_arch::Mmio>,
    log: Arc<MemLog>,
    /// The driver, once probed.
    smmu: Mutex<Option<Arc<ArmSmmu>>>,
    core: Arc<IommuCore>,
    /// The instance, once the SMMU is registered.
    inst: Mutex<Option<InstanceId>>,
    /// Probed masters: index into `devices` → the core's id.
    ids: Mutex<BTreeMap<usize, DeviceId>>,
}

/// The SMMU's probe: arm-smmu probes and resets it, then registers it with the core; only
/// when its `.probe` returns is its device bound to the driver. The probe and reset before
/// `iommu_device_register()` run without scheduling points: nothing of the SMMU is reachable
/// by another actor before it is registered.
fn probe_smmu(cfg: &StackConfig, stack: &Stack) -> Result<InstanceId, StackError> {
    let smmu = smmu_sync::without_sched_points(|| {
        ArmSmmu::probe_and_reset(
            &cfg.fw,
            cfg.params,
            cfg.behaviour,
            SmmuEnv {
                mmio: stack.bus.clone(),
                log: stack.log.clone(),
                frames: stack.tables.clone(),
                tables: Arc::new(cfg.tables),
                limits: Arc::new(RateLimits::default()),
            },
        )
    })?;
    smmu.set_bound(false);
    let inst = stack.core.register(smmu.clone());
    *stack.smmu.lock() = Some(smmu.clone());
    *stack.inst.lock() = Some(inst);
    // iommu_device_register() has returned; the rest of .probe runs, then the driver core
    // binds the device.
    smmu_sync::sched_point(smmu_sync::Point::Kernel);
    smmu.set_bound(true);
    Ok(inst)
}

fn boot(cfg: &StackConfig, log: &Arc<MemLog>) -> Result<Stack, StackError> {
    let mem = Arc::new(PhysMem::new(&[Region::new(RAM, RAM_SIZE)])?);
    let pool =
        |(base, size): (PhysAddr, u64)| FrameAllocator::new(mem.clone(), base, size).map(Arc::new);
    let tables = pool(TABLES)?;
    let coherent = pool(COHERENT)?;
    let model = Mmu500::new(cfg.model.clone(), mem.clone())?;
    let bus: Arc<dyn smmu_arch::Mmio> = if cfg.hypervisor_loses_zero_stores {
        Arc::new(ZeroStoreLosingHypervisor::new(model.clone()))
    } else {
        model.clone()
    };
    let core = IommuCore::new(cfg.core.clone(), mem.clone(), coherent, log.clone());
    let stack = Stack {
        tables,
        model,
        bus,
        log: log.clone(),
        smmu: Mutex::new(None),
        core,
        inst: Mutex::new(None),
        ids: Mutex::new(BTreeMap::new()),
    };
    if !cfg.smmu_probed_by_actor {
        let inst = probe_smmu(cfg, &stack)?;
        for &i in &cfg.boot_probed {
            let d = &cfg.devices[i];
            let id = stack
                .core
                .probe_device(d.desc.clone(), inst)
                .map_err(|source| StackError::DeviceProbe {
                    device: d.name.clone(),
                    source,
                })?;
            stack.ids.lock().insert(i, id);
        }
    }
    Ok(stack)
}

/// Boot the stack and run the actors, each on its own thread.
pub fn run(cfg: &Arc<StackConfig>) -> StackOutcome {
    let log = Arc::new(MemLog::new());
    smmu_sync::set_task_name("boot");
    // Nothing else runs yet: boot spends no scheduling decisions.
    let booted = smmu_sync::without_sched_points(|| boot(cfg, &log));
    let stack = match booted {
        Ok(s) => Arc::new(s),
        Err(e) => {
            let mut lines = log.lines();
            lines.push(format!("boot failed: {e}"));
            return StackOutcome {
                log: lines,
                findings: Vec::new(),
            };
        }
    };
    let shared = Arc::new(Mutex::new(Shared::default()));
    let handles: Vec<_> = (0..cfg.actors.len())
        .map(|a| {
            let (cfg, stack, shared) = (cfg.clone(), stack.clone(), shared.clone());
            thread::spawn(move || {
                act::act(&cfg, &stack, &shared, a);
                if !cfg.actors[a].engine {
                    shared.lock().kernel_actors_done += 1;
                }
            })
        })
        .collect();
    for h in handles {
        if h.join().is_err() {
            shared.lock().lines.push("an actor panicked".into());
        }
    }
    let mut out = StackOutcome {
        log: log.lines(),
        findings: Vec::new(),
    };
    let sh = std::mem::take(&mut *shared.lock());
    out.log.extend(sh.lines);
    out.findings = sh.findings;
    let ids = stack.ids.lock().clone();
    out.findings
        .extend(property::end_checks(cfg, &stack.core, &ids, &log.lines()));
    out
}

impl explore::Scenario for StackConfig {
    type Outcome = StackOutcome;

    fn run(&self) -> StackOutcome {
        run(&Arc::new(self.clone()))
    }

    fn violations(&self, outcome: &StackOutcome) -> Vec<String> {
        let mut v: Vec<StackProperty> = outcome
            .findings
            .iter()
            .map(|f| f.0)
            .filter(|p| self.properties.contains(p))
            .collect();
        v.sort();
        v.dedup();
        v.into_iter().map(|p| p.name().to_string()).collect()
    }
}
