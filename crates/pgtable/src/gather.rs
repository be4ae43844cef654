//! TLB maintenance callbacks and the gather that batches leaf invalidations.

use smmu_addr::{Iova, PageSize};

/// The TLB maintenance a page-table user supplies (Linux's `iommu_flush_ops`).
pub trait TlbOps {
    /// Invalidate everything for this context.
    fn tlb_flush_all(&self);
    /// A table (non-leaf) entry covering `[iova, iova + size)` was removed: invalidate walk caches
    /// and TLB entries for the range and wait for completion.
    fn tlb_flush_walk(&self, iova: Iova, size: u64, granule: PageSize);
    /// A leaf of `granule` bytes at `iova` was removed. May only queue; the gather's owner
    /// completes it with a sync.
    fn tlb_add_page(&self, gather: &mut Gather, iova: Iova, granule: PageSize);
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
    /// An empty, non-lazy gather.
    pub const fn new() -> Self {
        Gather {
            start: u64::MAX,
            end: 0,
            pgsize: 0,
            queued: false,
        }
    }

    /// Whether nothing has been added since [`new`](Self::new).
    pub fn is_empty(&self) -> bool {
        self.start > self.end
    }

    /// Widen the range to cover `[iova, iova + size)`.
    pub fn add_range(&mut self, iova: Iova, size: u64) {
        if size == 0 {
            return;
        }
        let iova = iova.as_u64();
        let end = iova.saturating_add(size - 1);
        self.start = self.start.min(iova);
        self.end = self.end.max(end);
    }
}

/// Shared ownership of a TLB-ops object (a driver's domain keeps one, its page table another).
impl<T: TlbOps + ?Sized> TlbOps for std::sync::Arc<T> {
    fn tlb_flush_all(&self) {
        (**self).tlb_flush_all()
    }
    fn tlb_flush_walk(&self, iova: Iova, size: u64, granule: PageSize) {
        (**self).tlb_flush_walk(iova, size, granule)
    }
    fn tlb_add_page(&self, gather: &mut Gather, iova: Iova, granule: PageSize) {
        (**self).tlb_add_page(gather, iova, granule)
    }
}

/// TLB ops for a table no hardware walks (tests, benchmarks, demos): every callback is a
/// no-op.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NoTlb;

impl TlbOps for NoTlb {
    #[inline]
    fn tlb_flush_all(&self) {}
    #[inline]
    fn tlb_flush_walk(&self, _iova: Iova, _size: u64, _granule: PageSize) {}
    #[inline]
    fn tlb_add_page(&self, _gather: &mut Gather, _iova: Iova, _granule: PageSize) {}
}
