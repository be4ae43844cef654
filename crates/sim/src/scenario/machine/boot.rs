//! Building the machine and booting it (single-threaded, before the actors start), and the MMU-500
//! model configuration for an SMMU node.

use super::drivers::{EnetcDriver, EngineDriver, IommuDmaConfigure};
use super::{
    bus, EngineSlot, Machine, MachineSetupError, NextKernel, SavedParts, SmmuSetupError, TimedMmio,
    DEFAULT_DRAM, GENERIC_DMA_DRIVER, IRQ_SMMU_BASE, MAX_DRAM_PER_REGION,
};
use crate::dma_engine::{DmaEngine, EngineConfig};
use crate::dmesg::Dmesg;
use crate::enetc::Enetc;
use crate::exec::{Exec, Irq};
use crate::firmware::FirmwareLoader;
use crate::kernel::{BootedBoard, Driver, GenericDriver, Kernel, KernelError};
use crate::mmio_log::MmioLog;
use crate::ownership::RetiredContexts;
use crate::scenario::timeline::{Timeline, TracedLog};
use crate::scenario::RebootConfig;
use crate::smmu_platform::SmmuPlatformDriver;
use crate::{Bus, DeviceIndex};
use arm_smmu::table::LpaeTables;
use arm_smmu::{ArmSmmu, FirmwareDesc, RateLimits, SmmuEnv};
use iommu::{CoreConfig, DeviceId, InstanceId, IommuCore};
use klog::Printk;
use mmu500::Mmu500;
use physmem::{AllocError, FrameAllocator, PhysAddr, PhysMem, Region};
use smmu_arch::FaultIrq;
use smmu_sync::atomic::AtomicBool;
use smmu_sync::{Arc, Mutex};
use std::collections::BTreeMap;

/// The board's DRAM banks as the simulated memory's regions (each capped at
/// `MAX_DRAM_PER_REGION`). A device tree that leaves DRAM to the bootloader (the KBox's does)
/// gets `default_bank` (base, size), the one the board's firmware usually adds.
pub(crate) fn dram_regions(board: &crate::Board, default_bank: (u64, u64)) -> Vec<Region> {
    let mut regions: Vec<Region> = board
        .memory
        .iter()
        .map(|m| Region::new(PhysAddr::new(m.base), m.size.min(MAX_DRAM_PER_REGION)))
        .collect();
    if regions.is_empty() {
        regions.push(Region::new(PhysAddr::new(default_bank.0), default_bank.1));
    }
    regions
}

