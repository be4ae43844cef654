//! The real stack runs a file: the board's first SMMUv2 as the MMU-500 model, the arm-smmu
//! driver probing it, the IOMMU core with the file's kernel switches, the file's masters probed
//! into it, and the actors calling the core's DMA API and the model's DMA port on threads of the
//! sync facade, so the explorer interleaves them at the real code's scheduling points.
//!
//! It runs the files whose every operation is one it has (probe of the SMMU or of a master,
//! DMA-ownership claims, DMA mapping, device reads and writes, and the `fail-pgtable-alloc`
//! fault injection) and whose every property it checks ([`StackProperty`]). Outcomes come
//! from the crates' own mechanisms: a failed page-table allocation is the frame allocator
//! running dry, a fault is the model's table walk finding nothing, two groups for one stream
//! are the core's groups after two probes raced in arm-smmu's `device_group`, a deadlock is a
//! kernel mutex whose holder returned without releasing it.

mod config;
mod property;

pub use config::{config, runs};
pub use property::StackProperty;

use arm_smmu::table::LpaeTables;
use arm_smmu::{ArmSmmu, DriverBehaviour, FirmwareDesc, ModuleParams, RateLimits, SmmuEnv};
use iommu::{
    CoreConfig, CoreError, DeviceDesc, DeviceId, DmaDirection, DriverError, InstanceId, IommuCore,
};
use klog::MemLog;
use mmu500::hyp::ZeroStoreLosingHypervisor;
use mmu500::{BusError, DmaFault, Mmu500};
use physmem::{FrameAllocator, PhysAddr, PhysMem, Region};
use smmu_addr::Iova;
use smmu_arch::IrqLine;
use smmu_sync::{thread, Arc, Mutex};
use std::collections::BTreeMap;

/// DRAM the run uses, and the kernel pools in it (page tables, coherent DMA).
const RAM: u64 = 0x8000_0000;
const RAM_SIZE: u64 = 32 << 20;
const TABLES: (u64, u64) = (RAM + 0x10_0000, 0x10_0000);
const COHERENT: (u64, u64) = (RAM + 0x20_0000, 0x20_0000);
/// Driver buffers: each actor's at its own 1 MiB.
const BUFFERS: u64 = RAM + (8 << 20);

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
    pub model: mmu500::Config,
    /// `arm-smmu.*` parameters.
    pub params: ModuleParams,
    /// The driver's behaviour for the kernel.
    pub behaviour: DriverBehaviour,
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
    buffers: BTreeMap<String, Vec<(u64, u64)>>,
    /// Each mapped buffer's direction and whether it is a scatterlist.
    kinds: BTreeMap<String, (DmaDirection, bool)>,
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
fn probe_smmu(cfg: &StackConfig, stack: &Stack) -> Result<InstanceId, String> {
    let smmu = smmu_sync::without_sched_points(|| {
        ArmSmmu::probe_and_reset(
            &cfg.fw,
            cfg.params,
            cfg.behaviour,
            SmmuEnv {
                mmio: stack.bus.clone(),
                log: stack.log.clone(),
                frames: stack.tables.clone(),
                tables: Arc::new(if cfg.core.linux_faithful {
                    LpaeTables::LINUX
                } else {
                    LpaeTables::SAFE
                }),
                limits: Arc::new(RateLimits::default()),
            },
        )
    })
    .map_err(|e| e.to_string())?;
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

fn boot(cfg: &StackConfig, log: &Arc<MemLog>) -> Result<Stack, String> {
    let mem = Arc::new(
        PhysMem::new(&[Region::new(PhysAddr::new(RAM), RAM_SIZE)]).map_err(|e| e.to_string())?,
    );
    let pool = |(base, size): (u64, u64)| {
        FrameAllocator::new(mem.clone(), PhysAddr::new(base), size)
            .map(Arc::new)
            .map_err(|e| e.to_string())
    };
    let tables = pool(TABLES)?;
    let coherent = pool(COHERENT)?;
    let model = Mmu500::new(cfg.model.clone(), mem.clone()).map_err(|e| e.to_string())?;
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
                .map_err(|e| format!("{}: probe: {e}", d.name))?;
            stack.ids.lock().insert(i, id);
        }
    }
    Ok(stack)
}

