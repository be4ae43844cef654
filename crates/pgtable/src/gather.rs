//! TLB maintenance callbacks and the gather that batches leaf invalidations.

/// The TLB maintenance a page-table user supplies (Linux's `iommu_flush_ops`).
pub trait TlbOps {
    /// Invalidate everything for this context.
    fn tlb_flush_all(&self);
    /// A table (non-leaf) entry covering `[iova, iova + size)` was removed: invalidate walk caches
    /// and TLB entries for the range and wait for completion.
    fn tlb_flush_walk(&self, iova: u64, size: u64, granule: u64);
    /// A leaf of `granule` bytes at `iova` was removed. May only queue; the gather's owner
    /// completes it with a sync.
    fn tlb_add_page(&self, gather: &mut Gather, iova: u64, granule: u64);
}

/// Range of leaf invalidations accumulated by an unmap (Linux's `iommu_iotlb_gather`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gather {
    /// Lowest IOVA added, inclusive.
    pub start: u64,
    /// Highest IOVA added, inclusive (`0` with `start == u64::MAX` when empty).
    pub end: u64,
    /// Granule of the pages added; 0 when empty.
    pub pgsize: u64,
    /// Lazy (flush-queue) mode: leaf invalidations are skipped, a later flush-all covers them.
    pub queued: bool,
}

impl Default for Gather {
    fn default() -> Self {
        Gather::new()
    }
}

impl Gather {
    pub const fn new() -> Self {
        Gather {
            start: u64::MAX,
            end: 0,
            pgsize: 0,
            queued: false,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.start > self.end
    }

    /// Widen the range to cover `[iova, iova + size)`.
    pub fn add_range(&mut self, iova: u64, size: u64) {
        let end = iova + size - 1;
        self.start = self.start.min(iova);
        self.end = self.end.max(end);
    }
}
