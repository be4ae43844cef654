//! A hardware-style walker on another thread reads the tables straight from `PhysMem` (by PA,
//! from the TTBR, with the architecture's index arithmetic, written here independently) while
//! the driver maps and unmaps. It must only ever see "unmapped" or the right PA: descriptors
//! are single atomic stores and tables are zeroed before they are published.

mod common;

use common::allocator;
use common::SZ_2M;
use pgtable::{Gather, NoTlb, PageTable, PgTableRequest, Prot, Stage, PGSIZES_16K, PGSIZES_4K};
use physmem::PhysMem;
use smmu_addr::{Iova, PageCount, PageSize, PhysAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

/// An SMMU-style stage-1 walk for a 4K granule, 48-bit table: 4 levels of 9 bits from TTBR0.
fn hw_walk_4k_48(mem: &PhysMem, ttbr: u64, iova: u64) -> Option<u64> {
    let mut table = ttbr & 0x0000_ffff_ffff_f000;
    for level in 0..4u32 {
        let shift = 39 - 9 * level;
        let idx = (iova >> shift) & 0x1ff;
        let desc = mem.read_u64(PhysAddr::new(table + idx * 8)).ok()?;
        match (desc & 3, level) {
            (0 | 2, _) => return None,
            (1, 1 | 2) => {
                let size = 1u64 << shift;
                return Some((desc & 0x0000_ffff_ffff_f000 & !(size - 1)) | (iova & (size - 1)));
            }
            (3, 3) => return Some((desc & 0x0000_ffff_ffff_f000) | (iova & 0xfff)),
            (3, _) => table = desc & 0x0000_ffff_ffff_f000,
            _ => return None, // block at level 0 or 3: reserved
        }
    }
    None
}

#[test]
fn page_table_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<PageTable<NoTlb>>();
    check::<PageTable<Arc<dyn pgtable::TlbOps + Send + Sync>>>();
}

#[test]
fn walker_thread_never_sees_a_wrong_translation() {
    let alloc = allocator();
    let mem = alloc.mem().clone();
    let mut pt = PageTable::new(
        PgTableRequest::new(Stage::S1, PGSIZES_4K, 48, 48),
        alloc.clone(),
        NoTlb,
    )
    .unwrap();
    let ttbr = pt.smmu_ttbr0(3);
    // IOVA i*4K always maps to PA OFFSET + i*4K (or nothing): the walker can check any hit.
    const BASE: u64 = 0x7f_c000_0000;
    const OFFSET: u64 = 0x1_0000_0000;
    let stop = Arc::new(AtomicBool::new(false));
    let hits = Arc::new(AtomicU64::new(0));
    let walks = Arc::new(AtomicU64::new(0));
    let walker = {
        let (mem, stop, hits, walks) = (mem.clone(), stop.clone(), hits.clone(), walks.clone());
        std::thread::spawn(move || {
            let mut i = 0u64;
            let mut bad = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                walks.fetch_add(1, Ordering::Relaxed);
                let iova = BASE + (i * 7919 % 4096) * 0x1000 + 0x18;
                if let Some(pa) = hw_walk_4k_48(&mem, ttbr, iova) {
                    hits.fetch_add(1, Ordering::Relaxed);
                    if pa != iova - BASE + OFFSET {
                        bad.push((iova, pa));
                    }
                }
                i += 1;
            }
            bad
        })
    };
    while walks.load(Ordering::Relaxed) < 100 {
        std::thread::yield_now();
    }
    let mut g = Gather::new();
    for round in 0..300u64 {
        // Pages, then 2M blocks over the same range (the emptied tables get replaced), then
        // a partial unmap that splits a block.
        for r in 0..8u64 {
            let iova = BASE + r * SZ_2M;
            if (round + r) % 2 == 0 {
                pt.map_pages(
                    Iova::new(iova),
                    PhysAddr::new(iova - BASE + OFFSET),
                    PageSize::SZ_4K,
                    PageCount::new(512),
                    Prot::READ,
                )
                .unwrap();
            } else {
                pt.map_pages(
                    Iova::new(iova),
                    PhysAddr::new(iova - BASE + OFFSET),
                    PageSize::SZ_2M,
                    PageCount::ONE,
                    Prot::READ,
                )
                .unwrap();
                assert_eq!(
                    pt.unmap_pages(
                        Iova::new(iova + 0x3000),
                        PageSize::SZ_4K,
                        PageCount::new(2),
                        &mut g
                    ),
                    0x2000
                );
            }
        }
        for r in 0..8u64 {
            let iova = BASE + r * SZ_2M;
            assert_eq!(
                pt.unmap_pages(Iova::new(iova), PageSize::SZ_2M, PageCount::ONE, &mut g),
                SZ_2M
            );
        }
        if round % 8 == 0 {
            std::thread::yield_now();
        }
    }
    let walks_during = walks.load(Ordering::Relaxed);
    assert!(
        walks_during > 100,
        "the walker ran while the tables changed"
    );
    // Leave something mapped and make sure the walker sees it.
    pt.map_pages(
        Iova::new(BASE),
        PhysAddr::new(OFFSET),
        PageSize::SZ_4K,
        PageCount::new(4096),
        Prot::READ,
    )
    .unwrap();
    while hits.load(Ordering::Relaxed) < 1000 {
        std::thread::yield_now();
    }
    stop.store(true, Ordering::Relaxed);
    let bad = walker.join().unwrap();
    assert!(
        bad.is_empty(),
        "walker saw wrong translations: {:?}",
        &bad[..bad.len().min(5)]
    );
    pt.destroy().unwrap();
    assert_eq!(alloc.outstanding_bytes(), 0);
}

