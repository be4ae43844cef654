//! The range set: disjoint `[lo, hi]` ranges (inclusive PFNs) in a B+ tree whose every slot
//! also summarises the free gaps between the ranges below it, so that the question Linux's
//! `alloc_iova` answers by walking its rbtree range by range — "the highest aligned block of
//! `size` pages in a gap between `low` and `high`" — is one descent.
//!
//! Leaves hold up to [`FANOUT`] ranges sorted by `lo`, with the *capacity* of the gap above
//! each (1 + the order of the largest naturally aligned block it holds); interior nodes hold up
//! to [`FANOUT`] children with, per child, its lowest `lo`, highest `hi` and the largest
//! capacity among the gaps between its ranges. A full node splits in two; an emptied node is
//! dropped (nodes are not merged: the height stays that of the largest set held). A search goes
//! down the path towards `high` and, leaving it, enters only a child whose gaps can hold the
//! request: one descent for a power-of-two size aligned to itself (the DMA layer's every
//! request: capacities are exact for it). Other sizes prune by a necessary capacity (a gap of
//! `len` pages has capacity `log2(len)` or one more) and may enter a child in vain.

mod node;
mod search;

use node::{count_le, count_lt, Inner, Leaf, Summary, FANOUT};

/// An inclusive range of page frames, `(lo, hi)`.
pub type Range = (u64, u64);

/// What an insertion did to a node.
enum Change {
    /// Its summary is as before.
    Unchanged,
    /// Its summary may have changed.
    Changed,
    /// It split: the new right half and that half's summary.
    Split(u32, Summary),
}

/// Disjoint inclusive ranges of page frames, ordered, with their gaps indexed.
#[derive(Clone)]
pub struct RangeSet {
    leaves: Vec<Leaf>,
    inners: Vec<Inner>,
    spare_leaves: Vec<u32>,
    spare_inners: Vec<u32>,
    /// The root: a leaf at height 0, else an interior node.
    root: u32,
    height: u32,
    len: usize,
}

impl std::fmt::Debug for RangeSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RangeSet")
            .field("len", &self.len)
            .field("height", &self.height)
            .finish()
    }
}

impl Default for RangeSet {
    fn default() -> RangeSet {
        RangeSet::new()
    }
}

impl RangeSet {
    /// An empty set.
    pub fn new() -> RangeSet {
        RangeSet {
            leaves: vec![Leaf::empty()],
            inners: Vec::new(),
            spare_leaves: Vec::new(),
            spare_inners: Vec::new(),
            root: 0,
            height: 0,
            len: 0,
        }
    }

    /// Ranges held.
    pub fn len(&self) -> usize {
        self.len
    }

    fn new_leaf(&mut self) -> u32 {
        match self.spare_leaves.pop() {
            Some(i) => {
                self.leaves[i as usize] = Leaf::empty();
                i
            }
            None => {
                self.leaves.push(Leaf::empty());
                (self.leaves.len() - 1) as u32
            }
        }
    }

    fn new_inner(&mut self) -> u32 {
        match self.spare_inners.pop() {
            Some(i) => {
                self.inners[i as usize] = Inner::empty();
                i
            }
            None => {
                self.inners.push(Inner::empty());
                (self.inners.len() - 1) as u32
            }
        }
    }

    fn summary_of(&self, h: u32, idx: u32) -> Summary {
        if h == 0 {
            self.leaves[idx as usize].summary()
        } else {
            self.inners[idx as usize].summary()
        }
    }

    /// Add `[lo, hi]`, which must overlap no range held.
    pub fn insert(&mut self, lo: u64, hi: u64) {
        self.len += 1;
        if let Change::Split(right, s) = self.insert_in(self.height, self.root, lo, hi) {
            let left = self.root;
            let ls = self.summary_of(self.height, left);
            let root = self.new_inner();
            let r = &mut self.inners[root as usize];
            r.insert(0, left, ls);
            r.insert(1, right, s);
            self.root = root;
            self.height += 1;
        }
    }

