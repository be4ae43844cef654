//! Random map/unmap sequences against a plain reference model of Linux's semantics.
//!
//! The model keeps, per 4 KiB page, the PA and the size of the leaf that maps it, plus which
//! 2 MiB regions have a last-level table. Checked after every operation: the returned byte
//! counts and errors agree, `iova_to_phys` agrees on sampled pages, every leaf that went away
//! was invalidated (`tlb_add_page`, or a `tlb_flush_walk` covering it) and nothing else was
//! `add_page`d. At the end: everything is unmapped, every table but the PGD is back in the
//! allocator (with `FreeEmpty`), and nothing after `destroy`.

mod common;

use common::{allocator, CheckingTlb, TlbEvent};
use common::{SZ_1G, SZ_2M, SZ_4K};
use pgtable::{
    Gather, PageTable, PartialUnmap, PgTableError, PgTableRequest, Prot, Stage, TableReclaim,
    PGSIZES_4K,
};
use proptest::prelude::*;
use smmu_addr::{Iova, PageCount, PageSize, PhysAddr};
use std::collections::{BTreeMap, BTreeSet};

/// The window of IOVA space exercised: 8 regions of 2 MiB each side of the 1 GiB boundary.
const BASE: u64 = SZ_1G - 8 * SZ_2M;
const REGIONS: u64 = 16;

#[derive(Default, Debug)]
struct Model {
    /// page IOVA → (PA, size of the leaf mapping it)
    pages: BTreeMap<u64, (u64, u64)>,
    /// 2 MiB-region indices (iova >> 21) with a last-level table.
    tables: BTreeSet<u64>,
    split: bool,
    reclaim: bool,
}

impl Model {
    fn has_block(&self, r: u64) -> bool {
        self.pages
            .get(&(r * SZ_2M))
            .is_some_and(|&(_, s)| s == SZ_2M)
    }
    fn region_empty(&self, r: u64) -> bool {
        self.pages
            .range(r * SZ_2M..(r + 1) * SZ_2M)
            .next()
            .is_none()
    }
    fn clear_region(&mut self, r: u64) {
        let keys: Vec<u64> = self
            .pages
            .range(r * SZ_2M..(r + 1) * SZ_2M)
            .map(|(&k, _)| k)
            .collect();
        for k in keys {
            self.pages.remove(&k);
        }
    }

    fn map(&mut self, iova: u64, pa: u64, size: u64, n: u64) -> Result<u64, u64> {
        let mut done = 0;
        while done < n {
            let cur = iova + done * size;
            let span = if size == SZ_4K { SZ_2M } else { SZ_1G };
            let k = (n - done).min((span - cur % span) / size);
            // Check the whole chunk first (EEXIST maps nothing of it).
            let clash = if size == SZ_4K {
                let r = cur / SZ_2M;
                if self.has_block(r) {
                    Some(cur)
                } else {
                    (0..k)
                        .map(|i| cur + i * SZ_4K)
                        .find(|p| self.pages.contains_key(p))
                }
            } else {
                (0..k)
                    .map(|i| cur + i * SZ_2M)
                    .find(|&b| self.has_block(b / SZ_2M))
            };
            if let Some(at) = clash {
                if done > 0 {
                    self.unmap(iova, size, done);
                }
                return Err(at);
            }
            for i in 0..k {
                let va = cur + i * size;
                let p = pa + (done + i) * size;
                if size == SZ_2M {
                    let r = va / SZ_2M;
                    if self.tables.remove(&r) {
                        self.clear_region(r);
                    }
                    for j in 0..512 {
                        self.pages.insert(va + j * SZ_4K, (p + j * SZ_4K, SZ_2M));
                    }
                } else {
                    self.pages.insert(va, (p, SZ_4K));
                    self.tables.insert(va / SZ_2M);
                }
            }
            done += k;
        }
        Ok(n * size)
    }

    fn unmap(&mut self, iova: u64, size: u64, n: u64) -> u64 {
        let mut done = 0;
        while done < n {
            let got = self.unmap_chunk(iova + done * size, size, n - done);
            if got == 0 {
                break;
            }
            done += got;
        }
        done * size
    }

