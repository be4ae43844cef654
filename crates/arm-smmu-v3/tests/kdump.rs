//! A kdump kernel's probe of an SMMU the crashed kernel left enabled, in each of the three
//! releases of `arm_smmu_device_reset`'s "found enabled" path: before b63b3439b856 (reset,
//! GBPA untouched), b63b3439b856 (GBPA.ABORT, SMMU off, -EBUSY) and 3f54c447df34 (GBPA.ABORT,
//! full reset, event queue left off in a kdump kernel). The first kernel probes and attaches
//! nothing; the capture kernel probes the same model from its own memory.

mod common;

use arm_smmu_v3::{
    ArmSmmuV3, BootContext, EnabledAtProbe, FirmwareDesc, KernelVersion, ModuleParams, ProbeError,
    RateLimits, ShutdownPolicy, SmmuEnv,
};
use common::*;
use klog::MemLog;
use physmem::{FrameAllocator, PhysAddr};
use smmu_addr::Iova;
use smmuv3::{Access, Mmio, Outcome, SmmuV3Config};
use smmuv3_arch::regs::{self, cr0, gbpa};
use std::sync::Arc;

struct Capture {
    result: Result<Arc<ArmSmmuV3>, ProbeError>,
    log: Vec<String>,
    cr0: u32,
    gbpa: u32,
    sid8: Outcome,
}

fn capture(kdump: bool, at: EnabledAtProbe) -> Capture {
    let r = rig(
        SmmuV3Config::qemu_virt(),
        KernelVersion::V6_1,
        ShutdownPolicy::Linux62,
    );
    assert_ne!(r.model.read32(regs::CR0) & cr0::SMMUEN, 0);
    // The capture kernel's memory: its own reserved region.
    let frames = Arc::new(
        FrameAllocator::new(r.mem.clone(), PhysAddr::new(RAM + (64 << 20)), 64 << 20).unwrap(),
    );
    let log = Arc::new(MemLog::new());
    let env = SmmuEnv {
        mmio: r.model.clone(),
        log: log.clone(),
        frames,
        limits: Arc::new(RateLimits::default()),
    };
    let result = ArmSmmuV3::probe_booting(
        &FirmwareDesc::qemu_virt(),
        ModuleParams::default(),
        KernelVersion::V6_1,
        ShutdownPolicy::Linux62,
        env,
        BootContext {
            kdump,
            enabled_at_probe: at,
        },
    );
    Capture {
        result,
        log: log.lines(),
        cr0: r.model.read32(regs::CR0),
        gbpa: r.model.read32(regs::GBPA),
        sid8: r.model.translate(8, Iova::new(0x1000), Access::Write),
    }
}

const HEAD: [&str; 3] = [
    "ias 44-bit, oas 44-bit (features 0x00008305)",
    "allocated 262144 entries for cmdq",
    "allocated 131072 entries for evtq",
];

fn lines(tail: &[&str]) -> Vec<String> {
    prefixed(&HEAD.iter().chain(tail).copied().collect::<Vec<_>>())
}

#[test]
fn before_b63b3439b856_the_reset_leaves_gbpa_as_found() {
    let c = capture(true, EnabledAtProbe::ResetAsFound);
    assert!(c.result.is_ok());
    assert_eq!(c.log, lines(&["SMMU currently enabled! Resetting..."]));
    // QEMU's GBPA resets to bypass and nobody set ABORT: what arrived while CR0 was 0 bypassed.
    assert_eq!(c.gbpa & gbpa::ABORT, 0);
    assert_eq!(c.cr0, cr0::SMMUEN | cr0::EVTQEN | cr0::CMDQEN);
}

#[test]
fn b63b3439b856_aborts_everything_and_refuses_the_smmu() {
    let c = capture(true, EnabledAtProbe::KdumpAbortAndFail);
    let e = c.result.err().unwrap();
    assert_eq!(e, ProbeError::KdumpBusy);
    assert_eq!(e.errno(), -16);
    assert_eq!(
        e.driver_core_line("9050000.smmuv3").unwrap(),
        "arm-smmu-v3: probe of 9050000.smmuv3 failed with error -16"
    );
    // No "Resetting" line: the kdump branch returns before it.
    assert_eq!(c.log, lines(&[]));
    assert_eq!(c.cr0, 0);
    assert_ne!(c.gbpa & gbpa::ABORT, 0);
    assert!(matches!(c.sid8, Outcome::Aborted(_)), "{:?}", c.sid8);
}

#[test]
fn b63b3439b856_outside_kdump_resets_as_before() {
    let c = capture(false, EnabledAtProbe::KdumpAbortAndFail);
    assert!(c.result.is_ok());
    assert_eq!(c.log, lines(&["SMMU currently enabled! Resetting..."]));
    assert_eq!(c.gbpa & gbpa::ABORT, 0);
}

#[test]
fn f3f54c447df34_resets_behind_gbpa_abort_with_the_event_queue_off() {
    let c = capture(true, EnabledAtProbe::AbortThenReset);
    assert!(c.result.is_ok());
    assert_eq!(c.log, lines(&["SMMU currently enabled! Resetting..."]));
    assert_ne!(c.gbpa & gbpa::ABORT, 0);
    assert_eq!(c.cr0, cr0::SMMUEN | cr0::CMDQEN);
    // Not a kdump kernel (kexec): the same GBPA.ABORT, and the event queue stays on.
    let k = capture(false, EnabledAtProbe::AbortThenReset);
    assert_ne!(k.gbpa & gbpa::ABORT, 0);
    assert_eq!(k.cr0, cr0::SMMUEN | cr0::EVTQEN | cr0::CMDQEN);
}
