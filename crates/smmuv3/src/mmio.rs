//! The register file as the bus sees it. Unimplemented offsets read as zero and ignore writes;
//! read-only registers ignore writes; nothing a driver writes can make the model panic.

use crate::config::SmmuV3Config;
use crate::state::State;
use physmem::PhysMem;
use smmuv3_arch::regs::*;

fn lo(v: u64) -> u32 {
    v as u32
}
fn hi(v: u64) -> u32 {
    (v >> 32) as u32
}
fn set_lo(r: &mut u64, v: u32) {
    *r = (*r & !0xffff_ffff) | u64::from(v);
}
fn set_hi(r: &mut u64, v: u32) {
    *r = (*r & 0xffff_ffff) | (u64::from(v) << 32);
}

impl State {
    /// A 32-bit read.
    pub(crate) fn read32(&self, c: &SmmuV3Config, off: u64) -> u32 {
        let r = &self.regs;
        match off {
            IDR0 => c.idr[0],
            IDR1 => c.idr[1],
            IDR2 => c.idr[2],
            IDR3 => c.idr[3],
            IDR4 => c.idr[4],
            IDR5 => c.idr[5],
            IIDR => c.iidr,
            AIDR => c.aidr,
            // Changes take effect at once, so the acknowledgements mirror the controls.
            CR0 | CR0ACK => r.cr0,
            CR1 => r.cr1,
            CR2 => r.cr2,
            GBPA => r.gbpa,
            IRQ_CTRL | IRQ_CTRLACK => r.irq_ctrl,
            GERROR => r.gerror,
            GERRORN => r.gerrorn,
            GERROR_IRQ_CFG1 => r.gerror_irq_cfg1,
            GERROR_IRQ_CFG2 => r.gerror_irq_cfg2,
            STRTAB_BASE_CFG => r.strtab_base_cfg,
            CMDQ_PROD => r.cmdq.prod,
            CMDQ_CONS => self.cmdq_cons(),
            EVTQ_IRQ_CFG1 => r.evtq.irq_cfg1,
            EVTQ_IRQ_CFG2 => r.evtq.irq_cfg2,
            PRIQ_IRQ_CFG1 => r.priq.irq_cfg1,
            PRIQ_IRQ_CFG2 => r.priq.irq_cfg2,
            EVTQ_PROD => r.evtq.prod,
            EVTQ_CONS => r.evtq.cons,
            PRIQ_PROD => r.priq.prod,
            PRIQ_CONS => r.priq.cons,
            _ => match self.reg64(off & !7) {
                Some(v) if off & 4 == 0 => lo(v),
                Some(v) => hi(v),
                None => 0,
            },
        }
    }

    fn reg64(&self, off: u64) -> Option<u64> {
        let r = &self.regs;
        Some(match off {
            GERROR_IRQ_CFG0 => r.gerror_irq_cfg0,
            STRTAB_BASE => r.strtab_base,
            CMDQ_BASE => r.cmdq.base,
            EVTQ_BASE => r.evtq.base,
            EVTQ_IRQ_CFG0 => r.evtq.irq_cfg0,
            PRIQ_BASE => r.priq.base,
            PRIQ_IRQ_CFG0 => r.priq.irq_cfg0,
            _ => return None,
        })
    }

    fn reg64_mut(&mut self, off: u64) -> Option<&mut u64> {
        let r = &mut self.regs;
        Some(match off {
            GERROR_IRQ_CFG0 => &mut r.gerror_irq_cfg0,
            STRTAB_BASE => &mut r.strtab_base,
            CMDQ_BASE => &mut r.cmdq.base,
            EVTQ_BASE => &mut r.evtq.base,
            EVTQ_IRQ_CFG0 => &mut r.evtq.irq_cfg0,
            PRIQ_BASE => &mut r.priq.base,
            PRIQ_IRQ_CFG0 => &mut r.priq.irq_cfg0,
            _ => return None,
        })
    }

    pub(crate) fn read64(&self, c: &SmmuV3Config, off: u64) -> u64 {
        match self.reg64(off) {
            Some(v) => v,
            None => {
                u64::from(self.read32(c, off))
                    | (u64::from(self.read32(c, off.wrapping_add(4))) << 32)
            }
        }
    }

