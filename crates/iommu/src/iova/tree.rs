//! The IOVA space as a sparse 64-ary bitmap tree with per-order summaries.
//!
//! Linux keeps allocated ranges in an rbtree and walks it from a cached node, which costs
//! O(n) when the cache misses. Here every node of the tree covers 64 children; a child is fully
//! free, fully used, or partial (then it has its own node, or for the lowest level a 64-bit word of
//! per-page free bits). Each node keeps, for every block order, a mask of the children that can
//! still hold a naturally aligned free block of that order, so finding the *highest* aligned free
//! block below a limit is one descent (a couple of mask operations per level), and marking a range
//! touches one path per end. Fully free or used subtrees cost nothing, so a 2^36-page aperture
//! is as cheap as a 4 GiB one.

/// log2 of the fan-out.
const FAN_BITS: u32 = 6;
/// Highest supported node level (a level-h node covers 2^(6(h+1)) pages): 2^42 pages.
const MAX_LEVEL: u32 = 6;
/// Orders a partial child can hold: below its own size, at most 6 * MAX_LEVEL.
const MAX_CHILD_ORDERS: usize = (FAN_BITS * MAX_LEVEL) as usize;

/// Bit patterns with a bit at each multiple of 2^k (k = 0..=6).
const ALIGN_PAT: [u64; 7] = [
    u64::MAX,
    0x5555_5555_5555_5555,
    0x1111_1111_1111_1111,
    0x0101_0101_0101_0101,
    0x0001_0001_0001_0001,
    0x0000_0001_0000_0001,
    0x0000_0000_0000_0001,
];

/// Bit i set iff bits i..i+2^j of `m` are all set and i is a multiple of 2^j (j <= 6).
#[inline]
fn aligned_runs(mut m: u64, j: u32) -> u64 {
    for k in 0..j {
        m &= (m >> (1u32 << k)) & ALIGN_PAT[k as usize + 1];
    }
    m
}

/// Largest j such that `m` holds an aligned run of 2^j set bits (m != 0, m != all ones -> < 6).
#[inline]
fn run_order(m: u64) -> u32 {
    let mut j = 0;
    let mut r = m;
    while j < 6 {
        let next = r & (r >> (1u32 << j)) & ALIGN_PAT[j as usize + 1];
        if next == 0 {
            break;
        }
        r = next;
        j += 1;
    }
    j
}

/// Bits 0..n set (n <= 64).
#[inline]
fn low_mask(n: u64) -> u64 {
    if n >= 64 {
        u64::MAX
    } else {
        (1u64 << n) - 1
    }
}

#[inline]
fn highest(m: u64) -> u32 {
    63 - m.leading_zeros()
}

/// State of one child as its parent records it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum State {
    Free,
    Used,
    /// Partially used; the largest aligned free block it holds has this order.
    Partial(u8),
}

/// Hot summary words first, then the per-order masks (small orders share the first lines),
/// the child words/indices, and the per-child capacities.
#[derive(Clone)]
#[repr(C)]
struct Node {
    /// Children entirely free.
    free: u64,
    /// Children entirely used.
    used: u64,
    /// Bit k set iff `cap_mask[k] != 0`.
    orders: u64,
    /// Levels >= 2: children that own a node in `child` (every partial child, plus uniform
    /// children whose node is kept so that a page toggling at a boundary does not rebuild
    /// the path each time).
    nodes: u64,
    /// `cap_mask[k]` bit i: partial child i holds a free aligned block of order k.
    cap_mask: [u64; MAX_CHILD_ORDERS],
    /// Level 1: the child's word of per-page free bits. Higher: the child's node index.
    child: [u64; 64],
    /// For a partial child: the order of its largest free aligned block.
    cap: [u8; 64],
}

impl Node {
    fn uniform(free: bool) -> Node {
        Node {
            free: if free { u64::MAX } else { 0 },
            used: if free { 0 } else { u64::MAX },
            orders: 0,
            nodes: 0,
            cap: [0; 64],
            cap_mask: [0; MAX_CHILD_ORDERS],
            child: [0; 64],
        }
    }
}

/// The page-granular free map of one IOVA space `[0, 2^bits)` (in pages).
#[derive(Clone)]
pub struct IovaTree {
    nodes: Vec<Node>,
    spare: Vec<u32>,
    root_level: u32,
    end: u64,
    free_pages: u64,
}

