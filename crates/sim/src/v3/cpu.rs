//! The kernel code [`crate::exec`] runs on the SMMUv3 machine's CPUs: the flooded functions'
//! MSI handlers and NAPI polls, and arm-smmu-v3's interrupt handlers.

use super::machine::{V3Machine, IRQ_MSI_BASE};
use super::Events;
use crate::dmesg::{OopsReport, TaskInfo};
use crate::exec::{Code, Context, Exec, Irq};
use crate::scenario::contexts::ExecMachine;
use crate::scenario::Lane;
use klog::Printk;
use smmu_sync::atomic::Ordering;
use smmu_sync::Arc;

/// CPU time of one received frame through the stack.
const NS_PER_PACKET: u64 = 1_000;
/// Time CPU 0 lets pass per step in the next kernel (its SMMU interrupts only).
const NS_PER_NEW_KERNEL_STEP: u64 = 1_500;

/// The machine's code, with the timeline it records into.
pub(super) struct V3Code {
    pub(super) m: Arc<V3Machine>,
    pub(super) ev: Arc<Events>,
}

impl V3Code {
    /// The function whose MSI is `intid`, if it is one.
    fn function_of(&self, intid: u32) -> Option<usize> {
        let i = intid.checked_sub(IRQ_MSI_BASE)? as usize;
        (i < self.m.flooded.len()).then_some(i)
    }

    /// The function `i` sends its MSI: through the ITS to CPU 0 (the default affinity of a
    /// PCI MSI on arm64, before irqbalance or a hint moves it).
    pub(super) fn raise_msi(&self, i: usize) {
        self.m.exec.raise_irq(0, Irq::Line(IRQ_MSI_BASE + i as u32));
    }

    /// The SMMU's handlers for the lines raised since they last ran (the model's lines are
    /// edge-triggered SPIs on QEMU's virt machine), `only` the one of that INTID if given, run
    /// in `ctx` (the next kernel's CPU 0 runs them without a context).
    pub(super) fn take_smmu_irqs(&self, only: Option<u32>, ctx: Option<&Context>) {
        let lines: Vec<_> = {
            let mut p = self.m.pending_irqs.lock();
            let (take, keep): (Vec<_>, Vec<_>) = p.iter().partition(|&&l| {
                only.is_none_or(|intid| {
                    self.m
                        .smmu_intids
                        .iter()
                        .any(|&(n, line)| n == intid && line == l)
                })
            });
            *p = keep;
            take
        };
        for line in lines {
            let smmu = self.m.smmu.lock().clone();
            let text = match ctx {
                Some(Context::IrqThread(t)) => format!(
                    "SMMU interrupt {}: thread {}/{} on CPU {}",
                    line.dt_name(),
                    t.comm,
                    t.pid,
                    t.cpu
                ),
                Some(c) => format!(
                    "SMMU interrupt {}: hardirq on CPU {}",
                    line.dt_name(),
                    c.task().cpu
                ),
                None => format!("SMMU interrupt {}", line.dt_name()),
            };
            self.ev.push(Lane::NetCpu, text);
            smmu.handle_irq(line);
        }
    }

    /// The kernel crashed in `ctx`: print the Oops naming its task.
    fn report_crash(&self, mut o: iommu::Oops, ctx: &Context) {
        // Below the DMA API: the function's driver frames are not modelled (its poll is one
        // function of smmu-lab's); then NAPI and the context's own frames.
        o.call_trace
            .extend(crate::enetc::frames::NAPI.iter().map(|s| s.to_string()));
        o.call_trace.extend(
            crate::enetc::frames::context_frames(ctx)
                .iter()
                .map(|s| s.to_string()),
        );
        let t = ctx.task();
        self.ev.push(
            Lane::NetCpu,
            format!(
                "Oops in {}/{} on CPU {}: NULL dereference at {:#x} via {}",
                t.comm,
                t.pid,
                t.cpu,
                o.fault_addr,
                o.call_trace.get(1).map(String::as_str).unwrap_or("?")
            ),
        );
        let report = OopsReport::from_core(
            &o,
            Some(TaskInfo::of(&self.m.build, t.cpu, t.pid, &t.comm)),
            Some(self.m.hardware_name.clone()),
        );
        self.m.kernel.oops(&report);
        *self.m.crash.lock() = Some((o, t.clone()));
    }
}

impl Code for V3Code {
    fn hardirq(&self, exec: &Exec, line: u32, ctx: &Context) {
        if let Some(i) = self.function_of(line) {
            // The function's MSI handler: its interrupt stays masked, NAPI is scheduled on
            // the CPU that took it.
            if let Some(f) = self.m.flooded.get(i) {
                f.f.irq_handler();
                exec.napi_schedule(ctx.task().cpu, i as u32);
                self.ev.push(
                    Lane::NetCpu,
                    format!(
                        "hardirq on CPU {}: {} MSI → napi_schedule",
                        ctx.task().cpu,
                        f.f.name
                    ),
                );
            }
        } else {
            self.take_smmu_irqs(Some(line), Some(ctx));
        }
    }

    fn irq_thread(&self, _exec: &Exec, line: u32, ctx: &Context) -> Option<()> {
        // arm_smmu_evtq_thread (or the PRI queue's), in the line's irq thread.
        self.take_smmu_irqs(Some(line), Some(ctx));
        Some(())
    }

    fn napi_poll(&self, _exec: &Exec, napi: u32, budget: usize, ctx: &Context) -> Option<usize> {
        let f = self.m.flooded.get(napi as usize)?;
        match f.f.poll(budget) {
            Ok((work, msi)) => {
                if msi {
                    self.raise_msi(napi as usize);
                }
                self.m.log.advance_ns(NS_PER_PACKET * (work as u64 + 1));
                Some(work)
            }
            Err(o) => {
                self.report_crash(o, ctx);
                None
            }
        }
    }

    fn run_work(&self, _exec: &Exec, _work: u32, _ctx: &Context) -> Option<()> {
        // The SMMUv3 machine queues no work items.
        Some(())
    }

    fn now_ns(&self) -> u64 {
        self.m.log.now_ns()
    }

    fn advance_ns(&self, ns: u64) {
        self.m.log.advance_ns(ns);
    }
}

impl ExecMachine for V3Code {
    fn exec(&self) -> &Exec {
        &self.m.exec
    }

    fn stop(&self) -> bool {
        self.m.stop()
    }

    fn in_new_kernel(&self) -> bool {
        self.m.new_kernel.load(Ordering::SeqCst)
    }

    fn new_kernel_cpu0_step(&self) {
        self.take_smmu_irqs(None, None);
        self.m.log.advance_ns(NS_PER_NEW_KERNEL_STEP);
    }

    fn old_kernel_cpu_step(&self, cpu: u32) -> Option<()> {
        // A crash stops the other CPUs ("SMP: stopping secondary CPUs"): the stop IPI waits
        // for the step in progress, and none runs after it.
        let stopped = self.m.secondaries_stopped.lock();
        if *stopped {
            return Some(());
        }
        let r = self.m.exec.cpu_step(cpu, self);
        drop(stopped);
        r
    }
}
