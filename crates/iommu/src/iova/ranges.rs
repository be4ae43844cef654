//! The allocated ranges of an IOVA domain as Linux's `iova.c` keeps them: an ordered set of
//! `[pfn_lo, pfn_hi]` ranges ending in an anchor range at the top of the address space, plus
//! the two positions the next allocation starts from (`cached_node` for limits above 4 GiB,
//! `cached32_node` for limits at or below) and the size below which a 32-bit allocation may
//! still succeed (`max32_alloc_size`).
//!
//! These positions are what make Linux's allocator *next-fit*: an allocation searches downward
//! from the range it last allocated (or from the range above the one it last freed), not from
//! the top, so it can return a lower address than the highest free hole. The set itself
//! ([`RangeSet`]) answers "the highest fitting block below a bound" in one descent; this module
//! says where the bound is, exactly as Linux's rbtree would.
//!
//! Cached positions are stored as the `(pfn_lo, pfn_hi)` of the range they point at (ranges
//! never overlap, so `pfn_lo` names a range); [`ANCHOR`] is the anchor.

use super::range_set::RangeSet;

/// `pfn_lo` and `pfn_hi` of the anchor range (Linux `IOVA_ANCHOR`, all ones).
pub const ANCHOR: u64 = u64::MAX;

/// 4 GiB: limits at or below it use the 32-bit cached position.
const DMA_32BIT_BYTES_SHIFT: u32 = 32;

/// Allocated ranges and cached positions of one domain.
#[derive(Clone, Debug)]
pub struct Ranges {
    /// Every allocated, cached or reserved range, and the anchor.
    set: RangeSet,
    /// `(pfn_lo, pfn_hi)` of Linux's `cached_node`.
    cached: (u64, u64),
    /// `(pfn_lo, pfn_hi)` of Linux's `cached32_node`.
    cached32: (u64, u64),
    /// First PFN at 4 GiB (`dma_32bit_pfn`).
    dma_32bit_pfn: u64,
    /// A 32-bit allocation of at least this many pages fails without searching
    /// (`max32_alloc_size`): set by a failed allocation, reset by freeing below 4 GiB.
    max32_alloc_size: u64,
}

impl Ranges {
    /// An empty set for a granule of `1 << shift` bytes (`shift` below 32).
    pub fn new(shift: u32) -> Ranges {
        let dma_32bit_pfn = 1u64 << DMA_32BIT_BYTES_SHIFT.saturating_sub(shift);
        let mut set = RangeSet::new();
        set.insert(ANCHOR, ANCHOR);
        Ranges {
            set,
            cached: (ANCHOR, ANCHOR),
            cached32: (ANCHOR, ANCHOR),
            dma_32bit_pfn,
            max32_alloc_size: dma_32bit_pfn,
        }
    }

    /// The ranges in ascending order, without the anchor: `(pfn_lo, pfn_hi)`.
    pub fn iter(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.set.iter().filter(|&(lo, _)| lo != ANCHOR)
    }

    /// Ranges held, the anchor included.
    pub fn len(&self) -> usize {
        self.set.len()
    }

    /// `(pfn_lo, pfn_hi)` of the cached position an allocation below the exclusive
    /// `limit` starts from.
    #[inline]
    pub fn start_for(&self, limit: u64) -> (u64, u64) {
        if limit <= self.dma_32bit_pfn {
            self.cached32
        } else {
            self.cached
        }
    }

    /// Whether an allocation of `size` pages below the exclusive `limit` is known to fail
    /// (a 32-bit allocation at least as large as one that failed since the last free below
    /// 4 GiB).
    #[inline]
    pub fn known_full(&self, limit: u64, size: u64) -> bool {
        limit <= self.dma_32bit_pfn && size >= self.max32_alloc_size
    }

    /// Record a failed allocation of `size` pages.
    pub fn note_failure(&mut self, size: u64) {
        self.max32_alloc_size = size;
    }

    /// Add an allocated range and make it the cached position of its half of the space.
    #[inline]
    pub fn insert_allocated(&mut self, lo: u64, hi: u64) {
        self.set.insert(lo, hi);
        if hi < self.dma_32bit_pfn {
            self.cached32 = (lo, hi);
        } else {
            self.cached = (lo, hi);
        }
    }

    /// The range holding `pfn`, if any (the anchor is never returned).
    #[inline]
    pub fn containing(&self, pfn: u64) -> Option<(u64, u64)> {
        let (lo, hi) = self.set.at_or_below(pfn).0?;
        (lo != ANCHOR && hi >= pfn).then_some((lo, hi))
    }

    /// Remove the range holding `pfn` and return it. One descent finds both the range and
    /// the one above it (where the cached positions may move).
    #[inline]
    pub fn take_containing(&mut self, pfn: u64) -> Option<(u64, u64)> {
        if pfn == ANCHOR {
            return None;
        }
        let ((lo, hi), above) = self.set.take_holding(pfn)?;
        self.move_cached_past(lo, hi, above.unwrap_or((ANCHOR, ANCHOR)));
        Some((lo, hi))
    }

    /// The range `[lo, hi]` was removed: move cached positions that pointed at or
    /// below-and-within it to the next range up (`next`), as Linux's delete
    /// update does. The range is already out of the set.
    #[inline]
    fn move_cached_past(&mut self, lo: u64, hi: u64, next: (u64, u64)) {
        if lo == self.cached32.0 || (hi < self.dma_32bit_pfn && lo >= self.cached32.0) {
            self.cached32 = next;
        }
        if lo >= self.cached.0 {
            self.cached = next;
        }
        if lo < self.dma_32bit_pfn {
            self.max32_alloc_size = self.dma_32bit_pfn;
        }
    }

    /// Linux `reserve_iova`: every range overlapping `[lo, hi]` (ascending) is extended down
    /// to `lo` if it starts above it, and the part above it is what remains to reserve; the
    /// remainder, if any, becomes a range of its own. Cached positions do not move.
    pub fn reserve(&mut self, mut lo: u64, mut hi: u64) {
        let overlapping: Vec<(u64, u64)> =
            self.iter().filter(|&(l, h)| l <= hi && h >= lo).collect();
        for (l, h) in overlapping {
            // Overlap is judged against the range still to reserve.
            if !(l <= hi && h >= lo) {
                continue;
            }
            if lo < l {
                self.set.remove(l);
                self.set.insert(lo, h);
                for c in [&mut self.cached, &mut self.cached32] {
                    if c.0 == l {
                        *c = (lo, h);
                    }
                }
            }
            if hi > h {
                lo = h + 1;
            } else {
                return;
            }
        }
        if lo <= hi {
            hi = hi.min(ANCHOR - 1);
            self.set.insert(lo, hi);
        }
    }

    /// Linux's downward walk: the highest `p` with `p & !mask == 0`, `[p, p + size)` clear of
    /// every range, `p + size <= high` and `p >= low`. `None` where Linux's walk fails
    /// (including `high < size`).
    #[inline]
    pub fn highest_fit(&self, high: u64, low: u64, size: u64, mask: u64) -> Option<u64> {
        self.set.highest_fit(low, high, size, mask)
    }
}