    fn unmap_chunk(&mut self, cur: u64, size: u64, count: u64) -> u64 {
        if size == SZ_2M {
            let k = count.min((SZ_1G - cur % SZ_1G) / SZ_2M);
            let mut i = 0;
            while i < k {
                let r = cur / SZ_2M + i;
                // A block, or a table (even an empty one), is a valid entry: it goes.
                let table = self.tables.remove(&r);
                if !self.has_block(r) && !table {
                    break;
                }
                self.clear_region(r);
                i += 1;
            }
            return i;
        }
        let r = cur / SZ_2M;
        let idx = (cur % SZ_2M) / SZ_4K;
        let k = count.min(512 - idx);
        if self.has_block(r) {
            if !self.split {
                return 0;
            }
            let base = r * SZ_2M;
            for j in 0..512 {
                let va = base + j * SZ_4K;
                if (idx..idx + k).contains(&j) {
                    self.pages.remove(&va);
                } else if let Some(e) = self.pages.get_mut(&va) {
                    e.1 = SZ_4K;
                }
            }
            self.tables.insert(r);
            if self.reclaim && self.region_empty(r) {
                self.tables.remove(&r);
            }
            return k;
        }
        if !self.tables.contains(&r) {
            return 0;
        }
        let mut i = 0;
        while i < k && self.pages.remove(&(cur + i * SZ_4K)).is_some() {
            i += 1;
        }
        if self.reclaim && i > 0 && self.region_empty(r) {
            self.tables.remove(&r);
        }
        i
    }
}

#[derive(Debug, Clone)]
enum Op {
    Map4K { page: u64, n: u64, pa: u64 },
    Map2M { region: u64, n: u64, pa: u64 },
    Unmap4K { page: u64, n: u64, lazy: bool },
    Unmap2M { region: u64, n: u64 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..REGIONS * 512, 1u64..700, 0u64..1 << 24)
            .prop_map(|(page, n, pa)| Op::Map4K { page, n, pa: pa << 12 }),
        2 => (0..REGIONS, 1u64..4, 0u64..1 << 15)
            .prop_map(|(region, n, pa)| Op::Map2M { region, n, pa: pa << 21 }),
        3 => (0..REGIONS * 512, 1u64..700, any::<bool>())
            .prop_map(|(page, n, lazy)| Op::Unmap4K { page, n, lazy }),
        1 => (0..REGIONS, 1u64..4).prop_map(|(region, n)| Op::Unmap2M { region, n }),
    ]
}

/// Pages (IOVAs) covered by the invalidations in `events`.
fn covered(events: &[TlbEvent]) -> (BTreeSet<u64>, Vec<(u64, u64)>) {
    let mut added = BTreeSet::new();
    let mut walks = Vec::new();
    for e in events {
        match *e {
            TlbEvent::AddPage { iova, granule } => {
                for p in 0..granule / SZ_4K {
                    added.insert(iova + p * SZ_4K);
                }
            }
            TlbEvent::FlushWalk { iova, size, .. } => walks.push((iova, iova + size)),
            TlbEvent::FlushAll => walks.push((0, u64::MAX)),
        }
    }
    (added, walks)
}

/// The translation of `iova` decoded from [`PageTable::walk`] (every descriptor read from the
/// PGD down, never from the walk cache), 4K granule: 0 when unmapped.
fn walked_pa<T: pgtable::TlbOps>(pt: &PageTable<T>, iova: u64) -> u64 {
    let Some(last) = pt.walk(Iova::new(iova)).last().copied() else {
        return 0;
    };
    let leaf = match last.level {
        3 => last.pte.bits() & 3 == 3,
        _ => last.pte.bits() & 3 == 1,
    };
    if !leaf {
        return 0;
    }
    let size = 1u64 << (12 + 9 * (3 - last.level));
    (last.pte.bits() & 0x0000_ffff_ffff_f000 & !(size - 1)) | (iova & (size - 1))
}

