//! Which CPU the calling task runs on, and the context it runs in there: what printk asks the
//! execution model (`crate::dmesg`'s console owner records it).
//!
//! The explorer runs every task of an execution as a coroutine of one OS thread, so the CPU is
//! kept per task (keyed by the explorer's task id, as `smmu_sync` keys its interrupt hooks);
//! on std threads each thread has its own table with one entry.

use super::{Context, Exec};
use std::cell::RefCell;

thread_local! {
    /// (task id, CPU) of the tasks that run on a simulated CPU now.
    static ON_CPU: RefCell<Vec<(usize, u32)>> = const { RefCell::new(Vec::new()) };
}

fn task_key() -> usize {
    smmu_sync::current_task().unwrap_or(0)
}

/// The calling task runs on `cpu` from now on (`None`: it leaves its CPU).
pub fn set_task_cpu(cpu: Option<u32>) {
    let key = task_key();
    ON_CPU.with(|t| {
        let mut t = t.borrow_mut();
        t.retain(|&(k, _)| k != key);
        if let Some(c) = cpu {
            t.push((key, c));
        }
    });
}

/// Forget every task's CPU (a new execution starts on this thread).
pub fn forget_task_cpus() {
    ON_CPU.with(|t| t.borrow_mut().clear());
}

/// The CPU the calling task runs on, if it runs on one.
pub fn task_cpu() -> Option<u32> {
    let key = task_key();
    ON_CPU.with(|t| t.borrow().iter().find(|&&(k, _)| k == key).map(|&(_, c)| c))
}

impl Exec {
    /// The context the calling task runs in now: on its CPU, a hardirq if one is running there
    /// (it runs on top of the task it interrupted, on that task's thread), else softirq, else
    /// the task holding the CPU or the CPU's running kthread. `None` for a caller on no CPU
    /// (the boot, before the CPUs start; a device model).
    pub fn current_context(&self) -> Option<Context> {
        let cpu = task_cpu()?;
        let (hardirq, softirq, held) = {
            let c = self.cpu(cpu).lock();
            (c.in_hardirq, c.in_softirq, c.held_by.clone())
        };
        let ksoftirqd = held.is_none() && self.cpu(cpu).lock().ksoftirqd_running;
        let task = held.clone().unwrap_or_else(|| self.running_kthread(cpu));
        Some(if hardirq {
            Context::Hardirq(task)
        } else if softirq && ksoftirqd {
            Context::Ksoftirqd(task)
        } else if softirq {
            Context::SoftirqOnIrqExit(task)
        } else if held.is_some() {
            Context::Process(task)
        } else {
            Context::Worker(task)
        })
    }
}
