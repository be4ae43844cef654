//! The seed's scenario: a board boots its drivers, the ENETC is ping-flooded, and `reboot -f`
//! (or kexec, or an unbind of the SMMU) runs `device_shutdown()` on one CPU while the network
//! stack keeps mapping and unmapping DMA buffers on another and the NIC keeps moving packets.
//!
//! Every layer is the real one: the arm-smmu driver programs the MMU-500 model through MMIO, the
//! IOMMU core and its DMA API serve the NIC driver, page tables live in simulated memory and the
//! model walks them. The log comes from those components as they do the work. The scenario only
//! builds the machine, starts the actors and reads the evidence into a [`Verdict`].

use crate::dma_engine::EngineStats;
use crate::enetc::NicStats;
use crate::exec;
use klog::Printk;
use smmu_sync::atomic::Ordering;
use smmu_sync::{sched_point, thread, Arc, Point};

mod boot_cache;
mod config;
pub(crate) mod contexts;
mod cpu;
mod machine;
mod timeline;
mod token;
mod verdict;

pub use boot_cache::{restores_on_this_thread, BootCache};
pub use config::{
    ConfigError, DmaCore, KernelBehaviour, KernelParams, ParamsError, RebootConfig, Trigger,
};
pub(crate) use machine::{dram_regions, TimedMmio};
pub use machine::{model_config, MachineSetupError, SmmuSetupError};
pub use timeline::{Lane, TimelineEvent};
pub use token::{ReplayToken, ReplayTokenError, ScheduleMisfit, ScheduleRef, ScheduleRefError};
pub use verdict::{outcome_hash, ExecutionModel, OopsVerdict, Property, RebootOutcome, Verdict};

use machine::{boot, Machine, NS_PER_ENGINE_STEP, NS_PER_NIC_STEP, REBOOT_AT_NS};

/// Run the scenario once. Call inside an explorer execution for controlled interleavings; the
/// same code runs on std threads otherwise.
pub fn run(cfg: &RebootConfig) -> Result<RebootOutcome, MachineSetupError> {
    cfg.check()?;
    smmu_sync::clear_interrupt_hooks();
    crate::exec::forget_task_cpus();
    if let Some(smmu) = crate::v3::smmuv3_index(&cfg.board) {
        return crate::v3::run(cfg, smmu);
    }
    let (m, entries) = boot_prefix(cfg)?;
    debug_assert_eq!(
        entries, 0,
        "the boot prefix entered the explorer's scheduler"
    );
    run_booted(cfg, &Arc::new(m))
}

/// Boot `cfg`'s machine with scheduling points off; also says how many times the boot
/// entered the explorer's scheduler (0 unless a change broke "The boot prefix is
/// schedule-independent", ARCHITECTURE.md).
fn boot_prefix(cfg: &RebootConfig) -> Result<(Machine, u64), MachineSetupError> {
    let before = smmu_sync::scheduler_entries();
    let m = smmu_sync::without_sched_points(|| boot(cfg))?;
    Ok((m, smmu_sync::scheduler_entries().wrapping_sub(before)))
}

