//! CPUs and tasks: the per-CPU kthreads, a task holding its CPU, and the scheduling decision
//! each `cpu_step` takes.

use super::{Code, Exec, Irq};

/// Time an idle CPU lets pass before looking again (`wfi` until the next event).
const IDLE_NS: u64 = 2_000;

/// A task: what an Oops's `CPU:` line names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Task {
    /// The CPU it runs on.
    pub cpu: u32,
    /// Its PID.
    pub pid: u32,
    /// Its name.
    pub comm: String,
}

/// The context code runs in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Context {
    /// A hardirq handler on top of `task`.
    Hardirq(Task),
    /// `__do_softirq` on `irq_exit`, on top of `task`.
    SoftirqOnIrqExit(Task),
    /// `__do_softirq` in `ksoftirqd/N`.
    Ksoftirqd(Task),
    /// A work item in a kworker.
    Worker(Task),
    /// A task of its own (the one that typed `reboot -f`).
    Process(Task),
    /// A threaded interrupt's function in its irq thread (`irq/NN-name`, process context).
    IrqThread(Task),
}

impl Context {
    /// The task the context runs in (`current`).
    pub fn task(&self) -> &Task {
        match self {
            Context::Hardirq(t)
            | Context::SoftirqOnIrqExit(t)
            | Context::Ksoftirqd(t)
            | Context::Worker(t)
            | Context::Process(t)
            | Context::IrqThread(t) => t,
        }
    }

    /// Whether `in_interrupt()` holds (hardirq or softirq).
    pub fn in_interrupt(&self) -> bool {
        matches!(
            self,
            Context::Hardirq(_) | Context::SoftirqOnIrqExit(_) | Context::Ksoftirqd(_)
        )
    }
}

/// `ksoftirqd/N`'s PID: 12 on CPU 0 and 7 more per CPU, the order v6.1 creates per-CPU
/// kthreads in on arm64 (smmu-lab's numbering; only kworker/0:1's 23 is in the seed).
fn ksoftirqd_pid(cpu: u32) -> u32 {
    12 + 7 * cpu
}

/// `kworker/N:1`'s PID: 23 on CPU 0 (the seed's first report).
fn kworker_pid(cpu: u32) -> u32 {
    23 + 2 * cpu
}

impl Exec {
    /// `ksoftirqd/N`.
    pub fn ksoftirqd(cpu: u32) -> Task {
        Task {
            cpu,
            pid: ksoftirqd_pid(cpu),
            comm: format!("ksoftirqd/{cpu}"),
        }
    }

    /// `kworker/N:1`.
    pub fn kworker(cpu: u32) -> Task {
        Task {
            cpu,
            pid: kworker_pid(cpu),
            comm: format!("kworker/{cpu}:1"),
        }
    }

    /// `swapper/N`, the idle task (PID 0).
    pub fn swapper(cpu: u32) -> Task {
        Task {
            cpu,
            pid: 0,
            comm: format!("swapper/{cpu}"),
        }
    }

    /// `task` runs on `cpu` and keeps it: the CPU takes interrupts (and runs softirqs on their
    /// exit, on top of `task`) but schedules no other task until [`Self::release_cpu`].
    ///
    /// The holder takes the CPU's interrupts at its own scheduling points
    /// ([`Self::interrupt_point`]), where its interrupts are not masked: a CPU runs one context
    /// at a time, and code that must not be re-entered by an interrupt masks them
    /// (`local_irq_save`), as arm-smmu-v3's command queue does.
    pub fn hold_cpu(&self, cpu: u32, task: Task) {
        self.cpu(cpu).lock().held_by = Some(task);
    }

    /// The holding task sleeps or reschedules: the CPU's other tasks may run.
    pub fn release_cpu(&self, cpu: u32) {
        self.cpu(cpu).lock().held_by = None;
    }

    /// Whether a task holds `cpu`.
    pub fn held(&self, cpu: u32) -> bool {
        self.cpu(cpu).lock().held_by.is_some()
    }

