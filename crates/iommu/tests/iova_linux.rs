//! The IOVA allocator against a reference model of Linux's `iova.c`, written here from its
//! algorithm (a sorted list of ranges walked one by one from a cached position, and literal
//! per-CPU magazines and depot): the same IOVAs for any sequence of allocations and frees, and
//! the same ranges left behind, for both depots (v6.1's array, v6.12's list).

mod iova_raw;

use iommu::iova::{IovaDepot, IovaDomain, IovaParams, MAG_SIZE, MAX_DEPOT_MAGS};
use iova_raw::RawIova;
use proptest::prelude::*;
use smmu_addr::{IovaPfn, PageCount};

/// Sizes below this are rounded up to a power of two by `alloc_iova_fast`.
const ROUND_BELOW: u64 = 32;
/// Size bins of the rcache (orders 0..6).
const BINS: u32 = 6;

/// One CPU's magazines and the shared depot of one size bin.
#[derive(Clone, Default)]
struct ModelBin {
    loaded: Vec<u64>,
    prev: Vec<u64>,
    /// Array: index order. List: the head is the last element.
    depot: Vec<Vec<u64>>,
}

/// Linux's iova_domain, literally: ranges sorted by first PFN, the anchor last.
struct Model {
    ranges: Vec<(u64, u64)>,
    cached: u64,
    cached32: u64,
    dma_32bit_pfn: u64,
    max32_alloc_size: u64,
    start_pfn: u64,
    bins: Option<Vec<ModelBin>>,
    depot: IovaDepot,
}

fn order_base_2(n: u64) -> u32 {
    64 - n.saturating_sub(1).leading_zeros()
}

impl Model {
    fn new(shift: u32, start_pfn: u64, rcache: bool, depot: IovaDepot) -> Model {
        let dma_32bit_pfn = 1u64 << (32 - shift);
        Model {
            ranges: vec![(u64::MAX, u64::MAX)],
            cached: u64::MAX,
            cached32: u64::MAX,
            dma_32bit_pfn,
            max32_alloc_size: dma_32bit_pfn,
            start_pfn,
            bins: rcache.then(|| vec![ModelBin::default(); BINS as usize]),
            depot,
        }
    }

    fn index_of(&self, lo: u64) -> usize {
        self.ranges
            .iter()
            .position(|r| r.0 == lo)
            .expect("cached range held")
    }

    fn alloc_iova(&mut self, size: u64, limit_pfn: u64, aligned: bool) -> Option<u64> {
        let limit = limit_pfn + 1;
        let mask = if aligned {
            u64::MAX << order_base_2(size)
        } else {
            u64::MAX
        };
        if limit <= self.dma_32bit_pfn && size >= self.max32_alloc_size {
            return None;
        }
        let start = if limit <= self.dma_32bit_pfn {
            self.cached32
        } else {
            self.cached
        };
        let mut curr = Some(self.index_of(start));
        let retry_pfn = self.ranges[curr.unwrap()].1;
        let (mut high, mut low) = (limit, self.start_pfn);
        loop {
            let mut new;
            loop {
                let i = curr.unwrap();
                high = high.min(self.ranges[i].0);
                new = high.wrapping_sub(size) & mask;
                curr = i.checked_sub(1);
                match curr {
                    Some(j) if new <= self.ranges[j].1 && new >= low => {}
                    _ => break,
                }
            }
            if high < size || new < low {
                if low == self.start_pfn && retry_pfn < limit {
                    high = limit;
                    low = retry_pfn + 1;
                    curr = Some(self.ranges.len() - 1);
                    continue;
                }
                self.max32_alloc_size = size;
                return None;
            }
            let hi = new + size - 1;
            let at = self.ranges.partition_point(|r| r.0 < new);
            self.ranges.insert(at, (new, hi));
            if hi < self.dma_32bit_pfn {
                self.cached32 = new;
            } else {
                self.cached = new;
            }
            return Some(new);
        }
    }

    fn free_iova(&mut self, pfn: u64) {
        let Some(i) = self
            .ranges
            .iter()
            .position(|&(lo, hi)| lo <= pfn && pfn <= hi && lo != u64::MAX)
        else {
            return;
        };
        let (lo, hi) = self.ranges[i];
        let next = self.ranges[i + 1].0;
        if lo == self.cached32 || (hi < self.dma_32bit_pfn && lo >= self.cached32) {
            self.cached32 = next;
        }
        if lo < self.dma_32bit_pfn {
            self.max32_alloc_size = self.dma_32bit_pfn;
        }
        if lo >= self.cached {
            self.cached = next;
        }
        self.ranges.remove(i);
    }

