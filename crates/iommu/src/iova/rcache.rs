//! The range cache ("rcache") in front of the range set: per size bin a loaded and a previous
//! magazine (one simulated CPU) and a depot of full magazines. Linux `alloc_iova_fast` /
//! `free_iova_fast` and the flush that empties it.

// Spare and depot magazines are boxed so that moving them moves a pointer, not 1 KiB.
#![allow(clippy::vec_box)]

use super::depot::Depot;
use super::{IovaDepot, IovaDomain, IovaError, MAG_SIZE, RCACHE_MAX_PAGES, ROUND_BELOW};

/// One magazine of cached PFNs.
#[derive(Clone)]
pub(super) struct Magazine {
    len: usize,
    pfns: [u64; MAG_SIZE],
}

impl Magazine {
    pub(super) fn new() -> Box<Magazine> {
        Box::new(Magazine::empty())
    }
    pub(super) fn empty() -> Magazine {
        Magazine {
            len: 0,
            pfns: [0; MAG_SIZE],
        }
    }
    /// The cached PFNs, oldest first.
    pub(super) fn entries(&self) -> &[u64] {
        &self.pfns[..self.len.min(MAG_SIZE)]
    }
    #[inline]
    fn full(&self) -> bool {
        self.len == MAG_SIZE
    }
    /// The topmost cached PFN that still fits below `max_pfn` (a start PFN bound), removed by
    /// swapping the last entry into its slot.
    #[inline(always)]
    fn pop(&mut self, max_pfn: u64) -> Option<u64> {
        let n = self.len;
        let top = *self.pfns.get(n.wrapping_sub(1))?;
        if top <= max_pfn {
            self.len = n - 1;
            return Some(top);
        }
        self.pop_below(max_pfn)
    }

    /// The top entry is above the limit: scan down for one that fits.
    #[cold]
    #[inline(never)]
    fn pop_below(&mut self, max_pfn: u64) -> Option<u64> {
        let n = self.len.min(MAG_SIZE);
        let i = self.pfns[..n].iter().rposition(|&p| p <= max_pfn)?;
        let p = self.pfns[i];
        self.pfns[i] = self.pfns[n - 1];
        self.len = n - 1;
        Some(p)
    }
}

/// A size bin: loaded and previous magazine (one simulated CPU) plus the shared depot.
#[derive(Clone)]
pub(super) struct Bin {
    /// Inline: the fast path reaches its length without a pointer chase.
    pub(super) loaded: Magazine,
    pub(super) prev: Box<Magazine>,
    pub(super) depot: Depot,
}

/// Rounded size and its order for the fast path.
#[inline]
pub(super) fn fast_size(pages: u64) -> u64 {
    if pages < ROUND_BELOW {
        pages.next_power_of_two()
    } else {
        pages
    }
}

/// log2 of `pages` rounded up to a power of two, for `1 <= pages <= 32` (one `lzcnt`).
#[inline(always)]
pub(super) fn small_order(pages: u64) -> usize {
    (64 - pages.wrapping_sub(1).leading_zeros()) as usize
}

#[inline]
pub(super) fn order_of(pages: u64) -> u32 {
    pages.next_power_of_two().trailing_zeros()
}

impl IovaDomain {
    /// Pages parked in the rcache.
    pub fn cached_pages(&self) -> u64 {
        let Some(bins) = self.bins.as_ref() else {
            return 0;
        };
        let mut total = 0;
        for (order, bin) in bins.iter().enumerate() {
            let n = bin.loaded.len + bin.prev.len + bin.depot.entries();
            total += (n as u64) << order;
        }
        total
    }