/// Build the machine and boot it (single-threaded: before the actors start), one phase after
/// the other in the order Linux takes them.
pub(in crate::scenario) fn boot(cfg: &RebootConfig) -> Result<Machine, MachineSetupError> {
    let board = &cfg.board;
    let mmio_log = cfg.mmio_log.then(|| Arc::new(MmioLog::new()));
    if let Some(l) = &mmio_log {
        l.phase("boot");
    }
    let log = Arc::new(Dmesg::new());
    log.set_timestamps(cfg.timestamps);
    let Memory {
        mem,
        tables,
        coherent,
        kmem,
    } = memory(board)?;
    let pools = vec![tables.clone(), coherent.clone(), kmem.clone()];
    let (kernel, timeline, printk) = start_kernel(&log);
    // Every simulated kernel is a Linux kernel, so its page tables check input as io-pgtable-arm
    // does. quiesce is a shutdown policy on top of such a kernel and does not change the
    // page-table layer (one axis, one option); the strict checks (`LpaeTables::SAFE`) are a
    // library mode for users of pgtable, not a simulated kernel.
    let lpae = arm_smmu::table::LpaeTables::LINUX;
    let core = iommu_core(cfg, &mem, coherent, &printk);

    let booted = crate::kernel::register_board(&kernel, board);
    let limits = Arc::new(RateLimits::default());
    let pending_irqs: Arc<Mutex<Vec<(usize, FaultIrq)>>> = Arc::new(Mutex::new(Vec::new()));
    let exec = Arc::new(Exec::new(board.cpus));
    let firmware = firmware_loader(cfg, &kernel, &log, &exec);
    let b = Booting {
        cfg,
        mmio_log,
        log,
        mem,
        tables,
        kmem,
        kernel,
        printk,
        lpae,
        core,
        booted,
        exec,
        pending_irqs,
    };
    let smmus = b.probe_smmus(&limits)?;
    let dma_cfg = b.dma_configure(&smmus);
    let iommu_id = iommu_id_of(dma_cfg.clone());

    // The flooded NIC, if the board has one: the first fsl_enetc function behind an SMMU.
    let nic_idx = board
        .masters
        .iter()
        .position(|m| m.driver.as_deref() == Some("fsl_enetc") && m.attached)
        .filter(|&i| {
            board
                .masters
                .get(i)
                .and_then(|m| smmus.model_of(m))
                .is_some()
        });
    let enetc_drv = b.nic_driver(&smmus, nic_idx, &iommu_id)?;
    let (engine_drvs, engine_order) = b.engine_drivers(&smmus, nic_idx, &iommu_id)?;
    b.probe_masters(nic_idx, &enetc_drv, &engine_drvs);
    let (nic, engines) = b.probed(&enetc_drv, &engine_drvs, engine_order)?;

    let Booting {
        mmio_log,
        log,
        mem,
        core,
        tables,
        kernel,
        printk,
        lpae,
        booted,
        exec,
        pending_irqs,
        ..
    } = b;
    let Smmus {
        drivers,
        next_smmus,
        retired,
        ..
    } = smmus;
    let next_kernel = NextKernel {
        smmus: next_smmus,
        params: cfg.cmdline.smmu,
        behaviour: cfg.kernel.driver_behaviour(),
        printk,
        log: log.clone(),
        tables,
        lpae,
        mmio_log: mmio_log.clone(),
    };
    let nic_name = nic_idx
        .and_then(|i| booted.masters.get(i))
        .map(|&d| kernel.device_name(d));
    Ok(Machine {
        nic_name,
        kernel,
        log,
        nic,
        hardware_name: board.hardware_name(),
        trigger_done: AtomicBool::new(false),
        engines,
        crash: Mutex::new(None),
        exec,
        build: cfg.build,
        kasan_reported: smmu_sync::atomic::AtomicU64::new(0),
        mld_interval_ns: cfg.nic.mld_interval_ns,
        mld_armed: AtomicBool::new(false),
        pending_irqs,
        drivers: Mutex::new(drivers),
        timeline,
        next_kernel,
        new_kernel: AtomicBool::new(false),
        mmio_log,
        firmware,
        saved: SavedParts {
            mem,
            pools,
            retired,
            core,
            dma_cfg,
        },
    })
}

/// The simulated memory and the kernel's pools in it.
struct Memory {
    mem: Arc<PhysMem>,
    /// Page tables.
    tables: Arc<FrameAllocator>,
    /// Coherent DMA.
    coherent: Arc<FrameAllocator>,
    /// Packet buffers.
    kmem: Arc<FrameAllocator>,
}

/// Linux: `arm64_memblock_init` takes the DRAM banks from the device tree and the allocators
/// take over; here the banks become the simulated memory and its pools are carved out.
fn memory(board: &crate::Board) -> Result<Memory, MachineSetupError> {
    let regions = dram_regions(board, DEFAULT_DRAM);
    let dram = regions
        .first()
        .copied()
        .unwrap_or(Region::new(PhysAddr::new(DEFAULT_DRAM.0), DEFAULT_DRAM.1));
    let mem = Arc::new(PhysMem::new(&regions).map_err(AllocError::from)?);
    // Kernel memory pools at the bottom of DRAM: page tables, coherent DMA, packet buffers.
    let pool = |off: u64, size: u64| {
        FrameAllocator::new(mem.clone(), PhysAddr::new(dram.base.as_u64() + off), size)
            .map(Arc::new)
            .map_err(MachineSetupError::Memory)
    };
    let tables = pool(0x10_0000, 0x40_0000)?;
    let coherent = pool(0x50_0000, 0x40_0000)?;
    // Packet buffers: room for two full rings of the largest size.
    let kmem = pool(0x90_0000, 0x400_0000)?;
    Ok(Memory {
        mem,
        tables,
        coherent,
        kmem,
    })
}

