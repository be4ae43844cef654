//! A map step that fills a whole new leaf table writes it in an unzeroed frame before
//! publishing it (`map_new_full_table`). Pinned here to the path every other step takes —
//! install a zeroed table, then write — by mapping the same pages in one call and page by
//! page, over RAM filled with a pattern first (so an unzeroed frame shows if any entry were
//! left unwritten): the returns, every byte of RAM, the dump and every translation must agree.

mod common;

use common::RAM_BASE;
use pgtable::{Fidelity, NoTlb, PageTable, PgTableRequest, Prot, Stage};
use pgtable::{PGSIZES_16K, PGSIZES_4K, PGSIZES_64K};
use physmem::{FrameAllocator, PhysMem, Region};
use smmu_addr::{Iova, PageCount, PageSize, PhysAddr};
use std::sync::Arc;

/// RAM for these tables: 4 MiB is room for every table a case creates (64 KiB frames included).
const RAM_SIZE: u64 = 0x40_0000;

/// A table over RAM that holds a non-zero pattern everywhere.
fn dirty_table(req: PgTableRequest) -> (PageTable<NoTlb>, Arc<PhysMem>) {
    let mem = Arc::new(PhysMem::new(&[Region::new(PhysAddr::new(RAM_BASE), RAM_SIZE)]).unwrap());
    let pattern: Vec<u8> = (0..RAM_SIZE).map(|i| (i as u8) ^ 0xa5).collect();
    mem.write_bytes(PhysAddr::new(RAM_BASE), &pattern).unwrap();
    let alloc =
        Arc::new(FrameAllocator::new(mem.clone(), PhysAddr::new(RAM_BASE), RAM_SIZE).unwrap());
    (PageTable::new(req, alloc, NoTlb).unwrap(), mem)
}

fn ram(mem: &PhysMem) -> Vec<u8> {
    let mut buf = vec![0; RAM_SIZE as usize];
    mem.read_bytes(PhysAddr::new(RAM_BASE), &mut buf).unwrap();
    buf
}

/// Map `count` pages of `pgsize` at `iova` in one call on one table and one page per call on
/// another; everything observable must be the same.
fn same_as_page_by_page(req: PgTableRequest, pgsize: PageSize, iova: u64, count: u64) {
    let pa = 0x4_0000_0000u64;
    let prot = Prot::READ | Prot::WRITE;
    let (mut whole, whole_mem) = dirty_table(req);
    let (mut single, single_mem) = dirty_table(req);
    let got = whole.map_pages(
        Iova::new(iova),
        PhysAddr::new(pa),
        pgsize,
        PageCount::new(count),
        prot,
    );
    assert_eq!(
        got,
        Ok(count * pgsize.bytes()),
        "{req:?} {count} pages at {iova:#x}"
    );
    for i in 0..count {
        let off = i * pgsize.bytes();
        single
            .map_pages(
                Iova::new(iova + off),
                PhysAddr::new(pa + off),
                pgsize,
                PageCount::ONE,
                prot,
            )
            .unwrap();
    }
    assert!(ram(&whole_mem) == ram(&single_mem), "{req:?}: RAM differs");
    assert_eq!(whole.dump(), single.dump());
    for i in 0..count {
        let va = Iova::new(iova + i * pgsize.bytes());
        assert_eq!(whole.iova_to_phys(va), single.iova_to_phys(va));
        assert_eq!(
            whole.iova_to_phys(va),
            Some(PhysAddr::new(pa + i * pgsize.bytes()))
        );
    }
}

#[test]
fn a_step_filling_a_new_leaf_table_leaves_what_page_by_page_maps_leave() {
    let cases = [
        (Stage::S1, PGSIZES_4K, 48, PageSize::SZ_4K, 512u64),
        (Stage::S1, PGSIZES_16K, 48, PageSize::SZ_16K, 2048),
        (Stage::S1, PGSIZES_64K, 48, PageSize::SZ_64K, 8192),
        (Stage::S2, PGSIZES_4K, 40, PageSize::SZ_4K, 512),
    ];
    for (stage, bitmap, bits, pgsize, per_table) in cases {
        for fidelity in [Fidelity::Safe, Fidelity::Linux] {
            for coherent_walk in [true, false] {
                let req = PgTableRequest {
                    fidelity,
                    coherent_walk,
                    ..PgTableRequest::new(stage, bitmap, bits, bits)
                };
                let table_span = per_table * pgsize.bytes();
                // Exactly one table; one and a bit; from the middle of one table across two
                // whole ones into a fourth (only the two in the middle are filled whole).
                same_as_page_by_page(req, pgsize, 0x40_0000_0000 % (1 << bits), per_table);
                same_as_page_by_page(req, pgsize, table_span, per_table + 3);
                same_as_page_by_page(
                    req,
                    pgsize,
                    5 * table_span - 3 * pgsize.bytes(),
                    2 * per_table + 10,
                );
            }
        }
    }
}
