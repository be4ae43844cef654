//! The real stack runs a file: the board's first SMMUv2 as the MMU-500 model, the arm-smmu
//! driver probing it, the IOMMU core with the file's kernel switches, the file's masters probed
//! into it, and the actors calling the core's DMA API and the model's DMA port on threads of the
//! sync facade, so the explorer interleaves them at the real code's scheduling points.
//!
//! It runs the files whose every operation is one it has (DMA mapping, unmanaged domains
//! ([`domain`]), device reads and writes, and the `fail-pgtable-alloc` fault injection) and
//! whose every property it checks (`no-fault`, `no-sync-timeout`, `no-block-split`). Outcomes come from the crates' own mechanisms: a failed page-table allocation
//! is the frame allocator running dry, a fault is the model's table walk finding nothing.

use crate::model::Scenario;
pub use crate::stack_error::StackError;
use crate::vocab::{ActorKind, Dir, Op};
use arm_smmu::table::LpaeTables;
use arm_smmu::{ArmSmmu, DriverBehaviour, FirmwareDesc, ModuleParams, RateLimits, SmmuEnv};
use iommu::{CoreConfig, DeviceDesc, DeviceId, DmaDirection, InstanceId, IommuCore};
use kernel_history::{Kernel, Switches};
use klog::MemLog;
use mmu500::hyp::ZeroStoreLosingHypervisor;
use mmu500::Mmu500;
use physmem::{FrameAllocator, PhysAddr, PhysMem, Region};
use smmu_sync::{thread, Arc, Mutex};
use std::collections::BTreeMap;

mod access;
pub mod domain;
pub use domain::DomainOp;

/// DRAM the run uses, and the kernel pools in it (page tables, coherent DMA).
const RAM: u64 = 0x8000_0000;
const RAM_SIZE: u64 = 32 << 20;
const TABLES: (u64, u64) = (RAM + 0x10_0000, 0x10_0000);
const COHERENT: (u64, u64) = (RAM + 0x20_0000, 0x20_0000);
/// Driver buffers: each actor's at its own 1 MiB.
const BUFFERS: u64 = RAM + (8 << 20);

/// A property the real stack checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum StackProperty {
    /// No device access faults in the SMMU.
    NoFault,
    /// No TLB sync times out (the driver's `TLB sync timed out` message).
    NoSyncTimeout,
    /// No `iommu_unmap` reports part of a block entry unmapped, leaving the rest of the block
    /// mapped through a new table (the split `33729a5fc0ca` removed).
    NoBlockSplit,
    /// The DMA API hands out no IOVA below its domain's first allocatable page (`start_pfn`,
    /// at least 1: IOVA page 0 is never allocated).
    NoIovaBelowStart,
}

impl StackProperty {
    /// Every property.
    pub const ALL: [StackProperty; 4] = [
        StackProperty::NoFault,
        StackProperty::NoSyncTimeout,
        StackProperty::NoBlockSplit,
        StackProperty::NoIovaBelowStart,
    ];

    /// The name in files.
    pub fn name(self) -> &'static str {
        match self {
            StackProperty::NoFault => "no-fault",
            StackProperty::NoSyncTimeout => "no-sync-timeout",
            StackProperty::NoBlockSplit => "no-block-split",
            StackProperty::NoIovaBelowStart => "no-iova-below-start",
        }
    }

    /// The property called `name`.
    pub fn from_name(name: &str) -> Option<StackProperty> {
        Self::ALL.into_iter().find(|p| p.name() == name)
    }
}

/// One step of an actor on the real stack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StackOp {
    /// The SMMU's probe: the driver probes and resets it and registers it with the core.
    ProbeSmmu,
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
    /// An unmanaged-domain operation.
    Domain(DomainOp),
    /// The device writes (`true`) or reads the buffer through the SMMU.
    DeviceAccess {
        /// Write, else read.
        write: bool,
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
}

/// What one run produced.
#[derive(Debug, Clone, Default)]
pub struct StackOutcome {
    /// The kernel log, then the actors' lines.
    pub log: Vec<String>,
    /// (property, message) of every violation seen.
    pub findings: Vec<(StackProperty, String)>,
}

