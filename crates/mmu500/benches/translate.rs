//! Translation throughput of the model.
//!
//! * `tlb_hit`: one IOVA translated over and over (micro-TLB hit after the first).
//! * `tlb_hit_main`: 64 pages in turn: too many for the 16-entry micro-TLB, so most accesses
//!   are main-TLB hits (the full decode path without the walk).
//! * `tlb_miss_4level_walk`: a 4 KiB granule, 48-bit stage-1 table (start level 0, so every walk
//!   reads 4 descriptors), visited page by page over 8192 pages. With 256 TLB entries and random
//!   replacement an entry survives 8192 fills with probability (255/256)^8192 ≈ e^-32, so every
//!   access misses and walks (checked before measuring).
//! * `walk_only`: the same addresses through `Mmu500::walk_only` (ATS1PR-style: lock, decoded
//!   regime, the 4-level walk and the PAR value; no TLB lookup or fill, no transaction path).
//! * `walk_detached`: the same addresses through the walker a miss runs (`Mmu500::detached_walk`:
//!   a snapshot of bank 0's decoded registers; 4 descriptor reads, no lock, no TLB).
//! * `pgtable_iova_to_phys`: the same addresses through `pgtable`'s software walk, for comparison
//!   (it starts from its own walk cache, so it reads 2 descriptors here), and
//!   `pgtable_iova_to_phys_4_reads`: the same after a map elsewhere left that cache off the path.
//! * `port_*`: the same patterns through a `Port` (the master's TBU micro-TLB, no lock on a hit).
//! * `dma_write_1500`: a 1500-byte packet written through the model into memory.
//!
//! Clock: the benchmark thread's CPU time (`bench_clock`), so other jobs on the shared machine
//! do not inflate the figures.

use criterion::{criterion_group, criterion_main, Criterion};
use mmu500::Mmu500;
use pgtable::Prot;
use smmu_addr::{Iova, PageCount, PageSize, PhysAddr};
use smmu_arch::regs;
use smmu_arch::Access;
use std::hint::black_box;

mod model;
use model::{IOVA, SID};

const PAGES: u64 = 8192;
/// An IOVA in another level-0 slot than `IOVA`.
const FAR_IOVA: u64 = 0x7f00_0000_0000;

fn setup() -> (std::sync::Arc<Mmu500>, pgtable::PageTable<pgtable::NoTlb>) {
    model::setup(PAGES)
}

/// Confirm that visiting the pages in turn defeats every TLB before a miss row measures it: after
/// one warm-up pass, two passes make no TLB hit and read exactly 4 descriptors per access.
fn assert_every_access_walks(s: &Mmu500, mut access: impl FnMut(u64)) {
    for i in 0..PAGES {
        access(IOVA + i * 0x1000);
    }
    let before = s.counters();
    for i in 0..2 * PAGES {
        access(IOVA + (i % PAGES) * 0x1000);
    }
    let after = s.counters();
    assert_eq!(after.tlb_hits, before.tlb_hits, "pattern must miss");
    assert_eq!(
        after.descriptor_reads - before.descriptor_reads,
        2 * PAGES * 4
    );
}