fn run(
    stage: Stage,
    ias: u32,
    split: bool,
    reclaim: bool,
    ops: Vec<Op>,
) -> Result<(), TestCaseError> {
    let alloc = allocator();
    let tlb = CheckingTlb::new(1, PGSIZES_4K);
    let mut cfg = PgTableRequest::new(stage, PGSIZES_4K, ias, 48);
    cfg.partial_unmap = if split {
        PartialUnmap::Split
    } else {
        PartialUnmap::Refuse
    };
    cfg.reclaim = if reclaim {
        TableReclaim::FreeEmpty
    } else {
        TableReclaim::Keep
    };
    let mut pt = PageTable::new(cfg, alloc.clone(), tlb.clone()).unwrap();
    let pgd_bytes = alloc.outstanding_bytes();
    let mut m = Model {
        split,
        reclaim,
        ..Model::default()
    };
    let prot = Prot::READ | Prot::WRITE;
    for (step, op) in ops.iter().enumerate() {
        let before: BTreeMap<u64, (u64, u64)> = m.pages.clone();
        let mut lazy_unmap = false;
        match *op {
            Op::Map4K { page, n, pa } => {
                let iova = BASE + page * SZ_4K;
                let got = pt.map_pages(
                    Iova::new(iova),
                    PhysAddr::new(pa),
                    PageSize::SZ_4K,
                    PageCount::new(n),
                    prot,
                );
                let want = m.map(iova, pa, SZ_4K, n);
                match (got, want) {
                    (Ok(a), Ok(b)) => prop_assert_eq!(a, b),
                    (Err(PgTableError::Exists { iova: a }), Err(b)) => {
                        prop_assert_eq!(a.as_u64(), b)
                    }
                    (g, w) => prop_assert!(false, "step {step} {op:?}: got {g:?} want {w:?}"),
                }
            }
            Op::Map2M { region, n, pa } => {
                let iova = BASE + region * SZ_2M;
                let got = pt.map_pages(
                    Iova::new(iova),
                    PhysAddr::new(pa),
                    PageSize::SZ_2M,
                    PageCount::new(n),
                    prot,
                );
                let want = m.map(iova, pa, SZ_2M, n);
                match (got, want) {
                    (Ok(a), Ok(b)) => prop_assert_eq!(a, b),
                    (Err(PgTableError::Exists { iova: a }), Err(b)) => {
                        prop_assert_eq!(a.as_u64(), b)
                    }
                    (g, w) => prop_assert!(false, "step {step} {op:?}: got {g:?} want {w:?}"),
                }
            }
            Op::Unmap4K { page, n, lazy } => {
                let iova = BASE + page * SZ_4K;
                let mut g = Gather {
                    queued: lazy,
                    ..Gather::new()
                };
                lazy_unmap = lazy;
                prop_assert_eq!(
                    pt.unmap_pages(Iova::new(iova), PageSize::SZ_4K, PageCount::new(n), &mut g),
                    m.unmap(iova, SZ_4K, n),
                    "step {} {:?}",
                    step,
                    op
                );
            }
            Op::Unmap2M { region, n } => {
                let iova = BASE + region * SZ_2M;
                let mut g = Gather::new();
                prop_assert_eq!(
                    pt.unmap_pages(Iova::new(iova), PageSize::SZ_2M, PageCount::new(n), &mut g),
                    m.unmap(iova, SZ_2M, n),
                    "step {} {:?}",
                    step,
                    op
                );
            }
        }
        // Invalidation: every removed or changed leaf was invalidated; add_page only there.
        let events = tlb.take_events();
        let (added, walks) = covered(&events);
        let gone: BTreeSet<u64> = before
            .iter()
            .filter(|(k, v)| m.pages.get(k).map(|w| w.0) != Some(v.0))
            .map(|(&k, _)| k)
            .collect();
        if !lazy_unmap {
            for p in &gone {
                prop_assert!(
                    added.contains(p) || walks.iter().any(|&(s, e)| s <= *p && *p < e),
                    "step {step} {op:?}: page {p:#x} removed without invalidation"
                );
            }
        }
        for p in &added {
            prop_assert!(
                gone.contains(p) || walks.iter().any(|&(s, e)| s <= *p && *p < e),
                "step {step} {op:?}: add_page of live page {p:#x}"
            );
        }
        // Spot checks of translations, through `iova_to_phys` (which may start from the walk
        // cache) and through a full walk of the descriptors in memory from the PGD (which never
        // does): a stale cache would make the two disagree.
        for k in 0..24u64 {
            let va = BASE + ((step as u64 * 7919 + k * 104_729) % (REGIONS * 512)) * SZ_4K + 0x123;
            let want = m.pages.get(&(va & !0xfff)).map_or(0, |&(pa, _)| pa + 0x123);
            prop_assert_eq!(
                pt.iova_to_phys(Iova::new(va)).map_or(0, PhysAddr::as_u64),
                want,
                "step {} {:?} iova {:#x}",
                step,
                op,
                va
            );
            prop_assert_eq!(
                walked_pa(&pt, va),
                want,
                "step {} {:?} iova {:#x} (walk from the PGD)",
                step,
                op,
                va
            );
        }
    }
    // Every page of the window and beyond.
    for page in 0..(REGIONS + 4) * 512 {
        let va = BASE + page * SZ_4K + 0xabc;
        let want = m.pages.get(&(va & !0xfff)).map_or(0, |&(pa, _)| pa + 0xabc);
        prop_assert_eq!(
            pt.iova_to_phys(Iova::new(va)).map_or(0, PhysAddr::as_u64),
            want,
            "final iova {:#x}",
            va
        );
    }
    // Unmap everything (operations may run up to 4 regions past the window), region by region
    // with the block size: tables count as mapped.
    for r in 0..REGIONS + 4 {
        let va = BASE + r * SZ_2M;
        let got = pt.unmap_pages(
            Iova::new(va),
            PageSize::SZ_2M,
            PageCount::ONE,
            &mut Gather::new(),
        );
        prop_assert_eq!(got, m.unmap(va, SZ_2M, 1));
    }
    prop_assert!(m.pages.is_empty());
    for page in 0..(REGIONS + 4) * 512 {
        prop_assert_eq!(
            pt.iova_to_phys(Iova::new(BASE + page * SZ_4K))
                .map_or(0, PhysAddr::as_u64),
            0
        );
    }
    if reclaim {
        prop_assert_eq!(alloc.outstanding_bytes(), pgd_bytes, "only the PGD remains");
    }
    prop_assert!(tlb.failures().is_empty(), "{:?}", tlb.failures());
    pt.destroy().unwrap();
    prop_assert_eq!(alloc.outstanding_bytes(), 0);
    Ok(())
}

