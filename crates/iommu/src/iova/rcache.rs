//! The range cache ("rcache") in front of the range set: per size bin a loaded and a previous
//! magazine (one simulated CPU) and a depot of full magazines. Linux `alloc_iova_fast` /
//! `free_iova_fast` and the flush that empties it.

// Spare and depot magazines are boxed so that moving them moves a pointer, not 1 KiB.
#![allow(clippy::vec_box)]

use smmu_addr::{IovaPfn, PageCount};

use super::depot::Depot;
use super::ranges::Ranges;
use super::{
    IovaDepot, IovaDomain, IovaError, MAG_SIZE, RCACHE_BINS, RCACHE_MAX_PAGES, ROUND_BELOW,
};

/// One magazine of cached PFNs.
#[derive(Clone)]
pub(super) struct Magazine {
    /// Entries in use, or [`CLOSED`].
    len: usize,
    pfns: [u64; MAG_SIZE],
}

/// The length of a closed magazine, the loaded magazine of a domain without an rcache: past the
/// end of `pfns` for a push (at `len`) and for a pop (at `len - 1`) alike, so the bounds checks
/// the fast paths make anyway send both to the cold paths, with no test of their own. A closed
/// magazine holds nothing.
const CLOSED: usize = MAG_SIZE + 1;

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
    fn closed() -> Magazine {
        Magazine {
            len: CLOSED,
            pfns: [0; MAG_SIZE],
        }
    }
    /// The cached PFNs, oldest first.
    pub(super) fn entries(&self) -> &[u64] {
        self.pfns.get(..self.len).unwrap_or(&[])
    }
    #[inline]
    fn full(&self) -> bool {
        self.len == MAG_SIZE
    }

    /// Push `pfn` if there is room; `false` if the magazine is full or closed.
    #[inline(always)]
    fn push(&mut self, pfn: u64) -> bool {
        let Some(slot) = self.pfns.get_mut(self.len) else {
            return false;
        };
        *slot = pfn;
        self.len += 1;
        true
    }

    /// The top entry, taken, if it is at or below `max_pfn` (a start PFN bound); `None` if it
    /// is above, or the magazine is empty or closed. Linux's pop in the common case.
    #[inline(always)]
    fn pop_top(&mut self, max_pfn: u64) -> Option<u64> {
        let n = self.len.wrapping_sub(1);
        let top = *self.pfns.get(n)?;
        if top > max_pfn {
            return None;
        }
        self.len = n;
        Some(top)
    }

    /// Linux `iova_magazine_pop`: the topmost entry at or below `max_pfn`, removed by moving
    /// the last entry into its slot.
    fn pop(&mut self, max_pfn: u64) -> Option<u64> {
        let n = self.entries().len();
        let i = self.entries().iter().rposition(|&p| p <= max_pfn)?;
        let p = self.pfns[i];
        self.pfns[i] = self.pfns[n - 1];
        self.len = n - 1;
        Some(p)
    }
}

/// A size bin: the CPU's loaded magazine inline with the bin's block size beside it, its
/// previous magazine and the shared depot.
#[derive(Clone)]
pub(super) struct Bin {
    /// Inline: the fast path reaches its length without a pointer chase. [`CLOSED`] in a
    /// domain without an rcache.
    pub(super) loaded: Magazine,
    /// Pages of a block in this bin (`1 << order`), for the allocation's bound.
    size: u64,
    pub(super) prev: Box<Magazine>,
    pub(super) depot: Depot,
}

impl Bin {
    pub(super) fn new(order: usize, rcache: bool) -> Bin {
        Bin {
            loaded: if rcache {
                Magazine::empty()
            } else {
                Magazine::closed()
            },
            size: 1 << order,
            prev: Magazine::new(),
            depot: Depot::new(),
        }
    }

    /// The highest first PFN a cached block may have under the inclusive `limit_pfn`. Linux
    /// computes it without checking for wrap-around: with a limit below the size every cached
    /// range passes.
    #[inline(always)]
    fn bound(&self, limit_pfn: u64) -> u64 {
        limit_pfn.wrapping_add(1).wrapping_sub(self.size)
    }
}

