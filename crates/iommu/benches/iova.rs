//! IOVA allocator: alloc + free pairs (see BENCHMARKS.md for the Linux figures compared).
//!
//! * one-page loop: allocate and free one page, repeatedly (the rcache path);
//! * working set: 4,096 outstanding allocations of {1,2,4,8,16} pages (fixed seed); free a
//!   random one and allocate a new one of a random size; 4 GiB limit; with and without caches.

use criterion::{criterion_group, criterion_main, Criterion};
use iommu::iova::{IovaDepot, IovaDomain, IovaParams};
use smmu_addr::{IovaPfn, PageCount};
use std::hint::black_box;
use std::time::Duration;

use bench_clock::Timer;

/// 4 KiB granule, 48-bit aperture; allocations limited to 4 GiB as for a 32-bit device.
const LIMIT_PFN: IovaPfn = IovaPfn::new((1 << 20) - 1);

fn domain(rcache: bool) -> IovaDomain {
    domain_with(rcache, IovaDepot::Array)
}

fn domain_with(rcache: bool, depot: IovaDepot) -> IovaDomain {
    IovaDomain::new(IovaParams {
        shift: 12,
        start_pfn: IovaPfn::new(1),
        end_pfn: IovaPfn::new((1 << 36) - 1),
        rcache,
        depot,
    })
    .expect("valid parameters")
}

/// splitmix64: a fixed-seed sequence without extra dependencies.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

const SIZES: [PageCount; 5] = [
    PageCount::new(1),
    PageCount::new(2),
    PageCount::new(4),
    PageCount::new(8),
    PageCount::new(16),
];
const WORKING_SET: usize = 4096;
const SCRIPT: usize = 1 << 16;

struct WorkingSet {
    dom: IovaDomain,
    live: Vec<(IovaPfn, PageCount)>,
    /// Pre-drawn (victim index, new size) pairs, cycled.
    script: Vec<(u32, u8)>,
    pos: usize,
}

impl WorkingSet {
    fn new(rcache: bool) -> WorkingSet {
        WorkingSet::with_domain(domain(rcache))
    }

    fn with_domain(mut dom: IovaDomain) -> WorkingSet {
        let mut rng = Rng(0x5eed_1028);
        let live = (0..WORKING_SET)
            .map(|_| {
                let s = SIZES[(rng.next() % 5) as usize];
                (dom.alloc_fast(s, LIMIT_PFN, true).expect("space"), s)
            })
            .collect();
        let script = (0..SCRIPT)
            .map(|_| {
                (
                    (rng.next() % WORKING_SET as u64) as u32,
                    (rng.next() % 5) as u8,
                )
            })
            .collect();
        WorkingSet {
            dom,
            live,
            script,
            pos: 0,
        }
    }

    fn run(&mut self, pairs: u64) -> Duration {
        let start = Timer::start();
        black_box(self.run_pairs(pairs));
        start.elapsed()
    }

    /// `pairs` free + alloc pairs; returns the sum of the allocated pfns (the side-by-side
    /// check against Linux). The two arrays are borrowed once, before the loop: C's harness
    /// (`driver.c`) keeps them inside its struct at fixed offsets, while reading them through
    /// `self` re-read both `Vec` headers (pointer, length) from memory on every pair, since the
    /// allocator's stores through `self.dom` might, for all the compiler knows, have changed
    /// them. `pos` stays in the struct and goes through memory on every pair, as `ws->pos` does.
    #[inline(always)]
    fn run_pairs(&mut self, pairs: u64) -> u64 {
        let mut sum = 0u64;
        let live = &mut self.live[..];
        let script = &self.script[..];
        for _ in 0..pairs {
            let (victim, size) = script[self.pos];
            self.pos = (self.pos + 1) & (SCRIPT - 1);
            let slot = &mut live[victim as usize];
            self.dom.free_fast(slot.0, slot.1);
            let s = SIZES[size as usize];
            let p = self.dom.alloc_fast(s, LIMIT_PFN, true).unwrap_or_default();
            *slot = (black_box(p), s);
            sum = sum.wrapping_add(p.get());
        }
        sum
    }
}

fn benches(c: &mut Criterion) {
    let mut g = c.benchmark_group("iova");
    g.bench_function("one_page_loop_pair", |b| {
        let mut dom = domain(true);
        b.iter_custom(|iters| {
            let start = Timer::start();
            for _ in 0..iters {
                let p = dom
                    .alloc_fast(black_box(PageCount::ONE), LIMIT_PFN, true)
                    .unwrap_or_default();
                dom.free_fast(black_box(p), PageCount::ONE);
            }
            start.elapsed()
        })
    });
    g.bench_function("one_page_loop_pair_nocache", |b| {
        let mut dom = domain(false);
        b.iter_custom(|iters| {
            let start = Timer::start();
            for _ in 0..iters {
                let p = dom
                    .alloc_fast(black_box(PageCount::ONE), LIMIT_PFN, true)
                    .unwrap_or_default();
                dom.free_fast(black_box(p), PageCount::ONE);
            }
            start.elapsed()
        })
    });
    g.bench_function("working_set_pair", |b| {
        let mut ws = WorkingSet::new(true);
        b.iter_custom(|iters| ws.run(iters))
    });
    g.bench_function("working_set_pair_nocache", |b| {
        let mut ws = WorkingSet::new(false);
        b.iter_custom(|iters| ws.run(iters))
    });
    g.finish();
}

