//! The seed's scenario on an SMMUv3 board (QEMU's virt machine): PCI functions named by the run
//! are flooded with receive DMA through the smmuv3 model while CPU 1 runs `reboot -f`, kexec or
//! an unbind of the SMMU, and the arm-smmu-v3 driver's `.shutdown` does what the kernel's
//! version does (32ea2c57dc21, "iommu/arm-smmu-v3: Don't unregister on shutdown", is the line
//! between `linux-6.1` and `linux-6.2`).
//!
//! Every layer is the real one, as on SMMUv2: the driver programs the model through MMIO and
//! queues in simulated memory, the IOMMU core serves the functions' drivers, the model walks
//! the page tables and decides each transaction (translated, bypassed by GBPA or an STE,
//! aborted). What the run reports comes from the functions' own evidence and the log.
//!
//! The machine runs on [`crate::exec`] as the SMMUv2 one does, with the same machinery
//! (`scenario::contexts`): one actor per CPU the board's `/cpus` declares, each making its
//! CPU's scheduling decisions; each flooded function's MSI arrives through the GIC (an LPI,
//! routed to CPU 0) and its handler schedules the function's NAPI instance, polled in
//! `net_rx_action` on irq exit or in `ksoftirqd/0`; the SMMU's SPIs go to CPU 0, where
//! `gerror` is a hardirq and `eventq` (and `priq`) a threaded interrupt, as arm-smmu-v3
//! requests them: the hardirq wakes the line's irq thread (`irq/NN-arm-smmu`), which drains the
//! queue; the task that types the command holds the CPU it was woken on. One DMA engine per flooded function is the device side, checking Bus Master Enable on
//! every transaction.

mod cpu;
mod machine;
pub mod nic;
mod snapshot;

pub use machine::{driver_of, firmware};

use crate::exec::Task;
use crate::ownership::DmaEvidence;
use crate::scenario::contexts;
use crate::scenario::{
    ExecutionModel, Lane, MachineSetupError, OopsVerdict, RebootConfig, RebootOutcome,
    TimelineEvent, Trigger, Verdict,
};
use crate::{Board, SmmuVersion};
use arm_smmu_v3::{ArmSmmuV3, BootContext, ModuleParams, RateLimits, SmmuEnv};
use cpu::V3Code;
use klog::Printk;
pub(crate) use machine::V3Machine;
use smmu_addr::PhysAddr;
use smmu_sync::atomic::Ordering;
use smmu_sync::{sched_point, thread, Arc, Mutex, Point};
pub(crate) use snapshot::V3Snapshot;

/// Uptime at which the trigger is typed (as on SMMUv2).
const TRIGGER_AT_NS: u64 = 42_000_000_000;
const NS_PER_RX: u64 = 1_500;

/// The SMMUv3 the scenario runs on: the board's first enabled SMMU, if it is a v3.
pub fn smmuv3_index(board: &Board) -> Option<usize> {
    let i = board.smmus.iter().position(|s| s.enabled)?;
    (board.smmus[i].version == SmmuVersion::V3).then_some(i)
}

pub(super) struct Events {
    clock: Arc<crate::Dmesg>,
    on: smmu_sync::atomic::AtomicBool,
    list: Mutex<Vec<TimelineEvent>>,
}

impl Events {
    pub(super) fn push(&self, lane: Lane, text: String) {
        if self.on.load(Ordering::SeqCst) {
            let time_ns = self.clock.now_ns();
            self.list.lock().push(TimelineEvent {
                time_ns,
                lane,
                text,
            });
        }
    }
}

impl V3Machine {
    fn stop(&self) -> bool {
        self.kernel.halted() || self.log.stopped() || self.trigger_done.load(Ordering::SeqCst)
    }