fn act(cfg: &StackConfig, stack: &Stack, shared: &Mutex<Shared>, a: usize) {
    let actor = &cfg.actors[a];
    smmu_sync::set_task_name(&actor.name);
    let say = |line: String| shared.lock().lines.push(line);
    let buf_pa = BUFFERS + ((a as u64) << 20);
    for op in &actor.script {
        let dev = actor.device.and_then(|d| cfg.devices.get(d));
        let id = actor.device.and_then(|d| stack.ids.lock().get(&d).copied());
        let (dev, id) = match (op, dev, id) {
            (StackOp::ProbeSmmu, ..) => {
                if let Err(e) = probe_smmu(cfg, stack) {
                    say(format!("{}: SMMU probe failed: {e}", actor.name));
                }
                continue;
            }
            (StackOp::Release(d), ..) => {
                // (The id is copied out first: the map's lock is not held across the release.)
                let id = stack.ids.lock().get(d).copied();
                if let Some(id) = id {
                    stack.core.release_device(id);
                }
                continue;
            }
            (StackOp::FqTimerExpiry(d), ..) => {
                let Some(id) = stack.ids.lock().get(d).copied() else {
                    continue;
                };
                let name = &cfg.devices[*d].name;
                match stack.core.fq_timer_expiry(id) {
                    Ok(true) => say(format!(
                        "{}: fq_flush_timeout of {name}: queue flushed",
                        actor.name
                    )),
                    Ok(false) => say(format!(
                        "{}: fq_flush_timeout of {name}: no timer armed",
                        actor.name
                    )),
                    Err(e) => {
                        let msg = format!(
                            "{} (fq_flush_timeout of {}): {e}",
                            actor.name, cfg.devices[*d].name
                        );
                        let mut sh = shared.lock();
                        sh.lines.push(msg.clone());
                        if matches!(e, iommu::DmaError::UseAfterFree { .. }) {
                            sh.findings.push((StackProperty::NoUseAfterFree, msg));
                        }
                    }
                }
                continue;
            }
            (StackOp::DeferredProbe(d), ..) => {
                // deferred_probe_work_func: of_dma_configure() → of_iommu_configure(), then
                // the IOMMU probe if the device has no group yet.
                let name = &cfg.devices[*d].name;
                if let Err(e) = stack.core.of_iommu_configure(&cfg.devices[*d].desc) {
                    let msg = format!("{} (of_iommu_configure of {name}): {e}", actor.name);
                    let mut sh = shared.lock();
                    sh.lines.push(msg.clone());
                    if matches!(e, CoreError::UseAfterFree { .. }) {
                        sh.findings.push((StackProperty::NoUseAfterFree, msg));
                    }
                }
                let probed = stack.ids.lock().contains_key(d);
                if probed {
                    continue;
                }
                if !probe_master(cfg, stack, shared, a, *d) {
                    return;
                }
                continue;
            }
            (StackOp::ProbeMaster(d), ..) => {
                if !probe_master(cfg, stack, shared, a, *d) {
                    // The probe hung: this task goes no further.
                    return;
                }
                continue;
            }
            (StackOp::ClaimDmaOwner { device, owner }, ..) => {
                let d = &cfg.devices[*device];
                let Some(id) = stack.ids.lock().get(device).copied() else {
                    say(format!("{}: claim DMA owner: not probed", d.name));
                    continue;
                };
                match stack.core.claim_dma_owner(id, owner.as_deref()) {
                    Ok(()) => say(format!("{}: DMA owner claimed", d.name)),
                    Err(e) => say(format!("{}: claim DMA owner failed: {e}", d.name)),
                }
                continue;
            }
            (StackOp::ReleaseDmaOwner(device), ..) => {
                let id = stack.ids.lock().get(device).copied();
                if let Some(id) = id {
                    stack.core.release_dma_owner(id);
                }
                continue;
            }
            (_, Some(dev), Some(id)) => (dev, id),
            (_, Some(dev), None) => {
                say(format!(
                    "{}: {}: the device was never probed",
                    actor.name, dev.name
                ));
                return;
            }
            (_, None, _) => return,
        };
        match op {
            StackOp::ProbeSmmu
            | StackOp::ProbeMaster(_)
            | StackOp::ClaimDmaOwner { .. }
            | StackOp::ReleaseDmaOwner(_)
            | StackOp::DeferredProbe(_)
            | StackOp::Release(_)
            | StackOp::FqTimerExpiry(_) => {}
            StackOp::DmaUnmap { buffer } => {
                let (list, kind) = {
                    let sh = shared.lock();
                    (
                        sh.buffers.get(buffer).cloned(),
                        sh.kinds.get(buffer).copied(),
                    )
                };
                let (Some(list), Some((dir, sg))) = (list, kind) else {
                    say(format!("{}: unmap of {buffer}: not mapped", dev.name));
                    continue;
                };
                let r = if sg {
                    stack.core.dma_unmap_sg(id, &list, dir)
                } else {
                    let (addr, len) = list[0];
                    stack.core.dma_unmap_page(id, addr, len, dir)
                };
                match r {
                    Ok(()) => {
                        say(format!("{}: {buffer} unmapped", dev.name));
                        shared.lock().buffers.remove(buffer);
                    }
                    Err(e) => say(format!("{}: unmap of {buffer} failed: {e}", dev.name)),
                }
            }
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
                        let mut sh = shared.lock();
                        sh.buffers.insert(buffer.clone(), list);
                        sh.kinds.insert(buffer.clone(), (*dir, true));
                    }
                    Err(e) => say(format!("{}: dma_map_sg failed: {e}", dev.name)),
                }
            }
            StackOp::DmaMapPage { size, dir, buffer } => {
                match stack.core.dma_map_page(id, buf_pa, *size, *dir) {
                    Ok(addr) => {
                        say(format!("{}: dma_map_page({size:#x}) = {addr:#x}", dev.name));
                        let mut sh = shared.lock();
                        sh.buffers.insert(buffer.clone(), vec![(addr, *size)]);
                        sh.kinds.insert(buffer.clone(), (*dir, false));
                    }
                    Err(e) => say(format!("{}: dma_map_page failed: {e}", dev.name)),
                }
            }
            StackOp::DeviceAccess { write, buffer } => {
                // The engine runs when its driver has handed it the buffer; it gives up when
                // no kernel actor is left to map it.
                let kernel_actors = cfg.actors.iter().filter(|a| !a.engine).count();
                let list = loop {
                    let (list, done) = {
                        let sh = shared.lock();
                        (sh.buffers.get(buffer).cloned(), sh.kernel_actors_done)
                    };
                    if list.is_some() || done == kernel_actors {
                        break list;
                    }
                    thread::yield_now();
                };
                let what = if *write { "write" } else { "read" };
                let Some(list) = list else {
                    say(format!(
                        "{}: {what} of {buffer}: the driver handed over no such buffer",
                        dev.name
                    ));
                    continue;
                };
                for (addr, len) in list {
                    let mut data = vec![0xa5u8; len as usize];
                    let r = if *write {
                        stack.model.dma_write(dev.wire_sid, Iova::new(addr), &data)
                    } else {
                        stack
                            .model
                            .dma_read(dev.wire_sid, Iova::new(addr), &mut data)
                    };
                    match r {
                        Ok(_) => say(format!(
                            "{}: DMA {what} of {len:#x} bytes at IOVA {addr:#x}: translated",
                            dev.name
                        )),
                        Err(e @ BusError::Fault { .. }) => {
                            let msg = format!(
                                "{} (stream {:#x}) DMA {what} at IOVA {addr:#x} of {buffer}: {e}",
                                dev.name, dev.wire_sid
                            );
                            {
                                let mut sh = shared.lock();
                                sh.lines.push(msg.clone());
                                sh.findings.push((StackProperty::NoFault, msg));
                            }
                            // The bank's interrupt line: the driver's handler reports it.
                            if let BusError::Fault {
                                fault: DmaFault::Context { cb, .. },
                                ..
                            } = e
                            {
                                let smmu = stack.smmu.lock().clone();
                                if let Some(smmu) = smmu {
                                    if stack.model.irq_pending(IrqLine::Context(cb)) {
                                        smmu.handle_context_fault(cb);
                                    }
                                }
                            }
                        }
                        Err(e) => say(format!("{}: DMA {what} at {addr:#x}: {e}", dev.name)),
                    }
                }
            }
        }
    }
}

