//! `iova_to_phys` (the walk cache's starting table, the first-bank word reader and the
//! per-level decode) against the cache-free `walk`, on every geometry: the three granules,
//! both stages, input sizes from 32 to 48 bits (so every start level and stage-2 PGD
//! concatenation), both fidelities and both reclaim modes. Between random maps and unmaps
//! (which fill and empty the walk cache) it probes the mapped ranges, their neighbours, random
//! IOVAs and IOVAs with bits above the IAS.

mod common;

use common::allocator;
use pgtable::pte::PteKind;
use pgtable::{
    Fidelity, Gather, NoTlb, PageTable, PgTableRequest, Prot, Stage, TableReclaim, PGSIZES_16K,
    PGSIZES_4K, PGSIZES_64K,
};
use proptest::prelude::*;
use smmu_addr::{Iova, PageCount, PageSize, PhysAddr};

/// What the cache-free `walk` says `iova` translates to: the last descriptor it read, if a
/// leaf. Beyond the IAS: nothing under `Fidelity::Safe`; under `Fidelity::Linux`, the
/// translation of the IOVA with the bits above the IAS cleared (Linux indexes with masks).
fn reference(pt: &PageTable<NoTlb>, iova: u64) -> Option<PhysAddr> {
    let cfg = pt.cfg();
    let in_ias = iova & ((1u64 << cfg.ias) - 1);
    if in_ias != iova && cfg.fidelity == Fidelity::Safe {
        return None;
    }
    let last = *pt.walk(Iova::new(in_ias)).last()?;
    match last.pte.kind(last.level) {
        PteKind::Leaf(out) => {
            let offset = in_ias & ((1u64 << cfg.geom.level_shift(last.level)) - 1);
            Some(PhysAddr::new(out.as_u64() | offset))
        }
        PteKind::Invalid | PteKind::Table(_) | PteKind::Reserved => None,
    }
}

/// One operation: map or unmap `count` pages of the `size_pick`-th page size of the bitmap
/// at a page-aligned IOVA drawn from `at` (inside the IAS, near one of a few hot spots so
/// that operations share tables).
#[derive(Debug, Clone)]
struct Op {
    map: bool,
    size_pick: prop::sample::Index,
    spot: prop::sample::Index,
    at: u64,
    count: u64,
    pa: u64,
}

fn op() -> impl Strategy<Value = Op> {
    (
        prop::bool::weighted(0.7),
        any::<prop::sample::Index>(),
        any::<prop::sample::Index>(),
        any::<u64>(),
        1u64..20,
        any::<u64>(),
    )
        .prop_map(|(map, size_pick, spot, at, count, pa)| Op {
            map,
            size_pick,
            spot,
            at,
            count,
            pa,
        })
}

fn geometry() -> impl Strategy<Value = PgTableRequest> {
    (
        prop_oneof![Just(PGSIZES_4K), Just(PGSIZES_16K), Just(PGSIZES_64K)],
        prop_oneof![Just(Stage::S1), Just(Stage::S2)],
        prop_oneof![
            Just(32u32),
            Just(36),
            Just(39),
            Just(40),
            Just(42),
            Just(44),
            Just(47),
            Just(48)
        ],
        prop_oneof![Just(Fidelity::Safe), Just(Fidelity::Linux)],
        prop_oneof![Just(TableReclaim::Keep), Just(TableReclaim::FreeEmpty)],
    )
        .prop_map(|(bitmap, stage, ias, fidelity, reclaim)| {
            let mut req = PgTableRequest::new(stage, bitmap, ias, 48);
            req.fidelity = fidelity;
            req.reclaim = reclaim;
            req
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn iova_to_phys_is_the_cache_free_walk_on_every_geometry(
        req in geometry(),
        ops in prop::collection::vec(op(), 1..24),
        probes in prop::collection::vec(any::<u64>(), 0..16),
    ) {
        let alloc = allocator();
        let mut pt = PageTable::new(req, alloc, NoTlb).unwrap();
        let ias = pt.cfg().ias;
        let ias_mask = (1u64 << ias) - 1;
        let sizes: Vec<PageSize> = (0..64)
            .map(|s| 1u64 << s)
            .filter(|b| req.pgsize_bitmap & b != 0)
            .map(|b| PageSize::new(b).unwrap())
            .collect();
        // Hot spots: the bottom, the middle and the top of the input range.
        let spots = [0, ias_mask / 2 + 1, ias_mask & !(ias_mask >> 4)];
        let mut touched = Vec::new();
        for o in &ops {
            let size = sizes[o.size_pick.index(sizes.len())];
            // A few of the largest blocks around the spot.
            let span = (*sizes.last().unwrap()).bytes() * 4;
            let base = (spots[o.spot.index(spots.len())] + o.at % span) & ias_mask;
            let iova = base & !(size.bytes() - 1);
            let count = o.count.min(((ias_mask - iova) >> size.bytes().trailing_zeros()) + 1);
            if o.map {
                let pa = o.pa & ((1u64 << 48) - 1) & !(size.bytes() - 1);
                // A map onto something already there fails; what got mapped stays.
                let _ = pt.map_pages(
                    Iova::new(iova),
                    PhysAddr::new(pa),
                    size,
                    PageCount::new(count),
                    Prot::READ | Prot::WRITE,
                );
            } else {
                pt.unmap_pages(Iova::new(iova), size, PageCount::new(count), &mut Gather::new());
            }
            touched.push((iova, size.bytes() * count));
            // Right after the operation the walk cache holds its path.
            for probe in [iova, iova + size.bytes() * count - 1, iova.wrapping_sub(1)] {
                prop_assert_eq!(
                    pt.iova_to_phys(Iova::new(probe)),
                    reference(&pt, probe),
                    "{:?}: iova {:#x} after {:?}", req, probe, o
                );
            }
        }
        let mut all: Vec<u64> = Vec::new();
        for (i, &(iova, len)) in touched.iter().enumerate() {
            let r = probes.get(i).copied().unwrap_or(i as u64 * 0x1_2345_6789);
            all.extend([iova, iova + r % len, iova + len, iova | !ias_mask]);
        }
        for &p in &probes {
            all.extend([p, p & ias_mask]);
        }
        for &probe in &all {
            prop_assert_eq!(
                pt.iova_to_phys(Iova::new(probe)),
                reference(&pt, probe),
                "{:?}: iova {:#x}", req, probe
            );
        }
    }
}