    fn reserve(&mut self, lo: u64, hi: u64) {
        let (mut lo, hi) = (lo, hi);
        let mut overlap = false;
        let mut i = 0;
        while i < self.ranges.len() {
            let (l, h) = self.ranges[i];
            if l <= hi && h >= lo && l != u64::MAX {
                if lo < l {
                    self.ranges[i].0 = lo;
                    for c in [&mut self.cached, &mut self.cached32] {
                        if *c == l {
                            *c = lo;
                        }
                    }
                }
                if hi > h {
                    lo = h + 1;
                } else {
                    return;
                }
                overlap = true;
            } else if overlap {
                break;
            }
            i += 1;
        }
        let at = self.ranges.partition_point(|r| r.0 < lo);
        self.ranges.insert(at, (lo, hi));
    }

    fn free_mag(&mut self, mag: Vec<u64>) {
        for p in mag {
            self.free_iova(p);
        }
    }

    fn rcache_insert(&mut self, pfn: u64, size: u64) -> bool {
        let log = order_base_2(size);
        let depot_kind = self.depot;
        let Some(bins) = self.bins.as_mut() else {
            return false;
        };
        if log >= BINS {
            return false;
        }
        let bin = &mut bins[log as usize];
        let mut to_free = None;
        if bin.loaded.len() < MAG_SIZE {
        } else if bin.prev.len() < MAG_SIZE {
            std::mem::swap(&mut bin.loaded, &mut bin.prev);
        } else {
            let full = std::mem::take(&mut bin.loaded);
            if depot_kind == IovaDepot::List || bin.depot.len() < MAX_DEPOT_MAGS {
                bin.depot.push(full);
            } else {
                to_free = Some(full);
            }
        }
        bin.loaded.push(pfn);
        if let Some(m) = to_free {
            self.free_mag(m);
        }
        true
    }

    fn rcache_get(&mut self, size: u64, limit: u64) -> Option<u64> {
        let log = order_base_2(size);
        let bins = self.bins.as_mut()?;
        if log >= BINS {
            return None;
        }
        let bin = &mut bins[log as usize];
        let max = limit.wrapping_sub(size);
        if bin.loaded.is_empty() {
            if !bin.prev.is_empty() {
                std::mem::swap(&mut bin.loaded, &mut bin.prev);
            } else {
                bin.loaded = bin.depot.pop()?;
            }
        }
        let m = &mut bin.loaded;
        let mut i = m.len() - 1;
        while m[i] > max {
            if i == 0 {
                return None;
            }
            i -= 1;
        }
        Some(m.swap_remove(i))
    }

    fn flush(&mut self) {
        let Some(bins) = self.bins.take() else {
            return;
        };
        let mut bins = bins;
        for b in bins.iter_mut() {
            let (l, p) = (std::mem::take(&mut b.loaded), std::mem::take(&mut b.prev));
            self.free_mag(l);
            self.free_mag(p);
        }
        for b in bins.iter_mut() {
            let mut d = std::mem::take(&mut b.depot);
            if self.depot == IovaDepot::List {
                d.reverse();
            }
            for m in d {
                self.free_mag(m);
            }
        }
        self.bins = Some(bins);
    }

    fn alloc_fast(&mut self, size: u64, limit_pfn: u64, flush: bool) -> Option<u64> {
        let size = if size < ROUND_BELOW {
            size.next_power_of_two()
        } else {
            size
        };
        if let Some(p) = self.rcache_get(size, limit_pfn.wrapping_add(1)) {
            return Some(p);
        }
        if let Some(p) = self.alloc_iova(size, limit_pfn, true) {
            return Some(p);
        }
        if !flush {
            return None;
        }
        self.flush();
        self.alloc_iova(size, limit_pfn, true)
    }

    fn free_fast(&mut self, pfn: u64, size: u64) {
        if !self.rcache_insert(pfn, size) {
            self.free_iova(pfn);
        }
    }

    fn held(&self) -> Vec<(u64, u64)> {
        self.ranges[..self.ranges.len() - 1].to_vec()
    }
}

fn domain(shift: u32, end_pfn: u64, rcache: bool, depot: IovaDepot) -> RawIova {
    RawIova(
        IovaDomain::new(IovaParams {
            shift,
            start_pfn: IovaPfn::new(1),
            end_pfn: IovaPfn::new(end_pfn),
            rcache,
            depot,
        })
        .expect("valid parameters"),
    )
}

