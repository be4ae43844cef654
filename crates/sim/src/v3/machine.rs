//! Building the SMMUv3 machine: memory, the smmuv3 model, the arm-smmu-v3 driver, the IOMMU
//! core, the kernel's devices and drivers, and the flooded PCI functions.

use super::nic::FloodedFunction;
use crate::builds::KernelBuild;
use crate::dmesg::Dmesg;
use crate::exec::{Exec, Irq};
use crate::kernel::{DmaConfigure, Driver, GenericDriver, Kernel, KernelError};
use crate::mmio_log::MmioLog;
use crate::scenario::{KernelBehaviour, MachineSetupError, RebootConfig, SmmuSetupError};
use crate::smmu_platform::SmmuPlatformDriver;
use crate::{Board, Bus, DeviceIndex, SmmuDesc, SmmuVersion};
use arm_smmu_v3::trace::TracingMmio;
use arm_smmu_v3::{
    ArmSmmuV3, EnabledAtProbe, FirmwareDesc, KernelVersion, ModuleParams, RateLimits,
    ShutdownPolicy, SmmuEnv,
};
use iommu::{CoreConfig, DeviceDesc, InstanceId, IommuCore};
use klog::Printk;
use physmem::{AllocError, FrameAllocator, PhysAddr, PhysMem, Region};
use smmu_sync::atomic::AtomicBool;
use smmu_sync::{Arc, Mutex};
use smmuv3::{IrqLine, Mmio, SmmuV3};
use std::collections::BTreeMap;

/// DRAM assumed when the device tree has none (QEMU's virt always has /memory).
const DEFAULT_DRAM: Region = Region::new(PhysAddr::new(0x4000_0000), 0x8000_0000);

/// The driver and shutdown policy a kernel behaviour runs on SMMUv3. The crate models the
/// v6.1 and v6.12 drivers; v6.2 differs from v6.1 (in what this scenario exercises) only by
/// 32ea2c57dc21, so `linux-6.2` is the v6.1 driver with that fix's shutdown.
pub fn driver_of(k: KernelBehaviour) -> (KernelVersion, ShutdownPolicy) {
    match k {
        KernelBehaviour::Linux61 => (KernelVersion::V6_1, ShutdownPolicy::Linux61),
        KernelBehaviour::Linux62 => (KernelVersion::V6_1, ShutdownPolicy::Linux62),
        KernelBehaviour::Quiesce => (KernelVersion::V6_12, ShutdownPolicy::Quiesce),
    }
}

/// What firmware says about the SMMU, as arm-smmu-v3 reads it.
pub fn firmware(desc: &SmmuDesc) -> FirmwareDesc {
    FirmwareDesc {
        compatible: desc.matched.clone(),
        reg_base: desc.base,
        reg_size: desc.size,
        dev_name: desc.name.clone(),
        iommu_cells: Some(desc.iommu_cells),
        irq_names: desc.irq_names.clone(),
        dma_coherent: desc.dma_coherent,
        // The board loader does not read msi-parent; QEMU's node has none.
        msi_parent: false,
    }
}

/// `dma_configure` of a master behind the SMMUv3: probe it onto the IOMMU instance (group,
/// default domain, attach) and link it to the SMMU as its consumer.
pub(super) struct V3DmaConfigure {
    board: Board,
    smmu: usize,
    smmu_dev: DeviceIndex,
    inst: InstanceId,
    core: Arc<IommuCore>,
    pub(super) ids: Mutex<BTreeMap<DeviceIndex, iommu::DeviceId>>,
    mmio_log: Option<Arc<MmioLog>>,
}

impl DmaConfigure for V3DmaConfigure {
    fn dma_configure(&self, k: &Kernel, dev: DeviceIndex) -> Result<(), KernelError> {
        let Some(m) = k.master_index(dev).and_then(|i| self.board.masters.get(i)) else {
            return Ok(());
        };
        if m.smmu != self.smmu || !m.attached || !k.is_bound(self.smmu_dev) {
            return Ok(());
        }
        if let Some(l) = &self.mmio_log {
            l.phase(&format!("attach {}", m.name));
        }
        let bus = m.bus;
        let ids: Vec<u32> = m.ids.iter().map(|id| u32::from(id.sid)).collect();
        let pos = k.master_index(dev).unwrap_or(0) as u64;
        let mut desc = DeviceDesc::new(&m.log_prefix(), bus, pos, &ids);
        desc.coherent = true;
        let id = self
            .core
            .probe_device(desc, self.inst)
            .map_err(|e| KernelError::ProbeFailed {
                dev: k.device_name(dev),
                reason: e.to_string(),
            })?;
        self.ids.lock().insert(dev, id);
        k.device_link_add(dev, self.smmu_dev)
    }
}