    /// Linux `alloc_iova_fast`: round small sizes, try the rcache, then the range set; on failure
    /// and with `flush_rcache`, return every cached range to the range set and retry once.
    #[inline(always)]
    pub fn alloc_fast(&mut self, pages: u64, limit_pfn: u64, flush_rcache: bool) -> Option<u64> {
        if pages.wrapping_sub(1) < RCACHE_MAX_PAGES {
            let order = small_order(pages);
            let size = 1u64 << order;
            if let Some(bins) = self.bins.as_mut() {
                // A cached block fits if it ends at or below the inclusive limit.
                // Linux computes the bound without checking for wrap-around: with a limit
                // below the size every cached range passes.
                let max = limit_pfn.wrapping_add(1).wrapping_sub(size);
                if let Some(bin) = bins.get_mut(order) {
                    if let Some(p) = rcache_get(bin, &mut self.spare_mags, max) {
                        self.stats.rcache_hits += 1;
                        return Some(p);
                    }
                }
            }
        }
        self.alloc_slow(pages, limit_pfn, flush_rcache)
    }

    #[cold]
    #[inline(never)]
    fn alloc_slow(&mut self, pages: u64, limit_pfn: u64, flush_rcache: bool) -> Option<u64> {
        if pages == 0 {
            return None;
        }
        // `fast_size`, with the small sizes rounded by one `lzcnt` (no branch on the size).
        let size = if pages <= ROUND_BELOW {
            1u64 << small_order(pages)
        } else {
            pages
        };
        if let Some(p) = self.alloc(size, limit_pfn, true) {
            return Some(p);
        }
        if flush_rcache && self.cached_pages() > 0 {
            self.flush_rcache();
            if let Some(p) = self.alloc(size, limit_pfn, true) {
                return Some(p);
            }
        }
        self.stats.failures += 1;
        None
    }

    /// Linux `free_iova_fast`: park the range in the rcache, or free it to the range set.
    ///
    /// The caller must pass a range `alloc_fast` returned, with the same `pages`: this path does
    /// not check (checking costs a search of the range set, and the DMA layer above already validated the
    /// unmap against its mapping table). Misuse cannot cause memory unsafety, only an IOVA being
    /// handed out twice; [`Self::free_checked_fast`] is the checked variant.
    #[inline(always)]
    pub fn free_fast(&mut self, pfn: u64, pages: u64) {
        if pages.wrapping_sub(1) < RCACHE_MAX_PAGES {
            let order = small_order(pages);
            if let Some(bins) = self.bins.as_mut() {
                if let Some(bin) = bins.get_mut(order) {
                    if let Some(evicted) =
                        rcache_insert(bin, &mut self.spare_mags, self.params.depot, pfn)
                    {
                        self.evict(evicted);
                    }
                    return;
                }
            }
        }
        self.free_slow(pfn);
    }

    /// A full magazine the depot had no room for: each range back to the range set, in the
    /// magazine's order (Linux `iova_magazine_free_pfns`).
    #[cold]
    #[inline(never)]
    fn evict(&mut self, mut mag: Box<Magazine>) {
        for &p in &mag.pfns[..mag.len] {
            self.free_containing(p);
        }
        mag.len = 0;
        self.spare_mags.push(mag);
    }

    /// Not cacheable (or no rcache): Linux `free_iova`.
    #[cold]
    #[inline(never)]
    fn free_slow(&mut self, pfn: u64) {
        self.free_containing(pfn);
    }

    /// [`Self::free_fast`] after checking (safe mode) that `pfn` and `pages` (rounded as
    /// [`Self::alloc_fast`] rounds) are exactly one allocated range, not one already cached.
    pub fn free_checked_fast(&mut self, pfn: u64, pages: u64) -> Result<(), IovaError> {
        let size = fast_size(pages);
        pfn.checked_add(size)
            .filter(|&e| pages > 0 && e <= self.params.end_pfn + 1 && pfn >= self.params.start_pfn)
            .ok_or(IovaError::OutOfRange { pfn, pages })?;
        if self.ranges.containing(pfn) != Some((pfn, pfn + size - 1)) || self.is_cached(pfn, size) {
            return Err(IovaError::NotAllocated { pfn, pages });
        }
        self.free_fast(pfn, pages);
        Ok(())
    }