    /// Whether `cpu` has a task or interrupt waiting to run.
    pub fn runnable(&self, cpu: u32) -> bool {
        let c = self.cpu(cpu).lock();
        c.ksoftirqd_running || !c.works.is_empty() || c.deliverable() || !c.irq_threads.is_empty()
    }

    /// Whether `cpu` has anything to do at `now_ns`: a runnable task, a pending interrupt or
    /// an expired timer (an idle CPU sleeps in `wfi` otherwise).
    pub fn has_work(&self, cpu: u32, now_ns: u64) -> bool {
        let c = self.cpu(cpu).lock();
        c.ksoftirqd_running
            || !c.works.is_empty()
            || c.deliverable()
            || !c.irq_threads.is_empty()
            || c.timers.iter().any(|&(t, _)| t <= now_ns)
    }

    /// One scheduling decision of `cpu`. `None`: the code crashed the kernel.
    pub fn cpu_step(&self, cpu: u32, code: &dyn Code) -> Option<()> {
        let now = code.now_ns();
        let (irq, current) = {
            let mut c = self.cpu(cpu).lock();
            let expired = c.timers.iter().any(|&(t, _)| t <= now);
            if expired && !c.pending_irqs.contains(&Irq::Timer) {
                c.pending_irqs.push(Irq::Timer);
            }
            if c.held_by.is_some() {
                // The holder runs on its own thread and takes this CPU's interrupts at its own
                // scheduling points, suspended while the handler runs (`interrupt_point`). A
                // CPU runs one context at a time: taking them here too would run a handler
                // beside the very task it interrupted.
                return Some(());
            }
            let irq = if c.irqs_masked == 0 {
                c.next_irq()
            } else {
                None
            };
            // The task the interrupt lands on: the runnable one, or the idle task.
            let current = if c.ksoftirqd_running {
                Self::ksoftirqd(cpu)
            } else if !c.works.is_empty() {
                Self::kworker(cpu)
            } else {
                Self::swapper(cpu)
            };
            (irq, current)
        };
        if let Some(irq) = irq {
            return self.take_irq(cpu, irq, current, code, true);
        }
        if self.cpu(cpu).lock().held_by.is_some() {
            // The holder runs (on its own thread); nothing else is scheduled here.
            return Some(());
        }
        // A woken irq thread runs before the CPU's normal kthreads (SCHED_FIFO).
        let woken = self.cpu(cpu).lock().irq_threads.first().copied();
        if let Some(line) = woken {
            if let Some(mut t) = self.irq_thread_of(line) {
                t.cpu = cpu;
                return self.run_irq_thread(cpu, line, t, code);
            }
        }
        let (ksoftirqd, work) = {
            let mut c = self.cpu(cpu).lock();
            let resched = std::mem::take(&mut c.need_resched);
            let work = if !c.works.is_empty() && (resched || !c.ksoftirqd_running) {
                Some(c.works.remove(0))
            } else {
                None
            };
            (c.ksoftirqd_running && work.is_none(), work)
        };
        if let Some(w) = work {
            self.cpu(cpu).lock().stats.works += 1;
            return code.run_work(self, w, &Context::Worker(Self::kworker(cpu)));
        }
        if ksoftirqd {
            // run_ksoftirqd: one __do_softirq pass, then cond_resched.
            self.cpu(cpu).lock().stats.softirq_in_ksoftirqd += 1;
            let ctx = Context::Ksoftirqd(Self::ksoftirqd(cpu));
            let done = self.do_softirq(cpu, &ctx, code)?;
            if done {
                self.cpu(cpu).lock().ksoftirqd_running = false;
            }
            return Some(());
        }
        code.advance_ns(IDLE_NS);
        Some(())
    }

    /// The kthread running on `cpu`'s facade thread now (for interrupts it takes).
    pub fn running_kthread(&self, cpu: u32) -> Task {
        if self.cpu(cpu).lock().ksoftirqd_running {
            Self::ksoftirqd(cpu)
        } else {
            Self::kworker(cpu)
        }
    }
}
