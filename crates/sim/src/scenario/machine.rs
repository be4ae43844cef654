//! Building the simulated machine: memory, the MMU-500 models, the arm-smmu driver, the IOMMU
//! core, the kernel's devices and drivers, and the flooded NIC.

use super::timeline::{Lane, Timeline, TracedLog};
use super::RebootConfig;
use crate::builds::KernelBuild;
use crate::dma_engine::{DmaEngine, EngineConfig, EngineStats};
use crate::dmesg::{Dmesg, OopsReport, TaskInfo};
use crate::enetc::{Crash, Enetc, Kasan, NicStats};
use crate::exec::{Exec, Irq};
use crate::kernel::{DmaConfigure, Driver, GenericDriver, Kernel, KernelError};
use crate::mmio_log::{LoggedMmio, MmioLog};
use crate::ownership::{DmaEvidence, RetiredContexts};
use crate::{Board, Bus, DeviceIndex};
use arm_smmu::{ArmSmmu, DriverBehaviour, FirmwareDesc, ModuleParams, RateLimits, SmmuEnv};
use iommu::{CoreConfig, DeviceDesc, InstanceId, IommuCore};
use klog::Printk;
use mmu500::Mmu500;
use physmem::{AllocError, FrameAllocator, PhysAddr, PhysMem, Region};
use smmu_arch::{FaultIrq, Mmio};
use smmu_sync::atomic::{AtomicBool, Ordering};
use smmu_sync::{Arc, Mutex};
use std::collections::BTreeMap;
use thiserror::Error;