/// Operations of one to three pages or blocks, in the four regions around the 1 GiB boundary:
/// mostly single-entry calls inside tables the walk cache holds, interleaved with block maps
/// over tables (table replaced and freed), block unmaps over tables, splits and, with
/// `FreeEmpty`, reclaim of emptied last-level and level-2 tables.
fn small_op() -> impl Strategy<Value = Op> {
    let pages = 6 * 512..10 * 512u64;
    prop_oneof![
        4 => (pages.clone(), 1u64..4, 0u64..1 << 24)
            .prop_map(|(page, n, pa)| Op::Map4K { page, n, pa: pa << 12 }),
        2 => (6..10u64, 1u64..3, 0u64..1 << 15)
            .prop_map(|(region, n, pa)| Op::Map2M { region, n, pa: pa << 21 }),
        4 => (pages, 1u64..4, any::<bool>())
            .prop_map(|(page, n, lazy)| Op::Unmap4K { page, n, lazy }),
        1 => (6..10u64, 1u64..3).prop_map(|(region, n)| Op::Unmap2M { region, n }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    /// The walk cache under churn: short calls that hit it, interleaved with every way a
    /// table goes away, match the model; with `FreeEmpty` the reclaimed tables are really gone.
    #[test]
    fn small_operations_through_the_walk_cache_match_the_model(
        cfg in prop_oneof![Just((Stage::S1, 48)), Just((Stage::S2, 40))],
        split in any::<bool>(),
        reclaim in any::<bool>(),
        ops in proptest::collection::vec(small_op(), 1..120),
    ) {
        run(cfg.0, cfg.1, split, reclaim, ops)?;
    }

    #[test]
    fn random_sequences_match_the_model(
        cfg in prop_oneof![
            Just((Stage::S1, 48)),
            Just((Stage::S1, 32)),
            Just((Stage::S2, 40)),
            Just((Stage::S2, 44)),
        ],
        split in any::<bool>(),
        reclaim in any::<bool>(),
        ops in proptest::collection::vec(op(), 1..40),
    ) {
        run(cfg.0, cfg.1, split, reclaim, ops)?;
    }
}