fn benches(c: &mut Criterion) {
    let (s, mut pt) = setup();
    c.bench_function("tlb_hit", |b| {
        b.iter_custom(|n| {
            bench_clock::time_iters(n, || {
                let _ =
                    black_box(s.translate(SID, Iova::new(black_box(IOVA + 0x123)), Access::Read));
            })
        })
    });

    // 64 pages in turn: more than the 16-entry micro-TLB holds, well inside the 256-entry TLB.
    let mut k = 0u64;
    c.bench_function("tlb_hit_main", |b| {
        b.iter_custom(|n| {
            bench_clock::time_iters(n, || {
                k = (k + 1) % 64;
                let _ = black_box(s.translate(SID, Iova::new(IOVA + k * 0x1000), Access::Read));
            })
        })
    });

    // Through a port (the master's TBU): a hit needs no lock.
    let mut port = s.port(SID);
    c.bench_function("port_tlb_hit", |b| {
        b.iter_custom(|n| {
            bench_clock::time_iters(n, || {
                let _ = black_box(port.translate(Iova::new(black_box(IOVA + 0x123)), Access::Read));
            })
        })
    });
    let mut k = 0u64;
    c.bench_function("port_tlb_hit_64_pages", |b| {
        b.iter_custom(|n| {
            bench_clock::time_iters(n, || {
                k = (k + 1) % 64;
                let _ = black_box(port.translate(Iova::new(IOVA + k * 0x1000), Access::Read));
            })
        })
    });

    assert_every_access_walks(&s, |va| {
        s.translate(SID, Iova::new(va), Access::Read).unwrap();
    });

    let mut i = 0u64;
    c.bench_function("tlb_miss_4level_walk", |b| {
        b.iter_custom(|n| {
            bench_clock::time_iters(n, || {
                i = (i + 1) % PAGES;
                let _ = black_box(s.translate(SID, Iova::new(IOVA + i * 0x1000), Access::Read));
            })
        })
    });
    assert_every_access_walks(&s, |va| {
        port.translate(Iova::new(va), Access::Read).unwrap();
    });
    let mut i = 0u64;
    c.bench_function("port_tlb_miss_4level_walk", |b| {
        b.iter_custom(|n| {
            bench_clock::time_iters(n, || {
                i = (i + 1) % PAGES;
                let _ = black_box(port.translate(Iova::new(IOVA + i * 0x1000), Access::Read));
            })
        })
    });
    // The walk alone: bank 0, no TLB lookup or fill, no transaction path (lock + decoded
    // regime + 4-level walk + PAR build). Checked against pgtable first.
    for i in 0..PAGES {
        let va = IOVA + i * 0x1000;
        let par = s.walk_only(0, va, Access::Read);
        assert_eq!(par & 1, 0, "walk_only must translate");
        assert_eq!(
            par & regs::par::PA_MASK,
            pt.iova_to_phys(Iova::new(va)).map_or(0, PhysAddr::as_u64)
        );
    }
    let mut w = 0u64;
    c.bench_function("walk_only", |b| {
        b.iter_custom(|n| {
            bench_clock::time_iters(n, || {
                w = (w + 1) % PAGES;
                let _ = black_box(s.walk_only(0, black_box(IOVA + w * 0x1000), Access::Read));
            })
        })
    });
    // The walker alone, as a miss runs it (prepared 4-level walk), without lock or TLB.
    let walker = s.detached_walk(0).expect("bank 0 is a stage-1 context");
    for i in 0..PAGES {
        let va = IOVA + i * 0x1000;
        assert_eq!(
            walker.walk(va),
            Some(pt.iova_to_phys(Iova::new(va)).map_or(0, PhysAddr::as_u64))
        );
    }
    let mut w = 0u64;
    c.bench_function("walk_detached", |b| {
        b.iter_custom(|n| {
            bench_clock::time_iters(n, || {
                w = (w + 1) % PAGES;
                let _ = black_box(walker.walk(black_box(IOVA + w * 0x1000)));
            })
        })
    });
    let mut j = 0u64;
    c.bench_function("pgtable_iova_to_phys", |b| {
        b.iter_custom(|n| {
            bench_clock::time_iters(n, || {
                j = (j + 1) % PAGES;
                let _ = black_box(
                    pt.iova_to_phys(Iova::new(IOVA + j * 0x1000))
                        .map_or(0, PhysAddr::as_u64),
                );
            })
        })
    });
    // The same addresses with pgtable's walk cache pointing elsewhere: a map far away leaves
    // no cached table on the benchmark's path, so every lookup reads all 4 descriptors.
    pt.map_pages(
        Iova::new(FAR_IOVA),
        PhysAddr::new(0x9f00_0000),
        PageSize::SZ_4K,
        PageCount::ONE,
        Prot::READ,
    )
    .unwrap();
    let mut j = 0u64;
    c.bench_function("pgtable_iova_to_phys_4_reads", |b| {
        b.iter_custom(|n| {
            bench_clock::time_iters(n, || {
                j = (j + 1) % PAGES;
                let _ = black_box(
                    pt.iova_to_phys(Iova::new(black_box(IOVA + j * 0x1000)))
                        .map_or(0, PhysAddr::as_u64),
                );
            })
        })
    });
    let packet = vec![0x5au8; 1500];
    c.bench_function("dma_write_1500", |b| {
        b.iter_custom(|n| {
            bench_clock::time_iters(n, || {
                let _ = black_box(s.dma_write(SID, Iova::new(IOVA + 0x2100), black_box(&packet)));
            })
        })
    });
}

criterion_group!(group, benches);
criterion_main!(group);
