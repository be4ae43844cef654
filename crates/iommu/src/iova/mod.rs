//! The IOVA allocator of a DMA domain (Linux iova.c semantics, different data structure).
//!
//! Behaviour kept from Linux: page-frame numbers in units of the domain granule; top-down
//! allocation below an inclusive limit; sizes below 32 pages rounded up to a power of two and
//! every block naturally aligned to its rounded size; a range cache ("rcache") in front of the
//! range set with 6 size bins (1..32 pages), 127-entry magazines, a loaded/prev pair per CPU
//! and a depot of full magazines, and a flush of all cached ranges before giving up.
//!
//! One module per concept, one path through each:
//! * [`range_set`]: the allocated, cached and reserved ranges in a B+ tree whose every slot
//!   knows the largest aligned free gap below it, so that "the highest aligned block in a gap
//!   below a bound" — the block Linux's range-by-range walk stops at — is one descent;
//! * [`ranges`]: what Linux keeps beside its rbtree — the cached positions an allocation
//!   starts from (`cached_node` / `cached32_node`, moved by allocations and frees as Linux
//!   moves them), `max32_alloc_size`, `reserve_iova`'s merging;
//! * `placement`: `alloc_iova` (next-fit downward from the cached position and, failing
//!   that, once more between the limit and that position) and `free_iova`;
//! * `rcache`: `alloc_iova_fast` / `free_iova_fast` over the magazines, and the flush;
//! * `depot`: per kernel version ([`IovaDepot`]) up to v6.6 an array of at most 32 full
//!   magazines per bin (a full magazine beyond that goes straight back to the range set)
//!   flushed in index order; from v6.7 (911aa1245da8) an unbounded list, flushed newest first.

// Spare and depot magazines are boxed so that moving them moves a pointer, not 1 KiB.
#![allow(clippy::vec_box)]

mod depot;
mod placement;
mod range_set;
mod ranges;
mod rcache;

pub use depot::{IovaDepot, MAX_DEPOT_MAGS};
pub use ranges::ANCHOR;

use ranges::Ranges;
use rcache::{Bin, Magazine};

use smmu_addr::{IovaPfn, PageCount};
use thiserror::Error;

/// Number of rcache size bins (orders 0..=5).
pub const RCACHE_BINS: usize = 6;
/// PFNs per magazine (fills a 1 KiB kmalloc bucket in Linux).
pub const MAG_SIZE: usize = 127;
/// Largest IOVA space the allocator covers, in pages (log2).
const MAX_SPACE_BITS: u32 = 42;
/// Granules at or above 4 GiB would leave no 32-bit PFN range.
const MAX_GRANULE_SHIFT: u32 = 31;

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
        pfn: IovaPfn,
        /// Pages.
        pages: PageCount,
    },
    /// The range is empty or leaves the domain.
    #[error("IOVA range pfn {pfn:#x} + {pages} pages is outside the domain")]
    OutOfRange {
        /// First page frame.
        pfn: IovaPfn,
        /// Pages.
        pages: PageCount,
    },
    /// Unusable [`IovaParams`].
    #[error("bad IOVA domain parameters: {0}")]
    BadParams(&'static str),
}

/// Counters of one IOVA domain.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IovaStats {
    /// Allocations served from the rcache.
    pub rcache_hits: u64,
    /// Allocations that went to the range set.
    pub tree_allocs: u64,
    /// Allocations that failed.
    pub failures: u64,
    /// Times all cached ranges were flushed back to the range set.
    pub rcache_flushes: u64,
}

/// Geometry and options of an [`IovaDomain`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IovaParams {
    /// log2 of the granule (the smallest page size of the domain).
    pub shift: u32,
    /// Lowest allocatable PFN (Linux: max(1, aperture_start >> shift)).
    pub start_pfn: IovaPfn,
    /// Highest allocatable PFN, inclusive (aperture end >> shift).
    pub end_pfn: IovaPfn,
    /// Serve small allocations from the range cache.
    pub rcache: bool,
    /// The kernel version's depot.
    pub depot: IovaDepot,
}

/// The IOVA space of one DMA domain. Not internally locked: the domain's lock covers it.
#[derive(Clone)]
pub struct IovaDomain {
    /// Allocated ranges and the cached positions allocations start from.
    ranges: Box<Ranges>,
    params: IovaParams,
    /// The rcache's bins, inline: the fast paths reach a bin at a fixed offset from the domain
    /// with no pointer to load. Without an rcache their loaded magazines are closed (take and
    /// hold nothing), so the fast paths need no test of their own for it.
    bins: [Bin; RCACHE_BINS],
    spare_mags: Vec<Box<Magazine>>,
    stats: IovaStats,
    /// Before dcdb3ba7e2a8: the retry's low bound is the cached range's `pfn_hi + 1`, which
    /// overflows to 0 when the cached range is the anchor ([`Self::with_anchor_retry_overflow`]).
    anchor_retry_overflows: bool,
}

