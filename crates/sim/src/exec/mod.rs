//! How the simulated kernel runs code: CPUs, tasks, hardirqs through a GIC, softirqs with
//! deferral to `ksoftirqd`, NAPI, and a workqueue whose delayed work is armed by timers on the
//! simulated clock.
//!
//! Each CPU is a small state machine driven by one facade thread ([`Exec::cpu_step`]); every
//! call of `cpu_step` is one scheduling decision of that CPU, taken in Linux's order:
//!
//! 1. a pending interrupt routed to the CPU, when its interrupts are not masked
//!    (`local_irq_save`), is taken: the handler runs in hardirq context; on `irq_exit` the
//!    pending softirqs run at once (`__do_softirq` on top of the interrupted task), unless
//!    `ksoftirqd` is already runnable, in which case they are left to it (v6.1's
//!    `ksoftirqd_running()` check). A threaded line ([`Exec::request_threaded_irq`]) has no
//!    handler in hardirq context: its hardirq masks the line (IRQF_ONESHOT) and wakes its irq
//!    thread;
//! 2. an expired timer raises the timer interrupt (the arch timer's PPI);
//! 3. otherwise the scheduler picks a runnable task: a woken irq thread first (SCHED_FIFO),
//!    which runs the line's thread function and unmasks the line; then a woken kworker when
//!    the running softirq asked for a reschedule, then `ksoftirqd/N`, then `kworker/N:M`; with
//!    nothing runnable the CPU idles (`swapper/N`) and simulated time passes.
//!
//! `__do_softirq` handles the pending softirqs and restarts while more are raised, at most 10
//! times and for at most 2 ms (`MAX_SOFTIRQ_RESTART`, `MAX_SOFTIRQ_TIME`), and not when a
//! reschedule is needed; softirqs still pending after that wake `ksoftirqd`. `net_rx_action`
//! polls the NAPI instances on the CPU's poll list with a weight of 64 each, a budget of 300
//! packets and a time limit of one jiffy (`netdev_budget`, `netdev_budget_usecs` = 2000 µs at
//! HZ=250); an instance that used its whole weight stays on the list and NET_RX is raised again.
//!
//! The kernel's code (interrupt handlers, the NAPI poll, work functions) is supplied by the
//! machine through [`Code`]; `exec` only decides who runs when, and in which task.

mod current;
mod irq;
mod sched;
mod snapshot;
mod softirq;
mod threaded;
mod work;

pub use current::{forget_task_cpus, set_task_cpu, task_cpu};
pub use irq::Irq;
pub use sched::{Context, Task};
pub use snapshot::ExecSnapshot;
pub use softirq::{MAX_SOFTIRQ_RESTART, MAX_SOFTIRQ_TIME_NS, NAPI_WEIGHT, NETDEV_BUDGET};

use smmu_sync::Mutex;

/// The ticks of the simulated jiffies clock (HZ=250, arm64 defconfig).
pub const NS_PER_JIFFY: u64 = 4_000_000;

/// The kernel code `exec` runs.
pub trait Code {
    /// The handler of `line`, in hardirq context. A NAPI instance it schedules is reported by
    /// calling [`Exec::napi_schedule`].
    fn hardirq(&self, exec: &Exec, line: u32, ctx: &Context);
    /// The poll function of NAPI instance `napi` with `budget`; returns the work done.
    fn napi_poll(&self, exec: &Exec, napi: u32, budget: usize, ctx: &Context) -> Option<usize>;
    /// Work item `work`, in a kworker.
    fn run_work(&self, exec: &Exec, work: u32, ctx: &Context) -> Option<()>;
    /// The thread function of threaded `line` ([`Exec::request_threaded_irq`]), in its irq
    /// thread. A machine that requests no threaded line is never called here.
    fn irq_thread(&self, _exec: &Exec, _line: u32, _ctx: &Context) -> Option<()> {
        Some(())
    }
    /// The simulated clock.
    fn now_ns(&self) -> u64;
    /// Let simulated time pass.
    fn advance_ns(&self, ns: u64);
}

/// One CPU's state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Cpu {
    /// Interrupts pending at the GIC for this CPU.
    pending_irqs: Vec<Irq>,
    /// Threaded lines masked until their thread function returned (IRQF_ONESHOT): an edge
    /// meanwhile stays pending.
    oneshot_masked: Vec<u32>,
    /// Threaded lines whose irq thread is woken, in wake order.
    irq_threads: Vec<u32>,
    /// `local_irq_save` nesting.
    irqs_masked: u32,
    /// Pending softirqs.
    softirqs: u32,
    /// The NAPI poll list.
    poll_list: Vec<u32>,
    /// `ksoftirqd/N` is runnable.
    ksoftirqd_running: bool,
    /// Works queued on this CPU's kworker, in order.
    works: Vec<u32>,
    /// Timers: (expiry, work to queue).
    timers: Vec<(u64, u32)>,
    /// `need_resched`: a woken task should run before the current one goes on.
    need_resched: bool,
    /// A task that holds the CPU and is not preempted (PREEMPT_NONE: the task that runs
    /// `kernel_restart` does not reschedule until it sleeps); interrupts are still taken, at the
    /// holder's own scheduling points.
    held_by: Option<Task>,
    /// A hardirq handler is running (arm64 does not nest them).
    in_hardirq: bool,
    /// `__do_softirq` is running (an interrupt may come in, its exit runs no softirq).
    in_softirq: bool,
    /// Statistics.
    stats: CpuStats,
}

/// What happened on one CPU.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct CpuStats {
    /// Hardirqs taken.
    pub hardirqs: u64,
    /// `__do_softirq` runs on irq exit.
    pub softirq_on_irq_exit: u64,
    /// `__do_softirq` runs in ksoftirqd.
    pub softirq_in_ksoftirqd: u64,
    /// Times `ksoftirqd` was woken because softirqs were still pending.
    pub ksoftirqd_wakeups: u64,
    /// `net_rx_action` ran out of budget or time with work left (`time_squeeze`).
    pub time_squeeze: u64,
    /// Work items run.
    pub works: u64,
    /// Irq-thread runs (threaded interrupts' functions).
    pub irq_threads: u64,
}

/// The CPUs of a machine and what runs on them.
pub struct Exec {
    cpus: Vec<Mutex<Cpu>>,
    /// Threaded lines and their irq threads, in request order.
    threaded: Mutex<Vec<(u32, Task)>>,
    /// The entropy pool, fed by interrupt timings (`add_interrupt_randomness`).
    entropy: Mutex<u64>,
}

impl Exec {
    /// `cpus` CPUs (at least one).
    pub fn new(cpus: u32) -> Exec {
        Exec {
            cpus: (0..cpus.max(1))
                .map(|_| Mutex::new(Cpu::default()))
                .collect(),
            threaded: Mutex::new(Vec::new()),
            entropy: Mutex::new(0x6a09_e667_f3bc_c908),
        }
    }

    /// How many CPUs.
    pub fn cpus(&self) -> u32 {
        self.cpus.len() as u32
    }

    fn cpu(&self, cpu: u32) -> &Mutex<Cpu> {
        let i = (cpu as usize).min(self.cpus.len() - 1);
        &self.cpus[i]
    }

    /// What happened on `cpu`.
    pub fn stats(&self, cpu: u32) -> CpuStats {
        self.cpu(cpu).lock().stats
    }
}