/// Linux: `start_kernel` brings up the core kernel and printk; kvm's reboot notifier is
/// registered by its initcall. Here: the kernel model, the timeline and the printk that
/// records into both.
fn start_kernel(log: &Arc<Dmesg>) -> (Arc<Kernel>, Arc<Timeline>, Arc<dyn Printk>) {
    let kernel = Arc::new(Kernel::new(log.clone()));
    kernel.register_reboot_notifier(crate::kernel::kvm_reboot_notifier());
    let timeline = Arc::new(Timeline {
        clock: log.clone(),
        recording: AtomicBool::new(false),
        events: Mutex::new(Vec::new()),
    });
    let printk: Arc<dyn Printk> = Arc::new(TracedLog {
        dmesg: log.clone(),
        timeline: timeline.clone(),
    });
    (kernel, timeline, printk)
}

/// Linux: `iommu_subsys_init` sets the default domain type and the strict mode from the
/// command line before any IOMMU driver registers.
fn iommu_core(
    cfg: &RebootConfig,
    mem: &Arc<PhysMem>,
    coherent: Arc<FrameAllocator>,
    printk: &Arc<dyn Printk>,
) -> Arc<IommuCore> {
    IommuCore::new(
        CoreConfig {
            strict: cfg.cmdline.strict,
            passthrough: cfg.cmdline.passthrough,
            linux_faithful: cfg.dma_core == crate::scenario::DmaCore::Linux,
            group_default_domain_offset: cfg.build.group_default_domain_offset,
            ..CoreConfig::default()
        },
        mem.clone(),
        coherent,
        printk.clone(),
    )
}

/// Linux: the firmware loader's initcall registers its reboot notifier (after kvm's), and
/// cfg80211 asks for `regulatory.db` from the boot CPU.
fn firmware_loader(
    cfg: &RebootConfig,
    kernel: &Arc<Kernel>,
    log: &Arc<Dmesg>,
    exec: &Arc<Exec>,
) -> Arc<FirmwareLoader> {
    // cfg80211's regulatory.db request, made from the boot CPU, waits in the firmware
    // loader's sysfs fallback; the loader's reboot notifier (registered after kvm's: kvm's
    // initcall links first) aborts it and wakes its work.
    let firmware = Arc::new(crate::firmware::FirmwareLoader::default());
    if cfg.build.regdb_fallback_pending {
        firmware.request_with_fallback(crate::scenario::cpu::REGDB, 0, log.now_ns());
    }
    {
        let (fw, gic) = (firmware.clone(), exec.clone());
        kernel.register_reboot_notifier(Box::new(move |k: &Kernel, _| {
            for cpu in fw.kill_pending(k.log().now_ns()) {
                gic.wake_work(cpu, crate::scenario::cpu::WORK_FW_FALLBACK);
            }
        }));
    }
    firmware
}

/// What the boot phases after the kernel core share.
struct Booting<'a> {
    cfg: &'a RebootConfig,
    mmio_log: Option<Arc<MmioLog>>,
    log: Arc<Dmesg>,
    mem: Arc<PhysMem>,
    tables: Arc<FrameAllocator>,
    kmem: Arc<FrameAllocator>,
    kernel: Arc<Kernel>,
    printk: Arc<dyn Printk>,
    lpae: LpaeTables,
    core: Arc<IommuCore>,
    booted: BootedBoard,
    exec: Arc<Exec>,
    pending_irqs: Arc<Mutex<Vec<(usize, FaultIrq)>>>,
}

/// The SMMUs probed, with their models.
struct Smmus {
    drivers: Vec<Arc<ArmSmmu>>,
    /// Each SMMU node's device and core instance (`None`: not modelled).
    smmu_devs: Vec<Option<(DeviceIndex, InstanceId)>>,
    models: Vec<Arc<Mmu500>>,
    /// The freed-domain record of each model.
    retired: Vec<Arc<RetiredContexts>>,
    /// What a kexec'd kernel needs to probe the same SMMUs again.
    next_smmus: Vec<(FirmwareDesc, Arc<Mmu500>)>,
}