    /// After kexec: the next kernel's arm-smmu-v3 probes the same SMMU (its reset disables
    /// and re-enables it with a fresh stream table) and takes its interrupts. `kdump`: the next
    /// kernel is a capture kernel started by crash kexec (`is_kdump_kernel()`).
    fn next_kernel_probe(&self, ev: &Events, kdump: bool) {
        self.new_kernel.store(true, Ordering::SeqCst);
        let n = &self.next;
        if let Some(l) = &self.mmio_log {
            l.phase(&format!("next-kernel probe {}", n.fw.dev_name));
        }
        ev.push(
            Lane::ShutdownCpu,
            format!("next kernel: arm-smmu-v3 probes {}", n.fw.dev_name),
        );
        let env = SmmuEnv {
            mmio: n.bus.clone(),
            log: n.printk.clone(),
            frames: n.tables.clone(),
            limits: Arc::new(RateLimits::default()),
        };
        let boot = BootContext {
            kdump,
            enabled_at_probe: n.enabled_at_probe,
        };
        match ArmSmmuV3::probe_booting(
            &n.fw,
            ModuleParams::default(),
            n.version,
            n.policy,
            env,
            boot,
        ) {
            Ok(s) => *self.smmu.lock() = s,
            Err(e) => {
                if let Some(line) = e.driver_core_line(&n.fw.dev_name) {
                    n.printk.printk(klog::Level::Warning, &line);
                }
                *self.next_probe_failed.lock() = Some(e.clone());
                ev.push(
                    Lane::ShutdownCpu,
                    format!("next kernel: arm-smmu-v3 probe failed: {e}"),
                );
            }
        }
    }

    fn evidence(&self) -> (DmaEvidence, nic::FunctionStats) {
        let mut bus = DmaEvidence::default();
        let mut all = nic::FunctionStats::default();
        for f in &self.flooded {
            let s = f.f.stats();
            bus.merge(&s.bus);
            all.rx_delivered += s.rx_delivered;
            all.rx_dropped += s.rx_dropped;
            all.lost_writes += s.lost_writes;
            all.bme_suppressed += s.bme_suppressed;
            all.msis_lost += s.msis_lost;
            all.stray_in_flight_at_bme_clear += s.stray_in_flight_at_bme_clear;
            all.errors.tx_dma_aborts += s.errors.tx_dma_aborts;
            all.errors.rx_dma_aborts += s.errors.rx_dma_aborts;
            all.errors.tx_ring_stalled |= s.errors.tx_ring_stalled;
        }
        (bus, all)
    }
}

/// Run the scenario once on the board's SMMUv3 `smmu` (see [`smmuv3_index`]).
pub fn run(cfg: &RebootConfig, smmu: usize) -> Result<RebootOutcome, MachineSetupError> {
    let (m, entries) = boot_prefix(cfg, smmu)?;
    debug_assert_eq!(
        entries, 0,
        "the boot prefix entered the explorer's scheduler"
    );
    run_booted(cfg, &Arc::new(m))
}

/// Boot `cfg`'s machine on its SMMUv3 `smmu` with scheduling points off; also says how many
/// times the boot entered the explorer's scheduler (0 unless a change broke "The boot prefix
/// is schedule-independent", ARCHITECTURE.md).
pub(crate) fn boot_prefix(
    cfg: &RebootConfig,
    smmu: usize,
) -> Result<(V3Machine, u64), MachineSetupError> {
    let before = smmu_sync::scheduler_entries();
    let m = smmu_sync::without_sched_points(|| machine::boot(cfg, smmu))?;
    Ok((m, smmu_sync::scheduler_entries().wrapping_sub(before)))
}

