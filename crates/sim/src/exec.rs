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
//!    `ksoftirqd_running()` check);
//! 2. an expired timer raises the timer interrupt (the arch timer's PPI);
//! 3. otherwise the scheduler picks a runnable task: a woken kworker first when the running
//!    softirq asked for a reschedule, then `ksoftirqd/N`, then `kworker/N:M`; with nothing
//!    runnable the CPU idles (`swapper/N`) and simulated time passes.
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

use smmu_sync::Mutex;

/// The ticks of the simulated jiffies clock (HZ=250, arm64 defconfig).
pub const NS_PER_JIFFY: u64 = 4_000_000;
/// `MAX_SOFTIRQ_TIME`: 2 ms.
pub const MAX_SOFTIRQ_TIME_NS: u64 = 2_000_000;
/// `MAX_SOFTIRQ_RESTART`.
pub const MAX_SOFTIRQ_RESTART: u32 = 10;
/// `netdev_budget`.
pub const NETDEV_BUDGET: usize = 300;
/// `NAPI_POLL_WEIGHT`, ENETC's weight.
pub const NAPI_WEIGHT: usize = 64;
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
}

impl Context {
    /// The task the context runs in (`current`).
    pub fn task(&self) -> &Task {
        match self {
            Context::Hardirq(t)
            | Context::SoftirqOnIrqExit(t)
            | Context::Ksoftirqd(t)
            | Context::Worker(t)
            | Context::Process(t) => t,
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

/// An interrupt the GIC delivers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Irq {
    /// The arch timer's PPI (per CPU).
    Timer,
    /// An SPI or MSI, by the machine's number for it.
    Line(u32),
}

/// Who takes the interrupts of a CPU that a task holds ([`Exec::hold_cpu_with`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum HeldIrqs {
    /// The holder, at its own scheduling points, suspended while the handler runs: a CPU runs
    /// one context at a time (the SMMUv2 machine).
    #[default]
    AtHolderPoints,
    /// The CPU's actor, on top of the holder. The SMMUv3 machine uses this because the
    /// arm-smmu-v3 model has no interrupt mask around its command-queue lock (Linux holds it
    /// with interrupts off), so an interrupt taken at the holder's points could re-enter it.
    ByCpuActor,
}

/// Softirq numbers modelled (bits of the pending mask).
const TIMER_SOFTIRQ: u32 = 1 << 1;
const NET_RX_SOFTIRQ: u32 = 1 << 3;

/// The kernel code `exec` runs.
pub trait Code {
    /// The handler of `line`, in hardirq context. A NAPI instance it schedules is reported by
    /// calling [`Exec::napi_schedule`].
    fn hardirq(&self, exec: &Exec, line: u32, ctx: &Context);
    /// The poll function of NAPI instance `napi` with `budget`; returns the work done.
    fn napi_poll(&self, exec: &Exec, napi: u32, budget: usize, ctx: &Context) -> Option<usize>;
    /// Work item `work`, in a kworker.
    fn run_work(&self, exec: &Exec, work: u32, ctx: &Context) -> Option<()>;
    /// The simulated clock.
    fn now_ns(&self) -> u64;
    /// Let simulated time pass.
    fn advance_ns(&self, ns: u64);
}

/// One CPU's state.
#[derive(Debug, Default)]
struct Cpu {
    /// Interrupts pending at the GIC for this CPU.
    pending_irqs: Vec<Irq>,
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
    /// `kernel_restart` does not reschedule until it sleeps); interrupts are still taken.
    held_by: Option<Task>,
    /// Who takes a held CPU's interrupts: the holder at its own scheduling points, or the
    /// CPU's actor on top of the holder.
    held_irqs: HeldIrqs,
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
}

/// The CPUs of a machine and what runs on them.
pub struct Exec {
    cpus: Vec<Mutex<Cpu>>,
    /// The entropy pool, fed by interrupt timings (`add_interrupt_randomness`).
    entropy: Mutex<u64>,
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
    /// `cpus` CPUs (at least one).
    pub fn new(cpus: u32) -> Exec {
        Exec {
            cpus: (0..cpus.max(1))
                .map(|_| Mutex::new(Cpu::default()))
                .collect(),
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
    /// ([`HeldIrqs::AtHolderPoints`]): a CPU runs one context at a time.
    pub fn hold_cpu(&self, cpu: u32, task: Task) {
        self.hold_cpu_with(cpu, task, HeldIrqs::AtHolderPoints);
    }

    /// As [`Self::hold_cpu`], with the way the held CPU's interrupts are taken spelled out.
    pub fn hold_cpu_with(&self, cpu: u32, task: Task, irqs: HeldIrqs) {
        let mut c = self.cpu(cpu).lock();
        c.held_by = Some(task);
        c.held_irqs = irqs;
    }

    /// Whether a task holds `cpu` and takes its interrupts at its own scheduling points.
    pub fn holder_takes_irqs(&self, cpu: u32) -> bool {
        let c = self.cpu(cpu).lock();
        c.held_by.is_some() && c.held_irqs == HeldIrqs::AtHolderPoints
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
        c.ksoftirqd_running || !c.works.is_empty() || !c.pending_irqs.is_empty()
    }

    /// Whether `cpu` has anything to do at `now_ns`: a runnable task, a pending interrupt or
    /// an expired timer (an idle CPU sleeps in `wfi` otherwise).
    pub fn has_work(&self, cpu: u32, now_ns: u64) -> bool {
        let c = self.cpu(cpu).lock();
        c.ksoftirqd_running
            || !c.works.is_empty()
            || !c.pending_irqs.is_empty()
            || c.timers.iter().any(|&(t, _)| t <= now_ns)
    }

    /// `get_random_u32_below(n)`: from the entropy pool, which interrupt timings feed, so the
    /// value depends on when interrupts came, i.e. on the interleaving.
    pub fn get_random_below(&self, n: u64) -> u64 {
        let mut e = self.entropy.lock();
        *e = mix(*e, 0x243f_6a88_85a3_08d3);
        if n == 0 {
            0
        } else {
            *e % n
        }
    }

    /// The GIC raises `irq` at `cpu` (SPIs and MSIs are routed to one CPU).
    pub fn raise_irq(&self, cpu: u32, irq: Irq) {
        let mut c = self.cpu(cpu).lock();
        if !c.pending_irqs.contains(&irq) {
            c.pending_irqs.push(irq);
        }
    }

    /// `local_irq_save` on `cpu`.
    pub fn local_irq_save(&self, cpu: u32) {
        self.cpu(cpu).lock().irqs_masked += 1;
    }

    /// `local_irq_restore` on `cpu`.
    pub fn local_irq_restore(&self, cpu: u32) {
        let mut c = self.cpu(cpu).lock();
        c.irqs_masked = c.irqs_masked.saturating_sub(1);
    }

    /// `napi_schedule`: put `napi` on `cpu`'s poll list and raise NET_RX.
    pub fn napi_schedule(&self, cpu: u32, napi: u32) {
        let mut c = self.cpu(cpu).lock();
        if !c.poll_list.contains(&napi) {
            c.poll_list.push(napi);
        }
        c.softirqs |= NET_RX_SOFTIRQ;
    }

    /// `queue_delayed_work_on(cpu, …, delay)`: arm a timer that queues `work` at `at_ns`.
    pub fn queue_delayed_work(&self, cpu: u32, work: u32, at_ns: u64) {
        let mut c = self.cpu(cpu).lock();
        if !c.timers.iter().any(|&(_, w)| w == work) && !c.works.contains(&work) {
            c.timers.push((at_ns, work));
        }
    }

    /// `wake_up` of a work item sleeping in its kworker on `cpu` (it was running when it
    /// slept): the kworker is runnable again and the work goes on.
    pub fn wake_work(&self, cpu: u32, work: u32) {
        let mut c = self.cpu(cpu).lock();
        if !c.works.contains(&work) {
            c.works.push(work);
        }
    }

    /// The earliest armed timer.
    pub fn next_timer(&self) -> Option<u64> {
        self.cpus
            .iter()
            .filter_map(|c| c.lock().timers.iter().map(|&(t, _)| t).min())
            .min()
    }

    /// What happened on `cpu`.
    pub fn stats(&self, cpu: u32) -> CpuStats {
        self.cpu(cpu).lock().stats
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
            if c.held_by.is_some() && c.held_irqs == HeldIrqs::AtHolderPoints {
                // The holder runs on its own thread and takes this CPU's interrupts at its own
                // scheduling points, suspended while the handler runs (`interrupt_point`). A
                // CPU runs one context at a time: taking them here too would run a handler
                // beside the very task it interrupted.
                return Some(());
            }
            let irq = if c.irqs_masked == 0 && !c.pending_irqs.is_empty() {
                Some(c.pending_irqs.remove(0))
            } else {
                None
            };
            // The task the interrupt lands on: the holder, the runnable one, or the idle task.
            let current = if let Some(t) = &c.held_by {
                t.clone()
            } else if c.ksoftirqd_running {
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

    /// An interrupt point inside code running on `cpu` in `current`: take one pending
    /// interrupt if the CPU's interrupts are enabled. `softirq_on_exit`: the interrupted code
    /// has bottom halves enabled (a task outside `local_bh_disable`), so `irq_exit` may run
    /// softirqs; inside softirq or a BH-disabled section it may not.
    pub fn interrupt_point(
        &self,
        cpu: u32,
        current: &Task,
        softirq_on_exit: bool,
        code: &dyn Code,
    ) -> Option<()> {
        let now = code.now_ns();
        let irq = {
            let mut c = self.cpu(cpu).lock();
            if c.timers.iter().any(|&(t, _)| t <= now) && !c.pending_irqs.contains(&Irq::Timer) {
                c.pending_irqs.push(Irq::Timer);
            }
            if c.irqs_masked > 0 || c.in_hardirq || c.pending_irqs.is_empty() {
                return Some(());
            }
            (c.pending_irqs.remove(0), softirq_on_exit && !c.in_softirq)
        };
        let (irq, softirq_on_exit) = irq;
        self.take_irq(cpu, irq, current.clone(), code, softirq_on_exit)
    }

    /// The kthread running on `cpu`'s facade thread now (for interrupts it takes).
    pub fn running_kthread(&self, cpu: u32) -> Task {
        if self.cpu(cpu).lock().ksoftirqd_running {
            Self::ksoftirqd(cpu)
        } else {
            Self::kworker(cpu)
        }
    }

    /// A hardirq on top of `current`, then `irq_exit`.
    fn take_irq(
        &self,
        cpu: u32,
        irq: Irq,
        current: Task,
        code: &dyn Code,
        softirq_on_exit: bool,
    ) -> Option<()> {
        {
            let mut c = self.cpu(cpu).lock();
            c.stats.hardirqs += 1;
            c.in_hardirq = true;
        }
        {
            let code_of = match irq {
                Irq::Timer => 1,
                Irq::Line(n) => u64::from(n) + 2,
            };
            let mut e = self.entropy.lock();
            *e = mix(*e, code.now_ns() ^ (code_of << 48));
        }
        match irq {
            Irq::Timer => {
                let mut c = self.cpu(cpu).lock();
                c.softirqs |= TIMER_SOFTIRQ;
            }
            Irq::Line(n) => code.hardirq(self, n, &Context::Hardirq(current.clone())),
        }
        self.cpu(cpu).lock().in_hardirq = false;
        // irq_exit: run pending softirqs now unless ksoftirqd has them or bottom halves are
        // disabled where the interrupt came in.
        let run = softirq_on_exit && {
            let c = self.cpu(cpu).lock();
            c.softirqs != 0 && !c.ksoftirqd_running
        };
        if run {
            self.cpu(cpu).lock().stats.softirq_on_irq_exit += 1;
            self.do_softirq(cpu, &Context::SoftirqOnIrqExit(current), code)?;
        }
        Some(())
    }

    /// `__do_softirq`. `Some(true)`: nothing is left pending. With a holder on the CPU, a
    /// pending reschedule cannot happen, so it stays pending and defers to ksoftirqd.
    fn do_softirq(&self, cpu: u32, ctx: &Context, code: &dyn Code) -> Option<bool> {
        self.cpu(cpu).lock().in_softirq = true;
        let r = self.do_softirq_inner(cpu, ctx, code);
        self.cpu(cpu).lock().in_softirq = false;
        r
    }

    fn do_softirq_inner(&self, cpu: u32, ctx: &Context, code: &dyn Code) -> Option<bool> {
        let start = code.now_ns();
        let mut restarts = MAX_SOFTIRQ_RESTART;
        loop {
            let pending = std::mem::take(&mut self.cpu(cpu).lock().softirqs);
            if pending & TIMER_SOFTIRQ != 0 {
                self.run_timers(cpu, code.now_ns());
            }
            if pending & NET_RX_SOFTIRQ != 0 {
                self.net_rx_action(cpu, ctx, code)?;
            }
            // Softirq handlers run with interrupts enabled: one that came in meanwhile is
            // taken before the pending mask is read again (it may raise more softirqs).
            smmu_sync::sched_point(smmu_sync::Point::Irq);
            let (left, resched) = {
                let c = self.cpu(cpu).lock();
                (
                    c.softirqs,
                    c.need_resched || (c.held_by.is_some() && !c.works.is_empty()),
                )
            };
            if left == 0 {
                return Some(true);
            }
            restarts -= 1;
            if code.now_ns() < start + MAX_SOFTIRQ_TIME_NS && !resched && restarts > 0 {
                continue;
            }
            // wakeup_softirqd()
            let mut c = self.cpu(cpu).lock();
            if !c.ksoftirqd_running {
                c.stats.ksoftirqd_wakeups += 1;
            }
            c.ksoftirqd_running = true;
            return Some(false);
        }
    }

    /// TIMER_SOFTIRQ: expired delayed-work timers queue their work and wake the kworker.
    fn run_timers(&self, cpu: u32, now: u64) {
        let mut c = self.cpu(cpu).lock();
        let mut i = 0;
        while i < c.timers.len() {
            if c.timers[i].0 <= now {
                let (_, w) = c.timers.remove(i);
                if !c.works.contains(&w) {
                    c.works.push(w);
                }
                // The woken kworker preempts whatever runs when this softirq returns.
                c.need_resched = true;
            } else {
                i += 1;
            }
        }
    }

    /// `net_rx_action`.
    fn net_rx_action(&self, cpu: u32, ctx: &Context, code: &dyn Code) -> Option<()> {
        let time_limit = (code.now_ns() / NS_PER_JIFFY + 1) * NS_PER_JIFFY;
        let mut budget = NETDEV_BUDGET as i64;
        loop {
            let napi = {
                let c = self.cpu(cpu).lock();
                match c.poll_list.first() {
                    Some(&n) => n,
                    None => return Some(()),
                }
            };
            let work = code.napi_poll(self, napi, NAPI_WEIGHT, ctx)?;
            budget -= work as i64;
            {
                let mut c = self.cpu(cpu).lock();
                if work < NAPI_WEIGHT {
                    // napi_complete_done: off the list (the driver re-enabled its interrupt).
                    c.poll_list.retain(|&n| n != napi);
                } else if let Some(pos) = c.poll_list.iter().position(|&n| n == napi) {
                    // Used its whole weight: to the tail of the list.
                    let n = c.poll_list.remove(pos);
                    c.poll_list.push(n);
                }
                if c.poll_list.is_empty() {
                    return Some(());
                }
            }
            if budget <= 0 || code.now_ns() >= time_limit {
                let mut c = self.cpu(cpu).lock();
                c.stats.time_squeeze += 1;
                c.softirqs |= NET_RX_SOFTIRQ;
                return Some(());
            }
        }
    }
}

/// One round of a 64-bit mixer (SplitMix64's finaliser over the pool and the input).
fn mix(pool: u64, input: u64) -> u64 {
    let mut z = pool.rotate_left(17) ^ input;
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