/// Whether the real stack runs `s`: every op and property is one it has.
pub fn runs(s: &Scenario) -> bool {
    let is_smmu = |d: &Option<String>| {
        d.as_ref()
            .is_some_and(|d| s.board.smmus.iter().any(|m| &m.name == d))
    };
    let ops = s.actors.iter().flat_map(|a| &a.script).all(|st| {
        matches!(
            st.op,
            Op::FailPgtableAlloc
                | Op::DmaMapSg
                | Op::DmaMapPage
                | Op::DeviceWrite
                | Op::DeviceRead
                | Op::IommuDomainAlloc
                | Op::IommuAttachDevice
                | Op::IommuMap
                | Op::IommuUnmap
        ) || (st.op == Op::Probe && is_smmu(&st.device))
    });
    ops && !s.properties.is_empty()
        && s.properties
            .iter()
            .all(|p| StackProperty::from_name(p.name).is_some())
}

fn direction(d: Option<Dir>) -> DmaDirection {
    match d {
        Some(Dir::ToDevice) => DmaDirection::ToDevice,
        Some(Dir::FromDevice) => DmaDirection::FromDevice,
        Some(Dir::Bidirectional) | None => DmaDirection::Bidirectional,
    }
}

/// The real stack's configuration for `s` on `kernel`; `Err` names why it cannot run it.
pub fn config(s: &Scenario, kernel: &Kernel) -> Result<StackConfig, StackError> {
    let (si, smmu) = s
        .board
        .smmus
        .iter()
        .enumerate()
        .find(|(_, d)| d.enabled && d.version == sim::SmmuVersion::V2)
        .ok_or(StackError::NoSmmuV2)?;
    let fw = FirmwareDesc {
        compatible: smmu.matched.clone(),
        reg_base: smmu.base,
        reg_size: smmu.size,
        dev_name: smmu.name.clone(),
        num_global_irqs: Some(smmu.global_irqs),
        num_context_irqs: smmu.context_irqs,
        dma_coherent: smmu.dma_coherent,
    };
    let sw = Switches::of(kernel);
    let behaviour = sw.driver_behaviour(kernel)?;
    let core = sw.core_config(CoreConfig {
        strict: s.cmdline.strict,
        passthrough: s.cmdline.passthrough,
        ..CoreConfig::default()
    });
    let mut devices: Vec<StackDevice> = Vec::new();
    let mut actors = Vec::new();
    let mut smmu_probed_by_actor = false;
    for a in &s.actors {
        let mut script = Vec::new();
        let mut dev_name = a.device.clone();
        for st in &a.script {
            if st.op == Op::Probe {
                smmu_probed_by_actor = true;
                script.push(StackOp::ProbeSmmu);
                continue;
            }
            if dev_name.is_none() {
                dev_name = st.device.clone();
            }
            let buffer = st.buffer.clone().unwrap_or_default();
            let domain = st.domain.clone().unwrap_or_default();
            let (iova, size) = (st.iova.unwrap_or(0), st.size.unwrap_or(4096));
            script.push(match st.op {
                Op::IommuDomainAlloc => StackOp::Domain(DomainOp::Alloc { domain }),
                Op::IommuAttachDevice => StackOp::Domain(DomainOp::Attach { domain }),
                Op::IommuMap => StackOp::Domain(DomainOp::Map { domain, iova, size }),
                Op::IommuUnmap => StackOp::Domain(DomainOp::Unmap { domain, iova, size }),
                Op::FailPgtableAlloc => StackOp::FailPgtableAlloc,
                Op::DmaMapSg => StackOp::DmaMapSg {
                    nents: st.nents.unwrap_or(1).max(1),
                    size: st.size.unwrap_or(4096),
                    dir: direction(st.dir),
                    buffer,
                },
                Op::DmaMapPage => StackOp::DmaMapPage {
                    size: st.size.unwrap_or(4096),
                    dir: direction(st.dir),
                    buffer,
                },
                Op::DeviceWrite | Op::DeviceRead => StackOp::DeviceAccess {
                    write: st.op == Op::DeviceWrite,
                    buffer,
                },
                other => return Err(StackError::UnsupportedOp { op: other.name() }),
            });
        }
        let Some(name) = dev_name else {
            actors.push(StackActor {
                name: a.name.clone(),
                device: None,
                engine: a.kind == ActorKind::DmaEngine,
                script,
            });
            continue;
        };
        let m = s
            .board
            .masters
            .iter()
            .find(|m| m.name == name && m.attached && m.smmu == si)
            .ok_or_else(|| StackError::NotAMaster {
                device: name.clone(),
                smmu: smmu.name.clone(),
            })?;
        let device = match devices.iter().position(|d| d.name == name) {
            Some(i) => i,
            None => {
                let bus = match m.bus {
                    sim::Bus::Platform => iommu::Bus::Platform,
                    sim::Bus::Pci => iommu::Bus::Pci,
                };
                let ids: Vec<u32> = m.ids.iter().map(|id| id.fwid()).collect();
                let mut desc = DeviceDesc::new(&m.log_prefix(), bus, devices.len() as u64, &ids);
                desc.coherent = true;
                if let Some(bits) = s
                    .drivers
                    .iter()
                    .find(|d| d.device == name)
                    .and_then(|d| d.dma_mask_bits)
                {
                    desc.dma_mask = u64::MAX >> (64 - bits);
                }
                let wire_sid = m
                    .wire_ids()
                    .and_then(|w| w.first().copied())
                    .or_else(|| m.ids.first().map(|id| id.sid))
                    .ok_or_else(|| StackError::NoStreamId {
                        device: name.clone(),
                    })?;
                devices.push(StackDevice {
                    name: name.clone(),
                    desc,
                    wire_sid: u32::from(wire_sid),
                });
                devices.len() - 1
            }
        };
        actors.push(StackActor {
            name: a.name.clone(),
            device: Some(device),
            engine: a.kind == ActorKind::DmaEngine,
            script,
        });
    }
    if smmu_probed_by_actor && !devices.is_empty() {
        return Err(StackError::ProbeWithMasters);
    }
    let properties = s
        .properties
        .iter()
        .filter_map(|p| StackProperty::from_name(p.name))
        .collect();
    Ok(StackConfig {
        fw,
        model: sim::scenario::model_config(smmu),
        params: s.cmdline.smmu,
        behaviour,
        tables: sw.lpae_tables(if core.linux_faithful {
            LpaeTables::LINUX
        } else {
            LpaeTables::SAFE
        }),
        core,
        devices,
        actors,
        properties,
        hypervisor_loses_zero_stores: s
            .quirks
            .contains(&crate::vocab::Quirk::HypervisorLosesZeroStores),
        smmu_probed_by_actor,
    })
}