#[test]
fn next_fit_minimal_case_from_the_issue() {
    // Linux returns 0xfffff, 0xffffc, 0xffffb; the highest free hole would be 0xffffe.
    for rcache in [false, true] {
        let mut d = domain(12, (1 << 36) - 1, rcache, IovaDepot::Array);
        let got: Vec<u64> = [1, 2, 1]
            .iter()
            .map(|&n| d.alloc_fast(n, 0xfffff, true).unwrap())
            .collect();
        assert_eq!(got, [0xfffff, 0xffffc, 0xffffb]);
        let mut m = Model::new(12, 1, rcache, IovaDepot::Array);
        let want: Vec<u64> = [1, 2, 1]
            .iter()
            .map(|&n| m.alloc_fast(n, 0xfffff, true).unwrap())
            .collect();
        assert_eq!(want, got);
    }
}

#[test]
fn a_free_above_the_cached_position_moves_it_up() {
    let mut d = domain(12, (1 << 36) - 1, false, IovaDepot::Array);
    let a = d.alloc(1, 0xfffff, true).unwrap();
    let b = d.alloc(1, 0xfffff, true).unwrap();
    let c = d.alloc(1, 0xfffff, true).unwrap();
    assert_eq!((a, b, c), (0xfffff, 0xffffe, 0xffffd));
    // Freeing b (above the cached c) moves the cached position to the range above b (a):
    // the next allocation reuses b's page.
    assert_eq!(d.free_containing(b), Some((b, b)));
    assert_eq!(d.alloc(1, 0xfffff, true), Some(b));
    // Freeing c (below the cached b) leaves the position: the next one goes below b, to c.
    assert_eq!(d.free_containing(c), Some((c, c)));
    assert_eq!(d.alloc(1, 0xfffff, true), Some(c));
}

#[test]
fn the_retry_searches_between_the_cached_position_and_the_limit() {
    // Fill the bottom of a 32-bit space, then free a range at the top: the cached position
    // is low, nothing fits below it, and the retry finds the hole above it.
    let mut d = domain(24, 511, false, IovaDepot::Array);
    let mut m = Model::new(24, 1, false, IovaDepot::Array);
    let mut got = Vec::new();
    while let Some(p) = d.alloc(8, 255, true) {
        assert_eq!(m.alloc_iova(8, 255, true), Some(p));
        got.push(p);
    }
    assert_eq!(m.alloc_iova(8, 255, true), None);
    assert_eq!(got.len(), 31); // 8..256 in blocks of 8; page 0 is never allocatable
    d.free_containing(got[0]);
    m.free_iova(got[0]);
    assert_eq!(d.alloc(8, 255, true), Some(248));
    assert_eq!(m.alloc_iova(8, 255, true), Some(248));
}

#[test]
fn a_failed_32bit_size_fails_without_search_until_a_free_below_4g() {
    let mut d = domain(24, 511, false, IovaDepot::Array);
    // A 32-bit request as large as the whole 32-bit space fails before any search.
    assert_eq!(d.alloc(256, 255, true), None);
    assert_eq!(d.alloc(128, 255, true), Some(128));
    // 100 pages aligned to 128 fit nowhere below 4 GiB now: the failure records 100.
    assert_eq!(d.alloc(100, 255, true), None);
    // Smaller sizes still search (and 64 fits); 100 or more fail at once.
    assert_eq!(d.alloc(64, 255, true), Some(64));
    assert_eq!(d.alloc(120, 255, true), None);
    // A free below 4 GiB forgets the failed size: 100 pages fit once 128..228 is free.
    assert_eq!(d.free_containing(128), Some((128, 255)));
    assert_eq!(d.alloc(100, 255, true), Some(128));
}

#[test]
fn reserve_merges_overlaps_as_linux_does() {
    let mut d = domain(12, (1 << 20) - 1, false, IovaDepot::Array);
    let mut m = Model::new(12, 1, false, IovaDepot::Array);
    for (lo, hi) in [
        (0x100, 0x1ff),
        (0x300, 0x3ff),
        (0x180, 0x37f),
        (0x80, 0x100),
    ] {
        d.reserve(lo, hi);
        m.reserve(lo, hi);
    }
    assert_eq!(d.ranges().collect::<Vec<_>>(), m.held());
    assert_eq!(
        m.held(),
        [(0x80, 0x1ff), (0x200, 0x3ff)],
        "an overlapped range grows down to the reserved start; the part above it continues"
    );
}

