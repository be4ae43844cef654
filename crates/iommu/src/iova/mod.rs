//! The IOVA allocator of a DMA domain (Linux iova.c semantics, different data structure).
//!
//! Behaviour kept from Linux: page-frame numbers in units of the domain granule; top-down
//! allocation below an inclusive limit; sizes below 32 pages rounded up to a power of two and
//! every block naturally aligned to its rounded size; a range cache ("rcache") in front of the
//! tree with 6 size bins (1..32 pages), 127-entry magazines, a loaded/prev pair per CPU and a
//! depot of at most 32 full magazines, and a flush of all cached ranges before giving up.
//!
//! Placement is Linux's next-fit, IOVA for IOVA: an allocation searches downward from the
//! cached position of its half of the space (`cached_node` / `cached32_node`, moved by
//! allocations and frees as Linux moves them, see [`ranges`]) and, failing that, once more
//! between the limit and that position. The search itself is not Linux's rbtree walk: the
//! free space is also an [`IovaTree`] (a bitmap tree with per-child capacities) that finds the
//! highest fitting aligned block below a bound in O(log n), which is the block Linux's walk
//! stops at. Sizes that are not a power of two (or unaligned requests) take the walk itself.
//!
//! Per kernel version ([`IovaDepot`]): up to v6.6 the depot is an array of at most 32 full
//! magazines per bin (a full magazine beyond that goes straight back to the tree) flushed in
//! index order; from v6.7 (911aa1245da8) it is an unbounded list, flushed newest first.

// Spare and depot magazines are boxed so that moving them moves a pointer, not 1 KiB.
#![allow(clippy::vec_box)]

mod ranges;
mod tree;

pub use ranges::ANCHOR;
pub use tree::IovaTree;

use ranges::Ranges;

use thiserror::Error;

/// Number of rcache size bins (orders 0..=5).
pub const RCACHE_BINS: usize = 6;
/// PFNs per magazine (fills a 1 KiB kmalloc bucket in Linux).
pub const MAG_SIZE: usize = 127;
/// Full magazines the depot holds per bin (the fixed array up to v6.6, `MAX_GLOBAL_MAGS`).
pub const MAX_DEPOT_MAGS: usize = 32;
/// Largest IOVA space the allocator covers, in pages (log2).
const MAX_SPACE_BITS: u32 = 42;
/// Granules at or above 4 GiB would leave no 32-bit PFN range.
const MAX_GRANULE_SHIFT: u32 = 31;

/// How the rcache's depot of full magazines behaves: the one rcache difference between the
/// kernel versions the model knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IovaDepot {
    /// Up to v6.6: an array of at most [`MAX_DEPOT_MAGS`] magazines per bin; a full
    /// magazine that finds it full is freed to the tree at once; flushed in index order.
    #[default]
    Array,
    /// From v6.7 (911aa1245da8 "iommu/iova: Make the rcache depot scale better"): an
    /// unbounded list, pushed and popped at its head, flushed head first. Its delayed trim
    /// (233045378dbb, one magazine per 100 ms while the depot holds more magazines than
    /// there are CPUs) is not modelled: the simulated kernel has no workqueue timer for it.
    List,
}
/// Sizes below this many pages are rounded up to a power of two.
const ROUND_BELOW: u64 = 1 << (RCACHE_BINS - 1);
/// Largest size the rcache holds (order 5).
const RCACHE_MAX_PAGES: u64 = 1 << (RCACHE_BINS - 1);

/// Errors of the checked IOVA operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum IovaError {
    /// The range is (partly) free or cached.
    #[error("IOVA range pfn {pfn:#x} + {pages} pages is not allocated")]
    NotAllocated {
        /// First page frame.
        pfn: u64,
        /// Pages.
        pages: u64,
    },
    /// The range is empty or leaves the domain.
    #[error("IOVA range pfn {pfn:#x} + {pages} pages is outside the domain")]
    OutOfRange {
        /// First page frame.
        pfn: u64,
        /// Pages.
        pages: u64,
    },
    /// Unusable [`IovaParams`].
    #[error("bad IOVA domain parameters: {0}")]
    BadParams(&'static str),
}

/// One magazine of cached PFNs.
#[derive(Clone)]
struct Magazine {
    len: usize,
    pfns: [u64; MAG_SIZE],
}