/// The run after boot, on a machine fresh from `boot` or restored to that state: the actors,
/// the trigger, the verdict.
fn run_booted(cfg: &RebootConfig, m: &Arc<Machine>) -> Result<RebootOutcome, MachineSetupError> {
    let m = m.clone();
    let boot_end = m.log.now_ns();
    if boot_end < REBOOT_AT_NS {
        m.log.advance_ns(REBOOT_AT_NS - boot_end);
    }
    m.timeline.recording.store(true, Ordering::SeqCst);
    m.log.set_console_baud(cfg.console_baud);

    // Every CPU runs its kthreads: interrupts through the GIC (the SMMUs' SPIs to CPU 0, each
    // ENETC MSI-X vector to the CPU it is affine to), softirqs on irq exit or in ksoftirqd/N,
    // work in kworker/N:1 (the execution model decides which, when). The task that typed
    // `reboot -f` (this thread) holds the CPU it was woken on.
    if let Some(nic) = &m.nic {
        nic.start_flood(m.log.now_ns());
    }
    let cpus: Vec<_> = (0..m.exec.cpus())
        .map(|cpu| {
            let m = m.clone();
            let max = cfg.max_actor_steps;
            thread::spawn(move || contexts::cpu_actor(&m, cpu, max))
        })
        .collect();
    // The NIC's hardware, fed by the ping-flood peer.
    let nic = {
        let m = m.clone();
        let max = cfg.max_actor_steps;
        thread::spawn(move || {
            let Some(nic) = m.nic.clone() else {
                return;
            };
            let nic_dev_name = m.nic_name.clone().unwrap_or_default();
            for _ in 0..max {
                if m.stop() {
                    break;
                }
                let before = nic.stats();
                let step = nic.device_step(m.log.now_ns());
                if step.busy {
                    m.log.advance_ns(NS_PER_NIC_STEP);
                } else {
                    // Waiting for the peer's next packet: time passes, up to a bound (the
                    // other actors' work advances the clock too).
                    let gap = nic.next_arrival_ns().saturating_sub(m.log.now_ns());
                    m.log
                        .advance_ns(gap.clamp(NS_PER_NIC_STEP, NIC_IDLE_MAX_NS));
                }
                if let (Some(v), false) = (step.msi, m.in_new_kernel()) {
                    m.raise_enetc_msi(v);
                }
                if m.mmio_log.is_some() {
                    m.note_first_dma(&nic_dev_name, nic.stats().bus.transactions);
                }
                m.nic_events(Lane::NicDma, &before);
                thread::yield_now();
            }
        })
    };

    // The generic DMA engines asked for, one actor each (after the network's, so their task
    // ids follow and the existing ones stay put).
    let engines: Vec<_> = (0..m.engines.len())
        .map(|i| {
            let m = m.clone();
            let max = cfg.max_actor_steps;
            thread::spawn(move || {
                let Some(slot) = m.engines.get(i) else {
                    return;
                };
                for _ in 0..max {
                    if m.stop() || slot.engine.stopped() {
                        break;
                    }
                    m.log.advance_ns(NS_PER_ENGINE_STEP);
                    let before = slot.engine.stats();
                    let r = if slot.pci && !m.kernel.bus_master(slot.dev) {
                        Ok(false)
                    } else if m.in_new_kernel() {
                        // Its driver went with the old kernel; the device keeps going.
                        Ok(slot.engine.device_step())
                    } else {
                        slot.engine.step()
                    };
                    m.engine_events(i, &before);
                    if m.mmio_log.is_some() {
                        m.note_first_dma(
                            &slot.engine.config().device,
                            slot.engine.stats().bus.transactions,
                        );
                    }
                    if let Err(crash) = r {
                        m.report_crash(*crash);
                        break;
                    }
                    thread::yield_now();
                }
                let before = slot.engine.stats();
                m.engine_events(
                    i,
                    &EngineStats {
                        stopped: false,
                        ..before
                    },
                );
            })
        })
        .collect();

    // CPU 1: wait for the traffic to be under way (bounded: a schedule may starve it), then
    // the trigger.
    for _ in 0..cfg.max_actor_steps {
        let nic_ok = m.nic.as_ref().is_none_or(|n| n.stats().rx_delivered >= 2);
        let engines_ok = m.engines.iter().all(|e| e.engine.stats().completed >= 1);
        if nic_ok && engines_ok {
            break;
        }
        thread::yield_now();
    }
    // The shell that types the command runs on whichever CPU the scheduler woke it on: the
    // explorer decides, by which of the two wakers runs first.
    let reboot_cpu = contexts::trigger_cpu(&m.exec);
    let reboot_task = exec::Task {
        cpu: reboot_cpu,
        pid: REBOOT_PID,
        comm: match cfg.trigger {
            Trigger::Reboot => "reboot",
            Trigger::Kexec => "kexec",
            Trigger::UnbindSmmu | Trigger::CrashKexec => "sh",
        }
        .to_string(),
    };
    // Not preempted until it sleeps (PREEMPT_NONE).
    contexts::hold_for_trigger(&m, &reboot_task);
    {
        // usermodehelper_disable(): down_write on the helper lock sleeps while the aborted
        // firmware request still holds it for reading. The reboot task gives up its CPU; when
        // it is woken on the waiter's own CPU, the waiter (not preempted, PREEMPT_NONE) runs
        // its callback before the reboot task gets that CPU back.
        let weak = Arc::downgrade(&m);
        let task = reboot_task.clone();
        let max = cfg.max_actor_steps;
        m.kernel.set_usermodehelper_disable(Box::new(move || {
            let Some(m) = weak.upgrade() else { return };
            if !m.firmware.helper_lock_held(m.log.now_ns()) {
                return;
            }
            m.timeline.push(
                Lane::ShutdownCpu,
                "usermodehelper_disable(): sleeps on the helper lock".into(),
            );
            m.exec.release_cpu(reboot_cpu);
            for _ in 0..max {
                let held = m.firmware.helper_lock_held(m.log.now_ns());
                if m.kernel.halted() || (!held && !m.firmware.waiter_busy(reboot_cpu)) {
                    break;
                }
                thread::yield_now();
            }
            m.exec.hold_cpu(reboot_cpu, task.clone());
        }));
    }
    {
        let weak = Arc::downgrade(&m);
        m.kernel.set_after_device_shutdown(Box::new(move || {
            if let Some(m) = weak.upgrade() {
                if m.exec.runnable(reboot_cpu) {
                    m.timeline.push(
                        Lane::ShutdownCpu,
                        "migrate_to_reboot_cpu(): the reboot task is scheduled out".into(),
                    );
                }
                m.exec.release_cpu(reboot_cpu);
                // The tasks waiting on its CPU run before the reboot task comes back
                // (bounded: a schedule may starve them).
                for _ in 0..64 {
                    if !m.exec.runnable(reboot_cpu) || m.kernel.halted() {
                        break;
                    }
                    thread::yield_now();
                }
            }
        }));
    }
    sched_point(Point::Kernel);
    let start = m.log.now_ns();
    if let Some(l) = &m.mmio_log {
        l.phase(&format!("shutdown {}", cfg.trigger.name()));
    }
    m.timeline.push(
        Lane::ShutdownCpu,
        match cfg.trigger {
            Trigger::Reboot => "reboot -f: kernel_restart()",
            Trigger::Kexec => "kexec -e: kernel_kexec()",
            Trigger::UnbindSmmu => "unbind arm-smmu: device_release_driver()",
            Trigger::CrashKexec => "echo c > /proc/sysrq-trigger: panic() -> __crash_kexec()",
        }
        .to_string(),
    );
    let completed = match cfg.trigger {
        Trigger::Reboot => m.kernel.kernel_restart(None),
        Trigger::Kexec => {
            let started = m.kernel.kernel_kexec();
            // The new kernel boots and its arm-smmu probes the same SMMUs, while devices
            // the old kernel left running keep doing DMA.
            if started && !m.kernel.halted() {
                if let Some(nic) = &m.nic {
                    nic.kernel_replaced();
                }
                m.next_kernel_probe();
            }
            started
        }
        Trigger::CrashKexec => {
            // Nothing is shut down: the capture kernel boots and its arm-smmu probes the
            // SMMUs the crashed kernel left translating, while the masters keep doing DMA.
            let task = crate::dmesg::TaskInfo::of(
                &cfg.build,
                reboot_task.cpu,
                reboot_task.pid,
                &reboot_task.comm,
            );
            m.kernel
                .crash_kexec(&task, Some(&cfg.board.hardware_name()));
            if let Some(nic) = &m.nic {
                nic.kernel_replaced();
            }
            m.next_kernel_probe();
            true
        }
        Trigger::UnbindSmmu => {
            let smmu_dev = m.kernel.find(&cfg.board.smmus[0].name);
            match smmu_dev {
                Some(d) => m.kernel.device_release_driver(d).is_ok() && !m.kernel.halted(),
                None => false,
            }
        }
    };
    let end = m.log.now_ns();
    if completed && !m.kernel.halted() {
        let done = match cfg.trigger {
            Trigger::Kexec => "done: the new kernel runs",
            Trigger::CrashKexec => "done: the capture kernel runs",
            _ => "done: the machine resets",
        };
        m.timeline.push(Lane::ShutdownCpu, done.to_string());
    }
    contexts::leave_cpu();
    m.trigger_done.store(true, Ordering::SeqCst);
    for c in cpus {
        let _ = c.join();
    }
    let _ = nic.join();
    for e in engines {
        let _ = e.join();
    }

    let mut verdict = verdict(
        cfg,
        &m,
        end.saturating_sub(start),
        completed && !m.kernel.halted(),
    );
    verdict.trigger_cpu = reboot_cpu;
    let timeline = m.timeline.events.lock().clone();
    Ok(RebootOutcome {
        log: m.log.text(),
        verdict,
        timeline,
        mmio_log: m.mmio_log.as_ref().map(|l| l.text()),
    })
}

