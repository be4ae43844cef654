//! The nodes of the range set: leaves of sorted ranges with the capacity of the gap above
//! each, interior nodes with a summary per child, and the byte and gap arithmetic they share.

/// Ranges per leaf and children per interior node.
pub(super) const FANOUT: usize = 32;

/// `1 + order` of the largest naturally aligned block inside `[a, b)`, 0 if the gap is empty.
/// A gap of `len` pages (2^k <= len < 2^(k+1)) always holds an aligned block of 2^(k-1) pages
/// and may hold one of 2^k: one check decides.
#[inline]
pub(super) fn gap_cap(a: u64, b: u64) -> u8 {
    if b <= a {
        return 0;
    }
    let k = 63 - (b - a).leading_zeros();
    let block = 1u64 << k;
    let first = a.wrapping_add(block - 1) & !(block - 1);
    // `first >= a` guards the wrap of `a + block - 1` at the top of the space.
    let fits = first >= a && first <= b - block;
    (k + u32::from(fits)) as u8
}

/// Capacity of the gap above a range ending at `hi` and below one starting at `lo`.
#[inline]
pub(super) fn gap(hi: u64, lo: u64) -> u8 {
    gap_cap(hi.saturating_add(1), lo)
}

/// Key of an unused slot: slots past a node's last hold it, so that a search over all
/// [`FANOUT`] slots stays sorted.
pub(super) const NO_KEY: u64 = u64::MAX;

/// Slots of the first `n` of the sorted `keys` (the rest [`NO_KEY`]) at or below `k`: a
/// binary search of fixed steps, each a compare and an add (no branch: positions in a node
/// are not predictable).
#[inline]
pub(super) fn count_le(keys: &[u64; FANOUT], n: usize, k: u64) -> usize {
    let mut pos = 0;
    let mut step = FANOUT / 2;
    while step > 0 {
        pos += step * usize::from(keys[(pos + step - 1) & (FANOUT - 1)] <= k);
        step /= 2;
    }
    (pos + usize::from(keys[pos & (FANOUT - 1)] <= k)).min(n)
}

/// Slots of the first `n` of the sorted `keys` below `k`.
#[inline]
pub(super) fn count_lt(keys: &[u64; FANOUT], n: usize, k: u64) -> usize {
    match k.checked_sub(1) {
        Some(k) => count_le(keys, n, k),
        None => 0,
    }
}

/// A one in every byte.
pub(super) const BYTE_ONES: u64 = 0x0101_0101_0101_0101;
/// Multiplier that moves bit 8k of a word (k = 0..8) to bit 56 + k.
pub(super) const GATHER: u64 = 0x0102_0408_1020_4080;

/// Bit i set iff `caps[i] >= need`. Capacities are at most 64, so adding `128 - need` to
/// every byte of a word sets a byte's top bit exactly when it reaches `need`, without carries
/// between bytes; a multiply gathers a word's eight top bits into one byte.
#[inline]
pub(super) fn ge_mask(caps: &[u8; FANOUT], need: u8) -> u32 {
    let add = BYTE_ONES * u64::from(128 - need.min(128));
    let mut m = 0;
    for (j, ch) in caps.as_chunks::<8>().0.iter().enumerate() {
        let tops = (u64::from_le_bytes(*ch).wrapping_add(add) >> 7) & BYTE_ONES;
        m |= ((tops.wrapping_mul(GATHER) >> 56) as u32) << (8 * j);
    }
    m
}

/// The largest byte.
#[inline]
pub(super) fn max_byte(caps: &[u8; FANOUT]) -> u8 {
    let mut m = [0u8; 16];
    for ch in caps.as_chunks::<16>().0 {
        for (a, &b) in m.iter_mut().zip(ch) {
            *a = (*a).max(b);
        }
    }
    m.into_iter().fold(0, u8::max)
}

/// Bits below `i` (`i < 32`).
#[inline]
pub(super) fn low_bits(i: usize) -> u32 {
    (1u32 << i) - 1
}

/// Index of the highest set bit of a non-zero mask.
#[inline]
pub(super) fn highest(m: u32) -> usize {
    31 - m.leading_zeros() as usize
}

/// What a parent keeps of a child: lowest `lo`, highest `hi`, and the largest capacity among
/// the gaps between the child's ranges.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Summary {
    pub(super) min_lo: u64,
    pub(super) max_hi: u64,
    pub(super) cap: u8,
}