impl Magazine {
    fn new() -> Box<Magazine> {
        Box::new(Magazine::empty())
    }
    fn empty() -> Magazine {
        Magazine {
            len: 0,
            pfns: [0; MAG_SIZE],
        }
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
struct Bin {
    /// Inline: the fast path reaches its length without a pointer chase.
    loaded: Magazine,
    prev: Box<Magazine>,
    depot: Vec<Box<Magazine>>,
}

/// Counters of one IOVA domain.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IovaStats {
    /// Allocations served from the rcache.
    pub rcache_hits: u64,
    /// Allocations that went to the tree.
    pub tree_allocs: u64,
    /// Allocations that failed.
    pub failures: u64,
    /// Times all cached ranges were flushed back to the tree.
    pub rcache_flushes: u64,
}

/// Geometry and options of an [`IovaDomain`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IovaParams {
    /// log2 of the granule (the smallest page size of the domain).
    pub shift: u32,
    /// Lowest allocatable PFN (Linux: max(1, aperture_start >> shift)).
    pub start_pfn: u64,
    /// Highest allocatable PFN, inclusive (aperture end >> shift).
    pub end_pfn: u64,
    /// Serve small allocations from the range cache.
    pub rcache: bool,
    /// The kernel version's depot.
    pub depot: IovaDepot,
}

/// The IOVA space of one DMA domain. Not internally locked: the domain's lock covers it.
#[derive(Clone)]
pub struct IovaDomain {
    /// A one-entry front of the rcache: `hot_pfn` is the logical top of the loaded magazine of
    /// bin `hot_order` (that magazine then holds at most `MAG_SIZE - 1` entries itself). A free
    /// followed by an allocation of the same size (the common DMA pattern) touches only this
    /// flag, never a magazine length, so consecutive operations do not wait on a store-to-load
    /// chain; a range freed back into the slot it was taken from is not even rewritten. Only
    /// meaningful with an rcache.
    hot: bool,
    hot_order: usize,
    hot_pfn: u64,
    /// Boxed: the cached fast path, inlined into callers, then keeps the domain's hot fields
    /// in a small frame whatever the tree's size.
    tree: Box<IovaTree>,
    /// Allocated ranges and the cached positions allocations start from.
    ranges: Box<Ranges>,
    params: IovaParams,
    bins: Option<Box<[Bin; RCACHE_BINS]>>,
    spare_mags: Vec<Box<Magazine>>,
    stats: IovaStats,
}

impl std::fmt::Debug for IovaDomain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IovaDomain")
            .field("params", &self.params)
            .field("tree", &self.tree)
            .field("stats", &self.stats)
            .finish()
    }
}

/// Rounded size and its order for the fast path.
#[inline]
fn fast_size(pages: u64) -> u64 {
    if pages < ROUND_BELOW {
        pages.next_power_of_two()
    } else {
        pages
    }
}

/// log2 of `pages` rounded up to a power of two, for `1 <= pages <= 32` (one `lzcnt`).
#[inline(always)]
fn small_order(pages: u64) -> usize {
    (64 - pages.wrapping_sub(1).leading_zeros()) as usize
}

#[inline]
fn order_of(pages: u64) -> u32 {
    pages.next_power_of_two().trailing_zeros()
}

impl IovaDomain {
    /// A domain over `[start_pfn, end_pfn]` (both inclusive), everything else reserved.
    pub fn new(params: IovaParams) -> Result<IovaDomain, IovaError> {
        if params.start_pfn > params.end_pfn {
            return Err(IovaError::BadParams("start above end"));
        }
        let bits = 64 - params.end_pfn.leading_zeros();
        if bits > MAX_SPACE_BITS {
            return Err(IovaError::BadParams("IOVA space above 2^42 pages"));
        }
        if params.shift > MAX_GRANULE_SHIFT {
            return Err(IovaError::BadParams("granule of 4 GiB or more"));
        }
        let mut tree = IovaTree::new(bits.max(1));
        tree.set_range(0, params.start_pfn, false);
        tree.set_range(params.end_pfn + 1, tree.end(), false);
        let bins = if params.rcache {
            Some(Box::new(std::array::from_fn(|_| Bin {
                loaded: Magazine::empty(),
                prev: Magazine::new(),
                depot: Vec::with_capacity(MAX_DEPOT_MAGS),
            })))
        } else {
            None
        };
        Ok(IovaDomain {
            hot: false,
            hot_order: 0,
            hot_pfn: 0,
            tree: Box::new(tree),
            ranges: Box::new(Ranges::new(params.shift)),
            params,
            bins,
            spare_mags: Vec::new(),
            stats: IovaStats::default(),
        })
    }

    /// The parameters the domain was built with.
    pub fn params(&self) -> IovaParams {
        self.params
    }

    /// Counters.
    pub fn stats(&self) -> IovaStats {
        self.stats
    }

    /// Pages neither allocated nor reserved (cached ranges count as allocated).
    pub fn free_pages(&self) -> u64 {
        self.tree.free_pages()
    }