impl contexts::ExecMachine for Machine {
    fn exec(&self) -> &exec::Exec {
        &self.exec
    }
    fn stop(&self) -> bool {
        Machine::stop(self)
    }
    fn in_new_kernel(&self) -> bool {
        Machine::in_new_kernel(self)
    }
    fn new_kernel_cpu0_step(&self) {
        self.take_irqs();
        self.log.advance_ns(NS_PER_NIC_STEP);
    }
    fn old_kernel_cpu_step(&self, cpu: u32) -> Option<()> {
        self.exec.cpu_step(cpu, self)
    }
}

/// Most simulated time an idle NIC lets pass per step.
const NIC_IDLE_MAX_NS: u64 = 100_000;

/// PID of the task that types the command (smmu-lab's: no log gives it).
pub(crate) const REBOOT_PID: u32 = 412;

fn verdict(cfg: &RebootConfig, m: &Machine, shutdown_ns: u64, completed: bool) -> Verdict {
    let mut s: NicStats = m.nic.as_ref().map(|n| n.stats()).unwrap_or_default();
    // The generic engines' evidence counts as the NIC's.
    for e in &m.engines {
        let a = e.engine.stats();
        s.bus.merge(&a.bus);
        s.lost_writes += a.lost_writes;
    }
    let lines = m.log.lines();
    let count = |needle: &str| lines.iter().filter(|l| l.contains(needle)).count() as u64;
    let symbol = |frame: Option<&String>| {
        frame
            .map(|f| f.split('+').next().unwrap_or(f).to_string())
            .unwrap_or_default()
    };
    let oops = m.crash.lock().as_ref().map(|c| OopsVerdict {
        dma_call: symbol(c.oops.call_trace.get(1)),
        caller: symbol(c.oops.call_trace.get(2)),
        comm: c.comm.to_string(),
        fault_addr: c.oops.fault_addr,
        pid: c.pid,
        cpu: c.cpu,
    });
    Verdict {
        kernel: cfg.kernel.name().to_string(),
        execution: ExecutionModel::ExecContexts,
        oops,
        stray_dma_writes: s.bus.stray_writes,
        stray_dma_reads: s.bus.stray_reads,
        stray_write_addrs: s.bus.stray_write_addrs.clone(),
        foreign_dma: s.bus.foreign(),
        freed_domain_dma: s.bus.freed_domain,
        lost_writes: s.lost_writes,
        blocked_transactions: s.bus.blocked,
        dma_transactions: s.bus.transactions,
        global_faults_logged: count("Blocked unknown Stream ID") + count("Unexpected global fault"),
        context_faults_logged: count("Unhandled context fault"),
        packets_delivered: s.rx_delivered + s.tx_sent,
        packets_dropped: s.rx_dropped + s.tx_dropped,
        use_after_free: s.use_after_free,
        nic_errors: s.errors,
        msis_lost: m.nic.as_ref().map(|_| s.msis_lost),
        bme_suppressed: s.bme_suppressed,
        stray_in_flight_at_bme_clear: s.stray_in_flight_at_bme_clear,
        cpu0: m.exec.stats(0),
        trigger_cpu: 0,
        build: cfg.build.to_string(),
        dma_core: cfg.dma_core.name().to_string(),
        shutdown_time_ns: shutdown_ns,
        completed,
        // arm-smmu's probe in the next kernel is not counted (it has no kdump refusal).
        smmu_probe_failures: 0,
    }
}