/// `iommu_probe_device` of master `d` by actor `a`; `false` when the task dies in it (an
/// oops) or the probe can never return (a kernel mutex it waits for is never released): the
/// run's finding.
fn probe_master(
    cfg: &StackConfig,
    stack: &Stack,
    shared: &Mutex<Shared>,
    a: usize,
    d: usize,
) -> bool {
    let dev = &cfg.devices[d];
    let actor = &cfg.actors[a].name;
    let Some(inst) = *stack.inst.lock() else {
        shared
            .lock()
            .lines
            .push(format!("{actor}: {}: no IOMMU instance yet", dev.name));
        return true;
    };
    match stack.core.probe_device(dev.desc.clone(), inst) {
        Ok(id) => {
            stack.ids.lock().insert(d, id);
            true
        }
        Err(CoreError::Driver(e @ DriverError::NullDereference { .. })) => {
            let msg = format!("{actor} (probing {}): {e}", dev.name);
            let mut sh = shared.lock();
            sh.lines.push(msg.clone());
            sh.findings.push((StackProperty::NoOops, msg));
            false
        }
        Err(CoreError::Driver(DriverError::Deadlock(dl))) => {
            let msg = format!("{} (probing {}): {dl}", actor, dev.name);
            let mut sh = shared.lock();
            sh.lines.push(msg.clone());
            sh.findings.push((StackProperty::NoDeadlock, msg));
            false
        }
        Err(e) => {
            shared
                .lock()
                .lines
                .push(format!("{actor}: {}: probe failed: {e}", dev.name));
            true
        }
    }
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
