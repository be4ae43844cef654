//! Recording events: the event queue's write, overflow and interrupt rules.
//!
//! * Event queue disabled (CR0.EVTQEN = 0): the event is discarded.
//! * Queue full: the event is lost and EVTQ_PROD.OVFLG is toggled to differ from
//!   EVTQ_CONS.OVACKFLG (if it does not already); software acknowledges by copying OVFLG into
//!   OVACKFLG. Nothing already in the queue is overwritten.
//! * The write aborts (no memory at the slot): GERROR.EVTQ_ABT_ERR, the event is lost.
//! * Otherwise the record is written, PROD advances, and the event interrupt is signalled if
//!   IRQ_CTRL.EVTQ_IRQEN is set.

use crate::config::SmmuV3Config;
use crate::state::State;
use physmem::PhysMem;
use smmuv3_arch::event::{Event, ENTRY_BYTES};
use smmuv3_arch::regs::{cr0, gerror, irq_ctrl, q_idx};
use smmuv3_arch::{queue, IrqLine};

impl State {
    pub(crate) fn record_event(&mut self, c: &SmmuV3Config, mem: &PhysMem, e: Event) {
        if self.regs.cr0 & cr0::EVTQEN == 0 {
            self.counters.events_discarded += 1;
            return;
        }
        let log2 = self.evtq_log2(c);
        let q = self.regs.evtq;
        if queue::is_full(q.prod, q.cons, log2) {
            self.counters.events_lost += 1;
            if (q.prod ^ q.cons) & q_idx::OVF == 0 {
                self.regs.evtq.prod ^= q_idx::OVF;
                self.counters.overflows += 1;
            }
            return;
        }
        let slot = q.slot(q.prod, log2, ENTRY_BYTES);
        let words = e.encode();
        for (i, w) in words.iter().enumerate() {
            let written = slot
                .checked_add(8 * i as u64)
                .is_some_and(|a| mem.write_u64(a, *w).is_ok());
            if !written {
                self.counters.events_lost += 1;
                self.raise_gerror(c, mem, gerror::EVTQ_ABT_ERR);
                return;
            }
        }
        self.regs.evtq.prod = queue::advance(q.prod, 1, log2);
        self.counters.events += 1;
        if self.regs.irq_ctrl & irq_ctrl::EVTQ_IRQEN != 0 {
            let (addr, data) = (self.regs.evtq.irq_cfg0, self.regs.evtq.irq_cfg1);
            self.signal(c, mem, IrqLine::Eventq, addr, data);
        }
    }
}
