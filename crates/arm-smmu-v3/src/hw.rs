//! The state every part of the driver shares: register access, memory it owns, what probe
//! learned, the kernel log, and the command queue (`arm_smmu_cmdq_issue_cmdlist`).

use crate::fw::{KernelVersion, ModuleParams};
use crate::io::{Io, POLL_READS};
use crate::probe::{feat, HwInfo, CMDQ_BATCH_ENTRIES, OPT_MSIPOLL};
use klog::{dev_line, Level, Printk, RateLimit};
use physmem::{FrameAllocator, PhysAddr, PhysMem};
use smmu_sync::{Arc, Mutex};
use smmuv3_arch::cmd::{Command, SyncCs, ENTRY_BYTES};
use smmuv3_arch::queue;
use smmuv3_arch::regs::{self, irq_cfg, q_idx};

/// A queue's base and software copy of its pointers (Linux's `arm_smmu_ll_queue`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueShadow {
    pub base: PhysAddr,
    pub shift: u32,
    pub prod: u32,
    pub cons: u32,
}

impl QueueShadow {
    /// The base register value: RWA | address | LOG2SIZE.
    pub fn q_base(&self) -> u64 {
        regs::q_base::RWA | (self.base.as_u64() & regs::q_base::ADDR_MASK) | u64::from(self.shift)
    }

    /// Free slots; none when CONS is not one the queue can have (more than a queue behind).
    fn space(&self) -> u32 {
        (1u32 << self.shift).saturating_sub(queue::used(self.prod, self.cons, self.shift))
    }
}

/// The address of entry `ptr` (a PROD or CONS value: its wrap bit is ignored) of a queue of
/// 2^`shift` entries of `entry_bytes` each at `base` (Linux's `Q_ENT`). The one place this is
/// computed: the driver's command and event queues, the CMDQ error handler and the tracer.
pub(crate) fn queue_slot(base: PhysAddr, ptr: u32, shift: u32, entry_bytes: u64) -> PhysAddr {
    at(base, u64::from(queue::idx(ptr, shift)) * entry_bytes)
}

/// `pa + bytes` within memory the driver allocated (frames lie far below 2^64, so this never
/// wraps; it wraps rather than panics if a corrupt value ever made it).
pub(crate) fn at(pa: PhysAddr, bytes: u64) -> PhysAddr {
    PhysAddr::new(pa.as_u64().wrapping_add(bytes))
}

/// Linux's `static` rate-limit states of the v3 driver.
#[derive(Default)]
pub struct RateLimits {
    /// `arm_smmu_evtq_thread`'s event dump.
    pub events: RateLimit,
    /// `CMD_SYNC timeout ...`.
    pub sync_timeout: RateLimit,
}

pub(crate) struct Hw {
    pub io: Io,
    pub mem: Arc<PhysMem>,
    pub frames: Arc<FrameAllocator>,
    pub log: Arc<dyn Printk>,
    pub prefix: String,
    pub info: HwInfo,
    pub params: ModuleParams,
    pub version: KernelVersion,
    pub limits: Arc<RateLimits>,
    pub cmdq: Mutex<QueueShadow>,
    /// Command queue base and log2 size, fixed at probe.
    pub cmdq_geom: (PhysAddr, u32),
    pub evtq: Mutex<QueueShadow>,
}

/// One command-queue submission failed to complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SyncTimeout;

impl Hw {
    pub fn print(&self, level: Level, msg: &str) {
        self.log.printk(level, &dev_line(&self.prefix, msg));
    }

    /// `dma_alloc_coherent`: whole pages, zeroed.
    pub fn alloc(&self, bytes: u64) -> Option<PhysAddr> {
        // A size past 2^63 has no power of two to round to: no allocator could give it.
        let rounded = bytes.max(4096).checked_next_power_of_two()?;
        self.frames.alloc(rounded).ok()
    }

