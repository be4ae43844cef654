//! Fault interrupt handlers with Linux's exact messages and rate limiting (reference §10).

use crate::driver::FaultHandler;
use crate::hw::Hw;
use crate::io::Page;
use crate::params::DISABLE_BYPASS_BY_DEFAULT;
use klog::Level;
use smmu_arch::regs::{cb, fsr, fsynr0, gfsr, gr0, gr1};
use smmu_arch::{Access, IrqReturn};
use smmu_sync::{sched_point, Point};

/// Linux `arm_smmu_global_fault`. The first line's choice depends on the build-time default of
/// `disable_bypass`, not the runtime value, as in Linux. Both lines are printed at error level
/// with the device prefix; the second starts with a real TAB (the seed log shows it as plain
/// text because the log capture dropped the whitespace).
pub(crate) fn global_fault(hw: &Hw) -> IrqReturn {
    sched_point(Point::Irq);
    let io = &hw.io;
    let g = io.read(Page::Gr0, gr0::SGFSR);
    let s0 = io.read(Page::Gr0, gr0::SGFSYNR0);
    let s1 = io.read(Page::Gr0, gr0::SGFSYNR1);
    let s2 = io.read(Page::Gr0, gr0::SGFSYNR2);
    if g == 0 {
        return IrqReturn::None;
    }
    if hw.limits.global_fault.allow(hw.log.now_ns()) {
        if DISABLE_BYPASS_BY_DEFAULT && g & gfsr::USF != 0 {
            hw.print(
                Level::Err,
                &format!(
                    "Blocked unknown Stream ID 0x{:x}; boot with \"arm-smmu.disable_bypass=0\" to allow, but this may have security implications",
                    s1 as u16
                ),
            );
        } else {
            hw.print(Level::Err, "Unexpected global fault, this could be serious");
        }
        hw.print(
            Level::Err,
            &format!(
                "\tGFSR 0x{g:08x}, GFSYNR0 0x{s0:08x}, GFSYNR1 0x{s1:08x}, GFSYNR2 0x{s2:08x}"
            ),
        );
    }
    io.write(Page::Gr0, gr0::SGFSR, g);
    IrqReturn::Handled
}

/// Linux v6.1 `arm_smmu_context_fault` for bank `idx`: report to the domain's handler; print the
/// rate-limited line when the domain has none (Linux's -ENOSYS case); clear FSR.
pub(crate) fn context_fault(hw: &Hw, idx: u32, handler: Option<&FaultHandler>) -> IrqReturn {
    sched_point(Point::Irq);
    let io = &hw.io;
    let page = Page::Cb(idx);
    let f = io.read(page, cb::FSR);
    if f & fsr::FAULT == 0 {
        return IrqReturn::None;
    }
    let fsynr = io.read(page, cb::FSYNR0);
    let iova = io.readq(page, cb::FAR);
    let cbfrsynra = io.read(Page::Gr1, gr1::cbfrsynra(idx));
    let access = if fsynr & fsynr0::WNR != 0 {
        Access::Write
    } else {
        Access::Read
    };
    if let Some(h) = handler {
        h(iova, access);
    }
    if handler.is_none() && hw.limits.context_fault.allow(hw.log.now_ns()) {
        hw.print(
            Level::Err,
            &format!(
                "Unhandled context fault: fsr=0x{f:x}, iova=0x{iova:08x}, fsynr=0x{fsynr:x}, cbfrsynra=0x{cbfrsynra:x}, cb={idx}"
            ),
        );
    }
    io.write(page, cb::FSR, f);
    IrqReturn::Handled
}
