//! Consuming the command queue.
//!
//! The SMMU consumes whenever CR0.CMDQEN is set, no command error is active (GERROR.CMDQ_ERR
//! equal to GERRORN.CMDQ_ERR) and CONS differs from PROD. Commands take effect in order, at
//! once: by the time a CMD_SYNC is consumed every earlier invalidation is complete, so the sync
//! completes (MSI write, SEV or wired interrupt) as it is consumed. An illegal command, or a
//! command that cannot be fetched, stops consumption with CONS pointing at it, CONS.ERR holding
//! the CERROR code and GERROR.CMDQ_ERR active, until software acknowledges through GERRORN.

use crate::config::SmmuV3Config;
use crate::state::State;
use crate::strtab;
use physmem::PhysMem;
use smmuv3_arch::cmd::{Cerror, CmdError, Command, SyncCs, ENTRY_BYTES};
use smmuv3_arch::regs::{cr0, gerror, q_idx};
use smmuv3_arch::{queue, IrqLine};
use std::sync::Arc;

impl State {
    pub(crate) fn consume_commands(&mut self, c: &SmmuV3Config, mem: &PhysMem) {
        if self.regs.cr0 & cr0::CMDQEN == 0 {
            return;
        }
        let log2 = self.cmdq_log2(c);
        // Bounded by the queue size: a full queue is consumed once, never looped over.
        for _ in 0..=(1u32 << log2) {
            if self.gerror_active() & gerror::CMDQ_ERR != 0 {
                return;
            }
            let q = self.regs.cmdq;
            if queue::is_empty(q.prod, q.cons, log2) {
                return;
            }
            let slot = q.slot(q.cons, log2, ENTRY_BYTES);
            let words = match (
                mem.load_word(slot),
                slot.checked_add(8).and_then(|a| mem.load_word(a)),
            ) {
                (Some(a), Some(b)) => [a, b],
                _ => {
                    self.command_error(c, mem, Cerror::Abort);
                    return;
                }
            };
            match Command::decode(words, c.range_inv()) {
                Ok(cmd) => self.execute(c, mem, &cmd),
                Err(CmdError::Illegal { .. }) => {
                    self.command_error(c, mem, Cerror::Illegal);
                    return;
                }
            }
            let cons = self.regs.cmdq.cons;
            self.regs.cmdq.cons = queue::advance(cons & !q_idx::ERR_MASK, 1, log2);
            self.counters.commands += 1;
        }
    }

    fn command_error(&mut self, c: &SmmuV3Config, mem: &PhysMem, code: Cerror) {
        self.counters.command_errors += 1;
        let cons = self.regs.cmdq.cons & !q_idx::ERR_MASK;
        self.regs.cmdq.cons = cons | ((code as u32) << q_idx::ERR_SHIFT);
        self.raise_gerror(c, mem, gerror::CMDQ_ERR);
    }

    fn execute(&mut self, c: &SmmuV3Config, mem: &PhysMem, cmd: &Command) {
        let is_inval = matches!(
            cmd,
            Command::CfgiSte { .. }
                | Command::CfgiSteRange { .. }
                | Command::CfgiCd { .. }
                | Command::CfgiCdAll { .. }
                | Command::TlbiNhAll { .. }
                | Command::TlbiNhAsid { .. }
                | Command::TlbiNhVa { .. }
                | Command::TlbiNhVaa { .. }
                | Command::TlbiEl2All
                | Command::TlbiS12Vmall { .. }
                | Command::TlbiS2Ipa { .. }
                | Command::TlbiNsnhAll
        );
        if is_inval {
            match c.inval_latency {
                Some(n) if n > 0 => self.inval_pending.push((*cmd, n)),
                _ => self.apply_invalidation(cmd),
            }
            return;
        }
        match *cmd {
            Command::PrefetchConfig { sid } | Command::PrefetchAddr { sid, .. } => {
                // A prefetch fills the configuration cache; its errors are not reported.
                let regs = self.strtab_regs();
                if let Ok(cfg) = strtab::fetch(c, mem, regs, sid) {
                    self.cfgc.insert(sid, Arc::new(cfg));
                }
            }
            Command::Sync {
                cs,
                msidata,
                msiaddr,
                ..
            } => {
                // Every earlier invalidation is complete before the sync signals.
                self.complete_invalidations();
                self.counters.syncs += 1;
                match cs {
                    SyncCs::None => {}
                    SyncCs::Sev => self.counters.sevs += u64::from(c.sev()),
                    SyncCs::Irq => self.signal(c, mem, IrqLine::CmdqSync, msiaddr, msidata),
                }
            }
            // Every other variant was handled by one of the caches above.
            _ => {}
        }
    }
}
