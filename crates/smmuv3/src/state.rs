//! The model's state behind its one lock: registers, caches, counters, and the interrupts raised
//! while the lock was held (delivered once it is released).

use crate::config::SmmuV3Config;
use crate::tlb::{ConfigCache, Tlb};
use crate::SmmuV3Counters;
use physmem::{PhysAddr, PhysMem};
use smmuv3_arch::regs::{cr0, gbpa, gerror, irq_cfg, irq_ctrl, q_base, q_idx};
use smmuv3_arch::{queue, IrqLine};

/// A circular queue's registers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct QueueRegs {
    pub base: u64,
    pub prod: u32,
    pub cons: u32,
    /// IRQ_CFG0 (MSI address), CFG1 (data), CFG2 (attributes).
    pub irq_cfg0: u64,
    pub irq_cfg1: u32,
    pub irq_cfg2: u32,
}

impl QueueRegs {
    /// log2 of the entries, capped at the implementation's maximum `max`.
    pub fn log2size(&self, max: u32) -> u32 {
        ((self.base & q_base::LOG2SIZE_MASK) as u32).min(max)
    }

    /// The queue's base address: Q_BASE's address field (the register itself stays a word).
    pub fn addr(&self) -> PhysAddr {
        PhysAddr::new(self.base & q_base::ADDR_MASK)
    }

    /// The address of entry `ptr` (a PROD or CONS value: its wrap bit is ignored) of this
    /// queue of 2^`log2size` entries of `entry_bytes` each. The address field lies below 2^52
    /// and an index times an entry size below 2^25, so the sum never wraps.
    pub fn slot(&self, ptr: u32, log2size: u32, entry_bytes: u64) -> PhysAddr {
        let at = u64::from(queue::idx(ptr, log2size)) * entry_bytes;
        PhysAddr::new(self.addr().as_u64().wrapping_add(at))
    }
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Regs {
    pub cr0: u32,
    pub cr1: u32,
    pub cr2: u32,
    pub gbpa: u32,
    pub irq_ctrl: u32,
    pub gerror: u32,
    pub gerrorn: u32,
    pub gerror_irq_cfg0: u64,
    pub gerror_irq_cfg1: u32,
    pub gerror_irq_cfg2: u32,
    pub strtab_base: u64,
    pub strtab_base_cfg: u32,
    pub cmdq: QueueRegs,
    pub evtq: QueueRegs,
    pub priq: QueueRegs,
}

#[derive(Clone)]
pub(crate) struct State {
    pub regs: Regs,
    pub tlb: Tlb,
    pub cfgc: ConfigCache,
    pub counters: SmmuV3Counters,
    /// Wired interrupts raised under the lock, delivered after it.
    pub pending: Vec<IrqLine>,
    /// Invalidations consumed but not yet in effect (with `inval_latency`): the command and the
    /// transactions left before it completes on its own.
    pub inval_pending: Vec<(smmuv3_arch::cmd::Command, u32)>,
}

impl State {
    pub fn new(c: &SmmuV3Config) -> Self {
        let mut s = State {
            regs: Regs::default(),
            tlb: Tlb::new(c.tlb_entries),
            cfgc: ConfigCache::new(c.cfg_entries),
            counters: SmmuV3Counters::default(),
            pending: Vec::new(),
            inval_pending: Vec::new(),
        };
        s.reset(c);
        s
    }

    /// Reset values: everything 0 except GBPA and the queue sizes' maxima in the base registers.
    pub fn reset(&mut self, c: &SmmuV3Config) {
        self.regs = Regs {
            gbpa: c.gbpa_reset,
            ..Regs::default()
        };
        self.regs.cmdq.base = u64::from(c.cmdqs());
        self.regs.evtq.base = u64::from(c.evtqs());
        self.tlb = Tlb::new(c.tlb_entries);
        self.cfgc = ConfigCache::new(c.cfg_entries);
        self.inval_pending.clear();
    }

    /// Put an invalidation into effect now.
    pub fn apply_invalidation(&mut self, cmd: &smmuv3_arch::cmd::Command) {
        if self.cfgc.invalidate(cmd) {
            self.counters.cfgi += 1;
        } else if self.tlb.invalidate(cmd) {
            self.counters.tlbi += 1;
        }
    }

    /// Complete every pending invalidation (a CMD_SYNC was consumed).
    pub fn complete_invalidations(&mut self) {
        for (cmd, _) in std::mem::take(&mut self.inval_pending) {
            self.apply_invalidation(&cmd);
        }
    }

