//! A table restored to a snapshot (with the memory and frame allocator of the same moment)
//! continues exactly as one that never ran the operations after it, walk cache included.

mod common;

use common::{allocator, CheckingTlb, TlbEvent};
use common::{SZ_1G, SZ_2M, SZ_4K};
use pgtable::{
    Gather, PageTable, PageTableSnapshotError, PgTableRequest, Prot, Stage, TableReclaim,
    PGSIZES_4K,
};
use physmem::FrameAllocator;
use proptest::prelude::*;
use smmu_addr::{Iova, PageCount, PageSize, PhysAddr};
use std::sync::Arc;

/// Eight 2 MiB regions straddling the 1 GiB boundary, so walks share and leave tables at two
/// levels.
const BASE: u64 = SZ_1G - 4 * SZ_2M;
const PA: u64 = 0x9_0000_0000;

#[derive(Debug, Clone, Copy)]
enum Op {
    Map { region: u64, page: u64, block: bool },
    Unmap { region: u64, page: u64, block: bool },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u64..8, 0u64..512, any::<bool>()).prop_map(|(region, page, block)| Op::Map { region, page, block }),
        3 => (0u64..8, 0u64..512, any::<bool>()).prop_map(|(region, page, block)| Op::Unmap { region, page, block }),
    ]
}

struct Rig {
    alloc: Arc<FrameAllocator>,
    pt: PageTable<CheckingTlb>,
    tlb: CheckingTlb,
}

fn rig(reclaim: TableReclaim) -> Rig {
    let alloc = allocator();
    let mut req = PgTableRequest::new(Stage::S1, PGSIZES_4K, 48, 48);
    req.reclaim = reclaim;
    let tlb = CheckingTlb::new(1, PGSIZES_4K);
    let pt = PageTable::new(req, alloc.clone(), tlb.clone()).unwrap();
    Rig { alloc, pt, tlb }
}

fn addr(region: u64, page: u64, block: bool) -> (u64, PageSize) {
    if block {
        (BASE + region * SZ_2M, PageSize::SZ_2M)
    } else {
        (BASE + region * SZ_2M + page * SZ_4K, PageSize::SZ_4K)
    }
}

/// Run `ops`: each result, then the TLB callbacks they issued.
fn apply(r: &mut Rig, ops: &[Op]) -> (Vec<String>, Vec<TlbEvent>) {
    let mut out = Vec::new();
    for (i, &o) in ops.iter().enumerate() {
        match o {
            Op::Map {
                region,
                page,
                block,
            } => {
                let (iova, size) = addr(region, page, block);
                let pa = PhysAddr::new(
                    PA + (i as u64 % 7) * SZ_2M + if block { 0 } else { page * SZ_4K },
                );
                let res = r.pt.map_pages(
                    Iova::new(iova),
                    pa,
                    size,
                    PageCount::ONE,
                    Prot::READ | Prot::WRITE,
                );
                out.push(format!("{res:?}"));
            }
            Op::Unmap {
                region,
                page,
                block,
            } => {
                let (iova, size) = addr(region, page, block);
                let mut g = Gather::new();
                out.push(
                    r.pt.unmap_pages(Iova::new(iova), size, PageCount::ONE, &mut g)
                        .to_string(),
                );
            }
        }
    }
    (out, r.tlb.take_events())
}

/// Everything observable of the table: translations of a page in every 64, the dump, the
/// allocator's outstanding bytes and the table's own state.
fn observe(
    r: &Rig,
) -> (
    Vec<Option<PhysAddr>>,
    String,
    u64,
    pgtable::PageTableSnapshot,
) {
    let xlate = (0..8 * 512 / 64)
        .map(|p| r.pt.iova_to_phys(Iova::new(BASE + p * 64 * SZ_4K + 0x18)))
        .collect();
    (
        xlate,
        r.pt.dump(),
        r.alloc.outstanding_bytes(),
        r.pt.snapshot(),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    /// Table, memory and allocator restored after random abandoned maps and unmaps (and
    /// possibly freeing the table) continue as a twin that never ran them: same results, TLB
    /// callbacks, translations, descriptors, allocator use and walk cache.
    #[test]
    fn a_restored_table_continues_as_one_that_never_left(
        before in proptest::collection::vec(op(), 0..40),
        after in proptest::collection::vec(op(), 1..40),
        next in proptest::collection::vec(op(), 1..40),
        free_empty in any::<bool>(),
        free_after in any::<bool>(),
    ) {
        let reclaim = if free_empty { TableReclaim::FreeEmpty } else { TableReclaim::Keep };
        let (mut twin, mut m) = (rig(reclaim), rig(reclaim));
        prop_assert_eq!(apply(&mut twin, &before), apply(&mut m, &before));
        let (table, mem, frames) = (m.pt.snapshot(), m.alloc.mem().snapshot(), m.alloc.snapshot());
        apply(&mut m, &after);
        if free_after {
            // The run is done with the table: its pages go back while the object stays.
            m.pt.free_tables().unwrap();
            prop_assert_eq!(m.alloc.outstanding_bytes(), 0);
        }
        m.pt.restore(&table).unwrap();
        m.alloc.restore(&frames).unwrap();
        m.alloc.mem().restore(&mem).unwrap();
        prop_assert_eq!(observe(&m), observe(&twin));
        prop_assert_eq!(apply(&mut m, &next), apply(&mut twin, &next));
        prop_assert_eq!(observe(&m), observe(&twin));
        prop_assert!(m.tlb.failures().is_empty());
    }
}

#[test]
fn a_snapshot_of_another_table_is_refused_and_changes_nothing() {
    let (mut a, mut b) = (rig(TableReclaim::Keep), rig(TableReclaim::Keep));
    // A second table from the same allocator: another PGD.
    let other = PageTable::new(
        PgTableRequest::new(Stage::S1, PGSIZES_4K, 48, 48),
        a.alloc.clone(),
        a.tlb.clone(),
    )
    .unwrap();
    apply(
        &mut a,
        &[Op::Map {
            region: 2,
            page: 3,
            block: false,
        }],
    );
    let before = a.pt.snapshot();
    assert_eq!(
        a.pt.restore(&other.snapshot()),
        Err(PageTableSnapshotError::OtherTable {
            snapshot: other.ttbr(),
            table: a.pt.ttbr(),
        })
    );
    assert_eq!(a.pt.snapshot(), before);
    // The same PGD address in another allocator, another configuration (stage 2).
    let s2 = PageTable::new(
        PgTableRequest::new(Stage::S2, PGSIZES_4K, 48, 48),
        allocator(),
        b.tlb.clone(),
    )
    .unwrap();
    assert_eq!(s2.ttbr(), b.pt.ttbr());
    assert_eq!(
        b.pt.restore(&s2.snapshot()).unwrap_err().to_string(),
        format!(
            "snapshot of the page table at {:#x} restored into the page table at {:#x}",
            s2.ttbr(),
            b.pt.ttbr()
        )
    );
}