impl std::fmt::Debug for IovaTree {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IovaTree")
            .field("end", &self.end)
            .field("free_pages", &self.free_pages)
            .field("nodes", &(self.nodes.len() - self.spare.len()))
            .finish()
    }
}

impl IovaTree {
    /// A tree covering `[0, 2^bits)` pages, all free. `bits` is clamped to 1..=42.
    pub fn new(bits: u32) -> IovaTree {
        let bits = bits.clamp(1, FAN_BITS * (MAX_LEVEL + 1));
        let root_level = bits.div_ceil(FAN_BITS).saturating_sub(1).max(1);
        let root_span = 1u64 << (FAN_BITS * (root_level + 1));
        let end = 1u64 << bits;
        let mut t = IovaTree {
            nodes: vec![Node::uniform(true)],
            spare: Vec::new(),
            root_level,
            end: root_span,
            free_pages: root_span,
        };
        if end < root_span {
            t.set_range(end, root_span, false);
        }
        t.end = end;
        t
    }

    /// Pages in the space.
    pub fn end(&self) -> u64 {
        self.end
    }

    /// Free pages.
    pub fn free_pages(&self) -> u64 {
        self.free_pages
    }

    /// Tree nodes in use (memory footprint).
    pub fn nodes_in_use(&self) -> usize {
        self.nodes.len() - self.spare.len()
    }

    /// The highest page `p`, a multiple of 2^order, with `[p, p + 2^order)` free and
    /// `p + 2^order <= limit`.
    pub fn find(&self, order: u32, limit: u64) -> Option<u64> {
        let limit = limit.min(self.end);
        if order > FAN_BITS * (self.root_level + 1) || limit < (1u64 << order.min(63)) {
            return None;
        }
        self.find_in(0, self.root_level, 0, order, limit)
    }

    fn find_in(&self, idx: u32, h: u32, base: u64, q: u32, limit: u64) -> Option<u64> {
        let n = self.nodes.get(idx as usize)?;
        let c = FAN_BITS * h;
        let span = limit - base;
        let full = span >> c;
        if q >= c {
            let j = q - c;
            if j > 6 {
                return None;
            }
            let runs = aligned_runs(n.free & low_mask(full), j);
            if runs == 0 {
                return None;
            }
            return Some(base + ((highest(runs) as u64) << c));
        }
        let straddle = u64::from(full < 64 && span & low_mask(c as u64) != 0);
        let mut cand = (n.free | n.cap_mask[q as usize]) & low_mask(full + straddle);
        let block = 1u64 << q;
        while cand != 0 {
            let i = highest(cand);
            let cbase = base + ((i as u64) << c);
            if n.free & (1 << i) != 0 {
                let top = (cbase + (1u64 << c)).min(limit);
                if top >= cbase + block {
                    return Some((top - block) & !(block - 1));
                }
            } else if h == 1 {
                let w = n.child[i as usize] & low_mask(limit - cbase);
                let runs = aligned_runs(w, q);
                if runs != 0 {
                    return Some(cbase + highest(runs) as u64);
                }
            } else if let Some(p) = self.find_in(n.child[i as usize] as u32, h - 1, cbase, q, limit)
            {
                return Some(p);
            }
            cand &= !(1u64 << i);
        }
        None
    }

    /// Find the block [`Self::find`] would return for `order` and mark its first `size` pages
    /// (`size <= 2^order`) used, in one descent. Returns the first page.
    pub fn alloc(&mut self, order: u32, size: u64, limit: u64) -> Option<u64> {
        let limit = limit.min(self.end);
        if order > FAN_BITS * (self.root_level + 1)
            || limit < (1u64 << order.min(63))
            || size == 0
            || size > 1u64 << order
        {
            return None;
        }
        // Fast path: follow the highest candidate child down while it is partial (what
        // `alloc_in` tries first), then search there and update summaries on the way back.
        // Should that subtree not fit (only possible where the limit cuts it), search again
        // from the root: nothing was changed yet.
        let mut path = [(0u32, 0u32); (MAX_LEVEL + 1) as usize];
        let mut depth = 0;
        let (mut idx, mut h, mut base) = (0u32, self.root_level, 0u64);
        while h >= 2 && depth < path.len() {
            let c = FAN_BITS * h;
            if order >= c {
                break;
            }
            let n = self.nodes.get(idx as usize)?;
            let span = limit - base;
            let full = span >> c;
            let straddle = u64::from(full < 64 && span & low_mask(c as u64) != 0);
            let cand = (n.free | n.cap_mask[order as usize]) & low_mask(full + straddle);
            if cand == 0 {
                break;
            }
            let i = highest(cand);
            let bit = 1u64 << i;
            if n.free & bit != 0 {
                break;
            }
            path[depth] = (idx, i);
            depth += 1;
            idx = n.child[i as usize] as u32;
            base += (i as u64) << c;
            h -= 1;
        }
        let Some((p, mut st)) = self.alloc_in(idx, h, base, order, size, limit) else {
            return if depth == 0 {
                None
            } else {
                self.alloc_in(0, self.root_level, 0, order, size, limit)
                    .map(|(p, _)| p)
            };
        };
        while depth > 0 {
            let Some(s) = st else {
                break;
            };
            depth -= 1;
            let (pidx, i) = path[depth];
            h += 1;
            if !self.record_child(pidx, i, FAN_BITS * h, s) {
                break;
            }
            st = Some(self.node_state(pidx, h));
        }
        Some(p)
    }

