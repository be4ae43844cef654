//! Softirqs: `__do_softirq` with its restart and time limits, deferral to `ksoftirqd`, and
//! NET_RX's `net_rx_action` polling the NAPI instances.

use super::{Code, Context, Exec, NS_PER_JIFFY};

/// `MAX_SOFTIRQ_TIME`: 2 ms.
pub const MAX_SOFTIRQ_TIME_NS: u64 = 2_000_000;
/// `MAX_SOFTIRQ_RESTART`.
pub const MAX_SOFTIRQ_RESTART: u32 = 10;
/// `netdev_budget`.
pub const NETDEV_BUDGET: usize = 300;
/// `NAPI_POLL_WEIGHT`, ENETC's weight.
pub const NAPI_WEIGHT: usize = 64;

/// Softirq numbers modelled (bits of the pending mask).
pub(super) const TIMER_SOFTIRQ: u32 = 1 << 1;
const NET_RX_SOFTIRQ: u32 = 1 << 3;

impl Exec {
    /// `napi_schedule`: put `napi` on `cpu`'s poll list and raise NET_RX.
    pub fn napi_schedule(&self, cpu: u32, napi: u32) {
        let mut c = self.cpu(cpu).lock();
        if !c.poll_list.contains(&napi) {
            c.poll_list.push(napi);
        }
        c.softirqs |= NET_RX_SOFTIRQ;
    }

    /// `__do_softirq`. `Some(true)`: nothing is left pending. With a holder on the CPU, a
    /// pending reschedule cannot happen, so it stays pending and defers to ksoftirqd.
    pub(super) fn do_softirq(&self, cpu: u32, ctx: &Context, code: &dyn Code) -> Option<bool> {
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