/// Builds the flooded function at its driver's probe time.
type MakeFunction =
    Box<dyn Fn(&Kernel, DeviceIndex) -> Result<Arc<FloodedFunction>, KernelError> + Send + Sync>;

/// The flooded function's driver: no `.shutdown`.
struct FloodDriver {
    name: String,
    make: MakeFunction,
    made: Mutex<Option<Arc<FloodedFunction>>>,
}

impl Driver for FloodDriver {
    fn name(&self) -> &str {
        &self.name
    }
    fn probe(&self, k: &Kernel, dev: DeviceIndex) -> Result<(), KernelError> {
        *self.made.lock() = Some((self.make)(k, dev)?);
        Ok(())
    }
}

/// A flooded function (its Bus Master Enable is read from its device in the kernel).
pub(super) struct Flooded {
    pub(super) f: Arc<FloodedFunction>,
}

/// What the next kernel (after kexec) needs to probe the SMMU again.
pub(super) struct NextKernel {
    pub(super) fw: FirmwareDesc,
    pub(super) version: KernelVersion,
    pub(super) policy: ShutdownPolicy,
    /// What its reset does with the SMMU it finds enabled.
    pub(super) enabled_at_probe: EnabledAtProbe,
    pub(super) bus: Arc<dyn Mmio>,
    pub(super) printk: Arc<dyn Printk>,
    pub(super) tables: Arc<FrameAllocator>,
}

/// The GIC INTID of an SPI (SPIs start at INTID 32).
const SPI_BASE: u32 = 32;
/// The GIC INTID of the first flooded function's MSI: LPIs start at INTID 8192 (GICv3; QEMU's
/// virt machine routes PCI MSIs through the ITS). Function *i*'s is `IRQ_MSI_BASE + i`.
pub(super) const IRQ_MSI_BASE: u32 = 8192;

/// The INTID of the SMMU's interrupt `line`: the SPI its `interrupt-names` entry is wired to,
/// or (a node without that name) one of four made-up SPIs after the last.
fn smmu_intid(desc: &SmmuDesc, line: IrqLine) -> u32 {
    let named = desc
        .irq_names
        .iter()
        .position(|n| n == line.dt_name())
        .and_then(|i| desc.irq_spis.get(i).copied());
    let ordinal = match line {
        IrqLine::Eventq => 0,
        IrqLine::Priq => 1,
        IrqLine::CmdqSync => 2,
        IrqLine::Gerror => 3,
    };
    SPI_BASE + named.unwrap_or(988 + ordinal)
}

/// The action name arm-smmu-v3 requests `line` under when its handler is threaded.
pub(super) fn threaded_irq_name(line: IrqLine) -> Option<&'static str> {
    match line {
        IrqLine::Eventq => Some("arm-smmu-v3-evtq"),
        IrqLine::Priq => Some("arm-smmu-v3-priq"),
        IrqLine::Gerror | IrqLine::CmdqSync => None,
    }
}