/// The bin of a block of `pages` (rounded up to a power of two): order `ceil(log2(pages))`,
/// computed as `floor(log2(2 * pages - 1))` (one `lea` and one `bsr`, no zero case); `None`
/// for 0 pages and above 32.
#[inline(always)]
pub(super) fn bin_of(pages: u64) -> Option<usize> {
    let x = pages.wrapping_sub(1);
    (x < RCACHE_MAX_PAGES).then(|| ((x << 1) | 1).ilog2() as usize)
}

/// The bin of a block of `pages`, if that size is cached.
#[inline(always)]
fn bin_mut(bins: &mut [Bin; RCACHE_BINS], pages: u64) -> Option<&mut Bin> {
    bin_of(pages).and_then(|order| bins.get_mut(order))
}

/// Rounded size for the fast path.
#[inline]
pub(super) fn fast_size(pages: u64) -> u64 {
    if pages < ROUND_BELOW {
        pages.next_power_of_two()
    } else {
        pages
    }
}

impl IovaDomain {
    /// Pages parked in the rcache.
    pub fn cached_pages(&self) -> PageCount {
        let mut total = 0;
        for (order, bin) in self.bins.iter().enumerate() {
            let n = bin.loaded.entries().len() + bin.prev.len + bin.depot.entries();
            total += (n as u64) << order;
        }
        PageCount::new(total)
    }

    /// Linux `alloc_iova_fast`: round small sizes, try the rcache, then the range set; on failure
    /// and with `flush_rcache`, return every cached range to the range set and retry once.
    #[inline(always)]
    pub fn alloc_fast(
        &mut self,
        pages: PageCount,
        limit_pfn: IovaPfn,
        flush_rcache: bool,
    ) -> Option<IovaPfn> {
        let (pages, limit_pfn) = (pages.get(), limit_pfn.get());
        if let Some(bin) = bin_mut(&mut self.bins, pages) {
            if let Some(p) = bin.loaded.pop_top(bin.bound(limit_pfn)) {
                self.stats.rcache_hits += 1;
                return Some(IovaPfn::new(p));
            }
        }
        self.alloc_miss(pages, limit_pfn, flush_rcache)
            .map(IovaPfn::new)
    }

    /// The loaded magazine had no block at or below the bound (or the size is not cached): the
    /// whole of Linux's rcache lookup, then the range set.
    #[cold]
    #[inline(never)]
    fn alloc_miss(&mut self, pages: u64, limit_pfn: u64, flush_rcache: bool) -> Option<u64> {
        if !self.params.rcache {
            return self.alloc_slow(pages, limit_pfn, flush_rcache);
        }
        if let Some(bin) = bin_mut(&mut self.bins, pages) {
            let max = bin.bound(limit_pfn);
            if let Some(p) = rcache_get(bin, &mut self.spare_mags, max) {
                self.stats.rcache_hits += 1;
                return Some(p);
            }
        }
        self.alloc_slow(pages, limit_pfn, flush_rcache)
    }

