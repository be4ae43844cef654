//! The IOVA allocator of a DMA domain (Linux iova.c semantics, different data structure).
//!
//! Behaviour kept from Linux: page-frame numbers in units of the domain granule; top-down
//! allocation below an inclusive limit; sizes below 32 pages rounded up to a power of two and
//! every block naturally aligned to its rounded size; a range cache ("rcache") in front of the
//! tree with 6 size bins (1..32 pages), 127-entry magazines, a loaded/prev pair per CPU and a
//! depot of at most 32 full magazines, and a flush of all cached ranges before giving up.
//!
//! What differs: the free space is an [`IovaTree`] (a bitmap tree with per-child capacities)
//! rather than an rbtree, so the uncached path finds the *highest* fitting aligned hole in
//! O(log n) instead of walking nodes from a cached position.

// Spare and depot magazines are boxed so that moving them moves a pointer, not 1 KiB.
#![allow(clippy::vec_box)]

mod tree;

pub use tree::IovaTree;

use thiserror::Error;

/// Number of rcache size bins (orders 0..=5).
pub const RCACHE_BINS: usize = 6;
/// PFNs per magazine (fills a 1 KiB kmalloc bucket in Linux).
pub const MAG_SIZE: usize = 127;
/// Full magazines the depot holds per bin (v6.1's fixed array).
pub const MAX_DEPOT_MAGS: usize = 32;
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
        if bits > 42 {
            return Err(IovaError::BadParams("IOVA space above 2^42 pages"));
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

    /// Mark `[lo_pfn, hi_pfn]` (inclusive) as never allocatable (Linux `reserve_iova`).
    pub fn reserve(&mut self, lo_pfn: u64, hi_pfn: u64) {
        if lo_pfn <= hi_pfn {
            self.tree.set_range(lo_pfn, hi_pfn.saturating_add(1), false);
        }
    }

    /// Allocate `pages` from the tree (Linux `alloc_iova`): the highest block ending at or below
    /// `limit_pfn` (inclusive); `aligned` aligns it to `pages` rounded up to a power of two.
    /// Sizes are not rounded.
    pub fn alloc(&mut self, pages: u64, limit_pfn: u64, aligned: bool) -> Option<u64> {
        if pages == 0 || pages > (1u64 << 42) {
            return None;
        }
        let limit = limit_pfn.min(self.params.end_pfn).saturating_add(1);
        let pfn = if aligned {
            self.tree.alloc(order_of(pages), pages, limit)
        } else {
            let p = self.find_unaligned(pages, limit);
            if let Some(p) = p {
                self.tree.set_range(p, p + pages, false);
            }
            p
        };
        if pfn.is_some() {
            self.stats.tree_allocs += 1;
        }
        pfn
    }

    /// Unaligned fit: the highest free run of `pages` pages. Found by taking the highest aligned
    /// block of the largest power of two not above `pages` and extending or sliding from there;
    /// rare (only explicit unaligned callers), so a bounded scan is acceptable.
    fn find_unaligned(&self, pages: u64, limit: u64) -> Option<u64> {
        let mut top = limit;
        while top >= pages {
            let lo = top - pages;
            if self.tree.range_is(lo, top, true) {
                return Some(lo);
            }
            // Slide below the highest used page in the window: find it by halving.
            let (mut a, mut b) = (lo, top); // some page in [a, b) is used
            while b - a > 1 {
                let mid = a + (b - a) / 2;
                if self.tree.range_is(mid, b, true) {
                    b = mid;
                } else {
                    a = mid;
                }
            }
            top = a;
        }
        None
    }

    /// Free a tree allocation made by [`Self::alloc`], checked: the whole range must be
    /// allocated.
    pub fn free(&mut self, pfn: u64, pages: u64) -> Result<(), IovaError> {
        let end = pfn
            .checked_add(pages)
            .filter(|&e| pages > 0 && e <= self.params.end_pfn + 1 && pfn >= self.params.start_pfn)
            .ok_or(IovaError::OutOfRange { pfn, pages })?;
        if !self.tree.range_is(pfn, end, false) {
            return Err(IovaError::NotAllocated { pfn, pages });
        }
        self.tree.set_range(pfn, end, true);
        Ok(())
    }

    /// Linux `alloc_iova_fast`: round small sizes, try the rcache, then the tree; on failure and
    /// with `flush_rcache`, return every cached range to the tree and retry once.
    #[inline(always)]
    pub fn alloc_fast(&mut self, pages: u64, limit_pfn: u64, flush_rcache: bool) -> Option<u64> {
        if pages.wrapping_sub(1) < ROUND_BELOW - 1 {
            let order = small_order(pages);
            let size = 1u64 << order;
            if let Some(bins) = self.bins.as_mut() {
                // A cached block fits if it ends at or below the inclusive limit.
                if let (Some(bin), Some(max)) = (
                    bins.get_mut(order),
                    limit_pfn.saturating_add(1).checked_sub(size),
                ) {
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
        // Small sizes straight to the tree (no rcache, or it missed): one call fewer.
        if pages <= ROUND_BELOW {
            let limit = limit_pfn.min(self.params.end_pfn).saturating_add(1);
            if let Some(p) = self.tree.alloc(small_order(pages) as u32, size, limit) {
                self.stats.tree_allocs += 1;
                return Some(p);
            }
        } else if let Some(p) = self.alloc(size, limit_pfn, true) {
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
                    } else if let Some(evicted) = rcache_insert(bin, &mut self.spare_mags, pfn) {
                        self.evict(evicted, 1u64 << order);
                    }
                    return;
                }
            }
        }
        self.free_slow(pfn, pages);
    }

    #[cold]
    #[inline(never)]
    fn evict(&mut self, mut mag: Box<Magazine>, size: u64) {
        for &p in &mag.pfns[..mag.len] {
            self.tree.set_range(p, p + size, true);
        }
        mag.len = 0;
        self.spare_mags.push(mag);
    }

    #[cold]
    #[inline(never)]
    fn free_slow(&mut self, pfn: u64, pages: u64) {
        // Rounded by one `lzcnt` for the cache's sizes (no branch on the size).
        let size = if pages.wrapping_sub(1) < RCACHE_MAX_PAGES {
            1 << small_order(pages)
        } else {
            fast_size(pages)
        };
        self.tree.set_range(pfn, pfn.saturating_add(size), true);
    }

    /// [`Self::free_fast`] after checking that the range is allocated in the tree and not
    /// already cached.
    pub fn free_checked_fast(&mut self, pfn: u64, pages: u64) -> Result<(), IovaError> {
        let size = fast_size(pages);
        let end = pfn
            .checked_add(size)
            .filter(|&e| pages > 0 && e <= self.params.end_pfn + 1 && pfn >= self.params.start_pfn)
            .ok_or(IovaError::OutOfRange { pfn, pages })?;
        if !self.tree.range_is(pfn, end, false) || self.is_cached(pfn, size) {
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

    /// Return every cached range to the tree (Linux `free_cpu_cached_iovas` + depot).
    pub fn flush_rcache(&mut self) {
        let Some(bins) = self.bins.as_mut() else {
            return;
        };
        self.stats.rcache_flushes += 1;
        if self.hot {
            if let Some(b) = bins.get_mut(self.hot_order) {
                settle_hot(&mut self.hot, self.hot_pfn, b);
            }
        }
        for (order, bin) in bins.iter_mut().enumerate() {
            let size = 1u64 << order;
            let mut drain = |m: &mut Magazine| {
                for &p in &m.pfns[..m.len] {
                    self.tree.set_range(p, p + size, true);
                }
                m.len = 0;
            };
            drain(&mut bin.loaded);
            drain(&mut bin.prev);
            for mut m in bin.depot.drain(..) {
                drain(&mut m);
                self.spare_mags.push(m);
            }
        }
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
fn rcache_insert(bin: &mut Bin, spare: &mut Vec<Box<Magazine>>, pfn: u64) -> Option<Box<Magazine>> {
    let evicted = if bin.loaded.full() {
        rcache_spill(bin, spare)
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
/// the depot is full) and continue with an empty magazine.
#[cold]
#[inline(never)]
fn rcache_spill(bin: &mut Bin, spare: &mut Vec<Box<Magazine>>) -> Option<Box<Magazine>> {
    if !bin.prev.full() {
        std::mem::swap(&mut bin.loaded, &mut *bin.prev);
        return None;
    }
    let mut fresh = spare.pop().unwrap_or_else(Magazine::new);
    fresh.len = 0;
    std::mem::swap(&mut bin.loaded, &mut *fresh);
    if bin.depot.len() < MAX_DEPOT_MAGS {
        bin.depot.push(fresh);
        None
    } else {
        Some(fresh)
    }
}

#[cfg(test)]
mod tests;