    fn alloc_in(
        &mut self,
        idx: u32,
        h: u32,
        base: u64,
        q: u32,
        size: u64,
        limit: u64,
    ) -> Option<(u64, Option<State>)> {
        let c = FAN_BITS * h;
        let span = limit - base;
        let full = span >> c;
        let (free, cand0) = {
            let n = self.nodes.get(idx as usize)?;
            if q >= c {
                let j = q - c;
                if j > 6 {
                    return None;
                }
                let runs = aligned_runs(n.free & low_mask(full), j);
                if runs == 0 {
                    return None;
                }
                let p = base + ((highest(runs) as u64) << c);
                let st = self.set_in(idx, h, base, p, p + size, false);
                return Some((p, st));
            }
            let straddle = u64::from(full < 64 && span & low_mask(c as u64) != 0);
            (
                n.free,
                (n.free | n.cap_mask[q as usize]) & low_mask(full + straddle),
            )
        };
        let block = 1u64 << q;
        let mut cand = cand0;
        while cand != 0 {
            let i = highest(cand);
            let cbase = base + ((i as u64) << c);
            if free & (1 << i) != 0 {
                let top = (cbase + (1u64 << c)).min(limit);
                if top >= cbase + block {
                    let p = (top - block) & !(block - 1);
                    let st = self.set_in(idx, h, base, p, p + size, false);
                    return Some((p, st));
                }
            } else if h == 1 {
                let w = self.nodes.get(idx as usize)?.child[(i & 63) as usize]
                    & low_mask(limit - cbase);
                let runs = aligned_runs(w, q);
                if runs != 0 {
                    let p = cbase + highest(runs) as u64;
                    let st = self.set_in(idx, h, base, p, p + size, false);
                    return Some((p, st));
                }
            } else {
                let cidx = self.nodes.get(idx as usize)?.child[(i & 63) as usize] as u32;
                if let Some((p, cst)) = self.alloc_in(cidx, h - 1, cbase, q, size, limit) {
                    let changed = match cst {
                        None => false,
                        Some(st) => self.record_child(idx, i, c, st),
                    };
                    return Some((p, changed.then(|| self.node_state(idx, h))));
                }
            }
            cand &= !(1u64 << i);
        }
        None
    }

    /// Whether every page of `[lo, hi)` is free (`free`) or used (`!free`).
    pub fn range_is(&self, lo: u64, hi: u64, free: bool) -> bool {
        if lo >= hi || hi > self.end {
            return false;
        }
        self.range_is_in(0, self.root_level, 0, lo, hi, free)
    }

    fn range_is_in(&self, idx: u32, h: u32, base: u64, lo: u64, hi: u64, free: bool) -> bool {
        let Some(n) = self.nodes.get(idx as usize) else {
            return false;
        };
        let c = FAN_BITS * h;
        let first = ((lo.max(base) - base) >> c) as u32;
        let last = ((hi - 1 - base) >> c).min(63) as u32;
        for i in first..=last {
            let bit = 1u64 << i;
            if n.free & bit != 0 {
                if !free {
                    return false;
                }
                continue;
            }
            if n.used & bit != 0 {
                if free {
                    return false;
                }
                continue;
            }
            let cbase = base + ((i as u64) << c);
            let clo = lo.max(cbase);
            let chi = hi.min(cbase + (1u64 << c));
            let ok = if h == 1 {
                let m = low_mask(chi - cbase) & !low_mask(clo - cbase);
                let w = n.child[i as usize];
                if free {
                    w & m == m
                } else {
                    w & m == 0
                }
            } else {
                self.range_is_in(n.child[i as usize] as u32, h - 1, cbase, clo, chi, free)
            };
            if !ok {
                return false;
            }
        }
        true
    }