    /// Child `i` (at height `h - 1`) of node `idx` changed: store its summary. Returns whether
    /// the node's own summary may have changed (it cannot if the child's did not).
    #[inline]
    fn child_changed(&mut self, h: u32, idx: u32, i: usize) -> bool {
        let c = self.inners[idx as usize].child[i];
        let s = self.summary_of(h - 1, c);
        let node = &mut self.inners[idx as usize];
        if (node.min_lo[i], node.max_hi[i], node.ccap[i]) == (s.min_lo, s.max_hi, s.cap) {
            return false;
        }
        node.put(i, s);
        true
    }

    /// Insert below node `idx` at height `h`.
    fn insert_in(&mut self, h: u32, idx: u32, lo: u64, hi: u64) -> Change {
        if h == 0 {
            let leaf = &mut self.leaves[idx as usize];
            let j = count_lt(&leaf.lo, leaf.n, lo);
            if leaf.n < FANOUT {
                leaf.insert(j, lo, hi);
                return Change::Changed;
            }
            let r = self.new_leaf();
            let (left, right) = pair(&mut self.leaves, idx, r);
            left.split(right);
            let half = FANOUT / 2;
            if j <= half {
                left.insert(j, lo, hi);
            } else {
                right.insert(j - half, lo, hi);
            }
            return Change::Split(r, right.summary());
        }
        let i = self.inners[idx as usize].child_for(lo);
        let c = self.inners[idx as usize].child[i];
        let (rc, rs) = match self.insert_in(h - 1, c, lo, hi) {
            Change::Unchanged => return Change::Unchanged,
            Change::Changed => {
                return if self.child_changed(h, idx, i) {
                    Change::Changed
                } else {
                    Change::Unchanged
                };
            }
            Change::Split(rc, rs) => (rc, rs),
        };
        self.child_changed(h, idx, i);
        let node = &mut self.inners[idx as usize];
        if node.n < FANOUT {
            node.insert(i + 1, rc, rs);
            return Change::Changed;
        }
        let r = self.new_inner();
        let (left, right) = pair(&mut self.inners, idx, r);
        left.split(right);
        let half = FANOUT / 2;
        if i < half {
            left.insert(i + 1, rc, rs);
        } else {
            right.insert(i + 1 - half, rc, rs);
        }
        Change::Split(r, right.summary())
    }

    /// Remove the range starting at `lo`; returns whether one did.
    pub fn remove(&mut self, lo: u64) -> bool {
        self.at_or_below(lo).0.is_some_and(|r| r.0 == lo) && self.take_holding(lo).is_some()
    }

    /// Remove the range holding `pfn` (the one with the highest `lo <= pfn`, if its
    /// `hi >= pfn`) and return it with the range above it, in one descent (two when the range
    /// is the last of its leaf).
    pub fn take_holding(&mut self, pfn: u64) -> Option<(Range, Option<Range>)> {
        let mut next = None;
        let (_, found, above) = self.remove_in(self.height, self.root, pfn, &mut next)?;
        self.len -= 1;
        let above = above.or_else(|| next.map(|(h, idx)| self.leftmost(h, idx)));
        // A root left with one child hands over to it.
        while self.height > 0 && self.inners[self.root as usize].n <= 1 {
            let old = self.root;
            if self.inners[old as usize].n == 0 {
                self.root = self.new_leaf();
                self.height = 0;
            } else {
                self.root = self.inners[old as usize].child[0];
                self.height -= 1;
            }
            self.spare_inners.push(old);
        }
        Some((found, above))
    }

    /// The lowest range below node `idx` at height `h`.
    fn leftmost(&self, mut h: u32, mut idx: u32) -> (u64, u64) {
        while h > 0 {
            idx = self.inners[idx as usize].child[0];
            h -= 1;
        }
        let l = &self.leaves[idx as usize];
        (l.lo[0], l.hi[0])
    }