/// The machine could not be built (a configuration error, not a simulated event).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MachineSetupError {
    #[error("board has no enabled SMMU")]
    /// No SMMU is enabled.
    NoSmmu,
    #[error("board has no ENETC (fsl_enetc) master behind an SMMU: nothing to flood")]
    /// No ENETC behind an SMMU. No longer returned for a board without one (the scenario then
    /// runs with only the requested generic traffic); kept for source compatibility.
    NoNic,
    #[error(
        "no master named '{name}' with a traffic-capable driver on this board (known: {known})"
    )]
    /// A `traffic` name is not a master whose driver can run the generic DMA engine.
    UnknownTraffic {
        /// The name asked for.
        name: String,
        /// The masters that can, comma-separated.
        known: String,
    },
    #[error("simulated memory: {0}")]
    /// Simulated memory could not be laid out (a bad region, or a pool outside memory).
    Memory(#[from] AllocError),
    #[error("SMMU {name}: {why}")]
    /// An SMMU could not be modelled or probed.
    Smmu {
        /// The SMMU's device name.
        name: String,
        /// What went wrong.
        #[source]
        why: SmmuSetupError,
    },
    #[error("boot: {0}")]
    /// A driver failed to bind.
    Boot(#[from] crate::kernel::KernelError),
    #[error("boot: {driver} did not probe")]
    /// A driver bound but never finished its probe.
    NotProbed {
        /// The driver (`fsl_enetc`) or the master whose driver it is.
        driver: String,
    },
    #[error("{0}")]
    /// The configuration's parts do not fit (build vs policy, ring sizes, flood rate).
    Config(#[from] super::ConfigError),
}

/// Why one SMMU of the board could not be set up.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SmmuSetupError {
    /// The reboot machine drives SMMUv2 only (the SMMUv3 races run on their own machine).
    #[error("arm,smmu-v3 is not run by the reboot scenario yet")]
    V3NotRun,
    /// The MMU-500 model refused its configuration.
    #[error(transparent)]
    Mmu500Model(#[from] mmu500::Mmu500ConfigError),
    /// arm-smmu's probe failed.
    #[error(transparent)]
    ArmSmmuProbe(#[from] arm_smmu::ProbeError),
    /// The SMMUv3 model refused its configuration.
    #[error(transparent)]
    SmmuV3Model(#[from] smmuv3::SmmuV3ConfigError),
    /// arm-smmu-v3's probe failed.
    #[error(transparent)]
    ArmSmmuV3Probe(#[from] arm_smmu_v3::ProbeError),
}

/// The GIC line the ENETC's first MSI-X vector arrives on (through the ITS, as an LPI);
/// vector *i* is `IRQ_ENETC + i`.
pub(super) const IRQ_ENETC: u32 = 8192;
/// The first GIC line of the SMMUs' interrupts (one per SMMU; the driver reads which fault).
pub(super) const IRQ_SMMU_BASE: u32 = 32;

/// The driver name of the generic DMA engine on a master without a modelled driver of its own.
pub const GENERIC_DMA_DRIVER: &str = "smmu-lab-dma";

/// Simulated cost of things, so timestamps and shutdown time mean something.
const NS_PER_MMIO: u64 = 120;
pub(super) const NS_PER_NIC_STEP: u64 = 1_500;
pub(super) const NS_PER_ENGINE_STEP: u64 = 2_000;
/// Uptime at which `reboot -f` is typed.
pub(super) const REBOOT_AT_NS: u64 = 42_000_000_000;

/// DRAM assumed when the device tree has no `/memory` node: 2 GiB at 0x8000_0000, as
/// U-Boot adds it on LS1028A boards (and where Juno and i.MX8 boards have it too).
const DEFAULT_DRAM: (u64, u64) = (0x8000_0000, 0x8000_0000);
/// Simulated DRAM per bank is capped (physmem reserves host memory per region); the scenario
/// only uses the first megabytes plus whatever stray DMA hits below 4 GiB.
const MAX_DRAM_PER_REGION: u64 = 4 << 30;

/// Register accesses cost simulated time (on SMMUv2 and SMMUv3 boards alike).
pub(crate) struct TimedMmio {
    pub(crate) inner: Arc<dyn Mmio>,
    pub(crate) log: Arc<Dmesg>,
}

impl Mmio for TimedMmio {
    fn read32(&self, offset: u64) -> u32 {
        self.log.advance_ns(NS_PER_MMIO);
        self.inner.read32(offset)
    }
    fn write32(&self, offset: u64, value: u32) {
        self.log.advance_ns(NS_PER_MMIO);
        self.inner.write32(offset, value)
    }
    fn read64(&self, offset: u64) -> u64 {
        self.log.advance_ns(NS_PER_MMIO);
        self.inner.read64(offset)
    }
    fn write64(&self, offset: u64, value: u64) {
        self.log.advance_ns(NS_PER_MMIO);
        self.inner.write64(offset, value)
    }
}

/// The arm-smmu platform driver as the kernel model sees it.
struct SmmuPlatformDriver {
    smmu: Arc<ArmSmmu>,
    core: Arc<IommuCore>,
    inst: InstanceId,
}

impl Driver for SmmuPlatformDriver {
    fn name(&self) -> &str {
        "arm-smmu"
    }
    fn has_shutdown(&self) -> bool {
        true
    }
    fn shutdown(&self, _k: &Kernel, _dev: DeviceIndex) {
        let (core, inst) = (self.core.clone(), self.inst);
        self.smmu.shutdown(&mut || {
            let _ = core.unregister(inst);
        });
    }
    fn remove(&self, _k: &Kernel, _dev: DeviceIndex) {
        let (core, inst) = (self.core.clone(), self.inst);
        self.smmu.remove(&mut || {
            let _ = core.unregister(inst);
        });
    }
}

/// The IOMMU side of `really_probe` → `dma_configure`: probe the master onto its SMMU's IOMMU
/// instance (group, default domain) and link it to the SMMU as its consumer.
struct IommuDmaConfigure {
    board: Board,
    smmu_devs: Vec<Option<(DeviceIndex, InstanceId)>>,
    core: Arc<IommuCore>,
    iommu_ids: Mutex<BTreeMap<DeviceIndex, iommu::DeviceId>>,
    bus_pos: BTreeMap<DeviceIndex, u64>,
    mmio_log: Option<Arc<MmioLog>>,
}

impl DmaConfigure for IommuDmaConfigure {
    fn dma_configure(&self, k: &Kernel, dev: DeviceIndex) -> Result<(), KernelError> {
        let Some(m) = k.master_index(dev).and_then(|i| self.board.masters.get(i)) else {
            return Ok(());
        };
        let Some(Some((smmu_dev, inst))) = self.smmu_devs.get(m.smmu).copied() else {
            return Ok(());
        };
        if !m.attached || !k.is_bound(smmu_dev) {
            return Ok(());
        }
        let bus = m.bus;
        let ids: Vec<u32> = m.ids.iter().map(|id| id.fwid()).collect();
        if let Some(l) = &self.mmio_log {
            l.phase(&format!("attach {}", m.name));
        }
        let mut desc = DeviceDesc::new(
            &m.log_prefix(),
            bus,
            self.bus_pos.get(&dev).copied().unwrap_or(0),
            &ids,
        );
        desc.coherent = true;
        let id = self
            .core
            .probe_device(desc, inst)
            .map_err(|e| KernelError::ProbeFailed {
                dev: k.device_name(dev),
                reason: e.to_string(),
            })?;
        self.iommu_ids.lock().insert(dev, id);
        k.device_link_add(dev, smmu_dev)
    }
}

/// Builds the NIC at `fsl_enetc` probe time.
type MakeNic = Box<dyn Fn(&Kernel, DeviceIndex) -> Result<Arc<Enetc>, KernelError> + Send + Sync>;

/// `fsl_enetc` bound to the flooded function: the real NIC model.
struct EnetcDriver {
    make: MakeNic,
    nic: Mutex<Option<Arc<Enetc>>>,
}

impl Driver for EnetcDriver {
    fn name(&self) -> &str {
        "fsl_enetc"
    }
    fn probe(&self, k: &Kernel, dev: DeviceIndex) -> Result<(), KernelError> {
        let nic = (self.make)(k, dev)?;
        *self.nic.lock() = Some(nic);
        Ok(())
    }
    // fsl_enetc has no .shutdown: that is the point.
}

/// Builds a generic DMA engine at its driver's probe time.
type MakeEngine =
    Box<dyn Fn(&Kernel, DeviceIndex) -> Result<Arc<DmaEngine>, KernelError> + Send + Sync>;

/// The driver of a master that runs generic traffic: its `.shutdown` (where the board's driver
/// has one) stops the engine.
struct EngineDriver {
    name: String,
    has_shutdown: bool,
    make: MakeEngine,
    engine: Mutex<Option<Arc<DmaEngine>>>,
}

impl Driver for EngineDriver {
    fn name(&self) -> &str {
        &self.name
    }
    fn probe(&self, k: &Kernel, dev: DeviceIndex) -> Result<(), KernelError> {
        *self.engine.lock() = Some((self.make)(k, dev)?);
        Ok(())
    }
    fn has_shutdown(&self) -> bool {
        self.has_shutdown
    }
    fn shutdown(&self, _k: &Kernel, _dev: DeviceIndex) {
        if let Some(e) = self.engine.lock().as_ref() {
            e.stop();
        }
    }
    fn remove(&self, _k: &Kernel, _dev: DeviceIndex) {
        if let Some(e) = self.engine.lock().as_ref() {
            e.stop();
        }
    }
}

/// A master running generic traffic.
pub(super) struct EngineSlot {
    pub(super) engine: Arc<DmaEngine>,
    /// Its device in the kernel.
    pub(super) dev: DeviceIndex,
    /// PCI functions need bus mastering to issue DMA.
    pub(super) pci: bool,
}

/// Machine pieces the actors share.
pub(super) struct Machine {
    pub(super) kernel: Arc<Kernel>,
    pub(super) log: Arc<Dmesg>,
    /// The flooded NIC, when the board has an ENETC behind an SMMU.
    pub(super) nic: Option<Arc<Enetc>>,
    /// The NIC's device name (`0000:00:00.0`), for the MMIO log's phase markers.
    pub(super) nic_name: Option<String>,
    /// The generic DMA engines asked for, in [`RebootConfig::traffic`] order.
    pub(super) engines: Vec<EngineSlot>,
    pub(super) hardware_name: String,
    pub(super) trigger_done: AtomicBool,
    /// The oops, once the NIC driver crashed the kernel.
    pub(super) crash: Mutex<Option<Crash>>,
    /// The CPUs and what runs on them.
    pub(super) exec: Arc<Exec>,
    /// The kernel build (banner, layout).
    pub(super) build: KernelBuild,
    /// KASAN-style use-after-free reports printed.
    pub(super) kasan_reported: smmu_sync::atomic::AtomicU64,
    /// `mld_ifc_work`'s report interval.
    pub(super) mld_interval_ns: u64,
    /// The MLD report timer has been armed.
    pub(super) mld_armed: AtomicBool,
    /// SMMU interrupt lines raised and not yet handled, per SMMU: the GIC routes them to CPU 0,
    /// which takes them between its own steps.
    pending_irqs: Arc<Mutex<Vec<(usize, FaultIrq)>>>,
    /// The arm-smmu instance of each SMMU (replaced by the next kernel's after kexec).
    drivers: Mutex<Vec<Arc<ArmSmmu>>>,
    pub(super) timeline: Arc<Timeline>,
    /// What the next kernel's arm-smmu probe needs after kexec.
    next_kernel: NextKernel,
    /// The next kernel (after kexec) has started: the old kernel's code no longer runs.
    pub(super) new_kernel: AtomicBool,
    /// The MMIO log, when the run keeps one.
    pub(super) mmio_log: Option<Arc<MmioLog>>,
    /// The firmware loader's pending fallback requests (cfg80211's `regulatory.db`).
    pub(super) firmware: Arc<crate::firmware::FirmwareLoader>,
}

/// The kexec'd kernel's view of the SMMUs: the same hardware, firmware and command line.
struct NextKernel {
    smmus: Vec<(FirmwareDesc, Arc<Mmu500>)>,
    params: ModuleParams,
    behaviour: DriverBehaviour,
    printk: Arc<dyn Printk>,
    log: Arc<Dmesg>,
    tables: Arc<FrameAllocator>,
    /// The page-table factory (Linux's or smmu-lab's input checks, as for the first kernel).
    lpae: arm_smmu::table::LpaeTables,
    mmio_log: Option<Arc<MmioLog>>,
}

impl Machine {
    pub(super) fn stop(&self) -> bool {
        self.kernel.halted() || self.log.stopped() || self.trigger_done.load(Ordering::SeqCst)
    }

    pub(super) fn report_crash(&self, c: Crash) {
        let report = OopsReport::from_core(
            &c.oops,
            Some(TaskInfo::of(&self.build, c.cpu, c.pid, &c.comm)),
            Some(self.hardware_name.clone()),
        );
        self.timeline.push(
            Lane::NetCpu,
            format!(
                "Oops: NULL dereference at {:#x} via {}",
                c.oops.fault_addr,
                c.oops.call_trace.get(1).map(String::as_str).unwrap_or("?")
            ),
        );
        self.kernel.oops(&report);
        *self.crash.lock() = Some(c);
    }

    /// Print a use-after-free the DMA core detected, as KASAN reports it (the first one only,
    /// as KASAN does without `kasan_multi_shot`).
    pub(super) fn report_kasan(&self, k: Kasan) {
        self.timeline.push(
            Lane::NetCpu,
            format!("USE-AFTER-FREE: {} used a freed {}", k.function, k.object),
        );
        if self
            .kasan_reported
            .fetch_add(1, smmu_sync::atomic::Ordering::SeqCst)
            > 0
        {
            return;
        }
        let task = TaskInfo::of(&self.build, k.cpu, k.pid, &k.comm);
        let bar = "==================================================================";
        let mut lines = vec![
            bar.to_string(),
            format!("BUG: KASAN: use-after-free in {}", k.function),
            format!(
                "Read of size 8 of freed {} by task {}/{}",
                k.object, k.comm, k.pid
            ),
            String::new(),
            format!(
                "CPU: {} PID: {} Comm: {} {} {} {}",
                task.cpu, task.pid, task.comm, task.taint, task.release, task.version
            ),
            format!("Hardware name: {}", self.hardware_name),
            "Call trace:".to_string(),
            k.function.to_string(),
        ];
        lines.extend(k.call_trace);
        lines.push(String::new());
        lines.push(
            "The object was freed by iommu_group_release (smmu-lab: simulated KASAN report)"
                .to_string(),
        );
        lines.push(bar.to_string());
        for l in lines {
            self.log.printk(klog::Level::Err, &l);
        }
    }

    /// A timeline entry for `n` occurrences of `what` (none when `n` is 0).
    fn note(&self, lane: Lane, who: &str, n: u64, what: &str) {
        match n {
            0 => {}
            1 => self.timeline.push(lane, format!("{who}{what}")),
            _ => self.timeline.push(lane, format!("{who}{what} ×{n}")),
        }
    }

    /// Timeline entries for new ownership evidence of a DMA master.
    fn evidence_events(&self, lane: Lane, who: &str, a: &DmaEvidence, before: &DmaEvidence) {
        self.note(
            lane,
            who,
            a.blocked - before.blocked,
            "transaction blocked by the SMMU",
        );
        self.note(
            lane,
            who,
            a.foreign() - before.foreign(),
            "FOREIGN DMA: translated outside its mapping",
        );
        for addr in a
            .stray_write_addrs
            .iter()
            .skip(before.stray_write_addrs.len())
        {
            self.timeline.push(
                lane,
                format!("{who}STRAY write to {addr:#x} (untranslated)"),
            );
        }
        self.note(
            lane,
            who,
            a.stray_reads - before.stray_reads,
            "stray read (untranslated)",
        );
    }

    /// Timeline entries for what the NIC's counters say just happened.
    pub(super) fn nic_events(&self, lane: Lane, before: &NicStats) {
        let Some(nic) = &self.nic else { return };
        let a = nic.stats();
        let note = |n: u64, what: &str| self.note(lane, "", n, what);
        match lane {
            Lane::NetCpu => {
                note(
                    a.mld_reports - before.mld_reports,
                    "transmit: MLD report mapped",
                );
                note(a.replies - before.replies, "transmit: echo reply mapped");
                note(
                    a.tx_completed - before.tx_completed,
                    "NAPI: tx buffer unmapped",
                );
                note(
                    a.rx_delivered - before.rx_delivered,
                    "NAPI: echo request received",
                );
                note(
                    a.lost_writes - before.lost_writes,
                    "NAPI: received data missing (lost write)",
                );
                note(
                    a.dma_api_errors - before.dma_api_errors,
                    "DMA API refused the call",
                );
                note(
                    a.use_after_free - before.use_after_free,
                    "DMA API used a freed domain (use-after-free)",
                );
            }
            _ => {
                note(
                    a.errors.tx_dma_aborts - before.errors.tx_dma_aborts,
                    "TX DMA aborted: the ring reports an error and stops",
                );
                note(
                    a.errors.rx_dma_aborts - before.errors.rx_dma_aborts,
                    "RX DMA aborted: frame discarded",
                );
                note(
                    a.bme_suppressed - before.bme_suppressed,
                    "transaction not issued: Bus Master Enable is clear",
                );
                note(a.tx_sent - before.tx_sent, "frame sent");
                note(
                    a.rx_written - before.rx_written,
                    "echo request written to memory",
                );
                self.evidence_events(lane, "", &a.bus, &before.bus);
            }
        }
    }

    /// Timeline entries for what engine `i`'s counters say just happened.
    pub(super) fn engine_events(&self, i: usize, before: &EngineStats) {
        let Some(slot) = self.engines.get(i) else {
            return;
        };
        let a = slot.engine.stats();
        let who = format!("{}: ", slot.engine.config().device);
        let note = |n: u64, what: &str| self.note(Lane::NicDma, &who, n, what);
        note(a.submitted - before.submitted, "buffer mapped");
        note(a.writes_done - before.writes_done, "DMA write done");
        note(a.reads_done - before.reads_done, "DMA read done");
        note(a.completed - before.completed, "buffer unmapped");
        self.evidence_events(Lane::NicDma, &who, &a.bus, &before.bus);
        note(
            a.lost_writes - before.lost_writes,
            "received data missing (lost write)",
        );
        note(
            a.dma_api_errors - before.dma_api_errors,
            "DMA API refused the call",
        );
        if a.stopped && !before.stopped {
            self.timeline
                .push(Lane::NicDma, format!("{who}stopped by its .shutdown"));
        }
    }

    /// After kexec: the next kernel boots on the same machine and its arm-smmu driver probes
    /// each SMMU (ID decode, the RMR step, the reset), while devices the old kernel left
    /// running keep doing DMA. Its drivers take over the SMMU interrupts.
    pub(super) fn next_kernel_probe(&self) {
        let n = &self.next_kernel;
        self.new_kernel.store(true, Ordering::SeqCst);
        let limits = Arc::new(RateLimits::default());
        for (i, (fw, model)) in n.smmus.iter().enumerate() {
            self.timeline.push(
                Lane::ShutdownCpu,
                format!("next kernel: arm-smmu probes {}", fw.dev_name),
            );
            if let Some(l) = &n.mmio_log {
                l.phase(&format!("next-kernel probe {}", fw.dev_name));
            }
            let env = SmmuEnv {
                mmio: Arc::new(TimedMmio {
                    inner: bus(&n.mmio_log, model, &fw.dev_name),
                    log: n.log.clone(),
                }),
                log: n.printk.clone(),
                frames: n.tables.clone(),
                tables: Arc::new(n.lpae),
                limits: limits.clone(),
            };
            // The model probed once already, so this fails only where the first probe did;
            // say so on the timeline rather than dropping it.
            let smmu = match ArmSmmu::probe(fw, n.params, n.behaviour, env) {
                Ok(s) => s,
                Err(e) => {
                    self.timeline.push(
                        Lane::ShutdownCpu,
                        format!("next kernel: arm-smmu probe of {} failed: {e}", fw.dev_name),
                    );
                    continue;
                }
            };
            if let Some(d) = self.drivers.lock().get_mut(i) {
                *d = smmu.clone();
            }
            // reset_at_probe, step by step, so the timeline shows the bypass window.
            if n.behaviour.rmr_bypass_at_probe {
                self.timeline.push(
                    Lane::ShutdownCpu,
                    "next kernel: RMR step sets sCR0.CLIENTPD: every stream bypasses until the reset"
                        .to_string(),
                );
            }
            smmu.rmr_install_bypass_smr();
            smmu.device_reset();
            smmu.test_smr_masks();
            self.timeline.push(
                Lane::ShutdownCpu,
                "next kernel: SMMU reset: translation on, unmatched streams fault".to_string(),
            );
        }
    }

    /// The MMIO log's `first-dma` marker, once `who` has issued transactions.
    pub(super) fn note_first_dma(&self, who: &str, transactions: u64) {
        if let (Some(l), true) = (&self.mmio_log, transactions > 0) {
            l.first_dma(who);
        }
    }

    /// Whether the kexec'd kernel has started.
    pub(super) fn in_new_kernel(&self) -> bool {
        self.new_kernel.load(Ordering::SeqCst)
    }

    /// CPU 0 takes the SMMU interrupts raised since it last looked.
    pub(super) fn take_irqs(&self) {
        let pending: Vec<(usize, FaultIrq)> = std::mem::take(&mut *self.pending_irqs.lock());
        for (i, line) in pending {
            let Some(s) = self.drivers.lock().get(i).cloned() else {
                continue;
            };
            self.timeline
                .push(Lane::NetCpu, format!("SMMU interrupt {line:?}"));
            match line {
                FaultIrq::Global(_) => {
                    s.handle_global_fault();
                }
                FaultIrq::Context(cb) => {
                    s.handle_context_fault(cb);
                }
            }
            // The SMMU's lines are level-triggered: one still asserted after the handler
            // (a fault that came in while it ran) is delivered again.
            if let Some((_, model)) = self.next_kernel.smmus.get(i) {
                if model.irq_pending(line) {
                    let mut p = self.pending_irqs.lock();
                    if !p.contains(&(i, line)) {
                        p.push((i, line));
                    }
                    drop(p);
                    self.exec.raise_irq(0, Irq::Line(IRQ_SMMU_BASE + i as u32));
                }
            }
        }
    }
}

/// Build the machine and boot it (single-threaded: before the actors start).
pub(super) fn boot(cfg: &RebootConfig) -> Result<Machine, MachineSetupError> {
    let board = &cfg.board;
    let mmio_log = cfg.mmio_log.then(|| Arc::new(MmioLog::new()));
    if let Some(l) = &mmio_log {
        l.phase("boot");
    }
    let log = Arc::new(Dmesg::new());
    log.set_timestamps(cfg.timestamps);
    let mut regions: Vec<Region> = board
        .memory
        .iter()
        .map(|m| Region::new(PhysAddr::new(m.base), m.size.min(MAX_DRAM_PER_REGION)))
        .collect();
    if regions.is_empty() {
        // The device tree leaves DRAM to the bootloader (the KBox's does): assume its usual bank.
        regions.push(Region::new(PhysAddr::new(DEFAULT_DRAM.0), DEFAULT_DRAM.1));
    }
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
    // Every simulated kernel is a Linux kernel, so its page tables check input as io-pgtable-arm
    // does. quiesce is a shutdown policy on top of such a kernel and does not change the
    // page-table layer (one axis, one option); the strict checks (`LpaeTables::SAFE`) are a
    // library mode for users of pgtable, not a simulated kernel.
    let lpae = arm_smmu::table::LpaeTables::LINUX;
    let core = IommuCore::new(
        CoreConfig {
            strict: cfg.cmdline.strict,
            passthrough: cfg.cmdline.passthrough,
            linux_faithful: cfg.dma_core == super::DmaCore::Linux,
            group_default_domain_offset: cfg.build.group_default_domain_offset,
            ..CoreConfig::default()
        },
        mem.clone(),
        coherent,
        printk.clone(),
    );

    let booted = crate::kernel::register_board(&kernel, board);
    let limits = Arc::new(RateLimits::default());
    let pending_irqs: Arc<Mutex<Vec<(usize, FaultIrq)>>> = Arc::new(Mutex::new(Vec::new()));
    let exec = Arc::new(Exec::new(board.cpus));
    // cfg80211's regulatory.db request, made from the boot CPU, waits in the firmware
    // loader's sysfs fallback; the loader's reboot notifier (registered after kvm's: kvm's
    // initcall links first) aborts it and wakes its work.
    let firmware = Arc::new(crate::firmware::FirmwareLoader::default());
    if cfg.build.regdb_fallback_pending {
        firmware.request_with_fallback(super::cpu::REGDB, 0, log.now_ns());
    }
    {
        let (fw, gic) = (firmware.clone(), exec.clone());
        kernel.register_reboot_notifier(Box::new(move |k: &Kernel, _| {
            for cpu in fw.kill_pending(k.log().now_ns()) {
                gic.wake_work(cpu, super::cpu::WORK_FW_FALLBACK);
            }
        }));
    }
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
                inner: bus(&mmio_log, &model, &desc.name),
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

    // The model a master's transactions go through: its SMMU among the modelled ones.
    let model_index = |m: &crate::Master| {
        smmu_devs
            .iter()
            .take(m.smmu)
            .filter(|d| d.is_some())
            .count()
    };
    let model_of = |m: &crate::Master| models.get(model_index(m)).cloned();
    // The freed-domain record of that SMMU.
    let retired_of = |m: &crate::Master| retired.get(model_index(m)).cloned().unwrap_or_default();
    let iommu_id =
        {
            let dma_cfg = dma_cfg.clone();
            move |k: &Kernel, dev: DeviceIndex| {
                dma_cfg.iommu_ids.lock().get(&dev).copied().ok_or_else(|| {
                    KernelError::ProbeFailed {
                        dev: k.device_name(dev),
                        reason: "no IOMMU device".into(),
                    }
                })
            }
        };

    // The flooded NIC, if the board has one: the first fsl_enetc function behind an SMMU.
    let nic_idx = board
        .masters
        .iter()
        .position(|m| m.driver.as_deref() == Some("fsl_enetc") && m.attached)
        .filter(|&i| board.masters.get(i).and_then(model_of).is_some());
    let enetc_drv = match nic_idx.and_then(|i| board.masters.get(i)) {
        None => None,
        Some(nic_master) => {
            let mut nic_cfg = cfg.nic.clone();
            // One ring pair and MSI-X vector per online CPU unless configured.
            nic_cfg.rings = nic_cfg.ring_pairs(board.cpus);
            if let Some(w) = nic_master.wire_ids().and_then(|w| w.first().copied()) {
                nic_cfg.stream_id = u32::from(w);
            }
            let nic_model = model_of(nic_master).ok_or(MachineSetupError::NoNic)?;
            let nic_retired = retired_of(nic_master);
            let (core, mem, kmem, iommu_id) =
                (core.clone(), mem.clone(), kmem.clone(), iommu_id.clone());
            let weak_kernel = Arc::downgrade(&kernel);
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

    // The generic DMA engines asked for: any master behind a modelled SMMU that the kernel
    // probes. One whose own driver smmu-lab does not model (or that does not bind) gets the
    // generic engine's driver, as a test driver bound with `driver_override` would be.
    let capable: Vec<usize> = (0..board.masters.len())
        .filter(|&i| Some(i) != nic_idx)
        .filter(|&i| {
            board.masters.get(i).is_some_and(|m| {
                m.attached && m.probes && !m.ids.is_empty() && model_of(m).is_some()
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
        let Some(model) = model_of(m) else { continue };
        let freed = retired_of(m);
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
    })
}

/// A model's register window as the driver reaches it: logged by name when the run keeps an
/// MMIO log.
fn bus(mmio_log: &Option<Arc<MmioLog>>, model: &Arc<Mmu500>, name: &str) -> Arc<dyn Mmio> {
    match mmio_log {
        Some(l) => Arc::new(LoggedMmio::new(model.clone(), l.clone(), name)),
        None => model.clone(),
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
