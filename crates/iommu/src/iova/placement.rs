//! Placement: Linux's `alloc_iova` next-fit over the range set, `reserve_iova`, and
//! `free_iova`.

use smmu_addr::{IovaPfn, PageCount};

use super::{IovaDomain, IovaError, MAX_SPACE_BITS};

impl IovaDomain {
    /// Mark `[lo_pfn, hi_pfn]` (inclusive) as never allocatable (Linux `reserve_iova`: ranges
    /// it overlaps grow to cover it, the rest becomes a range of its own).
    pub fn reserve(&mut self, lo_pfn: IovaPfn, hi_pfn: IovaPfn) {
        if lo_pfn <= hi_pfn {
            self.ranges.reserve(lo_pfn.get(), hi_pfn.get());
        }
    }

    /// Allocate `pages` from the range set (Linux `alloc_iova`): next-fit downward from the cached
    /// position, ending at or below `limit_pfn` (inclusive); `aligned` aligns the first page
    /// to `pages` rounded up to a power of two. Sizes are not rounded.
    pub fn alloc(
        &mut self,
        pages: PageCount,
        limit_pfn: IovaPfn,
        aligned: bool,
    ) -> Option<IovaPfn> {
        self.place(pages.get(), limit_pfn.get(), aligned)
            .map(IovaPfn::new)
    }

    /// [`Self::alloc`] on plain frame numbers, for the rcache's slow path.
    pub(super) fn place(&mut self, pages: u64, limit_pfn: u64, aligned: bool) -> Option<u64> {
        if pages == 0 || pages > (1u64 << MAX_SPACE_BITS) {
            return None;
        }
        let pfn = self.alloc_range(pages, limit_pfn.saturating_add(1), aligned);
        if pfn.is_some() {
            self.stats.tree_allocs += 1;
        }
        pfn
    }

    /// Linux's `__alloc_and_insert_iova_range` below the exclusive `limit`: search below the
    /// cached position, then (if that position is below the limit) between it and the limit;
    /// record the range and move the cached position to it, or record the failure.
    #[inline]
    pub(super) fn alloc_range(&mut self, size: u64, limit: u64, aligned: bool) -> Option<u64> {
        if self.ranges.known_full(limit, size) {
            return None;
        }
        let (cached_lo, cached_hi) = self.ranges.start_for(limit);
        let start = self.params.start_pfn.get();
        let mut pfn = self.take_highest(size, limit.min(cached_lo), start, aligned);
        // The retry between the cached range and the limit: from `cached_hi + 1`, which before
        // dcdb3ba7e2a8 was computed first and wrapped to 0 for the anchor.
        let retry_low = if self.anchor_retry_overflows {
            Some(cached_hi.wrapping_add(1))
        } else {
            (cached_hi < limit).then(|| cached_hi + 1)
        };
        if let Some(low) = retry_low.filter(|&low| pfn.is_none() && low < limit) {
            pfn = self.take_highest(size, limit, low, aligned);
        }
        match pfn {
            Some(p) => self.ranges.insert_allocated(p, p + size - 1),
            None => self.ranges.note_failure(size),
        }
        pfn
    }

    /// The highest free block of `size` pages at or above `low` ending at or below the
    /// exclusive `high` and inside the domain (first page aligned as [`Self::alloc`] says).
    #[inline]
    pub(super) fn take_highest(
        &mut self,
        size: u64,
        high: u64,
        low: u64,
        aligned: bool,
    ) -> Option<u64> {
        let mask = if aligned {
            !(size.next_power_of_two() - 1)
        } else {
            u64::MAX
        };
        let high = high.min(self.params.end_pfn.get() + 1);
        self.ranges.highest_fit(high, low, size, mask)
    }

    /// Free a range-set allocation made by [`Self::alloc`], checked (safe mode): `pfn` and `pages`
    /// must be exactly one allocated range, not one parked in the rcache.
    pub fn free(&mut self, pfn: IovaPfn, pages: PageCount) -> Result<(), IovaError> {
        let (p, n) = (pfn.get(), pages.get());
        self.check_range(p, n)
            .ok_or(IovaError::OutOfRange { pfn, pages })?;
        if self.ranges.containing(p) != Some((p, p + n - 1)) || self.is_cached(p, n) {
            return Err(IovaError::NotAllocated { pfn, pages });
        }
        self.release(p);
        Ok(())
    }

    /// `Some` when `[pfn, pfn + pages)` is non-empty and inside the domain.
    pub(super) fn check_range(&self, pfn: u64, pages: u64) -> Option<()> {
        let (start, end) = (self.params.start_pfn.get(), self.params.end_pfn.get());
        pfn.checked_add(pages)
            .filter(|&e| pages > 0 && e <= end + 1 && pfn >= start)
            .map(|_| ())
    }

    /// Linux `free_iova`: free the whole range holding `pfn`, whatever page of it `pfn` is;
    /// nothing if no range holds it. Returns the range freed. Unchecked: a range parked in the
    /// rcache is freed too (and later handed out twice), as in Linux.
    pub fn free_containing(&mut self, pfn: IovaPfn) -> Option<(IovaPfn, IovaPfn)> {
        self.release(pfn.get())
            .map(|(lo, hi)| (IovaPfn::new(lo), IovaPfn::new(hi)))
    }

    /// [`Self::free_containing`] on plain frame numbers, for the rcache's flush and eviction.
    pub(super) fn release(&mut self, pfn: u64) -> Option<(u64, u64)> {
        self.ranges.take_containing(pfn)
    }
}
