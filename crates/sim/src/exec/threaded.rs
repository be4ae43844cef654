//! Threaded interrupts (`request_threaded_irq(irq, NULL, thread_fn, IRQF_ONESHOT, name)`): the
//! hardirq masks the line and wakes the line's irq thread, a SCHED_FIFO kthread that runs the
//! thread function on the CPU that took the hardirq and then unmasks the line.

use super::{Code, Context, Cpu, Exec, Irq, Task};

/// The first irq thread's PID, then one more per thread in request order (smmu-lab's
/// numbering: a driver probed after the per-CPU kthreads creates its irq threads then).
const IRQ_THREAD_PID_BASE: u32 = 60;
/// `TASK_COMM_LEN` - 1: the characters of a task's name that `current->comm` keeps (what an
/// Oops's `Comm:` prints).
const COMM_CHARS: usize = 15;

impl Cpu {
    /// Whether an interrupt is pending that the GIC can deliver (its line not masked).
    pub(super) fn deliverable(&self) -> bool {
        self.pending_irqs.iter().any(|&i| self.unmasked(i))
    }

    fn unmasked(&self, irq: Irq) -> bool {
        match irq {
            Irq::Line(n) => !self.oneshot_masked.contains(&n),
            Irq::Timer => true,
        }
    }

    /// The first deliverable pending interrupt, taken off the pending list.
    pub(super) fn next_irq(&mut self) -> Option<Irq> {
        let i = self.pending_irqs.iter().position(|&i| self.unmasked(i))?;
        Some(self.pending_irqs.remove(i))
    }
}

impl Exec {
    /// `request_threaded_irq(irq, NULL, thread_fn, IRQF_ONESHOT, name)` for `line`: its
    /// hardirq (the default primary handler) masks the line and wakes the line's irq thread,
    /// which runs [`Code::irq_thread`] on the CPU that took the hardirq and then unmasks the
    /// line. Returns the thread: `irq/NN-name` cut to the 15 characters `comm` keeps, where NN
    /// is the line's number here (the GIC INTID; Linux numbers it by the virq it allocated),
    /// on CPU 0 until it runs. A second request of the line returns the same thread.
    pub fn request_threaded_irq(&self, line: u32, name: &str) -> Task {
        let mut t = self.threaded.lock();
        if let Some((_, task)) = t.iter().find(|(l, _)| *l == line) {
            return task.clone();
        }
        let comm: String = format!("irq/{line}-{name}")
            .chars()
            .take(COMM_CHARS)
            .collect();
        let task = Task {
            cpu: 0,
            pid: IRQ_THREAD_PID_BASE + t.len() as u32,
            comm,
        };
        t.push((line, task.clone()));
        task
    }

    /// The irq thread of `line`, if it is threaded.
    pub(super) fn irq_thread_of(&self, line: u32) -> Option<Task> {
        let t = self.threaded.lock();
        t.iter()
            .find(|(l, _)| *l == line)
            .map(|(_, task)| task.clone())
    }

    /// `irq_default_primary_handler` of threaded `line` on `cpu`: IRQ_WAKE_THREAD, with the
    /// line masked until the thread ran (ONESHOT).
    pub(super) fn wake_irq_thread(&self, cpu: u32, line: u32) {
        let mut c = self.cpu(cpu).lock();
        c.oneshot_masked.push(line);
        if !c.irq_threads.contains(&line) {
            c.irq_threads.push(line);
        }
    }

    /// `irq_thread` on `cpu`: the line's thread function in its thread, then the line is
    /// unmasked (`irq_finalize_oneshot`).
    pub(super) fn run_irq_thread(
        &self,
        cpu: u32,
        line: u32,
        task: Task,
        code: &dyn Code,
    ) -> Option<()> {
        {
            let mut c = self.cpu(cpu).lock();
            c.irq_threads.retain(|&l| l != line);
            c.stats.irq_threads += 1;
        }
        let r = code.irq_thread(self, line, &Context::IrqThread(task));
        self.cpu(cpu).lock().oneshot_masked.retain(|&l| l != line);
        r
    }
}