    /// One transaction's worth of time passes for pending invalidations.
    pub fn age_invalidations(&mut self) {
        if self.inval_pending.is_empty() {
            return;
        }
        let mut due = Vec::new();
        self.inval_pending.retain_mut(|(cmd, left)| {
            *left = left.saturating_sub(1);
            if *left == 0 {
                due.push(*cmd);
            }
            *left > 0
        });
        for cmd in due {
            self.apply_invalidation(&cmd);
        }
    }

    pub fn smmuen(&self) -> bool {
        self.regs.cr0 & cr0::SMMUEN != 0
    }

    pub fn gbpa_abort(&self) -> bool {
        self.regs.gbpa & gbpa::ABORT != 0
    }

    /// Global errors currently active (GERROR and GERRORN differ).
    pub fn gerror_active(&self) -> u32 {
        (self.regs.gerror ^ self.regs.gerrorn) & gerror::ERR_MASK
    }

    /// Make `bit` active (unless it already is) and signal GERROR.
    pub fn raise_gerror(&mut self, c: &SmmuV3Config, mem: &PhysMem, bit: u32) {
        if self.gerror_active() & bit != 0 {
            return;
        }
        self.regs.gerror ^= bit;
        self.counters.gerrors += 1;
        if self.regs.irq_ctrl & irq_ctrl::GERROR_IRQEN != 0 {
            let (addr, data) = (self.regs.gerror_irq_cfg0, self.regs.gerror_irq_cfg1);
            self.signal(c, mem, IrqLine::Gerror, addr, data);
        }
    }

    /// Signal an interrupt: an MSI write of `data` to `addr` when MSIs are implemented and the
    /// address is set, otherwise the wired line. A failed MSI write is a GERROR of its own.
    pub fn signal(&mut self, c: &SmmuV3Config, mem: &PhysMem, line: IrqLine, addr: u64, data: u32) {
        // The MSI target is the register word's address field.
        let addr = PhysAddr::new(addr & irq_cfg::ADDR_MASK);
        if c.msi() && addr != PhysAddr::ZERO {
            self.counters.msis += 1;
            if mem.write_u32(addr, data).is_err() {
                let bit = match line {
                    IrqLine::Eventq => gerror::MSI_EVTQ_ABT_ERR,
                    IrqLine::Priq => gerror::MSI_PRIQ_ABT_ERR,
                    IrqLine::CmdqSync => gerror::MSI_CMDQ_ABT_ERR,
                    IrqLine::Gerror => gerror::MSI_GERROR_ABT_ERR,
                };
                // A failed GERROR MSI records its bit without another signal (no recursion).
                if line == IrqLine::Gerror {
                    if self.gerror_active() & bit == 0 {
                        self.regs.gerror ^= bit;
                    }
                } else {
                    self.raise_gerror(c, mem, bit);
                }
            }
        } else {
            self.counters.wired_irqs += 1;
            self.pending.push(line);
        }
    }

    /// Mask a written PROD/CONS value to the bits a queue of 2^`log2size` keeps, plus `extra`.
    pub fn queue_ptr(v: u32, log2size: u32, extra: u32) -> u32 {
        queue::wrap_idx(v, log2size) | (v & extra)
    }

    pub fn cmdq_log2(&self, c: &SmmuV3Config) -> u32 {
        self.regs.cmdq.log2size(c.cmdqs())
    }

    pub fn evtq_log2(&self, c: &SmmuV3Config) -> u32 {
        self.regs.evtq.log2size(c.evtqs())
    }

    /// CMDQ_CONS as software reads it: index, wrap and the error code.
    pub fn cmdq_cons(&self) -> u32 {
        self.regs.cmdq.cons & (q_idx::ERR_MASK | 0x00ff_ffff)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_queue_register_decodes_to_its_address_and_slots() {
        // RWA | address | LOG2SIZE 3, as the driver writes CMDQ_BASE.
        let q = QueueRegs {
            base: q_base::RWA | 0x4000_0000 | 3,
            ..QueueRegs::default()
        };
        assert_eq!(q.addr(), PhysAddr::new(0x4000_0000));
        assert_eq!(q.log2size(19), 3);
        assert_eq!(q.log2size(2), 2, "capped at the implementation's maximum");
        // PROD 0b1011 is index 3 with the wrap bit set; commands are 16 bytes, events 32.
        assert_eq!(q.slot(0b1011, 3, 16), PhysAddr::new(0x4000_0030));
        assert_eq!(q.slot(0b0011, 3, 16), PhysAddr::new(0x4000_0030));
        assert_eq!(q.slot(0b0111, 3, 32), PhysAddr::new(0x4000_00e0));
    }
}