    fn alloc_slow(&mut self, pages: u64, limit_pfn: u64, flush_rcache: bool) -> Option<u64> {
        if pages == 0 {
            return None;
        }
        let size = fast_size(pages);
        if let Some(p) = self.place(size, limit_pfn, true) {
            return Some(p);
        }
        if flush_rcache && !self.cached_pages().is_zero() {
            self.flush_rcache();
            if let Some(p) = self.place(size, limit_pfn, true) {
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
    pub fn free_fast(&mut self, pfn: IovaPfn, pages: PageCount) {
        let (pfn, pages) = (pfn.get(), pages.get());
        if let Some(bin) = bin_mut(&mut self.bins, pages) {
            if bin.loaded.push(pfn) {
                return;
            }
            // The loaded magazine is full (or, without an rcache, takes nothing).
            if self.params.rcache {
                if let Some(evicted) =
                    rcache_spill_and_push(bin, &mut self.spare_mags, self.params.depot, pfn)
                {
                    self.evict(evicted);
                }
                return;
            }
        }
        self.free_slow(pfn);
    }

    /// A full magazine the depot had no room for: each range back to the range set, in the
    /// magazine's order (Linux `iova_magazine_free_pfns`).
    #[cold]
    #[inline(never)]
    fn evict(&mut self, mut mag: Box<Magazine>) {
        drain(&mut self.ranges, &mut mag);
        self.spare_mags.push(mag);
    }

    /// Not cacheable (or no rcache): Linux `free_iova`.
    #[cold]
    #[inline(never)]
    fn free_slow(&mut self, pfn: u64) {
        self.release(pfn);
    }

    /// [`Self::free_fast`] after checking (safe mode) that `pfn` and `pages` (rounded as
    /// [`Self::alloc_fast`] rounds) are exactly one allocated range, not one already cached.
    pub fn free_checked_fast(&mut self, pfn: IovaPfn, pages: PageCount) -> Result<(), IovaError> {
        let (p, size) = (pfn.get(), fast_size(pages.get()));
        self.check_range(p, if pages.is_zero() { 0 } else { size })
            .ok_or(IovaError::OutOfRange { pfn, pages })?;
        if self.ranges.containing(p) != Some((p, p + size - 1)) || self.is_cached(p, size) {
            return Err(IovaError::NotAllocated { pfn, pages });
        }
        self.free_fast(pfn, pages);
        Ok(())
    }

    pub(super) fn is_cached(&self, pfn: u64, size: u64) -> bool {
        let Some(bin) = bin_of(size).and_then(|order| self.bins.get(order)) else {
            return false;
        };
        let has = |m: &Magazine| m.entries().contains(&pfn);
        has(&bin.loaded) || has(&bin.prev) || bin.depot.holds(pfn)
    }

    /// Return every cached range to the range set, in Linux's order: the CPU's loaded and
    /// previous magazines of every bin (`free_cpu_cached_iovas`), then every bin's depot
    /// (`free_global_cached_iovas`: index order for the array, head first for the list).
    pub fn flush_rcache(&mut self) {
        if !self.params.rcache {
            return;
        }
        self.stats.rcache_flushes += 1;
        let ranges = &mut *self.ranges;
        for bin in self.bins.iter_mut() {
            drain(ranges, &mut bin.loaded);
            drain(ranges, &mut bin.prev);
        }
        for bin in self.bins.iter_mut() {
            for mut m in bin.depot.take_in_flush_order(self.params.depot) {
                drain(ranges, &mut m);
                self.spare_mags.push(m);
            }
        }
    }
}

/// Every range of `m` back to the range set (Linux `free_iova` of each), in order; `m` is left
/// empty.
fn drain(ranges: &mut Ranges, m: &mut Magazine) {
    for &p in m.entries() {
        ranges.take_containing(p);
    }
    m.len = 0;
}

/// The loaded magazine had nothing at or below `max_pfn`: refill it if it is empty (Linux
/// `__iova_rcache_get`), then take the topmost entry that fits.
fn rcache_get(bin: &mut Bin, spare: &mut Vec<Box<Magazine>>, max_pfn: u64) -> Option<u64> {
    if bin.loaded.len == 0 {
        rcache_refill(bin, spare)?;
    }
    bin.loaded.pop(max_pfn)
}

/// Loaded is empty: swap in prev, or a full magazine from the depot.
fn rcache_refill(bin: &mut Bin, spare: &mut Vec<Box<Magazine>>) -> Option<()> {
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

/// Loaded is full: swap with prev if that has room, else move loaded to the depot (or out, if
/// the array depot is full) and continue with an empty magazine; then push `pfn` (Linux
/// `__iova_rcache_insert`). Returns a magazine whose ranges must go back to the range set
/// (the array depot was full).
#[cold]
#[inline(never)]
fn rcache_spill_and_push(
    bin: &mut Bin,
    spare: &mut Vec<Box<Magazine>>,
    depot: IovaDepot,
    pfn: u64,
) -> Option<Box<Magazine>> {
    let evicted = if !bin.prev.full() {
        std::mem::swap(&mut bin.loaded, &mut *bin.prev);
        None
    } else {
        let mut fresh = spare.pop().unwrap_or_else(Magazine::new);
        fresh.len = 0;
        std::mem::swap(&mut bin.loaded, &mut *fresh);
        bin.depot.push(depot, fresh)
    };
    bin.loaded.push(pfn);
    evicted
}
