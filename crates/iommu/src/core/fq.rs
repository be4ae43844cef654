//! Flush-queue timers: draining every flush queue and the per-domain timer expiry.

use super::IommuCore;
use crate::ops::*;
use smmu_sync::atomic::Ordering;
use smmu_sync::{sched_point, Point};

impl IommuCore {
    /// Flush every flush queue now (flush-all, then the IOVAs return to their allocators).
    pub fn flush_queue_drain(&self) {
        for d in self.dma_domains() {
            if d.fq_poll(0, true) {
                self.counters.fq_flushes.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// The flush-queue timer of `dev`'s default domain fires now (`fq_flush_timeout`),
    /// whatever the simulated time: nothing when no timer is armed. The handler flushes the
    /// TLB and frees the queued IOVAs; a queue freed under it (the domain's group freed while
    /// it ran, before d7061627d701) is [`DmaError::UseAfterFree`].
    /// `Ok(false)`: no timer was armed.
    pub fn fq_timer_expiry(&self, dev: DeviceId) -> Result<bool, crate::DmaError> {
        let d = self.device(dev).ok_or(crate::DmaError::NoDevice)?;
        let Some(dom) = d.group.read().as_ref().and_then(|g| g.default_domain()) else {
            return Ok(false);
        };
        if !dom.fq_timer_begin() {
            return Ok(false);
        }
        sched_point(Point::Kernel);
        dom.fq_timer_finish()
            .map_err(|()| crate::DmaError::UseAfterFree {
                object: "struct iova_fq",
                function: "fq_flush_timeout",
            })?;
        self.counters.fq_flushes.fetch_add(1, Ordering::Relaxed);
        Ok(true)
    }

    /// Fire the flush-queue timers that have expired at the log's current simulated time.
    pub fn run_timers(&self) {
        let now = self.log.now_ns();
        for d in self.dma_domains() {
            if d.fq_poll(now, false) {
                self.counters.fq_flushes.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}
