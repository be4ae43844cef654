//! Two unmappers of different halves of one 2 MiB block, run lockless under every interleaving
//! of the schedule explorer (shuttle's exhaustive DFS through the smmu-sync facade): both build
//! a last-level table and race to install it at the split's compare-and-exchange. Since
//! 85c7a0f1ef62 the loser unmaps its half from the winner's table; before it, the loser reports
//! its half unmapped (and queues its invalidations) but the winner's table still maps it.

mod common;

use common::allocator;
use pgtable::{Gather, NoTlb, PageTable, PgTableRequest, Prot, SplitRace, Stage, PGSIZES_4K};
use smmu_addr::{Iova, PageCount, PageSize, PhysAddr};
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

const BLOCK: u64 = 0x20_0000;
const PA: u64 = 0x4000_0000;
const HALF: u64 = 0x10_0000;

/// What one schedule ended with: each unmapper's return value, and which of the two halves
/// still translate (first page of each half).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Outcome {
    returned: [u64; 2],
    still_mapped: [bool; 2],
    tables_bytes: u64,
}

/// Every distinct outcome over all interleavings, with the number of schedules explored.
fn explore(split_race: SplitRace) -> (BTreeSet<Outcome>, usize) {
    let seen = Arc::new(Mutex::new((BTreeSet::new(), 0usize)));
    let record = seen.clone();
    shuttle::check_dfs(
        move || {
            smmu_sync::with_explorer(|| {
                let alloc = allocator();
                let mut cfg = PgTableRequest::new(Stage::S1, PGSIZES_4K, 48, 48);
                cfg.split_race = split_race;
                let mut pt = PageTable::new(cfg, alloc.clone(), NoTlb).unwrap();
                let rw = Prot::READ | Prot::WRITE;
                let one = PageCount::new(1);
                let pa = PhysAddr::new(PA);
                assert_eq!(
                    pt.map_pages(Iova::new(BLOCK), pa, PageSize::SZ_2M, one, rw),
                    Ok(BLOCK)
                );
                let pt = Arc::new(pt);
                let unmap_half = |pt: &PageTable<NoTlb>, half: u64| {
                    let mut gather = Gather::new();
                    let iova = Iova::new(BLOCK + half * HALF);
                    let n = PageCount::new(HALF >> 12);
                    pt.unmap_pages_concurrent(iova, PageSize::SZ_4K, n, &mut gather)
                };
                let other = {
                    let pt = pt.clone();
                    smmu_sync::thread::spawn(move || unmap_half(&pt, 1))
                };
                let first = unmap_half(&pt, 0);
                let second = other.join().unwrap();
                let still_mapped =
                    [0, 1].map(|h| pt.iova_to_phys(Iova::new(BLOCK + h * HALF)).is_some());
                let outcome = Outcome {
                    returned: [first, second],
                    still_mapped,
                    tables_bytes: alloc.outstanding_bytes(),
                };
                let mut s = record.lock().unwrap();
                s.0.insert(outcome);
                s.1 += 1;
            })
        },
        None,
    );
    let s = seen.lock().unwrap();
    (s.0.clone(), s.1)
}

/// PGD, level-1 and level-2 tables, plus the one last-level table the split left behind: the
/// loser's own table went back to the allocator in every schedule.
const TABLES: u64 = 4 * 0x1000;

#[test]
fn after_the_fix_every_interleaving_unmaps_both_halves() {
    let (outcomes, schedules) = explore(SplitRace::UnmapFromWinner);
    assert!(schedules >= 2, "{schedules} schedules");
    let want = Outcome {
        returned: [HALF, HALF],
        still_mapped: [false, false],
        tables_bytes: TABLES,
    };
    assert_eq!(outcomes, BTreeSet::from([want]));
}

#[test]
fn before_the_fix_the_loser_reports_its_half_unmapped_but_it_stays_mapped() {
    let (outcomes, _) = explore(SplitRace::ReportWithoutClearing);
    let done = Outcome {
        returned: [HALF, HALF],
        still_mapped: [false, false],
        tables_bytes: TABLES,
    };
    // Either unmapper can lose: its half stays mapped although it returned 1 MiB. Schedules
    // where one finishes before the other splits find a table, not a block, and are correct.
    let lost = |h: usize| {
        let mut o = done.clone();
        o.still_mapped[h] = true;
        o
    };
    assert_eq!(outcomes, BTreeSet::from([done.clone(), lost(0), lost(1)]));
}
