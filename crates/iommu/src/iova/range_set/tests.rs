//! The range set against a sorted list and Linux's walk, and its stored summaries against
//! the ranges below them.

use super::node::{gap, gap_cap, max_byte, Summary, FANOUT, NO_KEY};
use super::RangeSet;

impl RangeSet {
    /// Check every stored summary against the ranges below it.
    pub(super) fn check(&self) {
        fn walk(s: &RangeSet, h: u32, idx: u32, is_root: bool) -> (Summary, usize) {
            if h == 0 {
                let l = &s.leaves[idx as usize];
                assert!(is_root || l.n > 0, "empty leaf");
                for i in 0..FANOUT {
                    let want = if i + 1 < l.n {
                        assert!(l.hi[i] < l.lo[i + 1], "order");
                        gap(l.hi[i], l.lo[i + 1])
                    } else {
                        0
                    };
                    assert_eq!(l.gcap[i], want, "leaf gap {i}");
                }
                assert_eq!(l.cap, max_byte(&l.gcap), "leaf capacity");
                assert!(l.lo[l.n..].iter().all(|&x| x == NO_KEY), "leaf padding");
                return (l.summary(), l.n);
            }
            let node = &s.inners[idx as usize];
            assert!(node.n >= if is_root { 2 } else { 1 }, "thin node");
            let mut count = 0;
            for i in 0..node.n {
                let (cs, n) = walk(s, h - 1, node.child[i], false);
                count += n;
                assert_eq!(
                    (node.min_lo[i], node.max_hi[i], node.ccap[i]),
                    (cs.min_lo, cs.max_hi, cs.cap),
                    "child {i} at height {h}"
                );
                let mut cap = cs.cap;
                if i + 1 < node.n {
                    assert!(node.max_hi[i] < node.min_lo[i + 1], "order");
                    cap = cap.max(gap(node.max_hi[i], node.min_lo[i + 1]));
                }
                assert_eq!(node.scap[i], cap, "slot {i}");
            }
            assert!(node.scap[node.n..].iter().all(|&x| x == 0));
            assert_eq!(node.cap, max_byte(&node.scap), "node capacity");
            assert!(
                node.min_lo[node.n..].iter().all(|&x| x == NO_KEY),
                "node padding"
            );
            (node.summary(), count)
        }
        let (_, n) = walk(self, self.height, self.root, true);
        assert_eq!(n, self.len);
    }
}

use proptest::prelude::*;

/// Linux's walk, literally, over a sorted list.
fn walk(ranges: &[(u64, u64)], low: u64, high: u64, size: u64, mask: u64) -> Option<u64> {
    let top = high;
    let mut high = high;
    let mut new = high.wrapping_sub(size) & mask;
    for &(lo, hi) in ranges.iter().rev().filter(|r| r.0 < top) {
        if !(new <= hi && new >= low) {
            break;
        }
        high = high.min(lo);
        new = high.wrapping_sub(size) & mask;
    }
    (high >= size && new >= low).then_some(new)
}