    pub fn write_words(&self, pa: PhysAddr, words: &[u64]) {
        for (i, w) in words.iter().enumerate() {
            // The driver only writes memory it allocated; a failure here is a driver bug the
            // model would see as a fetch abort, so it is not hidden but cannot happen.
            let _ = self.mem.write_u64(at(pa, 8 * i as u64), *w);
        }
    }

    pub fn read_words<const N: usize>(&self, pa: PhysAddr) -> [u64; N] {
        let mut out = [0u64; N];
        for (i, w) in out.iter_mut().enumerate() {
            *w = self.mem.read_u64(at(pa, 8 * i as u64)).unwrap_or(0);
        }
        out
    }

    fn sync_cmd(&self, q: &QueueShadow, prod: u32) -> Command {
        // With MSI polling the sync writes MSIDATA 0 over its own first word.
        let msiaddr = if self.info.options & OPT_MSIPOLL != 0 {
            queue_slot(q.base, prod, q.shift, ENTRY_BYTES).as_u64()
        } else {
            0
        };
        let cs = if msiaddr != 0 {
            SyncCs::Irq
        } else {
            SyncCs::Sev
        };
        Command::Sync {
            cs,
            msh: 3,
            msiattr: irq_cfg::MEMATTR_OIWB as u8,
            msidata: 0,
            msiaddr,
        }
    }

    /// `arm_smmu_cmdq_issue_cmdlist`: write `cmds` (plus a CMD_SYNC if `sync`) into the queue,
    /// publish them with one CMDQ_PROD write, and if syncing wait for the sync to complete
    /// (MSI write into the queue slot, or CONS moving past it).
    ///
    /// With the calling CPU's interrupts masked (`local_irq_save`) from the allocation of queue
    /// space to the end of the wait for the sync, as Linux does since 587e6c10a7ce (v5.6, the
    /// same in v6.1 and v6.12): an interrupt for this CPU that comes meanwhile is taken after,
    /// so its handler or the softirq on its exit never re-enters the queue this CPU holds. The
    /// model's queue lock stands for Linux's lock-free slot allocation and shared cmdq lock.
    pub fn issue(&self, cmds: &[Command], sync: bool) -> Result<(), SyncTimeout> {
        let n = cmds.len() as u32 + u32::from(sync);
        let mut irqs = smmu_sync::local_irq_save();
        let mut q = self.cmdq.lock();
        // Make room: Linux waits for it with interrupts on and nothing held, then masks them
        // again and retries the allocation.
        while q.space() < n {
            drop(q);
            drop(irqs);
            if !self.wait_for_room(n) {
                return Err(SyncTimeout);
            }
            irqs = smmu_sync::local_irq_save();
            q = self.cmdq.lock();
        }
        let mut prod = q.prod;
        for c in cmds {
            let slot = queue_slot(q.base, prod, q.shift, ENTRY_BYTES);
            self.write_words(slot, &c.encode());
            prod = queue::advance(prod, 1, q.shift);
        }
        let sync_at = prod;
        if sync {
            let s = self.sync_cmd(&q, prod);
            let slot = queue_slot(q.base, prod, q.shift, ENTRY_BYTES);
            self.write_words(slot, &s.encode());
            prod = queue::advance(prod, 1, q.shift);
        }
        q.prod = prod;
        self.io.write(regs::CMDQ_PROD, prod);
        if !sync {
            return Ok(());
        }
        let shift = q.shift;
        let ok = if self.info.options & OPT_MSIPOLL != 0 {
            let slot = queue_slot(q.base, sync_at, shift, ENTRY_BYTES);
            let done = (0..POLL_READS).any(|i| {
                if i % 10 == 9 {
                    smmu_sync::thread::yield_now();
                }
                self.mem.read_u32(slot).map(|w| w == 0).unwrap_or(false)
            });
            if done {
                q.cons = prod;
            }
            done
        } else {
            // queue_consumed: CONS has passed the sync.
            let r = self.io.poll(regs::CMDQ_CONS, |c| {
                let c = c & !q_idx::ERR_MASK;
                let (cw, pw) = (queue::wrp(c, shift), queue::wrp(sync_at, shift));
                let (ci, pi) = (queue::idx(c, shift), queue::idx(sync_at, shift));
                (cw == pw && ci > pi) || (cw != pw && ci <= pi)
            });
            if let Ok(c) = r {
                q.cons = c & !q_idx::ERR_MASK;
            }
            r.is_ok()
        };
        if ok {
            return Ok(());
        }
        drop(q);
        // Still masked: Linux reports the timeout before its local_irq_restore.
        if self.limits.sync_timeout.allow(self.log.now_ns()) {
            let hwprod = self.io.read(regs::CMDQ_PROD);
            let hwcons = self.io.read(regs::CMDQ_CONS);
            self.print(
                Level::Err,
                &format!("CMD_SYNC timeout at 0x{sync_at:08x} [hwprod 0x{hwprod:08x}, hwcons 0x{hwcons:08x}]"),
            );
        }
        drop(irqs);
        Err(SyncTimeout)
    }

