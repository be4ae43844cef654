//! Interrupts: GIC routing to one CPU, `local_irq_save`, the hardirq and its `irq_exit`, and
//! the entropy pool the interrupt timings feed.

use super::softirq::TIMER_SOFTIRQ;
use super::{Code, Context, Exec, Task};

/// An interrupt the GIC delivers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Irq {
    /// The arch timer's PPI (per CPU).
    Timer,
    /// An SPI or MSI, by the machine's number for it.
    Line(u32),
}

impl Exec {
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
            if c.irqs_masked > 0 || c.in_hardirq {
                return Some(());
            }
            let Some(irq) = c.next_irq() else {
                return Some(());
            };
            (irq, softirq_on_exit && !c.in_softirq)
        };
        let (irq, softirq_on_exit) = irq;
        self.take_irq(cpu, irq, current.clone(), code, softirq_on_exit)
    }

    /// A hardirq on top of `current`, then `irq_exit`.
    pub(super) fn take_irq(
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
            Irq::Line(n) if self.irq_thread_of(n).is_some() => self.wake_irq_thread(cpu, n),
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
}

/// One round of a 64-bit mixer (SplitMix64's finaliser over the pool and the input).
fn mix(pool: u64, input: u64) -> u64 {
    let mut z = pool.rotate_left(17) ^ input;
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
