//! Register access as Linux structures it: every access names a page (GR0, GR1 or a context
//! bank) and an offset within it, and goes through one accessor, so the page geometry probed
//! from ID1 is applied in one place.

use smmu_arch::Mmio;
use smmu_sync::{sched_point, Arc, Point};

/// A register page of the SMMU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Page {
    /// Global register space 0 (page 0).
    Gr0,
    /// Global register space 1 (page 1).
    Gr1,
    /// Context bank `n`.
    Cb(u32),
}

/// The (page, offset) accessor.
#[derive(Clone)]
pub struct SmmuIo {
    mmio: Arc<dyn Mmio>,
    pgshift: u32,
    numpage: u64,
}

impl SmmuIo {
    /// `pgshift` 12 or 16; `numpage` = number of global pages (= page index of CB 0).
    pub fn new(mmio: Arc<dyn Mmio>, pgshift: u32, numpage: u64) -> Self {
        SmmuIo {
            mmio,
            pgshift,
            numpage,
        }
    }

    /// Byte offset of `page` from the SMMU base.
    pub fn page_base(&self, page: Page) -> u64 {
        let n = match page {
            Page::Gr0 => 0,
            Page::Gr1 => 1,
            Page::Cb(i) => self.numpage + u64::from(i),
        };
        n << self.pgshift
    }

    /// 32-bit read at `off` in `page`.
    pub fn read(&self, page: Page, off: u64) -> u32 {
        sched_point(Point::Mmio);
        self.mmio.read32(self.page_base(page) + off)
    }

    /// 32-bit write at `off` in `page`.
    pub fn write(&self, page: Page, off: u64, val: u32) {
        sched_point(Point::Mmio);
        self.mmio.write32(self.page_base(page) + off, val)
    }

    /// 64-bit read at `off` in `page`.
    pub fn readq(&self, page: Page, off: u64) -> u64 {
        sched_point(Point::Mmio);
        self.mmio.read64(self.page_base(page) + off)
    }

    /// 64-bit write at `off` in `page`.
    pub fn writeq(&self, page: Page, off: u64, val: u64) {
        sched_point(Point::Mmio);
        self.mmio.write64(self.page_base(page) + off, val)
    }

    /// The underlying bus (for the few accesses made before the geometry is known).
    pub fn mmio(&self) -> &Arc<dyn Mmio> {
        &self.mmio
    }
}