    /// [`Self::take_holding`] below node `idx` at height `h`: (whether the node's summary may
    /// have changed, the range removed, the range above it when in the same leaf). `next` is
    /// set to the subtree holding the range above otherwise.
    fn remove_in(
        &mut self,
        h: u32,
        idx: u32,
        pfn: u64,
        next: &mut Option<(u32, u32)>,
    ) -> Option<(bool, Range, Option<Range>)> {
        if h == 0 {
            let leaf = &mut self.leaves[idx as usize];
            let j = count_le(&leaf.lo, leaf.n, pfn).checked_sub(1)?;
            let found = (leaf.lo[j], leaf.hi[j]);
            if found.1 < pfn {
                return None;
            }
            leaf.remove(j);
            let above = (j < leaf.n).then(|| (leaf.lo[j], leaf.hi[j]));
            return Some((true, found, above));
        }
        let node = &self.inners[idx as usize];
        let i = node.child_for(pfn);
        let c = node.child[i];
        if i + 1 < node.n {
            *next = Some((h - 1, node.child[i + 1]));
        }
        let (changed, found, above) = self.remove_in(h - 1, c, pfn, next)?;
        if !changed {
            return Some((false, found, above));
        }
        let emptied = if h == 1 {
            self.leaves[c as usize].n == 0
        } else {
            self.inners[c as usize].n == 0
        };
        if emptied {
            if h == 1 {
                self.spare_leaves.push(c);
            } else {
                self.spare_inners.push(c);
            }
            self.inners[idx as usize].remove(i);
            return Some((true, found, above));
        }
        Some((self.child_changed(h, idx, i), found, above))
    }

    /// The range with the highest `lo <= pfn` (it holds `pfn` iff its `hi >= pfn`) and the
    /// range above it, in one descent (two when the range is the last of its leaf).
    #[inline]
    pub fn at_or_below(&self, pfn: u64) -> (Option<Range>, Option<Range>) {
        let (mut idx, mut h) = (self.root, self.height);
        // The subtree holding the next range when it is not in the same leaf.
        let mut next: Option<(u32, u32)> = None;
        while h > 0 {
            let node = &self.inners[idx as usize];
            let i = node.child_for(pfn);
            if i + 1 < node.n {
                next = Some((h - 1, node.child[i + 1]));
            }
            idx = node.child[i];
            h -= 1;
        }
        let leaf = &self.leaves[idx as usize];
        let j = count_le(&leaf.lo, leaf.n, pfn);
        let below = j.checked_sub(1).map(|k| (leaf.lo[k], leaf.hi[k]));
        let above = if j < leaf.n {
            Some((leaf.lo[j], leaf.hi[j]))
        } else {
            next.map(|(mut h, mut idx)| {
                while h > 0 {
                    idx = self.inners[idx as usize].child[0];
                    h -= 1;
                }
                let l = &self.leaves[idx as usize];
                (l.lo[0], l.hi[0])
            })
        };
        (below, above)
    }

    /// The ranges in ascending order.
    pub fn iter(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        let mut out = Vec::with_capacity(self.len);
        self.collect(self.height, self.root, &mut out);
        out.into_iter()
    }

    fn collect(&self, h: u32, idx: u32, out: &mut Vec<(u64, u64)>) {
        if h == 0 {
            let l = &self.leaves[idx as usize];
            out.extend((0..l.n).map(|j| (l.lo[j], l.hi[j])));
        } else {
            let node = &self.inners[idx as usize];
            for &c in &node.child[..node.n] {
                self.collect(h - 1, c, out);
            }
        }
    }
}

/// Two distinct elements of `v`, mutably.
fn pair<T>(v: &mut [T], a: u32, b: u32) -> (&mut T, &mut T) {
    let (a, b) = (a as usize, b as usize);
    if a < b {
        let (x, y) = v.split_at_mut(b);
        (&mut x[a], &mut y[0])
    } else {
        let (x, y) = v.split_at_mut(a);
        (&mut y[0], &mut x[b])
    }
}

#[cfg(test)]
mod tests;
