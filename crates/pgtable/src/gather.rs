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
    /// The IOVAs added so far: the first and the last byte, both inclusive (Linux's `start`
    /// and `end`); `None` while nothing has been added.
    pub range: Option<(Iova, Iova)>,
    /// The page size of the pages added (Linux's `pgsize`); `None` until a driver records one.
    pub pgsize: Option<PageSize>,
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
            range: None,
            pgsize: None,
            queued: false,
        }
    }

    /// Whether nothing has been added since [`new`](Self::new).
    pub fn is_empty(&self) -> bool {
        self.range.is_none()
    }

    /// The gathered range as its first IOVA and its length in bytes (the length saturates at
    /// `u64::MAX` for a range covering all 2^64 addresses); `None` while empty.
    pub fn span(&self) -> Option<(Iova, u64)> {
        let (first, last) = self.range?;
        let len = last.as_u64() - first.as_u64();
        Some((first, len.saturating_add(1)))
    }

    /// Whether `[iova, iova + size)` neither overlaps nor touches the gathered range (Linux's
    /// `iommu_iotlb_gather_is_disjoint`); `false` while empty.
    pub fn is_disjoint(&self, iova: Iova, size: u64) -> bool {
        let Some((first, last)) = self.range else {
            return false;
        };
        let start = iova.as_u64();
        let end = start.saturating_add(size.saturating_sub(1));
        end.saturating_add(1) < first.as_u64() || start > last.as_u64().saturating_add(1)
    }

    /// Widen the range to cover `[iova, iova + size)` (its last byte saturates at the top of
    /// the address space).
    pub fn add_range(&mut self, iova: Iova, size: u64) {
        if size == 0 {
            return;
        }
        let last = Iova::new(iova.as_u64().saturating_add(size - 1));
        self.range = Some(match self.range {
            None => (iova, last),
            Some((first, end)) => (first.min(iova), end.max(last)),
        });
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gather_widens_over_what_is_added() {
        let mut g = Gather::new();
        assert!(g.is_empty() && g.span().is_none());
        assert!(!g.is_disjoint(Iova::new(0x1000), 0x1000));
        g.add_range(Iova::new(0x5000), 0);
        assert!(g.is_empty());
        g.add_range(Iova::new(0x5000), 0x1000);
        g.add_range(Iova::new(0x3000), 0x1000);
        assert_eq!(g.range, Some((Iova::new(0x3000), Iova::new(0x5fff))));
        assert_eq!(g.span(), Some((Iova::new(0x3000), 0x3000)));
        // Touching either end is not disjoint; a page gap is.
        assert!(!g.is_disjoint(Iova::new(0x6000), 0x1000));
        assert!(!g.is_disjoint(Iova::new(0x2000), 0x1000));
        assert!(g.is_disjoint(Iova::new(0x7000), 0x1000));
        assert!(g.is_disjoint(Iova::new(0x1000), 0x1000));
    }

    #[test]
    fn the_whole_address_space_saturates() {
        let mut g = Gather::new();
        g.add_range(Iova::new(0), u64::MAX);
        g.add_range(Iova::new(u64::MAX - 0xfff), 0x2000);
        assert_eq!(g.range, Some((Iova::new(0), Iova::new(u64::MAX))));
        assert_eq!(g.span(), Some((Iova::new(0), u64::MAX)));
    }
}
