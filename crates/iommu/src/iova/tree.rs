//! The IOVA space as a sparse 64-ary tree of capacity bytes over 4,096-page bitmap blocks.
//!
//! Linux keeps allocated ranges in an rbtree and walks it from a cached node, which costs
//! O(n) when the cache misses. Here the space is cut into blocks of 4,096 pages (64 words of
//! per-page free bits), and blocks hang under 64-ary interior nodes. Every node stores, per
//! child, one *capacity byte*: 0 if the child is fully used, else 1 + the order of the largest
//! naturally aligned free block it holds (a fully free child of 2^c pages has c + 1). Finding
//! the *highest* aligned free block of order q below a limit is one descent taking, at each
//! level, the highest child whose capacity exceeds q: for q < 6 (every rcache size) a ready
//! mask per order, kept by predicated bit updates when a byte changes; for larger orders a
//! SWAR compare of the 64 bytes. A node's own capacity is the vector maximum of its bytes, or
//! the run order of its free children. A block keeps, per order 0..=6, the mask of its words
//! holding an aligned free run of that order (the candidates of an order are one load; a
//! word's change sets or clears one bit per order, found by the doubling steps that measure
//! its runs). An allocation or free of up to 64 pages touches one word and, only while
//! capacities change, the path above; it starts at the last level-2 node used when that node
//! holds the address (the "finger"), by code written for that one shape (node, block, word)
//! and inlined into the caller, with the general paths out of line. Fully free or used
//! subtrees have no node, so a 2^36-page aperture is as cheap as a 4 GiB one.

/// log2 of the fan-out.
const FAN_BITS: u32 = 6;
/// Highest supported node level (a level-h node covers 2^(6(h+1)) pages): 2^42 pages.
const MAX_LEVEL: u32 = 6;
/// Path entries below the root (levels MAX_LEVEL..=2).
const PATH_LEN: usize = MAX_LEVEL as usize;

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
/// Six fixed steps, each applied only while below `j`: no data-dependent branch.
#[inline]
fn aligned_runs(mut m: u64, j: u32) -> u64 {
    for k in 0..6u32 {
        let step = m & (m >> (1u32 << k)) & ALIGN_PAT[k as usize + 1];
        m = if k < j { step } else { m };
    }
    m
}

/// Capacity byte of a 64-bit free mask: 0 if empty, else 1 + the largest j such that `m` holds
/// an aligned run of 2^j set bits (7 for all ones). Branch-free: the run masks are nested, so
/// the order is the number of non-empty ones.
#[inline(always)]
fn mask_cap(m: u64) -> u8 {
    let mut r = m;
    let mut n = u8::from(m != 0);
    for k in 0..6u32 {
        r &= (r >> (1u32 << k)) & ALIGN_PAT[k as usize + 1];
        n += u8::from(r != 0);
    }
    n
}

