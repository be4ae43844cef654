//! Register access: every access is a scheduling point (a CPU can be preempted between MMIO
//! accesses), and one place applies the register window.

use smmu_sync::{sched_point, Arc, Point};
use smmuv3_arch::Mmio;

#[derive(Clone)]
pub struct Io {
    mmio: Arc<dyn Mmio>,
}

/// How many times a poll re-reads before giving up (Linux: 1 s of udelay-doubling polls; the
/// simulation has no time, so a bound on reads with a yield between them).
pub const POLL_READS: u32 = 1000;

impl Io {
    pub fn new(mmio: Arc<dyn Mmio>) -> Self {
        Io { mmio }
    }

    pub fn read(&self, off: u64) -> u32 {
        sched_point(Point::Mmio);
        self.mmio.read32(off)
    }

    pub fn write(&self, off: u64, v: u32) {
        sched_point(Point::Mmio);
        self.mmio.write32(off, v)
    }

    pub fn writeq(&self, off: u64, v: u64) {
        sched_point(Point::Mmio);
        self.mmio.write64(off, v)
    }

    /// Read `off` until `done` holds; the last value read, or `Err` with it after the bound.
    pub fn poll(&self, off: u64, done: impl Fn(u32) -> bool) -> Result<u32, u32> {
        let mut v = 0;
        for i in 0..POLL_READS {
            v = self.read(off);
            if done(v) {
                return Ok(v);
            }
            if i % 10 == 9 {
                smmu_sync::thread::yield_now();
            }
        }
        Err(v)
    }

    /// `arm_smmu_write_reg_sync`: write, then poll the acknowledgement until it matches.
    pub fn write_sync(&self, off: u64, ack: u64, v: u32) -> bool {
        self.write(off, v);
        self.poll(ack, |r| r == v).is_ok()
    }
}