impl Smmus {
    /// The model a master's transactions go through: its SMMU among the modelled ones.
    fn model_index(&self, m: &crate::Master) -> usize {
        self.smmu_devs
            .iter()
            .take(m.smmu)
            .filter(|d| d.is_some())
            .count()
    }

    fn model_of(&self, m: &crate::Master) -> Option<Arc<Mmu500>> {
        self.models.get(self.model_index(m)).cloned()
    }

    /// The freed-domain record of that SMMU.
    fn retired_of(&self, m: &crate::Master) -> Arc<RetiredContexts> {
        self.retired
            .get(self.model_index(m))
            .cloned()
            .unwrap_or_default()
    }
}

/// A master's IOMMU device id, as its `dma_configure` recorded it.
fn iommu_id_of(
    dma_cfg: Arc<IommuDmaConfigure>,
) -> impl Fn(&Kernel, DeviceIndex) -> Result<DeviceId, KernelError> + Clone + Send + Sync + 'static
{
    move |k: &Kernel, dev: DeviceIndex| {
        dma_cfg
            .iommu_ids
            .lock()
            .get(&dev)
            .copied()
            .ok_or_else(|| KernelError::ProbeFailed {
                dev: k.device_name(dev),
                reason: "no IOMMU device".into(),
            })
    }
}