/// Up to [`FANOUT`] ranges, sorted; `gcap[i]` is the capacity of the gap above range `i` up
/// to range `i + 1` (zero for the last range and for unused slots).
#[derive(Clone)]
pub(super) struct Leaf {
    pub(super) n: usize,
    /// The largest of `gcap`.
    pub(super) cap: u8,
    pub(super) lo: [u64; FANOUT],
    pub(super) hi: [u64; FANOUT],
    pub(super) gcap: [u8; FANOUT],
}

/// Up to [`FANOUT`] children with their summaries; `scap[i]` joins child `i`'s own gaps with
/// the gap above it up to child `i + 1` (the last child: its own gaps only).
#[derive(Clone)]
pub(super) struct Inner {
    pub(super) n: usize,
    /// The largest of `scap`.
    pub(super) cap: u8,
    pub(super) child: [u32; FANOUT],
    pub(super) min_lo: [u64; FANOUT],
    pub(super) max_hi: [u64; FANOUT],
    pub(super) ccap: [u8; FANOUT],
    pub(super) scap: [u8; FANOUT],
}

/// Shift `a[at..n]` up by one slot.
#[inline]
pub(super) fn open<T: Copy>(a: &mut [T; FANOUT], at: usize, n: usize) {
    a.copy_within(at..n, at + 1);
}

/// Shift `a[at + 1..n]` down by one slot, clearing the freed last slot.
#[inline]
pub(super) fn close<T: Copy + Default>(a: &mut [T; FANOUT], at: usize, n: usize) {
    close_with(a, at, n, T::default());
}

/// [`close`], the freed slot set to `pad`.
#[inline]
pub(super) fn close_with<T: Copy>(a: &mut [T; FANOUT], at: usize, n: usize, pad: T) {
    a.copy_within(at + 1..n, at);
    a[n - 1] = pad;
}

/// The largest capacity of `caps` after some slots changed, given the largest before (`max`),
/// the values the change overwrote or removed (`lost`) and those it wrote (`gained`): only
/// losing a value equal to the largest needs a recount.
#[inline]
pub(super) fn settle_max(max: u8, lost: [u8; 2], gained: [u8; 2], caps: &[u8; FANOUT]) -> u8 {
    if lost.iter().any(|&c| c != 0 && c == max) {
        max_byte(caps)
    } else {
        max.max(gained[0]).max(gained[1])
    }
}

/// Move `a[from..]` to the front of `b`, clearing it in `a`.
#[inline]
pub(super) fn move_upper<T: Copy + Default>(a: &mut [T; FANOUT], b: &mut [T; FANOUT], from: usize) {
    move_upper_with(a, b, from, T::default());
}

/// [`move_upper`], the emptied slots set to `pad`.
#[inline]
pub(super) fn move_upper_with<T: Copy>(
    a: &mut [T; FANOUT],
    b: &mut [T; FANOUT],
    from: usize,
    pad: T,
) {
    b[..FANOUT - from].copy_from_slice(&a[from..]);
    a[from..].fill(pad);
}

impl Leaf {
    pub(super) fn empty() -> Leaf {
        Leaf {
            n: 0,
            cap: 0,
            lo: [NO_KEY; FANOUT],
            hi: [0; FANOUT],
            gcap: [0; FANOUT],
        }
    }

    /// Recompute the gap above range `i`.
    #[inline]
    pub(super) fn set_gap(&mut self, i: usize) {
        self.gcap[i] = if i + 1 < self.n {
            gap(self.hi[i], self.lo[i + 1])
        } else {
            0
        };
    }

    #[inline]
    pub(super) fn summary(&self) -> Summary {
        let n = self.n.max(1);
        Summary {
            min_lo: self.lo[0],
            max_hi: self.hi[n - 1],
            cap: self.cap,
        }
    }

    pub(super) fn insert(&mut self, j: usize, lo: u64, hi: u64) {
        let n = self.n;
        let below = j.saturating_sub(1);
        let lost = if j > 0 { self.gcap[below] } else { 0 };
        open(&mut self.lo, j, n);
        open(&mut self.hi, j, n);
        open(&mut self.gcap, j, n);
        self.lo[j] = lo;
        self.hi[j] = hi;
        self.n = n + 1;
        self.set_gap(j);
        if j > 0 {
            self.set_gap(below);
        }
        let gained = [self.gcap[j], self.gcap[below]];
        self.cap = settle_max(self.cap, [lost, 0], gained, &self.gcap);
    }

