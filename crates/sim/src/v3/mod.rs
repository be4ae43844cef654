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
//! The actors are those of the SMMUv2 scenario (CPU 0: NAPI polls and the SMMU's interrupts;
//! one DMA engine per flooded function; CPU 1: the trigger), on today's engine.

mod machine;
pub mod nic;

pub use machine::{driver_of, firmware};

use crate::dmesg::OopsReport;
use crate::ownership::DmaEvidence;
use crate::scenario::{
    ExecutionModel, Lane, MachineSetupError, OopsVerdict, RebootConfig, RebootOutcome,
    TimelineEvent, Trigger, Verdict,
};
use crate::{Board, SmmuVersion};
use arm_smmu_v3::{ArmSmmuV3, BootContext, ModuleParams, RateLimits, SmmuEnv};
use klog::Printk;
use machine::V3Machine;
use smmu_sync::atomic::Ordering;
use smmu_sync::{sched_point, thread, Arc, Mutex, Point};

/// Uptime at which the trigger is typed (as on SMMUv2).
const TRIGGER_AT_NS: u64 = 42_000_000_000;
const NS_PER_POLL: u64 = 4_000;
const NS_PER_RX: u64 = 1_500;

/// The SMMUv3 the scenario runs on: the board's first enabled SMMU, if it is a v3.
pub fn smmuv3_index(board: &Board) -> Option<usize> {
    let i = board.smmus.iter().position(|s| s.enabled)?;
    (board.smmus[i].version == SmmuVersion::V3).then_some(i)
}

struct Events {
    clock: Arc<crate::Dmesg>,
    on: smmu_sync::atomic::AtomicBool,
    list: Mutex<Vec<TimelineEvent>>,
}

impl Events {
    fn push(&self, lane: Lane, text: String) {
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

    fn take_irqs(&self, ev: &Events) {
        let lines = std::mem::take(&mut *self.pending_irqs.lock());
        for line in lines {
            let smmu = self.smmu.lock().clone();
            ev.push(Lane::NetCpu, format!("SMMU interrupt {}", line.dt_name()));
            smmu.handle_irq(line);
        }
    }

    fn report_crash(&self, o: iommu::Oops, ev: &Events) {
        ev.push(
            Lane::NetCpu,
            format!(
                "Oops: NULL dereference at {:#x} via {}",
                o.fault_addr,
                o.call_trace.get(1).map(String::as_str).unwrap_or("?")
            ),
        );
        let report = OopsReport::from_core(&o, None, Some(self.hardware_name.clone()));
        self.kernel.oops(&report);
        *self.crash.lock() = Some(o);
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
        }
        (bus, all)
    }
}

/// Run the scenario once on the board's SMMUv3 `smmu` (see [`smmuv3_index`]).
pub fn run(cfg: &RebootConfig, smmu: usize) -> Result<RebootOutcome, MachineSetupError> {
    let m = Arc::new(smmu_sync::without_sched_points(|| {
        machine::boot(cfg, smmu)
    })?);
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

    // CPU 0: NAPI polls of every flooded function, and the SMMU's interrupts.
    let cpu0 = {
        let (m, ev) = (m.clone(), ev.clone());
        thread::spawn(move || {
            'steps: for _ in 0..max {
                if m.stop() {
                    break;
                }
                m.log.advance_ns(NS_PER_POLL);
                {
                    let stopped = m.secondaries_stopped.lock();
                    // After a crash CPU 0 is parked; the SMMU's interrupts reach the capture
                    // kernel (modelled as taken here, between the other actors' steps).
                    m.take_irqs(&ev);
                    if m.stop() {
                        break;
                    }
                    if !*stopped && !m.new_kernel.load(Ordering::SeqCst) {
                        for f in &m.flooded {
                            if let Err(o) = f.f.poll() {
                                m.report_crash(o, &ev);
                                break 'steps;
                            }
                        }
                    }
                }
                thread::yield_now();
            }
        })
    };
    // One DMA engine per flooded function.
    let engines: Vec<_> = (0..m.flooded.len())
        .map(|i| {
            let (m, ev) = (m.clone(), ev.clone());
            thread::spawn(move || {
                let Some(f) = m.flooded.get(i) else { return };
                for _ in 0..max {
                    if m.stop() {
                        break;
                    }
                    m.log.advance_ns(NS_PER_RX);
                    // A function whose bus mastering was cleared (kexec) issues no DMA.
                    if m.kernel.bus_master(f.dev) {
                        let before = f.f.stats().bus;
                        if !f.f.hw_step(&m.model) {
                            break;
                        }
                        let after = f.f.stats().bus;
                        if let Some(l) = &m.mmio_log {
                            l.first_dma(&f.f.name);
                        }
                        if after.stray_writes > before.stray_writes {
                            let at = after.stray_write_addrs.last().copied().unwrap_or(0);
                            ev.push(
                                Lane::NicDma,
                                format!("{}: STRAY write to {at:#x} (untranslated)", f.f.name),
                            );
                        } else if after.blocked > before.blocked {
                            ev.push(
                                Lane::NicDma,
                                format!("{}: transaction aborted by the SMMU", f.f.name),
                            );
                        }
                    }
                    thread::yield_now();
                }
            })
        })
        .collect();

    // CPU 1: wait for the traffic (bounded), then the trigger.
    for _ in 0..max {
        if m.flooded.iter().all(|f| f.f.stats().rx_delivered >= 2) {
            break;
        }
        thread::yield_now();
    }
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
                m.next_kernel_probe(&ev, false);
            }
            started
        }
        Trigger::CrashKexec => {
            // The shell on CPU 1 (the trigger's CPU in this model; the PID is the v2
            // machine's shell's).
            let task = crate::dmesg::TaskInfo::of(&cfg.build, 1, crate::scenario::REBOOT_PID, "sh");
            m.kernel.crash_kexec(&task, Some(&m.hardware_name));
            // The stop IPI: CPU 0 finishes the poll it is in (its NAPI poll has no point
            // where the model takes an interrupt) and runs no more of the crashed kernel.
            *m.secondaries_stopped.lock() = true;
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
    m.trigger_done.store(true, Ordering::SeqCst);
    let _ = cpu0.join();
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
    let oops = m.crash.lock().as_ref().map(|o| OopsVerdict {
        dma_call: symbol(o.call_trace.get(1)),
        // The flooded function's NAPI poll on CPU 0 (its driver's frames are not modelled).
        caller: m
            .flooded
            .first()
            .map(|f| format!("{} NAPI poll", f.f.name))
            .unwrap_or_default(),
        comm: "softirq on CPU 0".to_string(),
        fault_addr: o.fault_addr,
        // The v3 scenario still runs on the single network actor, not on sim::exec's tasks:
        // the softirq runs on CPU 0 and no task is modelled (PID 0 is the idle task's).
        pid: 0,
        cpu: 0,
    });
    let verdict = Verdict {
        kernel: cfg.kernel.name().to_string(),
        // The single network actor: nic_errors, bme_suppressed, cpu0 and trigger_cpu are not
        // measured (left zero, not printed).
        execution: ExecutionModel::NetworkActor,
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