/// The machine the actors share.
pub(crate) struct V3Machine {
    /// Which of the board's SMMUs this machine runs on.
    pub(super) smmu_index: usize,
    pub(super) kernel: Arc<Kernel>,
    /// The CPUs and what runs on them.
    pub(super) exec: Arc<Exec>,
    /// The kernel build (the Oops banner's).
    pub(super) build: KernelBuild,
    /// The SMMU's interrupt lines by GIC INTID (routed to CPU 0).
    pub(super) smmu_intids: Vec<(u32, IrqLine)>,
    pub(super) log: Arc<Dmesg>,
    pub(super) model: Arc<SmmuV3>,
    pub(super) smmu: Mutex<Arc<ArmSmmuV3>>,
    pub(super) flooded: Vec<Flooded>,
    pub(super) pending_irqs: Arc<Mutex<Vec<IrqLine>>>,
    pub(super) hardware_name: String,
    pub(super) next: NextKernel,
    pub(super) mmio_log: Option<Arc<MmioLog>>,
    pub(super) trigger_done: AtomicBool,
    pub(super) new_kernel: AtomicBool,
    /// CPU 0 runs the old kernel's work (NAPI polls, the SMMU's interrupts) holding this, with
    /// `false` inside while the old kernel runs. A crash sets it `true` ("SMP: stopping
    /// secondary CPUs"): taking it waits for the poll in progress, and CPU 0 runs none after.
    pub(super) secondaries_stopped: Mutex<bool>,
    /// The Oops and the task it happened in.
    pub(super) crash: Mutex<Option<(iommu::Oops, crate::exec::Task)>>,
    /// Why the next kernel's arm-smmu-v3 probe failed, if it did.
    pub(super) next_probe_failed: Mutex<Option<arm_smmu_v3::ProbeError>>,
    /// What the booted-machine snapshot saves besides the parts above.
    pub(super) saved: V3SavedParts,
}

/// The machine's components that only its snapshot reaches: memory and its pools (queues and
/// tables, coherent DMA, receive buffers), the IOMMU core, the `dma_configure` hook's device
/// ids and the MMIO log's bus recorder.
pub(super) struct V3SavedParts {
    pub(super) mem: Arc<PhysMem>,
    pub(super) pools: Vec<Arc<FrameAllocator>>,
    pub(super) core: Arc<IommuCore>,
    pub(super) dma_cfg: Arc<V3DmaConfigure>,
    /// Only when the run keeps an MMIO log.
    pub(super) tracer: Option<Arc<TracingMmio<Arc<SmmuV3>>>>,
}