/// Fill magazines until the depot overflows, flush, and reallocate: the order in which the
/// depot gives ranges back decides the cached positions and so the IOVAs that follow.
fn depot_run(depot: IovaDepot) -> (u64, Vec<u64>) {
    let mut d = domain(12, (1 << 20) - 1, true, depot);
    let mut m = Model::new(12, 1, true, depot);
    let n = MAG_SIZE * (MAX_DEPOT_MAGS + 8);
    let mut pfns = Vec::new();
    for _ in 0..n {
        let p = d.alloc_fast(1, 0xfffff, true).unwrap();
        assert_eq!(m.alloc_fast(1, 0xfffff, true), Some(p));
        pfns.push(p);
    }
    // Free all but every tenth, in a scattered order so magazines hold unsorted ranges.
    for i in (0..n).filter(|i| i % 10 != 0) {
        let p = pfns[(i * 7919) % n];
        d.free_fast(p, 1);
        m.free_fast(p, 1);
    }
    assert_eq!(d.ranges().collect::<Vec<_>>(), m.held());
    let cached = d.cached_pages();
    // Before the flush: the array depot already gave the overflowing magazines back to the
    // tree, which moved the cached position; the list keeps them.
    let mut out = Vec::new();
    for size in [2u64, 4, 1, 8] {
        let p = d.alloc_fast(size, 0xfffff, true);
        assert_eq!(m.alloc_fast(size, 0xfffff, true), p);
        out.extend(p);
    }
    d.flush_rcache();
    m.flush();
    assert_eq!(d.ranges().collect::<Vec<_>>(), m.held());
    for size in [1u64, 2, 4, 3, 1, 8, 1] {
        let p = d.alloc(size, 0xfffff, true);
        assert_eq!(m.alloc_iova(size, 0xfffff, true), p);
        out.extend(p);
    }
    (cached, out)
}

#[test]
fn the_depot_array_and_list_differ_as_linux_61_and_612_do() {
    let array = depot_run(IovaDepot::Array);
    let list = depot_run(IovaDepot::List);
    // loaded + prev + 32 depot magazines in v6.1; every freed range in v6.12.
    let freed = (MAG_SIZE * (MAX_DEPOT_MAGS + 8) * 9 / 10) as u64;
    assert_eq!(array.0, (MAG_SIZE * (MAX_DEPOT_MAGS + 2)) as u64);
    assert_eq!(list.0, freed);
}

#[derive(Debug, Clone)]
enum Op {
    AllocFast {
        size: u64,
        limit: usize,
        flush: bool,
    },
    Alloc {
        size: u64,
        limit: usize,
        aligned: bool,
    },
    FreeFast(usize),
    FreeContaining(usize, u64),
    Flush,
}

/// Limits (inclusive PFNs) with a 16 MiB granule: 4 GiB is PFN 256. A limit below the size
/// makes Linux's rcache bound wrap, so that every cached range passes it.
const LIMITS: [u64; 5] = [255, 511, 63, 200, 2];