/// Account for a word going from `old` to `w` under mask `m` (`n` pages): returns the pages
/// that changed, added to or taken from `free_pages`.
#[inline(always)]
fn count_flip(free_pages: &mut u64, old: u64, w: u64, m: u64, n: u64, free: bool) -> u64 {
    // Usually every page of the range changes (a valid free or allocation): no popcount, which
    // the baseline x86-64 target has only in software.
    let flipped = if w ^ old == m {
        n
    } else {
        u64::from((w ^ old).count_ones())
    };
    if free {
        *free_pages += flipped;
    } else {
        *free_pages -= flipped;
    }
    flipped
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

/// Bits 0..n set, for 1 <= n <= 64 (one shift, no branch).
#[inline(always)]
fn low_mask_nz(n: u64) -> u64 {
    u64::MAX >> (64u64.wrapping_sub(n) & 63)
}

/// The top bit of each aligned group of 2^q bits (q = 0..=6; none for 7).
const GROUP_TOP: [u64; 8] = [
    u64::MAX,
    0xaaaa_aaaa_aaaa_aaaa,
    0x8888_8888_8888_8888,
    0x8080_8080_8080_8080,
    0x8000_8000_8000_8000,
    0x8000_0000_8000_0000,
    0x8000_0000_0000_0000,
    0,
];

/// The top bit of every aligned group of 2^q bits of `m` that is all ones (q <= 6): the
/// group's other bits of `!m`, plus all ones, carry into its top bit iff one is set, and
/// never beyond it. A fixed handful of operations whatever q is, where [`aligned_runs`]
/// needs a step per doubling.
#[inline(always)]
fn full_groups(m: u64, q: u32) -> u64 {
    let top = GROUP_TOP[(q & 7) as usize];
    let z = !m;
    let rest = !top;
    !((z & rest).wrapping_add(rest) | z) & top
}

/// A one in every byte.
const BYTE_ONES: u64 = 0x0101_0101_0101_0101;
/// Multiplier that moves bit 8k of a word (k = 0..8) to bit 56 + k.
const GATHER: u64 = 0x0102_0408_1020_4080;

/// The 64 capacity bytes of a node's children (0 = used, c + 1 = free, else 1 + the order of
/// the largest aligned free block). Values stay below 64, so signed byte compares are exact.
#[derive(Clone)]
#[repr(C, align(64))]
struct Caps([u8; 64]);

impl Caps {
    #[inline]
    fn get(&self, i: u32) -> u8 {
        self.0[(i & 63) as usize]
    }

    /// Bit i set iff byte i > q. SWAR on eight words (bytes stay below 64, so adding
    /// 127 - q sets a byte's top bit exactly when it exceeds q, without carries between
    /// bytes); a multiply gathers each word's eight top bits into one byte.
    #[inline]
    fn gt_mask(&self, q: u32) -> u64 {
        let (chunks, _) = self.0.as_chunks::<8>();
        let add = BYTE_ONES * u64::from(127 - q.min(127));
        let mut m = 0;
        for (j, ch) in chunks.iter().enumerate() {
            let tops = (u64::from_le_bytes(*ch).wrapping_add(add) >> 7) & BYTE_ONES;
            m |= (tops.wrapping_mul(GATHER) >> 56) << (8 * j);
        }
        m
    }

    /// The largest byte (vectorised by the compiler).
    #[inline]
    fn max(&self) -> u8 {
        self.0.iter().fold(0, |m, &b| m.max(b))
    }
}

/// Small orders (below a word) whose candidate masks nodes keep ready.
const SMALL: usize = FAN_BITS as usize;

/// An interior node (level >= 2): capacity bytes, ready masks for the small orders, and node
/// indices of its children.
#[derive(Clone)]
#[repr(C, align(64))]
struct Inner {
    cap: Caps,
    /// `over[k]` bit i: `cap[i] > k`, i.e. child i holds a free aligned block of order k
    /// (k < 6, the orders the one-descent allocation serves: a lookup, not a compare).
    over: [u64; SMALL],
    /// Children entirely free (`cap[i] == c + 1`).
    free: u64,
    /// Children that own a node (every partial child, plus uniform children whose node is
    /// kept so that a page toggling at a boundary does not rebuild the path each time; a kept
    /// node is uniform in its child's state).
    nodes: u64,
    /// Index into `inner` (level >= 3) or `blocks` (level 2) where `nodes` has the bit.
    child: [u32; 64],
}

impl Inner {
    fn uniform(free: bool, c: u32) -> Inner {
        let all = if free { u64::MAX } else { 0 };
        Inner {
            cap: Caps([if free { c as u8 + 1 } else { 0 }; 64]),
            over: [all; SMALL],
            free: all,
            nodes: 0,
            child: [0; 64],
        }
    }

    /// Children that can hold an aligned free block of order q.
    #[inline]
    fn cand(&self, q: u32) -> u64 {
        match self.over.get(q as usize) {
            Some(&m) => m,
            None => self.cap.gt_mask(q),
        }
    }

    /// Record child i's new capacity `v` (children of 2^c pages): one byte and a fixed set of
    /// predicated mask updates, no loop over the orders in between.
    #[inline]
    fn set_cap(&mut self, i: u32, v: u8, c: u32) {
        let i = i & 63;
        self.cap.0[i as usize] = v;
        let bit = 1u64 << i;
        for (k, m) in self.over.iter_mut().enumerate() {
            *m = (*m & !bit) | (u64::from(v as usize > k) << i);
        }
        self.free = (self.free & !bit) | (u64::from(u32::from(v) == c + 1) << i);
    }

    /// The node's own capacity byte (children of 2^c pages each).
    #[inline]
    fn summary(&self, c: u32) -> u8 {
        if self.free != 0 {
            c as u8 + mask_cap(self.free)
        } else {
            self.cap.max()
        }
    }
}

/// A leaf block of 4,096 pages: 64 words of per-page free bits and, per order k = 0..=6, the
/// mask of words holding an aligned free run of 2^k pages, so that the words able to take an
/// allocation of order q are one load away.
#[derive(Clone)]
#[repr(C, align(64))]
struct Block {
    /// `over[k]` bit i: word i holds an aligned free run of 2^k pages (a capacity above k;
    /// `over[6]`: entirely free). Nested: `over[k + 1]` is a subset of `over[k]`.
    over: [u64; 7],
    /// Bit p of word i: page 64 i + p is free.
    words: [u64; 64],
}

impl Block {
    fn uniform(free: bool) -> Block {
        let all = if free { u64::MAX } else { 0 };
        Block {
            over: [all; 7],
            words: [all; 64],
        }
    }

    /// Words entirely free (capacity 7).
    #[inline]
    fn full(&self) -> u64 {
        self.over[6]
    }

    /// Words holding an aligned free run of order q (capacity > q).
    #[inline]
    fn cand(&self, q: u32) -> u64 {
        self.over.get(q as usize).copied().unwrap_or(0)
    }

    /// Capacity of word i (`mask_cap` of it), from the masks.
    #[cfg(test)]
    fn word_cap(&self, i: u32) -> u8 {
        self.over.iter().map(|m| ((m >> (i & 63)) & 1) as u8).sum()
    }

    /// Store word i; returns whether its capacity changed (then the masks were updated).
    #[inline]
    fn set_word(&mut self, i: u32, w: u64) -> bool {
        let i = i & 63;
        self.words[i as usize] = w;
        let bit = 1u64 << i;
        let mut r = w;
        let mut changed = 0;
        for (k, m) in self.over.iter_mut().enumerate() {
            if k > 0 {
                r &= (r >> (1u32 << (k - 1))) & ALIGN_PAT[k];
            }
            let new = (*m & !bit) | (u64::from(r != 0) << i);
            changed |= new ^ *m;
            *m = new;
        }
        changed != 0
    }

    /// Store word i, which only gained free pages (`freed`) or only lost some, given the
    /// block's capacity byte before (`cur`, its parent's copy); returns the byte after. The
    /// word's runs are found by the doubling steps of [`mask_cap`], each setting (`freed`) or
    /// clearing its order's bit, with no branch on whether anything changed (in a working set
    /// a coin toss). A word gaining pages short of all free raises the block's capacity to at
    /// most its own, so only a word losing pages or becoming entirely free needs the block
    /// maximum.
    #[inline(always)]
    fn store_word(&mut self, i: u32, w: u64, cur: u8, freed: bool) -> u8 {
        let i = i & 63;
        self.words[i as usize] = w;
        let mut r = w;
        let mut nc = 0u8;
        for (k, m) in self.over.iter_mut().enumerate() {
            if k > 0 {
                r &= (r >> (1u32 << (k - 1))) & ALIGN_PAT[k];
            }
            let has = r != 0;
            nc += u8::from(has);
            if freed {
                *m |= u64::from(has) << i;
            } else {
                *m &= !(u64::from(!has) << i);
            }
        }
        if freed && nc < 7 {
            return cur.max(nc);
        }
        self.summary()
    }

    /// The block's capacity byte as its parent stores it (13 when all free): the largest word
    /// capacity (the number of non-empty masks, as they are nested), or 6 + the run order of
    /// the free words.
    #[inline]
    fn summary(&self) -> u8 {
        if self.over[6] != 0 {
            FAN_BITS as u8 + mask_cap(self.over[6])
        } else {
            self.over[..6].iter().map(|&m| u8::from(m != 0)).sum()
        }
    }
}

/// Where the last quick operation went: the level-2 node (2^18 pages) and the path above it.
/// An operation inside that node's range starts there instead of at the root (three fewer
/// dependent loads in a 2^36-page space). Exact, not a heuristic: a node on a path is only
/// ever replaced after being dropped, and every drop clears the finger; for an allocation,
/// any block below the limit but inside the node is found by searching the node, and one
/// above it cannot exist because the node holds the limit.
#[derive(Clone, Copy)]
struct Finger {
    /// Path entries above the node (root first), as the descents record them.
    path: [(u32, u32); PATH_LEN],
    depth: usize,
    idx: u32,
    base: u64,
    valid: bool,
}

/// Pages a level-2 node covers.
const L2_SPAN: u64 = 1 << (3 * FAN_BITS);

/// The page-granular free map of one IOVA space `[0, 2^bits)` (in pages).
#[derive(Clone)]
pub struct IovaTree {
    /// Interior nodes; the root is `inner[0]` when `root_level >= 2`.
    inner: Vec<Inner>,
    /// Leaf blocks; the root is `blocks[0]` when `root_level == 1`.
    blocks: Vec<Block>,
    spare_inner: Vec<u32>,
    spare_blocks: Vec<u32>,
    root_level: u32,
    end: u64,
    free_pages: u64,
    finger: Finger,
}

impl std::fmt::Debug for IovaTree {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IovaTree")
            .field("end", &self.end)
            .field("free_pages", &self.free_pages)
            .field("nodes", &self.nodes_in_use())
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
            inner: Vec::new(),
            blocks: Vec::new(),
            spare_inner: Vec::new(),
            spare_blocks: Vec::new(),
            root_level,
            end: root_span,
            free_pages: root_span,
            finger: Finger {
                path: [(0, 0); PATH_LEN],
                depth: 0,
                idx: 0,
                base: 0,
                valid: false,
            },
        };
        if root_level >= 2 {
            t.inner.push(Inner::uniform(true, FAN_BITS * root_level));
        } else {
            t.blocks.push(Block::uniform(true));
        }
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

    /// Tree nodes in use (interior nodes plus leaf blocks; memory footprint).
    pub fn nodes_in_use(&self) -> usize {
        self.inner.len() - self.spare_inner.len() + self.blocks.len() - self.spare_blocks.len()
    }

    /// (children entirely free, children that can hold an aligned block of order q) of node
    /// `idx` at level `h`; for a block, q must be below 6.
    #[inline]
    fn masks(&self, h: u32, idx: u32, q: u32) -> Option<(u64, u64)> {
        if h >= 2 {
            self.inner.get(idx as usize).map(|n| (n.free, n.cand(q)))
        } else {
            let b = self.blocks.get(idx as usize)?;
            Some((b.full(), b.cand(q)))
        }
    }

    /// The highest page `p`, a multiple of 2^order, with `[p, p + 2^order)` free and
    /// `p + 2^order <= limit`.
    pub fn find(&self, order: u32, limit: u64) -> Option<u64> {
        let limit = limit.min(self.end);
        if order > FAN_BITS * (self.root_level + 1) || limit < (1u64 << order.min(63)) {
            return None;
        }
        self.find_in(self.root_level, 0, 0, order, limit)
    }

    fn find_in(&self, h: u32, idx: u32, base: u64, q: u32, limit: u64) -> Option<u64> {
        let c = FAN_BITS * h;
        let span = limit - base;
        let full = span >> c;
        let (free, over) = self.masks(h, idx, q)?;
        if q >= c {
            let j = q - c;
            if j > 6 {
                return None;
            }
            let runs = aligned_runs(free & low_mask(full), j);
            if runs == 0 {
                return None;
            }
            return Some(base + ((highest(runs) as u64) << c));
        }
        let straddle = u64::from(full < 64 && span & low_mask(c as u64) != 0);
        let mut cand = over & low_mask(full + straddle);
        let block = 1u64 << q;
        while cand != 0 {
            let i = highest(cand);
            let cbase = base + ((i as u64) << c);
            if free & (1 << i) != 0 {
                let top = (cbase + (1u64 << c)).min(limit);
                if top >= cbase + block {
                    return Some((top - block) & !(block - 1));
                }
            } else if h == 1 {
                let w = self.blocks.get(idx as usize)?.words[(i & 63) as usize];
                let runs = aligned_runs(w & low_mask(limit - cbase), q);
                if runs != 0 {
                    return Some(cbase + highest(runs) as u64);
                }
            } else {
                let k = self.inner.get(idx as usize)?.child[(i & 63) as usize];
                if let Some(p) = self.find_in(h - 1, k, cbase, q, limit) {
                    return Some(p);
                }
            }
            cand &= !(1u64 << i);
        }
        None
    }

    /// Find the block [`Self::find`] would return for `order` and mark its first `size` pages
    /// (`size <= 2^order`) used. Returns the first page.
    #[inline(always)]
    pub fn alloc(&mut self, order: u32, size: u64, limit: u64) -> Option<u64> {
        let limit = limit.min(self.end);
        // The common case inline: a small block below a limit inside the finger's node.
        if order < FAN_BITS
            && size.wrapping_sub(1) < 1u64 << order
            && limit != 0
            && self.finger_holds(limit - 1)
        {
            if let Some(p) = self.alloc_at_finger(order, size, limit) {
                return Some(p);
            }
        }
        self.alloc_general(order, size, limit)
    }

    /// [`Self::alloc`] without the finger (`limit` already clamped to the space).
    #[inline(never)]
    fn alloc_general(&mut self, order: u32, size: u64, limit: u64) -> Option<u64> {
        if order > FAN_BITS * (self.root_level + 1)
            || limit < (1u64 << order.min(63))
            || size == 0
            || size > 1u64 << order
        {
            return None;
        }
        if order < FAN_BITS {
            if let Some(p) = self.alloc_quick(order, size, limit) {
                return Some(p);
            }
        }
        // Large orders, a subtree without nodes yet, or a limit that cuts the chosen subtree:
        // the general search, then the general marking.
        let p = self.find(order, limit)?;
        self.set_range(p, p + size, false);
        Some(p)
    }

    /// One descent for an order below 6 (the block fits inside a word): follow the highest
    /// candidate child while it owns a node, take the highest fitting run of the block's word,
    /// and update capacities on the way back only while they change. `None` (with nothing
    /// changed) when the general path must answer.
    #[inline]
    fn alloc_quick(&mut self, q: u32, size: u64, limit: u64) -> Option<u64> {
        let (mut path, mut depth, mut idx, mut h, mut base) = self.start();
        while h >= 2 {
            if h == 2 {
                self.set_finger(&path, depth, idx, base);
            }
            let c = FAN_BITS * h;
            let n = self.inner.get(idx as usize)?;
            let span = limit - base;
            let full = span >> c;
            let straddle = u64::from(full < 64 && span & low_mask(c as u64) != 0);
            let cand = n.over.get(q as usize)? & low_mask(full + straddle);
            if cand == 0 {
                return None;
            }
            let i = highest(cand);
            if n.nodes & (1u64 << i) == 0 {
                return None;
            }
            *path.get_mut(depth)? = (idx, i);
            depth += 1;
            idx = n.child[(i & 63) as usize];
            base += (i as u64) << c;
            h -= 1;
        }
        let b = self.blocks.get_mut(idx as usize)?;
        let span = limit - base;
        let full = span >> FAN_BITS;
        let straddle = u64::from(full < 64 && span & 63 != 0);
        let mut cand = b.cand(q) & low_mask(full + straddle);
        let (i, w, runs) = loop {
            if cand == 0 {
                return None;
            }
            let i = highest(cand);
            let w = b.words[(i & 63) as usize];
            let runs = aligned_runs(w & low_mask(limit - base - ((i as u64) << FAN_BITS)), q);
            if runs != 0 {
                break (i, w, runs);
            }
            // Only the word the limit cuts can fail; the next candidate lies below it.
            cand &= !(1u64 << i);
        };
        let off = highest(runs);
        self.free_pages -= size;
        if b.set_word(i, w & !(low_mask(size) << off)) {
            let s = b.summary();
            self.propagate(&path[..depth], s);
        }
        Some(base + ((i as u64) << FAN_BITS) + off as u64)
    }

    /// [`Self::alloc_quick`] from the finger's level-2 node, which holds `limit - 1`, written
    /// for that one shape: the node's candidate children, one block, its candidate words.
    /// `None` (with nothing changed) when the node has no fitting block with a block node.
    #[inline(always)]
    fn alloc_at_finger(&mut self, q: u32, size: u64, limit: u64) -> Option<u64> {
        let base = self.finger.base;
        let nidx = self.finger.idx;
        let n = self.inner.get(nidx as usize)?;
        // 1..=2^18, as the node holds limit - 1: the children reaching below the limit.
        let span = limit - base;
        let cand = n.over.get(q as usize)? & low_mask_nz((span + 4095) >> 12);
        if cand == 0 {
            return None;
        }
        let i = highest(cand);
        if n.nodes & (1u64 << i) == 0 {
            return None;
        }
        let bidx = n.child[(i & 63) as usize];
        let cur = n.cap.get(i);
        let bspan = span - ((i as u64) << 12);
        let b = self.blocks.get_mut(bidx as usize)?;
        let mut wc = b.cand(q) & low_mask_nz((bspan.min(4096) + 63) >> 6);
        let (wi, w, runs) = loop {
            if wc == 0 {
                return None;
            }
            let wi = highest(wc);
            let w = b.words[(wi & 63) as usize];
            let wspan = bspan - ((wi as u64) << 6);
            let runs = full_groups(w & low_mask_nz(wspan.min(64)), q);
            if runs != 0 {
                break (wi, w, runs);
            }
            // Only the word the limit cuts can fail; the next candidate lies below it.
            wc &= !(1u64 << wi);
        };
        let off = highest(runs) & !((1u32 << q) - 1);
        self.free_pages -= size;
        let s = b.store_word(wi, w & !(low_mask(size) << off), cur, false);
        if s != cur {
            self.block_changed(nidx, i, cur, s);
        }
        Some(base + ((i as u64) << 12) + ((wi as u64) << 6) + off as u64)
    }

    /// [`Self::set_word_quick`] for `[lo, hi)` inside one word of the finger's node, which
    /// holds `lo`. `None` (with nothing changed) when the block has no node.
    #[inline(always)]
    fn word_at_finger(&mut self, lo: u64, hi: u64, free: bool) -> Option<u64> {
        let nidx = self.finger.idx;
        let n = self.inner.get(nidx as usize)?;
        let i = ((lo - self.finger.base) >> 12) as u32 & 63;
        if n.nodes & (1u64 << i) == 0 {
            return None;
        }
        let cur = n.cap.get(i);
        let b = self.blocks.get_mut(n.child[i as usize] as usize)?;
        let wi = (lo >> FAN_BITS) as u32 & 63;
        let wbase = lo & !63;
        let m = low_mask_nz(hi - wbase) & (u64::MAX << (lo - wbase));
        let old = b.words[wi as usize];
        let w = if free { old | m } else { old & !m };
        if w == old {
            return Some(0);
        }
        let flipped = count_flip(&mut self.free_pages, old, w, m, hi - lo, free);
        let s = b.store_word(wi, w, cur, free);
        if s != cur {
            self.block_changed(nidx, i, cur, s);
        }
        Some(flipped)
    }

    /// Block `i` of the finger's node (`nidx`) went from capacity `old` to `s`: record it and
    /// pass a change of the node's own capacity up the finger's path.
    #[inline(always)]
    fn block_changed(&mut self, nidx: u32, i: u32, old: u8, s: u8) {
        let Some(n) = self.inner.get_mut(nidx as usize) else {
            return;
        };
        const C: u32 = 2 * FAN_BITS;
        n.set_cap(i, s, C);
        // With free blocks in the node its capacity is their run order, unchanged unless
        // this block became or stopped being free.
        if n.free != 0 && old != C as u8 + 1 && s != C as u8 + 1 {
            return;
        }
        let ns = n.summary(C);
        let (path, depth) = (self.finger.path, self.finger.depth);
        if let Some(p) = path.get(..depth) {
            self.propagate(p, ns);
        }
    }

    /// Whether the finger's node covers page `p`.
    #[inline]
    fn finger_holds(&self, p: u64) -> bool {
        self.finger.valid && p.wrapping_sub(self.finger.base) < L2_SPAN
    }

    /// Where a descent from the root starts: (path, depth, node, level, base).
    #[inline]
    fn start(&self) -> ([(u32, u32); PATH_LEN], usize, u32, u32, u64) {
        ([(0, 0); PATH_LEN], 0, 0, self.root_level, 0)
    }

    /// A descent reached level-2 node `idx`: remember it (if it is not already the finger).
    #[inline]
    fn set_finger(&mut self, path: &[(u32, u32); PATH_LEN], depth: usize, idx: u32, base: u64) {
        let f = &mut self.finger;
        if !(f.valid && f.idx == idx) {
            *f = Finger {
                path: *path,
                depth,
                idx,
                base,
                valid: true,
            };
        }
    }

    /// Store the new capacity `s` of the node at the end of `path` in its parent, and so on up
    /// while a node's capacity changes.
    #[inline(always)]
    fn propagate(&mut self, path: &[(u32, u32)], s: u8) {
        // Most changes of a block stop at its parent: check that without a call.
        if let Some(&(pidx, i)) = path.last() {
            if self
                .inner
                .get(pidx as usize)
                .is_some_and(|n| n.cap.get(i) == s)
            {
                return;
            }
        }
        self.propagate_up(path, s);
    }

    #[inline(never)]
    fn propagate_up(&mut self, path: &[(u32, u32)], mut s: u8) {
        let mut h = self.root_level - path.len() as u32;
        for &(pidx, i) in path.iter().rev() {
            h += 1;
            let Some(n) = self.inner.get_mut(pidx as usize) else {
                return;
            };
            let c = FAN_BITS * h;
            if n.cap.get(i) == s {
                return;
            }
            n.set_cap(i, s, c);
            s = n.summary(c);
        }
    }

    /// Whether every page of `[lo, hi)` is free (`free`) or used (`!free`).
    pub fn range_is(&self, lo: u64, hi: u64, free: bool) -> bool {
        if lo >= hi || hi > self.end {
            return false;
        }
        self.range_is_in(self.root_level, 0, 0, lo, hi, free)
    }

    fn range_is_in(&self, h: u32, idx: u32, base: u64, lo: u64, hi: u64, free: bool) -> bool {
        let c = FAN_BITS * h;
        let first = ((lo.max(base) - base) >> c) as u32;
        let last = ((hi - 1 - base) >> c).min(63) as u32;
        if h == 1 {
            let Some(b) = self.blocks.get(idx as usize) else {
                return false;
            };
            return (first..=last).all(|i| {
                let wbase = base + ((i as u64) << c);
                let m = low_mask(hi - wbase) & !low_mask(lo.max(wbase) - wbase);
                let w = b.words[(i & 63) as usize];
                if free {
                    w & m == m
                } else {
                    w & m == 0
                }
            });
        }
        let Some(n) = self.inner.get(idx as usize) else {
            return false;
        };
        for i in first..=last {
            let ci = n.cap.get(i);
            if ci == c as u8 + 1 || ci == 0 {
                if (ci != 0) != free {
                    return false;
                }
                continue;
            }
            let cbase = base + ((i as u64) << c);
            let clo = lo.max(cbase);
            let chi = hi.min(cbase + (1u64 << c));
            if !self.range_is_in(h - 1, n.child[(i & 63) as usize], cbase, clo, chi, free) {
                return false;
            }
        }
        true
    }

    /// Mark `[lo, hi)` free or used (pages beyond the space are ignored). Returns how many pages
    /// changed state.
    #[inline]
    pub fn set_range(&mut self, lo: u64, hi: u64, free: bool) -> u64 {
        // The common case inline: a range inside one word of the finger's node.
        if lo < hi && lo >> FAN_BITS == (hi - 1) >> FAN_BITS && self.finger_holds(lo) {
            if let Some(n) = self.word_at_finger(lo, hi, free) {
                return n;
            }
        }
        self.set_range_general(lo, hi, free)
    }

    #[inline(never)]
    fn set_range_general(&mut self, lo: u64, hi: u64, free: bool) -> u64 {
        let hi = hi.min(1u64 << (FAN_BITS * (self.root_level + 1)));
        if lo >= hi {
            return 0;
        }
        let before = self.free_pages;
        if lo >> FAN_BITS != (hi - 1) >> FAN_BITS || self.set_word_quick(lo, hi, free).is_none() {
            self.set_in(self.root_level, 0, 0, lo, hi, free);
        }
        before.abs_diff(self.free_pages)
    }

    /// `[lo, hi)` inside one word whose block exists: walk down by index, change the word,
    /// and update capacities upwards only while they change. `None` (with nothing changed)
    /// when a node on the way is missing.
    #[inline]
    fn set_word_quick(&mut self, lo: u64, hi: u64, free: bool) -> Option<()> {
        let (mut path, mut depth, mut idx, mut h, mut base) = self.start();
        while h >= 2 {
            if h == 2 {
                self.set_finger(&path, depth, idx, base);
            }
            let c = FAN_BITS * h;
            let n = self.inner.get(idx as usize)?;
            let i = ((lo - base) >> c) as u32 & 63;
            if n.nodes & (1u64 << i) == 0 {
                return None;
            }
            *path.get_mut(depth)? = (idx, i);
            depth += 1;
            idx = n.child[i as usize];
            base += (i as u64) << c;
            h -= 1;
        }
        let b = self.blocks.get_mut(idx as usize)?;
        let i = ((lo - base) >> FAN_BITS) as u32 & 63;
        let wbase = base + ((i as u64) << FAN_BITS);
        let m = low_mask(hi - wbase) & !low_mask(lo - wbase);
        let old = b.words[i as usize];
        let w = if free { old | m } else { old & !m };
        if w == old {
            return Some(());
        }
        count_flip(&mut self.free_pages, old, w, m, hi - lo, free);
        if b.set_word(i, w) {
            let s = b.summary();
            self.propagate(&path[..depth], s);
        }
        Some(())
    }

    fn new_inner(&mut self, free: bool, c: u32) -> u32 {
        if let Some(i) = self.spare_inner.pop() {
            if let Some(n) = self.inner.get_mut(i as usize) {
                *n = Inner::uniform(free, c);
                return i;
            }
        }
        self.inner.push(Inner::uniform(free, c));
        (self.inner.len() - 1) as u32
    }

    fn new_block(&mut self, free: bool) -> u32 {
        if let Some(i) = self.spare_blocks.pop() {
            if let Some(b) = self.blocks.get_mut(i as usize) {
                *b = Block::uniform(free);
                return i;
            }
        }
        self.blocks.push(Block::uniform(free));
        (self.blocks.len() - 1) as u32
    }

    /// Return node `idx` at level `h` and everything below it to the spare lists.
    fn drop_subtree(&mut self, h: u32, idx: u32) {
        self.finger.valid = false;
        if h == 1 {
            self.spare_blocks.push(idx);
            return;
        }
        if let Some(n) = self.inner.get(idx as usize) {
            let kids = n.child;
            let mut m = n.nodes;
            while m != 0 {
                let i = m.trailing_zeros();
                self.drop_subtree(h - 1, kids[(i & 63) as usize]);
                m &= m - 1;
            }
        }
        self.spare_inner.push(idx);
    }

    /// Pages free inside node `idx` at level `h` (for the free-page count on whole-child
    /// overwrites, which are rare).
    fn node_free_pages(&self, h: u32, idx: u32) -> u64 {
        if h == 1 {
            return self.blocks.get(idx as usize).map_or(0, |b| {
                b.words.iter().map(|w| u64::from(w.count_ones())).sum()
            });
        }
        let Some(n) = self.inner.get(idx as usize) else {
            return 0;
        };
        let c = FAN_BITS * h;
        let mut total = 0;
        for i in 0..64u32 {
            let ci = n.cap.get(i);
            total += if ci == c as u8 + 1 {
                1u64 << c
            } else if ci == 0 {
                0
            } else {
                self.node_free_pages(h - 1, n.child[i as usize])
            };
        }
        total
    }

    /// Mark `[lo, hi)` inside node `idx` at level `h` (covering from `base`). Returns the
    /// node's new capacity byte.
    fn set_in(&mut self, h: u32, idx: u32, base: u64, lo: u64, hi: u64, free: bool) -> u8 {
        let c = FAN_BITS * h;
        let csize = 1u64 << c;
        let free_cap = c as u8 + 1;
        let first = ((lo.max(base) - base) >> c) as u32;
        let last = ((hi - 1 - base) >> c).min(63) as u32;
        if h == 1 {
            let Some(b) = self.blocks.get_mut(idx as usize) else {
                return 0;
            };
            let mut delta: i64 = 0;
            for i in first..=last {
                let wbase = base + ((i as u64) << c);
                let m = low_mask(hi.min(wbase + csize) - wbase) & !low_mask(lo.max(wbase) - wbase);
                let old = b.words[(i & 63) as usize];
                let w = if free { old | m } else { old & !m };
                b.set_word(i, w);
                delta += i64::from(w.count_ones()) - i64::from(old.count_ones());
            }
            let s = b.summary();
            self.free_pages = self.free_pages.wrapping_add_signed(delta);
            return s;
        }
        for i in first..=last {
            let bit = 1u64 << i;
            let cbase = base + ((i as u64) << c);
            let cend = cbase + csize;
            let (ci, has_node, child) = match self.inner.get(idx as usize) {
                Some(n) => (n.cap.get(i), n.nodes & bit != 0, n.child[(i & 63) as usize]),
                None => return 0,
            };
            let (is_free, is_used) = (ci == free_cap, ci == 0);
            if (free && is_free) || (!free && is_used) {
                continue; // already in the target state
            }
            let new_cap = if lo <= cbase && hi >= cend {
                // Whole child.
                let was_free = if is_free {
                    csize
                } else if is_used {
                    0
                } else {
                    self.node_free_pages(h - 1, child)
                };
                if has_node {
                    if let Some(n) = self.inner.get_mut(idx as usize) {
                        n.nodes &= !bit;
                    }
                    self.drop_subtree(h - 1, child);
                }
                if free {
                    self.free_pages += csize - was_free;
                    free_cap
                } else {
                    self.free_pages -= was_free;
                    0
                }
            } else {
                // A node kept for a uniform child is uniform in that same state.
                let k = if has_node {
                    child
                } else {
                    let k = if h == 2 {
                        self.new_block(is_free)
                    } else {
                        self.new_inner(is_free, c - FAN_BITS)
                    };
                    if let Some(n) = self.inner.get_mut(idx as usize) {
                        n.child[(i & 63) as usize] = k;
                        n.nodes |= bit;
                    }
                    k
                };
                self.set_in(h - 1, k, cbase, lo, hi, free)
            };
            if let Some(n) = self.inner.get_mut(idx as usize) {
                n.set_cap(i, new_cap, c);
            }
        }
        self.inner.get(idx as usize).map_or(0, |n| n.summary(c))
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
        assert_eq!(aligned_runs(u64::MAX, 6), 1);
        assert_eq!(aligned_runs(u64::MAX, 0), u64::MAX);
        assert_eq!(mask_cap(0), 0);
        assert_eq!(mask_cap(0b1111_0000), 3);
        assert_eq!(mask_cap(1 << 63), 1);
        assert_eq!(mask_cap(0xffff_ffff_0000_0000), 6);
        assert_eq!(mask_cap(0x7fff_ffff_ffff_ffff), 6);
        assert_eq!(mask_cap(u64::MAX), 7);
        // 0b0111_1110: the aligned pairs at 2 and 4, but no aligned four.
        assert_eq!(mask_cap(0b0111_1110), 2);
    }

    /// The one-add run test agrees with the doubling steps (which mark the group's low bit).
    #[test]
    fn full_groups_match_aligned_runs() {
        let mut x = 0x2545_f491_4f6c_dd1du64;
        for round in 0..4000u32 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let m = match round % 5 {
                0 => x,
                1 => x | (x >> 1) | (x >> 3),
                2 => !(1u64 << (x % 64)),
                3 => u64::MAX,
                _ => x & (x >> 2),
            };
            for q in 0..=6u32 {
                let low = aligned_runs(m, q);
                assert_eq!(full_groups(m, q), low << ((1u32 << q) - 1), "{m:#x} q {q}");
            }
            assert_eq!(full_groups(m, 7), 0);
        }
    }

    #[test]
    fn byte_masks_match_a_plain_loop() {
        let mut caps = Caps([0; 64]);
        let mut x = 0x1234_5678_9abc_def1u64;
        for round in 0..200 {
            for b in caps.0.iter_mut() {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                *b = (x % 44) as u8;
            }
            if round % 7 == 0 {
                caps.0 = [round as u8 % 44; 64];
            }
            for q in 0..200u32 {
                let want =
                    (0..64).fold(0u64, |m, i| m | (u64::from(u32::from(caps.0[i]) > q) << i));
                assert_eq!(caps.gt_mask(q), want);
            }
            assert_eq!(Some(caps.max()), caps.0.iter().copied().max());
        }
    }

    #[test]
    fn block_masks_match_the_word_capacities() {
        let mut b = Block::uniform(true);
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut cur = b.summary();
        for round in 0..3000u32 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let i = (x >> 58) as u32;
            let old = b.words[i as usize];
            let w = match round % 6 {
                0 => 0,
                1 => u64::MAX,
                2 => x & (x >> 3) & (x >> 9),
                3 => old | (x & (x >> 5)),
                4 => old & (x | (x >> 1)),
                _ => x,
            };
            if round % 6 == 3 || round % 6 == 4 {
                // One direction only: the quick store, which keeps the block byte itself.
                cur = b.store_word(i, w, cur, round % 6 == 3);
            } else {
                b.set_word(i, w);
                cur = b.summary();
            }
            for q in 0..9u32 {
                let want = (0..64).fold(0u64, |m, i| {
                    m | (u64::from(u32::from(mask_cap(b.words[i])) > q) << i)
                });
                assert_eq!(b.cand(q), want, "q {q}");
            }
            assert_eq!(b.full(), b.cand(6));
            let max = (0..64).map(|i| mask_cap(b.words[i])).max().unwrap_or(0);
            let want = if max == 7 {
                6 + mask_cap(b.full())
            } else {
                max
            };
            assert_eq!(b.summary(), want);
            assert_eq!(cur, want, "round {round}");
            assert!((0..64u32).all(|i| b.word_cap(i) == mask_cap(b.words[i as usize])));
        }
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
        for bits in [1, 5, 6, 11, 12, 13, 18, 19, 36, 42] {
            let t = IovaTree::new(bits);
            assert_eq!(t.free_pages(), 1 << bits, "bits {bits}");
            assert_eq!(t.find(bits, 1 << bits), Some(0), "bits {bits}");
            assert_eq!(t.find(bits + 1, u64::MAX), None, "bits {bits}");
            assert_eq!(t.find(0, u64::MAX), Some((1 << bits) - 1), "bits {bits}");
        }
    }

    /// Blocks of 4,096 pages: allocations walk down across block and word boundaries, and
    /// freeing everything returns the nodes to a state that answers like a fresh tree.
    #[test]
    fn block_boundaries_and_full_blocks() {
        let mut t = IovaTree::new(20);
        let top = 1u64 << 20;
        // Fill the top block and one page more with single pages.
        for k in 0..=4096 {
            assert_eq!(t.alloc(0, 1, top), Some(top - 1 - k));
        }
        assert_eq!(t.free_pages(), top - 4097);
        // The top block is full: a 16-page block comes from below the next block's used page.
        assert_eq!(t.alloc(4, 16, top), Some(top - 4096 - 32));
        // A limit inside a block, at a word boundary and just above one.
        assert_eq!(t.alloc(0, 1, 64 * 5), Some(64 * 5 - 1));
        assert_eq!(t.alloc(2, 3, 64 * 5 + 2), Some(64 * 5 - 8));
        assert_eq!(t.alloc(12, 4096, top), Some(top - 3 * 4096));
        assert_eq!(t.alloc(13, 5000, top), Some(top - 3 * 8192));
        t.set_range(0, top, true);
        assert_eq!(t.free_pages(), top);
        assert_eq!(t.alloc(20, 1 << 20, top), Some(0));
        assert_eq!(t.alloc(0, 1, top), None);
    }

    /// Reference for large spaces: the used ranges as disjoint `[start, end)` intervals.
    #[derive(Default)]
    struct Model {
        used: std::collections::BTreeMap<u64, u64>,
    }

    impl Model {
        fn set(&mut self, lo: u64, hi: u64, free: bool) {
            // Cut [lo, hi) out of every interval, then add it back if used.
            let hits: Vec<(u64, u64)> = self
                .used
                .range(..hi)
                .rev()
                .take_while(|&(_, &e)| e > lo)
                .map(|(&s, &e)| (s, e))
                .collect();
            for (s, e) in hits {
                self.used.remove(&s);
                if s < lo {
                    self.used.insert(s, lo);
                }
                if e > hi {
                    self.used.insert(hi, e);
                }
            }
            if !free {
                self.used.insert(lo, hi);
            }
        }

        fn used_in(&self, lo: u64, hi: u64) -> u64 {
            self.used
                .range(..hi)
                .rev()
                .take_while(|&(_, &e)| e > lo)
                .map(|(&s, &e)| e.min(hi) - s.max(lo))
                .sum()
        }

        /// Highest aligned 2^order block below `limit` clear of every interval.
        fn find(&self, order: u32, limit: u64) -> Option<u64> {
            let block = 1u64 << order;
            let mut p = limit.checked_sub(block)? & !(block - 1);
            loop {
                match self.used.range(..p + block).next_back() {
                    Some((&s, &e)) if e > p => p = s.checked_sub(block)? & !(block - 1),
                    _ => return Some(p),
                }
            }
        }
    }

    impl IovaTree {
        /// Check every stored summary against its source, from the words up: word capacity
        /// masks per order, each parent byte against its child's recomputed capacity, the
        /// ready masks, and the free-page count. Returns the root's capacity.
        fn check(&self) -> u8 {
            let (cap, free) = self.check_in(self.root_level, 0);
            assert_eq!(free, self.free_pages, "free pages");
            cap
        }

        /// (capacity, free pages) of node `idx` at level `h`, checking its bytes.
        fn check_in(&self, h: u32, idx: u32) -> (u8, u64) {
            if h == 1 {
                let b = &self.blocks[idx as usize];
                for i in 0..64u32 {
                    let c = mask_cap(b.words[i as usize]);
                    for k in 0..7 {
                        assert_eq!((b.over[k] >> i) & 1, u64::from(c as usize > k), "over[{k}]");
                    }
                }
                let free = b.words.iter().map(|w| u64::from(w.count_ones())).sum();
                return (b.summary(), free);
            }
            let n = &self.inner[idx as usize];
            let c = FAN_BITS * h;
            let mut free = 0;
            for i in 0..64u32 {
                let ci = n.cap.get(i);
                let (want, f) = if n.nodes & (1 << i) != 0 {
                    // A kept uniform node is checked like any other.
                    self.check_in(h - 1, n.child[i as usize])
                } else {
                    assert!(
                        ci == 0 || ci == c as u8 + 1,
                        "partial child {i} without a node"
                    );
                    (ci, if ci == 0 { 0 } else { 1u64 << c })
                };
                assert_eq!(ci, want, "level {h} child {i} capacity byte");
                free += f;
                for k in 0..SMALL {
                    assert_eq!(
                        (n.over[k] >> i) & 1,
                        u64::from(ci as usize > k),
                        "over[{k}]"
                    );
                }
                assert_eq!(
                    (n.free >> i) & 1,
                    u64::from(u32::from(ci) == c + 1),
                    "free mask"
                );
            }
            (n.summary(c), free)
        }
    }

    /// A page near an interesting place of a `2^bits` space: a block (4,096) or level-2
    /// (2^18) boundary, the top, or anywhere.
    fn spot(bits: u32, kind: u8, x: u64, off: i64) -> u64 {
        let end = 1u64 << bits;
        // Exactly on the boundary half of the time.
        let off = if x >> 63 == 0 { 0 } else { off };
        let base = match kind % 4 {
            0 => (x % (end >> 12).max(1)) << 12,
            1 => (x % (end >> 18).max(1)) << 18,
            2 => end,
            _ => x % end,
        };
        base.saturating_add_signed(off).min(end)
    }

    /// Dropping the level-2 node the last operation went through (a whole-node overwrite)
    /// forgets the shortcut to it: the next operation there sees the new state.
    #[test]
    fn dropped_nodes_are_not_reached_through_the_finger() {
        let top = 1u64 << 20;
        let mut t = IovaTree::new(36);
        assert_eq!(t.alloc(0, 1, top), Some(top - 1));
        assert_eq!(t.set_range(top - L2_SPAN, top, true), 1);
        assert_eq!(t.alloc(0, 1, top), Some(top - 1));
        t.set_range(top - 2, top - 1, false);
        assert_eq!(t.set_range(top - L2_SPAN, top, false), L2_SPAN - 2);
        assert_eq!(t.alloc(0, 1, top), Some(top - L2_SPAN - 1));
        assert_eq!(t.set_range(top - 1, top, true), 1);
        assert_eq!(t.alloc(0, 1, top), Some(top - 1));
        assert_eq!(t.free_pages(), (1 << 36) - L2_SPAN - 1);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(24))]
        /// The DMA pattern the finger serves: a working set of small aligned blocks below a
        /// 32-bit limit in a 2^36-page space, freed at random and reallocated, with now and
        /// then an odd-sized free or reservation. Every answer against the interval model,
        /// every stored capacity against its source.
        #[test]
        fn working_set_under_a_limit_matches_the_model(
            seed in proptest::num::u64::ANY,
            live_n in 1usize..600,
            limit_off in 0u64..5000,
        ) {
            let bits = 36;
            let limit = (1u64 << 20) - limit_off;
            let mut t = IovaTree::new(bits);
            let mut m = Model::default();
            let mut x = seed | 1;
            let mut next = move || {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x
            };
            let mut live: Vec<(u64, u64)> = Vec::new();
            for step in 0..3000 {
                let r = next();
                if live.len() >= live_n || (r & 3 == 0 && !live.is_empty()) {
                    let (p, n) = live.swap_remove((r >> 8) as usize % live.len());
                    // Mostly the exact range; sometimes part of it.
                    let (lo, hi) = if r >> 60 == 0 && n > 1 { (p + 1, p + n) } else { (p, p + n) };
                    let want = m.used_in(lo, hi);
                    proptest::prop_assert_eq!(t.set_range(lo, hi, true), want);
                    m.set(lo, hi, true);
                    if lo > p {
                        t.set_range(p, lo, true);
                        m.set(p, lo, true);
                    }
                } else if r >> 58 == 1 {
                    // An odd reservation near the top (crosses words and blocks).
                    let lo = limit.saturating_sub((r >> 20) % 20_000);
                    let hi = (lo + 1 + (r >> 40) % 150).min(1 << bits);
                    let want = hi - lo - m.used_in(lo, hi);
                    proptest::prop_assert_eq!(t.set_range(lo, hi, false), want);
                    m.set(lo, hi, false);
                } else {
                    let order = ((r >> 4) % 6) as u32;
                    let size = 1 + (r >> 32) % (1u64 << order);
                    let want = m.find(order, limit);
                    proptest::prop_assert_eq!(t.alloc(order, size, limit), want, "step {}", step);
                    if let Some(p) = want {
                        m.set(p, p + size, false);
                        live.push((p, size));
                    }
                }
                proptest::prop_assert_eq!(t.free_pages(), (1u64 << bits) - m.used_in(0, 1 << bits));
                if step % 64 == 0 {
                    t.check();
                }
            }
            t.check();
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(96))]
        /// Deep trees (up to 2^42 pages) against the interval model: block and level
        /// boundaries, limits inside blocks, large orders, full blocks, the aperture end.
        #[test]
        fn matches_an_interval_model(
            bits in 12u32..=42,
            ops in proptest::collection::vec(
                (0u8..6, 0u8..4, proptest::num::u64::ANY, -300i64..300, 0u32..20, 0u8..4, proptest::num::u64::ANY, -70i64..70),
                1..150),
        ) {
            let end = 1u64 << bits;
            let mut t = IovaTree::new(bits);
            let mut m = Model::default();
            for (op, kind, x, off, lg, lkind, lx, loff) in ops {
                let lo = spot(bits, kind, x, off).min(end - 1);
                let len = (1u64 << lg) + (x >> 50) % 3;
                let hi = (lo + len).min(end);
                let limit = spot(bits, lkind, lx, loff);
                match op {
                    0 | 1 => {
                        let free = op == 0;
                        let changed = m.used_in(lo, hi);
                        let want = if free { changed } else { hi - lo - changed };
                        proptest::prop_assert_eq!(t.set_range(lo, hi, free), want);
                        m.set(lo, hi, free);
                    }
                    2 | 3 => {
                        // Orders up to the whole space; small ones most often.
                        let order = if op == 2 { lg % 6 } else { (lx >> 40) as u32 % (bits + 1) };
                        let size = 1 + (x >> 20) % (1u64 << order);
                        let want = m.find(order, limit);
                        proptest::prop_assert_eq!(t.find(order, limit), want);
                        proptest::prop_assert_eq!(t.alloc(order, size, limit), want);
                        if let Some(p) = want {
                            m.set(p, p + size, false);
                        }
                    }
                    4 => {
                        proptest::prop_assert_eq!(t.range_is(lo, hi, true), m.used_in(lo, hi) == 0);
                        proptest::prop_assert_eq!(t.range_is(lo, hi, false), m.used_in(lo, hi) == hi - lo);
                    }
                    _ => {
                        for q in [0, 3, 5, 6, 11, 12, 13, 18] {
                            proptest::prop_assert_eq!(t.find(q, limit), m.find(q, limit));
                        }
                    }
                }
                proptest::prop_assert_eq!(t.free_pages(), end - m.used_in(0, end));
                t.check();
            }
            for q in 0..=bits {
                proptest::prop_assert_eq!(t.find(q, end), m.find(q, end));
            }
        }
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