/// The run after boot, on a machine fresh from its boot or restored to that state: the
/// actors, the trigger, the verdict.
pub(crate) fn run_booted(
    cfg: &RebootConfig,
    m: &Arc<V3Machine>,
) -> Result<RebootOutcome, MachineSetupError> {
    let smmu = m.smmu_index;
    let m = m.clone();
    let now = m.log.now_ns();
    if now < TRIGGER_AT_NS {
        m.log.advance_ns(TRIGGER_AT_NS - now);
    }
    let ev = Arc::new(Events {
        clock: m.log.clone(),
        on: smmu_sync::atomic::AtomicBool::new(true),
        list: Mutex::new(Vec::new()),
    });
    let max = cfg.max_actor_steps;
    let code = Arc::new(V3Code {
        m: m.clone(),
        ev: ev.clone(),
    });

    // Every CPU runs its kthreads: the functions' MSIs and the SMMU's SPIs through the GIC to
    // CPU 0, softirqs on irq exit or in ksoftirqd/N.
    let cpus: Vec<_> = (0..m.exec.cpus())
        .map(|cpu| {
            let code = code.clone();
            thread::spawn(move || contexts::cpu_actor(&code, cpu, max))
        })
        .collect();
    // One DMA engine per flooded function.
    let engines: Vec<_> = (0..m.flooded.len())
        .map(|i| {
            let (m, ev, code) = (m.clone(), ev.clone(), code.clone());
            thread::spawn(move || {
                let Some(f) = m.flooded.get(i) else { return };
                for _ in 0..max {
                    if m.stop() {
                        break;
                    }
                    m.log.advance_ns(NS_PER_RX);
                    let before = f.f.stats();
                    let step = f.f.hw_step(&m.model);
                    if !step.more {
                        break;
                    }
                    let after = f.f.stats();
                    if step.msi && !m.new_kernel.load(Ordering::SeqCst) {
                        code.raise_msi(i);
                    }
                    if after.bus.transactions > before.bus.transactions {
                        if let Some(l) = &m.mmio_log {
                            l.first_dma(&f.f.name);
                        }
                    }
                    if after.bus.stray_writes > before.bus.stray_writes {
                        let at = after
                            .bus
                            .stray_write_addrs
                            .last()
                            .copied()
                            .unwrap_or(PhysAddr::ZERO);
                        ev.push(
                            Lane::NicDma,
                            format!("{}: STRAY write to {at:#x} (untranslated)", f.f.name),
                        );
                    } else if after.bus.blocked > before.bus.blocked {
                        ev.push(
                            Lane::NicDma,
                            format!("{}: transaction aborted by the SMMU", f.f.name),
                        );
                    } else if after.bme_suppressed > before.bme_suppressed
                        && before.bme_suppressed == 0
                    {
                        ev.push(
                            Lane::NicDma,
                            format!("{}: Bus Master Enable clear: no more DMA", f.f.name),
                        );
                    }
                    thread::yield_now();
                }
            })
        })
        .collect();

    // The shell: wait for the traffic (bounded), then the trigger on the CPU it was woken on.
    for _ in 0..max {
        if m.flooded.iter().all(|f| f.f.stats().rx_delivered >= 2) {
            break;
        }
        thread::yield_now();
    }
    let trigger_cpu = contexts::trigger_cpu(&m.exec);
    let task = Task {
        cpu: trigger_cpu,
        pid: crate::scenario::REBOOT_PID,
        comm: match cfg.trigger {
            Trigger::Reboot => "reboot",
            Trigger::Kexec => "kexec",
            Trigger::UnbindSmmu | Trigger::CrashKexec => "sh",
        }
        .to_string(),
    };
    // The task holds its CPU (PREEMPT_NONE) and takes that CPU's interrupts at its own
    // scheduling points, as on the SMMUv2 machine; inside arm-smmu-v3's command-queue sections
    // it has them masked (`local_irq_save`, as Linux), so a NAPI poll never re-enters the queue.
    contexts::hold_for_trigger(&code, &task);
    sched_point(Point::Kernel);
    let start = m.log.now_ns();
    if let Some(l) = &m.mmio_log {
        l.phase(&format!("shutdown {}", cfg.trigger.name()));
    }
    ev.push(
        Lane::ShutdownCpu,
        match cfg.trigger {
            Trigger::Reboot => "reboot -f: kernel_restart()",
            Trigger::Kexec => "kexec -e: kernel_kexec()",
            Trigger::UnbindSmmu => "unbind arm-smmu-v3: device_release_driver()",
            Trigger::CrashKexec => "echo c > /proc/sysrq-trigger: panic() -> __crash_kexec()",
        }
        .to_string(),
    );
    let completed = match cfg.trigger {
        Trigger::Reboot => m.kernel.kernel_restart(None),
        Trigger::Kexec => {
            let started = m.kernel.kernel_kexec();
            if started && !m.kernel.halted() {
                for f in &m.flooded {
                    f.f.kernel_replaced();
                }
                m.next_kernel_probe(&ev, false);
            }
            started
        }
        Trigger::CrashKexec => {
            let info = crate::dmesg::TaskInfo::of(&cfg.build, task.cpu, task.pid, &task.comm);
            m.kernel.crash_kexec(&info, Some(&m.hardware_name));
            // The stop IPI: the other CPUs finish the step they are in and run no more of the
            // crashed kernel.
            *m.secondaries_stopped.lock() = true;
            for f in &m.flooded {
                f.f.kernel_replaced();
            }
            m.next_kernel_probe(&ev, true);
            true
        }
        Trigger::UnbindSmmu => match m.kernel.find(&cfg.board.smmus[smmu].name) {
            Some(d) => m.kernel.device_release_driver(d).is_ok() && !m.kernel.halted(),
            None => false,
        },
    } && !m.kernel.halted();
    let end = m.log.now_ns();
    if completed {
        ev.push(Lane::ShutdownCpu, "done".to_string());
    }
    m.exec.release_cpu(trigger_cpu);
    contexts::leave_cpu();
    m.trigger_done.store(true, Ordering::SeqCst);
    for c in cpus {
        let _ = c.join();
    }
    for e in engines {
        let _ = e.join();
    }

    let (bus, fs) = m.evidence();
    let lines = m.log.lines();
    let events_logged = lines
        .iter()
        .filter(|l| l.contains("event 0x") && l.contains("received:"))
        .count() as u64;
    let symbol = |f: Option<&String>| {
        f.map(|s| s.split('+').next().unwrap_or(s).to_string())
            .unwrap_or_default()
    };
    let oops = m.crash.lock().as_ref().map(|(o, t)| OopsVerdict {
        dma_call: symbol(o.call_trace.get(1)),
        // The flooded function's NAPI poll (its driver's own frames are not modelled).
        caller: m
            .flooded
            .first()
            .map(|f| format!("{} NAPI poll", f.f.name))
            .unwrap_or_default(),
        comm: t.comm.clone(),
        fault_addr: o.fault_addr,
        pid: t.pid,
        cpu: t.cpu,
    });
    let verdict = Verdict {
        kernel: cfg.kernel.name().to_string(),
        execution: ExecutionModel::ExecContexts,
        oops,
        stray_dma_writes: bus.stray_writes,
        stray_dma_reads: bus.stray_reads,
        stray_write_addrs: bus.stray_write_addrs.clone(),
        foreign_dma: bus.foreign(),
        freed_domain_dma: bus.freed_domain,
        lost_writes: fs.lost_writes,
        blocked_transactions: bus.blocked,
        dma_transactions: bus.transactions,
        global_faults_logged: events_logged,
        context_faults_logged: 0,
        packets_delivered: fs.rx_delivered,
        packets_dropped: fs.rx_dropped,
        shutdown_time_ns: end.saturating_sub(start),
        completed,
        build: cfg.build.to_string(),
        dma_core: cfg.dma_core.name().to_string(),
        smmu_probe_failures: u64::from(m.next_probe_failed.lock().is_some()),
        nic_errors: fs.errors,
        msis_lost: (!m.flooded.is_empty()).then_some(fs.msis_lost),
        bme_suppressed: fs.bme_suppressed,
        stray_in_flight_at_bme_clear: fs.stray_in_flight_at_bme_clear,
        cpu0: m.exec.stats(0),
        trigger_cpu,
        ..Verdict::default()
    };
    let timeline = ev.list.lock().clone();
    Ok(RebootOutcome {
        log: m.log.text(),
        verdict,
        timeline,
        mmio_log: m.mmio_log.as_ref().map(|l| l.text()),
    })
}