impl Booting<'_> {
    /// Linux: the SMMU platform driver probes each enabled SMMU node: `arm_smmu_device_probe`
    /// reads the ID registers, registers the instance with the IOMMU core, then resets the
    /// hardware (v6.1's order); its interrupts are requested on the GIC.
    fn probe_smmus(&self, limits: &Arc<RateLimits>) -> Result<Smmus, MachineSetupError> {
        let (cfg, board) = (self.cfg, &self.cfg.board);
        let (booted, core, mem, mmio_log) = (&self.booted, &self.core, &self.mem, &self.mmio_log);
        let (log, printk, tables, lpae) = (&self.log, &self.printk, &self.tables, self.lpae);
        let (kernel, exec, pending_irqs) = (&self.kernel, &self.exec, &self.pending_irqs);
        let mut drivers = Vec::new();
        let mut smmu_devs = Vec::new();
        let mut models = Vec::new();
        let mut retired = Vec::new();
        let mut next_smmus = Vec::new();
        for (i, desc) in board.smmus.iter().enumerate() {
            let Some(&dev) = booted.smmus.get(i) else {
                smmu_devs.push(None);
                continue;
            };
            if !desc.enabled {
                smmu_devs.push(None);
                continue;
            }
            let err = |why: SmmuSetupError| MachineSetupError::Smmu {
                name: desc.name.clone(),
                why,
            };
            if desc.version == crate::SmmuVersion::V3 {
                // The smmuv3 model and arm-smmu-v3 driver exist as crates; this scenario runs the
                // SMMUv2 stack only (v3 waits for the kernel-model rework).
                return Err(err(SmmuSetupError::V3NotRun));
            }
            let model_cfg = model_config(desc);
            let model = Mmu500::new(model_cfg, mem.clone()).map_err(|e| err(e.into()))?;
            let fw = FirmwareDesc {
                compatible: desc.matched.clone(),
                reg_base: desc.base,
                reg_size: desc.size,
                dev_name: desc.name.clone(),
                num_global_irqs: Some(desc.global_irqs),
                num_context_irqs: desc.context_irqs,
                dma_coherent: desc.dma_coherent,
            };
            let env = SmmuEnv {
                mmio: Arc::new(TimedMmio {
                    inner: bus(mmio_log, &model, &desc.name),
                    log: log.clone(),
                }),
                log: printk.clone(),
                frames: tables.clone(),
                tables: Arc::new(lpae),
                limits: limits.clone(),
            };
            let smmu = ArmSmmu::probe(&fw, cfg.cmdline.smmu, cfg.kernel.driver_behaviour(), env)
                .map_err(|e| err(e.into()))?;
            // v6.1 order: register with the core (clients may attach), then the RMR step and the
            // reset of the hardware.
            let inst = core.register(smmu.clone());
            smmu.reset_at_probe();
            // Each torn-down domain retires its bank's context epoch, read from the model.
            let freed = Arc::new(RetiredContexts::default());
            {
                let (freed, model) = (freed.clone(), model.clone());
                smmu.set_context_release_hook(Box::new(move |cb| {
                    let cb = cb as u16;
                    if let Some(epoch) = model.context_epoch(cb) {
                        freed.retire(cb, epoch);
                    }
                }));
            }
            retired.push(freed);
            next_smmus.push((fw, model.clone()));
            let (irqs, index, gic) = (pending_irqs.clone(), models.len(), exec.clone());
            model.set_irq_handler(Arc::new(move |line: FaultIrq| {
                let mut p = irqs.lock();
                if !p.contains(&(index, line)) {
                    p.push((index, line));
                }
                drop(p);
                // The GIC routes the SMMU's SPIs to CPU 0.
                gic.raise_irq(0, Irq::Line(IRQ_SMMU_BASE + index as u32));
            }));
            drivers.push(smmu.clone());
            kernel.driver_attach(
                dev,
                Arc::new(SmmuPlatformDriver {
                    smmu,
                    core: core.clone(),
                    inst,
                }),
            )?;
            smmu_devs.push(Some((dev, inst)));
            models.push(model);
        }
        if models.is_empty() {
            return Err(MachineSetupError::NoSmmu);
        }
        Ok(Smmus {
            drivers,
            smmu_devs,
            models,
            retired,
            next_smmus,
        })
    }

    /// Linux: `of_dma_configure` runs before each master's driver probes: it finds the
    /// master's SMMU from its `iommus` property and hands the device to the IOMMU core.
    fn dma_configure(&self, smmus: &Smmus) -> Arc<IommuDmaConfigure> {
        let (board, booted, kernel) = (&self.cfg.board, &self.booted, &self.kernel);
        let (core, mmio_log, smmu_devs) = (&self.core, &self.mmio_log, &smmus.smmu_devs);
        // Bus positions: the order devices were added to each bus.
        let mut bus_pos = BTreeMap::new();
        for i in 0..board.masters.len() {
            if let Some(&d) = booted.masters.get(i) {
                bus_pos.insert(d, i as u64);
            }
        }
        let dma_cfg = Arc::new(IommuDmaConfigure {
            board: board.clone(),
            smmu_devs: smmu_devs.clone(),
            core: core.clone(),
            iommu_ids: Mutex::new(BTreeMap::new()),
            bus_pos,
            mmio_log: mmio_log.clone(),
        });
        kernel.set_dma_configure(dma_cfg.clone());
        dma_cfg
    }

    /// Linux: `fsl_enetc` is the driver of the flooded NIC function; its probe (at driver
    /// probe time, below) maps its rings through the IOMMU core.
    fn nic_driver(
        &self,
        smmus: &Smmus,
        nic_idx: Option<usize>,
        iommu_id: &(impl Fn(&Kernel, DeviceIndex) -> Result<DeviceId, KernelError>
              + Clone
              + Send
              + Sync
              + 'static),
    ) -> Result<Option<Arc<EnetcDriver>>, MachineSetupError> {
        let (cfg, board, kernel) = (self.cfg, &self.cfg.board, &self.kernel);
        let (core, mem, kmem) = (&self.core, &self.mem, &self.kmem);
        let enetc_drv = match nic_idx.and_then(|i| board.masters.get(i)) {
            None => None,
            Some(nic_master) => {
                let mut nic_cfg = cfg.nic.clone();
                // One ring pair and MSI-X vector per online CPU unless configured.
                nic_cfg.rings = nic_cfg.ring_pairs(board.cpus);
                if let Some(w) = nic_master.wire_ids().and_then(|w| w.first().copied()) {
                    nic_cfg.stream_id = u32::from(w);
                }
                let nic_model = smmus.model_of(nic_master).ok_or(MachineSetupError::NoNic)?;
                let nic_retired = smmus.retired_of(nic_master);
                let (core, mem, kmem, iommu_id) =
                    (core.clone(), mem.clone(), kmem.clone(), iommu_id.clone());
                let weak_kernel = Arc::downgrade(kernel);
                Some(Arc::new(EnetcDriver {
                    make: Box::new(move |k: &Kernel, dev: DeviceIndex| {
                        let id = iommu_id(k, dev)?;
                        Enetc::probe(
                            nic_cfg.clone(),
                            id,
                            core.clone(),
                            nic_model.clone(),
                            mem.clone(),
                            kmem.clone(),
                            nic_retired.clone(),
                            {
                                let k = weak_kernel.clone();
                                Box::new(move || k.upgrade().is_some_and(|k| k.bus_master(dev)))
                            },
                        )
                        .map_err(|e| KernelError::ProbeFailed {
                            dev: k.device_name(dev),
                            reason: e.to_string(),
                        })
                    }),
                    nic: Mutex::new(None),
                }))
            }
        };
        Ok(enetc_drv)
    }

    /// Linux: the drivers of the masters asked to run traffic; a master whose own driver is
    /// not modelled gets the generic DMA engine's, as `driver_override` would bind it.
    #[allow(clippy::type_complexity)]
    fn engine_drivers(
        &self,
        smmus: &Smmus,
        nic_idx: Option<usize>,
        iommu_id: &(impl Fn(&Kernel, DeviceIndex) -> Result<DeviceId, KernelError>
              + Clone
              + Send
              + Sync
              + 'static),
    ) -> Result<(BTreeMap<usize, Arc<EngineDriver>>, Vec<Option<usize>>), MachineSetupError> {
        let (cfg, board) = (self.cfg, &self.cfg.board);
        let (core, mem, kmem) = (&self.core, &self.mem, &self.kmem);
        // The generic DMA engines asked for: any master behind a modelled SMMU that the kernel
        // probes. One whose own driver smmu-lab does not model (or that does not bind) gets the
        // generic engine's driver, as a test driver bound with `driver_override` would be.
        let capable: Vec<usize> = (0..board.masters.len())
            .filter(|&i| Some(i) != nic_idx)
            .filter(|&i| {
                board.masters.get(i).is_some_and(|m| {
                    m.attached && m.probes && !m.ids.is_empty() && smmus.model_of(m).is_some()
                })
            })
            .collect();
        let mut engine_drvs: BTreeMap<usize, Arc<EngineDriver>> = BTreeMap::new();
        let mut engine_order = Vec::new();
        for name in &cfg.traffic {
            let found = capable
                .iter()
                .copied()
                .find(|&i| board.masters.get(i).is_some_and(|m| &m.name == name));
            if found.is_some() && engine_order.contains(&found) {
                // Asked for twice: one engine.
                continue;
            }
            let Some(i) = found else {
                return Err(MachineSetupError::UnknownTraffic {
                    name: name.clone(),
                    known: capable
                        .iter()
                        .filter_map(|&i| board.masters.get(i).map(|m| m.name.clone()))
                        .collect::<Vec<_>>()
                        .join(", "),
                });
            };
            let Some(m) = board.masters.get(i) else {
                continue;
            };
            let Some(model) = smmus.model_of(m) else {
                continue;
            };
            let freed = smmus.retired_of(m);
            let driver = m
                .driver
                .clone()
                .unwrap_or_else(|| GENERIC_DMA_DRIVER.to_string());
            let stream_id = m
                .wire_ids()
                .and_then(|w| w.first().copied())
                .or_else(|| m.ids.first().map(|id| id.sid))
                .map(u32::from)
                .unwrap_or(0);
            let ecfg = EngineConfig {
                device: m.name.clone(),
                driver: driver.clone(),
                stream_id,
            };
            let (core, mem, kmem, iommu_id) =
                (core.clone(), mem.clone(), kmem.clone(), iommu_id.clone());
            engine_drvs.insert(
                i,
                Arc::new(EngineDriver {
                    name: driver,
                    has_shutdown: m.has_shutdown,
                    make: Box::new(move |k: &Kernel, dev: DeviceIndex| {
                        let id = iommu_id(k, dev)?;
                        Ok(DmaEngine::new(
                            ecfg.clone(),
                            id,
                            core.clone(),
                            model.clone(),
                            mem.clone(),
                            kmem.clone(),
                            freed.clone(),
                        ))
                    }),
                    engine: Mutex::new(None),
                }),
            );
            engine_order.push(Some(i));
        }
        Ok((engine_drvs, engine_order))
    }

    /// Linux: driver probe at `device_initcall`: each master, in the board's probe order, is
    /// bound to its driver (after `dma_configure`), and PCI functions become bus masters.
    fn probe_masters(
        &self,
        nic_idx: Option<usize>,
        enetc_drv: &Option<Arc<EnetcDriver>>,
        engine_drvs: &BTreeMap<usize, Arc<EngineDriver>>,
    ) {
        let (board, booted, kernel) = (&self.cfg.board, &self.booted, &self.kernel);
        for i in board.probe_order() {
            let (Some(m), Some(&d)) = (board.masters.get(i), booted.masters.get(i)) else {
                continue;
            };
            let drv: Arc<dyn Driver> = match (&enetc_drv, engine_drvs.get(&i)) {
                (Some(e), _) if Some(i) == nic_idx => e.clone(),
                (_, Some(e)) => e.clone(),
                _ => Arc::new(GenericDriver {
                    name: m.driver.clone().unwrap_or_else(|| m.bus.name().into()),
                    has_shutdown: m.has_shutdown,
                    binds: m.driver.is_some(),
                }),
            };
            if kernel.driver_attach(d, drv).is_ok() && m.bus == Bus::Pci {
                kernel.set_bus_master(d, true);
            }
        }
    }

    /// After probe: the NIC and the DMA engines the drivers made, each one that must have
    /// probed named when it did not.
    fn probed(
        &self,
        enetc_drv: &Option<Arc<EnetcDriver>>,
        engine_drvs: &BTreeMap<usize, Arc<EngineDriver>>,
        engine_order: Vec<Option<usize>>,
    ) -> Result<(Option<Arc<Enetc>>, Vec<EngineSlot>), MachineSetupError> {
        let (board, booted) = (&self.cfg.board, &self.booted);
        let nic = match &enetc_drv {
            None => None,
            Some(e) => Some(
                e.nic
                    .lock()
                    .clone()
                    .ok_or_else(|| MachineSetupError::NotProbed {
                        driver: "fsl_enetc".into(),
                    })?,
            ),
        };
        let mut engines = Vec::new();
        for i in engine_order.into_iter().flatten() {
            let (Some(m), Some(drv), Some(&dev)) = (
                board.masters.get(i),
                engine_drvs.get(&i),
                booted.masters.get(i),
            ) else {
                continue;
            };
            let engine = drv
                .engine
                .lock()
                .clone()
                .ok_or_else(|| MachineSetupError::NotProbed {
                    driver: m.name.clone(),
                })?;
            engines.push(EngineSlot {
                engine,
                dev,
                pci: m.bus == Bus::Pci,
            });
        }
        Ok((nic, engines))
    }
}

/// The model configuration for an SMMU node.
pub fn model_config(desc: &crate::SmmuDesc) -> mmu500::Mmu500Config {
    let mut c = match desc.matched.as_str() {
        "arm,mmu-401" | "arm,mmu-400" | "arm,smmu-v1" => mmu500::Mmu500Config::mmu401(),
        "arm,mmu-500" => mmu500::Mmu500Config::mmu500_ls1028a(),
        _ => mmu500::Mmu500Config::smmuv2_generic(),
    };
    // The implementation has as many context banks as the node wires context interrupts (an
    // MMU-500 with fewer banks than the preset's, like i.MX8QM's 32): arm-smmu refuses a
    // model with more banks than interrupts.
    if desc.context_irqs > 0 && desc.context_irqs < c.num_cb {
        c.num_cb = desc.context_irqs;
        c.num_s2cb = c.num_s2cb.min(c.num_cb);
        c.num_context_irqs = c.num_context_irqs.min(c.num_cb);
    }
    c
}