impl std::fmt::Debug for IovaDomain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IovaDomain")
            .field("params", &self.params)
            .field("ranges", &self.ranges.len())
            .field("stats", &self.stats)
            .finish()
    }
}

impl IovaDomain {
    /// A domain over `[start_pfn, end_pfn]` (both inclusive), everything else reserved.
    pub fn new(params: IovaParams) -> Result<IovaDomain, IovaError> {
        if params.start_pfn > params.end_pfn {
            return Err(IovaError::BadParams("start above end"));
        }
        let bits = 64 - params.end_pfn.get().leading_zeros();
        if bits > MAX_SPACE_BITS {
            return Err(IovaError::BadParams("IOVA space above 2^42 pages"));
        }
        if params.shift > MAX_GRANULE_SHIFT {
            return Err(IovaError::BadParams("granule of 4 GiB or more"));
        }
        let bins = std::array::from_fn(|order| Bin::new(order, params.rcache));
        Ok(IovaDomain {
            ranges: Box::new(Ranges::new(params.shift)),
            params,
            bins,
            spare_mags: Vec::new(),
            stats: IovaStats::default(),
            anchor_retry_overflows: false,
        })
    }

    /// The same domain with `__alloc_and_insert_iova_range`'s retry as before dcdb3ba7e2a8
    /// "iommu/iova: Fix alloc iova overflows issue" (`overflows`): the retry starts above the
    /// cached range at `pfn_hi + 1`, which is 0 when the cached range is the anchor (`pfn_hi`
    /// all ones), so a request too large for the space above `start_pfn` is retried down to
    /// PFN 0 and succeeds below `start_pfn`. Since the fix the retry bound is `pfn_hi`, and
    /// the anchor is never below the limit, so there is no retry.
    pub fn with_anchor_retry_overflow(mut self, overflows: bool) -> IovaDomain {
        self.anchor_retry_overflows = overflows;
        self
    }

    /// The parameters the domain was built with.
    pub fn params(&self) -> IovaParams {
        self.params
    }

    /// Counters.
    pub fn stats(&self) -> IovaStats {
        self.stats
    }

    /// Pages of `[start_pfn, end_pfn]` neither allocated nor reserved (cached ranges count as
    /// allocated). Counts the ranges: O(n), for statistics.
    pub fn free_pages(&self) -> PageCount {
        let (start, end) = (self.params.start_pfn.get(), self.params.end_pfn.get());
        let used: u64 = self
            .ranges
            .iter()
            .filter(|&(lo, hi)| lo <= end && hi >= start)
            .map(|(lo, hi)| hi.min(end) - lo.max(start) + 1)
            .sum();
        PageCount::new(end - start + 1 - used)
    }

    /// Whether no range overlaps `[lo, hi)`.
    pub fn is_free(&self, lo: IovaPfn, hi: IovaPfn) -> bool {
        let (lo, hi) = (lo.get(), hi.get());
        self.ranges.iter().all(|(l, h)| h < lo || l >= hi)
    }

    /// The allocated, cached and reserved ranges, ascending: `(pfn_lo, pfn_hi)`.
    pub fn ranges(&self) -> impl Iterator<Item = (IovaPfn, IovaPfn)> + '_ {
        self.ranges
            .iter()
            .map(|(lo, hi)| (IovaPfn::new(lo), IovaPfn::new(hi)))
    }
}

#[cfg(test)]
impl IovaDomain {
    /// Everything the allocator holds, for tests that compare two allocators.
    pub(crate) fn dump(&self) -> String {
        let mut s = format!(
            "{:?} {:?} {:?} retry_overflows={}\nranges {:?}\n",
            self.params,
            self.ranges,
            self.stats,
            self.anchor_retry_overflows,
            self.ranges.iter().collect::<Vec<_>>()
        );
        let bins = if self.params.rcache {
            &self.bins[..]
        } else {
            &[]
        };
        for (i, b) in bins.iter().enumerate() {
            s += &format!(
                "bin {i}: loaded {:?} prev {:?} depot {:?}\n",
                b.loaded.entries(),
                b.prev.entries(),
                b.depot.magazines()
            );
        }
        s + &format!("spare magazines {}\n", self.spare_mags.len())
    }
}

#[cfg(test)]
mod tests;