    pub(crate) fn write64(&mut self, c: &SmmuV3Config, mem: &PhysMem, off: u64, v: u64) {
        if self.reg64(off).is_some() {
            self.write32(c, mem, off, lo(v));
            self.write32(c, mem, off + 4, hi(v));
        } else {
            self.write32(c, mem, off, lo(v));
            self.write32(c, mem, off.wrapping_add(4), hi(v));
        }
    }

    /// A 32-bit write.
    pub(crate) fn write32(&mut self, c: &SmmuV3Config, mem: &PhysMem, off: u64, v: u32) {
        let cmdq_log2 = self.cmdq_log2(c);
        let evtq_log2 = self.evtq_log2(c);
        let enabled = self.regs.cr0;
        match off {
            CR0 => {
                self.regs.cr0 = v & cr0::MASK;
                self.consume_commands(c, mem);
            }
            CR1 => self.regs.cr1 = v & 0xfff,
            CR2 => self.regs.cr2 = v & 0x7,
            // A GBPA write without UPDATE is ignored (SMMUv3.2 and later's only permitted
            // behaviour); with it, the new value is in force by the time UPDATE reads 0.
            GBPA if v & gbpa::UPDATE != 0 => self.regs.gbpa = v & gbpa::MASK,
            IRQ_CTRL => self.regs.irq_ctrl = v & irq_ctrl::MASK,
            GERRORN => {
                self.regs.gerrorn = v & gerror::ERR_MASK;
                // Acknowledging CMDQ_ERR lets consumption resume from CONS.
                if self.gerror_active() & gerror::CMDQ_ERR == 0 {
                    self.regs.cmdq.cons &= !q_idx::ERR_MASK;
                    self.consume_commands(c, mem);
                }
            }
            GERROR_IRQ_CFG1 => self.regs.gerror_irq_cfg1 = v,
            GERROR_IRQ_CFG2 => self.regs.gerror_irq_cfg2 = v & 0x3f,
            STRTAB_BASE_CFG => self.regs.strtab_base_cfg = v & 0x3_07ff,
            CMDQ_PROD => {
                self.regs.cmdq.prod = State::queue_ptr(v, cmdq_log2, 0);
                self.consume_commands(c, mem);
            }
            // Software may move CONS only while the queue is disabled.
            CMDQ_CONS if enabled & cr0::CMDQEN == 0 => {
                self.regs.cmdq.cons = State::queue_ptr(v, cmdq_log2, 0)
            }
            EVTQ_PROD if enabled & cr0::EVTQEN == 0 => {
                self.regs.evtq.prod = State::queue_ptr(v, evtq_log2, q_idx::OVF)
            }
            EVTQ_CONS => self.regs.evtq.cons = State::queue_ptr(v, evtq_log2, q_idx::OVF),
            EVTQ_IRQ_CFG1 => self.regs.evtq.irq_cfg1 = v,
            EVTQ_IRQ_CFG2 => self.regs.evtq.irq_cfg2 = v & 0x3f,
            PRIQ_PROD if enabled & cr0::PRIQEN == 0 => self.regs.priq.prod = v,
            PRIQ_CONS => self.regs.priq.cons = v,
            PRIQ_IRQ_CFG1 => self.regs.priq.irq_cfg1 = v,
            PRIQ_IRQ_CFG2 => self.regs.priq.irq_cfg2 = v & 0x3f,
            _ => {
                let base_off = off & !7;
                // Base registers may only change while their queue or table is disabled.
                let locked = match base_off {
                    CMDQ_BASE => enabled & cr0::CMDQEN != 0,
                    EVTQ_BASE => enabled & cr0::EVTQEN != 0,
                    PRIQ_BASE => enabled & cr0::PRIQEN != 0,
                    STRTAB_BASE => enabled & cr0::SMMUEN != 0,
                    _ => false,
                };
                if locked {
                    return;
                }
                if let Some(r) = self.reg64_mut(base_off) {
                    if off & 4 == 0 {
                        set_lo(r, v)
                    } else {
                        set_hi(r, v)
                    }
                }
            }
        }
    }
}
