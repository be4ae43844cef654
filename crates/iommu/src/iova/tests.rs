use super::*;
use proptest::prelude::*;
use std::collections::BTreeMap;

#[path = "../../tests/iova_raw/mod.rs"]
mod iova_raw;
use iova_raw::RawIova;

fn dom(rcache: bool) -> RawIova {
    // 4 KiB granule, 32-bit space, IOVA 0 excluded as Linux does.
    RawIova(
        IovaDomain::new(IovaParams {
            shift: 12,
            start_pfn: IovaPfn::new(1),
            end_pfn: IovaPfn::new((1 << 20) - 1),
            rcache,
            depot: IovaDepot::Array,
        })
        .unwrap(),
    )
}

#[test]
fn top_down_and_size_aligned() {
    let mut d = dom(false);
    assert_eq!(d.alloc_fast(1, (1 << 20) - 1, true), Some((1 << 20) - 1));
    // 3 pages round to 4 and align to 4.
    assert_eq!(d.alloc_fast(3, (1 << 20) - 1, true), Some((1 << 20) - 8));
    // A lower limit (inclusive PFN) is respected.
    assert_eq!(d.alloc_fast(2, 0x1000, true), Some(0xffe));
    assert_eq!(d.alloc_fast(2, 0x1000, true), Some(0xffc));
    // 40 pages: not rounded, aligned to 64. Next-fit: the search starts below the last
    // allocation (0xffc), not from the top, so the partly used top block is not reached.
    let p = d.alloc_fast(40, (1 << 20) - 1, true).unwrap();
    assert_eq!(p, 0xfc0);
    // And the next one continues below that.
    assert_eq!(d.alloc_fast(16, (1 << 20) - 1, true), Some(0xfb0));
}

#[test]
fn pfn_zero_and_reserved_ranges_are_never_returned() {
    let mut d = dom(false);
    d.reserve(0x8000, 0x80ff); // the MSI window, in pages
    let mut got = Vec::new();
    while let Some(p) = d.alloc_fast(1, 0x80ff + 10, true) {
        got.push(p);
    }
    assert!(!got.contains(&0));
    assert!(got.iter().all(|&p| !(0x8000..=0x80ff).contains(&p)));
    assert_eq!(got.len() as u64, 0x80ff + 10 - 0x100); // pages 1..=0x8108 minus the window
}

#[test]
fn rcache_hit_returns_the_freed_range() {
    let mut d = dom(true);
    let a = d.alloc_fast(1, (1 << 20) - 1, true).unwrap();
    d.free_fast(a, 1);
    assert_eq!(d.cached_pages(), 1);
    let b = d.alloc_fast(1, (1 << 20) - 1, true).unwrap();
    assert_eq!(a, b);
    assert_eq!(d.stats().rcache_hits, 1);
    assert_eq!(d.stats().tree_allocs, 1);
    // A cached range above a caller's limit is not handed out.
    d.free_fast(b, 1);
    let c = d.alloc_fast(1, 0x100, true).unwrap();
    assert_eq!(c, 0x100);
    assert_eq!(d.stats().rcache_hits, 1);
}

#[test]
fn magazines_spill_to_the_depot_and_beyond() {
    let mut d = dom(true);
    let n = MAG_SIZE * (MAX_DEPOT_MAGS + 3);
    let pfns: Vec<u64> = (0..n)
        .map(|_| d.alloc_fast(1, (1 << 20) - 1, true).unwrap())
        .collect();
    let free_before = d.free_pages();
    for &p in &pfns {
        d.free_fast(p, 1);
    }
    // loaded + prev + 32 depot magazines stay cached; the rest went back to the tree.
    let cached = (MAG_SIZE * (MAX_DEPOT_MAGS + 2)) as u64;
    assert_eq!(d.cached_pages(), cached);
    assert_eq!(d.free_pages(), free_before + n as u64 - cached);
    d.flush_rcache();
    assert_eq!(d.free_pages(), (1 << 20) - 1);
}

