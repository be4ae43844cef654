//! The workqueue and its timers: delayed work armed on the simulated clock, a kworker woken
//! when its timer expires (TIMER_SOFTIRQ) or its sleeping work is woken.

use super::Exec;

impl Exec {
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

    /// TIMER_SOFTIRQ: expired delayed-work timers queue their work and wake the kworker.
    pub(super) fn run_timers(&self, cpu: u32, now: u64) {
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
}