    pub(super) fn is_cached(&self, pfn: u64, size: u64) -> bool {
        let Some(bins) = self.bins.as_ref() else {
            return false;
        };
        let order = order_of(size) as usize;
        let Some(bin) = bins.get(order) else {
            return false;
        };
        let has = |m: &Magazine| m.pfns[..m.len].contains(&pfn);
        has(&bin.loaded) || has(&bin.prev) || bin.depot.holds(pfn)
    }

    /// Return every cached range to the range set, in Linux's order: the CPU's loaded and
    /// previous magazines of every bin (`free_cpu_cached_iovas`), then every bin's depot
    /// (`free_global_cached_iovas`: index order for the array, head first for the list).
    pub fn flush_rcache(&mut self) {
        let Some(mut bins) = self.bins.take() else {
            return;
        };
        self.stats.rcache_flushes += 1;
        for bin in bins.iter_mut() {
            self.drain(&mut bin.loaded);
            self.drain(&mut bin.prev);
        }
        for bin in bins.iter_mut() {
            for mut m in bin.depot.take_in_flush_order(self.params.depot) {
                self.drain(&mut m);
                self.spare_mags.push(m);
            }
        }
        self.bins = Some(bins);
    }

    /// Every range of `m` back to the range set, in order; `m` is left empty.
    fn drain(&mut self, m: &mut Magazine) {
        for &p in &m.pfns[..m.len] {
            self.free_containing(p);
        }
        m.len = 0;
    }
}

#[inline(always)]
pub(super) fn rcache_get(
    bin: &mut Bin,
    spare: &mut Vec<Box<Magazine>>,
    max_pfn: u64,
) -> Option<u64> {
    if bin.loaded.len == 0 {
        rcache_refill(bin, spare)?;
    }
    bin.loaded.pop(max_pfn)
}

/// Loaded is empty: swap in prev, or a full magazine from the depot.
#[cold]
#[inline(never)]
pub(super) fn rcache_refill(bin: &mut Bin, spare: &mut Vec<Box<Magazine>>) -> Option<()> {
    if bin.prev.len > 0 {
        std::mem::swap(&mut bin.loaded, &mut *bin.prev);
    } else if let Some(mut full) = bin.depot.pop() {
        std::mem::swap(&mut bin.loaded, &mut *full);
        spare.push(full); // now the empty one
    } else {
        return None;
    }
    Some(())
}

/// Push `pfn`; returns a magazine whose ranges must go back to the range set (depot full).
#[inline(always)]
pub(super) fn rcache_insert(
    bin: &mut Bin,
    spare: &mut Vec<Box<Magazine>>,
    depot: IovaDepot,
    pfn: u64,
) -> Option<Box<Magazine>> {
    let evicted = if bin.loaded.full() {
        rcache_spill(bin, spare, depot)
    } else {
        None
    };
    let m = &mut bin.loaded;
    if let Some(slot) = m.pfns.get_mut(m.len) {
        *slot = pfn;
        m.len += 1;
    }
    evicted
}

/// Loaded is full: swap with prev if that has room, else move loaded to the depot (or out, if
/// the array depot is full) and continue with an empty magazine.
#[cold]
#[inline(never)]
pub(super) fn rcache_spill(
    bin: &mut Bin,
    spare: &mut Vec<Box<Magazine>>,
    depot: IovaDepot,
) -> Option<Box<Magazine>> {
    if !bin.prev.full() {
        std::mem::swap(&mut bin.loaded, &mut *bin.prev);
        return None;
    }
    let mut fresh = spare.pop().unwrap_or_else(Magazine::new);
    fresh.len = 0;
    std::mem::swap(&mut bin.loaded, &mut *fresh);
    bin.depot.push(depot, fresh)
}
