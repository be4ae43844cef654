//! `iova_to_phys` (which starts from the walk cache and decodes each descriptor with one test
//! of its type bits) against the cache-free `walk` decoded with `Pte::kind`, on tables whose
//! descriptors were overwritten with anything: invalid and reserved types, blocks at every
//! level, and table pointers into the tables' bank, into a second bank and into no bank.

use pgtable::pte::PteKind;
use pgtable::{NoTlb, PageTable, PgTableRequest, Prot, Stage, PGSIZES_4K};
use physmem::{FrameAllocator, PhysMem, Region};
use proptest::prelude::*;
use smmu_addr::{Iova, PageCount, PageSize, PhysAddr};
use std::sync::Arc;

/// The tables' bank (all of it the allocator's) and a second bank with no tables in it.
const TABLES: u64 = 0x8000_0000;
const TABLES_SIZE: u64 = 0x40_0000;
const OTHER: u64 = 0x1_0000_0000;
const OTHER_SIZE: u64 = 0x10_0000;
/// Between the two banks: backed by nothing.
const GAP: u64 = 0xc000_0000;

/// The 4 GiB the maps and overwrites touch (level-0 index 0).
const WINDOW: u64 = 0x40_0000_0000;
const WINDOW_SIZE: u64 = 4 << 30;
/// The last map, whose path the walk cache holds at the end: level-0 index 1, so no
/// descriptor on that path is ever overwritten and the cache stays true to memory.
const LAST: u64 = 0x80_0000_0000;

/// What `walk` says `iova` translates to: the last descriptor it read, if a leaf.
fn reference(pt: &PageTable<NoTlb>, iova: u64) -> Option<PhysAddr> {
    let last = *pt.walk(Iova::new(iova)).last()?;
    match last.pte.kind(last.level) {
        PteKind::Leaf(out) => {
            let offset = iova & ((1u64 << (12 + 9 * (3 - last.level))) - 1);
            Some(PhysAddr::new(out.as_u64() | offset))
        }
        PteKind::Invalid | PteKind::Table(_) | PteKind::Reserved => None,
    }
}

/// A descriptor to write: the type bits and an address in one of the places a walk can go.
fn descriptor() -> impl Strategy<Value = u64> {
    let addr = prop_oneof![
        (0..TABLES_SIZE / 4096).prop_map(|f| TABLES + f * 4096),
        (0..OTHER_SIZE / 4096).prop_map(|f| OTHER + f * 4096),
        Just(GAP),
        (0u64..1 << 36).prop_map(|f| f << 12),
    ];
    prop_oneof![
        (addr, 0u64..4, any::<u64>()).prop_map(|(a, ty, attrs)| {
            // Attribute bits outside the address and type fields.
            a | ty | (attrs & 0xfff0_0000_0000_0ffc)
        }),
        any::<u64>(),
        Just(0u64),
    ]
}

/// One overwrite: the descriptor at `level` on the walk of a page of one of the maps (the
/// deepest the walk reaches if it ends above), or a word of the second bank.
#[derive(Debug, Clone)]
enum Overwrite {
    OnWalk {
        map: prop::sample::Index,
        page: u64,
        level: u32,
        value: u64,
    },
    OtherBank {
        word: u64,
        value: u64,
    },
}

fn overwrite() -> impl Strategy<Value = Overwrite> {
    prop_oneof![
        3 => (any::<prop::sample::Index>(), 0u64..600, 0u32..4, descriptor())
            .prop_map(|(map, page, level, value)| Overwrite::OnWalk { map, page, level, value }),
        1 => (0..OTHER_SIZE / 8, descriptor())
            .prop_map(|(word, value)| Overwrite::OtherBank { word, value }),
    ]
}

/// A map: 4K pages or one 2 MiB or 1 GiB block, at a page (or block) of the window.
fn map_op() -> impl Strategy<Value = (u64, PageSize, u64)> {
    prop_oneof![
        (0..WINDOW_SIZE / 4096, 1u64..600).prop_map(|(p, n)| (p * 4096, PageSize::SZ_4K, n)),
        (0..WINDOW_SIZE >> 21).prop_map(|b| (b << 21, PageSize::SZ_2M, 1)),
        (0..WINDOW_SIZE >> 30).prop_map(|b| (b << 30, PageSize::SZ_1G, 1)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn iova_to_phys_decodes_as_the_cache_free_walk(
        maps in prop::collection::vec(map_op(), 1..12),
        overwrites in prop::collection::vec(overwrite(), 0..24),
        probes in prop::collection::vec(0..WINDOW_SIZE, 0..32),
    ) {
        let mem = Arc::new(PhysMem::new(&[
            Region::new(PhysAddr::new(TABLES), TABLES_SIZE),
            Region::new(PhysAddr::new(OTHER), OTHER_SIZE),
        ]).unwrap());
        let alloc =
            Arc::new(FrameAllocator::new(mem.clone(), PhysAddr::new(TABLES), TABLES_SIZE).unwrap());
        let cfg = PgTableRequest::new(Stage::S1, PGSIZES_4K, 48, 48);
        let mut pt = PageTable::new(cfg, alloc, NoTlb).unwrap();
        let prot = Prot::READ;
        for &(off, size, n) in &maps {
            // A map onto something already there fails; what got mapped stays.
            let out = PhysAddr::new(0x20_0000_0000 + off);
            let _ = pt.map_pages(Iova::new(WINDOW + off), out, size, PageCount::new(n), prot);
        }
        pt.map_pages(Iova::new(LAST), PhysAddr::new(0x4000), PageSize::SZ_4K, PageCount::ONE, prot)
            .unwrap();

        // The frames of the cached path: an overwrite that reaches one through a bad pointer
        // is skipped (it would change memory behind the cache, which nothing may do).
        let cached: Vec<u64> = pt.walk(Iova::new(LAST)).iter().map(|s| s.table.as_u64()).collect();
        let mut iovas: Vec<u64> = maps.iter().map(|&(off, _, _)| WINDOW + off).collect();
        iovas.extend(probes.iter().map(|&off| WINDOW + off));
        iovas.push(LAST + 0x123);
        for o in &overwrites {
            match *o {
                Overwrite::OnWalk { ref map, page, level, value } => {
                    let (off, size, n) = maps[map.index(maps.len())];
                    let iova = WINDOW + off + (page % n) * size.bytes();
                    let steps = pt.walk(Iova::new(iova));
                    let step = steps.iter().find(|s| s.level == level).or(steps.last());
                    if let Some(s) = step.filter(|s| !cached.contains(&s.table.as_u64())) {
                        let pa = PhysAddr::new(s.table.as_u64() + 8 * s.index);
                        mem.write_u64(pa, value).unwrap();
                    }
                    iovas.push(iova);
                }
                Overwrite::OtherBank { word, value } => {
                    mem.write_u64(PhysAddr::new(OTHER + 8 * word), value).unwrap();
                }
            }
        }

        for &iova in &iovas {
            prop_assert_eq!(pt.iova_to_phys(Iova::new(iova)), reference(&pt, iova), "iova {:#x}", iova);
        }
        // Beyond the IAS (Fidelity::Safe): nothing, whatever the low bits translate to.
        prop_assert_eq!(pt.iova_to_phys(Iova::new((1 << 48) | (LAST + 0x123))), None);
    }
}