/// Build the machine and boot it (before the actors start).
pub(super) fn boot(cfg: &RebootConfig, smmu_idx: usize) -> Result<V3Machine, MachineSetupError> {
    let board = &cfg.board;
    let desc = board.smmus.get(smmu_idx).ok_or(MachineSetupError::NoSmmu)?;
    debug_assert_eq!(desc.version, SmmuVersion::V3);
    let err = |why: SmmuSetupError| MachineSetupError::Smmu {
        name: desc.name.clone(),
        why,
    };
    let mmio_log = cfg.mmio_log.then(|| Arc::new(MmioLog::new()));
    if let Some(l) = &mmio_log {
        l.phase("boot");
    }
    let log = Arc::new(Dmesg::new());
    log.set_timestamps(cfg.timestamps);
    let regions = crate::scenario::dram_regions(board, DEFAULT_DRAM);
    let dram = regions[0];
    let mem = Arc::new(PhysMem::new(&regions).map_err(AllocError::from)?);
    let pool = |off: u64, size: u64| {
        FrameAllocator::new(mem.clone(), PhysAddr::new(dram.base.as_u64() + off), size)
            .map(Arc::new)
            .map_err(MachineSetupError::Memory)
    };
    // Queues (Linux caps QEMU's 2^19-entry queues at 4 MiB each), stream table, CDs, page
    // tables; then coherent DMA; then receive buffers.
    let tables = pool(0x10_0000, 0x100_0000)?;
    let coherent = pool(0x110_0000, 0x40_0000)?;
    let kmem = pool(0x150_0000, 0x80_0000)?;

    let kernel = Arc::new(Kernel::new(log.clone()));
    let printk: Arc<dyn Printk> = log.clone();
    let core = IommuCore::new(
        CoreConfig {
            strict: cfg.cmdline.strict,
            passthrough: cfg.cmdline.passthrough,
            linux_faithful: cfg.kernel != KernelBehaviour::Quiesce,
            ..CoreConfig::default()
        },
        mem.clone(),
        coherent.clone(),
        printk.clone(),
    );
    let booted = crate::kernel::register_board(&kernel, board);
    let smmu_dev = *booted
        .smmus
        .get(smmu_idx)
        .ok_or(MachineSetupError::NoSmmu)?;

    let mut model_cfg = smmuv3::SmmuV3Config::qemu_virt();
    if cfg.gbpa_abort {
        model_cfg.gbpa_reset |= smmuv3_arch::regs::gbpa::ABORT;
    }
    let model = SmmuV3::new(model_cfg, mem.clone()).map_err(|e| err(e.into()))?;
    let exec = Arc::new(Exec::new(board.cpus));
    // printk learns where it runs (the console owner) from the execution model.
    let ctx_exec = exec.clone();
    log.set_context_source(Arc::new(move || ctx_exec.current_context()));
    let smmu_intids: Vec<(u32, IrqLine)> = [
        IrqLine::Eventq,
        IrqLine::Priq,
        IrqLine::CmdqSync,
        IrqLine::Gerror,
    ]
    .into_iter()
    .map(|l| (smmu_intid(desc, l), l))
    .collect();
    // arm_smmu_setup_unique_irqs: the event and PRI queues' handlers are threaded
    // (devm_request_threaded_irq with no primary handler, IRQF_ONESHOT), the global-error
    // handler a hardirq (devm_request_irq); nothing is requested for cmdq-sync.
    for &(intid, line) in &smmu_intids {
        if let Some(name) = threaded_irq_name(line) {
            exec.request_threaded_irq(intid, name);
        }
    }
    let pending_irqs: Arc<Mutex<Vec<IrqLine>>> = Arc::new(Mutex::new(Vec::new()));
    {
        let (p, gic, intids) = (pending_irqs.clone(), exec.clone(), smmu_intids.clone());
        model.set_irq_handler(Arc::new(move |line| {
            let mut p = p.lock();
            if !p.contains(&line) {
                p.push(line);
            }
            drop(p);
            // The GIC routes the SMMU's SPIs to CPU 0 (their default affinity).
            if let Some(&(intid, _)) = intids.iter().find(|&&(_, l)| l == line) {
                gic.raise_irq(0, Irq::Line(intid));
            }
        }));
    }
    let tracer = mmio_log.as_ref().map(|l| {
        let (l, name) = (l.clone(), desc.name.clone());
        Arc::new(TracingMmio::with_sink(
            model.clone(),
            mem.clone(),
            Arc::new(move |line: &str| l.line(&name, line)),
        ))
    });
    let traced: Arc<dyn Mmio> = match &tracer {
        Some(t) => t.clone(),
        None => model.clone(),
    };
    let bus: Arc<dyn Mmio> = Arc::new(crate::scenario::TimedMmio {
        inner: traced,
        log: log.clone(),
    });
    let fw = firmware(desc);
    let (version, policy) = driver_of(cfg.kernel);
    let env = SmmuEnv {
        mmio: bus.clone(),
        log: printk.clone(),
        frames: tables.clone(),
        limits: Arc::new(RateLimits::default()),
    };
    let smmu = ArmSmmuV3::probe(&fw, ModuleParams::default(), version, policy, env)
        .map_err(|e| err(e.into()))?;
    let inst = core.register(smmu.clone());
    kernel.driver_attach(
        smmu_dev,
        Arc::new(SmmuPlatformDriver {
            smmu: smmu.clone(),
            core: core.clone(),
            inst,
        }),
    )?;
    let dma_cfg = Arc::new(V3DmaConfigure {
        board: board.clone(),
        smmu: smmu_idx,
        smmu_dev,
        inst,
        core: core.clone(),
        ids: Mutex::new(BTreeMap::new()),
        mmio_log: mmio_log.clone(),
    });
    kernel.set_dma_configure(dma_cfg.clone());

    // The flooded functions: the --traffic masters, behind this SMMU.
    let mut flood_drivers: BTreeMap<usize, Arc<FloodDriver>> = BTreeMap::new();
    for name in &cfg.traffic {
        let known = || {
            board
                .masters
                .iter()
                .filter(|m| m.smmu == smmu_idx && m.attached && !m.ids.is_empty())
                .map(|m| m.name.clone())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let i = board
            .masters
            .iter()
            .position(|m| &m.name == name && m.smmu == smmu_idx && m.attached && !m.ids.is_empty())
            .ok_or_else(|| MachineSetupError::UnknownTraffic {
                name: name.clone(),
                known: known(),
            })?;
        if flood_drivers.contains_key(&i) {
            continue;
        }
        let m = &board.masters[i];
        let sid = m.ids.first().map(|id| u32::from(id.sid)).unwrap_or(0);
        // Its MSIs are writes to its host's ITS (the tree's msi-map).
        let doorbell = board
            .msi_doorbell(m)
            .ok_or_else(|| MachineSetupError::NoMsiController {
                nic: m.name.clone(),
            })?;
        let smmu = model.clone();
        let (core, mem, kmem, ids) = (core.clone(), mem.clone(), kmem.clone(), dma_cfg.clone());
        let weak_kernel = Arc::downgrade(&kernel);
        let (fname, flood) = (m.name.clone(), cfg.nic.flood_packets);
        flood_drivers.insert(
            i,
            Arc::new(FloodDriver {
                name: m
                    .driver
                    .clone()
                    .unwrap_or_else(|| crate::pci_enum::DEFAULT_PCI_DRIVER.into()),
                make: Box::new(move |k: &Kernel, dev: DeviceIndex| {
                    let id = ids.ids.lock().get(&dev).copied().ok_or_else(|| {
                        KernelError::ProbeFailed {
                            dev: k.device_name(dev),
                            reason: "no IOMMU device".into(),
                        }
                    })?;
                    // Its PCI command register's Bus Master Enable, as the kernel model holds it.
                    let bme_kernel = weak_kernel.clone();
                    FloodedFunction::probe(
                        &fname,
                        id,
                        sid,
                        flood,
                        core.clone(),
                        (mem.clone(), kmem.clone()),
                        (smmu.clone(), doorbell),
                        Box::new(move || bme_kernel.upgrade().is_some_and(|k| k.bus_master(dev))),
                    )
                    .map_err(|e| KernelError::ProbeFailed {
                        dev: k.device_name(dev),
                        reason: e.to_string(),
                    })
                }),
                made: Mutex::new(None),
            }),
        );
    }
    for i in board.probe_order() {
        let (Some(m), Some(&d)) = (board.masters.get(i), booted.masters.get(i)) else {
            continue;
        };
        let drv: Arc<dyn Driver> = match flood_drivers.get(&i) {
            Some(f) => f.clone(),
            None => Arc::new(GenericDriver {
                name: m.driver.clone().unwrap_or_else(|| m.bus.name().into()),
                has_shutdown: m.has_shutdown,
                binds: m.driver.is_some(),
            }),
        };
        if kernel.driver_attach(d, drv).is_ok() && m.bus == Bus::Pci {
            kernel.set_bus_master(d, true);
        }
    }
    let mut flooded = Vec::new();
    for (i, drv) in &flood_drivers {
        let f = drv
            .made
            .lock()
            .clone()
            .ok_or_else(|| MachineSetupError::NotProbed {
                driver: board.masters[*i].name.clone(),
            })?;
        flooded.push(Flooded { f });
    }
    Ok(V3Machine {
        smmu_index: smmu_idx,
        kernel,
        exec,
        build: cfg.build,
        smmu_intids,
        log,
        model,
        smmu: Mutex::new(smmu),
        flooded,
        pending_irqs,
        hardware_name: board.hardware_name(),
        next: NextKernel {
            fw,
            version,
            policy,
            enabled_at_probe: cfg.v3_enabled_at_probe,
            bus,
            printk,
            tables: tables.clone(),
        },
        mmio_log,
        trigger_done: AtomicBool::new(false),
        new_kernel: AtomicBool::new(false),
        secondaries_stopped: Mutex::new(false),
        next_probe_failed: Mutex::new(None),
        crash: Mutex::new(None),
        saved: V3SavedParts {
            mem,
            pools: vec![tables, coherent, kmem],
            core,
            dma_cfg,
            tracer,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_event_and_pri_queues_are_threaded_and_gerror_is_not() {
        // arm_smmu_setup_unique_irqs' requests: their action names make the irq threads'.
        let names: Vec<_> = [
            IrqLine::Eventq,
            IrqLine::Priq,
            IrqLine::CmdqSync,
            IrqLine::Gerror,
        ]
        .map(threaded_irq_name)
        .into();
        assert_eq!(
            names,
            [
                Some("arm-smmu-v3-evtq"),
                Some("arm-smmu-v3-priq"),
                None,
                None
            ]
        );
        let exec = Exec::new(1);
        let t = exec.request_threaded_irq(32 + 106, "arm-smmu-v3-evtq");
        assert_eq!(t.comm, "irq/138-arm-smm");
    }
}