/// The tables in memory agree with `iova_to_phys` under an independent 16K-granule walker
/// too (3 levels of 11 bits from level 1, 40-bit IAS).
#[test]
fn independent_walk_agrees_for_16k() {
    let alloc = allocator();
    let mem = alloc.mem().clone();
    let mut pt = PageTable::new(
        PgTableRequest::new(Stage::S2, PGSIZES_16K, 40, 48),
        alloc,
        NoTlb,
    )
    .unwrap();
    pt.map_pages(
        Iova::new(0x4000),
        PhysAddr::new(0x80_0000_0000),
        PageSize::SZ_16K,
        PageCount::new(5000),
        Prot::WRITE,
    )
    .unwrap();
    pt.map_pages(
        Iova::new(0x80_0000_0000),
        PhysAddr::new(0x2000_0000),
        PageSize::new(1 << 25).unwrap(),
        PageCount::new(3),
        Prot::READ,
    )
    .unwrap();
    let walk = |iova: u64| -> u64 {
        let mut table = pt.ttbr().as_u64();
        for level in 1..4u32 {
            let shift = 14 + 11 * (3 - level);
            let bits = if level == 1 { 4 } else { 11 };
            let desc = mem
                .read_u64(PhysAddr::new(
                    table + ((iova >> shift) & ((1 << bits) - 1)) * 8,
                ))
                .unwrap();
            if desc & 1 == 0 {
                return 0;
            }
            if level == 3 || desc & 3 == 1 {
                let size = 1u64 << shift;
                return (desc & 0x0000_ffff_ffff_c000 & !(size - 1)) | (iova & (size - 1));
            }
            table = desc & 0x0000_ffff_ffff_c000;
        }
        0
    };
    for k in 0..20_000u64 {
        let iova = (k.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 24) & ((1 << 40) - 1);
        let iova = if k % 2 == 0 { iova % 0x600_0000 } else { iova };
        assert_eq!(
            walk(iova),
            pt.iova_to_phys(Iova::new(iova)).map_or(0, PhysAddr::as_u64),
            "iova {iova:#x}"
        );
    }
}
