//! The search of the range set: the block Linux's downward walk stops at, found by one descent
//! that leaves the path towards `high` only for a child whose gaps can hold the request.

use super::node::{count_lt, ge_mask, highest, low_bits};
use super::RangeSet;

/// A search: the highest `p` with `p & !mask == 0`, `low <= p` and `p + size <= high`, in free
/// space. `cap_needed` is the smallest gap capacity (`1 + order`) that can hold it.
#[derive(Clone, Copy)]
pub(super) struct Fit {
    low: u64,
    high: u64,
    size: u64,
    mask: u64,
    cap_needed: u8,
}

impl Fit {
    /// The answer inside the gap above a range ending at `hi` and below `top`, if any.
    #[inline]
    pub(super) fn above(&self, hi: u64, top: u64) -> Option<u64> {
        self.within(hi.saturating_add(1), top)
    }

    /// The answer inside `[a, b)`, if any.
    #[inline]
    pub(super) fn within(&self, a: u64, b: u64) -> Option<u64> {
        let a = a.max(self.low);
        let b = b.min(self.high);
        if b < a || b - a < self.size {
            return None;
        }
        let p = (b - self.size) & self.mask;
        (p >= a).then_some(p)
    }

    /// Whether gaps whose largest capacity is `cap` may hold it.
    #[inline]
    pub(super) fn may_hold(&self, cap: u8) -> bool {
        cap >= self.cap_needed
    }
}

impl RangeSet {
    /// The highest `p` with `p & !mask == 0`, `low <= p`, `p + size <= high` and
    /// `[p, p + size)` clear of every range: the block Linux's downward walk stops at.
    /// `size` must be at least 1; `mask` all ones (unaligned) or aligning to a power of two
    /// at or above `size`.
    pub fn highest_fit(&self, low: u64, high: u64, size: u64, mask: u64) -> Option<u64> {
        if size == 0 || high < size {
            return None;
        }
        let align = (!mask).wrapping_add(1);
        // An aligned power-of-two block needs a gap of its order; a size aligned to the next
        // power of two needs one of the order below (its first half is such a block); an
        // unaligned size a gap of at least `size` pages, so of capacity `log2(size)` or more.
        let cap_needed = if mask == u64::MAX {
            (63 - size.leading_zeros() as u8).max(1)
        } else if align == size {
            1 + size.trailing_zeros() as u8
        } else {
            align.trailing_zeros() as u8
        };
        let fit = Fit {
            low,
            high,
            size,
            mask,
            cap_needed,
        };
        if self.len == 0 {
            return fit.within(0, u64::MAX);
        }
        // Then the gap below the lowest range.
        self.search(self.height, self.root, u64::MAX, &fit)
            .or_else(|| fit.within(0, self.summary_of(self.height, self.root).min_lo))
    }

    /// [`Self::highest_fit`] over the gaps above each range of node `idx` (height `h`), the
    /// topmost one ending at `upper` (the first range above the node).
    fn search(&self, h: u32, idx: u32, upper: u64, fit: &Fit) -> Option<u64> {
        if h == 0 {
            let l = &self.leaves[idx as usize];
            // Ranges whose gap above starts below `high`. The topmost one's gap may be cut by
            // `high` or end at `upper`: checked whatever its capacity.
            let top = count_lt(&l.lo, l.n, fit.high.saturating_sub(1));
            let i = top.checked_sub(1)?;
            let end = if top < l.n { l.lo[top] } else { upper };
            if let Some(p) = fit.above(l.hi[i], end) {
                return Some(p);
            }
            // Below it, only gaps whose capacity can hold the request, highest first.
            let mut cand = ge_mask(&l.gcap, fit.cap_needed) & low_bits(i);
            while cand != 0 {
                let i = highest(cand);
                let end = l.lo[i + 1];
                if end <= fit.low {
                    return None;
                }
                if let Some(p) = fit.above(l.hi[i], end) {
                    return Some(p);
                }
                cand &= !(1 << i);
            }
            return None;
        }
        let node = &self.inners[idx as usize];
        let top = count_lt(&node.min_lo, node.n, fit.high.saturating_sub(1));
        let i = top.checked_sub(1)?;
        // The child on the path towards `high`, then below it only children whose own gaps
        // or gap above can hold the request, highest first.
        let mut cand = (ge_mask(&node.scap, fit.cap_needed) & low_bits(i)) | (1 << i);
        while cand != 0 {
            let i = highest(cand);
            let end = if i + 1 < node.n {
                node.min_lo[i + 1]
            } else {
                upper
            };
            if end <= fit.low {
                return None;
            }
            if let Some(p) = fit.above(node.max_hi[i], end) {
                return Some(p);
            }
            if fit.may_hold(node.ccap[i]) {
                if let Some(p) = self.search(h - 1, node.child[i], end, fit) {
                    return Some(p);
                }
            }
            cand &= !(1 << i);
        }
        None
    }
}