#[test]
fn exhaustion_flushes_the_rcache_once() {
    let mut d = RawIova(
        IovaDomain::new(IovaParams {
            shift: 12,
            start_pfn: IovaPfn::new(1),
            end_pfn: IovaPfn::new(63),
            rcache: true,
            depot: IovaDepot::Array,
        })
        .unwrap(),
    );
    let ones: Vec<u64> = (0..63)
        .map(|_| d.alloc_fast(1, 63, true).unwrap())
        .collect();
    assert_eq!(d.alloc_fast(1, 63, true), None);
    for &p in &ones[..8] {
        d.free_fast(p, 1);
    }
    // 4 pages need the tree: only after the cache is flushed can the pages merge.
    let four = d.alloc_fast(4, 63, true);
    assert!(four.is_some());
    assert_eq!(d.stats().rcache_flushes, 1);
}

#[test]
fn checked_free_rejects_misuse() {
    let mut d = dom(true);
    let a = d.alloc_fast(2, (1 << 20) - 1, true).unwrap();
    assert_eq!(
        d.free_checked_fast(a - 2, 2),
        Err(IovaError::NotAllocated {
            pfn: IovaPfn::new(a - 2),
            pages: PageCount::new(2)
        })
    );
    assert_eq!(d.free_checked_fast(a, 2), Ok(()));
    assert_eq!(
        d.free_checked_fast(a, 2),
        Err(IovaError::NotAllocated {
            pfn: IovaPfn::new(a),
            pages: PageCount::new(2)
        })
    );
    assert!(matches!(
        d.free(1 << 30, 1),
        Err(IovaError::OutOfRange { .. })
    ));
    let b = d.alloc(5, 1000, false).unwrap();
    assert_eq!(b, 1001 - 5);
    assert_eq!(d.free(b, 5), Ok(()));
    assert!(d.free(b, 5).is_err());
}

#[test]
fn unaligned_alloc_finds_the_highest_run() {
    let mut d = dom(false);
    d.reserve(100, 100);
    d.reserve(90, 90);
    // Window below 101: pages 91..=99 free (9 pages), 101.. above the limit.
    assert_eq!(d.alloc(9, 100, false), Some(91));
    assert_eq!(d.alloc(9, 100, false), Some(81));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    /// Random alloc/free sequences: no overlap, natural alignment of the rounded size, limit
    /// respected, and every page back at the end.
    #[test]
    fn allocator_properties(
        rcache in any::<bool>(),
        ops in proptest::collection::vec((any::<bool>(), 1u64..70, 8u64..20, any::<prop::sample::Index>()), 1..400),
    ) {
        let end_pfn = (1u64 << 20) - 1;
        let mut d = dom(rcache);
        let total = d.free_pages();
        let mut live: BTreeMap<u64, u64> = BTreeMap::new(); // pfn -> rounded size
        for (alloc, pages, limit_bits, pick) in ops {
            if alloc || live.is_empty() {
                let limit = (1u64 << limit_bits) - 1;
                let size = if pages < 32 { pages.next_power_of_two() } else { pages };
                let align = size.next_power_of_two();
                // Exact placement and failures: tests/iova_linux.rs, against Linux's model.
                if let Some(p) = d.alloc_fast(pages, limit, true) {
                    prop_assert_eq!(p % align, 0, "alignment");
                    prop_assert!(p + size - 1 <= limit, "limit");
                    prop_assert!(p >= 1);
                    if let Some((&q, &s)) = live.range(..p + size).next_back() {
                        prop_assert!(q + s <= p, "overlap with {:#x}+{}", q, s);
                    }
                    live.insert(p, size);
                }
            } else {
                let i = pick.index(live.len());
                let (&p, &s) = live.iter().nth(i).unwrap();
                live.remove(&p);
                d.free_fast(p, s);
            }
        }
        for (p, s) in std::mem::take(&mut live) {
            d.free_fast(p, s);
        }
        d.flush_rcache();
        prop_assert_eq!(d.free_pages(), total);
        prop_assert_eq!(d.cached_pages(), 0);
        prop_assert!(d.is_free(1, end_pfn + 1));
    }
}