/// State the actors share: mapped buffers and what they saw.
#[derive(Default)]
struct Shared {
    buffers: BTreeMap<String, Vec<(u64, u64)>>,
    domains: BTreeMap<String, Arc<iommu::Domain>>,
    lines: Vec<String>,
    findings: Vec<(StackProperty, String)>,
    /// Kernel actors (not DMA engines) that have returned.
    kernel_actors_done: usize,
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
    /// Its registration with the core.
    instance: Mutex<Option<InstanceId>>,
    core: Arc<IommuCore>,
    ids: Vec<DeviceId>,
}

/// The SMMU's probe: arm-smmu probes and resets it, then registers it with the core.
fn probe_smmu(cfg: &StackConfig, stack: &Stack) -> Result<InstanceId, StackError> {
    let smmu = ArmSmmu::probe_and_reset(
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
    )?;
    let inst = stack.core.register(smmu.clone());
    *stack.smmu.lock() = Some(smmu);
    *stack.instance.lock() = Some(inst);
    Ok(inst)
}

fn boot(cfg: &StackConfig, log: &Arc<MemLog>) -> Result<Stack, StackError> {
    let mem = Arc::new(PhysMem::new(&[Region::new(PhysAddr::new(RAM), RAM_SIZE)])?);
    let pool = |(base, size): (u64, u64)| {
        FrameAllocator::new(mem.clone(), PhysAddr::new(base), size).map(Arc::new)
    };
    let tables = pool(TABLES)?;
    let coherent = pool(COHERENT)?;
    let model = Mmu500::new(cfg.model.clone(), mem.clone())?;
    let bus: Arc<dyn smmu_arch::Mmio> = if cfg.hypervisor_loses_zero_stores {
        Arc::new(ZeroStoreLosingHypervisor::new(model.clone()))
    } else {
        model.clone()
    };
    let core = IommuCore::new(cfg.core.clone(), mem.clone(), coherent, log.clone());
    let mut stack = Stack {
        tables,
        model,
        bus,
        log: log.clone(),
        smmu: Mutex::new(None),
        instance: Mutex::new(None),
        core,
        ids: Vec::new(),
    };
    if !cfg.smmu_probed_by_actor {
        let inst = probe_smmu(cfg, &stack)?;
        for d in &cfg.devices {
            let id = stack
                .core
                .probe_device(d.desc.clone(), inst)
                .map_err(|source| StackError::DeviceProbe {
                    device: d.name.clone(),
                    source,
                })?;
            stack.ids.push(id);
        }
    }
    Ok(stack)
}