/// The reboot scenario as the explorer runs it: a configuration and the properties checked.
#[derive(Debug, Clone)]
pub struct RebootScenario {
    /// The machine and trigger.
    pub config: RebootConfig,
    /// Properties whose violation fails a run.
    pub properties: Vec<Property>,
    /// Whether each explorer worker boots the machine once and restores it before every
    /// later schedule, or boots it for every schedule (the outputs are the same).
    pub boot_cache: BootCache,
}

impl RebootScenario {
    /// `config` checked against `properties`, with the default [`BootCache`].
    pub fn new(config: RebootConfig, properties: Vec<Property>) -> Self {
        RebootScenario {
            config,
            properties,
            boot_cache: BootCache::default(),
        }
    }
}

impl explore::Scenario for RebootScenario {
    type Outcome = Result<RebootOutcome, MachineSetupError>;

    fn run(&self) -> Self::Outcome {
        match self.boot_cache {
            BootCache::FreshEachRun => run(&self.config),
            BootCache::Reuse => boot_cache::run_reusing(&self.config),
        }
    }

    fn violations(&self, outcome: &Self::Outcome) -> Vec<String> {
        match outcome {
            Ok(o) => self
                .properties
                .iter()
                .filter(|p| p.violated_by(&o.verdict))
                .map(|p| p.name().to_string())
                .collect(),
            Err(e) => vec![format!("scenario-error: {e}")],
        }
    }

    fn classify(&self, outcome: &Self::Outcome) -> Vec<String> {
        match outcome {
            Ok(o) => verdict::classify(o),
            Err(_) => vec!["scenario error".into()],
        }
    }

    fn exercised(&self, outcome: &Self::Outcome) -> bool {
        outcome
            .as_ref()
            .map_or(true, |o| o.verdict.dma_transactions > 0)
    }
}