fn op() -> impl Strategy<Value = Op> {
    let size = prop_oneof![4 => 1u64..=8, 1 => 9u64..=40];
    prop_oneof![
        6 => (size.clone(), 0..LIMITS.len(), any::<bool>())
            .prop_map(|(size, limit, flush)| Op::AllocFast { size, limit, flush }),
        2 => (size, 0..LIMITS.len(), any::<bool>())
            .prop_map(|(size, limit, aligned)| Op::Alloc { size, limit, aligned }),
        5 => any::<usize>().prop_map(Op::FreeFast),
        2 => (any::<usize>(), 0u64..40).prop_map(|(i, off)| Op::FreeContaining(i, off)),
        1 => Just(Op::Flush),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn every_sequence_gives_linux_iovas(
        ops in prop::collection::vec(op(), 1..300),
        rcache in any::<bool>(),
        list in any::<bool>(),
        reserve in any::<bool>(),
    ) {
        let depot = if list { IovaDepot::List } else { IovaDepot::Array };
        let mut d = domain(24, 511, rcache, depot);
        let mut m = Model::new(24, 1, rcache, depot);
        if reserve {
            d.reserve(64, 79);
            m.reserve(64, 79);
        }
        // Live allocations: (pfn, pages as requested).
        let mut live: Vec<(u64, u64)> = Vec::new();
        for op in ops {
            match op {
                Op::AllocFast { size, limit, flush } => {
                    let got = d.alloc_fast(size, LIMITS[limit], flush);
                    prop_assert_eq!(got, m.alloc_fast(size, LIMITS[limit], flush), "{:?}", op);
                    live.extend(got.map(|p| (p, size)));
                }
                Op::Alloc { size, limit, aligned } => {
                    let got = d.alloc(size, LIMITS[limit], aligned);
                    prop_assert_eq!(got, m.alloc_iova(size, LIMITS[limit], aligned), "{:?}", op);
                    live.extend(got.map(|p| (p, size)));
                }
                Op::FreeFast(i) if !live.is_empty() => {
                    let (p, n) = live.swap_remove(i % live.len());
                    d.free_fast(p, n);
                    m.free_fast(p, n);
                }
                Op::FreeContaining(i, off) if !live.is_empty() => {
                    let (p, n) = live.swap_remove(i % live.len());
                    d.free_containing(p + off % n);
                    m.free_iova(p + off % n);
                }
                Op::Flush => {
                    d.flush_rcache();
                    m.flush();
                }
                _ => {}
            }
            prop_assert_eq!(d.ranges().collect::<Vec<_>>(), m.held());
        }
    }
}

/// The safe mode's checked frees against Linux's `free_iova`: each difference.
#[test]
fn checked_frees_refuse_what_linux_free_iova_accepts() {
    let top = 0xfffff;
    // A page inside a range: Linux frees the whole range; the checked free refuses.
    let mut d = domain(12, top, false, IovaDepot::Array);
    let p = d.alloc(4, top, true).unwrap();
    assert_eq!(
        d.free(p + 1, 3),
        Err(iommu::iova::IovaError::NotAllocated {
            pfn: IovaPfn::new(p + 1),
            pages: PageCount::new(3)
        })
    );
    assert_eq!(d.free_containing(p + 1), Some((p, p + 3)));
    // A page no range holds: Linux does nothing; the checked free reports it.
    assert_eq!(d.free_containing(p), None);
    assert_eq!(
        d.free(p, 4),
        Err(iommu::iova::IovaError::NotAllocated {
            pfn: IovaPfn::new(p),
            pages: PageCount::new(4)
        })
    );
    // A range parked in the rcache: Linux's free_iova frees it under the cache, so the cache
    // later hands out a range the tree may also hand out; the checked free refuses.
    let mut d = domain(12, top, true, IovaDepot::Array);
    let p = d.alloc_fast(1, top, true).unwrap();
    d.free_fast(p, 1);
    assert_eq!(
        d.free_checked_fast(p, 1),
        Err(iommu::iova::IovaError::NotAllocated {
            pfn: IovaPfn::new(p),
            pages: PageCount::new(1)
        })
    );
    assert_eq!(d.free_containing(p), Some((p, p)));
    let from_tree = d.alloc(1, top, true).unwrap();
    let from_cache = d.alloc_fast(1, top, true).unwrap();
    assert_eq!(
        (from_tree, from_cache),
        (p, p),
        "the same IOVA twice, as in Linux"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// A realistic geometry (4 KiB granule, 8 GiB space, 32- and 33-bit limits) and long
    /// sequences: the bitmap tree's fast paths against the literal model.
    #[test]
    fn long_sequences_in_a_4k_space_give_linux_iovas(
        ops in prop::collection::vec((0u8..10, 1u64..=40, any::<usize>(), any::<bool>()), 1..1500),
        rcache in any::<bool>(),
    ) {
        let end = (1u64 << 21) - 1;
        let mut d = domain(12, end, rcache, IovaDepot::List);
        let mut m = Model::new(12, 1, rcache, IovaDepot::List);
        d.reserve(0x8000, 0x80ff);
        m.reserve(0x8000, 0x80ff);
        let mut live: Vec<(u64, u64)> = Vec::new();
        for (kind, size, pick, wide) in ops {
            let limit = if wide { end } else { 0xfffff };
            if kind < 6 || live.is_empty() {
                let got = d.alloc_fast(size, limit, true);
                prop_assert_eq!(got, m.alloc_fast(size, limit, true));
                live.extend(got.map(|p| (p, size)));
            } else {
                let (p, n) = live.swap_remove(pick % live.len());
                d.free_fast(p, n);
                m.free_fast(p, n);
            }
        }
        prop_assert_eq!(d.ranges().collect::<Vec<_>>(), m.held());
    }
}