#[test]
fn magazines_are_last_in_first_out_per_size_and_keep_limits() {
    let top = (1u64 << 20) - 1;
    let mut d = dom(true);
    let a = d.alloc_fast(1, top, true).unwrap();
    let b = d.alloc_fast(1, top, true).unwrap();
    let c = d.alloc_fast(2, top, true).unwrap();
    // Last in, first out per size, whatever size was freed in between.
    d.free_fast(a, 1);
    d.free_fast(b, 1);
    d.free_fast(c, 2);
    assert_eq!(d.cached_pages(), 4);
    assert_eq!(d.alloc_fast(1, top, true), Some(b));
    assert_eq!(d.alloc_fast(2, top, true), Some(c));
    assert_eq!(d.alloc_fast(1, top, true), Some(a));
    assert_eq!(d.stats().rcache_hits, 3);
    // A freed range above a caller's limit stays cached for the next caller.
    d.free_fast(b, 1);
    d.free_fast(a, 1);
    assert_eq!(d.alloc_fast(1, b, true), Some(b));
    assert_eq!(d.alloc_fast(1, top, true), Some(a));
    // The range just freed counts as cached: a checked free of it is refused, a flush
    // returns it.
    d.free_fast(a, 1);
    assert_eq!(
        d.free_checked_fast(a, 1),
        Err(IovaError::NotAllocated {
            pfn: IovaPfn::new(a),
            pages: PageCount::new(1)
        })
    );
    d.free_fast(b, 1);
    d.free_fast(c, 2);
    d.flush_rcache();
    assert_eq!(d.cached_pages(), 0);
    assert_eq!(d.free_pages(), top);
}

/// Without an rcache a free goes straight to the tree with the same rounding as the
/// allocation (the caller passes its own page count): sizes below 32 to a power of two,
/// 32 as is, larger sizes unrounded.
#[test]
fn uncached_free_rounds_like_the_allocation() {
    let mut d = dom(false);
    let total = d.free_pages();
    let limit = (1u64 << 20) - 1;
    for pages in [1u64, 3, 5, 16, 17, 31, 32, 33, 40] {
        let p = d.alloc_fast(pages, limit, true).unwrap();
        let size = if pages < 32 {
            pages.next_power_of_two()
        } else {
            pages
        };
        assert_eq!(d.free_pages(), total - size, "{pages} pages");
        assert!(d.ranges().any(|r| r == (p, p + size - 1)));
        d.free_fast(p, pages);
        assert_eq!(d.free_pages(), total, "{pages} pages");
        // The same block comes back: the tree is as before.
        assert_eq!(d.alloc_fast(pages, limit, true), Some(p), "{pages} pages");
        d.free_fast(p, pages);
    }
    assert_eq!(d.stats().tree_allocs, 18);
}

/// The fast paths' bin: `ceil(log2(pages))` for 1..=32 pages (the bin `fast_size` rounds to),
/// none for 0 and above 32, whatever the bits above.
#[test]
fn bin_of_is_the_order_of_the_rounded_size() {
    for pages in 1..=RCACHE_MAX_PAGES {
        let order = rcache::fast_size(pages).trailing_zeros() as usize;
        assert_eq!(rcache::bin_of(pages), Some(order), "{pages} pages");
        assert!(order < RCACHE_BINS);
    }
    for pages in [0, 33, 40, 64, 1 << 32, (1 << 63) + 1, u64::MAX] {
        assert_eq!(rcache::bin_of(pages), None, "{pages} pages");
    }
}

/// Without an rcache the magazines are closed: frees of every cacheable size go to the tree,
/// nothing is ever cached, and a flush is not counted.
#[test]
fn without_an_rcache_nothing_is_cached() {
    let mut d = dom(false);
    let limit = (1u64 << 20) - 1;
    let total = d.free_pages();
    for pages in 1..=RCACHE_MAX_PAGES {
        let p = d.alloc_fast(pages, limit, true).unwrap();
        d.free_fast(p, pages);
        assert_eq!(d.cached_pages(), 0, "{pages} pages");
        assert_eq!(d.free_pages(), total, "{pages} pages");
        assert!(!d.is_cached(p, rcache::fast_size(pages)));
    }
    d.flush_rcache();
    assert_eq!(d.stats().rcache_flushes, 0);
    assert_eq!(d.stats().rcache_hits, 0);
    assert_eq!(d.stats().tree_allocs, RCACHE_MAX_PAGES);
}