    /// Mark `[lo, hi)` free or used (pages beyond the space are ignored). Returns how many pages
    /// changed state.
    pub fn set_range(&mut self, lo: u64, hi: u64, free: bool) -> u64 {
        let hi = hi.min(1u64 << (FAN_BITS * (self.root_level + 1)));
        if lo >= hi {
            return 0;
        }
        let before = self.free_pages;
        // Walk down without the generic machinery while the range stays inside one child that
        // has a node; remember the path to update summaries on the way back.
        let mut path = [(0u32, 0u32); (MAX_LEVEL + 1) as usize];
        let mut depth = 0;
        let (mut idx, mut h, mut base) = (0u32, self.root_level, 0u64);
        while h >= 2 && depth < path.len() {
            let c = FAN_BITS * h;
            let i = (lo - base) >> c;
            if (hi - 1 - base) >> c != i || i >= 64 {
                break;
            }
            let Some(n) = self.nodes.get(idx as usize) else {
                return 0;
            };
            let bit = 1u64 << i;
            let cbase = base + (i << c);
            if n.nodes & bit == 0 || (lo <= cbase && hi >= cbase + (1u64 << c)) {
                break;
            }
            if (free && n.free & bit != 0) || (!free && n.used & bit != 0) {
                return 0; // already in the target state
            }
            path[depth] = (idx, i as u32);
            depth += 1;
            idx = n.child[i as usize] as u32;
            h -= 1;
            base = cbase;
        }
        let mut st = self.set_in(idx, h, base, lo, hi, free);
        while depth > 0 {
            let Some(s) = st else {
                break;
            };
            depth -= 1;
            let (pidx, i) = path[depth];
            h += 1;
            if !self.record_child(pidx, i, FAN_BITS * h, s) {
                break;
            }
            st = Some(self.node_state(pidx, h));
        }
        before.abs_diff(self.free_pages)
    }

    fn new_node(&mut self, free: bool) -> u32 {
        if let Some(i) = self.spare.pop() {
            if let Some(n) = self.nodes.get_mut(i as usize) {
                *n = Node::uniform(free);
                return i;
            }
        }
        self.nodes.push(Node::uniform(free));
        (self.nodes.len() - 1) as u32
    }

    fn drop_subtree(&mut self, idx: u32, h: u32) {
        if h >= 2 {
            if let Some(n) = self.nodes.get(idx as usize) {
                let kids = n.child;
                let mut m = n.nodes;
                while m != 0 {
                    let i = m.trailing_zeros();
                    self.drop_subtree(kids[(i & 63) as usize] as u32, h - 1);
                    m &= m - 1;
                }
            }
        }
        self.spare.push(idx);
    }

    /// Drop the node child `i` of `idx` owns, if any.
    fn forget_child_node(&mut self, idx: u32, i: u32, child_level: u32) {
        let bit = 1u64 << (i & 63);
        let Some(n) = self.nodes.get_mut(idx as usize) else {
            return;
        };
        if n.nodes & bit == 0 {
            return;
        }
        n.nodes &= !bit;
        let k = n.child[(i & 63) as usize] as u32;
        self.drop_subtree(k, child_level);
    }

    /// Pages free inside a partial child (for the free-page count).
    fn child_free_pages(&self, idx: u32, h: u32) -> u64 {
        // Level-1 children are words: count bits. Higher: recurse (only used on whole-child
        // overwrites of a partial child, which are rare).
        let Some(n) = self.nodes.get(idx as usize) else {
            return 0;
        };
        let c = FAN_BITS * h;
        let mut total = (n.free.count_ones() as u64) << c;
        let mut m = !(n.free | n.used);
        while m != 0 {
            let i = m.trailing_zeros();
            total += if h == 1 {
                n.child[i as usize].count_ones() as u64
            } else {
                self.child_free_pages(n.child[i as usize] as u32, h - 1)
            };
            m &= m - 1;
        }
        total
    }

