//! Fault interrupt handlers with Linux's exact messages and rate limiting (reference §10).

use crate::driver::FaultHandler;
use crate::hw::Hw;
use crate::io::Page;
use crate::kernel::ContextFaultReport;
use crate::params::DISABLE_BYPASS_BY_DEFAULT;
use klog::Level;
use smmu_arch::regs::{cb, field, fsr, fsynr0, gfsr, gr0, gr1};
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

/// Linux `arm_smmu_context_fault` for bank `idx`, as `report` says the kernel reads and prints
/// (see [`ContextFaultReport`]): report to the domain's handler; print when the domain has none
/// (Linux's -ENOSYS case), rate-limited; clear FSR by writing back the value read.
pub(crate) fn context_fault(
    hw: &Hw,
    report: ContextFaultReport,
    idx: u32,
    handler: Option<&FaultHandler>,
) -> IrqReturn {
    sched_point(Point::Irq);
    let io = &hw.io;
    let page = Page::Cb(idx);
    let info = match report {
        ContextFaultReport::OneLine => {
            let fsr = io.read(page, cb::FSR);
            if fsr & fsr::FAULT == 0 {
                return IrqReturn::None;
            }
            let fsynr0 = io.read(page, cb::FSYNR0);
            let far = io.readq(page, cb::FAR);
            let cbfrsynra = io.read(Page::Gr1, gr1::cbfrsynra(idx));
            FaultInfo {
                far,
                fsr,
                fsynr0,
                cbfrsynra,
            }
        }
        ContextFaultReport::Decoded => {
            // arm_smmu_read_context_fault_info: all four, before FSR is looked at.
            let far = io.readq(page, cb::FAR);
            let fsr = io.read(page, cb::FSR);
            let fsynr0 = io.read(page, cb::FSYNR0);
            let cbfrsynra = io.read(Page::Gr1, gr1::cbfrsynra(idx));
            if fsr & fsr::FAULT == 0 {
                return IrqReturn::None;
            }
            FaultInfo {
                far,
                fsr,
                fsynr0,
                cbfrsynra,
            }
        }
    };
    let access = if info.fsynr0 & fsynr0::WNR != 0 {
        Access::Write
    } else {
        Access::Read
    };
    if let Some(h) = handler {
        h(info.far, access);
    }
    if handler.is_none() && hw.limits.context_fault.allow(hw.log.now_ns()) {
        for line in info.report(report, idx) {
            hw.print(Level::Err, &line);
        }
    }
    io.write(page, cb::FSR, info.fsr);
    IrqReturn::Handled
}

/// The registers a context fault report is built from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FaultInfo {
    /// CB FAR (64-bit).
    pub far: u64,
    /// CB FSR.
    pub fsr: u32,
    /// CB FSYNR0.
    pub fsynr0: u32,
    /// GR1 CBFRSYNRA of the bank.
    pub cbfrsynra: u32,
}

/// `" NAME"` when `bit` is set in `v`, else empty (`pre` puts the space after instead).
fn flag(v: u32, bit: u32, name: &str, pre: bool) -> String {
    match (v & bit != 0, pre) {
        (false, _) => String::new(),
        (true, true) => format!(" {name}"),
        (true, false) => format!("{name} "),
    }
}

impl FaultInfo {
    /// The lines Linux prints for an unhandled fault of bank `idx` (without device prefix).
    pub fn report(&self, report: ContextFaultReport, idx: u32) -> Vec<String> {
        let FaultInfo {
            far,
            fsr: f,
            fsynr0: s,
            cbfrsynra,
        } = *self;
        let mut lines = vec![format!(
            "Unhandled context fault: fsr=0x{f:x}, iova=0x{far:08x}, fsynr=0x{s:x}, cbfrsynra=0x{cbfrsynra:x}, cb={idx}"
        )];
        if report == ContextFaultReport::Decoded {
            lines.push(format!(
                "FSR    = {f:08x} [{}{}Format={}{}{}{}{}{}{}{}{}], SID=0x{cbfrsynra:x}",
                flag(f, fsr::MULTI, "MULTI", false),
                flag(f, fsr::SS, "SS", false),
                field(f, fsr::FORMAT_SHIFT, fsr::FORMAT_WIDTH),
                flag(f, fsr::UUT, "UUT", true),
                flag(f, fsr::ASF, "ASF", true),
                flag(f, fsr::TLBLKF, "TLBLKF", true),
                flag(f, fsr::TLBMCF, "TLBMCF", true),
                flag(f, fsr::EF, "EF", true),
                flag(f, fsr::PF, "PF", true),
                flag(f, fsr::AFF, "AFF", true),
                flag(f, fsr::TF, "TF", true),
            ));
            lines.push(format!(
                "FSYNR0 = {s:08x} [S1CBNDX={}{}{}{}{}{}{} PLVL={}]",
                field(s, fsynr0::S1CBNDX_SHIFT, fsynr0::S1CBNDX_WIDTH),
                flag(s, fsynr0::AFR, "AFR", true),
                flag(s, fsynr0::PTWF, "PTWF", true),
                flag(s, fsynr0::NSATTR, "NSATTR", true),
                flag(s, fsynr0::IND, "IND", true),
                flag(s, fsynr0::PNU, "PNU", true),
                flag(s, fsynr0::WNR, "WNR", true),
                field(s, fsynr0::PLVL_SHIFT, fsynr0::PLVL_WIDTH),
            ));
        }
        lines
    }
}
