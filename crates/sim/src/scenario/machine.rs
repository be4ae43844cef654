//! Building the simulated machine: memory, the MMU-500 models, the arm-smmu driver, the IOMMU
//! core, the kernel's devices and drivers, and the flooded NIC.
//!
//! This file holds the set-up errors, the timing constants and the `Machine` with its evidence
//! reading; `boot` builds and boots it, `drivers` holds the kernel-model drivers it registers.

use super::timeline::{Lane, Timeline};
use crate::builds::KernelBuild;
use crate::dma_engine::{DmaEngine, EngineStats};
use crate::dmesg::{Dmesg, OopsReport, TaskInfo};
use crate::enetc::{Crash, Enetc, Kasan, NicStats};
use crate::exec::{Exec, Irq};
use crate::kernel::Kernel;
use crate::mmio_log::{LoggedMmio, MmioLog};
use crate::ownership::DmaEvidence;
use crate::DeviceIndex;
use arm_smmu::{ArmSmmu, DriverBehaviour, FirmwareDesc, ModuleParams, RateLimits, SmmuEnv};
use klog::Printk;
use mmu500::Mmu500;
use physmem::{AllocError, FrameAllocator, PhysAddr, PhysMem, Region};
use smmu_arch::{FaultIrq, Mmio};
use smmu_sync::atomic::{AtomicBool, Ordering};
use smmu_sync::{Arc, Mutex};
use thiserror::Error;

mod boot;
mod drivers;
#[cfg(test)]
mod probe_iovas;
mod snapshot;

pub(super) use boot::boot;
pub(crate) use boot::dram_regions;
pub use boot::model_config;
pub(super) use snapshot::MachineSnapshot;

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
    #[error("the PCI function {nic} has no MSI controller on this board (its PCI host names no arm,gic-v3-its in msi-map or msi-parent): its MSI writes would have no doorbell")]
    /// A flooded PCI function's host bridge has no GICv3 ITS as its MSI parent.
    NoMsiController {
        /// The function's device name.
        nic: String,
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
    #[error("booted-machine cache: {0}")]
    /// The explorer's booted machine could not be saved or put back (the run is not made on
    /// a machine in an unknown state).
    Snapshot(#[from] crate::SnapshotError),
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
const DEFAULT_DRAM: Region = Region::new(PhysAddr::new(0x8000_0000), 0x8000_0000);
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
    /// What the booted-machine snapshot saves besides the parts above: memory, its pools
    /// (page tables, coherent DMA, packet buffers), the freed-context record of each SMMU,
    /// the IOMMU core and the `dma_configure` hook's device ids.
    saved: SavedParts,
}

/// The machine's components that only its snapshot reaches.
struct SavedParts {
    mem: Arc<PhysMem>,
    pools: Vec<Arc<FrameAllocator>>,
    retired: Vec<Arc<crate::ownership::RetiredContexts>>,
    core: Arc<iommu::IommuCore>,
    dma_cfg: Arc<drivers::IommuDmaConfigure>,
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
        // KASAN prints under its report_lock, taken with spin_lock_irqsave: no interrupt on
        // this CPU lands inside the report (another CPU's lines still may).
        let _irqs_off = smmu_sync::local_irq_save();
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
        // The function's MSIs go out on a ring event (its DMA engine's lane) and when the poll
        // re-enables a vector (the CPU's lane): each lane notes its own.
        let reenable = a.msis_lost_on_reenable - before.msis_lost_on_reenable;
        let lost = match lane {
            Lane::NetCpu => reenable,
            _ => (a.msis_lost - before.msis_lost).saturating_sub(reenable),
        };
        note(
            lost,
            "MSI write lost (blocked, or not translated to the ITS): no interrupt",
        );
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

/// A model's register window as the driver reaches it: logged by name when the run keeps an
/// MMIO log.
fn bus(mmio_log: &Option<Arc<MmioLog>>, model: &Arc<Mmu500>, name: &str) -> Arc<dyn Mmio> {
    match mmio_log {
        Some(l) => Arc::new(LoggedMmio::new(model.clone(), l.clone(), name)),
        None => model.clone(),
    }
}