    /// Mark `[lo, hi)` inside node `idx`. Returns the node's new state if it changed as its
    /// parent sees it (uniform or the largest free block order), `None` if not: the walk back
    /// up stops touching summaries as soon as nothing changes.
    fn set_in(
        &mut self,
        idx: u32,
        h: u32,
        base: u64,
        lo: u64,
        hi: u64,
        free: bool,
    ) -> Option<State> {
        let c = FAN_BITS * h;
        let csize = 1u64 << c;
        let first = ((lo.max(base) - base) >> c) as u32;
        let last = ((hi - 1 - base) >> c).min(63) as u32;
        let mut changed = false;
        for i in first..=last {
            let bit = 1u64 << i;
            let cbase = base + ((i as u64) << c);
            let cend = cbase + csize;
            let (nfree, nused, child) = match self.nodes.get(idx as usize) {
                Some(n) => (
                    n.free & bit != 0,
                    n.used & bit != 0,
                    n.child[(i & 63) as usize],
                ),
                None => return None,
            };
            if (free && nfree) || (!free && nused) {
                continue; // already in the target state
            }
            let new_state = if lo <= cbase && hi >= cend {
                // Whole child.
                let was_free = if nfree {
                    csize
                } else if nused {
                    0
                } else if h == 1 {
                    child.count_ones() as u64
                } else {
                    self.child_free_pages(child as u32, h - 1)
                };
                if h >= 2 {
                    self.forget_child_node(idx, i, h - 1);
                }
                if free {
                    self.free_pages += csize - was_free;
                    State::Free
                } else {
                    self.free_pages -= was_free;
                    State::Used
                }
            } else if h == 1 {
                let old = if nfree {
                    u64::MAX
                } else if nused {
                    0
                } else {
                    child
                };
                let m = low_mask(hi.min(cend) - cbase) & !low_mask(lo.max(cbase) - cbase);
                let w = if free { old | m } else { old & !m };
                self.free_pages = self.free_pages + w.count_ones() as u64 - old.count_ones() as u64;
                if let Some(n) = self.nodes.get_mut(idx as usize) {
                    n.child[(i & 63) as usize] = w;
                }
                match w {
                    u64::MAX => State::Free,
                    0 => State::Used,
                    _ => State::Partial(run_order(w) as u8),
                }
            } else {
                let has_node = self
                    .nodes
                    .get(idx as usize)
                    .is_some_and(|n| n.nodes & bit != 0);
                let cidx = if has_node {
                    child as u32
                } else {
                    let k = self.new_node(nfree);
                    if let Some(n) = self.nodes.get_mut(idx as usize) {
                        n.child[(i & 63) as usize] = k as u64;
                        n.nodes |= bit;
                    }
                    k
                };
                // A node kept for a uniform child is uniform in that same state.
                match self.set_in(cidx, h - 1, cbase, lo, hi, free) {
                    None => continue,
                    Some(st) => st,
                }
            };
            changed |= self.record_child(idx, i, c, new_state);
        }
        if changed {
            Some(self.node_state(idx, h))
        } else {
            None
        }
    }

    /// Record child `i`'s new state; returns whether it differs from the old one.
    fn record_child(&mut self, idx: u32, i: u32, c: u32, st: State) -> bool {
        let Some(n) = self.nodes.get_mut(idx as usize) else {
            return false;
        };
        let i = i & 63;
        let bit = 1u64 << i;
        let old_state = if n.free & bit != 0 {
            State::Free
        } else if n.used & bit != 0 {
            State::Used
        } else {
            State::Partial(n.cap[i as usize])
        };
        if old_state == st {
            return false;
        }
        let old: i32 = match old_state {
            State::Partial(k) => k as i32,
            _ => -1,
        };
        let new: i32 = match st {
            State::Free => {
                n.free |= bit;
                n.used &= !bit;
                -1
            }
            State::Used => {
                n.used |= bit;
                n.free &= !bit;
                -1
            }
            State::Partial(k) => {
                n.free &= !bit;
                n.used &= !bit;
                n.cap[i as usize] = k;
                k as i32
            }
        };
        let top = (c as i32 - 1).min(MAX_CHILD_ORDERS as i32 - 1);
        if new > old {
            for k in (old + 1)..=new.min(top) {
                n.cap_mask[k as usize] |= bit;
                n.orders |= 1u64 << k;
            }
        } else {
            for k in (new + 1)..=old.min(top) {
                let m = n.cap_mask[k as usize] & !bit;
                n.cap_mask[k as usize] = m;
                if m == 0 {
                    n.orders &= !(1u64 << k);
                }
            }
        }
        true
    }

