//! The hardware handle every part of the driver shares: register accessor, probed
//! configuration, kernel log with the device prefix, rate limiters, and the TLB sync loop.

use crate::config::SmmuConfig;
use crate::io::{Page, SmmuIo};
use crate::params::ModuleParams;
use klog::{dev_line, Level, Printk, RateLimit, RateLimitSnapshot, RateLimitSnapshotError};
use smmu_arch::regs::{cb, gr0, tlbstatus};
use smmu_sync::{Arc, SpinLockIrq};

/// Linux's rate-limit states, one per call site, shareable by several SMMU instances (Linux's
/// are `static`, so every instance shares them). Put one `Arc` into every SMMU of a machine.
#[derive(Default)]
pub struct RateLimits {
    /// `arm_smmu_global_fault`'s two lines.
    pub global_fault: RateLimit,
    /// `Unhandled context fault: …`.
    pub context_fault: RateLimit,
    /// `TLB sync timed out -- SMMU may be deadlocked`.
    pub tlb_sync: RateLimit,
}

/// The state of every limiter of a [`RateLimits`] at one moment ([`RateLimits::snapshot`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimitsSnapshot {
    global_fault: RateLimitSnapshot,
    context_fault: RateLimitSnapshot,
    tlb_sync: RateLimitSnapshot,
}

impl RateLimits {
    /// Every limiter's state now.
    pub fn snapshot(&self) -> RateLimitsSnapshot {
        RateLimitsSnapshot {
            global_fault: self.global_fault.snapshot(),
            context_fault: self.context_fault.snapshot(),
            tlb_sync: self.tlb_sync.snapshot(),
        }
    }

    /// Put every limiter's state of `s` back. Refused, changing nothing, when a limiter's
    /// interval or burst differs from the snapshot's.
    pub fn restore(&self, s: &RateLimitsSnapshot) -> Result<(), RateLimitSnapshotError> {
        let pairs = [
            (&self.global_fault, &s.global_fault),
            (&self.context_fault, &s.context_fault),
            (&self.tlb_sync, &s.tlb_sync),
        ];
        // Check every limiter before changing any (a refused limiter changes nothing).
        for (l, snap) in pairs {
            l.snapshot_fits(snap)?;
        }
        for (l, snap) in pairs {
            l.restore(snap)?;
        }
        Ok(())
    }
}

/// TLB sync polling (reference §9.1): 10 reads per round, delays 1, 2, 4 … µs while below 1 s.
pub const TLB_SPIN_COUNT: u32 = 10;
/// Delays double while below this many microseconds.
pub const TLB_LOOP_TIMEOUT_US: u64 = 1_000_000;

pub(crate) struct Hw {
    pub io: SmmuIo,
    pub cfg: SmmuConfig,
    pub params: ModuleParams,
    pub log: Arc<dyn Printk>,
    pub prefix: String,
    pub limits: Arc<RateLimits>,
    /// Linux's `global_sync_lock`, taken with `spin_lock_irqsave`: its holder's CPU takes no
    /// interrupt until the sync is over.
    pub global_sync: SpinLockIrq<()>,
    /// What TLB maintenance "don't care" writes store ([`crate::DriverBehaviour::zero_tlbi_writes`]).
    pub tlbi_value: u32,
}

impl Hw {
    pub fn print(&self, level: Level, msg: &str) {
        self.log.printk(level, &dev_line(&self.prefix, msg));
    }

    /// Linux `__arm_smmu_tlb_sync`: write the sync register, then poll the status register in
    /// rounds. Returns false on timeout (after printing the rate-limited message). Delays are
    /// not simulated time: the loop yields instead, so a model thread can make progress.
    pub fn tlb_sync(&self, page: Page, sync: u64, status: u64) -> bool {
        self.io.write(page, sync, self.tlbi_value);
        let mut delay: u64 = 1;
        while delay < TLB_LOOP_TIMEOUT_US {
            for _ in 0..TLB_SPIN_COUNT {
                if self.io.read(page, status) & tlbstatus::SACTIVE == 0 {
                    return true;
                }
            }
            smmu_sync::thread::yield_now();
            delay *= 2;
        }
        if self.limits.tlb_sync.allow(self.log.now_ns()) {
            self.print(Level::Err, "TLB sync timed out -- SMMU may be deadlocked");
        }
        false
    }

    /// Global sync under the global sync lock.
    pub fn tlb_sync_global(&self) -> bool {
        let _g = self.global_sync.lock();
        self.tlb_sync(Page::Gr0, gr0::STLBGSYNC, gr0::STLBGSTATUS)
    }

    /// Context sync of bank `idx` (caller holds the domain's CB lock).
    pub fn tlb_sync_context(&self, idx: u32) -> bool {
        self.tlb_sync(Page::Cb(idx), cb::TLBSYNC, cb::TLBSTATUS)
    }
}
