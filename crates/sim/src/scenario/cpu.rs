//! The kernel code the execution model runs on the machine's CPUs: the interrupt handlers (the
//! ENETC's MSI-X handler, the SMMU's fault handlers), the ENETC's NAPI poll, and the
//! `mld_ifc_work` delayed work.

use super::machine::{Machine, IRQ_ENETC, IRQ_SMMU_BASE};
use super::timeline::Lane;
use crate::enetc::MLD_LEN;
use crate::exec::{Code, Context, Exec, Irq};
use klog::Printk;

/// ENETC's first NAPI instance: vector *i*'s (RX/TX ring pair *i*) is `NAPI_ENETC + i`.
pub(super) const NAPI_ENETC: u32 = 0;
/// `mld_ifc_work` (the IPv6 interface's MLD report work).
pub(super) const WORK_MLD: u32 = 0;
/// The firmware loader's `request_firmware_work_func` for cfg80211's request, asleep in the
/// sysfs fallback until the reboot notifier aborts it.
pub(super) const WORK_FW_FALLBACK: u32 = 1;
/// The file cfg80211 asks for.
pub(super) const REGDB: &str = "regulatory.db";

impl Code for Machine {
    fn hardirq(&self, exec: &Exec, line: u32, ctx: &Context) {
        let vector = line.wrapping_sub(IRQ_ENETC) as usize;
        if line >= IRQ_ENETC && self.nic.as_ref().is_some_and(|n| vector < n.vectors()) {
            if let Some(nic) = &self.nic {
                // enetc_msix: mask the vector's ring interrupts, napi_schedule on the CPU
                // the GIC delivered the MSI to.
                nic.msix_handler(vector);
                exec.napi_schedule(ctx.task().cpu, NAPI_ENETC + vector as u32);
                // The interface's pending MLD report: its timer was armed with a random delay
                // below the report interval (the first interrupt stands for the arming moment;
                // the entropy pool holds its timing).
                if !self
                    .mld_armed
                    .swap(true, smmu_sync::atomic::Ordering::SeqCst)
                {
                    // The timer goes on the arming CPU (a bound workqueue's delayed work
                    // runs where its timer fires).
                    let delay = exec.get_random_below(self.mld_interval_ns);
                    exec.queue_delayed_work(ctx.task().cpu, WORK_MLD, self.log.now_ns() + delay);
                }
                self.timeline.push(
                    Lane::NetCpu,
                    format!(
                        "hardirq on CPU {}: enetc_msix (vector {vector}) → napi_schedule",
                        ctx.task().cpu
                    ),
                );
            }
        } else if line >= IRQ_SMMU_BASE {
            self.take_irqs();
        }
    }

    fn napi_poll(&self, _exec: &Exec, napi: u32, budget: usize, ctx: &Context) -> Option<usize> {
        let nic = self.nic.as_ref()?;
        let vector = napi.saturating_sub(NAPI_ENETC) as usize;
        let before = nic.stats();
        let r = nic.poll(vector, budget, ctx);
        self.nic_events(Lane::NetCpu, &before);
        self.print_kasan();
        match r {
            Ok((work, msi)) => {
                if msi {
                    self.raise_enetc_msi(vector);
                }
                self.log.advance_ns(NS_PER_PACKET * (work as u64 + 1));
                Some(work)
            }
            Err(crash) => {
                self.report_crash(*crash);
                None
            }
        }
    }

    fn run_work(&self, exec: &Exec, work: u32, ctx: &Context) -> Option<()> {
        if work == WORK_FW_FALLBACK {
            // Woken in fw_load_sysfs_fallback: device_del, usermodehelper_read_unlock (the
            // reboot task's usermodehelper_disable may go on), then the callback.
            let name = self.firmware.release_aborted()?;
            self.timeline.push(
                Lane::NetCpu,
                format!(
                    "{}: firmware fallback for {name} aborted, helper lock released",
                    ctx.task().comm
                ),
            );
            smmu_sync::sched_point(smmu_sync::Point::Kernel);
            // regdb_fw_cb(NULL).
            self.log.printk(
                klog::Level::Info,
                &format!("cfg80211: failed to load {name}"),
            );
            self.firmware.callback_done(name);
            return Some(());
        }
        if work != WORK_MLD {
            return Some(());
        }
        let nic = self.nic.as_ref()?;
        let before = nic.stats();
        self.timeline
            .push(Lane::NetCpu, format!("{}: mld_ifc_work", ctx.task().comm));
        let r = nic.start_xmit(ctx, true, &[0x33; MLD_LEN]);
        self.nic_events(Lane::NetCpu, &before);
        self.print_kasan();
        self.log.advance_ns(NS_PER_PACKET);
        if let Err(crash) = r {
            self.report_crash(*crash);
            return None;
        }
        // mld_ifc_work re-arms itself with a random delay while reports are due.
        let delay = exec.get_random_below(self.mld_interval_ns);
        exec.queue_delayed_work(ctx.task().cpu, WORK_MLD, self.log.now_ns() + delay);
        Some(())
    }

    fn now_ns(&self) -> u64 {
        self.log.now_ns()
    }

    fn advance_ns(&self, ns: u64) {
        self.log.advance_ns(ns);
    }
}

/// CPU time of one packet through the stack (receive, or transmit).
const NS_PER_PACKET: u64 = 1_000;

impl Machine {
    /// The ENETC sends `vector`'s MSI: through the ITS to the CPU the vector is affine to.
    pub(super) fn raise_enetc_msi(&self, vector: usize) {
        let cpu = self.enetc_vector_cpu(vector);
        self.exec
            .raise_irq(cpu, Irq::Line(IRQ_ENETC + vector as u32));
    }

    /// The CPU vector `vector` is affine to: `irq_set_affinity_hint(irq, cpu i mod online
    /// CPUs)` in `enetc_setup_irqs`.
    pub(super) fn enetc_vector_cpu(&self, vector: usize) -> u32 {
        vector as u32 % self.exec.cpus()
    }

    fn print_kasan(&self) {
        if let Some(nic) = &self.nic {
            for k in nic.take_kasan() {
                self.report_kasan(k);
            }
        }
    }
}
