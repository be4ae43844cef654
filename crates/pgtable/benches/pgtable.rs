//! Page-table throughput: a 4K-granule stage-1 table with IAS = OAS = 48, 1 GiB mapped as
//! 262,144 pages. Each row is one loop function (`row_<name>`), run on a fresh table per
//! measured iteration and reported per page (or lookup, or block), so criterion's "time" column
//! reads directly as ns per unit. The same functions are the smmu-lab side of
//! `bench/linux-side-by-side/run.sh` (`side_by_side` below), so the two measure one loop.
//!
//! Clock: `bench_clock`, by default the benchmark thread's CPU time, because the development
//! machine is shared (2 cores, load often above 5) and wall time there mostly measures time
//! slices given to other processes. Set `BENCH_CLOCK=wall` for wall time (the two agree on an
//! idle machine).

use bench_clock::Timer;
use criterion::{criterion_group, criterion_main, Criterion};
use pgtable::{Gather, NoTlb, PageTable, PgTableRequest, Prot, Stage, PGSIZES_4K};
use physmem::{FrameAllocator, PhysMem, Region};
use rand::{Rng, SeedableRng};
use smmu_addr::{Iova, PageCount, PageSize, PhysAddr};
use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

const PAGES: u64 = 262_144;
const IOVA: u64 = 0x40_0000_0000; // 256 GiB: a non-zero index at every level
const PA: u64 = 0x8_0000_0000;
const LOOKUPS: usize = 1_000_000;
const BLOCKS: u64 = 512;
/// Passes of the 2 MiB side-by-side row per measurement: one pass is only ~10 us.
const BLOCK_PASSES: u64 = 64;

fn allocator() -> Arc<FrameAllocator> {
    let mem =
        Arc::new(PhysMem::new(&[Region::new(PhysAddr::new(0x8000_0000), 0x400_0000)]).unwrap());
    Arc::new(FrameAllocator::new(mem, PhysAddr::new(0x8000_0000), 0x400_0000).unwrap())
}

fn table(alloc: &Arc<FrameAllocator>) -> PageTable<NoTlb> {
    PageTable::new(
        PgTableRequest::new(Stage::S1, PGSIZES_4K, 48, 48),
        alloc.clone(),
        NoTlb,
    )
    .unwrap()
}

const PROT: Prot = Prot(Prot::READ.0 | Prot::WRITE.0 | Prot::CACHE.0);

fn map_all_batched(pt: &mut PageTable<NoTlb>) {
    for c in 0..PAGES / 512 {
        let off = c * PageSize::SZ_2M.bytes();
        pt.map_pages(
            Iova::new(IOVA + off),
            PhysAddr::new(PA + off),
            PageSize::SZ_4K,
            PageCount::new(512),
            PROT,
        )
        .unwrap();
    }
}

/// One measured loop, shared by the criterion benches and the side-by-side rows: it runs on a
/// fresh table (mapped with the whole 1 GiB first when `premapped`) and returns what the C
/// side of `bench/linux-side-by-side` sums (pages mapped, bytes unmapped, translations).
struct Row {
    /// The side-by-side row name (also the `row_<name>` function callgrind collects).
    name: &'static str,
    /// What one unit is, for the criterion name.
    unit: &'static str,
    /// Units one run of the loop does: its time is reported per unit.
    units: u64,
    premapped: bool,
    run: fn(&mut PageTable<NoTlb>, &[u64]) -> u64,
}