    pub(super) fn remove(&mut self, j: usize) {
        let n = self.n;
        let below = j.saturating_sub(1);
        let lost = [self.gcap[j], if j > 0 { self.gcap[below] } else { 0 }];
        close_with(&mut self.lo, j, n, NO_KEY);
        close(&mut self.hi, j, n);
        close(&mut self.gcap, j, n);
        self.n = n - 1;
        if j > 0 {
            self.set_gap(below);
        }
        self.cap = settle_max(self.cap, lost, [self.gcap[below], 0], &self.gcap);
    }

    /// Move the upper half into `right` (empty).
    pub(super) fn split(&mut self, right: &mut Leaf) {
        let half = FANOUT / 2;
        move_upper_with(&mut self.lo, &mut right.lo, half, NO_KEY);
        move_upper(&mut self.hi, &mut right.hi, half);
        move_upper(&mut self.gcap, &mut right.gcap, half);
        right.n = self.n - half;
        self.n = half;
        self.set_gap(half - 1);
        self.cap = max_byte(&self.gcap);
        right.cap = max_byte(&right.gcap);
    }
}

impl Inner {
    pub(super) fn empty() -> Inner {
        Inner {
            n: 0,
            cap: 0,
            child: [0; FANOUT],
            min_lo: [NO_KEY; FANOUT],
            max_hi: [0; FANOUT],
            ccap: [0; FANOUT],
            scap: [0; FANOUT],
        }
    }

    /// Recompute slot `i`'s joined gaps.
    #[inline]
    pub(super) fn set_slot(&mut self, i: usize) {
        let mut cap = self.ccap[i];
        if i + 1 < self.n {
            cap = cap.max(gap(self.max_hi[i], self.min_lo[i + 1]));
        }
        self.scap[i] = cap;
    }

    /// Store child `i`'s summary.
    #[inline]
    pub(super) fn put(&mut self, i: usize, s: Summary) {
        let below = i.saturating_sub(1);
        let lost = [self.scap[i], self.scap[below]];
        self.min_lo[i] = s.min_lo;
        self.max_hi[i] = s.max_hi;
        self.ccap[i] = s.cap;
        self.set_slot(i);
        if i > 0 {
            self.set_slot(below);
        }
        let gained = [self.scap[i], self.scap[below]];
        self.cap = settle_max(self.cap, lost, gained, &self.scap);
    }

    #[inline]
    pub(super) fn summary(&self) -> Summary {
        let n = self.n.max(1);
        Summary {
            min_lo: self.min_lo[0],
            max_hi: self.max_hi[n - 1],
            cap: self.cap,
        }
    }

    /// The child whose ranges a key `k` belongs among: the last starting at or below it.
    #[inline]
    pub(super) fn child_for(&self, k: u64) -> usize {
        count_le(&self.min_lo, self.n, k).saturating_sub(1)
    }

    pub(super) fn insert(&mut self, j: usize, child: u32, s: Summary) {
        let n = self.n;
        open(&mut self.child, j, n);
        open(&mut self.min_lo, j, n);
        open(&mut self.max_hi, j, n);
        open(&mut self.ccap, j, n);
        open(&mut self.scap, j, n);
        // The new slot holds nothing yet (not a copy of its neighbour's capacity).
        self.scap[j] = 0;
        self.child[j] = child;
        self.n = n + 1;
        self.put(j, s);
    }

    pub(super) fn remove(&mut self, j: usize) {
        let n = self.n;
        let below = j.saturating_sub(1);
        let lost = [self.scap[j], if j > 0 { self.scap[below] } else { 0 }];
        close(&mut self.child, j, n);
        close_with(&mut self.min_lo, j, n, NO_KEY);
        close(&mut self.max_hi, j, n);
        close(&mut self.ccap, j, n);
        close(&mut self.scap, j, n);
        self.n = n - 1;
        if j > 0 {
            self.set_slot(below);
        }
        self.cap = settle_max(self.cap, lost, [self.scap[below], 0], &self.scap);
    }

    pub(super) fn split(&mut self, right: &mut Inner) {
        let half = FANOUT / 2;
        move_upper(&mut self.child, &mut right.child, half);
        move_upper_with(&mut self.min_lo, &mut right.min_lo, half, NO_KEY);
        move_upper(&mut self.max_hi, &mut right.max_hi, half);
        move_upper(&mut self.ccap, &mut right.ccap, half);
        move_upper(&mut self.scap, &mut right.scap, half);
        right.n = self.n - half;
        self.n = half;
        self.set_slot(half - 1);
        self.cap = max_byte(&self.scap);
        right.cap = max_byte(&right.scap);
    }
}