    /// `arm_smmu_cmdq_poll_until_not_full`: refresh the queue's CONS from the hardware until
    /// `n` slots are free, each refresh with the queue held exclusively and interrupts masked
    /// (`arm_smmu_cmdq_exclusive_trylock_irqsave`), interrupts on between refreshes. `false`
    /// after as many reads as a register poll makes.
    fn wait_for_room(&self, n: u32) -> bool {
        for i in 0..POLL_READS {
            {
                let _irqs = smmu_sync::local_irq_save();
                let mut q = self.cmdq.lock();
                q.cons = self.io.read(regs::CMDQ_CONS) & !q_idx::ERR_MASK;
                if q.space() >= n {
                    return true;
                }
            }
            if i % 10 == 9 {
                smmu_sync::thread::yield_now();
            }
        }
        false
    }

    /// `arm_smmu_cmdq_issue_cmd_with_sync`.
    pub fn issue_sync(&self, cmd: Command) -> Result<(), SyncTimeout> {
        self.issue(&[cmd], true)
    }

    /// `arm_smmu_cmdq_batch_add` + `_submit`: batches of 64, the last one with a sync.
    pub fn batch_submit(&self, cmds: &[Command]) -> Result<(), SyncTimeout> {
        let chunks: Vec<&[Command]> = cmds.chunks(CMDQ_BATCH_ENTRIES as usize).collect();
        match chunks.split_last() {
            None => self.issue(&[], true),
            Some((last, rest)) => {
                for c in rest {
                    self.issue(c, false)?;
                }
                self.issue(last, true)
            }
        }
    }

    pub fn has(&self, f: u32) -> bool {
        self.info.features & f != 0
    }

    pub fn range_inv(&self) -> bool {
        self.has(feat::RANGE_INV)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_queue_slot_ignores_the_wrap_bit_and_scales_by_the_entry_size() {
        let base = PhysAddr::new(0x4000_0000);
        // 8 entries: PROD 0b1011 is index 3 with the wrap bit set.
        assert_eq!(queue_slot(base, 0b1011, 3, 16), PhysAddr::new(0x4000_0030));
        assert_eq!(queue_slot(base, 0b0011, 3, 16), PhysAddr::new(0x4000_0030));
        assert_eq!(queue_slot(base, 0b1011, 3, 32), PhysAddr::new(0x4000_0060));
        assert_eq!(queue_slot(base, 0b0111, 3, 16), PhysAddr::new(0x4000_0070));
        assert_eq!(queue_slot(base, 0, 0, 16), base);
        // QueueShadow's register word keeps only the address bits of its base.
        let q = QueueShadow {
            base: PhysAddr::new(0x4000_0000),
            shift: 3,
            prod: 0,
            cons: 0,
        };
        assert_eq!(q.q_base(), regs::q_base::RWA | 0x4000_0000 | 3);
    }
}