const ROWS: [Row; 6] = [
    Row {
        name: "map_4k_per_page",
        unit: "page",
        units: PAGES,
        premapped: false,
        run: |pt, _| row_map_4k_per_page(pt),
    },
    Row {
        name: "map_4k_batched_512",
        unit: "page",
        units: PAGES,
        premapped: false,
        run: |pt, _| row_map_4k_batched_512(pt),
    },
    Row {
        name: "unmap_4k_per_page",
        unit: "page",
        units: PAGES,
        premapped: true,
        run: |pt, _| row_unmap_4k_per_page(pt),
    },
    Row {
        name: "unmap_4k_batched_512",
        unit: "page",
        units: PAGES,
        premapped: true,
        run: |pt, _| row_unmap_4k_batched_512(pt),
    },
    Row {
        name: "iova_to_phys_random_1M",
        unit: "lookup",
        units: LOOKUPS as u64,
        premapped: true,
        run: row_iova_to_phys_random_1m,
    },
    Row {
        name: "map_unmap_2m_block",
        unit: "block, map+unmap",
        units: BLOCKS * BLOCK_PASSES,
        premapped: false,
        run: |pt, _| row_map_unmap_2m_block(pt),
    },
];

impl Row {
    /// One timed run of the loop on a fresh table: (time, check).
    fn time(&self, alloc: &Arc<FrameAllocator>, lookups: &[u64]) -> (Duration, u64) {
        let mut pt = table(alloc);
        if self.premapped {
            map_all_batched(&mut pt);
        }
        let t = Timer::start();
        let check = black_box((self.run)(&mut pt, lookups));
        let d = t.elapsed();
        pt.destroy().unwrap();
        (d, check)
    }
}

fn benches(c: &mut Criterion) {
    let alloc = allocator();
    let lookups = lookup_iovas();
    // Sanity: the lookups really translate.
    {
        let mut pt = table(&alloc);
        map_all_batched(&mut pt);
        assert_eq!(
            pt.iova_to_phys(Iova::new(lookups[0]))
                .map_or(0, PhysAddr::as_u64),
            lookups[0] - IOVA + PA
        );
        pt.destroy().unwrap();
    }
    let mut g = c.benchmark_group("pgtable_4k_s1_1GiB");
    g.sample_size(10);
    for row in &ROWS {
        g.bench_function(format!("{} (ns/{})", row.name, row.unit), |b| {
            b.iter_custom(|iters| {
                let total: Duration = (0..iters).map(|_| row.time(&alloc, &lookups).0).sum();
                total / row.units as u32
            })
        });
    }
    g.finish();
    assert_eq!(alloc.outstanding_bytes(), 0);
}

/// The 1M random lookup addresses (fixed seed), inside the 1 GiB mapped at `IOVA`.
fn lookup_iovas() -> Vec<u64> {
    let mut rng = rand_pcg::Pcg64::seed_from_u64(0x5eed);
    (0..LOOKUPS)
        .map(|_| IOVA + rng.random_range(0..PAGES * PageSize::SZ_4K.bytes()))
        .collect()
}

/// One round of the side-by-side comparison with Linux's io-pgtable-arm.c
/// (`bench/linux-side-by-side/run.sh`), run when `SIDE_BY_SIDE` is set: the rows of
/// `bench/linux-side-by-side/driver.c`, each a warm-up and a timed pass on a fresh table,
/// printed as `<row> <ns per op> <check>`. `SIDE_BY_SIDE_LOOKUPS=<file>` also writes the
/// lookup addresses (little-endian u64) for the C side; `SIDE_BY_SIDE_ROWS` picks rows;
/// `SIDE_BY_SIDE_WARMUP=0` skips the warm-up.
fn side_by_side(_c: &mut Criterion) {
    if std::env::var_os("SIDE_BY_SIDE").is_none() {
        return;
    }
    let iovas = lookup_iovas();
    if let Some(path) = std::env::var_os("SIDE_BY_SIDE_LOOKUPS") {
        let bytes: Vec<u8> = iovas.iter().flat_map(|v| v.to_le_bytes()).collect();
        std::fs::write(path, bytes).expect("write the lookup file");
    }
    let rows = std::env::var("SIDE_BY_SIDE_ROWS").unwrap_or_default();
    let wanted = |row: &str| rows.is_empty() || rows.split(',').any(|r| r == row);
    let warmup = std::env::var("SIDE_BY_SIDE_WARMUP").map_or(true, |v| v != "0");
    let alloc = allocator();
    // Before each row: map the whole 1 GiB on a fresh table and free it, so that the frames
    // the row will use have been written (the allocator then zeroes them again, as Linux's
    // page allocator always does). It does not call the row's function, so callgrind's
    // per-row count sees only the measured pass.
    let warm_up = || {
        if warmup {
            let mut pt = table(&alloc);
            map_all_batched(&mut pt);
            pt.destroy().unwrap();
        }
    };
    for row in ROWS.iter().filter(|r| wanted(r.name)) {
        warm_up();
        let (d, check) = row.time(&alloc, &iovas);
        println!(
            "{} {:.3} {check}",
            row.name,
            d.as_nanos() as f64 / row.units as f64
        );
    }
    assert_eq!(alloc.outstanding_bytes(), 0);
}

