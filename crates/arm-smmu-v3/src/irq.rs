//! Interrupt handlers: the event queue thread and the global error handler, printing what
//! Linux prints.

use crate::driver::ArmSmmuV3;
use crate::hw::queue_slot;
use klog::Level;
use smmuv3_arch::cmd::{Command, SyncCs, ENTRY_BYTES as CMD_ENTRY_BYTES};
use smmuv3_arch::event::ENTRY_BYTES;
use smmuv3_arch::regs::{self, gerror, q_idx};
use smmuv3_arch::{queue, IrqLine, IrqReturn};

const CERROR_STR: [&str; 4] = [
    "No error",
    "Illegal command",
    "Abort on command fetch",
    "ATC invalidate timeout",
];

impl ArmSmmuV3 {
    /// Dispatch an interrupt line to its handler as probe requests them: `gerror` a hardirq
    /// (`devm_request_irq`), the event queue's a thread function (`devm_request_threaded_irq`
    /// with no primary handler, IRQF_ONESHOT), which the caller runs in the line's irq thread.
    pub fn handle_irq(&self, line: IrqLine) -> IrqReturn {
        match line {
            IrqLine::Eventq => self.evtq_thread(),
            IrqLine::Gerror => self.gerror_handler(),
            // Linux requests no handler for priq without PRI, nor for cmdq-sync.
            IrqLine::Priq | IrqLine::CmdqSync => IrqReturn::None,
        }
    }

    /// `arm_smmu_evtq_thread`: consume every record (CONS written after each), printing each
    /// rate-limited; re-read PROD until empty; report and acknowledge an overflow.
    pub fn evtq_thread(&self) -> IrqReturn {
        let hw = &self.hw;
        let mut q = hw.evtq.lock();
        loop {
            while !queue::is_empty(q.prod, q.cons, q.shift) {
                let slot = queue_slot(q.base, q.cons, q.shift, ENTRY_BYTES);
                let evt: [u64; 4] = hw.read_words(slot);
                q.cons = queue::advance(q.cons, 1, q.shift);
                hw.io.write(regs::EVTQ_CONS, q.cons);
                // arm_smmu_handle_evt reports nothing the simulated kernel consumes (no fault
                // handlers, no stalls), so every record is dumped.
                if hw.limits.events.allow(hw.log.now_ns()) {
                    hw.print(
                        Level::Info,
                        &format!("event 0x{:02x} received:", evt[0] as u8),
                    );
                    for w in evt {
                        hw.print(Level::Info, &format!("\t0x{w:016x}"));
                    }
                }
            }
            let prod = hw.io.read(regs::EVTQ_PROD);
            if (prod ^ q.prod) & q_idx::OVF != 0 {
                hw.print(Level::Err, "EVTQ overflow detected -- events lost");
            }
            q.prod = prod;
            if queue::is_empty(q.prod, q.cons, q.shift) {
                break;
            }
        }
        if (q.prod ^ q.cons) & q_idx::OVF != 0 {
            q.cons = (q.prod & q_idx::OVF) | queue::wrap_idx(q.cons, q.shift);
            hw.io.write(regs::EVTQ_CONS, q.cons);
        }
        IrqReturn::Handled
    }

    /// `arm_smmu_gerror_handler`.
    pub fn gerror_handler(&self) -> IrqReturn {
        let hw = &self.hw;
        let g = hw.io.read(regs::GERROR);
        let gn = hw.io.read(regs::GERRORN);
        let active = g ^ gn;
        if active & gerror::ERR_MASK == 0 {
            return IrqReturn::None;
        }
        hw.print(
            Level::Warning,
            &format!("unexpected global error reported (0x{active:08x}), this could be serious"),
        );
        if active & gerror::SFM_ERR != 0 {
            hw.print(Level::Err, "device has entered Service Failure Mode!");
            self.device_disable();
        }
        let warns = [
            (
                gerror::MSI_GERROR_ABT_ERR,
                Level::Warning,
                "GERROR MSI write aborted",
            ),
            (
                gerror::MSI_PRIQ_ABT_ERR,
                Level::Warning,
                "PRIQ MSI write aborted",
            ),
            (
                gerror::MSI_EVTQ_ABT_ERR,
                Level::Warning,
                "EVTQ MSI write aborted",
            ),
            (
                gerror::MSI_CMDQ_ABT_ERR,
                Level::Warning,
                "CMDQ MSI write aborted",
            ),
            (
                gerror::PRIQ_ABT_ERR,
                Level::Err,
                "PRIQ write aborted -- events may have been lost",
            ),
            (
                gerror::EVTQ_ABT_ERR,
                Level::Err,
                "EVTQ write aborted -- events may have been lost",
            ),
        ];
        for (bit, lvl, msg) in warns {
            if active & bit != 0 {
                hw.print(lvl, msg);
            }
        }
        if active & gerror::CMDQ_ERR != 0 {
            self.cmdq_skip_err();
        }
        hw.io.write(regs::GERRORN, g);
        IrqReturn::Handled
    }

    /// `arm_smmu_cmdq_skip_err`: report the error and, for an illegal command, overwrite it with
    /// a CMD_SYNC (without touching the queue's software state, which another CPU may own).
    fn cmdq_skip_err(&self) {
        let hw = &self.hw;
        let cons = hw.io.read(regs::CMDQ_CONS);
        let idx = ((cons & q_idx::ERR_MASK) >> q_idx::ERR_SHIFT) as usize;
        let what = CERROR_STR.get(idx).copied().unwrap_or("Unknown");
        hw.print(
            Level::Err,
            &format!("CMDQ error (cons 0x{cons:08x}): {what}"),
        );
        match idx {
            2 => {
                hw.print(Level::Err, "retrying command fetch");
                return;
            }
            0 | 3 => return,
            _ => {}
        }
        // Not the queue lock: the CPU whose PROD write raised this error may hold it. Base and
        // size never change after probe.
        let (base, shift) = hw.cmdq_geom;
        let slot = queue_slot(base, cons, shift, CMD_ENTRY_BYTES);
        let cmd: [u64; 2] = hw.read_words(slot);
        hw.print(Level::Err, "skipping command in error state:");
        for w in cmd {
            hw.print(Level::Err, &format!("\t0x{w:016x}"));
        }
        let sync = Command::Sync {
            cs: SyncCs::Sev,
            msh: 3,
            msiattr: 0xf,
            msidata: 0,
            msiaddr: 0,
        };
        hw.write_words(slot, &sync.encode());
    }
}
