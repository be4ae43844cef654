//! The allocated ranges of an IOVA domain as Linux's `iova.c` keeps them: an ordered set of
//! `[pfn_lo, pfn_hi]` ranges ending in an anchor range at the top of the address space, plus
//! the two positions the next allocation starts from (`cached_node` for limits above 4 GiB,
//! `cached32_node` for limits at or below) and the size below which a 32-bit allocation may
//! still succeed (`max32_alloc_size`).
//!
//! These positions are what make Linux's allocator *next-fit*: an allocation searches downward
//! from the range it last allocated (or from the range above the one it last freed), not from
//! the top, so it can return a lower address than the highest free hole. The bitmap tree
//! ([`super::IovaTree`]) answers "the highest fitting block below a bound" in O(log n); this
//! set says where the bound is, exactly as Linux's rbtree would.
//!
//! Cached positions are stored as the `(pfn_lo, pfn_hi)` of the range they point at (ranges
//! never overlap, so `pfn_lo` names a range); [`ANCHOR`] is the anchor.

use std::collections::BTreeMap;
use std::ops::Bound::{Excluded, Unbounded};

/// `pfn_lo` and `pfn_hi` of the anchor range (Linux `IOVA_ANCHOR`, all ones).
pub const ANCHOR: u64 = u64::MAX;

/// 4 GiB: limits at or below it use the 32-bit cached position.
const DMA_32BIT_BYTES_SHIFT: u32 = 32;

/// Allocated ranges and cached positions of one domain.
#[derive(Clone, Debug)]
pub struct Ranges {
    /// `pfn_lo -> pfn_hi` of every allocated, cached or reserved range, and the anchor.
    map: BTreeMap<u64, u64>,
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
        let mut map = BTreeMap::new();
        map.insert(ANCHOR, ANCHOR);
        Ranges {
            map,
            cached: (ANCHOR, ANCHOR),
            cached32: (ANCHOR, ANCHOR),
            dma_32bit_pfn,
            max32_alloc_size: dma_32bit_pfn,
        }
    }

    /// The ranges in ascending order, without the anchor: `(pfn_lo, pfn_hi)`.
    pub fn iter(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.map
            .iter()
            .filter(|(&lo, _)| lo != ANCHOR)
            .map(|(&lo, &hi)| (lo, hi))
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
        self.map.insert(lo, hi);
        if hi < self.dma_32bit_pfn {
            self.cached32 = (lo, hi);
        } else {
            self.cached = (lo, hi);
        }
    }

    /// The range holding `pfn`, if any (the anchor is never returned).
    #[inline]
    pub fn containing(&self, pfn: u64) -> Option<(u64, u64)> {
        let (&lo, &hi) = self.map.range(..=pfn).next_back()?;
        (lo != ANCHOR && hi >= pfn).then_some((lo, hi))
    }

    /// [`Self::containing`] and [`Self::remove_before`] in one: remove the range holding `pfn` and
    /// return it. When `pfn` starts its range (the DMA layer frees by the first page), one
    /// ordered search finds both the range and the one above it, instead of two.
    #[inline]
    pub fn take_containing(&mut self, pfn: u64) -> Option<(u64, u64)> {
        let mut from = self.map.range(pfn..);
        let (lo, hi, next) = match from.next() {
            Some((&lo, &hi)) if lo == pfn && lo != ANCHOR => {
                (lo, hi, from.next().map(|(&k, &v)| (k, v)))
            }
            _ => {
                let (lo, hi) = self.containing(pfn)?;
                (lo, hi, None)
            }
        };
        self.remove_before(lo, hi, next);
        Some((lo, hi))
    }

    /// Remove the range starting at `lo` (which must be held), moving cached positions that
    /// pointed at or below-and-within it to the next range up, as Linux's delete update does.
    /// `next` is the range above `lo` when already known.
    #[inline]
    fn remove_before(&mut self, lo: u64, hi: u64, next: Option<(u64, u64)>) {
        let move32 = lo == self.cached32.0 || (hi < self.dma_32bit_pfn && lo >= self.cached32.0);
        let move64 = lo >= self.cached.0;
        if move32 || move64 {
            let next = next.unwrap_or_else(|| {
                self.map
                    .range((Excluded(lo), Unbounded))
                    .next()
                    .map_or((ANCHOR, ANCHOR), |(&k, &v)| (k, v))
            });
            if move32 {
                self.cached32 = next;
            }
            if move64 {
                self.cached = next;
            }
        }
        if lo < self.dma_32bit_pfn {
            self.max32_alloc_size = self.dma_32bit_pfn;
        }
        self.map.remove(&lo);
    }

    /// Linux `reserve_iova`: every range overlapping `[lo, hi]` (ascending) is extended down
    /// to `lo` if it starts above it, and the part above it is what remains to reserve; the
    /// remainder, if any, becomes a range of its own. Cached positions do not move. Returns
    /// the ranges whose pages became reserved, for the tree.
    pub fn reserve(&mut self, mut lo: u64, mut hi: u64) -> Vec<(u64, u64)> {
        let mut marked = Vec::new();
        let overlapping: Vec<(u64, u64)> = self
            .map
            .iter()
            .filter(|(&l, &h)| l != ANCHOR && l <= hi && h >= lo)
            .map(|(&l, &h)| (l, h))
            .collect();
        for (l, h) in overlapping {
            // Overlap is judged against the range still to reserve.
            if !(l <= hi && h >= lo) {
                continue;
            }
            if lo < l {
                self.map.remove(&l);
                self.map.insert(lo, h);
                for c in [&mut self.cached, &mut self.cached32] {
                    if c.0 == l {
                        *c = (lo, h);
                    }
                }
                marked.push((lo, l - 1));
            }
            if hi > h {
                lo = h + 1;
            } else {
                return marked;
            }
        }
        if lo <= hi {
            hi = hi.min(ANCHOR - 1);
            self.map.insert(lo, hi);
            marked.push((lo, hi));
        }
        marked
    }

    /// Linux's downward walk without a tree index: the highest `p` with `p & !mask == 0`,
    /// `[p, p + size)` clear of every range, `p + size <= high` and `p >= low`. `None` where
    /// Linux's walk fails (including `high < size`).
    pub fn walk_down(&self, high: u64, low: u64, size: u64, mask: u64) -> Option<u64> {
        let mut high = high;
        let mut new = high.wrapping_sub(size) & mask;
        for (&lo, &hi) in self.map.range(..high).rev() {
            if !(new <= hi && new >= low) {
                break;
            }
            high = high.min(lo);
            new = high.wrapping_sub(size) & mask;
        }
        (high >= size && new >= low).then_some(new)
    }
}
