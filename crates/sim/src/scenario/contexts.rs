//! What both reboot machines (the SMMUv2 one in this module, the SMMUv3 one in `crate::v3`)
//! run on [`crate::exec`]: one facade thread per CPU making that CPU's scheduling decisions, the
//! CPU the task that types the command is woken on, and that task holding its CPU.

use crate::exec::{Code, Exec, Task};
use smmu_sync::atomic::{AtomicU32, Ordering};
use smmu_sync::{sched_point, thread, Arc, Point};

/// A machine whose kernel code runs on [`Exec`]'s CPUs.
pub(crate) trait ExecMachine: Code + Send + Sync + 'static {
    /// The CPUs.
    fn exec(&self) -> &Exec;
    /// The run is over (halted, log stopped, trigger done).
    fn stop(&self) -> bool;
    /// The next kernel (kexec, crash kexec) runs: the old kernel's code no longer does.
    fn in_new_kernel(&self) -> bool;
    /// CPU 0 in the next kernel: it takes the SMMUs' interrupts for that kernel's driver.
    fn new_kernel_cpu0_step(&self);
    /// One scheduling decision of `cpu` in the old kernel. `None`: the kernel crashed.
    fn old_kernel_cpu_step(&self, cpu: u32) -> Option<()>;
}

/// The calling task runs on `cpu`: the code it runs masks and unmasks that CPU's interrupts
/// (`local_irq_save`/`restore`, e.g. arm-smmu-v3's command-queue sections).
fn mask_irqs_of<M: ExecMachine>(m: &Arc<M>, cpu: u32) {
    crate::exec::set_task_cpu(Some(cpu));
    let hook_m = Arc::downgrade(m);
    smmu_sync::set_irq_mask_hook(Some(Arc::new(move |masked| {
        if let Some(m) = hook_m.upgrade() {
            if masked {
                m.exec().local_irq_save(cpu);
            } else {
                m.exec().local_irq_restore(cpu);
            }
        }
    })));
}

/// The calling task leaves its CPU: no interrupt hook, no mask hook, on no CPU.
pub(crate) fn leave_cpu() {
    crate::exec::set_task_cpu(None);
    smmu_sync::set_interrupt_hook(None);
    smmu_sync::set_irq_mask_hook(None);
}

/// The actor of `cpu`: its scheduling decisions, and the interrupts its kthreads take at their
/// scheduling points (bottom halves are disabled there: in softirq, or in the transmit path).
pub(crate) fn cpu_actor<M: ExecMachine>(m: &Arc<M>, cpu: u32, max: u32) {
    let hook_m = Arc::downgrade(m);
    mask_irqs_of(m, cpu);
    smmu_sync::set_interrupt_hook(Some(Arc::new(move || {
        if let Some(m) = hook_m.upgrade() {
            // A held CPU (the task that typed the command) takes its interrupts in that task,
            // not here.
            if !m.stop() && !m.in_new_kernel() && !m.exec().held(cpu) {
                let current = m.exec().running_kthread(cpu);
                let _ = m.exec().interrupt_point(cpu, &current, false, &*m);
            }
        }
    })));
    for _ in 0..max {
        if m.stop() {
            break;
        }
        if m.in_new_kernel() {
            // After kexec the old kernel's code is gone; CPU 0 only takes the SMMU
            // interrupts for the new one.
            if cpu == 0 {
                m.new_kernel_cpu0_step();
            }
        } else if cpu == 0 || m.exec().held(cpu) || m.exec().has_work(cpu, m.now_ns()) {
            // CPU 0's idle loop lets simulated time pass; another idle CPU sleeps in `wfi`
            // without moving the shared clock.
            if m.old_kernel_cpu_step(cpu).is_none() {
                break;
            }
        }
        thread::yield_now();
    }
    leave_cpu();
}

/// The CPU the task that types the command runs on: CPU 1's idle loop and CPU 0's race to
/// pick it up, and the explorer decides who wins. A one-CPU board runs it on CPU 0.
pub(crate) fn trigger_cpu(exec: &Exec) -> u32 {
    if exec.cpus() < 2 {
        return 0;
    }
    let picked = Arc::new(AtomicU32::new(u32::MAX));
    let other = {
        let picked = picked.clone();
        thread::spawn(move || {
            let _ = picked.compare_exchange(u32::MAX, 1, Ordering::SeqCst, Ordering::SeqCst);
        })
    };
    sched_point(Point::Kernel);
    let _ = picked.compare_exchange(u32::MAX, 0, Ordering::SeqCst, Ordering::SeqCst);
    let _ = other.join();
    picked.load(Ordering::SeqCst)
}

/// `task` (running on the calling thread) holds `task.cpu` and is not preempted until it
/// sleeps (PREEMPT_NONE): the CPU's kthreads wait; its interrupts are taken at the task's own
/// scheduling points where it has not masked them, softirqs on their exit. [`leave_cpu`] when
/// the task is done.
pub(crate) fn hold_for_trigger<M: ExecMachine>(m: &Arc<M>, task: &Task) {
    let cpu = task.cpu;
    m.exec().hold_cpu(cpu, task.clone());
    mask_irqs_of(m, cpu);
    let hook_m = Arc::downgrade(m);
    let task = task.clone();
    smmu_sync::set_interrupt_hook(Some(Arc::new(move || {
        if let Some(m) = hook_m.upgrade() {
            if !m.stop() && !m.in_new_kernel() && m.exec().held(cpu) {
                let _ = m.exec().interrupt_point(cpu, &task, true, &*m);
            }
        }
    })));
}