#[test]
fn gap_capacities() {
    assert_eq!(gap_cap(5, 5), 0);
    assert_eq!(gap_cap(5, 6), 1);
    assert_eq!(gap_cap(1, 4), 2); // [2, 4)
    assert_eq!(gap_cap(1, 5), 2); // [2, 4); no aligned four
    assert_eq!(gap_cap(0, 8), 4);
    assert_eq!(gap_cap(1, 9), 3); // [4, 8); [8, 16) does not fit
    assert_eq!(gap_cap(u64::MAX - 3, u64::MAX), 2);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    /// Inserts, removals and searches against a sorted list and Linux's walk.
    #[test]
    fn matches_a_sorted_list(
        ops in proptest::collection::vec((0u8..4, 0u64..4096, 0u64..40, 0u64..4200, 0u32..7, any::<bool>()), 1..300),
    ) {
        let mut s = RangeSet::new();
        let mut list: Vec<(u64, u64)> = Vec::new();
        for (op, x, len, y, order, aligned) in ops {
            match op {
                0 | 1 => {
                    let (lo, hi) = (x, x + len);
                    if !list.iter().any(|&(l, h)| l <= hi && h >= lo) {
                        s.insert(lo, hi);
                        let at = list.partition_point(|r| r.0 < lo);
                        list.insert(at, (lo, hi));
                    }
                }
                2 => {
                    let held = list.iter().position(|r| r.0 == x);
                    prop_assert_eq!(s.remove(x), held.is_some());
                    if let Some(i) = held {
                        list.remove(i);
                    }
                    if let Some(&(lo, _)) = list.get(y as usize % list.len().max(1)) {
                        s.remove(lo);
                        list.retain(|r| r.0 != lo);
                    }
                }
                _ => {
                    let below = list.iter().rev().find(|r| r.0 <= x).copied();
                    let above = list.iter().find(|r| r.0 > x).copied();
                    prop_assert_eq!(s.at_or_below(x), (below, above));
                }
            }
            let size = 1 + len % (1 << order);
            let mask = if aligned { !(size.next_power_of_two() - 1) } else { u64::MAX };
            let (low, high) = (x.min(y), x.max(y));
            prop_assert_eq!(
                s.highest_fit(low, high, size, mask),
                walk(&list, low, high, size, mask),
                "low {} high {} size {} mask {:#x}", low, high, size, mask
            );
            prop_assert_eq!(s.len(), list.len());
            s.check();
        }
        prop_assert_eq!(s.iter().collect::<Vec<_>>(), list);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    /// Thousands of small ranges (three levels of nodes), filled then thinned at random
    /// until nodes empty out and the root hands over: every search against Linux's walk.
    #[test]
    fn deep_trees_match_a_sorted_list(seed in any::<u64>(), fill in 4000usize..9000) {
        let mut x = seed | 1;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut s = RangeSet::new();
        let mut list: Vec<(u64, u64)> = Vec::new();
        let space = 8 * fill as u64;
        let mut tallest = 0;
        for step in 0..3 * fill {
            tallest = tallest.max(s.height);
            let r = next();
            // Fill, then empty: removals win in the second half.
            let removing = !list.is_empty() && (r % 5 == 0 || (step > fill && r % 3 != 2));
            if removing {
                let k = (r >> 8) as usize % list.len();
                let (lo, hi) = list.remove(k);
                if r >> 63 == 0 {
                    prop_assert!(s.remove(lo));
                } else {
                    // By any page of it, with the range above it in the same descent.
                    let pfn = lo + (r >> 40) % (hi - lo + 1);
                    prop_assert_eq!(s.take_holding(pfn), Some(((lo, hi), list.get(k).copied())));
                }
            } else {
                let lo = (r >> 16) % space;
                let hi = lo + (r >> 4) % 4;
                let at = list.partition_point(|r| r.0 < lo);
                let free = list.get(at).is_none_or(|n| n.0 > hi)
                    && at.checked_sub(1).is_none_or(|p| list[p].1 < lo);
                if free {
                    s.insert(lo, hi);
                    list.insert(at, (lo, hi));
                }
            }
            let q = next();
            let size = 1 + (q % 7);
            let mask = match q >> 60 {
                0..=9 => !(size.next_power_of_two() - 1),
                _ => u64::MAX,
            };
            let high = (q >> 20) % (space + 64);
            let low = high.saturating_sub((q >> 40) % space);
            prop_assert_eq!(
                s.highest_fit(low, high, size, mask),
                walk(&list, low, high, size, mask),
                "step {} low {} high {} size {}", step, low, high, size
            );
            let p = (q >> 24) % space;
            let below = list.iter().rev().find(|r| r.0 <= p).copied();
            let above = list.iter().find(|r| r.0 > p).copied();
            prop_assert_eq!(s.at_or_below(p), (below, above));
            if step % 97 == 0 {
                s.check();
            }
        }
        s.check();
        prop_assert_eq!(s.iter().collect::<Vec<_>>(), list);
        prop_assert!(tallest >= 2, "height {}", tallest);
        prop_assert!(s.height < tallest, "the root handed over");
    }
}