    /// Pages parked in the rcache.
    pub fn cached_pages(&self) -> u64 {
        let Some(bins) = self.bins.as_ref() else {
            return 0;
        };
        let mut total = if self.hot { 1u64 << self.hot_order } else { 0 };
        for (order, bin) in bins.iter().enumerate() {
            let n = bin.loaded.len + bin.prev.len + bin.depot.iter().map(|m| m.len).sum::<usize>();
            total += (n as u64) << order;
        }
        total
    }

    /// The underlying free map (read only; for tests and statistics).
    pub fn tree(&self) -> &IovaTree {
        &self.tree
    }

    /// The allocated, cached and reserved ranges, ascending: `(pfn_lo, pfn_hi)`.
    pub fn ranges(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.ranges.iter()
    }

    /// Mark `[lo_pfn, hi_pfn]` (inclusive) as never allocatable (Linux `reserve_iova`: ranges
    /// it overlaps grow to cover it, the rest becomes a range of its own).
    pub fn reserve(&mut self, lo_pfn: u64, hi_pfn: u64) {
        if lo_pfn <= hi_pfn {
            for (lo, hi) in self.ranges.reserve(lo_pfn, hi_pfn) {
                self.tree.set_range(lo, hi.saturating_add(1), false);
            }
        }
    }