/// The brief's full-length runs (10M one-page pairs, 2M working-set pairs), run when
/// `IOVA_FULL_RUNS` is `all`, `one_page`, `working_set` or `working_set_nocache`; combine with a
/// criterion filter that matches nothing to count instructions/cycles with `perf stat`.
fn full_runs(_c: &mut Criterion) {
    let Ok(which) = std::env::var("IOVA_FULL_RUNS") else {
        return;
    };
    let all = which == "all";
    if all || which == "one_page" {
        let mut dom = domain(true);
        let n = pairs(10_000_000);
        let t = one_page_loop(&mut dom, n);
        println!(
            "full one-page loop: {n} pairs, {:.2} ns/pair",
            t.as_nanos() as f64 / n as f64
        );
    }
    for (name, rcache) in [("working_set", true), ("working_set_nocache", false)] {
        if all || which == name {
            let mut ws = WorkingSet::new(rcache);
            let n = pairs(2_000_000);
            let t = ws.run(n);
            println!(
                "full {name}: {n} pairs, {:.2} ns/pair, {:?}",
                t.as_nanos() as f64 / n as f64,
                ws.dom.stats()
            );
        }
    }
}

/// `pairs` one-page allocations and frees (a function of its own, like `WorkingSet::run`, so
/// that the loop's code placement does not move with the code around it).
#[inline(never)]
fn one_page_loop(dom: &mut IovaDomain, pairs: u64) -> Duration {
    let start = Timer::start();
    for _ in 0..pairs {
        let p = dom
            .alloc_fast(black_box(PageCount::ONE), LIMIT_PFN, true)
            .unwrap_or_default();
        dom.free_fast(black_box(p), PageCount::ONE);
    }
    start.elapsed()
}

/// Pairs for a full run: `IOVA_PAIRS` shortens the runs (e.g. under callgrind).
fn pairs(default: u64) -> u64 {
    std::env::var("IOVA_PAIRS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One round of the side-by-side comparison with Linux's iova.c
/// (`bench/linux-side-by-side/run.sh`), run when `SIDE_BY_SIDE` is set: the rows of
/// `bench/linux-side-by-side/driver.c`, same seeds and loops, v6.12's depot (a list), printed
/// as `<row> <ns per pair> <sum of allocated pfns>`. `SIDE_BY_SIDE_ROWS` picks rows,
/// `SIDE_BY_SIDE_PAIRS_<row>` shortens a row, `SIDE_BY_SIDE_WARMUP=0` skips the warm-up.
fn side_by_side(_c: &mut Criterion) {
    if std::env::var_os("SIDE_BY_SIDE").is_none() {
        return;
    }
    let rows = std::env::var("SIDE_BY_SIDE_ROWS").unwrap_or_default();
    let wanted = |row: &str| rows.is_empty() || rows.split(',').any(|r| r == row);
    let warmup = std::env::var("SIDE_BY_SIDE_WARMUP").map_or(true, |v| v != "0");
    let pairs_for = |row: &str, default: u64| {
        std::env::var(format!("SIDE_BY_SIDE_PAIRS_{row}"))
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let report = |row: &str, d: Duration, n: u64, check: u64| {
        println!("{row} {:.3} {check}", d.as_nanos() as f64 / n as f64);
    };
    if wanted("iova_one_page_cached") {
        let mut dom = domain_with(true, IovaDepot::List);
        let n = pairs_for("iova_one_page_cached", 10_000_000);
        if warmup {
            row_iova_one_page_cached(&mut dom, n / 10);
        }
        let t = Timer::start();
        let check = row_iova_one_page_cached(&mut dom, n);
        report("iova_one_page_cached", t.elapsed(), n, check);
    }
    if wanted("iova_working_set_cached") {
        let mut ws = WorkingSet::with_domain(domain_with(true, IovaDepot::List));
        let n = pairs_for("iova_working_set_cached", 2_000_000);
        let t = Timer::start();
        let check = row_iova_working_set_cached(&mut ws, n);
        report("iova_working_set_cached", t.elapsed(), n, check);
    }
    if wanted("iova_working_set_uncached") {
        let mut ws = WorkingSet::with_domain(domain_with(false, IovaDepot::List));
        let n = pairs_for("iova_working_set_uncached", 200_000);
        let t = Timer::start();
        let check = row_iova_working_set_uncached(&mut ws, n);
        report("iova_working_set_uncached", t.elapsed(), n, check);
    }
}

// One function per side-by-side row, so that `valgrind --tool=callgrind
// --toggle-collect='*row_<row>*'` counts only the row's loop.
#[inline(never)]
fn row_iova_one_page_cached(dom: &mut IovaDomain, pairs: u64) -> u64 {
    let mut sum = 0u64;
    for _ in 0..pairs {
        let p = dom
            .alloc_fast(black_box(PageCount::ONE), LIMIT_PFN, true)
            .unwrap_or_default();
        dom.free_fast(black_box(p), PageCount::ONE);
        sum = sum.wrapping_add(p.get());
    }
    sum
}

// The two working-set rows differ only in the domain: the distinct `black_box` marker keeps
// the compiler from merging them into one function, which callgrind could then not tell apart.
#[inline(never)]
fn row_iova_working_set_cached(ws: &mut WorkingSet, pairs: u64) -> u64 {
    black_box(1u8);
    ws.run_pairs(pairs)
}

#[inline(never)]
fn row_iova_working_set_uncached(ws: &mut WorkingSet, pairs: u64) -> u64 {
    black_box(2u8);
    ws.run_pairs(pairs)
}

criterion_group!(iova, benches, full_runs, side_by_side);
criterion_main!(iova);