fn act(cfg: &StackConfig, stack: &Stack, shared: &Mutex<Shared>, a: usize) {
    let actor = &cfg.actors[a];
    let say = |line: String| shared.lock().lines.push(line);
    if actor.device.is_none() {
        for op in &actor.script {
            if *op == StackOp::ProbeSmmu {
                if let Err(e) = probe_smmu(cfg, stack) {
                    say(format!("{}: SMMU probe failed: {e}", actor.name));
                }
            }
        }
        return;
    }
    let Some((dev, id)) = actor
        .device
        .and_then(|d| Some((cfg.devices.get(d)?, *stack.ids.get(d)?)))
    else {
        return;
    };
    let buf_pa = BUFFERS + ((a as u64) << 20);
    for op in &actor.script {
        match op {
            StackOp::ProbeSmmu => {}
            StackOp::Domain(op) => domain::run(stack, shared, dev, id, op),
            StackOp::FailPgtableAlloc => {
                let mut taken = 0u64;
                while stack.tables.alloc(physmem::FRAME_SIZE).is_ok() {
                    taken += 1;
                }
                say(format!(
                    "{}: fault injection: page-table pool exhausted ({taken} frames taken)",
                    actor.name
                ));
            }
            StackOp::DmaMapSg {
                nents,
                size,
                dir,
                buffer,
            } => {
                let segs: Vec<(u64, u64)> = (0..u64::from(*nents))
                    .map(|i| (buf_pa + i * size.next_multiple_of(0x1000), *size))
                    .collect();
                match stack.core.dma_map_sg(id, &segs, *dir) {
                    Ok(list) => {
                        say(format!(
                            "{}: dma_map_sg({nents} x {size:#x}) = {}",
                            dev.name,
                            list.iter()
                                .map(|(a, l)| format!("{a:#x}+{l:#x}"))
                                .collect::<Vec<_>>()
                                .join(" ")
                        ));
                        if let Some(&(first, _)) = list.first() {
                            domain::check_iova_start(stack, shared, dev, id, "dma_map_sg", first);
                        }
                        shared.lock().buffers.insert(buffer.clone(), list);
                    }
                    Err(e) => say(format!("{}: dma_map_sg failed: {e}", dev.name)),
                }
            }
            StackOp::DmaMapPage { size, dir, buffer } => {
                match stack.core.dma_map_page(id, buf_pa, *size, *dir) {
                    Ok(addr) => {
                        say(format!("{}: dma_map_page({size:#x}) = {addr:#x}", dev.name));
                        domain::check_iova_start(stack, shared, dev, id, "dma_map_page", addr);
                        shared
                            .lock()
                            .buffers
                            .insert(buffer.clone(), vec![(addr, *size)]);
                    }
                    Err(e) => say(format!("{}: dma_map_page failed: {e}", dev.name)),
                }
            }
            StackOp::DeviceAccess { write, buffer } => {
                access::device_access(cfg, stack, shared, dev, *write, buffer)
            }
        }
    }
}

/// Boot the stack and run the actors, each on its own thread.
pub fn run(cfg: &Arc<StackConfig>) -> StackOutcome {
    let log = Arc::new(MemLog::new());
    let stack = match boot(cfg, &log) {
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
                act(&cfg, &stack, &shared, a);
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
    // The driver's own report of a sync that never completed.
    for line in log.lines() {
        if line.contains("TLB sync timed out") {
            out.findings.push((StackProperty::NoSyncTimeout, line));
        }
    }
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