    /// Allocate `pages` from the tree (Linux `alloc_iova`): next-fit downward from the cached
    /// position, ending at or below `limit_pfn` (inclusive); `aligned` aligns the first page
    /// to `pages` rounded up to a power of two. Sizes are not rounded.
    pub fn alloc(&mut self, pages: u64, limit_pfn: u64, aligned: bool) -> Option<u64> {
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
    fn alloc_range(&mut self, size: u64, limit: u64, aligned: bool) -> Option<u64> {
        if self.ranges.known_full(limit, size) {
            return None;
        }
        let (cached_lo, cached_hi) = self.ranges.start_for(limit);
        let mut pfn = self.take_highest(size, limit.min(cached_lo), self.params.start_pfn, aligned);
        if pfn.is_none() && cached_hi < limit {
            pfn = self.take_highest(size, limit, cached_hi + 1, aligned);
        }
        match pfn {
            Some(p) => self.ranges.insert_allocated(p, p + size - 1),
            None => self.ranges.note_failure(size),
        }
        pfn
    }

    /// The highest free block of `size` pages at or above `low` ending at or below the
    /// exclusive `high` (first page aligned as [`Self::alloc`] says), marked used in the tree.
    #[inline]
    fn take_highest(&mut self, size: u64, high: u64, low: u64, aligned: bool) -> Option<u64> {
        if aligned && size.is_power_of_two() {
            let p = self.tree.alloc(size.trailing_zeros(), size, high)?;
            if p >= low {
                return Some(p);
            }
            self.tree.set_range(p, p + size, true);
            return None;
        }
        let mask = if aligned {
            !(size.next_power_of_two() - 1)
        } else {
            u64::MAX
        };
        let high = high.min(self.params.end_pfn + 1);
        let p = self.ranges.walk_down(high, low, size, mask)?;
        self.tree.set_range(p, p + size, false);
        Some(p)
    }

    /// Free a tree allocation made by [`Self::alloc`], checked (safe mode): `pfn` and `pages`
    /// must be exactly one allocated range, not one parked in the rcache.
    pub fn free(&mut self, pfn: u64, pages: u64) -> Result<(), IovaError> {
        pfn.checked_add(pages)
            .filter(|&e| pages > 0 && e <= self.params.end_pfn + 1 && pfn >= self.params.start_pfn)
            .ok_or(IovaError::OutOfRange { pfn, pages })?;
        if self.ranges.containing(pfn) != Some((pfn, pfn + pages - 1)) || self.is_cached(pfn, pages)
        {
            return Err(IovaError::NotAllocated { pfn, pages });
        }
        self.free_containing(pfn);
        Ok(())
    }

    /// Linux `free_iova`: free the whole range holding `pfn`, whatever page of it `pfn` is;
    /// nothing if no range holds it. Returns the range freed. Unchecked: a range parked in the
    /// rcache is freed too (and later handed out twice), as in Linux.
    pub fn free_containing(&mut self, pfn: u64) -> Option<(u64, u64)> {
        let (lo, hi) = self.ranges.containing(pfn)?;
        self.ranges.remove(lo, hi);
        self.tree.set_range(lo, hi.saturating_add(1), true);
        Some((lo, hi))
    }

    /// Linux `alloc_iova_fast`: round small sizes, try the rcache, then the tree; on failure and
    /// with `flush_rcache`, return every cached range to the tree and retry once.
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
                    if self.hot && self.hot_order == order {
                        if self.hot_pfn <= max {
                            self.hot = false;
                            self.stats.rcache_hits += 1;
                            return Some(self.hot_pfn);
                        }
                        // Above the limit: search the whole magazine, as Linux would.
                        settle_hot(&mut self.hot, self.hot_pfn, bin);
                    }
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

    /// Linux `free_iova_fast`: park the range in the rcache, or free it to the tree.
    ///
    /// The caller must pass a range `alloc_fast` returned, with the same `pages`: this path does
    /// not check (checking costs a tree walk, and the DMA layer above already validated the
    /// unmap against its mapping table). Misuse cannot cause memory unsafety, only an IOVA being
    /// handed out twice; [`Self::free_checked_fast`] is the checked variant.
    #[inline(always)]
    pub fn free_fast(&mut self, pfn: u64, pages: u64) {
        if pages.wrapping_sub(1) < RCACHE_MAX_PAGES {
            let order = small_order(pages);
            if let Some(bins) = self.bins.as_mut() {
                if self.hot {
                    // The slot's range becomes a plain magazine entry of its bin.
                    if let Some(b) = bins.get_mut(self.hot_order) {
                        settle_hot(&mut self.hot, self.hot_pfn, b);
                    }
                }
                if let Some(bin) = bins.get_mut(order) {
                    if bin.loaded.len < MAG_SIZE {
                        // Leave the PFN alone when it is already there (freed where it was
                        // taken from).
                        if self.hot_pfn != pfn {
                            self.hot_pfn = pfn;
                        }
                        self.hot_order = order;
                        self.hot = true;
                    } else if let Some(evicted) =
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

    /// A full magazine the depot had no room for: each range back to the tree, in the
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

    fn is_cached(&self, pfn: u64, size: u64) -> bool {
        let Some(bins) = self.bins.as_ref() else {
            return false;
        };
        let order = order_of(size) as usize;
        let Some(bin) = bins.get(order) else {
            return false;
        };
        let has = |m: &Magazine| m.pfns[..m.len].contains(&pfn);
        (self.hot && self.hot_order == order && self.hot_pfn == pfn)
            || has(&bin.loaded)
            || has(&bin.prev)
            || bin.depot.iter().any(|m| has(m))
    }

    /// Return every cached range to the tree, in Linux's order: the CPU's loaded and
    /// previous magazines of every bin (`free_cpu_cached_iovas`), then every bin's depot
    /// (`free_global_cached_iovas`: index order for the array, head first for the list).
    pub fn flush_rcache(&mut self) {
        let Some(mut bins) = self.bins.take() else {
            return;
        };
        self.stats.rcache_flushes += 1;
        if self.hot {
            if let Some(b) = bins.get_mut(self.hot_order) {
                settle_hot(&mut self.hot, self.hot_pfn, b);
            }
        }
        for bin in bins.iter_mut() {
            self.drain(&mut bin.loaded);
            self.drain(&mut bin.prev);
        }
        for bin in bins.iter_mut() {
            let mut depot = std::mem::take(&mut bin.depot);
            if self.params.depot == IovaDepot::List {
                depot.reverse();
            }
            for mut m in depot.drain(..) {
                self.drain(&mut m);
                self.spare_mags.push(m);
            }
            bin.depot = depot;
        }
        self.bins = Some(bins);
    }

    /// Every range of `m` back to the tree, in order; `m` is left empty.
    fn drain(&mut self, m: &mut Magazine) {
        for &p in &m.pfns[..m.len] {
            self.free_containing(p);
        }
        m.len = 0;
    }
}

/// Push the hot slot's PFN onto its bin's loaded magazine (which has room for it) and empty
/// the slot.
#[inline(always)]
fn settle_hot(hot: &mut bool, hot_pfn: u64, bin: &mut Bin) {
    let m = &mut bin.loaded;
    if let Some(slot) = m.pfns.get_mut(m.len) {
        *slot = hot_pfn;
        m.len += 1;
    }
    *hot = false;
}

#[inline(always)]
fn rcache_get(bin: &mut Bin, spare: &mut Vec<Box<Magazine>>, max_pfn: u64) -> Option<u64> {
    if bin.loaded.len == 0 {
        rcache_refill(bin, spare)?;
    }
    bin.loaded.pop(max_pfn)
}

/// Loaded is empty: swap in prev, or a full magazine from the depot.
#[cold]
#[inline(never)]
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

/// Push `pfn`; returns a magazine whose ranges must go back to the tree (depot full).
#[inline(always)]
fn rcache_insert(
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
/// the array depot is full) and continue with an empty magazine. The depot's last element is
/// the array's top and the list's head.
#[cold]
#[inline(never)]
fn rcache_spill(
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
    if depot == IovaDepot::List || bin.depot.len() < MAX_DEPOT_MAGS {
        bin.depot.push(fresh);
        None
    } else {
        Some(fresh)
    }
}

#[cfg(test)]
mod tests;