// One function per side-by-side row, so that `valgrind --tool=callgrind
// --toggle-collect='*row_<row>*'` counts only the row's loop. Each returns what the C side
// sums (pages mapped, bytes unmapped, translated addresses).
#[inline(never)]
fn row_map_4k_per_page(pt: &mut PageTable<NoTlb>) -> u64 {
    for i in 0..PAGES {
        let off = i * PageSize::SZ_4K.bytes();
        black_box(
            pt.map_pages(
                Iova::new(IOVA + off),
                PhysAddr::new(PA + off),
                PageSize::SZ_4K,
                PageCount::ONE,
                PROT,
            )
            .unwrap(),
        );
    }
    PAGES
}

#[inline(never)]
fn row_map_4k_batched_512(pt: &mut PageTable<NoTlb>) -> u64 {
    map_all_batched(pt);
    PAGES
}

#[inline(never)]
fn row_unmap_4k_per_page(pt: &mut PageTable<NoTlb>) -> u64 {
    let mut sum = 0;
    for i in 0..PAGES {
        let mut gather = Gather::new();
        sum += pt.unmap_pages(
            Iova::new(IOVA + i * PageSize::SZ_4K.bytes()),
            PageSize::SZ_4K,
            PageCount::ONE,
            &mut gather,
        );
    }
    sum
}

#[inline(never)]
fn row_unmap_4k_batched_512(pt: &mut PageTable<NoTlb>) -> u64 {
    let mut sum = 0;
    for c in 0..PAGES / 512 {
        let mut gather = Gather::new();
        sum += pt.unmap_pages(
            Iova::new(IOVA + c * PageSize::SZ_2M.bytes()),
            PageSize::SZ_4K,
            PageCount::new(512),
            &mut gather,
        );
    }
    sum
}

#[inline(never)]
fn row_iova_to_phys_random_1m(pt: &mut PageTable<NoTlb>, iovas: &[u64]) -> u64 {
    let mut acc = 0u64;
    for &iova in iovas {
        acc = acc.wrapping_add(
            pt.iova_to_phys(Iova::new(black_box(iova)))
                .map_or(0, PhysAddr::as_u64),
        );
    }
    acc
}

#[inline(never)]
fn row_map_unmap_2m_block(pt: &mut PageTable<NoTlb>) -> u64 {
    let mut sum = 0;
    for _ in 0..BLOCK_PASSES {
        for i in 0..BLOCKS {
            let off = i * PageSize::SZ_2M.bytes();
            black_box(
                pt.map_pages(
                    Iova::new(IOVA + off),
                    PhysAddr::new(PA + off),
                    PageSize::SZ_2M,
                    PageCount::ONE,
                    PROT,
                )
                .unwrap(),
            );
        }
        for i in 0..BLOCKS {
            let mut gather = Gather::new();
            sum += pt.unmap_pages(
                Iova::new(IOVA + i * PageSize::SZ_2M.bytes()),
                PageSize::SZ_2M,
                PageCount::ONE,
                &mut gather,
            );
        }
    }
    sum
}

criterion_group!(pgtable_benches, benches, side_by_side);
criterion_main!(pgtable_benches);