    fn node_state(&self, idx: u32, h: u32) -> State {
        let Some(n) = self.nodes.get(idx as usize) else {
            return State::Used;
        };
        if n.free == u64::MAX {
            return State::Free;
        }
        if n.used == u64::MAX {
            return State::Used;
        }
        let mut cap = if n.orders != 0 { highest(n.orders) } else { 0 };
        if n.free != 0 {
            cap = cap.max(FAN_BITS * h + run_order(n.free));
        }
        State::Partial(cap as u8)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reference: a plain bitmap.
    fn naive_find(bits: &[bool], order: u32, limit: u64) -> Option<u64> {
        let block = 1u64 << order;
        let limit = limit.min(bits.len() as u64);
        if limit < block {
            return None;
        }
        let mut p = (limit - block) & !(block - 1);
        loop {
            if (p..p + block).all(|x| bits[x as usize]) {
                return Some(p);
            }
            if p == 0 {
                return None;
            }
            p -= block;
        }
    }

    #[test]
    fn runs_and_orders() {
        assert_eq!(aligned_runs(0b1111_0000, 2), 0b0001_0000);
        assert_eq!(aligned_runs(0b0111_1000, 2), 0);
        assert_eq!(run_order(0b1111_0000), 2);
        assert_eq!(run_order(1 << 63), 0);
        assert_eq!(run_order(0xffff_ffff_0000_0000), 5);
    }

    #[test]
    fn fresh_tree_gives_top_blocks() {
        let t = IovaTree::new(20);
        assert_eq!(t.end(), 1 << 20);
        assert_eq!(t.find(0, 1 << 20), Some((1 << 20) - 1));
        assert_eq!(t.find(4, 1 << 20), Some((1 << 20) - 16));
        assert_eq!(t.find(4, 1000), Some(976));
        assert_eq!(t.find(20, 1 << 20), Some(0));
        assert_eq!(t.find(21, 1 << 20), None);
        assert_eq!(t.free_pages(), 1 << 20);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
        #[test]
        fn matches_a_plain_bitmap(
            bits in 8u32..15,
            ops in proptest::collection::vec((0u64..1 << 14, 1u64..300, proptest::bool::ANY, 0u32..8, 0u64..1 << 14), 1..120),
        ) {
            let size = 1u64 << bits;
            let mut t = IovaTree::new(bits);
            let mut naive = vec![true; size as usize];
            for (lo, len, free, order, limit) in ops {
                let lo = lo % size;
                let hi = (lo + len).min(size);
                let was = naive[lo as usize..hi as usize].iter().all(|&b| b == free);
                proptest::prop_assert_eq!(t.range_is(lo, hi, free), was);
                t.set_range(lo, hi, free);
                for b in &mut naive[lo as usize..hi as usize] { *b = free; }
                proptest::prop_assert_eq!(t.free_pages(), naive.iter().filter(|&&b| b).count() as u64);
                proptest::prop_assert_eq!(t.find(order, limit), naive_find(&naive, order, limit));
                proptest::prop_assert_eq!(t.find(order, size), naive_find(&naive, order, size));
                // The one-descent allocation agrees with find + mark.
                let mut t2 = t.clone();
                let want = naive_find(&naive, order, limit);
                let got = t2.alloc(order, 1 + (len % (1 << order)), limit);
                proptest::prop_assert_eq!(got, want);
                if let Some(p) = got {
                    let n = 1 + (len % (1 << order));
                    proptest::prop_assert!(t2.range_is(p, p + n, false));
                    proptest::prop_assert_eq!(t2.free_pages(), t.free_pages() - n);
                    t2.set_range(p, p + n, true);
                    proptest::prop_assert_eq!(t2.free_pages(), t.free_pages());
                    proptest::prop_assert_eq!(t2.find(order, limit), want);
                }
            }
            // Everything freed: the tree answers like a fresh one (nodes may be kept for
            // reuse, so the node count is not compared).
            t.set_range(0, size, true);
            let fresh = IovaTree::new(bits);
            proptest::prop_assert_eq!(t.free_pages(), size);
            for order in 0..=bits {
                proptest::prop_assert_eq!(t.find(order, size), fresh.find(order, size));
                proptest::prop_assert_eq!(t.find(order, size / 3), fresh.find(order, size / 3));
            }
        }
    }
}
